/*
 * sftpdata.c: Backend=sftp, the data connection of the next transfer,
 * between the client and ftpfwd on this machine.  PASV and EPSV: our
 * listener on the control's address, which takes a connection only
 * from the client's host and, on this machine, from the session's own
 * user (LocalUsers).  PORT and EPRT: we connect to the client's host,
 * at a port of 1024 or more.  With PROT P a relay (tls.c) puts TLS on
 * it, and the transfer moves clear bytes through a socketpair.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include "ftpfwd.h"
#include "tls.h"

/* The data connection, before a transfer takes it. */

void
sx_data_close(struct session *s)
{
	struct sfs_data	*d = &s->sfs->data;

	sock_listener_close(&d->lev, &d->lfd);
	if (d->cev != NULL) {
		event_free(d->cev);
		d->cev = NULL;
	}
	if (d->fd != -1)
		close(d->fd);
	d->fd = -1;
	d->ready = 0;
	d->cb = NULL;
	d->mode = SD_NONE;
}

/* Tell the transfer waiting for the data connection, once. */
static void
data_tell(struct session *s, const char *err)
{
	void	(*cb)(struct session *, const char *) = s->sfs->data.cb;

	s->sfs->data.cb = NULL;
	if (s->sfs->data.cev != NULL)
		event_del(s->sfs->data.cev);
	if (cb != NULL)
		cb(s, err);
}

static void
pasv_accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	struct session		*s = arg;
	struct sfs_data		*d = &s->sfs->data;
	struct sockaddr_storage	 peer, local;
	socklen_t		 plen = sizeof(peer), llen = sizeof(local);
	char			 why[LOG_TEXT_MAX], where[ADDR_STR_MAX];
	int			 fd;

	(void)what;
	if ((fd = accept4(lfd, (struct sockaddr *)&peer, &plen,
	    SOCK_NONBLOCK | SOCK_CLOEXEC)) == -1) {
		if (errno == EAGAIN || errno == EINTR ||
		    errno == ECONNABORTED)
			return;
		/* EMFILE and the like: a level-triggered event would spin. */
		snprintf(why, sizeof(why), "425 ftpfwd: cannot accept the "
		    "data connection: %s", strerror(errno));
		logit(LL_ERROR, "#%u %s", s->id, why + 4);
		sock_listener_close(&d->lev, &d->lfd);
		d->mode = SD_NONE;
		data_tell(s, why);
		return;
	}
	addr_unmap(&peer);
	if (getsockname(fd, (struct sockaddr *)&local, &llen) == -1 ||
	    !addr_same_host(&peer, &s->client_addr) ||
	    access_data(&s->client_who, &local, &peer, why,
	    sizeof(why)) == -1) {
		if (!addr_same_host(&peer, &s->client_addr))
			snprintf(why, sizeof(why), "not the client's host");
		logit(LL_ERROR, "#%u data connection from %s refused: %s",
		    s->id, addr_str(&peer, where, sizeof(where)), why);
		sock_reset_close(fd);
		return;
	}
	sock_set_opts(fd);
	sock_listener_close(&d->lev, &d->lfd);
	d->fd = fd;
	d->ready = 1;
	data_tell(s, NULL);
}

