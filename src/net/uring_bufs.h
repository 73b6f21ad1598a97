/*
 * uring_bufs.h — a provided-buffer ring for multishot receive: a fixed pool
 * of equal buffers the kernel picks from as data arrives, handed back as
 * soon as the bytes are copied out. One per io_uring, owned by the worker
 * thread of that ring. liburing 2.3 lacks io_uring_setup_buf_ring(), so the
 * ring memory is allocated and registered here.
 */
#ifndef PERCORE_URING_BUFS_H
#define PERCORE_URING_BUFS_H

#ifdef HAVE_LIBURING
#include <liburing.h>
#include <stdint.h>

struct uring_bufs {
    struct io_uring_buf_ring *br;   /* shared with the kernel */
    char     *mem;                  /* n buffers of size bytes */
    unsigned  n;                    /* power of two */
    unsigned  size;
    int       bgid;
};

/* Returns 0 or a negative errno (-EINVAL: kernel without buffer rings). */
int  uring_bufs_init(struct io_uring *ring, struct uring_bufs *b, unsigned n, unsigned size, int bgid);
/* After io_uring_queue_exit(), or before the ring ever ran. */
void uring_bufs_free(struct uring_bufs *b);

static inline char *uring_bufs_addr(const struct uring_bufs *b, unsigned bid)
{
    return b->mem + (size_t)bid * b->size;
}

/* Give buffers bids[0..n) back to the kernel, with one tail update. A
 * buffer consumed from a slot comes back to the same slot when buffers
 * return in the order the kernel took them (one connection, or
 * completions reaped in order): that slot already names it, and is left
 * as it is (the kernel does not write the slots of a ring like this one:
 * no incremental consumption, no bundles). */
static inline void uring_bufs_put_many(struct uring_bufs *b, const uint16_t *bids, unsigned n)
{
    struct io_uring_buf_ring *br = b->br;
    unsigned short tail = br->tail;
    for (unsigned i = 0; i < n; i++) {
        struct io_uring_buf *e = &br->bufs[(tail + i) & (b->n - 1)];
        if (e->bid == bids[i])
            continue;
        e->addr = (uint64_t)(uintptr_t)uring_bufs_addr(b, bids[i]);
        e->len = b->size;
        e->bid = bids[i];
    }
    io_uring_smp_store_release(&br->tail, (unsigned short)(tail + n));
}

/* Give buffer `bid` back to the kernel. */
static inline void uring_bufs_put(struct uring_bufs *b, unsigned bid)
{
    uint16_t id = (uint16_t)bid;
    uring_bufs_put_many(b, &id, 1);
}

#endif
#endif
