/*
 * stats.h — per-worker counters. Each worker owns one `struct wstats` and is
 * the only thread that writes it (relaxed load+store, no lock prefix); the
 * `stats` command, running on any worker, reads every worker's block with
 * relaxed loads and sums them. The X-macro list generates the struct and
 * the names printed by `stats`.
 */
#ifndef PERCORE_STATS_H
#define PERCORE_STATS_H

#include <stdatomic.h>
#include <stdint.h>

/* Counters printed by `stats`, in memcached's order and spelling
 * (get_expired, after get_misses, is the store's: stats_report.c). */
#define WORKER_COUNTERS(X) \
    X(cmd_get) X(cmd_set) X(cmd_flush) X(cmd_touch) X(cmd_meta) \
    X(get_hits) X(get_misses) X(get_flushed) \
    X(delete_misses) X(delete_hits) X(incr_misses) X(incr_hits) \
    X(decr_misses) X(decr_hits) X(cas_misses) X(cas_hits) X(cas_badval) \
    X(touch_hits) X(touch_misses) X(store_too_large) X(store_no_memory) \
    X(auth_cmds) X(auth_errors) X(bytes_read) X(bytes_written) \
    X(curr_connections) X(total_connections) X(rejected_connections) \
    X(conn_yields)

/* percore's own counters, printed as worker_<name> and per worker. */
#define WORKER_OWN_COUNTERS(X) \
    X(req_local)          /* keyed requests executed where they arrived */ \
    X(req_forwarded)      /* keyed requests sent to their owner over a ring */ \
    X(req_remote_served)  /* requests executed here on behalf of another worker */ \
    X(ring_full)          /* pushes that found the ring full and queued locally */ \
    X(doorbells)          /* eventfd wake-ups sent to sleeping workers */ \
    X(udp_requests) X(udp_dropped) X(udp_forwarded) \
    X(conn_idle_closed) X(conn_output_paused) \
    X(conn_output_throttled)   /* checks that found a connection's unsent output at its cap */ \
    X(worker_output_throttled) /* ... the worker's connections' output at the worker's cap */ \
    X(ring_backpressure)       /* ... messages queued behind full rings at their cap */ \
    X(uring_zc_sends)          /* io_uring zero-copy sends (--zc-send-min) */ \
    X(uring_zc_copied)         /* ... of them the kernel copied after all (loopback) */ \
    X(tls_handshakes)          /* TLS handshakes completed (-Z) */ \
    X(tls_resumed)             /* ... of them resuming a session (ssl_session_cache) */ \
    X(tls_handshake_errors)    /* handshakes failed: not TLS, bad or missing certificate */ \
    X(tls_handshake_timeouts)  /* handshakes not done within ssl_handshake_timeout: closed */ \
    X(tls_record_errors)       /* established sessions closed on a bad record */

struct wstats {
#define STAT_FIELD(n) _Atomic uint64_t n;
    WORKER_COUNTERS(STAT_FIELD)
    WORKER_OWN_COUNTERS(STAT_FIELD)
#undef STAT_FIELD
};

static inline void stat_add(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static inline uint64_t stat_get(const _Atomic uint64_t *c)
{
    return atomic_load_explicit((_Atomic uint64_t *)c, memory_order_relaxed);
}

#define STAT_INC(s, f)    stat_add(&(s)->f, 1)
#define STAT_ADD(s, f, n) stat_add(&(s)->f, (n))
#define STAT_DEC(s, f)    stat_add(&(s)->f, (uint64_t)-1)

#endif
