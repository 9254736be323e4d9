/*
 * ftpfwd.h: what the daemon's files share.  ftpparse.h, ssh_mux.h, join.h
 * and tls.h stand alone (the tests and fuzzers link them without the
 * daemon); this header is only for the files that make up ftpfwd itself,
 * with their prototypes grouped per file below.
 *
 * Who owns what, on failure as on success (one rule, everywhere):
 *  - A descriptor passed to a function is that function's from the call
 *    on: if the function fails, it has closed it, or kept it in the
 *    object it works for, whose free closes it.  The caller forgets it
 *    either way.
 *  - An object passed by pointer (a session, a data connection) stays
 *    the caller's: a function that fails leaves it alive for the caller
 *    to free, unless its name or its comment says it frees it
 *    (data_conn_free, data_conn_fail, data_conn_start, session_end).
 *  - A session is freed only by session_end(), from the event loop.
 */

#ifndef FTPFWD_H
#define FTPFWD_H

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <time.h>

#include <openssl/ssl.h>

#include "fifo.h"
#include "ftpparse.h"
#include "sftp.h"

#ifndef FTPFWD_VERSION
#define FTPFWD_VERSION		"unknown"
#endif

#define EXIT_USAGE		1
#define EXIT_NO_MASTER		255

#define DEFAULT_FORWARD		"127.0.0.1:2121:localhost:21"
#define DEFAULT_SFTP_LISTEN	"127.0.0.1:2121"	/* Backend=sftp */
#define DEFAULT_MAX_SESSIONS	100
#define DEFAULT_IDLE_TIMEOUT	3600
#define MAX_LISTENERS		16	/* sockets per -L (all interfaces) */
#define LISTEN_BACKLOG		128	/* FTP clients queued on a -L */
#define PASV_BACKLOG		1	/* one client per passive port */
#define ACT_BACKLOG		4	/* active data connections queued */
#define CLAIM_BACKLOG		4	/* a successor asking "who serves?" */
#define CTL_BUF_HIGH		(64 * 1024)	/* control input kept */
#define DRAIN_TIMEOUT		10	/* seconds to flush a closing session */
#define DRAIN_POLL_MS		10	/* look again at a TLS socket */
#define ACCEPT_BACKOFF		1	/* seconds without accept on EMFILE */
#define FD_RESERVE		8	/* descriptors a session may need */
#define RUNDIR_PARENT_MAX	64	/* keep socket paths within sun_path */
#define ACT_PATH_MAX		sizeof(((struct sockaddr_un *)0)->sun_path)
#define MASTER_RETRY		1	/* seconds between master reconnects */
#define MASTER_POLL_MS		200	/* no pidfd_open(2): kill(pid, 0) */
#define HELLO_TIMEOUT_MS	10000
#define EOF_JUDGE_MS		100	/* let a dying master finish dying */
#define XFER_HOLD_MS		2000	/* a 226 waits for its data at most */
#define XFER_POLL_MS		1	/* then asks the kernel, first after */
#define XFER_POLL_MAX_MS	64	/* and doubling up to */
#define DATA_WATCH_MS		250	/* a download's socket, asked every */
#define LOG_TEXT_MAX		512	/* escaped untrusted text in a log */
#define LOG_LINE_MAX		2048	/* one whole log line */
#define ERR_MAX			256	/* an error message from a callee */
#define SOCK_DRAIN_MAX		4096	/* read from a refused client */
#define USER_LOG_MAX		64	/* a user name kept for the status */
#define OPT_NAME_MAX		64	/* the longest -o keyword */
#define LOCAL_USERS_MAX		32	/* names in LocalUsers */
#define SSH_G_LINE_MAX		4096	/* one line of ssh -G */
#define SSH_ARGV_MAX		16	/* ssh and its arguments, for exec */
#define ADDR_STR_MAX		(INET6_ADDRSTRLEN + 8)
#define HOST_STR_MAX		(NI_MAXHOST + 8)

#ifndef nitems
#define nitems(a)		(sizeof(a) / sizeof((a)[0]))
#endif

struct bufferevent;
struct evbuffer;
struct event;
struct event_base;
struct evconnlistener;
struct join;
struct mux_conn;
struct relay;
struct sfs;

