/*
 * data.c: data connections, whatever their modes.  Each is told by its
 * caller what it joins and whether TLS is on a side; here it is carried:
 * handed to the master as a stdio forward, joined with splice(2), or
 * relayed through TLS, and paired when both of its ends come to us.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include "ftpfwd.h"
#include "join.h"
#include "peeruid.h"
#include "ssh_mux.h"
#include "tls.h"

/* For the log: the client's mode, then the server's. */
const char *const data_mode_names[] = {
	[DM_NONE] = "-",
	[DM_PASSIVE] = "passive",
	[DM_ACTIVE] = "active",
	[DM_ACT_PASV] = "active>passive",
	[DM_PASV_ACT] = "passive>active",
};

/* How often a download's socket is looked at (data_watch_cb). */
static const struct timeval	data_watch_every = { DATA_WATCH_MS / 1000,
				    DATA_WATCH_MS % 1000 * 1000 };

static void	data_connect_cb(evutil_socket_t, short, void *);
static void	data_first_end_cb(struct join *, const char *, void *);

struct data_conn *
data_conn_new(struct session *s, enum data_mode mode, int tls)
{
	struct data_conn	*d;

	if ((d = calloc(1, sizeof(*d))) == NULL)
		return NULL;
	d->s = s;
	d->mode = mode;
	d->tls_client = (tls & DATA_TLS_CLIENT) != 0;
	d->tls_server = (tls & DATA_TLS_SERVER) != 0;
	d->cli_fd = d->srv_fd = d->down_fd = -1;
	d->xfer = s->xfer.count;	/* the next final reply is its */
	TAILQ_INSERT_TAIL(&s->data, d, entry);
	return d;
}

void
data_conn_free(struct data_conn *d)
{
	struct session	*s = d->s;

	TAILQ_REMOVE(&s->data, d, entry);
	mux_free(d->mc);
	if (d->conn_ev != NULL)
		event_free(d->conn_ev);
	join_free(d->join);
	relay_free(d->relay);
	if (d->cli_fd != -1)
		close(d->cli_fd);
	if (d->srv_fd != -1)
		close(d->srv_fd);
	if (d->down_fd != -1)
		close(d->down_fd);
	if (d->watch_ev != NULL)
		event_free(d->watch_ev);
	free(d);
	ctl_xfer_data_moved(s);
}

/*
 * Has the master written a download's last byte to the client's socket
 * and closed it?  It holds that socket alone (data_to_master), so once
 * no process holds it the FIN is queued behind the data.  Nothing tells
 * us when: ask the kernel.  The master closes it too when a write fails
 * (the client went away), and then our pipe's end goes, so that the
 * master's input ends and it closes the channel: the server learns of
 * it as it would have from the client.  Returns 1, 0, or -1 when the
 * kernel cannot say.
 */
static int
data_master_done(struct data_conn *d)
{
	int	held;

	if (d->down_fd == -1)
		return 1;	/* found so before: the pipe went then */
	if ((held = sock_held(&d->cli_self, &d->cli_peer)) != 0)
		return held == 1 ? 0 : -1;
	close(d->down_fd);
	d->down_fd = -1;
	event_del(d->watch_ev);
	return 1;
}

/*
 * A download under way: has the master let go of the client's socket?
 * A held 226 may go then.  A kernel that could not answer this time is
 * asked again next time.
 */
static void
data_watch_cb(evutil_socket_t fd, short what, void *arg)
{
	struct data_conn	*d = arg;

	(void)fd;
	(void)what;
	if (data_master_done(d) == 1)
		ctl_xfer_data_moved(d->s);
	else
		evtimer_add(d->watch_ev, &data_watch_every);
}

