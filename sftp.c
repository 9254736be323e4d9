/*
 * sftp.c: the SFTP version 3 codec of sftp.h.  Replies are read through
 * a cursor whose getters check each field against what is left before
 * touching it, so a decoder reads nothing past its length whatever the
 * input says; requests are written through a writer whose first failure
 * sticks, so an encoder checks once at its end.
 */

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "sftp.h"

/* A packet's length field, then its type byte. */
#define SFTP_LEN_FIELD		4
/* The least a string takes on the wire: its length and no bytes. */
#define SFTP_STR_MIN		4
/* The least a (name, data) pair takes: two empty strings. */
#define SFTP_PAIR_MIN		(2 * SFTP_STR_MIN)
/* The least one NAME entry takes: two empty strings and attrs' flags. */
#define SFTP_NAME_MIN		(2 * SFTP_STR_MIN + 4)
/* limits@openssh.com's reply body: four uint64. */
#define SFTP_LIMITS_LEN		(4 * 8)

/* The attribute flags draft-02 defines; any other makes fields unknown. */
#define SFTP_ATTR_KNOWN		(SSH_FILEXFER_ATTR_SIZE | \
	SSH_FILEXFER_ATTR_UIDGID | SSH_FILEXFER_ATTR_PERMISSIONS | \
	SSH_FILEXFER_ATTR_ACMODTIME | SSH_FILEXFER_ATTR_EXTENDED)
/* What our encoders send: no extended attributes. */
#define SFTP_ATTR_SENT		(SFTP_ATTR_KNOWN & ~SSH_FILEXFER_ATTR_EXTENDED)
#define SFTP_FXF_KNOWN		(SSH_FXF_READ | SSH_FXF_WRITE | \
	SSH_FXF_APPEND | SSH_FXF_CREAT | SSH_FXF_TRUNC | SSH_FXF_EXCL)

#define POSIX_RENAME		"posix-rename@openssh.com"

/* What is left of a packet being decoded. */
struct cursor {
	const unsigned char	*p;
	size_t			 left;
};

/* A packet being encoded; bad sticks at the first field that fails. */
struct writer {
	unsigned char	*buf;
	size_t		 sz;
	size_t		 len;
	int		 bad;
};

static uint32_t
peek_u32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static int
get_u8(struct cursor *c, uint8_t *v)
{
	if (c->left < 1)
		return -1;
	*v = c->p[0];
	c->p++;
	c->left--;
	return 0;
}

static int
get_u32(struct cursor *c, uint32_t *v)
{
	if (c->left < 4)
		return -1;
	*v = peek_u32(c->p);
	c->p += 4;
	c->left -= 4;
	return 0;
}

static int
get_u64(struct cursor *c, uint64_t *v)
{
	uint32_t	hi, lo;

	if (get_u32(c, &hi) == -1 || get_u32(c, &lo) == -1)
		return -1;
	*v = (uint64_t)hi << 32 | lo;
	return 0;
}

/* The string's bytes stay where they are: s points into the packet. */
static int
get_string(struct cursor *c, struct sftp_str *s)
{
	uint32_t	len;

	if (get_u32(c, &len) == -1 || len > c->left)
		return -1;
	s->p = (const char *)c->p;
	s->len = len;
	c->p += len;
	c->left -= len;
	return 0;
}

/*
 * Extended attributes: a count of (type, data) pairs, which we skip.  A
 * count more than the bytes left could hold is refused before the loop,
 * so a lying count costs nothing.
 */
static int
skip_pairs(struct cursor *c)
{
	struct sftp_str	type, data;
	uint32_t	count, i;

	if (get_u32(c, &count) == -1 || count > c->left / SFTP_PAIR_MIN)
		return -1;
	for (i = 0; i < count; i++)
		if (get_string(c, &type) == -1 || get_string(c, &data) == -1)
			return -1;
	return 0;
}

