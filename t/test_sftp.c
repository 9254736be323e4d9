/*
 * Unit tests of sftp.c, the SFTP v3 codec, in TAP: every encoder against
 * hand-written bytes, every decoder on good packets, on each of their
 * truncations and on lies; then a live run against OpenSSH's own
 * sftp-server on a socketpair.  SFTP_CORPUS=dir saves the live replies
 * there, as seeds for t/corpus/sftp.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sftp.h"
#include "tap.h"

#define SFTP_SERVER	"/usr/lib/openssh/sftp-server"
/* A live exchange that takes longer than this is stuck, not slow. */
#define LIVE_TIMEOUT	30
/* Big enough for any packet of the tests, sftp-server's included. */
#define PKT_BUF		(SFTP_PACKET_MAX + 4)
#define NFILES		3


/* A string literal's bytes, without the NUL C adds. */
#define LIT(s)		(const unsigned char *)(s), sizeof(s) - 1

static int
same_bytes(long got, const unsigned char *buf, const unsigned char *want,
    size_t want_len)
{
	return got == (long)want_len && memcmp(buf, want, want_len) == 0;
}

static int
str_is(const struct sftp_str *s, const char *want)
{
	return s->len == strlen(want) && memcmp(s->p, want, s->len) == 0;
}

/*
 * Each shorter buffer is refused: an encoder writes whole packets or
 * nothing usable, and never past sz (ASan watches the heap copy).
 */
static int
short_bufs_refused(long (*enc)(unsigned char *, size_t), size_t len)
{
	unsigned char	*buf;
	size_t		 sz;
	int		 all = 1;

	for (sz = 0; sz < len; sz++) {
		if ((buf = malloc(sz + 1)) == NULL)
			abort();
		all &= enc(buf, sz) == -1;
		free(buf);
	}
	return all;
}

static const struct sftp_str	h1 = { "h1", 2 };

static long
enc_init(unsigned char *b, size_t sz)
{
	return sftp_enc_init(b, sz);
}

static long
enc_realpath(unsigned char *b, size_t sz)
{
	return sftp_enc_path(b, sz, SSH_FXP_REALPATH, 1, ".", 1);
}

static long
enc_close(unsigned char *b, size_t sz)
{
	return sftp_enc_handle(b, sz, SSH_FXP_CLOSE, 2, &h1);
}

static long
enc_open(unsigned char *b, size_t sz)
{
	struct sftp_attrs	a = { .flags = SSH_FILEXFER_ATTR_PERMISSIONS,
				      .perm = 0644 };

	return sftp_enc_open(b, sz, 3, "f", 1, SSH_FXF_READ | SSH_FXF_WRITE |
	    SSH_FXF_CREAT | SSH_FXF_TRUNC, &a);
}

static long
enc_read(unsigned char *b, size_t sz)
{
	return sftp_enc_read(b, sz, 4, &h1, 0x100000000ULL, 32768);
}

static long
enc_write(unsigned char *b, size_t sz)
{
	return sftp_enc_write_head(b, sz, 5, &h1, 10, 5);
}

static long
enc_mkdir(unsigned char *b, size_t sz)
{
	return sftp_enc_mkdir(b, sz, 6, "d", 1, NULL);
}

static long
enc_setstat(unsigned char *b, size_t sz)
{
	struct sftp_attrs	a = { .flags = SSH_FILEXFER_ATTR_SIZE |
	    SSH_FILEXFER_ATTR_UIDGID | SSH_FILEXFER_ATTR_PERMISSIONS |
	    SSH_FILEXFER_ATTR_ACMODTIME, .size = 0x0102030405060708ULL,
	    .uid = 1000, .gid = 100, .perm = 0100644, .atime = 1, .mtime = 2 };

	return sftp_enc_setstat(b, sz, 7, "f", 1, &a);
}

static long
enc_rename(unsigned char *b, size_t sz)
{
	return sftp_enc_rename(b, sz, 8, "a", 1, "b", 1, 0);
}

static long
enc_posix_rename(unsigned char *b, size_t sz)
{
	return sftp_enc_rename(b, sz, 9, "a", 1, "b", 1, 1);
}

static long
enc_limits(unsigned char *b, size_t sz)
{
	return sftp_enc_ext(b, sz, 10, "limits@openssh.com", NULL);
}

static long
enc_fsync(unsigned char *b, size_t sz)
{
	return sftp_enc_ext(b, sz, 11, "fsync@openssh.com", &h1);
}

