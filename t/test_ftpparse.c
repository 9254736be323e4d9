/*
 * Unit tests of ftpparse.c and of the mux reply decoder, in TAP.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdio.h>
#include <string.h>

#include "fifo.h"
#include "ftpparse.h"
#include "ssh_mux.h"

static int	ntest, nfail;

static void
ok(int cond, const char *what, const char *input)
{
	char	esc[256];

	ftp_escape(esc, sizeof(esc), input, strlen(input));
	ntest++;
	if (!cond)
		nfail++;
	printf("%sok %d - %s \"%s\"\n", cond ? "" : "not ", ntest, what, esc);
}

static const char *
fmt_addr(const struct sockaddr_storage *ss, char *buf, size_t sz)
{
	char	host[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)ss;
		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		snprintf(buf, sz, "%s %u", host, ntohs(sin->sin_port));
	} else {
		const struct sockaddr_in6 *sin6 = (const void *)ss;
		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		snprintf(buf, sz, "%s %u", host, ntohs(sin6->sin6_port));
	}
	return buf;
}

static const struct {
	const char	*in;
	const char	*want;	/* NULL: must be rejected */
} port_cases[] = {
	{ "127,0,0,1,4,1", "127.0.0.1 1025" },
	{ "10,1,2,3,255,255", "10.1.2.3 65535" },
	{ "0,0,0,0,0,1", "0.0.0.0 1" },
	{ "127,0,0,1,0,0", NULL },		/* port 0 */
	{ "256,0,0,1,4,1", NULL },		/* octet > 255 */
	{ "127,0,0,1,256,1", NULL },
	{ "127,0,0,1,4", NULL },		/* missing field */
	{ "127,0,0,1,4,1,7", NULL },		/* extra field */
	{ "127,0,0,1,4,", NULL },
	{ ",127,0,0,1,4", NULL },
	{ "127,0,0,1,+4,1", NULL },		/* sign */
	{ "127,0,0,1,-4,1", NULL },
	{ "127, 0,0,1,4,1", NULL },		/* space */
	{ "127,0,0,1,4,1 ", NULL },
	{ "127,00,0,1,4,1", NULL },		/* leading zero */
	{ "127,0,0,1,4,99999999999999999999", NULL },	/* overflow */
	{ "127,0,0,1,4,a", NULL },
	{ "", NULL },
	{ "127.0.0.1,4,1", NULL },
};

static const struct {
	const char	*in;
	const char	*want;	/* NULL: malformed; "522": protocol */
} eprt_cases[] = {
	{ "|1|127.0.0.1|2121|", "127.0.0.1 2121" },
	{ "|2|::1|2121|", "::1 2121" },
	{ "|2|fe80::1:2|65535|", "fe80::1:2 65535" },
	{ "!1!10.0.0.1!1024!", "10.0.0.1 1024" },
	{ "|3|127.0.0.1|2121|", "522" },	/* unknown family */
	{ "|1|::1|2121|", NULL },		/* mismatched family */
	{ "|2|127.0.0.1|2121|", NULL },
	{ "|1|127.0.0.1|0|", NULL },
	{ "|1|127.0.0.1|65536|", NULL },
	{ "|1|127.0.0.1|2121", NULL },		/* missing delimiter */
	{ "|1|127.0.0.1|2121||", NULL },	/* extra delimiter */
	{ "|1|127.0.0.1!2121|", NULL },		/* wrong delimiter */
	{ "1|127.0.0.1|2121|1", NULL },		/* digit delimiter */
	{ "|1||2121|", NULL },
	{ "|2|::1::2|2121|", NULL },		/* malformed IPv6 */
	{ "|2|[::1]|2121|", NULL },
	{ "|1|127.0.0.1|+21|", NULL },
	{ "|01|127.0.0.1|2121|", NULL },
	{ "| 1|127.0.0.1|2121|", NULL },
	{ "", NULL },
	{ "|", NULL },
};

