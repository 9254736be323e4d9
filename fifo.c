/*
 * fifo.c: the reply FIFO.  Every command that goes to the server is
 * pushed; every final reply pops the oldest, which is the command it
 * answers (RFC 959 replies come in order).  Pure: no I/O, no allocation.
 */

#include "fifo.h"

/*
 * The client's cmd went to the server as sent, or as ftpfwd's own
 * (ours).  Returns -1, and keeps nothing, when the FIFO is full.
 */
int
fifo_push(struct pending_fifo *f, int cmd, int sent, int ours)
{
	struct pending	*p;

	if (f->count >= FIFO_MAX || cmd < 0 || cmd > 255 || sent < 0 ||
	    sent > 255)
		return -1;
	p = &f->slot[(f->head + f->count) % FIFO_MAX];
	p->cmd = (unsigned char)cmd;
	p->sent = (unsigned char)sent;
	p->ours = ours != 0;
	f->count++;
	return 0;
}

/* The command the next reply answers; all zero when none is due. */
struct pending
fifo_oldest(const struct pending_fifo *f)
{
	static const struct pending	none;

	return f->count == 0 ? none : f->slot[f->head % FIFO_MAX];
}

/* Its final reply came: forget it.  -1 when none was due. */
int
fifo_pop(struct pending_fifo *f)
{
	if (f->count == 0)
		return -1;
	f->head = (f->head + 1) % FIFO_MAX;
	f->count--;
	return 0;
}

unsigned int
fifo_len(const struct pending_fifo *f)
{
	return f->count;
}

int
fifo_full(const struct pending_fifo *f)
{
	return f->count >= FIFO_MAX;
}