enum loglevel {
	LL_QUIET, LL_FATAL, LL_ERROR, LL_INFO, LL_VERBOSE,
	LL_DEBUG1, LL_DEBUG2, LL_DEBUG3
};

/* ActiveMode and PassiveMode: what a client's PORT or PASV becomes. */
enum act_mode { AM_AUTO, AM_FORWARD, AM_PASSIVE, AM_OFF };
enum pasv_mode { PM_FORWARD, PM_ACTIVE };
enum tls_mode { TLS_OFF, TLS_EXPLICIT, TLS_IMPLICIT };
/* Backend: who answers FTP, an FTP server or ftpfwd from sftp. */
enum backend { BACKEND_FTP, BACKEND_SFTP };

/* A data connection's mode: the client's, then the server's. */
enum data_mode { DM_NONE, DM_PASSIVE, DM_ACTIVE, DM_ACT_PASV, DM_PASV_ACT };

/* One -L or -W: where FTP sessions go, as reached from the ssh server. */
struct forward {
	char		*bind_host;		/* NULL: all interfaces */
	uint16_t	 bind_port;
	char		*host;
	uint16_t	 port;
	int		 fds[MAX_LISTENERS];
	struct evconnlistener *lev[MAX_LISTENERS];
	int		 nfds;
	uint16_t	 bound_port;
	char		*act_bind;	/* remote forwards listen there */
	struct sockaddr_storage act_addr;	/* and so PORT/EPRT names it */
	int		 claim_fd;		/* "mine, for this master" */
	struct event	*claim_ev;
};

struct options {
	int			 family;
	int			 daemonize;
	enum loglevel		 loglevel;
	int			 loglevel_set;
	char			*log_file;	/* -E */
	char			*ctl_path;
	char			*ssh_config;
	char			*destination;
	struct forward		 fwds[MAX_LISTENERS];
	int			 nfwds;
	struct forward		 stdio_fwd;
	int			 stdio_mode;
	char			*active_bind;
	int			 act_mode;	/* enum act_mode */
	int			 pasv_mode;	/* enum pasv_mode */
	int			 pasv_trust;
	u_int			 max_sessions;
	u_int			 idle_timeout;
	int			 exit_with_master;	/* -1: by -f */
	int			 tcp_nodelay;
	int			 start_master;
	int			 facility;	/* syslog, once daemonized */
	int			 up_tls;	/* enum tls_mode */
	char			*up_cafile;
	char			*up_name;
	int			 up_verify;
	int			 cl_tls;	/* enum tls_mode */
	char			*cl_cert;
	char			*cl_key;
	int			 backend;	/* enum backend */
	char			*password;	/* PasswordFile's, or NULL */
	char			*ssh_user;	/* ssh -G's, for the 230 */
	char			*ssh_host;
};

/* Which way a stdio forward's data goes, once its command is known. */
enum data_dir { DIR_UNKNOWN, DIR_DOWN, DIR_UP };

/*
 * A data connection, named by the client's mode and the server's.
 * Toward the server in passive mode, the socket toward the client (the
 * one it connected to our port, or the one we connected to its PORT) is
 * handed to the master with a stdio forward whose mux link we hold;
 * with TLS on a side the master gets a socketpair's end instead and the
 * relay moves the bytes.  Toward the server in active mode, its
 * connection arrives on our Unix socket and is joined with splice, or
 * relayed, to the client: to its data port, or to the connection it
 * made to our passive port (the two ends are then paired as they come).
 * While cli_fd and srv_fd are both set it waits for a relay to start.
 */
struct data_conn {
	TAILQ_ENTRY(data_conn)	 entry;
	struct session		*s;
	enum data_mode		 mode;
	int			 tls_client;	/* PROT P toward the client */
	int			 tls_server;	/* UpstreamTLS */
	u_int			 xfer;		/* the transfer it is for */
	struct mux_conn		*mc;		/* the stdio forward */
	struct event		*conn_ev;	/* connecting to the client */
	int			 cli_fd, srv_fd;	/* ours until joined */
	int			 pairing;	/* both ends will come to us */
	int			 cmd_due;	/* cli_fd awaits its command */
	enum data_dir		 dir;		/* which way the data goes */
	int			 down_fd;	/* a download's master input, */
	struct event		*watch_ev;	/* till the master lets go */
	struct sockaddr_storage	 cli_self;	/* that socket's address */
	struct sockaddr_storage	 cli_peer;	/* the client's end of it */
	struct join		*join;
	struct relay		*relay;
	char			 target[HOST_STR_MAX];
};
TAILQ_HEAD(data_conns, data_conn);

