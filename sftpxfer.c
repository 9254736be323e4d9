/*
 * sftpxfer.c: Backend=sftp, the transfers, and RETR.  A file's bytes come from, or
 * go to, SFTP READ and WRITE requests pipelined as sftp-client.c does,
 * with what is in flight and what waits for a slow client bounded by
 * SFS_XFER_CAP: a slow client costs memory, never the whole file.  Each
 * transfer ends once, in sx_end, with its final reply and its log line.
 * The data connection is sftpdata.c's, the listings sftplist.c's.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include "ftpfwd.h"
#include "sftpchan.h"
#include "tls.h"

static void	sx_pump(struct sfs_xfer *);

#if SFS_CHAN_REQS_HIGH >= SFTP_CHAN_PENDING_MAX
#error "SFS_CHAN_REQS_HIGH must leave room for commands on the channel"
#endif

/* Transfers held back by their channel's high marks, in turn. */
static struct sx_waiters chan_waiters = TAILQ_HEAD_INITIALIZER(chan_waiters);

/* The transfer's own: begun by a command, ended once with its reply. */

struct sfs_xfer *
sx_new(struct session *s, enum sx_kind kind, const char *verb)
{
	struct sfs_xfer	*x;

	if (s->sfs->data.mode == SD_NONE && kind != SX_LIST) {
		client_reply(s, "425 Use PORT or PASV first.");
		return NULL;
	}
	if ((x = calloc(1, sizeof(*x))) == NULL ||
	    (x->out = evbuffer_new()) == NULL) {
		free(x);
		client_reply(s, "451 ftpfwd: out of memory");
		return NULL;
	}
	x->s = s;
	x->kind = kind;
	x->fd = -1;
	snprintf(x->verb, sizeof(x->verb), "%s", verb);
	TAILQ_INIT(&x->slots);
	clock_gettime(CLOCK_MONOTONIC, &x->t0);
	s->sfs->xfer = x;
	s->xfer.running = 1;
	return x;
}

int
sx_running(const struct session *s)
{
	return s->sfs->xfer != NULL;
}

static void
sx_release(evutil_socket_t fd, short what, void *arg)
{
	struct sfs_xfer	*x = arg;
	struct sx_slot	*sl;

	(void)fd;
	(void)what;
	while ((sl = TAILQ_FIRST(&x->slots)) != NULL) {
		TAILQ_REMOVE(&x->slots, sl, entry);
		if (sl->buf != NULL)
			evbuffer_free(sl->buf);
		free(sl);
	}
	if (x->rev != NULL)
		event_free(x->rev);
	if (x->wev != NULL)
		event_free(x->wev);
	evbuffer_free(x->out);
	free(x);
}

/*
 * A request of the transfer's.  If it cannot go, the client has its
 * reply (sfs_send's), and the transfer is over.
 */
int
sx_send(struct sfs_xfer *x, const unsigned char *pkt, long len, sfs_fn fn,
    void *slot)
{
	struct session	*s = x->s;

	if (sfs_send(s, pkt, len, fn, x, slot) == 0)
		return 0;
	if (!x->dead) {
		sx_stop(x, 0);
		sfs_done(s);
	}
	return -1;
}

/* Close the handle; nobody waits for the answer. */
void
sx_close_handle(struct sfs_xfer *x)
{
	unsigned char		pkt[SFS_PKT_MAX];
	struct sftp_str		h = { x->handle, x->handle_len };

	if (x->handle_len == 0)
		return;
	x->handle_len = 0;
	(void)sfs_send(x->s, pkt, sftp_enc_handle(pkt, sizeof(pkt),
	    SSH_FXP_CLOSE, sftp_chan_next_id(x->s->sfs->ch), &h), NULL, NULL,
	    NULL);
}

static void
sx_unwait(struct sfs_xfer *x)
{
	if (x->waiting_on != NULL)
		TAILQ_REMOVE(x->waiting_on, x, wait_entry);
	x->waiting_on = NULL;
}

