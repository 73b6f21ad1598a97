/* proto.c - memcached text and meta protocol encoders and the streaming reply
 * parser, see proto.h. Pure functions over per-connection state (owned by the
 * connection's worker thread). */
#include "proto.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_reserve(struct buf *b, size_t more)
{
    if (b->off && b->off == b->len)
        b->off = b->len = 0;
    if (b->len + more <= b->cap)
        return;
    if (b->off) { /* compact first */
        memmove(b->p, b->p + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
        if (b->len + more <= b->cap)
            return;
    }
    size_t nc = b->cap ? b->cap : 4096;
    while (nc < b->len + more)
        nc *= 2;
    char *np = realloc(b->p, nc);
    if (!np) {
        perror("realloc");
        abort();
    }
    b->p = np;
    b->cap = nc;
}

void buf_free(struct buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->off = b->cap = 0;
}

static size_t u64_to_dec(char *dst, uint64_t v)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        dst[i] = tmp[n - 1 - i];
    return n;
}

size_t key_format(char *dst, uint64_t id, uint32_t len)
{
    size_t n = 0;
    dst[n++] = 'k';
    n += u64_to_dec(dst + n, id);
    if (n < len) {
        dst[n++] = ':';
        while (n < len)
            dst[n++] = 'x';
    }
    return n;
}

int key_parse(const char *k, size_t n, uint64_t *id)
{
    if (n < 2 || k[0] != 'k')
        return -1;
    uint64_t v = 0;
    size_t i = 1;
    if (k[i] < '0' || k[i] > '9')
        return -1;
    for (; i < n && k[i] >= '0' && k[i] <= '9'; i++)
        v = v * 10 + (uint64_t)(k[i] - '0');
    if (i < n && k[i] != ':')
        return -1;
    *id = v;
    return 0;
}

void proto_encode_get(enum proto_kind k, struct buf *out, const uint64_t *keys,
                      const uint32_t *klen, int nkeys)
{
    size_t need = 8;
    for (int i = 0; i < nkeys; i++)
        need += (klen[i] > 22 ? klen[i] : 22) + 8;
    buf_reserve(out, need);
    char *d = out->p + out->len;
    if (k == PROTO_META) {
        for (int i = 0; i < nkeys; i++) {
            memcpy(d, "mg ", 3);
            d += 3;
            d += key_format(d, keys[i], klen[i]);
            memcpy(d, " v\r\n", 4);
            d += 4;
        }
    } else {
        memcpy(d, "get", 3);
        d += 3;
        for (int i = 0; i < nkeys; i++) {
            *d++ = ' ';
            d += key_format(d, keys[i], klen[i]);
        }
        *d++ = '\r';
        *d++ = '\n';
    }
    out->len = (size_t)(d - out->p);
}

void proto_encode_set(enum proto_kind k, struct buf *out, uint64_t key, uint32_t klen,
                      const char *value, uint32_t vlen)
{
    buf_reserve(out, (klen > 22 ? klen : 22) + vlen + 48);
    char *d = out->p + out->len;
    if (k == PROTO_META) {
        memcpy(d, "ms ", 3);
        d += 3;
        d += key_format(d, key, klen);
        *d++ = ' ';
    } else {
        memcpy(d, "set ", 4);
        d += 4;
        d += key_format(d, key, klen);
        memcpy(d, " 0 0 ", 5);
        d += 5;
    }
    d += u64_to_dec(d, vlen);
    *d++ = '\r';
    *d++ = '\n';
    memcpy(d, value, vlen);
    d += vlen;
    *d++ = '\r';
    *d++ = '\n';
    out->len = (size_t)(d - out->p);
}

void proto_reset(struct rparser *ps)
{
    memset(ps, 0, sizeof *ps);
}

static int starts(const char *l, size_t n, const char *w)
{
    size_t wn = strlen(w);
    return n >= wn && !memcmp(l, w, wn);
}

static int is_error_line(const char *l, size_t n)
{
    return starts(l, n, "ERROR") || starts(l, n, "CLIENT_ERROR") || starts(l, n, "SERVER_ERROR");
}

/* Parse the n-th (0-based) space-separated token of a line as unsigned. */
static int token_u64(const char *l, size_t n, int idx, uint64_t *v, const char **tok, size_t *toklen)
{
    size_t i = 0;
    for (int t = 0;; t++) {
        while (i < n && l[i] == ' ')
            i++;
        size_t s = i;
        while (i < n && l[i] != ' ')
            i++;
        if (s == i)
            return -1;
        if (t == idx) {
            if (tok) {
                *tok = l + s;
                *toklen = i - s;
            }
            if (v) {
                uint64_t x = 0;
                for (size_t j = s; j < i; j++) {
                    if (l[j] < '0' || l[j] > '9')
                        return -1;
                    x = x * 10 + (uint64_t)(l[j] - '0');
                }
                *v = x;
            }
            return 0;
        }
    }
}

