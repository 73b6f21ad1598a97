/*
 * text_exec.c — executes a text-protocol request against the owner's store
 * and encodes memcached's reply. Runs on the worker that owns the key; the
 * reply buffer then travels back to the connection's worker if needed.
 */
#include "util/clock.h"
#include "proto/proto.h"

static void line(struct buf *o, const char *s)
{
    buf_adds(o, s);
    buf_add(o, "\r\n", 2);
}

static void encode_value(struct exec_ctx *x, struct buf *o, const struct item_view *iv,
                         bool with_cas)
{
    buf_reserve(o, iv->klen + (iv->vlen < PROTO_REF_MIN ? iv->vlen : 0) + 64);
    buf_add(o, "VALUE ", 6);
    buf_add(o, iv->key, iv->klen);
    buf_add(o, " ", 1);
    buf_add_u64(o, iv->flags);
    buf_add(o, " ", 1);
    buf_add_u64(o, iv->vlen);
    if (with_cas) {
        buf_add(o, " ", 1);
        buf_add_u64(o, iv->cas);
    }
    buf_add(o, "\r\n", 2);
    proto_add_value(x, o, iv, iv->vlen);
    buf_add(o, "\r\n", 2);
}

static const enum store_mode op_mode[] = {
    [OP_SET] = SM_SET, [OP_ADD] = SM_ADD, [OP_REPLACE] = SM_REPLACE,
    [OP_APPEND] = SM_APPEND, [OP_PREPEND] = SM_PREPEND, [OP_CAS] = SM_CAS,
};

static void exec_store(struct exec_ctx *x, const struct req *r, struct buf *o)
{
    struct wstats *st = x->stats;
    uint64_t cas = 0;
    uint32_t exp = clock_exptime(r->exptime, x->now);
    int rc = store_put(x->store, op_mode[r->op], r->key, r->klen, r->val, r->vlen,
                       r->flags, exp, r->cas, &cas);
    STAT_INC(st, cmd_set);
    const char *msg;
    switch (rc) {
    case ST_OK:        msg = "STORED"; break;
    case ST_EXISTS:    msg = "EXISTS"; break;
    case ST_NOT_FOUND: msg = "NOT_FOUND"; break;
    case ST_TOO_LARGE:
        STAT_INC(st, store_too_large);
        msg = "SERVER_ERROR object too large for cache";
        break;
    case ST_NO_MEMORY:
        STAT_INC(st, store_no_memory);
        msg = "SERVER_ERROR out of memory storing object";
        break;
    default:           msg = "NOT_STORED"; break;
    }
    if (r->op == OP_CAS) {
        if (rc == ST_OK)
            STAT_INC(st, cas_hits);
        else if (rc == ST_EXISTS)
            STAT_INC(st, cas_badval);
        else if (rc == ST_NOT_FOUND)
            STAT_INC(st, cas_misses);
    }
    if (!r->noreply)
        line(o, msg);
}

void text_exec(struct exec_ctx *x, const struct req *r, struct buf *o)
{
    struct wstats *st = x->stats;
    struct item_view iv;
    int rc;

    switch (r->op) {
    case OP_GET:
    case OP_GETS:
        rc = store_get(x->store, r->key, r->klen, &iv);
        STAT_INC(st, cmd_get);
        if (rc == ST_OK) {
            STAT_INC(st, get_hits);
            encode_value(x, o, &iv, r->op == OP_GETS);
        } else {
            STAT_INC(st, get_misses);
        }
        break;
    case OP_GAT:
    case OP_GATS:
        rc = store_gat(x->store, r->key, r->klen, clock_exptime(r->exptime, x->now), &iv);
        STAT_INC(st, cmd_touch);
        if (rc == ST_OK) {
            STAT_INC(st, touch_hits);
            encode_value(x, o, &iv, r->op == OP_GATS);
        } else {
            STAT_INC(st, touch_misses);
        }
        break;
    case OP_SET: case OP_ADD: case OP_REPLACE:
    case OP_APPEND: case OP_PREPEND: case OP_CAS:
        exec_store(x, r, o);
        break;
    case OP_DELETE:
        rc = store_delete(x->store, r->key, r->klen, 0);
        if (rc == ST_OK)
            STAT_INC(st, delete_hits);
        else
            STAT_INC(st, delete_misses);
        if (!r->noreply)
            line(o, rc == ST_OK ? "DELETED" : "NOT_FOUND");
        break;
    case OP_INCR:
    case OP_DECR: {
        uint64_t result = 0, cas;
        bool incr = r->op == OP_INCR;
        rc = store_arith(x->store, r->key, r->klen, incr, r->delta, &result, &cas);
        if (rc == ST_OK) {
            if (incr) STAT_INC(st, incr_hits); else STAT_INC(st, decr_hits);
            if (!r->noreply) {
                buf_add_u64(o, result);
                buf_add(o, "\r\n", 2);
            }
        } else if (rc == ST_NON_NUMERIC) {
            if (!r->noreply)
                line(o, "CLIENT_ERROR cannot increment or decrement non-numeric value");
        } else if (rc == ST_NO_MEMORY) {
            if (!r->noreply)
                line(o, "SERVER_ERROR out of memory");
        } else {
            if (incr) STAT_INC(st, incr_misses); else STAT_INC(st, decr_misses);
            if (!r->noreply)
                line(o, "NOT_FOUND");
        }
        break;
    }
    case OP_TOUCH:
        rc = store_touch(x->store, r->key, r->klen, clock_exptime(r->exptime, x->now));
        STAT_INC(st, cmd_touch);
        if (rc == ST_OK)
            STAT_INC(st, touch_hits);
        else
            STAT_INC(st, touch_misses);
        if (!r->noreply)
            line(o, rc == ST_OK ? "TOUCHED" : "NOT_FOUND");
        break;
    default:
        line(o, "SERVER_ERROR unhandled request");
        break;
    }
}
