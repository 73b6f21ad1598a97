/*
 * bin_parse.c — the memcached binary protocol's parser: frames 24-byte
 * headers, validates them as memcached 1.6 does (same checks, same status
 * codes, same "close after this reply" cases), sends keyed commands to the
 * key's owner through the sink and answers the others (noop, version,
 * stat, flush, quit, verbosity, SASL) itself, in order. State: a struct
 * bin_state the session holds as its protocol state (struct proto_ops),
 * owned by the session's worker. With -S it also holds the session's SASL
 * conversation (proto/auth.h) and whether it has authenticated.
 */
#include <stdlib.h>
#include <string.h>
#include "proto/auth.h"
#include "proto/bin.h"
#include "proto/cmd.h"
#include "proto/proto.h"

/* Largest SASL message accepted (a PLAIN or SCRAM message is well under
 * a kilobyte). */
#define SASL_DATA_MAX 4096
/* Longest SASL mechanism name (memcached's MAX_SASL_MECH_LEN). */
#define SASL_MECH_MAX 32

struct bin_state {
    uint64_t swallow;     /* body bytes still to discard (refused value, unknown command) */
    struct sasl_session *sasl;   /* -S: this session's SASL conversation */
    bool     authed;      /* -S: a SASL exchange succeeded */
    bool     costly;      /* the packet just handled ran a SASL step */
};

struct bin_hdr {
    uint8_t  opcode;
    uint8_t  extlen;
    uint16_t keylen;
    uint32_t bodylen;
    uint32_t opaque;      /* raw */
    uint64_t cas;
    const unsigned char *ext, *key;
};

static uint16_t get16(const unsigned char *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get64(const unsigned char *p)
{
    return (uint64_t)get32(p) << 32 | get32(p + 4);
}

/* The quiet variant's base command, or the opcode itself. */
static uint8_t base_cmd(uint8_t op, bool *quiet)
{
    static const uint8_t q[][2] = {
        { BIN_SETQ, BIN_SET }, { BIN_ADDQ, BIN_ADD }, { BIN_REPLACEQ, BIN_REPLACE },
        { BIN_DELETEQ, BIN_DELETE }, { BIN_INCRQ, BIN_INCR }, { BIN_DECRQ, BIN_DECR },
        { BIN_QUITQ, BIN_QUIT }, { BIN_FLUSHQ, BIN_FLUSH }, { BIN_APPENDQ, BIN_APPEND },
        { BIN_PREPENDQ, BIN_PREPEND }, { BIN_GETQ, BIN_GET }, { BIN_GETKQ, BIN_GETK },
        { BIN_GATQ, BIN_GAT }, { BIN_GATKQ, BIN_GATK },
    };
    for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) {
        if (q[i][0] == op) {
            *quiet = true;
            return q[i][1];
        }
    }
    *quiet = false;
    return op;
}

static void submit(const struct proto_sink *sk, void *s, const struct bin_hdr *h, uint8_t cmd,
                   bool quiet, const char *val, uint32_t vlen)
{
    struct bin_aux a = {0};
    a.opcode = h->opcode;
    a.cmd = cmd;
    a.quiet = quiet;
    a.opaque = h->opaque;
    struct req r = {0};
    r.op = OP_BINARY;
    r.proto = PROTO_BINARY;
    r.noreply = quiet;
    r.key = (const char *)h->key;
    r.klen = (uint8_t)h->keylen;
    r.cas = h->cas;
    r.val = val;
    r.vlen = vlen;
    switch (cmd) {
    case BIN_SET: case BIN_ADD: case BIN_REPLACE:
        r.flags = get32(h->ext);
        r.exptime = get32(h->ext + 4);
        break;
    case BIN_INCR: case BIN_DECR:
        r.delta = get64(h->ext);
        a.initial = get64(h->ext + 8);
        a.exptime = get32(h->ext + 16);
        r.exptime = a.exptime;
        break;
    case BIN_TOUCH: case BIN_GAT: case BIN_GATK:
        r.exptime = get32(h->ext);
        break;
    default:
        break;
    }
    r.aux = (const char *)&a;
    r.auxlen = sizeof a;
    sk->request(s, &r);
}

