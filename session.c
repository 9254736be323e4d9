/*
 * session.c: one FTP session's life.  It starts when a client connects
 * (or with -W), reaches the FTP server through a stdio forward of the
 * master, and ends in session_end(), the one way out: every error path
 * comes there, it releases what each part of the session opened, and
 * the struct itself is freed from the loop, never inside a callback.
 * Here too: the bufferevent callbacks of the control connection, the
 * idle timer, and the drain that lets a last reply out before closing.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include "ftpfwd.h"
#include "join.h"
#include "ssh_mux.h"
#include "tls.h"

struct sessions		 sessions = TAILQ_HEAD_INITIALIZER(sessions);
u_int			 nsessions;
int			 shutting_down;
static u_int		 next_session_id = 1;

static void	session_flush_poll(evutil_socket_t, short, void *);

double
elapsed_since(const struct timespec *t0)
{
	struct timespec	now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0->tv_sec) +
	    (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

void
idle_reset(struct session *s)
{
	struct timeval	tv = { (time_t)opt.idle_timeout, 0 };

	if (s->idle_ev != NULL && opt.idle_timeout > 0)
		event_add(s->idle_ev, &tv);
}

static void
idle_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session	*s = arg;

	(void)fd;
	(void)what;
	/* A running transfer is not idleness, even with a quiet control. */
	if (s->xfer.running) {
		idle_reset(s);
		return;
	}
	logit(LL_INFO, "#%u idle for %u seconds", s->id, opt.idle_timeout);
	session_close(s, "421 ftpfwd: idle timeout, closing control "
	    "connection");
}

void
client_read_cb(struct bufferevent *bev, void *arg)
{
	struct session	*s = arg;

	(void)bev;
	idle_reset(s);
	ctl_client_input(s);
}

void
server_read_cb(struct bufferevent *bev, void *arg)
{
	struct session	*s = arg;

	(void)bev;
	idle_reset(s);
	ctl_server_input(s);
}

/* Bytes still to go out: a TLS filter's own and its socket's. */
static size_t
bev_unsent(struct bufferevent *bev)
{
	struct bufferevent	*under;
	size_t			 n;

	n = evbuffer_get_length(bufferevent_get_output(bev));
	if ((under = bufferevent_get_underlying(bev)) != NULL)
		n += evbuffer_get_length(bufferevent_get_output(under));
	return n;
}

/*
 * Output has drained: resume reading the server, or, while closing, end
 * the session once both directions are flushed.
 */
void
session_flush(struct session *s)
{
	struct bufferevent	*out = s->ctl.cout;
	struct timeval		 tv = { 0, DRAIN_POLL_MS * 1000 };
	SSL			*ssl;

	if (!s->closing) {
		if (s->ctl.srv != NULL && !s->ctl.srv_eof &&
		    evbuffer_get_length(bufferevent_get_output(out)) <
		    CTL_BUF_HIGH)
			bufferevent_enable(s->ctl.srv, EV_READ);
		return;
	}
	if (evbuffer_get_length(bufferevent_get_output(out)) != 0 ||
	    (s->ctl.srv != NULL &&
	    evbuffer_get_length(bufferevent_get_output(s->ctl.srv)) != 0))
		return;
	/*
	 * TLS: say close_notify, and let the socket send it all.  A full
	 * socket keeps it back: the poll below tries again.
	 */
	if (s->tls.cl_on && !s->tls.cl_shut &&
	    (ssl = bufferevent_openssl_get_ssl(out)) != NULL)
		s->tls.cl_shut = tls_close_notify(ssl) == 0;
	if ((!s->tls.cl_on || s->tls.cl_shut) && bev_unsent(out) == 0) {
		session_end(s, NULL);
		return;
	}
	/* The socket under the filter does not tell us: poll. */
	if (s->drain_poll_ev == NULL)
		s->drain_poll_ev = evtimer_new(evbase, session_flush_poll, s);
	if (s->drain_poll_ev != NULL)
		evtimer_add(s->drain_poll_ev, &tv);
}

static void
session_flush_poll(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	session_flush(arg);
}

void
client_write_cb(struct bufferevent *bev, void *arg)
{
	struct session	*s = arg;

	if (bev == s->ctl.wn_cout.bev)
		writenow_drained(&s->ctl.wn_cout);
	session_flush(s);
}

void
server_write_cb(struct bufferevent *bev, void *arg)
{
	struct session	*s = arg;

	if (bev == s->ctl.wn_srv.bev)
		writenow_drained(&s->ctl.wn_srv);
	if (s->closing)
		session_flush(s);
}

