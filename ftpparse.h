/*
 * ftpparse.h: pure parsing and formatting of the FTP lines ftpfwd rewrites.
 *
 * Every parser takes a pointer and a length, never reads past the length,
 * never relies on a NUL, and returns -1 on anything malformed.
 */

#ifndef FTPPARSE_H
#define FTPPARSE_H

#include <sys/types.h>
#include <sys/socket.h>

#include <stddef.h>
#include <stdint.h>

/* The longest line ftpfwd will rewrite; longer lines pass untouched. */
#define FTP_LINE_MAX		4096
/* Longest command verb we recognise (RFC 959 verbs have 3 or 4). */
#define FTP_VERB_MAX		8
/* Room for a formatted PORT/EPRT/227/229 line. */
#define FTP_FMT_MAX		128

/* What a FEAT line says of RFC 2428. */
#define FTP_FEAT_EPSV		0x01
#define FTP_FEAT_EPRT		0x02
/* EPSV ALL, beyond any network protocol number. */
#define FTP_EPSV_ALL		256

/* Command classes the proxy acts on. */
enum ftp_cmd {
	FTP_CMD_OTHER = 0,
	FTP_CMD_PORT,
	FTP_CMD_EPRT,
	FTP_CMD_PASV,
	FTP_CMD_EPSV,
	FTP_CMD_LPRT,
	FTP_CMD_LPSV,
	FTP_CMD_AUTH,
	FTP_CMD_FEAT,
	FTP_CMD_USER,
	FTP_CMD_PASS,
	FTP_CMD_QUIT,
	FTP_CMD_ABOR,
	FTP_CMD_REIN,
	FTP_CMD_PBSZ,
	FTP_CMD_PROT,
	FTP_CMD_TRANSFER	/* RETR STOR STOU APPE LIST NLST MLSD */
};

int	ftp_cmd_parse(const char *, size_t, enum ftp_cmd *, char *, size_t,
	    size_t *);
int	ftp_parse_port(const char *, size_t, struct sockaddr_storage *);
int	ftp_parse_eprt(const char *, size_t, struct sockaddr_storage *);
int	ftp_parse_227(const char *, size_t, struct sockaddr_storage *);
int	ftp_parse_229(const char *, size_t, uint16_t *);
int	ftp_reply_start(const char *, size_t, int *, int *);
int	ftp_reply_ends(const char *, size_t, int);
int	ftp_feat_is_tls(const char *, size_t);
int	ftp_feat_ext(const char *, size_t);
int	ftp_parse_epsv(const char *, size_t, int *);
int	ftp_parse_auth(const char *, size_t);
int	ftp_parse_prot(const char *, size_t, char *);

int	ftp_fmt_port(char *, size_t, const struct sockaddr *);
int	ftp_fmt_eprt(char *, size_t, const struct sockaddr *);
int	ftp_fmt_227(char *, size_t, const struct sockaddr *);
int	ftp_fmt_229(char *, size_t, uint16_t);
size_t	ftp_escape(char *, size_t, const char *, size_t);
int	ftp_parse_uint(const char *, size_t, unsigned long, unsigned long *);

#endif /* FTPPARSE_H */
