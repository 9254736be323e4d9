/*
 * master.c: the ssh ControlMaster we serve through.  Where its socket is
 * (-S, or ssh -G), whether it answers before we serve, starting one with
 * StartMaster, and, while we run, watching its process so that we learn
 * when it goes (ExitWithMaster) or comes back.  Also what we learned of
 * it that sessions share: whether sshd refuses remote forwards.
 */

#include <sys/types.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/event.h>

#include "ftpfwd.h"
#include "ssh_mux.h"

/* The master watched, and what we know of it. */
static struct {
	struct mux_conn	*watch_mux;	/* asking the master's pid */
	pid_t		 pid;		/* the master watched, or 0 */
	int		 pidfd;
	struct event	*exit_ev;	/* its pidfd, or a poll timer */
	struct event	*retry_ev;	/* look for a master again */
	int		 rfwd_refused;	/* ActiveMode=auto fell back */
} master = { NULL, 0, -1, NULL, NULL, 0 };

static void	master_watch_open(void);

/* Is anything listening at the ControlPath?  A connect, no round trip. */
int
master_alive(void)
{
	char	err[ERR_MAX];
	int	fd;

	if ((fd = mux_connect_fd(opt.ctl_path, err, sizeof(err))) == -1)
		return 0;
	close(fd);
	return 1;
}

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
	char		 err[ERR_MAX];
	uint32_t	 rid;
	int		 fd;

	if (!opt.tcp_nodelay)
		return;
	if ((fd = open("/dev/null", O_RDWR | O_CLOEXEC)) == -1)
		return;
	if ((mc = mux_open(evbase, opt.ctl_path, nodelay_cb, NULL, err,
	    sizeof(err))) == NULL) {
		close(fd);
		return;
	}
	if (mux_new_session(mc, "true", 0, fd, &rid) == -1)
		mux_free(mc);
}

static void
master_gone(const char *why)
{
	char	reply[ERR_MAX];

	logit(LL_INFO, "ssh master at %s went away: %s", opt.ctl_path, why);
	if (opt.exit_with_master) {
		snprintf(reply, sizeof(reply), "421 ftpfwd: ssh connection to "
		    "%s closed", opt.destination != NULL ? opt.destination :
		    opt.ctl_path);
		shutdown_all(reply);
		return;
	}
	/* Its sftp channels went with it: a new master, new sessions. */
	snprintf(reply, sizeof(reply), "421 ftpfwd: ssh connection to %s "
	    "closed", opt.destination != NULL ? opt.destination :
	    opt.ctl_path);
	sfs_master_gone(reply);
	master_watch_open();
}

static void
master_exit_cb(evutil_socket_t fd, short what, void *arg)
{
	struct timeval	tv = { 0, MASTER_POLL_MS * 1000 };

	(void)what;
	(void)arg;
	if (master.pidfd == -1 && kill(master.pid, 0) == 0) {
		/* No pidfd: look again. */
		evtimer_add(master.exit_ev, &tv);
		return;
	}
	event_free(master.exit_ev);
	master.exit_ev = NULL;
	if (fd != -1 && master.pidfd != -1) {
		close(master.pidfd);
		master.pidfd = -1;
	}
	master.pid = 0;
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

	master.pid = pid;
	/* ActiveMode=auto: a new master, a new try. */
	master.rfwd_refused = 0;
#ifdef SYS_pidfd_open
	master.pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
#endif
	if (master.pidfd != -1) {
		if ((master.exit_ev = event_new(evbase, master.pidfd, EV_READ,
		    master_exit_cb, NULL)) != NULL &&
		    event_add(master.exit_ev, NULL) == 0)
			return;
	} else if ((master.exit_ev = evtimer_new(evbase, master_exit_cb,
	    NULL)) != NULL && evtimer_add(master.exit_ev, &tv) == 0)
		return;
	fatalx("cannot watch the master (pid %ld)", (long)pid);
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
		rundir_reap();
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
		master.watch_mux = NULL;
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
	master.watch_mux = NULL;
	master_gone(why);
}

static void
retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	master_watch_open();
}

/* Keep one mux connection to the master, to learn when it goes. */
static void
master_watch_open(void)
{
	struct timeval	tv = { MASTER_RETRY, 0 };
	char		err[ERR_MAX];

	if ((master.watch_mux = mux_open(evbase, opt.ctl_path, watch_mux_cb,
	    NULL, err, sizeof(err))) == NULL) {
		logit(LL_DEBUG1, "no master at %s yet: %s", opt.ctl_path, err);
		evtimer_add(master.retry_ev, &tv);
	}
}

/* In the child: ssh [-F ssh_config] args..., or exit 127 saying why. */
static void __attribute__((noreturn))
ssh_exec(const char *const *args)
{
	const char	*argv[SSH_ARGV_MAX];
	size_t		 n = 0;

	argv[n++] = "ssh";
	if (opt.ssh_config != NULL) {
		argv[n++] = "-F";
		argv[n++] = opt.ssh_config;
	}
	while (*args != NULL && n < nitems(argv) - 1)
		argv[n++] = *args++;
	argv[n] = NULL;
	execvp("ssh", (char *const *)argv);
	fprintf(stderr, "ftpfwd: cannot run ssh: %s\n", strerror(errno));
	_exit(127);
}

