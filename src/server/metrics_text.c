/*
 * metrics_text.c — /metrics body (see metrics_text.h). Names follow
 * Prometheus' memcached_exporter where it has one (memcached_*), with a
 * `worker` label where the number is per worker, so its dashboards' sums
 * still work; percore's own numbers are percore_*. Owns no state: each call
 * builds a fresh buffer on the metrics thread.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include "util/clock.h"
#include "util/lat_hist.h"
#include "util/xdp_abi.h"
#include "net/conn.h"
#include "net/xdp_steer.h"
#include "server/hotkeys_report.h"
#include "server/latency_report.h"
#include "server/metrics_text.h"
#include "server/warm.h"
#include "server/worker.h"

struct mb {
    char  *p;
    size_t len, cap;
    int    oom;
};

static void mb_printf(struct mb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void mb_printf(struct mb *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->len;
        int n = b->p ? vsnprintf(b->p + b->len, room, fmt, ap) : -1;
        va_end(ap);
        if (n >= 0 && (size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        if (b->oom)
            return;
        size_t cap = b->cap ? b->cap * 2 : 65536;
        while (n >= 0 && cap < b->len + (size_t)n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

static void family(struct mb *b, const char *name, const char *type, const char *help)
{
    mb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value as the format wants it: \, " and newline escaped. */
static void label_escape(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    for (; *in && o + 3 < cap; in++) {
        if (*in == '\\' || *in == '"') {
            out[o++] = '\\';
            out[o++] = *in;
        } else if (*in == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else {
            out[o++] = *in;
        }
    }
    out[o] = '\0';
}

static void global(struct mb *b)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    family(b, "memcached_up", "gauge", "Whether the server answers (always 1 when this page is served).");
    mb_printf(b, "memcached_up 1\n");
    family(b, "memcached_uptime_seconds", "counter", "Seconds since the server started.");
    mb_printf(b, "memcached_uptime_seconds %u\n", clock_rel_now() - CLOCK_REL_BASE);
    family(b, "memcached_time_seconds", "gauge", "Current UNIX time according to the server.");
    mb_printf(b, "memcached_time_seconds %ld\n", (long)time(NULL));
    family(b, "memcached_version", "gauge", "The version of this server.");
    mb_printf(b, "memcached_version{version=\"%s\"} 1\n", PROTO_VERSION);
    family(b, "memcached_process_user_cpu_seconds_total", "counter", "User CPU time of the process.");
    mb_printf(b, "memcached_process_user_cpu_seconds_total %ld.%06ld\n",
              (long)ru.ru_utime.tv_sec, (long)ru.ru_utime.tv_usec);
    family(b, "memcached_process_system_cpu_seconds_total", "counter", "System CPU time of the process.");
    mb_printf(b, "memcached_process_system_cpu_seconds_total %ld.%06ld\n",
              (long)ru.ru_stime.tv_sec, (long)ru.ru_stime.tv_usec);
    family(b, "memcached_max_connections", "gauge", "Most clients allowed (-c).");
    mb_printf(b, "memcached_max_connections %d\n", settings.maxconns);
    family(b, "memcached_limit_bytes", "gauge", "Bytes the server may use for items (-m).");
    mb_printf(b, "memcached_limit_bytes %zu\n", (size_t)mem_limit_total);
    family(b, "memcached_accepting_connections", "gauge", "Whether the server accepts connections.");
    mb_printf(b, "memcached_accepting_connections 1\n");
    family(b, "memcached_connections_listener_disabled_total", "counter", "Times the listener was disabled (never here).");
    mb_printf(b, "memcached_connections_listener_disabled_total 0\n");
}

/* One per-worker counter family from struct wstats. */
#define PER_WORKER(b, fam, type, help, field) do { \
        family(b, fam, type, help); \
        for (unsigned i_ = 0; i_ < nworkers; i_++) \
            mb_printf(b, fam "{worker=\"%u\"} %llu\n", i_, \
                      (unsigned long long)stat_get(&workers[i_].stats.field)); \
    } while (0)

