/*
 * ftpparse.c: parse and format the FTP lines ftpfwd looks at.
 *
 * No I/O and no state: everything here is a function of its arguments,
 * so it can be unit-tested and fuzzed on its own.  Input is untrusted:
 * each parser gets a pointer and a length, checks every field's range
 * and returns -1 on anything malformed.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdio.h>
#include <string.h>

#include "ftpparse.h"

#define TELNET_IAC	255
#define TELNET_WILL	251
#define TELNET_DONT	254

static const struct {
	const char	*verb;
	enum ftp_cmd	 cmd;
} ftp_verbs[] = {
	{ "PORT", FTP_CMD_PORT },
	{ "EPRT", FTP_CMD_EPRT },
	{ "PASV", FTP_CMD_PASV },
	{ "EPSV", FTP_CMD_EPSV },
	{ "LPRT", FTP_CMD_LPRT },
	{ "LPSV", FTP_CMD_LPSV },
	{ "AUTH", FTP_CMD_AUTH },
	{ "FEAT", FTP_CMD_FEAT },
	{ "USER", FTP_CMD_USER },
	{ "PASS", FTP_CMD_PASS },
	{ "QUIT", FTP_CMD_QUIT },
	{ "ABOR", FTP_CMD_ABOR },
	{ "REIN", FTP_CMD_REIN },
	{ "PBSZ", FTP_CMD_PBSZ },
	{ "PROT", FTP_CMD_PROT },
	{ "RETR", FTP_CMD_TRANSFER },
	{ "STOR", FTP_CMD_TRANSFER },
	{ "STOU", FTP_CMD_TRANSFER },
	{ "APPE", FTP_CMD_TRANSFER },
	{ "LIST", FTP_CMD_TRANSFER },
	{ "NLST", FTP_CMD_TRANSFER },
	{ "MLSD", FTP_CMD_TRANSFER },
};

static int
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int
to_upper(int c)
{
	return (c >= 'a' && c <= 'z') ? c - 'a' + 'A' : c;
}

/*
 * Checked decimal conversion in the spirit of strtonum(3): digits only,
 * no sign, no space, no leading zero, at most max.
 */
int
ftp_parse_uint(const char *p, size_t len, unsigned long max,
    unsigned long *valp)
{
	unsigned long	 v = 0;
	size_t		 i;

	if (len == 0 || len > 10)
		return -1;
	if (len > 1 && p[0] == '0')
		return -1;
	for (i = 0; i < len; i++) {
		if (!is_digit((unsigned char)p[i]))
			return -1;
		v = v * 10 + (unsigned long)(p[i] - '0');
		if (v > max)
			return -1;
	}
	*valp = v;
	return 0;
}

/*
 * Find the verb of a command line (without its CR LF).  Telnet commands
 * in front of it are skipped: lftp sends IAC IP IAC DM before ABOR.
 * On success *cmdp is the class, verb holds the verb in upper case and
 * *argoffp the offset of the argument (len when there is none).
 */
int
ftp_cmd_parse(const char *line, size_t len, enum ftp_cmd *cmdp, char *verb,
    size_t verbsz, size_t *argoffp)
{
	const unsigned char	*p = (const unsigned char *)line;
	size_t			 i = 0, n, v;

	while (i < len && p[i] == TELNET_IAC) {
		if (i + 1 >= len)
			return -1;
		if (p[i + 1] >= TELNET_WILL && p[i + 1] <= TELNET_DONT)
			i += 3;
		else
			i += 2;
	}
	for (n = 0; i + n < len && n <= FTP_VERB_MAX; n++) {
		if (to_upper(p[i + n]) < 'A' || to_upper(p[i + n]) > 'Z')
			break;
	}
	if (n == 0 || n > FTP_VERB_MAX || n + 1 > verbsz)
		return -1;
	if (i + n < len && p[i + n] != ' ')
		return -1;
	for (v = 0; v < n; v++)
		verb[v] = (char)to_upper(p[i + v]);
	verb[n] = '\0';

	*cmdp = FTP_CMD_OTHER;
	for (v = 0; v < sizeof(ftp_verbs) / sizeof(ftp_verbs[0]); v++) {
		if (strcmp(verb, ftp_verbs[v].verb) == 0) {
			*cmdp = ftp_verbs[v].cmd;
			break;
		}
	}
	*argoffp = i + n < len ? i + n + 1 : len;
	return 0;
}