static const struct {
	const char	*name;
	long		(*enc)(unsigned char *, size_t);
	const char	*want;
	size_t		 want_len;
} enc_cases[] = {
#define CASE(name, enc, bytes)	{ name, enc, bytes, sizeof(bytes) - 1 }
	CASE("INIT", enc_init, "\0\0\0\5\1\0\0\0\3"),
	CASE("REALPATH .", enc_realpath,
	    "\0\0\0\x0a\x10\0\0\0\1\0\0\0\1."),
	CASE("CLOSE h1", enc_close, "\0\0\0\x0b\4\0\0\0\2\0\0\0\2h1"),
	CASE("OPEN f rw,creat,trunc 0644", enc_open,
	    "\0\0\0\x16\3\0\0\0\3\0\0\0\1f\0\0\0\x1b\0\0\0\4\0\0\x01\xa4"),
	CASE("READ h1 at 4 GiB, 32 KiB", enc_read,
	    "\0\0\0\x17\5\0\0\0\4\0\0\0\2h1\0\0\0\1\0\0\0\0\0\0\x80\0"),
	CASE("WRITE head h1 at 10, 5 bytes counted", enc_write,
	    "\0\0\0\x1c\6\0\0\0\5\0\0\0\2h1\0\0\0\0\0\0\0\x0a\0\0\0\5"),
	CASE("MKDIR d, no attrs", enc_mkdir, "\0\0\0\x0e\x0e\0\0\0\6\0\0\0\1d"
	    "\0\0\0\0"),
	CASE("SETSTAT f, every attr", enc_setstat,
	    "\0\0\0\x2a\x09\0\0\0\7\0\0\0\1f\0\0\0\x0f"
	    "\1\2\3\4\5\6\7\x08\0\0\x03\xe8\0\0\0\x64\0\0\x81\xa4"
	    "\0\0\0\1\0\0\0\2"),
	CASE("RENAME a b", enc_rename,
	    "\0\0\0\x0f\x12\0\0\0\x08\0\0\0\1a\0\0\0\1b"),
	CASE("posix-rename a b", enc_posix_rename,
	    "\0\0\0\x2b\xc8\0\0\0\x09\0\0\0\x18posix-rename@openssh.com"
	    "\0\0\0\1a\0\0\0\1b"),
	CASE("limits@openssh.com", enc_limits,
	    "\0\0\0\x1b\xc8\0\0\0\x0a\0\0\0\x12limits@openssh.com"),
	CASE("fsync@openssh.com h1", enc_fsync,
	    "\0\0\0\x20\xc8\0\0\0\x0b\0\0\0\x11" "fsync@openssh.com"
	    "\0\0\0\2h1"),
#undef CASE
};

static void
test_encoders(void)
{
	unsigned char	buf[128];
	size_t		i;
	long		n;

	for (i = 0; i < sizeof(enc_cases) / sizeof(enc_cases[0]); i++) {
		memset(buf, 0xee, sizeof(buf));
		n = enc_cases[i].enc(buf, sizeof(buf));
		ok(same_bytes(n, buf, (const unsigned char *)enc_cases[i].want,
		    enc_cases[i].want_len), "encode %s: exact bytes",
		    enc_cases[i].name);
		ok(buf[n < 0 ? 0 : n] == 0xee &&
		    short_bufs_refused(enc_cases[i].enc, enc_cases[i].want_len),
		    "encode %s: nothing past its length, -1 in less room",
		    enc_cases[i].name);
	}
}

/* What an encoder must refuse although the buffer is big enough. */
static void
test_encoder_limits(void)
{
	static unsigned char	 buf[PKT_BUF + 64], big[PKT_BUF];
	struct sftp_str		 h = { (const char *)big, SFTP_HANDLE_MAX };
	struct sftp_attrs	 a = { .flags = SSH_FILEXFER_ATTR_EXTENDED };
	size_t			 fits;

	ok(sftp_enc_handle(buf, sizeof(buf), SSH_FXP_READDIR, 1, &h) > 0,
	    "encode: a handle of %d bytes", SFTP_HANDLE_MAX);
	h.len++;
	ok(sftp_enc_handle(buf, sizeof(buf), SSH_FXP_READDIR, 1, &h) == -1 &&
	    sftp_enc_read(buf, sizeof(buf), 1, &h, 0, 1) == -1 &&
	    sftp_enc_ext(buf, sizeof(buf), 1, "fsync@openssh.com", &h) == -1,
	    "encode: a handle of %d bytes is refused", SFTP_HANDLE_MAX + 1);
	ok(sftp_enc_handle(buf, sizeof(buf), SSH_FXP_READDIR, 1, NULL) == -1,
	    "encode: no handle is refused");
	/* The length field counts type, id and the path's own length. */
	fits = SFTP_PACKET_MAX - 1 - 4 - 4;
	memset(big, 'x', sizeof(big));
	ok(sftp_enc_path(buf, sizeof(buf), SSH_FXP_STAT, 1, (char *)big,
	    fits) == SFTP_PACKET_MAX + 4 &&
	    sftp_enc_path(buf, sizeof(buf), SSH_FXP_STAT, 1, (char *)big,
	    fits + 1) == -1,
	    "encode: a path filling SFTP_PACKET_MAX, not more");
	ok(sftp_enc_path(buf, sizeof(buf), SSH_FXP_STAT, 1, "x",
	    (size_t)UINT32_MAX + 2) == -1, "encode: a path of 4 GiB + 1");
	ok(sftp_enc_path(buf, sizeof(buf), SSH_FXP_OPEN, 1, "x", 1) == -1 &&
	    sftp_enc_path(buf, sizeof(buf), SSH_FXP_CLOSE, 1, "x", 1) == -1 &&
	    sftp_enc_handle(buf, sizeof(buf), SSH_FXP_STAT, 1, &h1) == -1,
	    "encode: a type the encoder does not do is refused");
	ok(sftp_enc_open(buf, sizeof(buf), 1, "f", 1, 0x40, NULL) == -1,
	    "encode: an unknown open flag is refused");
	ok(sftp_enc_mkdir(buf, sizeof(buf), 1, "d", 1, &a) == -1,
	    "encode: extended attributes are refused");
	/* WRITE: header 4+1+4+6+8+4, the data counted in the length. */
	fits = SFTP_PACKET_MAX - (1 + 4 + 6 + 8 + 4);
	ok(sftp_enc_write_head(buf, sizeof(buf), 1, &h1, 0,
	    (uint32_t)fits) == 27 && buf[0] == 0 && buf[1] == 4 &&
	    buf[2] == 0 && buf[3] == 0 &&
	    sftp_enc_write_head(buf, sizeof(buf), 1, &h1, 0,
	    (uint32_t)fits + 1) == -1,
	    "encode: a WRITE of data filling SFTP_PACKET_MAX, not more");
	ok(sftp_enc_ext(buf, sizeof(buf), 1, NULL, NULL) == -1,
	    "encode: an extension with no name is refused");
}

