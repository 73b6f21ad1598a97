/*
 * reactor_epoll.c — epoll backend of the reactor (reactor.h), also used for
 * busy-poll. Level triggered, so a connection that stops reading under
 * back-pressure simply drops EV_READ from its interest set. Owned by one
 * worker thread.
 */
#include <errno.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include "util/sys.h"
#include "net/reactor_backend.h"

static uint32_t to_epoll(uint32_t ev)
{
    uint32_t e = 0;
    if (ev & EV_READ)
        e |= EPOLLIN | EPOLLRDHUP;
    if (ev & EV_WRITE)
        e |= EPOLLOUT;
    return e;
}

/* Kernel 6.9's epoll busy-poll parameters (linux/eventpoll.h; Debian 12's
 * headers predate them). */
struct epoll_busy_params {
    uint32_t busy_poll_usecs;
    uint16_t busy_poll_budget;
    uint8_t  prefer_busy_poll;
    uint8_t  pad;
};
#define PERCORE_EPIOCSPARAMS _IOW(0x8A, 0x01, struct epoll_busy_params)
#define BUSY_POLL_USECS 50

int epoll_reactor_init(struct reactor *r, bool busy_poll)
{
    r->busy_poll = busy_poll;
    r->fd = epoll_create1(EPOLL_CLOEXEC);
    if (r->fd < 0)
        return -1;
    if (busy_poll) {
        /* --io poll: besides never sleeping, ask the kernel to poll the NIC
         * queues of this epoll's sockets (NAPI busy polling) instead of
         * waiting for their interrupts, where the kernel has it (6.9+;
         * loopback has no NAPI queue, so it changes nothing there). */
        struct epoll_busy_params p = { .busy_poll_usecs = BUSY_POLL_USECS,
                                       .busy_poll_budget = 8, .prefer_busy_poll = 1 };
        r->kernel_busy_poll = ioctl(r->fd, PERCORE_EPIOCSPARAMS, &p) == 0;
    }
    return 0;
}

void epoll_reactor_fini(struct reactor *r)
{
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
}

int epoll_reactor_add(struct reactor *r, int fd, uint32_t events, struct evsrc *src)
{
    struct epoll_event e = { .events = to_epoll(events), .data.ptr = src };
    return epoll_ctl(r->fd, EPOLL_CTL_ADD, fd, &e);
}

int epoll_reactor_mod(struct reactor *r, int fd, uint32_t events, struct evsrc *src)
{
    struct epoll_event e = { .events = to_epoll(events), .data.ptr = src };
    return epoll_ctl(r->fd, EPOLL_CTL_MOD, fd, &e);
}

int epoll_reactor_del(struct reactor *r, int fd)
{
    return epoll_ctl(r->fd, EPOLL_CTL_DEL, fd, NULL);
}

int epoll_reactor_wait(struct reactor *r, struct revent *ev, int max, int timeout_ms)
{
    struct epoll_event es[256];
    if (max > 256)
        max = 256;
    if (r->busy_poll)
        timeout_ms = 0;
    int n = sys_epoll_wait(r->fd, es, max, timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -1;
    for (int i = 0; i < n; i++) {
        uint32_t e = 0;
        if (es[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP))
            e |= EV_READ;
        if (es[i].events & EPOLLOUT)
            e |= EV_WRITE;
        if (es[i].events & (EPOLLERR | EPOLLHUP))
            e |= EV_ERROR;
        ev[i] = (struct revent){ .src = es[i].data.ptr, .kind = REV_READY, .events = e };
    }
    return n;
}
