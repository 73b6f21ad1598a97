/*
 * cmd.h — the protocol-neutral command layer. Every keyed operation the
 * text, meta and binary executors perform goes through one of these: they
 * make the store call and count the statistics (`stats` counters, CAS
 * hits/misses/badval, `stats detail` prefixes) in one place, so the
 * executors only decode a request and encode the result. Runs on the key
 * owner's worker, like the executors; it keeps no state of its own.
 *
 * A protocol's counting quirks (memcached counts some outcomes differently
 * per protocol) are arguments here, never a second copy of the counting.
 */
#ifndef PERCORE_CMD_H
#define PERCORE_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "proto/prefix_stats.h"
#include "proto/proto.h"

/* `stats detail`: x->detail says whether this request's protocol is one
 * memcached counts there (text and binary, not meta). */
static inline void cmd_detail(struct exec_ctx *x, const char *key, size_t klen,
                              enum pfx_kind k, bool hit)
{
    if (x->detail)
        pfx_record(x->pfx, key, klen, k, hit);
}

static inline void cmd_count_fetch_inline(struct exec_ctx *x, bool touch, bool hit)
{
    struct wstats *st = x->stats;
    if (touch) {
        STAT_INC(st, cmd_touch);
        if (hit)
            STAT_INC(st, touch_hits);
        else
            STAT_INC(st, touch_misses);
    } else {
        STAT_INC(st, cmd_get);
        if (hit)
            STAT_INC(st, get_hits);
        else
            STAT_INC(st, get_misses);
    }
}

/* get / gets: store_get, counted as a fetch; a hit's view in *iv. Inline:
 * it is most of what a server does, and a call layer here costs on every
 * request. */
static inline int cmd_get(struct exec_ctx *x, const char *key, size_t klen,
                          struct item_view *iv)
{
    int rc = store_get(x->store, key, klen, iv);
    cmd_count_fetch_inline(x, false, rc == ST_OK);
    cmd_detail(x, key, klen, PFX_GET, rc == ST_OK);
    return rc;
}
/* gat / gats / binary touch: get and set the TTL, counted as a touch. */
int cmd_gat(struct exec_ctx *x, const char *key, size_t klen, int64_t exptime,
            struct item_view *iv);
/* text touch: counted as a touch; not in `stats detail` (memcached's rule). */
int cmd_touch(struct exec_ctx *x, const char *key, size_t klen, int64_t exptime);

/* mg, which decides how it counts only after encoding its reply: look up
 * without counting (peek when !bump), creating an empty item first when
 * `vivify` (N flag); then cmd_count_fetch() once the outcome is known. */
int cmd_lookup(struct exec_ctx *x, const char *key, size_t klen, bool bump, bool vivify,
               struct item_view *iv, bool *created);
void cmd_count_fetch(struct exec_ctx *x, bool touch, bool hit);
/* No counting, no side effects: me, and the checks before a write. */
int cmd_peek(struct exec_ctx *x, const char *key, size_t klen, struct item_view *iv);
/* mg/ma after their reply: the TTL and meta bits their flags asked for. */
void cmd_set_ttl(struct exec_ctx *x, const char *key, size_t klen, uint32_t exptime);
void cmd_set_mbits(struct exec_ctx *x, const char *key, size_t klen, uint8_t set, uint8_t clear);

/* A storage command. `cas` is the client's compare value (0: none) for
 * SM_CAS, and for append/prepend a value that must match when non-zero.
 * CMD_META_CAS: meta's compare (CAS 0 never matches; with CMD_STALE an
 * older CAS stores the value as stale, keeping the TTL and win bit). */
enum { CMD_META_CAS = 1, CMD_STALE = 2 };
struct cmd_put {
    enum store_mode mode;
    unsigned    opts;      /* CMD_* */
    const char *key;
    size_t      klen;
    const char *val;
    size_t      vlen;
    uint32_t    flags;
    int64_t     exptime;   /* as the client sent it */
    uint64_t    cas;
};
int cmd_store(struct exec_ctx *x, const struct cmd_put *p, uint64_t *cas_out);

/* delete / binary delete (cas 0: none) / md. For md: `has_cas` compares
 * even a 0 CAS and counts a mismatch as a miss (memcached's mdelete);
 * `stale` (md I) keeps the item, marked stale, with a new CAS and the TTL
 * `exptime` when `new_ttl`, else its own. Returns ST_OK, ST_MISS,
 * ST_EXISTS (CAS mismatch) or ST_NO_MEMORY. */
struct cmd_del {
    const char *key;
    size_t      klen;
    uint64_t    cas;
    bool        has_cas;
    bool        stale;
    bool        new_ttl;
    int64_t     exptime;
};
int cmd_delete(struct exec_ctx *x, const struct cmd_del *d);

/* incr / decr. `cas` non-zero must match (binary, ma C). When the key is
 * missing and `create` is set, `initial` is stored with `exptime`
 * (binary, ma N) and res->created set; a miss is then not counted. */
struct cmd_arith {
    const char *key;
    size_t      klen;
    bool        incr;
    bool        create;
    bool        peek;      /* look first even without cas/create (ma's TTL) */
    uint64_t    delta;
    uint64_t    cas;
    uint64_t    initial;
    int64_t     exptime;   /* of a created item, as the client sent it */
};
struct cmd_arith_res {
    uint64_t value;
    uint64_t cas;
    uint32_t exptime;      /* the item's TTL before (ma's t flag) */
    bool     found;        /* the key existed (when looked at first) */
    bool     created;
};
int cmd_arith(struct exec_ctx *x, const struct cmd_arith *a, struct cmd_arith_res *res);

/* An authentication attempt (-Y login, -S SASL exchange that ended):
 * auth_cmds, and auth_errors when it failed, as memcached counts them.
 * Runs on the session's worker, whose counters st are. */
static inline void cmd_count_auth(struct wstats *st, bool ok)
{
    STAT_INC(st, auth_cmds);
    if (!ok)
        STAT_INC(st, auth_errors);
}

#endif
