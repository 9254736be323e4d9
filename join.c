/*
 * join.c: join two sockets with splice(2) through a pipe per direction.
 *
 * Each direction is a pump: socket -> pipe -> socket.  A pump with bytes
 * in its pipe waits only to write them; a pump with an empty pipe waits
 * only to read.  That rule matters: splice into a pipe whose slots are
 * full fails with EAGAIN just as a socket with nothing to read does, and
 * a pump waiting to read then would spin.  An end of file is passed on as
 * shutdown(SHUT_WR) once the pipe is empty, so each side sees the other's
 * half-close as it would on a direct connection.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "join.h"

#define JOIN_CHUNK	(64 * 1024)	/* bytes asked of one splice */
#define JOIN_BURST	16		/* splices per wakeup: be fair */

struct pump {
	struct join	*j;
	int		 from, to;
	int		 pipe[2];
	size_t		 queued;	/* bytes in the pipe */
	int		 eof;		/* from has ended */
	int		 done;		/* eof passed on */
	uint64_t	 bytes;
	struct event	*rev, *wev;
};

struct join {
	struct event_base *base;
	int		 fd[2];
	struct pump	 p[2];
	join_cb		 cb;
	join_cb		 first_end_cb;	/* a to b has passed its EOF on */
	void		*arg;
	int		 finished;	/* cb has been called */
	int		 dead;
};

static void	pump_cb(evutil_socket_t, short, void *);

static void
join_finish(struct join *j, const char *why)
{
	int	i;

	if (j->finished)
		return;
	j->finished = 1;
	for (i = 0; i < 2; i++) {
		event_del(j->p[i].rev);
		event_del(j->p[i].wev);
	}
	j->cb(j, why, j->arg);
}

/* Move what can be moved now; returns -1 with errno on a failure. */
static int
pump_run(struct pump *p)
{
	ssize_t	n;
	int	burst;

	for (burst = 0; burst < JOIN_BURST; burst++) {
		if (p->queued > 0) {
			n = splice(p->pipe[0], NULL, p->to, NULL, p->queued,
			    SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n == -1 && errno == EINTR)
				continue;
			if (n == -1 && errno == EAGAIN)
				return event_add(p->wev, NULL);
			if (n == 0)
				errno = EPIPE;	/* wrote nothing: peer gone */
			if (n <= 0)
				return -1;
			p->queued -= (size_t)n;
			p->bytes += (uint64_t)n;
			continue;
		}
		if (p->eof) {
			if (shutdown(p->to, SHUT_WR) == -1 && errno != ENOTCONN)
				return -1;
			p->done = 1;
			return 0;
		}
		n = splice(p->from, NULL, p->pipe[1], NULL, JOIN_CHUNK,
		    SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return event_add(p->rev, NULL);
		if (n == -1)
			return -1;
		if (n == 0)
			p->eof = 1;
		p->queued += (size_t)n;
	}
	/* Fairness: come back through the loop for the rest. */
	return event_add(p->queued > 0 ? p->wev : p->rev, NULL);
}

static void
pump_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pump	*p = arg;
	struct join	*j = p->j;
	char		 why[128];

	(void)fd;
	(void)what;
	if (j->finished)
		return;
	if (pump_run(p) == -1) {
		snprintf(why, sizeof(why), "%s", strerror(errno));
		join_finish(j, why);
		return;
	}
	if (p == &j->p[0] && p->done && j->first_end_cb != NULL) {
		j->first_end_cb(j, NULL, j->arg);
		j->first_end_cb = NULL;		/* once */
	}
	if (j->p[0].done && j->p[1].done)
		join_finish(j, NULL);
}

/*
 * Join a and b, which the join now owns.  On failure both are closed
 * and NULL is returned with errno set.
 */
struct join *
join_new(struct event_base *base, int a, int b, join_cb cb, void *arg)
{
	struct join	*j;
	struct pump	*p;
	int		 i, save;

	if ((j = calloc(1, sizeof(*j))) == NULL) {
		close(a);
		close(b);
		return NULL;
	}
	j->base = base;
	j->fd[0] = a;
	j->fd[1] = b;
	j->cb = cb;
	j->arg = arg;
	for (i = 0; i < 2; i++) {
		p = &j->p[i];
		p->j = j;
		p->from = j->fd[i];
		p->to = j->fd[1 - i];
		p->pipe[0] = p->pipe[1] = -1;
	}
	for (i = 0; i < 2; i++) {
		p = &j->p[i];
		if (pipe2(p->pipe, O_NONBLOCK | O_CLOEXEC) == -1 ||
		    (p->rev = event_new(base, p->from, EV_READ, pump_cb,
		    p)) == NULL ||
		    (p->wev = event_new(base, p->to, EV_WRITE, pump_cb,
		    p)) == NULL ||
		    event_add(p->rev, NULL) == -1)
			goto fail;
	}
	return j;
 fail:
	save = errno != 0 ? errno : ENOMEM;
	j->finished = 1;
	join_free(j);
	errno = save;
	return NULL;
}

uint64_t
join_bytes(const struct join *j)
{
	return j->p[0].bytes + j->p[1].bytes;
}

/* Has the a to b direction passed its end of file on to b? */
int
join_first_ended(const struct join *j)
{
	return j->p[0].done;
}

void
join_on_first_end(struct join *j, join_cb cb)
{
	j->first_end_cb = cb;
}

static void
join_free_now(evutil_socket_t fd, short what, void *arg)
{
	struct join	*j = arg;
	int		 i;

	(void)fd;
	(void)what;
	for (i = 0; i < 2; i++) {
		if (j->p[i].rev != NULL)
			event_free(j->p[i].rev);
		if (j->p[i].wev != NULL)
			event_free(j->p[i].wev);
	}
	free(j);
}

/*
 * As join_free, but each peer gets a reset, not a FIN: the transfer
 * failed, and no side may take its end for a complete one.
 */
void
join_abort(struct join *j)
{
	struct linger	l = { 1, 0 };
	int		i;

	if (j == NULL || j->dead)
		return;
	for (i = 0; i < 2; i++)
		(void)setsockopt(j->fd[i], SOL_SOCKET, SO_LINGER, &l,
		    sizeof(l));
	join_free(j);
}

/*
 * Close both sockets and forget the join.  Its own callback may be the
 * caller, so the memory goes later, from the loop (as tmux does); the
 * descriptors go now, so the peers see the end at once.
 */
void
join_free(struct join *j)
{
	struct pump	*p;
	int		 i;

	if (j == NULL || j->dead)
		return;
	j->dead = 1;
	j->finished = 1;
	for (i = 0; i < 2; i++) {
		p = &j->p[i];
		if (p->rev != NULL)
			event_del(p->rev);
		if (p->wev != NULL)
			event_del(p->wev);
		if (p->pipe[0] != -1)
			close(p->pipe[0]);
		if (p->pipe[1] != -1)
			close(p->pipe[1]);
		p->pipe[0] = p->pipe[1] = -1;
		close(j->fd[i]);
		j->fd[i] = -1;
	}
	/* Should the loop have no room, leak the memory, never reuse it. */
	(void)event_base_once(j->base, -1, EV_TIMEOUT, join_free_now, j, NULL);
}
