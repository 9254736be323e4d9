/*
 * sftpd.c: Backend=sftp, the FTP side.  ftpfwd is the FTP server here:
 * it answers every command itself, from the ssh server's files, through
 * an sftp channel of the master (sftpchan.c, shared by all sessions).
 * This file holds a session's life, the command table, login, paths and
 * the commands that take a request or two; sftpxfer.c moves the data.
 *
 * One command at a time: while its reply is due (busy), the next line
 * waits.  During a transfer only ABOR, STAT and NOOP are answered; the
 * rest waits for the transfer's end, as RFC 959 lets a server do.
 */

#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "ftpfwd.h"
#include "sftpchan.h"

#define SC_LOGIN	0x01	/* needs a login */
#define SC_ARG		0x02	/* needs an argument */
#define SC_XFER		0x04	/* answered during a transfer */
#define SC_CHANGES	0x08	/* changes files: forget what we knew */

struct sfs_cmd {
	const char	*verb;
	int		 flags;
	void		 (*fn)(struct session *, char *);
};

static struct sftp_pool	*pool;

static void	sf_user(struct session *, char *);
static void	sf_pass(struct session *, char *);
static void	sf_quit(struct session *, char *);
static void	sf_rein(struct session *, char *);
static void	sf_syst(struct session *, char *);
static void	sf_feat(struct session *, char *);
static void	sf_opts(struct session *, char *);
static void	sf_help(struct session *, char *);
static void	sf_noop(struct session *, char *);
static void	sf_stat(struct session *, char *);
static void	sf_auth(struct session *, char *);
static void	sf_pbsz(struct session *, char *);
static void	sf_prot(struct session *, char *);

static const struct sfs_cmd sfs_cmds[] = {
	{ "USER",	SC_ARG,			sf_user },
	{ "PASS",	0,			sf_pass },
	{ "QUIT",	SC_XFER,		sf_quit },
	{ "REIN",	0,			sf_rein },
	{ "SYST",	0,			sf_syst },
	{ "FEAT",	0,			sf_feat },
	{ "OPTS",	SC_ARG,			sf_opts },
	{ "HELP",	0,			sf_help },
	{ "NOOP",	SC_XFER,		sf_noop },
	{ "STAT",	SC_XFER,		sf_stat },
	{ "AUTH",	SC_ARG,			sf_auth },
	{ "PBSZ",	SC_ARG,			sf_pbsz },
	{ "PROT",	SC_ARG,			sf_prot },
	{ "PWD",	SC_LOGIN,		sf_pwd },
	{ "XPWD",	SC_LOGIN,		sf_pwd },
	{ "CWD",	SC_LOGIN | SC_ARG,	sf_cwd },
	{ "XCWD",	SC_LOGIN | SC_ARG,	sf_cwd },
	{ "CDUP",	SC_LOGIN,		sf_cdup },
	{ "XCUP",	SC_LOGIN,		sf_cdup },
	{ "TYPE",	SC_LOGIN | SC_ARG,	sf_type },
	{ "MODE",	SC_LOGIN | SC_ARG,	sf_mode },
	{ "STRU",	SC_LOGIN | SC_ARG,	sf_stru },
	{ "PASV",	SC_LOGIN,		sf_pasv },
	{ "EPSV",	SC_LOGIN,		sf_epsv },
	{ "PORT",	SC_LOGIN | SC_ARG,	sf_port },
	{ "EPRT",	SC_LOGIN | SC_ARG,	sf_eprt },
	{ "REST",	SC_LOGIN | SC_ARG,	sf_rest },
	{ "RETR",	SC_LOGIN | SC_ARG,	sf_retr },
	{ "STOR",	SC_LOGIN | SC_ARG | SC_CHANGES,	sf_stor },
	{ "APPE",	SC_LOGIN | SC_ARG | SC_CHANGES,	sf_appe },
	{ "STOU",	SC_LOGIN | SC_CHANGES,		sf_stou },
	{ "LIST",	SC_LOGIN,		sf_list },
	{ "NLST",	SC_LOGIN,		sf_nlst },
	{ "MLSD",	SC_LOGIN,		sf_mlsd },
	{ "MLST",	SC_LOGIN,		sf_mlst },
	{ "ABOR",	SC_XFER,		sf_abor },
	{ "DELE",	SC_LOGIN | SC_ARG | SC_CHANGES,	sf_dele },
	{ "MKD",	SC_LOGIN | SC_ARG | SC_CHANGES,	sf_mkd },
	{ "XMKD",	SC_LOGIN | SC_ARG | SC_CHANGES,	sf_mkd },
	{ "RMD",	SC_LOGIN | SC_ARG | SC_CHANGES,	sf_rmd },
	{ "XRMD",	SC_LOGIN | SC_ARG | SC_CHANGES,	sf_rmd },
	{ "RNFR",	SC_LOGIN | SC_ARG,	sf_rnfr },
	{ "RNTO",	SC_LOGIN | SC_ARG | SC_CHANGES,	sf_rnto },
	{ "SIZE",	SC_LOGIN | SC_ARG,	sf_size },
	{ "MDTM",	SC_LOGIN | SC_ARG,	sf_mdtm },
	{ "MFMT",	SC_LOGIN | SC_ARG | SC_CHANGES,	sf_mfmt },
	{ "SITE",	SC_ARG | SC_CHANGES,			sf_site },
	{ "ALLO",	SC_LOGIN,		sf_allo },
};

