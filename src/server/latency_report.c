/*
 * latency_report.c — `stats latency [reset]` (see latency_report.h). The
 * baseline of the last reset is the only state here: written by a reset and
 * read by reports, on any worker, under base_lock (never taken on the
 * request path).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "server/latency_report.h"
#include "server/worker.h"

static pthread_mutex_t base_lock = PTHREAD_MUTEX_INITIALIZER;
static struct lat_snap *base;   /* [LAT_NCLASSES * LAT_NPATHS], NULL = never reset */

bool latency_snapshot(int worker, unsigned cls, unsigned path, struct lat_snap *out)
{
    memset(out, 0, sizeof *out);
    if (!workers || !workers[0].loop.lat)
        return false;
    for (unsigned i = 0; i < nworkers; i++)
        if (worker < 0 || (unsigned)worker == i)
            lat_snap_add(out, &workers[i].loop.lat->h[cls][path]);
    return true;
}

void latency_reset(void)
{
    if (!workers || !workers[0].loop.lat)
        return;
    struct lat_snap *now = calloc(LAT_NCLASSES * LAT_NPATHS, sizeof *now);
    if (!now)
        return;
    for (unsigned c = 0; c < LAT_NCLASSES; c++)
        for (unsigned p = 0; p < LAT_NPATHS; p++)
            latency_snapshot(-1, c, p, &now[c * LAT_NPATHS + p]);
    pthread_mutex_lock(&base_lock);
    struct lat_snap *old = base;
    base = now;
    pthread_mutex_unlock(&base_lock);
    free(old);
}

static void emit_us(struct stats_out *so, const char *cls, const char *path, const char *what,
                    double ns)
{
    char name[64];
    snprintf(name, sizeof name, "%s:%s:%s", cls, path, what);
    stats_emitf(so, name, "%.3f", ns / 1000.0);
}

void latency_report(const char *arg, size_t len, struct stats_out *so)
{
    if (len == 5 && memcmp(arg, "reset", 5) == 0) {
        latency_reset();
        so->end(so, STATS_RESET);
        return;
    }
    if (len != 0) {
        so->end(so, STATS_UNKNOWN);
        return;
    }
    bool on = workers && workers[0].loop.lat;
    stats_emitf(so, "latency_stats", "%s", on ? "on" : "off");
    if (!on) {
        so->end(so, STATS_END);
        return;
    }
    stats_emitf(so, "latency_clock", "%s", lat_use_tsc ? "tsc" : "monotonic");
    double tick_ns = lat_tick_ns();
    struct lat_snap *s = malloc(sizeof *s), *all = malloc(sizeof *all);
    if (!s || !all) {
        free(s);
        free(all);
        so->end(so, STATS_END);
        return;
    }
    static const struct { const char *name; double q; } qs[] = {
        { "p50_us", 0.50 }, { "p90_us", 0.90 }, { "p99_us", 0.99 },
        { "p99.9_us", 0.999 }, { "p99.99_us", 0.9999 }, { "max_us", 1.0 },
    };
    for (unsigned c = 0; c < LAT_NCLASSES; c++) {
        memset(all, 0, sizeof *all);
        unsigned used = 0;   /* paths that counted something */
        for (unsigned p = 0; p <= LAT_NPATHS; p++) {
            if (p < LAT_NPATHS) {
                latency_snapshot(-1, c, p, s);
                pthread_mutex_lock(&base_lock);
                if (base)
                    lat_snap_sub(s, &base[c * LAT_NPATHS + p]);
                pthread_mutex_unlock(&base_lock);
                lat_snap_merge(all, s);
                used += s->count != 0;
            } else if (used < 2) {
                continue;   /* one path only: "all" would repeat it */
            } else {
                memcpy(s, all, sizeof *s);
            }
            if (s->count == 0)
                continue;
            const char *cn = lat_class_names[c], *pn = p < LAT_NPATHS ? lat_path_names[p] : "all";
            char name[64];
            snprintf(name, sizeof name, "%s:%s:count", cn, pn);
            stats_emitf(so, name, "%llu", (unsigned long long)s->count);
            emit_us(so, cn, pn, "mean_us", (double)s->sum * tick_ns / (double)s->count);
            for (size_t k = 0; k < sizeof qs / sizeof qs[0]; k++)
                emit_us(so, cn, pn, qs[k].name, (double)lat_snap_quantile(s, qs[k].q) * tick_ns);
        }
    }
    free(all);
    free(s);
    so->end(so, STATS_END);
}