/* A plain control socket written from the loop at once (writenow.c). */
struct writenow {
	struct bufferevent	*bev;
	struct evbuffer_cb_entry *cbe;
	struct event		*ev;		/* active when a line waits */
	void			(*drained)(struct bufferevent *, void *);
	void			*arg;
	int			 direct;	/* its EV_WRITE is off: ours */
};

/* The control connection, both ways (ctl.c, session.c). */
struct ctl {
	struct bufferevent	*cin;		/* client, reading side */
	struct bufferevent	*cout;		/* client, writing side */
	struct bufferevent	*srv;		/* server, via the master */
	struct writenow		 wn_cout;	/* until TLS on cout */
	struct writenow		 wn_srv;	/* until TLS on srv */
	struct mux_conn		*mux;		/* carries the control */
	int			 srv_open;	/* master said it is up */
	int			 srv_eof;	/* the server side has closed */
	struct pending_fifo	 replies;	/* commands awaiting replies */
	int			 wait_replies;	/* a line waits for them */
	int			 cli_eof;	/* client sent all it will */
	int			 cli_longline;	/* passing a long line on */
	int			 cli_discard;	/* dropping a long line */
	int			 srv_longline;
	int			 r_code;	/* multi-line reply under way */
	int			 r_feat;	/* filter AUTH from FEAT */
	enum {
		HOLD_NONE,
		HOLD_REPLY,	/* 227/229, or ours: rewritten or used here */
		HOLD_XFER,	/* a transfer's final reply: 426 if it failed */
		HOLD_XFER_DROP,	/* too long to hold, and failed: dropped */
		HOLD_OVERFLOW	/* too long to be a passive reply */
	}			 r_hold;
	struct evbuffer		*held;
	int			 deferred;	/* held until its data is out */
	struct pending		 defer_p;	/* the reply's command */
	int			 defer_code;
	struct timespec		 defer_since;
	int			 defer_poll_ms;	/* the next look, after */
	struct event		*defer_ev;	/* looks again, from the loop */
	int			 last_code;
	int			 logged_in;	/* the server said 230 */
	char			 user[USER_LOG_MAX];	/* escaped, SIGUSR1 */
	int			 srv_feat;	/* FTP_FEAT_*, seen in FEAT */
	int			 epsv_all;	/* the client sent EPSV ALL */
};

/* Passive toward the client: our listener for its data (passive.c). */
struct pasv {
	int			 fd;
	struct event		*ev;
	char			 host[NI_MAXHOST];	/* the server's port */
	uint16_t		 port;
};

/*
 * Active toward the server: one remote forward for the session's life,
 * which leads to a Unix socket of ours; we join what arrives there to
 * the client's data port (active.c).
 */
enum act_state { ACT_NONE, ACT_OPENING, ACT_OPEN };
struct act {
	enum act_state		 state;		/* of the remote forward */
	struct mux_conn		*mux;		/* remote forward requests */
	uint32_t		 rid;
	uint16_t		 rport;		/* its port on the ssh server */
	int			 lfd;
	struct event		*ev;
	char			 path[ACT_PATH_MAX];
	int			 armed;		/* a PORT awaits a connection */
	int			 taken;		/* and one came for it */
	int			 hijacked;	/* and then one more */
	enum ftp_cmd		 cmd;		/* the client's PORT or EPRT */
	struct sockaddr_storage	 client;	/* the client's data port */
	char			 host[ADDR_STR_MAX];
	uint16_t		 port;
};

/*
 * The next transfer needs a data connection in the other mode toward
 * the server, set up by ftpfwd between the client's transfer command
 * and the moment it passes on (xlate.c).
 */
