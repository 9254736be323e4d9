/*
 * sockdiag.c: ask Linux who owns a TCP socket, and read its answer.
 *
 * No I/O and no state: the request is built into the caller's buffer,
 * and the replies (a netlink datagram, or one line of /proc/net/tcp or
 * tcp6) are decoded from pointer and length.  Replies are untrusted
 * input as far as this file is concerned: every length and field is
 * checked, and anything malformed is -1.
 *
 * The request is an exact lookup (SOCK_DIAG_BY_FAMILY without NLM_F_DUMP,
 * net/ipv4/inet_diag.c): the kernel answers with one inet_diag_msg, or an
 * NLMSG_ERROR of -ENOENT when no socket has the 4-tuple.  The lookup
 * falls back to a listening socket on the source port when no connection
 * matches, and ignores idiag_states, so the decoder checks that the
 * answer is about exactly the 4-tuple asked for, and in a state in
 * which its uid means something.
 *
 * A socket's uid is only its creator's while a process holds it.  Time
 * wait and request (SYN_RECV) minisockets report uid 0 through netlink,
 * and a request socket reports its listener's uid in /proc; both, and
 * orphans a process has closed, have inode 0.  A socket counts as owned
 * when its state is one a process can hold it in and its inode is not 0.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>

#include <errno.h>
#include <string.h>

#include "sockdiag.h"

/* The states in which a process can hold a connected TCP socket. */
#define OWNED_STATES	(1U << TCP_ESTABLISHED | 1U << TCP_SYN_SENT | \
			 1U << TCP_FIN_WAIT1 | 1U << TCP_FIN_WAIT2 | \
			 1U << TCP_CLOSE_WAIT | 1U << TCP_LAST_ACK | \
			 1U << TCP_CLOSING)
/* Netlink and its attributes align to 4 bytes. */
#define NL_ALIGNTO	4U
/* errno values the kernel can put in an NLMSG_ERROR (MAX_ERRNO). */
#define KERNEL_ERRNO_MAX	4095
/* Longest decimal fields of a /proc/net/tcp line: uid, inode, sl. */
#define PROCNET_DEC_MAX		20
/* Longest hex fields: tm->when is an unsigned long. */
#define PROCNET_HEX_MAX		16
#define PROCNET_V4_HEX		8
#define PROCNET_V6_HEX		32
#define PROCNET_PORT_HEX	4
/* Fields up to the inode: sl local rem st tx:rx tr:when retr uid tmo ino */
#define PROCNET_FIELDS		10

/* A socket's 4-tuple, IPv4-mapped addresses unmapped. */
struct tuple {
	int		family;		/* AF_INET or AF_INET6 */
	u_char		src[16];	/* network order; 4 bytes for IPv4 */
	u_char		dst[16];
	uint16_t	sport;		/* network order */
	uint16_t	dport;
	uint32_t	ifindex;	/* a link-local address's scope, or 0 */
};

static const u_char v4mapped[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
};

static size_t
family_len(int family)
{
	return family == AF_INET ? 4 : 16;
}

static size_t
nl_align(size_t len)
{
	return (len + NL_ALIGNTO - 1) & ~(size_t)(NL_ALIGNTO - 1);
}

static int
addr_load(const struct sockaddr_storage *ss, int *family, u_char *addr,
    uint16_t *port, uint32_t *scope)
{
	const struct sockaddr_in	*sin = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6	*sin6 = (const struct sockaddr_in6 *)ss;

	*scope = 0;
	if (ss->ss_family == AF_INET) {
		*family = AF_INET;
		memcpy(addr, &sin->sin_addr, 4);
		*port = sin->sin_port;
		return 0;
	}
	if (ss->ss_family != AF_INET6)
		return -1;
	*port = sin6->sin6_port;
	if (memcmp(&sin6->sin6_addr, v4mapped, sizeof(v4mapped)) == 0) {
		*family = AF_INET;
		memcpy(addr, (const u_char *)&sin6->sin6_addr + 12, 4);
		return 0;
	}
	*family = AF_INET6;
	memcpy(addr, &sin6->sin6_addr, 16);
	*scope = sin6->sin6_scope_id;
	return 0;
}

