/*
 * uring_bufs.c — provided-buffer ring set-up (uring_bufs.h). Called by the
 * main thread while it creates a worker's ring; the worker owns it after.
 */
#ifdef HAVE_LIBURING
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "net/uring_bufs.h"

int uring_bufs_init(struct io_uring *ring, struct uring_bufs *b, unsigned n, unsigned size, int bgid)
{
    memset(b, 0, sizeof *b);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    void *br = NULL, *mem = NULL;
    /* The kernel maps the ring by address: it must start on a page. */
    if (posix_memalign(&br, page, (size_t)n * sizeof(struct io_uring_buf)) != 0)
        return -ENOMEM;
    if (posix_memalign(&mem, page, (size_t)n * size) != 0) {
        free(br);
        return -ENOMEM;
    }
    struct io_uring_buf_reg reg = {
        .ring_addr = (uint64_t)(uintptr_t)br, .ring_entries = n, .bgid = (uint16_t)bgid,
    };
    int rc = io_uring_register_buf_ring(ring, &reg, 0);
    if (rc < 0) {
        free(br);
        free(mem);
        return rc;
    }
    b->br = br;
    b->mem = mem;
    b->n = n;
    b->size = size;
    b->bgid = bgid;
    io_uring_buf_ring_init(b->br);
    for (unsigned i = 0; i < n; i++)
        io_uring_buf_ring_add(b->br, uring_bufs_addr(b, i), size, (unsigned short)i,
                              io_uring_buf_ring_mask(n), (int)i);
    io_uring_buf_ring_advance(b->br, (int)n);
    return 0;
}

void uring_bufs_free(struct uring_bufs *b)
{
    free(b->br);
    free(b->mem);
    memset(b, 0, sizeof *b);
}
#endif