void
client_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct session	*s = arg;
	char		 why[LOG_TEXT_MAX];

	if ((what & BEV_EVENT_ERROR) && s->tls.cl_on) {
		session_end(s, tls_error(bev, why, sizeof(why)));
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		session_end(s, strerror(EVUTIL_SOCKET_ERROR()));
		return;
	}
	if (what & BEV_EVENT_EOF) {
		/*
		 * The client has said all it will (QUIT, then EOF; or a
		 * script on a pipe): pass on what it sent and stay for the
		 * replies it is owed.
		 */
		s->ctl.cli_eof = 1;
		bufferevent_disable(s->ctl.cin, EV_READ);
		ctl_client_input(s);
		ctl_eof_done(s);
	}
}

/* Who closed the server's side: the server, or a master that died? */
static void
server_eof_verdict(struct session *s)
{
	if (!master_known() || !master_alive())
		session_close(s, "421 ftpfwd: ssh connection closed");
	else
		session_close(s, "421 ftpfwd: the FTP server closed the "
		    "control connection");
}

static void
server_eof_judge_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	server_eof_verdict(arg);
}

/* The server side has closed, and the master confirmed it was open. */
static void
server_eof(struct session *s)
{
	struct timeval	judge = { 0, EOF_JUDGE_MS * 1000 };

	/*
	 * A reply held for its data goes now: nothing comes behind it.
	 * Either way the rest of the server's lines are read.
	 */
	if (s->ctl.deferred)
		ctl_xfer_release(s);
	else
		ctl_server_input(s);
	if (s->ctl.last_code == 221 || s->ctl.last_code == 421) {
		session_close(s, NULL);
		return;
	}
	/*
	 * The server hung up, or the master died: a killed master's
	 * descriptors close one by one, so its control socket may still
	 * accept for a moment.  Look a little later.
	 */
	if ((s->eof_ev = evtimer_new(evbase, server_eof_judge_cb, s)) ==
	    NULL || evtimer_add(s->eof_ev, &judge) != 0)
		server_eof_verdict(s);
}

void
server_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct session	*s = arg;
	char		 why[LOG_TEXT_MAX];

	if ((what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) == 0 || s->ctl.srv_eof)
		return;
	s->ctl.srv_eof = 1;
	if ((what & BEV_EVENT_ERROR) && s->tls.up_ssl != NULL &&
	    bufferevent_openssl_get_ssl(bev) != NULL) {
		ftps_fail(s, "TLS to the FTP server %s failed: %s",
		    ftps_server_name(s), tls_error(bev, why, sizeof(why)));
		return;
	}
	bufferevent_disable(s->ctl.srv, EV_READ);
	/* Before the master's verdict on the forward, that says why. */
	if (s->ctl.srv_open)
		server_eof(s);
}

static void
ctl_mux_cb(struct mux_conn *mc, enum mux_event ev, const struct mux_reply *r,
    void *arg)
{
	struct session	*s = arg;
	char		 why[LOG_TEXT_MAX], reply[LOG_TEXT_MAX + 128];

	(void)mc;
	switch (ev) {
	case MUX_EV_SESSION_OPENED:
		s->ctl.srv_open = 1;
		logit(LL_DEBUG1, "#%u control connection to %s:%u is up",
		    s->id, s->fwd->host, s->fwd->port);
		if (s->ctl.srv_eof)
			server_eof(s);
		break;
	case MUX_EV_FAILURE:
	case MUX_EV_CLOSED:
		if (s->ctl.srv_open)
			break;	/* the server's EOF on srv says the rest */
		escape(why, sizeof(why), r->reason, r->reason_len);
		logit(LL_ERROR, "#%u cannot reach %s:%u through ssh: %s",
		    s->id, s->fwd->host, s->fwd->port, why);
		snprintf(reply, sizeof(reply), "421 ftpfwd: cannot reach "
		    "%s:%u through ssh: %s", s->fwd->host, s->fwd->port, why);
		session_close(s, reply);
		break;
	default:
		break;
	}
}

static void
drain_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	session_end(arg, "could not flush in time");
}

/*
 * Stop reading, say a last word to the client if there is one, and end
 * the session once both directions are flushed.
 */
void
session_close(struct session *s, const char *reply)
{
	struct timeval	tv = { DRAIN_TIMEOUT, 0 };

	if (s->dead)
		return;
	if (reply != NULL && !s->closing)
		client_reply(s, "%s", reply);
	if (s->closing)
		return;
	s->closing = 1;
	bufferevent_disable(s->ctl.cin, EV_READ);
	if (s->ctl.srv != NULL)
		bufferevent_disable(s->ctl.srv, EV_READ);
	if ((s->drain_ev = evtimer_new(evbase, drain_timeout_cb, s)) != NULL)
		evtimer_add(s->drain_ev, &tv);
	session_flush(s);
}