/* PASV (ext 0) or EPSV (ext 1): a listener on the control's address. */
void
sx_pasv(struct session *s, int ext)
{
	struct sfs_data		*d = &s->sfs->data;
	struct sockaddr_storage	 where = s->local_addr;
	socklen_t		 len = addr_len(&where);
	char			 buf[FTP_FMT_MAX];
	int			 n;

	if (!ext && s->sfs->epsv_all) {
		client_reply(s, "501 ftpfwd: after EPSV ALL, only EPSV");
		return;
	}
	if (!ext && where.ss_family != AF_INET) {
		client_reply(s, "425 ftpfwd: PASV needs IPv4, use EPSV");
		return;
	}
	sx_data_close(s);
	addr_set_port(&where, 0);
	if ((d->lfd = socket(where.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1 ||
	    bind(d->lfd, (struct sockaddr *)&where, len) == -1 ||
	    listen(d->lfd, PASV_BACKLOG) == -1 ||
	    getsockname(d->lfd, (struct sockaddr *)&where, &len) == -1 ||
	    (d->lev = event_new(evbase, d->lfd, EV_READ | EV_PERSIST,
	    pasv_accept_cb, s)) == NULL || event_add(d->lev, NULL) != 0) {
		client_reply(s, "425 ftpfwd: cannot listen for the data "
		    "connection: %s", strerror(errno));
		sx_data_close(s);
		return;
	}
	d->mode = SD_PASV;
	n = ext ? ftp_fmt_229(buf, sizeof(buf), addr_port(&where)) :
	    ftp_fmt_227(buf, sizeof(buf), (struct sockaddr *)&where);
	if (n > 0)
		evbuffer_add(bufferevent_get_output(s->ctl.cout), buf,
		    (size_t)n);
}

/* PORT (ext 0) or EPRT (ext 1): the client's port, checked now. */
void
sx_port(struct session *s, int ext, const char *arg)
{
	struct sockaddr_storage	to;

	if (s->sfs->epsv_all) {
		client_reply(s, "501 ftpfwd: after EPSV ALL, only EPSV");
		return;
	}
	memset(&to, 0, sizeof(to));
	if ((ext ? ftp_parse_eprt(arg, strlen(arg), &to) :
	    ftp_parse_port(arg, strlen(arg), &to)) == -1) {
		client_reply(s, "501 ftpfwd: malformed %s argument",
		    ext ? "EPRT" : "PORT");
		return;
	}
	addr_unmap(&to);
	if (!addr_same_host(&to, &s->client_addr)) {
		client_reply(s, "504 ftpfwd: %s to another host than the "
		    "client's is refused", ext ? "EPRT" : "PORT");
		return;
	}
	if (addr_port(&to) < 1024) {
		client_reply(s, "504 ftpfwd: %s to a port below 1024 is "
		    "refused", ext ? "EPRT" : "PORT");
		return;
	}
	sx_data_close(s);
	s->sfs->data.port = to;
	s->sfs->data.mode = SD_PORT;
	client_reply(s, "200 %s command successful.", ext ? "EPRT" : "PORT");
}

static void
data_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session		*s = arg;
	struct sfs_data		*d = &s->sfs->data;
	socklen_t		 elen = sizeof(int);
	char			 why[LOG_TEXT_MAX];
	int			 err = 0;

	(void)fd;
	if (d->mode != SD_PORT || !(what & EV_WRITE)) {
		data_tell(s, "425 ftpfwd: no data connection came in time");
		return;
	}
	if (getsockopt(d->fd, SOL_SOCKET, SO_ERROR, &err, &elen) == -1)
		err = errno;
	if (err != 0) {
		snprintf(why, sizeof(why), "425 ftpfwd: cannot connect to the "
		    "client's data port: %s", strerror(err));
		data_tell(s, why);
		return;
	}
	/*
	 * The client named its port on its own host; as for forwarded
	 * sessions, no uid is asked of it (its socket is not accepted
	 * yet): the data goes where the session's own client said.
	 */
	sock_set_opts(d->fd);
	d->ready = 1;
	data_tell(s, NULL);
}

/* The transfer wants its data connection: cb gets it, or why not. */
void
sx_data_get(struct sfs_xfer *x, void (*cb)(struct session *, const char *))
{
	struct session	*s = x->s;
	struct sfs_data	*d = &s->sfs->data;
	struct timeval	 tv = { SFS_DATA_TIMEOUT, 0 };
	short		 what = EV_TIMEOUT;

	d->cb = cb;
	if (d->ready) {
		data_tell(s, NULL);
		return;
	}
	if (d->mode == SD_PORT) {
		if ((d->fd = socket(d->port.ss_family, SOCK_STREAM |
		    SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1 ||
		    (connect(d->fd, (struct sockaddr *)&d->port,
		    addr_len(&d->port)) == -1 && errno != EINPROGRESS)) {
			data_tell(s, "425 ftpfwd: cannot connect to the "
			    "client's data port");
			return;
		}
		what = EV_WRITE;
	}
	if ((d->cev = event_new(evbase, d->mode == SD_PORT ? d->fd : -1,
	    what, data_timeout_cb, s)) == NULL ||
	    event_add(d->cev, &tv) != 0)
		data_tell(s, "425 ftpfwd: out of memory");
}

static void
sx_relay_cb(struct relay *r, const char *why, void *arg)
{
	struct sfs_xfer	*x = arg;

	relay_free(r);
	x->relay = NULL;
	x->relay_done = 1;
	if (why != NULL && !x->dead) {
		sx_end(x, "426 ftpfwd: data connection: %s", why);
		return;
	}
	if (x->finishing)
		sx_finish(x);
}

/*
 * Take the data connection: TLS through a relay with PROT P, else the
 * socket itself.  Returns -1 having ended the transfer.
 */
int
sx_data_open(struct sfs_xfer *x)
{
	struct session		*s = x->s;
	struct bufferevent	*bc = NULL, *bp = NULL;
	SSL			*ssl;
	int			 fd = s->sfs->data.fd, sp[2];

	s->sfs->data.fd = -1;
	s->sfs->data.ready = 0;
	x->fd = fd;
	if (ftps_data_tls(s) & DATA_TLS_CLIENT) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0, sp) == -1) {
			sx_end(x, "425 ftpfwd: socketpair: %s",
			    strerror(errno));
			return -1;
		}
		x->fd = sp[0];
		if ((ssl = tls_client_ssl(1)) == NULL ||
		    (bc = bufferevent_openssl_socket_new(evbase, fd, ssl,
		    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE)) ==
		    NULL || (bp = bufferevent_socket_new(evbase, sp[1],
		    BEV_OPT_CLOSE_ON_FREE)) == NULL ||
		    (x->relay = relay_new(bc, bp, sx_relay_cb, x)) == NULL) {
			if (bc == NULL)
				close(fd);
			else
				bufferevent_free(bc);
			if (bp == NULL)
				close(sp[1]);
			else
				bufferevent_free(bp);
			sx_end(x, "425 ftpfwd: cannot start TLS on the data "
			    "connection");
			return -1;
		}
	}
	return 0;
}
