/*
 * rundir.c: ftpfwd's private directory, $TMPDIR/ftpfwd.XXXXXX, mode 0700.
 * It holds the Unix sockets the sessions' remote forwards lead to (only
 * our own user, and so the master, can connect to them), a "state" file
 * naming our master, locked for as long as we live, and one "f<id>" file
 * per remote forward, written before it is asked for and removed once
 * it is cancelled.  An ftpfwd killed with SIGKILL leaves all of that
 * behind, and its remote forwards stay open on the ssh server until the
 * master exits; the next ftpfwd that reaches the same master finds the
 * directory unlocked, cancels those forwards with the tuple that opened
 * them, and removes it.
 */

#include <sys/types.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ftpfwd.h"
#include "ssh_mux.h"

#define RUNDIR_PREFIX	"ftpfwd."
#define RUNDIR_STATE	"state"
#define RUNDIR_LINE_MAX	(PATH_MAX + NI_MAXHOST + 16)
#define REAP_SCAN_MAX	1024	/* entries of $TMPDIR looked at, at most */
#define REAP_DIRS_MAX	16	/* predecessors' directories per look */
#define REAP_FWDS_MAX	64	/* forwards cancelled per directory */

static char	rundir[PATH_MAX];	/* ours, once made */
static int	state_fd = -1;		/* locked while we live */

/* The cancels of a dead ftpfwd's forwards, under way on our master. */
struct reap {
	struct mux_conn	*mc;
	u_int		 left;		/* cancels not yet answered */
	char		 name[NAME_MAX + 1];	/* its directory, to remove */
};

static const char *
rundir_parent(void)
{
	const char	*tmp;

	if ((tmp = getenv("TMPDIR")) == NULL || *tmp != '/' ||
	    strlen(tmp) > RUNDIR_PARENT_MAX)
		tmp = "/tmp";
	return tmp;
}

static int
rundir_path(char *buf, size_t sz, const char *name)
{
	return (size_t)snprintf(buf, sz, "%s/%s", rundir, name) >= sz ? -1 : 0;
}

/*
 * Our directory, made on first need, with its locked state file; its
 * path, or NULL with errno set.
 */
const char *
rundir_get(void)
{
	char	path[PATH_MAX], line[RUNDIR_LINE_MAX];
	int	fd;

	if (rundir[0] != '\0')
		return rundir;
	if ((size_t)snprintf(rundir, sizeof(rundir), "%s/" RUNDIR_PREFIX
	    "XXXXXX", rundir_parent()) >= sizeof(rundir) ||
	    mkdtemp(rundir) == NULL) {
		rundir[0] = '\0';
		return NULL;
	}
	snprintf(line, sizeof(line), "%s\n", opt.ctl_path);
	fd = -1;
	if (rundir_path(path, sizeof(path), RUNDIR_STATE) == -1 ||
	    (fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) ==
	    -1 || flock(fd, LOCK_EX | LOCK_NB) == -1 ||
	    write(fd, line, strlen(line)) != (ssize_t)strlen(line)) {
		/* Without its lock, a successor would take us for dead. */
		logit(LL_ERROR, "cannot write %s: %s", path, strerror(errno));
		if (fd != -1)
			close(fd);
		(void)unlink(path);
	} else
		state_fd = fd;
	return rundir;
}

/* Before asking for session id's remote forward: say so, for later. */
void
rundir_record(u_int id, const char *bind, const char *path)
{
	char	file[PATH_MAX], name[32], line[RUNDIR_LINE_MAX];
	int	fd, ok = 0;

	snprintf(name, sizeof(name), "f%u", id);
	snprintf(line, sizeof(line), "%s %s\n", bind, path);
	if (rundir[0] != '\0' && rundir_path(file, sizeof(file), name) == 0 &&
	    (fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) != -1) {
		ok = write(fd, line, strlen(line)) == (ssize_t)strlen(line);
		close(fd);
	}
	if (!ok)
		logit(LL_ERROR, "#%u cannot record its remote forward in %s: "
		    "%s", id, rundir, strerror(errno));
}