static void commands(struct mb *b)
{
    family(b, "memcached_commands_total", "counter",
           "Requests by command and status, per worker (memcached_exporter's names).");
    for (unsigned i = 0; i < nworkers; i++) {
        const struct wstats *s = &workers[i].stats;
        const struct { const char *cmd, *status; uint64_t v; } c[] = {
            { "get", "hit", stat_get(&s->get_hits) }, { "get", "miss", stat_get(&s->get_misses) },
            { "delete", "hit", stat_get(&s->delete_hits) }, { "delete", "miss", stat_get(&s->delete_misses) },
            { "incr", "hit", stat_get(&s->incr_hits) }, { "incr", "miss", stat_get(&s->incr_misses) },
            { "decr", "hit", stat_get(&s->decr_hits) }, { "decr", "miss", stat_get(&s->decr_misses) },
            { "cas", "hit", stat_get(&s->cas_hits) }, { "cas", "miss", stat_get(&s->cas_misses) },
            { "cas", "badval", stat_get(&s->cas_badval) },
            { "touch", "hit", stat_get(&s->touch_hits) }, { "touch", "miss", stat_get(&s->touch_misses) },
            { "flush", "hit", stat_get(&s->cmd_flush) },
        };
        for (size_t k = 0; k < sizeof c / sizeof c[0]; k++)
            mb_printf(b, "memcached_commands_total{worker=\"%u\",command=\"%s\",status=\"%s\"} %llu\n",
                      i, c[k].cmd, c[k].status, (unsigned long long)c[k].v);
        /* As the exporter: memcached counts cas again in cmd_set. */
        uint64_t set = stat_get(&s->cmd_set), cas = stat_get(&s->cas_hits) +
                       stat_get(&s->cas_misses) + stat_get(&s->cas_badval);
        mb_printf(b, "memcached_commands_total{worker=\"%u\",command=\"set\",status=\"hit\"} %llu\n",
                  i, (unsigned long long)(set > cas ? set - cas : 0));
    }
    PER_WORKER(b, "memcached_read_bytes_total", "counter", "Bytes read from the network.", bytes_read);
    PER_WORKER(b, "memcached_written_bytes_total", "counter", "Bytes sent to the network.", bytes_written);
    PER_WORKER(b, "memcached_current_connections", "gauge", "Open connections.", curr_connections);
    PER_WORKER(b, "memcached_connections_total", "counter", "Connections opened since start.", total_connections);
    PER_WORKER(b, "memcached_connections_rejected_total", "counter", "Connections refused at the -c limit.", rejected_connections);
    PER_WORKER(b, "memcached_connections_yielded_total", "counter", "Times a connection yielded at the -R limit.", conn_yields);
    PER_WORKER(b, "memcached_item_too_large_total", "counter", "Stores refused: item over the size limit.", store_too_large);
    PER_WORKER(b, "memcached_item_no_memory_total", "counter", "Stores refused: out of memory.", store_no_memory);
}

static void stores(struct mb *b)
{
    struct store_stats *ss = calloc(nworkers, sizeof *ss);
    if (!ss)
        return;
    for (unsigned i = 0; i < nworkers; i++)
        worker_store_stats(&workers[i], &ss[i]);   /* what the worker published */
    const struct { const char *name, *type, *help; size_t off; } f[] = {
#define F(n, t, h, field) { n, t, h, offsetof(struct store_stats, field) }
        F("memcached_current_bytes", "gauge", "Bytes of live items.", bytes),
        F("memcached_current_items", "gauge", "Live items.", curr_items),
        F("memcached_items_total", "counter", "Items stored since start.", total_items),
        F("memcached_items_evicted_total", "counter", "Live items evicted to make room.", evictions),
        F("memcached_items_reclaimed_total", "counter", "Expired items reclaimed.", expired_reclaimed),
        F("memcached_malloced_bytes", "gauge", "Store memory in use (segments, large items, index).", mem_used),
        F("percore_store_segments_used", "gauge", "Segments in use.", segs_used),
        F("percore_store_segments_total", "gauge", "Segments the memory limit allows.", segs_total),
        F("percore_store_evicted_segments_total", "counter", "Segments evicted.", evicted_segments),
        F("percore_store_merged_items_total", "counter", "Live items kept by eviction merges.", merged_items),
        F("percore_store_held_bytes", "gauge", "Freed memory held by replies still sending.", held_bytes),
        F("percore_store_pins", "gauge", "Replies in flight sending from item memory.", pins),
        F("percore_store_large_items", "gauge", "Items stored outside regular segments.", large_items),
        F("percore_store_index_bytes", "gauge", "Bytes of the hash index (hash_bytes).", index_bytes),
        F("percore_store_hash_power", "gauge", "log2 of the index's buckets (hash_power_level).", hash_power),
        F("percore_store_reclaimed_segments_total", "counter", "Segments freed whole, all expired.", reclaim_segments),
        F("percore_store_expired_unfetched_total", "counter", "Expired items never read (expired_unfetched).", expired_unfetched),
        F("percore_store_evicted_unfetched_total", "counter", "Evicted items never read (evicted_unfetched).", evicted_unfetched),
        F("percore_store_flushes_total", "counter", "flush_all applied.", flushes),
#undef F
    };
    for (size_t k = 0; k < sizeof f / sizeof f[0]; k++) {
        family(b, f[k].name, f[k].type, f[k].help);
        for (unsigned i = 0; i < nworkers; i++)
            mb_printf(b, "%s{worker=\"%u\"} %llu\n", f[k].name, i,
                      (unsigned long long)*(const uint64_t *)((const char *)&ss[i] + f[k].off));
    }
    free(ss);
}

