/*
 * loop.c — what one worker's network side does with the reactor's reports,
 * and the routing decision every keyed request goes through (TCP and UDP
 * alike). Runs on the worker's own thread; state lives in its struct loop.
 */
#include <unistd.h>
#include "util/hash.h"
#include "util/lat_hist.h"
#include "util/topk.h"
#include "proto/req_class.h"
#include "net/accept_limit.h"
#include "net/conn.h"
#include "net/loop.h"
#include "util/sys.h"
#include "net/udp.h"

void loop_dispatch(struct loop *l, const struct revent *ev, int n)
{
    for (int i = 0; i < n; i++) {
        const struct revent *e = &ev[i];
        struct evsrc *src = e->src;
        switch (src->type) {
        case SRC_CONN: {
            struct conn *c = (struct conn *)src;
            /* The usual event first, one test each: bytes received in
             * place (io_uring), then readable (epoll). */
            if (e->kind == REV_DATA)
                conn_feed(c, e->data, e->len);
            else if (e->kind == REV_READY)
                conn_ready(c, e->events);
            else if (e->kind == REV_SENT)
                conn_sent(c, (size_t)e->res, e->events & EV_ERROR);
            else if (e->kind == REV_CLOSED)
                conn_peer_closed(c);
            break;
        }
        case SRC_LISTEN:
            if (e->kind == REV_READY)
                conn_accept(l, src);
            else if (e->res >= 0)
                conn_accept_fd(l, (int)e->res);
            else
                accept_limit_failed(l, src, (int)-e->res);
            break;
        case SRC_UDP:
            udp_read(l, src);
            break;
        case SRC_DOORBELL: {
            uint64_t v;
            ssize_t r = sys_read(src->fd, &v, sizeof v);
            (void)r;
            break;
        }
        }
    }
}

void loop_serve(struct loop *l)
{
    while (l->dirty) {
        struct conn *c = l->dirty;
        l->dirty = c->dirty_next;
        c->in_dirty = false;
        conn_serve(c);
    }
}

/* A request for a key another worker owns (loop_route). */
struct msg *loop_forward(struct loop *l, unsigned owner, struct req *r, uint8_t kind,
                         void *session)
{
    uint64_t t0 = l->lat ? lat_ticks() : 0;
    struct msg *m = msg_new_req(r, kind, l->id);
    if (t0) {   /* recorded when the reply is home (server/worker.c) */
        m->lat_class = (uint8_t)req_class(r);
        m->lat_t0 = t0;
    }
    if (kind == MSG_UDP)
        m->u.udp = session;
    else
        m->conn = session;
    STAT_INC(l->stats, req_forwarded);
    l->host->route(l, owner, m);
    return m;
}
