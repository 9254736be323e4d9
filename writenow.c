/*
 * Control lines written at once, not on the next write event.
 *
 * A bufferevent waits for its socket to say "writable" before it
 * writes, and it adds and removes that event for every line: two
 * epoll_ctl calls and an extra turn of the loop for each command and
 * each reply, on a socket that is almost always writable.  Here the
 * bufferevent's writing stays disabled; a line added to its output is
 * written from the loop's active queue in the same turn.  Only when
 * the socket does not take it all (or fails) is writing handed back to
 * the bufferevent, which then reports and drains as it always did, and
 * takes it back once the output is empty.
 *
 * Plain sockets only: a TLS filter writes through its own buffers, so
 * writenow_stop() comes before one is put on top.
 */

#include <sys/types.h>

#include <errno.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "ftpfwd.h"

static void	writenow_added(struct evbuffer *,
		    const struct evbuffer_cb_info *, void *);
static void	writenow_flush(evutil_socket_t, short, void *);

int
writenow_start(struct writenow *w, struct bufferevent *bev,
    bufferevent_data_cb drained, void *arg)
{
	memset(w, 0, sizeof(*w));
	if ((w->ev = event_new(evbase, -1, 0, writenow_flush, w)) == NULL)
		return -1;
	if ((w->cbe = evbuffer_add_cb(bufferevent_get_output(bev),
	    writenow_added, w)) == NULL) {
		event_free(w->ev);
		w->ev = NULL;
		return -1;
	}
	w->bev = bev;
	w->drained = drained;
	w->arg = arg;
	w->direct = 1;
	bufferevent_disable(bev, EV_WRITE);
	return 0;
}

/*
 * Called inside evbuffer_add() and its kind: only note that there is
 * work, and do it from the loop, where the caller is not half way
 * through anything.
 */
static void
writenow_added(struct evbuffer *out, const struct evbuffer_cb_info *info,
    void *arg)
{
	struct writenow	*w = arg;

	(void)out;
	if (info->n_added > 0 && w->direct)
		event_active(w->ev, EV_WRITE, 0);
}

static void
writenow_flush(evutil_socket_t fd, short what, void *arg)
{
	struct writenow	*w = arg;
	struct evbuffer	*out;
	int		 n;

	(void)fd;
	(void)what;
	if (!w->direct)
		return;
	out = bufferevent_get_output(w->bev);
	if (evbuffer_get_length(out) == 0)
		return;
	/* A socket bufferevent keeps its output's front frozen to all
	 * but its own write callback, which thaws it as we do here. */
	evbuffer_unfreeze(out, 1);
	n = evbuffer_write(out, bufferevent_getfd(w->bev));
	evbuffer_freeze(out, 1);
	if (n == -1 && errno != EAGAIN && errno != EINTR) {
		/* The bufferevent meets the same error and reports it. */
		writenow_handback(w);
		return;
	}
	if (evbuffer_get_length(out) != 0) {
		writenow_handback(w);
		return;
	}
	w->drained(w->bev, w->arg);
}

/* The socket is full: the bufferevent writes the rest, on its events. */
void
writenow_handback(struct writenow *w)
{
	w->direct = 0;
	bufferevent_enable(w->bev, EV_WRITE);
}

/*
 * From the bufferevent's write callback: its output is empty again, so
 * the next line goes out at once.
 */
void
writenow_drained(struct writenow *w)
{
	if (w->bev == NULL || w->direct)
		return;
	w->direct = 1;
	bufferevent_disable(w->bev, EV_WRITE);
}

/*
 * Writing goes back to the bufferevent for good, as it was before
 * writenow_start().  Idempotent.
 */
void
writenow_stop(struct writenow *w)
{
	if (w->bev == NULL)
		return;
	evbuffer_remove_cb_entry(bufferevent_get_output(w->bev), w->cbe);
	event_free(w->ev);
	if (w->direct)
		bufferevent_enable(w->bev, EV_WRITE);
	memset(w, 0, sizeof(*w));
}
