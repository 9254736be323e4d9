/*
 * ftpfwd: FTP forwarding through a running OpenSSH ControlMaster.
 *
 * Each FTP session's control connection goes to the FTP server through a
 * stdio forward of the master.  ftpfwd reads the control lines in both
 * directions and, for every data connection, asks the master for the
 * forward it needs: a stdio forward carrying the client's passive data
 * socket, or the session's remote forward that the server's active data
 * connections come back through, joined to the client with splice(2).
 * Either side may be in the other mode (ActiveMode, PassiveMode) and the
 * other address family: ftpfwd sets up the server's side itself before
 * it passes the transfer command on.  Only with TLS on a side (tls.c) do
 * data bytes pass through user space.
 */

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <stddef.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>

#include "ftpparse.h"
#include "join.h"
#include "ssh_mux.h"
#include "tls.h"

#ifndef FTPFWD_VERSION
#define FTPFWD_VERSION		"unknown"
#endif

#define EXIT_USAGE		1
#define EXIT_NO_MASTER		255

#define DEFAULT_FORWARD		"127.0.0.1:2121:localhost:21"
#define DEFAULT_MAX_SESSIONS	100
#define DEFAULT_IDLE_TIMEOUT	3600
#define MAX_LISTENERS		16	/* sockets per -L (all interfaces) */
#define PENDING_MAX		64	/* commands awaiting a server reply */
#define CTL_BUF_HIGH		(64 * 1024)	/* control input kept */
#define DRAIN_TIMEOUT		10	/* seconds to flush a closing session */
#define DRAIN_POLL_MS		10	/* look again at a TLS socket */
#define ACCEPT_BACKOFF		1	/* seconds without accept on EMFILE */
#define FD_RESERVE		8	/* descriptors a session may need */
#define ACT_BACKLOG		4	/* active data connections queued */
#define RUNDIR_PARENT_MAX	64	/* keep socket paths within sun_path */
#define ACT_PATH_MAX		sizeof(((struct sockaddr_un *)0)->sun_path)
#define MASTER_RETRY		1	/* seconds between master reconnects */
#define MASTER_POLL_MS		200	/* no pidfd_open(2): kill(pid, 0) */
#define HELLO_TIMEOUT_MS	10000
#define EOF_JUDGE_MS		100	/* let a dying master finish dying */
#define LOG_TEXT_MAX		512	/* escaped untrusted text in a log */
#define USER_LOG_MAX		64	/* a user name kept for the status */
#define ADDR_STR_MAX		(INET6_ADDRSTRLEN + 8)
#define HOST_STR_MAX		(NI_MAXHOST + 8)

enum loglevel {
	LL_QUIET, LL_FATAL, LL_ERROR, LL_INFO, LL_VERBOSE,
	LL_DEBUG1, LL_DEBUG2, LL_DEBUG3
};

static const struct {
	const char	*name;
	enum loglevel	 level;
} loglevels[] = {
	{ "QUIET", LL_QUIET }, { "FATAL", LL_FATAL }, { "ERROR", LL_ERROR },
	{ "INFO", LL_INFO }, { "VERBOSE", LL_VERBOSE },
	{ "DEBUG", LL_DEBUG1 }, { "DEBUG1", LL_DEBUG1 },
	{ "DEBUG2", LL_DEBUG2 }, { "DEBUG3", LL_DEBUG3 },
};

/* ActiveMode, in enum act_mode's order. */
static const char *act_modes[] = { "auto", "forward", "passive", "off" };

/* SyslogFacility, as ssh_config names them. */
static const struct {
	const char	*name;
	int		 facility;
} facilities[] = {
	{ "DAEMON", LOG_DAEMON }, { "USER", LOG_USER }, { "AUTH", LOG_AUTH },
	{ "LOCAL0", LOG_LOCAL0 }, { "LOCAL1", LOG_LOCAL1 },
	{ "LOCAL2", LOG_LOCAL2 }, { "LOCAL3", LOG_LOCAL3 },
	{ "LOCAL4", LOG_LOCAL4 }, { "LOCAL5", LOG_LOCAL5 },
	{ "LOCAL6", LOG_LOCAL6 }, { "LOCAL7", LOG_LOCAL7 },
};

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
	const char		*mode;		/* client's>server's */
	struct mux_conn		*mc;		/* the stdio forward */
	struct event		*conn_ev;	/* connecting to the client */
	int			 cli_fd, srv_fd;	/* ours until joined */
	int			 pairing;	/* both ends will come to us */
	struct join		*join;
	struct relay		*relay;
	char			 target[HOST_STR_MAX];
};

#define MODE_PASSIVE		"passive"
#define MODE_ACTIVE		"active"
#define MODE_ACT_PASV		"active>passive"
#define MODE_PASV_ACT		"passive>active"

/* ActiveMode and PassiveMode: what a client's PORT or PASV becomes. */
enum act_mode { AM_AUTO, AM_FORWARD, AM_PASSIVE, AM_OFF };
enum pasv_mode { PM_FORWARD, PM_ACTIVE };

/*
 * The next transfer needs a data connection in the other mode toward
 * the server, set up by ftpfwd between the client's transfer command
 * and the moment it passes on.
 */
enum xlate { XL_NONE, XL_TO_PASSIVE, XL_TO_ACTIVE };
enum xl_state {
	XL_IDLE,	/* nothing asked yet */
	XL_ASKED,	/* our PASV, or the remote forward, is due */
	XL_CONNECTING,	/* to the client's data port */
	XL_READY,	/* the transfer command may go */
	XL_FAILED	/* answer it with xl_err instead */
};

/* A command sent to the server whose final reply is still due. */
struct pending {
	u_char		cmd;		/* the client's command class */
	u_char		sent;		/* what went to the server */
	u_char		ours;		/* ftpfwd's own: the reply is ours */
};

enum act_state { ACT_NONE, ACT_OPENING, ACT_OPEN };

enum tls_mode { TLS_OFF, TLS_EXPLICIT, TLS_IMPLICIT };

/* Upstream TLS set-up, between the server's banner and the client's. */
enum up_phase { UP_READY, UP_BANNER, UP_AUTH, UP_PBSZ, UP_PROT };

struct session {
	TAILQ_ENTRY(session)	 entry;
	u_int			 id;
	int			 dead;
	int			 closing;
	struct forward		*fwd;
	time_t			 started;

	struct bufferevent	*cin;		/* client, reading side */
	struct bufferevent	*cout;		/* client, writing side */
	struct sockaddr_storage	 client_addr;	/* peer of the control */
	struct sockaddr_storage	 local_addr;	/* our end of the control */
	char			 client_str[ADDR_STR_MAX];

	struct bufferevent	*srv;		/* server, via the master */
	struct mux_conn		*ctl_mux;	/* carries the control */
	int			 srv_open;	/* master said it is up */
	int			 srv_eof;	/* the server side has closed */
	struct mux_conn		*fwd_mux;	/* remote forward requests */

	struct pending		 pending[PENDING_MAX];
	u_int			 phead, pcount;
	int			 c_wait;	/* client line waits on us */
	int			 c_eof;		/* client sent all it will */
	int			 c_longline;	/* passing a long line on */
	int			 c_discard;	/* dropping a long line */
	int			 s_longline;
	int			 r_code;	/* multi-line reply under way */
	int			 r_feat;	/* filter AUTH from FEAT */
	enum { HOLD_NONE, HOLD_REPLY, HOLD_OVERFLOW } r_hold; /* 227/229 */
	struct evbuffer		*held;
	int			 last_code;
	int			 logged_in;	/* the server said 230 */
	char			 user[USER_LOG_MAX];	/* escaped, SIGUSR1 */

	/* Mode and address family translation. */
	int			 up_feat;	/* FTP_FEAT_*, seen in FEAT */
	int			 epsv_all;	/* the client sent EPSV ALL */
	enum xlate		 xl;
	enum xl_state		 xl_state;
	char			 xl_err[LOG_TEXT_MAX];

	/* The current data transfer, for the log and the idle timer. */
	int			 xfer_running;
	struct timespec		 xfer_start;
	char			 xfer_verb[FTP_VERB_MAX + 1];
	const char		*data_mode;
	u_int			 nxfers;

	/* Passive: our listener for the client's data connection. */
	int			 pasv_fd;
	struct event		*pasv_ev;
	char			 pasv_host[NI_MAXHOST];
	uint16_t		 pasv_port;
	TAILQ_HEAD(, data_conn)	 data;		/* both modes */

	/*
	 * Active: one remote forward for the session's life, which leads
	 * to a Unix socket of ours; we join what arrives there to the
	 * client's data port.
	 */
	enum act_state		 act_state;	/* of the remote forward */
	uint32_t		 act_rid;
	uint16_t		 act_rport;	/* its port on the ssh server */
	int			 act_lfd;
	struct event		*act_ev;
	char			 act_path[ACT_PATH_MAX];
	int			 act_armed;	/* a PORT awaits a connection */
	enum ftp_cmd		 act_cmd;	/* the client's PORT or EPRT */
	struct sockaddr_storage	 act_client;	/* the client's data port */
	char			 act_host[ADDR_STR_MAX];
	uint16_t		 act_port;

	/* TLS: toward the server (ours to set up), toward the client. */
	enum up_phase		 up_phase;
	int			 up_code;	/* multi-line reply in set-up */
	struct evbuffer		*banner;	/* held until TLS is up */
	SSL			*up_ssl;	/* the control's, to resume */
	int			 cl_tls;	/* client's control is TLS */
	int			 cl_shut;	/* close_notify sent */
	char			 cl_prot;	/* its PROT: 'C' or 'P' */

	struct event		*idle_ev;
	struct event		*drain_ev;
	struct event		*drain_poll_ev;
	struct event		*eof_ev;	/* who closed: decide later */
};

TAILQ_HEAD(sessions, session);

static struct {
	int			 family;
	int			 daemonize;
	enum loglevel		 loglevel;
	int			 loglevel_set;
	char			*ctl_path;
	char			*ssh_config;
	char			*destination;
	struct forward		 fwds[MAX_LISTENERS];
	int			 nfwds;
	struct forward		 stdio_fwd;
	int			 stdio_mode;
	char			*active_bind;
	enum act_mode		 act_mode;
	enum pasv_mode		 pasv_mode;
	int			 pasv_trust;
	u_int			 max_sessions;
	u_int			 idle_timeout;
	int			 exit_with_master;	/* -1: by -f */
	int			 tcp_nodelay;
	int			 start_master;
	int			 facility;	/* syslog, once daemonized */
	enum tls_mode		 up_tls;
	char			*up_cafile;
	char			*up_name;
	int			 up_verify;
	enum tls_mode		 cl_tls;
	char			*cl_cert;
	char			*cl_key;
} opt;

static struct event_base	*base;
static struct sessions		 sessions = TAILQ_HEAD_INITIALIZER(sessions);
static u_int			 nsessions;
static u_int			 next_session_id = 1;
static int			 use_syslog;
static struct mux_conn		*watch_mux;	/* asking the master's pid */
static pid_t			 master_pid;	/* the master watched, or 0 */
static int			 master_pidfd = -1;
static struct event		*master_ev;
static struct event		*accept_ev;
static struct event		*retry_ev;
static int			 shutting_down;
static int			 act_refused;	/* ActiveMode=auto fell back */
static char			 rundir[PATH_MAX];	/* our Unix sockets */

static void	session_client_input(struct session *);
static void	session_server_input(struct session *);
static void	session_close(struct session *, const char *);
static void	session_end(struct session *, const char *);
static void	client_eof_done(struct session *);
static void	client_read_cb(struct bufferevent *, void *);
static void	client_write_cb(struct bufferevent *, void *);
static void	client_event_cb(struct bufferevent *, short, void *);
static void	server_read_cb(struct bufferevent *, void *);
static void	server_write_cb(struct bufferevent *, void *);
static void	server_event_cb(struct bufferevent *, short, void *);
static void	act_disarm(struct session *);
static void	act_connect_cb(evutil_socket_t, short, void *);
static void	fwd_mux_cb(struct mux_conn *, enum mux_event,
		    const struct mux_reply *, void *);
static void	ours_reply(struct session *, const struct pending *, int);
static void	data_conns_waiting(struct session *,
		    void (*)(struct data_conn *));
static void	data_conn_start(struct data_conn *);
static void	data_conn_free(struct data_conn *);
static void	watch_open(void);
static void	shutdown_all(const char *);

static void __attribute__((format(printf, 2, 3)))
logit(enum loglevel level, const char *fmt, ...)
{
	va_list	ap;
	int	prio;

	if (level > opt.loglevel)
		return;
	va_start(ap, fmt);
	if (use_syslog) {
		if (level <= LL_ERROR)
			prio = LOG_ERR;
		else if (level <= LL_VERBOSE)
			prio = LOG_INFO;
		else
			prio = LOG_DEBUG;
		vsyslog(prio, fmt, ap);
	} else {
		fputs("ftpfwd: ", stderr);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
	}
	va_end(ap);
}

/* Errors before the loop runs: to stderr whatever the log level. */
static void __attribute__((noreturn, format(printf, 2, 3)))
die(int status, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	fputs("ftpfwd: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(status);
}

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr,
	    "usage: ftpfwd [-46dfhqvV] "
	    "[-L [bind_address:]port:host:hostport]... [-W host:port]\n"
	    "              [-S ctl_path] [-F ssh_config] [-o option=value]..."
	    " [destination]\n");
	exit(EXIT_USAGE);
}

static const char *
escape(char *buf, size_t sz, const char *s, size_t len)
{
	ftp_escape(buf, sz, s, len);
	return buf;
}

/* The bare address, as the master should connect to it. */
static int
addr_host(const struct sockaddr *sa, char *buf, size_t sz)
{
	const void	*a;

	if (sa->sa_family == AF_INET)
		a = &((const struct sockaddr_in *)sa)->sin_addr;
	else if (sa->sa_family == AF_INET6)
		a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	else
		return -1;
	return inet_ntop(sa->sa_family, a, buf, sz) == NULL ? -1 : 0;
}

static uint16_t	addr_port(const struct sockaddr_storage *);

/* Address and port for a log line: 127.0.0.1:21, [::1]:21. */
static const char *
addr_str(const struct sockaddr_storage *ss, char *buf, size_t sz)
{
	char	host[INET6_ADDRSTRLEN];

	if (addr_host((const struct sockaddr *)ss, host, sizeof(host)) == -1)
		snprintf(buf, sz, "local");
	else
		snprintf(buf, sz, ss->ss_family == AF_INET6 ? "[%s]:%u" :
		    "%s:%u", host, addr_port(ss));
	return buf;
}

