/*
 * warm.c — warm restart with -e PATH (see warm.h, docs/storage.md). Owned by
 * the main thread; it runs before the workers start and after they stopped,
 * so every store it touches is quiescent. Files, for N workers:
 *
 *   PATH.lock     flock()ed for the process's life: one percore per PATH
 *   PATH.i        worker i's segments (store/seg_map.c maps it shared)
 *   PATH.i.meta   written at a graceful stop: this header, the store's
 *                 section (store/snapshot.c) and a checksum trailer
 *
 * Safety rests on one rule: a meta file exists only between a graceful stop
 * and the next start. It is written last (to .tmp, then renamed), and read
 * and deleted at start before any byte of the data files changes; so after
 * SIGKILL, a crash or a power loss the metadata is missing, stale or does
 * not check out, and the files are discarded with the reason logged.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/clock.h"
#include "util/hash.h"
#include "util/log.h"
#include "util/options.h"
#include "store/snapshot.h"
#include "server/warm.h"
#include "server/worker.h"

#define WARM_MAGIC   UINT64_C(0x314d524157435025)   /* "%PCWARM1" */
#define WARM_TRAILER UINT64_C(0x444e454d52415725)   /* "%WARMEND" */
#define WARM_VERSION 1u

struct warm_hdr {
    uint64_t magic;
    uint32_t version, hdr_size;
    uint64_t nonce;            /* one per saving run: all its files carry it */
    uint32_t nworkers, worker;
    uint64_t maxbytes, item_max, seg_size_opt;
    uint32_t use_cas, pad;
    int64_t  started;          /* clock_started() of the saving run */
    int64_t  saved_at;         /* unix time of the save */
    uint64_t store_len;        /* bytes of the store section that follows */
    uint8_t  slots[SLOT_COUNT];
};

struct warm_trailer {
    uint64_t magic, sum;
};

enum warm_mode { WARM_OFF, WARM_EMPTY, WARM_SAME, WARM_REHOME };

uint64_t warm_items_restored;
double   warm_seconds;

static enum warm_mode mode;
static unsigned old_n;
static struct meta {
    const uint8_t *map;
    size_t len;
    const struct warm_hdr *h;
} metas[MAX_WORKERS];
static struct store_config cfgs[MAX_WORKERS];
static char paths[MAX_WORKERS][4096];

static void path_of(char *buf, size_t n, unsigned i, const char *suffix)
{
    snprintf(buf, n, "%s.%u%s", settings.memory_file, i, suffix);
}

/* Test hook: PERCORE_WARM_CRASH=<step> kills the process at that step, as
 * a power cut would (tests/integration/test_warm_restart.py). */
static void crash_point(const char *step)
{
    const char *e = getenv("PERCORE_WARM_CRASH");
    if (e && !strcmp(e, step))
        raise(SIGKILL);
}

static void remove_files(void)
{
    char p[4200];
    for (unsigned i = 0; i < MAX_WORKERS; i++) {
        static const char *const sfx[] = { "", ".meta", ".meta.tmp", ".old" };
        for (unsigned k = 0; k < 4; k++) {
            path_of(p, sizeof p, i, sfx[k]);
            (void)unlink(p);
        }
    }
}

static void unmap_metas(void)
{
    for (unsigned i = 0; i < MAX_WORKERS; i++)
        if (metas[i].map) {
            munmap((void *)metas[i].map, metas[i].len);
            metas[i].map = NULL;
        }
}

/* Start empty: say why, drop every file of PATH. */
static void go_empty(const char *why)
{
    log_warn("warm restart from %s: %s; discarding the memory files, starting empty",
             settings.memory_file, why);
    unmap_metas();
    remove_files();
    mode = WARM_EMPTY;
}

