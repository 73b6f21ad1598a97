/*
 * exec.c — runs a keyed request on the owner's store, choosing the executor
 * of the protocol the request came in. Called on the owning worker only.
 */
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

void proto_exec(struct exec_ctx *x, const struct req *r, struct buf *out)
{
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