/* An IPv4-mapped IPv6 address becomes plain IPv4; others stay. */
static void
addr_unmap(struct sockaddr_storage *ss)
{
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in	 sin;

	if (ss->ss_family != AF_INET6 ||
	    !IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
		return;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = sin6->sin6_port;
	memcpy(&sin.sin_addr, &sin6->sin6_addr.s6_addr[12], 4);
	memcpy(ss, &sin, sizeof(sin));
}

/* 0.0.0.0 or :: */
static int
addr_is_any(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ((const struct sockaddr_in *)ss)->sin_addr.s_addr ==
		    htonl(INADDR_ANY);
	if (ss->ss_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(
		    &((const struct sockaddr_in6 *)ss)->sin6_addr);
	return 0;
}

static int
addr_same_host(const struct sockaddr_storage *a,
    const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		    ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	if (a->ss_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
		    &((const struct sockaddr_in6 *)b)->sin6_addr,
		    sizeof(struct in6_addr)) == 0;
	return 0;
}

static uint16_t
addr_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return 0;
}

static void
addr_set_port(struct sockaddr_storage *ss, uint16_t port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(port);
	else if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

static socklen_t
addr_len(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
	    sizeof(struct sockaddr_in);
}

static void
set_socket_opts(int fd)
{
	int	on = 1;

	/* Keep Telnet "urgent" bytes (lftp's ABOR) in the stream. */
	(void)setsockopt(fd, SOL_SOCKET, SO_OOBINLINE, &on, sizeof(on));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
}

/*
 * Replies ftpfwd makes itself.  Only sent when no server reply is due,
 * so they never overtake one.
 */
static void __attribute__((format(printf, 2, 3)))
client_reply(struct session *s, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(bufferevent_get_output(s->cout), fmt, ap);
	va_end(ap);
	evbuffer_add(bufferevent_get_output(s->cout), "\r\n", 2);
}

/* A transfer command waits while its data connection is set up. */
static int
xl_busy(const struct session *s)
{
	return s->xl_state == XL_ASKED || s->xl_state == XL_CONNECTING;
}

/* The client's cmd went to the server as sent, or as ftpfwd's own. */
static void
pending_push(struct session *s, enum ftp_cmd cmd, enum ftp_cmd sent,
    int ours)
{
	struct pending	*p = &s->pending[(s->phead + s->pcount) % PENDING_MAX];

	p->cmd = (u_char)cmd;
	p->sent = (u_char)sent;
	p->ours = (u_char)ours;
	s->pcount++;
}

static struct pending *
pending_first(struct session *s)
{
	static struct pending	none;	/* FTP_CMD_OTHER, not ours */

	return s->pcount == 0 ? &none : &s->pending[s->phead];
}

static enum ftp_cmd
pending_head(struct session *s)
{
	return (enum ftp_cmd)pending_first(s)->cmd;
}

static double
elapsed_since(const struct timespec *t0)
{
	struct timespec	now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0->tv_sec) +
	    (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

static void
idle_reset(struct session *s)
{
	struct timeval	tv = { (time_t)opt.idle_timeout, 0 };

	if (s->idle_ev != NULL && opt.idle_timeout > 0)
		event_add(s->idle_ev, &tv);
}

static void
idle_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session	*s = arg;

	(void)fd;
	(void)what;
	/* A running transfer is not idleness, even with a quiet control. */
	if (s->xfer_running) {
		idle_reset(s);
		return;
	}
	logit(LL_INFO, "#%u idle for %u seconds", s->id, opt.idle_timeout);
	session_close(s, "421 ftpfwd: idle timeout, closing control "
	    "connection");
}

/* A listening socket of a session's and its event, either kind. */
static void
listener_close(struct event **evp, int *fdp)
{
	if (*evp != NULL) {
		event_free(*evp);
		*evp = NULL;
	}
	if (*fdp != -1) {
		close(*fdp);
		*fdp = -1;
	}
}

static void
pasv_close(struct session *s)
{
	listener_close(&s->pasv_ev, &s->pasv_fd);
}

/* The name the FTP server's certificate must carry. */
static const char *
up_name(const struct session *s)
{
	return opt.up_name != NULL ? opt.up_name : s->fwd->host;
}

static struct data_conn *
data_conn_new(struct session *s, const char *mode)
{
	struct data_conn	*d;

	if ((d = calloc(1, sizeof(*d))) == NULL)
		return NULL;
	d->s = s;
	d->mode = mode;
	d->cli_fd = d->srv_fd = -1;
	TAILQ_INSERT_TAIL(&s->data, d, entry);
	return d;
}

static void
data_conn_free(struct data_conn *d)
{
	TAILQ_REMOVE(&d->s->data, d, entry);
	mux_free(d->mc);
	if (d->conn_ev != NULL)
		event_free(d->conn_ev);
	join_free(d->join);
	relay_free(d->relay);
	if (d->cli_fd != -1)
		close(d->cli_fd);
	if (d->srv_fd != -1)
		close(d->srv_fd);
	free(d);
}

/*
 * Nothing carries it yet: both descriptors are ours and wait for the
 * transfer's 1xx, or one or both of a pair have still to come.
 */
static int
data_conn_waiting(const struct data_conn *d)
{
	return d->join == NULL && d->relay == NULL && d->conn_ev == NULL &&
	    (d->pairing || (d->cli_fd != -1 && d->srv_fd != -1));
}

static void
data_conn_done(struct data_conn *d, uint64_t bytes, const char *why)
{
	logit(why != NULL ? LL_VERBOSE : LL_DEBUG1, "#%u %s data connection "
	    "done after %llu bytes%s%s", d->s->id, d->mode,
	    (unsigned long long)bytes, why != NULL ? ": " : "",
	    why != NULL ? why : "");
	data_conn_free(d);
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
data_needs_relay(const struct session *s)
{
	return (s->cl_tls && s->cl_prot == 'P') || s->up_ssl != NULL;
}

static struct bufferevent *
data_bev(int fd, SSL *ssl, enum bufferevent_ssl_state state)
{
	struct bufferevent	*bev;

	if (ssl == NULL)
		return bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	if ((bev = bufferevent_openssl_socket_new(base, fd, ssl, state,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL)
		SSL_free(ssl);
	return bev;
}

/*
 * Relay a data connection: TLS toward the client when it asked for
 * PROT P, TLS toward the server (resuming the control's session) with
 * UpstreamTLS.  Takes both descriptors, even on failure.
 */
static struct relay *
data_relay(struct session *s, int cli_fd, int srv_fd, relay_cb cb, void *arg)
{
	struct bufferevent	*bc = NULL, *bs = NULL;
	struct relay		*r;
	SSL_SESSION		*sess;
	SSL			*cssl = NULL, *sssl = NULL;

	if (s->cl_tls && s->cl_prot == 'P' && (cssl = tls_client_ssl(1)) ==
	    NULL)
		goto fail;
	if (s->up_ssl != NULL) {
		sess = SSL_get1_session(s->up_ssl);
		sssl = tls_upstream_ssl(up_name(s), sess);
		SSL_SESSION_free(sess);
		if (sssl == NULL)
			goto fail;
	}
	evutil_make_socket_nonblocking(cli_fd);
	evutil_make_socket_nonblocking(srv_fd);
	bc = data_bev(cli_fd, cssl, BUFFEREVENT_SSL_ACCEPTING);
	cssl = NULL;
	if (bc == NULL)
		goto fail;
	cli_fd = -1;
	bs = data_bev(srv_fd, sssl, BUFFEREVENT_SSL_CONNECTING);
	sssl = NULL;
	if (bs == NULL)
		goto fail;
	srv_fd = -1;
	if ((r = relay_new(bc, bs, cb, arg)) == NULL)
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
data_relay_ready(const struct session *s)
{
	return s->up_ssl == NULL || s->xfer_running;
}

/*
 * Both ends are ours: relay them when TLS is on a side (now, or at the
 * transfer's 1xx), else join them with splice.
 */
static void
data_conn_start(struct data_conn *d)
{
	struct session	*s = d->s;

	if (d->cli_fd == -1 || d->srv_fd == -1)
		return;			/* a pair still waits for an end */
	if (data_needs_relay(s)) {
		if (!data_relay_ready(s))
			return;
		d->relay = data_relay(s, d->cli_fd, d->srv_fd, data_relay_cb,
		    d);
	} else
		d->join = join_new(base, d->srv_fd, d->cli_fd, data_join_cb,
		    d);
	d->cli_fd = d->srv_fd = -1;	/* the relay's or join's, or closed */
	if (d->relay == NULL && d->join == NULL) {
		logit(LL_ERROR, "#%u cannot carry the %s data connection: %s",
		    s->id, d->mode, strerror(errno));
		data_conn_free(d);
		return;
	}
	logit(LL_DEBUG1, "#%u %s data connection to %s %s", s->id, d->mode,
	    d->target, d->relay != NULL ? "relayed" : "joined");
}

/*
 * Call fn on each connection waiting for its 1xx: data_conn_start at
 * the 1xx, data_conn_free once the transfer is over or never began
 * (such a connection will carry nothing).  fn may free the entry.
 */
static void
data_conns_waiting(struct session *s, void (*fn)(struct data_conn *))
{
	struct data_conn	*d, *dn;

	for (d = TAILQ_FIRST(&s->data); d != NULL; d = dn) {
		dn = TAILQ_NEXT(d, entry);
		if (data_conn_waiting(d))
			fn(d);
	}
}

static void
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
		data_conn_free(d);
		break;
	case MUX_EV_CLOSED:
		/*
		 * The master closes the link when the channel is done.  A
		 * relay may still have bytes to pass on: it ends on its own.
		 * One that never started has nothing to carry.
		 */
		if (d->relay != NULL) {
			mux_free(d->mc);
			d->mc = NULL;
		} else
			data_conn_free(d);
		break;
	default:
		break;
	}
}

/*
 * Hand the socket toward the client to the master, with a stdio forward
 * to the server's passive port.  Takes fd; frees d on failure.
 */
static int
data_to_master(struct data_conn *d, int fd)
{
	struct session	*s = d->s;
	char		 err[256];
	uint32_t	 rid;
	int		 mfd = fd, sp[2];

	snprintf(d->target, sizeof(d->target), "%s:%u", s->pasv_host,
	    s->pasv_port);
	if (data_needs_relay(s)) {
		/* TLS: the master gets a socketpair's end, we the bytes. */
		d->cli_fd = fd;
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
		    sp) == -1) {
			logit(LL_ERROR, "#%u socketpair: %s", s->id,
			    strerror(errno));
			data_conn_free(d);
			return -1;
		}
		d->srv_fd = sp[0];
		mfd = sp[1];
	}
	/* mux_stdio_fwd() owns mfd from here, even when it fails. */
	if ((d->mc = mux_open(base, opt.ctl_path, data_mux_cb, d, err,
	    sizeof(err))) == NULL ||
	    mux_stdio_fwd(d->mc, s->pasv_host, s->pasv_port, mfd, &rid) ==
	    -1) {
		if (d->mc == NULL)
			close(mfd);
		logit(LL_ERROR, "#%u cannot hand the data connection to the "
		    "master at %s: %s", s->id, opt.ctl_path,
		    d->mc == NULL ? err : "request failed");
		data_conn_free(d);
		return -1;
	}
	if (data_conn_waiting(d))
		data_conn_start(d);
	return 0;
}

/* The pair still missing the client's end (0) or the server's (1). */
static struct data_conn *
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
 * server's (1), and start it once it has both.  Returns 0 if none waits.
 */
static int
data_conn_pair(struct session *s, int server, int fd)
{
	struct data_conn	*d;

	if ((d = data_conn_pairing(s, server)) == NULL)
		return 0;
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

/*
 * The client connected to our passive port: hand it to the master, or
 * with PassiveMode=active pair it with the server's connection.
 */
static void
pasv_accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	struct session		*s = arg;
	struct sockaddr_storage	 peer;
	socklen_t		 plen = sizeof(peer);
	struct data_conn	*d;
	char			 pstr[ADDR_STR_MAX];
	int			 fd;

	(void)what;
	if ((fd = accept4(lfd, (struct sockaddr *)&peer, &plen,
	    SOCK_CLOEXEC)) == -1)
		return;
	addr_unmap(&peer);
	if (!addr_same_host(&peer, &s->client_addr)) {
		/* Someone else raced the client to its data port. */
		logit(LL_ERROR, "#%u passive data connection from %s refused: "
		    "not the client's address", s->id,
		    addr_str(&peer, pstr, sizeof(pstr)));
		close(fd);
		return;
	}
	pasv_close(s);
	set_socket_opts(fd);
	logit(LL_DEBUG1, "#%u data connection from %s", s->id,
	    addr_str(&peer, pstr, sizeof(pstr)));
	if (data_conn_pair(s, 0, fd))
		return;
	if ((d = data_conn_new(s, MODE_PASSIVE)) == NULL) {
		close(fd);
		return;
	}
	(void)data_to_master(d, fd);
}

/* Open a listener for the client's passive data connection. */
static int
pasv_listen(struct session *s, struct sockaddr_storage *where)
{
	socklen_t	len;
	int		fd;

	pasv_close(s);
	*where = s->local_addr;
	addr_set_port(where, 0);
	if ((fd = socket(where->ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1)
		return -1;
	len = addr_len(where);
	if (bind(fd, (struct sockaddr *)where, len) == -1 ||
	    listen(fd, 1) == -1 ||
	    getsockname(fd, (struct sockaddr *)where, &len) == -1)
		goto fail;
	if ((s->pasv_ev = event_new(base, fd, EV_READ | EV_PERSIST,
	    pasv_accept_cb, s)) == NULL || event_add(s->pasv_ev, NULL) != 0)
		goto fail;
	s->pasv_fd = fd;
	return 0;
 fail:
	close(fd);
	if (s->pasv_ev != NULL) {
		event_free(s->pasv_ev);
		s->pasv_ev = NULL;
	}
	return -1;
}

/*
 * A whole 227 or 229 reply, to the PASV or EPSV sent, is in s->held:
 * where the server's passive port is, as the ssh server reaches it.
 */
static int
pasv_parse(struct session *s, enum ftp_cmd sent)
{
	struct sockaddr_storage	 srv;
	size_t			 len = evbuffer_get_length(s->held);
	char			*text, why[LOG_TEXT_MAX];
	uint16_t		 port;
	int			 r;

	text = (char *)evbuffer_pullup(s->held, -1);
	if (sent == FTP_CMD_PASV) {
		r = ftp_parse_227(text, len, &srv);
		port = r == 0 ? addr_port(&srv) : 0;
	} else
		r = ftp_parse_229(text, len, &port);
	if (r == -1) {
		logit(LL_ERROR, "#%u cannot parse the server's passive reply "
		    "\"%s\"", s->id, escape(why, sizeof(why), text, len));
		return -1;
	}
	if (sent == FTP_CMD_PASV && opt.pasv_trust)
		addr_host((struct sockaddr *)&srv, s->pasv_host,
		    sizeof(s->pasv_host));
	else
		snprintf(s->pasv_host, sizeof(s->pasv_host), "%s",
		    s->fwd->host);
	s->pasv_port = port;
	return 0;
}

/* Answer the client's PASV or EPSV with a port of ours; 0 if we can't. */
static uint16_t
pasv_answer(struct session *s, enum ftp_cmd cmd, const char *mode)
{
	struct sockaddr_storage	 where;
	char			 line[FTP_FMT_MAX];
	int			 r;

	if (pasv_listen(s, &where) == -1) {
		logit(LL_ERROR, "#%u cannot open a passive listener: %s",
		    s->id, strerror(errno));
		client_reply(s, "425 ftpfwd: cannot open a passive data port: "
		    "%s", strerror(errno));
		return 0;
	}
	if (cmd == FTP_CMD_PASV)
		r = ftp_fmt_227(line, sizeof(line), (struct sockaddr *)&where);
	else
		r = ftp_fmt_229(line, sizeof(line), addr_port(&where));
	if (r == -1) {
		pasv_close(s);
		client_reply(s, "425 ftpfwd: PASV needs IPv4, use EPSV");
		return 0;
	}
	evbuffer_add(bufferevent_get_output(s->cout), line, (size_t)r);
	s->data_mode = mode;
	return addr_port(&where);
}

/* The server's 227/229 to the client's PASV/EPSV: point it at us. */
static void
pasv_reply(struct session *s, const struct pending *p)
{
	uint16_t	port;

	if (pasv_parse(s, (enum ftp_cmd)p->sent) == -1)
		client_reply(s, "425 ftpfwd: cannot parse the server's "
		    "passive reply");
	else if ((port = pasv_answer(s, (enum ftp_cmd)p->cmd,
	    MODE_PASSIVE)) != 0)
		logit(LL_DEBUG1, "#%u passive port %u -> %s:%u", s->id, port,
		    s->pasv_host, s->pasv_port);
	evbuffer_drain(s->held, evbuffer_get_length(s->held));
}

/* A server reply ended: match it to its command. */
static void
reply_done(struct session *s, int code)
{
	enum ftp_cmd	cmd = pending_head(s);

	s->last_code = code;
	logit(LL_DEBUG2, "#%u server %d (%u replies due)", s->id, code,
	    s->pcount);
	if (code < 200) {
		if (cmd == FTP_CMD_TRANSFER && !s->xfer_running) {
			s->xfer_running = 1;
			clock_gettime(CLOCK_MONOTONIC, &s->xfer_start);
			if (s->up_ssl != NULL)
				data_conns_waiting(s, data_conn_start);
		}
		return;
	}
	if (s->pcount == 0)
		return;		/* unsolicited, such as 421 */
	s->phead = (s->phead + 1) % PENDING_MAX;
	s->pcount--;
	/* pyftpdlib answers REIN with 230 too: only USER/PASS log in. */
	if ((code == 230 || code == 232) &&
	    (cmd == FTP_CMD_USER || cmd == FTP_CMD_PASS))
		s->logged_in = 1;

	if (cmd == FTP_CMD_TRANSFER) {
		s->nxfers++;
		logit(LL_INFO, "#%u %s %s %.3fs %d", s->id, s->xfer_verb,
		    s->data_mode != NULL ? s->data_mode : "-",
		    s->xfer_running ? elapsed_since(&s->xfer_start) : 0.0,
		    code);
		s->xfer_running = 0;
		s->data_mode = NULL;
		/*
		 * Connections queued on our sockets belong to this transfer:
		 * the final reply can overtake them.
		 */
		act_disarm(s);
		if (s->pasv_fd != -1 && data_conn_pairing(s, 0) != NULL)
			pasv_accept_cb(s->pasv_fd, EV_READ, s);
		data_conns_waiting(s, data_conn_free);
	} else if ((cmd == FTP_CMD_PORT || cmd == FTP_CMD_EPRT) &&
	    code >= 300)
		act_disarm(s);
	if (s->c_wait) {
		s->c_wait = 0;
		session_client_input(s);
	}
	client_eof_done(s);
}

static void
client_resume(struct session *s)
{
	if (s->dead || s->closing)
		return;
	if (!s->c_eof)
		bufferevent_enable(s->cin, EV_READ);
	session_client_input(s);
	client_eof_done(s);
}

/*
 * The next line in a control buffer.  *linep shows at most FTP_LINE_MAX
 * bytes of it, without CR LF; *totalp is what the line occupies.  A line
 * with no LF yet is returned as partial once it is too long to wait for.
 * Returns -1 when a line must wait for more bytes.
 */
static int
next_line(struct evbuffer *in, char **linep, size_t *linelenp,
    size_t *totalp, int *partialp)
{
	struct evbuffer_ptr	eol;
	size_t			eol_len, linelen;

	eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);
	if (eol.pos == -1) {
		if (evbuffer_get_length(in) <= FTP_LINE_MAX)
			return -1;
		*partialp = 1;
		*totalp = FTP_LINE_MAX;
		linelen = FTP_LINE_MAX;
	} else {
		*partialp = 0;
		*totalp = (size_t)eol.pos + eol_len;
		linelen = (size_t)eol.pos;
	}
	if (linelen > FTP_LINE_MAX)
		linelen = FTP_LINE_MAX;		/* enough to judge it */
	if ((*linep = (char *)evbuffer_pullup(in, (ev_ssize_t)(linelen +
	    (linelen < *totalp ? 1 : 0)))) == NULL)
		return -1;
	if (linelen > 0 && linelen < FTP_LINE_MAX &&
	    (*linep)[linelen - 1] == '\r')
		linelen--;
	*linelenp = linelen;
	return 0;
}

/*
 * The rest of a line already judged: pass it to out, or drop it when out
 * is NULL.  Returns 1 once the line's LF has gone, 0 if more is to come.
 */
static int
line_rest(struct evbuffer *in, struct evbuffer *out)
{
	struct evbuffer_ptr	eol;
	size_t			eol_len, total;

	eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);
	total = eol.pos == -1 ? evbuffer_get_length(in) :
	    (size_t)eol.pos + eol_len;
	if (out == NULL)
		evbuffer_drain(in, total);
	else
		evbuffer_remove_buffer(in, out, total);
	return eol.pos != -1;
}

/*
 * A control connection turns TLS: a filter over its bufferevent, with
 * the session's callbacks.  Takes ssl, even on failure.
 */
static struct bufferevent *
control_tls(struct session *s, struct bufferevent *under, SSL *ssl,
    enum bufferevent_ssl_state state, bufferevent_data_cb readcb,
    bufferevent_data_cb writecb, bufferevent_event_cb eventcb)
{
	struct bufferevent	*bev;

	if ((bev = bufferevent_openssl_filter_new(base, under, ssl, state,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		SSL_free(ssl);
		return NULL;
	}
	/* A peer that closes without close_notify after QUIT is common. */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	bufferevent_setcb(bev, readcb, writecb, eventcb, s);
	bufferevent_setwatermark(bev, EV_READ, 0, CTL_BUF_HIGH);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	return bev;
}

/* Toward the server, TLS from here on. */
static int
srv_tls_start(struct session *s)
{
	struct bufferevent	*bev;
	SSL			*ssl;

	if ((ssl = tls_upstream_ssl(up_name(s), NULL)) == NULL ||
	    (bev = control_tls(s, s->srv, ssl, BUFFEREVENT_SSL_CONNECTING,
	    server_read_cb, server_write_cb, server_event_cb)) == NULL)
		return -1;
	s->srv = bev;
	s->up_ssl = ssl;
	return 0;
}

/* Toward the client, TLS from here on (after our 234, or at once). */
static int
client_tls_start(struct session *s)
{
	struct bufferevent	*bev;
	SSL			*ssl;

	if (s->cin != s->cout || (ssl = tls_client_ssl(0)) == NULL ||
	    (bev = control_tls(s, s->cin, ssl, BUFFEREVENT_SSL_ACCEPTING,
	    client_read_cb, client_write_cb, client_event_cb)) == NULL)
		return -1;
	s->cin = s->cout = bev;
	s->cl_tls = 1;
	return 0;
}

static void __attribute__((format(printf, 2, 3)))
upstream_fail(struct session *s, const char *fmt, ...)
{
	char	why[LOG_TEXT_MAX], reply[LOG_TEXT_MAX + 32];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	logit(LL_ERROR, "#%u %s", s->id, why);
	snprintf(reply, sizeof(reply), "421 ftpfwd: %s", why);
	session_close(s, reply);
}

static void
upstream_send(struct session *s, const char *line, enum up_phase next)
{
	evbuffer_add_printf(bufferevent_get_output(s->srv), "%s\r\n", line);
	s->up_phase = next;
}

/*
 * UpstreamTLS: the server's banner is held while ftpfwd sends AUTH TLS
 * (explicit), PBSZ 0 and PROT P, so the client's first line already
 * travels encrypted.  Returns 1 once set-up is over and the server's
 * lines can be read as usual, 0 while it goes on or has failed.
 */
static int
upstream_setup(struct session *s)
{
	struct evbuffer	*in;
	size_t		 total, linelen;
	char		*line, text[LOG_TEXT_MAX], d[128];
	int		 partial, code, more, ended, greeting = 220;

	while (!s->dead && !s->closing && s->up_phase != UP_READY) {
		in = bufferevent_get_input(s->srv);
		if (next_line(in, &line, &linelen, &total, &partial) == -1)
			return 0;
		if (partial) {
			upstream_fail(s, "the FTP server sent an over-long "
			    "line during TLS set-up");
			return 0;
		}
		escape(text, sizeof(text), line, linelen);
		ended = 0;
		if (s->up_code == 0) {
			if (ftp_reply_start(line, linelen, &code, &more) ==
			    -1) {
				upstream_fail(s, "the FTP server sent \"%s\" "
				    "during TLS set-up", text);
				return 0;
			}
			if (more)
				s->up_code = code;
			else
				ended = code;
		} else if (ftp_reply_ends(line, linelen, s->up_code)) {
			ended = s->up_code;
			s->up_code = 0;
		}
		if (s->up_phase == UP_BANNER)
			evbuffer_remove_buffer(in, s->banner, total);
		else
			evbuffer_drain(in, total);
		if (ended == 0)
			continue;
		switch (s->up_phase) {
		case UP_BANNER:
			if (ended != 220) {
				/* Busy or closing (421): pass it on. */
				greeting = ended;
				s->up_phase = UP_READY;
				break;
			}
			if (opt.up_tls == TLS_EXPLICIT)
				upstream_send(s, "AUTH TLS", UP_AUTH);
			else
				upstream_send(s, "PBSZ 0", UP_PBSZ);
			continue;
		case UP_AUTH:
			if (ended != 234) {
				upstream_fail(s, "the FTP server refused AUTH "
				    "TLS (\"%s\"); UpstreamTLS=explicit needs "
				    "a server that speaks FTPS", text);
				return 0;
			}
			if (srv_tls_start(s) == -1) {
				upstream_fail(s, "cannot start TLS");
				return 0;
			}
			/* Sent once the handshake is through. */
			upstream_send(s, "PBSZ 0", UP_PBSZ);
			continue;
		case UP_PBSZ:
		case UP_PROT:
			if (ended != 200) {
				upstream_fail(s, "the FTP server refused %s "
				    "(\"%s\")", s->up_phase == UP_PBSZ ?
				    "PBSZ 0" : "PROT P", text);
				return 0;
			}
			if (s->up_phase == UP_PBSZ) {
				upstream_send(s, "PROT P", UP_PROT);
				continue;
			}
			s->up_phase = UP_READY;
			logit(LL_VERBOSE, "#%u TLS to the FTP server: %s%s",
			    s->id, tls_describe(s->up_ssl, d, sizeof(d)),
			    opt.up_verify ? "" : ", certificate NOT verified "
			    "(UpstreamVerify=no)");
			break;
		case UP_READY:
			break;
		}
	}
	if (s->dead || s->closing)
		return 0;
	/* The banner, at last, and the reply it answers. */
	evbuffer_add_buffer(bufferevent_get_output(s->cout), s->banner);
	reply_done(s, greeting);
	return 1;
}

/* Server lines: pass them on, rewriting 227/229 and FEAT. */
static void
session_server_input(struct session *s)
{
	struct evbuffer		*in, *out;
	struct pending		 p;
	size_t			 total, linelen;
	char			*line;
	int			 code, more, partial, ended, drop, held;

	if (s->up_phase != UP_READY && !upstream_setup(s))
		return;
	in = bufferevent_get_input(s->srv);
	out = bufferevent_get_output(s->cout);
	while (!s->dead && evbuffer_get_length(in) > 0) {
		if (s->s_longline) {
			s->s_longline = !line_rest(in,
			    s->r_hold != HOLD_NONE ? NULL : out);
			continue;
		}
		if (next_line(in, &line, &linelen, &total, &partial) == -1)
			break;

		ended = 0;
		drop = 0;
		p = *pending_first(s);
		if (s->r_code == 0) {
			if (ftp_reply_start(line, linelen, &code, &more) == 0) {
				if (p.ours || (p.sent == FTP_CMD_PASV &&
				    code == 227) || (p.sent == FTP_CMD_EPSV &&
				    code == 229))
					s->r_hold = HOLD_REPLY;
				s->r_feat = p.cmd == FTP_CMD_FEAT && more;
				if (more)
					s->r_code = code;
				else
					ended = code;
			}
		} else if (ftp_reply_ends(line, linelen, s->r_code)) {
			ended = s->r_code;
			s->r_code = 0;
		} else if (s->r_feat) {
			/* What the server says of EPSV/EPRT, for our use. */
			s->up_feat |= ftp_feat_ext(line, linelen);
			drop = ftp_feat_is_tls(line, linelen);	/* not ours */
		}
		/* Ours, toward the client, before the FEAT reply's end. */
		if (ended && s->r_feat && opt.cl_tls == TLS_EXPLICIT &&
		    s->r_hold == HOLD_NONE)
			evbuffer_add_printf(out, " AUTH TLS\r\n PBSZ\r\n"
			    " PROT\r\n");

		if (s->r_hold == HOLD_REPLY && (partial ||
		    linelen == FTP_LINE_MAX ||
		    evbuffer_get_length(s->held) + total > FTP_LINE_MAX)) {
			/* Too long to be a passive reply: drop all of it. */
			evbuffer_drain(s->held, evbuffer_get_length(s->held));
			s->r_hold = HOLD_OVERFLOW;
		}
		if (s->r_hold == HOLD_OVERFLOW) {
			s->s_longline = partial;
			evbuffer_drain(in, total);
		} else if (s->r_hold == HOLD_REPLY)
			evbuffer_remove_buffer(in, s->held, total);
		else if (drop)
			evbuffer_drain(in, total);
		else {
			s->s_longline = partial;
			evbuffer_remove_buffer(in, out, total);
		}
		if (ended) {
			/* An overflowed reply is empty: 425. */
			held = s->r_hold != HOLD_NONE;
			s->r_hold = HOLD_NONE;
			if (held && !p.ours)
				pasv_reply(s, &p);
			s->r_feat = 0;
			reply_done(s, ended);
			if (held && p.ours)
				ours_reply(s, &p, ended);
		}
	}
	if (!s->dead && evbuffer_get_length(out) > CTL_BUF_HIGH)
		bufferevent_disable(s->srv, EV_READ);
}

/*
 * A private directory for the Unix sockets the remote forwards lead to:
 * only our own user (and so the master) can connect to them.
 */
static int
rundir_make(void)
{
	const char	*tmp;

	if (rundir[0] != '\0')
		return 0;
	if ((tmp = getenv("TMPDIR")) == NULL || *tmp != '/' ||
	    strlen(tmp) > RUNDIR_PARENT_MAX)
		tmp = "/tmp";
	if ((size_t)snprintf(rundir, sizeof(rundir), "%s/ftpfwd.XXXXXX",
	    tmp) >= sizeof(rundir) || mkdtemp(rundir) == NULL) {
		rundir[0] = '\0';
		return -1;
	}
	return 0;
}

/* At exit, whatever way we leave: the directory and what is left in it. */
static void
rundir_remove(void)
{
	struct dirent	*de;
	DIR		*dir;

	if (rundir[0] == '\0')
		return;
	if ((dir = opendir(rundir)) != NULL) {
		while ((de = readdir(dir)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			(void)unlinkat(dirfd(dir), de->d_name, 0);
		}
		closedir(dir);
	}
	(void)rmdir(rundir);
	rundir[0] = '\0';
}

/* Connect toward the client's data port (PORT/EPRT) for d. */
static int
data_connect_client(struct data_conn *d)
{
	struct session	*s = d->s;

	snprintf(d->target, sizeof(d->target), "%s:%u", s->act_host,
	    s->act_port);
	if ((d->cli_fd = socket(s->act_client.ss_family, SOCK_STREAM |
	    SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1 ||
	    (connect(d->cli_fd, (struct sockaddr *)&s->act_client,
	    addr_len(&s->act_client)) == -1 && errno != EINPROGRESS) ||
	    (d->conn_ev = event_new(base, d->cli_fd, EV_WRITE,
	    act_connect_cb, d)) == NULL ||
	    event_add(d->conn_ev, NULL) == -1) {
		logit(LL_ERROR, "#%u cannot connect to the client's data port "
		    "%s: %s", s->id, d->target, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * The next transfer cannot be set up: answer its command with why,
 * rather than pass it on.
 */
static void __attribute__((format(printf, 2, 3)))
xl_fail(struct session *s, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(s->xl_err, sizeof(s->xl_err), fmt, ap);
	va_end(ap);
	s->xl_state = XL_FAILED;
	client_resume(s);
}

/* The transfer command may pass on now. */
static void
xl_ready(struct session *s)
{
	s->xl_state = XL_READY;
	client_resume(s);
}

/* The connect to the client's data port finished: carry it or give up. */
static void
act_connect_cb(evutil_socket_t fd, short what, void *arg)
{
	struct data_conn	*d = arg;
	struct session		*s = d->s;
	socklen_t		 len = sizeof(int);
	int			 err = 0, to_master;

	(void)what;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	to_master = strcmp(d->mode, MODE_ACT_PASV) == 0;
	if (err != 0) {
		logit(LL_ERROR, "#%u cannot connect to the client's data port "
		    "%s: %s", s->id, d->target, strerror(err));
		data_conn_free(d);
		if (to_master)
			xl_fail(s, "425 ftpfwd: cannot connect to your data "
			    "port %s:%u: %s", s->act_host, s->act_port,
			    strerror(err));
		return;
	}
	event_free(d->conn_ev);
	d->conn_ev = NULL;
	set_socket_opts(d->cli_fd);
	if (!to_master) {
		data_conn_start(d);
		return;
	}
	fd = d->cli_fd;
	d->cli_fd = -1;
	if (data_to_master(d, fd) == -1)
		xl_fail(s, "425 ftpfwd: cannot hand the data connection to "
		    "ssh");
	else
		xl_ready(s);
}

/*
 * The master brought us the server's data connection: pair it with the
 * client's connection to our passive port, or connect to the client's
 * data port and join the two.  Only one connection per PORT, and only
 * while one is expected.
 */
static void
act_accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	struct session		*s = arg;
	struct data_conn	*d;
	int			 fd;

	(void)what;
	if ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK |
	    SOCK_CLOEXEC)) == -1)
		return;
	if (!s->act_armed) {
		logit(LL_ERROR, "#%u data connection through the remote "
		    "forward while none was expected: closed", s->id);
		close(fd);
		return;
	}
	s->act_armed = 0;
	if (data_conn_pair(s, 1, fd))
		return;
	if ((d = data_conn_new(s, MODE_ACTIVE)) == NULL) {
		close(fd);
		return;
	}
	d->srv_fd = fd;
	if (data_connect_client(d) == -1)
		data_conn_free(d);
}

/*
 * No data connection is expected any more.  One the master has already
 * queued on our socket still belongs to this transfer: the server's
 * final reply travels on another channel and can be read first.
 */
static void
act_disarm(struct session *s)
{
	if (s->act_armed && s->act_lfd != -1)
		act_accept_cb(s->act_lfd, EV_READ, s);
	s->act_armed = 0;
}

/* Our Unix socket, which the session's remote forward leads to. */
static int
act_listen(struct session *s)
{
	struct sockaddr_un	sun;
	int			fd;

	if (rundir_make() == -1)
		return -1;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if ((size_t)snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/a%u",
	    rundir, s->id) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1)
		return -1;
	(void)unlink(sun.sun_path);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    listen(fd, ACT_BACKLOG) == -1 ||
	    (s->act_ev = event_new(base, fd, EV_READ | EV_PERSIST,
	    act_accept_cb, s)) == NULL || event_add(s->act_ev, NULL) != 0) {
		close(fd);
		(void)unlink(sun.sun_path);
		if (s->act_ev != NULL) {
			event_free(s->act_ev);
			s->act_ev = NULL;
		}
		return -1;
	}
	memcpy(s->act_path, sun.sun_path, sizeof(s->act_path));
	s->act_lfd = fd;
	return 0;
}

static void
act_listen_close(struct session *s)
{
	if (s->act_lfd != -1)
		(void)unlink(s->act_path);
	listener_close(&s->act_ev, &s->act_lfd);
}

/*
 * Point the server at the session's remote forward: PORT on IPv4 unless
 * the server's FEAT lists EPRT, EPRT on IPv6.  For the client's PORT or
 * EPRT (cmd), or as our own before a transfer (ours).
 */
static int
act_send_port(struct session *s, enum ftp_cmd cmd, int ours)
{
	struct sockaddr_storage	ss = s->fwd->act_addr;
	enum ftp_cmd		sent = FTP_CMD_EPRT;
	char			line[FTP_FMT_MAX];
	int			n;

	addr_set_port(&ss, s->act_rport);
	if (ss.ss_family == AF_INET && !(s->up_feat & FTP_FEAT_EPRT))
		sent = FTP_CMD_PORT;
	if (sent == FTP_CMD_PORT)
		n = ftp_fmt_port(line, sizeof(line), (struct sockaddr *)&ss);
	else
		n = ftp_fmt_eprt(line, sizeof(line), (struct sockaddr *)&ss);
	if (n == -1) {
		client_reply(s, "425 ftpfwd: cannot format the data address");
		return -1;
	}
	evbuffer_add(bufferevent_get_output(s->srv), line, (size_t)n);
	pending_push(s, ours ? sent : cmd, sent, ours);
	s->act_armed = 1;
	if (ours)
		logit(LL_DEBUG1, "#%u active: %s:%u -> our passive port's "
		    "connection", s->id, s->fwd->act_bind, s->act_rport);
	else
		logit(LL_DEBUG1, "#%u active: %s:%u -> %s:%u", s->id,
		    s->fwd->act_bind, s->act_rport, s->act_host, s->act_port);
	return 0;
}

/* Ask the master for the session's remote forward; the client waits. */
static int
act_request(struct session *s)
{
	char	err[256];

	if (s->act_lfd == -1 && act_listen(s) == -1) {
		logit(LL_ERROR, "#%u cannot open a socket for the remote "
		    "forward in %s: %s", s->id, rundir, strerror(errno));
		snprintf(s->xl_err, sizeof(s->xl_err), "425 ftpfwd: cannot "
		    "open a local socket: %s", strerror(errno));
		return -1;
	}
	if (s->fwd_mux == NULL && (s->fwd_mux = mux_open(base, opt.ctl_path,
	    fwd_mux_cb, s, err, sizeof(err))) == NULL) {
		snprintf(s->xl_err, sizeof(s->xl_err), "425 ftpfwd: cannot "
		    "reach the ssh master: %s", err);
		return -1;
	}
	if (mux_open_rfwd_path(s->fwd_mux, s->fwd->act_bind, 0, s->act_path,
	    &s->act_rid) == -1) {
		snprintf(s->xl_err, sizeof(s->xl_err), "425 ftpfwd: cannot ask "
		    "the master for a remote forward");
		return -1;
	}
	s->act_state = ACT_OPENING;
	bufferevent_disable(s->cin, EV_READ);
	logit(LL_DEBUG2, "#%u asked for a remote forward on %s to %s", s->id,
	    s->fwd->act_bind, s->act_path);
	return 0;
}

/*
 * A new PORT/EPRT or PASV/EPSV replaces the last one: what it set up and
 * no transfer used goes.
 */
static void
data_setup_forget(struct session *s)
{
	pasv_close(s);
	s->act_armed = 0;
	data_conns_waiting(s, data_conn_free);
	s->xl = XL_NONE;
	s->xl_state = XL_IDLE;
}

/* Does a client's PORT/EPRT become passive mode toward the server? */
static int
act_to_passive(void)
{
	return opt.act_mode == AM_PASSIVE ||
	    (opt.act_mode == AM_AUTO && act_refused);
}

/* The client's PORT/EPRT, taken: the transfer will go passive. */
static void
act_take_port(struct session *s)
{
	s->xl = XL_TO_PASSIVE;
	s->xl_state = XL_IDLE;
	s->data_mode = MODE_ACT_PASV;
	client_reply(s, "200 %s command successful",
	    s->act_cmd == FTP_CMD_PORT ? "PORT" : "EPRT");
}

static void
fwd_mux_cb(struct mux_conn *mc, enum mux_event ev, const struct mux_reply *r,
    void *arg)
{
	struct session	*s = arg;
	char		 why[LOG_TEXT_MAX];
	int		 for_pasv;

	(void)mc;
	if (ev == MUX_EV_READY)
		return;
	if (ev == MUX_EV_CLOSED) {
		logit(LL_ERROR, "#%u lost the ssh master: %s", s->id,
		    escape(why, sizeof(why), r->reason, r->reason_len));
		s->fwd_mux = NULL;
		mux_free(mc);
		session_close(s, "421 ftpfwd: ssh connection closed");
		return;
	}
	if (s->act_state != ACT_OPENING || r->rid != s->act_rid) {
		if (ev == MUX_EV_FAILURE)
			logit(LL_DEBUG1, "#%u master: %s", s->id, escape(why,
			    sizeof(why), r->reason, r->reason_len));
		return;
	}
	/* PassiveMode=active: a transfer command waits for it. */
	for_pasv = s->xl == XL_TO_ACTIVE && s->xl_state == XL_ASKED;
	if (ev != MUX_EV_REMOTE_PORT || r->value == 0 || r->value > 65535) {
		escape(why, sizeof(why), r->reason, r->reason_len);
		if (why[0] == '\0')
			snprintf(why, sizeof(why), "no reason given");
		logit(LL_ERROR, "#%u ssh refused the remote forward on %s: %s",
		    s->id, s->fwd->act_bind, why);
		s->act_state = ACT_NONE;
		act_listen_close(s);
		if (for_pasv)
			xl_fail(s, "425 ftpfwd: ssh refused the remote "
			    "forward: %s", why);
		else if (opt.act_mode == AM_AUTO) {
			if (!act_refused)
				logit(LL_INFO, "ssh refused a remote forward "
				    "(%s): from now on active mode goes "
				    "passive toward the FTP servers", why);
			act_refused = 1;
			act_take_port(s);
			client_resume(s);
		} else {
			client_reply(s, "425 ftpfwd: ssh refused the remote "
			    "forward: %s", why);
			client_resume(s);
		}
		return;
	}
	s->act_state = ACT_OPEN;
	s->act_rport = (uint16_t)r->value;
	logit(LL_DEBUG1, "#%u remote forward %s:%u -> %s", s->id,
	    s->fwd->act_bind, s->act_rport, s->act_path);
	if (for_pasv) {
		if (act_send_port(s, FTP_CMD_OTHER, 1) == -1)
			xl_fail(s, "425 ftpfwd: cannot format the data "
			    "address");
		else
			xl_ready(s);
		return;
	}
	(void)act_send_port(s, s->act_cmd, 0);
	client_resume(s);
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
static void
session_port(struct session *s, enum ftp_cmd cmd, const char *arg,
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
	if (s->epsv_all) {
		client_reply(s, "503 ftpfwd: only EPSV after EPSV ALL");
		return;
	}
	/* No forward on the ssh server for a client that has not logged in. */
	if (!s->logged_in) {
		client_reply(s, "530 ftpfwd: log in with USER and PASS first");
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
	s->act_client = ss;
	addr_host((struct sockaddr *)&ss, s->act_host, sizeof(s->act_host));
	s->act_port = addr_port(&ss);
	s->act_cmd = cmd;
	if (act_to_passive()) {
		act_take_port(s);
		return;
	}
	s->data_mode = MODE_ACTIVE;
	if (s->act_state == ACT_OPEN) {
		(void)act_send_port(s, cmd, 0);
		return;
	}
	if (act_request(s) == -1)
		client_reply(s, "%s", s->xl_err);
}

/*
 * Ask the server for a passive port: EPSV toward IPv6, or where its FEAT
 * lists it; PASV otherwise.  For the client's cmd, or as our own.
 */
static void
pasv_send(struct session *s, enum ftp_cmd cmd, int ours)
{
	enum ftp_cmd	sent = FTP_CMD_PASV;

	if (s->fwd->act_addr.ss_family == AF_INET6 ||
	    (s->up_feat & FTP_FEAT_EPSV))
		sent = FTP_CMD_EPSV;
	evbuffer_add_printf(bufferevent_get_output(s->srv), "%s\r\n",
	    sent == FTP_CMD_EPSV ? "EPSV" : "PASV");
	pending_push(s, ours ? sent : cmd, sent, ours);
}

/*
 * PASV or EPSV from the client.  ftpfwd asks the server in the server's
 * family (EPSV on IPv6, or where FEAT lists it; PASV otherwise) and
 * answers the client in the client's; with PassiveMode=active it
 * answers here and goes active toward the server when the transfer
 * comes.
 */
static void
session_pasv(struct session *s, enum ftp_cmd cmd, const char *arg,
    size_t len)
{
	uint16_t	port;
	int		proto = 0, v6 = s->local_addr.ss_family == AF_INET6;

	if (cmd == FTP_CMD_EPSV) {
		if (ftp_parse_epsv(arg, len, &proto) == -1) {
			client_reply(s, "501 ftpfwd: malformed EPSV argument");
			return;
		}
		if (proto == FTP_EPSV_ALL) {
			/* Ours to keep: the server need not know. */
			s->epsv_all = 1;
			client_reply(s, "200 EPSV ALL ok");
			return;
		}
		if (proto != 0 && proto != (v6 ? 2 : 1)) {
			client_reply(s, "522 Network protocol not supported, "
			    "use (%d)", v6 ? 2 : 1);
			return;
		}
	} else if (s->epsv_all) {
		client_reply(s, "503 ftpfwd: only EPSV after EPSV ALL");
		return;
	} else if (v6) {
		client_reply(s, "425 ftpfwd: PASV cannot name an IPv6 "
		    "address, use EPSV");
		return;
	}
	data_setup_forget(s);
	if (opt.pasv_mode == PM_ACTIVE) {
		struct data_conn	*d;

		if ((d = data_conn_new(s, MODE_PASV_ACT)) == NULL) {
			client_reply(s, "425 ftpfwd: out of memory");
			return;
		}
		d->pairing = 1;
		snprintf(d->target, sizeof(d->target), "the server's PORT");
		if ((port = pasv_answer(s, cmd, MODE_PASV_ACT)) == 0) {
			data_conn_free(d);
			return;
		}
		s->xl = XL_TO_ACTIVE;
		logit(LL_DEBUG1, "#%u passive port %u -> the server's PORT",
		    s->id, port);
		return;
	}
	pasv_send(s, cmd, 0);
}

/* Our PASV/EPSV, or PORT/EPRT, before a transfer: its reply is ours. */
static void
ours_reply(struct session *s, const struct pending *p, int code)
{
	struct data_conn	*d;
	size_t			 len = evbuffer_get_length(s->held);
	char			 why[LOG_TEXT_MAX];

	escape(why, sizeof(why), (char *)evbuffer_pullup(s->held, -1), len);
	if (code < 200 || s->dead)
		goto done;
	if (p->sent == FTP_CMD_PORT || p->sent == FTP_CMD_EPRT) {
		/* The transfer went with it: its own reply will say. */
		if (code >= 300)
			logit(LL_ERROR, "#%u the server refused our %s: %s",
			    s->id, p->sent == FTP_CMD_PORT ? "PORT" : "EPRT",
			    why);
		goto done;
	}
	if (s->xl != XL_TO_PASSIVE || s->xl_state != XL_ASKED)
		goto done;
	if (code != (p->sent == FTP_CMD_PASV ? 227 : 229)) {
		logit(LL_ERROR, "#%u the server refused passive mode: %s",
		    s->id, why);
		xl_fail(s, "425 ftpfwd: the FTP server refused passive mode "
		    "(%d)", code);
		goto done;
	}
	if (pasv_parse(s, (enum ftp_cmd)p->sent) == -1) {
		xl_fail(s, "425 ftpfwd: cannot parse the server's passive "
		    "reply");
		goto done;
	}
	logit(LL_DEBUG1, "#%u active>passive: the server's %s:%u", s->id,
	    s->pasv_host, s->pasv_port);
	if ((d = data_conn_new(s, MODE_ACT_PASV)) == NULL ||
	    data_connect_client(d) == -1) {
		if (d != NULL)
			data_conn_free(d);
		xl_fail(s, "425 ftpfwd: cannot connect to your data port "
		    "%s:%u: %s", s->act_host, s->act_port, strerror(errno));
		goto done;
	}
	s->xl_state = XL_CONNECTING;
 done:
	evbuffer_drain(s->held, len);
}

/*
 * A transfer command while the data connection needs the other mode
 * toward the server: set it up first.  Returns 0 when the command may
 * pass on, 1 when it must wait, -1 when it was answered here.
 */
static int
xl_transfer(struct session *s)
{
	switch (s->xl_state) {
	case XL_IDLE:
		if (s->xl == XL_TO_PASSIVE) {
			pasv_send(s, FTP_CMD_OTHER, 1);
			s->xl_state = XL_ASKED;
			return 1;
		}
		if (s->act_state == ACT_OPEN) {
			/* PORT and the transfer go together: no wait. */
			if (act_send_port(s, FTP_CMD_OTHER, 1) == -1) {
				s->xl = XL_NONE;
				return -1;
			}
			break;
		}
		s->xl_state = XL_ASKED;
		if (act_request(s) == 0)
			return 1;
		/* FALLTHROUGH */
	case XL_FAILED:
		client_reply(s, "%s", s->xl_err);
		s->xl = XL_NONE;
		s->xl_state = XL_IDLE;
		return -1;
	case XL_READY:
		break;
	default:
		return 1;
	}
	s->data_mode = s->xl == XL_TO_PASSIVE ? MODE_ACT_PASV : MODE_PASV_ACT;
	s->xl = XL_NONE;
	s->xl_state = XL_IDLE;
	return 0;
}

/*
 * AUTH from the client: 234 and TLS with ClientTLS=explicit, else 534.
 * Returns 1 when TLS has started and the input buffer is another one.
 */
static int
session_auth(struct session *s, const char *arg, size_t len,
    struct evbuffer *in, size_t total)
{
	/* arg points into in: judge it before the line goes. */
	int	tls = ftp_parse_auth(arg, len) == 0;

	evbuffer_drain(in, total);
	if (opt.cl_tls != TLS_EXPLICIT) {
		client_reply(s, "534 ftpfwd: TLS is not available through "
		    "this forward; the ssh connection already encrypts the "
		    "control connection");
		return 0;
	}
	if (s->cl_tls) {
		client_reply(s, "503 ftpfwd: TLS is already on");
		return 0;
	}
	if (s->cin != s->cout) {
		client_reply(s, "534 ftpfwd: TLS needs a socket, not pipes");
		return 0;
	}
	if (!tls) {
		client_reply(s, "504 ftpfwd: only AUTH TLS is supported");
		return 0;
	}
	client_reply(s, "234 AUTH TLS successful");
	if (client_tls_start(s) == -1) {
		session_end(s, "cannot start TLS");
		return 1;
	}
	s->cl_prot = 'C';
	logit(LL_DEBUG1, "#%u client TLS handshake", s->id);
	return 1;
}

/* PBSZ and PROT, which ftpfwd answers when it does TLS on either side. */
static void
session_prot(struct session *s, enum ftp_cmd cmd, const char *arg,
    size_t len)
{
	char	level;

	if (!s->cl_tls) {
		client_reply(s, "503 ftpfwd: %s needs AUTH TLS first",
		    cmd == FTP_CMD_PBSZ ? "PBSZ" : "PROT");
		return;
	}
	if (cmd == FTP_CMD_PBSZ) {
		client_reply(s, "200 PBSZ=0");
		return;
	}
	if (ftp_parse_prot(arg, len, &level) == -1) {
		client_reply(s, "504 ftpfwd: PROT takes C or P");
		return;
	}
	if (level != 'C' && level != 'P') {
		client_reply(s, "536 ftpfwd: PROT %c is not supported, use C "
		    "or P", level);
		return;
	}
	s->cl_prot = level;
	client_reply(s, "200 Protection level set to %c", level);
}

/*
 * Client lines.  Most pass byte for byte; PORT/EPRT are rewritten, AUTH
 * and LPRT/LPSV answered here.  Those wait until every earlier command
 * has had its reply, so our own replies never overtake the server's.
 */
static void
session_client_input(struct session *s)
{
	struct evbuffer		*in = bufferevent_get_input(s->cin);
	struct evbuffer		*out = bufferevent_get_output(s->srv);
	enum ftp_cmd		 cmd;
	size_t			 total, linelen, argoff;
	char			*line, verb[FTP_VERB_MAX + 1], u[LOG_TEXT_MAX];
	int			 partial, local, toolong, r;

	while (!s->dead && !s->closing && s->act_state != ACT_OPENING &&
	    !xl_busy(s) && !s->c_wait && evbuffer_get_length(in) > 0) {
		if (s->c_longline || s->c_discard) {
			if (line_rest(in, s->c_discard ? NULL : out))
				s->c_longline = s->c_discard = 0;
			continue;
		}
		if (next_line(in, &line, &linelen, &total, &partial) == -1)
			break;
		toolong = partial || linelen == FTP_LINE_MAX;
		if (ftp_cmd_parse(line, linelen, &cmd, verb, sizeof(verb),
		    &argoff) == -1) {
			cmd = FTP_CMD_OTHER;
			snprintf(verb, sizeof(verb), "%s", "?");
			argoff = linelen;
		}
		logit(LL_DEBUG2, "#%u client %s (%u replies due)", s->id,
		    verb, s->pcount);
		local = cmd == FTP_CMD_PORT || cmd == FTP_CMD_EPRT ||
		    cmd == FTP_CMD_PASV || cmd == FTP_CMD_EPSV ||
		    cmd == FTP_CMD_AUTH || cmd == FTP_CMD_LPRT ||
		    cmd == FTP_CMD_LPSV || ((cmd == FTP_CMD_PBSZ ||
		    cmd == FTP_CMD_PROT) && (opt.cl_tls || opt.up_tls)) ||
		    (cmd == FTP_CMD_TRANSFER && s->xl != XL_NONE);
		if ((local && s->pcount > 0) || s->pcount == PENDING_MAX) {
			s->c_wait = 1;
			break;
		}
		if (local && toolong) {
			client_reply(s, "500 ftpfwd: command line too long");
			s->c_discard = partial;
			evbuffer_drain(in, total);
			continue;
		}
		switch (cmd) {
		case FTP_CMD_PORT:
		case FTP_CMD_EPRT:
			session_port(s, cmd, line + argoff, linelen - argoff);
			evbuffer_drain(in, total);
			continue;
		case FTP_CMD_AUTH:
			if (session_auth(s, line + argoff, linelen - argoff,
			    in, total) == 1)
				return;		/* TLS now: a new buffer */
			continue;
		case FTP_CMD_PBSZ:
		case FTP_CMD_PROT:
			session_prot(s, cmd, line + argoff, linelen - argoff);
			evbuffer_drain(in, total);
			continue;
		case FTP_CMD_LPRT:
		case FTP_CMD_LPSV:
			client_reply(s, "502 ftpfwd: %s is not supported, use "
			    "EPRT or EPSV", verb);
			evbuffer_drain(in, total);
			continue;
		case FTP_CMD_PASV:
		case FTP_CMD_EPSV:
			session_pasv(s, cmd, line + argoff, linelen - argoff);
			evbuffer_drain(in, total);
			continue;
		case FTP_CMD_TRANSFER:
			if (s->xl != XL_NONE) {
				if ((r = xl_transfer(s)) == 1)
					return;	/* the line waits */
				if (r == -1) {
					evbuffer_drain(in, total);
					continue;
				}
			}
			snprintf(s->xfer_verb, sizeof(s->xfer_verb), "%s",
			    verb);
			break;
		case FTP_CMD_ABOR:
			/*
			 * The Telnet Synch that should wake the server (TCP
			 * urgent data) cannot cross an ssh channel, and
			 * vsftpd reads ABOR only once the data connection
			 * breaks.  Closing our links to the passive data
			 * channels makes the master break it for us.
			 */
			if (s->xfer_running)
				data_conns_free(s);
			break;
		case FTP_CMD_REIN:
			s->logged_in = 0;
			break;
		case FTP_CMD_USER:
			logit(LL_VERBOSE, "#%u user %s", s->id, escape(u,
			    sizeof(u), line + argoff, linelen - argoff));
			escape(s->user, sizeof(s->user), line + argoff,
			    linelen - argoff);
			break;
		default:
			break;
		}
		/* PASS and everything else: never logged, passed as is. */
		pending_push(s, cmd, cmd, 0);
		s->c_longline = partial;
		evbuffer_remove_buffer(in, out, total);
	}
}

/* After the client's EOF: close once no reply is owed any more. */
static void
client_eof_done(struct session *s)
{
	if (s->c_eof && !s->dead && s->pcount == 0 && !s->c_wait &&
	    s->act_state != ACT_OPENING && !xl_busy(s))
		session_close(s, NULL);
}

static void
client_read_cb(struct bufferevent *bev, void *arg)
{
	struct session	*s = arg;

	(void)bev;
	idle_reset(s);
	session_client_input(s);
}

static void
server_read_cb(struct bufferevent *bev, void *arg)
{
	struct session	*s = arg;

	(void)bev;
	idle_reset(s);
	session_server_input(s);
}

/* Bytes still to go out: a TLS filter's own and its socket's. */
static size_t
bev_unsent(struct bufferevent *bev)
{
	struct bufferevent	*under;
	size_t			 n;

	n = evbuffer_get_length(bufferevent_get_output(bev));
	if ((under = bufferevent_get_underlying(bev)) != NULL)
		n += evbuffer_get_length(bufferevent_get_output(under));
	return n;
}

static void
drain_poll_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session	*s = arg;

	(void)fd;
	(void)what;
	client_write_cb(s->cout, s);
}

/* Output drained: resume reading the other side, or finish closing. */
static void
client_write_cb(struct bufferevent *bev, void *arg)
{
	struct session	*s = arg;
	struct timeval	 tv = { 0, DRAIN_POLL_MS * 1000 };
	SSL		*ssl;

	if (s->closing) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) != 0 ||
		    (s->srv != NULL && evbuffer_get_length(
		    bufferevent_get_output(s->srv)) != 0))
			return;
		/*
		 * TLS: say close_notify, and let the socket send it all.  A
		 * full socket keeps it back: the poll below tries again.
		 */
		if (s->cl_tls && !s->cl_shut &&
		    (ssl = bufferevent_openssl_get_ssl(bev)) != NULL)
			s->cl_shut = tls_close_notify(ssl) == 0;
		if ((!s->cl_tls || s->cl_shut) && bev_unsent(bev) == 0) {
			session_end(s, NULL);
			return;
		}
		/* The socket under the filter does not tell us: poll. */
		if (s->drain_poll_ev == NULL)
			s->drain_poll_ev = evtimer_new(base, drain_poll_cb, s);
		if (s->drain_poll_ev != NULL)
			evtimer_add(s->drain_poll_ev, &tv);
		return;
	}
	if (s->srv != NULL && !s->srv_eof &&
	    evbuffer_get_length(bufferevent_get_output(bev)) < CTL_BUF_HIGH)
		bufferevent_enable(s->srv, EV_READ);
}

static void
server_write_cb(struct bufferevent *bev, void *arg)
{
	struct session	*s = arg;

	(void)bev;
	if (s->closing)
		client_write_cb(s->cout, s);
}

static void
client_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct session	*s = arg;
	char		 why[LOG_TEXT_MAX];

	if ((what & BEV_EVENT_ERROR) && s->cl_tls) {
		session_end(s, tls_error(bev, why, sizeof(why)));
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		session_end(s, strerror(EVUTIL_SOCKET_ERROR()));
		return;
	}
	if (what & BEV_EVENT_EOF) {
		/*
		 * The client has said all it will (QUIT, then EOF; or a
		 * script on a pipe): pass on what it sent and stay for the
		 * replies it is owed.
		 */
		s->c_eof = 1;
		bufferevent_disable(s->cin, EV_READ);
		session_client_input(s);
		client_eof_done(s);
	}
}

/* Is anything listening at the ControlPath?  A connect, no round trip. */
static int
master_alive(void)
{
	char	err[256];
	int	fd;

	if ((fd = mux_connect_fd(opt.ctl_path, err, sizeof(err))) == -1)
		return 0;
	close(fd);
	return 1;
}

static void
server_eof_judge(evutil_socket_t fd, short what, void *arg)
{
	struct session	*s = arg;

	(void)fd;
	(void)what;
	if ((master_pid == 0 && watch_mux == NULL) || !master_alive())
		session_close(s, "421 ftpfwd: ssh connection closed");
	else
		session_close(s, "421 ftpfwd: the FTP server closed the "
		    "control connection");
}

/* The server side has closed, and the master confirmed it was open. */
static void
server_eof(struct session *s)
{
	struct timeval	judge = { 0, EOF_JUDGE_MS * 1000 };

	session_server_input(s);
	if (s->last_code == 221 || s->last_code == 421) {
		session_close(s, NULL);
		return;
	}
	/*
	 * The server hung up, or the master died: a killed master's
	 * descriptors close one by one, so its control socket may still
	 * accept for a moment.  Look a little later.
	 */
	if ((s->eof_ev = evtimer_new(base, server_eof_judge, s)) == NULL ||
	    evtimer_add(s->eof_ev, &judge) != 0)
		server_eof_judge(-1, 0, s);
}

static void
server_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct session	*s = arg;
	char		 why[LOG_TEXT_MAX];

	if ((what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) == 0 || s->srv_eof)
		return;
	if ((what & BEV_EVENT_ERROR) && s->up_ssl != NULL &&
	    bufferevent_openssl_get_ssl(bev) != NULL) {
		s->srv_eof = 1;
		upstream_fail(s, "TLS to the FTP server %s failed: %s",
		    up_name(s), tls_error(bev, why, sizeof(why)));
		return;
	}
	s->srv_eof = 1;
	bufferevent_disable(s->srv, EV_READ);
	/* Before the master's verdict on the forward, that says why. */
	if (s->srv_open)
		server_eof(s);
}

