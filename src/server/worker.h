/*
 * worker.h — a worker: one thread pinned to one CPU, owning its event loop,
 * its connections, its shard of the keyspace (store) and its counters.
 * Workers share nothing mutable except the rings between them and the
 * `sleeping` flag a sender reads to decide whether to ring the doorbell.
 */
#ifndef PERCORE_WORKER_H
#define PERCORE_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include "net/msg.h"
#include "util/options.h"
#include "util/ring.h"
#include "util/stats.h"
#include "net/reactor.h"
#include "proto/proto.h"
#include "store/store.h"

#define RING_CAPACITY 4096
/* Messages waiting behind full rings, past which this worker's connections
 * stop being parsed (replies and unpins still queue: they are bounded by the
 * requests that caused them). */
#define WORKER_OVF_MAX RING_CAPACITY
#define STORE_STATS_WORDS (sizeof(struct store_stats) / sizeof(uint64_t))

enum src_type { SRC_LISTEN, SRC_DOORBELL, SRC_CONN, SRC_UDP };

/* Every fd registered with a reactor points at something starting with this. */
struct evsrc {
    uint8_t type;
    int     fd;
};

struct conn;
struct watch_state;

struct worker {
    unsigned         id;
    int              cpu;
    pthread_t        thread;
    struct reactor   reactor;
    struct evsrc     doorbell;             /* eventfd */
    struct evsrc     listen[MAX_LISTEN];   /* one SO_REUSEPORT socket per address */
    int              nlisten;
    struct evsrc     udp[MAX_LISTEN];
    int              nudp;
    _Atomic int      sleeping;             /* 1 while (about to be) blocked */
    _Atomic uint64_t loop_max_us;          /* longest loop iteration's work (stats reset clears) */

    struct ring     *in[MAX_WORKERS];      /* consumer end: from worker p */
    struct ring     *out[MAX_WORKERS];     /* producer end: to worker p */
    struct msg      *ovf_head[MAX_WORKERS];/* messages waiting for ring space */
    struct msg      *ovf_tail[MAX_WORKERS];
    uint64_t         bell;                 /* workers to wake at end of loop */
    bool             ovf_pending;
    bool             ovf_paused;           /* connections held back by ovf_len (conn.c) */
    unsigned         ovf_len;              /* messages in all overflow queues */

    struct store    *store;
    struct pfx_table *pfx;                 /* stats detail (proto/prefix_stats.h) */
    struct exec_ctx  x;
    uint32_t         now;
    uint32_t         flush_at;             /* delayed flush_all, 0 = none */

    struct msg      *intro_head;           /* store walks to advance here */
    struct msg      *intro_tail;
    struct msg      *intro_parked;         /* metadump parts waiting for output room */
    struct watch_state *watch;             /* watch streams (server/watch.c), or NULL */

    struct conn     *conns;                /* all open connections */
    struct conn     *dirty;                /* connections with replies to send */
    struct conn     *resume;               /* yielded with input left: next iteration */
    unsigned         nconns;
    uint64_t         iter;                 /* loop iterations */
    uint64_t         sent_at;              /* iteration sent_iter counts for */
    size_t           sent_iter;            /* bytes its connections sent in it */
    size_t           out_bytes;            /* own (copied) output of all its connections */
    size_t           out_max;              /* past it, the heaviest stop being read */

    /* `stats items|slabs` for readers on other workers: this worker's
     * classes, refreshed about once a second (the walk visits every
     * segment). The worker only trylocks, so it never waits for a reader;
     * a reader holds the lock for one copy. */
    pthread_mutex_t  cls_lock;
    struct store_class_stats *cls_pub;
    unsigned         ncls_pub;

    struct wstats    stats;                /* written by this worker only */
    _Atomic uint64_t store_pub[STORE_STATS_WORDS]; /* published store stats */
};

extern struct worker *workers;
extern unsigned nworkers;
extern struct proto_conf proto_conf;
extern _Atomic int server_stopping;
extern _Atomic int global_conns;

int  workers_setup(void);
int  workers_start(void);
void workers_stop(void);
void workers_teardown(void);

/* Queue a message for worker `to` (ring, or overflow when full). */
void worker_send(struct worker *w, unsigned to, struct msg *m);
/* Read another worker's published store stats. */
void worker_store_stats(struct worker *w, struct store_stats *out);
/* Worker w's store classes (see store_get_class_stats) as of at most about
 * a second ago, or exact when w is the calling worker; up to max. */
unsigned worker_class_stats(struct worker *w, struct store_class_stats *out, unsigned max);
/* flush_all from a client of worker w: every worker drops its items, now
 * or after `delay` seconds (memcached's exptime rules). */
void worker_flush_all(struct worker *w, int64_t delay);
/* stats reset from a client of worker w. */
void worker_stats_reset(struct worker *w);

#endif
