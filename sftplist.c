/*
 * sftplist.c: Backend=sftp, directory listings.  LIST lines are the
 * server's own "ls -l" longnames; NLST gives names; MLSD and MLST facts
 * (RFC 3659) come from the attributes, with modify in UTC.  STAT with a
 * path lists over the control connection instead.  A path that names
 * nothing but ends in a glob (inetutils' mget sends NLST *) lists what
 * matches in its directory; a name with glob characters that exists is
 * a name.
 */

#include <sys/types.h>
#include <sys/stat.h>

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "ftpfwd.h"
#include "sftpchan.h"

/* Letters of ls options that clients put before a path. */
#define LS_OPTIONS	"aAlLRrtFhdSnig1"

/* The facts of RFC 3659 we give, in FEAT's order, as OPTS MLST picks. */
static const struct {
	const char	*name;
	int		 bit;
} mlst_facts[] = {
	{ "type", SFS_FACT_TYPE }, { "size", SFS_FACT_SIZE },
	{ "modify", SFS_FACT_MODIFY }, { "perm", SFS_FACT_PERM },
	{ "unix.mode", SFS_FACT_MODE }
};

/* OPTS MLST's list ("type;size;"): the facts we know of it. */
int
sx_facts_pick(const char *list)
{
	const char	*p = list, *end;
	size_t		 i, len;
	int		 mask = 0;

	for (; *p != '\0'; p = *end == ';' ? end + 1 : end) {
		if ((end = strchr(p, ';')) == NULL)
			end = p + strlen(p);
		len = (size_t)(end - p);
		for (i = 0; i < nitems(mlst_facts); i++)
			if (strlen(mlst_facts[i].name) == len &&
			    strncasecmp(p, mlst_facts[i].name, len) == 0)
				mask |= mlst_facts[i].bit;
	}
	return mask;
}

/* The facts by name, each followed by mark (FEAT's "*") if picked. */
void
sx_facts_names(char *buf, size_t sz, int mask, int all, const char *mark)
{
	size_t	i, n = 0;

	buf[0] = '\0';
	for (i = 0; i < nitems(mlst_facts) && n < sz; i++)
		if (all || (mask & mlst_facts[i].bit))
			n += (size_t)snprintf(buf + n, sz - n, "%s%s;",
			    mlst_facts[i].name,
			    (mask & mlst_facts[i].bit) ? mark : "");
}

/* MLSD/MLST facts, those picked of type, size, modify, perm, unix.mode. */
void
sx_facts(char *buf, size_t sz, const struct sftp_attrs *a, int mask)
{
	char		 t[32], perm[16], *p = perm;
	const char	*type = "OS.unix=special";
	uint32_t	 m = a->perm;
	int		 n;

	if (!(a->flags & SSH_FILEXFER_ATTR_PERMISSIONS))
		type = "file";
	else if (S_ISREG(m))
		type = "file";
	else if (S_ISDIR(m))
		type = "dir";
	else if (S_ISLNK(m))
		type = "OS.unix=symlink";
	/* As the owner's bits say: the ssh user usually owns its files. */
	if (S_ISDIR(m)) {
		if (m & S_IXUSR)
			*p++ = 'e';
		if (m & S_IRUSR)
			*p++ = 'l';
		if (m & S_IWUSR)
			p += snprintf(p, 6, "cdfmp");
	} else {
		if (m & S_IRUSR)
			*p++ = 'r';
		if (m & S_IWUSR)
			p += snprintf(p, 6, "adfw");
	}
	*p = '\0';
	buf[0] = '\0';
	n = 0;
	if (mask & SFS_FACT_TYPE)
		n = snprintf(buf, sz, "type=%s;", type);
	if (n >= 0 && (size_t)n < sz && (mask & SFS_FACT_SIZE) &&
	    (a->flags & SSH_FILEXFER_ATTR_SIZE))
		n += snprintf(buf + n, sz - n, "size=%llu;",
		    (unsigned long long)a->size);
	if (n >= 0 && (size_t)n < sz && (mask & SFS_FACT_MODIFY) &&
	    (a->flags & SSH_FILEXFER_ATTR_ACMODTIME)) {
		sfs_fmt_time(t, sizeof(t), a->mtime);
		n += snprintf(buf + n, sz - n, "modify=%s;", t);
	}
	if (n >= 0 && (size_t)n < sz && (mask & SFS_FACT_PERM) &&
	    (a->flags & SSH_FILEXFER_ATTR_PERMISSIONS))
		n += snprintf(buf + n, sz - n, "perm=%s;", perm);
	if (n >= 0 && (size_t)n < sz && (mask & SFS_FACT_MODE) &&
	    (a->flags & SSH_FILEXFER_ATTR_PERMISSIONS))
		(void)snprintf(buf + n, sz - n, "unix.mode=0%o;",
		    (unsigned int)(m & 07777));
}

