/*
 * Unit tests of sockdiag.c (the sock_diag codec and the /proc/net/tcp
 * line parser) and of peeruid.c against this machine's kernel, in TAP.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>

#include <errno.h>
#include <grp.h>
#include <ifaddrs.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "peeruid.h"
#include "sockdiag.h"
#include "tap.h"

/* The uid the other-user test's client runs as (nobody). */
#define OTHER_UID	65534
#define TEST_SEQ	42
/* Seconds the whole test may take; it takes well under one. */
#define TEST_TIMEOUT	60
/* TCP states, as in the kernel's include/net/tcp_states.h. */
#define ST_ESTABLISHED	1
#define ST_SYN_RECV	3
#define ST_FIN_WAIT2	5
#define ST_TIME_WAIT	6
#define ST_LISTEN	10


/* The 4-tuples of the hand-built replies: peer (src) to local (dst). */
static struct sockaddr_storage	peer4, local4, peer6, local6;
static struct sockaddr_storage	mpeer4, mlocal4;	/* IPv4-mapped */

/* Hand-built netlink datagrams. */
struct reply {
	u_char	b[2048];
	size_t	len;
};

static void
put_msg(struct reply *r, uint16_t type, uint32_t seq, const void *payload,
    size_t plen)
{
	struct nlmsghdr	nlh;

	memset(&nlh, 0, sizeof(nlh));
	nlh.nlmsg_len = (uint32_t)(sizeof(nlh) + plen);
	nlh.nlmsg_type = type;
	nlh.nlmsg_seq = seq;
	nlh.nlmsg_pid = 4242;
	memcpy(r->b + r->len, &nlh, sizeof(nlh));
	memcpy(r->b + r->len + sizeof(nlh), payload, plen);
	r->len += sizeof(nlh) + plen;
	while (r->len % 4 != 0)
		r->b[r->len++] = 0;
}

static void
put_error(struct reply *r, uint32_t seq, int error)
{
	struct nlmsgerr	e;

	memset(&e, 0, sizeof(e));
	e.error = error;
	put_msg(r, NLMSG_ERROR, seq, &e, sizeof(e));
}

/* An inet_diag_msg as the kernel writes it for a socket src -> dst. */
static void
fill_diag(struct inet_diag_msg *m, const struct sockaddr_storage *src,
    const struct sockaddr_storage *dst, int state, uint32_t uid,
    uint32_t inode)
{
	const struct sockaddr_storage	*ss[2] = { src, dst };
	__be32				*addr[2];
	__be16				*port[2];
	int				 i;

	memset(m, 0, sizeof(*m));
	addr[0] = m->id.idiag_src;
	addr[1] = m->id.idiag_dst;
	port[0] = &m->id.idiag_sport;
	port[1] = &m->id.idiag_dport;
	m->idiag_family = (uint8_t)src->ss_family;
	for (i = 0; i < 2; i++) {
		if (ss[i]->ss_family == AF_INET) {
			memcpy(addr[i], &((const struct sockaddr_in *)
			    ss[i])->sin_addr, 4);
			*port[i] = ((const struct sockaddr_in *)
			    ss[i])->sin_port;
		} else {
			memcpy(addr[i], &((const struct sockaddr_in6 *)
			    ss[i])->sin6_addr, 16);
			*port[i] = ((const struct sockaddr_in6 *)
			    ss[i])->sin6_port;
		}
	}
	m->idiag_state = (uint8_t)state;
	m->idiag_uid = uid;
	m->idiag_inode = inode;
	m->id.idiag_cookie[0] = 0xcd;
}

/* The message with two attributes, as a real answer carries. */
static void
put_diag(struct reply *r, uint32_t seq, const struct inet_diag_msg *m)
{
	u_char	p[sizeof(*m) + 16];

	memcpy(p, m, sizeof(*m));
	/* INET_DIAG_SHUTDOWN (u8, padded) and INET_DIAG_MARK (u32). */
	memcpy(p + sizeof(*m), "\x05\x00\x08\x00\x00\x00\x00\x00"
	    "\x08\x00\x0f\x00\x00\x00\x00\x00", 16);
	put_msg(r, SOCK_DIAG_BY_FAMILY, seq, p, sizeof(p));
}

/* A reply of one answer about src -> dst. */
static void
one_diag(struct reply *r, const struct sockaddr_storage *src,
    const struct sockaddr_storage *dst, int state, uint32_t uid,
    uint32_t inode)
{
	struct inet_diag_msg	m;

	r->len = 0;
	fill_diag(&m, src, dst, state, uid, inode);
	put_diag(r, TEST_SEQ, &m);
}

static int
parse4(const struct reply *r, uint32_t *uid, int *error)
{
	return sockdiag_parse(r->b, r->len, &peer4, &local4, TEST_SEQ, uid,
	    error);
}

/*
 * What the kernel said when asked for 127.0.0.1:47022 -> 127.0.0.1:47021
 * (seq 42, as root), and again (seq 43) once that client had closed.
 */