/*
 * Is a data connection of the transfer whose final reply is due still
 * passing the server's bytes on toward the client?  A join says when it
 * has passed their end on.  A download's stdio forward, which the
 * master carries straight to the client's socket, is done once the
 * master has closed that socket; *pollp is then set: only asking again
 * tells.  Any other stdio forward is done when the master closes its
 * mux connection, once the channel has closed.  That reply waits for
 * them, as it would on a direct connection: a client may take a 226
 * before its data's end for the end of its data.  An upload's data has
 * reached the server when the server says so.
 */
int
data_xfer_unsent(struct session *s, int *pollp)
{
	struct data_conn	*d;
	int			 unsent = 0, done;

	*pollp = 0;
	TAILQ_FOREACH(d, &s->data, entry) {
		if (d->xfer != s->xfer.count)
			continue;
		if (d->conn_ev != NULL ||
		    (d->join != NULL && !join_first_ended(d->join)))
			return 1;
		if (d->mc == NULL || d->join != NULL || d->relay != NULL ||
		    d->cmd_due || d->dir == DIR_UP)
			continue;
		if (d->dir == DIR_UNKNOWN ||
		    (done = data_master_done(d)) == -1)
			return 1;
		if (done == 0)
			unsent = *pollp = 1;
	}
	return unsent;
}

static void
data_first_end_cb(struct join *j, const char *why, void *arg)
{
	struct data_conn	*d = arg;

	(void)j;
	(void)why;
	ctl_xfer_data_moved(d->s);
}

/*
 * Nothing carries it yet: both descriptors are ours and wait for the
 * transfer's 1xx, or one or both of a pair have still to come, or the
 * client's waits for its transfer command (cmd_due).
 */
int
data_conn_waiting(const struct data_conn *d)
{
	return d->join == NULL && d->relay == NULL && d->conn_ev == NULL &&
	    (d->pairing || d->cmd_due ||
	    (d->cli_fd != -1 && d->srv_fd != -1));
}

/*
 * d did not carry its data whole: its transfer fails (the server's 226
 * becomes 426), and what d holds is reset and freed.  Toward a TCP peer
 * a reset says "cut short"; a Unix socket toward the master has no
 * reset, and ssh passes any end on as an EOF, so there only the 426
 * tells the client.
 */
void
data_conn_fail(struct data_conn *d, const char *why)
{
	if (d->xfer == d->s->xfer.count)
		xfer_fail(d->s, "%s", why);
	if (d->conn_ev != NULL) {
		event_free(d->conn_ev);
		d->conn_ev = NULL;
	}
	join_abort(d->join);
	relay_abort(d->relay);
	d->join = NULL;
	d->relay = NULL;
	if (d->cli_fd != -1)
		sock_reset_close(d->cli_fd);
	if (d->srv_fd != -1)
		sock_reset_close(d->srv_fd);
	d->cli_fd = d->srv_fd = -1;
	data_conn_free(d);
}

/* A data connection we carried has ended, whole or not (why). */
static void
data_conn_done(struct data_conn *d, uint64_t bytes, const char *why)
{
	char	msg[LOG_TEXT_MAX];

	logit(why != NULL ? LL_VERBOSE : LL_DEBUG1, "#%u %s data connection "
	    "done after %llu bytes%s%s", d->s->id, data_mode_names[d->mode],
	    (unsigned long long)bytes, why != NULL ? ": " : "",
	    why != NULL ? why : "");
	if (why == NULL) {
		data_conn_free(d);
		return;
	}
	snprintf(msg, sizeof(msg), "the data connection failed after %llu "
	    "bytes: %s", (unsigned long long)bytes, why);
	data_conn_fail(d, msg);
}

static void
data_join_cb(struct join *j, const char *why, void *arg)
{
	data_conn_done(arg, join_bytes(j), why);
}

static void
data_relay_cb(struct relay *r, const char *why, void *arg)
{
	data_conn_done(arg, relay_bytes(r), why);
}

/* Must the data bytes pass through us?  Only when TLS is on a side. */
static int
data_needs_relay(const struct data_conn *d)
{
	return d->tls_client || d->tls_server;
}