enum verdict { V_NEXT, V_WAIT, V_CLOSE };

/* -S: what memcached lets a session that has not authenticated send. */
static bool sasl_open_cmd(uint8_t opcode)
{
    return opcode == BIN_SASL_LIST || opcode == BIN_SASL_AUTH || opcode == BIN_SASL_STEP ||
           opcode == BIN_VERSION;
}

/* -S: SASL_AUTH (start) or SASL_STEP with the whole body here: run the
 * exchange and answer as memcached does ("Authenticated", a challenge
 * with AUTH_CONTINUE, or "Auth failure."), counting the outcome. */
static void sasl_cmd(struct bin_state *st, const struct proto_sink *sk, void *s,
                     const struct bin_hdr *h)
{
    const char *out;
    unsigned outlen;
    uint32_t dlen = h->bodylen - h->keylen;
    enum sasl_res r = sasl_exchange(&st->sasl, h->opcode == BIN_SASL_STEP,
                                    (const char *)h->key, h->keylen,
                                    (const char *)h->key + h->keylen, dlen, &out, &outlen);
    struct buf *o = sk->output(s);
    switch (r) {
    case SASL_RES_OK:
        st->authed = true;
        bin_header(o, h->opcode, BS_OK, 0, 0, 13, h->opaque, 0);
        buf_add(o, "Authenticated", 13);
        break;
    case SASL_RES_CONTINUE:
        bin_header(o, h->opcode, BS_AUTH_CONTINUE, 0, 0, outlen, h->opaque, 0);
        buf_add(o, out, outlen);
        return;   /* not counted until the exchange ends, as memcached */
    default:
        bin_error(o, h->opcode, h->opaque, BS_AUTH_ERROR);
        break;
    }
    if (sk->counters)
        cmd_count_auth(sk->counters(s), r == SASL_RES_OK);
}

/* Handle one packet whose header, extras and key are in p[0..avail).
 * Sets *used to the bytes consumed (the rest of a body may be left to
 * st->swallow) or *need when more input is required. */
