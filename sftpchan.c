/*
 * sftpchan.c: SFTP channels over a running ControlMaster; their pool is
 * sftppool.c's.
 *
 * A channel is a mux connection asking for one session with the sftp
 * subsystem (the master allows one session per mux connection), whose
 * standard input, output and error are one end of a socketpair; we
 * speak SFTP on the other end.  INIT goes out at once and waits in the
 * socket until sftp-server reads it; requests made before VERSION (and
 * limits@openssh.com's answer) have come wait in held, so the server
 * sees nothing of ours before the handshake is done.
 *
 * Request ids come from the pool, not the channel: a channel that sshd
 * refused (MaxSessions) never sent anything, so its users and their
 * held requests can move to a channel that did open, ids and all.  The
 * refused channel then stays behind as an alias, for the pointers its
 * users hold, until the last of them puts it.
 *
 * Nothing is freed inside a callback of its own: a dead channel lets go
 * of its descriptors and buffers from the loop, through its reap event,
 * and of its memory only once nobody holds it any more.
 */

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "sftp.h"
#include "sftpchan.h"
#include "ssh_mux.h"
#include "sftpchan_impl.h"

/* Bytes read from sftp-server at a time: a whole DATA reply. */
#define CHAN_READ_MAX		(SFTP_PACKET_MAX + 4)
/* iovecs handed to one sendmsg. */
#define CHAN_IOV_MAX		16
/* A request's header: length, type, id. */
#define SFTP_HDR_LEN		9
/* Room for an INIT, and for a limits@openssh.com request. */
#define CHAN_SMALL_PKT		64
#define CHAN_ERR_MAX		256
#define LIMITS_EXT		"limits@openssh.com"


static uint32_t
get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* The master's words are not ours: printable ASCII only in our text. */
static void
clean_text(char *dst, size_t sz, const char *src, size_t len)
{
	size_t	i;

	if (sz == 0)
		return;
	for (i = 0; i < len && i < sz - 1; i++)
		dst[i] = src[i] >= 0x20 && src[i] < 0x7f ? src[i] : '?';
	dst[i] = '\0';
}

static void
deliver(struct sftp_pool *p, sftp_cb cb, const struct sftp_reply *r,
    const char *err, void *arg)
{
	p->depth++;
	cb(r, err, arg);
	p->depth--;
}

/* The channel an alias's users went to, or the channel itself. */
static struct sftp_chan *
chan_resolve(const struct sftp_chan *ch)
{
	while (ch->alias != NULL)
		ch = ch->alias;
	return (struct sftp_chan *)ch;
}

static struct sftp_req *
chan_find(const struct sftp_chan *ch, uint32_t id)
{
	struct sftp_req	*q;

	/* sftp-server answers in order: the head is nearly always it. */
	TAILQ_FOREACH(q, &ch->reqs, entry)
		if (q->id == id)
			return q;
	return NULL;
}

/* Descriptors, events and buffers: what a dead channel needs no more. */
static void
chan_release(struct sftp_chan *ch)
{
	if (ch->released)
		return;
	ch->released = 1;
	if (ch->mc != NULL)
		mux_free(ch->mc);
	ch->mc = NULL;
	if (ch->rev != NULL)
		event_free(ch->rev);
	if (ch->wev != NULL)
		event_free(ch->wev);
	if (ch->timer != NULL)
		event_free(ch->timer);
	ch->rev = ch->wev = ch->timer = NULL;
	if (ch->fd != -1)
		close(ch->fd);
	ch->fd = -1;
	if (ch->in != NULL)
		evbuffer_free(ch->in);
	if (ch->out != NULL)
		evbuffer_free(ch->out);
	if (ch->held != NULL)
		evbuffer_free(ch->held);
	ch->in = ch->out = ch->held = NULL;
	free(ch->vpkt);
	ch->vpkt = NULL;
	memset(&ch->version, 0, sizeof(ch->version));
}

void
chan_free(struct sftp_chan *ch)
{
	chan_release(ch);
	if (ch->reap != NULL)
		event_free(ch->reap);
	free(ch);
}

