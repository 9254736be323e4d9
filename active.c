/*
 * active.c: PORT and EPRT, and the session's remote forward.  The first
 * PORT of a session asks the master for one remote forward on the ssh
 * server, leading to a Unix socket of ours; every active transfer's
 * server connection comes back through it and is joined to the client's
 * data port.  The forward goes with the session.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "ftpfwd.h"
#include "ssh_mux.h"

static void	act_accept_cb(evutil_socket_t, short, void *);
static void	act_rfwd_cb(struct mux_conn *, enum mux_event,
		    const struct mux_reply *, void *);

/*
 * The master brought us the server's data connection: pair it with the
 * client's connection to our passive port, or connect to the client's
 * data port and join the two.  Only one connection per PORT, and only
 * while one is expected.  Returns -1 when none was there to accept.
 */
int
act_accept(struct session *s)
{
	struct data_conn	*d;
	int			 fd;

	if ((fd = accept4(s->act.lfd, NULL, NULL, SOCK_NONBLOCK |
	    SOCK_CLOEXEC)) == -1)
		return -1;
	if (!s->act.armed) {
		/*
		 * Anyone on the ssh server can connect to the forward: one
		 * too many for a transfer means its data may have gone to
		 * the wrong peer, so the transfer fails (426), all of it.
		 * This socket comes from the master, and ssh passes any end
		 * on as an EOF: the 426 is what tells the client.
		 */
		logit(LL_ERROR, "#%u a connection through the remote forward "
		    "while %s: reset", s->id, s->xfer.pending ? "the transfer "
		    "already had its own" : "no transfer awaited one");
		sock_reset_close(fd);
		/* Only a transfer that came through the forward is hurt. */
		if (!s->act.taken || (s->xfer.mode != DM_ACTIVE &&
		    s->xfer.mode != DM_PASV_ACT))
			return 0;
		if (s->xfer.pending) {
			xfer_fail(s, "a second data connection came through "
			    "the remote forward on the ssh server");
		} else
			s->act.hijacked = 1;	/* its command will get 425 */
		data_conns_abort(s);
		return 0;
	}
	s->act.armed = 0;
	s->act.taken = 1;
	if (data_conn_pair(s, 1, fd, ftps_data_tls(s)))
		return 0;
	if ((d = data_conn_new(s, DM_ACTIVE, ftps_data_tls(s))) == NULL) {
		sock_reset_close(fd);
		return 0;
	}
	d->srv_fd = fd;
	if (data_connect_client(d, &s->act.client, s->act.host,
	    s->act.port) == -1)
		data_conn_fail(d, "ftpfwd could not connect to your data port");
	return 0;
}

static void
act_accept_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)act_accept(arg);
}

/*
 * A transfer's final reply is in: whatever the master has queued on our
 * socket came for this transfer, or is one too many (act_accept judges).
 * Take it all now, before the reply reaches the client.
 */
void
act_sweep(struct session *s)
{
	int	n;

	if (s->act.lfd == -1)
		return;
	for (n = 0; n <= ACT_BACKLOG; n++)
		if (act_accept(s) == -1)
			break;
}

/*
 * No data connection is expected any more.  One the master has already
 * queued on our socket still belongs to this transfer: the server's
 * final reply travels on another channel and can be read first.
 */
void
act_disarm(struct session *s)
{
	if (s->act.armed && s->act.lfd != -1)
		(void)act_accept(s);
	s->act.armed = 0;
	s->act.taken = 0;
	s->act.hijacked = 0;
}

/* A new PORT or PASV: no connection is expected any more, and none taken. */
void
act_forget(struct session *s)
{
	s->act.armed = 0;
	s->act.taken = 0;
	s->act.hijacked = 0;
}

/*
 * Did two connections come through the remote forward for the transfer
 * the client is about to ask for?  One of them was not the server's.
 */
int
act_hijacked(const struct session *s)
{
	return s->act.hijacked;
}

