/*
 * join.h: two connected sockets joined in both directions with splice(2),
 * so the bytes between them stay in the kernel.
 */

#ifndef JOIN_H
#define JOIN_H

#include <stdint.h>

struct event_base;
struct join;

/*
 * Called once, when both directions have ended (why is NULL) or one of
 * them failed (why says how).  The join may be freed from the callback.
 */
typedef void (*join_cb)(struct join *, const char *why, void *arg);

struct join	*join_new(struct event_base *, int, int, join_cb, void *);
uint64_t	 join_bytes(const struct join *);
void		 join_free(struct join *);
void		 join_abort(struct join *);
/*
 * The first socket's direction (a to b) has passed its end of file on
 * to b: join_first_ended says so, and a cb given to join_on_first_end
 * is called once when it happens, with why NULL; it must not free the
 * join.
 */
int		 join_first_ended(const struct join *);
void		 join_on_first_end(struct join *, join_cb);

#endif /* JOIN_H */
