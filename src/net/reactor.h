/*
 * reactor.h — the event loop behind one small interface, one instance per
 * worker (owned by that worker's thread). Backends, chosen at start-up by
 * --io: io_uring (default; reactor_uring.c, falls back to epoll where the
 * kernel refuses it), epoll, and busy-poll (epoll never sleeping).
 *
 * The reactor only reports: reactor_wait() fills events and calls nothing
 * above it. epoll reports readiness (REV_READY) and the caller does the
 * recv()/accept()/send(). io_uring completes the I/O itself and reports what
 * it did: bytes received (REV_DATA), a socket accepted (REV_ACCEPT), a send
 * finished (REV_SENT), a stream ended (REV_CLOSED); sources it cannot drive
 * that way (UDP) come back as REV_READY like epoll's. net/loop.c turns
 * either kind into the same connection calls.
 */
#ifndef PERCORE_REACTOR_H
#define PERCORE_REACTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EV_READ  0x1u
#define EV_WRITE 0x2u
#define EV_ERROR 0x4u

/* What a registered fd is: the backend drives each kind its own way. */
enum src_type { SRC_LISTEN, SRC_DOORBELL, SRC_CONN, SRC_UDP };

/* Every fd registered with a reactor points at something starting with this. */
struct evsrc {
    uint8_t type;
    int     fd;
};

enum rev_kind {
    REV_READY,    /* events: EV_READ/EV_WRITE/EV_ERROR readiness */
    REV_DATA,     /* data, len: bytes received, valid until the next reactor_wait */
    REV_ACCEPT,   /* res: the accepted socket, or -errno */
    REV_SENT,     /* res: bytes the finished send wrote; events EV_ERROR if it failed */
    REV_CLOSED,   /* res: 0 at end of stream, or -errno */
};

struct revent {
    struct evsrc *src;
    uint8_t       kind;
    uint32_t      events;
    long          res;
    const char   *data;
    size_t        len;
};

struct uring;

struct reactor {
    int           fd;          /* epoll instance; -1 with io_uring */
    bool          busy_poll;   /* never block in the kernel */
    bool          kernel_busy_poll; /* ... and the kernel busy-polls NIC queues (epoll 6.9+) */
    struct uring *uring;       /* private to reactor_uring.c; non-NULL when it drives */
    struct wstats *stats;      /* the worker's counters (zero-copy sends) */
};

/* Picks the backend from settings.io; io_uring falls back to epoll (with one
 * warning, and settings.io rewritten) when the kernel does not allow it. */
int  reactor_init(struct reactor *r, bool busy_poll);
void reactor_fini(struct reactor *r);
int  reactor_add(struct reactor *r, int fd, uint32_t events, struct evsrc *src);
int  reactor_mod(struct reactor *r, int fd, uint32_t events, struct evsrc *src);
/* Forget fd (the caller closes it next). `finish_send`: a send in flight
 * still goes out (the last replies after `quit`); otherwise it is dropped. */
int  reactor_del(struct reactor *r, int fd, bool finish_send);
/* Worker's thread, at exit: the backend lets go of every fd it holds, so a
 * closed listening socket is gone at once (a restart can bind the port). */
void reactor_quiesce(struct reactor *r);
/* Wait up to timeout_ms (0 = poll); returns the number of events filled. */
int  reactor_wait(struct reactor *r, struct revent *ev, int max, int timeout_ms);
/* The backend in use, for the start-up log and stats. */
const char *reactor_name(const struct reactor *r);

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

struct buf;
/* Hand the unsent bytes of `out` (from *off) to the backend, which owns
 * them until the send completes (REV_SENT); `out` comes back empty for new
 * replies. At most one send is in flight per fd; while one is, this does
 * nothing. Returns -1 if the fd is unknown. */
int  reactor_send(struct reactor *r, int fd, struct buf *out, size_t *off);

#endif
