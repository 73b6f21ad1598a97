/*
 * buf.h — a growable byte buffer used for connection input/output and for
 * replies built on one worker and handed to another. A buffer has exactly
 * one owner at a time; ownership moves with the message that carries it.
 *
 * An output buffer may also hold references: bytes that stay where they are
 * (an item's value in its owner's segment, pinned there) and are sent from
 * there, in order, between the buffer's own bytes. Pending output then costs
 * a small descriptor per large value instead of a copy of it. Releasing a
 * buffer (buf_free/buf_reset) releases its references through buf_unpin,
 * which the server sets: the pin belongs to the owner's store, so the
 * release runs on the owner's thread or travels there as a message.
 */
#ifndef PERCORE_BUF_H
#define PERCORE_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>

struct buf_ref {
    size_t      at;     /* the referenced bytes follow data[0..at) */
    const char *p;
    uint32_t    len;
    uint16_t    owner;  /* worker whose store holds (and pinned) the bytes */
    uint32_t    pin;    /* that store's pin handle */
};

struct buf {
    char           *data;
    size_t          len;     /* own bytes filled */
    size_t          cap;
    struct buf_ref *refs;    /* in order of `at` */
    uint32_t        nrefs, refcap;
    size_t          rlen;    /* bytes referenced */
};

/* Set once at start-up; called for every reference a buffer lets go of. */
extern void (*buf_unpin)(uint16_t owner, uint32_t pin);

bool buf_grow(struct buf *b, size_t extra);      /* buf_reserve's slow path */
void buf_shift(struct buf *b, size_t n);         /* buf_consume's slow path */
/* Room for extra more bytes; false on OOM. Inline: nearly every call finds
 * the room already there, and a call per reply added up. */
static inline bool buf_reserve(struct buf *b, size_t extra)
{
    return b->cap - b->len >= extra || buf_grow(b, extra);
}
void buf_free(struct buf *b);
/* Let go of every reference (unpinning), keep the own bytes. */
void buf_release_refs(struct buf *b);
/* Empty the buffer, keep its memory; references are released. */
static inline void buf_reset(struct buf *b)
{
    if (b->nrefs)
        buf_release_refs(b);
    b->len = 0;
}
/* Drop n bytes from the front (no refs); most often all of them. */
static inline void buf_consume(struct buf *b, size_t n)
{
    if (n >= b->len)
        b->len = 0;
    else
        buf_shift(b, n);
}

static inline bool buf_add(struct buf *b, const void *p, size_t n)
{
    if (b->cap - b->len < n && !buf_grow(b, n))
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

/* Bytes the buffer stands for: its own and the referenced ones. */
static inline size_t buf_size(const struct buf *b)
{
    return b->len + b->rlen;
}

/* Append a reference to len bytes at p, pinned by `owner` under `pin`; the
 * buffer now owns that pin. False on OOM (the caller still owns the pin). */
bool buf_ref(struct buf *b, const char *p, uint32_t len, uint16_t owner, uint32_t pin);

/* Move all of src (bytes and references) to the end of dst; src is left
 * empty. False on OOM (src untouched). */
bool buf_append(struct buf *dst, struct buf *src);

/* Fill up to max iovecs with at most limit bytes of the buffer's contents
 * from logical offset off (own and referenced bytes in order); returns the
 * count. */
size_t buf_iov(const struct buf *b, size_t off, size_t limit, struct iovec *iov, size_t max);

/* Append an unsigned decimal number. */
bool buf_add_u64(struct buf *b, uint64_t v);

/* Write v in decimal at p (room for 20 bytes); returns the length. Every
 * reply carries a few small numbers (flags, lengths): the digits are
 * counted by comparison and written in place two at a time. */
static inline size_t buf_dec(char *p, uint64_t v)
{
    static const char pairs[201] =
        "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
        "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
        "8081828384858687888990919293949596979899";
    /* Flags are mostly 0 and lengths a few digits: those without a loop. */
    if (v < 10) {
        *p = (char)('0' + v);
        return 1;
    }
    if (v < 100) {
        memcpy(p, pairs + 2 * v, 2);
        return 2;
    }
    if (v < 1000) {
        *p = (char)('0' + v / 100);
        memcpy(p + 1, pairs + 2 * (v % 100), 2);
        return 3;
    }
    size_t n = 4;
    for (uint64_t t = 10000; n < 20 && v >= t; t *= 10)
        n++;
    char *e = p + n;
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        e -= 2;
        e[0] = pairs[2 * r];
        e[1] = pairs[2 * r + 1];
    }
    if (v >= 10) {
        e[-2] = pairs[2 * v];
        e[-1] = pairs[2 * v + 1];
    } else {
        e[-1] = (char)('0' + v);
    }
    return n;
}

#endif