/* "h1,h2,h3,h4,p1,p2", exactly, as in PORT and in 227 replies. */
int
ftp_parse_port(const char *arg, size_t len, struct sockaddr_storage *ss)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)ss;
	unsigned long		 field[6];
	size_t			 i, start = 0, nfield = 0;
	uint32_t		 addr;

	for (i = 0; i <= len; i++) {
		if (i < len && arg[i] != ',')
			continue;
		if (nfield == 6 ||
		    ftp_parse_uint(arg + start, i - start, 255,
		    &field[nfield]) == -1)
			return -1;
		nfield++;
		start = i + 1;
	}
	if (nfield != 6)
		return -1;
	if (field[4] == 0 && field[5] == 0)
		return -1;

	addr = (uint32_t)(field[0] << 24 | field[1] << 16 | field[2] << 8 |
	    field[3]);
	memset(ss, 0, sizeof(*ss));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(addr);
	sin->sin_port = htons((uint16_t)(field[4] * 256 + field[5]));
	return 0;
}

/*
 * EPRT <d>net-prt<d>net-addr<d>tcp-port<d> (RFC 2428).  Returns -1 when
 * malformed and -2 when well formed but for a protocol other than 1 or 2,
 * which deserves "522" rather than "501".
 */
int
ftp_parse_eprt(const char *arg, size_t len, struct sockaddr_storage *ss)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)ss;
	char			 addr[INET6_ADDRSTRLEN];
	size_t			 delim[4], ndelim = 0, i, alen;
	unsigned long		 proto, port;
	char			 d;

	if (len < 2)
		return -1;
	d = arg[0];
	if (d < 33 || d > 126 || is_digit((unsigned char)d))
		return -1;
	for (i = 0; i < len; i++) {
		if (arg[i] != d)
			continue;
		if (ndelim == 4)
			return -1;
		delim[ndelim++] = i;
	}
	if (ndelim != 4 || delim[3] != len - 1)
		return -1;
	if (ftp_parse_uint(arg + delim[0] + 1, delim[1] - delim[0] - 1,
	    65535, &proto) == -1)
		return -1;
	if (ftp_parse_uint(arg + delim[2] + 1, delim[3] - delim[2] - 1,
	    65535, &port) == -1 || port == 0)
		return -1;
	alen = delim[2] - delim[1] - 1;
	if (alen == 0 || alen >= sizeof(addr))
		return -1;
	memcpy(addr, arg + delim[1] + 1, alen);
	addr[alen] = '\0';

	memset(ss, 0, sizeof(*ss));
	switch (proto) {
	case 1:
		if (inet_pton(AF_INET, addr, &sin->sin_addr) != 1)
			return -1;
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		return 0;
	case 2:
		if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) != 1)
			return -1;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		return 0;
	default:
		return -2;
	}
}

/*
 * A 227 reply: servers write the six numbers in many ways, "(h,..)",
 * "=h,...", or bare, so take the first run of digits and commas after
 * the code that parses as exactly six fields.
 */
int
ftp_parse_227(const char *text, size_t len, struct sockaddr_storage *ss)
{
	size_t	i, end;

	if (len < 4 || memcmp(text, "227", 3) != 0)
		return -1;
	for (i = 4; i < len; i = end + 1) {
		if (!is_digit((unsigned char)text[i])) {
			end = i;
			continue;
		}
		for (end = i; end < len; end++) {
			if (!is_digit((unsigned char)text[end]) &&
			    text[end] != ',')
				break;
		}
		if (ftp_parse_port(text + i, end - i, ss) == 0)
			return 0;
	}
	return -1;
}

