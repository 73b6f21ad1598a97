/*
 * cmd.c — the command layer (see cmd.h): each keyed operation's store
 * calls and its statistics, counted here once for all three protocols.
 * Runs on the key owner's worker; writes only that worker's store, its
 * `struct wstats` and its `stats detail` table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "util/clock.h"
#include "proto/cmd.h"

static inline void detail(struct exec_ctx *x, const char *key, size_t klen, enum pfx_kind k,
                          bool hit)
{
    cmd_detail(x, key, klen, k, hit);
}

void cmd_count_fetch(struct exec_ctx *x, bool touch, bool hit)
{
    cmd_count_fetch_inline(x, touch, hit);
}

int cmd_gat(struct exec_ctx *x, const char *key, size_t klen, int64_t exptime,
            struct item_view *iv)
{
    int rc = store_gat(x->store, key, klen, clock_exptime(exptime, x->now), iv);
    cmd_count_fetch_inline(x, true, rc == ST_OK);
    detail(x, key, klen, PFX_GET, rc == ST_OK);
    return rc;
}

int cmd_touch(struct exec_ctx *x, const char *key, size_t klen, int64_t exptime)
{
    int rc = store_touch(x->store, key, klen, clock_exptime(exptime, x->now));
    cmd_count_fetch_inline(x, true, rc == ST_OK);
    return rc;
}

int cmd_peek(struct exec_ctx *x, const char *key, size_t klen, struct item_view *iv)
{
    return store_peek(x->store, key, klen, iv);
}

int cmd_lookup(struct exec_ctx *x, const char *key, size_t klen, bool bump, bool vivify,
               struct item_view *iv, bool *created)
{
    *created = false;
    int rc = bump ? store_get(x->store, key, klen, iv) : store_peek(x->store, key, klen, iv);
    if (rc != ST_OK && vivify) {
        /* memcached links a zero-byte item; the caller sets its TTL. */
        if (store_put(x->store, SM_ADD, key, klen, "", 0, 0, 0, 0, NULL) == ST_OK) {
            rc = bump ? store_get(x->store, key, klen, iv) : store_peek(x->store, key, klen, iv);
            *created = rc == ST_OK;
            iv->atime = x->now;
        }
    }
    return rc;
}

void cmd_set_ttl(struct exec_ctx *x, const char *key, size_t klen, uint32_t exptime)
{
    store_touch(x->store, key, klen, exptime);
}

void cmd_set_mbits(struct exec_ctx *x, const char *key, size_t klen, uint8_t set, uint8_t clear)
{
    store_set_mbits(x->store, key, klen, set, clear);
}

/* Rewrite a live item with a new CAS, keeping what the caller passes, then
 * set its meta bits (md I, ms I). */
static int restore_stale(struct exec_ctx *x, const char *key, size_t klen, const void *val,
                         size_t vlen, uint32_t flags, uint32_t exp, uint8_t bits,
                         uint64_t *cas)
{
    int rc = store_put(x->store, SM_SET, key, klen, val, vlen, flags, exp, 0, cas);
    if (rc == ST_OK)
        store_set_mbits(x->store, key, klen, bits, (uint8_t)~bits);
    return rc;
}

static void count_cas(struct wstats *st, int rc)
{
    if (rc == ST_OK)
        STAT_INC(st, cas_hits);
    else if (rc == ST_EXISTS)
        STAT_INC(st, cas_badval);
    else if (rc == ST_NOT_FOUND)
        STAT_INC(st, cas_misses);
}

/* meta's compare-and-swap: the compare is done here (CAS 0 never
 * matches), the write is a plain set, and the CAS counters follow the
 * compare's outcome, whatever the write then does. */
static int meta_cas(struct exec_ctx *x, const struct cmd_put *p, uint32_t exp, uint64_t *cas)
{
    struct item_view iv;
    int rc, cmp;
    if (store_peek(x->store, p->key, p->klen, &iv) != ST_OK) {
        rc = cmp = ST_NOT_FOUND;
    } else if (p->cas != 0 && p->cas == store_view_cas(x->store, &iv)) {
        rc = store_put(x->store, SM_SET, p->key, p->klen, p->val, p->vlen, p->flags, exp, 0, cas);
        cmp = ST_OK;
    } else if (p->cas != 0 && (p->opts & CMD_STALE) && p->cas < store_view_cas(x->store, &iv)) {
        uint8_t bits = (uint8_t)(ITEM_STALE | (iv.mbits & ITEM_WIN_SENT));
        rc = restore_stale(x, p->key, p->klen, p->val, p->vlen, p->flags, iv.exptime, bits, cas);
        cmp = ST_OK;
    } else {
        rc = cmp = ST_EXISTS;
    }
    count_cas(x->stats, cmp);
    return rc;
}