static void
ctl_mux_cb(struct mux_conn *mc, enum mux_event ev, const struct mux_reply *r,
    void *arg)
{
	struct session	*s = arg;
	char		 why[LOG_TEXT_MAX], reply[LOG_TEXT_MAX + 128];

	(void)mc;
	switch (ev) {
	case MUX_EV_SESSION_OPENED:
		s->srv_open = 1;
		logit(LL_DEBUG1, "#%u control connection to %s:%u is up",
		    s->id, s->fwd->host, s->fwd->port);
		if (s->srv_eof)
			server_eof(s);
		break;
	case MUX_EV_FAILURE:
	case MUX_EV_CLOSED:
		if (s->srv_open)
			break;	/* the server's EOF on srv says the rest */
		escape(why, sizeof(why), r->reason, r->reason_len);
		logit(LL_ERROR, "#%u cannot reach %s:%u through ssh: %s",
		    s->id, s->fwd->host, s->fwd->port, why);
		snprintf(reply, sizeof(reply), "421 ftpfwd: cannot reach "
		    "%s:%u through ssh: %s", s->fwd->host, s->fwd->port, why);
		session_close(s, reply);
		break;
	default:
		break;
	}
}

static void
drain_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	session_end(arg, "could not flush in time");
}

/*
 * Stop reading, say a last word to the client if there is one, and end
 * the session once both directions are flushed.
 */