/*
 * Whether the channel, which other sessions share, takes more of this
 * transfer's requests.  Past its high marks the transfer waits: every
 * request queued or pending on it has a reply to come (or an error, if
 * the channel is lost), and each reply wakes the waiting in turn.  With
 * none of its own in flight, nothing else would.
 */
int
sx_chan_room(struct sfs_xfer *x)
{
	struct sftp_chan	*ch = x->s->sfs->ch;

	if (ch == NULL || (sftp_chan_queued(ch) < SFS_CHAN_HIGH &&
	    sftp_chan_pending(ch) < SFS_CHAN_REQS_HIGH)) {
		sx_unwait(x);
		return 1;
	}
	if (x->waiting_on == NULL) {
		TAILQ_INSERT_TAIL(&chan_waiters, x, wait_entry);
		x->waiting_on = &chan_waiters;
	}
	return 0;
}

/*
 * A reply came, on some channel: the waiting try again.  They are moved
 * to a list of the call's own first, so one that must wait once more
 * goes to the back, and one that ends takes itself out of either.
 */
void
sx_chan_wake(void)
{
	struct sx_waiters	 woken = TAILQ_HEAD_INITIALIZER(woken);
	struct sfs_xfer		*x;

	if (TAILQ_EMPTY(&chan_waiters))
		return;
	while ((x = TAILQ_FIRST(&chan_waiters)) != NULL) {
		TAILQ_REMOVE(&chan_waiters, x, wait_entry);
		TAILQ_INSERT_TAIL(&woken, x, wait_entry);
		x->waiting_on = &woken;
	}
	while ((x = TAILQ_FIRST(&woken)) != NULL) {
		sx_unwait(x);
		if (x->kind == SX_RETR)
			sx_pump(x);
		else if (x->kind == SX_STOR)
			sx_stor_flush(x);
	}
}

/*
 * Stop everything the transfer does, at once: its requests forgotten,
 * its handle closed, its data connection reset unless it ended well.
 * The memory goes from the loop.
 */
void
sx_stop(struct sfs_xfer *x, int ok)
{
	struct session	*s = x->s;

	x->dead = 1;
	sx_unwait(x);
	s->sfs->xfer = NULL;
	s->xfer.running = 0;
	s->sfs->rest = 0;
	sfs_cancel(s, x);
	/* A lost channel takes its handles with it. */
	if (s->sfs->ch != NULL && sftp_chan_ready(s->sfs->ch))
		sx_close_handle(x);
	if (x->rev != NULL)
		event_del(x->rev);
	if (x->wev != NULL)
		event_del(x->wev);
	if (x->relay != NULL) {
		if (ok)
			relay_free(x->relay);
		else
			relay_abort(x->relay);
	}
	x->relay = NULL;
	if (x->fd != -1) {
		if (ok)
			close(x->fd);
		else
			sock_reset_close(x->fd);
	}
	x->fd = -1;
	sx_data_close(s);
	if (event_base_once(evbase, -1, EV_TIMEOUT, sx_release, x, NULL) ==
	    -1)
		logit(LL_ERROR, "#%u cannot schedule a free", s->id);
}

/* The transfer's final reply, and the log line for it. */
void
sx_end(struct sfs_xfer *x, const char *fmt, ...)
{
	struct session	*s = x->s;
	char		 reply[LOG_TEXT_MAX + SFS_PATH_MAX], path[LOG_TEXT_MAX];
	va_list		 ap;

	if (x->dead)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(reply, sizeof(reply), fmt, ap);
	va_end(ap);
	sx_stop(x, strncmp(reply, "226", 3) == 0);
	s->xfer.count++;
	logit(LL_INFO, "#%u %s \"%s\" %llu bytes %.3fs %.3s", s->id, x->verb,
	    escape(path, sizeof(path), x->path, strlen(x->path)),
	    (unsigned long long)x->bytes, elapsed_since(&x->t0), reply);
	client_reply(s, "%s", reply);
	sfs_done(s);
}