/* Its cancel has gone to the master: nothing left to reap. */
void
rundir_unrecord(u_int id)
{
	char	name[32];
	int	dfd;

	if (rundir[0] == '\0')
		return;
	snprintf(name, sizeof(name), "f%u", id);
	if ((dfd = open(rundir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) != -1) {
		(void)unlinkat(dfd, name, 0);
		close(dfd);
	}
}

/* Remove parent/name, a directory of ours, and what is in it. */
static void
dir_remove_at(int pfd, const char *name)
{
	struct dirent	*de;
	DIR		*d;
	int		 fd;

	if ((fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1)
		return;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0)
			(void)unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
	(void)unlinkat(pfd, name, AT_REMOVEDIR);
}

static void
dir_remove(const char *parent, const char *name)
{
	int	pfd;

	if ((pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return;
	dir_remove_at(pfd, name);
	close(pfd);
}

/* At exit, whatever way we leave: the directory and what is left in it. */
void
rundir_remove(void)
{
	const char	*name;

	if (rundir[0] == '\0')
		return;
	if ((name = strrchr(rundir, '/')) != NULL)
		dir_remove(rundir_parent(), name + 1);
	if (state_fd != -1)
		close(state_fd);
	state_fd = -1;
	rundir[0] = '\0';
}

static void
reap_done(struct reap *r)
{
	logit(LL_INFO, "removed %s/%s, left by an ftpfwd that died",
	    rundir_parent(), r->name);
	dir_remove(rundir_parent(), r->name);
	mux_free(r->mc);
	free(r);
}

static void
reap_cb(struct mux_conn *mc, enum mux_event ev, const struct mux_reply *r,
    void *arg)
{
	struct reap	*rp = arg;

	(void)mc;
	(void)r;
	if (ev == MUX_EV_CLOSED || ((ev == MUX_EV_OK ||
	    ev == MUX_EV_FAILURE) && --rp->left == 0))
		reap_done(rp);
}

/* One record of a dead ftpfwd's forward, in the open file fd: cancel. */
static void
reap_one(struct reap *r, int fd)
{
	char		 line[RUNDIR_LINE_MAX], *sp, *nl;
	ssize_t		 n;
	uint32_t	 rid;

	if ((n = read(fd, line, sizeof(line) - 1)) <= 0)
		return;
	line[n] = '\0';
	if ((nl = strchr(line, '\n')) == NULL ||
	    (sp = strchr(line, ' ')) == NULL || sp > nl)
		return;
	*nl = *sp = '\0';
	if (mux_close_rfwd_path(r->mc, line, 0, sp + 1, &rid) == 0) {
		logit(LL_VERBOSE, "cancelling a dead ftpfwd's remote forward "
		    "on %s to %s", line, sp + 1);
		r->left++;
	}
}

/*
 * The dead ftpfwd's directory dfd (named name), for our master: cancel
 * each remote forward it recorded, then remove the directory.
 */
static void
reap_forwards(int dfd, const char *name)
{
	char		 err[ERR_MAX];
	struct dirent	*de;
	struct reap	*r;
	DIR		*d;
	int		 fd;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return;
	snprintf(r->name, sizeof(r->name), "%s", name);
	fd = -1;
	if ((r->mc = mux_open(evbase, opt.ctl_path, reap_cb, r, err,
	    sizeof(err))) == NULL || (fd = dup(dfd)) == -1 ||
	    (d = fdopendir(fd)) == NULL) {
		if (fd != -1)
			close(fd);
		mux_free(r->mc);
		free(r);
		return;
	}
	while (r->left < REAP_FWDS_MAX && (de = readdir(d)) != NULL) {
		if (de->d_name[0] != 'f' || (fd = openat(dfd, de->d_name,
		    O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1)
			continue;
		reap_one(r, fd);
		close(fd);
	}
	closedir(d);
	if (r->left == 0)
		reap_done(r);
}

/*
 * Is the directory dfd a dead ftpfwd's?  Ours to judge only if it is our
 * user's own (opened without following a link) and no live ftpfwd holds
 * its state file's lock.  Returns 1 for our master, 2 for a master that
 * is gone (and its forwards with it), 0 to leave it alone.
 */
static int
reap_judge(int dfd)
{
	char		 line[RUNDIR_LINE_MAX], err[ERR_MAX], *nl;
	struct stat	 st;
	ssize_t		 n;
	int		 fd, gone;

	if (fstat(dfd, &st) == -1 || st.st_uid != getuid() ||
	    (st.st_mode & 077) != 0 || (fd = openat(dfd, RUNDIR_STATE,
	    O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return 0;
	if (flock(fd, LOCK_SH | LOCK_NB) == -1 ||
	    (n = read(fd, line, sizeof(line) - 1)) <= 0) {
		close(fd);
		return 0;	/* alive, or nothing to go by */
	}
	close(fd);
	line[n] = '\0';
	if ((nl = strchr(line, '\n')) == NULL)
		return 0;
	*nl = '\0';
	if (strcmp(line, opt.ctl_path) == 0)
		return 1;
	if ((fd = mux_connect_fd(line, err, sizeof(err))) != -1) {
		close(fd);
		return 0;	/* a live master's: its own ftpfwd cleans */
	}
	gone = errno == ENOENT || errno == ECONNREFUSED;
	return gone ? 2 : 0;
}

/*
 * The master answers: cancel what dead predecessors left on it, and
 * remove their directories (and those of dead ftpfwds whose master has
 * gone too, with all its forwards).  Bounded, as it runs in the loop.
 */
void
rundir_reap(void)
{
	const char	*parent = rundir_parent(), *mine;
	struct dirent	*de;
	DIR		*d;
	int		 pfd, dfd, n = 0, seen = 0;

	mine = rundir[0] != '\0' ? strrchr(rundir, '/') + 1 : "";
	if ((pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return;
	if ((d = opendir(parent)) == NULL) {
		close(pfd);
		return;
	}
	while (n < REAP_DIRS_MAX && seen++ < REAP_SCAN_MAX &&
	    (de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, RUNDIR_PREFIX,
		    strlen(RUNDIR_PREFIX)) != 0 ||
		    strcmp(de->d_name, mine) == 0 || (dfd = openat(pfd,
		    de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC)) == -1)
			continue;
		switch (reap_judge(dfd)) {
		case 1:
			reap_forwards(dfd, de->d_name);
			n++;
			break;
		case 2:
			logit(LL_INFO, "removed %s/%s, left by an ftpfwd that "
			    "died with its master", parent, de->d_name);
			dir_remove_at(pfd, de->d_name);
			n++;
			break;
		}
		close(dfd);
	}
	closedir(d);
	close(pfd);
}