static void
session_close(struct session *s, const char *reply)
{
	struct timeval	tv = { DRAIN_TIMEOUT, 0 };

	if (s->dead)
		return;
	if (reply != NULL && !s->closing)
		client_reply(s, "%s", reply);
	if (s->closing)
		return;
	s->closing = 1;
	bufferevent_disable(s->cin, EV_READ);
	if (s->srv != NULL)
		bufferevent_disable(s->srv, EV_READ);
	if ((s->drain_ev = evtimer_new(base, drain_timeout_cb, s)) != NULL)
		evtimer_add(s->drain_ev, &tv);
	client_write_cb(s->cout, s);
}

static void
closer_cb(struct mux_conn *mc, enum mux_event ev, const struct mux_reply *r,
    void *arg)
{
	uint32_t	*rid = arg;

	if (ev == MUX_EV_CLOSED || (r != NULL && r->rid == *rid &&
	    (ev == MUX_EV_OK || ev == MUX_EV_FAILURE))) {
		free(rid);
		mux_free(mc);
	}
}

static void
session_free(evutil_socket_t fd, short what, void *arg)
{
	struct session	*s = arg;

	(void)fd;
	(void)what;
	if (s->cout != NULL && s->cout != s->cin)
		bufferevent_free(s->cout);
	if (s->cin != NULL)
		bufferevent_free(s->cin);
	if (s->srv != NULL)
		bufferevent_free(s->srv);
	if (s->held != NULL)
		evbuffer_free(s->held);
	if (s->banner != NULL)
		evbuffer_free(s->banner);
	if (s->idle_ev != NULL)
		event_free(s->idle_ev);
	if (s->drain_ev != NULL)
		event_free(s->drain_ev);
	if (s->drain_poll_ev != NULL)
		event_free(s->drain_poll_ev);
	if (s->eof_ev != NULL)
		event_free(s->eof_ev);
	free(s);
	if (opt.stdio_mode || (shutting_down && TAILQ_EMPTY(&sessions)))
		event_base_loopexit(base, NULL);
}

