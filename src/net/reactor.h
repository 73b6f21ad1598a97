/*
 * reactor.h — the event loop behind one small interface, one instance per
 * worker (owned by that worker's thread). Backends, chosen at start-up by
 * --io: io_uring (default; reactor_uring.c, falls back to epoll where the
 * kernel refuses it), epoll, and busy-poll (epoll never sleeping).
 *
 * epoll reports readiness and the caller does the recv()/send(). io_uring
 * completes the I/O itself: received bytes go straight to conn_feed(),
 * accepted sockets to conn_accept_fd(), and reactor_send() takes over a
 * connection's pending output. Only sources it cannot drive that way (UDP)
 * come back from reactor_wait() as readiness events, so the worker's loop
 * and the connection's data path are the same for every backend.
 */
#ifndef PERCORE_REACTOR_H
#define PERCORE_REACTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EV_READ  0x1u
#define EV_WRITE 0x2u
#define EV_ERROR 0x4u

struct buf;
struct uring;

struct revent {
    void    *ptr;
    uint32_t events;
};

struct reactor {
    int           fd;          /* epoll instance; -1 with io_uring */
    bool          busy_poll;   /* never block in the kernel */
    struct uring *uring;       /* non-NULL when io_uring drives this worker */
};

/* Picks the backend from settings.io; io_uring falls back to epoll (with one
 * warning, and settings.io rewritten) when the kernel does not allow it. */
int  reactor_init(struct reactor *r, bool busy_poll);
void reactor_fini(struct reactor *r);
/* `ptr` points at a struct evsrc (server/worker.h). */
int  reactor_add(struct reactor *r, int fd, uint32_t events, void *ptr);
int  reactor_mod(struct reactor *r, int fd, uint32_t events, void *ptr);
int  reactor_del(struct reactor *r, int fd);
/* Worker's thread, at exit: the backend lets go of every fd it holds, so a
 * closed listening socket is gone at once (a restart can bind the port). */
void reactor_quiesce(struct reactor *r);
/* Wait up to timeout_ms (0 = poll); returns the number of events filled. */
int  reactor_wait(struct reactor *r, struct revent *ev, int max, int timeout_ms);

/* True when output goes through reactor_send() instead of send(). */
static inline bool reactor_sends(const struct reactor *r)
{
    return r->uring != NULL;
}
/* Bytes per send request of a completion backend. The kernel runs a send's
 * copy inside the worker's next io_uring_enter: megabytes for each of
 * hundreds of connections there would hold the loop for seconds, so a long
 * buffer goes out a slice per iteration (the next slice is issued from the
 * completion). */
#define REACTOR_TX_SLICE (256 * 1024)

/* Hand the unsent bytes of `out` (from *off) to the backend, which owns
 * them until the send completes and then raises EV_WRITE on the connection;
 * `out` comes back empty for new replies. At most one send is in flight per
 * fd; while one is, this does nothing. Returns -1 if the fd is unknown. */
int  reactor_send(struct reactor *r, int fd, struct buf *out, size_t *off);

/* The backends, for reactor.c. */
int  epoll_reactor_init(struct reactor *r, bool busy_poll);
void epoll_reactor_fini(struct reactor *r);
int  epoll_reactor_add(struct reactor *r, int fd, uint32_t events, void *ptr);
int  epoll_reactor_mod(struct reactor *r, int fd, uint32_t events, void *ptr);
int  epoll_reactor_del(struct reactor *r, int fd);
int  epoll_reactor_wait(struct reactor *r, struct revent *ev, int max, int timeout_ms);

#endif