static const struct {
	const char	*in;
	const char	*want;
} r227_cases[] = {
	{ "227 Entering Passive Mode (127,0,0,1,200,10).",
	    "127.0.0.1 51210" },
	{ "227 Entering Passive Mode (127,0,0,1,200,10)", "127.0.0.1 51210" },
	{ "227 Entering Passive Mode 127,0,0,1,200,10", "127.0.0.1 51210" },
	{ "227 =127,0,0,1,200,10", "127.0.0.1 51210" },
	{ "227 ok (10,0,0,5,4,1)", "10.0.0.5 1025" },
	{ "227-Entering\r\n227 Passive Mode (127,0,0,1,4,1).",
	    "127.0.0.1 1025" },
	{ "227 Entering Passive Mode (127,0,0,1,0,0).", NULL },
	{ "227 Entering Passive Mode (999,0,0,1,4,1).", NULL },
	{ "227 Entering Passive Mode (127,0,0,1,4).", NULL },
	{ "227 garbage", NULL },
	{ "228 Entering Passive Mode (127,0,0,1,4,1).", NULL },
	{ "227", NULL },
	{ "", NULL },
};

static const struct {
	const char	*in;
	int		 want;	/* -1: rejected */
} r229_cases[] = {
	{ "229 Entering Extended Passive Mode (|||6446|)", 6446 },
	{ "229 Entering Extended Passive Mode (!!!1025!)", 1025 },
	{ "229 ok (|||65535|).", 65535 },
	{ "229 Entering Extended Passive Mode (|||0|)", -1 },
	{ "229 Entering Extended Passive Mode (|||65536|)", -1 },
	{ "229 Entering Extended Passive Mode (||6446|)", -1 },
	{ "229 Entering Extended Passive Mode (|!|6446|)", -1 },
	{ "229 Entering Extended Passive Mode (|||6446|", -1 },
	{ "229 Entering Extended Passive Mode (|||6446)", -1 },
	{ "229 Entering Extended Passive Mode (|||-1|)", -1 },
	{ "229 Entering Extended Passive Mode", -1 },
	{ "227 Entering Extended Passive Mode (|||6446|)", -1 },
	{ "229 (", -1 },
};

static void
test_cmd(void)
{
	static const struct {
		const char	*in;
		enum ftp_cmd	 cmd;
		const char	*verb;
		const char	*arg;
	} cases[] = {
		{ "PORT 1,2,3,4,5,6", FTP_CMD_PORT, "PORT", "1,2,3,4,5,6" },
		{ "port 1,2", FTP_CMD_PORT, "PORT", "1,2" },
		{ "EPSV", FTP_CMD_EPSV, "EPSV", "" },
		{ "EPSV ALL", FTP_CMD_EPSV, "EPSV", "ALL" },
		{ "RETR a b", FTP_CMD_TRANSFER, "RETR", "a b" },
		{ "\xff\xf4\xff\xf2" "ABOR", FTP_CMD_ABOR, "ABOR", "" },
		{ "\xff\xf4\xff" "ABOR", FTP_CMD_OTHER, NULL, NULL },
		{ "NOOP", FTP_CMD_OTHER, "NOOP", "" },
		{ "auth TLS", FTP_CMD_AUTH, "AUTH", "TLS" },
		{ "PASS secret", FTP_CMD_PASS, "PASS", "secret" },
	};
	static const char	*bad[] = { "", " PORT", "P0RT 1", "TOOLONGVERB",
	    "PORT\t1", "\xff" };
	enum ftp_cmd		 cmd;
	char			 verb[FTP_VERB_MAX + 1];
	size_t			 i, off, len;
	int			 r;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		len = strlen(cases[i].in);
		r = ftp_cmd_parse(cases[i].in, len, &cmd, verb, sizeof(verb),
		    &off);
		if (cases[i].verb == NULL) {
			/* IAC then a lone IAC eats the A: not ABOR. */
			ok(r == -1 || cmd != FTP_CMD_ABOR,
			    "command not mistaken", cases[i].in);
			continue;
		}
		ok(r == 0 && cmd == cases[i].cmd &&
		    strcmp(verb, cases[i].verb) == 0 &&
		    strlen(cases[i].arg) == len - off &&
		    memcmp(cases[i].in + off, cases[i].arg, len - off) == 0,
		    "command", cases[i].in);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ok(ftp_cmd_parse(bad[i], strlen(bad[i]), &cmd, verb,
		    sizeof(verb), &off) == -1, "command rejected", bad[i]);
}

