/*
 * reactor_epoll.c — epoll backend of the reactor (reactor.h), also used for
 * busy-poll. Level triggered, so a connection that stops reading under
 * back-pressure simply drops EV_READ from its interest set. Owned by one
 * worker thread.
 */
#include <errno.h>
#include <sys/epoll.h>
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

int epoll_reactor_init(struct reactor *r, bool busy_poll)
{
    r->busy_poll = busy_poll;
    r->fd = epoll_create1(EPOLL_CLOEXEC);
    return r->fd < 0 ? -1 : 0;
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
