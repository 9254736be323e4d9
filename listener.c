/*
 * listener.c: the sockets FTP clients connect to.  Each -L is bound on
 * every address it names (or taken from the service manager through
 * LISTEN_FDS), claimed for our master so that a second ftpfwd for the
 * same address steps aside, and accepted from with a back-off when
 * descriptors run short; -W serves one session on stdin and stdout.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "ftpfwd.h"

static struct event	*accept_ev;	/* accept again after a back-off */

void
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
	struct who		 who;
	char			 reply[LOG_TEXT_MAX];

	(void)lev;
	memset(&peer, 0, sizeof(peer));
	memcpy(&peer, sa, (size_t)salen < sizeof(peer) ? (size_t)salen :
	    sizeof(peer));
	if (shutting_down || nsessions >= opt.max_sessions) {
		sock_refuse(fd, busy);
		logit(LL_ERROR, "refused a client: %u sessions already",
		    nsessions);
		return;
	}
	if (getsockname(fd, (struct sockaddr *)&local, &llen) == -1) {
		close(fd);
		return;
	}
	/* Before any byte goes to the master. */
	if (access_client(&local, &peer, &who, reply, sizeof(reply) - 2) ==
	    -1) {
		memcpy(reply + strlen(reply), "\r\n", 3);
		sock_refuse(fd, reply);
		return;
	}
	sock_set_opts(fd);
	session_start(arg, fd, fd, &peer, &local, &who);
	if (!fd_headroom())
		accept_pause("few file descriptors left");
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
	    listen(f->claim_fd, CLAIM_BACKLOG) == -1) {
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
	    listen(fd, LISTEN_BACKLOG) == -1) {
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
		fatalx("cannot listen on %s: %s",
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
		fatalx("cannot listen on %s port %u: %s",
		    f->bind_host != NULL ? f->bind_host : "*", f->bind_port,
		    strerror(saved));
	f->bound_port = want;
	if (f->bind_port == 0 && opt.backend == BACKEND_SFTP)
		fprintf(stderr, "Allocated port %u for FTP served by sftp\n",
		    want);
	else if (f->bind_port == 0)
		fprintf(stderr, "Allocated port %u for FTP forward to %s:%u\n",
		    want, f->host, f->port);
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
		fatalx("LISTEN_FDS must be 1 to %d, not \"%s\"",
		    MAX_LISTENERS, n_s);
	for (i = 0; i < (int)n; i++)
		if (fcntl(3 + i, F_SETFD, FD_CLOEXEC) == -1)
			fatalx("LISTEN_FDS: descriptor %d: %s", 3 + i,
			    strerror(errno));
	/* Not for the ssh we may run. */
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return (int)n;
}

/* -W: one session on standard input and output. */
void
stdio_session_start(void)
{
	struct sockaddr_storage	peer, local;
	socklen_t		plen = sizeof(peer), llen = sizeof(local);
	struct sockaddr_in	*sin;
	struct stat		st;
	struct who		who;
	char			reply[LOG_TEXT_MAX];
	int			in_fd, out_fd;

	memset(&peer, 0, sizeof(peer));
	memset(&local, 0, sizeof(local));
	if (fstat(STDIN_FILENO, &st) == 0 && S_ISSOCK(st.st_mode) &&
	    getpeername(STDIN_FILENO, (struct sockaddr *)&peer, &plen) == 0 &&
	    getsockname(STDIN_FILENO, (struct sockaddr *)&local, &llen) == 0 &&
	    (local.ss_family == AF_INET || local.ss_family == AF_INET6)) {
		/* inetd's socket: its peer is judged as a -L client's. */
		if (access_client(&local, &peer, &who, reply,
		    sizeof(reply)) == -1) {
			printf("%s\r\n", reply);
			exit(1);
		}
		sock_set_opts(STDIN_FILENO);
	} else {
		/* Our own user's pipes: data must come from that uid too. */
		memset(&who, 0, sizeof(who));
		who.local = who.known = 1;
		who.uid = getuid();
		/* Not a TCP socket (a pipe, a socketpair): use loopback. */
		sin = (struct sockaddr_in *)&peer;
		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		memcpy(&local, &peer, sizeof(local));
	}
	if ((in_fd = dup(STDIN_FILENO)) == -1 ||
	    (out_fd = dup(STDOUT_FILENO)) == -1)
		fatal("dup");
	evutil_make_socket_nonblocking(in_fd);
	evutil_make_socket_nonblocking(out_fd);
	session_start(&opt.stdio_fwd, in_fd, out_fd, &peer, &local, &who);
}

/*
 * Before the fork: the listeners, passed in or bound here, so that an
 * address in use is an error the user sees.  Passed listeners serve the
 * first forward; its bind part is moot.
 */
void
listeners_bind(void)
{
	struct forward	*f = &opt.fwds[0];
	int		 i, nlisten = 0;

	if (!opt.stdio_mode && (nlisten = listen_fds()) > 0) {
		for (i = 0; i < nlisten; i++)
			f->fds[f->nfds++] = 3 + i;
		logit(LL_INFO, "serving %d socket%s from the service manager "
		    "for %s:%u", nlisten, nlisten == 1 ? "" : "s", f->host,
		    f->port);
	}
	for (i = nlisten > 0 ? 1 : 0; i < opt.nfwds; i++)
		bind_forward(&opt.fwds[i]);
}

static void
forward_start(struct forward *f)
{
	int	j;

	for (j = 0; j < f->nfds; j++) {
		evutil_make_socket_nonblocking(f->fds[j]);
		if ((f->lev[j] = evconnlistener_new(evbase, accept_cb, f,
		    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1,
		    f->fds[j])) == NULL)
			fatalx("cannot listen: out of memory");
		evconnlistener_set_error_cb(f->lev[j], accept_error_cb);
	}
	if (f->bound_port != 0)		/* not passed to us */
		claim(f, f->bound_port);
	if (f->claim_fd != -1 && ((f->claim_ev = event_new(evbase,
	    f->claim_fd, EV_READ | EV_PERSIST, claim_accept_cb, NULL)) ==
	    NULL || event_add(f->claim_ev, NULL) != 0))
		fatalx("cannot listen: out of memory");
}

/* After the fork: the claim names the process that serves. */
void
listeners_start(void)
{
	int	i;

	if ((accept_ev = evtimer_new(evbase, accept_resume_cb, NULL)) == NULL)
		fatalx("out of memory");
	for (i = 0; i < opt.nfwds; i++)
		forward_start(&opt.fwds[i]);
}

void
listeners_free(void)
{
	int	i, j;

	for (i = 0; i < opt.nfwds; i++)
		for (j = 0; j < opt.fwds[i].nfds; j++)
			if (opt.fwds[i].lev[j] != NULL)
				evconnlistener_free(opt.fwds[i].lev[j]);
	if (accept_ev != NULL)
		event_free(accept_ev);
}
