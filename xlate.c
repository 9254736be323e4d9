/*
 * xlate.c: mode translation.  When the client's mode is not the one
 * ftpfwd uses toward the server (ActiveMode=passive, auto after sshd
 * refused a remote forward, PassiveMode=active), the transfer command
 * waits while ftpfwd sets up the server's side itself: its own PASV and
 * a connection to the client's data port, or the remote forward and its
 * own PORT.  Then the command passes on, or is answered with why not.
 */

#include <sys/types.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "ftpfwd.h"

/* A transfer command waits while its data connection is set up. */
int
xl_busy(const struct session *s)
{
	return s->xl.state == XL_ASKED || s->xl.state == XL_CONNECTING;
}

/*
 * The next transfer cannot be set up: answer its command with why,
 * rather than pass it on.
 */
void
xl_fail(struct session *s, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(s->xl.err, sizeof(s->xl.err), fmt, ap);
	va_end(ap);
	s->xl.state = XL_FAILED;
	ctl_resume(s);
}

/* The transfer command may pass on now. */
void
xl_ready(struct session *s)
{
	s->xl.state = XL_READY;
	ctl_resume(s);
}

/* Does a client's PORT/EPRT become passive mode toward the server? */
int
xl_port_goes_passive(void)
{
	return opt.act_mode == AM_PASSIVE ||
	    (opt.act_mode == AM_AUTO && master_rfwd_refused());
}

/* The client's PORT/EPRT, taken: the transfer will go passive. */
void
xl_take_port(struct session *s)
{
	s->xl.to = XL_TO_PASSIVE;
	s->xl.state = XL_IDLE;
	s->xfer.mode = DM_ACT_PASV;
	client_reply(s, "200 %s command successful",
	    s->act.cmd == FTP_CMD_PORT ? "PORT" : "EPRT");
}

/* Our PASV/EPSV, or PORT/EPRT, before a transfer: its reply is ours. */
void
xl_ours_reply(struct session *s, const struct pending *p, int code)
{
	struct data_conn	*d;
	size_t			 len = evbuffer_get_length(s->ctl.held);
	char			 why[LOG_TEXT_MAX];

	escape(why, sizeof(why), (char *)evbuffer_pullup(s->ctl.held, -1),
	    len);
	if (code < 200 || s->dead)
		goto done;
	if (p->sent == FTP_CMD_PORT || p->sent == FTP_CMD_EPRT) {
		if (s->xl.to != XL_TO_ACTIVE || s->xl.state != XL_ASKED)
			goto done;
		if (code < 300) {
			xl_ready(s);
			goto done;
		}
		logit(LL_ERROR, "#%u the server refused our %s: %s", s->id,
		    p->sent == FTP_CMD_PORT ? "PORT" : "EPRT", why);
		xl_fail(s, "425 ftpfwd: the FTP server refused active mode "
		    "(%d)", code);
		goto done;
	}
	if (s->xl.to != XL_TO_PASSIVE || s->xl.state != XL_ASKED)
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
	    s->pasv.host, s->pasv.port);
	if ((d = data_conn_new(s, DM_ACT_PASV, ftps_data_tls(s))) == NULL ||
	    data_connect_client(d, &s->act.client, s->act.host,
	    s->act.port) == -1) {
		if (d != NULL)
			data_conn_free(d);
		xl_fail(s, "425 ftpfwd: cannot connect to your data port "
		    "%s:%u: %s", s->act.host, s->act.port, strerror(errno));
		goto done;
	}
	s->xl.state = XL_CONNECTING;
 done:
	evbuffer_drain(s->ctl.held, len);
}

/*
 * A transfer command while the data connection needs the other mode
 * toward the server: set it up first.  Returns 0 when the command may
 * pass on, 1 when it must wait, -1 when it was answered here.
 */
int
xl_transfer(struct session *s)
{
	switch (s->xl.state) {
	case XL_IDLE:
		if (s->xl.to == XL_TO_PASSIVE) {
			pasv_send(s, FTP_CMD_OTHER, 1);
			s->xl.state = XL_ASKED;
			return 1;
		}
		if (s->act.state == ACT_OPEN) {
			/*
			 * Our PORT, and the transfer once it has its 200:
			 * sent together, pyftpdlib may answer the transfer's
			 * 150 before the PORT's 200.
			 */
			if (act_send_port(s, FTP_CMD_OTHER, 1) == -1) {
				client_reply(s, "425 ftpfwd: cannot format the "
				    "data address");
				s->xl.to = XL_NONE;
				return -1;
			}
			s->xl.state = XL_ASKED;
			return 1;
		}
		s->xl.state = XL_ASKED;
		if (act_request(s) == 0)
			return 1;
		/* FALLTHROUGH */
	case XL_FAILED:
		client_reply(s, "%s", s->xl.err);
		s->xl.to = XL_NONE;
		s->xl.state = XL_IDLE;
		return -1;
	case XL_READY:
		break;
	default:
		return 1;
	}
	s->xfer.mode = s->xl.to == XL_TO_PASSIVE ? DM_ACT_PASV :
	    DM_PASV_ACT;
	s->xl.to = XL_NONE;
	s->xl.state = XL_IDLE;
	return 0;
}

/* A new PORT or PASV: what the last one asked of us is forgotten. */
void
xl_reset(struct session *s)
{
	s->xl.to = XL_NONE;
	s->xl.state = XL_IDLE;
}

/* PassiveMode=active: does a transfer command wait for the forward? */
int
xl_waits_for_rfwd(const struct session *s)
{
	return s->xl.to == XL_TO_ACTIVE && s->xl.state == XL_ASKED;
}

/*
 * The master answered the remote forward a waiting transfer asked for:
 * refused (why says so), or open, and our PORT goes; the transfer
 * follows its 200 (xl_ours_reply).
 */
void
xl_rfwd_answer(struct session *s, const char *why)
{
	if (why != NULL)
		xl_fail(s, "425 ftpfwd: ssh refused the remote forward: %s",
		    why);
	else if (act_send_port(s, FTP_CMD_OTHER, 1) == -1)
		xl_fail(s, "425 ftpfwd: cannot format the data address");
}

/*
 * ActiveMode=passive: the connection to the client's data port, for
 * the transfer that waits, is up (err 0) or failed.  Up, it goes to the
 * master with a stdio forward to the server's passive port.
 */
void
xl_connected(struct data_conn *d, int err)
{
	struct session	*s = d->s;
	int		 fd;

	if (err != 0) {
		data_conn_free(d);
		xl_fail(s, "425 ftpfwd: cannot connect to your data port "
		    "%s:%u: %s", s->act.host, s->act.port, strerror(err));
		return;
	}
	fd = d->cli_fd;
	d->cli_fd = -1;
	d->dir = s->xfer.upload ? DIR_UP : DIR_DOWN;
	if (data_to_master(d, fd, s->pasv.host, s->pasv.port) == -1) {
		data_conn_free(d);
		xl_fail(s, "425 ftpfwd: cannot hand the data connection to "
		    "ssh");
	} else
		xl_ready(s);
}
