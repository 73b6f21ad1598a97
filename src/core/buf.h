/*
 * buf.h — a growable byte buffer used for connection input/output and for
 * replies built on one worker and handed to another. A buffer has exactly
 * one owner at a time; ownership moves with the message that carries it.
 */
#ifndef PERCORE_BUF_H
#define PERCORE_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct buf {
    char  *data;
    size_t len;     /* bytes filled */
    size_t cap;
};

bool buf_reserve(struct buf *b, size_t extra);   /* false on OOM */
void buf_free(struct buf *b);
void buf_consume(struct buf *b, size_t n);       /* drop n bytes from the front */

static inline bool buf_add(struct buf *b, const void *p, size_t n)
{
    if (b->cap - b->len < n && !buf_reserve(b, n))
        return false;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return true;
}

static inline bool buf_adds(struct buf *b, const char *s)
{
    return buf_add(b, s, strlen(s));
}

/* Append an unsigned decimal number. */
bool buf_add_u64(struct buf *b, uint64_t v);

#endif
