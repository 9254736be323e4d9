/*
 * ssh_mux.c: talk to a running OpenSSH ControlMaster over its control
 * socket, without blocking.
 *
 * Wire format (PROTOCOL.mux, and mux.c as OpenSSH 9.2 really behaves):
 * every message is uint32 length + body, the body starts with a uint32
 * type, strings are uint32 length + bytes.  Both sides open with
 * MUX_MSG_HELLO version 4.  A stdio forward's descriptors follow its
 * request as two SCM_RIGHTS messages of one data byte each, and its
 * channel lives as long as the mux connection that asked for it.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "ssh_mux.h"

/* A session takes three descriptors, a stdio forward two. */
#define MUX_PASS_MAX		3

struct mux_conn {
	struct event_base	*base;
	int			 fd;
	struct event		*rev;
	struct event		*wev;
	struct evbuffer		*in;
	struct evbuffer		*out;
	struct evbuffer		*held;		/* requests before HELLO */
	int			 pass_fds[MUX_PASS_MAX]; /* to hand over */
	int			 npass;		/* how many in pass_fds */
	int			 pass_next;	/* the next one to send */
	int			 ready;		/* the master's HELLO seen */
	int			 dead;
	uint32_t		 next_rid;
	mux_cb			 cb;
	void			*arg;
};

/* A read-only cursor over one message body. */
struct mux_cursor {
	const unsigned char	*p;
	size_t			 len;
};

static int
get_u32(struct mux_cursor *m, uint32_t *vp)
{
	if (m->len < 4)
		return -1;
	*vp = (uint32_t)m->p[0] << 24 | (uint32_t)m->p[1] << 16 |
	    (uint32_t)m->p[2] << 8 | (uint32_t)m->p[3];
	m->p += 4;
	m->len -= 4;
	return 0;
}

/* A string, kept (truncated, NUL-ended) in the reply's reason. */
static int
get_reason(struct mux_cursor *m, struct mux_reply *r)
{
	uint32_t	slen;

	if (get_u32(m, &slen) != 0 || slen > m->len)
		return -1;
	r->reason_len = slen < sizeof(r->reason) - 1 ?
	    slen : sizeof(r->reason) - 1;
	memcpy(r->reason, m->p, r->reason_len);
	r->reason[r->reason_len] = '\0';
	m->p += slen;
	m->len -= slen;
	return 0;
}

static int
dec_hello(struct mux_cursor *m, struct mux_reply *r)
{
	/* Extensions may follow the version; none is defined, skip them. */
	return get_u32(m, &r->rid);
}

static int
dec_rid(struct mux_cursor *m, struct mux_reply *r)
{
	return get_u32(m, &r->rid);
}

static int
dec_rid_reason(struct mux_cursor *m, struct mux_reply *r)
{
	int	ret;

	if ((ret = get_u32(m, &r->rid)) != 0 ||
	    (ret = get_reason(m, r)) != 0)
		return ret;
	return 0;
}

static int
dec_rid_value(struct mux_cursor *m, struct mux_reply *r)
{
	int	ret;

	if ((ret = get_u32(m, &r->rid)) != 0 ||
	    (ret = get_u32(m, &r->value)) != 0)
		return ret;
	return 0;
}

static const struct {
	uint32_t	type;
	int		(*decode)(struct mux_cursor *, struct mux_reply *);
} mux_decoders[] = {
	{ MUX_MSG_HELLO, dec_hello },
	{ MUX_S_OK, dec_rid },
	{ MUX_S_PERMISSION_DENIED, dec_rid_reason },
	{ MUX_S_FAILURE, dec_rid_reason },
	{ MUX_S_EXIT_MESSAGE, dec_rid_value },
	{ MUX_S_ALIVE, dec_rid_value },
	{ MUX_S_SESSION_OPENED, dec_rid_value },
	{ MUX_S_REMOTE_PORT, dec_rid_value },
	{ MUX_S_TTY_ALLOC_FAIL, dec_rid },
};

/*
 * Decode one message body (without its length word).  Pure: no I/O, so
 * it can be fuzzed.  Returns -1 on a short or unknown message.
 */
int
mux_decode(const unsigned char *body, size_t len, struct mux_reply *r)
{
	struct mux_cursor	m = { body, len };
	size_t			i;

	memset(r, 0, sizeof(*r));
	if (get_u32(&m, &r->type) != 0)
		return -1;
	for (i = 0; i < sizeof(mux_decoders) / sizeof(mux_decoders[0]); i++) {
		if (mux_decoders[i].type == r->type)
			return mux_decoders[i].decode(&m, r);
	}
	return -1;
}

