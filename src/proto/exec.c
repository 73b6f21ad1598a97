/*
 * exec.c — the two dispatch points of src/proto: proto_detect() picks a
 * session's protocol table from its first bytes (the session's worker),
 * proto_exec() runs a keyed request with the executor of the protocol it
 * came in (the key owner's worker). No state of its own.
 */
#include "proto/prefix_stats.h"
#include "proto/proto.h"

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
    x->cfd = r->cfd;
    /* memcached's `stats detail` counts text and binary commands, not meta
     * (which commands, cmd.c decides). */
    x->detail = x->pfx && r->proto != PROTO_META && pfx_enabled();
    switch (r->proto) {
    case PROTO_META:
        meta_exec(x, r, out);
        break;
    case PROTO_BINARY:
        bin_exec(x, r, out);
        break;
    default:
        text_exec(x, r, out);
        break;
    }
}

const struct proto_ops *proto_detect(const char *data, size_t len)
{
    /* Text claims everything, so it is asked last. */
    static const struct proto_ops *const order[] = { &proto_binary };
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        if (order[i]->detect(data, len))
            return order[i];
    return &proto_text;
}