static const u_char	real_found[] = {
	0x7c, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x2a, 0x00, 0x00, 0x00,
	0xce, 0x6a, 0x00, 0x00, 0x02, 0x01, 0x00, 0x00, 0xb7, 0xae, 0xb7, 0xad,
	0x7f, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x7f, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0xcd, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x1a, 0xac, 0x01, 0x00, 0x05, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x08, 0x00, 0x0f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x15, 0x00,
	0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x06, 0x00, 0x16, 0x00,
	0x52, 0x00, 0x00, 0x00,
};
static const u_char	real_closed[] = {
	0x60, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x2b, 0x00, 0x00, 0x00,
	0xce, 0x6a, 0x00, 0x00, 0x02, 0x05, 0x03, 0x00, 0xb7, 0xae, 0xb7, 0xad,
	0x7f, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x7f, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0xcd, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xea, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x0f, 0x00, 0x00, 0x00, 0x00, 0x00,
};

/* And the kernel's -ENOENT, echoing the request, with nothing there. */
static const u_char	real_enoent[] = {
	0x5c, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x2a, 0x00, 0x00, 0x00,
	0xf8, 0x44, 0x00, 0x00, 0xfe, 0xff, 0xff, 0xff, 0x48, 0x00, 0x00, 0x00,
	0x14, 0x00, 0x01, 0x00, 0x2a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x02, 0x06, 0x00, 0x00, 0x36, 0x0b, 0x00, 0x00, 0xb7, 0xae, 0xb7, 0xad,
	0x7f, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x7f, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
};

static void
test_request(void)
{
	struct nlmsghdr		 nlh;
	struct inet_diag_req_v2	 req;
	struct sockaddr_storage	 ll_peer, ll_local, unix_ss;
	u_char			 buf[SOCKDIAG_REQUEST_MAX], again[sizeof(buf)];
	int			 n, m;

	n = sockdiag_request(buf, sizeof(buf), &peer4, &local4, 7);
	memcpy(&nlh, buf, sizeof(nlh));
	memcpy(&req, buf + sizeof(nlh), sizeof(req));
	ok(n == (int)(sizeof(nlh) + sizeof(req)) && nlh.nlmsg_len ==
	    (uint32_t)n, "request: length %d", n);
	ok(nlh.nlmsg_type == SOCK_DIAG_BY_FAMILY &&
	    nlh.nlmsg_flags == NLM_F_REQUEST && nlh.nlmsg_seq == 7 &&
	    nlh.nlmsg_pid == 0, "request: an exact lookup, seq 7");
	ok(req.sdiag_family == AF_INET && req.sdiag_protocol == IPPROTO_TCP &&
	    req.idiag_ext == 0 && (req.idiag_states & 1U << ST_ESTABLISHED) &&
	    !(req.idiag_states & (1U << ST_LISTEN | 1U << ST_TIME_WAIT)),
	    "request: IPv4 TCP, established but not listening or time-wait");
	ok(req.id.idiag_sport == htons(47022) &&
	    req.id.idiag_dport == htons(47021) &&
	    req.id.idiag_src[0] == htonl(0x7f000001) &&
	    req.id.idiag_src[1] == 0 && req.id.idiag_dst[0] ==
	    htonl(0x7f000001) && req.id.idiag_if == 0,
	    "request: src is the peer 127.0.0.1:47022, dst us :47021");
	ok(req.id.idiag_cookie[0] == INET_DIAG_NOCOOKIE &&
	    req.id.idiag_cookie[1] == INET_DIAG_NOCOOKIE,
	    "request: no cookie");

	m = sockdiag_request(again, sizeof(again), &mpeer4, &mlocal4, 7);
	ok(m == n && memcmp(buf, again, (size_t)n) == 0,
	    "request: IPv4-mapped addresses ask as IPv4");

	n = sockdiag_request(buf, sizeof(buf), &peer6, &local6, 8);
	memcpy(&req, buf + sizeof(nlh), sizeof(req));
	ok(n > 0 && req.sdiag_family == AF_INET6 &&
	    memcmp(req.id.idiag_src, &in6addr_loopback, 16) == 0 &&
	    memcmp(req.id.idiag_dst, &in6addr_loopback, 16) == 0 &&
	    req.id.idiag_sport == htons(47022), "request: IPv6 ::1");
	test_addr(&ll_peer, "fe80::1", 50000, 0);
	test_addr(&ll_local, "fe80::2", 21, 3);
	n = sockdiag_request(buf, sizeof(buf), &ll_peer, &ll_local, 9);
	memcpy(&req, buf + sizeof(nlh), sizeof(req));
	ok(n > 0 && req.id.idiag_if == 3,
	    "request: a link-local connection names its interface");

	ok(sockdiag_request(buf, sizeof(buf), &peer4, &local6, 1) == -1,
	    "request: IPv4 to IPv6 rejected");
	ok(sockdiag_request(buf, sizeof(nlh) + sizeof(req) - 1, &peer4,
	    &local4, 1) == -1, "request: short buffer rejected");
	memset(&unix_ss, 0, sizeof(unix_ss));
	unix_ss.ss_family = AF_UNIX;
	ok(sockdiag_request(buf, sizeof(buf), &unix_ss, &unix_ss, 1) == -1,
	    "request: AF_UNIX rejected");
}

