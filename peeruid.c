/*
 * peeruid.c: learn which uid owns the local socket at the other end of
 * a TCP connection, so that a service on this machine can serve only
 * its own user's clients (identd and PuTTY's same-user check ask the
 * kernel the same question).
 *
 * First NETLINK_SOCK_DIAG: one exact lookup of the peer's 4-tuple, one
 * answer.  When that cannot answer (no netlink, no inet_diag module,
 * which the kernel reports as -ENOENT like a missing socket, or any
 * other failure), the socket tables in /proc/net/tcp and tcp6 are read.
 * Both decoders live in sockdiag.c and agree on what counts as owned.
 * A socket is only seen from its own network namespace: a client in
 * another one is not found, and is refused.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <linux/netlink.h>
#include <linux/sock_diag.h>

#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "peeruid.h"
#include "sockdiag.h"

/* Datagrams read for one answer; the kernel sends exactly one. */
#define PEERUID_READS_MAX	4
/* Room for "[address]:port". */
#define ENDPOINT_MAX		(INET6_ADDRSTRLEN + 8)
/* Room for one reason, before peer_uid() puts two together. */
#define WHY_MAX			224
/* Reads of /proc/net/tcp{,6}; larger than PROCNET_LINE_MAX. */
#define PROCNET_BUF		8192

/*
 * Which ways of asking work here (peer_uid_probe).  Only a netlink seen
 * to find a live socket tells a missing one from a missing inet_diag.
 */
static int	use_netlink = 1, use_procnet = 1, netlink_seen;

static const char	*procnet_tcp = "/proc/net/tcp";
static const char	*procnet_tcp6 = "/proc/net/tcp6";

/* The family of an address once an IPv4-mapped one is unmapped. */
static int
unmapped_family(const struct sockaddr_storage *ss, const u_char **addrp)
{
	static const u_char	 v4mapped[12] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
	};
	const u_char		*a6;

	if (ss->ss_family == AF_INET) {
		*addrp = (const u_char *)
		    &((const struct sockaddr_in *)ss)->sin_addr;
		return AF_INET;
	}
	if (ss->ss_family != AF_INET6)
		return -1;
	a6 = (const u_char *)&((const struct sockaddr_in6 *)ss)->sin6_addr;
	if (memcmp(a6, v4mapped, sizeof(v4mapped)) == 0) {
		*addrp = a6 + sizeof(v4mapped);
		return AF_INET;
	}
	*addrp = a6;
	return AF_INET6;
}

static void
fmt_endpoint(const struct sockaddr_storage *ss, char *buf, size_t sz)
{
	const u_char	*addr;
	char		 host[INET6_ADDRSTRLEN];
	int		 family;
	uint16_t	 port;

	if ((family = unmapped_family(ss, &addr)) == -1 ||
	    inet_ntop(family, addr, host, sizeof(host)) == NULL) {
		snprintf(buf, sz, "(an address of family %d)", ss->ss_family);
		return;
	}
	port = ss->ss_family == AF_INET ?
	    ((const struct sockaddr_in *)ss)->sin_port :
	    ((const struct sockaddr_in6 *)ss)->sin6_port;
	snprintf(buf, sz, family == AF_INET6 ? "[%s]:%u" : "%s:%u", host,
	    ntohs(port));
}

/*
 * What the decoders said, in words for a user.  nosock says what "no
 * such socket" can mean to this source.
 */
static void
why_result(int result, int error, const char *source, const char *nosock,
    char *why, size_t whysz)
{
	switch (result) {
	case SOCKDIAG_NOSOCK:
		snprintf(why, whysz, "%s: %s", source, nosock);
		break;
	case SOCKDIAG_UNOWNED:
		snprintf(why, whysz, "%s: no process holds the socket "
		    "(it is closing, or not yet accepted)", source);
		break;
	case SOCKDIAG_ERRNO:
		snprintf(why, whysz, "%s: the kernel refused: %s", source,
		    strerror(error));
		break;
	default:
		snprintf(why, whysz, "%s: malformed answer", source);
		break;
	}
}