/* A 229 reply: "(<d><d><d>port<d>)" somewhere in the text. */
int
ftp_parse_229(const char *text, size_t len, uint16_t *portp)
{
	unsigned long	port;
	size_t		i, j;
	char		d;

	if (len < 4 || memcmp(text, "229", 3) != 0)
		return -1;
	for (i = 3; i + 6 <= len; i++) {
		if (text[i] != '(')
			continue;
		d = text[i + 1];
		if (d < 33 || d > 126 || is_digit((unsigned char)d) ||
		    text[i + 2] != d || text[i + 3] != d)
			continue;
		for (j = i + 4; j < len && text[j] != d; j++)
			;
		if (j + 1 >= len || text[j + 1] != ')')
			continue;
		if (ftp_parse_uint(text + i + 4, j - i - 4, 65535,
		    &port) == -1 || port == 0)
			continue;
		*portp = (uint16_t)port;
		return 0;
	}
	return -1;
}

/*
 * The first line of a reply: three digits and a space or a dash.  Sets
 * *morep when a multi-line reply starts.
 */
int
ftp_reply_start(const char *line, size_t len, int *codep, int *morep)
{
	if (len < 3 || line[0] < '1' || line[0] > '5' ||
	    !is_digit((unsigned char)line[1]) ||
	    !is_digit((unsigned char)line[2]))
		return -1;
	if (len == 3 || line[3] == ' ')
		*morep = 0;
	else if (line[3] == '-')
		*morep = 1;
	else
		return -1;
	*codep = (line[0] - '0') * 100 + (line[1] - '0') * 10 +
	    (line[2] - '0');
	return 0;
}

/* Does this line end the multi-line reply with that code? (RFC 959 4.2) */
int
ftp_reply_ends(const char *line, size_t len, int code)
{
	int	c, more;

	if (ftp_reply_start(line, len, &c, &more) == -1)
		return 0;
	return c == code && !more;
}

/* A FEAT reply's feature line (indented) naming a 4-letter feature. */
static int
feat_is(const char *line, size_t len, const char *name)
{
	size_t	i = 0, k;

	while (i < len && line[i] == ' ')
		i++;
	if (i == 0 || len - i < 4)
		return 0;
	for (k = 0; k < 4; k++)
		if (to_upper((unsigned char)line[i + k]) != name[k])
			return 0;
	return len - i == 4 || line[i + 4] == ' ';
}

/* AUTH, PBSZ or PROT: the features of RFC 4217. */
int
ftp_feat_is_tls(const char *line, size_t len)
{
	return feat_is(line, len, "AUTH") || feat_is(line, len, "PBSZ") ||
	    feat_is(line, len, "PROT");
}

/* EPSV or EPRT in a FEAT reply: FTP_FEAT_EPSV, FTP_FEAT_EPRT or 0. */
int
ftp_feat_ext(const char *line, size_t len)
{
	if (feat_is(line, len, "EPSV"))
		return FTP_FEAT_EPSV;
	if (feat_is(line, len, "EPRT"))
		return FTP_FEAT_EPRT;
	return 0;
}

/*
 * The argument of EPSV (RFC 2428): none (0), a network protocol number
 * in *protop, or ALL (FTP_EPSV_ALL).
 */
int
ftp_parse_epsv(const char *arg, size_t len, int *protop)
{
	unsigned long	v;

	while (len > 0 && arg[len - 1] == ' ')
		len--;
	if (len == 0) {
		*protop = 0;
		return 0;
	}
	if (len == 3 && to_upper((unsigned char)arg[0]) == 'A' &&
	    to_upper((unsigned char)arg[1]) == 'L' &&
	    to_upper((unsigned char)arg[2]) == 'L') {
		*protop = FTP_EPSV_ALL;
		return 0;
	}
	if (ftp_parse_uint(arg, len, 255, &v) == -1 || v == 0)
		return -1;
	*protop = (int)v;
	return 0;
}