static void
chan_reap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sftp_chan	*ch = arg;

	(void)fd;
	(void)what;
	chan_release(ch);
	if (ch->load == 0) {
		TAILQ_REMOVE(&ch->pool->gone, ch, entry);
		chan_free(ch);
	}
}

void
chan_schedule_reap(struct sftp_chan *ch)
{
	event_active(ch->reap, EV_TIMEOUT, 0);
}

/* Nobody uses it and nothing is on its way: close it if that lasts. */
void
chan_maybe_idle(struct sftp_chan *ch)
{
	struct timeval	tv = { SFTP_CHAN_IDLE_SECS, 0 };

	if (ch->state == CS_READY && ch->load == 0 && ch->npending == 0)
		(void)evtimer_add(ch->timer, &tv);
}

/*
 * The channel cannot be used any more: out of the pool, and every
 * request still waiting answered with why.  Callbacks may put it or
 * get a fresh channel; it is released from the loop.
 */
void
chan_kill(struct sftp_chan *ch, int level, const char *fmt, ...)
{
	struct sftp_pool	*p = ch->pool;
	struct sftp_req		*q;
	char			 why[CHAN_ERR_MAX], err[CHAN_ERR_MAX + 32];
	va_list			 ap;

	if (ch->state == CS_DEAD)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	ch->state = CS_DEAD;
	TAILQ_REMOVE(&p->live, ch, entry);
	p->nlive--;
	TAILQ_INSERT_TAIL(&p->gone, ch, entry);
	event_del(ch->rev);
	event_del(ch->wev);
	event_del(ch->timer);
	if (ch->mc != NULL)
		mux_free(ch->mc);	/* its memory goes from the loop */
	ch->mc = NULL;
	plog(p, level, "sftp channel %u closed (%u pending): %s", ch->serial,
	    ch->npending, why);
	chan_schedule_reap(ch);
	(void)snprintf(err, sizeof(err), "sftp channel lost: %s", why);
	/*
	 * One at a time from the list itself: a callback may forget the
	 * requests still to come (a session ending frees their args).
	 */
	while ((q = TAILQ_FIRST(&ch->reqs)) != NULL) {
		TAILQ_REMOVE(&ch->reqs, q, entry);
		ch->npending--;
		if (q->cb != NULL)
			deliver(p, q->cb, NULL, err, q->arg);
		free(q);
	}
}

static void
chan_want_write(struct sftp_chan *ch)
{
	if (evbuffer_get_length(ch->out) > 0 && event_add(ch->wev, NULL) != 0)
		chan_kill(ch, SFTP_LOG_ERROR, "cannot wait to write");
}

/*
 * sshd refused the session.  Nothing of ours reached an sftp-server, so
 * what waits here moves to a channel that is open, and the pool keeps
 * to the channels it has: sshd will refuse more until one closes.
 */
static void
chan_refused(struct sftp_chan *ch, const char *why)
{
	struct sftp_pool	*p = ch->pool;
	struct sftp_chan	*to;

	if ((to = least_loaded(p, ch, 1)) == NULL) {
		chan_kill(ch, SFTP_LOG_ERROR, "the master could not open an "
		    "sftp session: %s", why);
		return;
	}
	p->cap = p->nlive - 1;
	plog(p, SFTP_LOG_INFO, "sftp channel %u refused (%s): keeping to %u "
	    "channels, its %u users go to channel %u", ch->serial, why,
	    p->cap, ch->load, to->serial);
	TAILQ_CONCAT(&to->reqs, &ch->reqs, entry);
	to->npending += ch->npending;
	ch->npending = 0;
	if (evbuffer_add_buffer(to->state == CS_READY ? to->out : to->held,
	    ch->held) != 0) {
		chan_kill(to, SFTP_LOG_ERROR, "out of memory");
		chan_kill(ch, SFTP_LOG_ERROR, "out of memory");
		return;
	}
	to->load += ch->load;
	ch->alias = to;
	if (to->state == CS_READY) {
		event_del(to->timer);		/* no longer idle */
		chan_want_write(to);
	}
	chan_kill(ch, SFTP_LOG_DEBUG, "refused, an alias of channel %u",
	    to->serial);
}

