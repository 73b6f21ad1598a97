/*
 * stats_report.c — `stats`, `stats settings|items|slabs|conns|reset` (see
 * stats_report.h). Reads other workers' counters with relaxed atomic loads;
 * writes only to the asking connection's output buffer.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include "util/clock.h"
#include "util/log.h"
#include "util/options.h"
#include "proto/prefix_stats.h"
#include "server/stats_report.h"
#include "net/conn.h"
#include "net/udp.h"

static void stat(struct buf *o, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void stat(struct buf *o, const char *name, const char *fmt, ...)
{
    char val[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(val, sizeof val, fmt, ap);
    va_end(ap);
    buf_adds(o, "STAT ");
    buf_adds(o, name);
    buf_add(o, " ", 1);
    buf_adds(o, val);
    buf_add(o, "\r\n", 2);
}

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

static void general(struct worker *w, struct buf *o)
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

    stat(o, "pid", "%d", (int)getpid());
    stat(o, "uptime", "%u", w->now - CLOCK_REL_BASE);
    stat(o, "time", "%ld", (long)now);
    stat(o, "version", "%s", PROTO_VERSION);
    stat(o, "libevent", "none");
    stat(o, "pointer_size", "%d", (int)(8 * sizeof(void *)));
    stat(o, "rusage_user", "%ld.%06ld", (long)ru.ru_utime.tv_sec, (long)ru.ru_utime.tv_usec);
    stat(o, "rusage_system", "%ld.%06ld", (long)ru.ru_stime.tv_sec, (long)ru.ru_stime.tv_usec);
    stat(o, "max_connections", "%d", settings.maxconns);
    stat(o, "curr_connections", "%llu", (unsigned long long)stat_get(&sum.curr_connections));
    stat(o, "total_connections", "%llu", (unsigned long long)stat_get(&sum.total_connections));
    stat(o, "rejected_connections", "%llu", (unsigned long long)stat_get(&sum.rejected_connections));
    stat(o, "connection_structures", "%llu", (unsigned long long)stat_get(&sum.curr_connections));
    stat(o, "reserved_fds", "%u", 5 + nworkers * 2);
#define PRINT(f) \
    if (strcmp(#f, "curr_connections") && strcmp(#f, "total_connections") && \
        strcmp(#f, "rejected_connections") && strcmp(#f, "conn_yields")) \
        stat(o, #f, "%llu", (unsigned long long)stat_get(&sum.f));
    WORKER_COUNTERS(PRINT)
#undef PRINT
    stat(o, "limit_maxbytes", "%zu", settings.maxbytes);
    stat(o, "accepting_conns", "1");
    stat(o, "listen_disabled_num", "0");
    stat(o, "time_in_listen_disabled_us", "0");
    stat(o, "threads", "%u", nworkers);
    stat(o, "conn_yields", "%llu", (unsigned long long)stat_get(&sum.conn_yields));
    stat(o, "hash_power_level", "%llu", (unsigned long long)hp);
    stat(o, "hash_bytes", "%llu", (unsigned long long)ss.index_bytes);
    stat(o, "hash_is_expanding", "%llu", (unsigned long long)(hexp ? 1 : 0));
    stat(o, "bytes", "%llu", (unsigned long long)ss.bytes);
    stat(o, "curr_items", "%llu", (unsigned long long)ss.curr_items);
    stat(o, "total_items", "%llu", (unsigned long long)ss.total_items);
    stat(o, "expired_unfetched", "%llu", (unsigned long long)ss.expired_unfetched);
    stat(o, "evicted_unfetched", "%llu", (unsigned long long)ss.evicted_unfetched);
    stat(o, "evicted_active", "0");
    stat(o, "evictions", "%llu", (unsigned long long)ss.evictions);
    stat(o, "reclaimed", "%llu", (unsigned long long)ss.expired_reclaimed);
    stat(o, "malloced_bytes", "%llu", (unsigned long long)ss.mem_used);
    /* memcached's LRU crawler and segmented-LRU counters, which exporters
     * (Prometheus' memcached_exporter) read: percore has neither, so 0. */
    stat(o, "lru_crawler_running", "0");
    stat(o, "lru_crawler_starts", "0");
    stat(o, "crawler_reclaimed", "0");
    stat(o, "crawler_items_checked", "0");
    stat(o, "direct_reclaims", "0");
    stat(o, "moves_to_cold", "0");
    stat(o, "moves_to_warm", "0");
    stat(o, "moves_within_lru", "0");
    /* percore's own. */
    stat(o, "io_backend", "%s", io_name());
    stat(o, "steering", "%s", settings.udp_port ? udp_steering_name() : "off");
    stat(o, "store_mem_used", "%llu", (unsigned long long)ss.mem_used);
    stat(o, "store_segments_total", "%llu", (unsigned long long)ss.segs_total);
    stat(o, "store_segments_used", "%llu", (unsigned long long)ss.segs_used);
    stat(o, "store_segment_size", "%llu", (unsigned long long)(nworkers ? ss.seg_size / nworkers : 0));
    stat(o, "store_evicted_segments", "%llu", (unsigned long long)ss.evicted_segments);
    stat(o, "store_reclaimed_segments", "%llu", (unsigned long long)ss.reclaim_segments);
    stat(o, "store_merged_items", "%llu", (unsigned long long)ss.merged_items);
    stat(o, "store_large_items", "%llu", (unsigned long long)ss.large_items);
    stat(o, "store_pins", "%llu", (unsigned long long)ss.pins);
    stat(o, "store_held_bytes", "%llu", (unsigned long long)ss.held_bytes);
    stat(o, "ring_capacity", "%u", ring_capacity);
    stat(o, "ring_bytes", "%zu", rings_bytes);
