/*
 * exec.c — runs a keyed request on the owner's store, choosing the executor
 * of the protocol the request came in. Called on the owning worker only.
 */
#include <string.h>
#include "proto/prefix_stats.h"
#include "proto/bin.h"
#include "proto/proto.h"

void meta_exec(struct exec_ctx *x, const struct req *r, struct buf *out) __attribute__((weak));
void bin_exec(struct exec_ctx *x, const struct req *r, struct buf *out) __attribute__((weak));

void proto_add_value(struct exec_ctx *x, struct buf *o, const struct item_view *iv, uint32_t n)
{
    if (x->by_ref && n >= PROTO_REF_MIN) {
        store_pin(x->store, iv->loc);
        if (buf_ref(o, iv->val, n, x->self, iv->loc))
            return;
        store_unpin(x->store, iv->loc);
    }
    buf_add(o, iv->val, n);
}

/* What memcached 1.6.18 counts for `stats detail`: text and binary gets
 * (with touch/gat), storage commands and deletes; not incr/decr, not
 * touch in text, not meta commands. Returns false for the rest. */
static bool detail_kind(const struct req *r, enum pfx_kind *k)
{
    static const signed char text[] = {
        [OP_GET] = PFX_GET, [OP_GETS] = PFX_GET, [OP_GAT] = PFX_GET, [OP_GATS] = PFX_GET,
        [OP_SET] = PFX_SET, [OP_ADD] = PFX_SET, [OP_REPLACE] = PFX_SET,
        [OP_APPEND] = PFX_SET, [OP_PREPEND] = PFX_SET, [OP_CAS] = PFX_SET,
        [OP_DELETE] = PFX_DEL, [OP_INCR] = -1, [OP_DECR] = -1, [OP_TOUCH] = -1,
        [OP_META] = -1, [OP_BINARY] = -1,
    };
    if (r->proto == PROTO_TEXT && r->op < sizeof text) {
        if (text[r->op] < 0)
            return false;
        *k = (enum pfx_kind)text[r->op];
        return true;
    }
    if (r->proto != PROTO_BINARY || r->auxlen < sizeof(struct bin_aux))
        return false;
    struct bin_aux a;
    memcpy(&a, r->aux, sizeof a);
    switch (a.cmd) {
    case BIN_GET: case BIN_GETK: case BIN_TOUCH: case BIN_GAT: case BIN_GATK:
        *k = PFX_GET;
        return true;
    case BIN_SET: case BIN_ADD: case BIN_REPLACE: case BIN_APPEND: case BIN_PREPEND:
        *k = PFX_SET;
        return true;
    case BIN_DELETE:
        *k = PFX_DEL;
        return true;
    default:
        return false;
    }
}

void proto_exec(struct exec_ctx *x, const struct req *r, struct buf *out)
{
    x->cfd = r->cfd;
    enum pfx_kind k;
    if (x->pfx && pfx_enabled() && detail_kind(r, &k)) {
        struct item_view iv;
        bool hit = k == PFX_GET && store_peek(x->store, r->key, r->klen, &iv) == ST_OK;
        pfx_record(x->pfx, r->key, r->klen, k, hit);
    }
    switch (r->proto) {
    case PROTO_META:
        if (meta_exec) {
            meta_exec(x, r, out);
            return;
        }
        break;
    case PROTO_BINARY:
        if (bin_exec) {
            bin_exec(x, r, out);
            return;
        }
        break;
    default:
        break;
    }
    text_exec(x, r, out);
}