static void
test_addresses(void)
{
	struct sockaddr_storage	ss;
	char			buf[128];
	uint16_t		port;
	size_t			i;
	int			r;

	for (i = 0; i < sizeof(port_cases) / sizeof(port_cases[0]); i++) {
		r = ftp_parse_port(port_cases[i].in, strlen(port_cases[i].in),
		    &ss);
		if (port_cases[i].want == NULL)
			ok(r == -1, "PORT rejected", port_cases[i].in);
		else
			ok(r == 0 && strcmp(fmt_addr(&ss, buf, sizeof(buf)),
			    port_cases[i].want) == 0, "PORT", port_cases[i].in);
	}
	for (i = 0; i < sizeof(eprt_cases) / sizeof(eprt_cases[0]); i++) {
		r = ftp_parse_eprt(eprt_cases[i].in, strlen(eprt_cases[i].in),
		    &ss);
		if (eprt_cases[i].want == NULL)
			ok(r == -1, "EPRT rejected", eprt_cases[i].in);
		else if (strcmp(eprt_cases[i].want, "522") == 0)
			ok(r == -2, "EPRT unknown protocol", eprt_cases[i].in);
		else
			ok(r == 0 && strcmp(fmt_addr(&ss, buf, sizeof(buf)),
			    eprt_cases[i].want) == 0, "EPRT", eprt_cases[i].in);
	}
	for (i = 0; i < sizeof(r227_cases) / sizeof(r227_cases[0]); i++) {
		r = ftp_parse_227(r227_cases[i].in, strlen(r227_cases[i].in),
		    &ss);
		if (r227_cases[i].want == NULL)
			ok(r == -1, "227 rejected", r227_cases[i].in);
		else
			ok(r == 0 && strcmp(fmt_addr(&ss, buf, sizeof(buf)),
			    r227_cases[i].want) == 0, "227", r227_cases[i].in);
	}
	for (i = 0; i < sizeof(r229_cases) / sizeof(r229_cases[0]); i++) {
		r = ftp_parse_229(r229_cases[i].in, strlen(r229_cases[i].in),
		    &port);
		if (r229_cases[i].want == -1)
			ok(r == -1, "229 rejected", r229_cases[i].in);
		else
			ok(r == 0 && port == r229_cases[i].want, "229",
			    r229_cases[i].in);
	}
	/* Never read past the length: the digits after it do not count. */
	ok(ftp_parse_port("127,0,0,1,4,12345", 13, &ss) == 0 &&
	    strcmp(fmt_addr(&ss, buf, sizeof(buf)), "127.0.0.1 1025") == 0,
	    "PORT stops at its length", "127,0,0,1,4,1|2345");
	ok(ftp_parse_229("229 (|||6446|)", 12, &port) == -1,
	    "229 stops at its length", "229 (|||6446|");
}