#define OWN(f) stat(o, #f, "%llu", (unsigned long long)stat_get(&sum.f));
    WORKER_OWN_COUNTERS(OWN)
#undef OWN
    for (unsigned i = 0; i < nworkers; i++) {
        char name[64];
#define PERW(f) \
        snprintf(name, sizeof name, "worker_%u_" #f, i); \
        stat(o, name, "%llu", (unsigned long long)stat_get(&workers[i].stats.f));
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
        stat(o, name, "%llu", (unsigned long long)s.curr_items);
        snprintf(name, sizeof name, "worker_%u_cpu", i);
        stat(o, name, "%d", workers[i].loop.cpu);
        snprintf(name, sizeof name, "worker_%u_loop_max_us", i);
        stat(o, name, "%llu", (unsigned long long)atomic_load_explicit(
                                  &workers[i].loop_max_us, memory_order_relaxed));
    }
}

static void settings_report(struct buf *o)
{
    stat(o, "maxbytes", "%zu", settings.maxbytes);
    stat(o, "maxconns", "%d", settings.maxconns);
    stat(o, "tcpport", "%d", settings.port);
    stat(o, "udpport", "%d", settings.udp_port);
    stat(o, "inter", "%s", settings.listen[0] ? settings.listen[0] : "NULL");
    stat(o, "verbosity", "%d", log_level_now());
    stat(o, "oldest", "0");
    stat(o, "evictions", "%s", settings.no_evict ? "off" : "on");
    stat(o, "domain_socket", "%s", settings.unix_path ? settings.unix_path : "NULL");
    stat(o, "umask", "%o", settings.unix_mask);
    stat(o, "shutdown_command", "%s", settings.shutdown_ok ? "yes" : "no");
    stat(o, "growth_factor", "1.00");
    stat(o, "chunk_size", "0");
    stat(o, "num_threads", "%d", settings.nworkers);
    stat(o, "num_threads_per_udp", "%d", settings.nworkers);
    stat(o, "stat_key_prefix", "%c", settings.stat_delim);
    stat(o, "detail_enabled", "%s", pfx_enabled() ? "yes" : "no");
    stat(o, "reqs_per_event", "%d", settings.reqs_per_event);
    stat(o, "cas_enabled", "%s", settings.use_cas ? "yes" : "no");
    stat(o, "tcp_backlog", "%d", settings.backlog);
    stat(o, "binding_protocol", "%s", settings.protocol == PROT_ASCII ? "ascii"
         : settings.protocol == PROT_BINARY ? "binary" : "auto-negotiate");
    stat(o, "auth_enabled_sasl", "no");
    stat(o, "auth_enabled_ascii", "no");
    stat(o, "item_size_max", "%zu", settings.item_max);
    stat(o, "maxconns_fast", "%s", settings.maxconns_fast ? "yes" : "no");
    stat(o, "hashpower_init", "0");
    stat(o, "slab_reassign", "no");
    stat(o, "slab_automove", "0");
    stat(o, "lru_crawler", "no");
    stat(o, "lru_maintainer_thread", "no");
    stat(o, "flush_enabled", "%s", settings.flush_ok ? "yes" : "no");
    stat(o, "dump_enabled", "%s", proto_conf.dump_ok ? "yes" : "no");
    stat(o, "watcher_logbuf_size", "262144");   /* per watcher per worker turn, server/watch.c */
    stat(o, "idle_timeout", "%d", settings.idle_timeout);
    stat(o, "io_backend", "%s", io_name());
    stat(o, "max_conn_output", "%zu", settings.conn_out_max);
    stat(o, "max_get_keys", "%u", settings.max_get_keys);
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

static void class_stat(struct buf *o, const char *prefix, uint32_t id, const char *name,
                       unsigned long long v)
{
    char key[64];
    snprintf(key, sizeof key, "%s%u:%s", prefix, id, name);
    stat(o, key, "%llu", v);
}

/* memcached 1.6.18's `stats items`, one block per class holding items or
 * having evicted some. Segmented-LRU and crawler fields have no
 * counterpart in percore and read 0; all items count as cold. */
void stats_items_format(const struct store_class_stats *cl, struct buf *o)
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
            class_stat(o, "items:", c->id, f[i].name, f[i].v);
    }
}