static void
test_parse_found(void)
{
	struct reply		r;
	struct inet_diag_msg	m;
	uint32_t		uid;
	int			error = 0, ret;

	one_diag(&r, &peer4, &local4, ST_ESTABLISHED, 1000, 5555);
	uid = 0;
	ok(parse4(&r, &uid, &error) == SOCKDIAG_FOUND && uid == 1000,
	    "parse: found, uid 1000");
	one_diag(&r, &peer6, &local6, ST_ESTABLISHED, 1001, 5555);
	ok(sockdiag_parse(r.b, r.len, &peer6, &local6, TEST_SEQ, &uid,
	    &error) == SOCKDIAG_FOUND && uid == 1001, "parse: IPv6 found");
	one_diag(&r, &mpeer4, &mlocal4, ST_ESTABLISHED, 1002, 5555);
	ok(parse4(&r, &uid, &error) == SOCKDIAG_FOUND && uid == 1002,
	    "parse: a dual-stack socket's IPv4 connection found");
	one_diag(&r, &peer4, &local4, ST_ESTABLISHED, 1003, 5555);
	ok(sockdiag_parse(r.b, r.len, &mpeer4, &mlocal4, TEST_SEQ, &uid,
	    &error) == SOCKDIAG_FOUND && uid == 1003,
	    "parse: asked IPv4-mapped, answered IPv4");
	one_diag(&r, &peer4, &local4, ST_FIN_WAIT2, 1004, 5555);
	ok(parse4(&r, &uid, &error) == SOCKDIAG_FOUND && uid == 1004,
	    "parse: a held socket after shutdown is found");

	one_diag(&r, &peer4, &local4, ST_ESTABLISHED, 1005, 5555);
	put_error(&r, TEST_SEQ, 0);
	ok(parse4(&r, &uid, &error) == SOCKDIAG_FOUND && uid == 1005,
	    "parse: found, then an acknowledgement");
	r.len = 0;
	put_msg(&r, NLMSG_NOOP, TEST_SEQ, "", 0);
	fill_diag(&m, &peer4, &local4, ST_ESTABLISHED, 9, 5555);
	put_diag(&r, TEST_SEQ + 1, &m);
	fill_diag(&m, &peer4, &local4, ST_ESTABLISHED, 1006, 5555);
	put_diag(&r, TEST_SEQ, &m);
	ok(parse4(&r, &uid, &error) == SOCKDIAG_FOUND && uid == 1006,
	    "parse: NOOP and another seq's answer skipped");

	uid = 77;
	ok(sockdiag_parse(real_found, sizeof(real_found), &peer4, &local4,
	    TEST_SEQ, &uid, &error) == SOCKDIAG_FOUND && uid == 0,
	    "parse: a real answer (root's socket)");
	uid = 77;
	ret = sockdiag_parse(real_closed, sizeof(real_closed), &peer4,
	    &local4, TEST_SEQ + 1, &uid, &error);
	ok(ret == SOCKDIAG_UNOWNED && uid == 77,
	    "parse: a real answer once closed (FIN_WAIT2 minisocket): "
	    "unowned, uid untouched");
	ret = sockdiag_parse(real_enoent, sizeof(real_enoent), &peer4,
	    &local4, TEST_SEQ, &uid, &error);
	ok(ret == SOCKDIAG_NOSOCK && uid == 77,
	    "parse: the kernel's real -ENOENT");
}

static void
test_parse_answers(void)
{
	struct reply		r;
	struct sockaddr_storage	any;
	uint32_t		uid = 77;
	int			error = 0;

	r.len = 0;
	put_error(&r, TEST_SEQ, -ENOENT);
	ok(parse4(&r, &uid, &error) == SOCKDIAG_NOSOCK && uid == 77,
	    "parse: -ENOENT is no such socket");
	r.len = 0;
	put_error(&r, TEST_SEQ, -EPERM);
	ok(parse4(&r, &uid, &error) == SOCKDIAG_ERRNO && error == EPERM,
	    "parse: -EPERM is an error, errno EPERM");
	r.len = 0;
	put_error(&r, TEST_SEQ, 0);
	ok(parse4(&r, &uid, &error) == SOCKDIAG_PENDING,
	    "parse: an acknowledgement alone is no answer yet");
	r.len = 0;
	put_msg(&r, NLMSG_DONE, TEST_SEQ, "\0\0\0\0", 4);
	ok(parse4(&r, &uid, &error) == SOCKDIAG_NOSOCK,
	    "parse: DONE alone is no such socket");
	r.len = 0;
	put_msg(&r, NLMSG_DONE, TEST_SEQ, "", 0);
	ok(parse4(&r, &uid, &error) == SOCKDIAG_NOSOCK,
	    "parse: DONE without payload");
	r.len = 0;
	error = -EINVAL;
	put_msg(&r, NLMSG_DONE, TEST_SEQ, &error, sizeof(error));
	ok(parse4(&r, &uid, &error) == SOCKDIAG_ERRNO && error == EINVAL,
	    "parse: DONE carrying -EINVAL");
	r.len = 0;
	put_error(&r, TEST_SEQ + 1, -EPERM);
	ok(parse4(&r, &uid, &error) == SOCKDIAG_PENDING,
	    "parse: another seq's error skipped");

	/* The exact lookup's fallback: the listener on the source port. */
	test_addr(&any, "0.0.0.0", 0, 0);
	one_diag(&r, &peer4, &any, ST_LISTEN, 1000, 5555);
	ok(parse4(&r, &uid, &error) == SOCKDIAG_NOSOCK && uid == 77,
	    "parse: a listener's answer is not our socket");
	one_diag(&r, &local4, &peer4, ST_ESTABLISHED, 1000, 5555);
	ok(parse4(&r, &uid, &error) == SOCKDIAG_NOSOCK,
	    "parse: our own end's answer is not the peer's");
	one_diag(&r, &peer4, &local4, ST_TIME_WAIT, 0, 0);
	ok(parse4(&r, &uid, &error) == SOCKDIAG_UNOWNED,
	    "parse: TIME_WAIT is unowned");
	one_diag(&r, &peer4, &local4, ST_SYN_RECV, 0, 0);
	ok(parse4(&r, &uid, &error) == SOCKDIAG_UNOWNED,
	    "parse: a request socket is unowned");
	one_diag(&r, &peer4, &local4, ST_SYN_RECV, 1000, 5555);
	ok(parse4(&r, &uid, &error) == SOCKDIAG_UNOWNED,
	    "parse: SYN_RECV is unowned even with an inode");
	one_diag(&r, &peer4, &local4, ST_ESTABLISHED, 1000, 0);
	ok(parse4(&r, &uid, &error) == SOCKDIAG_UNOWNED && uid == 77,
	    "parse: an orphan (inode 0) is unowned");
	one_diag(&r, &peer4, &local4, 200, 1000, 5555);
	ok(parse4(&r, &uid, &error) == SOCKDIAG_UNOWNED,
	    "parse: an unknown state is unowned");
}