/* Good replies, as sftp-server writes them. */
#define P_STATUS	"\0\0\0\x1d\x65\0\0\0\1\0\0\0\2" \
			"\0\0\0\x0cNo such file\0\0\0\0"
#define P_STATUS_OLD	"\0\0\0\x09\x65\0\0\0\1\0\0\0\1"
#define P_HANDLE	"\0\0\0\x0d\x66\0\0\0\2\0\0\0\4\0\0\0\0"
#define P_DATA		"\0\0\0\x0e\x67\0\0\0\3\0\0\0\5hello"
/* Every attribute, then one extended pair ("a", "bc"). */
#define P_ATTRS		"\0\0\0\x34\x69\0\0\0\4\x80\0\0\x0f" \
			"\0\0\0\0\0\0\x01\x4d\0\0\x03\xe8\0\0\0\x64" \
			"\0\0\x81\xa4\0\0\0\x0b\0\0\0\x16" \
			"\0\0\0\1\0\0\0\1a\0\0\0\2bc"
/* Three entries: a (1 byte), bb (22), ccc (size and mode). */
#define P_NAME		"\0\0\0\x56\x68\0\0\0\5\0\0\0\3" \
			"\0\0\0\1a\0\0\0\3l a\0\0\0\1\0\0\0\0\0\0\0\1" \
			"\0\0\0\2bb\0\0\0\0\0\0\0\1\0\0\0\0\0\0\0\x16" \
			"\0\0\0\3ccc\0\0\0\4l cc\0\0\0\5" \
			"\0\0\0\0\0\0\x01\x4d\0\0\x81\xa4"
#define P_LIMITS	"\0\0\0\x25\xc9\0\0\0\6" \
			"\0\0\0\0\0\4\0\0\0\0\0\0\0\3\xfc\0" \
			"\0\0\0\0\0\3\xfc\0\0\0\0\0\0\0\0\x40"
#define P_VERSION	"\0\0\0\x41\2\0\0\0\3" \
			"\0\0\0\x18posix-rename@openssh.com\0\0\0\1" "1" \
			"\0\0\0\x12limits@openssh.com\0\0\0\1" "1"

/*
 * Every proper prefix of a good packet: the framer says "need more"
 * (0, or the whole length, which is more than is there) and the decoder
 * refuses it.  Each prefix is a heap copy of its own, so ASan sees a
 * read one byte past it.
 */
static int
prefixes_refused(const unsigned char *pkt, size_t len, int version)
{
	struct sftp_reply	 r;
	struct sftp_version	 v;
	unsigned char		*copy;
	size_t			 k;
	long			 framed;
	int			 all = 1;

	for (k = 0; k < len; k++) {
		if ((copy = malloc(k + 1)) == NULL)
			abort();
		memcpy(copy, pkt, k);
		framed = sftp_packet_len(copy, k);
		all &= k < 4 ? framed == 0 : framed == (long)len;
		all &= version ? sftp_decode_version(copy, k, &v) == -1 :
		    sftp_decode(copy, k, &r) == -1;
		free(copy);
	}
	return all;
}

/* The packet with one byte more, its length field told: refused. */
static int
trailing_refused(const unsigned char *pkt, size_t len, int version)
{
	unsigned char		buf[256];
	struct sftp_reply	r;
	struct sftp_version	v;

	if (len + 1 > sizeof(buf))
		abort();
	memcpy(buf, pkt, len);
	buf[len] = 0;
	buf[3]++;
	if (version)
		return sftp_decode_version(buf, len + 1, &v) == -1;
	/* And with the length field not told: a length that lies. */
	return sftp_decode(buf, len + 1, &r) == -1 &&
	    (buf[3]--, sftp_decode(buf, len + 1, &r) == -1);
}