static void items_report(struct buf *o)
{
    struct store_class_stats *cl = sum_classes();
    if (cl)
        stats_items_format(cl, o);
    free(cl);
}

/* memcached 1.6.18's `stats slabs`: a segment plays a page holding one
 * chunk of the segment size (large items: one page per item), followed by
 * percore's own ttl_min/ttl_max/live_items/dead_bytes per class. */
void stats_slabs_format(const struct store_class_stats *cl, struct buf *o)
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
            class_stat(o, "", c->id, f[i].name, f[i].v);
    }
    stat(o, "active_slabs", "%u", active);
    stat(o, "total_malloced", "%llu", (unsigned long long)ss.mem_used);
}

static void slabs_report(struct buf *o)
{
    struct store_class_stats *cl = sum_classes();
    if (cl) {
        stats_slabs_format(cl, o);
        free(cl);
    }
}

static void conns_report(struct buf *o)
{
    stat(o, "curr_connections", "%d", atomic_load(&global_conns));
}

/* stats detail on|off|dump: memcached looks at the second word only, and
 * by its first letters ("on", "of", "dump"), ignoring anything after. */
static void detail_report(const char *arg, size_t len, struct buf *o)
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
        buf_adds(o, "OK\r\n");
    } else if (WORD("off")) {
        pfx_enable(false);
        buf_adds(o, "OK\r\n");
    } else if (WORD("dump")) {
        struct pfx_table *t[MAX_WORKERS];
        for (unsigned i = 0; i < nworkers; i++)
            t[i] = workers[i].pfx;
        pfx_dump(t, nworkers, o);
    } else {
        buf_adds(o, "CLIENT_ERROR usage: stats detail on|off|dump\r\n");
    }
#undef WORD
}

void stats_report(struct worker *w, const char *arg, size_t len, struct buf *o)
{
    while (len && arg[len - 1] == ' ')
        len--;
#define IS(s) (len == strlen(s) && memcmp(arg, s, len) == 0)
    if (len == 0)
        general(w, o);
    else if (IS("reset")) {
        worker_stats_reset(w);
        buf_adds(o, "RESET\r\n");
        return;
    } else if (IS("settings"))
        settings_report(o);
    else if (IS("items"))
        items_report(o);
    else if (IS("slabs"))
        slabs_report(o);
    else if (IS("conns"))
        conns_report(o);
    else if (IS("sizes"))
        stat(o, "sizes_status", "disabled");
    else if (len >= 6 && memcmp(arg, "detail", 6) == 0) {
        detail_report(arg, len, o);
        return;
    } else {
        buf_adds(o, "ERROR\r\n");
        return;
    }
#undef IS
    buf_adds(o, "END\r\n");
}
