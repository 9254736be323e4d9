/*
 * sftp.h: a pure codec of the SSH File Transfer Protocol, version 3
 * (draft-ietf-secsh-filexfer-02, with OpenSSH's extensions from its
 * PROTOCOL file), as OpenSSH's sftp-server speaks it.  Requests are
 * encoded into a caller's buffer; replies are decoded from a pointer and
 * a length.  No I/O, no allocation: it is unit-tested and fuzzed alone.
 *
 * Every packet is uint32 length, byte type, then (all but INIT and
 * VERSION) uint32 request id.  Strings are uint32 length + bytes and are
 * never NUL-terminated on the wire; decoded strings point into the
 * caller's buffer and carry their length.
 */

#ifndef SFTP_H
#define SFTP_H

#include <stddef.h>
#include <stdint.h>

#define SFTP_VERSION		3

/* Packet types (draft-02, section 3). */
#define SSH_FXP_INIT		1
#define SSH_FXP_VERSION		2
#define SSH_FXP_OPEN		3
#define SSH_FXP_CLOSE		4
#define SSH_FXP_READ		5
#define SSH_FXP_WRITE		6
#define SSH_FXP_LSTAT		7
#define SSH_FXP_FSTAT		8
#define SSH_FXP_SETSTAT		9
#define SSH_FXP_FSETSTAT	10
#define SSH_FXP_OPENDIR		11
#define SSH_FXP_READDIR		12
#define SSH_FXP_REMOVE		13
#define SSH_FXP_MKDIR		14
#define SSH_FXP_RMDIR		15
#define SSH_FXP_REALPATH	16
#define SSH_FXP_STAT		17
#define SSH_FXP_RENAME		18
#define SSH_FXP_READLINK	19
#define SSH_FXP_SYMLINK		20
#define SSH_FXP_STATUS		101
#define SSH_FXP_HANDLE		102
#define SSH_FXP_DATA		103
#define SSH_FXP_NAME		104
#define SSH_FXP_ATTRS		105
#define SSH_FXP_EXTENDED	200
#define SSH_FXP_EXTENDED_REPLY	201

/* Status codes. */
#define SSH_FX_OK			0
#define SSH_FX_EOF			1
#define SSH_FX_NO_SUCH_FILE		2
#define SSH_FX_PERMISSION_DENIED	3
#define SSH_FX_FAILURE			4
#define SSH_FX_BAD_MESSAGE		5
#define SSH_FX_NO_CONNECTION		6
#define SSH_FX_CONNECTION_LOST		7
#define SSH_FX_OP_UNSUPPORTED		8

/* Open flags (pflags). */
#define SSH_FXF_READ		0x00000001
#define SSH_FXF_WRITE		0x00000002
#define SSH_FXF_APPEND		0x00000004
#define SSH_FXF_CREAT		0x00000008
#define SSH_FXF_TRUNC		0x00000010
#define SSH_FXF_EXCL		0x00000020

/* Attribute flags. */
#define SSH_FILEXFER_ATTR_SIZE		0x00000001
#define SSH_FILEXFER_ATTR_UIDGID	0x00000002
#define SSH_FILEXFER_ATTR_PERMISSIONS	0x00000004
#define SSH_FILEXFER_ATTR_ACMODTIME	0x00000008
#define SSH_FILEXFER_ATTR_EXTENDED	0x80000000

/* Limits of ours, checked before anything is trusted. */
/*
 * The most a packet's length field may say (its 4 bytes not counted):
 * OpenSSH's SFTP_MAX_MSG_LENGTH.  sftp-server gives up on a longer
 * request and never sends a longer reply (it caps READ at 1024 less),
 * and limits@openssh.com reports this as its max packet length.
 */
#define SFTP_PACKET_MAX		(256 * 1024)
#define SFTP_HANDLE_MAX		256	/* draft-02: at most 256 bytes */
#define SFTP_EXT_MAX		32	/* extensions kept from VERSION */

/* A string of the wire, pointing into the decoded buffer. */
struct sftp_str {
	const char	*p;
	size_t		 len;
};

struct sftp_attrs {
	uint32_t	flags;		/* SSH_FILEXFER_ATTR_* present */
	uint64_t	size;
	uint32_t	uid, gid;
	uint32_t	perm;		/* st_mode: type and permission bits */
	uint32_t	atime, mtime;
};

/* The server's VERSION: its version and the extensions it offers. */
struct sftp_version {
	uint32_t	version;	/* the caller checks it is 3 */
	size_t		next;		/* how many of ext[] are filled */
	struct {
		struct sftp_str	name, data;
	}		ext[SFTP_EXT_MAX];
};

/* limits@openssh.com's reply: 0 means "no limit given". */
struct sftp_limits {
	uint64_t	packet_len;
	uint64_t	read_len;
	uint64_t	write_len;
	uint64_t	open_handles;
};

/* One decoded reply: type and id, then what that type carries. */
struct sftp_reply {
	uint8_t		 type;
	uint32_t	 id;
	/* SSH_FXP_STATUS: code is any uint32, SSH_FX_* or a later one,
	 * which the caller takes as a failure */
	uint32_t	 code;
	struct sftp_str	 message;
	/* SSH_FXP_HANDLE */
	struct sftp_str	 handle;
	/* SSH_FXP_DATA */
	struct sftp_str	 data;
	/* SSH_FXP_ATTRS */
	struct sftp_attrs attrs;
	/* SSH_FXP_NAME: count entries, walked with sftp_name_next() */
	uint32_t	 count;
	const unsigned char *names;	/* the first entry */
	size_t		 names_len;
	/* SSH_FXP_EXTENDED_REPLY: its body, for the extension to decode */
	struct sftp_str	 ext;
};