static bool file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* Map and check meta file i; on failure a reason in why. */
static bool load_meta(unsigned i, char *why, size_t wn)
{
    char p[4200];
    path_of(p, sizeof p, i, ".meta");
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, wn, "%.256s: %s", p, strerror(errno));
        return false;
    }
    struct stat st;
    void *m = MAP_FAILED;
    if (fstat(fd, &st) == 0 && st.st_size > 0)
        m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) {
        snprintf(why, wn, "%.256s: empty or unreadable", p);
        return false;
    }
    struct meta *x = &metas[i];
    x->map = m;
    x->len = (size_t)st.st_size;
    x->h = m;
    struct warm_trailer t;
    if (x->len < sizeof(struct warm_hdr) + sizeof t) {
        snprintf(why, wn, "%.256s: truncated (%zu bytes)", p, x->len);
        return false;
    }
    memcpy(&t, x->map + x->len - sizeof t, sizeof t);
    if (x->h->magic != WARM_MAGIC || t.magic != WARM_TRAILER) {
        snprintf(why, wn, "%.256s: not a percore metadata file, or not written to the end", p);
        return false;
    }
    if (x->h->version != WARM_VERSION || x->h->hdr_size != sizeof(struct warm_hdr)) {
        snprintf(why, wn, "%.256s: metadata version %u, this percore reads %u", p, x->h->version,
                 WARM_VERSION);
        return false;
    }
    if (snapshot_sum(x->map, x->len - sizeof t) != t.sum) {
        snprintf(why, wn, "%.256s: checksum mismatch", p);
        return false;
    }
    if (x->h->store_len != x->len - sizeof t - sizeof(struct warm_hdr) || x->h->worker != i) {
        snprintf(why, wn, "%.256s: inconsistent lengths or worker number", p);
        return false;
    }
    return true;
}

static bool config_matches(const struct warm_hdr *h, char *why, size_t wn)
{
    if (h->maxbytes != settings.maxbytes)
        snprintf(why, wn, "memory limit differs: saved with -m %llu MiB, now -m %zu MiB",
                 (unsigned long long)(h->maxbytes >> 20), settings.maxbytes >> 20);
    else if (h->item_max != settings.item_max)
        snprintf(why, wn, "item size limit differs: saved with -I %llu, now -I %zu",
                 (unsigned long long)h->item_max, settings.item_max);
    else if (h->seg_size_opt != settings.seg_size)
        snprintf(why, wn, "segment size differs: saved with --segment-size %llu, now %zu "
                 "(0 = automatic)", (unsigned long long)h->seg_size_opt, settings.seg_size);
    else if (h->use_cas != (uint32_t)settings.use_cas)
        snprintf(why, wn, "CAS setting differs (-C)");
    else if (h->nworkers == 0 || h->nworkers > MAX_WORKERS)
        snprintf(why, wn, "saved worker count %u out of range", h->nworkers);
    else
        return true;
    return false;
}

int warm_setup(void)
{
    if (!settings.memory_file)
        return 0;
    mode = WARM_EMPTY;
    char p[4200], why[512];
    snprintf(p, sizeof p, "%s.lock", settings.memory_file);
    int lock = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock < 0) {
        log_err("-e %s: cannot create %s: %s", settings.memory_file, p, strerror(errno));
        return -1;
    }
    if (flock(lock, LOCK_EX | LOCK_NB) < 0) {
        log_err("-e %s: in use by another percore process (%s is locked)",
                settings.memory_file, p);
        return -1;
    }
    /* the lock descriptor stays open (and locked) until the process exits */

    path_of(p, sizeof p, 0, ".meta");
    if (!file_exists(p)) {
        path_of(p, sizeof p, 0, "");
        if (file_exists(p))
            go_empty("no metadata: the last run did not shut down gracefully (SIGUSR1 or "
                     "'shutdown graceful'), or was killed while saving");
        else
            log_info("warm restart: no memory file at %s yet; starting empty",
                     settings.memory_file);
        remove_files();
        return 0;
    }
    if (!load_meta(0, why, sizeof why)) {
        go_empty(why);
        return 0;
    }
    const struct warm_hdr *h0 = metas[0].h;
    if (!config_matches(h0, why, sizeof why)) {
        go_empty(why);
        return 0;
    }
    old_n = h0->nworkers;
    for (unsigned i = 1; i < old_n; i++) {
        if (!load_meta(i, why, sizeof why)) {
            go_empty(why);
            return 0;
        }
        const struct warm_hdr *h = metas[i].h;
        if (h->nonce != h0->nonce || h->nworkers != old_n || h->started != h0->started ||
            memcmp(h->slots, h0->slots, SLOT_COUNT) != 0) {
            snprintf(why, sizeof why, "metadata of worker %u is from another run than worker 0's",
                     i);
            go_empty(why);
            return 0;
        }
    }
    for (unsigned s = 0; s < SLOT_COUNT; s++)
        if (h0->slots[s] >= old_n) {
            go_empty("saved slot map names a worker that did not exist");
            return 0;
        }
    time_t now = time(NULL);
    if (h0->started > (int64_t)clock_started() || h0->saved_at > (int64_t)now) {
        go_empty("the wall clock is earlier than at the save: remaining TTLs cannot be trusted");
        return 0;
    }
    clock_rebase((time_t)h0->started);
    slots_init((unsigned)settings.nworkers);
    mode = old_n == (unsigned)settings.nworkers && !memcmp(slot_owner, h0->slots, SLOT_COUNT)
               ? WARM_SAME : WARM_REHOME;
    log_info("warm restart: metadata of %u workers saved %lld s ago checks out; restoring %s",
             old_n, (long long)(now - h0->saved_at),
             mode == WARM_SAME ? "in place" : "onto a different worker count");
    return 0;
}