static void
test_decode_simple(void)
{
	struct sftp_reply	r;

	ok(sftp_decode(LIT(P_STATUS), &r) == 0 && r.type == SSH_FXP_STATUS &&
	    r.id == 1 && r.code == SSH_FX_NO_SUCH_FILE &&
	    str_is(&r.message, "No such file"), "decode STATUS");
	ok(sftp_decode(LIT(P_STATUS_OLD), &r) == 0 && r.code == SSH_FX_EOF &&
	    r.message.len == 0, "decode STATUS with no message (old servers)");
	ok(sftp_decode(LIT("\0\0\0\x0d\x65\0\0\0\1\0\0\0\1\0\0\0\0"),
	    &r) == -1, "decode STATUS with a message and no language tag");
	ok(sftp_decode(LIT(P_HANDLE), &r) == 0 && r.type == SSH_FXP_HANDLE &&
	    r.id == 2 && r.handle.len == 4 &&
	    memcmp(r.handle.p, "\0\0\0\0", 4) == 0, "decode HANDLE");
	ok(sftp_decode(LIT(P_DATA), &r) == 0 && r.type == SSH_FXP_DATA &&
	    r.id == 3 && str_is(&r.data, "hello"), "decode DATA");
	ok(sftp_decode(LIT(P_ATTRS), &r) == 0 && r.type == SSH_FXP_ATTRS &&
	    r.id == 4 && r.attrs.flags == 0x8000000f &&
	    r.attrs.size == 333 && r.attrs.uid == 1000 && r.attrs.gid == 100 &&
	    r.attrs.perm == 0100644 && r.attrs.atime == 11 &&
	    r.attrs.mtime == 22, "decode ATTRS with an extended pair");
	ok(prefixes_refused(LIT(P_STATUS), 0) &&
	    prefixes_refused(LIT(P_STATUS_OLD), 0) &&
	    prefixes_refused(LIT(P_HANDLE), 0) &&
	    prefixes_refused(LIT(P_DATA), 0) &&
	    prefixes_refused(LIT(P_ATTRS), 0),
	    "decode STATUS, HANDLE, DATA, ATTRS: every truncation refused");
	ok(trailing_refused(LIT(P_STATUS), 0) &&
	    trailing_refused(LIT(P_STATUS_OLD), 0) &&
	    trailing_refused(LIT(P_HANDLE), 0) &&
	    trailing_refused(LIT(P_DATA), 0) &&
	    trailing_refused(LIT(P_ATTRS), 0),
	    "decode STATUS, HANDLE, DATA, ATTRS: a trailing byte refused");
}

static void
test_decode_name(void)
{
	struct sftp_reply	 r;
	struct sftp_name	 n[NFILES];
	unsigned char		 lie[sizeof(P_NAME)];
	int			 walked;

	walked = sftp_decode(LIT(P_NAME), &r) == 0 && r.count == 3 &&
	    sftp_names(&r, n, NFILES) == 0;
	ok(walked && str_is(&n[0].filename, "a") &&
	    str_is(&n[0].longname, "l a") && n[0].attrs.size == 1 &&
	    str_is(&n[1].filename, "bb") && n[1].longname.len == 0 &&
	    n[1].attrs.size == 22 && str_is(&n[2].filename, "ccc") &&
	    n[2].attrs.size == 333 && n[2].attrs.perm == 0100644,
	    "decode NAME: three entries walked, names and sizes");
	ok(prefixes_refused(LIT(P_NAME), 0),
	    "decode NAME: every truncation refused");
	/* Walking each shortened body: an entry fails, never a crash. */
	if (sftp_decode(LIT(P_NAME), &r) == 0) {
		size_t	full = r.names_len, k;
		int	all = 1;

		for (k = 0; k < full; k++) {
			r.names_len = k;
			all &= sftp_names(&r, NULL, 0) == -1;
		}
		ok(all, "walk NAME: every shortened body refused");
	} else
		ok(0, "walk NAME: every shortened body refused");
	memcpy(lie, P_NAME, sizeof(lie));
	lie[12] = 4;
	ok(sftp_decode(lie, sizeof(lie) - 1, &r) == 0 && r.count == 4 &&
	    sftp_names(&r, NULL, 0) == -1,
	    "decode NAME: a count of 4 for 3 entries");
	lie[9] = lie[10] = lie[11] = lie[12] = 0xff;
	ok(sftp_decode(lie, sizeof(lie) - 1, &r) == -1,
	    "decode NAME: a count of 4 billion is refused at once");
	memcpy(lie, P_NAME, sizeof(lie));
	lie[12] = 2;
	ok(sftp_decode(lie, sizeof(lie) - 1, &r) == 0 &&
	    sftp_names(&r, NULL, 0) == -1,
	    "decode NAME: a count of 2 for 3 entries leaves bytes over");
}

static void
test_decode_ext(void)
{
	struct sftp_reply	r;
	struct sftp_limits	l;
	struct sftp_version	v;
	struct sftp_str		s;

	ok(sftp_decode(LIT(P_LIMITS), &r) == 0 &&
	    r.type == SSH_FXP_EXTENDED_REPLY && r.id == 6 &&
	    sftp_decode_limits(&r.ext, &l) == 0 &&
	    l.packet_len == 256 * 1024 && l.read_len == 261120 &&
	    l.write_len == 261120 && l.open_handles == 64,
	    "decode limits@openssh.com");
	s = r.ext;
	s.len--;
	ok(sftp_decode_limits(&s, &l) == -1 && (s.len += 2,
	    sftp_decode_limits(&s, &l) == -1),
	    "decode limits: 31 and 33 bytes refused");
	ok(prefixes_refused(LIT(P_LIMITS), 0),
	    "decode EXTENDED_REPLY: every truncation refused");
	ok(sftp_decode_version(LIT(P_VERSION), &v) == 0 && v.version == 3 &&
	    v.next == 2 && sftp_has_ext(&v, "limits@openssh.com", "1") &&
	    sftp_has_ext(&v, "posix-rename@openssh.com", NULL) &&
	    !sftp_has_ext(&v, "posix-rename@openssh.com", "2") &&
	    !sftp_has_ext(&v, "fsync@openssh.com", NULL) &&
	    !sftp_has_ext(&v, "limits@openssh.co", NULL),
	    "decode VERSION and look its extensions up");
	ok(prefixes_refused(LIT(P_VERSION), 1) &&
	    trailing_refused(LIT(P_VERSION), 1),
	    "decode VERSION: every truncation, a trailing byte refused");
	ok(sftp_decode(LIT(P_VERSION), &r) == -1 &&
	    sftp_decode_version(LIT(P_STATUS), &v) == -1,
	    "decode: VERSION is not a reply, a reply not VERSION");
}

