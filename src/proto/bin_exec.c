/*
 * bin_exec.c — decodes a keyed binary-protocol request (parsed by
 * bin_parse.c) into a command-layer call (cmd.c) and encodes the response packet
 * as memcached 1.6 does: status codes, error messages, CAS in the header,
 * quiet variants silent on success. Also the response encoders the parser
 * uses for the commands it answers itself. Runs on the key owner's worker.
 */
#include <arpa/inet.h>
#include <string.h>
#include "proto/bin.h"
#include "proto/cmd.h"


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
    bool touch = a->cmd == BIN_TOUCH || a->cmd == BIN_GAT || a->cmd == BIN_GATK;
    bool with_key = a->cmd == BIN_GETK || a->cmd == BIN_GATK;
    bool with_val = a->cmd != BIN_TOUCH;
    struct item_view iv;
    int rc = touch ? cmd_gat(x, r->key, r->klen, r->exptime, &iv)
                   : cmd_get(x, r->key, r->klen, &iv);
    if (rc != ST_OK) {
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
    uint16_t kl = with_key ? r->klen : 0;
    uint32_t vl = with_val ? iv.vlen : 0;
    buf_reserve(o, BIN_HDR_LEN + 4 + kl + (vl < PROTO_REF_MIN ? vl : 0));
    bin_header(o, a->opcode, BS_OK, 4, kl, 4 + kl + vl, a->opaque, store_view_cas(x->store, &iv));
    unsigned char fl[4];
    put32(fl, iv.flags);
    buf_add(o, fl, 4);
    buf_add(o, r->key, kl);
    proto_add_value(x, o, &iv, vl);
}

static void exec_store(struct exec_ctx *x, const struct req *r, const struct bin_aux *a,
                       struct buf *o)
{
    enum store_mode mode;
    switch (a->cmd) {
    case BIN_ADD:     mode = SM_ADD; break;
    case BIN_REPLACE: mode = SM_REPLACE; break;
    case BIN_APPEND:  mode = SM_APPEND; break;
    case BIN_PREPEND: mode = SM_PREPEND; break;
    default:          mode = SM_SET; break;
    }
    /* memcached: any CAS turns set/add/replace into a cas; append and
     * prepend only refuse a mismatching one. */
    if (r->cas && mode != SM_APPEND && mode != SM_PREPEND)
        mode = SM_CAS;
    struct cmd_put p = { .mode = mode, .key = r->key, .klen = r->klen, .val = r->val,
                         .vlen = r->vlen, .flags = r->flags, .exptime = r->exptime,
                         .cas = r->cas };
    uint64_t cas = 0;
    uint16_t status;
    switch (cmd_store(x, &p, &cas)) {
    case ST_OK:
        ok(o, a, cas);
        return;
    case ST_EXISTS:    status = BS_EEXISTS; break;
    case ST_NOT_FOUND: status = BS_ENOENT; break;
    case ST_TOO_LARGE: status = BS_E2BIG; break;
    case ST_NO_MEMORY: status = BS_ENOMEM; break;
    default:
        status = mode == SM_ADD ? BS_EEXISTS : mode == SM_REPLACE ? BS_ENOENT : BS_NOT_STORED;
        break;
    }
    bin_error(o, a->opcode, a->opaque, status);
}

static void exec_delete(struct exec_ctx *x, const struct req *r, const struct bin_aux *a,
                        struct buf *o)
{
    struct cmd_del d = { .key = r->key, .klen = r->klen, .cas = r->cas };
    int rc = cmd_delete(x, &d);
    if (rc == ST_OK)
        ok(o, a, 0);
    else
        bin_error(o, a->opcode, a->opaque, rc == ST_EXISTS ? BS_EEXISTS : BS_ENOENT);
}

static void exec_arith(struct exec_ctx *x, const struct req *r, const struct bin_aux *a,
                       struct buf *o)
{
    struct cmd_arith c = {
        .key = r->key, .klen = r->klen, .incr = a->cmd == BIN_INCR, .delta = r->delta,
        .cas = r->cas, .create = a->exptime != 0xffffffffu, .initial = a->initial,
        .exptime = a->exptime, .peek = true,
    };
    struct cmd_arith_res res;
    uint16_t status;
    switch (cmd_arith(x, &c, &res)) {
    case ST_OK:
        if (!a->quiet) {
            unsigned char v[8];
            put64(v, res.value);
            bin_header(o, a->opcode, BS_OK, 0, 0, 8, a->opaque, res.cas);
            buf_add(o, v, 8);
        }
        return;
    case ST_EXISTS:      status = BS_EEXISTS; break;
    case ST_NON_NUMERIC: status = BS_DELTA_BADVAL; break;
    case ST_MISS:        status = BS_ENOENT; break;
    case ST_NOT_STORED:  status = BS_NOT_STORED; break;
    default:             status = BS_ENOMEM; break;
    }
    bin_error(o, a->opcode, a->opaque, status);
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
