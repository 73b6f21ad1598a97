/*
 * text_exec.c — decodes a text-protocol request into a command-layer call
 * (proto/cmd.c) and encodes memcached's reply. Runs on the worker that owns
 * the key; the reply buffer then travels back to the connection's worker if
 * needed.
 */
#include "proto/exec.h"

static void line(struct buf *o, const char *s)
{
    buf_adds(o, s);
    buf_add(o, "\r\n", 2);
}

static const enum store_mode op_mode[] = {
    [OP_SET] = SM_SET, [OP_ADD] = SM_ADD, [OP_REPLACE] = SM_REPLACE,
    [OP_APPEND] = SM_APPEND, [OP_PREPEND] = SM_PREPEND, [OP_CAS] = SM_CAS,
};

static const char *store_msg(int rc)
{
    switch (rc) {
    case ST_OK:        return "STORED";
    case ST_EXISTS:    return "EXISTS";
    case ST_NOT_FOUND: return "NOT_FOUND";
    case ST_TOO_LARGE: return "SERVER_ERROR object too large for cache";
    case ST_NO_MEMORY: return "SERVER_ERROR out of memory storing object";
    default:           return "NOT_STORED";
    }
}

static void exec_arith(struct exec_ctx *x, const struct req *r, struct buf *o)
{
    struct cmd_arith a = { .key = r->key, .klen = r->klen, .incr = r->op == OP_INCR,
                           .delta = r->delta };
    struct cmd_arith_res res;
    int rc = cmd_arith(x, &a, &res);
    if (r->noreply)
        return;
    if (rc == ST_OK) {
        buf_add_u64(o, res.value);
        buf_add(o, "\r\n", 2);
    } else if (rc == ST_NON_NUMERIC) {
        line(o, "CLIENT_ERROR cannot increment or decrement non-numeric value");
    } else if (rc == ST_NO_MEMORY) {
        line(o, "SERVER_ERROR out of memory");
    } else {
        line(o, "NOT_FOUND");
    }
}

void text_exec(struct exec_ctx *x, const struct req *r, struct buf *o)
{
    struct item_view iv;
    int rc;

    switch (r->op) {
    case OP_GET:
    case OP_GETS:
        if (cmd_get(x, r->key, r->klen, &iv) == ST_OK)
            text_encode_value(x, o, &iv, r->op == OP_GETS);
        break;
    case OP_GAT:
    case OP_GATS:
        if (cmd_gat(x, r->key, r->klen, r->exptime, &iv) == ST_OK)
            text_encode_value(x, o, &iv, r->op == OP_GATS);
        break;
    case OP_SET: case OP_ADD: case OP_REPLACE:
    case OP_APPEND: case OP_PREPEND: case OP_CAS: {
        struct cmd_put p = { .mode = op_mode[r->op], .key = r->key, .klen = r->klen,
                             .val = r->val, .vlen = r->vlen, .flags = r->flags,
                             .exptime = r->exptime, .cas = r->cas };
        rc = cmd_store(x, &p, NULL);
        if (!r->noreply)
            line(o, store_msg(rc));
        break;
    }
    case OP_DELETE: {
        struct cmd_del d = { .key = r->key, .klen = r->klen };
        rc = cmd_delete(x, &d);
        if (!r->noreply)
            line(o, rc == ST_OK ? "DELETED" : "NOT_FOUND");
        break;
    }
    case OP_DROP:
        store_delete(x->store, r->key, r->klen, 0);
        break;
    case OP_INCR:
    case OP_DECR:
        exec_arith(x, r, o);
        break;
    case OP_TOUCH:
        rc = cmd_touch(x, r->key, r->klen, r->exptime);
        if (!r->noreply)
            line(o, rc == ST_OK ? "TOUCHED" : "NOT_FOUND");
        break;
    default:
        line(o, "SERVER_ERROR unhandled request");
        break;
    }
}