static void
pool_log(int level, const char *fmt, ...)
{
	char	line[LOG_LINE_MAX];
	va_list	ap;

	va_start(ap, fmt);
	(void)vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	logit((enum loglevel)level, "%s", line);
}

/* Text for a reply: no control character may end the line early. */
size_t
sfs_safe(char *dst, size_t dsz, const char *src, size_t len)
{
	size_t	i;

	if (dsz == 0)
		return 0;
	for (i = 0; i < len && i + 1 < dsz; i++)
		dst[i] = (unsigned char)src[i] < 0x20 || src[i] == 0x7f ?
		    '?' : src[i];
	dst[i] = '\0';
	return i;
}

void
sfs_fmt_time(char *buf, size_t sz, uint32_t t)
{
	time_t		tt = (time_t)t;
	struct tm	tm;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, sz, "%Y%m%d%H%M%S", &tm) == 0)
		snprintf(buf, sz, "19700101000000");
}

/* READ or WRITE length: limits@openssh.com's, within our bounds. */
size_t
sfs_io_len(const struct session *s, int write)
{
	const struct sftp_limits *l = sftp_chan_limits(s->sfs->ch);
	uint64_t	 n = write ? l->write_len : l->read_len;

	if (n == 0)
		return SFTP_CHAN_IO_DEFAULT;
	return n > SFTP_CHAN_IO_MAX ? SFTP_CHAN_IO_MAX : (size_t)n;
}

int
sfs_start(struct session *s)
{
	if ((s->sfs = calloc(1, sizeof(*s->sfs))) == NULL)
		return -1;
	TAILQ_INIT(&s->sfs->reqs);
	TAILQ_INIT(&s->sfs->cache);
	s->sfs->type = 'A';
	s->sfs->facts = SFS_FACTS_ALL;
	s->sfs->data.lfd = s->sfs->data.fd = -1;
	if (pool == NULL && (pool = sftp_pool_new(evbase, opt.ctl_path, 0,
	    pool_log)) == NULL)
		return -1;
	client_reply(s, "220 ftpfwd %s ready: files of the ssh server, "
	    "through sftp", FTPFWD_VERSION);
	return 0;
}

/* Forget every reply still due: nothing may call back into s. */
static void
sfs_forget(struct session *s, struct sfs_xfer *x, int all)
{
	struct sfs_req	*q, *next;

	for (q = TAILQ_FIRST(&s->sfs->reqs); q != NULL; q = next) {
		next = TAILQ_NEXT(q, entry);
		if (!all && q->xfer != x)
			continue;
		if (s->sfs->ch != NULL)
			sftp_chan_forget(s->sfs->ch, q->id);
		TAILQ_REMOVE(&s->sfs->reqs, q, entry);
		free(q);
	}
}

void
sfs_cancel(struct session *s, struct sfs_xfer *x)
{
	sfs_forget(s, x, 0);
}

/* From session_end: release what the session opened. */
void
sfs_free(struct session *s)
{
	struct sfs	*f = s->sfs;

	if (f == NULL)
		return;
	sx_free(s);
	sx_data_close(s);
	sfs_forget(s, NULL, 1);
	sc_clear(s);
	sftp_chan_put(f->ch);
	free(f);
	s->sfs = NULL;
}