/* Every proper prefix of buf: never found, each result in allowed. */
static int
prefixes_rejected(const u_char *buf, size_t len, int also)
{
	uint32_t	uid;
	size_t		i;
	int		error, r;

	for (i = 0; i < len; i++) {
		r = sockdiag_parse(buf, i, &peer4, &local4, TEST_SEQ, &uid,
		    &error);
		if (r != -1 && r != also) {
			printf("# prefix of %zu bytes: %d\n", i, r);
			return 0;
		}
	}
	return 1;
}

static void
set_u32(struct reply *r, size_t off, uint32_t v)
{
	memcpy(r->b + off, &v, sizeof(v));
}

static void
test_parse_malformed(void)
{
	struct reply		r, two;
	struct inet_diag_msg	m;
	uint32_t		uid = 77;
	int			error = 0;

	one_diag(&r, &peer4, &local4, ST_ESTABLISHED, 1000, 5555);
	ok(sockdiag_parse(r.b, 0, &peer4, &local4, TEST_SEQ, &uid,
	    &error) == -1, "parse: empty datagram rejected");
	set_u32(&r, 0, (uint32_t)r.len + 4);
	ok(parse4(&r, &uid, &error) == -1, "parse: nlmsg_len past the end");
	set_u32(&r, 0, 0xffffffff);
	ok(parse4(&r, &uid, &error) == -1, "parse: nlmsg_len 0xffffffff");
	set_u32(&r, 0, 15);
	ok(parse4(&r, &uid, &error) == -1, "parse: nlmsg_len below a header");
	r.len = 0;
	fill_diag(&m, &peer4, &local4, ST_ESTABLISHED, 1000, 5555);
	put_msg(&r, SOCK_DIAG_BY_FAMILY, TEST_SEQ, &m, sizeof(m) - 1);
	ok(parse4(&r, &uid, &error) == -1, "parse: inet_diag_msg too short");
	one_diag(&r, &peer4, &local4, ST_ESTABLISHED, 1000, 5555);
	r.len += 3;
	ok(parse4(&r, &uid, &error) == -1, "parse: 3 bytes after the last");
	one_diag(&r, &peer4, &local4, ST_ESTABLISHED, 1000, 5555);
	r.b[16] = 7;
	ok(parse4(&r, &uid, &error) == -1, "parse: family 7 rejected");
	one_diag(&r, &peer4, &local4, ST_ESTABLISHED, 1000, 5555);
	r.b[16 + sizeof(m)] = 2;
	ok(parse4(&r, &uid, &error) == -1, "parse: attribute of length 2");
	one_diag(&r, &peer4, &local4, ST_ESTABLISHED, 1000, 5555);
	r.b[16 + sizeof(m) + 8] = 9;
	ok(parse4(&r, &uid, &error) == -1, "parse: attribute past the end");
	one_diag(&r, &peer4, &local4, ST_ESTABLISHED, 1000, 5555);
	r.b[4] = 99;
	ok(parse4(&r, &uid, &error) == -1, "parse: unknown type rejected");
	r.len = 0;
	put_error(&r, TEST_SEQ, 5);
	ok(parse4(&r, &uid, &error) == -1, "parse: a positive error");
	r.len = 0;
	put_error(&r, TEST_SEQ, -5000);
	ok(parse4(&r, &uid, &error) == -1, "parse: error beyond MAX_ERRNO");
	r.len = 0;
	put_msg(&r, NLMSG_ERROR, TEST_SEQ, "\xfe\xff\xff\xff", 4);
	ok(parse4(&r, &uid, &error) == -1, "parse: nlmsgerr too short");

	one_diag(&r, &peer4, &local4, ST_ESTABLISHED, 1000, 5555);
	put_diag(&r, TEST_SEQ, &m);
	ok(parse4(&r, &uid, &error) == -1, "parse: two answers rejected");
	one_diag(&r, &peer4, &local4, ST_ESTABLISHED, 1000, 5555);
	put_error(&r, TEST_SEQ, -ENOENT);
	ok(parse4(&r, &uid, &error) == -1, "parse: found, then an error");
	ok(uid == 77 && error == 0, "parse: uid and errno untouched");

	ok(prefixes_rejected(real_found, sizeof(real_found), -1),
	    "parse: all %zu prefixes of a real answer rejected",
	    sizeof(real_found));
	two.len = 0;
	put_diag(&two, TEST_SEQ + 1, &m);
	put_diag(&two, TEST_SEQ, &m);
	ok(prefixes_rejected(two.b, two.len, SOCKDIAG_PENDING),
	    "parse: all %zu prefixes of two messages rejected or pending",
	    two.len);
}