static enum verdict one(struct bin_state *st, const struct proto_conf *cf,
                        const struct proto_sink *sk, void *s, const unsigned char *p,
                        size_t avail, size_t *used, size_t *need)
{
    struct bin_hdr h;
    h.opcode = p[1];
    h.keylen = get16(p + 2);
    h.extlen = p[4];
    h.bodylen = get32(p + 8);
    memcpy(&h.opaque, p + 12, 4);
    h.cas = get64(p + 16);
    h.ext = p + BIN_HDR_LEN;
    h.key = h.ext + h.extlen;
    size_t head = BIN_HDR_LEN + (size_t)h.extlen + h.keylen;
    if (avail < head) {
        *need = head;
        return V_WAIT;
    }
    struct buf *o;
    uint32_t kl = h.keylen, el = h.extlen, bl = h.bodylen;
    if (kl > bl || kl + el > bl) {
        bin_error(sk->output(s), h.opcode, h.opaque, BS_UNKNOWN);
        return V_CLOSE;
    }
    if (cf->auth_sasl && !st->authed && !sasl_open_cmd(h.opcode)) {
        /* memcached: "Auth failure.", then close, before judging the packet */
        bin_error(sk->output(s), h.opcode, h.opaque, BS_AUTH_ERROR);
        return V_CLOSE;
    }
    if (kl > KEY_MAX_LENGTH) {
        bin_error(sk->output(s), h.opcode, h.opaque, BS_EINVAL);
        return V_CLOSE;
    }
    bool quiet;
    uint8_t cmd = base_cmd(h.opcode, &quiet);
    bool valid = true;
    *used = head;
    switch (cmd) {
    case BIN_VERSION:
        if ((valid = el == 0 && kl == 0 && bl == 0)) {
            o = sk->output(s);
            bin_header(o, h.opcode, BS_OK, 0, 0, sizeof PROTO_VERSION - 1, h.opaque, 0);
            buf_add(o, PROTO_VERSION, sizeof PROTO_VERSION - 1);
        }
        break;
    case BIN_NOOP:
        if ((valid = el == 0 && kl == 0 && bl == 0))
            bin_header(sk->output(s), h.opcode, BS_OK, 0, 0, 0, h.opaque, 0);
        break;
    case BIN_VERBOSITY:
        /* memcached 1.6 dropped this opcode (and then mis-frames the next
         * packet); answer as 1.4/1.5 did. */
        if ((valid = el == 4 && kl == 0 && bl == 4))
            bin_header(sk->output(s), h.opcode, BS_OK, 0, 0, 0, h.opaque, 0);
        break;
    case BIN_QUIT:
        if ((valid = el == 0 && kl == 0 && bl == 0)) {
            if (!quiet)
                bin_header(sk->output(s), h.opcode, BS_OK, 0, 0, 0, h.opaque, 0);
            sk->quit(s);
            return V_CLOSE;
        }
        break;
    case BIN_FLUSH:
        if ((valid = kl == 0 && bl == el && (el == 0 || el == 4))) {
            if (!cf->flush_ok) {
                bin_error(sk->output(s), h.opcode, h.opaque, BS_AUTH_ERROR);
                break;
            }
            struct buf ok = {0};
            if (!quiet)
                bin_header(&ok, h.opcode, BS_OK, 0, 0, 0, h.opaque, 0);
            sk->flush_all(s, el == 4 ? (int64_t)get32(h.ext) : 0, ok.data, ok.len);
            buf_free(&ok);
        }
        break;
    case BIN_STAT:
        if (el == 0 && sk->settled && !sk->settled(s)) {
            /* parsed again once the earlier requests are counted (as text) */
            *need = head;
            return V_WAIT;
        }
        if ((valid = el == 0)) {
            /* memcached answers a usage error of a bare "detail" with only
             * the terminator, of anything longer with "not found". */
            bool bare = kl == 6 || (kl == 7 && h.key[6] == ' ');
            struct stats_out so;
            stats_out_binary(&so, sk->output(s), h.opcode, h.opaque, bare);
            sk->stats(s, (const char *)h.key, kl, &so);
        }
        break;
    case BIN_SASL_LIST:
        if (!(valid = el == 0 && kl == 0 && bl == 0))
            break;
        o = sk->output(s);
        if (cf->auth_sasl) {
            size_t n;
            const char *m = sasl_mechs(&n);
            bin_header(o, h.opcode, BS_OK, 0, 0, (uint32_t)n, h.opaque, 0);
            buf_add(o, m, n);
        } else {
            bin_error(o, h.opcode, h.opaque, BS_UNKNOWN);
        }
        break;
    case BIN_SASL_AUTH:
    case BIN_SASL_STEP:
        if (!(valid = el == 0 && kl != 0))
            break;
        if (!cf->auth_sasl) {
            /* No SASL here: unknown command, as memcached without -S. */
            bin_error(sk->output(s), h.opcode, h.opaque, BS_UNKNOWN);
            st->swallow = bl - kl;
            break;
        }
        if (kl > SASL_MECH_MAX || bl - kl > SASL_DATA_MAX) {
            bin_error(sk->output(s), h.opcode, h.opaque, BS_EINVAL);
            st->swallow = bl - kl;
            break;
        }
        if (avail < BIN_HDR_LEN + (size_t)bl) {
            *need = BIN_HDR_LEN + (size_t)bl;
            return V_WAIT;
        }
        sasl_cmd(st, sk, s, &h);
        st->costly = true;
        *used = BIN_HDR_LEN + (size_t)bl;
        break;
    case BIN_GET:
    case BIN_GETK:
        if ((valid = el == 0 && bl == kl && kl > 0))
            submit(sk, s, &h, cmd, quiet, NULL, 0);
        break;
    case BIN_DELETE:
        if ((valid = kl > 0 && el == 0 && bl == kl))
            submit(sk, s, &h, cmd, quiet, NULL, 0);
        break;
    case BIN_INCR:
    case BIN_DECR:
        if ((valid = kl > 0 && el == 20 && bl == kl + el))
            submit(sk, s, &h, cmd, quiet, NULL, 0);
        break;
    case BIN_TOUCH:
    case BIN_GAT:
    case BIN_GATK:
        /* memcached checks neither bodylen nor consumes more than this. */
        if ((valid = el == 4 && kl != 0))
            submit(sk, s, &h, cmd, quiet, NULL, 0);
        break;
    case BIN_SET:
    case BIN_ADD:
    case BIN_REPLACE:
    case BIN_APPEND:
    case BIN_PREPEND: {
        bool concat = cmd == BIN_APPEND || cmd == BIN_PREPEND;
        if (concat ? !(kl > 0 && el == 0) : !(el == 8 && kl != 0 && bl >= kl + 8)) {
            valid = false;
            break;
        }
        size_t vlen = bl - kl - el;
        if (proto_too_large(cf, kl, concat ? 0 : get32(h.ext), vlen)) {
            bin_error(sk->output(s), h.opcode, h.opaque, BS_E2BIG);
            /* a refused set drops the old value, as memcached does */
            proto_refuse_large(sk, s, (const char *)h.key, kl, cmd == BIN_SET);
            st->swallow = vlen;
            break;
        }
        if (avail < BIN_HDR_LEN + (size_t)bl) {
            *need = BIN_HDR_LEN + (size_t)bl;
            return V_WAIT;
        }
        submit(sk, s, &h, cmd, quiet, (const char *)h.key + kl, (uint32_t)vlen);
        *used = BIN_HDR_LEN + (size_t)bl;
        break;
    }
    default:
        /* memcached also discards the body here, though it starts counting
         * after the extras and key it already read (and so eats into the
         * next packet); we discard exactly the body. */
        bin_error(sk->output(s), h.opcode, h.opaque, BS_UNKNOWN);
        st->swallow = bl - kl - el;
        break;
    }
    if (!valid) {
        /* memcached: "Invalid arguments", then close the connection */
        bin_error(sk->output(s), h.opcode, h.opaque, BS_EINVAL);
        return V_CLOSE;
    }
    return V_NEXT;
}

