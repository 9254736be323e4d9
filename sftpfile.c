/*
 * sftpfile.c: Backend=sftp, the commands on paths and the settings of
 * the next transfer, which sftpd.c's table sends here: the working
 * directory, TYPE and the like, and the commands of one or two requests
 * (DELE, MKD, RMD, RNFR and RNTO, SIZE, MDTM, MFMT, MLST, SITE CHMOD).
 */

#include <sys/types.h>
#include <sys/stat.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>

#include "ftpfwd.h"
#include "sftpchan.h"

/* The working directory and the settings of the next transfer. */

void
sf_pwd(struct session *s, char *arg)
{
	char	 buf[2 * SFS_PATH_MAX], *o = buf;
	char	 safe[SFS_PATH_MAX];
	size_t	 i;

	(void)arg;
	sfs_safe(safe, sizeof(safe), s->sfs->cwd, strlen(s->sfs->cwd));
	for (i = 0; safe[i] != '\0'; i++) {
		if (safe[i] == '"')
			*o++ = '"';
		*o++ = safe[i];
	}
	*o = '\0';
	client_reply(s, "257 \"%s\" is the current directory", buf);
}

static void
cwd_stat_cb(struct session *s, struct sfs_req *q, const struct sftp_reply *r)
{
	(void)q;
	if (r->type != SSH_FXP_ATTRS)
		sfs_status_reply(s, r, s->sfs->op, 550);
	else if (!(r->attrs.flags & SSH_FILEXFER_ATTR_PERMISSIONS) ||
	    !S_ISDIR(r->attrs.perm))
		client_reply(s, "550 %s: Not a directory", s->sfs->op);
	else {
		memcpy(s->sfs->cwd, s->sfs->op, sizeof(s->sfs->cwd));
		client_reply(s, "250 Directory changed to %s", s->sfs->op);
	}
	sfs_done(s);
}

static void
cwd_real_cb(struct session *s, struct sfs_req *q, const struct sftp_reply *r)
{
	struct sftp_name	n;

	(void)q;
	if (r->type != SSH_FXP_NAME) {
		sfs_status_reply(s, r, s->sfs->op, 550);
		sfs_done(s);
		return;
	}
	if (sftp_names(r, &n, 1) == -1 || r->count != 1 ||
	    n.filename.len == 0 || n.filename.len >= sizeof(s->sfs->op) ||
	    memchr(n.filename.p, '\0', n.filename.len) != NULL) {
		client_reply(s, "550 %s: the sftp server gave no usable path",
		    s->sfs->op);
		sfs_done(s);
		return;
	}
	memcpy(s->sfs->op, n.filename.p, n.filename.len);
	s->sfs->op[n.filename.len] = '\0';
	sfs_path_req(s, SSH_FXP_STAT, s->sfs->op, cwd_stat_cb);
}

void
sf_cwd(struct session *s, char *arg)
{
	if (sfs_path(s, arg, s->sfs->op, sizeof(s->sfs->op)) == -1)
		return;
	sfs_path_req(s, SSH_FXP_REALPATH, s->sfs->op, cwd_real_cb);
}

void
sf_cdup(struct session *s, char *arg)
{
	(void)arg;
	sf_cwd(s, "..");
}

void
sf_type(struct session *s, char *arg)
{
	if (strcasecmp(arg, "A") == 0 || strcasecmp(arg, "A N") == 0)
		s->sfs->type = 'A';
	else if (strcasecmp(arg, "I") == 0 || strcasecmp(arg, "L 8") == 0)
		s->sfs->type = 'I';
	else {
		client_reply(s, "504 ftpfwd: TYPE takes A, I or L 8");
		return;
	}
	client_reply(s, "200 Type set to %c", s->sfs->type);
}

void
sf_mode(struct session *s, char *arg)
{
	if (strcasecmp(arg, "S") == 0)
		client_reply(s, "200 Mode set to S");
	else
		client_reply(s, "504 ftpfwd: only MODE S (stream) is "
		    "supported");
}