static void
chan_muxcb(struct mux_conn *mc, enum mux_event ev, const struct mux_reply *r,
    void *arg)
{
	struct sftp_chan	*ch = arg;
	char			 why[MUX_REASON_MAX];

	(void)mc;
	clean_text(why, sizeof(why), r->reason, r->reason_len);
	switch (ev) {
	case MUX_EV_SESSION_OPENED:
		ch->session_up = 1;
		if (ch->sock_lost) {
			chan_kill(ch, SFTP_LOG_ERROR, "sftp-server closed the "
			    "channel");
			break;
		}
		plog(ch->pool, SFTP_LOG_DEBUG, "sftp channel %u: session "
		    "open", ch->serial);
		break;
	case MUX_EV_FAILURE:
		if (!ch->session_up && ch->state == CS_VERSION)
			chan_refused(ch, why);
		else
			chan_kill(ch, SFTP_LOG_ERROR, "the master: %s", why);
		break;
	case MUX_EV_EXIT:
		chan_kill(ch, SFTP_LOG_ERROR, "sftp-server exited with status "
		    "%u", r->value);
		break;
	case MUX_EV_CLOSED:
		chan_kill(ch, SFTP_LOG_ERROR, "the master closed the mux "
		    "connection: %s", why);
		break;
	default:
		break;
	}
}

static uint64_t
io_len(uint64_t given)
{
	if (given == 0)
		return SFTP_CHAN_IO_DEFAULT;
	return given < SFTP_CHAN_IO_MAX ? given : SFTP_CHAN_IO_MAX;
}

static void
chan_ready(struct sftp_chan *ch)
{
	ch->state = CS_READY;
	event_del(ch->timer);
	plog(ch->pool, SFTP_LOG_VERBOSE, "sftp channel %u ready: %zu "
	    "extensions, read %llu, write %llu", ch->serial, ch->version.next,
	    (unsigned long long)ch->limits.read_len,
	    (unsigned long long)ch->limits.write_len);
	if (evbuffer_add_buffer(ch->out, ch->held) != 0) {
		chan_kill(ch, SFTP_LOG_ERROR, "out of memory");
		return;
	}
	chan_want_write(ch);
	if (ch->state == CS_READY)
		chan_maybe_idle(ch);
}

/* VERSION: keep it (the extensions point into it), then ask limits. */
static void
chan_version(struct sftp_chan *ch, const unsigned char *pkt, size_t len)
{
	unsigned char	buf[CHAN_SMALL_PKT];
	long		n;

	if ((ch->vpkt = malloc(len)) == NULL) {
		chan_kill(ch, SFTP_LOG_ERROR, "out of memory");
		return;
	}
	memcpy(ch->vpkt, pkt, len);
	if (sftp_decode_version(ch->vpkt, len, &ch->version) == -1) {
		chan_kill(ch, SFTP_LOG_ERROR, "malformed VERSION");
		return;
	}
	if (ch->version.version != SFTP_VERSION) {
		chan_kill(ch, SFTP_LOG_ERROR, "sftp-server speaks version %u",
		    ch->version.version);
		return;
	}
	if (!sftp_has_ext(&ch->version, LIMITS_EXT, NULL)) {
		chan_ready(ch);
		return;
	}
	ch->limits_id = ch->pool->next_id++;
	if ((n = sftp_enc_ext(buf, sizeof(buf), ch->limits_id, LIMITS_EXT,
	    NULL)) == -1 || evbuffer_add(ch->out, buf, (size_t)n) != 0) {
		chan_kill(ch, SFTP_LOG_ERROR, "cannot ask for limits");
		return;
	}
	ch->state = CS_LIMITS;
	chan_want_write(ch);
}