static int
get_attrs(struct cursor *c, struct sftp_attrs *a)
{
	memset(a, 0, sizeof(*a));
	if (get_u32(c, &a->flags) == -1 || (a->flags & ~SFTP_ATTR_KNOWN) != 0)
		return -1;
	if ((a->flags & SSH_FILEXFER_ATTR_SIZE) && get_u64(c, &a->size) == -1)
		return -1;
	if ((a->flags & SSH_FILEXFER_ATTR_UIDGID) &&
	    (get_u32(c, &a->uid) == -1 || get_u32(c, &a->gid) == -1))
		return -1;
	if ((a->flags & SSH_FILEXFER_ATTR_PERMISSIONS) &&
	    get_u32(c, &a->perm) == -1)
		return -1;
	if ((a->flags & SSH_FILEXFER_ATTR_ACMODTIME) &&
	    (get_u32(c, &a->atime) == -1 || get_u32(c, &a->mtime) == -1))
		return -1;
	if ((a->flags & SSH_FILEXFER_ATTR_EXTENDED) && skip_pairs(c) == -1)
		return -1;
	return 0;
}

long
sftp_packet_len(const unsigned char *buf, size_t len)
{
	uint32_t	body;

	if (len < SFTP_LEN_FIELD)
		return 0;
	body = peek_u32(buf);
	if (body == 0 || body > SFTP_PACKET_MAX)
		return -1;
	return (long)body + SFTP_LEN_FIELD;
}

/*
 * A whole packet: its length field must say exactly the bytes given, so
 * that what follows may insist on nothing left over.
 */
static int
open_packet(const unsigned char *buf, size_t len, struct cursor *c,
    uint8_t *type)
{
	if (sftp_packet_len(buf, len) != (long)len || len <= SFTP_LEN_FIELD)
		return -1;
	c->p = buf + SFTP_LEN_FIELD;
	c->left = len - SFTP_LEN_FIELD;
	return get_u8(c, type);
}

/* Old servers sent the code alone; otherwise message and tag both. */
static int
get_status(struct cursor *c, struct sftp_reply *r)
{
	struct sftp_str	lang;

	if (get_u32(c, &r->code) == -1)
		return -1;
	if (c->left == 0)
		return 0;
	if (get_string(c, &r->message) == -1 || get_string(c, &lang) == -1)
		return -1;
	return 0;
}

/* Every entry of a NAME reply, the first nout kept (sftp.h). */
int
sftp_names(const struct sftp_reply *r, struct sftp_name *out, size_t nout)
{
	const unsigned char	*cur = r->names;
	size_t			 left = r->names_len;
	struct sftp_name	 n;
	uint32_t		 i;

	for (i = 0; i < r->count; i++) {
		if (sftp_name_next(&cur, &left, &n) == -1)
			return -1;
		if (i < nout)
			out[i] = n;
	}
	return left == 0 ? 0 : -1;
}

/* The rest of the packet, for a later walk (NAME) or decoder (ext). */
static void
take_rest(struct cursor *c, const unsigned char **p, size_t *len)
{
	*p = c->p;
	*len = c->left;
	c->p += c->left;
	c->left = 0;
}

int
sftp_decode(const unsigned char *buf, size_t len, struct sftp_reply *r)
{
	struct cursor	c;
	const unsigned char *ext;

	memset(r, 0, sizeof(*r));
	if (open_packet(buf, len, &c, &r->type) == -1 ||
	    get_u32(&c, &r->id) == -1)
		return -1;
	switch (r->type) {
	case SSH_FXP_STATUS:
		if (get_status(&c, r) == -1)
			return -1;
		break;
	case SSH_FXP_HANDLE:
		if (get_string(&c, &r->handle) == -1 ||
		    r->handle.len > SFTP_HANDLE_MAX)
			return -1;
		break;
	case SSH_FXP_DATA:
		if (get_string(&c, &r->data) == -1)
			return -1;
		break;
	case SSH_FXP_NAME:
		/* Each entry takes SFTP_NAME_MIN at least: a first bound. */
		if (get_u32(&c, &r->count) == -1 ||
		    r->count > c.left / SFTP_NAME_MIN)
			return -1;
		take_rest(&c, &r->names, &r->names_len);
		break;
	case SSH_FXP_ATTRS:
		if (get_attrs(&c, &r->attrs) == -1)
			return -1;
		break;
	case SSH_FXP_EXTENDED_REPLY:
		take_rest(&c, &ext, &r->ext.len);
		r->ext.p = (const char *)ext;
		break;
	default:
		return -1;
	}
	return c.left == 0 ? 0 : -1;
}