/* One text-protocol line (without \r\n). Returns PF_DONE, PF_MORE or PF_BAD. */
static int text_line(struct rparser *ps, const struct preq *rq, const char *l, size_t n)
{
    if (rq->op == OP_GET) {
        if (starts(l, n, "VALUE ")) {
            uint64_t bytes;
            const char *key;
            size_t klen;
            if (token_u64(l, n, 3, &bytes, NULL, NULL) || token_u64(l, n, 1, NULL, &key, &klen))
                return PF_BAD;
            uint64_t id;
            if (!key_parse(key, klen, &id)) {
                for (int i = ps->next_key; i < rq->nkeys; i++)
                    if (rq->keys[i] == id) {
                        ps->hitmask |= 1ull << i;
                        ps->next_key = i + 1;
                        break;
                    }
            }
            ps->hits++;
            ps->in_data = 1;
            ps->skip = bytes + 2;
            return PF_MORE;
        }
        if (n == 3 && !memcmp(l, "END", 3)) {
            ps->misses = rq->nkeys > ps->hits ? rq->nkeys - ps->hits : 0;
            ps->status = RS_OK;
            return PF_DONE;
        }
    } else {
        if (n == 6 && !memcmp(l, "STORED", 6)) {
            ps->status = RS_OK;
            return PF_DONE;
        }
        if (starts(l, n, "NOT_STORED") || starts(l, n, "EXISTS") || starts(l, n, "NOT_FOUND")) {
            ps->status = RS_NOTSTORED;
            return PF_DONE;
        }
    }
    if (is_error_line(l, n)) {
        ps->status = RS_ERROR;
        return PF_DONE;
    }
    return PF_BAD;
}

static int meta_line(struct rparser *ps, const struct preq *rq, const char *l, size_t n)
{
    if (is_error_line(l, n)) {
        ps->status = RS_ERROR;
        return PF_DONE; /* the rest of a multi-key request is lost: resync by closing */
    }
    if (n < 2)
        return PF_BAD;
    if (rq->op == OP_GET) {
        int idx = ps->nreplies;
        if (l[0] == 'V' && l[1] == 'A') {
            uint64_t bytes;
            if (token_u64(l, n, 1, &bytes, NULL, NULL))
                return PF_BAD;
            ps->hits++;
            if (idx < 64)
                ps->hitmask |= 1ull << idx;
            ps->nreplies++;
            ps->in_data = 1;
            ps->skip = bytes + 2;
            return PF_MORE;
        }
        if (l[0] == 'H' && l[1] == 'D') {
            ps->hits++;
            if (idx < 64)
                ps->hitmask |= 1ull << idx;
        } else if (l[0] == 'E' && l[1] == 'N') {
            ps->misses++;
        } else {
            return PF_BAD;
        }
        ps->nreplies++;
        if (ps->nreplies >= rq->nkeys) {
            ps->status = RS_OK;
            return PF_DONE;
        }
        return PF_MORE;
    }
    if (l[0] == 'H' && l[1] == 'D') {
        ps->status = RS_OK;
        return PF_DONE;
    }
    if ((l[0] == 'N' && (l[1] == 'S' || l[1] == 'F')) || (l[0] == 'E' && l[1] == 'X')) {
        ps->status = RS_NOTSTORED;
        return PF_DONE;
    }
    return PF_BAD;
}

int proto_feed(enum proto_kind k, struct rparser *ps, const struct preq *rq,
               const char *p, size_t n, size_t *used)
{
    size_t i = 0;
    for (;;) {
        if (ps->in_data) {
            size_t take = n - i < ps->skip ? n - i : ps->skip;
            i += take;
            ps->skip -= take;
            if (ps->skip) {
                *used = i;
                return PF_MORE;
            }
            ps->in_data = 0;
            /* meta: the data block may finish the request */
            if (k == PROTO_META && rq->op == OP_GET && ps->nreplies >= rq->nkeys) {
                ps->status = RS_OK;
                *used = i;
                return PF_DONE;
            }
        }
        const char *nl = memchr(p + i, '\n', n - i);
        if (!nl) {
            *used = i;
            return n - i > 8192 ? PF_BAD : PF_MORE;
        }
        size_t ll = (size_t)(nl - (p + i));
        size_t adv = ll + 1;
        if (ll && p[i + ll - 1] == '\r')
            ll--;
        int r = k == PROTO_META ? meta_line(ps, rq, p + i, ll) : text_line(ps, rq, p + i, ll);
        i += adv;
        if (r != PF_MORE) {
            *used = i;
            return r;
        }
    }
}