static void
chan_limits(struct sftp_chan *ch, const struct sftp_reply *r)
{
	struct sftp_limits	lim;

	if (r->type == SSH_FXP_STATUS) {
		/* Offered but refused: the defaults are safe. */
		chan_ready(ch);
		return;
	}
	if (r->type != SSH_FXP_EXTENDED_REPLY ||
	    sftp_decode_limits(&r->ext, &lim) == -1) {
		chan_kill(ch, SFTP_LOG_ERROR, "malformed limits reply");
		return;
	}
	ch->limits = lim;
	ch->limits.read_len = io_len(lim.read_len);
	ch->limits.write_len = io_len(lim.write_len);
	chan_ready(ch);
}

static void
chan_reply(struct sftp_chan *ch, const struct sftp_reply *r)
{
	struct sftp_req	*q;

	if ((q = chan_find(ch, r->id)) == NULL) {
		chan_kill(ch, SFTP_LOG_ERROR, "a reply to request %u, which "
		    "nobody made", r->id);
		return;
	}
	TAILQ_REMOVE(&ch->reqs, q, entry);
	ch->npending--;
	if (q->cb != NULL)
		deliver(ch->pool, q->cb, r, NULL, q->arg);
	free(q);
	if (ch->state == CS_READY)
		chan_maybe_idle(ch);
}

/*
 * Our end of the socketpair failed.  Before the session is up, that is
 * the master closing what it was handed, as when sshd refused the
 * session: its reason follows on the mux connection (which may say
 * refused, and then this channel's users move), so wait for it.  The
 * open timeout still runs.
 */
static void
chan_sock_lost(struct sftp_chan *ch, const char *why)
{
	if (ch->session_up || ch->state != CS_VERSION) {
		chan_kill(ch, SFTP_LOG_ERROR, "%s", why);
		return;
	}
	ch->sock_lost = 1;
	event_del(ch->rev);
	event_del(ch->wev);
	plog(ch->pool, SFTP_LOG_DEBUG, "sftp channel %u: %s before its "
	    "session opened", ch->serial, why);
}

/* One whole packet at the head of in, if it is there: 1 if handled. */
static int
chan_packet(struct sftp_chan *ch)
{
	struct sftp_reply	 r;
	unsigned char		 hdr[4], *pkt;
	size_t			 have = evbuffer_get_length(ch->in);
	long			 len;

	if (have < sizeof(hdr))
		return 0;
	(void)evbuffer_copyout(ch->in, hdr, sizeof(hdr));
	if ((len = sftp_packet_len(hdr, sizeof(hdr))) <= 0) {
		chan_kill(ch, SFTP_LOG_ERROR, "a packet of impossible length");
		return 0;
	}
	if ((size_t)len > have)
		return 0;
	if ((pkt = evbuffer_pullup(ch->in, len)) == NULL) {
		chan_kill(ch, SFTP_LOG_ERROR, "out of memory");
		return 0;
	}
	if (ch->state == CS_VERSION)
		chan_version(ch, pkt, (size_t)len);
	else if (sftp_decode(pkt, (size_t)len, &r) == -1)
		chan_kill(ch, SFTP_LOG_ERROR, "a malformed packet (type %u)",
		    pkt[4]);
	else if (ch->state == CS_LIMITS && r.id == ch->limits_id)
		chan_limits(ch, &r);
	else if (ch->state == CS_LIMITS)
		chan_kill(ch, SFTP_LOG_ERROR, "a reply before limits");
	else
		chan_reply(ch, &r);
	/* A callback may have killed it; in lives until the loop's reap. */
	(void)evbuffer_drain(ch->in, (size_t)len);
	return ch->state != CS_DEAD;
}

/*
 * libevent 2.1's evbuffer_read reads 4 KiB at a time (EVBUFFER_MAX_READ)
 * whatever it is asked: a wakeup for every 4 KiB of a 255 KiB DATA
 * reply.  Read into reserved space instead, up to max at once.  Returns
 * as read(2) does, but 1 for any bytes read.  The upload's reader too.
 */
