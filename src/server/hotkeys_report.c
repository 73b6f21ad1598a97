/*
 * hotkeys_report.c — `stats hotkeys` (see hotkeys_report.h). No state of
 * its own: reads the workers' topk tables under their locks and their
 * counters with relaxed loads.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "server/hotkeys_report.h"
#include "server/worker.h"

#define HOTKEYS_DEFAULT 10

static int by_count(const void *a, const void *b)
{
    const struct hotkey *x = a, *y = b;
    return x->est < y->est ? 1 : x->est > y->est ? -1 : (int)x->worker - (int)y->worker;
}

unsigned hotkeys_top(struct hotkey *out, unsigned max)
{
    if (!workers || !workers[0].loop.hot)
        return 0;
    struct hotkey *all = calloc((size_t)nworkers * TOPK_SLOTS, sizeof *all);
    struct topk_entry *one = calloc(TOPK_SLOTS, sizeof *one);
    unsigned n = 0;
    if (!all || !one)
        goto done;
    for (unsigned i = 0; i < nworkers; i++) {
        uint64_t sampled = 0;
        unsigned k = topk_copy(workers[i].loop.hot, one, &sampled);
        for (unsigned j = 0; j < k; j++) {
            struct hotkey *h = &all[n++];
            h->e = one[j];
            h->worker = i;
            h->est = one[j].count * workers[i].loop.hot->interval;
            h->est_err = one[j].err * workers[i].loop.hot->interval;
            h->worker_share = sampled ? (double)one[j].count / (double)sampled : 0;
        }
    }
    qsort(all, n, sizeof *all, by_count);
    if (n > max)
        n = max;
    memcpy(out, all, n * sizeof *out);
done:
    free(all);
    free(one);
    return n;
}

void hotkeys_reset(void)
{
    for (unsigned i = 0; workers && i < nworkers; i++)
        if (workers[i].loop.hot)
            topk_clear(workers[i].loop.hot);
}

uint64_t hotkeys_worker_requests(unsigned i)
{
    return stat_get(&workers[i].stats.req_local) + stat_get(&workers[i].stats.req_remote_served);
}

void hotkeys_escape(const struct topk_entry *e, char *out, size_t cap)
{
    size_t o = 0;
    for (unsigned i = 0; i < e->klen && o + 4 <= cap; i++) {
        unsigned char c = (unsigned char)e->key[i];
        if (c > ' ' && c < 0x7f && c != '%')
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, cap - o, "%%%02X", c);
    }
    out[o] = '\0';
}

void hotkeys_report(const char *arg, size_t len, struct stats_out *so)
{
    unsigned want = HOTKEYS_DEFAULT;
    if (len == 5 && memcmp(arg, "reset", 5) == 0) {
        hotkeys_reset();
        so->end(so, STATS_RESET);
        return;
    }
    if (len) {
        unsigned v = 0;
        for (size_t i = 0; i < len; i++) {
            if (arg[i] < '0' || arg[i] > '9' || v > 100000) {
                so->end(so, STATS_UNKNOWN);
                return;
            }
            v = v * 10 + (unsigned)(arg[i] - '0');
        }
        if (v == 0) {
            so->end(so, STATS_UNKNOWN);
            return;
        }
        want = v;
    }
    bool on = workers && workers[0].loop.hot;
    stats_emitf(so, "hotkeys", "%s", on ? "on" : "off");
    if (on) {
        stats_emitf(so, "hotkeys_sample_interval", "%u", workers[0].loop.hot->interval);
        unsigned cap = nworkers * TOPK_SLOTS;
        if (want > cap)
            want = cap;
        struct hotkey *top = calloc(want, sizeof *top);
        unsigned n = top ? hotkeys_top(top, want) : 0;
        for (unsigned k = 0; k < n; k++) {
            char name[48], key[KEY_MAX_LENGTH * 3 + 1];
            hotkeys_escape(&top[k].e, key, sizeof key);
#define HK(what, fmt, v) \
            snprintf(name, sizeof name, "hotkey:%u:" what, k + 1); \
            stats_emitf(so, name, fmt, v);
            HK("key", "%s", key)
            HK("count", "%llu", (unsigned long long)top[k].est)
            HK("error", "%llu", (unsigned long long)top[k].est_err)
            HK("worker", "%u", top[k].worker)
            HK("worker_share", "%.4f", top[k].worker_share)
#undef HK
        }
        free(top);
    }
    /* How evenly the workers execute requests: a hot key pins its owner. */
    uint64_t total = 0, max = 0;
    for (unsigned i = 0; i < nworkers; i++) {
        uint64_t r = hotkeys_worker_requests(i);
        total += r;
        if (r > max)
            max = r;
    }
    for (unsigned i = 0; i < nworkers; i++) {
        char name[48];
        uint64_t r = hotkeys_worker_requests(i);
        snprintf(name, sizeof name, "worker_%u:requests", i);
        stats_emitf(so, name, "%llu", (unsigned long long)r);
        snprintf(name, sizeof name, "worker_%u:share", i);
        stats_emitf(so, name, "%.4f", total ? (double)r / (double)total : 0.0);
    }
    stats_emitf(so, "imbalance", "%.3f", total ? (double)max * nworkers / (double)total : 0.0);
    so->end(so, STATS_END);
}
