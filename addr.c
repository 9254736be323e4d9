/*
 * addr.c: socket addresses as ftpfwd compares, prints and rewrites them,
 * and the options every control and data socket gets.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "ftpfwd.h"

/* The bare address, as the master should connect to it. */
int
addr_host(const struct sockaddr *sa, char *buf, size_t sz)
{
	const void	*a;

	if (sa->sa_family == AF_INET)
		a = &((const struct sockaddr_in *)sa)->sin_addr;
	else if (sa->sa_family == AF_INET6)
		a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	else
		return -1;
	return inet_ntop(sa->sa_family, a, buf, sz) == NULL ? -1 : 0;
}

/* Address and port for a log line: 127.0.0.1:21, [::1]:21. */
const char *
addr_str(const struct sockaddr_storage *ss, char *buf, size_t sz)
{
	char	host[INET6_ADDRSTRLEN];

	if (addr_host((const struct sockaddr *)ss, host, sizeof(host)) == -1)
		snprintf(buf, sz, "local");
	else
		snprintf(buf, sz, ss->ss_family == AF_INET6 ? "[%s]:%u" :
		    "%s:%u", host, addr_port(ss));
	return buf;
}

/* An IPv4-mapped IPv6 address becomes plain IPv4; others stay. */
void
addr_unmap(struct sockaddr_storage *ss)
{
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in	 sin;

	if (ss->ss_family != AF_INET6 ||
	    !IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
		return;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = sin6->sin6_port;
	memcpy(&sin.sin_addr, &sin6->sin6_addr.s6_addr[12], 4);
	memcpy(ss, &sin, sizeof(sin));
}

/* 0.0.0.0 or :: */
int
addr_is_any(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ((const struct sockaddr_in *)ss)->sin_addr.s_addr ==
		    htonl(INADDR_ANY);
	if (ss->ss_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(
		    &((const struct sockaddr_in6 *)ss)->sin6_addr);
	return 0;
}

int
addr_same_host(const struct sockaddr_storage *a,
    const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		    ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	if (a->ss_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
		    &((const struct sockaddr_in6 *)b)->sin6_addr,
		    sizeof(struct in6_addr)) == 0;
	return 0;
}

uint16_t
addr_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return 0;
}

void
addr_set_port(struct sockaddr_storage *ss, uint16_t port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(port);
	else if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

socklen_t
addr_len(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
	    sizeof(struct sockaddr_in);
}

void
sock_set_opts(int fd)
{
	int	on = 1;

	/* Keep Telnet "urgent" bytes (lftp's ABOR) in the stream. */
	(void)setsockopt(fd, SOL_SOCKET, SO_OOBINLINE, &on, sizeof(on));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
}

/* A listening socket of a session's and its event, either kind. */
void
sock_listener_close(struct event **evp, int *fdp)
{
	if (*evp != NULL) {
		event_free(*evp);
		*evp = NULL;
	}
	if (*fdp != -1) {
		close(*fdp);
		*fdp = -1;
	}
}

/*
 * Close with a reset, not a FIN: the peer must see an error, never an
 * end it could take for a complete transfer.
 */
void
sock_reset_close(int fd)
{
	struct linger	l = { 1, 0 };

	(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(fd);
}

/*
 * Say one last line to a client we will not serve, and close.  What it
 * sent already is read first: closing with unread bytes would reset the
 * connection, and a reset may destroy our line before it is read.
 */
void
sock_refuse(int fd, const char *line)
{
	char	junk[SOCK_DRAIN_MAX];

	(void)send(fd, line, strlen(line), MSG_DONTWAIT | MSG_NOSIGNAL);
	(void)shutdown(fd, SHUT_WR);
	(void)recv(fd, junk, sizeof(junk), MSG_DONTWAIT);
	close(fd);
}