int
sftp_evbuffer_read(struct evbuffer *b, int fd, size_t max)
{
	struct evbuffer_iovec	v[2];
	struct iovec		iov[2];
	ssize_t			n;
	int			i, nv;

	if ((nv = evbuffer_reserve_space(b, (ev_ssize_t)max, v, 2)) <= 0) {
		errno = ENOMEM;
		return -1;
	}
	for (i = 0; i < nv; i++) {
		iov[i].iov_base = v[i].iov_base;
		iov[i].iov_len = v[i].iov_len;
	}
	if ((n = readv(fd, iov, nv)) <= 0) {
		(void)evbuffer_commit_space(b, v, 0);
		return (int)n;
	}
	for (i = 0; i < nv; i++) {
		if ((size_t)n < v[i].iov_len)
			v[i].iov_len = (size_t)n;
		n -= (ssize_t)v[i].iov_len;
	}
	if (evbuffer_commit_space(b, v, nv) != 0) {
		errno = ENOMEM;
		return -1;
	}
	return 1;
}

static void
chan_readcb(evutil_socket_t fd, short what, void *arg)
{
	struct sftp_chan	*ch = arg;
	int			 n;

	(void)what;
	n = sftp_evbuffer_read(ch->in, fd, CHAN_READ_MAX);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		if (n == 0)
			chan_sock_lost(ch, "sftp-server closed the channel");
		else
			chan_sock_lost(ch, strerror(errno));
		return;
	}
	while (chan_packet(ch) == 1)
		;
}

/* writev would raise SIGPIPE if sftp-server is gone: sendmsg does not. */
static void
chan_writecb(evutil_socket_t fd, short what, void *arg)
{
	struct sftp_chan	*ch = arg;
	struct evbuffer_iovec	 v[CHAN_IOV_MAX];
	struct iovec		 iov[CHAN_IOV_MAX];
	struct msghdr		 msg;
	ssize_t			 n;
	int			 i, nv;

	(void)what;
	nv = evbuffer_peek(ch->out, -1, NULL, v, CHAN_IOV_MAX);
	if (nv > CHAN_IOV_MAX)
		nv = CHAN_IOV_MAX;
	for (i = 0; i < nv; i++) {
		iov[i].iov_base = v[i].iov_base;
		iov[i].iov_len = v[i].iov_len;
	}
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = iov;
	msg.msg_iovlen = (size_t)nv;
	n = sendmsg(fd, &msg, MSG_NOSIGNAL);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n == -1) {
		chan_sock_lost(ch, strerror(errno));
		return;
	}
	(void)evbuffer_drain(ch->out, (size_t)n);
	if (evbuffer_get_length(ch->out) == 0)
		event_del(ch->wev);
}

static void
chan_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sftp_chan	*ch = arg;

	(void)fd;
	(void)what;
	if (ch->state != CS_READY)
		chan_kill(ch, SFTP_LOG_ERROR, "not ready within %d s (is ssh "
		    "running a LocalCommand?)", SFTP_CHAN_OPEN_SECS);
	else if (ch->load == 0 && ch->npending == 0)
		chan_kill(ch, SFTP_LOG_DEBUG, "idle for %d s",
		    SFTP_CHAN_IDLE_SECS);
}

/* Events and buffers of a new channel; -1 when memory runs out. */
static int
chan_alloc(struct sftp_chan *ch)
{
	struct event_base	*base = ch->pool->base;

	if ((ch->in = evbuffer_new()) == NULL ||
	    (ch->out = evbuffer_new()) == NULL ||
	    (ch->held = evbuffer_new()) == NULL ||
	    (ch->reap = evtimer_new(base, chan_reap_cb, ch)) == NULL ||
	    (ch->timer = evtimer_new(base, chan_timer_cb, ch)) == NULL ||
	    (ch->rev = event_new(base, ch->fd, EV_READ | EV_PERSIST,
	    chan_readcb, ch)) == NULL ||
	    (ch->wev = event_new(base, ch->fd, EV_WRITE | EV_PERSIST,
	    chan_writecb, ch)) == NULL)
		return -1;
	return 0;
}

/*
 * Start a channel: the mux connection, the session request (both
 * queued by ssh_mux.c until the master's HELLO) and our INIT.
 */