int
sftp_decode_version(const unsigned char *buf, size_t len,
    struct sftp_version *v)
{
	struct cursor	c;
	struct sftp_str	name, data;
	uint8_t		type;

	memset(v, 0, sizeof(*v));
	if (open_packet(buf, len, &c, &type) == -1 ||
	    type != SSH_FXP_VERSION || get_u32(&c, &v->version) == -1)
		return -1;
	/* Each pair takes SFTP_PAIR_MIN bytes at least: the loop ends. */
	while (c.left > 0) {
		if (get_string(&c, &name) == -1 ||
		    get_string(&c, &data) == -1)
			return -1;
		if (v->next < SFTP_EXT_MAX) {
			v->ext[v->next].name = name;
			v->ext[v->next].data = data;
			v->next++;
		}
	}
	return 0;
}

int
sftp_name_next(const unsigned char **cursor, size_t *left,
    struct sftp_name *n)
{
	struct cursor	c;

	memset(n, 0, sizeof(*n));
	c.p = *cursor;
	c.left = *left;
	if (get_string(&c, &n->filename) == -1 ||
	    get_string(&c, &n->longname) == -1 ||
	    get_attrs(&c, &n->attrs) == -1)
		return -1;
	*cursor = c.p;
	*left = c.left;
	return 0;
}

int
sftp_decode_limits(const struct sftp_str *ext, struct sftp_limits *l)
{
	struct cursor	c;

	memset(l, 0, sizeof(*l));
	if (ext->len != SFTP_LIMITS_LEN)
		return -1;
	c.p = (const unsigned char *)ext->p;
	c.left = ext->len;
	if (get_u64(&c, &l->packet_len) == -1 ||
	    get_u64(&c, &l->read_len) == -1 ||
	    get_u64(&c, &l->write_len) == -1 ||
	    get_u64(&c, &l->open_handles) == -1)
		return -1;
	return 0;
}

/* A wire string against a C string: same length, same bytes. */
static int
str_is(const struct sftp_str *s, const char *want)
{
	size_t	len = strlen(want);

	return s->len == len && (len == 0 || memcmp(s->p, want, len) == 0);
}

int
sftp_has_ext(const struct sftp_version *v, const char *name,
    const char *data)
{
	size_t	i;

	for (i = 0; i < v->next && i < SFTP_EXT_MAX; i++)
		if (str_is(&v->ext[i].name, name) &&
		    (data == NULL || str_is(&v->ext[i].data, data)))
			return 1;
	return 0;
}

static void
put_bytes(struct writer *w, const void *p, size_t len)
{
	if (w->bad || len > w->sz - w->len) {
		w->bad = 1;
		return;
	}
	if (len > 0)
		memcpy(w->buf + w->len, p, len);
	w->len += len;
}

static void
put_u8(struct writer *w, uint8_t v)
{
	put_bytes(w, &v, 1);
}

static void
put_u32(struct writer *w, uint32_t v)
{
	unsigned char	be[4];

	be[0] = v >> 24;
	be[1] = v >> 16;
	be[2] = v >> 8;
	be[3] = v;
	put_bytes(w, be, sizeof(be));
}