static void own(struct mb *b)
{
#define OWN(f) PER_WORKER(b, "percore_" #f "_total", "counter", "percore's " #f " (see docs/observability.md).", f);
    WORKER_OWN_COUNTERS(OWN)
#undef OWN
    /* The rest of `stats`' counters that memcached_exporter has no name for. */
    PER_WORKER(b, "percore_cmd_get_total", "counter", "Keys asked for by get commands (cmd_get).", cmd_get);
    PER_WORKER(b, "percore_cmd_set_total", "counter", "Store commands (cmd_set).", cmd_set);
    PER_WORKER(b, "percore_cmd_touch_total", "counter", "Touch commands (cmd_touch).", cmd_touch);
    PER_WORKER(b, "percore_cmd_meta_total", "counter", "Meta commands (cmd_meta).", cmd_meta);
    family(b, "percore_get_expired_total", "counter", "Lookups that found the item expired (get_expired).");
    for (unsigned i = 0; i < nworkers; i++) {
        struct store_stats ss;
        worker_store_stats(&workers[i], &ss);
        mb_printf(b, "percore_get_expired_total{worker=\"%u\"} %llu\n", i,
                  (unsigned long long)ss.get_expired);
    }
    PER_WORKER(b, "percore_get_flushed_total", "counter", "Gets that found the item flushed (get_flushed).", get_flushed);
    PER_WORKER(b, "percore_auth_cmds_total", "counter", "Authentication commands (auth_cmds).", auth_cmds);
    PER_WORKER(b, "percore_auth_errors_total", "counter", "Failed authentications (auth_errors).", auth_errors);
    family(b, "percore_loop_max_seconds", "gauge", "Longest loop iteration's work since stats reset.");
    for (unsigned i = 0; i < nworkers; i++)
        mb_printf(b, "percore_loop_max_seconds{worker=\"%u\",cpu=\"%d\"} %.6f\n", i, workers[i].loop.cpu,
                  (double)atomic_load_explicit(&workers[i].loop_max_ticks, memory_order_relaxed) *
                  lat_tick_ns() / 1e9);
    family(b, "percore_workers", "gauge", "Worker threads.");
    mb_printf(b, "percore_workers %u\n", nworkers);
    /* Set once at start-up, before this thread runs (server/warm.c). */
    family(b, "percore_restart_items_restored", "gauge", "Items a warm restart (-e) brought back at start.");
    mb_printf(b, "percore_restart_items_restored %llu\n", (unsigned long long)warm_items_restored);
    family(b, "percore_restart_seconds", "gauge", "Seconds the warm restart (-e) took at start.");
    mb_printf(b, "percore_restart_seconds %.3f\n", warm_seconds);
}

/* Bucket bounds of the exported histograms, seconds. Each count is within
 * one log-linear bucket (0.8%) of the exact count below the bound. */
static const double le_s[] = {
    1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4,
    1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};
#define NLE (sizeof le_s / sizeof le_s[0])