/* Lines of this machine's /proc/net/tcp and tcp6, ports 47022 -> 47021. */
static const char	proc_client[] = " 849: 0100007F:B7AE 0100007F:B7AD "
    "01 00000000:00000000 00:00000000 00000000  1000        0 109594 2 "
    "00000000771195bc 20 0 0 10 -1                    ";
static const char	proc_server[] = " 144: 0100007F:B7AD 0100007F:B7AE "
    "01 00000000:00000000 00:00000000 00000000     0        0 109595 1 "
    "00000000037f7e4a 20 0 0 10 -1                    ";
static const char	proc_listen[] = "  10: 0100007F:B7AD 00000000:0000 "
    "0A 00000000:00000000 00:00000000 00000000     0        0 109593 1 "
    "000000005da6d118 100 0 0 10 0                    ";
static const char	proc_fin_wait2[] = " 852: 0100007F:B7AE "
    "0100007F:B7AD 05 00000000:00000000 03:00001766 00000000     0        "
    "0 0 3 00000000616675c3                                      ";
static const char	proc_time_wait[] = " 850: 0100007F:B7AE "
    "0100007F:B7AD 06 00000000:00000000 03:0000176F 00000000     0        "
    "0 0 3 00000000616675c3                                      ";
static const char	proc_v6[] = "   2: 000000000000000000000000010000"
    "00:B7AE 00000000000000000000000001000000:B7AD 01 00000000:00000000 "
    "00:00000000 00000000  1001        0 109625 2 00000000096dee13 20 0 0 "
    "10 -1\n";
static const char	proc_mapped[] = "   1: 0000000000000000FFFF00000100"
    "007F:B7AE 0000000000000000FFFF00000100007F:B7AD 01 00000000:00000000 "
    "00:00000000 00000000  1002        0 121795 2 00000000096dee13 20 0 0 "
    "10 -1";
static const char	proc_header[] = "  sl  local_address rem_address   "
    "st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode";

static int
line4(const char *line, uint32_t *uid)
{
	return procnet_parse_line(line, strlen(line), &peer4, &local4, uid);
}

/* The line with its first "from" replaced by "to". */
static int
edited4(const char *line, const char *from, const char *to, uint32_t *uid)
{
	char		 buf[PROCNET_LINE_MAX * 2];
	const char	*at = strstr(line, from);
	size_t		 pre;

	if (at == NULL)
		abort();
	pre = (size_t)(at - line);
	snprintf(buf, sizeof(buf), "%.*s%s%s", (int)pre, line, to,
	    at + strlen(from));
	return line4(buf, uid);
}

static void
test_procnet(void)
{
	char		long_line[PROCNET_LINE_MAX + 2];
	const char	*inode;
	uint32_t	uid = 77;
	size_t		i, bad;

	ok(line4(proc_client, &uid) == SOCKDIAG_FOUND && uid == 1000,
	    "procnet: the client's line, uid 1000");
	uid = 77;
	ok(line4(proc_server, &uid) == SOCKDIAG_NOSOCK && uid == 77,
	    "procnet: our own end is another socket");
	ok(line4(proc_listen, &uid) == SOCKDIAG_NOSOCK,
	    "procnet: the listener is another socket");
	ok(line4(proc_fin_wait2, &uid) == SOCKDIAG_UNOWNED,
	    "procnet: a FIN_WAIT2 minisocket is unowned");
	ok(line4(proc_time_wait, &uid) == SOCKDIAG_UNOWNED,
	    "procnet: TIME_WAIT is unowned");
	ok(procnet_parse_line(proc_v6, strlen(proc_v6), &peer6, &local6,
	    &uid) == SOCKDIAG_FOUND && uid == 1001,
	    "procnet: tcp6 ::1, with its newline");
	ok(line4(proc_v6, &uid) == SOCKDIAG_NOSOCK,
	    "procnet: tcp6 ::1 is not 127.0.0.1");
	ok(line4(proc_mapped, &uid) == SOCKDIAG_FOUND && uid == 1002,
	    "procnet: tcp6's IPv4-mapped line is the IPv4 socket");
	ok(procnet_parse_line(proc_mapped, strlen(proc_mapped), &mpeer4,
	    &mlocal4, &uid) == SOCKDIAG_FOUND,
	    "procnet: asked IPv4-mapped too");
	ok(line4(proc_header, &uid) == -1, "procnet: the header rejected");

	ok(edited4(proc_client, "  1000 ", " 4294967295 ", &uid) ==
	    SOCKDIAG_FOUND && uid == 4294967295U, "procnet: uid 2^32-1");
	ok(edited4(proc_client, "  1000 ", " 4294967296 ", &uid) == -1,
	    "procnet: uid 2^32 rejected");
	ok(edited4(proc_client, "0100007F:B7AE", "0100007G:B7AE", &uid) ==
	    -1, "procnet: not hex rejected");
	ok(edited4(proc_client, "0100007F:B7AE", "100007F:B7AE", &uid) ==
	    -1, "procnet: 7-digit address rejected");
	ok(edited4(proc_client, ":B7AE", ":0B7AE", &uid) == -1,
	    "procnet: 5-digit port rejected");
	ok(edited4(proc_client, "0100007F:B7AD",
	    "00000000000000000000000001000000:B7AD", &uid) == -1,
	    "procnet: IPv4 to IPv6 rejected");
	ok(edited4(proc_client, " 849:", " 849", &uid) == -1,
	    "procnet: sl without its colon rejected");
	ok(edited4(proc_client, " 01 ", " 1 ", &uid) == -1,
	    "procnet: 1-digit state rejected");
	memcpy(long_line, proc_client, sizeof(proc_client));
	long_line[strstr(proc_client, " 109594 ") + 4 - proc_client] = '\0';
	ok(procnet_parse_line(long_line, strlen(proc_client), &peer4,
	    &local4, &uid) == -1, "procnet: a NUL in the inode rejected");
	ok(edited4(proc_client, " 0 109594", " -1 109594", &uid) ==
	    SOCKDIAG_FOUND, "procnet: a negative timeout is fine");
	ok(edited4(proc_client, " 109594 ", " 1O9594 ", &uid) == -1,
	    "procnet: a letter in the inode rejected");
	memset(long_line, ' ', sizeof(long_line));
	memcpy(long_line, proc_client, strlen(proc_client));
	ok(procnet_parse_line(long_line, sizeof(long_line), &peer4, &local4,
	    &uid) == -1, "procnet: a line over %d bytes rejected",
	    PROCNET_LINE_MAX);

	/* Cut before the inode, a line lacks a field. */
	inode = strstr(proc_client, " 109594 ") + 1;
	for (i = 0, bad = 0; proc_client + i <= inode; i++)
		if (procnet_parse_line(proc_client, i, &peer4, &local4,
		    &uid) != -1)
			bad++;
	ok(bad == 0, "procnet: all %zu cuts before the inode rejected", i);
}