void
sf_stru(struct session *s, char *arg)
{
	if (strcasecmp(arg, "F") == 0)
		client_reply(s, "200 Structure set to F");
	else
		client_reply(s, "504 ftpfwd: only STRU F (file) is "
		    "supported");
}

void
sf_pasv(struct session *s, char *arg)
{
	(void)arg;
	sx_pasv(s, 0);
}

void
sf_epsv(struct session *s, char *arg)
{
	int	proto;

	if (arg[0] == '\0') {
		sx_pasv(s, 1);
		return;
	}
	if (ftp_parse_epsv(arg, strlen(arg), &proto) == -1) {
		client_reply(s, "501 ftpfwd: EPSV takes ALL, 1 or 2");
		return;
	}
	if (proto == FTP_EPSV_ALL) {
		s->sfs->epsv_all = 1;
		client_reply(s, "200 EPSV ALL ok.");
		return;
	}
	if ((proto == 1 && s->local_addr.ss_family != AF_INET) ||
	    (proto == 2 && s->local_addr.ss_family != AF_INET6)) {
		client_reply(s, "522 Network protocol not supported, use (%d)",
		    s->local_addr.ss_family == AF_INET ? 1 : 2);
		return;
	}
	sx_pasv(s, 1);
}

void
sf_port(struct session *s, char *arg)
{
	sx_port(s, 0, arg);
}

void
sf_eprt(struct session *s, char *arg)
{
	sx_port(s, 1, arg);
}

void
sf_rest(struct session *s, char *arg)
{
	unsigned long	off;

	if (ftp_parse_uint(arg, strlen(arg), (unsigned long)INT64_MAX,
	    &off) == -1) {
		client_reply(s, "501 ftpfwd: REST takes a byte offset");
		return;
	}
	s->sfs->rest = off;
	client_reply(s, "350 Restarting at %lu. Send STORE or RETRIEVE.",
	    off);
}

void
sf_retr(struct session *s, char *arg)
{
	sx_retr(s, arg);
}

void
sf_stor(struct session *s, char *arg)
{
	sx_stor(s, arg, 'S');
}

void
sf_appe(struct session *s, char *arg)
{
	sx_stor(s, arg, 'A');
}

void
sf_stou(struct session *s, char *arg)
{
	sx_stor(s, arg, 'U');
}

void
sf_list(struct session *s, char *arg)
{
	sx_list(s, "LIST", arg, 'L');
}

void
sf_nlst(struct session *s, char *arg)
{
	sx_list(s, "NLST", arg, 'N');
}

void
sf_mlsd(struct session *s, char *arg)
{
	sx_list(s, "MLSD", arg, 'M');
}

void
sf_abor(struct session *s, char *arg)
{
	(void)arg;
	sx_abor(s);
}

void
sf_allo(struct session *s, char *arg)
{
	(void)arg;
	client_reply(s, "202 ALLO is not needed.");
}

/* Commands of one or two requests. */

/* A STATUS that says OK is the reply ok; anything else its error. */
static int
status_ok(struct session *s, const struct sftp_reply *r, int failcode)
{
	if (r->type == SSH_FXP_STATUS && r->code == SSH_FX_OK)
		return 1;
	sfs_status_reply(s, r, s->sfs->op, failcode);
	sfs_done(s);
	return 0;
}

static void
mlst_cb(struct session *s, struct sfs_req *q, const struct sftp_reply *r)
{
	char	facts[LOG_TEXT_MAX];

	(void)q;
	if (r->type != SSH_FXP_ATTRS) {
		sfs_status_reply(s, r, s->sfs->op, 550);
		sfs_done(s);
		return;
	}
	sx_facts(facts, sizeof(facts), &r->attrs, s->sfs->facts);
	client_reply(s, "250-Listing %s", s->sfs->op);
	client_reply(s, " %s %s", facts, s->sfs->op);
	client_reply(s, "250 End");
	sfs_done(s);
}

void
sf_mlst(struct session *s, char *arg)
{
	if (sfs_path(s, arg, s->sfs->op, sizeof(s->sfs->op)) == -1)
		return;
	sfs_path_req(s, SSH_FXP_STAT, s->sfs->op, mlst_cb);
}