static void
sfs_reply_cb(const struct sftp_reply *r, const char *err, void *arg)
{
	struct sfs_req	*q = arg;
	struct session	*s = q->s;
	char		 why[LOG_TEXT_MAX], reply[LOG_TEXT_MAX + 64];

	TAILQ_REMOVE(&s->sfs->reqs, q, entry);
	if (r == NULL) {
		free(q);
		logit(LL_ERROR, "#%u %s", s->id, escape(why, sizeof(why), err,
		    strlen(err)));
		snprintf(reply, sizeof(reply), "421 ftpfwd: %s", why);
		sx_free(s);
		session_close(s, reply);
		sx_chan_wake();
		return;
	}
	if (q->fn != NULL && !s->dead)
		q->fn(s, q, r);
	free(q);
	sx_chan_wake();
}

static void
sfs_lost(struct session *s, const char *what)
{
	logit(LL_ERROR, "#%u cannot send %s on the sftp channel", s->id, what);
	sx_free(s);
	session_close(s, "421 ftpfwd: the sftp channel is gone or full");
}

/*
 * Send one encoded request (len from an sftp_enc_*) whose reply goes to
 * fn.  On failure it has answered the client: a path too long, or a
 * lost channel that ends the session.
 */
int
sfs_send(struct session *s, const unsigned char *pkt, long len, sfs_fn fn,
    struct sfs_xfer *x, void *slot)
{
	return sfs_send_write(s, pkt, len, NULL, 0, fn, x, slot);
}

int
sfs_send_write(struct session *s, const unsigned char *pkt, long len,
    struct evbuffer *data, size_t datalen, sfs_fn fn, struct sfs_xfer *x,
    void *slot)
{
	struct sfs_req	*q;
	int		 rv;

	if (len <= 0) {
		client_reply(s, "553 ftpfwd: path too long");
		return -1;
	}
	if ((q = calloc(1, sizeof(*q))) == NULL) {
		sfs_lost(s, "a request (out of memory)");
		return -1;
	}
	q->s = s;
	q->fn = fn;
	q->xfer = x;
	q->slot = slot;
	q->id = (uint32_t)pkt[5] << 24 | (uint32_t)pkt[6] << 16 |
	    (uint32_t)pkt[7] << 8 | pkt[8];
	/*
	 * A channel lost while the session waited for nothing (sftp-server
	 * killed under another session's transfer) is replaced: paths are
	 * ours, and no handle of this session's was on it.
	 */
	if (TAILQ_EMPTY(&s->sfs->reqs) && sftp_chan_dead(s->sfs->ch) &&
	    (s->sfs->xfer == NULL || s->sfs->xfer->handle_len == 0)) {
		logit(LL_VERBOSE, "#%u its sftp channel was lost: another",
		    s->id);
		sftp_chan_put(s->sfs->ch);
		s->sfs->ch = sftp_chan_get(pool);
	}
	TAILQ_INSERT_TAIL(&s->sfs->reqs, q, entry);
	if (s->sfs->ch == NULL)
		rv = -1;
	else
		rv = data != NULL ? sftp_chan_send_write_buf(s->sfs->ch, pkt,
		    (size_t)len, data, datalen, sfs_reply_cb, q) :
		    sftp_chan_send(s->sfs->ch, pkt, (size_t)len, sfs_reply_cb,
		    q);
	if (rv != 0) {
		TAILQ_REMOVE(&s->sfs->reqs, q, entry);
		free(q);
		sfs_lost(s, "a request");
		return -1;
	}
	return 0;
}

/* A request of one path, answered to fn: the command is busy till then. */
void
sfs_path_req(struct session *s, uint8_t type, const char *path, sfs_fn fn)
{
	unsigned char	pkt[SFS_PKT_MAX];

	s->sfs->busy = 1;
	if (sfs_send(s, pkt, sftp_enc_path(pkt, sizeof(pkt), type,
	    sftp_chan_next_id(s->sfs->ch), path, strlen(path)), fn, NULL,
	    NULL) == -1)
		sfs_done(s);
}

/*
 * The client's path against the working directory.  "." and ".." are
 * left to the server (REALPATH, or the kernel's own lookup).
 */
