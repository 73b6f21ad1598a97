/*
 * stats_report.c — `stats`, `stats settings|items|slabs|conns|reset` (see
 * stats_report.h). Reads other workers' counters with relaxed atomic loads;
 * emits name/value pairs to the asking session's encoder (proto/stats_out.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include "util/clock.h"
#include "util/lat_hist.h"
#include "util/log.h"
#include "util/options.h"
#include "proto/prefix_stats.h"
#include "proto/tunables.h"
#include "server/hotkeys_report.h"
#include "server/latency_report.h"
#include "server/stats_report.h"
#include "server/warm.h"
#include "net/conn.h"
#include "net/tls.h"
#include "net/udp.h"
#include "util/tls_opts.h"
#include "net/xdp_steer.h"

static void sum_stores(struct store_stats *t)
{
    memset(t, 0, sizeof *t);
    for (unsigned i = 0; i < nworkers; i++) {
        struct store_stats s;
        worker_store_stats(&workers[i], &s);
        uint64_t *a = (uint64_t *)t;
        const uint64_t *b = (const uint64_t *)&s;
        for (size_t k = 0; k < STORE_STATS_WORDS; k++)
            a[k] += b[k];
    }
}

static const char *io_name(void)
{
    switch (settings.io) {
    case IO_POLL:  return "poll";
    case IO_URING: return "uring";
    default:       return "epoll";
    }
}

static void general(struct worker *w, struct stats_out *so)
{
    struct wstats sum;
    memset(&sum, 0, sizeof sum);
#define SUM(f) \
    for (unsigned i = 0; i < nworkers; i++) \
        STAT_ADD(&sum, f, stat_get(&workers[i].stats.f));
    WORKER_COUNTERS(SUM)
    WORKER_OWN_COUNTERS(SUM)
#undef SUM
    struct store_stats ss;
    sum_stores(&ss);
    uint64_t hp = 0, hexp = 0;
    for (unsigned i = 0; i < nworkers; i++) {
        struct store_stats s;
        worker_store_stats(&workers[i], &s);
        if (s.hash_power > hp)
            hp = s.hash_power;
        hexp |= s.hash_expanding;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    time_t now = time(NULL);

    stats_emitf(so, "pid", "%d", (int)getpid());
    stats_emitf(so, "uptime", "%u", w->now - CLOCK_REL_BASE);
    stats_emitf(so, "time", "%ld", (long)now);
    stats_emitf(so, "version", "%s", PROTO_VERSION);
    stats_emitf(so, "libevent", "none");
    stats_emitf(so, "pointer_size", "%d", (int)(8 * sizeof(void *)));
    stats_emitf(so, "rusage_user", "%ld.%06ld", (long)ru.ru_utime.tv_sec, (long)ru.ru_utime.tv_usec);
    stats_emitf(so, "rusage_system", "%ld.%06ld", (long)ru.ru_stime.tv_sec, (long)ru.ru_stime.tv_usec);
    stats_emitf(so, "max_connections", "%d", settings.maxconns);
    stats_emitf(so, "curr_connections", "%llu", (unsigned long long)stat_get(&sum.curr_connections));
    stats_emitf(so, "total_connections", "%llu", (unsigned long long)stat_get(&sum.total_connections));
    stats_emitf(so, "rejected_connections", "%llu", (unsigned long long)stat_get(&sum.rejected_connections));
    stats_emitf(so, "connection_structures", "%llu", (unsigned long long)stat_get(&sum.curr_connections));
    stats_emitf(so, "reserved_fds", "%u", 5 + nworkers * 2);
    /* Two counters that are not the workers' go in at memcached's places:
     * get_expired after get_misses (the stores' count of lookups that
     * found their key expired), and idle_kicks after auth_errors, only
     * with an idle timeout set, where memcached prints it. */