/*
 * Read datagrams until one answers seq.  Returns what sockdiag_parse()
 * said (SOCKDIAG_PENDING when no answer came), or -1 with why when the
 * socket failed or the answer is malformed.  The kernel has queued its
 * answer before sendto() returns, so only the first read may wait (for
 * the socket's receive timeout); the reads after a stray datagram don't.
 */
static int
netlink_read(int fd, const struct sockaddr_storage *local,
    const struct sockaddr_storage *peer, uint32_t seq, uint32_t *owner,
    int *error, char *why, size_t whysz)
{
	struct sockaddr_nl	 from;
	struct iovec		 iov;
	struct msghdr		 msg;
	u_char			 reply[SOCKDIAG_REPLY_MAX];
	ssize_t			 n;
	int			 i, flags = 0, result = SOCKDIAG_PENDING;

	/* Anything not from the kernel, or for another seq, is skipped. */
	for (i = 0; i < PEERUID_READS_MAX; i++) {
		memset(&msg, 0, sizeof(msg));
		iov.iov_base = reply;
		iov.iov_len = sizeof(reply);
		msg.msg_name = &from;
		msg.msg_namelen = sizeof(from);
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		if ((n = recvmsg(fd, &msg, flags)) == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			snprintf(why, whysz, "sock_diag: %s",
			    errno == EAGAIN || errno == EWOULDBLOCK ?
			    "no answer from the kernel in time" :
			    strerror(errno));
			return -1;
		}
		flags = MSG_DONTWAIT;
		if (msg.msg_flags & MSG_TRUNC) {
			snprintf(why, whysz, "sock_diag: answer larger than "
			    "%d bytes", SOCKDIAG_REPLY_MAX);
			return -1;
		}
		if (msg.msg_namelen != sizeof(from) ||
		    from.nl_family != AF_NETLINK || from.nl_pid != 0)
			continue;
		result = sockdiag_parse(reply, (size_t)n, peer, local, seq,
		    owner, error);
		if (result == -1) {
			snprintf(why, whysz, "sock_diag: malformed answer "
			    "from the kernel");
			return -1;
		}
		if (result != SOCKDIAG_PENDING)
			break;
	}
	return result;
}

/*
 * One request about the socket at peer, connected to local; one answer.
 * Returns what sockdiag_parse() said of it, with *owner when
 * SOCKDIAG_FOUND, or -1 with why.
 */
static int
netlink_query(int fd, const struct sockaddr_storage *local,
    const struct sockaddr_storage *peer, uint32_t *owner, int *error,
    char *why, size_t whysz)
{
	static uint32_t		 next_seq;
	struct sockaddr_nl	 kernel;
	u_char			 req[SOCKDIAG_REQUEST_MAX];
	uint32_t		 seq = ++next_seq;
	ssize_t			 n;
	int			 len;

	if ((len = sockdiag_request(req, sizeof(req), peer, local,
	    seq)) == -1) {
		snprintf(why, whysz, "sock_diag: not a TCP/IP connection");
		return -1;
	}
	memset(&kernel, 0, sizeof(kernel));
	kernel.nl_family = AF_NETLINK;
	do {
		n = sendto(fd, req, (size_t)len, 0,
		    (struct sockaddr *)&kernel, sizeof(kernel));
	} while (n == -1 && errno == EINTR);
	if (n != len) {
		snprintf(why, whysz, "sock_diag: send: %s",
		    n == -1 ? strerror(errno) : "short write");
		return -1;
	}
	return netlink_read(fd, local, peer, seq, owner, error, why, whysz);
}

/* One request, one answer.  0 with *uid, else -1 with why. */
static int
netlink_ask(int fd, const struct sockaddr_storage *local,
    const struct sockaddr_storage *peer, uid_t *uid, char *why,
    size_t whysz)
{
	uint32_t	owner;
	int		result, error = 0;

	result = netlink_query(fd, local, peer, &owner, &error, why, whysz);
	if (result == SOCKDIAG_FOUND) {
		*uid = (uid_t)owner;
		return 0;
	}
	if (result == SOCKDIAG_PENDING)
		snprintf(why, whysz, "sock_diag: no answer to our request");
	else if (result != -1)
		why_result(result, error, "sock_diag", "no such socket, or "
		    "no inet_diag in this kernel", why, whysz);
	return -1;
}

