/*
 * access.c: LocalUsers, which local accounts may use our forwards.  Any
 * account on this machine can connect to 127.0.0.1; for a peer whose
 * address is this machine's, the kernel says which uid owns its socket
 * (peeruid.c), and that uid must be on the list.  A data connection
 * must come from the very uid of its session's control connection, so
 * that no other local user can take a passive port first.  Peers on
 * other hosts (a -L on a public address) keep the address checks only.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ftpfwd.h"
#include "peeruid.h"

static struct {
	int	any;			/* LocalUsers=any */
	uid_t	uids[LOCAL_USERS_MAX];
	size_t	nuids;
} local_users = { 0, { 0 }, 0 };

static void
access_add(uid_t uid)
{
	if (local_users.nuids == nitems(local_users.uids))
		fatalx("LocalUsers: at most %d users", LOCAL_USERS_MAX);
	local_users.uids[local_users.nuids++] = uid;
}

/* -o LocalUsers=self|any|name[,name...]: names, uids, self, or any. */
void
access_parse(const char *value)
{
	struct passwd	*pw;
	char		*copy, *name, *next;
	unsigned long	 uid;

	local_users.any = 0;
	local_users.nuids = 0;
	copy = xstrdup(value);
	for (name = copy; name != NULL; name = next) {
		if ((next = strchr(name, ',')) != NULL)
			*next++ = '\0';
		if (strcmp(name, "any") == 0 && name == copy && next == NULL)
			local_users.any = 1;
		else if (strcmp(name, "self") == 0)
			access_add(getuid());
		else if ((pw = getpwnam(name)) != NULL)
			access_add(pw->pw_uid);
		else if (ftp_parse_uint(name, strlen(name), UINT32_MAX - 1,
		    &uid) == 0)
			access_add((uid_t)uid);
		else
			fatalx("LocalUsers: no user \"%s\" (self, any, or "
			    "user names and uids separated by commas)", name);
	}
	free(copy);
}

static int
access_listed(uid_t uid)
{
	size_t	i;

	if (local_users.any)
		return 1;
	for (i = 0; i < local_users.nuids; i++)
		if (local_users.uids[i] == uid)
			return 1;
	return 0;
}

/* A user's name for a message, or "#uid" when it has none. */
static const char *
access_name(uid_t uid, char *buf, size_t sz)
{
	struct passwd	*pw;

	if ((pw = getpwuid(uid)) != NULL)
		escape(buf, sz, pw->pw_name, strlen(pw->pw_name));
	else
		snprintf(buf, sz, "#%lu", (unsigned long)uid);
	return buf;
}

/*
 * Who is at the far end of a connection: on another host, or which uid
 * on this one.  Returns -1 when a local peer's uid cannot be learned,
 * with why in err.
 */
static int
access_who(const struct sockaddr_storage *local,
    const struct sockaddr_storage *peer, struct who *w, char *err,
    size_t errsz)
{
	memset(w, 0, sizeof(*w));
	/* Cannot list the interfaces (-1): judge it as local. */
	if (addr_is_local(peer) == 0)
		return 0;
	w->local = 1;
	if (peer_uid(local, peer, &w->uid, err, errsz) == -1)
		return -1;
	w->known = 1;
	return 0;
}

/*
 * May this client use the forward?  0 if so, with who it is in *w; -1
 * if not, with the reply that says why in reply (logged here).
 */
int
access_client(const struct sockaddr_storage *local,
    const struct sockaddr_storage *peer, struct who *w, char *reply,
    size_t replysz)
{
	char	err[PEERUID_ERR_MAX], name[USER_LOG_MAX], where[ADDR_STR_MAX];

	addr_str(peer, where, sizeof(where));
	if (access_who(local, peer, w, err, sizeof(err)) == -1) {
		if (local_users.any)
			return 0;
		logit(LL_ERROR, "refused a client from %s: %s", where, err);
		snprintf(reply, replysz, "421 ftpfwd: cannot learn which local "
		    "user you are, so this forward (LocalUsers) refuses you");
		return -1;
	}
	if (!w->local || access_listed(w->uid))
		return 0;
	access_name(w->uid, name, sizeof(name));
	logit(LL_ERROR, "refused a client from %s: local user %s (uid %lu) "
	    "is not in LocalUsers", where, name, (unsigned long)w->uid);
	snprintf(reply, replysz, "421 ftpfwd: local user %s (uid %lu) may "
	    "not use this forward", name, (unsigned long)w->uid);
	return -1;
}

/*
 * A data connection to our passive port: it must be the session's own
 * user's, when that is known.  0 if so; -1 with why if not.
 */
int
access_data(const struct who *owner, const struct sockaddr_storage *local,
    const struct sockaddr_storage *peer, char *why, size_t whysz)
{
	struct who	w;
	char		err[PEERUID_ERR_MAX], name[USER_LOG_MAX];

	if (!owner->known)
		return 0;
	if (access_who(local, peer, &w, err, sizeof(err)) == -1) {
		snprintf(why, whysz, "%s", err);
		return -1;
	}
	if (w.known && w.uid == owner->uid)
		return 0;
	if (w.known)
		snprintf(why, whysz, "local user %s (uid %lu), not the "
		    "session's", access_name(w.uid, name, sizeof(name)),
		    (unsigned long)w.uid);
	else
		snprintf(why, whysz, "from another host");
	return -1;
}