/* The point of no return, taken when the first store is about to be
 * created (workers_setup has checked the listening ports by then, so a
 * port in use does not cost the cache): the metadata is deleted, so that
 * whatever happens from here on, no later start can trust these files
 * again; with another worker count the old files move aside, as the new
 * workers' files take their names. */
static void commit(void)
{
    char p[4200], q[4200], why[512];
    for (unsigned i = 0; i < old_n; i++) {
        path_of(p, sizeof p, i, ".meta");
        (void)unlink(p);
    }
    for (unsigned i = 0; mode == WARM_REHOME && i < old_n; i++) {
        path_of(p, sizeof p, i, "");
        path_of(q, sizeof q, i, ".old");
        if (rename(p, q) < 0) {
            snprintf(why, sizeof why, "cannot rename %.256s: %.100s", p, strerror(errno));
            go_empty(why);
            return;
        }
    }
}

void warm_store_config(struct store_config *sc, unsigned i)
{
    if (mode == WARM_OFF)
        return;
    if (i == 0 && (mode == WARM_SAME || mode == WARM_REHOME))
        commit();
    path_of(paths[i], sizeof paths[i], i, "");
    sc->mem_path = paths[i];
    sc->mem_keep = mode == WARM_SAME;
    cfgs[i] = *sc;
}

/* --- restore ----------------------------------------------------------------------- */

struct job {
    struct store *s;
    const struct meta *m;
    bool ok;
    char why[512];
};

static void *restore_job(void *arg)
{
    struct job *j = arg;
    j->ok = store_restore(j->s, j->m->map + sizeof(struct warm_hdr), j->m->h->store_len,
                          j->why, sizeof j->why);
    return NULL;
}

/* Replace every worker's store by an empty one (the files truncated). */
static bool recreate_empty(void)
{
    for (unsigned i = 0; i < nworkers; i++) {
        struct worker *w = &workers[i];
        store_destroy(w->store);
        cfgs[i].mem_keep = false;
        w->store = store_create(&cfgs[i]);
        w->x.store = w->store;
        if (!w->store) {
            log_err("worker %u: cannot create store (%zu bytes)", i, cfgs[i].mem_limit);
            return false;
        }
        store_clock(w->store, w->now);
    }
    return true;
}

static bool restore_same(char *why, size_t wn)
{
    struct job jobs[MAX_WORKERS];
    pthread_t th[MAX_WORKERS];
    bool started[MAX_WORKERS] = { false };
    for (unsigned i = 0; i < nworkers; i++) {
        jobs[i] = (struct job){ .s = workers[i].store, .m = &metas[i] };
        started[i] = pthread_create(&th[i], NULL, restore_job, &jobs[i]) == 0;
        if (!started[i])
            restore_job(&jobs[i]);
    }
    bool ok = true;
    for (unsigned i = 0; i < nworkers; i++) {
        if (started[i])
            pthread_join(th[i], NULL);
        if (!jobs[i].ok && ok) {
            snprintf(why, wn, "worker %u: %.500s", i, jobs[i].why);
            ok = false;
        }
    }
    return ok;
}

