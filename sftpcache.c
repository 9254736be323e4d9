/*
 * sftpcache.c: Backend=sftp, what a session was told of its files a
 * moment ago.  Clients ask SIZE and MDTM of every file they are about
 * to fetch, right after a listing that said both (lftp's mget and
 * mirror do): each answer from the server would cost a round trip
 * through the master, more than the file itself when it is small.  So
 * a listing's and a STAT's attributes answer for SFS_CACHE_SECS, and
 * anything a session of ours changes empties every cache.  A change by
 * anyone else on the ssh server may go unseen that long.  Symbolic links are
 * not kept: a listing gives the link's attributes, STAT its target's.
 */

#include <sys/types.h>
#include <sys/stat.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ftpfwd.h"

struct sfs_cached {
	TAILQ_ENTRY(sfs_cached)	 entry;
	struct sftp_attrs	 attrs;
	struct timespec		 when;
	char			 path[];
};

void
sc_clear(struct session *s)
{
	struct sfs_cached	*c;

	while ((c = TAILQ_FIRST(&s->sfs->cache)) != NULL) {
		TAILQ_REMOVE(&s->sfs->cache, c, entry);
		free(c);
	}
	s->sfs->ncached = 0;
}

/*
 * A change by any session empties every session's cache: they all act
 * as the same ssh user on the same files.
 */
void
sc_clear_all(void)
{
	struct session	*s;

	TAILQ_FOREACH(s, &sessions, entry)
		if (s->sfs != NULL)
			sc_clear(s);
}

/* dir and name (name NULL: dir is the whole path). */
void
sc_put(struct session *s, const char *dir, const char *name,
    const struct sftp_attrs *a)
{
	struct sfs_cached	*c;
	size_t			 dlen = strlen(dir), nlen;

	if (!(a->flags & SSH_FILEXFER_ATTR_PERMISSIONS) ||
	    !(S_ISREG(a->perm) || S_ISDIR(a->perm)))
		return;
	if (s->sfs->ncached >= SFS_CACHE_MAX)
		sc_clear(s);
	nlen = name != NULL ? strlen(name) + 1 : 0;
	if (dlen + nlen >= SFS_PATH_MAX ||
	    (c = malloc(sizeof(*c) + dlen + nlen + 1)) == NULL)
		return;
	memcpy(c->path, dir, dlen);
	if (name != NULL) {
		c->path[dlen] = '/';
		if (dlen == 1 && dir[0] == '/')
			dlen = 0;	/* "/" and "a" make "/a" */
		memcpy(c->path + dlen + 1, name, nlen - 1);
	}
	c->path[dlen + nlen] = '\0';
	c->attrs = *a;
	clock_gettime(CLOCK_MONOTONIC, &c->when);
	TAILQ_INSERT_HEAD(&s->sfs->cache, c, entry);
	s->sfs->ncached++;
}

/* The attributes of path, if told less than SFS_CACHE_SECS ago. */
const struct sftp_attrs *
sc_get(struct session *s, const char *path)
{
	struct sfs_cached	*c;

	TAILQ_FOREACH(c, &s->sfs->cache, entry) {
		if (strcmp(c->path, path) != 0)
			continue;
		if (elapsed_since(&c->when) < SFS_CACHE_SECS)
			return &c->attrs;
		return NULL;
	}
	return NULL;
}