/*
 * The one way out for a session: release everything it opened and free
 * it from the loop, never inside the callback that got us here.
 */
static void
session_end(struct session *s, const char *why)
{
	uint32_t	*rid;

	if (s->dead)
		return;
	s->dead = 1;
	logit(LL_INFO, "#%u session from %s ended%s%s (%lds, %u transfers)",
	    s->id, s->client_str, why != NULL ? ": " : "",
	    why != NULL ? why : "", (long)(time(NULL) - s->started),
	    s->nxfers);
	TAILQ_REMOVE(&sessions, s, entry);
	nsessions--;

	if (s->cin != NULL)
		bufferevent_disable(s->cin, EV_READ | EV_WRITE);
	if (s->cout != NULL)
		bufferevent_disable(s->cout, EV_READ | EV_WRITE);
	if (s->srv != NULL)
		bufferevent_disable(s->srv, EV_READ | EV_WRITE);
	if (s->idle_ev != NULL)
		event_del(s->idle_ev);
	if (s->drain_ev != NULL)
		event_del(s->drain_ev);
	if (s->drain_poll_ev != NULL)
		event_del(s->drain_poll_ev);
	if (s->eof_ev != NULL)
		event_del(s->eof_ev);
	pasv_close(s);
	data_conns_free(s);
	mux_free(s->ctl_mux);
	act_listen_close(s);
	if (s->fwd_mux != NULL) {
		if (s->act_state != ACT_NONE &&
		    (rid = malloc(sizeof(*rid))) != NULL) {
			/* Let the cancel reach the master, then go. */
			mux_set_cb(s->fwd_mux, closer_cb, rid);
			if (mux_close_rfwd_path(s->fwd_mux, s->fwd->act_bind, 0,
			    s->act_path, rid) == 0)
				s->fwd_mux = NULL;
			else
				free(rid);
		}
		if (s->fwd_mux != NULL)
			mux_free(s->fwd_mux);
	}
	if (event_base_once(base, -1, EV_TIMEOUT, session_free, s, NULL) == -1)
		logit(LL_ERROR, "#%u cannot schedule free", s->id);
}

