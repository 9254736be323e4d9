/*
 * peeruid.h: which local user owns the other end of a TCP connection,
 * asked of the Linux kernel (NETLINK_SOCK_DIAG, else /proc/net/tcp{,6}).
 *
 * local and peer are the connection as our socket sees it (getsockname
 * and getpeername); the socket looked up is the peer's.  IPv4-mapped
 * IPv6 addresses may be passed as they are.  Blocking, but bounded: the
 * kernel answers at once, a netlink answer is waited for at most
 * PEERUID_TIMEOUT_MS, and /proc is read to its end (a read of the
 * kernel's socket tables, so as long as the host has sockets).
 */

#ifndef PEERUID_H
#define PEERUID_H

#include <sys/types.h>
#include <sys/socket.h>

#include <stddef.h>

/* The longest wait for the kernel's netlink answer. */
#define PEERUID_TIMEOUT_MS	1000
/* Room for an error message of peer_uid(). */
#define PEERUID_ERR_MAX		512

int	peer_uid(const struct sockaddr_storage *,
	    const struct sockaddr_storage *, uid_t *, char *, size_t);
int	peer_uid_netlink(const struct sockaddr_storage *,
	    const struct sockaddr_storage *, uid_t *, char *, size_t);
int	peer_uid_procnet(const struct sockaddr_storage *,
	    const struct sockaddr_storage *, uid_t *, char *, size_t);
int	sock_held(const struct sockaddr_storage *,
	    const struct sockaddr_storage *);
int	sock_held_usable(void);
int	addr_is_local(const struct sockaddr_storage *);
void	peer_uid_probe(void);

#endif /* PEERUID_H */
