/*
 * sftpchan_probe: sftpchan.c through a real ControlMaster, for
 * t/14-sftpchan.t.  It prints "ok - name" and "not ok - name" lines,
 * unnumbered (the wrapper numbers them among its own), and "#" lines:
 * "# sha256 HEX" for the file it wrote, and "# fault: ready" once a
 * READ loop is running for the wrapper to kill sftp-server under.
 *
 * usage: sftpchan_probe control-path directory
 */

#include <sys/types.h>

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <openssl/evp.h>

#include "sftp.h"
#include "sftpchan.h"

#define FILE_NAME	"f5m"
#define FILE_SIZE	(5 * 1000 * 1000)
#define WINDOW		32		/* READs or WRITEs in flight */
#define CROWD		30		/* FTP sessions at once */
#define SSHD_SESSIONS	10		/* sshd's default MaxSessions */
#define WAIT_SECS	60		/* for any one step */
#define FAULT_WARMUP	50		/* replies before the kill */
#define FAULT_WINDOW	16
#define FAULT_TRIES	20		/* to get the fault's channel */
#define FAULT_PAUSE_MS	250		/* between them */
#define PKT_MAX		4096		/* a request of ours, not WRITE */
#define ERR_MAX		256

static struct event_base *base;
static const char	*ctl, *dir;
static int		 failures;
static u_int		 refusals;	/* logged by the pool */

