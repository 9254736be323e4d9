/*
 * rundir.c: ftpfwd's private directory, $TMPDIR/ftpfwd.XXXXXX, mode 0700.
 * It holds the Unix sockets the sessions' remote forwards lead to (only
 * our own user, and so the master, can connect to them), a "state" file
 * naming our pid and master, and a "forwards" file recording each remote
 * forward asked for, before it is asked.  An ftpfwd killed with SIGKILL
 * leaves both behind, and its remote forwards stay open on the ssh
 * server until the master exits; the next ftpfwd that reaches the same
 * master finds them here, cancels them with the tuple that opened them,
 * and removes the directory.
 */

#include <sys/types.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ftpfwd.h"
#include "ssh_mux.h"

#define RUNDIR_PREFIX	"ftpfwd."
#define RUNDIR_STATE	"state"
#define RUNDIR_FORWARDS	"forwards"
#define RUNDIR_LINE_MAX	(PATH_MAX + NI_MAXHOST + 16)
#define REAP_DIRS_MAX	64	/* predecessors' directories, at most */
#define REAP_FWDS_MAX	256	/* forwards cancelled per directory */

static char	rundir[PATH_MAX];	/* ours, once made */

/* A remote forward of a dead ftpfwd, to cancel on our master. */
struct reap {
	struct mux_conn	*mc;
	u_int		 left;		/* cancels not yet answered */
	char		 dir[PATH_MAX];	/* to remove once all are done */
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
rundir_write(const char *name, const char *line, int flags)
{
	char	path[PATH_MAX];
	int	fd, ok;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", rundir, name) >=
	    sizeof(path))
		return -1;
	if ((fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW |
	    flags, 0600)) == -1)
		return -1;
	ok = write(fd, line, strlen(line)) == (ssize_t)strlen(line);
	close(fd);
	return ok ? 0 : -1;
}

/* Our directory, made on first need; its path, or NULL with errno. */
const char *
rundir_get(void)
{
	char	line[RUNDIR_LINE_MAX];

	if (rundir[0] != '\0')
		return rundir;
	if ((size_t)snprintf(rundir, sizeof(rundir), "%s/" RUNDIR_PREFIX
	    "XXXXXX", rundir_parent()) >= sizeof(rundir) ||
	    mkdtemp(rundir) == NULL) {
		rundir[0] = '\0';
		return NULL;
	}
	snprintf(line, sizeof(line), "%ld %s\n", (long)getpid(), opt.ctl_path);
	if (rundir_write(RUNDIR_STATE, line, O_EXCL) == -1)
		logit(LL_ERROR, "cannot write %s/%s: %s", rundir,
		    RUNDIR_STATE, strerror(errno));
	return rundir;
}

/* Before asking for a remote forward: say so, for a successor. */
void
rundir_record(const char *bind, const char *path)
{
	char	line[RUNDIR_LINE_MAX];

	snprintf(line, sizeof(line), "%s %s\n", bind, path);
	if (rundir[0] != '\0' &&
	    rundir_write(RUNDIR_FORWARDS, line, O_APPEND) == -1)
		logit(LL_ERROR, "cannot write %s/%s: %s", rundir,
		    RUNDIR_FORWARDS, strerror(errno));
}

static void
dir_remove(const char *dir)
{
	struct dirent	*de;
	DIR		*d;

	if ((d = opendir(dir)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 ||
			    strcmp(de->d_name, "..") == 0)
				continue;
			(void)unlinkat(dirfd(d), de->d_name, 0);
		}
		closedir(d);
	}
	(void)rmdir(dir);
}

/* At exit, whatever way we leave: the directory and what is left in it. */
void
rundir_remove(void)
{
	if (rundir[0] == '\0')
		return;
	dir_remove(rundir);
	rundir[0] = '\0';
}