static void
dele_cb(struct session *s, struct sfs_req *q, const struct sftp_reply *r)
{
	(void)q;
	if (!status_ok(s, r, 550))
		return;
	client_reply(s, "250 Deleted %s", s->sfs->op);
	sfs_done(s);
}

void
sf_dele(struct session *s, char *arg)
{
	if (sfs_path(s, arg, s->sfs->op, sizeof(s->sfs->op)) == -1)
		return;
	sfs_path_req(s, SSH_FXP_REMOVE, s->sfs->op, dele_cb);
}

static void
rmd_cb(struct session *s, struct sfs_req *q, const struct sftp_reply *r)
{
	(void)q;
	if (!status_ok(s, r, 550))
		return;
	client_reply(s, "250 Removed %s", s->sfs->op);
	sfs_done(s);
}

void
sf_rmd(struct session *s, char *arg)
{
	if (sfs_path(s, arg, s->sfs->op, sizeof(s->sfs->op)) == -1)
		return;
	sfs_path_req(s, SSH_FXP_RMDIR, s->sfs->op, rmd_cb);
}

static void
mkd_cb(struct session *s, struct sfs_req *q, const struct sftp_reply *r)
{
	char	buf[2 * SFS_PATH_MAX], *o = buf;
	size_t	i;

	(void)q;
	if (!status_ok(s, r, 550))
		return;
	for (i = 0; s->sfs->op[i] != '\0'; i++) {
		if (s->sfs->op[i] == '"')
			*o++ = '"';
		*o++ = s->sfs->op[i];
	}
	*o = '\0';
	client_reply(s, "257 \"%s\" created", buf);
	sfs_done(s);
}

void
sf_mkd(struct session *s, char *arg)
{
	unsigned char	pkt[SFS_PKT_MAX];

	if (sfs_path(s, arg, s->sfs->op, sizeof(s->sfs->op)) == -1)
		return;
	s->sfs->busy = 1;
	if (sfs_send(s, pkt, sftp_enc_mkdir(pkt, sizeof(pkt),
	    sftp_chan_next_id(s->sfs->ch), s->sfs->op, strlen(s->sfs->op),
	    NULL), mkd_cb, NULL, NULL) == -1)
		sfs_done(s);
}

static void
rnfr_cb(struct session *s, struct sfs_req *q, const struct sftp_reply *r)
{
	(void)q;
	if (r->type != SSH_FXP_ATTRS)
		sfs_status_reply(s, r, s->sfs->op, 550);
	else {
		memcpy(s->sfs->rnfr, s->sfs->op, sizeof(s->sfs->rnfr));
		s->sfs->have_rnfr = 1;
		client_reply(s, "350 Ready for RNTO.");
	}
	sfs_done(s);
}

void
sf_rnfr(struct session *s, char *arg)
{
	s->sfs->have_rnfr = 0;
	if (sfs_path(s, arg, s->sfs->op, sizeof(s->sfs->op)) == -1)
		return;
	sfs_path_req(s, SSH_FXP_LSTAT, s->sfs->op, rnfr_cb);
}

static void
rnto_cb(struct session *s, struct sfs_req *q, const struct sftp_reply *r)
{
	(void)q;
	if (!status_ok(s, r, 550))
		return;
	client_reply(s, "250 Rename successful.");
	sfs_done(s);
}

void
sf_rnto(struct session *s, char *arg)
{
	unsigned char	pkt[SFS_PKT_MAX];
	struct sfs	*f = s->sfs;

	if (!f->have_rnfr) {
		client_reply(s, "503 RNFR first.");
		return;
	}
	f->have_rnfr = 0;
	if (sfs_path(s, arg, f->op, sizeof(f->op)) == -1)
		return;
	f->busy = 1;
	if (sfs_send(s, pkt, sftp_enc_rename(pkt, sizeof(pkt),
	    sftp_chan_next_id(f->ch), f->rnfr, strlen(f->rnfr), f->op,
	    strlen(f->op), sftp_chan_has_ext(f->ch,
	    "posix-rename@openssh.com")), rnto_cb, NULL, NULL) == -1)
		sfs_done(s);
}

