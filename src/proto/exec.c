/*
 * exec.c — runs a keyed request on the owner's store, choosing the executor
 * of the protocol the request came in. Called on the owning worker only.
 */
#include "proto/proto.h"

void meta_exec(struct exec_ctx *x, const struct req *r, struct buf *out) __attribute__((weak));
void bin_exec(struct exec_ctx *x, const struct req *r, struct buf *out) __attribute__((weak));

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
