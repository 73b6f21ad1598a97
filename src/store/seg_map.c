/*
 * seg_map.c — where a store's segment arena comes from. Without -e it is
 * private anonymous memory. With -e (store_config.mem_path) it is a shared
 * mapping of a file, normally on tmpfs, so that the segments' bytes outlive
 * the process and a warm restart (store/snapshot.h) can map them again.
 * Either way the arena starts PROT_NONE and seg.c commits a segment at first
 * use. Called by the store's owner thread (the main thread at create time).
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "store/store_int.h"

bool seg_map_arena(struct store *s)
{
    s->arena_len = (size_t)s->nsegs * s->seg_size;
    if (!s->cfg.mem_path) {
        void *a = mmap(NULL, s->arena_len, PROT_NONE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (a == MAP_FAILED)
            return false;
        s->arena = a;
        return true;
    }
    int fd = open(s->cfg.mem_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return false;
    /* Unless restoring, drop whatever the file held (its tmpfs pages too),
     * then size it: a sparse file, pages are allocated as segments fill. */
    bool ok = (s->cfg.mem_keep || ftruncate(fd, 0) == 0) && ftruncate(fd, (off_t)s->arena_len) == 0;
    void *a = ok ? mmap(NULL, s->arena_len, PROT_NONE, MAP_SHARED | MAP_NORESERVE, fd, 0)
                 : MAP_FAILED;
    int saved = errno;
    close(fd);   /* the mapping keeps the file */
    errno = saved;
    if (a == MAP_FAILED)
        return false;
    s->arena = a;
    return true;
}

void seg_map_unmap(struct store *s)
{
    if (s->arena)
        munmap(s->arena, s->arena_len);
    s->arena = NULL;
}

/* MADV_DONTNEED only unmaps a shared file's pages; tmpfs keeps them until
 * they are removed from the file (MADV_REMOVE punches the hole). */
void seg_map_drop(struct store *s, uint32_t id)
{
    (void)madvise(s->arena + (size_t)id * s->seg_size, s->seg_size,
                  s->cfg.mem_path ? MADV_REMOVE : MADV_DONTNEED);
}
