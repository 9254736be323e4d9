/*
 * tls.c: OpenSSL contexts for both sides, and the relay that carries a
 * data connection when either side of it is TLS.
 *
 * Toward the FTP server ftpfwd is the TLS client, on data connections
 * too (RFC 4217 keeps the roles of the control connection whoever
 * connects), and each data connection resumes the control connection's
 * session: vsftpd's require_ssl_reuse refuses those that do not.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <arpa/inet.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tls.h"

#define RELAY_HIGH	(256 * 1024)	/* bytes queued toward a slow side */
#define RELAY_LINGER	5		/* seconds to wait for the peers */
#define RELAY_CHUNK	(128 * 1024)	/* bytes per read or write */
#define RELAY_DRAIN	(16 * 1024)	/* bytes per read while lingering */

static SSL_CTX	*up_ctx;		/* we are the client */
static int	 up_verify;
static SSL_CTX	*cl_ctx;		/* we are the server */

/* The first OpenSSL error queued, for a start-up message. */
static void
ssl_err(char *err, size_t errlen, const char *what, const char *file)
{
	char	buf[256];

	ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
	snprintf(err, errlen, "%s %s: %s", what, file, buf);
	ERR_clear_error();
}

int
tls_upstream_init(const char *cafile, int verify, char *err, size_t errlen)
{
	if ((up_ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    SSL_CTX_set_min_proto_version(up_ctx, TLS1_2_VERSION) != 1) {
		ssl_err(err, errlen, "cannot set up", "TLS");
		return -1;
	}
	up_verify = verify;
	if (!verify)
		return 0;
	SSL_CTX_set_verify(up_ctx, SSL_VERIFY_PEER, NULL);
	if (cafile != NULL) {
		if (SSL_CTX_load_verify_locations(up_ctx, cafile, NULL) != 1) {
			ssl_err(err, errlen, "cannot load CA file", cafile);
			return -1;
		}
	} else if (SSL_CTX_set_default_verify_paths(up_ctx) != 1) {
		ssl_err(err, errlen, "cannot load", "the system trust store");
		return -1;
	}
	return 0;
}

int
tls_client_init(const char *cert, const char *key, char *err, size_t errlen)
{
	static const unsigned char	sid_ctx[] = "ftpfwd";

	if ((cl_ctx = SSL_CTX_new(TLS_server_method())) == NULL ||
	    SSL_CTX_set_min_proto_version(cl_ctx, TLS1_2_VERSION) != 1) {
		ssl_err(err, errlen, "cannot set up", "TLS");
		return -1;
	}
	if (SSL_CTX_use_certificate_chain_file(cl_ctx, cert) != 1) {
		ssl_err(err, errlen, "cannot load ClientCertificate", cert);
		return -1;
	}
	if (SSL_CTX_use_PrivateKey_file(cl_ctx, key, SSL_FILETYPE_PEM) != 1) {
		ssl_err(err, errlen, "cannot load ClientKey", key);
		return -1;
	}
	if (SSL_CTX_check_private_key(cl_ctx) != 1) {
		ssl_err(err, errlen, "ClientKey does not match", cert);
		return -1;
	}
	/* Clients resume their control session on data connections. */
	SSL_CTX_set_session_id_context(cl_ctx, sid_ctx, sizeof(sid_ctx) - 1);
	return 0;
}

/* A connection to the FTP server: check its name, resume if we can. */
SSL *
tls_upstream_ssl(const char *name, SSL_SESSION *resume)
{
	unsigned char	 ip[16];
	SSL		*ssl;
	int		 is_ip;

	if ((ssl = SSL_new(up_ctx)) == NULL)
		return NULL;
	is_ip = inet_pton(AF_INET, name, ip) == 1 ||
	    inet_pton(AF_INET6, name, ip) == 1;
	if (!is_ip && SSL_set_tlsext_host_name(ssl, name) != 1)
		goto fail;
	if (up_verify) {
		if (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl),
		    name) != 1 : SSL_set1_host(ssl, name) != 1)
			goto fail;
	}
	if (resume != NULL && SSL_set_session(ssl, resume) != 1)
		goto fail;
	return ssl;
 fail:
	SSL_free(ssl);
	return NULL;
}

/*
 * Toward a client.  A data connection gets no TLS 1.3 session tickets:
 * a client that only uploads never reads them, and closing a socket
 * with unread bytes makes the kernel reset it, dropping what the client
 * had not sent yet (RFC 2525).  lftp's uploads lost their tail so.
 */
SSL *
tls_client_ssl(int data)
{
	SSL	*ssl;

	if ((ssl = SSL_new(cl_ctx)) != NULL && data &&
	    SSL_set_num_tickets(ssl, 0) != 1) {
		SSL_free(ssl);
		return NULL;
	}
	return ssl;
}