static void
put_u64(struct writer *w, uint64_t v)
{
	put_u32(w, (uint32_t)(v >> 32));
	put_u32(w, (uint32_t)v);
}

/* Longer than a packet may be is refused before its length is cut. */
static void
put_string(struct writer *w, const void *p, size_t len)
{
	if (len > SFTP_PACKET_MAX) {
		w->bad = 1;
		return;
	}
	put_u32(w, (uint32_t)len);
	put_bytes(w, p, len);
}

static void
put_handle(struct writer *w, const struct sftp_str *handle)
{
	if (handle == NULL || handle->len > SFTP_HANDLE_MAX) {
		w->bad = 1;
		return;
	}
	put_string(w, handle->p, handle->len);
}

static void
put_attrs(struct writer *w, const struct sftp_attrs *a)
{
	if (a == NULL) {
		put_u32(w, 0);
		return;
	}
	if ((a->flags & ~SFTP_ATTR_SENT) != 0) {
		w->bad = 1;
		return;
	}
	put_u32(w, a->flags);
	if (a->flags & SSH_FILEXFER_ATTR_SIZE)
		put_u64(w, a->size);
	if (a->flags & SSH_FILEXFER_ATTR_UIDGID) {
		put_u32(w, a->uid);
		put_u32(w, a->gid);
	}
	if (a->flags & SSH_FILEXFER_ATTR_PERMISSIONS)
		put_u32(w, a->perm);
	if (a->flags & SSH_FILEXFER_ATTR_ACMODTIME) {
		put_u32(w, a->atime);
		put_u32(w, a->mtime);
	}
}

/* Room for the length field, written last by finish(), then the type. */
static void
start(struct writer *w, unsigned char *buf, size_t sz, uint8_t type)
{
	w->buf = buf;
	w->sz = sz;
	w->len = 0;
	w->bad = sz < SFTP_LEN_FIELD;
	if (!w->bad)
		w->len = SFTP_LEN_FIELD;
	put_u8(w, type);
}

/*
 * The length field counts what was written and the trailing bytes the
 * caller sends itself (WRITE's data); the whole must be a packet that
 * sftp-server takes.
 */
static long
finish(struct writer *w, size_t trailing)
{
	size_t	end, body;

	if (w->bad)
		return -1;
	end = w->len;
	body = end - SFTP_LEN_FIELD;
	if (trailing > SFTP_PACKET_MAX || body > SFTP_PACKET_MAX - trailing)
		return -1;
	/* Back to the head for the length field, then to the end again. */
	w->len = 0;
	put_u32(w, (uint32_t)(body + trailing));
	w->len = end;
	return (long)end;
}

long
sftp_enc_init(unsigned char *buf, size_t sz)
{
	struct writer	w;

	start(&w, buf, sz, SSH_FXP_INIT);
	put_u32(&w, SFTP_VERSION);
	return finish(&w, 0);
}

long
sftp_enc_path(unsigned char *buf, size_t sz, uint8_t type, uint32_t id,
    const char *path, size_t path_len)
{
	struct writer	w;

	switch (type) {
	case SSH_FXP_REALPATH:
	case SSH_FXP_STAT:
	case SSH_FXP_LSTAT:
	case SSH_FXP_OPENDIR:
	case SSH_FXP_REMOVE:
	case SSH_FXP_RMDIR:
	case SSH_FXP_READLINK:
		break;
	default:
		return -1;
	}
	start(&w, buf, sz, type);
	put_u32(&w, id);
	put_string(&w, path, path_len);
	return finish(&w, 0);
}

long
sftp_enc_handle(unsigned char *buf, size_t sz, uint8_t type, uint32_t id,
    const struct sftp_str *handle)
{
	struct writer	w;

	if (type != SSH_FXP_CLOSE && type != SSH_FXP_READDIR &&
	    type != SSH_FXP_FSTAT)
		return -1;
	start(&w, buf, sz, type);
	put_u32(&w, id);
	put_handle(&w, handle);
	return finish(&w, 0);
}