static void
put_u32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static int
buf_put_u32(struct evbuffer *b, uint32_t v)
{
	unsigned char	p[4];

	put_u32(p, v);
	return evbuffer_add(b, p, sizeof(p));
}

static int
buf_put_string(struct evbuffer *b, const char *s)
{
	size_t	len = strlen(s);

	if (len > MUX_REASON_MAX)
		return -1;
	if (buf_put_u32(b, (uint32_t)len) != 0 ||
	    evbuffer_add(b, s, len) != 0)
		return -1;
	return 0;
}

/* Frame the message in body with its length and append it to q. */
static int
mux_frame(struct evbuffer *q, struct evbuffer *body)
{
	size_t	len = evbuffer_get_length(body);
	int	ret = -1;

	if (len <= MUX_MSG_MAX && buf_put_u32(q, (uint32_t)len) == 0 &&
	    evbuffer_add_buffer(q, body) == 0)
		ret = 0;
	evbuffer_free(body);
	return ret;
}

/*
 * Queue a request.  Until the master's HELLO has arrived it waits in
 * held, as with ssh's own mux client: the master must have read our
 * HELLO before a request and its descriptors reach it.
 */
static int
mux_send(struct mux_conn *mc, struct evbuffer *body)
{
	if (!mc->ready)
		return mux_frame(mc->held, body);
	if (mux_frame(mc->out, body) != 0)
		return -1;
	return event_add(mc->wev, NULL);
}

static void
mux_report(struct mux_conn *mc, enum mux_event ev, const struct mux_reply *r)
{
	if (!mc->dead)
		mc->cb(mc, ev, r, mc->arg);
}

static void
mux_fail(struct mux_conn *mc, const char *why)
{
	struct mux_reply	r;

	if (mc->dead)
		return;
	memset(&r, 0, sizeof(r));
	r.reason_len = strlen(why) < sizeof(r.reason) - 1 ?
	    strlen(why) : sizeof(r.reason) - 1;
	memcpy(r.reason, why, r.reason_len);
	event_del(mc->rev);
	event_del(mc->wev);
	mux_report(mc, MUX_EV_CLOSED, &r);
	mc->dead = 1;
}

static void
mux_dispatch(struct mux_conn *mc, const struct mux_reply *r)
{
	if (!mc->ready) {
		if (r->type != MUX_MSG_HELLO) {
			mux_fail(mc, "master did not start with HELLO");
			return;
		}
		if (r->rid != MUX_VERSION) {
			mux_fail(mc, "master speaks another mux version");
			return;
		}
		mc->ready = 1;
		if (evbuffer_get_length(mc->held) > 0 &&
		    (evbuffer_add_buffer(mc->out, mc->held) != 0 ||
		    event_add(mc->wev, NULL) != 0)) {
			mux_fail(mc, "cannot queue request");
			return;
		}
		mux_report(mc, MUX_EV_READY, r);
		return;
	}
	switch (r->type) {
	case MUX_S_OK:
		mux_report(mc, MUX_EV_OK, r);
		break;
	case MUX_S_REMOTE_PORT:
		if (r->value == 0 || r->value > 65535) {
			mux_fail(mc, "master allocated an impossible port");
			break;
		}
		mux_report(mc, MUX_EV_REMOTE_PORT, r);
		break;
	case MUX_S_SESSION_OPENED:
		mux_report(mc, MUX_EV_SESSION_OPENED, r);
		break;
	case MUX_S_FAILURE:
	case MUX_S_PERMISSION_DENIED:
		mux_report(mc, MUX_EV_FAILURE, r);
		break;
	case MUX_S_EXIT_MESSAGE:
		mux_report(mc, MUX_EV_EXIT, r);
		break;
	case MUX_S_ALIVE:
		mux_report(mc, MUX_EV_ALIVE, r);
		break;
	default:
		/* MUX_S_TTY_ALLOC_FAIL and the like: nothing we asked for. */
		break;
	}
}