static void
test_format(void)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&ss;
	char			 buf[FTP_FMT_MAX];
	int			 n;

	memset(&ss, 0, sizeof(ss));
	sin->sin_family = AF_INET;
	inet_pton(AF_INET, "127.0.0.1", &sin->sin_addr);
	sin->sin_port = htons(51210);
	n = ftp_fmt_port(buf, sizeof(buf), (struct sockaddr *)&ss);
	ok(n > 0 && strcmp(buf, "PORT 127,0,0,1,200,10\r\n") == 0,
	    "format PORT", buf);
	n = ftp_fmt_227(buf, sizeof(buf), (struct sockaddr *)&ss);
	ok(n > 0 && strcmp(buf,
	    "227 Entering Passive Mode (127,0,0,1,200,10).\r\n") == 0,
	    "format 227", buf);
	n = ftp_fmt_eprt(buf, sizeof(buf), (struct sockaddr *)&ss);
	ok(n > 0 && strcmp(buf, "EPRT |1|127.0.0.1|51210|\r\n") == 0,
	    "format EPRT v4", buf);
	n = ftp_fmt_229(buf, sizeof(buf), 6446);
	ok(n > 0 && strcmp(buf,
	    "229 Entering Extended Passive Mode (|||6446|)\r\n") == 0,
	    "format 229", buf);
	ok(ftp_fmt_229(buf, 10, 6446) == -1, "format 229 too small", "10");

	memset(&ss, 0, sizeof(ss));
	sin6->sin6_family = AF_INET6;
	inet_pton(AF_INET6, "::1", &sin6->sin6_addr);
	sin6->sin6_port = htons(2121);
	n = ftp_fmt_eprt(buf, sizeof(buf), (struct sockaddr *)&ss);
	ok(n > 0 && strcmp(buf, "EPRT |2|::1|2121|\r\n") == 0,
	    "format EPRT v6", buf);
	ok(ftp_fmt_227(buf, sizeof(buf), (struct sockaddr *)&ss) == -1,
	    "no 227 for IPv6", "::1");
	ok(ftp_fmt_port(buf, sizeof(buf), (struct sockaddr *)&ss) == -1,
	    "no PORT for IPv6", "::1");
}

static void
test_replies(void)
{
	int	code, more;

	ok(ftp_reply_start("220 hi", 6, &code, &more) == 0 && code == 220 &&
	    !more, "reply", "220 hi");
	ok(ftp_reply_start("211-Features:", 13, &code, &more) == 0 &&
	    code == 211 && more, "reply starts", "211-Features:");
	ok(ftp_reply_start("226", 3, &code, &more) == 0 && code == 226,
	    "reply bare code", "226");
	ok(ftp_reply_start("22 x", 4, &code, &more) == -1, "reply rejected",
	    "22 x");
	ok(ftp_reply_start("600 x", 5, &code, &more) == -1, "reply rejected",
	    "600 x");
	ok(ftp_reply_start("220x", 4, &code, &more) == -1, "reply rejected",
	    "220x");
	ok(ftp_reply_ends("211 End", 7, 211), "reply ends", "211 End");
	ok(!ftp_reply_ends("211-more", 8, 211), "reply goes on", "211-more");
	ok(!ftp_reply_ends(" 211 End", 8, 211), "reply goes on", " 211 End");
	ok(!ftp_reply_ends("226 End", 7, 211), "reply goes on", "226 End");
	ok(ftp_feat_is_tls(" auth", 5), "FEAT TLS", " auth");
	ok(!ftp_feat_is_tls(" AUTHX", 6), "FEAT not TLS", " AUTHX");
	ok(!ftp_feat_is_tls("AUTH TLS", 8), "FEAT not TLS", "not indented");
	ok(!ftp_feat_is_tls(" EPSV", 5), "FEAT not TLS", " EPSV");
	ok(ftp_feat_is_tls(" PBSZ", 5), "FEAT TLS", " PBSZ");
	ok(ftp_feat_is_tls(" PROT", 5), "FEAT TLS", " PROT");
	ok(ftp_feat_is_tls(" AUTH TLS", 9), "FEAT TLS", " AUTH TLS");
	ok(!ftp_feat_is_tls(" PROTX", 6), "FEAT not TLS", " PROTX");
	ok(!ftp_feat_is_tls(" PBS", 4), "FEAT not TLS", " PBS");
	ok(ftp_feat_ext(" EPSV", 5) == FTP_FEAT_EPSV, "FEAT", " EPSV");
	ok(ftp_feat_ext(" eprt", 5) == FTP_FEAT_EPRT, "FEAT", " eprt");
	ok(ftp_feat_ext(" EPSVX", 6) == 0, "FEAT not RFC 2428", " EPSVX");
	ok(ftp_feat_ext("EPSV", 4) == 0, "FEAT not RFC 2428",
	    "not indented");
	ok(ftp_feat_ext(" EPS", 4) == 0, "FEAT not RFC 2428", " EPS");
}