long
sftp_enc_open(unsigned char *buf, size_t sz, uint32_t id, const char *path,
    size_t path_len, uint32_t pflags, const struct sftp_attrs *a)
{
	struct writer	w;

	if ((pflags & ~SFTP_FXF_KNOWN) != 0)
		return -1;
	start(&w, buf, sz, SSH_FXP_OPEN);
	put_u32(&w, id);
	put_string(&w, path, path_len);
	put_u32(&w, pflags);
	put_attrs(&w, a);
	return finish(&w, 0);
}

/* READ, or WRITE's head: handle, offset, length; WRITE's data follows. */
static long
enc_handle_span(unsigned char *buf, size_t sz, uint8_t type, uint32_t id,
    const struct sftp_str *handle, uint64_t offset, uint32_t len)
{
	struct writer	w;

	start(&w, buf, sz, type);
	put_u32(&w, id);
	put_handle(&w, handle);
	put_u64(&w, offset);
	put_u32(&w, len);	/* WRITE: data's string length */
	return finish(&w, type == SSH_FXP_WRITE ? len : 0);
}

long
sftp_enc_read(unsigned char *buf, size_t sz, uint32_t id,
    const struct sftp_str *handle, uint64_t offset, uint32_t len)
{
	return enc_handle_span(buf, sz, SSH_FXP_READ, id, handle, offset,
	    len);
}

long
sftp_enc_write_head(unsigned char *buf, size_t sz, uint32_t id,
    const struct sftp_str *handle, uint64_t offset, uint32_t len)
{
	return enc_handle_span(buf, sz, SSH_FXP_WRITE, id, handle, offset,
	    len);
}

/* MKDIR and SETSTAT share their shape: a path, then attributes. */
static long
enc_path_attrs(unsigned char *buf, size_t sz, uint8_t type, uint32_t id,
    const char *path, size_t path_len, const struct sftp_attrs *a)
{
	struct writer	w;

	start(&w, buf, sz, type);
	put_u32(&w, id);
	put_string(&w, path, path_len);
	put_attrs(&w, a);
	return finish(&w, 0);
}

long
sftp_enc_mkdir(unsigned char *buf, size_t sz, uint32_t id, const char *path,
    size_t path_len, const struct sftp_attrs *a)
{
	return enc_path_attrs(buf, sz, SSH_FXP_MKDIR, id, path, path_len, a);
}

long
sftp_enc_setstat(unsigned char *buf, size_t sz, uint32_t id,
    const char *path, size_t path_len, const struct sftp_attrs *a)
{
	return enc_path_attrs(buf, sz, SSH_FXP_SETSTAT, id, path, path_len,
	    a);
}

/*
 * Draft-02's RENAME fails when newpath exists (sftp-server links, then
 * unlinks); posix-rename@openssh.com is rename(2), which replaces it.
 */
long
sftp_enc_rename(unsigned char *buf, size_t sz, uint32_t id,
    const char *from, size_t from_len, const char *to, size_t to_len,
    int posix)
{
	struct writer	w;

	start(&w, buf, sz, posix ? SSH_FXP_EXTENDED : SSH_FXP_RENAME);
	put_u32(&w, id);
	if (posix)
		put_string(&w, POSIX_RENAME, strlen(POSIX_RENAME));
	put_string(&w, from, from_len);
	put_string(&w, to, to_len);
	return finish(&w, 0);
}

long
sftp_enc_ext(unsigned char *buf, size_t sz, uint32_t id, const char *name,
    const struct sftp_str *handle)
{
	struct writer	w;

	if (name == NULL)
		return -1;
	start(&w, buf, sz, SSH_FXP_EXTENDED);
	put_u32(&w, id);
	put_string(&w, name, strlen(name));
	if (handle != NULL)
		put_handle(&w, handle);
	return finish(&w, 0);
}
