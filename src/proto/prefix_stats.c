/*
 * prefix_stats.c — per-worker prefix tables for `stats detail` (see
 * prefix_stats.h for who owns and locks what). Open addressing on the
 * prefix bytes; at most PFX_MAX prefixes per worker (memcached has no cap;
 * a key space with more prefixes than that is not what this is for).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "util/options.h"
#include "proto/prefix_stats.h"

#define PFX_MAX 65536

struct pfx_entry {
    char    *p;          /* NULL = empty */
    size_t   n;
    unsigned long long get, hit, set, del;
    unsigned order;      /* insertion order, for a stable dump */
};

struct pfx_table {
    pthread_mutex_t   lock;
    struct pfx_entry *e;
    size_t            cap, used;
};

_Atomic bool pfx_on;

void pfx_enable(bool on)
{
    atomic_store_explicit(&pfx_on, on, memory_order_relaxed);
}

struct pfx_table *pfx_create(void)
{
    struct pfx_table *t = calloc(1, sizeof *t);
    if (t)
        pthread_mutex_init(&t->lock, NULL);
    return t;
}

static void entries_free(struct pfx_table *t)
{
    for (size_t i = 0; i < t->cap; i++)
        free(t->e[i].p);
    free(t->e);
    t->e = NULL;
    t->cap = t->used = 0;
}

void pfx_destroy(struct pfx_table *t)
{
    if (!t)
        return;
    entries_free(t);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

static size_t hash(const char *p, size_t n)
{
    size_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return h;
}

/* The entry for prefix p, created when missing; NULL when full or out of
 * memory. Caller holds the lock (or owns a private table). */
static struct pfx_entry *find(struct pfx_table *t, const char *p, size_t n)
{
    if (t->used * 2 >= t->cap) {
        if (t->used >= PFX_MAX)
            goto lookup_only;
        size_t cap = t->cap ? t->cap * 2 : 64;
        struct pfx_entry *ne = calloc(cap, sizeof *ne);
        if (!ne)
            goto lookup_only;
        for (size_t i = 0; i < t->cap; i++) {
            if (!t->e[i].p)
                continue;
            size_t j = hash(t->e[i].p, t->e[i].n) & (cap - 1);
            while (ne[j].p)
                j = (j + 1) & (cap - 1);
            ne[j] = t->e[i];
        }
        free(t->e);
        t->e = ne;
        t->cap = cap;
    }
lookup_only:
    if (!t->cap)
        return NULL;
    for (size_t j = hash(p, n) & (t->cap - 1);; j = (j + 1) & (t->cap - 1)) {
        struct pfx_entry *x = &t->e[j];
        if (x->p && x->n == n && memcmp(x->p, p, n) == 0)
            return x;
        if (!x->p) {
            if (t->used * 2 >= t->cap)
                return NULL;   /* full: stop counting new prefixes */
            x->p = malloc(n ? n : 1);
            if (!x->p)
                return NULL;
            memcpy(x->p, p, n);
            x->n = n;
            x->order = (unsigned)t->used++;
            return x;
        }
    }
}

void pfx_record(struct pfx_table *t, const char *key, size_t klen, enum pfx_kind k, bool hit)
{
    const char *d = memchr(key, settings.stat_delim ? settings.stat_delim : PREFIX_DELIMITER, klen);
    if (!d || !t)
        return;
    pthread_mutex_lock(&t->lock);
    struct pfx_entry *x = find(t, key, (size_t)(d - key));
    if (x) {
        if (k == PFX_GET) {
            x->get++;
            x->hit += hit;
        } else if (k == PFX_SET) {
            x->set++;
        } else {
            x->del++;
        }
    }
    pthread_mutex_unlock(&t->lock);
}

void pfx_clear(struct pfx_table *t)
{
    pthread_mutex_lock(&t->lock);
    entries_free(t);
    pthread_mutex_unlock(&t->lock);
}

static int by_order(const void *a, const void *b)
{
    const struct pfx_entry *x = *(struct pfx_entry *const *)a, *y = *(struct pfx_entry *const *)b;
    return (x->order > y->order) - (x->order < y->order);
}

void pfx_dump(struct pfx_table *const *tables, unsigned n, struct buf *o)
{
    struct pfx_table sum = {0};
    for (unsigned i = 0; i < n; i++) {
        struct pfx_table *t = tables[i];
        pthread_mutex_lock(&t->lock);
        for (size_t k = 0; k < t->cap; k++) {
            const struct pfx_entry *x = &t->e[k];
            if (!x->p)
                continue;
            struct pfx_entry *s = find(&sum, x->p, x->n);
            if (s) {
                s->get += x->get;
                s->hit += x->hit;
                s->set += x->set;
                s->del += x->del;
            }
        }
        pthread_mutex_unlock(&t->lock);
    }
    struct pfx_entry **list = calloc(sum.used ? sum.used : 1, sizeof *list);
    size_t m = 0;
    for (size_t k = 0; list && k < sum.cap; k++)
        if (sum.e[k].p)
            list[m++] = &sum.e[k];
    if (list)
        qsort(list, m, sizeof *list, by_order);
    for (size_t k = 0; k < m; k++) {
        char line[128];
        buf_adds(o, "PREFIX ");
        buf_add(o, list[k]->p, list[k]->n);
        snprintf(line, sizeof line, " get %llu hit %llu set %llu del %llu\r\n", list[k]->get,
                 list[k]->hit, list[k]->set, list[k]->del);
        buf_adds(o, line);
    }
    free(list);
    entries_free(&sum);
    buf_adds(o, "END\r\n");
}