static void
ok(int cond, const char *fmt, ...)
{
	va_list	ap;

	if (!cond)
		failures++;
	printf("%sok - ", cond ? "" : "not ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

static void probe_log(int, const char *, ...)
    __attribute__((format(printf, 2, 3)));

static void
probe_log(int level, const char *fmt, ...)
{
	char	buf[1024];
	va_list	ap;

	va_start(ap, fmt);
	(void)vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (strstr(buf, " refused (") != NULL)
		refusals++;
	if (level <= SFTP_LOG_VERBOSE)
		printf("# pool: %s\n", buf);
}

static void
expire_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	*(int *)arg = 1;
}

/* Run the loop until *flag is set: 1, or 0 after WAIT_SECS. */
static int
wait_for(const int *flag)
{
	struct timeval	 tv = { WAIT_SECS, 0 };
	struct event	*t;
	int		 expired = 0;

	if ((t = evtimer_new(base, expire_cb, &expired)) == NULL ||
	    evtimer_add(t, &tv) != 0) {
		printf("Bail out! cannot arm a timer\n");
		exit(255);
	}
	while (!*flag && !expired)
		(void)event_base_loop(base, EVLOOP_ONCE);
	event_free(t);
	return *flag;
}

/* Let mux_free's and the pool's deferred frees run. */
static void
drain(void)
{
	(void)event_base_loop(base, EVLOOP_NONBLOCK);
	(void)event_base_loop(base, EVLOOP_NONBLOCK);
}

/* One reply, kept past its callback. */
struct res {
	int		 done;
	char		 err[ERR_MAX];
	uint8_t		 type;
	uint32_t	 code;
	char		 handle[SFTP_HANDLE_MAX];
	size_t		 handle_len;
	uint32_t	 count;
	unsigned char	*names;
	size_t		 names_len;
};

static void
res_cb(const struct sftp_reply *r, const char *err, void *arg)
{
	struct res	*res = arg;

	res->done = 1;
	if (r == NULL) {
		(void)snprintf(res->err, sizeof(res->err), "%s", err);
		return;
	}
	res->type = r->type;
	res->code = r->code;
	if (r->type == SSH_FXP_HANDLE) {
		memcpy(res->handle, r->handle.p, r->handle.len);
		res->handle_len = r->handle.len;
	}
	if (r->type == SSH_FXP_NAME && r->names_len > 0 &&
	    (res->names = malloc(r->names_len)) != NULL) {
		memcpy(res->names, r->names, r->names_len);
		res->names_len = r->names_len;
		res->count = r->count;
	}
}

/* Send one request and wait for its reply: 0, or -1 if none came. */
static int
rpc(struct sftp_chan *ch, const unsigned char *pkt, long len,
    struct res *res)
{
	memset(res, 0, sizeof(*res));
	if (len <= 0 || sftp_chan_send(ch, pkt, (size_t)len, res_cb,
	    res) != 0) {
		(void)snprintf(res->err, sizeof(res->err), "cannot send");
		return -1;
	}
	if (!wait_for(&res->done)) {
		(void)snprintf(res->err, sizeof(res->err), "no reply");
		return -1;
	}
	return res->err[0] == '\0' ? 0 : -1;
}

static int
rpc_path(struct sftp_chan *ch, uint8_t type, const char *path,
    struct res *res)
{
	unsigned char	pkt[PKT_MAX];

	return rpc(ch, pkt, sftp_enc_path(pkt, sizeof(pkt), type,
	    sftp_chan_next_id(ch), path, strlen(path)), res);
}

static int
rpc_handle(struct sftp_chan *ch, uint8_t type, const struct res *h,
    struct res *res)
{
	unsigned char	pkt[PKT_MAX];
	struct sftp_str	hs = { h->handle, h->handle_len };

	return rpc(ch, pkt, sftp_enc_handle(pkt, sizeof(pkt), type,
	    sftp_chan_next_id(ch), &hs), res);
}

static int
rpc_open(struct sftp_chan *ch, const char *path, uint32_t flags,
    struct res *res)
{
	unsigned char	pkt[PKT_MAX];

	if (rpc(ch, pkt, sftp_enc_open(pkt, sizeof(pkt),
	    sftp_chan_next_id(ch), path, strlen(path), flags, NULL),
	    res) != 0)
		return -1;
	return res->type == SSH_FXP_HANDLE ? 0 : -1;
}

static int
status_ok(const struct res *res, uint32_t code)
{
	return res->err[0] == '\0' && res->type == SSH_FXP_STATUS &&
	    res->code == code;
}

/* A pipelined READ or WRITE of the whole file. */
struct xfer {
	struct sftp_chan *ch;
	struct sftp_str	 h;
	unsigned char	*buf;
	size_t		 size, chunk;
	size_t		 next;		/* offset of the next request */
	size_t		 got;		/* bytes answered */
	u_int		 inflight, max_inflight;
	size_t		 max_queued;
	int		 failed, done;
	char		 why[ERR_MAX];
};

struct piece {
	struct xfer	*x;
	size_t		 off, len;
};

static void	xfer_more(struct xfer *, int);

static void
xfer_fail(struct xfer *x, const char *why)
{
	if (!x->failed)
		(void)snprintf(x->why, sizeof(x->why), "%s", why);
	x->failed = 1;
}

static void
xfer_check_done(struct xfer *x)
{
	if (x->inflight == 0 && (x->failed || x->got == x->size))
		x->done = 1;
}

static void
write_cb(const struct sftp_reply *r, const char *err, void *arg)
{
	struct piece	*pc = arg;
	struct xfer	*x = pc->x;

	x->inflight--;
	if (r == NULL)
		xfer_fail(x, err);
	else if (r->type != SSH_FXP_STATUS || r->code != SSH_FX_OK)
		xfer_fail(x, "a WRITE failed");
	else
		x->got += pc->len;
	free(pc);
	xfer_more(x, 1);
	xfer_check_done(x);
}

static void
read_cb(const struct sftp_reply *r, const char *err, void *arg)
{
	struct piece	*pc = arg;
	struct xfer	*x = pc->x;

	x->inflight--;
	if (r == NULL)
		xfer_fail(x, err);
	else if (r->type != SSH_FXP_DATA || r->data.len > pc->len ||
	    r->data.len == 0)
		xfer_fail(x, "a READ did not get DATA");
	else {
		memcpy(x->buf + pc->off, r->data.p, r->data.len);
		x->got += r->data.len;
		if (r->data.len < pc->len) {
			/* A short read: ask for the rest again. */
			pc->off += r->data.len;
			pc->len -= r->data.len;
			pc = NULL;
		}
	}
	free(pc);
	xfer_more(x, 0);
	xfer_check_done(x);
}

static int
xfer_send(struct xfer *x, int writing, struct piece *pc)
{
	unsigned char	hb[PKT_MAX];
	uint32_t	id = sftp_chan_next_id(x->ch);
	long		n;

	if (writing) {
		n = sftp_enc_write_head(hb, sizeof(hb), id, &x->h, pc->off,
		    (uint32_t)pc->len);
		return n <= 0 ? -1 : sftp_chan_send_write(x->ch, hb,
		    (size_t)n, x->buf + pc->off, pc->len, write_cb, pc);
	}
	n = sftp_enc_read(hb, sizeof(hb), id, &x->h, pc->off,
	    (uint32_t)pc->len);
	return n <= 0 ? -1 : sftp_chan_send(x->ch, hb, (size_t)n, read_cb,
	    pc);
}

static void
xfer_more(struct xfer *x, int writing)
{
	struct piece	*pc;

	while (!x->failed && x->inflight < WINDOW && x->next < x->size) {
		if ((pc = calloc(1, sizeof(*pc))) == NULL) {
			xfer_fail(x, "out of memory");
			return;
		}
		pc->x = x;
		pc->off = x->next;
		pc->len = x->size - x->next < x->chunk ?
		    x->size - x->next : x->chunk;
		if (xfer_send(x, writing, pc) != 0) {
			free(pc);
			xfer_fail(x, "cannot send");
			return;
		}
		x->next += pc->len;
		if (++x->inflight > x->max_inflight)
			x->max_inflight = x->inflight;
		if (sftp_chan_queued(x->ch) > x->max_queued)
			x->max_queued = sftp_chan_queued(x->ch);
	}
}

/* Open path, move the whole file one way or the other, close it. */
static int
xfer_run(struct sftp_chan *ch, const char *path, unsigned char *buf,
    int writing, struct xfer *x)
{
	struct res	h, res;
	uint32_t	flags = writing ?
			    SSH_FXF_WRITE | SSH_FXF_CREAT | SSH_FXF_TRUNC :
			    SSH_FXF_READ;

	memset(x, 0, sizeof(*x));
	if (rpc_open(ch, path, flags, &h) != 0) {
		xfer_fail(x, "OPEN failed");
		return -1;
	}
	x->ch = ch;
	x->h.p = h.handle;
	x->h.len = h.handle_len;
	x->buf = buf;
	x->size = FILE_SIZE;
	x->chunk = writing ? sftp_chan_limits(ch)->write_len :
	    sftp_chan_limits(ch)->read_len;
	xfer_more(x, writing);
	if (!wait_for(&x->done))
		xfer_fail(x, "timed out");
	if (rpc_handle(ch, SSH_FXP_CLOSE, &h, &res) != 0 ||
	    !status_ok(&res, SSH_FX_OK))
		xfer_fail(x, "CLOSE failed");
	return x->failed ? -1 : 0;
}

static void
fill(unsigned char *buf, size_t len)
{
	uint64_t	s = 0x9e3779b97f4a7c15ULL;
	size_t		i;

	for (i = 0; i < len; i++) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		buf[i] = (unsigned char)(s >> 24);
	}
}

