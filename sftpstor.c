/*
 * sftpstor.c: Backend=sftp, STOR, APPE and STOU: OPEN, the data
 * connection, then WRITEs of what the client sends, staged up to one
 * WRITE's length and moved, not copied, into the channel; CLOSE, whose
 * OK means the file is stored, before 226.  What is in flight is
 * bounded as for RETR (sftpxfer.c), and so is what the shared channel
 * holds: the client is not read while either is full.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "ftpfwd.h"
#include "sftpchan.h"

static void	sx_read_more(struct sfs_xfer *);

static void
stor_close_cb(struct session *s, struct sfs_req *q, const struct sftp_reply *r)
{
	struct sfs_xfer	*x = s->sfs->xfer;

	(void)q;
	x->handle_len = 0;
	if (r->type != SSH_FXP_STATUS || r->code != SSH_FX_OK) {
		sx_end_status(x, r, 451);
		return;
	}
	x->src_eof = 1;
	sx_finish(x);
}

/* All the client sent is written: CLOSE, whose OK means it is stored. */
static void
stor_done(struct sfs_xfer *x)
{
	unsigned char	pkt[SFS_PKT_MAX];
	struct sftp_str	h = { x->handle, x->handle_len };

	if (x->closing)
		return;
	x->closing = 1;
	(void)sx_send(x, pkt, sftp_enc_handle(pkt, sizeof(pkt),
	    SSH_FXP_CLOSE, sftp_chan_next_id(x->s->sfs->ch), &h),
	    stor_close_cb, NULL);
}

static void
write_cb(struct session *s, struct sfs_req *q, const struct sftp_reply *r)
{
	struct sfs_xfer	*x = q->xfer;

	(void)s;
	x->nreq--;
	x->inflight -= (size_t)(uintptr_t)q->slot;
	if (r->type != SSH_FXP_STATUS || r->code != SSH_FX_OK) {
		sx_end_status(x, r, 451);
		return;
	}
	sx_stor_flush(x);
}

/* TYPE A: CR LF becomes LF; a CR at the end waits for what follows. */
static size_t
from_crlf(struct sfs_xfer *x, char *buf, size_t len)
{
	size_t	i, o = 0;

	for (i = 0; i < len; i++) {
		if (x->cr) {
			x->cr = 0;
			if (buf[i] != '\n')
				buf[o++] = '\r';
		}
		if (buf[i] == '\r')
			x->cr = 1;
		else
			buf[o++] = buf[i];
	}
	return o;
}

/* A WRITE of the first len staged bytes, moved, not copied. */
static int
write_send(struct sfs_xfer *x, size_t len)
{
	unsigned char	pkt[SFS_PKT_MAX];
	struct sftp_str	h = { x->handle, x->handle_len };

	if (sfs_send_write(x->s, pkt, sftp_enc_write_head(pkt, sizeof(pkt),
	    sftp_chan_next_id(x->s->sfs->ch), &h, x->off, (uint32_t)len),
	    x->out, len, write_cb, x, (void *)(uintptr_t)len) == -1) {
		if (!x->dead) {
			sx_stop(x, 0);
			sfs_done(x->s);
		}
		return -1;
	}
	x->off += len;
	x->nreq++;
	x->inflight += len;
	return 0;
}

static void
stor_read_cb(evutil_socket_t fd, short what, void *arg)
{
	static char	 buf[SFTP_CHAN_IO_MAX + 1];
	struct sfs_xfer	*x = arg;
	size_t		 io = sfs_io_len(x->s, 1), len, had;
	ssize_t		 n;

	(void)what;
	/* TYPE I: straight into the staging buffer, whence WRITEs move it. */
	if (x->s->sfs->type != 'A') {
		had = evbuffer_get_length(x->out);
		if ((n = sftp_evbuffer_read(x->out, fd, io)) == 1)
			n = (ssize_t)(evbuffer_get_length(x->out) - had);
	} else
		n = read(fd, buf, io);
	if (n == -1) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		sx_end(x, "426 Connection closed; transfer aborted (%s).",
		    strerror(errno));
		return;
	}
	x->bytes += (uint64_t)n;
	len = x->s->sfs->type == 'A' ? (size_t)n : 0;
	if (n == 0) {
		x->src_eof = 1;
		event_del(x->rev);
		if (x->cr) {
			x->cr = 0;
			buf[0] = '\r';
			len = 1;
		}
	} else if (len > 0)
		len = from_crlf(x, buf, len);
	if (len > 0 && evbuffer_add(x->out, buf, len) != 0) {
		sx_end(x, "451 ftpfwd: out of memory");
		return;
	}
	sx_stor_flush(x);
}

/*
 * Staged bytes go out as WRITEs of the full length sftp-server allows
 * (a socket read gives what has come, often far less), the last one
 * short; then CLOSE once all are answered.
 */
void
sx_stor_flush(struct sfs_xfer *x)
{
	size_t		 io = sfs_io_len(x->s, 1), len;

	while (!x->dead && (len = evbuffer_get_length(x->out)) > 0 &&
	    (len >= io || x->src_eof) && x->nreq < SFS_XFER_REQS &&
	    x->inflight + io <= SFS_XFER_CAP && sx_chan_room(x))
		if (write_send(x, len < io ? len : io) == -1)
			return;
	if (x->dead)
		return;
	if (x->src_eof && x->nreq == 0 && evbuffer_get_length(x->out) == 0)
		stor_done(x);
	else
		sx_read_more(x);
}