/* Why a TLS bufferevent failed, in words: the certificate check first. */
char *
tls_error(struct bufferevent *bev, char *buf, size_t len)
{
	SSL		*ssl = bufferevent_openssl_get_ssl(bev);
	unsigned long	 e;
	long		 vr;
	size_t		 used;

	buf[0] = '\0';
	if (ssl != NULL && (vr = SSL_get_verify_result(ssl)) != X509_V_OK) {
		snprintf(buf, len, "certificate verify failed: %s",
		    X509_verify_cert_error_string(vr));
		return buf;
	}
	while ((e = bufferevent_get_openssl_error(bev)) != 0) {
		used = strlen(buf);
		if (used > 0 && used + 3 < len) {
			memcpy(buf + used, "; ", 3);
			used += 2;
		}
		if (used + 1 < len)
			ERR_error_string_n(e, buf + used, len - used);
	}
	if (buf[0] == '\0')
		snprintf(buf, len, "the connection closed during TLS");
	return buf;
}

const char *
tls_describe(SSL *ssl, char *buf, size_t len)
{
	snprintf(buf, len, "%s %s%s", SSL_get_version(ssl),
	    SSL_get_cipher_name(ssl), SSL_session_reused(ssl) ?
	    ", resumed" : "");
	return buf;
}

/*
 * Send close_notify.  A socket that the last data filled may have no
 * room for it: OpenSSL keeps the alert and this returns 1, and the
 * caller calls again once the socket drains.  Our FIN must not go
 * before it: an end without close_notify is a cut (vsftpd fails the
 * upload with 426, pyftpdlib 1.5 hangs on it).  0 when it is out, or
 * cannot be sent at all.
 */
int
tls_close_notify(SSL *ssl)
{
	int	rv;

	ERR_clear_error();
	if ((rv = SSL_shutdown(ssl)) >= 0)
		return 0;
	return SSL_get_error(ssl, rv) == SSL_ERROR_WANT_WRITE;
}

/*
 * The relay: bytes read on one side are written to the other.  FTP moves
 * data one way per connection, so the first end of file (or error) ends
 * it: once what was read is written out, each TLS side gets its
 * close_notify and both sockets close.
 */
struct relay {
	struct event_base	*base;
	struct bufferevent	*bev[2];
	relay_cb		 cb;
	void			*arg;
	uint64_t		 bytes;
	int			 ending;	/* flushing, then the end */
	int			 ending_side;
	int			 lingering;	/* waiting for the peers' EOF */
	int			 closed[2];
	struct event		*read_ev[2];	/* a plain side's reads */
	struct event		*notify_ev[2];	/* close_notify still due */
	struct event		*linger_ev;
	int			 dead;
};

static void	relay_end(struct relay *, const char *);
static void	relay_done(struct relay *, const char *);
static void	relay_finish(struct relay *, int);
static void	relay_notify_cb(evutil_socket_t, short, void *);

/*
 * libevent 2.1 reads a plain socket 4 KiB at a time (EVBUFFER_MAX_READ),
 * whatever bufferevent_set_max_single_read() says: a wakeup for every
 * 4 KiB, and a 4 KiB TLS record each on the other side, which halved
 * UpstreamTLS uploads.  A plain side is read by an event of our own
 * instead, RELAY_CHUNK at a time, straight into the other side's output;
 * its bufferevent only writes.  A TLS side reads through its bufferevent.
 */
static void
relay_reading(struct relay *r, int side, int on)
{
	if (r->read_ev[side] == NULL) {
		if (on)
			bufferevent_enable(r->bev[side], EV_READ);
		else
			bufferevent_disable(r->bev[side], EV_READ);
	} else if (on)
		(void)event_add(r->read_ev[side], NULL);
	else
		(void)event_del(r->read_ev[side]);
}

static void
relay_move(struct relay *r, int from)
{
	struct evbuffer	*in = bufferevent_get_input(r->bev[from]);
	struct evbuffer	*out = bufferevent_get_output(r->bev[1 - from]);

	r->bytes += evbuffer_get_length(in);
	evbuffer_add_buffer(out, in);
	if (evbuffer_get_length(out) >= RELAY_HIGH)
		relay_reading(r, from, 0);
}

/* While lingering: a side that has sent its EOF (or failed) is done. */
static void
relay_closed(struct relay *r, int side)
{
	r->closed[side] = 1;
	relay_reading(r, side, 0);
	if (r->closed[0] && r->closed[1])
		relay_done(r, NULL);
}

