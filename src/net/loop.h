/*
 * loop.h — the network side of one worker: its reactor, sockets and
 * connections, and the per-iteration budgets its connections share. Owned
 * by that worker's thread (set up by the main thread before it starts).
 *
 * The runtime above (server/worker.c) embeds one `struct loop` in each
 * worker and supplies `struct loop_host`: the few things a connection asks
 * of the runtime (send a request to its owner, run `stats`, a store walk,
 * `watch`, `flush_all`). So net/ never includes the runtime's headers.
 */
#ifndef PERCORE_LOOP_H
#define PERCORE_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "util/options.h"
#include "util/hash.h"
#include "util/lat_hist.h"
#include "util/stats.h"
#include "util/topk.h"
#include "net/msg.h"
#include "net/reactor.h"
#include "proto/exec.h"
#include "proto/req_class.h"

struct conn;
struct msg;
struct stats_out;
struct loop;
struct lat_table;
struct topk;

struct loop_host {
    /* A request message for worker `owner` (or a reply home). */
    void (*route)(struct loop *l, unsigned owner, struct msg *m);
    /* `stats [arg]` into out. `barrier(sess)` gives the session's reply slot
     * that `stats reset` answers in once every worker has zeroed
     * (conn_barrier, udp_barrier). */
    void (*stats)(struct loop *l, struct msg *(*barrier)(void *sess), void *sess,
                  const char *arg, size_t len, struct stats_out *so);
    /* A store walk for d: a message to queue in the connection's reply order
     * (then started with dump_start). */
    struct msg *(*dump_new)(struct loop *l, const struct dump_req *d);
    void (*dump_start)(struct loop *l, struct msg *m);
    /* Connection c starts / stops being a `watch` stream. */
    void (*watch_start)(struct loop *l, struct conn *c, unsigned flags);
    void (*watch_stop)(struct loop *l, struct conn *c);
    /* A connection opened or closed (watch connevents); NULL = none wanted. */
    void (*conn_event)(struct loop *l, int fd, bool is_new, const char *reason);
    /* flush_all: the runtime broadcasts it; `barrier` (conn_barrier(), or
     * NULL with noreply) is the connection's reply slot, released once
     * every worker applied it. */
    void (*flush_all)(struct loop *l, int64_t delay, struct msg *barrier);
    /* cache_memlimit: the runtime sends every worker its share. */
    void (*memlimit)(struct loop *l, uint64_t bytes);
};

struct loop {
    unsigned         id;                   /* the worker's number: key ownership */
    bool             solo;                 /* it owns every key: no routing hash */
    int              cpu;                  /* its CPU, or -1 */
    uint32_t         now;                  /* relative clock, ticked by the runtime */
    struct reactor   reactor;
    struct evsrc     doorbell;             /* eventfd the runtime rings */
    struct evsrc     listen[MAX_LISTEN];   /* one SO_REUSEPORT socket per address */
    int              nlisten;
    struct evsrc     udp[MAX_LISTEN];
    int              nudp;

    struct wstats   *stats;                /* the worker's counters */
    struct exec_ctx *x;                    /* executes keys this worker owns */
    struct lat_table *lat;                 /* latency histograms (util/lat_hist.h), NULL = off */
    struct topk     *hot;                  /* hot keys it executes (util/topk.h), NULL = off */
    const struct proto_conf *conf;
    const struct loop_host *host;
    void            *owner;                /* the runtime's worker */
    bool             route_paused;         /* the runtime's messages to other workers
                                            * are over their cap: stop parsing */
    bool             accept_paused;        /* a listener backs off (accept_limit.c) */

    struct conn     *conns;                /* all open connections */
    struct conn     *dirty;                /* connections to serve this iteration */
    struct conn     *resume;               /* yielded with input left: next iteration */
    unsigned         nconns;
    uint64_t         iter;                 /* loop iterations */
    uint64_t         sent_at;              /* iteration sent_iter and direct_sends count for */
    size_t           sent_iter;            /* bytes its connections sent in it */
    unsigned         direct_sends;         /* io_uring replies sent without the ring in it */
    size_t           out_bytes;            /* own (copied) output of all its connections */
    size_t           out_max;              /* past it, the heaviest stop being read */
};

/* Act on what reactor_wait() reported: connections read, accept, send,
 * close; UDP datagrams are read; the doorbell is emptied. */
void loop_dispatch(struct loop *l, const struct revent *ev, int n);
/* Serve every connection marked this iteration (parse, then write). */
void loop_serve(struct loop *l);
/* The one routing decision for TCP and UDP: a request for a key this
 * worker owns runs here, its reply appended to out(session), and NULL is
 * returned; any other is copied into a message of `kind` (MSG_REQ for a
 * connection, MSG_UDP for a datagram session) and sent to its owner. The
 * returned message is then the owner's, except its origin-only fields
 * (msg.h), which the caller may still set. Inline: a local request is most
 * of what a worker does, and its callers pass `out` as a constant, so the
 * whole decision costs no call. */
struct msg *loop_forward(struct loop *l, unsigned owner, struct req *r, uint8_t kind,
                         void *session);

static inline __attribute__((always_inline)) struct msg *
loop_route(struct loop *l, struct req *r, uint8_t kind, void *session,
           struct buf *(*out)(void *session))
{
    unsigned owner = l->solo ? l->id : key_owner(r->key, r->klen);
    if (owner != l->id)
        return loop_forward(l, owner, r, kind, session);
    STAT_INC(l->stats, req_local);
    if (l->hot)
        topk_note(l->hot, r->key, r->klen);
    /* A TCP reply may send from the store's memory (pinned); a datagram
     * is built whole, then sent. */
    l->x->by_ref = kind == MSG_REQ;
    /* Parsed to reply queued: the execution itself (one copy of the
     * inlined executor, timed or not). */
    uint64_t t0 = l->lat ? lat_ticks() : 0;
    proto_exec(l->x, r, out(session));
    if (l->lat)
        lat_record(l->lat, req_class(r), LAT_LOCAL, lat_ticks() - t0);
    return NULL;
}

#endif