/*
 * A new client: connect its control to the FTP server through a stdio
 * forward of the master, carried by a socketpair.
 */
static void
session_start(struct forward *fwd, int cin_fd, int cout_fd,
    const struct sockaddr_storage *peer, const struct sockaddr_storage *local)
{
	struct session	*s;
	char		 err[256], reply[512];
	int		 sp[2] = { -1, -1 };
	uint32_t	 rid;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		close(cin_fd);
		if (cout_fd != cin_fd)
			close(cout_fd);
		return;
	}
	s->id = next_session_id++;
	s->fwd = fwd;
	s->started = time(NULL);
	s->pasv_fd = -1;
	s->act_lfd = -1;
	s->client_addr = *peer;
	s->local_addr = *local;
	addr_unmap(&s->client_addr);
	addr_unmap(&s->local_addr);
	addr_host((struct sockaddr *)&s->client_addr, s->client_str,
	    sizeof(s->client_str));
	TAILQ_INIT(&s->data);
	TAILQ_INSERT_TAIL(&sessions, s, entry);
	nsessions++;

	if ((s->cin = bufferevent_socket_new(base, cin_fd,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		close(cin_fd);
		if (cout_fd != cin_fd)
			close(cout_fd);
		goto fail;
	}
	if (cout_fd == cin_fd)
		s->cout = s->cin;
	else if ((s->cout = bufferevent_socket_new(base, cout_fd,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		close(cout_fd);
		goto fail;
	}
	if ((s->held = evbuffer_new()) == NULL ||
	    (s->banner = evbuffer_new()) == NULL ||
	    (s->idle_ev = evtimer_new(base, idle_cb, s)) == NULL)
		goto fail;
	bufferevent_setcb(s->cin, client_read_cb, NULL, client_event_cb, s);
	if (s->cout != s->cin)
		bufferevent_setcb(s->cout, NULL, client_write_cb,
		    client_event_cb, s);
	else
		bufferevent_setcb(s->cin, client_read_cb, client_write_cb,
		    client_event_cb, s);
	bufferevent_setwatermark(s->cin, EV_READ, 0, CTL_BUF_HIGH);
	logit(LL_INFO, "#%u session from %s to %s:%u", s->id,
	    addr_str(peer, err, sizeof(err)),
	    fwd->host, fwd->port);

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == -1) {
		snprintf(err, sizeof(err), "socketpair: %s", strerror(errno));
		goto fail_reply;
	}
	if ((s->srv = bufferevent_socket_new(base, sp[0],
	    BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		close(sp[0]);
		close(sp[1]);
		snprintf(err, sizeof(err), "out of memory");
		goto fail_reply;
	}
	evutil_make_socket_nonblocking(sp[0]);
	bufferevent_setcb(s->srv, server_read_cb, server_write_cb,
	    server_event_cb, s);
	bufferevent_setwatermark(s->srv, EV_READ, 0, CTL_BUF_HIGH);
	if ((s->ctl_mux = mux_open(base, opt.ctl_path, ctl_mux_cb, s, err,
	    sizeof(err))) == NULL) {
		close(sp[1]);
		goto fail_reply;
	}
	if (mux_stdio_fwd(s->ctl_mux, fwd->host, fwd->port, sp[1], &rid) ==
	    -1) {
		snprintf(err, sizeof(err), "cannot send the request");
		goto fail_reply;
	}
	pending_push(s, FTP_CMD_OTHER, FTP_CMD_OTHER, 0);	/* greeting */
	if (opt.up_tls != TLS_OFF) {
		s->up_phase = UP_BANNER;
		if (opt.up_tls == TLS_IMPLICIT && srv_tls_start(s) == -1) {
			snprintf(err, sizeof(err), "cannot start TLS");
			goto fail_reply;
		}
		if (!opt.up_verify)
			logit(LL_ERROR, "#%u WARNING: the FTP server's "
			    "certificate is not verified (UpstreamVerify=no)",
			    s->id);
	}
	if (opt.cl_tls == TLS_IMPLICIT) {
		if (client_tls_start(s) == -1) {
			session_end(s, "cannot start TLS toward the client");
			return;
		}
		s->cl_prot = 'P';
	}
	bufferevent_enable(s->cin, EV_READ);
	bufferevent_enable(s->srv, EV_READ);
	idle_reset(s);
	return;

 fail_reply:
	logit(LL_ERROR, "#%u no connection through the ssh master at %s: %s",
	    s->id, opt.ctl_path, err);
	snprintf(reply, sizeof(reply), "421 ftpfwd: no connection through "
	    "the ssh master: %s", err);
	session_close(s, reply);
	return;
 fail:
	session_end(s, "out of memory");
}

static void
listeners_enable(int on)
{
	int	i, j;

	for (i = 0; i < opt.nfwds; i++) {
		for (j = 0; j < opt.fwds[i].nfds; j++) {
			if (opt.fwds[i].lev[j] == NULL)
				continue;
			if (on)
				evconnlistener_enable(opt.fwds[i].lev[j]);
			else
				evconnlistener_disable(opt.fwds[i].lev[j]);
		}
	}
}

/*
 * Are FD_RESERVE more descriptors to be had?  A session needs several at
 * once (client, socketpair, mux links, a passive listener); accepting a
 * client we cannot serve would only turn it away with 421, while one left
 * in the listen queue is served as soon as descriptors free up.
 */
static int
fd_headroom(void)
{
	int	fds[FD_RESERVE], n, ok;

	for (n = 0; n < FD_RESERVE; n++)
		if ((fds[n] = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 0)) == -1)
			break;
	ok = n == FD_RESERVE;
	while (n-- > 0)
		close(fds[n]);
	return ok;
}

/* Accept again once descriptors are back; look again later if not. */
static void
accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct timeval	tv = { ACCEPT_BACKOFF, 0 };

	(void)fd;
	(void)what;
	(void)arg;
	if (shutting_down)
		return;
	if (!fd_headroom()) {
		evtimer_add(accept_ev, &tv);
		return;
	}
	logit(LL_INFO, "descriptors available again, accepting");
	listeners_enable(1);
}

static void
accept_pause(const char *why)
{
	struct timeval	tv = { ACCEPT_BACKOFF, 0 };

	logit(LL_ERROR, "%s; not accepting for now", why);
	listeners_enable(0);
	evtimer_add(accept_ev, &tv);
}

/* Out of descriptors: stop accepting for a while instead of spinning. */
static void
accept_error_cb(struct evconnlistener *lev, void *arg)
{
	int	err = EVUTIL_SOCKET_ERROR();

	(void)lev;
	(void)arg;
	if (err != EMFILE && err != ENFILE && err != ENOBUFS &&
	    err != ENOMEM) {
		logit(LL_DEBUG1, "accept: %s", strerror(err));
		return;
	}
	accept_pause(strerror(err));
}

static void
accept_cb(struct evconnlistener *lev, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	static const char	 busy[] = "421 Too many sessions, try again "
	    "later\r\n";
	struct sockaddr_storage	 peer, local;
	socklen_t		 llen = sizeof(local);

	(void)lev;
	memset(&peer, 0, sizeof(peer));
	memcpy(&peer, sa, (size_t)salen < sizeof(peer) ? (size_t)salen :
	    sizeof(peer));
	if (shutting_down || nsessions >= opt.max_sessions) {
		(void)send(fd, busy, sizeof(busy) - 1,
		    MSG_DONTWAIT | MSG_NOSIGNAL);
		close(fd);
		logit(LL_ERROR, "refused a client: %u sessions already",
		    nsessions);
		return;
	}
	if (getsockname(fd, (struct sockaddr *)&local, &llen) == -1) {
		close(fd);
		return;
	}
	set_socket_opts(fd);
	session_start(arg, fd, fd, &peer, &local);
	if (!fd_headroom())
		accept_pause("few file descriptors left");
}

/* Tell every client, then leave. */
static void
shutdown_all(const char *reply)
{
	struct session	*s, *next;

	shutting_down = 1;
	listeners_enable(0);
	for (s = TAILQ_FIRST(&sessions); s != NULL; s = next) {
		next = TAILQ_NEXT(s, entry);
		session_close(s, reply);
	}
	if (TAILQ_EMPTY(&sessions))
		event_base_loopexit(base, NULL);
}

/* SIGUSR1: one line per live session, for whoever wonders what runs. */
static void
status_cb(evutil_socket_t sig, short what, void *arg)
{
	struct session		*s;
	struct data_conn	*d;
	uint64_t		 bytes;
	int			 counted;
	char			 xfer[128];

	(void)sig;
	(void)what;
	(void)arg;
	logit(LL_INFO, "%u session%s, master at %s", nsessions,
	    nsessions == 1 ? "" : "s", opt.ctl_path);
	TAILQ_FOREACH(s, &sessions, entry) {
		bytes = 0;
		counted = 0;
		TAILQ_FOREACH(d, &s->data, entry) {
			if (d->join != NULL)
				bytes += join_bytes(d->join);
			if (d->relay != NULL)
				bytes += relay_bytes(d->relay);
			counted |= d->join != NULL || d->relay != NULL;
		}
		if (!s->xfer_running)
			snprintf(xfer, sizeof(xfer), "no transfer");
		else if (counted)
			snprintf(xfer, sizeof(xfer), "%s %s for %.1fs, %llu "
			    "bytes", s->xfer_verb, s->data_mode != NULL ?
			    s->data_mode : "-", elapsed_since(&s->xfer_start),
			    (unsigned long long)bytes);
		else
			snprintf(xfer, sizeof(xfer), "%s %s for %.1fs (bytes "
			    "moved by the master)", s->xfer_verb,
			    s->data_mode != NULL ? s->data_mode : "-",
			    elapsed_since(&s->xfer_start));
		logit(LL_INFO, "#%u %s user %s, %s, up %lds, %u transfers, %s",
		    s->id, s->client_str, s->user[0] != '\0' ? s->user : "-",
		    s->closing ? "closing" : s->logged_in ? "logged in" :
		    "not logged in", (long)(time(NULL) - s->started),
		    s->nxfers, xfer);
	}
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	(void)arg;
	logit(LL_INFO, "%s, exiting", strsignal((int)sig));
	shutdown_all("421 ftpfwd: shutting down");
}

static void	watch_open(void);

static void
nodelay_cb(struct mux_conn *mc, enum mux_event ev, const struct mux_reply *r,
    void *arg)
{
	char	why[LOG_TEXT_MAX];

	(void)arg;
	switch (ev) {
	case MUX_EV_SESSION_OPENED:
		logit(LL_DEBUG1, "sshd runs a session: TCP_NODELAY is on");
		break;
	case MUX_EV_FAILURE:
		logit(LL_VERBOSE, "cannot start a session on the master, small "
		    "transfers may wait for delayed ACKs: %s", escape(why,
		    sizeof(why), r->reason, r->reason_len));
		mux_free(mc);
		break;
	case MUX_EV_EXIT:
		/* As ssh's own client does: the session is over, hang up. */
		logit(LL_VERBOSE, "the TCP_NODELAY session exited with %u",
		    r->value);
		mux_free(mc);
		break;
	case MUX_EV_CLOSED:
		mux_free(mc);
		break;
	default:
		break;
	}
}

/*
 * OpenSSH before 10.1 sets TCP_NODELAY only when a session starts, so a
 * master started with -N leaves Nagle on in sshd: a small reply then
 * waits 40 ms for a delayed ACK, measured at 97 ms per small file in
 * passive mode against 4 ms after one session.  Run "true" once per
 * master; any command sshd executes turns Nagle off for good.
 */
static void
nodelay_session(void)
{
	struct mux_conn	*mc;
	char		 err[256];
	uint32_t	 rid;
	int		 fd;

	if (!opt.tcp_nodelay)
		return;
	if ((fd = open("/dev/null", O_RDWR | O_CLOEXEC)) == -1)
		return;
	if ((mc = mux_open(base, opt.ctl_path, nodelay_cb, NULL, err,
	    sizeof(err))) == NULL) {
		close(fd);
		return;
	}
	if (mux_new_session(mc, "true", fd, &rid) == -1)
		mux_free(mc);
}

static void
master_gone(const char *why)
{
	char	reply[256];

	logit(LL_INFO, "ssh master at %s went away: %s", opt.ctl_path, why);
	if (opt.exit_with_master) {
		snprintf(reply, sizeof(reply), "421 ftpfwd: ssh connection to "
		    "%s closed", opt.destination != NULL ? opt.destination :
		    opt.ctl_path);
		shutdown_all(reply);
		return;
	}
	watch_open();
}

static void
master_exit_cb(evutil_socket_t fd, short what, void *arg)
{
	struct timeval	tv = { 0, MASTER_POLL_MS * 1000 };

	(void)what;
	(void)arg;
	if (master_pidfd == -1 && kill(master_pid, 0) == 0) {
		evtimer_add(master_ev, &tv);	/* no pidfd: look again */
		return;
	}
	event_free(master_ev);
	master_ev = NULL;
	if (fd != -1 && master_pidfd != -1) {
		close(master_pidfd);
		master_pidfd = -1;
	}
	master_pid = 0;
	master_gone("it exited");
}

/*
 * Watch the master's process, not a mux connection: an open mux client
 * counts as a live channel, and would keep a master with ControlPersist
 * set to a timeout from ever expiring.
 */
static void
master_watch(pid_t pid)
{
	struct timeval	tv = { 0, MASTER_POLL_MS * 1000 };

	master_pid = pid;
	act_refused = 0;	/* ActiveMode=auto: a new master, a new try */
#ifdef SYS_pidfd_open
	master_pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
#endif
	if (master_pidfd != -1) {
		if ((master_ev = event_new(base, master_pidfd, EV_READ,
		    master_exit_cb, NULL)) != NULL &&
		    event_add(master_ev, NULL) == 0)
			return;
	} else if ((master_ev = evtimer_new(base, master_exit_cb, NULL)) !=
	    NULL && evtimer_add(master_ev, &tv) == 0)
		return;
	die(EXIT_USAGE, "cannot watch the master (pid %ld)", (long)pid);
}

static void
watch_mux_cb(struct mux_conn *mc, enum mux_event ev,
    const struct mux_reply *r, void *arg)
{
	char		why[LOG_TEXT_MAX];
	uint32_t	rid;

	(void)arg;
	switch (ev) {
	case MUX_EV_READY:
		logit(LL_DEBUG1, "master at %s answers", opt.ctl_path);
		nodelay_session();
		if (mux_alive_check(mc, &rid) == 0)
			return;
		snprintf(why, sizeof(why), "cannot ask for its pid");
		break;
	case MUX_EV_ALIVE:
		/* kill(0 or 1, 0) would answer "alive" for ever. */
		if (r->value <= 1 || r->value > INT32_MAX) {
			snprintf(why, sizeof(why), "it gave an impossible pid "
			    "(%u)", r->value);
			break;
		}
		logit(LL_VERBOSE, "master at %s is pid %u", opt.ctl_path,
		    r->value);
		mux_free(mc);
		watch_mux = NULL;
		master_watch((pid_t)r->value);
		return;
	case MUX_EV_CLOSED:
	case MUX_EV_FAILURE:
		escape(why, sizeof(why), r->reason, r->reason_len);
		break;
	default:
		return;
	}
	mux_free(mc);
	watch_mux = NULL;
	master_gone(why);
}

static void
retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	watch_open();
}

/* Keep one mux connection to the master, to learn when it goes. */
static void
watch_open(void)
{
	struct timeval	tv = { MASTER_RETRY, 0 };
	char		err[256];

	if ((watch_mux = mux_open(base, opt.ctl_path, watch_mux_cb, NULL, err,
	    sizeof(err))) == NULL) {
		logit(LL_DEBUG1, "no master at %s yet: %s", opt.ctl_path, err);
		evtimer_add(retry_ev, &tv);
	}
}

/* Split on ':' outside brackets, as ssh's -L does. */
static int
split_colons(char *s, char **fields, int max)
{
	int	n = 0, depth = 0;

	fields[n++] = s;
	for (; *s != '\0'; s++) {
		if (*s == '[')
			depth++;
		else if (*s == ']')
			depth--;
		else if (*s == ':' && depth == 0) {
			if (n == max)
				return -1;
			*s = '\0';
			fields[n++] = s + 1;
		}
	}
	return depth == 0 ? n : -1;
}

static char *
unbracket(char *s)
{
	size_t	len = strlen(s);

	if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
		s[len - 1] = '\0';
		return s + 1;
	}
	return s;
}