/* An ls -l line of our own, for a path that is not a directory. */
static void
ls_line(char *buf, size_t sz, const struct sftp_attrs *a, const char *name)
{
	static const char	 rwx[] = "rwxrwxrwx";
	char			 mode[11], when[32];
	time_t			 t = (time_t)a->mtime;
	struct tm		 tm;
	int			 i;

	mode[0] = S_ISDIR(a->perm) ? 'd' : S_ISLNK(a->perm) ? 'l' : '-';
	for (i = 0; i < 9; i++)
		mode[i + 1] = a->perm & (0400 >> i) ? rwx[i] : '-';
	mode[10] = '\0';
	if (gmtime_r(&t, &tm) == NULL || strftime(when, sizeof(when),
	    t > time(NULL) - 180 * 86400 ? "%b %e %H:%M" : "%b %e  %Y",
	    &tm) == 0)
		snprintf(when, sizeof(when), "Jan  1  1970");
	snprintf(buf, sz, "%s    1 %-8u %-8u %12llu %s %s", mode,
	    (unsigned int)a->uid, (unsigned int)a->gid,
	    (unsigned long long)a->size, when, name);
}

/* One entry of a listing into out, if the listing shows it. */
static void
list_entry(struct sfs_xfer *x, const struct sftp_name *n)
{
	char	name[SFS_PATH_MAX], line[SFS_PATH_MAX + LOG_TEXT_MAX];
	char	facts[LOG_TEXT_MAX];
	int	dots;

	sfs_safe(name, sizeof(name), n->filename.p, n->filename.len);
	dots = strcmp(name, ".") == 0 || strcmp(name, "..") == 0;
	if (x->pattern[0] != '\0' && fnmatch(x->pattern, name, FNM_PERIOD))
		return;
	/* What a directory's listing says answers SIZE and MDTM a while. */
	if (!dots && x->pattern[0] == '\0' && x->handle_len > 0)
		sc_put(x->s, x->path, name, &n->attrs);
	if ((x->how == 'N' || x->how == 'M') && dots)
		return;
	if ((x->how == 'L' || x->how == 'N' || x->how == 'S') && !x->all &&
	    name[0] == '.' && x->pattern[0] == '\0')
		return;
	switch (x->how) {
	case 'N':
		evbuffer_add_printf(x->out, "%s%s\r\n", x->prefix, name);
		break;
	case 'M':
		sx_facts(facts, sizeof(facts), &n->attrs, x->s->sfs->facts);
		evbuffer_add_printf(x->out, "%s %s\r\n", facts, name);
		break;
	default:
		if (n->longname.len > 0)
			sfs_safe(line, sizeof(line), n->longname.p,
			    n->longname.len);
		else
			ls_line(line, sizeof(line), &n->attrs, name);
		evbuffer_add_printf(x->out, "%s%s\r\n", x->how == 'S' ? " " :
		    "", line);
		break;
	}
}