/* Our Unix socket, which the session's remote forward leads to. */
static int
act_listen(struct session *s)
{
	struct sockaddr_un	 sun;
	const char		*dir;
	int			 fd;

	if ((dir = rundir_get()) == NULL)
		return -1;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if ((size_t)snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/a%u",
	    dir, s->id) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1)
		return -1;
	(void)unlink(sun.sun_path);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    listen(fd, ACT_BACKLOG) == -1 ||
	    (s->act.ev = event_new(evbase, fd, EV_READ | EV_PERSIST,
	    act_accept_cb, s)) == NULL || event_add(s->act.ev, NULL) != 0) {
		close(fd);
		(void)unlink(sun.sun_path);
		if (s->act.ev != NULL) {
			event_free(s->act.ev);
			s->act.ev = NULL;
		}
		return -1;
	}
	memcpy(s->act.path, sun.sun_path, sizeof(s->act.path));
	s->act.lfd = fd;
	return 0;
}

static void
act_listen_close(struct session *s)
{
	if (s->act.lfd != -1)
		(void)unlink(s->act.path);
	sock_listener_close(&s->act.ev, &s->act.lfd);
}

/*
 * Point the server at the session's remote forward: PORT on IPv4 unless
 * the server's FEAT lists EPRT, EPRT on IPv6.  For the client's PORT or
 * EPRT (cmd), or as our own before a transfer (ours).
 */
int
act_send_port(struct session *s, enum ftp_cmd cmd, int ours)
{
	struct sockaddr_storage	ss = s->fwd->act_addr;
	enum ftp_cmd		sent = FTP_CMD_EPRT;
	char			line[FTP_FMT_MAX];
	int			n;

	addr_set_port(&ss, s->act.rport);
	if (ss.ss_family == AF_INET && !(s->ctl.srv_feat & FTP_FEAT_EPRT))
		sent = FTP_CMD_PORT;
	if (sent == FTP_CMD_PORT)
		n = ftp_fmt_port(line, sizeof(line), (struct sockaddr *)&ss);
	else
		n = ftp_fmt_eprt(line, sizeof(line), (struct sockaddr *)&ss);
	if (n == -1) {
		/* Our own PORT: the waiting transfer says it (xl_fail). */
		if (!ours)
			client_reply(s, "425 ftpfwd: cannot format the data "
			    "address");
		return -1;
	}
	evbuffer_add(bufferevent_get_output(s->ctl.srv), line, (size_t)n);
	pending_push(s, ours ? sent : cmd, sent, ours);
	s->act.armed = 1;
	if (ours)
		logit(LL_DEBUG1, "#%u active: %s:%u -> our passive port's "
		    "connection", s->id, s->fwd->act_bind, s->act.rport);
	else
		logit(LL_DEBUG1, "#%u active: %s:%u -> %s:%u", s->id,
		    s->fwd->act_bind, s->act.rport, s->act.host, s->act.port);
	return 0;
}

/* Ask the master for the session's remote forward; the client waits. */
int
act_request(struct session *s)
{
	char	err[ERR_MAX];

	if (s->act.lfd == -1 && act_listen(s) == -1) {
		logit(LL_ERROR, "#%u cannot open a socket for the remote "
		    "forward in %s: %s", s->id, rundir_get() != NULL ?
		    rundir_get() : "TMPDIR", strerror(errno));
		snprintf(s->xl.err, sizeof(s->xl.err), "425 ftpfwd: cannot "
		    "open a local socket: %s", strerror(errno));
		return -1;
	}
	if (s->act.mux == NULL && (s->act.mux = mux_open(evbase, opt.ctl_path,
	    act_rfwd_cb, s, err, sizeof(err))) == NULL) {
		snprintf(s->xl.err, sizeof(s->xl.err), "425 ftpfwd: cannot "
		    "reach the ssh master: %s", err);
		return -1;
	}
	/* Recorded first, for a successor should we die with it open. */
	rundir_record(s->id, s->fwd->act_bind, s->act.path);
	if (mux_open_rfwd_path(s->act.mux, s->fwd->act_bind, 0, s->act.path,
	    &s->act.rid) == -1) {
		snprintf(s->xl.err, sizeof(s->xl.err), "425 ftpfwd: cannot ask "
		    "the master for a remote forward");
		return -1;
	}
	s->act.state = ACT_OPENING;	/* client input waits: ctl_blocked */
	logit(LL_DEBUG2, "#%u asked for a remote forward on %s to %s", s->id,
	    s->fwd->act_bind, s->act.path);
	return 0;
}


