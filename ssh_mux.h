/*
 * ssh_mux.h: a non-blocking client of OpenSSH's ControlMaster protocol
 * (PROTOCOL.mux, version 4).  One struct mux_conn is one connection to
 * the master's control socket.
 */

#ifndef SSH_MUX_H
#define SSH_MUX_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct mux_conn;

#define MUX_MSG_HELLO		0x00000001
#define MUX_C_NEW_SESSION	0x10000002
#define MUX_C_ALIVE_CHECK	0x10000004
#define MUX_C_OPEN_FWD		0x10000006
#define MUX_C_CLOSE_FWD		0x10000007
#define MUX_C_NEW_STDIO_FWD	0x10000008
#define MUX_S_OK		0x80000001
#define MUX_S_PERMISSION_DENIED	0x80000002
#define MUX_S_FAILURE		0x80000003
#define MUX_S_EXIT_MESSAGE	0x80000004
#define MUX_S_ALIVE		0x80000005
#define MUX_S_SESSION_OPENED	0x80000006
#define MUX_S_REMOTE_PORT	0x80000007
#define MUX_S_TTY_ALLOC_FAIL	0x80000008

#define MUX_FWD_REMOTE		2
/* A connect "port" saying the connect host is a Unix socket's path. */
#define MUX_PORT_STREAMLOCAL	0xfffffffeU

#define MUX_VERSION		4
#define MUX_ESCAPE_NONE		0xfffffffe	/* ssh's EscapeChar none */
/* The master refuses larger messages; so do we, before allocating. */
#define MUX_MSG_MAX		(256 * 1024)
/* Room kept for a failure reason from the master. */
#define MUX_REASON_MAX		256

/* What the master said, decoded. */
struct mux_reply {
	uint32_t	type;
	uint32_t	rid;		/* request id, or version for HELLO */
	uint32_t	value;		/* port, channel id, exit status */
	char		reason[MUX_REASON_MAX];	/* raw bytes, NUL-ended */
	size_t		reason_len;
};

enum mux_event {
	MUX_EV_READY,		/* the master's HELLO arrived */
	MUX_EV_OK,		/* MUX_S_OK */
	MUX_EV_REMOTE_PORT,	/* MUX_S_REMOTE_PORT; value is the port */
	MUX_EV_SESSION_OPENED,	/* a stdio forward is up */
	MUX_EV_FAILURE,		/* failure or permission denied; reason */
	MUX_EV_EXIT,		/* a session ended; value is its status */
	MUX_EV_ALIVE,		/* MUX_S_ALIVE; value is the master's pid */
	MUX_EV_CLOSED		/* the connection is gone; reason */
};

typedef void (*mux_cb)(struct mux_conn *, enum mux_event,
    const struct mux_reply *, void *);

int	 mux_decode(const unsigned char *, size_t, struct mux_reply *);
int	 mux_connect_fd(const char *, char *, size_t);
int	 mux_hello_sync(int, int, char *, size_t);
struct mux_conn *mux_open(struct event_base *, const char *, mux_cb, void *,
	    char *, size_t);
int	 mux_stdio_fwd(struct mux_conn *, const char *, uint16_t, int, int,
	    uint32_t *);
int	 mux_new_session(struct mux_conn *, const char *, int, int,
	    uint32_t *);
int	 mux_open_rfwd_path(struct mux_conn *, const char *, uint16_t,
	    const char *, uint32_t *);
int	 mux_close_rfwd_path(struct mux_conn *, const char *, uint16_t,
	    const char *, uint32_t *);
int	 mux_alive_check(struct mux_conn *, uint32_t *);
int	 mux_is_ready(const struct mux_conn *);
void	 mux_set_cb(struct mux_conn *, mux_cb, void *);
void	 mux_free(struct mux_conn *);

#endif /* SSH_MUX_H */