/* The transfer's failure from an SFTP status. */
void
sx_end_status(struct sfs_xfer *x, const struct sftp_reply *r, int failcode)
{
	struct session	*s = x->s;

	if (x->dead)
		return;
	sx_stop(x, 0);
	s->xfer.count++;
	sfs_status_reply(s, r, x->path, failcode);
	sfs_done(s);
}

/* From session_end, QUIT or a lost channel: no reply, no log. */
void
sx_free(struct session *s)
{
	if (s->sfs != NULL && s->sfs->xfer != NULL)
		sx_stop(s->sfs->xfer, 0);
}

void
sx_abor(struct session *s)
{
	struct sfs_xfer	*x = s->sfs->xfer;

	if (x == NULL) {
		client_reply(s, "225 No transfer to ABOR.");
		return;
	}
	sx_end(x, "426 Transfer aborted.");
	client_reply(s, "226 ABOR successful.");
}

void
sx_status(const struct session *s, char *buf, size_t sz)
{
	const struct sfs_xfer	*x = s->sfs->xfer;

	if (x == NULL)
		snprintf(buf, sz, "no transfer");
	else
		snprintf(buf, sz, "%s for %.1fs, %llu bytes", x->verb,
		    elapsed_since(&x->t0), (unsigned long long)x->bytes);
}

/* An OPEN's or OPENDIR's reply: the handle kept, or the failure said. */
int
sx_handle(struct sfs_xfer *x, const struct sftp_reply *r)
{
	if (r->type != SSH_FXP_HANDLE) {
		sx_end_status(x, r, 550);
		return -1;
	}
	memcpy(x->handle, r->handle.p, r->handle.len);
	x->handle_len = r->handle.len;
	return 0;
}

/* Toward the client: write what waits, then finish or ask for more. */

static void
sx_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sfs_xfer	*x = arg;
	int		 n;

	(void)what;
	n = evbuffer_write(x->out, fd);
	if (n == -1 && errno != EAGAIN && errno != EINTR) {
		sx_end(x, "426 Connection closed; transfer aborted (%s).",
		    strerror(errno));
		return;
	}
	if (n > 0)
		x->bytes += (uint64_t)n;
	if (evbuffer_get_length(x->out) == 0)
		event_del(x->wev);
	if (x->kind == SX_RETR)
		sx_pump(x);		/* then sx_want_write */
	else {
		sl_more(x);
		sx_want_write(x);
	}
}

void
sx_want_write(struct sfs_xfer *x)
{
	if (x->dead)
		return;
	if (evbuffer_get_length(x->out) > 0) {
		if (x->wev == NULL && (x->wev = event_new(evbase, x->fd,
		    EV_WRITE | EV_PERSIST, sx_write_cb, x)) == NULL) {
			sx_end(x, "451 ftpfwd: out of memory");
			return;
		}
		event_add(x->wev, NULL);
		return;
	}
	if (x->src_eof)
		sx_finish(x);
}

/*
 * All is out, or all is in: our FIN (the relay adds TLS's close_notify
 * and waits for the client's), then 226.  An upload's 226 waits for its
 * CLOSE, which sftp-server answers once the file is closed.
 */
void
sx_finish(struct sfs_xfer *x)
{
	x->finishing = 1;
	if (x->fd != -1) {
		if (x->rev != NULL)
			event_del(x->rev);
		if (x->wev != NULL)
			event_del(x->wev);
		close(x->fd);
		x->fd = -1;
	}
	if (x->relay != NULL && !x->relay_done)
		return;
	sx_end(x, "226 Transfer complete.");
}

/* RETR: STAT, OPEN, the data connection, then READs in a window. */