/*
 * Ask ssh where the master's socket is: ssh -G prints it expanded, and
 * the user and host it logs in as.  Without need, the path may be none.
 */
char *
master_lookup_path(int need)
{
	const char	*args[] = { "-G", "--", opt.destination, NULL };
	char		 line[SSH_G_LINE_MAX], *path = NULL, *nl;
	FILE		*fp;
	pid_t		 pid;
	int		 p[2], status;

	if (pipe(p) == -1)
		fatal("pipe");
	if ((pid = fork()) == -1)
		fatal("fork");
	if (pid == 0) {
		close(p[0]);
		if (dup2(p[1], STDOUT_FILENO) == -1)
			_exit(127);
		ssh_exec(args);
	}
	close(p[1]);
	if ((fp = fdopen(p[0], "r")) == NULL)
		fatal("fdopen");
	while (fgets(line, sizeof(line), fp) != NULL) {
		if ((nl = strchr(line, '\n')) != NULL)
			*nl = '\0';
		/* Who and where, for Backend=sftp's 230. */
		if (strncasecmp(line, "user ", 5) == 0 && opt.ssh_user == NULL)
			opt.ssh_user = xstrdup(line + 5);
		if (strncasecmp(line, "hostname ", 9) == 0 &&
		    opt.ssh_host == NULL)
			opt.ssh_host = xstrdup(line + 9);
		if (strncasecmp(line, "controlpath ", 12) != 0)
			continue;
		free(path);
		path = xstrdup(line + 12);
	}
	fclose(fp);
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fatalx("ssh -G %s failed; check the destination and "
		    "ssh_config", opt.destination);
	if (!need)
		return path;
	if (path == NULL || strcasecmp(path, "none") == 0)
		fatalx_status(EXIT_NO_MASTER, "no ControlPath for %s (set "
		    "ControlMaster and ControlPath in ssh_config, or give -S)",
		    opt.destination);
	return path;
}

static void __attribute__((noreturn))
no_master(const char *why)
{
	if (opt.destination != NULL)
		fatalx_status(EXIT_NO_MASTER, "no ControlMaster at %s: %s "
		    "(start one with: ssh -fNM %s)", opt.ctl_path, why,
		    opt.destination);
	fatalx_status(EXIT_NO_MASTER, "no ControlMaster at %s: %s (start one "
	    "with: ssh -fNM -S %s destination)", opt.ctl_path, why,
	    opt.ctl_path);
}

/*
 * StartMaster=yes and nobody answers: start the master the way its user
 * would, and wait for ssh -f to have authenticated.  A socket that only
 * refuses is a dead master's, which ssh will not replace: remove it, as
 * ssh's own ControlMaster=auto does.
 */
static void
start_master(int stale)
{
	const char	*args[] = { "-fN", "-o", "ControlMaster=yes", "-o",
			    "ControlPersist=yes", "--", opt.destination, NULL };
	pid_t		 pid;
	int		 status;

	if (stale && unlink(opt.ctl_path) == 0)
		logit(LL_INFO, "removed %s, a dead master's socket",
		    opt.ctl_path);
	logit(LL_INFO, "no master at %s: starting one with ssh -fN %s",
	    opt.ctl_path, opt.destination);
	if ((pid = fork()) == -1)
		fatal("fork");
	if (pid == 0)
		ssh_exec(args);
	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR)
			fatal("waitpid");
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fatalx_status(EXIT_NO_MASTER, "StartMaster: ssh -fN %s failed "
		    "(exit %d)", opt.destination, WIFEXITED(status) ?
		    WEXITSTATUS(status) : -1);
}

/*
 * Before serving, make sure a master listens, and in the foreground
 * (full) that it answers HELLO.  Not with -f: under LocalCommand the
 * master answers nothing until we exit.
 */
void
master_check(int full)
{
	char	err[ERR_MAX];
	int	fd;

	if ((fd = mux_connect_fd(opt.ctl_path, err, sizeof(err))) == -1 &&
	    opt.start_master && opt.destination != NULL) {
		start_master(errno == ECONNREFUSED);
		fd = mux_connect_fd(opt.ctl_path, err, sizeof(err));
	}
	if (fd == -1)
		no_master(err);
	if (full && mux_hello_sync(fd, HELLO_TIMEOUT_MS, err,
	    sizeof(err)) == -1) {
		close(fd);
		no_master(err);
	}
	close(fd);
}

/* Watch for the master from the loop on; found or not, keep looking. */
void
master_watch_start(void)
{
	if ((master.retry_ev = evtimer_new(evbase, retry_cb, NULL)) == NULL)
		fatalx("out of memory");
	master_watch_open();
}

/* Do we know of a live master: its pid, or a mux link asking it? */
int
master_known(void)
{
	return master.pid != 0 || master.watch_mux != NULL;
}

/* ActiveMode=auto: has this master's sshd refused a remote forward? */
int
master_rfwd_refused(void)
{
	return master.rfwd_refused;
}

void
master_rfwd_refuse(const char *why)
{
	if (!master.rfwd_refused)
		logit(LL_INFO, "ssh refused a remote forward (%s): from now on "
		    "active mode goes passive toward the FTP servers", why);
	master.rfwd_refused = 1;
}