/*
 * The netlink socket, opened on first use and kept: three system calls
 * fewer on every data connection.  An answer that comes late carries an
 * old seq and is skipped, and any failure closes it, so the next lookup
 * starts afresh.
 */
static int	nl_fd = -1;

/* After any failure: the next look-up starts on a fresh socket. */
static void
netlink_reset(void)
{
	close(nl_fd);
	nl_fd = -1;
}

static int
netlink_socket(char *why, size_t whysz)
{
	struct timeval	tv;

	if (nl_fd != -1)
		return nl_fd;
	if ((nl_fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC,
	    NETLINK_SOCK_DIAG)) == -1) {
		snprintf(why, whysz, "sock_diag: %s", strerror(errno));
		return -1;
	}
	tv.tv_sec = PEERUID_TIMEOUT_MS / 1000;
	tv.tv_usec = (PEERUID_TIMEOUT_MS % 1000) * 1000;
	if (setsockopt(nl_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == -1) {
		snprintf(why, whysz, "sock_diag: receive timeout: %s",
		    strerror(errno));
		netlink_reset();
	}
	return nl_fd;
}

static int
netlink_lookup(const struct sockaddr_storage *local,
    const struct sockaddr_storage *peer, uid_t *uid, char *why,
    size_t whysz)
{
	int	fd;

	if ((fd = netlink_socket(why, whysz)) == -1)
		return -1;
	if (netlink_ask(fd, local, peer, uid, why, whysz) == 0)
		return 0;
	netlink_reset();
	return -1;
}

/* The state of a /proc scan, across reads and files. */
struct scan {
	const struct sockaddr_storage	*local;
	const struct sockaddr_storage	*peer;
	int				 result;	/* best so far */
	uint32_t			 uid;
};

/* The complete lines in buf; returns the bytes used, or -1. */
static ssize_t
scan_lines(struct scan *sc, const char *buf, size_t len, size_t *lineno)
{
	const char	*nl;
	size_t		 used = 0;
	int		 r;

	while (used < len &&
	    (nl = memchr(buf + used, '\n', len - used)) != NULL) {
		/* The first line names the columns. */
		if ((*lineno)++ > 0) {
			r = procnet_parse_line(buf + used,
			    (size_t)(nl - (buf + used)), sc->peer, sc->local,
			    &sc->uid);
			if (r == -1)
				return -1;
			if (r == SOCKDIAG_FOUND || r == SOCKDIAG_UNOWNED)
				sc->result = r;
			if (r == SOCKDIAG_FOUND)
				return (ssize_t)len;
		}
		used = (size_t)(nl - buf) + 1;
	}
	return (ssize_t)used;
}

/* Scan one file; 0, or -1 with why.  A missing tcp6 is no socket. */
static int
scan_file(struct scan *sc, const char *path, char *why, size_t whysz)
{
	char	buf[PROCNET_BUF];
	size_t	have = 0, lineno = 0;
	ssize_t	n, used;
	int	fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		if (errno == ENOENT && path == procnet_tcp6)
			return 0;
		snprintf(why, whysz, "%s: %s", path, strerror(errno));
		return -1;
	}
	for (;;) {
		if ((n = read(fd, buf + have, sizeof(buf) - have)) == -1) {
			if (errno == EINTR)
				continue;
			snprintf(why, whysz, "%s: %s", path, strerror(errno));
			break;
		}
		/* A last line without its newline ends at the end. */
		if (n == 0 && have > 0 && have < sizeof(buf))
			buf[have++] = '\n';
		have += (size_t)n;
		if ((used = scan_lines(sc, buf, have, &lineno)) == -1) {
			snprintf(why, whysz, "%s: line %zu is malformed", path,
			    lineno);
			break;
		}
		memmove(buf, buf + used, have - (size_t)used);
		have -= (size_t)used;
		if (sc->result == SOCKDIAG_FOUND || (n == 0 && have == 0)) {
			close(fd);
			return 0;
		}
		if (have == sizeof(buf) || n == 0) {
			snprintf(why, whysz, "%s: line %zu is too long", path,
			    lineno + 1);
			break;
		}
	}
	close(fd);
	return -1;
}