int
sfs_path(struct session *s, const char *arg, char *buf, size_t sz)
{
	int	n;

	if (*arg == '\0')
		n = snprintf(buf, sz, "%s", s->sfs->cwd);
	else if (*arg == '/')
		n = snprintf(buf, sz, "%s", arg);
	else
		n = snprintf(buf, sz, "%s%s%s", s->sfs->cwd,
		    strcmp(s->sfs->cwd, "/") == 0 ? "" : "/", arg);
	if (n < 0 || (size_t)n >= sz) {
		client_reply(s, "553 ftpfwd: path too long");
		return -1;
	}
	return 0;
}

/* An sftp STATUS (or a reply of the wrong type) as an FTP reply. */
void
sfs_status_reply(struct session *s, const struct sftp_reply *r,
    const char *path, int failcode)
{
	char		 p[SFS_PATH_MAX], m[LOG_TEXT_MAX];
	const char	*msg;
	int		 code;

	sfs_safe(p, sizeof(p), path, strlen(path));
	if (r->type != SSH_FXP_STATUS) {
		client_reply(s, "451 %s: unexpected sftp reply (type %u)", p,
		    r->type);
		return;
	}
	switch (r->code) {
	case SSH_FX_NO_SUCH_FILE:
		code = 550, msg = "No such file or directory";
		break;
	case SSH_FX_PERMISSION_DENIED:
		code = 550, msg = "Permission denied";
		break;
	case SSH_FX_FAILURE:
		code = failcode, msg = "Failure";
		break;
	case SSH_FX_OP_UNSUPPORTED:
		code = 502, msg = "Operation unsupported by the sftp server";
		break;
	default:
		code = 451, msg = "sftp error";
		break;
	}
	if (r->message.len > 0)
		msg = m, sfs_safe(m, sizeof(m), r->message.p, r->message.len);
	client_reply(s, "%d %s: %s", code, p, msg);
}

/* The command's replies are out: read the next line. */
void
sfs_done(struct session *s)
{
	s->sfs->busy = 0;
	ctl_resume(s);
}

int
sfs_busy(const struct session *s)
{
	return s->sfs->busy || sx_running(s);
}

/* The master went, and with it the channels: every session goes. */
void
sfs_master_gone(const char *reply)
{
	struct session	*s, *next;

	for (s = TAILQ_FIRST(&sessions); s != NULL; s = next) {
		next = TAILQ_NEXT(s, entry);
		if (s->sfs != NULL) {
			sx_free(s);
			session_close(s, reply);
		}
	}
}

static const struct sfs_cmd *
sfs_cmd_find(const char *verb)
{
	size_t	i;

	for (i = 0; i < nitems(sfs_cmds); i++)
		if (strcmp(sfs_cmds[i].verb, verb) == 0)
			return &sfs_cmds[i];
	return NULL;
}

/*
 * One line.  Returns 0 to read on, -1 when it must wait (busy, or a
 * transfer runs): the line then stays in the buffer.
 */
static int
sfs_line(struct session *s, struct evbuffer *in, const char *line,
    size_t len, size_t total)
{
	const struct sfs_cmd	*c;
	enum ftp_cmd		 cls;
	char			 verb[FTP_VERB_MAX + 1], arg[FTP_LINE_MAX + 1];
	size_t			 off;

	if (ftp_cmd_parse(line, len, &cls, verb, sizeof(verb), &off) == -1) {
		evbuffer_drain(in, total);
		client_reply(s, "500 Syntax error, command unrecognized.");
		return 0;
	}
	c = sfs_cmd_find(verb);
	if (sx_running(s) && (c == NULL || !(c->flags & SC_XFER)))
		return -1;
	memcpy(arg, line + off, len - off);
	arg[len - off] = '\0';
	evbuffer_drain(in, total);
	logit(LL_DEBUG2, "#%u client %s", s->id, verb);
	if (c == NULL) {
		client_reply(s, "502 Command not implemented.");
		return 0;
	}
	if (memchr(arg, '\0', len - off) != NULL) {
		client_reply(s, "501 ftpfwd: NUL in the argument");
		return 0;
	}
	if ((c->flags & SC_LOGIN) && !s->sfs->logged_in) {
		client_reply(s, "530 Please log in with USER and PASS.");
		return 0;
	}
	if ((c->flags & SC_ARG) && arg[0] == '\0') {
		client_reply(s, "501 %s needs an argument.", verb);
		return 0;
	}
	if (c->flags & SC_CHANGES)
		sc_clear_all();
	c->fn(s, arg);
	return 0;
}