/* A connection over loopback: the client's socket and our accepted one. */
struct conn {
	int			lfd, cfd, afd;
	struct sockaddr_storage	local, peer;	/* as afd sees them */
};

static void
conn_close(struct conn *c)
{
	if (c->cfd != -1)
		close(c->cfd);
	if (c->afd != -1)
		close(c->afd);
	if (c->lfd != -1)
		close(c->lfd);
	c->cfd = c->afd = c->lfd = -1;
}

static int
conn_listen(struct conn *c, const char *laddr, uint32_t scope, int v6only)
{
	struct sockaddr_storage	ss;
	socklen_t		sl;
	int			family;

	test_addr(&ss, laddr, 0, scope);
	family = ss.ss_family;
	sl = family == AF_INET ? sizeof(struct sockaddr_in) :
	    sizeof(struct sockaddr_in6);
	if ((c->lfd = socket(family, SOCK_STREAM, 0)) == -1 ||
	    (family == AF_INET6 && setsockopt(c->lfd, IPPROTO_IPV6,
	    IPV6_V6ONLY, &v6only, sizeof(v6only)) == -1) ||
	    bind(c->lfd, (struct sockaddr *)&ss, sl) == -1 ||
	    listen(c->lfd, 4) == -1)
		return -1;
	return 0;
}