/* End of file: pass on what came before it, then end. */
static void
relay_eof(struct relay *r, int side)
{
	relay_move(r, side);
	r->ending = 1;
	r->ending_side = 1 - side;
	bufferevent_setwatermark(r->bev[1 - side], EV_WRITE, 0, 0);
	relay_reading(r, side, 0);
	relay_reading(r, 1 - side, 0);
	if (evbuffer_get_length(bufferevent_get_output(r->bev[1 - side])) == 0)
		relay_end(r, NULL);
}

static void
relay_sock_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct relay		*r = arg;
	int			 side = fd == bufferevent_getfd(r->bev[1]);
	struct evbuffer		*out = bufferevent_get_output(r->bev[1 - side]);
	struct evbuffer_iovec	 v;
	char			 junk[RELAY_DRAIN];
	ssize_t			 n;

	(void)what;
	if (r->lingering) {
		n = read(fd, junk, sizeof(junk));
		if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR))
			relay_closed(r, side);
		return;
	}
	if (evbuffer_reserve_space(out, RELAY_CHUNK, &v, 1) != 1) {
		relay_end(r, "out of memory");
		return;
	}
	if ((n = read(fd, v.iov_base, v.iov_len)) == -1) {
		if (errno != EAGAIN && errno != EINTR)
			relay_end(r, strerror(errno));
		return;
	}
	if (n == 0) {
		relay_eof(r, side);
		return;
	}
	v.iov_len = n;
	if (evbuffer_commit_space(out, &v, 1) != 0) {
		relay_end(r, "out of memory");
		return;
	}
	r->bytes += n;
	if (evbuffer_get_length(out) >= RELAY_HIGH)
		relay_reading(r, side, 0);
}

static void
relay_read_cb(struct bufferevent *bev, void *arg)
{
	struct relay	*r = arg;
	struct evbuffer	*in = bufferevent_get_input(bev);

	if (r->lingering) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	relay_move(r, bev == r->bev[1]);
}

static void
relay_write_cb(struct bufferevent *bev, void *arg)
{
	struct relay	*r = arg;
	int		 side = bev == r->bev[1];

	if (r->ending) {
		if (side == r->ending_side)
			relay_end(r, NULL);
		return;
	}
	/* Drained below the low watermark: read the other side again. */
	relay_reading(r, 1 - side, 1);
}

static void
relay_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct relay	*r = arg;
	int		 side = bev == r->bev[1];
	char		 why[256];

	if (what & BEV_EVENT_CONNECTED)
		return;
	if (r->lingering) {
		relay_closed(r, side);
		return;
	}
	if (r->ending)
		return;
	if ((what & BEV_EVENT_ERROR) &&
	    bufferevent_openssl_get_ssl(bev) != NULL) {
		relay_end(r, tls_error(bev, why, sizeof(why)));
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		snprintf(why, sizeof(why), "%s", evutil_socket_error_to_string(
		    EVUTIL_SOCKET_ERROR()));
		relay_end(r, why);
		return;
	}
	/*
	 * A TLS peer that resets looks like one that closed without
	 * close_notify (libevent's dirty shutdown).  A reset cuts the data
	 * short: it must not reach the other side as a clean end.
	 */
	if (bufferevent_openssl_get_ssl(bev) != NULL &&
	    (EVUTIL_SOCKET_ERROR() == ECONNRESET ||
	    EVUTIL_SOCKET_ERROR() == EPIPE)) {
		relay_end(r, evutil_socket_error_to_string(
		    EVUTIL_SOCKET_ERROR()));
		return;
	}
	relay_eof(r, side);
}

static void
relay_done(struct relay *r, const char *why)
{
	int	i;

	if (r->dead)
		return;
	for (i = 0; i < 2; i++) {
		relay_reading(r, i, 0);
		bufferevent_disable(r->bev[i], EV_WRITE);
		if (r->notify_ev[i] != NULL)
			event_del(r->notify_ev[i]);
	}
	if (r->linger_ev != NULL)
		event_del(r->linger_ev);
	r->cb(r, why, r->arg);
}

static void
relay_linger_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	relay_done(arg, NULL);
}

/* close_notify to a TLS side, then our FIN, in that order. */
static void
relay_finish(struct relay *r, int side)
{
	SSL	*ssl = bufferevent_openssl_get_ssl(r->bev[side]);
	int	 fd = bufferevent_getfd(r->bev[side]);

	if (ssl != NULL && tls_close_notify(ssl) == 1) {
		if (r->notify_ev[side] == NULL)
			r->notify_ev[side] = event_new(r->base, fd, EV_WRITE,
			    relay_notify_cb, r);
		if (r->notify_ev[side] != NULL &&
		    event_add(r->notify_ev[side], NULL) == 0)
			return;		/* the linger timer still bounds it */
	}
	(void)shutdown(fd, SHUT_WR);
}

