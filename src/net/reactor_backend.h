/*
 * reactor_backend.h — the backends behind reactor.h, for the dispatcher in
 * reactor.c only (private to the reactor). Each instance is owned by its
 * worker's thread; an io_uring ring is created disabled by the main thread
 * at start-up and enabled, submitted to and reaped only by that worker's
 * thread afterwards (IORING_SETUP_SINGLE_ISSUER).
 */
#ifndef PERCORE_REACTOR_BACKEND_H
#define PERCORE_REACTOR_BACKEND_H

#include "net/reactor.h"

/* epoll (reactor_epoll.c), also busy-poll. */
int  epoll_reactor_init(struct reactor *r, bool busy_poll);
void epoll_reactor_fini(struct reactor *r);
int  epoll_reactor_add(struct reactor *r, int fd, uint32_t events, struct evsrc *src);
int  epoll_reactor_mod(struct reactor *r, int fd, uint32_t events, struct evsrc *src);
int  epoll_reactor_del(struct reactor *r, int fd);
int  epoll_reactor_wait(struct reactor *r, struct revent *ev, int max, int timeout_ms);

/* io_uring (reactor_uring.c). init: 0, or a negative errno; *why then says
 * in a few words what is missing. -EPERM, -ENOSYS, -EOPNOTSUPP mean "not on
 * this kernel/host": fall back. */
int  uring_reactor_init(struct reactor *r, const char **why);
void uring_reactor_fini(struct reactor *r);
int  uring_reactor_add(struct reactor *r, int fd, uint32_t events, struct evsrc *src);
int  uring_reactor_mod(struct reactor *r, int fd, uint32_t events, struct evsrc *src);
int  uring_reactor_del(struct reactor *r, int fd, bool finish_send);
int  uring_reactor_wait(struct reactor *r, struct revent *ev, int max, int timeout_ms);
int  uring_reactor_send(struct reactor *r, int fd, struct buf *out, size_t *off);
void uring_reactor_quiesce(struct reactor *r);
/* The ring set-up flags in use, for the start-up log. */
const char *uring_mode_name(const struct reactor *r);

#endif
