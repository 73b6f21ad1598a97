/*
 * reactor.c — picks the reactor backend at start-up and forwards each call
 * to it (reactor.h). Each reactor is owned by one worker thread; only
 * reactor_init runs on the main thread, before the workers start.
 */
#include <errno.h>
#include <string.h>
#include "util/log.h"
#include "util/options.h"
#include "net/reactor.h"
#include "net/reactor_backend.h"

int reactor_init(struct reactor *r, bool busy_poll)
{
    /* Once one worker runs io_uring, all must: stats report one backend. */
    static bool uring_in_use;

    r->fd = -1;
    r->uring = NULL;
    r->busy_poll = false;
    if (settings.io == IO_URING) {
        const char *why = "unknown reason";
        int rc = uring_reactor_init(r, &why);
        if (rc == 0) {
            if (!uring_in_use)
                log_info("io_uring backend: %s", uring_mode_name(r));
            uring_in_use = true;
            return 0;
        }
        if (uring_in_use || (rc != -EPERM && rc != -ENOSYS && rc != -EOPNOTSUPP)) {
            log_err("cannot set up io_uring: %s (%s)", why, strerror(-rc));
            return -1;
        }
        log_warn("io_uring not available (%s): falling back to epoll", why);
        settings.io = IO_EPOLL;
    }
    int rc = epoll_reactor_init(r, busy_poll);
    static bool said;
    if (rc == 0 && busy_poll && !said) {
        log_info("busy-poll backend: %s", reactor_name(r));
        said = true;
    }
    return rc;
}

void reactor_fini(struct reactor *r)
{
    if (r->uring)
        uring_reactor_fini(r);
    else
        epoll_reactor_fini(r);
}

void reactor_quiesce(struct reactor *r)
{
    if (r->uring)
        uring_reactor_quiesce(r);
}

int reactor_add(struct reactor *r, int fd, uint32_t events, struct evsrc *src)
{
    return r->uring ? uring_reactor_add(r, fd, events, src) : epoll_reactor_add(r, fd, events, src);
}

int reactor_mod(struct reactor *r, int fd, uint32_t events, struct evsrc *src)
{
    return r->uring ? uring_reactor_mod(r, fd, events, src) : epoll_reactor_mod(r, fd, events, src);
}

int reactor_del(struct reactor *r, int fd, bool finish_send)
{
    return r->uring ? uring_reactor_del(r, fd, finish_send) : epoll_reactor_del(r, fd);
}

int reactor_wait(struct reactor *r, struct revent *ev, int max, int timeout_ms)
{
    return r->uring ? uring_reactor_wait(r, ev, max, timeout_ms)
                    : epoll_reactor_wait(r, ev, max, timeout_ms);
}

int reactor_send(struct reactor *r, int fd, struct buf *out, size_t *off)
{
    return r->uring ? uring_reactor_send(r, fd, out, off) : -1;
}

const char *reactor_name(const struct reactor *r)
{
    if (r->uring)
        return uring_mode_name(r);
    if (r->busy_poll)
        return r->kernel_busy_poll ? "busy-poll, kernel NAPI busy polling" : "busy-poll";
    return "epoll";
}