/* A bufferevent on fd, TLS when ssl is set; takes fd and ssl. */
static struct bufferevent *
data_bev(int fd, SSL *ssl, enum bufferevent_ssl_state state)
{
	struct bufferevent	*bev;

	if (ssl == NULL) {
		if ((bev = bufferevent_socket_new(evbase, fd,
		    BEV_OPT_CLOSE_ON_FREE)) == NULL)
			close(fd);
		return bev;
	}
	if ((bev = bufferevent_openssl_socket_new(evbase, fd, ssl, state,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		SSL_free(ssl);
		close(fd);
	}
	return bev;
}

/*
 * Relay d's two descriptors: TLS toward the client when it asked for
 * PROT P, TLS toward the server (resuming the control's session) with
 * UpstreamTLS.  Takes both descriptors, even on failure.
 */
static struct relay *
data_relay(struct data_conn *d)
{
	struct session		*s = d->s;
	struct bufferevent	*bc = NULL, *bs = NULL;
	struct relay		*r;
	SSL_SESSION		*sess;
	SSL			*cssl = NULL, *sssl = NULL;
	int			 cli_fd = d->cli_fd, srv_fd = d->srv_fd;

	d->cli_fd = d->srv_fd = -1;
	if (d->tls_client && (cssl = tls_client_ssl(1)) == NULL)
		goto fail;
	if (d->tls_server) {
		sess = SSL_get1_session(s->tls.up_ssl);
		sssl = tls_upstream_ssl(ftps_server_name(s), sess);
		SSL_SESSION_free(sess);
		if (sssl == NULL)
			goto fail;
	}
	evutil_make_socket_nonblocking(cli_fd);
	evutil_make_socket_nonblocking(srv_fd);
	bc = data_bev(cli_fd, cssl, BUFFEREVENT_SSL_ACCEPTING);
	cli_fd = -1;
	cssl = NULL;
	if (bc == NULL)
		goto fail;
	bs = data_bev(srv_fd, sssl, BUFFEREVENT_SSL_CONNECTING);
	srv_fd = -1;
	sssl = NULL;
	if (bs == NULL)
		goto fail;
	if ((r = relay_new(bc, bs, data_relay_cb, d)) == NULL)
		goto fail;
	return r;
 fail:
	SSL_free(cssl);
	SSL_free(sssl);
	if (bc != NULL)
		bufferevent_free(bc);
	if (bs != NULL)
		bufferevent_free(bs);
	if (cli_fd != -1)
		close(cli_fd);
	if (srv_fd != -1)
		close(srv_fd);
	return NULL;
}

/*
 * Toward the server, TLS on a data connection starts once the transfer
 * command has its 1xx reply, as RFC 4217 has it and as servers that
 * secure the connection only for a transfer expect (pyftpdlib drops a
 * handshake that comes earlier).  Until then the descriptors wait.
 */
static int
data_relay_ready(const struct data_conn *d)
{
	return !d->tls_server || d->s->xfer.running;
}

/*
 * Both ends are ours: relay them when TLS is on a side (now, or at the
 * transfer's 1xx), else join them with splice.  Frees d, failing its
 * transfer, when it cannot carry it.
 */
void
data_conn_start(struct data_conn *d)
{
	struct session	*s = d->s;

	if (d->cli_fd == -1 || d->srv_fd == -1)
		return;			/* a pair still waits for an end */
	if (data_needs_relay(d)) {
		if (!data_relay_ready(d))
			return;
		d->relay = data_relay(d);
	} else {
		d->join = join_new(evbase, d->srv_fd, d->cli_fd, data_join_cb,
		    d);
		d->cli_fd = d->srv_fd = -1;	/* the join's, or closed */
		if (d->join != NULL)
			join_on_first_end(d->join, data_first_end_cb);
	}
	if (d->relay == NULL && d->join == NULL) {
		logit(LL_ERROR, "#%u cannot carry the %s data connection: %s",
		    s->id, data_mode_names[d->mode], strerror(errno));
		data_conn_fail(d, "ftpfwd could not carry the data connection");
		return;
	}
	logit(LL_DEBUG1, "#%u %s data connection to %s %s", s->id,
	    data_mode_names[d->mode], d->target, d->relay != NULL ?
	    "relayed" : "joined");
}

/*
 * Call fn on each connection waiting for its 1xx: data_conn_start at
 * the 1xx, data_conn_free once the transfer is over or never began
 * (such a connection will carry nothing).  fn may free the entry.
 */
void
data_conns_each_waiting(struct session *s, void (*fn)(struct data_conn *))
{
	struct data_conn	*d, *dn;

	for (d = TAILQ_FIRST(&s->data); d != NULL; d = dn) {
		dn = TAILQ_NEXT(d, entry);
		if (data_conn_waiting(d))
			fn(d);
	}
}

/*
 * The current transfer cannot be trusted (one connection too many came
 * for it): reset what carries it, so that no peer goes on feeding or
 * reading it, whichever of them is the intruder.
 */
void
data_conns_abort(struct session *s)
{
	struct data_conn	*d, *dn;

	for (d = TAILQ_FIRST(&s->data); d != NULL; d = dn) {
		dn = TAILQ_NEXT(d, entry);
		if (d->xfer == s->xfer.count)
			data_conn_fail(d, "reset with its transfer");
	}
}

void
data_conns_free(struct session *s)
{
	struct data_conn	*d;

	while ((d = TAILQ_FIRST(&s->data)) != NULL)
		data_conn_free(d);
}

static void
data_mux_cb(struct mux_conn *mc, enum mux_event ev,
    const struct mux_reply *r, void *arg)
{
	struct data_conn	*d = arg;
	char			 why[LOG_TEXT_MAX];

	(void)mc;
	switch (ev) {
	case MUX_EV_SESSION_OPENED:
		logit(LL_DEBUG1, "#%u data connection to %s is up",
		    d->s->id, d->target);
		break;
	case MUX_EV_FAILURE:
		logit(LL_ERROR, "#%u ssh refused the data connection to %s: %s",
		    d->s->id, d->target, escape(why, sizeof(why), r->reason,
		    r->reason_len));
		data_conn_fail(d, "ssh refused the data connection");
		break;
	case MUX_EV_CLOSED:
		/*
		 * The master closes the link when the channel is done.  A
		 * relay may still have bytes to pass on: it ends on its own.
		 * One that never started has nothing to carry; a client's
		 * connection that waited for it is reset, not ended.
		 */
		if (d->relay != NULL) {
			mux_free(d->mc);
			d->mc = NULL;
		} else if (d->cmd_due)
			data_conn_fail(d, "the ssh master closed the link");
		else
			data_conn_free(d);
		break;
	default:
		break;
	}
}

/* The mux connection that will carry d's stdio forward; -1 if none. */
static int
data_mux_open(struct data_conn *d)
{
	char	err[ERR_MAX];

	if (d->mc != NULL)
		return 0;
	if ((d->mc = mux_open(evbase, opt.ctl_path, data_mux_cb, d, err,
	    sizeof(err))) != NULL)
		return 0;
	logit(LL_ERROR, "#%u cannot hand the data connection to the master "
	    "at %s: %s", d->s->id, opt.ctl_path, err);
	return -1;
}

/*
 * A download's socket goes to the master as its output alone, with a
 * pipe of ours as its input (a download sends the server nothing; what
 * a client might send on it goes unread, as by a server that only
 * writes).  The master closes its output once the server's last byte
 * is written, and with no other descriptor left that close is the
 * data's end toward the client; were the socket its input too, it would
 * stay open until the channel has closed, a round trip through ssh
 * later.  Only where the kernel can tell when that happens (sock_held),
 * and tells of this socket; otherwise d goes as any other.  Sets *in_fd.
 */
static void
data_split(struct data_conn *d, int fd, int *in_fd)
{
	socklen_t	len;
	int		p[2];

	d->dir = DIR_UNKNOWN;		/* unless all of this works */
	if (!sock_held_usable())
		return;
	len = sizeof(d->cli_self);
	if (getsockname(fd, (struct sockaddr *)&d->cli_self, &len) == -1)
		return;
	len = sizeof(d->cli_peer);
	if (getpeername(fd, (struct sockaddr *)&d->cli_peer, &len) == -1)
		return;
	/* Seen held now, by us: "not held" will mean what it says. */
	if (sock_held(&d->cli_self, &d->cli_peer) != 1 ||
	    (d->watch_ev = evtimer_new(evbase, data_watch_cb, d)) == NULL ||
	    pipe2(p, O_CLOEXEC) == -1)
		return;
	*in_fd = p[0];
	d->down_fd = p[1];
	d->dir = DIR_DOWN;
}

/*
 * Hand fd, the socket toward the client, to the master with a stdio
 * forward to the server's passive port host:port.  Takes fd.
 */
int
data_to_master(struct data_conn *d, int fd, const char *host, uint16_t port)
{
	uint32_t	rid;
	int		in_fd = fd, out_fd = fd, sp[2];

	snprintf(d->target, sizeof(d->target), "%s:%u", host, port);
	if (data_needs_relay(d)) {
		/* TLS: the master gets a socketpair's end, we the bytes. */
		d->cli_fd = fd;
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
		    sp) == -1) {
			logit(LL_ERROR, "#%u socketpair: %s", d->s->id,
			    strerror(errno));
			return -1;
		}
		d->srv_fd = sp[0];
		in_fd = out_fd = sp[1];
	} else if (d->dir == DIR_DOWN)
		data_split(d, fd, &in_fd);
	if (data_mux_open(d) == -1) {
		close(in_fd);
		if (out_fd != in_fd)
			close(out_fd);
		return -1;
	}
	/* mux_stdio_fwd() takes both, even when it fails. */
	if (mux_stdio_fwd(d->mc, host, port, in_fd, out_fd, &rid) == -1) {
		logit(LL_ERROR, "#%u cannot hand the data connection to the "
		    "master at %s: request failed", d->s->id, opt.ctl_path);
		return -1;
	}
	if (d->down_fd != -1)
		evtimer_add(d->watch_ev, &data_watch_every);
	if (data_conn_waiting(d))
		data_conn_start(d);
	return 0;
}

