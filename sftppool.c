/*
 * sftppool.c: the pool of SFTP channels (sftpchan.c) that FTP sessions
 * share.  A session holds one channel for its life, as SFTP handles are
 * a channel's; the pool opens channels up to its cap, lowers the cap to
 * what is open when sshd refuses another session (MaxSessions), and
 * otherwise hands out the channel with the fewest users.
 */

#include <sys/types.h>
#include <sys/queue.h>

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "sftp.h"
#include "sftpchan.h"
#include "sftpchan_impl.h"

/*
 * How sure a channel is to stay: its session is open; or it was asked
 * for before channel not, so sshd saw it first; or neither.
 */
static int
chan_rank(const struct sftp_chan *ch, const struct sftp_chan *not)
{
	if (ch->session_up || ch->state == CS_READY)
		return 2;
	return not != NULL && ch->serial < not->serial;
}

/*
 * The live channel with the fewest users, other than not; with ranked,
 * the surest first.  One whose socket is gone is about to be refused.
 */
struct sftp_chan *
least_loaded(struct sftp_pool *p, const struct sftp_chan *not, int ranked)
{
	struct sftp_chan	*ch, *best = NULL;
	int			 rank, best_rank = 0;

	TAILQ_FOREACH(ch, &p->live, entry) {
		if (ch == not || ch->sock_lost)
			continue;
		rank = ranked ? chan_rank(ch, not) : 0;
		if (best == NULL || rank > best_rank ||
		    (rank == best_rank && ch->load < best->load)) {
			best = ch;
			best_rank = rank;
		}
	}
	return best;
}

struct sftp_pool *
sftp_pool_new(struct event_base *base, const char *ctl_path, u_int max,
    sftp_log_fn log)
{
	struct sftp_pool	*p;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->base = base;
	p->log = log;
	p->max = p->cap = max != 0 ? max : SFTP_POOL_CHANNELS;
	p->next_id = 1;
	TAILQ_INIT(&p->live);
	TAILQ_INIT(&p->gone);
	if ((p->ctl_path = strdup(ctl_path)) == NULL ||
	    (p->reap = evtimer_new(base, pool_reap_cb, p)) == NULL) {
		free(p->ctl_path);
		free(p);
		return NULL;
	}
	return p;
}

void
pool_reap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sftp_pool	*p = arg;
	struct sftp_chan	*ch;

	(void)fd;
	(void)what;
	while ((ch = TAILQ_FIRST(&p->gone)) != NULL) {
		TAILQ_REMOVE(&p->gone, ch, entry);
		chan_free(ch);
	}
	event_free(p->reap);
	free(p->ctl_path);
	free(p);
}

/*
 * Close every channel, answering what waits with an error.  Channels
 * handed out are invalid afterwards, except to their callbacks now
 * running.  Called from one of them, the memory goes from the loop.
 */
void
sftp_pool_free(struct sftp_pool *p)
{
	struct sftp_chan	*ch;

	if (p == NULL || p->dying)
		return;
	p->dying = 1;
	while ((ch = TAILQ_FIRST(&p->live)) != NULL)
		chan_kill(ch, SFTP_LOG_DEBUG, "the pool is closing");
	if (p->depth == 0) {
		pool_reap_cb(-1, 0, p);
		return;
	}
	event_active(p->reap, EV_TIMEOUT, 0);
}

u_int
sftp_pool_channels(const struct sftp_pool *p)
{
	return p->nlive;
}

u_int
sftp_pool_cap(const struct sftp_pool *p)
{
	return p->cap;
}

/*
 * A channel for an FTP session's whole life (its handles are the
 * channel's): one nobody uses, else a new one while the pool has room,
 * else the one with the fewest users.  An idle channel is taken before
 * a new one is opened: every channel is a session sshd counts against
 * MaxSessions, which the user's own ssh sessions share.  NULL when none
 * is open and none can be.
 */
struct sftp_chan *
sftp_chan_get(struct sftp_pool *p)
{
	struct sftp_chan	*ch = NULL;

	if (p->dying)
		return NULL;
	/* Whatever made sshd refuse us before, with none open try again. */
	if (p->nlive == 0)
		p->cap = p->max;
	if ((ch = least_loaded(p, NULL, 0)) != NULL && ch->load > 0)
		ch = NULL;
	if (ch == NULL && p->nlive < p->cap)
		ch = chan_open(p);
	if (ch == NULL && (ch = least_loaded(p, NULL, 0)) == NULL)
		return NULL;
	ch->users++;
	ch->load++;
	if (ch->state == CS_READY)
		event_del(ch->timer);		/* no longer idle */
	return ch;
}

void
sftp_chan_put(struct sftp_chan *ch)
{
	struct sftp_chan	*c;

	if (ch == NULL || ch->users == 0)
		return;
	ch->users--;
	for (c = ch; c != NULL; c = c->alias) {
		c->load--;
		if (c->state == CS_DEAD && c->load == 0)
			chan_schedule_reap(c);
		else
			chan_maybe_idle(c);
	}
}
