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
#include "util/options.h"
#include "util/ring.h"
#include "util/stats.h"
#include "net/loop.h"
#include "net/msg.h"
#include "proto/proto.h"
#include "store/store.h"

#define STORE_STATS_WORDS (sizeof(struct store_stats) / sizeof(uint64_t))

struct conn;
struct watch_state;

struct worker {
    struct loop      loop;                 /* its network side (net/loop.h) */
    unsigned         id;
    pthread_t        thread;
    _Atomic int      sleeping;             /* 1 while (about to be) blocked */
    _Atomic uint64_t loop_max_ticks;       /* longest loop iteration's work, in lat_ticks()
                                            * (stats reset clears) */

    struct ring     *in[MAX_WORKERS];      /* consumer end: from worker p */
    struct ring     *out[MAX_WORKERS];     /* producer end: to worker p */
    struct msg      *ovf_head[MAX_WORKERS];/* messages waiting for ring space */
    struct msg      *ovf_tail[MAX_WORKERS];
    struct msg      *rep_head[MAX_WORKERS];/* replies held until the stats are published */
    struct msg      *rep_tail[MAX_WORKERS];
    bool             rep_pending;
    uint64_t         bell;                 /* workers to wake at end of loop */
    bool             ovf_pending;
    unsigned         ovf_len;              /* messages in all overflow queues */

    struct store    *store;
    struct pfx_table *pfx;                 /* stats detail (proto/prefix_stats.h) */
    struct exec_ctx  x;
    uint32_t         now;
    uint32_t         flush_at;             /* delayed flush_all, 0 = none */
    uint64_t         clock_next;           /* lat_ticks() before which the second cannot turn */
    uint64_t         clock_at;             /* lat_ticks() of the last clock reading */

    struct msg      *intro_head;           /* store walks to advance here */
    struct msg      *intro_tail;
    struct msg      *intro_parked;         /* metadump parts waiting for output room */
    struct watch_state *watch;             /* watch streams (server/watch.c), or NULL */

    /* `stats items|slabs` for readers on other workers: this worker's
     * classes, refreshed about once a second (the walk visits every
     * segment). The worker only trylocks, so it never waits for a reader;
     * a reader holds the lock for one copy. */
    pthread_mutex_t  cls_lock;
    struct store_class_stats *cls_pub;
    unsigned         ncls_pub;

    struct wstats    stats;                /* written by this worker only */
    _Atomic uint64_t store_pub[STORE_STATS_WORDS]; /* published store stats */
    const uint64_t  *store_gen;            /* store_stats_gen_at(store), set as the loop starts */
    uint64_t         pub_gen;              /* *store_gen + store_events when last published */
    uint64_t         store_events;         /* unpins, maintenance, flushes (publish_stats) */
    uint32_t         pub_now;              /* ... and the clock then */
};

extern struct worker *workers;
extern unsigned nworkers;
/* Slots of each ring between two workers (derived from the worker count, so
 * the n * (n - 1) rings stay small), and the messages this worker may hold
 * behind full rings before its connections stop being parsed. */
extern unsigned ring_capacity;
extern size_t rings_bytes;   /* memory of all rings, for stats */
#define WORKER_OVF_MAX ring_capacity
extern struct proto_conf proto_conf;
/* -m, then what cache_memlimit set last (stats limit_maxbytes). */
extern _Atomic size_t mem_limit_total;
extern _Atomic int server_stopping;

/* Main thread: workers, stores and sockets. 0, or -1 on a failure, or
 * SETUP_SOCKETS when a socket could not be opened (memcached then exits
 * EX_OSERR). */
#define SETUP_SOCKETS (-2)
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
/* stats reset from a client of worker w: every worker zeroes its counters,
 * then `barrier` (the client's reply slot, RESET written in it; NULL: none)
 * is released, so no request after the reply is counted and then wiped. */
void worker_stats_reset(struct worker *w, struct msg *barrier);

#endif