enum xlate { XL_NONE, XL_TO_PASSIVE, XL_TO_ACTIVE };
enum xl_state {
	XL_IDLE,	/* nothing asked yet */
	XL_ASKED,	/* our PASV, or the remote forward, is due */
	XL_CONNECTING,	/* to the client's data port */
	XL_READY,	/* the transfer command may go */
	XL_FAILED	/* answer it with err instead */
};
struct xl {
	enum xlate		 to;
	enum xl_state		 state;
	char			 err[LOG_TEXT_MAX];
};

/* FTPS: toward the server (ours to set up), toward the client (ftps.c). */
enum up_phase { UP_READY, UP_BANNER, UP_AUTH, UP_PBSZ, UP_PROT };
struct ftps {
	enum up_phase		 up_phase;
	int			 up_code;	/* multi-line reply in set-up */
	struct evbuffer		*banner;	/* held until TLS is up */
	SSL			*up_ssl;	/* the control's, to resume */
	int			 cl_on;		/* client's control is TLS */
	int			 cl_shut;	/* close_notify sent */
	char			 cl_prot;	/* its PROT: 'C' or 'P' */
};

/* The current data transfer, for the log and the idle timer. */
struct xfer {
	u_int			 pending;	/* commands sent, replies due */
	char			 failed[LOG_TEXT_MAX];	/* why the oldest did */
	int			 running;
	struct timespec		 start;
	char			 verb[FTP_VERB_MAX + 1];
	int			 upload;	/* the last one sent uploads */
	enum data_mode		 mode;
	u_int			 count;
};

/* Who is at the far end of a connection (access.c). */
struct who {
	int			 local;		/* a peer on this machine */
	int			 known;		/* and uid owns its socket */
	uid_t			 uid;
};

/*
 * Backend=sftp (sftpd.c and the sftp*.c after it): ftpfwd is the FTP
 * server, and answers from the ssh server's files through an sftp
 * channel of the master.  Every request a session sends is an sfs_req
 * on its list until the reply comes; ending the session forgets them
 * all.
 */
#define SFS_PATH_MAX		4096	/* a path, the client's or ours */
#define SFS_PKT_MAX		(2 * SFS_PATH_MAX + 512) /* but WRITE */
#define SFS_XFER_CAP		(8 * 1024 * 1024) /* in flight, a transfer */
#define SFS_XFER_REQS		64	/* requests in flight, a transfer */
#define SFS_OUT_HIGH		(4 * 1024 * 1024) /* held for the client */
#define SFS_CHAN_HIGH		(16 * 1024 * 1024) /* queued on a channel */
#define SFS_CHAN_REQS_HIGH	768	/* of its SFTP_CHAN_PENDING_MAX */
#define SFS_DATA_TIMEOUT	30	/* seconds for a data connection */
#define SFS_STOU_TRIES		100	/* names STOU tries */
#define SFS_CACHE_SECS		2	/* a listing answers SIZE, MDTM */
#define SFS_CACHE_MAX		4096	/* entries, then it starts over */
#define SFS_FACT_TYPE		0x01	/* MLST facts, as OPTS MLST picks */
#define SFS_FACT_SIZE		0x02
#define SFS_FACT_MODIFY		0x04
#define SFS_FACT_PERM		0x08
#define SFS_FACT_MODE		0x10
#define SFS_FACTS_ALL		0x1f

struct sfs_req;
struct sfs_xfer;
struct sfs_cached;
TAILQ_HEAD(sfs_cache, sfs_cached);
typedef void (*sfs_fn)(struct session *, struct sfs_req *,
    const struct sftp_reply *);
struct sfs_req {
	TAILQ_ENTRY(sfs_req)	 entry;
	struct session		*s;
	uint32_t		 id;
	sfs_fn			 fn;		/* NULL: nobody waits */
	struct sfs_xfer		*xfer;		/* cancelled with it */
	void			*slot;		/* its part of the transfer */
};
TAILQ_HEAD(sfs_reqs, sfs_req);