static void
mux_readcb(evutil_socket_t fd, short what, void *arg)
{
	struct mux_conn		*mc = arg;
	struct mux_reply	 r;
	unsigned char		 hdr[4], *body;
	uint32_t		 len;
	int			 n;

	(void)what;
	n = evbuffer_read(mc->in, fd, 16384);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		mux_fail(mc, n == 0 ? "master closed the connection" :
		    strerror(errno));
		return;
	}
	while (!mc->dead && evbuffer_get_length(mc->in) >= sizeof(hdr)) {
		evbuffer_copyout(mc->in, hdr, sizeof(hdr));
		len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 |
		    (uint32_t)hdr[2] << 8 | hdr[3];
		if (len > MUX_MSG_MAX) {
			mux_fail(mc, "master sent an oversized message");
			return;
		}
		if (evbuffer_get_length(mc->in) < sizeof(hdr) + len)
			return;
		body = evbuffer_pullup(mc->in, (ev_ssize_t)(sizeof(hdr) + len));
		if (body == NULL) {
			mux_fail(mc, "out of memory");
			return;
		}
		if (mux_decode(body + sizeof(hdr), len, &r) == -1) {
			mux_fail(mc, "master sent a malformed message");
			return;
		}
		evbuffer_drain(mc->in, sizeof(hdr) + len);
		mux_dispatch(mc, &r);
	}
}

static int
send_fd(int sock, int fd)
{
	struct msghdr	 msg;
	struct iovec	 iov;
	struct cmsghdr	*cmsg;
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int))];
	}		 cmsgbuf;
	char		 byte = '\0';

	memset(&msg, 0, sizeof(msg));
	memset(&cmsgbuf, 0, sizeof(cmsgbuf));
	iov.iov_base = &byte;
	iov.iov_len = 1;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cmsgbuf.buf;
	msg.msg_controllen = sizeof(cmsgbuf.buf);
	cmsg = CMSG_FIRSTHDR(&msg);
	cmsg->cmsg_len = CMSG_LEN(sizeof(int));
	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	memcpy(CMSG_DATA(cmsg), &fd, sizeof(fd));
	return sendmsg(sock, &msg, MSG_NOSIGNAL) == 1 ? 0 : -1;
}

/* Close our copies of the descriptors handed over (each only once). */
static void
pass_close(struct mux_conn *mc)
{
	int	i, j;

	for (i = 0; i < mc->npass; i++) {
		for (j = 0; j < i; j++)
			if (mc->pass_fds[j] == mc->pass_fds[i])
				break;
		if (j == i)
			close(mc->pass_fds[i]);
	}
	mc->npass = mc->pass_next = 0;
}

static void
mux_writecb(evutil_socket_t fd, short what, void *arg)
{
	struct mux_conn	*mc = arg;

	(void)what;
	if (evbuffer_get_length(mc->out) > 0 &&
	    evbuffer_write(mc->out, fd) == -1 &&
	    errno != EAGAIN && errno != EINTR) {
		mux_fail(mc, strerror(errno));
		return;
	}
	if (evbuffer_get_length(mc->out) > 0)
		return;
	if (!mc->ready) {
		event_del(mc->wev);
		return;
	}
	/* The descriptors go right after the request that names them. */
	while (mc->pass_next < mc->npass) {
		if (send_fd(fd, mc->pass_fds[mc->pass_next]) == -1) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			mux_fail(mc, strerror(errno));
			return;
		}
		mc->pass_next++;
	}
	pass_close(mc);
	event_del(mc->wev);
}

/*
 * Connect to the control socket; no round trip.  Returns the socket,
 * non-blocking, or -1 with the reason in err.
 */