static void
relay_notify_cb(evutil_socket_t fd, short what, void *arg)
{
	struct relay	*r = arg;

	(void)what;
	relay_finish(r, fd == bufferevent_getfd(r->bev[1]));
}

/*
 * A clean end: close_notify to each TLS peer, our FIN to each, then wait
 * for theirs.  Closing at once could reset a connection whose peer has
 * not read our last bytes yet (vsftpd then fails an upload with 426).
 */
static void
relay_end(struct relay *r, const char *why)
{
	struct timeval	 tv = { RELAY_LINGER, 0 };
	int		 i;

	if (r->dead || r->lingering)
		return;
	if (why != NULL) {
		relay_done(r, why);
		return;
	}
	r->lingering = 1;
	for (i = 0; i < 2; i++) {
		bufferevent_disable(r->bev[i], EV_WRITE);
		relay_reading(r, i, 1);
		relay_finish(r, i);
	}
	if ((r->linger_ev = evtimer_new(r->base, relay_linger_cb, r)) ==
	    NULL || evtimer_add(r->linger_ev, &tv) != 0)
		relay_done(r, NULL);
}

struct relay *
relay_new(struct bufferevent *a, struct bufferevent *b, relay_cb cb,
    void *arg)
{
	struct relay	*r;
	int		 i;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	r->base = bufferevent_get_base(a);
	r->bev[0] = a;
	r->bev[1] = b;
	r->cb = cb;
	r->arg = arg;
	for (i = 0; i < 2; i++)
		if (bufferevent_openssl_get_ssl(r->bev[i]) == NULL &&
		    (r->read_ev[i] = event_new(r->base,
		    bufferevent_getfd(r->bev[i]), EV_READ | EV_PERSIST,
		    relay_sock_read_cb, r)) == NULL)
			goto fail;
	for (i = 0; i < 2; i++) {
		if (r->read_ev[i] == NULL)
			bufferevent_openssl_set_allow_dirty_shutdown(r->bev[i],
			    1);
		bufferevent_setcb(r->bev[i], relay_read_cb, relay_write_cb,
		    relay_event_cb, r);
		bufferevent_setwatermark(r->bev[i], EV_WRITE, RELAY_HIGH / 2,
		    0);
		/* libevent's 16 KiB default means a wakeup per TLS record. */
		bufferevent_set_max_single_read(r->bev[i], RELAY_CHUNK);
		bufferevent_set_max_single_write(r->bev[i], RELAY_CHUNK);
		bufferevent_enable(r->bev[i], EV_WRITE);
		relay_reading(r, i, 1);
	}
	return r;
 fail:
	for (i = 0; i < 2; i++)
		if (r->read_ev[i] != NULL)
			event_free(r->read_ev[i]);
	free(r);
	return NULL;
}

uint64_t
relay_bytes(const struct relay *r)
{
	return r->bytes;
}

static void
relay_free_now(evutil_socket_t fd, short what, void *arg)
{
	struct relay	*r = arg;
	int		 i;

	(void)fd;
	(void)what;
	if (r->linger_ev != NULL)
		event_free(r->linger_ev);
	for (i = 0; i < 2; i++) {
		if (r->read_ev[i] != NULL)
			event_free(r->read_ev[i]);
		if (r->notify_ev[i] != NULL)
			event_free(r->notify_ev[i]);
	}
	free(r);
}

/* As relay_free, with a reset toward each peer: the transfer failed. */
void
relay_abort(struct relay *r)
{
	struct linger	l = { 1, 0 };
	int		i, fd;

	if (r == NULL || r->dead)
		return;
	for (i = 0; i < 2; i++)
		if ((fd = bufferevent_getfd(r->bev[i])) != -1)
			(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &l,
			    sizeof(l));
	relay_free(r);
}

/* Close both sides; the memory goes later, from the loop. */
void
relay_free(struct relay *r)
{
	int	i;

	if (r == NULL || r->dead)
		return;
	r->dead = 1;
	if (r->linger_ev != NULL)
		event_del(r->linger_ev);
	for (i = 0; i < 2; i++) {
		if (r->read_ev[i] != NULL)
			event_del(r->read_ev[i]);
		if (r->notify_ev[i] != NULL)
			event_del(r->notify_ev[i]);
		bufferevent_free(r->bev[i]);	/* safe inside its callbacks */
	}
	(void)event_base_once(r->base, -1, EV_TIMEOUT, relay_free_now, r,
	    NULL);
}
