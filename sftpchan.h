/*
 * sftpchan.h: SFTP channels over a running ControlMaster.  A channel is
 * one mux connection carrying one session with the sftp subsystem; a
 * pool hands channels out to FTP sessions, a few sessions to a channel,
 * and each request's reply to the callback that asked for it.
 */

#ifndef SFTPCHAN_H
#define SFTPCHAN_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include "sftp.h"

struct event_base;
struct evbuffer;
struct sftp_chan;
struct sftp_pool;

/* Channels a pool opens unless told otherwise (sshd allows 10). */
#define SFTP_POOL_CHANNELS	4
/* Requests waiting for their reply, per channel. */
#define SFTP_CHAN_PENDING_MAX	1024
/* Bytes waiting to be written, per channel: a bound, not a pace. */
#define SFTP_CHAN_QUEUE_MAX	(64 * 1024 * 1024)
/* READ and WRITE lengths without limits@openssh.com, and at most. */
#define SFTP_CHAN_IO_DEFAULT	32768
#define SFTP_CHAN_IO_MAX	(255 * 1024)
/* Seconds a channel may take to be ready, and may stay open unused. */
#define SFTP_CHAN_OPEN_SECS	30
#define SFTP_CHAN_IDLE_SECS	60

/* Levels for the log hook: those of ftpfwd.h's enum loglevel. */
#define SFTP_LOG_ERROR		2
#define SFTP_LOG_INFO		3
#define SFTP_LOG_VERBOSE	4
#define SFTP_LOG_DEBUG		5

typedef void (*sftp_log_fn)(int, const char *, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * A request's one answer: the decoded reply (valid only during the
 * call), or r NULL and err saying why ("sftp channel lost: ...").  It
 * may send more, forget, put its channel or free the pool.
 */
typedef void (*sftp_cb)(const struct sftp_reply *r, const char *err,
    void *arg);

/* max 0: SFTP_POOL_CHANNELS.  log may be NULL. */
struct sftp_pool *sftp_pool_new(struct event_base *, const char *,
		    u_int, sftp_log_fn);
void		 sftp_pool_free(struct sftp_pool *);
u_int		 sftp_pool_channels(const struct sftp_pool *);
u_int		 sftp_pool_cap(const struct sftp_pool *);

struct sftp_chan *sftp_chan_get(struct sftp_pool *);
void		 sftp_chan_put(struct sftp_chan *);
int		 sftp_chan_ready(const struct sftp_chan *);
int		 sftp_chan_dead(const struct sftp_chan *);
const struct sftp_limits *sftp_chan_limits(const struct sftp_chan *);
int		 sftp_chan_has_ext(const struct sftp_chan *, const char *);

uint32_t	 sftp_chan_next_id(struct sftp_chan *);
int		 sftp_chan_send(struct sftp_chan *, const unsigned char *,
		    size_t, sftp_cb, void *);
int		 sftp_chan_send_write(struct sftp_chan *,
		    const unsigned char *, size_t, const void *, size_t,
		    sftp_cb, void *);
int		 sftp_evbuffer_read(struct evbuffer *, int, size_t);
int		 sftp_chan_send_write_buf(struct sftp_chan *,
		    const unsigned char *, size_t, struct evbuffer *, size_t,
		    sftp_cb, void *);
void		 sftp_chan_forget(struct sftp_chan *, uint32_t);
size_t		 sftp_chan_queued(const struct sftp_chan *);
u_int		 sftp_chan_pending(const struct sftp_chan *);

#endif /* SFTPCHAN_H */