static void
size_reply(struct session *s, const struct sftp_attrs *a, int mdtm)
{
	char	t[32];

	if (!(a->flags & SSH_FILEXFER_ATTR_PERMISSIONS) || !S_ISREG(a->perm))
		client_reply(s, "550 %s: not a plain file", s->sfs->op);
	else if (!mdtm) {
		if (!(a->flags & SSH_FILEXFER_ATTR_SIZE))
			client_reply(s, "550 %s: no size known", s->sfs->op);
		else
			client_reply(s, "213 %llu",
			    (unsigned long long)a->size);
	} else if (!(a->flags & SSH_FILEXFER_ATTR_ACMODTIME))
		client_reply(s, "550 %s: no time known", s->sfs->op);
	else {
		sfs_fmt_time(t, sizeof(t), a->mtime);
		client_reply(s, "213 %s", t);
	}
}

static void
size_cb(struct session *s, struct sfs_req *q, const struct sftp_reply *r)
{
	if (r->type != SSH_FXP_ATTRS)
		sfs_status_reply(s, r, s->sfs->op, 550);
	else {
		sc_put(s, s->sfs->op, NULL, &r->attrs);
		size_reply(s, &r->attrs, q->slot != NULL);
	}
	sfs_done(s);
}

/*
 * SIZE and MDTM: one STAT, told apart by the slot; or what a listing
 * or a STAT said of it a moment ago (sftpcache.c).
 */
static void
stat_req(struct session *s, char *arg, int mdtm)
{
	unsigned char		 pkt[SFS_PKT_MAX];
	const struct sftp_attrs	*a;

	if (sfs_path(s, arg, s->sfs->op, sizeof(s->sfs->op)) == -1)
		return;
	if ((a = sc_get(s, s->sfs->op)) != NULL) {
		size_reply(s, a, mdtm);
		return;
	}
	s->sfs->busy = 1;
	if (sfs_send(s, pkt, sftp_enc_path(pkt, sizeof(pkt), SSH_FXP_STAT,
	    sftp_chan_next_id(s->sfs->ch), s->sfs->op, strlen(s->sfs->op)),
	    size_cb, NULL, mdtm ? s : NULL) == -1)
		sfs_done(s);
}

void
sf_size(struct session *s, char *arg)
{
	stat_req(s, arg, 0);
}

void
sf_mdtm(struct session *s, char *arg)
{
	stat_req(s, arg, 1);
}

/* YYYYMMDDHHMMSS (and an ignored .sss), UTC, to seconds. */
static int
parse_time(const char *p, size_t len, uint32_t *tp)
{
	struct tm	tm;
	unsigned long	v[6];
	static const int width[6] = { 4, 2, 2, 2, 2, 2 };
	time_t		t;
	size_t		i, j, off = 0;

	if (len != 14 && !(len > 15 && p[14] == '.'))
		return -1;
	for (i = 0; i < 6; off += width[i], i++)
		for (v[i] = 0, j = 0; j < (size_t)width[i]; j++) {
			if (p[off + j] < '0' || p[off + j] > '9')
				return -1;
			v[i] = v[i] * 10 + (unsigned long)(p[off + j] - '0');
		}
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = (int)v[0] - 1900;
	tm.tm_mon = (int)v[1] - 1;
	tm.tm_mday = (int)v[2];
	tm.tm_hour = (int)v[3];
	tm.tm_min = (int)v[4];
	tm.tm_sec = (int)v[5];
	if (v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 || v[3] > 23 ||
	    v[4] > 59 || v[5] > 60 || v[0] < 1970 ||
	    (t = timegm(&tm)) == (time_t)-1 || t > (time_t)UINT32_MAX)
		return -1;
	*tp = (uint32_t)t;
	return 0;
}

static void
mfmt_set_cb(struct session *s, struct sfs_req *q, const struct sftp_reply *r)
{
	char	t[32];

	(void)q;
	if (!status_ok(s, r, 550))
		return;
	sfs_fmt_time(t, sizeof(t), s->sfs->op_time);
	client_reply(s, "213 Modify=%s; %s", t, s->sfs->op);
	sfs_done(s);
}

