/*
 * meta_exec.c — decodes a meta request (mg/ms/md/ma/me, parsed by
 * meta_parse.c) into command-layer calls (cmd.c) and encodes memcached
 * 1.6's reply. Runs on the worker that owns the key; every step of one request
 * (look-up, compare, write, flag bits) happens in one call on that thread,
 * so what memcached does under its item lock is atomic here by
 * construction.
 */
#include <stdio.h>
#include <string.h>
#include "util/clock.h"
#include "proto/cmd.h"
#include "proto/meta.h"


struct mctx {
    struct meta_hdr h;
    const char *text;     /* compacted flags, h.ntext bytes */
    const struct req *r;
};

static void add_char(struct buf *o, char c)
{
    char sp[2] = {' ', c};
    buf_add(o, sp, 2);
}

static void add_key(struct buf *o, const struct mctx *m)
{
    add_char(o, 'k');
    if (m->h.bits & MF_BINKEY) {
        char tmp[KEY_MAX_LENGTH * 2];
        size_t n = meta_b64_encode((const unsigned char *)m->r->key, m->r->klen, tmp, sizeof tmp);
        buf_add(o, tmp, n);
        buf_add(o, " b", 2);
    } else {
        buf_add(o, m->r->key, m->r->klen);
    }
}

/* Iterates the compacted flags: each flag letter, O tokens whole. */
struct fiter {
    const char *p, *e;
};

static struct fiter fiter(const struct mctx *m)
{
    return (struct fiter){m->text, m->text + m->h.ntext};
}

static bool fnext(struct fiter *it, const char **tok, size_t *n)
{
    if (it->p >= it->e)
        return false;
    const char *q = memchr(it->p, ' ', (size_t)(it->e - it->p));
    if (!q)
        q = it->e;
    *tok = it->p;
    *n = (size_t)(q - it->p);
    it->p = q + 1;
    return true;
}

/* O and k: echoed by every reply that carries flags back. Returns false
 * for any other flag, which the caller may encode itself. */
static bool echo_flag(struct buf *o, const struct mctx *m, const char *p, size_t n)
{
    if (*p == 'O') {
        buf_add(o, " ", 1);
        buf_add(o, p, n);
        return true;
    }
    if (*p == 'k') {
        add_key(o, m);
        return true;
    }
    return false;
}

/* What every reply carries back, hit or miss. */
static void add_echo(struct buf *o, const struct mctx *m)
{
    const char *p;
    size_t n;
    for (struct fiter it = fiter(m); fnext(&it, &p, &n);)
        echo_flag(o, m, p, n);
}

static void add_ttl(struct buf *o, uint32_t exp, uint32_t now)
{
    add_char(o, 't');
    if (exp == 0)
        buf_add(o, "-1", 2);
    else
        buf_add_u64(o, (uint32_t)(exp - now));   /* wraps like memcached's */
}

static void end_line(struct buf *o)
{
    buf_add(o, "\r\n", 2);
}

/* ---- mg ---------------------------------------------------------------- */

static void exec_mg(struct exec_ctx *x, const struct mctx *m, struct buf *o)
{
    const struct req *r = m->r;
    struct item_view iv;
    bool created, won = false, ttl_set = false;
    int rc = cmd_lookup(x, r->key, r->klen, !(m->h.bits & MF_NOBUMP),
                        (m->h.bits & MF_VIVIFY) != 0, &iv, &created);
    if (rc != ST_OK) {
        /* memcached counts a miss as a get miss even with T (no touch) */
        cmd_count_fetch(x, false, false);
        if (r->noreply)
            return;
        buf_add(o, "EN", 2);
        add_echo(o, m);
        end_line(o);
        return;
    }

    buf_reserve(o, iv.vlen + 128);
    if (m->h.bits & MF_VALUE) {
        buf_add(o, "VA ", 3);
        buf_add_u64(o, iv.vlen);
    } else {
        buf_add(o, "HD", 2);
    }
    uint32_t exp = iv.exptime;
    const char *p;
    size_t n;
    /* memcached keeps per item whether its key came base64-encoded, and an
     * item vivified by N gets no such mark: its `k` is the plain key even
     * when the request carried `b`. (Other items: see docs/protocols.md.) */
    struct mctx plain;
    if (created && (m->h.bits & MF_BINKEY)) {
        plain = *m;
        plain.h.bits &= ~MF_BINKEY;
        m = &plain;
    }
    for (struct fiter it = fiter(m); fnext(&it, &p, &n);) {
        switch (*p) {
        case 'T':
            ttl_set = true;
            exp = clock_exptime(m->h.ttl, x->now);
            break;
        case 'N':
            if (created) {
                exp = clock_exptime(m->h.viv_ttl, x->now);
                won = true;
            }
            break;
        case 'R':
            if (!(iv.mbits & ITEM_WIN_SENT) && !created && exp != 0 &&
                exp < clock_exptime(m->h.recache, x->now))
                won = true;
            break;
        case 's':
            add_char(o, 's');
            buf_add_u64(o, iv.vlen);
            break;
        case 't':
            add_ttl(o, exp, x->now);
            break;
        case 'c':
            add_char(o, 'c');
            buf_add_u64(o, store_view_cas(x->store, &iv));
            break;
        case 'f':
            add_char(o, 'f');
            buf_add_u64(o, iv.flags);
            break;
        case 'l':
            add_char(o, 'l');
            buf_add_u64(o, (uint32_t)(x->now - iv.atime));
            break;
        case 'h':
            add_char(o, 'h');
            buf_add(o, (iv.mbits & ITEM_FETCHED) ? "1" : "0", 1);
            break;
        default:
            echo_flag(o, m, p, n);
            break;
        }
    }
    if (iv.mbits & ITEM_WIN_SENT)
        add_char(o, 'Z');
    if (iv.mbits & ITEM_STALE) {
        add_char(o, 'X');
        if (!(iv.mbits & ITEM_WIN_SENT))
            won = true;
    }
    if (won)
        add_char(o, 'W');
    end_line(o);
    if (m->h.bits & MF_VALUE) {
        proto_add_value(x, o, &iv, iv.vlen);
        end_line(o);
    }
    /* The view is dead after these. */
    if (exp != iv.exptime)
        cmd_set_ttl(x, r->key, r->klen, exp);
    if (won)
        cmd_set_mbits(x, r->key, r->klen, ITEM_WIN_SENT, 0);
    cmd_count_fetch(x, ttl_set, true);
}

