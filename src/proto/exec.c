/*
 * exec.c — proto_detect() picks a session's protocol table from its first
 * bytes (the session's worker); proto_add_value() appends a value, by
 * reference or copied (the key owner's worker). proto_exec(), the other
 * dispatch point, is inline in proto.h. No state of its own.
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

const struct proto_ops *proto_detect(const char *data, size_t len)
{
    /* Text claims everything, so it is asked last. */
    static const struct proto_ops *const order[] = { &proto_binary };
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        if (order[i]->detect(data, len))
            return order[i];
    return &proto_text;
}
