/*
 * tap.h: what the C unit tests and fuzzers share: TAP output, and a
 * socket address from text.  Header-only, static inline, so that each
 * program takes what it uses.
 */

#ifndef TAP_H
#define TAP_H

#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int	ntest, nfail;

static inline void __attribute__((format(printf, 2, 3)))
ok(int cond, const char *fmt, ...)
{
	va_list	ap;

	ntest++;
	if (!cond)
		nfail++;
	printf("%sok %d - ", cond ? "" : "not ", ntest);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static inline void
skip(const char *name, const char *why)
{
	printf("ok %d - %s # SKIP %s\n", ++ntest, name, why);
}

/* An IPv4 or IPv6 address and port (and IPv6 scope); aborts on junk. */
static inline void
test_addr(struct sockaddr_storage *ss, const char *addr, uint16_t port,
    uint32_t scope)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		return;
	}
	if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) != 1)
		abort();
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(port);
	sin6->sin6_scope_id = scope;
}

#endif /* TAP_H */