/* ---- ms ---------------------------------------------------------------- */

static void exec_ms(struct exec_ctx *x, const struct mctx *m, struct buf *o)
{
    const struct req *r = m->r;
    enum store_mode mode = SM_SET;
    switch (m->h.mode) {
    case 'E': mode = SM_ADD; break;
    case 'A': mode = SM_APPEND; break;
    case 'P': mode = SM_PREPEND; break;
    case 'R': mode = SM_REPLACE; break;
    default:  break;
    }
    bool has_cas = m->h.bits & MF_CAS;
    if (has_cas && (mode == SM_SET || mode == SM_REPLACE))
        mode = SM_CAS;
    struct cmd_put put = {
        .mode = mode, .opts = CMD_META_CAS | ((m->h.bits & MF_STALE) ? CMD_STALE : 0),
        .key = r->key, .klen = r->klen, .val = r->val, .vlen = r->vlen,
        .flags = m->h.client_flags, .exptime = (m->h.bits & MF_NEWTTL) ? m->h.ttl : 0,
        .cas = has_cas ? m->h.cas : 0,
    };
    /* the new CAS only when the reply carries it (c): one handed out
     * costs the item an 8-byte field when the store moves it */
    bool want_cas = false;
    const char *p;
    size_t n;
    for (struct fiter it = fiter(m); fnext(&it, &p, &n);)
        want_cas |= *p == 'c';
    uint64_t cas = 0;
    int rc = cmd_store(x, &put, want_cas ? &cas : NULL);

    const char *code;
    switch (rc) {
    case ST_OK:
        if (r->noreply)
            return;
        code = "HD";
        break;
    case ST_EXISTS:    code = "EX"; break;
    case ST_NOT_FOUND: code = "NF"; break;
    case ST_NOT_STORED: code = "NS"; break;
    case ST_TOO_LARGE:
        buf_adds(o, "SERVER_ERROR object too large for cache\r\n");
        return;
    default:
        buf_adds(o, "SERVER_ERROR out of memory storing object\r\n");
        return;
    }
    buf_add(o, code, 2);
    for (struct fiter it = fiter(m); fnext(&it, &p, &n);) {
        if (!echo_flag(o, m, p, n) && *p == 'c') {
            add_char(o, 'c');
            buf_add_u64(o, rc == ST_OK ? cas : 0);
        }
    }
    end_line(o);
}

/* ---- md ---------------------------------------------------------------- */

static void exec_md(struct exec_ctx *x, const struct mctx *m, struct buf *o)
{
    const struct req *r = m->r;
    struct cmd_del d = {
        .key = r->key, .klen = r->klen, .cas = m->h.cas, .has_cas = (m->h.bits & MF_CAS) != 0,
        .stale = (m->h.bits & MF_STALE) != 0, .new_ttl = (m->h.bits & MF_NEWTTL) != 0,
        .exptime = m->h.ttl,
    };
    const char *code;
    switch (cmd_delete(x, &d)) {
    case ST_OK:     code = "HD"; break;
    case ST_EXISTS: code = "EX"; break;
    case ST_MISS:   code = "NF"; break;
    default:
        buf_adds(o, "SERVER_ERROR out of memory\r\n");
        return;
    }
    if (code[0] == 'H' && r->noreply)
        return;
    buf_add(o, code, 2);
    add_echo(o, m);
    end_line(o);
}

/* ---- ma ---------------------------------------------------------------- */