/* The session's own timers, for session_end and session_free. */
static void
session_timers(struct session *s, int (*fn)(struct event *))
{
	struct event	*evs[] = { s->idle_ev, s->drain_ev, s->drain_poll_ev,
			    s->eof_ev };
	size_t		 i;

	for (i = 0; i < nitems(evs); i++)
		if (evs[i] != NULL)
			(void)fn(evs[i]);
}

static int
event_release(struct event *ev)
{
	event_free(ev);
	return 0;
}

static void
session_free(evutil_socket_t fd, short what, void *arg)
{
	struct session	*s = arg;

	(void)fd;
	(void)what;
	ctl_free(s);
	ftps_free(s);
	session_timers(s, event_release);
	free(s);
	if (opt.stdio_mode || (shutting_down && TAILQ_EMPTY(&sessions)))
		event_base_loopexit(evbase, NULL);
}

/*
 * The one way out for a session: release everything it opened and free
 * it from the loop, never inside the callback that got us here.
 */
void
session_end(struct session *s, const char *why)
{
	if (s->dead)
		return;
	s->dead = 1;
	logit(LL_INFO, "#%u session from %s ended%s%s (%lds, %u transfers)",
	    s->id, s->client_str, why != NULL ? ": " : "",
	    why != NULL ? why : "", (long)(time(NULL) - s->started),
	    s->xfer.count);
	TAILQ_REMOVE(&sessions, s, entry);
	nsessions--;

	ctl_stop(s);
	sfs_free(s);
	session_timers(s, event_del);
	pasv_close(s);
	/* Cut short: no peer may take the end of its data for success. */
	if (s->xfer.pending > 0)
		data_conns_abort(s);
	data_conns_free(s);
	mux_free(s->ctl.mux);
	s->ctl.mux = NULL;
	act_close(s);
	if (event_base_once(evbase, -1, EV_TIMEOUT, session_free, s, NULL) ==
	    -1)
		logit(LL_ERROR, "#%u cannot schedule free", s->id);
}

/*
 * The server's side of the control: a stdio forward of the master to
 * the FTP server, carried by a socketpair.  Returns -1 with why in err.
 */