/* TYPE A: every LF goes as CR LF, as vsftpd's ascii download does. */
static void
to_crlf(struct evbuffer *out, struct evbuffer *in)
{
	size_t		 len = evbuffer_get_length(in), start = 0, i;
	const char	*p = (const char *)evbuffer_pullup(in, -1);

	for (i = 0; p != NULL && i < len; i++) {
		if (p[i] != '\n')
			continue;
		evbuffer_add(out, p + start, i - start);
		evbuffer_add(out, "\r\n", 2);
		start = i + 1;
	}
	if (p != NULL)
		evbuffer_add(out, p + start, len - start);
	evbuffer_drain(in, len);
}

/* Slots done at the head go out, in file order. */
static void
sx_flush_slots(struct sfs_xfer *x)
{
	struct sx_slot	*sl;

	while ((sl = TAILQ_FIRST(&x->slots)) != NULL && sl->done) {
		if (x->s->sfs->type == 'A')
			to_crlf(x->out, sl->buf);
		else
			evbuffer_add_buffer(x->out, sl->buf);
		if (sl->eof)
			x->src_eof = 1;
		TAILQ_REMOVE(&x->slots, sl, entry);
		x->inflight -= sl->size;
		evbuffer_free(sl->buf);
		free(sl);
		if (x->src_eof)
			break;
	}
}

static void	read_cb(struct session *, struct sfs_req *,
		    const struct sftp_reply *);

static int
read_send(struct sfs_xfer *x, struct sx_slot *sl)
{
	unsigned char	pkt[SFS_PKT_MAX];
	struct sftp_str	h = { x->handle, x->handle_len };

	return sx_send(x, pkt, sftp_enc_read(pkt, sizeof(pkt),
	    sftp_chan_next_id(x->s->sfs->ch), &h, sl->off, sl->len), read_cb,
	    sl);
}

static void
read_cb(struct session *s, struct sfs_req *q, const struct sftp_reply *r)
{
	struct sfs_xfer	*x = q->xfer;
	struct sx_slot	*sl = q->slot;

	(void)s;
	x->nreq--;
	if (r->type == SSH_FXP_DATA && r->data.len > 0 &&
	    r->data.len <= sl->len) {
		evbuffer_add(sl->buf, r->data.p, r->data.len);
		sl->off += r->data.len;
		sl->len -= (uint32_t)r->data.len;
		/* A short read, not at the end: ask for the rest. */
		if (sl->len > 0) {
			if (read_send(x, sl) == 0)
				x->nreq++;
			return;
		}
		sl->done = 1;
	} else if (r->type == SSH_FXP_STATUS && r->code == SSH_FX_EOF)
		sl->done = sl->eof = 1;
	else {
		sx_end_status(x, r, 451);
		return;
	}
	sx_flush_slots(x);
	sx_pump(x);
}

/* Ask for more while the window and the client's backlog allow. */
static void
sx_pump(struct sfs_xfer *x)
{
	struct session	*s = x->s;
	struct sx_slot	*sl;
	size_t		 io = sfs_io_len(s, 0), len;

	/* Past the size STAT told, one READ at a time finds the end. */
	while (!x->dead && !x->src_eof && x->nreq < SFS_XFER_REQS &&
	    (x->off <= x->size || x->nreq == 0) &&
	    x->inflight + evbuffer_get_length(x->out) + io <= SFS_XFER_CAP &&
	    (TAILQ_EMPTY(&x->slots) || !TAILQ_LAST(&x->slots,
	    sx_slots)->eof) && sx_chan_room(x)) {
		if ((sl = calloc(1, sizeof(*sl))) == NULL ||
		    (sl->buf = evbuffer_new()) == NULL) {
			free(sl);
			sx_end(x, "451 ftpfwd: out of memory");
			return;
		}
		/*
		 * Up to the size STAT told, READs ask exactly that much, and
		 * the one at the size, sent with them, finds the end: a small
		 * file is one round trip, not two.
		 */
		len = x->off < x->size && x->size - x->off < io ?
		    (size_t)(x->size - x->off) : io;
		sl->off = x->off;
		sl->len = sl->size = (uint32_t)len;
		TAILQ_INSERT_TAIL(&x->slots, sl, entry);
		x->inflight += len;
		x->off += len;
		if (read_send(x, sl) == -1)
			return;
		x->nreq++;
	}
	if (!x->dead)
		sx_want_write(x);
}