static void
test_epsv(void)
{
	int	proto = -1;

	ok(ftp_parse_epsv("", 0, &proto) == 0 && proto == 0, "EPSV",
	    "no argument");
	ok(ftp_parse_epsv("all", 3, &proto) == 0 && proto == FTP_EPSV_ALL,
	    "EPSV", "all");
	ok(ftp_parse_epsv("ALL ", 4, &proto) == 0 &&
	    proto == FTP_EPSV_ALL, "EPSV", "ALL, trailing space");
	ok(ftp_parse_epsv("2", 1, &proto) == 0 && proto == 2, "EPSV", "2");
	ok(ftp_parse_epsv("0", 1, &proto) == -1, "EPSV refused", "0");
	ok(ftp_parse_epsv("256", 3, &proto) == -1, "EPSV refused", "256");
	ok(ftp_parse_epsv("AL", 2, &proto) == -1, "EPSV refused", "AL");
	ok(ftp_parse_epsv("1\0", 2, &proto) == -1, "EPSV refused", "1 NUL");
	ok(ftp_parse_epsv("-1", 2, &proto) == -1, "EPSV refused", "-1");
}

static void
test_tls_args(void)
{
	char	level = 0;

	ok(ftp_parse_auth("TLS", 3) == 0, "AUTH", "TLS");
	ok(ftp_parse_auth("tls ", 4) == 0, "AUTH", "tls, trailing space");
	ok(ftp_parse_auth("SSL", 3) == 0, "AUTH", "SSL");
	ok(ftp_parse_auth("TLS-C", 5) == 0, "AUTH", "TLS-C");
	ok(ftp_parse_auth("TLSX", 4) == -1, "AUTH refused", "TLSX");
	ok(ftp_parse_auth("TL", 2) == -1, "AUTH refused", "TL");
	ok(ftp_parse_auth("", 0) == -1, "AUTH refused", "empty");
	ok(ftp_parse_auth("TLS\0", 4) == -1, "AUTH refused", "TLS NUL");
	ok(ftp_parse_prot("P", 1, &level) == 0 && level == 'P', "PROT",
	    "P");
	ok(ftp_parse_prot("c", 1, &level) == 0 && level == 'C', "PROT",
	    "c");
	ok(ftp_parse_prot("S", 1, &level) == 0 && level == 'S', "PROT",
	    "S");
	ok(ftp_parse_prot("X", 1, &level) == -1, "PROT refused", "X");
	ok(ftp_parse_prot("PP", 2, &level) == -1, "PROT refused", "PP");
	ok(ftp_parse_prot("", 0, &level) == -1, "PROT refused", "empty");
}

static void
test_misc(void)
{
	unsigned long	v;
	char		buf[16];

	ok(ftp_parse_uint("65535", 5, 65535, &v) == 0 && v == 65535,
	    "uint", "65535");
	ok(ftp_parse_uint("65536", 5, 65535, &v) == -1, "uint too big",
	    "65536");
	ok(ftp_parse_uint("99999999999", 11, 65535, &v) == -1,
	    "uint overflow", "99999999999");
	ok(ftp_parse_uint("0", 1, 65535, &v) == 0 && v == 0, "uint", "0");
	ftp_escape(buf, sizeof(buf), "a\r\n\\\x1b", 5);
	ok(strcmp(buf, "a\\x0d\\x0a\\x5c") == 0, "escape", buf);
	ftp_escape(buf, 4, "abcdef", 6);
	ok(strcmp(buf, "abc") == 0, "escape truncates", buf);
}