/* STAT path: the listing is the reply itself. */
static void
stat_done(struct sfs_xfer *x)
{
	struct evbuffer	*ctl = bufferevent_get_output(x->s->ctl.cout);
	char		 p[SFS_PATH_MAX];

	sfs_safe(p, sizeof(p), x->path, strlen(x->path));
	evbuffer_add_printf(ctl, "213-Status of %s:\r\n", p);
	evbuffer_add_buffer(ctl, x->out);
	sx_end(x, "213 End of status.");
}

static void
readdir_cb(struct session *s, struct sfs_req *q, const struct sftp_reply *r)
{
	struct sfs_xfer		*x = q->xfer;
	const unsigned char	*cur;
	struct sftp_name	 n;
	size_t			 left;
	uint32_t		 i;

	(void)s;
	x->nreq--;
	if (r->type == SSH_FXP_STATUS && r->code == SSH_FX_EOF) {
		x->src_eof = 1;
		sx_close_handle(x);
		if (x->how == 'S')
			stat_done(x);
		else
			sx_want_write(x);
		return;
	}
	if (r->type != SSH_FXP_NAME) {
		sx_end_status(x, r, 451);
		return;
	}
	cur = r->names;
	left = r->names_len;
	for (i = 0; i < r->count; i++) {
		if (sftp_name_next(&cur, &left, &n) == -1) {
			sx_end(x, "451 ftpfwd: a malformed directory entry "
			    "from the sftp server");
			return;
		}
		list_entry(x, &n);
	}
	if (evbuffer_get_length(x->out) > SFS_XFER_CAP && x->how == 'S') {
		sx_end(x, "451 ftpfwd: too long for STAT, use LIST");
		return;
	}
	if (x->how != 'S')
		sx_want_write(x);
	sl_more(x);
}

/* The next READDIR, unless one is out or the client lags behind. */
void
sl_more(struct sfs_xfer *x)
{
	unsigned char	pkt[SFS_PKT_MAX];
	struct sftp_str	h = { x->handle, x->handle_len };

	if (x->dead || x->src_eof || x->nreq > 0 || x->handle_len == 0 ||
	    evbuffer_get_length(x->out) > SFS_OUT_HIGH)
		return;
	if (sx_send(x, pkt, sftp_enc_handle(pkt, sizeof(pkt), SSH_FXP_READDIR,
	    sftp_chan_next_id(x->s->sfs->ch), &h), readdir_cb, NULL) == 0)
		x->nreq++;
}

static void
list_data_cb(struct session *s, const char *err)
{
	struct sfs_xfer	*x = s->sfs->xfer;

	if (sx_data_came(x, err) == -1)
		return;
	client_reply(s, "150 Here comes the directory listing.");
	x->opened = 1;
	if (x->handle_len == 0)
		x->src_eof = 1;		/* one entry, already in out */
	sx_want_write(x);
	sl_more(x);
}

/* The listing is ready to run: to the control (STAT), else the data. */
void
sl_start(struct sfs_xfer *x)
{
	if (x->how != 'S') {
		sx_data_get(x, list_data_cb);
		return;
	}
	if (x->handle_len == 0)
		stat_done(x);
	else
		sl_more(x);
}

static void
opendir_cb(struct session *s, struct sfs_req *q, const struct sftp_reply *r)
{
	(void)s;
	if (sx_handle(q->xfer, r) == 0)
		sl_start(q->xfer);
}

static void
opendir(struct sfs_xfer *x, const char *path)
{
	unsigned char	pkt[SFS_PKT_MAX];

	(void)sx_send(x, pkt, sftp_enc_path(pkt, sizeof(pkt), SSH_FXP_OPENDIR,
	    sftp_chan_next_id(x->s->sfs->ch), path, strlen(path)), opendir_cb,
	    NULL);
}