static void exec_ma(struct exec_ctx *x, const struct mctx *m, struct buf *o)
{
    const struct req *r = m->r;
    struct cmd_arith c = {
        .key = r->key, .klen = r->klen, .incr = !(m->h.mode == 'D' || m->h.mode == '-'),
        .create = (m->h.bits & MF_VIVIFY) != 0, .peek = true, .delta = m->h.delta,
        .cas = (m->h.bits & MF_CAS) ? m->h.cas : 0, .initial = m->h.initial,
    };
    struct cmd_arith_res res;
    const char *code = NULL;
    switch (cmd_arith(x, &c, &res)) {
    case ST_OK:          break;
    case ST_EXISTS:      code = "EX"; break;
    case ST_MISS:        code = "NF"; break;
    case ST_NOT_STORED:  code = "NS"; break;
    case ST_NON_NUMERIC:
        buf_adds(o, "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
        return;
    default:
        buf_adds(o, res.found ? "SERVER_ERROR out of memory\r\n"
                              : "SERVER_ERROR Out of memory allocating new item\r\n");
        return;
    }
    if (code) {
        buf_add(o, code, 2);
        add_echo(o, m);
        end_line(o);
        return;
    }
    bool created = res.created;
    uint32_t exp = res.exptime;
    char num[24];
    int vlen = snprintf(num, sizeof num, "%llu", (unsigned long long)res.value);
    uint32_t exp0 = exp;
    size_t start = o->len;
    if (m->h.bits & MF_VALUE) {
        buf_add(o, "VA ", 3);
        buf_add_u64(o, (uint64_t)vlen);
    } else {
        buf_add(o, "HD", 2);
    }
    const char *p;
    size_t n;
    for (struct fiter it = fiter(m); fnext(&it, &p, &n);) {
        switch (*p) {
        case 'c':
            add_char(o, 'c');
            buf_add_u64(o, res.cas);
            break;
        case 't':
            add_ttl(o, exp, x->now);
            break;
        case 'T':
            exp = clock_exptime(m->h.ttl, x->now);
            break;
        case 'N':
            if (created)
                exp = clock_exptime(m->h.viv_ttl, x->now);
            break;
        default:
            echo_flag(o, m, p, n);
            break;
        }
    }
    if (m->h.bits & MF_VALUE) {
        end_line(o);
        buf_add(o, num, (size_t)vlen);
    }
    end_line(o);
    if (exp != exp0)
        cmd_set_ttl(x, r->key, r->klen, exp);
    /* memcached hides a quiet success, but not an auto-created item. */
    if (r->noreply && !created)
        o->len = start;
}

/* ---- me ---------------------------------------------------------------- */

/* memcached's slab class for an item of `total` bytes (-n 48, -f 1.25,
 * 1 MiB items): what "me" reports as cls. */
static unsigned slab_class(size_t total)
{
    size_t size = 96;
    unsigned cls = 1;
    while (cls < 63 && size < 512 * 1024) {
        if (total <= size)
            return cls;
        size = (size_t)((double)size * 1.25);
        size = (size + 7) & ~(size_t)7;
        cls++;
    }
    return cls;
}

static void exec_me(struct exec_ctx *x, const struct mctx *m, struct buf *o)
{
    const struct req *r = m->r;
    struct item_view iv;
    if (cmd_peek(x, r->key, r->klen, &iv) != ST_OK) {
        buf_add(o, "EN\r\n", 4);
        return;
    }
    uint64_t cas = store_view_cas(x->store, &iv);
    size_t total = mc_item_size(cas != 0, iv.klen, iv.flags, iv.vlen);
    char line[160];
    buf_add(o, "ME ", 3);
    if (m->h.bits & MF_BINKEY) {
        char tmp[KEY_MAX_LENGTH * 2];
        size_t n = meta_b64_encode((const unsigned char *)r->key, r->klen, tmp, sizeof tmp);
        buf_add(o, tmp, n);
    } else {
        buf_add(o, r->key, r->klen);
    }
    int n = snprintf(line, sizeof line, " exp=%d la=%llu cas=%llu fetch=%s cls=%u size=%zu\r\n",
                     iv.exptime == 0 ? -1 : (int)(x->now - iv.exptime),
                     (unsigned long long)(uint32_t)(x->now - iv.atime),
                     (unsigned long long)cas,
                     (iv.mbits & ITEM_FETCHED) ? "yes" : "no", slab_class(total), total);
    buf_add(o, line, (size_t)n);
}

void meta_exec(struct exec_ctx *x, const struct req *r, struct buf *o)
{
    struct mctx m;
    memcpy(&m.h, r->aux, sizeof m.h);
    m.text = r->aux + sizeof m.h;
    m.r = r;
    switch (m.h.cmd) {
    case 'g': exec_mg(x, &m, o); break;
    case 's': exec_ms(x, &m, o); break;
    case 'd': exec_md(x, &m, o); break;
    case 'a': exec_ma(x, &m, o); break;
    case 'e':
        /* memcached 1.6.18 counts cmd_meta for `me` only (its old "meta"
         * debug command), not for mg/ms/md/ma */
        STAT_INC(x->stats, cmd_meta);
        exec_me(x, &m, o);
        break;
    default:  buf_adds(o, "SERVER_ERROR unhandled request\r\n"); break;
    }
}