static void
print_sha256(const unsigned char *buf, size_t len)
{
	unsigned char	md[EVP_MAX_MD_SIZE];
	unsigned int	mdlen = 0, i;

	if (EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL) != 1)
		mdlen = 0;
	printf("# sha256 ");
	for (i = 0; i < mdlen; i++)
		printf("%02x", md[i]);
	printf("\n");
}

/* Is name among the entries of a NAME reply? */
static int
names_have(const struct res *res, const char *name)
{
	const unsigned char	*cur = res->names;
	size_t			 left = res->names_len;
	struct sftp_name	 n;
	uint32_t		 i;

	for (i = 0; i < res->count; i++) {
		if (sftp_name_next(&cur, &left, &n) != 0)
			return 0;
		if (n.filename.len == strlen(name) &&
		    memcmp(n.filename.p, name, n.filename.len) == 0)
			return 1;
	}
	return 0;
}

/* OPENDIR and READDIR to the end: does dir hold the file written? */
static void
list_dir(struct sftp_chan *ch)
{
	struct res	h, res;
	int		found = 0, batches = 0, eof = 0;

	if (rpc_path(ch, SSH_FXP_OPENDIR, dir, &h) != 0 ||
	    h.type != SSH_FXP_HANDLE) {
		ok(0, "OPENDIR %s", dir);
		return;
	}
	while (batches < 1000) {
		if (rpc_handle(ch, SSH_FXP_READDIR, &h, &res) != 0)
			break;
		if (status_ok(&res, SSH_FX_EOF)) {
			eof = 1;
			break;
		}
		if (res.type != SSH_FXP_NAME)
			break;
		batches++;
		found |= names_have(&res, FILE_NAME);
		free(res.names);
	}
	ok(eof && batches > 0, "OPENDIR and READDIR to EOF (%d batches)",
	    batches);
	ok(found, "the listing has %s", FILE_NAME);
	ok(rpc_handle(ch, SSH_FXP_CLOSE, &h, &res) == 0 &&
	    status_ok(&res, SSH_FX_OK), "CLOSE of the directory");
}