/* The client's half, in this process or a child. */
static int
conn_connect(const struct conn *c, const char *caddr, uint32_t scope)
{
	struct sockaddr_storage	lss, ss;
	socklen_t		sl = sizeof(lss);
	int			fd;

	if (getsockname(c->lfd, (struct sockaddr *)&lss, &sl) == -1)
		return -1;
	test_addr(&ss, caddr, ntohs(lss.ss_family == AF_INET ?
	    ((struct sockaddr_in *)&lss)->sin_port :
	    ((struct sockaddr_in6 *)&lss)->sin6_port), scope);
	sl = ss.ss_family == AF_INET ? sizeof(struct sockaddr_in) :
	    sizeof(struct sockaddr_in6);
	if ((fd = socket(ss.ss_family, SOCK_STREAM, 0)) == -1)
		return -1;
	if (connect(fd, (struct sockaddr *)&ss, sl) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

static int
conn_accept(struct conn *c)
{
	socklen_t	sl;

	if ((c->afd = accept(c->lfd, NULL, NULL)) == -1)
		return -1;
	sl = sizeof(c->local);
	if (getsockname(c->afd, (struct sockaddr *)&c->local, &sl) == -1)
		return -1;
	sl = sizeof(c->peer);
	return getpeername(c->afd, (struct sockaddr *)&c->peer, &sl);
}

static int
conn_open(struct conn *c, const char *laddr, int v6only, const char *caddr,
    uint32_t scope)
{
	c->lfd = c->cfd = c->afd = -1;
	if (conn_listen(c, laddr, scope, v6only) == -1 ||
	    (c->cfd = conn_connect(c, caddr, scope)) == -1 ||
	    conn_accept(c) == -1) {
		conn_close(c);
		return -1;
	}
	return 0;
}

/* peer_uid() and each of its halves must say want. */
static void
check_owner(const struct conn *c, uid_t want, const char *name)
{
	char	err[PEERUID_ERR_MAX];
	uid_t	uid;
	int	r;

	uid = (uid_t)-1;
	r = peer_uid_netlink(&c->local, &c->peer, &uid, err, sizeof(err));
	ok(r == 0 && uid == want, "live %s: sock_diag says uid %d", name,
	    r == 0 ? (int)uid : -1);
	if (r != 0)
		printf("# %s\n", err);
	uid = (uid_t)-1;
	r = peer_uid_procnet(&c->local, &c->peer, &uid, err, sizeof(err));
	ok(r == 0 && uid == want, "live %s: /proc says uid %d", name,
	    r == 0 ? (int)uid : -1);
	if (r != 0)
		printf("# %s\n", err);
	uid = (uid_t)-1;
	r = peer_uid(&c->local, &c->peer, &uid, err, sizeof(err));
	ok(r == 0 && uid == want, "live %s: peer_uid says uid %d", name,
	    r == 0 ? (int)uid : -1);
}

static void
live_case(const char *name, const char *laddr, int v6only,
    const char *caddr, uint32_t scope)
{
	struct conn	c;
	char		why[128];

	if (conn_open(&c, laddr, v6only, caddr, scope) == -1) {
		snprintf(why, sizeof(why), "no connection: %s",
		    strerror(errno));
		skip(name, why);
		skip(name, why);
		skip(name, why);
		return;
	}
	check_owner(&c, getuid(), name);
	conn_close(&c);
}

/* A link-local address of an interface, if there is one. */
static int
find_link_local(char *buf, size_t sz, uint32_t *scope)
{
	struct ifaddrs		*ifap, *ifa;
	struct sockaddr_in6	*sin6;
	int			 found = 0;

	if (getifaddrs(&ifap) == -1)
		return 0;
	for (ifa = ifap; ifa != NULL && !found; ifa = ifa->ifa_next) {
		if (ifa->ifa_addr == NULL ||
		    ifa->ifa_addr->sa_family != AF_INET6)
			continue;
		sin6 = (struct sockaddr_in6 *)ifa->ifa_addr;
		if (!IN6_IS_ADDR_LINKLOCAL(&sin6->sin6_addr))
			continue;
		inet_ntop(AF_INET6, &sin6->sin6_addr, buf, (socklen_t)sz);
		*scope = sin6->sin6_scope_id;
		found = 1;
	}
	freeifaddrs(ifap);
	return found;
}

static void
test_live(void)
{
	char		ll[INET6_ADDRSTRLEN];
	uint32_t	scope;

	live_case("IPv4 127.0.0.1", "127.0.0.1", 0, "127.0.0.1", 0);
	live_case("IPv6 ::1", "::1", 1, "::1", 0);
	live_case("IPv4 client at a dual-stack listener", "::", 0,
	    "127.0.0.1", 0);
	live_case("IPv6 socket to ::ffff:127.0.0.1", "127.0.0.1", 0,
	    "::ffff:127.0.0.1", 0);
	if (find_link_local(ll, sizeof(ll), &scope))
		live_case("IPv6 link-local", ll, 1, ll, scope);
	else {
		skip("IPv6 link-local", "no link-local address");
		skip("IPv6 link-local", "no link-local address");
		skip("IPv6 link-local", "no link-local address");
	}
}

/* Wait for the client's FIN, so its socket is an orphan. */
static int
wait_eof(int fd)
{
	char	byte;

	return read(fd, &byte, 1) == 0 ? 0 : -1;
}

static void
test_live_refusals(void)
{
	struct conn		c;
	struct sockaddr_storage	lss, nowhere;
	socklen_t		sl = sizeof(lss);
	char			err[PEERUID_ERR_MAX];
	uid_t			uid = 4242;
	int			r;

	if (conn_open(&c, "127.0.0.1", 0, "127.0.0.1", 0) == -1) {
		skip("live refusals", strerror(errno));
		return;
	}
	close(c.cfd);
	c.cfd = -1;
	r = wait_eof(c.afd);
	err[0] = '\0';
	ok(r == 0 && peer_uid(&c.local, &c.peer, &uid, err, sizeof(err)) ==
	    -1 && uid == 4242 && strstr(err, "no process holds") != NULL,
	    "live: a client that has closed is refused");
	printf("# %s\n", err);

	/* The kernel's lookup falls back to the listener on that port. */
	getsockname(c.lfd, (struct sockaddr *)&lss, &sl);
	test_addr(&nowhere, "127.0.0.1", 1, 0);
	err[0] = '\0';
	ok(peer_uid(&nowhere, &lss, &uid, err, sizeof(err)) == -1 &&
	    uid == 4242 && strstr(err, "no such socket") != NULL,
	    "live: a listener is not taken for the client");
	printf("# %s\n", err);
	conn_close(&c);
}

/* The client, as another user: connect, then wait to be let go. */
static void
other_client(const struct conn *c, int ready, int done)
{
	gid_t	gid = OTHER_UID;
	char	byte = 0;
	int	fd;

	if (setgroups(1, &gid) == -1 || setgid(OTHER_UID) == -1 ||
	    setuid(OTHER_UID) == -1 ||
	    (fd = conn_connect(c, "127.0.0.1", 0)) == -1)
		_exit(1);
	if (write(ready, &byte, 1) != 1 || read(done, &byte, 1) == -1)
		_exit(1);
	close(fd);
	_exit(0);
}

static void
test_live_other_user(void)
{
	struct conn	c;
	pid_t		pid;
	int		ready[2], done[2], status;
	char		byte;

	if (getuid() != 0) {
		skip("live another user", "not root");
		return;
	}
	c.cfd = c.afd = -1;
	if (conn_listen(&c, "127.0.0.1", 0, 0) == -1 || pipe(ready) == -1 ||
	    pipe(done) == -1 || (pid = fork()) == -1) {
		skip("live another user", strerror(errno));
		return;
	}
	if (pid == 0) {
		/* Its read of done ends when the parent closes done[1]. */
		close(ready[0]);
		close(done[1]);
		other_client(&c, ready[1], done[0]);
	}
	close(ready[1]);
	close(done[0]);
	if (read(ready[0], &byte, 1) != 1 || conn_accept(&c) == -1)
		ok(0, "live another user: the client connected");
	else
		check_owner(&c, OTHER_UID, "another user (uid 65534)");
	close(done[1]);
	close(ready[0]);
	waitpid(pid, &status, 0);
	conn_close(&c);
}

static int
is_local(const char *addr)
{
	struct sockaddr_storage	ss;

	test_addr(&ss, addr, 21, 0);
	return addr_is_local(&ss);
}

static void
test_addr_is_local(void)
{
	struct ifaddrs	*ifap, *ifa;
	int		 n = 0, bad = 0;

	ok(is_local("127.0.0.1") == 1 && is_local("127.1.2.3") == 1,
	    "local: 127/8");
	ok(is_local("::1") == 1 && is_local("::ffff:127.0.0.1") == 1,
	    "local: ::1 and ::ffff:127.0.0.1");
	ok(is_local("0.0.0.0") == 1 && is_local("::") == 1,
	    "local: the unspecified addresses");
	ok(is_local("198.51.100.7") == 0 && is_local("2001:db8::7") == 0 &&
	    is_local("::ffff:198.51.100.7") == 0,
	    "local: documentation addresses are not");
	if (getifaddrs(&ifap) == -1) {
		skip("local: every interface address", strerror(errno));
		return;
	}
	for (ifa = ifap; ifa != NULL; ifa = ifa->ifa_next) {
		if (ifa->ifa_addr == NULL ||
		    (ifa->ifa_addr->sa_family != AF_INET &&
		    ifa->ifa_addr->sa_family != AF_INET6))
			continue;
		n++;
		if (addr_is_local((struct sockaddr_storage *)
		    ifa->ifa_addr) != 1)
			bad++;
	}
	freeifaddrs(ifap);
	ok(n > 0 && bad == 0, "local: all %d interface addresses", n);
}

/*
 * sock_held(), as ftpfwd uses it: our socket handed to another process
 * (a child here, the master there), which writes to it and closes it.
 * Held while the child has it; not held once it has closed it, and the
 * client then reads every byte and the end.
 */
static void
test_held(void)
{
	struct conn	c;
	char		buf[4096], want[3000];
	ssize_t		n;
	size_t		got = 0;
	pid_t		pid;
	int		go[2], status, held;

	peer_uid_probe();
	memset(want, 'x', sizeof(want));
	if (!sock_held_usable()) {
		/* ftpfwd then hands the socket over as before. */
		for (n = 0; n < 3; n++)
			skip("sock_held", "no NETLINK_SOCK_DIAG here");
		return;
	}
	if (conn_open(&c, "127.0.0.1", 0, "127.0.0.1", 0) == -1 ||
	    pipe(go) == -1) {
		for (n = 0; n < 3; n++)
			skip("sock_held", "no connection");
		return;
	}
	if ((pid = fork()) == -1) {
		ok(0, "sock_held: fork: %s", strerror(errno));
		conn_close(&c);
		return;
	}
	if (pid == 0) {
		/* The other process: wait for the word, write, close. */
		close(go[1]);
		if (read(go[0], buf, 1) == 1 &&
		    write(c.afd, want, sizeof(want)) == (ssize_t)sizeof(want))
			_exit(0);
		_exit(1);
	}
	close(go[0]);
	close(c.afd);		/* handed over: the child's alone */
	c.afd = -1;
	held = sock_held(&c.local, &c.peer);
	ok(held == 1, "sock_held: 1 while another process holds it (%d)",
	    held);
	if (write(go[1], "w", 1) != 1 || waitpid(pid, &status, 0) != pid)
		status = -1;
	close(go[1]);
	held = sock_held(&c.local, &c.peer);
	ok(status == 0 && held == 0, "sock_held: 0 once that process has "
	    "written and closed it (%d)", held);
	while ((n = read(c.cfd, buf, sizeof(buf))) > 0)
		got += (size_t)n;
	ok(n == 0 && got == sizeof(want), "the client read all %zu bytes "
	    "and then the end", got);
	conn_close(&c);
}

int
main(void)
{
	/* A hung live test must not hold the suite's lock for ever. */
	alarm(TEST_TIMEOUT);
	test_addr(&peer4, "127.0.0.1", 47022, 0);
	test_addr(&local4, "127.0.0.1", 47021, 0);
	test_addr(&peer6, "::1", 47022, 0);
	test_addr(&local6, "::1", 47021, 0);
	test_addr(&mpeer4, "::ffff:127.0.0.1", 47022, 0);
	test_addr(&mlocal4, "::ffff:127.0.0.1", 47021, 0);

	test_request();
	test_parse_found();
	test_parse_answers();
	test_parse_malformed();
	test_procnet();
	test_live();
	test_live_refusals();
	test_live_other_user();
	test_addr_is_local();
	test_held();
	printf("1..%d\n", ntest);
	return nfail != 0;
}