/* The data connection came, or err says why not: -1 if the end. */
int
sx_data_came(struct sfs_xfer *x, const char *err)
{
	if (err != NULL) {
		sx_end(x, "%s", err);
		return -1;
	}
	return sx_data_open(x);
}

static void
retr_go(struct session *s, const char *err)
{
	struct sfs_xfer	*x = s->sfs->xfer;
	char		 name[SFS_PATH_MAX];

	if (sx_data_came(x, err) == -1)
		return;
	sfs_safe(name, sizeof(name), x->path, strlen(x->path));
	client_reply(s, "150 Opening %s mode data connection for %s (%llu "
	    "bytes)", s->sfs->type == 'A' ? "ASCII" : "BINARY", name,
	    (unsigned long long)x->size);
	x->opened = 1;
	sx_pump(x);
}

/* Both STAT and OPEN have answered: a plain file goes, else 550. */
static void
retr_ready(struct sfs_xfer *x)
{
	if (!x->stat_seen || x->handle_len == 0)
		return;
	if (x->not_plain) {
		sx_end(x, "550 %s: Not a plain file", x->path);
		return;
	}
	sx_data_get(x, retr_go);
}

static void
retr_open_cb(struct session *s, struct sfs_req *q, const struct sftp_reply *r)
{
	(void)s;
	if (sx_handle(q->xfer, r) == 0)
		retr_ready(q->xfer);
}

/* No STAT (it failed, yet OPEN may not): the size is unknown. */
static void
retr_stat_cb(struct session *s, struct sfs_req *q, const struct sftp_reply *r)
{
	struct sfs_xfer	*x = q->xfer;

	(void)s;
	x->stat_seen = 1;
	x->size = UINT64_MAX;
	if (r->type == SSH_FXP_ATTRS) {
		x->not_plain = (r->attrs.flags &
		    SSH_FILEXFER_ATTR_PERMISSIONS) && !S_ISREG(r->attrs.perm);
		if (r->attrs.flags & SSH_FILEXFER_ATTR_SIZE)
			x->size = r->attrs.size;
	}
	retr_ready(x);
}

void
sx_retr(struct session *s, const char *arg)
{
	struct sfs_xfer	*x;
	unsigned char	 pkt[SFS_PKT_MAX];

	if (s->sfs->rest > 0 && s->sfs->type == 'A') {
		s->sfs->rest = 0;	/* spent, as the transfer would */
		client_reply(s, "504 ftpfwd: REST needs TYPE I");
		return;
	}
	if ((x = sx_new(s, SX_RETR, "RETR")) == NULL)
		return;
	x->off = s->sfs->rest;
	if (sfs_path(s, arg, x->path, sizeof(x->path)) == -1) {
		sx_stop(x, 0);
		sfs_done(s);
		return;
	}
	/*
	 * STAT and OPEN together, a round trip saved on every file; a
	 * directory's handle (Linux opens one) is closed by sx_end.
	 */
	if (sx_send(x, pkt, sftp_enc_path(pkt, sizeof(pkt), SSH_FXP_STAT,
	    sftp_chan_next_id(s->sfs->ch), x->path, strlen(x->path)),
	    retr_stat_cb, NULL) == 0)
		(void)sx_send(x, pkt, sftp_enc_open(pkt, sizeof(pkt),
		    sftp_chan_next_id(s->sfs->ch), x->path, strlen(x->path),
		    SSH_FXF_READ, NULL), retr_open_cb, NULL);
}
