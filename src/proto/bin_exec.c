/*
 * bin_exec.c — executes a keyed binary-protocol request (parsed by
 * bin_parse.c) against the owner's store and encodes the response packet
 * as memcached 1.6 does: status codes, error messages, CAS in the header,
 * quiet variants silent on success. Also the response encoders the parser
 * uses for the commands it answers itself. Runs on the key owner's worker.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include "util/clock.h"
#include "proto/bin.h"
#include "proto/proto.h"

void bin_exec(struct exec_ctx *x, const struct req *r, struct buf *o);

static void put16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)v;
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)v;
}

void bin_header(struct buf *o, uint8_t opcode, uint16_t status, uint8_t extlen,
                uint16_t keylen, uint32_t bodylen, uint32_t opaque, uint64_t cas)
{
    unsigned char h[BIN_HDR_LEN] = {0};
    h[0] = BIN_RES_MAGIC;
    h[1] = opcode;
    put16(h + 2, keylen);
    h[4] = extlen;
    put16(h + 6, status);
    put32(h + 8, bodylen);
    memcpy(h + 12, &opaque, 4);
    put64(h + 16, cas);
    buf_add(o, h, sizeof h);
}

static const char *status_msg(uint16_t status)
{
    switch (status) {
    case BS_ENOMEM:       return "Out of memory";
    case BS_UNKNOWN:      return "Unknown command";
    case BS_ENOENT:       return "Not found";
    case BS_EINVAL:       return "Invalid arguments";
    case BS_EEXISTS:      return "Data exists for key.";
    case BS_E2BIG:        return "Too large.";
    case BS_DELTA_BADVAL: return "Non-numeric server-side value for incr or decr";
    case BS_NOT_STORED:   return "Not stored.";
    case BS_AUTH_ERROR:   return "Auth failure.";
    default:              return "UNHANDLED ERROR";
    }
}

void bin_error(struct buf *o, uint8_t opcode, uint32_t opaque, uint16_t status)
{
    const char *msg = status_msg(status);
    size_t n = strlen(msg);
    bin_header(o, opcode, status, 0, 0, (uint32_t)n, opaque, 0);
    buf_add(o, msg, n);
}

/* A success without body; quiet variants say nothing. */
static void ok(struct buf *o, const struct bin_aux *a, uint64_t cas)
{
    if (!a->quiet)
        bin_header(o, a->opcode, BS_OK, 0, 0, 0, a->opaque, cas);
}

/* get/getk/gat/gatk/touch and their quiet forms: hits are always sent. */
static void exec_get(struct exec_ctx *x, const struct req *r, const struct bin_aux *a,
                     struct buf *o)
{
    struct wstats *st = x->stats;
    bool touch = a->cmd == BIN_TOUCH || a->cmd == BIN_GAT || a->cmd == BIN_GATK;
    bool with_key = a->cmd == BIN_GETK || a->cmd == BIN_GATK;
    bool with_val = a->cmd != BIN_TOUCH;
    struct item_view iv;
    int rc = touch ? store_gat(x->store, r->key, r->klen, clock_exptime(r->exptime, x->now), &iv)
                   : store_get(x->store, r->key, r->klen, &iv);
    if (touch)
        STAT_INC(st, cmd_touch);
    else
        STAT_INC(st, cmd_get);
    if (rc != ST_OK) {
        if (touch)
            STAT_INC(st, touch_misses);
        else
            STAT_INC(st, get_misses);
        if (a->quiet)
            return;
        if (with_key) {
            bin_header(o, a->opcode, BS_ENOENT, 0, r->klen, r->klen, a->opaque, 0);
            buf_add(o, r->key, r->klen);
        } else {
            bin_error(o, a->opcode, a->opaque, BS_ENOENT);
        }
        return;
    }
    if (touch)
        STAT_INC(st, touch_hits);
    else
        STAT_INC(st, get_hits);
    uint16_t kl = with_key ? r->klen : 0;
    uint32_t vl = with_val ? iv.vlen : 0;
    buf_reserve(o, BIN_HDR_LEN + 4 + kl + (vl < PROTO_REF_MIN ? vl : 0));
    bin_header(o, a->opcode, BS_OK, 4, kl, 4 + kl + vl, a->opaque, iv.cas);
    unsigned char fl[4];
    put32(fl, iv.flags);
    buf_add(o, fl, 4);
    buf_add(o, r->key, kl);
    proto_add_value(x, o, &iv, vl);
}