static int
parse_port_str(const char *s, int zero_ok, uint16_t *portp)
{
	unsigned long	v;

	if (ftp_parse_uint(s, strlen(s), 65535, &v) == -1 ||
	    (v == 0 && !zero_ok))
		return -1;
	*portp = (uint16_t)v;
	return 0;
}

static void
parse_forward(const char *spec, struct forward *f, int is_w)
{
	char	*copy, *fld[4], *bind = NULL, *host;
	int	 n, i = 0;

	if ((copy = strdup(spec)) == NULL)
		die(EXIT_USAGE, "out of memory");
	n = split_colons(copy, fld, 4);
	if (is_w ? n != 2 : (n != 3 && n != 4))
		die(EXIT_USAGE, "bad %s specification \"%s\" (expected %s)",
		    is_w ? "-W" : "-L", spec, is_w ? "host:port" :
		    "[bind_address:]port:host:hostport");
	memset(f, 0, sizeof(*f));
	f->claim_fd = -1;
	if (!is_w) {
		if (n == 4) {
			bind = unbracket(fld[i++]);
			if (*bind == '\0' || strcmp(bind, "*") == 0)
				bind = NULL;
		} else
			bind = "127.0.0.1";
		if (parse_port_str(fld[i++], 1, &f->bind_port) == -1)
			die(EXIT_USAGE, "bad listen port in -L %s", spec);
		if (bind != NULL && (f->bind_host = strdup(bind)) == NULL)
			die(EXIT_USAGE, "out of memory");
	}
	host = unbracket(fld[i++]);
	if (*host == '\0' || strlen(host) >= NI_MAXHOST)
		die(EXIT_USAGE, "bad host in %s %s", is_w ? "-W" : "-L", spec);
	if ((f->host = strdup(host)) == NULL)
		die(EXIT_USAGE, "out of memory");
	if (parse_port_str(fld[i], 0, &f->port) == -1)
		die(EXIT_USAGE, "bad port \"%s\" in %s %s (1 to 65535)",
		    fld[i], is_w ? "-W" : "-L", spec);
	free(copy);
}

static int
parse_yesno(const char *name, const char *v)
{
	if (strcasecmp(v, "yes") == 0)
		return 1;
	if (strcasecmp(v, "no") == 0)
		return 0;
	die(EXIT_USAGE, "%s must be yes or no, not \"%s\"", name, v);
}

static enum tls_mode
parse_tls_mode(const char *name, const char *v)
{
	if (strcasecmp(v, "off") == 0 || strcasecmp(v, "no") == 0)
		return TLS_OFF;
	if (strcasecmp(v, "explicit") == 0)
		return TLS_EXPLICIT;
	if (strcasecmp(v, "implicit") == 0)
		return TLS_IMPLICIT;
	die(EXIT_USAGE, "%s must be off, explicit or implicit, not \"%s\"",
	    name, v);
	return TLS_OFF;
}

static void
set_string(char **where, const char *v)
{
	free(*where);
	if ((*where = strdup(v)) == NULL)
		die(EXIT_USAGE, "out of memory");
}

static void
parse_option(const char *arg)
{
	char		 name[64], *value;
	const char	*eq;
	unsigned long	 v;
	size_t		 nlen, i;

	if ((eq = strpbrk(arg, "= ")) == NULL || (nlen = (size_t)(eq - arg)) ==
	    0 || nlen >= sizeof(name))
		die(EXIT_USAGE, "bad option \"%s\" (expected Name=value)",
		    arg);
	memcpy(name, arg, nlen);
	name[nlen] = '\0';
	value = (char *)eq + 1;
	if (strcasecmp(name, "ActiveBindAddress") == 0)
		set_string(&opt.active_bind, value);
	else if (strcasecmp(name, "ActiveMode") == 0) {
		for (i = 0; i < sizeof(act_modes) / sizeof(act_modes[0]); i++)
			if (strcasecmp(value, act_modes[i]) == 0)
				break;
		if (i == sizeof(act_modes) / sizeof(act_modes[0]))
			die(EXIT_USAGE, "ActiveMode must be forward, passive, "
			    "auto or off, not \"%s\"", value);
		opt.act_mode = (enum act_mode)i;
	} else if (strcasecmp(name, "PassiveMode") == 0) {
		if (strcasecmp(value, "forward") == 0)
			opt.pasv_mode = PM_FORWARD;
		else if (strcasecmp(value, "active") == 0)
			opt.pasv_mode = PM_ACTIVE;
		else
			die(EXIT_USAGE, "PassiveMode must be forward or "
			    "active, not \"%s\"", value);
	} else if (strcasecmp(name, "PasvAddress") == 0) {
		if (strcasecmp(value, "ignore") == 0)
			opt.pasv_trust = 0;
		else if (strcasecmp(value, "trust") == 0)
			opt.pasv_trust = 1;
		else
			die(EXIT_USAGE, "PasvAddress must be ignore or trust, "
			    "not \"%s\"", value);
	} else if (strcasecmp(name, "MaxSessions") == 0) {
		if (ftp_parse_uint(value, strlen(value), 100000, &v) == -1 ||
		    v == 0)
			die(EXIT_USAGE, "MaxSessions must be 1 to 100000, not "
			    "\"%s\"", value);
		opt.max_sessions = (u_int)v;
	} else if (strcasecmp(name, "IdleTimeout") == 0) {
		if (ftp_parse_uint(value, strlen(value), 86400 * 365, &v) ==
		    -1)
			die(EXIT_USAGE, "IdleTimeout must be a number of "
			    "seconds, not \"%s\"", value);
		opt.idle_timeout = (u_int)v;
	} else if (strcasecmp(name, "LogLevel") == 0) {
		for (i = 0; i < sizeof(loglevels) / sizeof(loglevels[0]); i++)
			if (strcasecmp(value, loglevels[i].name) == 0)
				break;
		if (i == sizeof(loglevels) / sizeof(loglevels[0]))
			die(EXIT_USAGE, "unknown LogLevel \"%s\"", value);
		opt.loglevel = loglevels[i].level;
		opt.loglevel_set = 1;
	} else if (strcasecmp(name, "ExitWithMaster") == 0)
		opt.exit_with_master = parse_yesno(name, value);
	else if (strcasecmp(name, "TcpNoDelay") == 0)
		opt.tcp_nodelay = parse_yesno(name, value);
	else if (strcasecmp(name, "StartMaster") == 0)
		opt.start_master = parse_yesno(name, value);
	else if (strcasecmp(name, "SyslogFacility") == 0) {
		for (i = 0; i < sizeof(facilities) / sizeof(facilities[0]);
		    i++)
			if (strcasecmp(value, facilities[i].name) == 0)
				break;
		if (i == sizeof(facilities) / sizeof(facilities[0]))
			die(EXIT_USAGE, "unknown SyslogFacility \"%s\" "
			    "(DAEMON, USER, AUTH, LOCAL0 to LOCAL7)", value);
		opt.facility = facilities[i].facility;
	} else if (strcasecmp(name, "UpstreamTLS") == 0)
		opt.up_tls = parse_tls_mode(name, value);
	else if (strcasecmp(name, "ClientTLS") == 0)
		opt.cl_tls = parse_tls_mode(name, value);
	else if (strcasecmp(name, "UpstreamVerify") == 0)
		opt.up_verify = parse_yesno(name, value);
	else if (strcasecmp(name, "UpstreamCAFile") == 0)
		set_string(&opt.up_cafile, value);
	else if (strcasecmp(name, "UpstreamServerName") == 0)
		set_string(&opt.up_name, value);
	else if (strcasecmp(name, "ClientCertificate") == 0)
		set_string(&opt.cl_cert, value);
	else if (strcasecmp(name, "ClientKey") == 0)
		set_string(&opt.cl_key, value);
	else
		die(EXIT_USAGE, "unknown option \"%s\"", name);
}

/*
 * Where f's remote forwards listen on the ssh server, and so the address
 * its FTP server is sent in PORT/EPRT: ActiveBindAddress, else loopback
 * in the family of the FTP server's address (::1 for an IPv6 literal).
 */
static void
forward_active(struct forward *f)
{
	struct addrinfo	 hints, *res;
	const char	*where = opt.active_bind;
	int		 e;

	if (where == NULL)
		where = strchr(f->host, ':') != NULL ? "::1" : "127.0.0.1";
	memset(&hints, 0, sizeof(hints));
	hints.ai_flags = AI_NUMERICHOST;
	if ((e = getaddrinfo(where, NULL, &hints, &res)) != 0)
		die(EXIT_USAGE, "ActiveBindAddress must be a numeric address, "
		    "not \"%s\": %s", where, gai_strerror(e));
	memcpy(&f->act_addr, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	if ((f->act_bind = strdup(where)) == NULL)
		die(EXIT_USAGE, "out of memory");
}

/* Ask ssh where the master's socket is: ssh -G prints it expanded. */
static char *
lookup_control_path(void)
{
	char	 line[4096], *path = NULL, *nl;
	FILE	*fp;
	pid_t	 pid;
	int	 p[2], status;

	if (pipe(p) == -1)
		die(EXIT_USAGE, "pipe: %s", strerror(errno));
	if ((pid = fork()) == -1)
		die(EXIT_USAGE, "fork: %s", strerror(errno));
	if (pid == 0) {
		close(p[0]);
		if (dup2(p[1], STDOUT_FILENO) == -1)
			_exit(127);
		if (opt.ssh_config != NULL)
			execlp("ssh", "ssh", "-F", opt.ssh_config, "-G", "--",
			    opt.destination, (char *)NULL);
		else
			execlp("ssh", "ssh", "-G", "--", opt.destination,
			    (char *)NULL);
		fprintf(stderr, "ftpfwd: cannot run ssh: %s\n",
		    strerror(errno));
		_exit(127);
	}
	close(p[1]);
	if ((fp = fdopen(p[0], "r")) == NULL)
		die(EXIT_USAGE, "fdopen: %s", strerror(errno));
	while (fgets(line, sizeof(line), fp) != NULL) {
		if (strncasecmp(line, "controlpath ", 12) != 0)
			continue;
		if ((nl = strchr(line, '\n')) != NULL)
			*nl = '\0';
		free(path);
		if ((path = strdup(line + 12)) == NULL)
			die(EXIT_USAGE, "out of memory");
	}
	fclose(fp);
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		die(EXIT_USAGE, "ssh -G %s failed; check the destination and "
		    "ssh_config", opt.destination);
	if (path == NULL || strcasecmp(path, "none") == 0)
		die(EXIT_NO_MASTER, "no ControlPath for %s (set ControlMaster "
		    "and ControlPath in ssh_config, or give -S)",
		    opt.destination);
	return path;
}

static void __attribute__((noreturn))
die_no_master(const char *why)
{
	if (opt.destination != NULL)
		die(EXIT_NO_MASTER, "no ControlMaster at %s: %s (start one "
		    "with: ssh -fNM %s)", opt.ctl_path, why, opt.destination);
	die(EXIT_NO_MASTER, "no ControlMaster at %s: %s (start one with: "
	    "ssh -fNM -S %s destination)", opt.ctl_path, why, opt.ctl_path);
}

/*
 * Before serving in the foreground, make sure the master answers.  Not
 * with -f: under LocalCommand the master answers nothing until we exit.
 */
/*
 * StartMaster=yes and nobody answers: start the master the way its user
 * would, and wait for ssh -f to have authenticated.  A socket that only
 * refuses is a dead master's, which ssh will not replace: remove it, as
 * ssh's own ControlMaster=auto does.
 */
static void
start_master(int stale)
{
	pid_t	pid;
	int	status;

	if (stale && unlink(opt.ctl_path) == 0)
		logit(LL_INFO, "removed %s, a dead master's socket",
		    opt.ctl_path);
	logit(LL_INFO, "no master at %s: starting one with ssh -fN %s",
	    opt.ctl_path, opt.destination);
	if ((pid = fork()) == -1)
		die(EXIT_USAGE, "fork: %s", strerror(errno));
	if (pid == 0) {
		if (opt.ssh_config != NULL)
			execlp("ssh", "ssh", "-F", opt.ssh_config, "-fN", "-o",
			    "ControlMaster=yes", "-o", "ControlPersist=yes",
			    "--", opt.destination, (char *)NULL);
		else
			execlp("ssh", "ssh", "-fN", "-o", "ControlMaster=yes",
			    "-o", "ControlPersist=yes", "--", opt.destination,
			    (char *)NULL);
		fprintf(stderr, "ftpfwd: cannot run ssh: %s\n",
		    strerror(errno));
		_exit(127);
	}
	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR)
			die(EXIT_USAGE, "waitpid: %s", strerror(errno));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		die(EXIT_NO_MASTER, "StartMaster: ssh -fN %s failed (exit "
		    "%d)", opt.destination, WIFEXITED(status) ?
		    WEXITSTATUS(status) : -1);
}

/*
 * Socket activation (systemd, or systemd-socket-activate): listeners
 * passed as descriptors 3 and up, for this process.  Returns how many.
 */
static int
listen_fds(void)
{
	const char	*pid_s, *n_s;
	unsigned long	 pid, n;
	int		 i;

	if ((pid_s = getenv("LISTEN_PID")) == NULL ||
	    (n_s = getenv("LISTEN_FDS")) == NULL)
		return 0;
	if (ftp_parse_uint(pid_s, strlen(pid_s), INT32_MAX, &pid) == -1 ||
	    (pid_t)pid != getpid())
		return 0;
	if (ftp_parse_uint(n_s, strlen(n_s), MAX_LISTENERS, &n) == -1 ||
	    n == 0)
		die(EXIT_USAGE, "LISTEN_FDS must be 1 to %d, not \"%s\"",
		    MAX_LISTENERS, n_s);
	for (i = 0; i < (int)n; i++)
		if (fcntl(3 + i, F_SETFD, FD_CLOEXEC) == -1)
			die(EXIT_USAGE, "LISTEN_FDS: descriptor %d: %s", 3 + i,
			    strerror(errno));
	/* Not for the ssh we may run. */
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return (int)n;
}