/* REALPATH ".", and what the handshake found. */
static void
handshake(struct sftp_chan *ch)
{
	const struct sftp_limits	*lim;
	struct res			 res;

	ok(rpc_path(ch, SSH_FXP_REALPATH, ".", &res) == 0 &&
	    res.type == SSH_FXP_NAME && res.count == 1, "REALPATH . %s",
	    res.err);
	free(res.names);
	ok(sftp_chan_ready(ch), "the channel is ready after its first reply");
	ok(sftp_chan_has_ext(ch, "limits@openssh.com"),
	    "VERSION offers limits@openssh.com");
	ok(sftp_chan_has_ext(ch, "posix-rename@openssh.com") &&
	    sftp_chan_has_ext(ch, "fsync@openssh.com"),
	    "VERSION offers posix-rename and fsync");
	ok(!sftp_chan_has_ext(ch, "nonesuch@example.com"),
	    "and not an extension nobody offers");
	lim = sftp_chan_limits(ch);
	ok(lim->read_len > SFTP_CHAN_IO_DEFAULT &&
	    lim->read_len <= SFTP_CHAN_IO_MAX &&
	    lim->write_len > SFTP_CHAN_IO_DEFAULT &&
	    lim->write_len <= SFTP_CHAN_IO_MAX,
	    "limits: read %llu, write %llu, within %d",
	    (unsigned long long)lim->read_len,
	    (unsigned long long)lim->write_len, SFTP_CHAN_IO_MAX);
}

static void
transfers(void)
{
	struct sftp_pool	*pool;
	struct sftp_chan	*ch;
	struct xfer		 x;
	unsigned char		*src, *back;
	char			 path[PKT_MAX];

	(void)snprintf(path, sizeof(path), "%s/%s", dir, FILE_NAME);
	if ((src = malloc(FILE_SIZE)) == NULL ||
	    (back = calloc(1, FILE_SIZE)) == NULL) {
		printf("Bail out! out of memory\n");
		exit(255);
	}
	fill(src, FILE_SIZE);
	pool = sftp_pool_new(base, ctl, 0, probe_log);
	ch = pool != NULL ? sftp_chan_get(pool) : NULL;
	ok(ch != NULL, "a pool, and a channel from it");
	if (ch == NULL)
		exit(1);
	handshake(ch);
	ok(xfer_run(ch, path, src, 1, &x) == 0, "a %d-byte file written %s",
	    FILE_SIZE, x.why);
	ok(x.max_inflight > 1, "with %u WRITEs in flight, %zu bytes queued",
	    x.max_inflight, x.max_queued);
	print_sha256(src, FILE_SIZE);
	ok(xfer_run(ch, path, back, 0, &x) == 0, "read back %s", x.why);
	ok(x.max_inflight > 1, "with %u READs in flight", x.max_inflight);
	ok(memcmp(src, back, FILE_SIZE) == 0, "the same bytes came back");
	list_dir(ch);
	sftp_chan_put(ch);
	sftp_pool_free(pool);
	drain();
	free(src);
	free(back);
}

struct user {
	struct sftp_chan	*ch;
	int			 answered, attrs;
	char			 err[ERR_MAX];
};

static u_int	crowd_answered;
static int	crowd_done;