/* The argument of AUTH: 0 for TLS (RFC 4217, and its old names). */
int
ftp_parse_auth(const char *arg, size_t len)
{
	static const char	*names[] = { "TLS", "TLS-C", "SSL", "TLS-P" };
	size_t			 i, k;

	while (len > 0 && arg[len - 1] == ' ')
		len--;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strlen(names[i]) != len)
			continue;
		for (k = 0; k < len; k++)
			if (to_upper((unsigned char)arg[k]) != names[i][k])
				break;
		if (k == len)
			return 0;
	}
	return -1;
}

/* The argument of PROT: one of C, S, E, P; the level in *levelp. */
int
ftp_parse_prot(const char *arg, size_t len, char *levelp)
{
	int	c;

	while (len > 0 && arg[len - 1] == ' ')
		len--;
	if (len != 1)
		return -1;
	c = to_upper((unsigned char)arg[0]);
	if (c != 'C' && c != 'S' && c != 'E' && c != 'P')
		return -1;
	*levelp = (char)c;
	return 0;
}

static int
fmt_check(int n, size_t sz)
{
	if (n < 0 || (size_t)n >= sz)
		return -1;
	return n;
}

static int
fmt_hostport(char *buf, size_t sz, const char *prefix, const char *suffix,
    const struct sockaddr *sa)
{
	const struct sockaddr_in	*sin = (const struct sockaddr_in *)sa;
	uint32_t			 a;
	uint16_t			 port;

	if (sa->sa_family != AF_INET)
		return -1;
	a = ntohl(sin->sin_addr.s_addr);
	port = ntohs(sin->sin_port);
	return fmt_check(snprintf(buf, sz, "%s%u,%u,%u,%u,%u,%u%s\r\n",
	    prefix, a >> 24, (a >> 16) & 0xff, (a >> 8) & 0xff, a & 0xff,
	    port >> 8, port & 0xff, suffix), sz);
}

int
ftp_fmt_port(char *buf, size_t sz, const struct sockaddr *sa)
{
	return fmt_hostport(buf, sz, "PORT ", "", sa);
}

int
ftp_fmt_227(char *buf, size_t sz, const struct sockaddr *sa)
{
	return fmt_hostport(buf, sz, "227 Entering Passive Mode (", ").",
	    sa);
}

int
ftp_fmt_eprt(char *buf, size_t sz, const struct sockaddr *sa)
{
	const struct sockaddr_in	*sin = (const struct sockaddr_in *)sa;
	const struct sockaddr_in6	*sin6 = (const struct sockaddr_in6 *)sa;
	char				 addr[INET6_ADDRSTRLEN];

	switch (sa->sa_family) {
	case AF_INET:
		if (inet_ntop(AF_INET, &sin->sin_addr, addr,
		    sizeof(addr)) == NULL)
			return -1;
		return fmt_check(snprintf(buf, sz, "EPRT |1|%s|%u|\r\n", addr,
		    ntohs(sin->sin_port)), sz);
	case AF_INET6:
		if (inet_ntop(AF_INET6, &sin6->sin6_addr, addr,
		    sizeof(addr)) == NULL)
			return -1;
		return fmt_check(snprintf(buf, sz, "EPRT |2|%s|%u|\r\n", addr,
		    ntohs(sin6->sin6_port)), sz);
	default:
		return -1;
	}
}

int
ftp_fmt_229(char *buf, size_t sz, uint16_t port)
{
	return fmt_check(snprintf(buf, sz,
	    "229 Entering Extended Passive Mode (|||%u|)\r\n", port), sz);
}

/*
 * Make untrusted text safe for a log line: printable ASCII stays, the
 * rest becomes \xNN.  Always NUL-terminates; returns the length written.
 */
size_t
ftp_escape(char *dst, size_t dsz, const char *src, size_t len)
{
	static const char	 hex[] = "0123456789abcdef";
	size_t			 i, o = 0;
	unsigned char		 c;

	if (dsz == 0)
		return 0;
	for (i = 0; i < len; i++) {
		c = (unsigned char)src[i];
		if (c >= 0x20 && c < 0x7f && c != '\\') {
			if (o + 1 >= dsz)
				break;
			dst[o++] = (char)c;
		} else {
			if (o + 4 >= dsz)
				break;
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 0xf];
		}
	}
	dst[o] = '\0';
	return o;
}