/* sshd refused the session's remote forward: say so, or go passive. */
static void
act_rfwd_refused(struct session *s, const char *why)
{
	logit(LL_ERROR, "#%u ssh refused the remote forward on %s: %s",
	    s->id, s->fwd->act_bind, why);
	s->act.state = ACT_NONE;
	act_listen_close(s);
	if (xl_waits_for_rfwd(s))
		xl_rfwd_answer(s, why);
	else if (opt.act_mode == AM_AUTO) {
		master_rfwd_refuse(why);
		xl_take_port(s);
		ctl_resume(s);
	} else {
		client_reply(s, "425 ftpfwd: ssh refused the remote forward: "
		    "%s", why);
		ctl_resume(s);
	}
}

/* The master's answers on the session's remote-forward link. */
static void
act_rfwd_cb(struct mux_conn *mc, enum mux_event ev, const struct mux_reply *r,
    void *arg)
{
	struct session	*s = arg;
	char		 why[LOG_TEXT_MAX];

	if (ev == MUX_EV_READY)
		return;
	if (ev == MUX_EV_CLOSED) {
		logit(LL_ERROR, "#%u lost the ssh master: %s", s->id,
		    escape(why, sizeof(why), r->reason, r->reason_len));
		s->act.mux = NULL;
		mux_free(mc);
		session_close(s, "421 ftpfwd: ssh connection closed");
		return;
	}
	if (s->act.state != ACT_OPENING || r->rid != s->act.rid) {
		if (ev == MUX_EV_FAILURE)
			logit(LL_DEBUG1, "#%u master: %s", s->id, escape(why,
			    sizeof(why), r->reason, r->reason_len));
		return;
	}
	if (ev != MUX_EV_REMOTE_PORT || r->value == 0 || r->value > 65535) {
		escape(why, sizeof(why), r->reason, r->reason_len);
		if (why[0] == '\0')
			snprintf(why, sizeof(why), "no reason given");
		act_rfwd_refused(s, why);
		return;
	}
	s->act.state = ACT_OPEN;
	s->act.rport = (uint16_t)r->value;
	logit(LL_DEBUG1, "#%u remote forward %s:%u -> %s", s->id,
	    s->fwd->act_bind, s->act.rport, s->act.path);
	if (xl_waits_for_rfwd(s)) {
		xl_rfwd_answer(s, NULL);
		return;
	}
	(void)act_send_port(s, s->act.cmd, 0);
	ctl_resume(s);
}

/*
 * PORT or EPRT from the client: check it, then point the server at the
 * session's remote forward, or (ActiveMode=passive) answer it here and
 * go passive toward the server when the transfer comes.  The first one
 * asks the master for that forward, and reading the client stops until
 * the master answers; later ones reuse it, so a session costs one mux
 * request however many transfers it makes (the master's forward table
 * never shrinks).
 */
