/*
 * libFuzzer harnesses for every ftpparse entry point, the mux reply
 * decoder, the sockdiag decoders and the SFTP codec.  One file, one
 * target per build: -DFUZZ_TARGET_<name>.  Built with AddressSanitizer,
 * so a read one byte past the length is a crash.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ftpparse.h"
#include "ssh_mux.h"
#include "sockdiag.h"
#include "sftp.h"
#include "tap.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static int
same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET)
		return memcmp(&((const struct sockaddr_in *)a)->sin_addr,
		    &((const struct sockaddr_in *)b)->sin_addr, 4) == 0 &&
		    ((const struct sockaddr_in *)a)->sin_port ==
		    ((const struct sockaddr_in *)b)->sin_port;
	return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
	    &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0 &&
	    ((const struct sockaddr_in6 *)a)->sin6_port ==
	    ((const struct sockaddr_in6 *)b)->sin6_port;
}

/* What a parser accepts, its formatter writes back the same. */
static void
roundtrip(const struct sockaddr_storage *ss, int eprt)
{
	struct sockaddr_storage	 again;
	char			 buf[FTP_FMT_MAX];
	int			 n;

	n = eprt ? ftp_fmt_eprt(buf, sizeof(buf), (const void *)ss) :
	    ftp_fmt_port(buf, sizeof(buf), (const void *)ss);
	if (n < 7)
		abort();
	/* "PORT " or "EPRT " and the CR LF are not the argument. */
	if ((eprt ? ftp_parse_eprt(buf + 5, (size_t)n - 7, &again) :
	    ftp_parse_port(buf + 5, (size_t)n - 7, &again)) != 0 ||
	    !same_addr(ss, &again))
		abort();
}

#if defined(FUZZ_TARGET_sockdiag) || defined(FUZZ_TARGET_procnet)
/*
 * The sockets the input is read as answering about, as the seeds do:
 * peer port 47022 to our 47021 over IPv4, IPv6, and IPv4 once more as
 * IPv4-mapped, which must read exactly as IPv4.
 */
#define SD_V4		0
#define SD_V6		1
#define SD_MAPPED	2
#define SD_TUPLES	3
#define SD_SEQ		42
#define SD_UNTOUCHED	0xdeadbeefU

static struct sockaddr_storage	sd_src[SD_TUPLES], sd_dst[SD_TUPLES];

static void
sd_init(void)
{
	static int	done;

	if (done++)
		return;
	test_addr(&sd_src[SD_V4], "127.0.0.1", 47022, 0);
	test_addr(&sd_dst[SD_V4], "127.0.0.1", 47021, 0);
	test_addr(&sd_src[SD_V6], "::1", 47022, 0);
	test_addr(&sd_dst[SD_V6], "::1", 47021, 0);
	test_addr(&sd_src[SD_MAPPED], "::ffff:127.0.0.1", 47022, 0);
	test_addr(&sd_dst[SD_MAPPED], "::ffff:127.0.0.1", 47021, 0);
}

/* A result's outputs: written when it says so, and only then. */
static void
sd_check(int r, uint32_t uid, int error)
{
	if (r != -1 && r != SOCKDIAG_FOUND && r != SOCKDIAG_NOSOCK &&
	    r != SOCKDIAG_UNOWNED && r != SOCKDIAG_PENDING &&
	    r != SOCKDIAG_ERRNO)
		abort();
	if (r != SOCKDIAG_FOUND && uid != SD_UNTOUCHED)
		abort();
	if (r == SOCKDIAG_ERRNO ? error < 1 || error > 4095 ||
	    error == ENOENT : error != -1)
		abort();
}
#endif

#if defined(FUZZ_TARGET_sftp)
static const uint8_t	*sf_base;
static size_t		 sf_size;

/* A decoded string lies within the input, all of it. */
static void
sf_inside(const struct sftp_str *s)
{
	const uint8_t	*p = (const uint8_t *)s->p;

	if (s->len == 0)
		return;
	if (p < sf_base || s->len > sf_size ||
	    (size_t)(p - sf_base) > sf_size - s->len)
		abort();
}

#define SF_NAMES_KEPT	64	/* NAME entries checked, at most */

/* Walk every NAME entry: those kept must lie inside the input. */
static void
sf_walk(const struct sftp_reply *r)
{
	struct sftp_name	n[SF_NAMES_KEPT];
	size_t			i;

	memset(n, 0, sizeof(n));
	(void)sftp_names(r, n, SF_NAMES_KEPT);
	for (i = 0; i < SF_NAMES_KEPT; i++) {
		if (n[i].filename.p == NULL)
			break;		/* not reached before it stopped */
		sf_inside(&n[i].filename);
		sf_inside(&n[i].longname);
	}
}

static void
sf_reply(const uint8_t *data, size_t size)
{
	struct sftp_reply	r;
	struct sftp_limits	l;
	unsigned char		buf[SFTP_HANDLE_MAX + 64];

	if (sftp_decode(data, size, &r) == -1)
		return;
	sf_inside(&r.message);
	sf_inside(&r.handle);
	sf_inside(&r.data);
	sf_inside(&r.ext);
	/* What we decode as a handle, we may send back. */
	if (r.type == SSH_FXP_HANDLE && sftp_enc_handle(buf, sizeof(buf),
	    SSH_FXP_CLOSE, r.id, &r.handle) == -1)
		abort();
	if (r.type == SSH_FXP_NAME)
		sf_walk(&r);
	if (r.type == SSH_FXP_EXTENDED_REPLY &&
	    sftp_decode_limits(&r.ext, &l) == 0 && r.ext.len != 32)
		abort();
}
#endif

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char		*p = (const char *)data;
	struct sockaddr_storage	 ss;