struct rehome {
    uint64_t moved, failed;
};

static bool rehome_one(void *arg, const struct store_copy *c)
{
    struct rehome *r = arg;
    struct store *s = workers[key_owner(c->key, c->klen)].store;
    if (store_restore_put(s, c) == ST_OK)
        r->moved++;
    else
        r->failed++;
    return true;
}

static bool restore_rehome(char *why, size_t wn)
{
    struct rehome r = { 0, 0 };
    uint64_t floor = 0;
    char p[4200];
    bool ok = true;
    for (unsigned k = 0; k < old_n; k++) {
        path_of(p, sizeof p, k, ".old");
        /* The saving run's store k, mapped from its file as it was. */
        struct store_config oc = cfgs[0];
        oc.mem_limit = metas[k].h->maxbytes / old_n;
        oc.shard_id = k;
        oc.mem_path = p;
        oc.mem_keep = true;
        struct store *old = ok ? store_create(&oc) : NULL;
        if (ok && !old) {
            snprintf(why, wn, "cannot map %.256s as worker %u's store", p, k);
            ok = false;
        }
        if (old) {
            store_clock(old, clock_rel_now());
            char w[512];
            if (!store_restore(old, metas[k].map + sizeof(struct warm_hdr),
                               metas[k].h->store_len, w, sizeof w)) {
                snprintf(why, wn, "saved worker %u: %.500s", k, w);
                ok = false;
            } else {
                uint64_t f = store_cas_floor(old);
                floor = f > floor ? f : floor;
                store_restore_each(old, rehome_one, &r);
            }
            store_destroy(old);
        }
        (void)unlink(p);   /* its pages were given back segment by segment */
    }
    for (unsigned i = 0; ok && i < nworkers; i++)
        store_cas_raise(workers[i].store, floor);
    if (ok && r.failed)
        log_warn("warm restart: %llu items could not be stored on their new worker "
                 "(larger than its share of -m)", (unsigned long long)r.failed);
    return ok;
}

void warm_restore(void)
{
    if (mode != WARM_SAME && mode != WARM_REHOME)
        return;
    crash_point("restore");
    uint64_t t0 = clock_mono_us();
    char why[700] = "";
    bool ok = mode == WARM_SAME ? restore_same(why, sizeof why) : restore_rehome(why, sizeof why);
    unmap_metas();
    if (!ok) {
        go_empty(why);
        if (!recreate_empty())
            exit(EXIT_RUNTIME);
        return;
    }
    uint64_t items = 0, bytes = 0, evicted = 0;
    for (unsigned i = 0; i < nworkers; i++) {
        struct store_stats st;
        store_get_stats(workers[i].store, &st);
        items += st.curr_items;
        bytes += st.bytes;
        evicted += st.evictions;
    }
    warm_items_restored = items;
    warm_seconds = (double)(clock_mono_us() - t0) / 1e6;
    log_info("warm restart: restored %llu items (%llu MiB) from %s, %u workers -> %u, in %.3f s",
             (unsigned long long)items, (unsigned long long)(bytes >> 20), settings.memory_file,
             old_n, nworkers, warm_seconds);
    (void)evicted;
}

/* --- save ---------------------------------------------------------------------------- */

struct writer {
    FILE *f;
    bool ok;
};

static bool put(void *ctx, const void *p, size_t n)
{
    struct writer *w = ctx;
    if (w->ok && n && fwrite(p, 1, n, w->f) != n)
        w->ok = false;
    return w->ok;
}

struct save_job {
    unsigned i;
    uint64_t nonce;
    bool ok;
    char why[300];
};