static int
procnet_lookup(const struct sockaddr_storage *local,
    const struct sockaddr_storage *peer, uid_t *uid, char *why,
    size_t whysz)
{
	struct scan	 sc;
	const u_char	*addr;
	int		 family = unmapped_family(peer, &addr);

	memset(&sc, 0, sizeof(sc));
	sc.local = local;
	sc.peer = peer;
	sc.result = SOCKDIAG_NOSOCK;
	/* A dual-stack socket's IPv4 connections are listed in tcp6. */
	if (family == AF_INET &&
	    scan_file(&sc, procnet_tcp, why, whysz) == -1)
		return -1;
	if (sc.result != SOCKDIAG_FOUND &&
	    scan_file(&sc, procnet_tcp6, why, whysz) == -1)
		return -1;
	if (sc.result == SOCKDIAG_FOUND) {
		*uid = (uid_t)sc.uid;
		return 0;
	}
	why_result(sc.result, 0, family == AF_INET ? "/proc/net/tcp and tcp6" :
	    "/proc/net/tcp6", "no such socket (closed already, or in another "
	    "network namespace)", why, whysz);
	return -1;
}

static void
describe(const struct sockaddr_storage *local,
    const struct sockaddr_storage *peer, const char *why, char *err,
    size_t errsz)
{
	char	lbuf[ENDPOINT_MAX], pbuf[ENDPOINT_MAX];

	fmt_endpoint(local, lbuf, sizeof(lbuf));
	fmt_endpoint(peer, pbuf, sizeof(pbuf));
	snprintf(err, errsz, "cannot learn which user owns the client "
	    "socket %s connected to %s: %s", pbuf, lbuf, why);
}

/*
 * Learn once which way of asking works on this machine, from a loopback
 * connection of our own: with sock_diag, no lookup ever reads the
 * /proc tables (a local user who resets connections at will could make
 * every lookup that misses scan them, in our event loop).  Without it,
 * /proc alone.  Neither: both are tried, and lookups fail.
 */
void
peer_uid_probe(void)
{
	struct sockaddr_storage	 a, b;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&a;
	socklen_t		 len = sizeof(a);
	char			 why[WHY_MAX];
	uid_t			 uid;
	int			 l, c = -1, s = -1;

	memset(&a, 0, sizeof(a));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return;
	if (bind(l, (struct sockaddr *)&a, sizeof(struct sockaddr_in)) == 0 &&
	    listen(l, 1) == 0 &&
	    getsockname(l, (struct sockaddr *)&a, &len) == 0 &&
	    (c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) != -1 &&
	    connect(c, (struct sockaddr *)&a, len) == 0 &&
	    (s = accept4(l, NULL, NULL, SOCK_CLOEXEC)) != -1 &&
	    (len = sizeof(b), getpeername(s, (struct sockaddr *)&b,
	    &len)) == 0) {
		if (netlink_lookup(&a, &b, &uid, why, sizeof(why)) == 0 &&
		    uid == getuid()) {
			use_procnet = 0;
			netlink_seen = 1;
		} else if (procnet_lookup(&a, &b, &uid, why,
		    sizeof(why)) == 0 && uid == getuid())
			use_netlink = 0;
	}
	if (s != -1)
		close(s);
	if (c != -1)
		close(c);
	close(l);
}

/*
 * The uid owning the socket at peer, connected to us at local.  Netlink
 * first, then /proc.  Returns 0 with *uid, or -1 with a message in err
 * saying why neither could tell.
 */