/* The next transfer's data connection, on this machine (sftpxfer.c). */
enum sfs_data_mode { SD_NONE, SD_PASV, SD_PORT };
struct sfs_data {
	enum sfs_data_mode	 mode;
	int			 lfd;		/* PASV: our listener */
	struct event		*lev;
	struct sockaddr_storage	 port;		/* PORT: the client's */
	int			 fd;		/* accepted, or connecting */
	struct event		*cev;		/* the connect, the timeout */
	int			 ready;		/* fd is a connection */
	void			(*cb)(struct session *, const char *);
};

/* One READ of a download, in file order: what it asks, what came. */
struct sx_slot {
	TAILQ_ENTRY(sx_slot)	 entry;
	uint64_t		 off;		/* of what is still asked */
	uint32_t		 len;		/* still to come */
	uint32_t		 size;		/* as first asked: in flight */
	struct evbuffer		*buf;		/* what came */
	int			 done;
	int			 eof;
};
TAILQ_HEAD(sx_slots, sx_slot);

/* The transfer under way: one at a time (sftpxfer.c, sftplist.c). */
enum sx_kind { SX_RETR, SX_STOR, SX_LIST };
TAILQ_HEAD(sx_waiters, sfs_xfer);
struct sfs_xfer {
	struct session		*s;
	enum sx_kind		 kind;
	int			 how;		/* STOR: S A U; LIST: L N M S */
	int			 dead;
	char			 verb[FTP_VERB_MAX + 1];
	char			 path[SFS_PATH_MAX];
	char			 handle[SFTP_HANDLE_MAX];
	size_t			 handle_len;
	uint64_t		 size;		/* RETR: as STAT said */
	int			 stat_seen;	/* RETR: STAT's answer is in */
	int			 not_plain;	/* and it is no plain file */
	uint64_t		 off;		/* the next request's */
	uint64_t		 bytes;		/* on the data connection */
	int			 fd;		/* the data, in the clear */
	struct event		*rev, *wev;
	struct evbuffer		*out;		/* to the client, or from it */
	struct relay		*relay;		/* PROT P: TLS to the client */
	int			 relay_done;
	int			 opened;	/* its 150 is out */
	int			 src_eof;	/* nothing more to read */
	int			 finishing;	/* all is in: CLOSE, then 226 */
	int			 closing;	/* STOR: its CLOSE is sent */
	TAILQ_ENTRY(sfs_xfer)	 wait_entry;	/* for room on the channel */
	struct sx_waiters	*waiting_on;	/* the list it is in, or NULL */
	struct sx_slots		 slots;
	u_int			 nreq;		/* READs or WRITEs in flight */
	size_t			 inflight;	/* and their bytes */
	int			 cr;		/* TYPE A STOR: a CR held */
	u_int			 tries;		/* STOU's names */
	int			 all;		/* LIST -a */
	char			 pattern[SFS_PATH_MAX];	/* a glob's last part */
	char			 prefix[SFS_PATH_MAX];	/* NLST: as asked */
	struct timespec		 t0;
};

struct sfs {
	struct sftp_chan	*ch;
	struct sfs_reqs		 reqs;
	int			 user_given;
	int			 logged_in;
	int			 busy;		/* a command's reply is due */
	char			 type;		/* 'A' or 'I' */
	uint64_t		 rest;
	int			 epsv_all;
	int			 have_rnfr;
	char			 cwd[SFS_PATH_MAX];
	char			 op[SFS_PATH_MAX];	/* a command's path */
	char			 rnfr[SFS_PATH_MAX];
	uint32_t		 op_time;	/* MFMT's */
	int			 facts;		/* SFS_FACT_*, for MLSD, MLST */
	struct sfs_data		 data;
	struct sfs_xfer		*xfer;
	struct sfs_cache	 cache;		/* sftpcache.c */
	u_int			 ncached;
};

struct session {
	TAILQ_ENTRY(session)	 entry;
	u_int			 id;
	int			 dead;
	int			 closing;
	struct forward		*fwd;
	time_t			 started;
	struct sockaddr_storage	 client_addr;	/* peer of the control */
	struct sockaddr_storage	 local_addr;	/* our end of the control */
	char			 client_str[ADDR_STR_MAX];
	struct who		 client_who;	/* LocalUsers let it in */