#if defined(FUZZ_TARGET_cmd)
	enum ftp_cmd	cmd;
	char		verb[FTP_VERB_MAX + 1];
	size_t		off;

	if (ftp_cmd_parse(p, size, &cmd, verb, sizeof(verb), &off) == 0 &&
	    (off > size || strlen(verb) == 0 || strlen(verb) > FTP_VERB_MAX))
		abort();
	(void)ss;
#elif defined(FUZZ_TARGET_port)
	if (ftp_parse_port(p, size, &ss) == 0)
		roundtrip(&ss, 0);
#elif defined(FUZZ_TARGET_eprt)
	if (ftp_parse_eprt(p, size, &ss) == 0)
		roundtrip(&ss, 1);
#elif defined(FUZZ_TARGET_227)
	char	buf[FTP_FMT_MAX];

	if (ftp_parse_227(p, size, &ss) == 0 &&
	    ftp_fmt_227(buf, sizeof(buf), (const void *)&ss) == -1)
		abort();
#elif defined(FUZZ_TARGET_229)
	uint16_t	port;

	if (ftp_parse_229(p, size, &port) == 0 && port == 0)
		abort();
	(void)ss;
#elif defined(FUZZ_TARGET_reply)
	char	esc[64], level;
	int	code, more, n, proto;

	if (ftp_reply_start(p, size, &code, &more) == 0 &&
	    (code < 100 || code > 599 ||
	    ftp_reply_ends(p, size, code) != !more))
		abort();
	(void)ftp_feat_is_tls(p, size);
	if ((n = ftp_feat_ext(p, size)) != 0 && n != FTP_FEAT_EPSV &&
	    n != FTP_FEAT_EPRT)
		abort();
	if (ftp_parse_epsv(p, size, &proto) == 0 && (proto < 0 ||
	    (proto > 255 && proto != FTP_EPSV_ALL)))
		abort();
	(void)ftp_parse_auth(p, size);
	if (ftp_parse_prot(p, size, &level) == 0 && level != 'C' &&
	    level != 'S' && level != 'E' && level != 'P')
		abort();
	if (ftp_escape(esc, sizeof(esc), p, size) >= sizeof(esc))
		abort();
	(void)ss;
#elif defined(FUZZ_TARGET_sockdiag)
	uint32_t	uid[SD_TUPLES];
	int		r[SD_TUPLES], error[SD_TUPLES], i;

	sd_init();
	for (i = 0; i < SD_TUPLES; i++) {
		uid[i] = SD_UNTOUCHED;
		error[i] = -1;
		r[i] = sockdiag_parse(data, size, &sd_src[i], &sd_dst[i],
		    SD_SEQ, &uid[i], &error[i]);
		sd_check(r[i], uid[i], error[i]);
	}
	if (r[SD_MAPPED] != r[SD_V4] || uid[SD_MAPPED] != uid[SD_V4] ||
	    error[SD_MAPPED] != error[SD_V4])
		abort();
	(void)p;
	(void)ss;
#elif defined(FUZZ_TARGET_procnet)
	uint32_t	uid[SD_TUPLES];
	int		r[SD_TUPLES], i;

	sd_init();
	for (i = 0; i < SD_TUPLES; i++) {
		uid[i] = SD_UNTOUCHED;
		r[i] = procnet_parse_line(p, size, &sd_src[i], &sd_dst[i],
		    &uid[i]);
		if (r[i] == SOCKDIAG_PENDING || r[i] == SOCKDIAG_ERRNO)
			abort();
		sd_check(r[i], uid[i], -1);
	}
	if (r[SD_MAPPED] != r[SD_V4] || uid[SD_MAPPED] != uid[SD_V4])
		abort();
	(void)ss;
#elif defined(FUZZ_TARGET_mux)
	struct mux_reply	r;

	if (mux_decode(data, size, &r) == 0 &&
	    (r.reason_len >= sizeof(r.reason) || r.reason[r.reason_len] != 0))
		abort();
	(void)p;
	(void)ss;
#elif defined(FUZZ_TARGET_sftp)
	struct sftp_version	v;
	long			framed;
	size_t			i;

	sf_base = data;
	sf_size = size;
	framed = sftp_packet_len(data, size);
	if (framed != 0 && framed != -1 &&
	    (framed < 5 || framed > SFTP_PACKET_MAX + 4))
		abort();
	sf_reply(data, size);
	/* The first packet framed, with whatever follows it cut off. */
	if (framed > 0 && (size_t)framed < size)
		sf_reply(data, (size_t)framed);
	if (sftp_decode_version(data, size, &v) == 0) {
		if (v.next > SFTP_EXT_MAX)
			abort();
		for (i = 0; i < v.next; i++) {
			sf_inside(&v.ext[i].name);
			sf_inside(&v.ext[i].data);
		}
		(void)sftp_has_ext(&v, "limits@openssh.com", "1");
	}
	(void)p;
	(void)ss;
#else
#error "define FUZZ_TARGET_<name>"
#endif
	return 0;
}