/* Client lines, while no command waits for the server. */
void
sfs_input(struct session *s)
{
	struct evbuffer	*in;
	size_t		 total, len;
	char		*line;
	int		 partial;

	while (!s->dead && !s->closing && !s->sfs->busy) {
		in = bufferevent_get_input(s->ctl.cin);
		if (evbuffer_get_length(in) == 0)
			break;
		if (s->ctl.cli_discard) {
			if (line_rest(in, NULL))
				s->ctl.cli_discard = 0;
			continue;
		}
		if (next_line(in, &line, &len, &total, &partial) == -1)
			break;
		if (partial || len == FTP_LINE_MAX) {
			if (sx_running(s))
				break;
			client_reply(s, "500 ftpfwd: command line too long");
			s->ctl.cli_discard = partial;
			evbuffer_drain(in, total);
			continue;
		}
		if (sfs_line(s, in, line, len, total) == -1)
			break;
	}
}

/* Login: the door is on this machine; behind it, the ssh user. */

static void
sf_user(struct session *s, char *arg)
{
	char	name[USER_LOG_MAX];

	sx_data_close(s);
	s->sfs->logged_in = 0;
	s->sfs->user_given = 1;
	sfs_safe(name, sizeof(name), arg, strlen(arg));
	escape(s->ctl.user, sizeof(s->ctl.user), arg, strlen(arg));
	client_reply(s, "331 Password required for %s", name);
}

/* Constant time in the length of what was sent, whatever matches. */
static int
password_ok(const char *sent)
{
	const unsigned char	*a = (const unsigned char *)sent;
	const unsigned char	*b = (const unsigned char *)opt.password;
	size_t			 la = strlen(sent), lb = strlen(opt.password);
	size_t			 i;
	unsigned int		 diff = la != lb;

	for (i = 0; i < la; i++)
		diff |= a[i] ^ b[i < lb ? i : 0];
	return diff == 0;
}

static void
home_cb(struct session *s, struct sfs_req *q, const struct sftp_reply *r)
{
	struct sftp_name	n;

	(void)q;
	if (r->type != SSH_FXP_NAME || sftp_names(r, &n, 1) == -1 ||
	    r->count != 1 || n.filename.len == 0 ||
	    n.filename.len >= sizeof(s->sfs->cwd) ||
	    memchr(n.filename.p, '\0', n.filename.len) != NULL) {
		sfs_status_reply(s, r, ".", 550);
		client_reply(s, "530 ftpfwd: cannot find the ssh user's home");
		sfs_done(s);
		return;
	}
	memcpy(s->sfs->cwd, n.filename.p, n.filename.len);
	s->sfs->cwd[n.filename.len] = '\0';
	s->sfs->logged_in = 1;
	s->ctl.logged_in = 1;
	logit(LL_INFO, "#%u logged in as %s, home %s", s->id, s->ctl.user,
	    s->sfs->cwd);
	if (opt.ssh_user != NULL && opt.ssh_host != NULL)
		client_reply(s, "230 Logged in as %s@%s through sftp",
		    opt.ssh_user, opt.ssh_host);
	else
		client_reply(s, "230 Logged in through sftp (ssh master at "
		    "%s)", opt.ctl_path);
	sfs_done(s);
}

static void
sf_pass(struct session *s, char *arg)
{
	if (!s->sfs->user_given) {
		client_reply(s, "503 Login with USER first.");
		return;
	}
	if (s->sfs->logged_in) {
		client_reply(s, "230 Already logged in.");
		return;
	}
	if (opt.password != NULL && !password_ok(arg)) {
		logit(LL_INFO, "#%u wrong password for %s", s->id,
		    s->ctl.user);
		s->sfs->user_given = 0;
		client_reply(s, "530 Login incorrect.");
		return;
	}
	if (s->sfs->ch == NULL && (s->sfs->ch = sftp_chan_get(pool)) ==
	    NULL) {
		client_reply(s, "421 ftpfwd: no sftp channel through the ssh "
		    "master at %s", opt.ctl_path);
		session_close(s, NULL);
		return;
	}
	sfs_path_req(s, SSH_FXP_REALPATH, ".", home_cb);
}

static void
sf_quit(struct session *s, char *arg)
{
	(void)arg;
	sx_free(s);
	session_close(s, "221 Goodbye.");
}