static ssize_t bin_parse(void **state, const struct proto_conf *cf,
                         const struct proto_sink *sk, void *c,
                         const char *data, size_t len, size_t *need)
{
    struct bin_state *st = *state;
    if (!st) {
        st = calloc(1, sizeof *st);
        if (!st)
            return -1;
        *state = st;
    }
    size_t off = 0;
    *need = 0;
    while (off < len) {
        if (st->swallow) {
            size_t n = len - off < st->swallow ? len - off : (size_t)st->swallow;
            off += n;
            st->swallow -= n;
            continue;
        }
        if (sk->busy(c))
            break;
        const unsigned char *p = (const unsigned char *)data + off;
        size_t avail = len - off;
        if (avail < BIN_HDR_LEN) {
            *need = BIN_HDR_LEN;
            break;
        }
        if (p[0] != BIN_REQ_MAGIC)
            return -1;   /* memcached drops the connection at once, unanswered */
        size_t used = 0, want = 0;
        enum verdict v = one(st, cf, sk, c, p, avail, &used, &want);
        if (v == V_WAIT) {
            *need = want;
            break;
        }
        if (v == V_CLOSE) {
            sk->quit(c);
            return (ssize_t)len;
        }
        off += used;
        if (st->costly && sk->yield) {
            /* A SASL step costs up to milliseconds (SCRAM's key
             * derivation): one per session per loop iteration, so a
             * password guesser cannot hold the worker. */
            st->costly = false;
            sk->yield(c);
            break;
        }
    }
    return (ssize_t)off;
}

static void bin_state_free(void **state)
{
    struct bin_state *st = *state;
    if (st)
        sasl_session_free(&st->sasl);
    free(st);
    *state = NULL;
}

static bool bin_detect(const char *data, size_t len)
{
    return len > 0 && (unsigned char)data[0] == BIN_REQ_MAGIC;
}

const struct proto_ops proto_binary = {
    .name = "binary", .detect = bin_detect, .parse = bin_parse, .state_free = bin_state_free,
};