struct sftp_chan *
chan_open(struct sftp_pool *p)
{
	struct sftp_chan	*ch;
	struct timeval		 tv = { SFTP_CHAN_OPEN_SECS, 0 };
	unsigned char		 init[CHAN_SMALL_PKT];
	char			 err[CHAN_ERR_MAX];
	uint32_t		 rid;
	long			 n;
	int			 sv[2];

	if ((ch = calloc(1, sizeof(*ch))) == NULL)
		return NULL;
	ch->pool = p;
	ch->serial = ++p->serial;
	ch->fd = -1;
	TAILQ_INIT(&ch->reqs);
	ch->limits.read_len = ch->limits.write_len = SFTP_CHAN_IO_DEFAULT;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
		plog(p, SFTP_LOG_ERROR, "socketpair: %s", strerror(errno));
		free(ch);
		return NULL;
	}
	ch->fd = sv[0];
	if (fcntl(ch->fd, F_SETFL, O_NONBLOCK) == -1 || chan_alloc(ch) != 0 ||
	    (n = sftp_enc_init(init, sizeof(init))) == -1 ||
	    evbuffer_add(ch->out, init, (size_t)n) != 0) {
		plog(p, SFTP_LOG_ERROR, "cannot start an sftp channel");
		goto fail;
	}
	if ((ch->mc = mux_open(p->base, p->ctl_path, chan_muxcb, ch, err,
	    sizeof(err))) == NULL) {
		plog(p, SFTP_LOG_ERROR, "sftp channel: %s", err);
		goto fail;
	}
	n = mux_new_session(ch->mc, "sftp", 1, sv[1], &rid);
	sv[1] = -1;				/* mux_new_session's now */
	if (n == -1 || event_add(ch->rev, NULL) != 0 ||
	    event_add(ch->wev, NULL) != 0 || evtimer_add(ch->timer, &tv) != 0) {
		plog(p, SFTP_LOG_ERROR, "cannot ask for an sftp session");
		goto fail;
	}
	TAILQ_INSERT_TAIL(&p->live, ch, entry);
	p->nlive++;
	plog(p, SFTP_LOG_DEBUG, "sftp channel %u opening", ch->serial);
	return ch;
 fail:
	if (sv[1] != -1)
		close(sv[1]);
	chan_free(ch);
	return NULL;
}

int
sftp_chan_ready(const struct sftp_chan *ch)
{
	return chan_resolve(ch)->state == CS_READY;
}

/* The defaults until the channel is ready. */
const struct sftp_limits *
sftp_chan_limits(const struct sftp_chan *ch)
{
	return &chan_resolve(ch)->limits;
}

/* Lost for good: its users should put it and get another. */
int
sftp_chan_dead(const struct sftp_chan *ch)
{
	return chan_resolve(ch)->state == CS_DEAD;
}

int
sftp_chan_has_ext(const struct sftp_chan *ch, const char *name)
{
	ch = chan_resolve(ch);
	if (ch->vpkt == NULL)
		return 0;
	return sftp_has_ext(&ch->version, name, NULL);
}

/* Unique in the pool, so requests may move between its channels. */
uint32_t
sftp_chan_next_id(struct sftp_chan *ch)
{
	return ch->pool->next_id++;
}

size_t
sftp_chan_queued(const struct sftp_chan *ch)
{
	ch = chan_resolve(ch);
	if (ch->released)
		return 0;
	return evbuffer_get_length(ch->out) + evbuffer_get_length(ch->held);
}

/* Requests sent on the channel and not answered yet. */
u_int
sftp_chan_pending(const struct sftp_chan *ch)
{
	return chan_resolve(ch)->npending;
}

