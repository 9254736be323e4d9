/*
 * passive.c: PASV and EPSV.  The server's 227/229 is rewritten to a
 * listener of ours on the client's side of this machine, and what the
 * client connects there is handed to the master as a stdio forward to
 * the server's passive port (or, with PassiveMode=active, paired with
 * the server's own connection).  Both families, either way.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "ftpfwd.h"
#include "peeruid.h"

static void	pasv_accept_cb(evutil_socket_t, short, void *);

void
pasv_close(struct session *s)
{
	sock_listener_close(&s->pasv.ev, &s->pasv.fd);
}

/*
 * The client connected to our passive port: hand it to the master, or
 * with PassiveMode=active pair it with the server's connection.
 */
void
pasv_accept(struct session *s)
{
	struct sockaddr_storage	 peer, local;
	socklen_t		 plen = sizeof(peer), llen = sizeof(local);
	struct data_conn	*d;
	char			 pstr[ADDR_STR_MAX], why[PEERUID_ERR_MAX];
	int			 fd, refused;

	if ((fd = accept4(s->pasv.fd, (struct sockaddr *)&peer, &plen,
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
	/* The same address is every local user's: the uid must match. */
	if (getsockname(fd, (struct sockaddr *)&local, &llen) == -1) {
		snprintf(why, sizeof(why), "getsockname: %s", strerror(errno));
		refused = 1;
	} else
		refused = access_data(&s->client_who, &local, &peer, why,
		    sizeof(why)) == -1;
	if (refused) {
		logit(LL_ERROR, "#%u passive data connection from %s refused: "
		    "%s; still waiting for the client's", s->id,
		    addr_str(&peer, pstr, sizeof(pstr)), why);
		sock_reset_close(fd);
		return;
	}
	pasv_close(s);
	sock_set_opts(fd);
	logit(LL_DEBUG1, "#%u data connection from %s", s->id,
	    addr_str(&peer, pstr, sizeof(pstr)));
	if (data_conn_pair(s, 0, fd, ftps_data_tls(s)))
		return;
	if ((d = data_conn_new(s, DM_PASSIVE, ftps_data_tls(s))) == NULL) {
		close(fd);
		return;
	}
	if (data_pasv_take(d, fd) == -1)
		data_conn_fail(d, "ftpfwd could not hand the data connection "
		    "to ssh");
}

static void
pasv_accept_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	pasv_accept(arg);
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
	    listen(fd, PASV_BACKLOG) == -1 ||
	    getsockname(fd, (struct sockaddr *)where, &len) == -1)
		goto fail;
	if ((s->pasv.ev = event_new(evbase, fd, EV_READ | EV_PERSIST,
	    pasv_accept_cb, s)) == NULL || event_add(s->pasv.ev, NULL) != 0)
		goto fail;
	s->pasv.fd = fd;
	return 0;
 fail:
	close(fd);
	if (s->pasv.ev != NULL) {
		event_free(s->pasv.ev);
		s->pasv.ev = NULL;
	}
	return -1;
}

/*
 * A whole 227 or 229 reply, to the PASV or EPSV sent, is in s->ctl.held:
 * where the server's passive port is, as the ssh server reaches it.
 */
int
pasv_parse(struct session *s, enum ftp_cmd sent)
{
	struct sockaddr_storage	 srv;
	size_t			 len = evbuffer_get_length(s->ctl.held);
	char			*text, why[LOG_TEXT_MAX];
	uint16_t		 port;
	int			 r;

	text = (char *)evbuffer_pullup(s->ctl.held, -1);
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
		addr_host((struct sockaddr *)&srv, s->pasv.host,
		    sizeof(s->pasv.host));
	else
		snprintf(s->pasv.host, sizeof(s->pasv.host), "%s",
		    s->fwd->host);
	s->pasv.port = port;
	return 0;
}

/* Answer the client's PASV or EPSV with a port of ours; 0 if we can't. */
static uint16_t
pasv_answer(struct session *s, enum ftp_cmd cmd, enum data_mode mode)
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
	evbuffer_add(bufferevent_get_output(s->ctl.cout), line, (size_t)r);
	s->xfer.mode = mode;
	return addr_port(&where);
}