int
mux_connect_fd(const char *path, char *err, size_t errsz)
{
	struct sockaddr_un	sun;
	int			fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errsz, "path too long for a unix socket");
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path));
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1) {
		snprintf(err, errsz, "socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		if (errno == EAGAIN)
			snprintf(err, errsz, "the master's listen queue is "
			    "full");
		else
			snprintf(err, errsz, "%s", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * The HELLO exchange on a connected socket, blocking for at most
 * timeout_ms: a check before the event loop runs.  Returns 0 when the
 * master speaks our version, -1 with the reason in err.
 */
int
mux_hello_sync(int fd, int timeout_ms, char *err, size_t errsz)
{
	unsigned char		 hello[12], buf[12];
	struct mux_reply	 r;
	struct pollfd		 pfd;
	size_t			 got = 0;
	ssize_t			 n;

	put_u32(hello, 8);
	put_u32(hello + 4, MUX_MSG_HELLO);
	put_u32(hello + 8, MUX_VERSION);
	if (write(fd, hello, sizeof(hello)) != (ssize_t)sizeof(hello)) {
		snprintf(err, errsz, "%s", strerror(errno));
		return -1;
	}
	pfd.fd = fd;
	pfd.events = POLLIN;
	while (got < sizeof(buf)) {
		if (poll(&pfd, 1, timeout_ms) <= 0) {
			snprintf(err, errsz, "no answer to HELLO (if ssh is "
			    "running a LocalCommand, use -f)");
			return -1;
		}
		n = read(fd, buf + got, sizeof(buf) - got);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0) {
			snprintf(err, errsz, "%s", n == 0 ? "closed the "
			    "connection" : strerror(errno));
			return -1;
		}
		got += (size_t)n;
	}
	if (mux_decode(buf + 4, sizeof(buf) - 4, &r) == -1 ||
	    r.type != MUX_MSG_HELLO || r.rid != MUX_VERSION) {
		snprintf(err, errsz, "does not speak mux protocol version %d",
		    MUX_VERSION);
		return -1;
	}
	return 0;
}

struct mux_conn *
mux_open(struct event_base *base, const char *path, mux_cb cb, void *arg,
    char *err, size_t errsz)
{
	struct mux_conn	*mc;
	struct evbuffer	*hello = NULL;
	int		 r;

	if ((mc = calloc(1, sizeof(*mc))) == NULL) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	mc->base = base;
	mc->cb = cb;
	mc->arg = arg;
	mc->fd = -1;
	mc->next_rid = 1;
	if ((mc->fd = mux_connect_fd(path, err, errsz)) == -1)
		goto fail;
	if ((mc->in = evbuffer_new()) == NULL ||
	    (mc->out = evbuffer_new()) == NULL ||
	    (mc->held = evbuffer_new()) == NULL ||
	    (mc->rev = event_new(base, mc->fd, EV_READ | EV_PERSIST,
	    mux_readcb, mc)) == NULL ||
	    (mc->wev = event_new(base, mc->fd, EV_WRITE | EV_PERSIST,
	    mux_writecb, mc)) == NULL ||
	    (hello = evbuffer_new()) == NULL) {
		snprintf(err, errsz, "out of memory");
		goto fail;
	}
	if (buf_put_u32(hello, MUX_MSG_HELLO) != 0 ||
	    buf_put_u32(hello, MUX_VERSION) != 0) {
		snprintf(err, errsz, "out of memory");
		goto fail;
	}
	r = mux_frame(mc->out, hello);		/* frees hello */
	hello = NULL;
	if (r != 0 || event_add(mc->wev, NULL) != 0 ||
	    event_add(mc->rev, NULL) != 0) {
		snprintf(err, errsz, "cannot queue HELLO");
		goto fail;
	}
	return mc;
 fail:
	if (hello != NULL)
		evbuffer_free(hello);
	mc->dead = 1;
	mux_free(mc);
	return NULL;
}

/* Give the connection a new owner, as when a session ends mid-request. */
void
mux_set_cb(struct mux_conn *mc, mux_cb cb, void *arg)
{
	mc->cb = cb;
	mc->arg = arg;
}

int
mux_is_ready(const struct mux_conn *mc)
{
	return mc->ready && !mc->dead;
}

/*
 * Ask for a stdio forward to host:port: the master reads what it sends
 * from in_fd and writes what comes back to out_fd, which may be one
 * socket.  Both are ours to close from now on, whatever happens.
 */
int
mux_stdio_fwd(struct mux_conn *mc, const char *host, uint16_t port,
    int in_fd, int out_fd, uint32_t *ridp)
{
	struct evbuffer	*m;

	if (mc->dead || mc->npass != 0 || port == 0 ||
	    (m = evbuffer_new()) == NULL) {
		close(in_fd);
		if (out_fd != in_fd)
			close(out_fd);
		return -1;
	}
	mc->pass_fds[0] = in_fd;
	mc->pass_fds[1] = out_fd;
	mc->npass = 2;
	*ridp = mc->next_rid++;
	/* The connect port is a uint32 on the wire, not a string. */
	if (buf_put_u32(m, MUX_C_NEW_STDIO_FWD) != 0 ||
	    buf_put_u32(m, *ridp) != 0 ||
	    buf_put_string(m, "") != 0 ||
	    buf_put_string(m, host) != 0 ||
	    buf_put_u32(m, port) != 0) {
		evbuffer_free(m);
		pass_close(mc);
		return -1;
	}
	return mux_send(mc, m);
}

/*
 * Run command, or with subsystem set the subsystem of that name (sftp),
 * in a session without a tty, fd (/dev/null, or a socketpair's end) as
 * its standard input, output and error.  fd is ours from now on.
 */
int
mux_new_session(struct mux_conn *mc, const char *command, int subsystem,
    int fd, uint32_t *ridp)
{
	struct evbuffer	*m;

	if (mc->dead || mc->npass != 0 || (m = evbuffer_new()) == NULL) {
		close(fd);
		return -1;
	}
	*ridp = mc->next_rid++;
	if (buf_put_u32(m, MUX_C_NEW_SESSION) != 0 ||
	    buf_put_u32(m, *ridp) != 0 ||
	    buf_put_string(m, "") != 0 ||
	    buf_put_u32(m, 0) != 0 ||			/* tty */
	    buf_put_u32(m, 0) != 0 ||			/* X11 */
	    buf_put_u32(m, 0) != 0 ||			/* agent */
	    buf_put_u32(m, subsystem != 0) != 0 ||	/* a subsystem */
	    buf_put_u32(m, MUX_ESCAPE_NONE) != 0 ||
	    buf_put_string(m, "") != 0 ||		/* terminal type */
	    buf_put_string(m, command) != 0) {
		evbuffer_free(m);
		close(fd);
		return -1;
	}
	mc->pass_fds[0] = mc->pass_fds[1] = mc->pass_fds[2] = fd;
	mc->npass = 3;
	return mux_send(mc, m);
}

/* Ask the master for its pid (MUX_S_ALIVE); it opens no channel. */
int
mux_alive_check(struct mux_conn *mc, uint32_t *ridp)
{
	struct evbuffer	*m;

	if (mc->dead || (m = evbuffer_new()) == NULL)
		return -1;
	*ridp = mc->next_rid++;
	if (buf_put_u32(m, MUX_C_ALIVE_CHECK) != 0 ||
	    buf_put_u32(m, *ridp) != 0) {
		evbuffer_free(m);
		return -1;
	}
	return mux_send(mc, m);
}

/*
 * MUX_C_OPEN_FWD or MUX_C_CLOSE_FWD for a remote forward from lhost:lport
 * on the ssh server to the Unix socket at path on ours.  Its connect
 * "port" is MUX_PORT_STREAMLOCAL, the one value above 65535 that
 * OpenSSH 9.2 takes: any other drops the whole mux connection.
 */
static int
mux_rfwd_request(struct mux_conn *mc, uint32_t type, const char *lhost,
    uint16_t lport, const char *path, uint32_t *ridp)
{
	struct evbuffer	*m;

	if (mc->dead || (m = evbuffer_new()) == NULL)
		return -1;
	*ridp = mc->next_rid++;
	if (buf_put_u32(m, type) != 0 ||
	    buf_put_u32(m, *ridp) != 0 ||
	    buf_put_u32(m, MUX_FWD_REMOTE) != 0 ||
	    buf_put_string(m, lhost) != 0 ||
	    buf_put_u32(m, lport) != 0 ||
	    buf_put_string(m, path) != 0 ||
	    buf_put_u32(m, MUX_PORT_STREAMLOCAL) != 0) {
		evbuffer_free(m);
		return -1;
	}
	return mux_send(mc, m);
}

int
mux_open_rfwd_path(struct mux_conn *mc, const char *lhost, uint16_t lport,
    const char *path, uint32_t *ridp)
{
	return mux_rfwd_request(mc, MUX_C_OPEN_FWD, lhost, lport, path, ridp);
}

int
mux_close_rfwd_path(struct mux_conn *mc, const char *lhost, uint16_t lport,
    const char *path, uint32_t *ridp)
{
	return mux_rfwd_request(mc, MUX_C_CLOSE_FWD, lhost, lport, path, ridp);
}

static void
mux_free_now(evutil_socket_t fd, short what, void *arg)
{
	struct mux_conn	*mc = arg;

	(void)fd;
	(void)what;
	if (mc->rev != NULL)
		event_free(mc->rev);
	if (mc->wev != NULL)
		event_free(mc->wev);
	if (mc->in != NULL)
		evbuffer_free(mc->in);
	if (mc->out != NULL)
		evbuffer_free(mc->out);
	if (mc->held != NULL)
		evbuffer_free(mc->held);
	pass_close(mc);
	if (mc->fd != -1)
		close(mc->fd);
	free(mc);
}

/*
 * Forget the connection.  It may be our caller's own callback that asks,
 * so the memory goes later, from the loop (as tmux does).
 */
void
mux_free(struct mux_conn *mc)
{
	if (mc == NULL)
		return;
	mc->dead = 1;
	if (mc->rev != NULL)
		event_del(mc->rev);
	if (mc->wev != NULL)
		event_del(mc->wev);
	if (mc->base == NULL || event_base_once(mc->base, -1, EV_TIMEOUT,
	    mux_free_now, mc, NULL) == -1)
		mux_free_now(-1, 0, mc);
}