static void
mfmt_stat_cb(struct session *s, struct sfs_req *q, const struct sftp_reply *r)
{
	unsigned char		pkt[SFS_PKT_MAX];
	struct sftp_attrs	a;

	(void)q;
	if (r->type != SSH_FXP_ATTRS) {
		sfs_status_reply(s, r, s->sfs->op, 550);
		sfs_done(s);
		return;
	}
	memset(&a, 0, sizeof(a));
	a.flags = SSH_FILEXFER_ATTR_ACMODTIME;
	a.atime = (r->attrs.flags & SSH_FILEXFER_ATTR_ACMODTIME) ?
	    r->attrs.atime : s->sfs->op_time;
	a.mtime = s->sfs->op_time;
	if (sfs_send(s, pkt, sftp_enc_setstat(pkt, sizeof(pkt),
	    sftp_chan_next_id(s->sfs->ch), s->sfs->op, strlen(s->sfs->op),
	    &a), mfmt_set_cb, NULL, NULL) == -1)
		sfs_done(s);
}

void
sf_mfmt(struct session *s, char *arg)
{
	char	*sp = strchr(arg, ' ');

	if (sp == NULL || sp[1] == '\0' ||
	    parse_time(arg, (size_t)(sp - arg), &s->sfs->op_time) == -1) {
		client_reply(s, "501 ftpfwd: MFMT takes YYYYMMDDHHMMSS and a "
		    "path");
		return;
	}
	if (sfs_path(s, sp + 1, s->sfs->op, sizeof(s->sfs->op)) == -1)
		return;
	/* Keep its access time: SETSTAT sets both or neither. */
	sfs_path_req(s, SSH_FXP_STAT, s->sfs->op, mfmt_stat_cb);
}

static void
chmod_cb(struct session *s, struct sfs_req *q, const struct sftp_reply *r)
{
	(void)q;
	if (!status_ok(s, r, 550))
		return;
	client_reply(s, "200 SITE CHMOD command ok.");
	sfs_done(s);
}

static void
site_chmod(struct session *s, char *arg)
{
	unsigned char		 pkt[SFS_PKT_MAX];
	struct sftp_attrs	 a;
	char			*sp = strchr(arg, ' ');
	unsigned long		 mode = 0;
	char			*p;

	if (sp == NULL || sp[1] == '\0' || sp == arg || sp - arg > 4) {
		client_reply(s, "501 ftpfwd: SITE CHMOD takes an octal mode "
		    "and a path");
		return;
	}
	for (p = arg; p < sp; p++) {
		if (*p < '0' || *p > '7') {
			client_reply(s, "501 ftpfwd: SITE CHMOD takes an octal "
			    "mode and a path");
			return;
		}
		mode = mode * 8 + (unsigned long)(*p - '0');
	}
	if (sfs_path(s, sp + 1, s->sfs->op, sizeof(s->sfs->op)) == -1)
		return;
	memset(&a, 0, sizeof(a));
	a.flags = SSH_FILEXFER_ATTR_PERMISSIONS;
	a.perm = (uint32_t)mode;
	s->sfs->busy = 1;
	if (sfs_send(s, pkt, sftp_enc_setstat(pkt, sizeof(pkt),
	    sftp_chan_next_id(s->sfs->ch), s->sfs->op, strlen(s->sfs->op),
	    &a), chmod_cb, NULL, NULL) == -1)
		sfs_done(s);
}

void
sf_site(struct session *s, char *arg)
{
	if (strncasecmp(arg, "HELP", 4) == 0 &&
	    (arg[4] == '\0' || arg[4] == ' ')) {
		client_reply(s, "214-The following SITE commands are "
		    "recognized:");
		client_reply(s, " CHMOD HELP");
		client_reply(s, "214 Help OK.");
	} else if (!s->sfs->logged_in)
		client_reply(s, "530 Please log in with USER and PASS.");
	else if (strncasecmp(arg, "CHMOD ", 6) == 0)
		site_chmod(s, arg + 6);
	else
		client_reply(s, "502 ftpfwd: SITE takes CHMOD or HELP");
}