void
act_command(struct session *s, enum ftp_cmd cmd, const char *arg,
    size_t len)
{
	struct sockaddr_storage	 ss;
	const char		*verb = cmd == FTP_CMD_PORT ? "PORT" : "EPRT";
	int			 r;

	if (opt.act_mode == AM_OFF) {
		client_reply(s, "502 ftpfwd: active mode is off here, use "
		    "passive mode (PASV or EPSV)");
		return;
	}
	if (s->ctl.epsv_all) {
		client_reply(s, "503 ftpfwd: only EPSV after EPSV ALL");
		return;
	}
	/* No forward on the ssh server for a client that has not logged in. */
	if (!s->ctl.logged_in) {
		client_reply(s, "530 ftpfwd: log in with USER and PASS first");
		return;
	}
	/*
	 * Our connection to a data port is made as our own user: for
	 * another one of LocalUsers it could reach our own loopback
	 * services.  Passive mode serves them.
	 */
	if (s->client_who.known && s->client_who.uid != getuid()) {
		client_reply(s, "504 ftpfwd: active mode is only for the user "
		    "running ftpfwd; use passive mode (PASV or EPSV)");
		return;
	}
	r = cmd == FTP_CMD_PORT ? ftp_parse_port(arg, len, &ss) :
	    ftp_parse_eprt(arg, len, &ss);
	if (r == -2) {
		client_reply(s, "522 Network protocol not supported, "
		    "use (1,2)");
		return;
	}
	if (r == -1) {
		client_reply(s, "501 ftpfwd: malformed %s argument", verb);
		return;
	}
	addr_unmap(&ss);
	if (addr_is_any(&ss) && ss.ss_family == s->client_addr.ss_family) {
		/* lftp on IPv6 sends EPRT |2|::|port|: "where I am". */
		r = addr_port(&ss);
		ss = s->client_addr;
		addr_set_port(&ss, (uint16_t)r);
	}
	if (!addr_same_host(&ss, &s->client_addr)) {
		client_reply(s, "504 ftpfwd: the data address must be your own "
		    "(%s)", s->client_str);
		logit(LL_ERROR, "#%u refused a data address other than the "
		    "client's", s->id);
		return;
	}
	if (addr_port(&ss) < 1024) {
		client_reply(s, "504 ftpfwd: data port %u is below 1024",
		    addr_port(&ss));
		return;
	}
	data_setup_forget(s);
	s->act.client = ss;
	addr_host((struct sockaddr *)&ss, s->act.host, sizeof(s->act.host));
	s->act.port = addr_port(&ss);
	s->act.cmd = cmd;
	if (xl_port_goes_passive()) {
		xl_take_port(s);
		return;
	}
	s->xfer.mode = DM_ACTIVE;
	if (s->act.state == ACT_OPEN) {
		(void)act_send_port(s, cmd, 0);
		return;
	}
	if (act_request(s) == -1)
		client_reply(s, "%s", s->xl.err);
}

static void
act_cancel_cb(struct mux_conn *mc, enum mux_event ev,
    const struct mux_reply *r, void *arg)
{
	uint32_t	*rid = arg;

	if (ev == MUX_EV_CLOSED || (r != NULL && r->rid == *rid &&
	    (ev == MUX_EV_OK || ev == MUX_EV_FAILURE))) {
		free(rid);
		mux_free(mc);
	}
}

/*
 * The session ends: our socket goes, and the remote forward is cancelled
 * with the tuple that opened it; the link lives on alone until the master
 * has the cancel, then frees itself.
 */
void
act_close(struct session *s)
{
	uint32_t	*rid;

	act_listen_close(s);
	if (s->act.mux == NULL)
		return;
	if (s->act.state != ACT_NONE && (rid = malloc(sizeof(*rid))) != NULL) {
		mux_set_cb(s->act.mux, act_cancel_cb, rid);
		if (mux_close_rfwd_path(s->act.mux, s->fwd->act_bind, 0,
		    s->act.path, rid) == 0) {
			s->act.mux = NULL;
			rundir_unrecord(s->id);
			return;
		}
		free(rid);
	}
	/* Never opened, or the link is lost: the master has no forward. */
	if (s->act.state == ACT_NONE || !mux_is_ready(s->act.mux))
		rundir_unrecord(s->id);
	mux_free(s->act.mux);
	s->act.mux = NULL;
}