static void exec_store(struct exec_ctx *x, const struct req *r, const struct bin_aux *a,
                       struct buf *o)
{
    struct wstats *st = x->stats;
    enum store_mode mode;
    switch (a->cmd) {
    case BIN_ADD:     mode = SM_ADD; break;
    case BIN_REPLACE: mode = SM_REPLACE; break;
    case BIN_APPEND:  mode = SM_APPEND; break;
    case BIN_PREPEND: mode = SM_PREPEND; break;
    default:          mode = SM_SET; break;
    }
    bool concat = mode == SM_APPEND || mode == SM_PREPEND;
    /* memcached: any CAS turns set/add/replace into a cas; append and
     * prepend only refuse a mismatching one. */
    if (r->cas && !concat)
        mode = SM_CAS;
    STAT_INC(st, cmd_set);
    uint64_t cas = 0;
    int rc = ST_OK;
    struct item_view iv;
    if (r->cas && concat && store_peek(x->store, r->key, r->klen, &iv) == ST_OK &&
        iv.cas != r->cas)
        rc = ST_EXISTS;
    if (rc == ST_OK)
        rc = store_put(x->store, mode, r->key, r->klen, r->val, r->vlen, r->flags,
                       clock_exptime(r->exptime, x->now), r->cas, &cas);
    if (mode == SM_CAS) {
        if (rc == ST_OK)
            STAT_INC(st, cas_hits);
        else if (rc == ST_EXISTS)
            STAT_INC(st, cas_badval);
        else if (rc == ST_NOT_FOUND)
            STAT_INC(st, cas_misses);
    }
    uint16_t status;
    switch (rc) {
    case ST_OK:
        ok(o, a, cas);
        return;
    case ST_EXISTS:    status = BS_EEXISTS; break;
    case ST_NOT_FOUND: status = BS_ENOENT; break;
    case ST_TOO_LARGE:
        STAT_INC(st, store_too_large);
        status = BS_E2BIG;
        break;
    case ST_NO_MEMORY:
        STAT_INC(st, store_no_memory);
        status = BS_ENOMEM;
        break;
    default:
        status = mode == SM_ADD ? BS_EEXISTS : mode == SM_REPLACE ? BS_ENOENT : BS_NOT_STORED;
        break;
    }
    bin_error(o, a->opcode, a->opaque, status);
}

static void exec_delete(struct exec_ctx *x, const struct req *r, const struct bin_aux *a,
                        struct buf *o)
{
    int rc = store_delete(x->store, r->key, r->klen, r->cas);
    if (rc == ST_OK) {
        STAT_INC(x->stats, delete_hits);
        ok(o, a, 0);
    } else if (rc == ST_EXISTS) {
        bin_error(o, a->opcode, a->opaque, BS_EEXISTS);
    } else {
        STAT_INC(x->stats, delete_misses);
        bin_error(o, a->opcode, a->opaque, BS_ENOENT);
    }
}

static void arith_reply(struct buf *o, const struct bin_aux *a, uint64_t value, uint64_t cas)
{
    if (a->quiet)
        return;
    unsigned char v[8];
    put64(v, value);
    bin_header(o, a->opcode, BS_OK, 0, 0, 8, a->opaque, cas);
    buf_add(o, v, 8);
}

static void exec_arith(struct exec_ctx *x, const struct req *r, const struct bin_aux *a,
                       struct buf *o)
{
    struct wstats *st = x->stats;
    bool incr = a->cmd == BIN_INCR;
    struct item_view iv;
    uint64_t value = 0, cas = 0;
    int rc = store_peek(x->store, r->key, r->klen, &iv);
    if (rc == ST_OK && r->cas && iv.cas != r->cas) {
        bin_error(o, a->opcode, a->opaque, BS_EEXISTS);
        return;
    }
    if (rc == ST_OK)
        rc = store_arith(x->store, r->key, r->klen, incr, r->delta, &value, &cas);
    switch (rc) {
    case ST_OK:
        if (incr)
            STAT_INC(st, incr_hits);
        else
            STAT_INC(st, decr_hits);
        arith_reply(o, a, value, cas);
        return;
    case ST_NON_NUMERIC:
        bin_error(o, a->opcode, a->opaque, BS_DELTA_BADVAL);
        return;
    case ST_MISS:
        break;
    default:
        bin_error(o, a->opcode, a->opaque, BS_ENOMEM);
        return;
    }
    if (a->exptime == 0xffffffffu) {
        if (incr)
            STAT_INC(st, incr_misses);
        else
            STAT_INC(st, decr_misses);
        bin_error(o, a->opcode, a->opaque, BS_ENOENT);
        return;
    }
    char num[24];
    int n = snprintf(num, sizeof num, "%llu", (unsigned long long)a->initial);
    rc = store_put(x->store, SM_ADD, r->key, r->klen, num, (size_t)n, 0,
                   clock_exptime(a->exptime, x->now), 0, &cas);
    if (rc == ST_OK)
        arith_reply(o, a, a->initial, cas);
    else if (rc == ST_NOT_STORED)
        bin_error(o, a->opcode, a->opaque, BS_NOT_STORED);
    else
        bin_error(o, a->opcode, a->opaque, BS_ENOMEM);
}

void bin_exec(struct exec_ctx *x, const struct req *r, struct buf *o)
{
    struct bin_aux a;
    memcpy(&a, r->aux, sizeof a);
    switch (a.cmd) {
    case BIN_GET: case BIN_GETK: case BIN_TOUCH: case BIN_GAT: case BIN_GATK:
        exec_get(x, r, &a, o);
        break;
    case BIN_SET: case BIN_ADD: case BIN_REPLACE: case BIN_APPEND: case BIN_PREPEND:
        exec_store(x, r, &a, o);
        break;
    case BIN_DELETE:
        exec_delete(x, r, &a, o);
        break;
    case BIN_INCR: case BIN_DECR:
        exec_arith(x, r, &a, o);
        break;
    default:
        bin_error(o, a.opcode, a.opaque, BS_UNKNOWN);
        break;
    }
}