/* Nothing by that name: a glob in its last part lists the matches. */
static int
list_glob(struct sfs_xfer *x, const char *arg)
{
	char		 dir[SFS_PATH_MAX], given[SFS_PATH_MAX];
	const char	*slash = strrchr(x->path, '/'), *base;

	snprintf(given, sizeof(given), "%s", arg);
	arg = given;
	base = slash != NULL ? slash + 1 : x->path;
	if (strpbrk(base, "*?[") == NULL ||
	    strlen(base) >= sizeof(x->pattern))
		return -1;
	snprintf(x->pattern, sizeof(x->pattern), "%s", base);
	if (slash == x->path)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - x->path),
		    x->path);
	/* NLST sub/x* answers sub/x1: the names as the client asked. */
	x->prefix[0] = '\0';
	if ((slash = strrchr(arg, '/')) != NULL)
		snprintf(x->prefix, sizeof(x->prefix), "%.*s",
		    (int)(slash - arg + 1), arg);
	opendir(x, dir);
	return 0;
}

static void
list_stat_cb(struct session *s, struct sfs_req *q, const struct sftp_reply *r)
{
	struct sfs_xfer		*x = q->xfer;
	struct sftp_name	 n;
	const char		*slash, *base;
	char			 given[SFS_PATH_MAX];

	(void)s;
	if (r->type == SSH_FXP_STATUS && r->code == SSH_FX_NO_SUCH_FILE &&
	    list_glob(x, x->prefix) == 0)
		return;
	if (r->type != SSH_FXP_ATTRS) {
		sx_end_status(x, r, 550);
		return;
	}
	if ((r->attrs.flags & SSH_FILEXFER_ATTR_PERMISSIONS) &&
	    S_ISDIR(r->attrs.perm)) {
		x->prefix[0] = '\0';
		opendir(x, x->path);
		return;
	}
	if (x->how == 'M') {
		sx_end(x, "501 %s: Not a directory", x->path);
		return;
	}
	/* A file: the one line, named as the client named it. */
	slash = strrchr(x->path, '/');
	base = slash != NULL ? slash + 1 : x->path;
	snprintf(given, sizeof(given), "%s", x->how == 'N' ? x->prefix :
	    base);
	x->prefix[0] = '\0';
	memset(&n, 0, sizeof(n));
	n.filename.p = given;
	n.filename.len = strlen(given);
	n.attrs = r->attrs;
	x->all = 1;
	list_entry(x, &n);
	sl_start(x);
}

/* LIST and NLST: leading ls options (-a shows dot files) are skipped. */
static const char *
list_options(struct sfs_xfer *x, const char *arg)
{
	size_t	n;

	while (arg[0] == '-' && arg[1] != '\0' &&
	    (n = strspn(arg + 1, LS_OPTIONS)) > 0 &&
	    (arg[1 + n] == '\0' || arg[1 + n] == ' ')) {
		if (memchr(arg + 1, 'a', n) != NULL ||
		    memchr(arg + 1, 'A', n) != NULL)
			x->all = 1;
		arg += 1 + n;
		while (*arg == ' ')
			arg++;
	}
	return arg;
}

void
sx_list(struct session *s, const char *verb, const char *arg, int how)
{
	struct sfs_xfer	*x;
	unsigned char	 pkt[SFS_PKT_MAX];

	if (how != 'S' && s->sfs->data.mode == SD_NONE) {
		client_reply(s, "425 Use PORT or PASV first.");
		return;
	}
	if ((x = sx_new(s, SX_LIST, verb)) == NULL)
		return;
	x->how = how;
	if (how != 'M')
		arg = list_options(x, arg);
	/* The argument as given, kept for NLST's names and globs. */
	snprintf(x->prefix, sizeof(x->prefix), "%s", arg);
	if (sfs_path(s, arg, x->path, sizeof(x->path)) == -1) {
		sx_free(s);		/* sfs_path has said why */
		sfs_done(s);
		return;
	}
	(void)sx_send(x, pkt, sftp_enc_path(pkt, sizeof(pkt), SSH_FXP_STAT,
	    sftp_chan_next_id(s->sfs->ch), x->path, strlen(x->path)),
	    list_stat_cb, NULL);
}