static void
stat_cb(const struct sftp_reply *r, const char *err, void *arg)
{
	struct user	*u = arg;

	u->answered++;
	u->attrs = r != NULL && r->type == SSH_FXP_ATTRS;
	if (err != NULL)
		(void)snprintf(u->err, sizeof(u->err), "%s", err);
	if (++crowd_answered == CROWD)
		crowd_done = 1;
}

/* CROWD users of one pool at once, a STAT each. */
static void
crowd(u_int max)
{
	struct sftp_pool	*pool;
	struct user		 u[CROWD];
	unsigned char		 pkt[PKT_MAX];
	u_int			 i, good = 0, once = 0;
	long			 n;

	memset(u, 0, sizeof(u));
	crowd_answered = 0;
	crowd_done = 0;
	refusals = 0;
	if ((pool = sftp_pool_new(base, ctl, max, probe_log)) == NULL)
		exit(1);
	for (i = 0; i < CROWD; i++) {
		if ((u[i].ch = sftp_chan_get(pool)) == NULL)
			break;
		n = sftp_enc_path(pkt, sizeof(pkt), SSH_FXP_STAT,
		    sftp_chan_next_id(u[i].ch), dir, strlen(dir));
		if (n <= 0 || sftp_chan_send(u[i].ch, pkt, (size_t)n,
		    stat_cb, &u[i]) != 0)
			break;
	}
	ok(i == CROWD, "pool of %u: %d users at once, each sent a STAT", max,
	    CROWD);
	(void)wait_for(&crowd_done);
	for (i = 0; i < CROWD; i++) {
		good += u[i].attrs;
		once += u[i].answered == 1;
		if (u[i].err[0] != '\0')
			printf("# user %u: %s\n", i, u[i].err);
	}
	ok(good == CROWD && once == CROWD, "pool of %u: all %d answered "
	    "with ATTRS, once each (%u, %u)", max, CROWD, good, once);
	ok(sftp_pool_channels(pool) <= SSHD_SESSIONS &&
	    sftp_pool_channels(pool) <= (max != 0 ? max : SFTP_POOL_CHANNELS),
	    "pool of %u: %u channels open, "
	    "cap now %u, %u refused", max, sftp_pool_channels(pool),
	    sftp_pool_cap(pool), refusals);
	if (max > SSHD_SESSIONS)
		ok(refusals > 0 && sftp_pool_cap(pool) <= SSHD_SESSIONS,
		    "pool of %u: sshd refused sessions and the pool kept to "
		    "%u", max, sftp_pool_cap(pool));
	for (i = 0; i < CROWD; i++)
		sftp_chan_put(u[i].ch);
	sftp_pool_free(pool);
	drain();
}

/* A READ loop that runs until its channel dies under it. */
struct fault {
	struct sftp_chan *ch;
	struct sftp_str	 h;
	uint64_t	 off;
	u_int		 inflight, replies;
	u_int		 at_death, errs, late;
	int		 dead, announced, done, resend;
	char		 err[ERR_MAX];
};

static void	fault_more(struct fault *);

static void
fault_cb(const struct sftp_reply *r, const char *err, void *arg)
{
	struct fault	*f = arg;
	unsigned char	 pkt[PKT_MAX];
	long		 n;

	f->inflight--;
	if (r == NULL) {
		if (!f->dead) {
			f->dead = 1;
			f->at_death = f->inflight + 1;
			(void)snprintf(f->err, sizeof(f->err), "%s", err);
			n = sftp_enc_path(pkt, sizeof(pkt), SSH_FXP_STAT,
			    sftp_chan_next_id(f->ch), ".", 1);
			f->resend = sftp_chan_send(f->ch, pkt, (size_t)n,
			    fault_cb, f);
		}
		f->errs++;
	} else if (f->dead)
		f->late++;
	else {
		if (++f->replies == FAULT_WARMUP && !f->announced) {
			f->announced = 1;
			printf("# fault: ready\n");
			(void)fflush(stdout);
		}
		fault_more(f);
	}
	if (f->dead && f->inflight == 0)
		f->done = 1;
}

