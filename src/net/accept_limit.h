/*
 * accept_limit.h — what a worker does when accept() fails because the
 * process (EMFILE) or the system (ENFILE) is out of descriptors: answer the
 * waiting clients "ERROR Too many open connections" through a spare
 * descriptor kept for that, stop accepting on that listener for a short
 * back-off (10 ms, doubling to 100 ms while it keeps failing), and log at
 * most once a second with counts. Existing connections are served all along.
 * State is per worker, touched only by that worker's thread (set up by the
 * main thread before workers start). Shared by the epoll (conn.c) and
 * io_uring (reactor_uring.c) accept paths.
 */
#ifndef PERCORE_ACCEPT_LIMIT_H
#define PERCORE_ACCEPT_LIMIT_H

#include <stdbool.h>

struct loop;
struct evsrc;

/* Opens the worker's spare descriptor. Main thread, at start-up. */
int  accept_limit_setup(struct loop *l);
void accept_limit_teardown(struct loop *l);
/* accept on listener `ls` failed with `err` (an errno). Returns true when
 * that was descriptor exhaustion and it has been dealt with (listener
 * paused); false for any other error, which the caller handles. */
bool accept_limit_failed(struct loop *l, struct evsrc *ls, int err);
/* Once per loop iteration while l->accept_paused: resumes paused listeners
 * when their back-off is over. Returns the loop's wait timeout, shortened
 * to that moment. */
int  accept_limit_tick(struct loop *l, int timeout_ms);

#endif