static int
tuple_load(struct tuple *t, const struct sockaddr_storage *src,
    const struct sockaddr_storage *dst)
{
	int		dfamily;
	uint32_t	sscope, dscope;

	memset(t, 0, sizeof(*t));
	if (addr_load(src, &t->family, t->src, &t->sport, &sscope) == -1 ||
	    addr_load(dst, &dfamily, t->dst, &t->dport, &dscope) == -1 ||
	    dfamily != t->family)
		return -1;
	/* The scope of a link-local connection: either end knows it. */
	t->ifindex = sscope != 0 ? sscope : dscope;
	return 0;
}

/* A tuple as the kernel reports it: 16-byte addresses, maybe mapped. */
static void
tuple_raw(struct tuple *t, int family, const u_char *src, const u_char *dst,
    uint16_t sport, uint16_t dport)
{
	memset(t, 0, sizeof(*t));
	t->family = family;
	t->sport = sport;
	t->dport = dport;
	if (family == AF_INET6 && memcmp(src, v4mapped, 12) == 0 &&
	    memcmp(dst, v4mapped, 12) == 0) {
		t->family = AF_INET;
		memcpy(t->src, src + 12, 4);
		memcpy(t->dst, dst + 12, 4);
		return;
	}
	memcpy(t->src, src, family_len(family));
	memcpy(t->dst, dst, family_len(family));
}

static int
tuple_equal(const struct tuple *a, const struct tuple *b)
{
	return a->family == b->family && a->sport == b->sport &&
	    a->dport == b->dport &&
	    memcmp(a->src, b->src, family_len(a->family)) == 0 &&
	    memcmp(a->dst, b->dst, family_len(a->family)) == 0;
}

static int
owned(unsigned int state, uint64_t inode)
{
	return state < 32 && (OWNED_STATES & 1U << state) != 0 && inode != 0;
}

/*
 * Build the exact lookup of the TCP socket whose own address is src and
 * whose peer is dst.  The state mask is the owned states; the kernel's
 * exact lookup ignores it and sockdiag_parse() checks the state itself.
 * Returns the request's length, or -1 when buf is too small or the
 * addresses are not one family.
 */
int
sockdiag_request(u_char *buf, size_t sz, const struct sockaddr_storage *src,
    const struct sockaddr_storage *dst, uint32_t seq)
{
	struct nlmsghdr		nlh;
	struct inet_diag_req_v2	req;
	struct tuple		t;

	if (sz < sizeof(nlh) + sizeof(req) || tuple_load(&t, src, dst) == -1)
		return -1;
	memset(&nlh, 0, sizeof(nlh));
	nlh.nlmsg_len = sizeof(nlh) + sizeof(req);
	nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	nlh.nlmsg_flags = NLM_F_REQUEST;
	nlh.nlmsg_seq = seq;

	memset(&req, 0, sizeof(req));
	req.sdiag_family = (uint8_t)t.family;
	req.sdiag_protocol = IPPROTO_TCP;
	req.idiag_states = OWNED_STATES;
	req.id.idiag_sport = t.sport;
	req.id.idiag_dport = t.dport;
	memcpy(req.id.idiag_src, t.src, family_len(t.family));
	memcpy(req.id.idiag_dst, t.dst, family_len(t.family));
	/* A link-local client socket is bound to its interface. */
	req.id.idiag_if = t.ifindex;
	req.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
	req.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;

	memcpy(buf, &nlh, sizeof(nlh));
	memcpy(buf + sizeof(nlh), &req, sizeof(req));
	return (int)(sizeof(nlh) + sizeof(req));
}

/* The attributes after an inet_diag_msg: only their lengths matter. */
static int
attrs_check(const u_char *p, size_t len)
{
	uint16_t	alen;
	size_t		step;

	while (len > 0) {
		if (len < 4)
			return -1;
		memcpy(&alen, p, sizeof(alen));
		if (alen < 4 || alen > len)
			return -1;
		step = nl_align(alen) < len ? nl_align(alen) : len;
		p += step;
		len -= step;
	}
	return 0;
}