/*
 * Which way the data of the transfer command just gone on goes; unknown
 * when another one is still due too (the client sent two before
 * connecting), as s->xfer.upload tells only of the last.
 */
static enum data_dir
data_dir_sent(const struct session *s)
{
	if (s->xfer.pending != 1)
		return DIR_UNKNOWN;
	return s->xfer.upload ? DIR_UP : DIR_DOWN;
}

/*
 * The client's connection to our passive port, fd, for d.  Plain, it
 * goes to the master once its transfer command has gone on, which says
 * which way the data will go (data_split); the mux connection that will
 * carry the request is opened now, so the master's HELLO is not waited
 * for then.  With TLS on a side the relay takes it now.  Takes fd.
 */
int
data_pasv_take(struct data_conn *d, int fd)
{
	struct session	*s = d->s;

	if (data_needs_relay(d) || s->xfer.pending > 0) {
		d->dir = data_dir_sent(s);
		return data_to_master(d, fd, s->pasv.host, s->pasv.port);
	}
	d->cli_fd = fd;
	d->cmd_due = 1;
	return data_mux_open(d);
}

/*
 * A transfer command has gone on to the server: the client's passive
 * data connection that waited for it goes to the master.
 */
void
data_xfer_command(struct session *s)
{
	struct data_conn	*d, *dn;
	int			 fd;

	for (d = TAILQ_FIRST(&s->data); d != NULL; d = dn) {
		dn = TAILQ_NEXT(d, entry);
		if (!d->cmd_due)
			continue;
		d->cmd_due = 0;
		d->dir = data_dir_sent(s);
		fd = d->cli_fd;
		d->cli_fd = -1;
		if (data_to_master(d, fd, s->pasv.host, s->pasv.port) == -1)
			data_conn_fail(d, "ftpfwd could not hand the data "
			    "connection to ssh");
	}
}

