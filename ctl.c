/*
 * ctl.c: the control connection's lines, both ways.  Client lines are
 * framed, classified and dispatched through one table of the commands
 * ftpfwd must see; the rest pass byte for byte.  Each command sent on
 * is remembered in a FIFO, so that every server reply is matched to the
 * command it answers, and a command ftpfwd answers itself waits until
 * every earlier reply has gone: our replies never overtake the server's.
 * Server lines pass back, with 227/229 held for rewriting, FEAT
 * filtered, and a transfer's final reply held until ftpfwd knows
 * whether its data went right (426 if not).
 */

#include <sys/types.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "ftpfwd.h"

static void	ctl_defer_cb(evutil_socket_t, short, void *);

/* One client line, as the command handlers see it. */
struct ctl_line {
	enum ftp_cmd		 cmd;
	const char		*verb;
	const char		*arg;		/* into the input buffer */
	size_t			 arglen;
	struct evbuffer		*in;
	size_t			 total;		/* what the line occupies */
};

/* What a command handler did with its line. */
enum ctl_verdict {
	CTL_PASS,	/* send it on to the server as it is */
	CTL_DONE,	/* answered here: the line goes */
	CTL_GONE,	/* answered here, the line already drained */
	CTL_WAIT,	/* it stays, and input waits (ctl_blocked) */
	CTL_SWITCHED	/* gone, and TLS has a new input buffer */
};

#define CMD_LOCAL	0x01	/* answered here: earlier replies first */
#define CMD_LOCAL_TLS	0x02	/* answered here when TLS is on a side */
#define CMD_LOCAL_XL	0x04	/* ours while the other mode is set up, or
				   the remote forward was hijacked */

static enum ctl_verdict	cmd_port(struct session *, struct ctl_line *);
static enum ctl_verdict	cmd_pasv(struct session *, struct ctl_line *);
static enum ctl_verdict	cmd_auth(struct session *, struct ctl_line *);
static enum ctl_verdict	cmd_prot(struct session *, struct ctl_line *);
static enum ctl_verdict	cmd_long(struct session *, struct ctl_line *);
static enum ctl_verdict	cmd_transfer(struct session *, struct ctl_line *);
static enum ctl_verdict	cmd_abor(struct session *, struct ctl_line *);
static enum ctl_verdict	cmd_rein(struct session *, struct ctl_line *);
static enum ctl_verdict	cmd_user(struct session *, struct ctl_line *);

/* The client commands ftpfwd must see; everything else passes as is. */
static const struct ctl_cmd {
	enum ftp_cmd	 cmd;
	int		 flags;
	enum ctl_verdict (*handler)(struct session *, struct ctl_line *);
} ctl_cmds[] = {
	{ FTP_CMD_PORT,		CMD_LOCAL,	cmd_port },
	{ FTP_CMD_EPRT,		CMD_LOCAL,	cmd_port },
	{ FTP_CMD_PASV,		CMD_LOCAL,	cmd_pasv },
	{ FTP_CMD_EPSV,		CMD_LOCAL,	cmd_pasv },
	{ FTP_CMD_AUTH,		CMD_LOCAL,	cmd_auth },
	{ FTP_CMD_PBSZ,		CMD_LOCAL_TLS,	cmd_prot },
	{ FTP_CMD_PROT,		CMD_LOCAL_TLS,	cmd_prot },
	{ FTP_CMD_LPRT,		CMD_LOCAL,	cmd_long },
	{ FTP_CMD_LPSV,		CMD_LOCAL,	cmd_long },
	{ FTP_CMD_TRANSFER,	CMD_LOCAL_XL,	cmd_transfer },
	{ FTP_CMD_ABOR,		0,		cmd_abor },
	{ FTP_CMD_REIN,		0,		cmd_rein },
	{ FTP_CMD_USER,		0,		cmd_user },
};