/* One inet_diag_msg: SOCKDIAG_FOUND, _UNOWNED, _NOSOCK or -1. */
static int
parse_diag_msg(const u_char *p, size_t len, const struct tuple *want,
    uint32_t *uid)
{
	struct inet_diag_msg	m;
	struct tuple		got;

	if (len < nl_align(sizeof(m)) ||
	    attrs_check(p + nl_align(sizeof(m)), len - nl_align(sizeof(m))))
		return -1;
	memcpy(&m, p, sizeof(m));
	if (m.idiag_family != AF_INET && m.idiag_family != AF_INET6)
		return -1;
	tuple_raw(&got, m.idiag_family, (const u_char *)m.id.idiag_src,
	    (const u_char *)m.id.idiag_dst, m.id.idiag_sport,
	    m.id.idiag_dport);
	if (!tuple_equal(&got, want))
		return SOCKDIAG_NOSOCK;
	if (!owned(m.idiag_state, m.idiag_inode))
		return SOCKDIAG_UNOWNED;
	*uid = m.idiag_uid;
	return SOCKDIAG_FOUND;
}

/* A negative errno from NLMSG_ERROR or NLMSG_DONE, as a result. */
static int
kernel_errno(int error, int *errnop)
{
	if (error > 0 || error < -KERNEL_ERRNO_MAX)
		return -1;
	if (error == -ENOENT)
		return SOCKDIAG_NOSOCK;
	*errnop = -error;
	return SOCKDIAG_ERRNO;
}

/* NLMSG_ERROR: 0 for an acknowledgement, else what kernel_errno() says. */
static int
parse_error(const u_char *p, size_t len, int *errnop)
{
	struct nlmsgerr	e;

	if (len < sizeof(e))
		return -1;
	memcpy(&e, p, sizeof(e));
	if (e.error == 0)
		return 0;
	return kernel_errno(e.error, errnop);
}

/* NLMSG_DONE: a dump's end, which may carry the dump's error. */
static int
parse_done(const u_char *p, size_t len, int *errnop)
{
	int	error = 0;

	if (len >= sizeof(error))
		memcpy(&error, p, sizeof(error));
	if (error == 0)
		return SOCKDIAG_NOSOCK;
	return kernel_errno(error, errnop);
}

/* The result of the messages about our tuple, sorted out. */
struct answer {
	int		nmatch;		/* messages about our tuple */
	int		result;		/* what the last of them said */
	int		ended;		/* NLMSG_DONE or an answer seen */
	uint32_t	uid;
};

/* One message of our sequence number: 1 to read on, 0 to stop, -1. */
static int
parse_one(const struct nlmsghdr *nlh, const u_char *p, size_t len,
    const struct tuple *want, struct answer *a, int *errnop)
{
	int	r;

	switch (nlh->nlmsg_type) {
	case NLMSG_NOOP:
		return 1;
	case NLMSG_DONE:
		if ((r = parse_done(p, len, errnop)) == -1 ||
		    (r != SOCKDIAG_NOSOCK && a->nmatch > 0))
			return -1;
		if (r != SOCKDIAG_NOSOCK)
			a->result = r;
		a->ended = 1;
		return 0;
	case NLMSG_ERROR:
		if ((r = parse_error(p, len, errnop)) <= 0)
			return r == 0 ? 1 : -1;
		/* An error contradicts an answer given before it. */
		if (a->nmatch > 0)
			return -1;
		a->result = r;
		a->ended = 1;
		return 0;
	case SOCK_DIAG_BY_FAMILY:
		if ((r = parse_diag_msg(p, len, want, &a->uid)) == -1)
			return -1;
		a->ended = 1;
		if (r == SOCKDIAG_NOSOCK)
			return 1;
		/* An exact lookup names one socket. */
		if (++a->nmatch > 1)
			return -1;
		a->result = r;
		return 1;
	default:
		return -1;
	}
}

/*
 * Decode one reply datagram to the request sockdiag_request() built for
 * src, dst and seq.  Every message is walked with checked lengths; those
 * of another sequence number are skipped, NLMSG_DONE ends the walk.
 * Returns SOCKDIAG_FOUND with *uid, SOCKDIAG_NOSOCK (-ENOENT, or only
 * answers about other sockets), SOCKDIAG_UNOWNED (the socket exists but
 * in a state or with an inode saying no process holds it),
 * SOCKDIAG_ERRNO with *errnop, SOCKDIAG_PENDING when nothing in buf
 * answers seq, and -1 when buf is malformed or contradicts itself.
 * *uid and *errnop are only written when so returned.
 */