/* The pair still missing the client's end (0) or the server's (1). */
struct data_conn *
data_conn_pairing(struct session *s, int server)
{
	struct data_conn	*d;

	TAILQ_FOREACH(d, &s->data, entry)
		if (d->pairing && (server ? d->srv_fd : d->cli_fd) == -1)
			return d;
	return NULL;
}

/*
 * Give fd to the pair that waits for the client's end (0) or the
 * server's (1), and start it once it has both, with TLS on the sides
 * tls says (as the caller finds them now, the PROT in force).  Returns
 * 0 if none waits (fd is then still the caller's), 1 once fd is the
 * pair's.
 */
int
data_conn_pair(struct session *s, int server, int fd, int tls)
{
	struct data_conn	*d;

	if ((d = data_conn_pairing(s, server)) == NULL)
		return 0;
	d->tls_client = (tls & DATA_TLS_CLIENT) != 0;
	d->tls_server = (tls & DATA_TLS_SERVER) != 0;
	/* splice(2) blocks on a blocking socket, whatever its flags. */
	evutil_make_socket_nonblocking(fd);
	if (server)
		d->srv_fd = fd;
	else
		d->cli_fd = fd;
	d->pairing = d->cli_fd == -1 || d->srv_fd == -1;
	data_conn_start(d);
	return 1;
}