int
peer_uid(const struct sockaddr_storage *local,
    const struct sockaddr_storage *peer, uid_t *uid, char *err, size_t errsz)
{
	char	nlwhy[WHY_MAX], procwhy[WHY_MAX], why[2 * WHY_MAX + 4];

	snprintf(nlwhy, sizeof(nlwhy), "sock_diag: not used here");
	snprintf(procwhy, sizeof(procwhy), "/proc/net/tcp: not used here");
	if ((use_netlink &&
	    netlink_lookup(local, peer, uid, nlwhy, sizeof(nlwhy)) == 0) ||
	    (use_procnet &&
	    procnet_lookup(local, peer, uid, procwhy, sizeof(procwhy)) == 0))
		return 0;
	snprintf(why, sizeof(why), "%s; %s", nlwhy, procwhy);
	describe(local, peer, why, err, errsz);
	return -1;
}

/*
 * Does a process still hold our socket whose address is self, connected
 * to peer, now that we have handed it to another one?  Once the last
 * descriptor is closed the kernel keeps the socket alone (an orphan, or
 * gone), its FIN queued behind every byte written to it, unless it was
 * reset.  A reset socket still held counts as not held: no state it
 * can be in is one a process holds it in (OWNED_STATES).  Returns 1 or
 * 0, or -1 when netlink cannot tell (or peer_uid_probe() did not see it
 * work).
 */
int
sock_held(const struct sockaddr_storage *self,
    const struct sockaddr_storage *peer)
{
	char		why[WHY_MAX];
	uint32_t	owner;
	int		fd, result, error = 0;

	if (!netlink_seen || (fd = netlink_socket(why, sizeof(why))) == -1)
		return -1;
	result = netlink_query(fd, peer, self, &owner, &error, why,
	    sizeof(why));
	if (result == SOCKDIAG_FOUND)
		return 1;
	if (result == SOCKDIAG_UNOWNED || result == SOCKDIAG_NOSOCK)
		return 0;
	netlink_reset();
	return -1;
}

/* Can sock_held() answer here? */
int
sock_held_usable(void)
{
	return netlink_seen;
}

/* As peer_uid(), by netlink alone (for tests). */
int
peer_uid_netlink(const struct sockaddr_storage *local,
    const struct sockaddr_storage *peer, uid_t *uid, char *err, size_t errsz)
{
	char	why[WHY_MAX];

	if (netlink_lookup(local, peer, uid, why, sizeof(why)) == 0)
		return 0;
	describe(local, peer, why, err, errsz);
	return -1;
}

/* As peer_uid(), by /proc/net/tcp{,6} alone (for tests). */
int
peer_uid_procnet(const struct sockaddr_storage *local,
    const struct sockaddr_storage *peer, uid_t *uid, char *err, size_t errsz)
{
	char	why[WHY_MAX];

	if (procnet_lookup(local, peer, uid, why, sizeof(why)) == 0)
		return 0;
	describe(local, peer, why, err, errsz);
	return -1;
}

/*
 * Whether a peer at this address is on this machine: a loopback or
 * unspecified address, or one of a local interface's.  Returns 1 or 0,
 * or -1 when the interfaces cannot be listed (treat that as local: the
 * owner check then runs and decides).
 */
int
addr_is_local(const struct sockaddr_storage *ss)
{
	static const u_char	 any6[16], loop6[16] = { [15] = 1 };
	struct ifaddrs		*ifap, *ifa;
	const u_char		*addr, *ifaddr;
	int			 family, local = 0;

	if ((family = unmapped_family(ss, &addr)) == -1)
		return 0;
	if (family == AF_INET && (addr[0] == 127 ||
	    memcmp(addr, any6, 4) == 0))
		return 1;
	if (family == AF_INET6 && (memcmp(addr, loop6, 16) == 0 ||
	    memcmp(addr, any6, 16) == 0))
		return 1;
	if (getifaddrs(&ifap) == -1)
		return -1;
	for (ifa = ifap; ifa != NULL && !local; ifa = ifa->ifa_next) {
		if (ifa->ifa_addr == NULL ||
		    (ifa->ifa_addr->sa_family != AF_INET &&
		    ifa->ifa_addr->sa_family != AF_INET6))
			continue;
		if (unmapped_family((const struct sockaddr_storage *)
		    ifa->ifa_addr, &ifaddr) == family &&
		    memcmp(addr, ifaddr, family == AF_INET ? 4 : 16) == 0)
			local = 1;
	}
	freeifaddrs(ifap);
	return local;
}