static void
fault_more(struct fault *f)
{
	unsigned char	pkt[PKT_MAX];
	long		n;

	while (f->inflight < FAULT_WINDOW) {
		n = sftp_enc_read(pkt, sizeof(pkt), sftp_chan_next_id(f->ch),
		    &f->h, f->off, SFTP_CHAN_IO_DEFAULT);
		if (n <= 0 || sftp_chan_send(f->ch, pkt, (size_t)n, fault_cb,
		    f) != 0)
			return;
		f->inflight++;
		f->off = (f->off + SFTP_CHAN_IO_DEFAULT) % FILE_SIZE;
	}
}

static void
pause_ms(int ms)
{
	struct timeval	 tv = { 0, ms * 1000 };
	struct event	*t;
	int		 expired = 0;

	if ((t = evtimer_new(base, expire_cb, &expired)) == NULL ||
	    evtimer_add(t, &tv) != 0)
		return;
	while (!expired)
		(void)event_base_loop(base, EVLOOP_ONCE);
	event_free(t);
}

/*
 * A pool of one channel, with the file open on it.  sshd may still be
 * closing the crowd's sessions and refuse this one: then again.
 */
static struct sftp_pool *
fault_pool(struct fault *f, struct res *h)
{
	struct sftp_pool	*pool;
	char			 path[PKT_MAX];
	int			 try;

	(void)snprintf(path, sizeof(path), "%s/%s", dir, FILE_NAME);
	for (try = 0; try < FAULT_TRIES; try++) {
		if ((pool = sftp_pool_new(base, ctl, 1, probe_log)) == NULL)
			return NULL;
		if ((f->ch = sftp_chan_get(pool)) != NULL &&
		    rpc_open(f->ch, path, SSH_FXF_READ, h) == 0)
			return pool;
		printf("# fault: no channel yet (%s)\n", h->err);
		sftp_chan_put(f->ch);
		sftp_pool_free(pool);
		drain();
		pause_ms(FAULT_PAUSE_MS);
	}
	return NULL;
}

/* sftp-server killed by the wrapper under a READ loop; then anew. */
static void
fault(void)
{
	struct sftp_pool	*pool;
	struct fault		 f;
	struct res		 h, res;
	int			 ended;

	memset(&f, 0, sizeof(f));
	if ((pool = fault_pool(&f, &h)) == NULL) {
		ok(0, "fault: a channel and an open file");
		return;
	}
	f.h.p = h.handle;
	f.h.len = h.handle_len;
	fault_more(&f);
	ended = wait_for(&f.done);
	ok(ended, "fault: the READ loop ended (%u replies)", f.replies);
	ok(f.at_death > 1 && f.errs == f.at_death && f.late == 0,
	    "fault: all %u pending got an error (%u did), no reply after",
	    f.at_death, f.errs);
	ok(strncmp(f.err, "sftp channel lost: ", 19) == 0, "fault: %s",
	    f.err);
	ok(f.resend == -1, "fault: the dead channel refuses new requests");
	sftp_chan_put(f.ch);
	ok(sftp_pool_channels(pool) == 0, "fault: the pool has no channel");
	f.ch = sftp_chan_get(pool);
	ok(f.ch != NULL && rpc_path(f.ch, SSH_FXP_REALPATH, ".", &res) == 0 &&
	    res.type == SSH_FXP_NAME, "fault: a fresh channel answers "
	    "REALPATH %s", res.err);
	free(res.names);
	sftp_chan_put(f.ch);
	sftp_pool_free(pool);
	drain();
}

int
main(int argc, char *argv[])
{
	if (argc != 3) {
		fprintf(stderr, "usage: sftpchan_probe control-path dir\n");
		return 2;
	}
	ctl = argv[1];
	dir = argv[2];
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* As ftpfwd does: ssh_mux.c writes to the master with writev. */
	(void)signal(SIGPIPE, SIG_IGN);
	if ((base = event_base_new()) == NULL) {
		printf("Bail out! no event base\n");
		return 255;
	}
	transfers();
	crowd(0);
	crowd(CROWD);
	fault();
	drain();
	event_base_free(base);
	printf("# done, %d failed\n", failures);
	return failures != 0;
}