/* Connect toward the client's data port (PORT/EPRT) to, for d. */
int
data_connect_client(struct data_conn *d, const struct sockaddr_storage *to,
    const char *host, uint16_t port)
{
	snprintf(d->target, sizeof(d->target), "%s:%u", host, port);
	if ((d->cli_fd = socket(to->ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1 ||
	    (connect(d->cli_fd, (const struct sockaddr *)to,
	    addr_len(to)) == -1 && errno != EINPROGRESS) ||
	    (d->conn_ev = event_new(evbase, d->cli_fd, EV_WRITE,
	    data_connect_cb, d)) == NULL ||
	    event_add(d->conn_ev, NULL) == -1) {
		logit(LL_ERROR, "#%u cannot connect to the client's data port "
		    "%s: %s", d->s->id, d->target, strerror(errno));
		return -1;
	}
	return 0;
}

/* The connect to the client's data port finished: carry it or give up. */
static void
data_connect_cb(evutil_socket_t fd, short what, void *arg)
{
	struct data_conn	*d = arg;
	socklen_t		 len = sizeof(int);
	int			 err = 0;

	(void)what;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	event_free(d->conn_ev);
	d->conn_ev = NULL;
	if (err != 0)
		logit(LL_ERROR, "#%u cannot connect to the client's data port "
		    "%s: %s", d->s->id, d->target, strerror(err));
	else
		sock_set_opts(d->cli_fd);
	if (d->mode == DM_ACT_PASV) {
		xl_connected(d, err);	/* a transfer command waits */
		return;
	}
	if (err != 0)
		data_conn_fail(d, "ftpfwd could not connect to your data port");
	else
		data_conn_start(d);
}

/*
 * A new PORT/EPRT or PASV/EPSV replaces the last one: what it set up and
 * no transfer used goes.
 */
void
data_setup_forget(struct session *s)
{
	pasv_close(s);
	act_forget(s);
	data_conns_each_waiting(s, data_conn_free);
	xl_reset(s);
}