/* A request a server may be sent: one we know, whole, id not in use. */
static int
req_check(const struct sftp_chan *ch, const unsigned char *head,
    size_t headlen, size_t total)
{
	long	plen;
	uint8_t	type;

	if (headlen < SFTP_HDR_LEN || total > SFTP_PACKET_MAX + 4)
		return -1;
	if ((plen = sftp_packet_len(head, headlen)) <= 0 ||
	    (size_t)plen != total)
		return -1;
	type = head[4];
	if ((type < SSH_FXP_OPEN || type > SSH_FXP_SYMLINK) &&
	    type != SSH_FXP_EXTENDED)
		return -1;
	if (chan_find(ch, get_u32(head + 5)) != NULL)
		return -1;
	return 0;
}

/* data is datalen bytes at data, or the first datalen of src, moved. */
static int
chan_queue(struct sftp_chan *ch, const unsigned char *head, size_t headlen,
    const void *data, struct evbuffer *src, size_t datalen, sftp_cb cb,
    void *arg)
{
	struct sftp_req	*q;
	struct evbuffer	*b;
	size_t		 total;

	ch = chan_resolve(ch);
	if (ch->state == CS_DEAD || ch->pool->dying ||
	    ch->npending >= SFTP_CHAN_PENDING_MAX ||
	    datalen > SFTP_PACKET_MAX || headlen > SFTP_PACKET_MAX)
		return -1;
	total = headlen + datalen;
	if (req_check(ch, head, headlen, total) != 0 ||
	    sftp_chan_queued(ch) + total > SFTP_CHAN_QUEUE_MAX ||
	    (src != NULL && evbuffer_get_length(src) < datalen))
		return -1;
	if ((q = calloc(1, sizeof(*q))) == NULL)
		return -1;
	b = ch->state == CS_READY ? ch->out : ch->held;
	if (evbuffer_expand(b, src != NULL ? headlen : total) != 0) {
		free(q);
		return -1;
	}
	if (evbuffer_add(b, head, headlen) != 0 || (datalen > 0 &&
	    (src != NULL ? evbuffer_remove_buffer(src, b, datalen) !=
	    (int)datalen : evbuffer_add(b, data, datalen) != 0))) {
		/* Half a packet is in: the stream is lost. */
		free(q);
		chan_kill(ch, SFTP_LOG_ERROR, "out of memory");
		return -1;
	}
	q->id = get_u32(head + 5);
	q->cb = cb;
	q->arg = arg;
	TAILQ_INSERT_TAIL(&ch->reqs, q, entry);
	ch->npending++;
	if (ch->state == CS_READY) {
		event_del(ch->timer);
		chan_want_write(ch);
	}
	return 0;
}

/*
 * Queue one encoded request; cb gets its reply.  -1 (and cb is never
 * called) when the channel is dead, too much waits, or the packet is
 * not a whole request with an id of its own.
 */
int
sftp_chan_send(struct sftp_chan *ch, const unsigned char *pkt, size_t len,
    sftp_cb cb, void *arg)
{
	return chan_queue(ch, pkt, len, NULL, NULL, 0, cb, arg);
}

/* A WRITE: head from sftp_enc_write_head, then data, copied. */
int
sftp_chan_send_write(struct sftp_chan *ch, const unsigned char *head,
    size_t headlen, const void *data, size_t datalen, sftp_cb cb, void *arg)
{
	if (headlen < SFTP_HDR_LEN || head[4] != SSH_FXP_WRITE)
		return -1;
	return chan_queue(ch, head, headlen, data, NULL, datalen, cb, arg);
}

/* As sftp_chan_send_write, the data taken from src's head, moved. */
int
sftp_chan_send_write_buf(struct sftp_chan *ch, const unsigned char *head,
    size_t headlen, struct evbuffer *src, size_t datalen, sftp_cb cb,
    void *arg)
{
	if (headlen < SFTP_HDR_LEN || head[4] != SSH_FXP_WRITE)
		return -1;
	return chan_queue(ch, head, headlen, NULL, src, datalen, cb, arg);
}

/* The reply to id, when it comes, goes nowhere (an ABOR). */
void
sftp_chan_forget(struct sftp_chan *ch, uint32_t id)
{
	struct sftp_req	*q;

	if ((q = chan_find(chan_resolve(ch), id)) != NULL)
		q->cb = NULL;
}
