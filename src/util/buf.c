/*
 * buf.c — growable byte buffers with references (see buf.h). No shared
 * state: a buffer belongs to whoever holds it; buf_unpin is written once by
 * the main thread before any worker starts.
 */
#include <stdlib.h>
#include "util/buf.h"

void (*buf_unpin)(uint16_t owner, uint32_t pin);

bool buf_grow(struct buf *b, size_t extra)
{
    if (b->cap - b->len >= extra)
        return true;
    size_t want = b->len + extra;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < want)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return false;
    b->data = p;
    b->cap = cap;
    return true;
}

void buf_release_refs(struct buf *b)
{
    for (uint32_t i = 0; i < b->nrefs; i++)
        if (buf_unpin)
            buf_unpin(b->refs[i].owner, b->refs[i].pin);
    b->nrefs = 0;
    b->rlen = 0;
}

void buf_free(struct buf *b)
{
    buf_release_refs(b);
    free(b->refs);
    free(b->data);
    b->refs = NULL;
    b->refcap = 0;
    b->data = NULL;
    b->len = b->cap = 0;
}


void buf_shift(struct buf *b, size_t n)
{
    memmove(b->data + 0, b->data + n, b->len - n);
    b->len -= n;
}

static bool refs_reserve(struct buf *b, uint32_t extra)
{
    if (b->refcap - b->nrefs >= extra)
        return true;
    uint32_t cap = b->refcap ? b->refcap : 8;
    while (cap - b->nrefs < extra)
        cap *= 2;
    struct buf_ref *r = realloc(b->refs, cap * sizeof *r);
    if (!r)
        return false;
    b->refs = r;
    b->refcap = cap;
    return true;
}

bool buf_ref(struct buf *b, const char *p, uint32_t len, uint16_t owner, uint32_t pin)
{
    if (!refs_reserve(b, 1))
        return false;
    b->refs[b->nrefs++] = (struct buf_ref){ .at = b->len, .p = p, .len = len,
                                            .owner = owner, .pin = pin };
    b->rlen += len;
    return true;
}

bool buf_append(struct buf *dst, struct buf *src)
{
    if (!buf_reserve(dst, src->len) || !refs_reserve(dst, src->nrefs))
        return false;
    for (uint32_t i = 0; i < src->nrefs; i++) {
        struct buf_ref r = src->refs[i];
        r.at += dst->len;
        dst->refs[dst->nrefs++] = r;
    }
    dst->rlen += src->rlen;
    if (src->len)
        memcpy(dst->data + dst->len, src->data, src->len);
    dst->len += src->len;
    src->len = 0;
    src->nrefs = 0;     /* the pins moved with the references */
    src->rlen = 0;
    return true;
}

/* One piece of the buffer, trimmed to what the limit leaves. */
static void iov_put(struct iovec *iov, size_t *n, size_t *left, const char *p, size_t len)
{
    if (len > *left)
        len = *left;
    iov[(*n)++] = (struct iovec){ (void *)p, len };
    *left -= len;
}

size_t buf_iov(const struct buf *b, size_t off, size_t limit, struct iovec *iov, size_t max)
{
    size_t n = 0, pos = 0, own = 0;   /* pos: logical; own: index into data */
    for (uint32_t i = 0; i <= b->nrefs && n < max && limit; i++) {
        /* own bytes up to the next reference (or the end), then the reference */
        size_t upto = i < b->nrefs ? b->refs[i].at : b->len;
        size_t seg = upto - own;
        if (seg && off < pos + seg) {
            size_t skip = off > pos ? off - pos : 0;
            iov_put(iov, &n, &limit, b->data + own + skip, seg - skip);
        }
        pos += seg;
        own = upto;
        if (i == b->nrefs || n >= max || !limit)
            break;
        const struct buf_ref *r = &b->refs[i];
        if (r->len && off < pos + r->len) {
            size_t skip = off > pos ? off - pos : 0;
            iov_put(iov, &n, &limit, r->p + skip, r->len - skip);
        }
        pos += r->len;
    }
    return n;
}

bool buf_add_u64(struct buf *b, uint64_t v)
{
    if (b->cap - b->len < 20 && !buf_reserve(b, 20))
        return false;
    b->len += buf_dec(b->data + b->len, v);
    return true;
}