/* A VERSION of more extensions than we keep: checked, first ones kept. */
static void
test_version_many(void)
{
	unsigned char		buf[1024];
	struct sftp_version	v;
	size_t			len = 9, i;

	memcpy(buf, "\0\0\0\0\2\0\0\0\3", len);
	for (i = 0; i < SFTP_EXT_MAX + 8; i++) {
		memcpy(buf + len, "\0\0\0\2x", 5);
		buf[len + 5] = 'a' + i % 26;
		memcpy(buf + len + 6, "\0\0\0\0", 4);
		len += 10;
	}
	buf[2] = (len - 4) >> 8;
	buf[3] = (len - 4) & 0xff;
	ok(sftp_decode_version(buf, len, &v) == 0 && v.next == SFTP_EXT_MAX &&
	    sftp_has_ext(&v, "xa", "") && !sftp_has_ext(&v, "xa", "1"),
	    "decode VERSION of %d extensions: %d kept", SFTP_EXT_MAX + 8,
	    SFTP_EXT_MAX);
	buf[len - 1] = 1;
	ok(sftp_decode_version(buf, len, &v) == -1,
	    "decode VERSION: the last extension's data longer than the packet");
}

/* Lengths that lie, handles too long, types and flags unknown. */
static void
test_decode_lies(void)
{
	static unsigned char	big[4 + 9 + SFTP_HANDLE_MAX + 1];
	struct sftp_reply	r;
	unsigned char		p[sizeof(P_ATTRS)];
	size_t			body;

	ok(sftp_packet_len(LIT("\0\0\0\0")) == -1 &&
	    sftp_packet_len(LIT("\0\4\0\1")) == -1 &&
	    sftp_packet_len(LIT("\xff\xff\xff\xff")) == -1 &&
	    sftp_packet_len(LIT("\0\4\0\0")) == SFTP_PACKET_MAX + 4 &&
	    sftp_packet_len(LIT("\0\0\0\1\x65")) == 5,
	    "framing: lengths 0 and over SFTP_PACKET_MAX refused");
	ok(sftp_decode(LIT("\0\0\0\x0e\x67\0\0\0\3\xff\xff\xff\xffhello"),
	    &r) == -1 &&
	    sftp_decode(LIT("\0\0\0\x0e\x67\0\0\0\3\0\0\0\6hello"), &r) == -1,
	    "decode DATA: a string longer than the packet");
	ok(sftp_decode(LIT("\0\0\0\x0d\x65\0\0\0\3\0\0\0\0\0\0\0\1"),
	    &r) == -1, "decode STATUS: a message longer than the packet");
	ok(sftp_decode(LIT("\0\0\0\x05\0\0\0\0\1"), &r) == -1 &&
	    sftp_decode(LIT("\0\0\0\x05\3\0\0\0\1"), &r) == -1 &&
	    sftp_decode(LIT("\0\0\0\x05\x6a\0\0\0\1"), &r) == -1 &&
	    sftp_decode(LIT("\0\0\0\x05\xc8\0\0\0\1"), &r) == -1,
	    "decode: unknown and request types refused");
	ok(sftp_decode(LIT("\0\0\0\1\x65"), &r) == -1 &&
	    sftp_decode(LIT("\0\0\0\x05\x67\0\0\0\1"), &r) == -1,
	    "decode: a reply without its id, DATA without its string");
	body = 1 + 4 + 4 + SFTP_HANDLE_MAX;
	big[2] = body >> 8;
	big[3] = body & 0xff;
	big[4] = SSH_FXP_HANDLE;
	big[11] = SFTP_HANDLE_MAX >> 8;
	big[12] = SFTP_HANDLE_MAX & 0xff;
	ok(sftp_decode(big, body + 4, &r) == 0 &&
	    r.handle.len == SFTP_HANDLE_MAX, "decode: a handle of %d bytes",
	    SFTP_HANDLE_MAX);
	big[3]++;
	big[12]++;
	ok(sftp_decode(big, body + 5, &r) == -1,
	    "decode: a handle of %d bytes is refused", SFTP_HANDLE_MAX + 1);
	memcpy(p, P_ATTRS, sizeof(p));
	p[12] = 0x1f;
	ok(sftp_decode(p, sizeof(p) - 1, &r) == -1,
	    "decode ATTRS: an unknown flag refused");
	memcpy(p, P_ATTRS, sizeof(p));
	p[44] = 2;
	ok(sftp_decode(p, sizeof(p) - 1, &r) == -1,
	    "decode ATTRS: two extended pairs said, one there");
	p[41] = p[42] = p[43] = p[44] = 0xff;
	ok(sftp_decode(p, sizeof(p) - 1, &r) == -1,
	    "decode ATTRS: 4 billion extended pairs refused at once");
}

/* A live sftp-server on a socketpair, and its latest reply. */
struct live {
	int		 fd;
	pid_t		 pid;
	uint32_t	 id;
	const char	*corpus;	/* where to save replies, or NULL */
	int		 saved;
	size_t		 len;
	unsigned char	 buf[PKT_BUF];
};

static struct live	lv;

