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

/* Give buffer `bid` back to the kernel. */
static inline void uring_bufs_put(struct uring_bufs *b, unsigned bid)
{
    io_uring_buf_ring_add(b->br, uring_bufs_addr(b, bid), b->size, (unsigned short)bid,
                          io_uring_buf_ring_mask(b->n), 0);
    io_uring_buf_ring_advance(b->br, 1);
}

#endif
#endif