static void
reap_done(struct reap *r)
{
	logit(LL_INFO, "removed %s, left by an ftpfwd that died", r->dir);
	dir_remove(r->dir);
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

/*
 * A dead ftpfwd's directory at dir, for our master: cancel each remote
 * forward it recorded, then remove the directory.
 */
static void
reap_forwards(const char *dir)
{
	char		 path[PATH_MAX], line[RUNDIR_LINE_MAX], err[ERR_MAX];
	char		*sp, *nl;
	struct reap	*r;
	FILE		*fp;
	uint32_t	 rid;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return;
	snprintf(r->dir, sizeof(r->dir), "%s", dir);
	if ((size_t)snprintf(path, sizeof(path), "%s/" RUNDIR_FORWARDS, dir) >=
	    sizeof(path) || (fp = fopen(path, "re")) == NULL) {
		dir_remove(dir);
		free(r);
		return;
	}
	if ((r->mc = mux_open(evbase, opt.ctl_path, reap_cb, r, err,
	    sizeof(err))) == NULL) {
		fclose(fp);
		free(r);
		return;
	}
	while (r->left < REAP_FWDS_MAX && fgets(line, sizeof(line), fp)) {
		if ((nl = strchr(line, '\n')) == NULL ||
		    (sp = strchr(line, ' ')) == NULL)
			continue;
		*nl = *sp = '\0';
		if (mux_close_rfwd_path(r->mc, line, 0, sp + 1, &rid) == 0) {
			logit(LL_VERBOSE, "cancelling a dead ftpfwd's remote "
			    "forward on %s to %s", line, sp + 1);
			r->left++;
		}
	}
	fclose(fp);
	if (r->left == 0)
		reap_done(r);
}

/*
 * Is dir a dead ftpfwd's, and for which master?  Ours only if it is our
 * user's own directory (not a link), holds a state file, and its pid is
 * gone.  Returns 1 for our master, 2 for a master that is gone, else 0.
 */
static int
reap_judge(const char *dir)
{
	char		 path[PATH_MAX], line[RUNDIR_LINE_MAX], err[ERR_MAX];
	char		*master, *nl;
	struct stat	 st;
	FILE		*fp;
	long		 pid;
	int		 fd;

	if (lstat(dir, &st) == -1 || !S_ISDIR(st.st_mode) ||
	    st.st_uid != getuid() || (st.st_mode & 077) != 0)
		return 0;
	if ((size_t)snprintf(path, sizeof(path), "%s/" RUNDIR_STATE, dir) >=
	    sizeof(path) || (fp = fopen(path, "re")) == NULL)
		return 0;
	master = fgets(line, sizeof(line), fp);
	fclose(fp);
	if (master == NULL || (nl = strchr(line, '\n')) == NULL ||
	    (master = strchr(line, ' ')) == NULL)
		return 0;
	*nl = *master++ = '\0';
	pid = strtol(line, NULL, 10);
	if (pid <= 1 || pid == (long)getpid() ||
	    kill((pid_t)pid, 0) == 0 || errno != ESRCH)
		return 0;
	if (strcmp(master, opt.ctl_path) == 0)
		return 1;
	if ((fd = mux_connect_fd(master, err, sizeof(err))) != -1) {
		close(fd);
		return 0;	/* a live master's: its own ftpfwd cleans */
	}
	return 2;
}

/*
 * The master answers: cancel what dead predecessors left on it, and
 * remove their directories (and those of dead ftpfwds whose master has
 * gone too, with all its forwards).
 */
void
rundir_reap(void)
{
	const char	*parent = rundir_parent();
	char		 dir[PATH_MAX];
	struct dirent	*de;
	DIR		*d;
	int		 n = 0;

	if ((d = opendir(parent)) == NULL)
		return;
	while (n < REAP_DIRS_MAX && (de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, RUNDIR_PREFIX,
		    strlen(RUNDIR_PREFIX)) != 0 ||
		    (size_t)snprintf(dir, sizeof(dir), "%s/%s", parent,
		    de->d_name) >= sizeof(dir) || strcmp(dir, rundir) == 0)
			continue;
		switch (reap_judge(dir)) {
		case 1:
			reap_forwards(dir);
			n++;
			break;
		case 2:
			logit(LL_INFO, "removed %s, left by an ftpfwd that "
			    "died with its master", dir);
			dir_remove(dir);
			n++;
			break;
		}
	}
	closedir(d);
}