static int
session_connect(struct session *s, char *err, size_t errsz)
{
	struct forward	*fwd = s->fwd;
	uint32_t	 rid;
	int		 sp[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == -1) {
		snprintf(err, errsz, "socketpair: %s", strerror(errno));
		return -1;
	}
	if ((s->ctl.srv = bufferevent_socket_new(evbase, sp[0],
	    BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		close(sp[0]);
		close(sp[1]);
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	evutil_make_socket_nonblocking(sp[0]);
	bufferevent_setcb(s->ctl.srv, server_read_cb, server_write_cb,
	    server_event_cb, s);
	bufferevent_setwatermark(s->ctl.srv, EV_READ, 0, CTL_BUF_HIGH);
	if (writenow_start(&s->ctl.wn_srv, s->ctl.srv, server_write_cb,
	    s) == -1) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	if ((s->ctl.mux = mux_open(evbase, opt.ctl_path, ctl_mux_cb, s, err,
	    errsz)) == NULL) {
		close(sp[1]);
		return -1;
	}
	/* mux_stdio_fwd() takes sp[1], even when it fails. */
	if (mux_stdio_fwd(s->ctl.mux, fwd->host, fwd->port, sp[1], sp[1],
	    &rid) == -1) {
		snprintf(err, errsz, "cannot send the request");
		return -1;
	}
	pending_push(s, FTP_CMD_OTHER, FTP_CMD_OTHER, 0);	/* greeting */
	return 0;
}

static struct session *
session_new(struct forward *fwd, const struct sockaddr_storage *peer,
    const struct sockaddr_storage *local, const struct who *who)
{
	struct session	*s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->id = next_session_id++;
	s->fwd = fwd;
	s->started = time(NULL);
	s->pasv.fd = -1;
	s->act.lfd = -1;
	s->client_addr = *peer;
	s->local_addr = *local;
	s->client_who = *who;
	addr_unmap(&s->client_addr);
	addr_unmap(&s->local_addr);
	addr_host((struct sockaddr *)&s->client_addr, s->client_str,
	    sizeof(s->client_str));
	TAILQ_INIT(&s->data);
	TAILQ_INSERT_TAIL(&sessions, s, entry);
	nsessions++;
	return s;
}

/*
 * A new client on cin_fd and cout_fd (one socket, or -W's two ends),
 * which are ours from here on, whatever happens.
 */
void
session_start(struct forward *fwd, int cin_fd, int cout_fd,
    const struct sockaddr_storage *peer, const struct sockaddr_storage *local,
    const struct who *who)
{
	struct session	*s;
	char		 err[ERR_MAX], reply[ERR_MAX * 2];

	if ((s = session_new(fwd, peer, local, who)) == NULL) {
		close(cin_fd);
		if (cout_fd != cin_fd)
			close(cout_fd);
		return;
	}
	if (ctl_init(s, cin_fd, cout_fd) == -1 || ftps_init(s) == -1 ||
	    (s->idle_ev = evtimer_new(evbase, idle_cb, s)) == NULL) {
		session_end(s, "out of memory");
		return;
	}
	snprintf(reply, sizeof(reply), "%s:%u", fwd->host, fwd->port);
	if (opt.backend == BACKEND_SFTP)
		snprintf(reply, sizeof(reply), "sftp");
	if (who->known)
		logit(LL_INFO, "#%u session from %s (uid %lu) to %s", s->id,
		    addr_str(peer, err, sizeof(err)), (unsigned long)who->uid,
		    reply);
	else
		logit(LL_INFO, "#%u session from %s to %s", s->id,
		    addr_str(peer, err, sizeof(err)), reply);
	if (opt.backend == BACKEND_SFTP) {
		if (sfs_start(s) == -1) {
			session_close(s, "421 ftpfwd: out of memory");
			return;
		}
	} else if (session_connect(s, err, sizeof(err)) == -1 ||
	    ftps_server_setup(s, err, sizeof(err)) == -1) {
		logit(LL_ERROR, "#%u no connection through the ssh master at "
		    "%s: %s", s->id, opt.ctl_path, err);
		snprintf(reply, sizeof(reply), "421 ftpfwd: no connection "
		    "through the ssh master: %s", err);
		session_close(s, reply);
		return;
	}
	if (opt.cl_tls == TLS_IMPLICIT) {
		if (ftps_client_start(s) == -1) {
			session_end(s, "cannot start TLS toward the client");
			return;
		}
		s->tls.cl_prot = 'P';
	}
	bufferevent_enable(s->ctl.cin, EV_READ);
	if (s->ctl.srv != NULL)
		bufferevent_enable(s->ctl.srv, EV_READ);
	idle_reset(s);
}

/* Tell every client, then leave. */
void
shutdown_all(const char *reply)
{
	struct session	*s, *next;

	shutting_down = 1;
	listeners_enable(0);
	for (s = TAILQ_FIRST(&sessions); s != NULL; s = next) {
		next = TAILQ_NEXT(s, entry);
		session_close(s, reply);
	}
	if (TAILQ_EMPTY(&sessions))
		event_base_loopexit(evbase, NULL);
}

/* What a session's transfer is doing, for SIGUSR1. */
static void
session_xfer_status(struct session *s, char *buf, size_t sz)
{
	struct data_conn	*d;
	uint64_t		 bytes = 0;
	int			 counted = 0;
	const char		*mode = data_mode_names[s->xfer.mode];

	if (s->sfs != NULL) {
		sx_status(s, buf, sz);
		return;
	}
	TAILQ_FOREACH(d, &s->data, entry) {
		if (d->join != NULL)
			bytes += join_bytes(d->join);
		if (d->relay != NULL)
			bytes += relay_bytes(d->relay);
		counted |= d->join != NULL || d->relay != NULL;
	}
	if (!s->xfer.running)
		snprintf(buf, sz, "no transfer");
	else if (counted)
		snprintf(buf, sz, "%s %s for %.1fs, %llu bytes", s->xfer.verb,
		    mode, elapsed_since(&s->xfer.start),
		    (unsigned long long)bytes);
	else
		snprintf(buf, sz, "%s %s for %.1fs (bytes moved by the "
		    "master)", s->xfer.verb, mode,
		    elapsed_since(&s->xfer.start));
}

/* SIGUSR1: one line per live session, for whoever wonders what runs. */
void
session_status(void)
{
	struct session	*s;
	char		 xfer[LOG_TEXT_MAX];

	logit(LL_INFO, "%u session%s, master at %s", nsessions,
	    nsessions == 1 ? "" : "s", opt.ctl_path);
	TAILQ_FOREACH(s, &sessions, entry) {
		session_xfer_status(s, xfer, sizeof(xfer));
		logit(LL_INFO, "#%u %s user %s, %s, up %lds, %u transfers, %s",
		    s->id, s->client_str, s->ctl.user[0] != '\0' ?
		    s->ctl.user : "-", s->closing ? "closing" :
		    s->ctl.logged_in ? "logged in" : "not logged in",
		    (long)(time(NULL) - s->started), s->xfer.count, xfer);
	}
}