int cmd_store(struct exec_ctx *x, const struct cmd_put *p, uint64_t *cas_out)
{
    struct wstats *st = x->stats;
    uint32_t exp = clock_exptime(p->exptime, x->now);
    uint64_t cas = 0;
    int rc;
    STAT_INC(st, cmd_set);
    detail(x, p->key, p->klen, PFX_SET, false);
    /* the new item's CAS only when the reply carries it: a CAS handed out
     * costs the item an 8-byte field when it moves (store_view_cas) */
    uint64_t *want = cas_out ? &cas : NULL;
    if (p->mode == SM_CAS && (p->opts & CMD_META_CAS)) {
        rc = meta_cas(x, p, exp, want);
    } else {
        rc = ST_OK;
        struct item_view iv;
        /* append/prepend only refuse a mismatching CAS (memcached). */
        if (p->cas && (p->mode == SM_APPEND || p->mode == SM_PREPEND) &&
            store_peek(x->store, p->key, p->klen, &iv) == ST_OK &&
            store_view_cas(x->store, &iv) != p->cas)
            rc = ST_EXISTS;
        if (rc == ST_OK)
            rc = store_put(x->store, p->mode, p->key, p->klen, p->val, p->vlen, p->flags, exp,
                           p->cas, want);
        if (p->mode == SM_CAS)
            count_cas(st, rc);
    }
    if (rc == ST_TOO_LARGE)
        STAT_INC(st, store_too_large);
    else if (rc == ST_NO_MEMORY)
        STAT_INC(st, store_no_memory);
    if (cas_out)
        *cas_out = cas;
    return rc;
}

/* md: the item is looked at first (CAS, invalidation). */
static int meta_delete(struct exec_ctx *x, const struct cmd_del *d)
{
    struct wstats *st = x->stats;
    struct item_view iv;
    if (store_peek(x->store, d->key, d->klen, &iv) != ST_OK) {
        STAT_INC(st, delete_misses);
        return ST_MISS;
    }
    if (d->has_cas && store_view_cas(x->store, &iv) != d->cas) {
        STAT_INC(st, delete_misses);
        return ST_EXISTS;
    }
    if (d->stale) {
        /* Invalidate: keep the item, new CAS, stale, win token cleared. */
        uint32_t exp = d->new_ttl ? clock_exptime(d->exptime, x->now) : iv.exptime;
        uint8_t bits = (uint8_t)(ITEM_STALE | (iv.mbits & ITEM_FETCHED));
        char *copy = malloc(iv.vlen ? iv.vlen : 1);
        if (!copy)
            return ST_NO_MEMORY;
        memcpy(copy, iv.val, iv.vlen);
        restore_stale(x, d->key, d->klen, copy, iv.vlen, iv.flags, exp, bits, NULL);
        free(copy);
        return ST_OK;
    }
    store_delete(x->store, d->key, d->klen, 0);
    STAT_INC(st, delete_hits);
    return ST_OK;
}

int cmd_delete(struct exec_ctx *x, const struct cmd_del *d)
{
    if (d->has_cas || d->stale)
        return meta_delete(x, d);
    detail(x, d->key, d->klen, PFX_DEL, false);
    int rc = store_delete(x->store, d->key, d->klen, d->cas);
    if (rc == ST_OK)
        STAT_INC(x->stats, delete_hits);
    else if (rc != ST_EXISTS)   /* a binary CAS mismatch is not a miss */
        STAT_INC(x->stats, delete_misses);
    return rc;
}

int cmd_arith(struct exec_ctx *x, const struct cmd_arith *a, struct cmd_arith_res *res)
{
    struct wstats *st = x->stats;
    struct item_view iv;
    int rc = ST_OK;
    memset(res, 0, sizeof *res);
    /* Text incr needs no look first (nothing to compare, no TTL to report). */
    if (a->cas || a->create || a->peek) {
        rc = store_peek(x->store, a->key, a->klen, &iv);
        if (rc == ST_OK) {
            res->found = true;
            res->exptime = iv.exptime;
            if (a->cas && store_view_cas(x->store, &iv) != a->cas)
                return ST_EXISTS;
        }
    }
    if (rc == ST_OK)
        rc = store_arith(x->store, a->key, a->klen, a->incr, a->delta, &res->value, &res->cas);
    if (rc == ST_OK) {
        if (a->incr)
            STAT_INC(st, incr_hits);
        else
            STAT_INC(st, decr_hits);
        return rc;
    }
    if (rc != ST_MISS)
        return rc;
    if (!a->create) {
        if (a->incr)
            STAT_INC(st, incr_misses);
        else
            STAT_INC(st, decr_misses);
        return rc;
    }
    char num[24];
    int n = snprintf(num, sizeof num, "%llu", (unsigned long long)a->initial);
    rc = store_put(x->store, SM_ADD, a->key, a->klen, num, (size_t)n, 0,
                   clock_exptime(a->exptime, x->now), 0, &res->cas);
    if (rc == ST_OK) {
        res->value = a->initial;
        res->created = true;
    }
    return rc;
}