#define PRINT(f) \
    if (strcmp(#f, "curr_connections") && strcmp(#f, "total_connections") && \
        strcmp(#f, "rejected_connections") && strcmp(#f, "conn_yields")) \
        stats_emitf(so, #f, "%llu", (unsigned long long)stat_get(&sum.f)); \
    if (!strcmp(#f, "get_misses")) \
        stats_emitf(so, "get_expired", "%llu", (unsigned long long)ss.get_expired); \
    if (!strcmp(#f, "auth_errors") && settings.idle_timeout > 0) \
        stats_emitf(so, "idle_kicks", "%llu", (unsigned long long)stat_get(&sum.conn_idle_closed));
    WORKER_COUNTERS(PRINT)
#undef PRINT
    stats_emitf(so, "limit_maxbytes", "%zu", (size_t)mem_limit_total);
    stats_emitf(so, "accepting_conns", "1");
    stats_emitf(so, "listen_disabled_num", "0");
    stats_emitf(so, "time_in_listen_disabled_us", "0");
    stats_emitf(so, "threads", "%u", nworkers);
    stats_emitf(so, "conn_yields", "%llu", (unsigned long long)stat_get(&sum.conn_yields));
    /* -e: what the warm restart at start-up brought back (server/warm.c) */
    stats_emitf(so, "restart_items_restored", "%llu", (unsigned long long)warm_items_restored);
    stats_emitf(so, "restart_seconds", "%.3f", warm_seconds);
    stats_emitf(so, "hash_power_level", "%llu", (unsigned long long)hp);
    stats_emitf(so, "hash_bytes", "%llu", (unsigned long long)ss.index_bytes);
    stats_emitf(so, "hash_is_expanding", "%llu", (unsigned long long)(hexp ? 1 : 0));
    stats_emitf(so, "bytes", "%llu", (unsigned long long)ss.bytes);
    stats_emitf(so, "curr_items", "%llu", (unsigned long long)ss.curr_items);
    stats_emitf(so, "total_items", "%llu", (unsigned long long)ss.total_items);
    stats_emitf(so, "expired_unfetched", "%llu", (unsigned long long)ss.expired_unfetched);
    stats_emitf(so, "evicted_unfetched", "%llu", (unsigned long long)ss.evicted_unfetched);
    stats_emitf(so, "evicted_active", "0");
    stats_emitf(so, "evictions", "%llu", (unsigned long long)ss.evictions);
    stats_emitf(so, "reclaimed", "%llu", (unsigned long long)ss.expired_reclaimed);
    stats_emitf(so, "malloced_bytes", "%llu", (unsigned long long)ss.mem_used);
    /* memcached's LRU crawler and segmented-LRU counters, which exporters
     * (Prometheus' memcached_exporter) read: percore has neither, so 0. */
    stats_emitf(so, "lru_crawler_running", "0");
    stats_emitf(so, "lru_crawler_starts", "0");
    stats_emitf(so, "crawler_reclaimed", "0");
    stats_emitf(so, "crawler_items_checked", "0");
    stats_emitf(so, "direct_reclaims", "0");
    stats_emitf(so, "moves_to_cold", "0");
    stats_emitf(so, "moves_to_warm", "0");
    stats_emitf(so, "moves_within_lru", "0");
    /* The rest of memcached 1.6.18's general counters of mechanisms percore
     * does not have (slab page moves, LRU tail locks and bumps, the LRU
     * maintainer, slab allocation failures): 0, so that a tool reading any
     * of memcached's names finds it (t/stats.t asks lrutail_reflocked). */
    static const char *const none[] = {
        "slab_reassign_rescues", "slab_reassign_chunk_rescues", "slab_reassign_evictions_nomem",
        "slab_reassign_inline_reclaim", "slab_reassign_busy_items", "slab_reassign_busy_deletes",
        "slab_reassign_running", "slabs_moved", "slab_global_page_pool", "lru_maintainer_juggles",
        "malloc_fails", "lrutail_reflocked", "lru_bumps_dropped",
    };
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++)
        stats_emitf(so, none[i], "0");
    if (tls_enabled()) {
        /* memcached's names: a handshake that timed out failed too. */
        stats_emitf(so, "ssl_handshake_errors", "%llu", (unsigned long long)(
                    stat_get(&sum.tls_handshake_errors) + stat_get(&sum.tls_handshake_timeouts)));
        stats_emitf(so, "time_since_server_cert_refresh", "%lu", tls_cert_age());
        if (tls_settings.session_cache)
            stats_emitf(so, "ssl_new_sessions", "%llu", (unsigned long long)(
                        stat_get(&sum.tls_handshakes) - stat_get(&sum.tls_resumed)));
    }
    /* percore's own. */
    stats_emitf(so, "io_backend", "%s", io_name());
    stats_emitf(so, "steering", "%s", settings.udp_port ? udp_steering_name() : "off");
    stats_emitf(so, "store_mem_used", "%llu", (unsigned long long)ss.mem_used);
    stats_emitf(so, "store_segments_total", "%llu", (unsigned long long)ss.segs_total);
    stats_emitf(so, "store_segments_used", "%llu", (unsigned long long)ss.segs_used);
    stats_emitf(so, "store_segment_size", "%llu", (unsigned long long)(nworkers ? ss.seg_size / nworkers : 0));
    stats_emitf(so, "store_evicted_segments", "%llu", (unsigned long long)ss.evicted_segments);
    stats_emitf(so, "store_reclaimed_segments", "%llu", (unsigned long long)ss.reclaim_segments);
    stats_emitf(so, "store_merged_items", "%llu", (unsigned long long)ss.merged_items);
    stats_emitf(so, "store_large_items", "%llu", (unsigned long long)ss.large_items);
    stats_emitf(so, "store_pins", "%llu", (unsigned long long)ss.pins);
    stats_emitf(so, "store_held_bytes", "%llu", (unsigned long long)ss.held_bytes);
    stats_emitf(so, "ring_capacity", "%u", ring_capacity);
    stats_emitf(so, "ring_bytes", "%zu", rings_bytes);
#define OWN(f) stats_emitf(so, #f, "%llu", (unsigned long long)stat_get(&sum.f));
    WORKER_OWN_COUNTERS(OWN)
#undef OWN
    xdp_steer_stats(so, nworkers);   /* the XDP program's counters, when it runs */
    for (unsigned i = 0; i < nworkers; i++) {
        char name[64];
#define PERW(f) \
        snprintf(name, sizeof name, "worker_%u_" #f, i); \
        stats_emitf(so, name, "%llu", (unsigned long long)stat_get(&workers[i].stats.f));
        PERW(req_local)
        PERW(req_forwarded)
        PERW(req_remote_served)
        PERW(curr_connections)
        PERW(cmd_get)
        PERW(cmd_set)
        PERW(udp_requests)
        PERW(udp_forwarded)
#undef PERW
        struct store_stats s;
        worker_store_stats(&workers[i], &s);
        snprintf(name, sizeof name, "worker_%u_curr_items", i);
        stats_emitf(so, name, "%llu", (unsigned long long)s.curr_items);
        snprintf(name, sizeof name, "worker_%u_cpu", i);
        stats_emitf(so, name, "%d", workers[i].loop.cpu);
        snprintf(name, sizeof name, "worker_%u_loop_max_us", i);
        stats_emitf(so, name, "%llu", (unsigned long long)((double)atomic_load_explicit(
                                  &workers[i].loop_max_ticks, memory_order_relaxed) *
                                                           lat_tick_ns() / 1000.0));
    }
}

/* memcached's ssl_* lines of `stats settings` (its spelling: "(null)" for
 * an unset certificate or key, NULL for unset ciphers or CA, ssl_wbuf_size
 * in bytes). */
static void tls_settings_report(struct stats_out *so)
{
    const struct tls_settings *ts = &tls_settings;
    stats_emitf(so, "ssl_enabled", "%s", ts->enabled ? "yes" : "no");
    stats_emitf(so, "ssl_chain_cert", "%s", ts->chain_cert ? ts->chain_cert : "(null)");
    stats_emitf(so, "ssl_key", "%s", ts->key ? ts->key : "(null)");
    stats_emitf(so, "ssl_verify_mode", "%d", ts->verify_mode);
    stats_emitf(so, "ssl_keyformat", "%d", ts->keyformat);
    stats_emitf(so, "ssl_ciphers", "%s", ts->ciphers ? ts->ciphers : "NULL");
    stats_emitf(so, "ssl_ca_cert", "%s", ts->ca_cert ? ts->ca_cert : "NULL");
    stats_emitf(so, "ssl_wbuf_size", "%d", ts->wbuf_size * 1024);
    stats_emitf(so, "ssl_session_cache", "%s", ts->session_cache ? "yes" : "no");
    stats_emitf(so, "ssl_kernel_tls", "%s", tls_kernel_state());
    stats_emitf(so, "ssl_min_version", "%s", tls_version_name(ts->min_version));
}

/* Keys of memcached's slab mover, LRU maintainer and crawler: nominal here
 * (docs/protocols.md), memcached's defaults or what its run-time commands
 * set (proto/tunables.h), in memcached's order. */
static void lru_settings_report(struct stats_out *so)
{
    stats_emitf(so, "hashpower_init", "0");
    stats_emitf(so, "slab_reassign", "yes");
    stats_emitf(so, "slab_automove", "%d", TUNE_GET(slab_automove));
    stats_emitf(so, "slab_automove_ratio", "%.2f", TUNE_GET(slab_automove_ratio));
    stats_emitf(so, "slab_automove_window", "30");
    stats_emitf(so, "slab_chunk_max", "524288");
    stats_emitf(so, "lru_crawler", "%s", TUNE_GET(lru_crawler) ? "yes" : "no");
    stats_emitf(so, "lru_crawler_sleep", "%u", TUNE_GET(lru_crawler_sleep));
    stats_emitf(so, "lru_crawler_tocrawl", "%u", TUNE_GET(lru_crawler_tocrawl));
    stats_emitf(so, "tail_repair_time", "0");
    stats_emitf(so, "flush_enabled", "%s", settings.flush_ok ? "yes" : "no");
    stats_emitf(so, "dump_enabled", "%s", proto_conf.dump_ok ? "yes" : "no");
    stats_emitf(so, "hash_algorithm", "murmur3");
    stats_emitf(so, "lru_maintainer_thread", "yes");
    stats_emitf(so, "lru_segmented", "%s", TUNE_GET(lru_segmented) ? "yes" : "no");
    stats_emitf(so, "hot_lru_pct", "20");
    stats_emitf(so, "warm_lru_pct", "40");
    stats_emitf(so, "hot_max_factor", "0.20");
    stats_emitf(so, "warm_max_factor", "2.00");
    stats_emitf(so, "temp_lru", "%s", TUNE_GET(temp_lru) ? "yes" : "no");
    stats_emitf(so, "temporary_ttl", "%d", TUNE_GET(temporary_ttl));
}

/* memcached's extstore keys (its Debian build has extstore): defaults. */
static void ext_settings_report(struct stats_out *so)
{
    static const char *const ext[][2] = {
        { "ext_item_size", "512" }, { "ext_item_age", "4294967295" }, { "ext_low_ttl", "0" },
        { "ext_recache_rate", "2000" }, { "ext_wbuf_size", "4194304" },
        { "ext_compact_under", "0" }, { "ext_drop_under", "0" }, { "ext_max_sleep", "1000000" },
        { "ext_max_frag", "0.80" }, { "slab_automove_freeratio", "0.010" },
        { "ext_drop_unread", "no" },
    };
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++)
        stats_emitf(so, ext[i][0], "%s", ext[i][1]);
}

/* Every key memcached 1.6.18 emits, in its order, then percore's own. */
static void settings_report(struct stats_out *so)
{
    stats_emitf(so, "maxbytes", "%zu", (size_t)mem_limit_total);
    stats_emitf(so, "maxconns", "%d", settings.maxconns);
    stats_emitf(so, "tcpport", "%d", settings.port);
    stats_emitf(so, "udpport", "%d", settings.udp_port);
    stats_emitf(so, "inter", "%s", settings.listen[0] ? settings.listen[0] : "NULL");
    stats_emitf(so, "verbosity", "%d", log_level_now());
    stats_emitf(so, "oldest", "0");
    stats_emitf(so, "evictions", "%s", settings.no_evict ? "off" : "on");
    stats_emitf(so, "domain_socket", "%s", settings.unix_path ? settings.unix_path : "NULL");
    stats_emitf(so, "umask", "%o", settings.unix_mask);
    stats_emitf(so, "shutdown_command", "%s", settings.shutdown_ok ? "yes" : "no");
    stats_emitf(so, "growth_factor", "%.2f", settings.growth_factor);
    stats_emitf(so, "chunk_size", "%d", settings.slab_min_size);
    stats_emitf(so, "num_threads", "%d", settings.nworkers);
    stats_emitf(so, "num_threads_per_udp", "%d", settings.nworkers);
    stats_emitf(so, "stat_key_prefix", "%c", settings.stat_delim);
    stats_emitf(so, "detail_enabled", "%s", pfx_enabled() ? "yes" : "no");
    stats_emitf(so, "reqs_per_event", "%d", settings.reqs_per_event);
    stats_emitf(so, "cas_enabled", "%s", settings.use_cas ? "yes" : "no");
    stats_emitf(so, "tcp_backlog", "%d", settings.backlog);
    stats_emitf(so, "binding_protocol", "%s", settings.protocol == PROT_ASCII ? "ascii"
         : settings.protocol == PROT_BINARY ? "binary" : "auto-negotiate");
    stats_emitf(so, "auth_enabled_sasl", "%s", settings.sasl ? "yes" : "no");
    stats_emitf(so, "auth_enabled_ascii", "%s", settings.auth_file ? settings.auth_file : "no");
    stats_emitf(so, "item_size_max", "%zu", settings.item_max);
    stats_emitf(so, "maxconns_fast", "%s", settings.maxconns_fast ? "yes" : "no");
    lru_settings_report(so);
    stats_emitf(so, "idle_timeout", "%d", settings.idle_timeout);
    stats_emitf(so, "watcher_logbuf_size", "262144");   /* per watcher per worker turn, server/watch.c */
    stats_emitf(so, "worker_logbuf_size", "65536");
    stats_emitf(so, "read_buf_mem_limit", "0");
    stats_emitf(so, "track_sizes", "no");
    stats_emitf(so, "inline_ascii_response", "no");
    ext_settings_report(so);
    tls_settings_report(so);
    stats_emitf(so, "num_napi_ids", "(null)");
    stats_emitf(so, "memory_file", "%s", settings.memory_file ? settings.memory_file : "(null)");
    stats_emitf(so, "io_backend", "%s", io_name());
    stats_emitf(so, "max_conn_output", "%zu", settings.conn_out_max);
    stats_emitf(so, "zc_send_min", "%zu", settings.zc_send_min);
    stats_emitf(so, "max_get_keys", "%u", settings.max_get_keys);
}

void stats_classes_add(struct store_class_stats *sum, const struct store_class_stats *one,
                       unsigned n)
{
    for (unsigned k = 0; k < n; k++) {
        const struct store_class_stats *c = &one[k];
        if (c->id == 0 || c->id > STORE_CLASSES_MAX)
            continue;
        struct store_class_stats *t = &sum[c->id - 1];
        t->id = c->id;
        t->large = c->large;
        t->ttl_min = c->ttl_min;
        t->ttl_max = c->ttl_max;
        if (c->oldest_age > t->oldest_age)
            t->oldest_age = c->oldest_age;
        if (c->evicted_time > t->evicted_time)
            t->evicted_time = c->evicted_time;
#define ADD(f) t->f += c->f;
        ADD(segments) ADD(mem_bytes) ADD(live_items) ADD(live_bytes) ADD(dead_bytes)
        ADD(get_hits) ADD(touch_hits) ADD(cmd_set) ADD(delete_hits) ADD(incr_hits)
        ADD(decr_hits) ADD(cas_hits) ADD(cas_badval) ADD(evicted) ADD(evicted_nonzero)
        ADD(evicted_unfetched) ADD(reclaimed) ADD(expired_unfetched)
#undef ADD
    }
}

/* Classes summed over workers by id from their once-a-second publication
 * (the path binary and UDP `stats` take; text connections get an exact
 * walk, server/introspect.c). Returns a calloc'ed array indexed by id - 1, or
 * NULL when out of memory. */
static struct store_class_stats *sum_classes(void)
{
    struct store_class_stats *sum = calloc(STORE_CLASSES_MAX, sizeof *sum);
    struct store_class_stats *one = calloc(STORE_CLASSES_MAX, sizeof *one);
    if (!sum || !one) {
        free(sum);
        free(one);
        return NULL;
    }
    for (unsigned i = 0; i < nworkers; i++)
        stats_classes_add(sum, one, worker_class_stats(&workers[i], one, STORE_CLASSES_MAX));
    free(one);
    return sum;
}

static void class_stat(struct stats_out *so, const char *prefix, uint32_t id, const char *name,
                       unsigned long long v)
{
    char key[64];
    snprintf(key, sizeof key, "%s%u:%s", prefix, id, name);
    stats_emitf(so, key, "%llu", v);
}

/* memcached 1.6.18's `stats items`, one block per class holding items or
 * having evicted some. Segmented-LRU and crawler fields have no
 * counterpart in percore and read 0; all items count as cold. */
void stats_items_format(const struct store_class_stats *cl, struct stats_out *so)
{
    for (unsigned k = 0; k < STORE_CLASSES_MAX; k++) {
        const struct store_class_stats *c = &cl[k];
        if (c->id == 0 || (c->live_items == 0 && c->evicted == 0))
            continue;
        const struct { const char *name; unsigned long long v; } f[] = {
            { "number", c->live_items }, { "number_hot", 0 }, { "number_warm", 0 },
            { "number_cold", c->live_items }, { "age_hot", 0 }, { "age_warm", 0 },
            { "age", c->oldest_age }, { "mem_requested", c->live_bytes },
            { "evicted", c->evicted }, { "evicted_nonzero", c->evicted_nonzero },
            { "evicted_time", c->evicted_time }, { "outofmemory", 0 }, { "tailrepairs", 0 },
            { "reclaimed", c->reclaimed }, { "expired_unfetched", c->expired_unfetched },
            { "evicted_unfetched", c->evicted_unfetched }, { "evicted_active", 0 },
            { "crawler_reclaimed", 0 }, { "crawler_items_checked", 0 },
            { "lrutail_reflocked", 0 }, { "moves_to_cold", 0 }, { "moves_to_warm", 0 },
            { "moves_within_lru", 0 }, { "direct_reclaims", 0 }, { "hits_to_hot", 0 },
            { "hits_to_warm", 0 }, { "hits_to_cold", c->get_hits + c->touch_hits },
            { "hits_to_temp", 0 },
        };
        for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
            class_stat(so, "items:", c->id, f[i].name, f[i].v);
    }
}

static void items_report(struct stats_out *so)
{
    struct store_class_stats *cl = sum_classes();
    if (cl)
        stats_items_format(cl, so);
    free(cl);
}

/* memcached 1.6.18's `stats slabs`: a segment plays a page holding one
 * chunk of the segment size (large items: one page per item), followed by
 * percore's own ttl_min/ttl_max/live_items/dead_bytes per class. */
void stats_slabs_format(const struct store_class_stats *cl, struct stats_out *so)
{
    unsigned active = 0;
    struct store_stats ss;
    sum_stores(&ss);
    uint64_t seg = nworkers ? ss.seg_size / nworkers : 0;
    for (unsigned k = 0; k < STORE_CLASSES_MAX; k++) {
        const struct store_class_stats *c = &cl[k];
        if (c->id == 0)
            continue;
        active++;
        uint64_t chunk = c->large ? (c->segments ? c->mem_bytes / c->segments : 0) : seg;
        const struct { const char *name; unsigned long long v; } f[] = {
            { "chunk_size", chunk }, { "chunks_per_page", 1 },
            { "total_pages", c->segments }, { "total_chunks", c->segments },
            { "used_chunks", c->segments }, { "free_chunks", 0 }, { "free_chunks_end", 0 },
            { "get_hits", c->get_hits }, { "cmd_set", c->cmd_set },
            { "delete_hits", c->delete_hits }, { "incr_hits", c->incr_hits },
            { "decr_hits", c->decr_hits }, { "cas_hits", c->cas_hits },
            { "cas_badval", c->cas_badval }, { "touch_hits", c->touch_hits },
            { "ttl_min", c->ttl_min }, { "ttl_max", c->ttl_max },
            { "live_items", c->live_items }, { "dead_bytes", c->dead_bytes },
        };
        for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
            class_stat(so, "", c->id, f[i].name, f[i].v);
    }
    stats_emitf(so, "active_slabs", "%u", active);
    stats_emitf(so, "total_malloced", "%llu", (unsigned long long)ss.mem_used);
}

static void slabs_report(struct stats_out *so)
{
    struct store_class_stats *cl = sum_classes();
    if (cl) {
        stats_slabs_format(cl, so);
        free(cl);
    }
}

static void conns_report(struct stats_out *so)
{
    stats_emitf(so, "curr_connections", "%d", atomic_load(&global_conns));
}

/* stats detail on|off|dump: memcached looks at the second word only, and
 * by its first letters ("on", "of", "dump"), ignoring anything after. */
static void detail_report(const char *arg, size_t len, struct stats_out *so)
{
    const char *p = arg + 6;
    const char *end = arg + len;
    while (p < end && *p == ' ')
        p++;
    size_t n = (size_t)(end - p);
    const char *sp = memchr(p, ' ', n);
    if (sp)
        n = (size_t)(sp - p);
#define WORD(s) (n == strlen(s) && memcmp(p, s, n) == 0)
    if (WORD("on")) {
        pfx_enable(true);
        so->end(so, STATS_OK);
    } else if (WORD("off")) {
        pfx_enable(false);
        so->end(so, STATS_OK);
    } else if (WORD("dump")) {
        struct pfx_table *t[MAX_WORKERS];
        for (unsigned i = 0; i < nworkers; i++)
            t[i] = workers[i].pfx;
        struct buf text = {0};
        pfx_dump(t, nworkers, &text);
        so->blob(so, text.data, text.len);
        buf_free(&text);
        so->end(so, STATS_DONE);
    } else {
        so->end(so, STATS_USAGE);
    }
#undef WORD
}

/* arg is `word` alone or `word <more>`: *rest = where <more> starts. */
static bool sub_arg(const char *arg, size_t len, const char *word, size_t *rest)
{
    size_t n = strlen(word);
    if (len < n || memcmp(arg, word, n) != 0 || (len > n && arg[n] != ' '))
        return false;
    while (n < len && arg[n] == ' ')
        n++;
    *rest = n;
    return true;
}

void stats_report(struct worker *w, struct msg *(*new_barrier)(void *sess), void *sess,
                  const char *arg, size_t len, struct stats_out *so)
{
    size_t rest;
    while (len && arg[len - 1] == ' ')
        len--;
#define IS(s) (len == strlen(s) && memcmp(arg, s, len) == 0)
    if (len == 0)
        general(w, so);
    else if (IS("reset")) {
        /* RESET goes into a slot of the session's reply order that is
         * released once every worker has zeroed. */
        struct msg *barrier = new_barrier ? new_barrier(sess) : NULL;
        if (barrier)
            stats_out_retarget(so, &barrier->reply);
        latency_reset();
        hotkeys_reset();
        so->end(so, STATS_RESET);
        worker_stats_reset(w, barrier);
        return;
    } else if (IS("settings"))
        settings_report(so);
    else if (IS("items"))
        items_report(so);
    else if (IS("slabs"))
        slabs_report(so);
    else if (IS("conns"))
        conns_report(so);
    else if (IS("sizes"))
        stats_emitf(so, "sizes_status", "disabled");
    else if (sub_arg(arg, len, "latency", &rest)) {
        latency_report(arg + rest, len - rest, so);
        return;
    } else if (sub_arg(arg, len, "hotkeys", &rest)) {
        hotkeys_report(arg + rest, len - rest, so);
        return;
    } else if (len >= 6 && memcmp(arg, "detail", 6) == 0) {
        detail_report(arg, len, so);
        return;
    } else {
        so->end(so, STATS_UNKNOWN);
        return;
    }
#undef IS
    so->end(so, STATS_END);
}