int
sockdiag_parse(const u_char *buf, size_t len,
    const struct sockaddr_storage *src, const struct sockaddr_storage *dst,
    uint32_t seq, uint32_t *uid, int *errnop)
{
	struct tuple	want;
	struct answer	a;
	struct nlmsghdr	nlh;
	size_t		off = 0, step;
	int		r, error = 0;

	if (len == 0 || tuple_load(&want, src, dst) == -1)
		return -1;
	memset(&a, 0, sizeof(a));
	a.result = SOCKDIAG_NOSOCK;
	while (off < len) {
		if (len - off < sizeof(nlh))
			return -1;
		memcpy(&nlh, buf + off, sizeof(nlh));
		if (nlh.nlmsg_len < sizeof(nlh) || nlh.nlmsg_len > len - off)
			return -1;
		/* The last message of a datagram need not be padded. */
		step = nl_align(nlh.nlmsg_len) < len - off ?
		    nl_align(nlh.nlmsg_len) : len - off;
		if (nlh.nlmsg_seq == seq &&
		    (r = parse_one(&nlh, buf + off + sizeof(nlh),
		    nlh.nlmsg_len - sizeof(nlh), &want, &a, &error)) <= 0) {
			if (r == -1)
				return -1;
			break;
		}
		off += step;
	}
	if (!a.ended)
		return SOCKDIAG_PENDING;
	if (a.result == SOCKDIAG_FOUND)
		*uid = a.uid;
	else if (a.result == SOCKDIAG_ERRNO)
		*errnop = error;
	return a.result;
}

/* A cursor over one /proc/net/tcp line. */
struct field {
	const char	*p;
	size_t		 len;
};

static int
hex_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Exactly len hex digits, len at most PROCNET_HEX_MAX. */
static int
parse_hex(const char *p, size_t len, uint64_t *vp)
{
	uint64_t	v = 0;
	size_t		i;
	int		d;

	if (len == 0 || len > PROCNET_HEX_MAX)
		return -1;
	for (i = 0; i < len; i++) {
		if ((d = hex_value((unsigned char)p[i])) == -1)
			return -1;
		v = v << 4 | (uint64_t)d;
	}
	*vp = v;
	return 0;
}