static void
check_master(int full)
{
	static const unsigned char	hello[] = {
		0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, MUX_VERSION
	};
	unsigned char			buf[12];
	struct mux_reply		r;
	struct pollfd			pfd;
	char				err[256];
	size_t				got = 0;
	ssize_t				n;
	int				fd;

	if ((fd = mux_connect_fd(opt.ctl_path, err, sizeof(err))) == -1 &&
	    opt.start_master && opt.destination != NULL) {
		start_master(errno == ECONNREFUSED);
		fd = mux_connect_fd(opt.ctl_path, err, sizeof(err));
	}
	if (fd == -1)
		die_no_master(err);
	if (!full) {
		close(fd);
		return;
	}
	if (write(fd, hello, sizeof(hello)) != (ssize_t)sizeof(hello))
		die_no_master(strerror(errno));
	pfd.fd = fd;
	pfd.events = POLLIN;
	while (got < sizeof(buf)) {
		if (poll(&pfd, 1, HELLO_TIMEOUT_MS) <= 0)
			die_no_master("no answer to HELLO (if ssh is running "
			    "a LocalCommand, use -f)");
		n = read(fd, buf + got, sizeof(buf) - got);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0)
			die_no_master(n == 0 ? "closed the connection" :
			    strerror(errno));
		got += (size_t)n;
	}
	if (mux_decode(buf + 4, sizeof(buf) - 4, &r) == -1 ||
	    r.type != MUX_MSG_HELLO || r.rid != MUX_VERSION)
		die_no_master("does not speak mux protocol version 4");
	close(fd);
}

/*
 * The name under which a live ftpfwd holds a listen address for one
 * master: an abstract Unix socket, which goes when the process goes.
 * A second ftpfwd -f for the same address and master (LocalCommand run
 * again) finds it and steps aside instead of failing the ssh login.
 */
static socklen_t
claim_name(const struct forward *f, uint16_t port, struct sockaddr_un *sun)
{
	uint64_t	 h = 14695981039346656037ULL;	/* FNV-1a */
	const char	*p;
	int		 n;

	for (p = opt.ctl_path; *p != '\0'; p++) {
		h ^= (u_char)*p;
		h *= 1099511628211ULL;
	}
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	n = snprintf(sun->sun_path + 1, sizeof(sun->sun_path) - 1,
	    "ftpfwd/%s/%u/%016llx", f->bind_host != NULL ? f->bind_host : "*",
	    port, (unsigned long long)h);
	if (n < 0 || (size_t)n >= sizeof(sun->sun_path) - 1)
		n = sizeof(sun->sun_path) - 2;
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
}

/* Who holds f's address for our master?  Its pid, or 0 if nobody. */
static pid_t
claim_holder(const struct forward *f)
{
	struct sockaddr_un	sun;
	struct ucred		cred;
	socklen_t		len = claim_name(f, f->bind_port, &sun);
	socklen_t		clen = sizeof(cred);
	pid_t			pid = 0;
	int			fd;

	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC |
	    SOCK_NONBLOCK, 0)) == -1)
		return 0;
	if ((connect(fd, (struct sockaddr *)&sun, len) == 0 ||
	    errno == EAGAIN) && getsockopt(fd, SOL_SOCKET, SO_PEERCRED,
	    &cred, &clen) == 0 && cred.uid == getuid())
		pid = cred.pid > 0 ? cred.pid : 1;
	close(fd);
	return pid;
}

static void
claim_accept_cb(evutil_socket_t fd, short what, void *arg)
{
	int	c;

	(void)what;
	(void)arg;
	if ((c = accept4(fd, NULL, NULL, SOCK_CLOEXEC)) != -1)
		close(c);		/* the question was the answer */
}

static void
claim(struct forward *f, uint16_t port)
{
	struct sockaddr_un	sun;
	socklen_t		len = claim_name(f, port, &sun);

	if ((f->claim_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC |
	    SOCK_NONBLOCK, 0)) == -1)
		return;
	if (bind(f->claim_fd, (struct sockaddr *)&sun, len) == -1 ||
	    listen(f->claim_fd, 4) == -1) {
		close(f->claim_fd);
		f->claim_fd = -1;
	}
}

static int
bind_one(const struct addrinfo *ai, uint16_t port)
{
	struct sockaddr_storage	ss;
	int			fd, on = 1;

	memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
	addr_set_port(&ss, port);
	if ((fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (ai->ai_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on,
		    sizeof(on));
	if (bind(fd, (struct sockaddr *)&ss, ai->ai_addrlen) == -1 ||
	    listen(fd, 128) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Bind every address of one -L; port 0 gets one port for them all. */
static void
bind_forward(struct forward *f)
{
	struct addrinfo		 hints, *res, *ai;
	struct sockaddr_storage	 ss;
	socklen_t		 len = sizeof(ss);
	char			 port[8];
	uint16_t		 want = f->bind_port;
	pid_t			 holder;
	int			 e, fd, saved = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = opt.family;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	snprintf(port, sizeof(port), "%u", f->bind_port);
	if ((e = getaddrinfo(f->bind_host, port, &hints, &res)) != 0)
		die(EXIT_USAGE, "cannot listen on %s: %s",
		    f->bind_host != NULL ? f->bind_host : "*", gai_strerror(e));
	for (ai = res; ai != NULL && f->nfds < MAX_LISTENERS;
	    ai = ai->ai_next) {
		if ((fd = bind_one(ai, want)) == -1) {
			saved = errno;
			continue;
		}
		if (want == 0 && getsockname(fd, (struct sockaddr *)&ss,
		    &len) == 0)
			want = addr_port(&ss);
		f->fds[f->nfds++] = fd;
	}
	freeaddrinfo(res);
	if (f->nfds == 0 && saved == EADDRINUSE && f->bind_port != 0 &&
	    (holder = claim_holder(f)) != 0) {
		logit(LL_INFO, "%s port %u is already served by ftpfwd (pid "
		    "%ld) for the master at %s", f->bind_host != NULL ?
		    f->bind_host : "*", f->bind_port, (long)holder,
		    opt.ctl_path);
		exit(0);
	}
	if (f->nfds == 0)
		die(EXIT_USAGE, "cannot listen on %s port %u: %s",
		    f->bind_host != NULL ? f->bind_host : "*", f->bind_port,
		    strerror(saved));
	f->bound_port = want;
	if (f->bind_port == 0)
		fprintf(stderr, "Allocated port %u for FTP forward to %s:%u\n",
		    want, f->host, f->port);
}

static void
daemonize(void)
{
	pid_t	pid;
	int	fd;

	fflush(stderr);
	if ((pid = fork()) == -1)
		die(EXIT_USAGE, "fork: %s", strerror(errno));
	if (pid != 0)
		_exit(0);
	if (setsid() == -1)
		die(EXIT_USAGE, "setsid: %s", strerror(errno));
	(void)chdir("/");
	if ((fd = open("/dev/null", O_RDWR)) != -1) {
		(void)dup2(fd, STDIN_FILENO);
		(void)dup2(fd, STDOUT_FILENO);
		(void)dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
	openlog("ftpfwd", LOG_PID | LOG_NDELAY, opt.facility);
	use_syslog = 1;
}

/* -W: one session on standard input and output. */
static void
start_stdio_session(void)
{
	struct sockaddr_storage	peer, local;
	socklen_t		plen = sizeof(peer), llen = sizeof(local);
	struct sockaddr_in	*sin;
	struct stat		st;
	int			in_fd, out_fd;

	memset(&peer, 0, sizeof(peer));
	memset(&local, 0, sizeof(local));
	if (fstat(STDIN_FILENO, &st) == 0 && S_ISSOCK(st.st_mode) &&
	    getpeername(STDIN_FILENO, (struct sockaddr *)&peer, &plen) == 0 &&
	    getsockname(STDIN_FILENO, (struct sockaddr *)&local, &llen) == 0 &&
	    (local.ss_family == AF_INET || local.ss_family == AF_INET6)) {
		set_socket_opts(STDIN_FILENO);
	} else {
		/* Not a TCP socket (a pipe, a socketpair): use loopback. */
		sin = (struct sockaddr_in *)&peer;
		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		memcpy(&local, &peer, sizeof(local));
	}
	if ((in_fd = dup(STDIN_FILENO)) == -1 ||
	    (out_fd = dup(STDOUT_FILENO)) == -1)
		die(EXIT_USAGE, "dup: %s", strerror(errno));
	evutil_make_socket_nonblocking(in_fd);
	evutil_make_socket_nonblocking(out_fd);
	session_start(&opt.stdio_fwd, in_fd, out_fd, &peer, &local);
}

int
main(int argc, char *argv[])
{
	struct event	*sigev[3];
	int		 ch, i, j, verbose = 0, debug = 0, quiet = 0;
	int		 nlisten = 0;
	char		 err[256];

	opt.family = AF_UNSPEC;
	opt.max_sessions = DEFAULT_MAX_SESSIONS;
	opt.idle_timeout = DEFAULT_IDLE_TIMEOUT;
	opt.exit_with_master = -1;
	opt.tcp_nodelay = 1;
	opt.up_verify = 1;
	opt.facility = LOG_DAEMON;
	opt.loglevel = LL_INFO;

	while ((ch = getopt(argc, argv, "46dfqvVhL:W:S:F:o:")) != -1) {
		switch (ch) {
		case '4':
			opt.family = AF_INET;
			break;
		case '6':
			opt.family = AF_INET6;
			break;
		case 'd':
			debug = 1;
			break;
		case 'f':
			opt.daemonize = 1;
			break;
		case 'q':
			quiet = 1;
			break;
		case 'v':
			verbose++;
			break;
		case 'V':
			printf("ftpfwd %s\n", FTPFWD_VERSION);
			exit(0);
		case 'L':
			if (opt.nfwds == MAX_LISTENERS)
				die(EXIT_USAGE, "too many -L (at most %d)",
				    MAX_LISTENERS);
			parse_forward(optarg, &opt.fwds[opt.nfwds++], 0);
			break;
		case 'W':
			parse_forward(optarg, &opt.stdio_fwd, 1);
			opt.stdio_mode = 1;
			break;
		case 'S':
			opt.ctl_path = optarg;
			break;
		case 'F':
			opt.ssh_config = optarg;
			break;
		case 'o':
			parse_option(optarg);
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc > 1)
		usage();
	if (argc == 1)
		opt.destination = argv[0];
	if (opt.ctl_path == NULL && opt.destination == NULL) {
		fprintf(stderr, "ftpfwd: need a destination or -S ctl_path\n");
		usage();
	}
	if (opt.stdio_mode && (opt.nfwds > 0 || opt.daemonize))
		die(EXIT_USAGE, "-W cannot be combined with -L or -f");
	if (!opt.loglevel_set) {
		if (quiet)
			opt.loglevel = LL_ERROR;
		if (debug)
			opt.loglevel = LL_DEBUG1;
		while (verbose-- > 0 && opt.loglevel < LL_DEBUG3)
			opt.loglevel++;
	}
	if (debug)
		opt.daemonize = 0;
	if (opt.exit_with_master == -1)
		opt.exit_with_master = opt.daemonize;

	if (!opt.stdio_mode && opt.nfwds == 0)
		parse_forward(DEFAULT_FORWARD, &opt.fwds[opt.nfwds++], 0);
	for (i = 0; i < opt.nfwds; i++)
		forward_active(&opt.fwds[i]);
	if (opt.stdio_mode)
		forward_active(&opt.stdio_fwd);

	if (opt.up_tls != TLS_OFF) {
		if (tls_upstream_init(opt.up_cafile, opt.up_verify, err,
		    sizeof(err)) == -1)
			die(EXIT_USAGE, "UpstreamTLS: %s", err);
		if (!opt.up_verify)
			logit(LL_ERROR, "WARNING: UpstreamVerify=no: the FTP "
			    "server's certificate is not checked, so anyone "
			    "between the ssh server and the FTP server can "
			    "read and change the session");
	}
	if (opt.cl_tls != TLS_OFF) {
		if (opt.cl_cert == NULL || opt.cl_key == NULL)
			die(EXIT_USAGE, "ClientTLS needs -o ClientCertificate="
			    "file and -o ClientKey=file");
		if (tls_client_init(opt.cl_cert, opt.cl_key, err,
		    sizeof(err)) == -1)
			die(EXIT_USAGE, "ClientTLS: %s", err);
	}

	if (opt.ctl_path == NULL)
		opt.ctl_path = lookup_control_path();
	check_master(!opt.daemonize);

	/* Passed listeners serve the first forward; its bind part is moot. */
	if (!opt.stdio_mode && (nlisten = listen_fds()) > 0) {
		for (i = 0; i < nlisten; i++)
			opt.fwds[0].fds[opt.fwds[0].nfds++] = 3 + i;
		logit(LL_INFO, "serving %d socket%s from the service manager "
		    "for %s:%u", nlisten, nlisten == 1 ? "" : "s",
		    opt.fwds[0].host, opt.fwds[0].port);
	}
	for (i = nlisten > 0 ? 1 : 0; i < opt.nfwds; i++)
		bind_forward(&opt.fwds[i]);

	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	if (opt.daemonize)
		daemonize();

	atexit(rundir_remove);
	/* After the fork: the claim names the process that serves. */
	for (i = 0; i < opt.nfwds; i++)
		if (opt.fwds[i].bound_port != 0)	/* not passed to us */
			claim(&opt.fwds[i], opt.fwds[i].bound_port);

	/* After the fork: an epoll set must not be shared with a parent. */
	if ((base = event_base_new()) == NULL)
		die(EXIT_USAGE, "cannot start libevent");
	if ((accept_ev = evtimer_new(base, accept_resume_cb, NULL)) == NULL ||
	    (retry_ev = evtimer_new(base, retry_cb, NULL)) == NULL)
		die(EXIT_USAGE, "out of memory");
	for (i = 0; i < opt.nfwds; i++) {
		for (j = 0; j < opt.fwds[i].nfds; j++) {
			evutil_make_socket_nonblocking(opt.fwds[i].fds[j]);
			if ((opt.fwds[i].lev[j] = evconnlistener_new(base,
			    accept_cb, &opt.fwds[i], LEV_OPT_CLOSE_ON_FREE |
			    LEV_OPT_CLOSE_ON_EXEC, -1,
			    opt.fwds[i].fds[j])) == NULL)
				die(EXIT_USAGE, "cannot listen");
			evconnlistener_set_error_cb(opt.fwds[i].lev[j],
			    accept_error_cb);
		}
		if (opt.fwds[i].claim_fd != -1 && ((opt.fwds[i].claim_ev =
		    event_new(base, opt.fwds[i].claim_fd, EV_READ | EV_PERSIST,
		    claim_accept_cb, NULL)) == NULL ||
		    event_add(opt.fwds[i].claim_ev, NULL) != 0))
			die(EXIT_USAGE, "cannot listen");
	}
	sigev[0] = evsignal_new(base, SIGTERM, signal_cb, NULL);
	sigev[1] = evsignal_new(base, SIGINT, signal_cb, NULL);
	sigev[2] = evsignal_new(base, SIGUSR1, status_cb, NULL);
	for (i = 0; i < 3; i++)
		if (sigev[i] == NULL || event_add(sigev[i], NULL) != 0)
			die(EXIT_USAGE, "cannot catch signals");

	watch_open();
	if (opt.stdio_mode)
		start_stdio_session();
	else
		logit(LL_INFO, "ready, master at %s", opt.ctl_path);
	event_base_dispatch(base);

	for (i = 0; i < 3; i++)
		event_free(sigev[i]);
	for (i = 0; i < opt.nfwds; i++)
		for (j = 0; j < opt.fwds[i].nfds; j++)
			if (opt.fwds[i].lev[j] != NULL)
				evconnlistener_free(opt.fwds[i].lev[j]);
	return 0;
}