/*
 * Read the client while less than a WRITE is staged and the window and
 * the channel have room.
 */
static void
sx_read_more(struct sfs_xfer *x)
{
	size_t	io = sfs_io_len(x->s, 1);

	if (x->dead || x->src_eof)
		return;
	if (evbuffer_get_length(x->out) < io && x->nreq < SFS_XFER_REQS &&
	    x->inflight + io <= SFS_XFER_CAP && sx_chan_room(x))
		event_add(x->rev, NULL);
	else
		event_del(x->rev);
}

static void
stor_go(struct session *s, const char *err)
{
	struct sfs_xfer	*x = s->sfs->xfer;
	char		 name[SFS_PATH_MAX];

	if (sx_data_came(x, err) == -1)
		return;
	if ((x->rev = event_new(evbase, x->fd, EV_READ | EV_PERSIST,
	    stor_read_cb, x)) == NULL) {
		sx_end(x, "425 ftpfwd: out of memory");
		return;
	}
	sfs_safe(name, sizeof(name), x->path, strlen(x->path));
	if (x->how == 'U')
		client_reply(s, "150 FILE: %s", name);
	else
		client_reply(s, "150 Ok to send data.");
	x->opened = 1;
	sx_read_more(x);
}

static void	stor_open(struct sfs_xfer *);

static void
stor_open_cb(struct session *s, struct sfs_req *q, const struct sftp_reply *r)
{
	struct sfs_xfer	*x = s->sfs->xfer;
	char		*dot;
	int		 n;

	(void)q;
	/* STOU: sftp-server says only "Failure" for a name taken. */
	if (x->how == 'U' && r->type == SSH_FXP_STATUS &&
	    r->code == SSH_FX_FAILURE && ++x->tries < SFS_STOU_TRIES) {
		if (x->tries > 1 && (dot = strrchr(x->path, '.')) != NULL)
			*dot = '\0';
		n = snprintf(x->path + strlen(x->path),
		    sizeof(x->path) - strlen(x->path), ".%u", x->tries);
		if (n > 0 && strlen(x->path) < sizeof(x->path) - 1) {
			stor_open(x);
			return;
		}
	}
	if (sx_handle(x, r) == 0)
		sx_data_get(x, stor_go);
}

static void
stor_open(struct sfs_xfer *x)
{
	unsigned char	pkt[SFS_PKT_MAX];
	uint32_t	flags = SSH_FXF_WRITE | SSH_FXF_CREAT;

	if (x->how == 'U')
		flags |= SSH_FXF_EXCL;
	else if (x->how == 'S' && x->off == 0)
		flags |= SSH_FXF_TRUNC;
	(void)sx_send(x, pkt, sftp_enc_open(pkt, sizeof(pkt),
	    sftp_chan_next_id(x->s->sfs->ch), x->path, strlen(x->path), flags,
	    NULL), stor_open_cb, NULL);
}

/* APPE: writes go at the end, which a STAT tells. */
static void
appe_stat_cb(struct session *s, struct sfs_req *q, const struct sftp_reply *r)
{
	struct sfs_xfer	*x = s->sfs->xfer;

	(void)q;
	if (r->type == SSH_FXP_ATTRS) {
		if ((r->attrs.flags & SSH_FILEXFER_ATTR_PERMISSIONS) &&
		    !S_ISREG(r->attrs.perm)) {
			sx_end(x, "550 %s: Not a plain file", x->path);
			return;
		}
		x->off = r->attrs.size;
	} else if (r->type != SSH_FXP_STATUS ||
	    r->code != SSH_FX_NO_SUCH_FILE) {
		sx_end_status(x, r, 550);
		return;
	}
	stor_open(x);
}

void
sx_stor(struct session *s, const char *arg, int how)
{
	struct sfs_xfer	*x;
	unsigned char	 pkt[SFS_PKT_MAX];
	const char	*verb = how == 'A' ? "APPE" : how == 'U' ? "STOU" :
			    "STOR";

	if (s->sfs->rest > 0 && (s->sfs->type == 'A' || how != 'S')) {
		s->sfs->rest = 0;
		client_reply(s, "504 ftpfwd: REST needs TYPE I and STOR");
		return;
	}
	if ((x = sx_new(s, SX_STOR, verb)) == NULL)
		return;
	x->how = how;
	x->off = s->sfs->rest;
	if (sfs_path(s, how == 'U' && *arg == '\0' ? "ftpfwd.stou" : arg,
	    x->path, sizeof(x->path)) == -1) {
		sx_stop(x, 0);
		sfs_done(s);
		return;
	}
	if (how != 'A') {
		stor_open(x);
		return;
	}
	(void)sx_send(x, pkt, sftp_enc_path(pkt, sizeof(pkt), SSH_FXP_STAT,
	    sftp_chan_next_id(s->sfs->ch), x->path, strlen(x->path)),
	    appe_stat_cb, NULL);
}