static void latency(struct mb *b)
{
    if (!workers[0].loop.lat)
        return;
    struct lat_snap *s = malloc(sizeof *s);
    if (!s)
        return;
    double tick_ns = lat_tick_ns();
    uint64_t le[NLE], cum[NLE];
    for (size_t k = 0; k < NLE; k++)
        le[k] = (uint64_t)(le_s[k] * 1e9 / tick_ns);
    const char *name = "percore_request_duration_seconds";
    family(b, name, "histogram",
           "Request parsed to reply queued, per worker, command class and path.");
    for (unsigned i = 0; i < nworkers; i++)
        for (unsigned c = 0; c < LAT_NCLASSES; c++)
            for (unsigned p = 0; p < LAT_NPATHS; p++) {
                latency_snapshot((int)i, c, p, s);
                if (s->count == 0)
                    continue;
                char lab[96];
                snprintf(lab, sizeof lab, "worker=\"%u\",command=\"%s\",path=\"%s\"", i,
                         lat_class_names[c], lat_path_names[p]);
                lat_snap_cumulative(s, le, NLE, cum);
                for (size_t k = 0; k < NLE; k++)
                    mb_printf(b, "%s_bucket{%s,le=\"%g\"} %llu\n", name, lab, le_s[k],
                              (unsigned long long)cum[k]);
                mb_printf(b, "%s_bucket{%s,le=\"+Inf\"} %llu\n", name, lab, (unsigned long long)s->count);
                mb_printf(b, "%s_sum{%s} %.9f\n", name, lab, (double)s->sum * tick_ns / 1e9);
                mb_printf(b, "%s_count{%s} %llu\n", name, lab, (unsigned long long)s->count);
            }
    free(s);
}

#define METRICS_HOTKEYS 10

/* The XDP program's counters (percpu map, summed here), when it runs: a
 * syscall per counter, which the metrics thread can afford and a worker
 * could not. The program is loaded before this thread starts. */
static void xdp(struct mb *b)
{
    if (xdp_steer_mode() == XDP_MODE_OFF)
        return;
    uint64_t c[XDP_CNT_N];
    if (xdp_steer_read(c, XDP_CNT_N, NULL, 0) < 0)
        return;
    family(b, "percore_xdp_redirected_total", "counter",
           "UDP requests the XDP program steered to the worker's CPU.");
    for (unsigned i = 0; i < nworkers && i < XDP_MAX_WORKERS; i++)
        mb_printf(b, "percore_xdp_redirected_total{worker=\"%u\"} %llu\n", i,
                  (unsigned long long)c[XDP_CNT_REDIRECTED + i]);
    const struct { const char *name, *help; unsigned idx; } f[] = {
        { "percore_xdp_passed_total", "Packets the XDP program left alone (not for the UDP port).", XDP_CNT_PASSED },
        { "percore_xdp_unparsable_total", "UDP requests with no key to steer by (passed).", XDP_CNT_UNPARSABLE },
        { "percore_xdp_no_cpu_total", "Requests whose owner's CPU was missing from the cpumap (passed).", XDP_CNT_NO_CPU },
        { "percore_xdp_csum_partial_total", "Datagrams with the checksum left to offload (passed).", XDP_CNT_CSUM_PARTIAL },
    };
    for (size_t k = 0; k < sizeof f / sizeof f[0]; k++) {
        family(b, f[k].name, "counter", f[k].help);
        mb_printf(b, "%s %llu\n", f[k].name, (unsigned long long)c[f[k].idx]);
    }
}

static void hot(struct mb *b)
{
    struct hotkey top[METRICS_HOTKEYS];
    unsigned n = hotkeys_top(top, METRICS_HOTKEYS);
    if (n) {
        family(b, "percore_hotkey_requests", "gauge",
               "Estimated requests for the hottest keys (sampled), by owning worker.");
        for (unsigned k = 0; k < n; k++) {
            char key[KEY_MAX_LENGTH * 3 + 1], esc[sizeof key * 2];
            hotkeys_escape(&top[k].e, key, sizeof key);
            label_escape(key, esc, sizeof esc);
            mb_printf(b, "percore_hotkey_requests{rank=\"%u\",key=\"%s\",worker=\"%u\"} %llu\n",
                      k + 1, esc, top[k].worker, (unsigned long long)top[k].est);
        }
    }
    uint64_t total = 0, max = 0;
    for (unsigned i = 0; i < nworkers; i++) {
        uint64_t r = hotkeys_worker_requests(i);
        total += r;
        if (r > max)
            max = r;
    }
    family(b, "percore_worker_imbalance", "gauge",
           "Requests executed by the busiest worker over the mean (1 = even).");
    mb_printf(b, "percore_worker_imbalance %.4f\n", total ? (double)max * nworkers / (double)total : 0.0);
}

char *metrics_render(size_t *len)
{
    struct mb b = {0};
    global(&b);
    commands(&b);
    stores(&b);
    own(&b);
    latency(&b);
    hot(&b);
    xdp(&b);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}