static void
sf_rein(struct session *s, char *arg)
{
	(void)arg;
	sx_data_close(s);
	s->sfs->logged_in = s->sfs->user_given = s->ctl.logged_in = 0;
	s->sfs->type = 'A';
	s->sfs->rest = 0;
	s->sfs->have_rnfr = 0;
	s->ctl.user[0] = '\0';
	client_reply(s, "220 ftpfwd ready for a new user");
}

static void
sf_syst(struct session *s, char *arg)
{
	(void)arg;
	client_reply(s, "215 UNIX Type: L8");
}

static void
sf_feat(struct session *s, char *arg)
{
	char	facts[LOG_TEXT_MAX];

	(void)arg;
	client_reply(s, "211-Features:");
	if (opt.cl_tls == TLS_EXPLICIT)
		client_reply(s, " AUTH TLS\r\n PBSZ\r\n PROT");
	sx_facts_names(facts, sizeof(facts), s->sfs->facts, 1, "*");
	client_reply(s, " EPRT\r\n EPSV\r\n MDTM\r\n MFMT\r\n SIZE\r\n"
	    " REST STREAM\r\n MLST %s\r\n UTF8\r\n TVFS", facts);
	client_reply(s, "211 End");
}

static void
sf_opts(struct session *s, char *arg)
{
	char	facts[FTP_LINE_MAX];

	if (strcasecmp(arg, "UTF8 ON") == 0 || strcasecmp(arg, "UTF8") == 0)
		client_reply(s, "200 Always in UTF8 mode.");
	else if (strncasecmp(arg, "MLST", 4) == 0 &&
	    (arg[4] == '\0' || arg[4] == ' ')) {
		/* Those we know of what it asks, and the reply says which. */
		s->sfs->facts = sx_facts_pick(arg + 4 + strspn(arg + 4, " "));
		sx_facts_names(facts, sizeof(facts), s->sfs->facts, 0, "");
		client_reply(s, "200 MLST OPTS %s", facts);
	} else
		client_reply(s, "501 ftpfwd: OPTS takes UTF8 ON or MLST");
}

static void
sf_help(struct session *s, char *arg)
{
	size_t	i;
	char	line[80];
	int	n = 0;

	(void)arg;
	client_reply(s, "214-The following commands are recognized:");
	line[0] = '\0';
	for (i = 0; i < nitems(sfs_cmds); i++) {
		n += snprintf(line + n, sizeof(line) - n, " %-4s",
		    sfs_cmds[i].verb);
		if (i % 12 == 11 || i + 1 == nitems(sfs_cmds)) {
			client_reply(s, "%s", line);
			n = 0;
		}
	}
	client_reply(s, "214 Help OK.");
}

static void
sf_noop(struct session *s, char *arg)
{
	(void)arg;
	client_reply(s, "200 NOOP ok.");
}

static void
sf_stat(struct session *s, char *arg)
{
	char	xfer[LOG_TEXT_MAX];

	if (arg[0] != '\0' && !sx_running(s)) {
		if (!s->sfs->logged_in)
			client_reply(s, "530 Please log in with USER and "
			    "PASS.");
		else
			sx_list(s, "STAT", arg, 'S');
		return;
	}
	sx_status(s, xfer, sizeof(xfer));
	client_reply(s, "211-ftpfwd %s status:", FTPFWD_VERSION);
	client_reply(s, "     Files served by sftp through the ssh master "
	    "at %s", opt.ctl_path);
	client_reply(s, "     %s, TYPE %s, %s", s->sfs->logged_in ?
	    "Logged in" : "Not logged in", s->sfs->type == 'A' ? "ASCII" :
	    "BINARY", xfer);
	client_reply(s, "211 End of status.");
}

static void
sf_auth(struct session *s, char *arg)
{
	if (s->sfs->logged_in || s->sfs->user_given) {
		client_reply(s, "503 ftpfwd: AUTH comes before USER");
		return;
	}
	(void)ftps_auth(s, arg, strlen(arg), bufferevent_get_input(
	    s->ctl.cin), 0);
}

static void
sf_pbsz(struct session *s, char *arg)
{
	ftps_prot(s, FTP_CMD_PBSZ, arg, strlen(arg));
}

static void
sf_prot(struct session *s, char *arg)
{
	ftps_prot(s, FTP_CMD_PROT, arg, strlen(arg));
}