	struct ctl		 ctl;
	struct pasv		 pasv;
	struct act		 act;
	struct xl		 xl;
	struct ftps		 tls;
	struct xfer		 xfer;
	struct data_conns	 data;		/* both modes */
	struct sfs		*sfs;		/* Backend=sftp: sftpd.c */

	struct event		*idle_ev;
	struct event		*drain_ev;
	struct event		*drain_poll_ev;
	struct event		*eof_ev;	/* who closed: decide later */
};
TAILQ_HEAD(sessions, session);

/* ftpfwd.c */
extern struct options	 opt;
extern struct event_base *evbase;
void		 shutdown_all(const char *);

/* log.c */
void		 log_init(void);
void		 log_to_syslog(void);
void		 logit(enum loglevel, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
void		 fatal(const char *, ...)
		    __attribute__((noreturn, format(printf, 1, 2)));
void		 fatalx(const char *, ...)
		    __attribute__((noreturn, format(printf, 1, 2)));
void		 fatalx_status(int, const char *, ...)
		    __attribute__((noreturn, format(printf, 2, 3)));
const char	*escape(char *, size_t, const char *, size_t);
char		*xstrdup(const char *);

/* access.c */
void		 access_parse(const char *);
int		 access_client(const struct sockaddr_storage *,
		    const struct sockaddr_storage *, struct who *, char *,
		    size_t);
int		 access_data(const struct who *,
		    const struct sockaddr_storage *,
		    const struct sockaddr_storage *, char *, size_t);

/* addr.c */
int		 addr_host(const struct sockaddr *, char *, size_t);
const char	*addr_str(const struct sockaddr_storage *, char *, size_t);
void		 addr_unmap(struct sockaddr_storage *);
int		 addr_is_any(const struct sockaddr_storage *);
int		 addr_same_host(const struct sockaddr_storage *,
		    const struct sockaddr_storage *);
uint16_t	 addr_port(const struct sockaddr_storage *);
void		 addr_set_port(struct sockaddr_storage *, uint16_t);
socklen_t	 addr_len(const struct sockaddr_storage *);
void		 sock_set_opts(int);
void		 sock_listener_close(struct event **, int *);
void		 sock_reset_close(int);
void		 sock_refuse(int, const char *);

/* listener.c */
void		 listeners_bind(void);
void		 listeners_start(void);
void		 listeners_enable(int);
void		 listeners_free(void);
void		 stdio_session_start(void);

/* master.c */
char		*master_lookup_path(int);
void		 master_check(int);
void		 master_watch_start(void);
int		 master_known(void);
int		 master_alive(void);
int		 master_rfwd_refused(void);
void		 master_rfwd_refuse(const char *);

/* session.c */
extern struct sessions	 sessions;
extern u_int		 nsessions;
extern int		 shutting_down;
void		 session_start(struct forward *, int, int,
		    const struct sockaddr_storage *,
		    const struct sockaddr_storage *, const struct who *);
void		 session_close(struct session *, const char *);
void		 session_end(struct session *, const char *);
void		 session_flush(struct session *);
void		 session_status(void);
void		 idle_reset(struct session *);
double		 elapsed_since(const struct timespec *);
void		 server_read_cb(struct bufferevent *, void *);
void		 server_write_cb(struct bufferevent *, void *);
void		 server_event_cb(struct bufferevent *, short, void *);
void		 client_read_cb(struct bufferevent *, void *);
void		 client_write_cb(struct bufferevent *, void *);
void		 client_event_cb(struct bufferevent *, short, void *);

/* ctl.c */
int		 ctl_init(struct session *, int, int);
void		 ctl_stop(struct session *);
void		 ctl_free(struct session *);
void		 client_reply(struct session *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
void		 pending_push(struct session *, enum ftp_cmd, enum ftp_cmd,
		    int);
const char	*ctl_blocked(const struct session *);
void		 ctl_resume(struct session *);
void		 ctl_client_input(struct session *);
void		 ctl_server_input(struct session *);
void		 ctl_xfer_data_moved(struct session *);
void		 ctl_xfer_release(struct session *);
void		 ctl_eof_done(struct session *);
void		 reply_done(struct session *, int);
int		 next_line(struct evbuffer *, char **, size_t *, size_t *,
		    int *);
int		 line_rest(struct evbuffer *, struct evbuffer *);
void		 xfer_fail(struct session *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));

/* writenow.c */
int		 writenow_start(struct writenow *, struct bufferevent *,
		    void (*)(struct bufferevent *, void *), void *);
void		 writenow_handback(struct writenow *);
void		 writenow_drained(struct writenow *);
void		 writenow_stop(struct writenow *);

/* ftps.c */
int		 ftps_init(struct session *);
void		 ftps_free(struct session *);
const char	*ftps_server_name(const struct session *);
int		 ftps_data_tls(const struct session *);
int		 ftps_server_setup(struct session *, char *, size_t);
void		 ftps_fail(struct session *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
int		 ftps_client_start(struct session *);
int		 ftps_upstream(struct session *);
int		 ftps_auth(struct session *, const char *, size_t,
		    struct evbuffer *, size_t);
void		 ftps_prot(struct session *, enum ftp_cmd, const char *,
		    size_t);

/* data.c */
extern const char *const data_mode_names[];
#define DATA_TLS_CLIENT	0x01	/* TLS toward the client */
#define DATA_TLS_SERVER	0x02	/* TLS toward the server */
struct data_conn *data_conn_new(struct session *, enum data_mode, int);
void		 data_conn_free(struct data_conn *);
void		 data_conn_fail(struct data_conn *, const char *);
int		 data_conn_waiting(const struct data_conn *);
void		 data_conn_start(struct data_conn *);
void		 data_conns_each_waiting(struct session *,
		    void (*)(struct data_conn *));
void		 data_conns_free(struct session *);
void		 data_conns_abort(struct session *);
int		 data_xfer_unsent(struct session *, int *);
int		 data_pasv_take(struct data_conn *, int);
void		 data_xfer_command(struct session *);
int		 data_to_master(struct data_conn *, int, const char *,
		    uint16_t);
struct data_conn *data_conn_pairing(struct session *, int);
int		 data_conn_pair(struct session *, int, int, int);
int		 data_connect_client(struct data_conn *,
		    const struct sockaddr_storage *, const char *, uint16_t);
void		 data_setup_forget(struct session *);

/* passive.c */
void		 pasv_close(struct session *);
void		 pasv_accept(struct session *);
int		 pasv_parse(struct session *, enum ftp_cmd);
void		 pasv_reply(struct session *, const struct pending *);
void		 pasv_send(struct session *, enum ftp_cmd, int);
void		 pasv_command(struct session *, enum ftp_cmd, const char *,
		    size_t);

/* rundir.c */
const char	*rundir_get(void);
void		 rundir_record(u_int, const char *, const char *);
void		 rundir_unrecord(u_int);
void		 rundir_remove(void);
void		 rundir_reap(void);

/* active.c */
int		 act_accept(struct session *);
void		 act_disarm(struct session *);
void		 act_forget(struct session *);
int		 act_hijacked(const struct session *);
void		 act_sweep(struct session *);
void		 act_close(struct session *);
int		 act_send_port(struct session *, enum ftp_cmd, int);
int		 act_request(struct session *);
void		 act_command(struct session *, enum ftp_cmd, const char *,
		    size_t);

/* xlate.c */
int		 xl_busy(const struct session *);
void		 xl_fail(struct session *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
void		 xl_ready(struct session *);
int		 xl_port_goes_passive(void);
void		 xl_take_port(struct session *);
void		 xl_reset(struct session *);
void		 xl_ours_reply(struct session *, const struct pending *, int);
int		 xl_transfer(struct session *);
int		 xl_waits_for_rfwd(const struct session *);
void		 xl_rfwd_answer(struct session *, const char *);
void		 xl_connected(struct data_conn *, int);

/* sftpd.c */
int		 sfs_start(struct session *);
void		 sfs_free(struct session *);
void		 sfs_input(struct session *);
int		 sfs_busy(const struct session *);
void		 sfs_done(struct session *);
void		 sfs_master_gone(const char *);
int		 sfs_send(struct session *, const unsigned char *, long,
		    sfs_fn, struct sfs_xfer *, void *);
int		 sfs_send_write(struct session *, const unsigned char *,
		    long, struct evbuffer *, size_t, sfs_fn, struct sfs_xfer *,
		    void *);
void		 sfs_cancel(struct session *, struct sfs_xfer *);
void		 sfs_path_req(struct session *, uint8_t, const char *,
		    sfs_fn);
int		 sfs_path(struct session *, const char *, char *, size_t);
void		 sfs_status_reply(struct session *, const struct sftp_reply *,
		    const char *, int);
size_t		 sfs_safe(char *, size_t, const char *, size_t);
size_t		 sfs_io_len(const struct session *, int);
void		 sfs_fmt_time(char *, size_t, uint32_t);

/* sftpfile.c: handlers of sftpd.c's command table */
void		 sf_pwd(struct session *, char *);
void		 sf_cwd(struct session *, char *);
void		 sf_cdup(struct session *, char *);
void		 sf_type(struct session *, char *);
void		 sf_mode(struct session *, char *);
void		 sf_stru(struct session *, char *);
void		 sf_pasv(struct session *, char *);
void		 sf_epsv(struct session *, char *);
void		 sf_port(struct session *, char *);
void		 sf_eprt(struct session *, char *);
void		 sf_rest(struct session *, char *);
void		 sf_retr(struct session *, char *);
void		 sf_stor(struct session *, char *);
void		 sf_appe(struct session *, char *);
void		 sf_stou(struct session *, char *);
void		 sf_list(struct session *, char *);
void		 sf_nlst(struct session *, char *);
void		 sf_mlsd(struct session *, char *);
void		 sf_abor(struct session *, char *);
void		 sf_allo(struct session *, char *);
void		 sf_mlst(struct session *, char *);
void		 sf_dele(struct session *, char *);
void		 sf_rmd(struct session *, char *);
void		 sf_mkd(struct session *, char *);
void		 sf_rnfr(struct session *, char *);
void		 sf_rnto(struct session *, char *);
void		 sf_size(struct session *, char *);
void		 sf_mdtm(struct session *, char *);
void		 sf_mfmt(struct session *, char *);
void		 sf_site(struct session *, char *);

/* sftpdata.c */
void		 sx_pasv(struct session *, int);
void		 sx_port(struct session *, int, const char *);
void		 sx_data_close(struct session *);
void		 sx_data_get(struct sfs_xfer *,
		    void (*)(struct session *, const char *));
int		 sx_data_open(struct sfs_xfer *);

/* sftpxfer.c */
void		 sx_retr(struct session *, const char *);
void		 sx_list(struct session *, const char *, const char *, int);
void		 sx_abor(struct session *);
void		 sx_chan_wake(void);
int		 sx_chan_room(struct sfs_xfer *);
void		 sx_stop(struct sfs_xfer *, int);
int		 sx_running(const struct session *);
void		 sx_free(struct session *);
void		 sx_status(const struct session *, char *, size_t);
void		 sx_facts(char *, size_t, const struct sftp_attrs *, int);
int		 sx_facts_pick(const char *);
void		 sx_facts_names(char *, size_t, int, int, const char *);
struct sfs_xfer	*sx_new(struct session *, enum sx_kind, const char *);
void		 sx_end(struct sfs_xfer *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
void		 sx_end_status(struct sfs_xfer *, const struct sftp_reply *,
		    int);
int		 sx_send(struct sfs_xfer *, const unsigned char *, long,
		    sfs_fn, void *);
void		 sx_want_write(struct sfs_xfer *);
void		 sx_finish(struct sfs_xfer *);
int		 sx_data_came(struct sfs_xfer *, const char *);
void		 sx_close_handle(struct sfs_xfer *);
int		 sx_handle(struct sfs_xfer *, const struct sftp_reply *);

/* sftpstor.c */
void		 sx_stor(struct session *, const char *, int);
void		 sx_stor_flush(struct sfs_xfer *);

/* sftpcache.c */
void		 sc_clear(struct session *);
void		 sc_clear_all(void);
void		 sc_put(struct session *, const char *, const char *,
		    const struct sftp_attrs *);
const struct sftp_attrs *sc_get(struct session *, const char *);

/* sftplist.c */
void		 sl_start(struct sfs_xfer *);
void		 sl_more(struct sfs_xfer *);

#endif /* FTPFWD_H */