static void
test_mux(void)
{
	static const unsigned char	hello[] = { 0, 0, 0, 1, 0, 0, 0, 4 };
	static const unsigned char	port[] = { 0x80, 0, 0, 7, 0, 0, 0, 9,
	    0, 0, 0xc0, 0x01 };
	static const unsigned char	fail[] = { 0x80, 0, 0, 3, 0, 0, 0, 2,
	    0, 0, 0, 4, 'n', 'o', 'p', 'e' };
	static const unsigned char	shortstr[] = { 0x80, 0, 0, 3, 0, 0, 0,
	    2, 0, 0, 0, 9, 'n', 'o' };
	static const unsigned char	unknown[] = { 0x80, 0, 0, 0x7f, 0, 0,
	    0, 1 };
	struct mux_reply		r;

	ok(mux_decode(hello, sizeof(hello), &r) == 0 &&
	    r.type == MUX_MSG_HELLO && r.rid == 4, "mux HELLO", "4");
	ok(mux_decode(port, sizeof(port), &r) == 0 &&
	    r.type == MUX_S_REMOTE_PORT && r.rid == 9 && r.value == 49153,
	    "mux REMOTE_PORT", "49153");
	ok(mux_decode(fail, sizeof(fail), &r) == 0 &&
	    r.type == MUX_S_FAILURE && strcmp(r.reason, "nope") == 0,
	    "mux FAILURE", "nope");
	ok(mux_decode(shortstr, sizeof(shortstr), &r) == -1,
	    "mux string past the end rejected", "9 > 2");
	ok(mux_decode(port, 10, &r) == -1, "mux short message rejected",
	    "10 bytes");
	ok(mux_decode(unknown, sizeof(unknown), &r) == -1,
	    "mux unknown type rejected", "0x8000007f");
}

/* The reply FIFO: order, bounds, and nothing kept when full. */
static void
test_fifo(void)
{
	struct pending_fifo	f;
	struct pending		p;
	int			i, r, order = 1;

	memset(&f, 0, sizeof(f));
	p = fifo_oldest(&f);
	ok(fifo_len(&f) == 0 && p.cmd == 0 && !p.ours, "fifo: empty, "
	    "the oldest is nothing", "");
	ok(fifo_pop(&f) == -1, "fifo: pop of an empty one refused", "");
	ok(fifo_push(&f, 3, 4, 1) == 0 && fifo_len(&f) == 1,
	    "fifo: one pushed", "3 4 ours");
	p = fifo_oldest(&f);
	ok(p.cmd == 3 && p.sent == 4 && p.ours == 1, "fifo: the oldest is "
	    "what was pushed", "3 4 ours");
	ok(fifo_pop(&f) == 0 && fifo_len(&f) == 0, "fifo: popped", "");
	/* Around the ring more than once: wrap-around keeps the order. */
	for (i = 0; i < FIFO_MAX * 3; i++) {
		if (fifo_push(&f, i % 200, i % 200, 0) == -1)
			order = 0;
		if (i % 3 == 2) {
			p = fifo_oldest(&f);
			order &= p.cmd == (i - 2) % 200;
			(void)fifo_pop(&f);
			p = fifo_oldest(&f);
			order &= p.cmd == (i - 1) % 200;
			(void)fifo_pop(&f);
			(void)fifo_pop(&f);
		}
	}
	ok(order && fifo_len(&f) == 0, "fifo: oldest first across wraps",
	    "");
	for (i = 0; i < FIFO_MAX; i++)
		(void)fifo_push(&f, i, i, 0);
	ok(fifo_full(&f) && fifo_len(&f) == FIFO_MAX, "fifo: full at "
	    "FIFO_MAX", "");
	r = fifo_push(&f, 9, 9, 0);
	p = fifo_oldest(&f);
	ok(r == -1 && fifo_len(&f) == FIFO_MAX && p.cmd == 0,
	    "fifo: a push when full is refused and changes nothing", "");
	memset(&f, 0, sizeof(f));
	ok(fifo_push(&f, 256, 1, 0) == -1 && fifo_push(&f, 1, -1, 0) == -1 &&
	    fifo_len(&f) == 0, "fifo: classes out of range are refused",
	    "256, -1");
}

int
main(void)
{
	test_cmd();
	test_addresses();
	test_format();
	test_replies();
	test_misc();
	test_tls_args();
	test_epsv();
	test_mux();
	test_fifo();
	printf("1..%d\n", ntest);
	return nfail != 0;
}