/* The server's 227/229 to the client's PASV/EPSV: point it at us. */
void
pasv_reply(struct session *s, const struct pending *p)
{
	uint16_t	port;

	if (pasv_parse(s, (enum ftp_cmd)p->sent) == -1)
		client_reply(s, "425 ftpfwd: cannot parse the server's "
		    "passive reply");
	else if ((port = pasv_answer(s, (enum ftp_cmd)p->cmd,
	    DM_PASSIVE)) != 0)
		logit(LL_DEBUG1, "#%u passive port %u -> %s:%u", s->id, port,
		    s->pasv.host, s->pasv.port);
	evbuffer_drain(s->ctl.held, evbuffer_get_length(s->ctl.held));
}

/*
 * Ask the server for a passive port: EPSV toward IPv6, or where its FEAT
 * lists it; PASV otherwise.  For the client's cmd, or as our own.
 */
void
pasv_send(struct session *s, enum ftp_cmd cmd, int ours)
{
	enum ftp_cmd	sent = FTP_CMD_PASV;

	if (s->fwd->act_addr.ss_family == AF_INET6 ||
	    (s->ctl.srv_feat & FTP_FEAT_EPSV))
		sent = FTP_CMD_EPSV;
	evbuffer_add_printf(bufferevent_get_output(s->ctl.srv), "%s\r\n",
	    sent == FTP_CMD_EPSV ? "EPSV" : "PASV");
	pending_push(s, ours ? sent : cmd, sent, ours);
}

/*
 * PassiveMode=active: answer PASV/EPSV from our own listener, and pair
 * what comes there with the server's connection to the session's remote
 * forward, which the transfer command will ask for (xlate.c).
 */
static void
pasv_to_active(struct session *s, enum ftp_cmd cmd)
{
	struct data_conn	*d;
	uint16_t		 port;

	if ((d = data_conn_new(s, DM_PASV_ACT, ftps_data_tls(s))) == NULL) {
		client_reply(s, "425 ftpfwd: out of memory");
		return;
	}
	d->pairing = 1;
	snprintf(d->target, sizeof(d->target), "the server's PORT");
	if ((port = pasv_answer(s, cmd, DM_PASV_ACT)) == 0) {
		data_conn_free(d);
		return;
	}
	s->xl.to = XL_TO_ACTIVE;
	logit(LL_DEBUG1, "#%u passive port %u -> the server's PORT", s->id,
	    port);
}

/*
 * PASV or EPSV from the client.  ftpfwd asks the server in the server's
 * family (EPSV on IPv6, or where FEAT lists it; PASV otherwise) and
 * answers the client in the client's; with PassiveMode=active it
 * answers here and goes active toward the server when the transfer
 * comes.
 */
void
pasv_command(struct session *s, enum ftp_cmd cmd, const char *arg,
    size_t len)
{
	int	proto = 0, v6 = s->local_addr.ss_family == AF_INET6;

	if (cmd == FTP_CMD_EPSV) {
		if (ftp_parse_epsv(arg, len, &proto) == -1) {
			client_reply(s, "501 ftpfwd: malformed EPSV argument");
			return;
		}
		if (proto == FTP_EPSV_ALL) {
			/* Ours to keep: the server need not know. */
			s->ctl.epsv_all = 1;
			client_reply(s, "200 EPSV ALL ok");
			return;
		}
		if (proto != 0 && proto != (v6 ? 2 : 1)) {
			client_reply(s, "522 Network protocol not supported, "
			    "use (%d)", v6 ? 2 : 1);
			return;
		}
	} else if (s->ctl.epsv_all) {
		client_reply(s, "503 ftpfwd: only EPSV after EPSV ALL");
		return;
	} else if (v6) {
		client_reply(s, "425 ftpfwd: PASV cannot name an IPv6 "
		    "address, use EPSV");
		return;
	}
	data_setup_forget(s);
	if (opt.pasv_mode == PM_ACTIVE)
		pasv_to_active(s, cmd);
	else
		pasv_send(s, cmd, 0);
}