/* Decimal digits, no sign, at most max. */
static int
parse_dec(const char *p, size_t len, uint64_t max, uint64_t *vp)
{
	uint64_t	v = 0;
	size_t		i;

	if (len == 0 || len > PROCNET_DEC_MAX)
		return -1;
	for (i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		if (v > (max - (uint64_t)(p[i] - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	*vp = v;
	return 0;
}

/* An int printed %d, maybe negative (a field we skip). */
static int
parse_int(const struct field *f)
{
	uint64_t	v;
	size_t		sign = f->len > 0 && f->p[0] == '-';

	return parse_dec(f->p + sign, f->len - sign, INT32_MAX, &v);
}

/* "hex:hex", each side 1 to PROCNET_HEX_MAX digits (fields we skip). */
static int
parse_hex_pair(const struct field *f)
{
	const char	*colon;
	uint64_t	 v;
	size_t		 left;

	if ((colon = memchr(f->p, ':', f->len)) == NULL)
		return -1;
	left = (size_t)(colon - f->p);
	return parse_hex(f->p, left, &v) == -1 ||
	    parse_hex(colon + 1, f->len - left - 1, &v) == -1 ? -1 : 0;
}

/*
 * "ADDR:PORT" as the kernel prints it: the address as 1 or 4 32-bit
 * words, each printed %08X from the kernel's memory, so each word read
 * back into memory in this host's order gives the bytes in network
 * order; the port %04X in host order.
 */
static int
parse_endpoint(const struct field *f, int *family, u_char *addr,
    uint16_t *port)
{
	uint64_t	v;
	uint32_t	word;
	size_t		alen, i;

	if (f->len == PROCNET_V4_HEX + 1 + PROCNET_PORT_HEX)
		*family = AF_INET;
	else if (f->len == PROCNET_V6_HEX + 1 + PROCNET_PORT_HEX)
		*family = AF_INET6;
	else
		return -1;
	alen = f->len - 1 - PROCNET_PORT_HEX;
	if (f->p[alen] != ':')
		return -1;
	for (i = 0; i < alen / 8; i++) {
		if (parse_hex(f->p + i * 8, 8, &v) == -1)
			return -1;
		word = (uint32_t)v;
		memcpy(addr + i * 4, &word, sizeof(word));
	}
	if (parse_hex(f->p + alen + 1, PROCNET_PORT_HEX, &v) == -1)
		return -1;
	*port = htons((uint16_t)v);
	return 0;
}

/* Split a line on spaces into up to max fields; the count, or -1. */
static int
split_fields(const char *line, size_t len, struct field *f, int max)
{
	size_t	i = 0, start;
	int	n = 0;

	while (n < max) {
		while (i < len && (line[i] == ' ' || line[i] == '\n'))
			i++;
		if (i == len)
			break;
		start = i;
		while (i < len && line[i] != ' ' && line[i] != '\n')
			i++;
		f[n].p = line + start;
		f[n].len = i - start;
		n++;
	}
	return n;
}

/*
 * One line of /proc/net/tcp or /proc/net/tcp6 (not the header), with or
 * without its newline: "sl: local rem st tx:rx tr:when retrnsmt uid
 * timeout inode ...".  Fields after the inode are not read.  Returns
 * SOCKDIAG_FOUND with *uid when the line is the socket whose own
 * address is src and peer dst, and a process holds it;
 * SOCKDIAG_UNOWNED when it is that socket but no process holds it;
 * SOCKDIAG_NOSOCK when it is another socket; -1 when malformed.
 */
int
procnet_parse_line(const char *line, size_t len,
    const struct sockaddr_storage *src, const struct sockaddr_storage *dst,
    uint32_t *uid)
{
	struct field	f[PROCNET_FIELDS];
	struct tuple	want, got;
	u_char		laddr[16], raddr[16];
	uint64_t	state, owner, inode, v;
	uint16_t	lport, rport;
	int		lfamily, rfamily;

	if (len > PROCNET_LINE_MAX || tuple_load(&want, src, dst) == -1 ||
	    split_fields(line, len, f, PROCNET_FIELDS) != PROCNET_FIELDS)
		return -1;
	if (f[0].len < 2 || f[0].p[f[0].len - 1] != ':' ||
	    parse_dec(f[0].p, f[0].len - 1, UINT32_MAX, &v) == -1)
		return -1;
	if (parse_endpoint(&f[1], &lfamily, laddr, &lport) == -1 ||
	    parse_endpoint(&f[2], &rfamily, raddr, &rport) == -1 ||
	    lfamily != rfamily)
		return -1;
	if (f[3].len != 2 || parse_hex(f[3].p, 2, &state) == -1 ||
	    parse_hex_pair(&f[4]) == -1 || parse_hex_pair(&f[5]) == -1 ||
	    f[6].len > 8 || parse_hex(f[6].p, f[6].len, &v) == -1)
		return -1;
	if (parse_dec(f[7].p, f[7].len, UINT32_MAX, &owner) == -1 ||
	    parse_int(&f[8]) == -1 ||
	    parse_dec(f[9].p, f[9].len, UINT64_MAX, &inode) == -1)
		return -1;

	if (lfamily == AF_INET) {
		/* tuple_raw() takes 16 bytes; an IPv4 line has 4. */
		memset(laddr + 4, 0, sizeof(laddr) - 4);
		memset(raddr + 4, 0, sizeof(raddr) - 4);
	}
	tuple_raw(&got, lfamily, laddr, raddr, lport, rport);
	if (!tuple_equal(&got, &want))
		return SOCKDIAG_NOSOCK;
	if (!owned((unsigned int)state, inode))
		return SOCKDIAG_UNOWNED;
	*uid = (uint32_t)owner;
	return SOCKDIAG_FOUND;
}
