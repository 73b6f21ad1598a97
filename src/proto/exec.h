/*
 * exec.h — proto_exec(), the one door from a parsed keyed request to the
 * store and back, and the text get that most requests are, inline: every
 * local request passes here, and a call through text_exec()'s switch cost
 * a fifth of what the get itself did. Runs on the key owner's worker (the
 * store and the exec context are that worker's).
 */
#ifndef PERCORE_PROTO_EXEC_H
#define PERCORE_PROTO_EXEC_H

#include <string.h>
#include "proto/cmd.h"

/* memcached's `VALUE <key> <flags> <bytes> [<cas>]\r\n<data>\r\n`. */
static inline __attribute__((always_inline)) void
text_encode_value(struct exec_ctx *x, struct buf *o, const struct item_view *iv, bool with_cas)
{
    /* The header is written in place: one capacity check for all of it
     * (6 + 1 + 10 + 1 + 10 + 1 + 20 + 2 bytes at most besides the key). */
    if (!buf_reserve(o, iv->klen + (iv->vlen < PROTO_REF_MIN ? iv->vlen : 0) + 64))
        return;
    char *p = o->data + o->len;
    memcpy(p, "VALUE ", 6);
    p += 6;
    memcpy(p, iv->key, iv->klen);
    p += iv->klen;
    *p++ = ' ';
    p += buf_dec(p, iv->flags);
    *p++ = ' ';
    p += buf_dec(p, iv->vlen);
    if (with_cas) {
        *p++ = ' ';
        p += buf_dec(p, store_view_cas(x->store, iv));
    }
    *p++ = '\r';
    *p++ = '\n';
    if (iv->vlen < PROTO_REF_MIN) {
        /* Small values are copied (cheaper than a reference), into the room
         * reserved above with the header's. */
        memcpy(p, iv->val, iv->vlen);
        p += iv->vlen;
        *p++ = '\r';
        *p++ = '\n';
        o->len = (size_t)(p - o->data);
        return;
    }
    o->len = (size_t)(p - o->data);
    proto_add_value(x, o, iv, iv->vlen);
    buf_add(o, "\r\n", 2);
}

/* get / gets (text): a miss writes nothing; END comes from the parser. */
static inline __attribute__((always_inline)) void
text_exec_get(struct exec_ctx *x, const struct req *r, struct buf *o)
{
    struct item_view iv;
    if (cmd_get(x, r->key, r->klen, &iv) == ST_OK)
        text_encode_value(x, o, &iv, r->op == OP_GETS);
}

/* Execute a keyed request on the owner's store; append its reply to out. */
static inline __attribute__((always_inline)) void
proto_exec(struct exec_ctx *x, const struct req *r, struct buf *out)
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
        if (r->op == OP_GET || r->op == OP_GETS)
            text_exec_get(x, r, out);
        else
            text_exec(x, r, out);
        break;
    }
}

#endif