static const struct ctl_cmd *
ctl_cmd_find(enum ftp_cmd cmd)
{
	size_t	i;

	for (i = 0; i < nitems(ctl_cmds); i++)
		if (ctl_cmds[i].cmd == cmd)
			return &ctl_cmds[i];
	return NULL;
}

/* Is this command ftpfwd's to answer, now? */
static int
ctl_cmd_local(const struct session *s, const struct ctl_cmd *c)
{
	if (c == NULL)
		return 0;
	if (c->flags & CMD_LOCAL)
		return 1;
	if (c->flags & CMD_LOCAL_TLS)
		return opt.cl_tls != TLS_OFF || opt.up_tls != TLS_OFF;
	if (c->flags & CMD_LOCAL_XL)
		return s->xl.to != XL_NONE || act_hijacked(s);
	return 0;
}

int
ctl_init(struct session *s, int cin_fd, int cout_fd)
{
	if ((s->ctl.cin = bufferevent_socket_new(evbase, cin_fd,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		close(cin_fd);
		if (cout_fd != cin_fd)
			close(cout_fd);
		return -1;
	}
	if (cout_fd == cin_fd)
		s->ctl.cout = s->ctl.cin;
	else if ((s->ctl.cout = bufferevent_socket_new(evbase, cout_fd,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		close(cout_fd);
		return -1;
	}
	if ((s->ctl.held = evbuffer_new()) == NULL ||
	    (s->ctl.defer_ev = evtimer_new(evbase, ctl_defer_cb, s)) == NULL)
		return -1;
	if (s->ctl.cout != s->ctl.cin) {
		bufferevent_setcb(s->ctl.cin, client_read_cb, NULL,
		    client_event_cb, s);
		bufferevent_setcb(s->ctl.cout, NULL, client_write_cb,
		    client_event_cb, s);
	} else
		bufferevent_setcb(s->ctl.cin, client_read_cb, client_write_cb,
		    client_event_cb, s);
	bufferevent_setwatermark(s->ctl.cin, EV_READ, 0, CTL_BUF_HIGH);
	return writenow_start(&s->ctl.wn_cout, s->ctl.cout, client_write_cb,
	    s);
}

/* The session ends: no more callbacks, from either side. */
void
ctl_stop(struct session *s)
{
	writenow_stop(&s->ctl.wn_cout);
	writenow_stop(&s->ctl.wn_srv);
	if (s->ctl.cin != NULL)
		bufferevent_disable(s->ctl.cin, EV_READ | EV_WRITE);
	if (s->ctl.cout != NULL)
		bufferevent_disable(s->ctl.cout, EV_READ | EV_WRITE);
	if (s->ctl.srv != NULL)
		bufferevent_disable(s->ctl.srv, EV_READ | EV_WRITE);
}

void
ctl_free(struct session *s)
{
	writenow_stop(&s->ctl.wn_cout);
	writenow_stop(&s->ctl.wn_srv);
	if (s->ctl.cout != NULL && s->ctl.cout != s->ctl.cin)
		bufferevent_free(s->ctl.cout);
	if (s->ctl.cin != NULL)
		bufferevent_free(s->ctl.cin);
	if (s->ctl.srv != NULL)
		bufferevent_free(s->ctl.srv);
	if (s->ctl.held != NULL)
		evbuffer_free(s->ctl.held);
	if (s->ctl.defer_ev != NULL)
		event_free(s->ctl.defer_ev);
}

/*
 * Replies ftpfwd makes itself.  Only sent when no server reply is due,
 * so they never overtake one.
 */
void
client_reply(struct session *s, const char *fmt, ...)
{
	struct evbuffer	*out = bufferevent_get_output(s->ctl.cout);
	va_list		 ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
}

/*
 * The client's cmd went to the server as sent, or as ftpfwd's own.
 * Never full here: client input waits while it is (ctl_client_line).
 */
void
pending_push(struct session *s, enum ftp_cmd cmd, enum ftp_cmd sent,
    int ours)
{
	if (fifo_push(&s->ctl.replies, cmd, sent, ours) == -1) {
		/* A bug, then: end this session rather than mismatch. */
		logit(LL_ERROR, "#%u more than %d replies due", s->id,
		    FIFO_MAX);
		session_close(s, "421 ftpfwd: too many commands in flight");
	}
}

/* Why client input waits, or NULL when it may be read. */
const char *
ctl_blocked(const struct session *s)
{
	if (s->dead || s->closing)
		return "the session is closing";
	if (s->act.state == ACT_OPENING)
		return "the master is opening the remote forward";
	if (xl_busy(s))
		return "the data connection is being set up";
	if (s->ctl.wait_replies)
		return "earlier replies are due first";
	return NULL;
}

/* Whatever made client input wait is over: read on. */
void
ctl_resume(struct session *s)
{
	if (s->dead || s->closing)
		return;
	ctl_client_input(s);
	ctl_eof_done(s);
}

/* A transfer's final reply: log it, and drop what it did not use. */
static void
reply_transfer_done(struct session *s, int code)
{
	s->xfer.count++;
	if (s->xfer.pending > 0)
		s->xfer.pending--;
	s->xfer.failed[0] = '\0';	/* said, or not needed */
	logit(LL_INFO, "#%u %s %s %.3fs %d", s->id, s->xfer.verb,
	    data_mode_names[s->xfer.mode], s->xfer.running ?
	    elapsed_since(&s->xfer.start) : 0.0, code);
	s->xfer.running = 0;
	s->xfer.mode = DM_NONE;
	/*
	 * Connections queued on our sockets belong to this transfer: the
	 * final reply can overtake them.
	 */
	act_disarm(s);
	if (s->pasv.fd != -1 && data_conn_pairing(s, 0) != NULL)
		pasv_accept(s);
	data_conns_each_waiting(s, data_conn_free);
}

/* A server reply ended: match it to its command. */
void
reply_done(struct session *s, int code)
{
	enum ftp_cmd	cmd = (enum ftp_cmd)fifo_oldest(&s->ctl.replies).cmd;

	s->ctl.last_code = code;
	logit(LL_DEBUG2, "#%u server %d (%u replies due)", s->id, code,
	    fifo_len(&s->ctl.replies));
	if (code < 200) {
		if (cmd == FTP_CMD_TRANSFER && !s->xfer.running) {
			s->xfer.running = 1;
			clock_gettime(CLOCK_MONOTONIC, &s->xfer.start);
			if (s->tls.up_ssl != NULL)
				data_conns_each_waiting(s, data_conn_start);
		}
		return;
	}
	if (fifo_len(&s->ctl.replies) == 0)
		return;		/* unsolicited, such as 421 */
	(void)fifo_pop(&s->ctl.replies);
	/* pyftpdlib answers REIN with 230 too: only USER/PASS log in. */
	if ((code == 230 || code == 232) &&
	    (cmd == FTP_CMD_USER || cmd == FTP_CMD_PASS))
		s->ctl.logged_in = 1;
	if (cmd == FTP_CMD_TRANSFER)
		reply_transfer_done(s, code);
	else if ((cmd == FTP_CMD_PORT || cmd == FTP_CMD_EPRT) &&
	    code >= 300)
		act_disarm(s);
	if (s->ctl.wait_replies) {
		s->ctl.wait_replies = 0;
		ctl_resume(s);
	} else
		ctl_eof_done(s);
}

/*
 * The next line in a control buffer.  *linep shows at most FTP_LINE_MAX
 * bytes of it, without CR LF; *totalp is what the line occupies.  A line
 * with no LF yet is returned as partial once it is too long to wait for.
 * Returns -1 when a line must wait for more bytes.
 */
int
next_line(struct evbuffer *in, char **linep, size_t *linelenp,
    size_t *totalp, int *partialp)
{
	struct evbuffer_ptr	eol;
	size_t			eol_len, linelen;

	eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);
	if (eol.pos == -1) {
		if (evbuffer_get_length(in) <= FTP_LINE_MAX)
			return -1;
		*partialp = 1;
		*totalp = FTP_LINE_MAX;
		linelen = FTP_LINE_MAX;
	} else {
		*partialp = 0;
		*totalp = (size_t)eol.pos + eol_len;
		linelen = (size_t)eol.pos;
	}
	if (linelen > FTP_LINE_MAX)
		linelen = FTP_LINE_MAX;		/* enough to judge it */
	if ((*linep = (char *)evbuffer_pullup(in, (ev_ssize_t)(linelen +
	    (linelen < *totalp ? 1 : 0)))) == NULL)
		return -1;
	if (linelen > 0 && linelen < FTP_LINE_MAX &&
	    (*linep)[linelen - 1] == '\r')
		linelen--;
	*linelenp = linelen;
	return 0;
}

/*
 * The rest of a line already judged: pass it to out, or drop it when out
 * is NULL.  Returns 1 once the line's LF has gone, 0 if more is to come.
 */
int
line_rest(struct evbuffer *in, struct evbuffer *out)
{
	struct evbuffer_ptr	eol;
	size_t			eol_len, total;

	eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);
	total = eol.pos == -1 ? evbuffer_get_length(in) :
	    (size_t)eol.pos + eol_len;
	if (out == NULL)
		evbuffer_drain(in, total);
	else
		evbuffer_remove_buffer(in, out, total);
	return eol.pos != -1;
}

/*
 * Where one server line stands in its reply: sets *endedp to the code
 * once the reply is over, and says whether the line must be dropped (a
 * FEAT line about TLS, which is ftpfwd's to offer or not).
 */
static int
reply_line(struct session *s, const struct pending *p, const char *line,
    size_t linelen, int *endedp)
{
	int	code, more;

	*endedp = 0;
	if (s->ctl.r_code == 0) {
		if (ftp_reply_start(line, linelen, &code, &more) == -1)
			return 0;
		if (p->ours || (p->sent == FTP_CMD_PASV && code == 227) ||
		    (p->sent == FTP_CMD_EPSV && code == 229))
			s->ctl.r_hold = HOLD_REPLY;
		else if (p->cmd == FTP_CMD_TRANSFER && code >= 200)
			s->ctl.r_hold = HOLD_XFER;
		s->ctl.r_feat = p->cmd == FTP_CMD_FEAT && more;
		if (more)
			s->ctl.r_code = code;
		else
			*endedp = code;
	} else if (ftp_reply_ends(line, linelen, s->ctl.r_code)) {
		*endedp = s->ctl.r_code;
		s->ctl.r_code = 0;
	} else if (s->ctl.r_feat) {
		/* What the server says of EPSV/EPRT, for our use. */
		s->ctl.srv_feat |= ftp_feat_ext(line, linelen);
		return ftp_feat_is_tls(line, linelen);
	}
	return 0;
}

/*
 * A transfer's final reply, held until now: the server's, or 426 when
 * ftpfwd saw the data go wrong (a data connection cut, one too many
 * through the remote forward), which a server's 226 would hide.
 */
static void
reply_xfer_verdict(struct session *s, int code)
{
	act_sweep(s);		/* connections queued for it say too */
	if (s->ctl.r_hold == HOLD_NONE)
		return;		/* too long to hold: passed on already */
	if (s->ctl.r_hold == HOLD_XFER &&
	    (s->xfer.failed[0] == '\0' || code >= 300)) {
		evbuffer_add_buffer(bufferevent_get_output(s->ctl.cout),
		    s->ctl.held);
		return;
	}
	logit(LL_ERROR, "#%u %s %s: the server said %d, the client gets 426",
	    s->id, s->xfer.verb, s->xfer.failed, code);
	evbuffer_drain(s->ctl.held, evbuffer_get_length(s->ctl.held));
	client_reply(s, "426 ftpfwd: %s; transfer aborted", s->xfer.failed);
}

/*
 * The transfer under way (the oldest whose final reply is due) has gone
 * wrong: that reply will say so.
 */
void
xfer_fail(struct session *s, const char *fmt, ...)
{
	va_list	ap;

	if (s->xfer.pending == 0 || s->xfer.failed[0] != '\0')
		return;			/* the first reason is the one */
	va_start(ap, fmt);
	vsnprintf(s->xfer.failed, sizeof(s->xfer.failed), fmt, ap);
	va_end(ap);
}

/* The reply that line ended: rewrite a held one, and match it. */
static void
reply_end(struct session *s, const struct pending *p, int code)
{
	int	held = s->ctl.r_hold == HOLD_REPLY ||
		    s->ctl.r_hold == HOLD_OVERFLOW;

	if (p->cmd == FTP_CMD_TRANSFER && code >= 200)
		reply_xfer_verdict(s, code);
	s->ctl.r_hold = HOLD_NONE;
	/* An overflowed passive reply is empty here: pasv_reply says 425. */
	if (held && !p->ours)
		pasv_reply(s, p);
	s->ctl.r_feat = 0;
	reply_done(s, code);
	if (held && p->ours)
		xl_ours_reply(s, p, code);
}

/*
 * How long a held reply waits before it looks again: XFER_HOLD_MS in
 * all, and while only the kernel can say whether the data is out, a
 * little and then twice as long each time.
 */
static void
reply_defer_wait(struct session *s, int polling)
{
	struct timeval	tv;
	double		left;

	left = XFER_HOLD_MS / 1000.0 - elapsed_since(&s->ctl.defer_since);
	if (polling && left > s->ctl.defer_poll_ms / 1000.0) {
		left = s->ctl.defer_poll_ms / 1000.0;
		if (s->ctl.defer_poll_ms < XFER_POLL_MAX_MS)
			s->ctl.defer_poll_ms *= 2;
	}
	if (left < 0)
		left = 0;
	tv.tv_sec = (time_t)left;
	tv.tv_usec = (suseconds_t)((left - (double)tv.tv_sec) * 1e6);
	evtimer_add(s->ctl.defer_ev, &tv);
}

/*
 * A transfer's 226 came while its data connection still passes the
 * server's bytes on to the client: hold it, and every server line
 * behind it, until they are out, or XFER_HOLD_MS at most (a slow
 * client's last bytes, a server that keeps its end open after its
 * reply).  Returns 1 if it is held.
 */
static int
reply_defer(struct session *s, const struct pending *p, int code)
{
	int	polling;

	if (p->cmd != FTP_CMD_TRANSFER || code < 200 || code >= 300 ||
	    s->ctl.r_hold != HOLD_XFER)
		return 0;
	act_sweep(s);		/* a connection the master has queued */
	if (s->xfer.failed[0] != '\0' || !data_xfer_unsent(s, &polling))
		return 0;
	s->ctl.deferred = 1;
	s->ctl.defer_p = *p;
	s->ctl.defer_code = code;
	s->ctl.defer_poll_ms = XFER_POLL_MS;
	clock_gettime(CLOCK_MONOTONIC, &s->ctl.defer_since);
	reply_defer_wait(s, polling);
	logit(LL_DEBUG2, "#%u server %d held until the data is out", s->id,
	    code);
	return 1;
}

/* The held reply goes now, and the lines behind it after it. */
void
ctl_xfer_release(struct session *s)
{
	struct pending	p = s->ctl.defer_p;

	if (!s->ctl.deferred || s->dead)
		return;
	s->ctl.deferred = 0;
	event_del(s->ctl.defer_ev);
	reply_end(s, &p, s->ctl.defer_code);
	if (!s->dead)
		ctl_server_input(s);
}

static void
ctl_defer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session	*s = arg;
	int		 polling;

	(void)fd;
	(void)what;
	if (s->dead || !s->ctl.deferred)
		return;
	if (elapsed_since(&s->ctl.defer_since) < XFER_HOLD_MS / 1000.0) {
		if (data_xfer_unsent(s, &polling)) {
			/* Woken early, and still not out: wait for the rest. */
			reply_defer_wait(s, polling);
			return;
		}
	} else
		logit(LL_VERBOSE, "#%u the data was not out after %d ms: "
		    "the server's %d goes on", s->id, XFER_HOLD_MS,
		    s->ctl.defer_code);
	ctl_xfer_release(s);
}

/*
 * A data connection has moved on (its server bytes are out, or it is
 * gone): a held reply may go.  Called from inside data callbacks, so
 * the reply goes from the loop.
 */
void
ctl_xfer_data_moved(struct session *s)
{
	static const struct timeval	now = { 0, 0 };

	if (!s->dead && s->ctl.deferred)
		evtimer_add(s->ctl.defer_ev, &now);
}

/*
 * Server lines: pass them on, rewriting 227/229 and FEAT, and holding a
 * transfer's final reply for its verdict.
 */
void
ctl_server_input(struct session *s)
{
	struct evbuffer		*in, *out;
	struct pending		 p;
	size_t			 total, linelen;
	char			*line;
	int			 partial, ended, drop;

	if (s->ctl.deferred ||
	    (s->tls.up_phase != UP_READY && !ftps_upstream(s)))
		return;
	in = bufferevent_get_input(s->ctl.srv);
	while (!s->dead && evbuffer_get_length(in) > 0) {
		/* A reply's end may have turned the client's side TLS. */
		out = bufferevent_get_output(s->ctl.cout);
		if (s->ctl.srv_longline) {
			s->ctl.srv_longline = !line_rest(in,
			    s->ctl.r_hold != HOLD_NONE ? NULL : out);
			continue;
		}
		if (next_line(in, &line, &linelen, &total, &partial) == -1)
			break;
		p = fifo_oldest(&s->ctl.replies);
		drop = reply_line(s, &p, line, linelen, &ended);
		/* Ours, toward the client, before the FEAT reply's end. */
		if (ended && s->ctl.r_feat && opt.cl_tls == TLS_EXPLICIT &&
		    s->ctl.r_hold == HOLD_NONE)
			evbuffer_add_printf(out, " AUTH TLS\r\n PBSZ\r\n"
			    " PROT\r\n");
		if (s->ctl.r_hold == HOLD_XFER && (partial ||
		    evbuffer_get_length(s->ctl.held) + total > CTL_BUF_HIGH)) {
			/* Too long to hold: on as it is, or dropped for 426. */
			if (s->xfer.failed[0] != '\0') {
				evbuffer_drain(s->ctl.held,
				    evbuffer_get_length(s->ctl.held));
				s->ctl.r_hold = HOLD_XFER_DROP;
			} else {
				evbuffer_add_buffer(out, s->ctl.held);
				s->ctl.r_hold = HOLD_NONE;
			}
		}
		if (s->ctl.r_hold == HOLD_REPLY && (partial ||
		    linelen == FTP_LINE_MAX || evbuffer_get_length(
		    s->ctl.held) + total > FTP_LINE_MAX)) {
			/* Too long to be a passive reply: drop all of it. */
			evbuffer_drain(s->ctl.held,
			    evbuffer_get_length(s->ctl.held));
			s->ctl.r_hold = HOLD_OVERFLOW;
		}
		if (s->ctl.r_hold == HOLD_OVERFLOW ||
		    s->ctl.r_hold == HOLD_XFER_DROP) {
			s->ctl.srv_longline = partial;
			evbuffer_drain(in, total);
		} else if (s->ctl.r_hold == HOLD_REPLY ||
		    s->ctl.r_hold == HOLD_XFER)
			evbuffer_remove_buffer(in, s->ctl.held, total);
		else if (drop)
			evbuffer_drain(in, total);
		else {
			s->ctl.srv_longline = partial;
			evbuffer_remove_buffer(in, out, total);
		}
		if (ended && reply_defer(s, &p, ended))
			return;		/* the rest waits behind it */
		if (ended)
			reply_end(s, &p, ended);
	}
	if (!s->dead && evbuffer_get_length(bufferevent_get_output(
	    s->ctl.cout)) > CTL_BUF_HIGH)
		bufferevent_disable(s->ctl.srv, EV_READ);
}

static enum ctl_verdict
cmd_port(struct session *s, struct ctl_line *l)
{
	act_command(s, l->cmd, l->arg, l->arglen);
	return CTL_DONE;
}

static enum ctl_verdict
cmd_pasv(struct session *s, struct ctl_line *l)
{
	pasv_command(s, l->cmd, l->arg, l->arglen);
	return CTL_DONE;
}

static enum ctl_verdict
cmd_auth(struct session *s, struct ctl_line *l)
{
	if (ftps_auth(s, l->arg, l->arglen, l->in, l->total) == 1)
		return CTL_SWITCHED;
	return CTL_GONE;
}

static enum ctl_verdict
cmd_prot(struct session *s, struct ctl_line *l)
{
	ftps_prot(s, l->cmd, l->arg, l->arglen);
	return CTL_DONE;
}

/* LPRT and LPSV: nobody needs them, and RFC 2428 replaced them. */
static enum ctl_verdict
cmd_long(struct session *s, struct ctl_line *l)
{
	client_reply(s, "502 ftpfwd: %s is not supported, use EPRT or EPSV",
	    l->verb);
	return CTL_DONE;
}

/* Does this transfer command send the client's data to the server? */
static int
cmd_uploads(const char *verb)
{
	return strcmp(verb, "STOR") == 0 || strcmp(verb, "STOU") == 0 ||
	    strcmp(verb, "APPE") == 0;
}

static enum ctl_verdict
cmd_transfer(struct session *s, struct ctl_line *l)
{
	if (act_hijacked(s)) {
		act_forget(s);
		client_reply(s, "425 ftpfwd: another connection came through "
		    "the remote forward on the ssh server; send PORT again");
		return CTL_DONE;
	}
	/*
	 * Which way its data goes, for the connections set up for it.  One
	 * that xl_transfer() answers here instead has no transfer due
	 * before it whose direction this would overwrite: xl comes from
	 * the client's PORT or PASV, answered only once every earlier
	 * reply was in.
	 */
	s->xfer.upload = cmd_uploads(l->verb);
	if (s->xl.to != XL_NONE) {
		switch (xl_transfer(s)) {
		case 1:
			return CTL_WAIT;
		case -1:
			return CTL_DONE;
		default:
			break;
		}
	}
	snprintf(s->xfer.verb, sizeof(s->xfer.verb), "%s", l->verb);
	s->xfer.pending++;
	data_xfer_command(s);
	return CTL_PASS;
}

static enum ctl_verdict
cmd_abor(struct session *s, struct ctl_line *l)
{
	(void)l;
	/*
	 * The Telnet Synch that should wake the server (TCP urgent data)
	 * cannot cross an ssh channel, and vsftpd reads ABOR only once the
	 * data connection breaks.  Closing our links to the passive data
	 * channels makes the master break it for us.
	 */
	if (s->xfer.running)
		data_conns_free(s);
	return CTL_PASS;
}

static enum ctl_verdict
cmd_rein(struct session *s, struct ctl_line *l)
{
	(void)l;
	s->ctl.logged_in = 0;
	return CTL_PASS;
}

static enum ctl_verdict
cmd_user(struct session *s, struct ctl_line *l)
{
	char	user[LOG_TEXT_MAX];

	logit(LL_VERBOSE, "#%u user %s", s->id, escape(user, sizeof(user),
	    l->arg, l->arglen));
	escape(s->ctl.user, sizeof(s->ctl.user), l->arg, l->arglen);
	return CTL_PASS;
}

/*
 * One client line through the table.  Returns 0 to go on with the next
 * line, -1 when input must stop here.
 */
static int
ctl_client_line(struct session *s, struct evbuffer *in, char *line,
    size_t linelen, size_t total, int partial)
{
	const struct ctl_cmd	*c;
	struct ctl_line		 l;
	char			 verb[FTP_VERB_MAX + 1];
	size_t			 argoff;

	if (ftp_cmd_parse(line, linelen, &l.cmd, verb, sizeof(verb),
	    &argoff) == -1) {
		l.cmd = FTP_CMD_OTHER;
		snprintf(verb, sizeof(verb), "%s", "?");
		argoff = linelen;
	}
	logit(LL_DEBUG2, "#%u client %s (%u replies due)", s->id, verb,
	    fifo_len(&s->ctl.replies));
	c = ctl_cmd_find(l.cmd);
	if ((ctl_cmd_local(s, c) && fifo_len(&s->ctl.replies) > 0) ||
	    fifo_full(&s->ctl.replies)) {
		s->ctl.wait_replies = 1;
		return -1;
	}
	if (ctl_cmd_local(s, c) && (partial || linelen == FTP_LINE_MAX)) {
		client_reply(s, "500 ftpfwd: command line too long");
		s->ctl.cli_discard = partial;
		evbuffer_drain(in, total);
		return 0;
	}
	l.verb = verb;
	l.arg = line + argoff;
	l.arglen = linelen - argoff;
	l.in = in;
	l.total = total;
	switch (c != NULL ? c->handler(s, &l) : CTL_PASS) {
	case CTL_WAIT:
	case CTL_SWITCHED:
		return -1;
	case CTL_DONE:
		evbuffer_drain(in, total);
		return 0;
	case CTL_GONE:
		return 0;
	case CTL_PASS:
		break;
	}
	/* PASS and everything else: never logged, passed as is. */
	pending_push(s, l.cmd, l.cmd, 0);
	s->ctl.cli_longline = partial;
	evbuffer_remove_buffer(in, bufferevent_get_output(s->ctl.srv), total);
	return 0;
}

/*
 * Client lines.  Most pass byte for byte; those in ctl_cmds are seen,
 * rewritten or answered here.
 */
void
ctl_client_input(struct session *s)
{
	struct evbuffer	*in = bufferevent_get_input(s->ctl.cin);
	struct evbuffer	*out;
	size_t		 total, linelen;
	char		*line;
	int		 partial;

	if (s->sfs != NULL) {
		sfs_input(s);
		return;
	}
	out = bufferevent_get_output(s->ctl.srv);
	while (ctl_blocked(s) == NULL && evbuffer_get_length(in) > 0) {
		if (s->ctl.cli_longline || s->ctl.cli_discard) {
			if (line_rest(in, s->ctl.cli_discard ? NULL : out))
				s->ctl.cli_longline = s->ctl.cli_discard = 0;
			continue;
		}
		if (next_line(in, &line, &linelen, &total, &partial) == -1)
			break;
		if (ctl_client_line(s, in, line, linelen, total, partial) ==
		    -1)
			break;
	}
}

/* After the client's EOF: close once no reply is owed any more. */
void
ctl_eof_done(struct session *s)
{
	if (s->sfs != NULL) {
		if (s->ctl.cli_eof && !sfs_busy(s))
			session_close(s, NULL);
		return;
	}
	if (s->ctl.cli_eof && ctl_blocked(s) == NULL &&
	    fifo_len(&s->ctl.replies) == 0)
		session_close(s, NULL);
}
