/*
 * tls.h: the OpenSSL side of ftpfwd.  One context toward FTP servers
 * (ftpfwd is the TLS client) and one toward FTP clients (ftpfwd is the
 * TLS server), and a relay that joins two bufferevents, either of which
 * may be TLS, for data connections whose bytes ftpfwd must see.
 */

#ifndef TLS_H
#define TLS_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

struct bufferevent;
struct relay;

int	 tls_upstream_init(const char *, int, char *, size_t);
int	 tls_client_init(const char *, const char *, char *, size_t);
SSL	*tls_upstream_ssl(const char *, SSL_SESSION *);
SSL	*tls_client_ssl(int);
char	*tls_error(struct bufferevent *, char *, size_t);
const char *tls_describe(SSL *, char *, size_t);
int	 tls_close_notify(SSL *);

/* Called once; why is NULL when both sides ended cleanly. */
typedef void (*relay_cb)(struct relay *, const char *why, void *arg);

struct relay	*relay_new(struct bufferevent *, struct bufferevent *,
		    relay_cb, void *);
uint64_t	 relay_bytes(const struct relay *);
void		 relay_free(struct relay *);
void		 relay_abort(struct relay *);

#endif /* TLS_H */
