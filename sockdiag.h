/*
 * sockdiag.h: pure encoding and decoding of what Linux says about a TCP
 * socket's owner, through NETLINK_SOCK_DIAG or /proc/net/tcp{,6}.
 *
 * No I/O.  Every decoder takes a pointer and a length, never reads past
 * the length, never relies on a NUL, and returns -1 on anything
 * malformed.
 *
 * A socket is named by its 4-tuple as the socket itself sees it: src is
 * its own address and port, dst the address and port it is connected
 * to.  To learn who owns the client on the other end of a connection we
 * accepted, src is the client's address (getpeername) and dst ours
 * (getsockname).  Ports are those of the sockaddrs, in network order.
 *
 * IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are taken for the IPv4
 * addresses they map: the caller need not unmap them.  A socket of
 * either family connected over IPv4 then matches, as the kernel's own
 * lookup does.  src and dst must be of one family once unmapped.
 */

#ifndef SOCKDIAG_H
#define SOCKDIAG_H

#include <sys/types.h>
#include <sys/socket.h>

#include <stddef.h>
#include <stdint.h>

/* Room for a request: a netlink header and an inet_diag_req_v2. */
#define SOCKDIAG_REQUEST_MAX	128
/*
 * Room for one reply datagram.  An exact lookup answers with one
 * inet_diag_msg and a few attributes (under 200 bytes); a larger
 * datagram is not one we asked for.
 */
#define SOCKDIAG_REPLY_MAX	8192
/* The longest /proc/net/tcp6 line we accept (the kernel's are ~180). */
#define PROCNET_LINE_MAX	512

/* What a reply, or a /proc line, says. */
#define SOCKDIAG_FOUND		0	/* the socket is owned by *uid */
#define SOCKDIAG_NOSOCK		1	/* no such socket */
#define SOCKDIAG_UNOWNED	2	/* it exists but no process holds it */
#define SOCKDIAG_PENDING	3	/* no answer to our request yet */
#define SOCKDIAG_ERRNO		4	/* the kernel refused: *errnop */

int	sockdiag_request(u_char *, size_t, const struct sockaddr_storage *,
	    const struct sockaddr_storage *, uint32_t);
int	sockdiag_parse(const u_char *, size_t, const struct sockaddr_storage *,
	    const struct sockaddr_storage *, uint32_t, uint32_t *, int *);
int	procnet_parse_line(const char *, size_t,
	    const struct sockaddr_storage *, const struct sockaddr_storage *,
	    uint32_t *);

#endif /* SOCKDIAG_H */
