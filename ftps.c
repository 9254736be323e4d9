/*
 * ftps.c: FTPS in a session, on each side on its own.  Toward the FTP
 * server (UpstreamTLS), ftpfwd sets TLS up itself before the client sees
 * the banner; toward the client (ClientTLS), ftpfwd answers AUTH, PBSZ
 * and PROT.  Which data connections need TLS is decided here too; the
 * OpenSSL side of it all is tls.c's.
 */

#include <sys/types.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include "ftpfwd.h"
#include "tls.h"

/* The name the FTP server's certificate must carry. */
const char *
ftps_server_name(const struct session *s)
{
	return opt.up_name != NULL ? opt.up_name : s->fwd->host;
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

	if ((bev = bufferevent_openssl_filter_new(evbase, under, ssl, state,
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
ftps_server_start(struct session *s)
{
	struct bufferevent	*bev;
	SSL			*ssl;

	writenow_stop(&s->ctl.wn_srv);
	if ((ssl = tls_upstream_ssl(ftps_server_name(s), NULL)) == NULL ||
	    (bev = control_tls(s, s->ctl.srv, ssl, BUFFEREVENT_SSL_CONNECTING,
	    server_read_cb, server_write_cb, server_event_cb)) == NULL)
		return -1;
	s->ctl.srv = bev;
	s->tls.up_ssl = ssl;
	return 0;
}

/* Toward the client, TLS from here on (after our 234, or at once). */
int
ftps_client_start(struct session *s)
{
	struct bufferevent	*bev;
	SSL			*ssl;

	if (s->ctl.cin != s->ctl.cout)
		return -1;
	writenow_stop(&s->ctl.wn_cout);
	if ((ssl = tls_client_ssl(0)) == NULL ||
	    (bev = control_tls(s, s->ctl.cin, ssl, BUFFEREVENT_SSL_ACCEPTING,
	    client_read_cb, client_write_cb, client_event_cb)) == NULL)
		return -1;
	s->ctl.cin = s->ctl.cout = bev;
	s->tls.cl_on = 1;
	return 0;
}

void
ftps_fail(struct session *s, const char *fmt, ...)
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
	evbuffer_add_printf(bufferevent_get_output(s->ctl.srv), "%s\r\n", line);
	s->tls.up_phase = next;
}

/*
 * What one reply in TLS set-up means for the next step.  Returns 1 to
 * read on, 0 once set-up is over, -1 when it failed (the session then
 * closes).  *greeting is the code the held banner answers with.
 */
static int
upstream_step(struct session *s, int code, const char *text, int *greeting)
{
	char	desc[LOG_TEXT_MAX];

	switch (s->tls.up_phase) {
	case UP_BANNER:
		if (code != 220) {
			/* Busy or closing (421): pass it on. */
			*greeting = code;
			s->tls.up_phase = UP_READY;
			return 0;
		}
		if (opt.up_tls == TLS_EXPLICIT)
			upstream_send(s, "AUTH TLS", UP_AUTH);
		else
			upstream_send(s, "PBSZ 0", UP_PBSZ);
		return 1;
	case UP_AUTH:
		if (code != 234) {
			ftps_fail(s, "the FTP server refused AUTH TLS "
			    "(\"%s\"); UpstreamTLS=explicit needs a server "
			    "that speaks FTPS", text);
			return -1;
		}
		if (ftps_server_start(s) == -1) {
			ftps_fail(s, "cannot start TLS");
			return -1;
		}
		/* Sent once the handshake is through. */
		upstream_send(s, "PBSZ 0", UP_PBSZ);
		return 1;
	case UP_PBSZ:
	case UP_PROT:
		if (code != 200) {
			ftps_fail(s, "the FTP server refused %s (\"%s\")",
			    s->tls.up_phase == UP_PBSZ ? "PBSZ 0" : "PROT P",
			    text);
			return -1;
		}
		if (s->tls.up_phase == UP_PBSZ) {
			upstream_send(s, "PROT P", UP_PROT);
			return 1;
		}
		s->tls.up_phase = UP_READY;
		logit(LL_VERBOSE, "#%u TLS to the FTP server: %s%s", s->id,
		    tls_describe(s->tls.up_ssl, desc, sizeof(desc)),
		    opt.up_verify ? "" : ", certificate NOT verified "
		    "(UpstreamVerify=no)");
		return 0;
	case UP_READY:
		break;
	}
	return 0;
}

/*
 * The next whole reply of TLS set-up: its code in *codep, 0 while it
 * goes on; -1 when no line is there yet or the session is closing.
 */
static int
upstream_line(struct session *s, int *codep, char *text, size_t textsz)
{
	struct evbuffer	*in = bufferevent_get_input(s->ctl.srv);
	size_t		 total, linelen;
	char		*line;
	int		 partial, code, more;

	if (next_line(in, &line, &linelen, &total, &partial) == -1)
		return -1;
	if (partial) {
		ftps_fail(s, "the FTP server sent an over-long line during "
		    "TLS set-up");
		return -1;
	}
	escape(text, textsz, line, linelen);
	*codep = 0;
	if (s->tls.up_code == 0) {
		if (ftp_reply_start(line, linelen, &code, &more) == -1) {
			ftps_fail(s, "the FTP server sent \"%s\" during TLS "
			    "set-up", text);
			return -1;
		}
		if (more)
			s->tls.up_code = code;
		else
			*codep = code;
	} else if (ftp_reply_ends(line, linelen, s->tls.up_code)) {
		*codep = s->tls.up_code;
		s->tls.up_code = 0;
	}
	if (s->tls.up_phase == UP_BANNER)
		evbuffer_remove_buffer(in, s->tls.banner, total);
	else
		evbuffer_drain(in, total);
	return 0;
}

/*
 * UpstreamTLS: the server's banner is held while ftpfwd sends AUTH TLS
 * (explicit), PBSZ 0 and PROT P, so the client's first line already
 * travels encrypted.  Returns 1 once set-up is over and the server's
 * lines can be read as usual, 0 while it goes on or has failed.
 */
int
ftps_upstream(struct session *s)
{
	char	text[LOG_TEXT_MAX];
	int	code, greeting = 220;

	while (!s->dead && !s->closing && s->tls.up_phase != UP_READY) {
		if (upstream_line(s, &code, text, sizeof(text)) == -1)
			return 0;
		if (code != 0 && upstream_step(s, code, text, &greeting) == -1)
			return 0;
	}
	if (s->dead || s->closing)
		return 0;
	/* The banner, at last, and the reply it answers. */
	evbuffer_add_buffer(bufferevent_get_output(s->ctl.cout),
	    s->tls.banner);
	reply_done(s, greeting);
	return 1;
}

/*
 * AUTH from the client: 234 and TLS with ClientTLS=explicit, else 534.
 * Returns 1 when TLS has started and the input buffer is another one.
 */
int
ftps_auth(struct session *s, const char *arg, size_t len,
    struct evbuffer *in, size_t total)
{
	/* arg points into in: judge it before the line goes. */
	int	tls = ftp_parse_auth(arg, len) == 0;

	evbuffer_drain(in, total);
	if (opt.cl_tls != TLS_EXPLICIT && opt.backend == BACKEND_SFTP) {
		client_reply(s, "534 ftpfwd: TLS is not offered here (ftpfwd "
		    "runs without -o ClientTLS)");
		return 0;
	}
	if (opt.cl_tls != TLS_EXPLICIT) {
		client_reply(s, "534 ftpfwd: TLS is not available through "
		    "this forward; the ssh connection already encrypts the "
		    "control connection");
		return 0;
	}
	if (s->tls.cl_on) {
		client_reply(s, "503 ftpfwd: TLS is already on");
		return 0;
	}
	if (s->ctl.cin != s->ctl.cout) {
		client_reply(s, "534 ftpfwd: TLS needs a socket, not pipes");
		return 0;
	}
	if (!tls) {
		client_reply(s, "504 ftpfwd: only AUTH TLS is supported");
		return 0;
	}
	client_reply(s, "234 AUTH TLS successful");
	if (ftps_client_start(s) == -1) {
		session_end(s, "cannot start TLS");
		return 1;
	}
	s->tls.cl_prot = 'C';
	logit(LL_DEBUG1, "#%u client TLS handshake", s->id);
	return 1;
}

/* PBSZ and PROT, which ftpfwd answers when it does TLS on either side. */
void
ftps_prot(struct session *s, enum ftp_cmd cmd, const char *arg,
    size_t len)
{
	char	level;

	if (!s->tls.cl_on) {
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
	s->tls.cl_prot = level;
	client_reply(s, "200 Protection level set to %c", level);
}

int
ftps_init(struct session *s)
{
	return (s->tls.banner = evbuffer_new()) == NULL ? -1 : 0;
}

void
ftps_free(struct session *s)
{
	if (s->tls.banner != NULL)
		evbuffer_free(s->tls.banner);
}

/* A new session's UpstreamTLS: wait for the banner, or TLS at once. */
int
ftps_server_setup(struct session *s, char *err, size_t errsz)
{
	if (opt.up_tls == TLS_OFF)
		return 0;
	s->tls.up_phase = UP_BANNER;
	if (opt.up_tls == TLS_IMPLICIT && ftps_server_start(s) == -1) {
		snprintf(err, errsz, "cannot start TLS");
		return -1;
	}
	if (!opt.up_verify)
		logit(LL_ERROR, "#%u WARNING: the FTP server's certificate is "
		    "not verified (UpstreamVerify=no)", s->id);
	return 0;
}

/*
 * Which sides of a new data connection are TLS: toward the client once
 * it asked for PROT P, toward the server whenever its control is TLS.
 */
int
ftps_data_tls(const struct session *s)
{
	int	tls = 0;

	if (s->tls.cl_on && s->tls.cl_prot == 'P')
		tls |= DATA_TLS_CLIENT;
	if (s->tls.up_ssl != NULL)
		tls |= DATA_TLS_SERVER;
	return tls;
}
