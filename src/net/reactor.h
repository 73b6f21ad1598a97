/*
 * reactor.h — the readiness event loop behind one small interface, one
 * instance per worker (owned by that worker's thread). Backends: epoll
 * (default), busy-poll (epoll never sleeping). See docs for io_uring.
 */
#ifndef PERCORE_REACTOR_H
#define PERCORE_REACTOR_H

#include <stdbool.h>
#include <stdint.h>

#define EV_READ  0x1u
#define EV_WRITE 0x2u
#define EV_ERROR 0x4u

struct revent {
    void    *ptr;
    uint32_t events;
};

struct reactor {
    int  fd;
    bool busy_poll;   /* never block in the kernel */
};

int  reactor_init(struct reactor *r, bool busy_poll);
void reactor_fini(struct reactor *r);
int  reactor_add(struct reactor *r, int fd, uint32_t events, void *ptr);
int  reactor_mod(struct reactor *r, int fd, uint32_t events, void *ptr);
int  reactor_del(struct reactor *r, int fd);
/* Wait up to timeout_ms (0 = poll); returns the number of events filled. */
int  reactor_wait(struct reactor *r, struct revent *ev, int max, int timeout_ms);

#endif