/* Write PATH.i.meta.tmp: header, store section, then the checksum of both. */
static void *save_job(void *arg)
{
    struct save_job *j = arg;
    struct worker *w = &workers[j->i];
    char p[4200];
    path_of(p, sizeof p, j->i, ".meta.tmp");
    int fd = open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w+") : NULL;
    if (!f) {
        snprintf(j->why, sizeof j->why, "%.200s: %.60s", p, strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    char *buf = malloc(1 << 20);
    if (buf)
        setvbuf(f, buf, _IOFBF, 1 << 20);
    struct warm_hdr h = {
        .magic = WARM_MAGIC, .version = WARM_VERSION, .hdr_size = sizeof h, .nonce = j->nonce,
        .nworkers = nworkers, .worker = j->i, .maxbytes = settings.maxbytes,
        .item_max = settings.item_max, .seg_size_opt = settings.seg_size,
        .use_cas = settings.use_cas, .started = (int64_t)clock_started(),
        .saved_at = (int64_t)time(NULL),
    };
    memcpy(h.slots, slot_owner, SLOT_COUNT);
    struct writer wr = { f, true };
    store_clock(w->store, clock_rel_now());
    /* A delayed flush_all is not part of the metadata: apply it now, so
     * that nothing it was to remove can be served after the restart. */
    if (w->flush_at) {
        store_flush(w->store);
        w->flush_at = 0;
    }
    put(&wr, &h, sizeof h);
    store_save(w->store, put, &wr);
    crash_point("save-mid");
    long end = ftell(f);
    h.store_len = (uint64_t)end - sizeof h;
    if (wr.ok && (fseek(f, 0, SEEK_SET) != 0 || fwrite(&h, sizeof h, 1, f) != 1))
        wr.ok = false;
    if (wr.ok && fflush(f) != 0)
        wr.ok = false;
    if (wr.ok) {
        void *m = mmap(NULL, (size_t)end, PROT_READ, MAP_SHARED, fd, 0);
        if (m == MAP_FAILED) {
            wr.ok = false;
        } else {
            struct warm_trailer t = { WARM_TRAILER, snapshot_sum(m, (size_t)end) };
            munmap(m, (size_t)end);
            wr.ok = fseek(f, 0, SEEK_END) == 0 && fwrite(&t, sizeof t, 1, f) == 1 &&
                    fflush(f) == 0 && fsync(fd) == 0;
        }
    }
    if (!wr.ok)
        snprintf(j->why, sizeof j->why, "%.200s: %.60s", p, strerror(errno));
    if (fclose(f) != 0)
        wr.ok = false;
    free(buf);
    j->ok = wr.ok;
    return NULL;
}

void warm_save(void)
{
    if (!settings.memory_file || !workers)
        return;
    crash_point("save-begin");
    uint64_t t0 = clock_mono_us();
    uint64_t nonce = 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, &nonce, sizeof nonce) != (ssize_t)sizeof nonce)
        nonce = clock_mono_us() ^ ((uint64_t)getpid() << 32);
    if (fd >= 0)
        close(fd);

    struct save_job jobs[MAX_WORKERS];
    pthread_t th[MAX_WORKERS];
    bool started[MAX_WORKERS];
    for (unsigned i = 0; i < nworkers; i++) {
        jobs[i] = (struct save_job){ .i = i, .nonce = nonce };
        started[i] = pthread_create(&th[i], NULL, save_job, &jobs[i]) == 0;
        if (!started[i])
            save_job(&jobs[i]);
    }
    bool ok = true;
    for (unsigned i = 0; i < nworkers; i++) {
        if (started[i])
            pthread_join(th[i], NULL);
        if (!jobs[i].ok && ok) {
            log_err("warm restart: cannot save worker %u's metadata: %s; the next start "
                    "will be empty", i, jobs[i].why);
            ok = false;
        }
    }
    crash_point("save-written");
    char p[4200], q[4200];
    uint64_t items = 0;
    for (unsigned i = 0; i < nworkers; i++) {
        path_of(p, sizeof p, i, ".meta.tmp");
        path_of(q, sizeof q, i, ".meta");
        if (!ok || rename(p, q) < 0) {
            (void)unlink(p);
            ok = false;
        }
        struct store_stats st;
        store_get_stats(workers[i].store, &st);
        items += st.curr_items;
        if (i == 0)
            crash_point("save-renamed-0");
    }
    if (ok)
        log_info("warm restart: saved the metadata of %llu items in %u workers to %s.*.meta "
                 "in %.3f s", (unsigned long long)items, nworkers, settings.memory_file,
                 (double)(clock_mono_us() - t0) / 1e6);
}

void warm_discard(void)
{
    if (!settings.memory_file)
        return;
    /* Without metadata the files cannot be restored: give their memory
     * back now rather than at the next start. */
    remove_files();
}
