/*
 * fifo.h: the commands sent to the FTP server whose final replies are
 * still due, oldest first.  A bounded ring with no I/O, so that the
 * matching of replies to commands is tested on its own.
 */

#ifndef FIFO_H
#define FIFO_H

#define FIFO_MAX	64	/* commands awaiting a server reply */

/* A command sent to the server whose final reply is still due. */
struct pending {
	unsigned char	cmd;		/* the client's command class */
	unsigned char	sent;		/* what went to the server */
	unsigned char	ours;		/* ftpfwd's own: the reply is ours */
};

struct pending_fifo {
	struct pending	slot[FIFO_MAX];
	unsigned int	head;		/* the oldest */
	unsigned int	count;
};

int		 fifo_push(struct pending_fifo *, int, int, int);
struct pending	 fifo_oldest(const struct pending_fifo *);
int		 fifo_pop(struct pending_fifo *);
unsigned int	 fifo_len(const struct pending_fifo *);
int		 fifo_full(const struct pending_fifo *);

#endif /* FIFO_H */