static int
live_start(struct live *l)
{
	int	sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
		return -1;
	if ((l->pid = fork()) == -1)
		return -1;
	if (l->pid == 0) {
		close(sv[0]);
		if (dup2(sv[1], STDIN_FILENO) == -1 ||
		    dup2(sv[1], STDOUT_FILENO) == -1)
			_exit(127);
		execl(SFTP_SERVER, "sftp-server", (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	l->fd = sv[0];
	l->id = 0;
	l->corpus = getenv("SFTP_CORPUS");
	return 0;
}

static int
send_all(int fd, const void *p, size_t len)
{
	const unsigned char	*at = p;
	ssize_t			 n;

	while (len > 0) {
		if ((n = write(fd, at, len)) == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		at += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
read_full(int fd, unsigned char *p, size_t len)
{
	ssize_t	n;

	while (len > 0) {
		if ((n = read(fd, p, len)) == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void
save_reply(struct live *l)
{
	char	path[PATH_MAX];
	FILE	*f;

	if (l->corpus == NULL)
		return;
	snprintf(path, sizeof(path), "%s/live-%02d", l->corpus, l->saved++);
	if ((f = fopen(path, "w")) == NULL)
		return;
	fwrite(l->buf, 1, l->len, f);
	fclose(f);
}

/* One whole packet, framed by sftp_packet_len as ftpfwd will. */
static int
recv_packet(struct live *l)
{
	long	len;

	if (read_full(l->fd, l->buf, 4) == -1 ||
	    (len = sftp_packet_len(l->buf, 4)) <= 0 ||
	    read_full(l->fd, l->buf + 4, (size_t)len - 4) == -1)
		return -1;
	l->len = (size_t)len;
	save_reply(l);
	return 0;
}

/* Send a request (and data after it), decode the reply to it. */
static int
rpc(struct live *l, const unsigned char *req, long req_len,
    const void *data, size_t data_len, struct sftp_reply *r)
{
	memset(r, 0, sizeof(*r));
	if (req_len <= 0 || send_all(l->fd, req, (size_t)req_len) == -1 ||
	    (data_len > 0 && send_all(l->fd, data, data_len) == -1) ||
	    recv_packet(l) == -1 || sftp_decode(l->buf, l->len, r) == -1)
		return -1;
	return r->id == l->id ? 0 : -1;
}

/* The request's answer is a STATUS of this code. */
static int
rpc_status(struct live *l, const unsigned char *req, long req_len,
    uint32_t code)
{
	struct sftp_reply	r;

	return rpc(l, req, req_len, NULL, 0, &r) == 0 &&
	    r.type == SSH_FXP_STATUS && r.code == code;
}

/* A HANDLE, copied out of the reply buffer that the next one reuses. */
static int
rpc_handle(struct live *l, const unsigned char *req, long req_len,
    char *h, struct sftp_str *handle)
{
	struct sftp_reply	r;

	if (rpc(l, req, req_len, NULL, 0, &r) == -1 ||
	    r.type != SSH_FXP_HANDLE)
		return -1;
	memcpy(h, r.handle.p, r.handle.len);
	handle->p = h;
	handle->len = r.handle.len;
	return 0;
}

/* Whether fsync is offered: v points into a buffer the next reuses. */
static int
live_version(struct live *l, struct sftp_version *v)
{
	unsigned char	req[64];
	long		n = sftp_enc_init(req, sizeof(req));
	int		good;

	v->next = 0;
	good = n > 0 && send_all(l->fd, req, (size_t)n) == 0 &&
	    recv_packet(l) == 0 &&
	    sftp_decode_version(l->buf, l->len, v) == 0 &&
	    v->version == SFTP_VERSION &&
	    sftp_has_ext(v, "posix-rename@openssh.com", "1") &&
	    sftp_has_ext(v, "fsync@openssh.com", "1") &&
	    sftp_has_ext(v, "limits@openssh.com", "1");
	ok(good, "live: VERSION 3 offers posix-rename, fsync, limits (of %zu)",
	    v->next);
	return good;
}

static void
live_limits(struct live *l)
{
	unsigned char		req[64];
	struct sftp_reply	r;
	struct sftp_limits	lim = { 0 };
	int			good;

	/* Apart from the report: its arguments would be read unsequenced. */
	good = rpc(l, req, sftp_enc_ext(req, sizeof(req), ++l->id,
	    "limits@openssh.com", NULL), NULL, 0, &r) == 0 &&
	    r.type == SSH_FXP_EXTENDED_REPLY &&
	    sftp_decode_limits(&r.ext, &lim) == 0 &&
	    lim.packet_len == SFTP_PACKET_MAX && lim.read_len > 0 &&
	    lim.read_len < SFTP_PACKET_MAX && lim.write_len > 0;
	ok(good, "live: limits@openssh.com: packet %llu, read %llu, "
	    "write %llu, handles %llu", (unsigned long long)lim.packet_len,
	    (unsigned long long)lim.read_len,
	    (unsigned long long)lim.write_len,
	    (unsigned long long)lim.open_handles);
}

static void
live_realpath(struct live *l)
{
	unsigned char		req[64];
	char			cwd[PATH_MAX];
	struct sftp_reply	r;
	struct sftp_name	n;
	const unsigned char	*cur;
	size_t			left;

	ok(getcwd(cwd, sizeof(cwd)) != NULL &&
	    rpc(l, req, sftp_enc_path(req, sizeof(req), SSH_FXP_REALPATH,
	    ++l->id, ".", 1), NULL, 0, &r) == 0 && r.type == SSH_FXP_NAME &&
	    r.count == 1 && (cur = r.names, left = r.names_len,
	    sftp_name_next(&cur, &left, &n) == 0) && left == 0 &&
	    str_is(&n.filename, cwd), "live: REALPATH . is our cwd");
}

static const struct {
	const char	*name;
	size_t		 size;
} live_files[NFILES] = { { "a", 1 }, { "bb", 22 }, { "ccc", 333 } };

static int
make_files(const char *dir)
{
	char	path[PATH_MAX], fill[512];
	int	fd, i;

	memset(fill, 'f', sizeof(fill));
	for (i = 0; i < NFILES; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, live_files[i].name);
		if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644)) == -1)
			return -1;
		if (write(fd, fill, live_files[i].size) !=
		    (ssize_t)live_files[i].size) {
			close(fd);
			return -1;
		}
		close(fd);
	}
	return 0;
}

/* One NAME of READDIR: mark each of our files seen at its size. */
static int
mark_seen(const struct sftp_reply *r, int *seen, int *entries)
{
	const unsigned char	*cur = r->names;
	size_t			 left = r->names_len;
	struct sftp_name	 n;
	uint32_t		 i;
	int			 f;

	for (i = 0; i < r->count; i++) {
		if (sftp_name_next(&cur, &left, &n) == -1)
			return -1;
		(*entries)++;
		for (f = 0; f < NFILES; f++)
			if (str_is(&n.filename, live_files[f].name) &&
			    (n.attrs.flags & SSH_FILEXFER_ATTR_SIZE) &&
			    n.attrs.size == live_files[f].size)
				seen[f]++;
	}
	return left == 0 ? 0 : -1;
}

/* READDIR until EOF: each file seen once, with "." and ".." only. */
static void
live_readdir(struct live *l, const char *dir)
{
	unsigned char		req[PATH_MAX + 64];
	char			h[SFTP_HANDLE_MAX];
	struct sftp_str		handle;
	struct sftp_reply	r;
	int			seen[NFILES] = { 0 }, entries = 0, good, i;

	good = make_files(dir) == 0 &&
	    rpc_handle(l, req, sftp_enc_path(req, sizeof(req),
	    SSH_FXP_OPENDIR, ++l->id, dir, strlen(dir)), h, &handle) == 0;
	for (i = 0; good; i++) {
		good = i < 16 && rpc(l, req, sftp_enc_handle(req, sizeof(req),
		    SSH_FXP_READDIR, ++l->id, &handle), NULL, 0, &r) == 0;
		if (good && r.type == SSH_FXP_STATUS)
			break;
		good = good && r.type == SSH_FXP_NAME &&
		    mark_seen(&r, seen, &entries) == 0;
	}
	good = good && r.code == SSH_FX_EOF;
	for (i = 0; i < NFILES; i++)
		good = good && seen[i] == 1;
	ok(good && entries == NFILES + 2,
	    "live: OPENDIR, READDIR to EOF: a, bb, ccc at their sizes");
	ok(good && rpc_status(l, req, sftp_enc_handle(req, sizeof(req),
	    SSH_FXP_CLOSE, ++l->id, &handle), SSH_FX_OK),
	    "live: CLOSE the directory");
}

#define LIVE_DATA	5000

static void
live_write(struct live *l, const char *path, const unsigned char *data,
    int have_fsync)
{
	unsigned char		req[PATH_MAX + 64];
	char			h[SFTP_HANDLE_MAX];
	struct sftp_str		handle;
	struct sftp_attrs	a = { .flags = SSH_FILEXFER_ATTR_PERMISSIONS,
				      .perm = 0600 };
	struct sftp_reply	r;
	int			good;

	good = rpc_handle(l, req, sftp_enc_open(req, sizeof(req), ++l->id,
	    path, strlen(path), SSH_FXF_WRITE | SSH_FXF_CREAT | SSH_FXF_TRUNC,
	    &a), h, &handle) == 0;
	ok(good, "live: OPEN for writing");
	good = good && rpc(l, req, sftp_enc_write_head(req, sizeof(req),
	    ++l->id, &handle, 0, LIVE_DATA), data, LIVE_DATA, &r) == 0 &&
	    r.type == SSH_FXP_STATUS && r.code == SSH_FX_OK;
	ok(good, "live: WRITE %d bytes", LIVE_DATA);
	ok(good && have_fsync &&
	    rpc_status(l, req, sftp_enc_ext(req, sizeof(req), ++l->id,
	    "fsync@openssh.com", &handle), SSH_FX_OK),
	    "live: fsync@openssh.com");
	ok(good && rpc_status(l, req, sftp_enc_handle(req, sizeof(req),
	    SSH_FXP_CLOSE, ++l->id, &handle), SSH_FX_OK), "live: CLOSE it");
}

/* READ it all back, until EOF, and compare. */
static void
live_read(struct live *l, const char *path, const unsigned char *data)
{
	static unsigned char	back[LIVE_DATA + 1];
	unsigned char		req[PATH_MAX + 64];
	char			h[SFTP_HANDLE_MAX];
	struct sftp_str		handle;
	struct sftp_reply	r;
	size_t			got = 0;
	int			good, i;

	good = rpc_handle(l, req, sftp_enc_open(req, sizeof(req), ++l->id,
	    path, strlen(path), SSH_FXF_READ, NULL), h, &handle) == 0;
	for (i = 0; good; i++) {
		good = i < 16 && rpc(l, req, sftp_enc_read(req, sizeof(req),
		    ++l->id, &handle, got, 4096), NULL, 0, &r) == 0;
		if (good && r.type == SSH_FXP_STATUS)
			break;
		good = good && r.type == SSH_FXP_DATA && r.data.len > 0 &&
		    r.data.len <= sizeof(back) - got;
		if (good) {
			memcpy(back + got, r.data.p, r.data.len);
			got += r.data.len;
		}
	}
	ok(good && r.code == SSH_FX_EOF && got == LIVE_DATA &&
	    memcmp(back, data, LIVE_DATA) == 0,
	    "live: OPEN, READ to EOF: the same %d bytes", LIVE_DATA);
	ok(good && rpc_status(l, req, sftp_enc_handle(req, sizeof(req),
	    SSH_FXP_CLOSE, ++l->id, &handle), SSH_FX_OK), "live: CLOSE it");
}

static int
stat_size(struct live *l, const char *path, uint64_t *size)
{
	unsigned char		req[PATH_MAX + 64];
	struct sftp_reply	r;

	if (rpc(l, req, sftp_enc_path(req, sizeof(req), SSH_FXP_STAT, ++l->id,
	    path, strlen(path)), NULL, 0, &r) == -1 ||
	    r.type != SSH_FXP_ATTRS ||
	    !(r.attrs.flags & SSH_FILEXFER_ATTR_SIZE))
		return -1;
	*size = r.attrs.size;
	return 0;
}

static int
stat_missing(struct live *l, const char *path)
{
	unsigned char	req[PATH_MAX + 64];

	return rpc_status(l, req, sftp_enc_path(req, sizeof(req),
	    SSH_FXP_STAT, ++l->id, path, strlen(path)), SSH_FX_NO_SUCH_FILE);
}

static void
live_rename_remove(struct live *l, const char *dir)
{
	unsigned char	req[2 * PATH_MAX + 64];
	char		from[PATH_MAX], to[PATH_MAX], d[PATH_MAX];
	uint64_t	size = 0;
	int		good;

	snprintf(from, sizeof(from), "%s/w", dir);
	snprintf(to, sizeof(to), "%s/w2", dir);
	snprintf(d, sizeof(d), "%s/d", dir);
	good = stat_size(l, from, &size) == 0 && size == LIVE_DATA;
	ok(good, "live: STAT says %llu bytes", (unsigned long long)size);
	ok(rpc_status(l, req, sftp_enc_rename(req, sizeof(req), ++l->id,
	    from, strlen(from), to, strlen(to), 1), SSH_FX_OK) &&
	    stat_missing(l, from) && stat_size(l, to, &size) == 0,
	    "live: posix-rename w to w2");
	ok(rpc_status(l, req, sftp_enc_rename(req, sizeof(req), ++l->id,
	    to, strlen(to), from, strlen(from), 0), SSH_FX_OK) &&
	    stat_missing(l, to), "live: RENAME w2 back to w");
	ok(rpc_status(l, req, sftp_enc_path(req, sizeof(req), SSH_FXP_REMOVE,
	    ++l->id, from, strlen(from)), SSH_FX_OK) && stat_missing(l, from),
	    "live: REMOVE w, then STAT it: NO_SUCH_FILE");
	ok(rpc_status(l, req, sftp_enc_mkdir(req, sizeof(req), ++l->id, d,
	    strlen(d), NULL), SSH_FX_OK) &&
	    rpc_status(l, req, sftp_enc_path(req, sizeof(req), SSH_FXP_RMDIR,
	    ++l->id, d, strlen(d)), SSH_FX_OK), "live: MKDIR, RMDIR");
}

static void
remove_tree(const char *dir)
{
	char	path[PATH_MAX];
	int	i;

	for (i = 0; i < NFILES; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, live_files[i].name);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/w", dir);
	unlink(path);
	rmdir(dir);
}

static void
test_live(void)
{
	static unsigned char	data[LIVE_DATA];
	char			dir[] = "/tmp/test_sftp.XXXXXX", path[PATH_MAX];
	struct sftp_version	v;
	int			status, have_fsync, i;

	if (access(SFTP_SERVER, X_OK) == -1) {
		skip("live sftp-server", "no " SFTP_SERVER);
		return;
	}
	if (mkdtemp(dir) == NULL || live_start(&lv) == -1) {
		skip("live sftp-server", strerror(errno));
		return;
	}
	alarm(LIVE_TIMEOUT);
	for (i = 0; i < LIVE_DATA; i++)
		data[i] = (unsigned char)(i * 7 + i / 251);
	snprintf(path, sizeof(path), "%s/w", dir);
	have_fsync = live_version(&lv, &v);
	live_limits(&lv);
	live_realpath(&lv);
	live_readdir(&lv, dir);
	live_write(&lv, path, data, have_fsync);
	live_read(&lv, path, data);
	live_rename_remove(&lv, dir);
	ok(stat_missing(&lv, "/nonexistent/test_sftp"),
	    "live: STAT of a missing file: NO_SUCH_FILE");
	close(lv.fd);
	ok(waitpid(lv.pid, &status, 0) == lv.pid && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 0, "live: sftp-server exits 0 at EOF");
	alarm(0);
	remove_tree(dir);
}

int
main(void)
{
	test_encoders();
	test_encoder_limits();
	test_decode_simple();
	test_decode_name();
	test_decode_ext();
	test_version_many();
	test_decode_lies();
	test_live();
	printf("1..%d\n", ntest);
	return nfail != 0;
}
