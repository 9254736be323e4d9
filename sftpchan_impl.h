/*
 * sftpchan_impl.h: what sftpchan.c (one channel's life) and sftppool.c
 * (the pool of them) share, and nobody else: the structs behind the
 * opaque types of sftpchan.h, and the channel functions the pool calls.
 */

#ifndef SFTPCHAN_IMPL_H
#define SFTPCHAN_IMPL_H

enum chan_state {
	CS_VERSION,		/* INIT sent, waiting for VERSION */
	CS_LIMITS,		/* limits@openssh.com asked */
	CS_READY,
	CS_DEAD
};

struct sftp_req {
	TAILQ_ENTRY(sftp_req)	 entry;
	uint32_t		 id;
	sftp_cb			 cb;		/* NULL: forgotten */
	void			*arg;
};
TAILQ_HEAD(sftp_reqs, sftp_req);

struct sftp_chan {
	TAILQ_ENTRY(sftp_chan)	 entry;		/* in live or gone */
	struct sftp_pool	*pool;
	u_int			 serial;	/* for the log */
	enum chan_state		 state;
	int			 session_up;	/* SESSION_OPENED seen */
	int			 sock_lost;	/* early: wait for the master */
	struct sftp_chan	*alias;		/* refused: users went there */
	u_int			 users;		/* holders of this pointer */
	u_int			 load;		/* and those of its aliases */
	struct mux_conn		*mc;
	int			 fd;
	struct event		*rev, *wev;
	struct event		*timer;		/* open timeout, then idle */
	struct event		*reap;
	int			 released;	/* fd and buffers let go */
	struct evbuffer		*in, *out;
	struct evbuffer		*held;		/* requests before ready */
	struct sftp_reqs	 reqs;
	u_int			 npending;
	uint32_t		 limits_id;
	unsigned char		*vpkt;		/* VERSION, which version */
	struct sftp_version	 version;	/* points into */
	struct sftp_limits	 limits;
};
TAILQ_HEAD(sftp_chans, sftp_chan);

struct sftp_pool {
	struct event_base	*base;
	char			*ctl_path;
	u_int			 max;		/* as configured */
	u_int			 cap;		/* as sshd lets us */
	sftp_log_fn		 log;
	uint32_t		 next_id;
	u_int			 serial;
	struct sftp_chans	 live;		/* usable or on their way */
	u_int			 nlive;
	struct sftp_chans	 gone;		/* dead, still held */
	u_int			 depth;		/* callbacks running */
	int			 dying;
	struct event		*reap;
};


#define plog(p, level, ...) do {					\
	if ((p)->log != NULL)						\
		(p)->log((level), __VA_ARGS__);				\
} while (0)

/* sftpchan.c, for the pool */
struct sftp_chan *chan_open(struct sftp_pool *);
void	 chan_free(struct sftp_chan *);
void	 chan_kill(struct sftp_chan *, int, const char *, ...)
	    __attribute__((format(printf, 3, 4)));
void	 chan_schedule_reap(struct sftp_chan *);
void	 chan_maybe_idle(struct sftp_chan *);

/* sftppool.c, for the channels */
struct sftp_chan *least_loaded(struct sftp_pool *, const struct sftp_chan *,
	    int);
void	 pool_reap_cb(evutil_socket_t, short, void *);

#endif /* SFTPCHAN_IMPL_H */