/* One entry of a NAME reply. */
struct sftp_name {
	struct sftp_str	 filename;
	struct sftp_str	 longname;	/* as ls -l prints it */
	struct sftp_attrs attrs;
};

/*
 * How long the packet at the head of buf is, all of it (its 4-byte
 * length included): 0 while fewer than 4 bytes are there, -1 when the
 * length is 0 or more than SFTP_PACKET_MAX.  A framing helper for the
 * reader, which then waits until that many bytes are in.
 */
long	sftp_packet_len(const unsigned char *, size_t);

/*
 * Decode one whole packet (its 4-byte length included, as framed by
 * sftp_packet_len).  Returns 0, or -1 on anything malformed: a length
 * field other than len - 4, a short field, a string longer than what is
 * left, bytes left over where none may be, a handle over
 * SFTP_HANDLE_MAX, attribute flags outside SSH_FILEXFER_ATTR_*, a type
 * that is not a reply to a request (VERSION is sftp_decode_version's).
 * A STATUS may stop after its code (old servers did): its message is
 * then empty; otherwise both message and language tag must be there.
 * In attributes, EXTENDED pairs are checked and skipped, the flag kept.
 */
int	sftp_decode(const unsigned char *, size_t, struct sftp_reply *);
/* The VERSION packet, whole: extensions past SFTP_EXT_MAX are checked
 * but not kept. */
int	sftp_decode_version(const unsigned char *, size_t,
	    struct sftp_version *);
/*
 * One NAME entry, at *cursor with *left bytes to go (from r->names and
 * r->names_len), called r->count times: 0 with *n filled and the cursor
 * moved past it, or -1 on malformed data.  After the last entry *left
 * should be 0: bytes past it are the caller's to refuse.
 */
int	sftp_name_next(const unsigned char **, size_t *, struct sftp_name *);
/*
 * All r->count entries of a NAME reply, the first nout of them stored in
 * out: 0 if all are there and nothing is left over, -1 if not.
 */
int	sftp_names(const struct sftp_reply *, struct sftp_name *, size_t);
/* limits@openssh.com's EXTENDED_REPLY body (r->ext): exactly four
 * uint64, or -1. */
int	sftp_decode_limits(const struct sftp_str *, struct sftp_limits *);
/* Does the VERSION offer an extension, at the version given (its data
 * string, "1" or "2" for OpenSSH's; NULL: at any)?  1 if so, 0 if not. */
int	sftp_has_ext(const struct sftp_version *, const char *, const char *);

/*
 * Encoders: each writes one whole packet into buf (of size sz) and
 * returns its length, or -1 when it does not fit or a field is out of
 * range (a packet longer than SFTP_PACKET_MAX allows, a handle over
 * SFTP_HANDLE_MAX, a type the encoder does not do, open flags outside
 * SSH_FXF_*, attribute flags outside SIZE, UIDGID, PERMISSIONS and
 * ACMODTIME: we send no extended attributes).  A NULL attrs sends none.
 */
long	sftp_enc_init(unsigned char *, size_t);
/* REALPATH, STAT, LSTAT, OPENDIR, REMOVE, RMDIR, READLINK: one path. */
long	sftp_enc_path(unsigned char *, size_t, uint8_t, uint32_t,
	    const char *, size_t);
/* CLOSE, READDIR, FSTAT: one handle. */
long	sftp_enc_handle(unsigned char *, size_t, uint8_t, uint32_t,
	    const struct sftp_str *);
long	sftp_enc_open(unsigned char *, size_t, uint32_t, const char *,
	    size_t, uint32_t, const struct sftp_attrs *);
long	sftp_enc_read(unsigned char *, size_t, uint32_t,
	    const struct sftp_str *, uint64_t, uint32_t);
/* WRITE's header only (its data follows, len bytes, sent by the caller
 * from its own buffer): the packet's length counts them, the length
 * returned does not (it is what was written into buf). */
long	sftp_enc_write_head(unsigned char *, size_t, uint32_t,
	    const struct sftp_str *, uint64_t, uint32_t);
long	sftp_enc_mkdir(unsigned char *, size_t, uint32_t, const char *,
	    size_t, const struct sftp_attrs *);
/* SETSTAT: attrs.flags says which fields go. */
long	sftp_enc_setstat(unsigned char *, size_t, uint32_t, const char *,
	    size_t, const struct sftp_attrs *);
/* RENAME, or posix-rename@openssh.com when posix is set. */
long	sftp_enc_rename(unsigned char *, size_t, uint32_t, const char *,
	    size_t, const char *, size_t, int);
/* An EXTENDED request with no arguments but a handle or nothing:
 * limits@openssh.com (handle NULL), fsync@openssh.com (a handle). */
long	sftp_enc_ext(unsigned char *, size_t, uint32_t, const char *,
	    const struct sftp_str *);

#endif /* SFTP_H */
