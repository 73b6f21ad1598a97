/*
 * store.h — the per-worker item store: index, segment log, TTL buckets,
 * eviction. One instance per worker; only that worker's thread ever calls
 * into it, so nothing here locks. The store knows no sockets and no wire
 * format: it stores (key, value, client flags, exptime) and answers
 * lookups. Times are "relative seconds" (see util/clock.h): 0 means "never
 * expires"; any other value is the relative second at which the item dies.
 */
#ifndef PERCORE_STORE_H
#define PERCORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>
#include "util/hash.h"

enum store_status {
    ST_OK = 0,        /* hit / stored / deleted / touched */
    ST_MISS,          /* key not found (or expired / flushed) */
    ST_NOT_STORED,    /* add on existing key, replace/append/prepend on missing */
    ST_EXISTS,        /* cas mismatch */
    ST_NOT_FOUND,     /* cas on missing key */
    ST_TOO_LARGE,     /* item larger than item_max */
    ST_NO_MEMORY,     /* could not free room for the item */
    ST_NON_NUMERIC,   /* incr/decr on a value that is not a decimal u64 */
};

enum store_mode {
    SM_SET, SM_ADD, SM_REPLACE, SM_APPEND, SM_PREPEND, SM_CAS,
};

/* Meta-protocol item bits (mg/ms/md): kept per item, returned in views. */
#define ITEM_FETCHED   0x01u   /* read at least once since stored */
#define ITEM_STALE     0x02u   /* invalidated (md I / ms I): serve as stale */
#define ITEM_WIN_SENT  0x04u   /* a W (win) token was handed out for it */

struct store_config {
    size_t   mem_limit;   /* bytes for this shard: segments AND index */
    size_t   item_max;    /* largest key+value accepted (-I) */
    size_t   seg_size;    /* segment size in bytes; 0 = store picks */
    unsigned shard_id;    /* 0..255, mixed into CAS values so they are unique */
    bool     use_cas;     /* false with -C: cas values are 0 */
    bool     huge_pages;  /* -L: advise transparent huge pages for segments */
    bool     no_evict;    /* -M: fail writes (ST_NO_MEMORY) rather than drop live items */
    const char *mem_path; /* -e: segments in this file (shared mapping), NULL = anonymous */
    bool     mem_keep;    /* keep the file's bytes (a warm restart restores them) */
};

/* A read-only view of an item. Pointers stay valid only until the next call
 * that may modify this store (any store_* other than store_peek/stats). */
struct item_view {
    const char *key;
    const char *val;
    uint32_t    klen;
    uint32_t    vlen;
    uint32_t    flags;    /* the 32-bit client flags */
    uint32_t    exptime;  /* relative seconds, 0 = never */
    uint32_t    atime;    /* relative second of the last access before this one */
    uint8_t     mbits;    /* ITEM_* bits as they were before this access */
    uint32_t    loc;      /* where it lives, for store_pin() */
    uint32_t    off;      /* and its offset there (store_view_cas) */
};

struct store_stats {
    uint64_t curr_items;        /* live items (approximate for expired-unreclaimed) */
    uint64_t total_items;       /* items ever stored */
    uint64_t bytes;             /* bytes of live items (key + value + header) */
    uint64_t mem_limit;         /* = config mem_limit */
    uint64_t mem_used;          /* segments in use + index, exact */
    uint64_t index_bytes;       /* bytes used by the hash index */
    uint64_t seg_size;
    uint64_t segs_total;        /* segments the limit allows */
    uint64_t segs_used;
    uint64_t evictions;         /* live items dropped to make room */
    uint64_t evicted_segments;
    uint64_t expired_reclaimed; /* expired items freed by proactive reclaim */
    uint64_t expired_unfetched;
    uint64_t evicted_unfetched;
    uint64_t reclaim_segments;  /* segments freed whole because all expired */
    uint64_t merged_items;      /* live items kept alive by eviction merge */
    uint64_t large_items;       /* items stored outside regular segments */
    uint64_t flushes;
    uint64_t hash_power;        /* log2 of the index's bucket count */
    uint64_t hash_expanding;    /* 1 while an incremental resize is running */
    uint64_t pins;              /* replies in flight sending from item memory */
    uint64_t held_bytes;        /* memory freed but pinned by those replies */
    uint64_t get_expired;       /* lookups that found their key expired; stats reset zeroes it */
};

struct store;

struct store *store_create(const struct store_config *cfg);
void store_destroy(struct store *s);
/* The most memory one store can use (~85 GiB): past it an index entry
 * cannot name more segments, so store_create uses that much and no more. */
size_t store_mem_max(void);

/* Set the store's notion of "now" (relative seconds); the worker calls it
 * once per loop iteration. */
void store_clock(struct store *s, uint32_t now);

/* Lookup. ST_OK fills *iv and marks the item fetched / updates atime;
 * ST_MISS otherwise. */
int store_get(struct store *s, const char *key, size_t klen, struct item_view *iv);
/* The CAS of the item a view shows; call it while the view is valid (no
 * store write since). Marks the CAS as seen, so that the store keeps it
 * wherever it moves the item: every CAS a client gets must come from here
 * or a write's cas_out (pass NULL there when it is not sent). 0 with -C. */
uint64_t store_view_cas(struct store *s, const struct item_view *iv);
/* Lookup without side effects (no fetched bit, no atime update). */
int store_peek(struct store *s, const char *key, size_t klen, struct item_view *iv);
/* Get-and-touch: like store_get, then sets exptime. */
int store_gat(struct store *s, const char *key, size_t klen, uint32_t exptime,
              struct item_view *iv);

/* set/add/replace/append/prepend/cas. For append/prepend, flags and exptime
 * are ignored (the old item's are kept). cas_in is used by SM_CAS only.
 * On ST_OK *cas_out (if non-NULL) receives the new item's CAS. Returns
 * ST_OK, ST_NOT_STORED, ST_EXISTS, ST_NOT_FOUND, ST_TOO_LARGE, ST_NO_MEMORY.
 * As in memcached, a failed set (ST_TOO_LARGE/ST_NO_MEMORY) removes the old
 * value of the key; an append/prepend that cannot grow the item returns
 * ST_NOT_STORED and keeps it; other modes keep it too. */
int store_put(struct store *s, enum store_mode mode, const char *key, size_t klen,
              const void *val, size_t vlen, uint32_t flags, uint32_t exptime,
              uint64_t cas_in, uint64_t *cas_out);

/* delete: ST_OK or ST_MISS. If cas_in != 0, only deletes when CAS matches
 * (else ST_EXISTS). */
int store_delete(struct store *s, const char *key, size_t klen, uint64_t cas_in);

/* touch: ST_OK or ST_MISS. */
int store_touch(struct store *s, const char *key, size_t klen, uint32_t exptime);

/* incr/decr by delta with memcached's rules: incr wraps at 2^64, decr floors
 * at 0; the value must be a decimal u64 (ST_NON_NUMERIC otherwise). On
 * ST_OK *result is the new value and *cas_out the new CAS. ST_MISS if absent. */
int store_arith(struct store *s, const char *key, size_t klen, bool incr,
                uint64_t delta, uint64_t *result, uint64_t *cas_out);

/* Set / clear ITEM_* bits on a live item (meta protocol). ST_OK or ST_MISS. */
int store_set_mbits(struct store *s, const char *key, size_t klen,
                    uint8_t set, uint8_t clear);

/* Drop every item (flush_all). */
void store_flush(struct store *s);
/* memcached's flush_all marks everything last written at or before a
 * second as flushed, so a write later in that same second is flushed too
 * (visible with -C, and in the second a delayed flush fires): writes while
 * now <= until succeed and are dropped at once. 0 = no hold. */
void store_flush_hold(struct store *s, uint32_t until);

/* Background work, called by the worker when idle and at least once a second:
 * reclaims expired segments/items and advances an incremental index resize.
 * Does at most `budget` units of work; returns true if more is pending. */
bool store_maintain(struct store *s, unsigned budget);
/* memcached's cache_memlimit: a new limit for this store, clamped to
 * [store_limit_min(), the limit it was created with] (the arena and tables
 * are sized at creation); returns the limit set. Raising takes effect at
 * once. Lowering evicts down to it in store_maintain() slices of one
 * eviction window each, never inside a write: until there, writes are held
 * to the memory in use. */
size_t store_set_limit(struct store *s, size_t bytes);
size_t store_limit_min(const struct store *s);
/* Whether the next write that needs a segment would have to evict for it:
 * then store_maintain() in idle time makes one ready first. */
bool store_wants_room(const struct store *s);

void store_get_stats(const struct store *s, struct store_stats *out);
/* The same figures written where other threads read them: word i of out is
 * word i of struct store_stats (relaxed stores; the owner publishes once
 * per loop iteration that changed them, so no copy is made first). */
void store_publish_stats(const struct store *s, _Atomic uint64_t *out);
/* Where a count lives that moves whenever any store_get_stats() field may
 * have: every call that can change the store bumps it (a get only when it
 * removes an expired item), so a loop of get hits leaves it alone and the
 * worker, which publishes its stats for other workers only when it moved,
 * copies nothing. The owner's loop reads it through this pointer twice per
 * iteration (a call each time was a fiftieth of a get). */
const uint64_t *store_stats_gen_at(const struct store *s);

/* Replies by reference: pin the memory of the item a view came from, so
 * that iv->val stays readable and unchanged (item values are never written
 * in place) until the matching unpin, whatever the store does meanwhile.
 * Memory freed while pinned stays counted in mem_used until the last unpin.
 * Both run on the store's own thread. */
void store_pin(struct store *s, uint32_t loc);
void store_unpin(struct store *s, uint32_t loc);

/* One "class" for `stats slabs` / `stats items`: a TTL bucket that holds
 * segments, or (large = true) the items kept outside segments. See
 * docs/storage.md. */
struct store_class_stats {
    uint32_t id;          /* 1..63: TTL ranges, 62 never expires, 63 large */
    bool     large;
    uint32_t ttl_min;     /* TTL range of the bucket in seconds; 0/0 = never */
    uint32_t ttl_max;     /* expires (upper bound, exclusive) */
    uint64_t segments;    /* segments (large: allocations) */
    uint64_t mem_bytes;   /* memory they take: segments * seg_size, or mapped */
    uint64_t live_items;
    uint64_t live_bytes;  /* bytes of live items (header + key + value) */
    uint64_t dead_bytes;  /* written but no longer live, plus unused tail */
    uint32_t oldest_age;  /* seconds since the oldest segment was opened */
    uint32_t evicted_time;/* idle seconds of the last item evicted from it */
    /* memcached's per-class counters, counted where the item lives */
    uint64_t get_hits, touch_hits, cmd_set, delete_hits, incr_hits, decr_hits;
    uint64_t cas_hits, cas_badval, evicted, evicted_nonzero, evicted_unfetched;
    uint64_t reclaimed, expired_unfetched;
};
/* Classes a store reports, as memcached's ids 1..63: TTL buckets grouped
 * by range, then "never expires", then large items (ttl.c). */
#define STORE_CLASSES_MAX 63

/* Zero the per-class counters (stats reset). */
void store_reset_class_stats(struct store *s);

/* Fills up to max classes in id order; returns how many were filled. A
 * class is listed while it holds segments or has counted anything. Walks
 * every segment of the store: call it at most about once a second. */
unsigned store_get_class_stats(const struct store *s, struct store_class_stats *out,
                               unsigned max);

/* One live item as a walk sees it (key bytes valid during the callback). */
struct store_walk_item {
    const char *key;
    uint32_t    klen, vlen;
    uint32_t    size;      /* bytes it takes in the log (header + key + value) */
    uint32_t    flags;
    uint32_t    exptime;   /* relative seconds, 0 = never */
    uint32_t    atime;     /* last read of its segment (relative seconds) */
    uint32_t    cls;       /* class id, as in store_get_class_stats */
    uint64_t    cas;
    bool        fetched;
};

/* Visit the live, unexpired items of up to `budget` segments starting at
 * *cursor (large items count as segments after the regular ones) and
 * advance *cursor (start at 0). fn returns false to stop the walk early.
 * Returns true when the walk is over. The store keeps running between
 * calls: an item moved by an eviction merge in between may be seen twice
 * or not at all, as with memcached's LRU crawler. Owner thread only. */
bool store_walk(struct store *s, uint32_t *cursor, unsigned budget,
                bool (*fn)(void *arg, const struct store_walk_item *it), void *arg);

/* What a store tells an observer (memcached's `watch`): a client fetch
 * (store_get/store_gat, hit or miss), a store (store_put, any outcome) or
 * an eviction of a live item. Key bytes valid during the call only. */
enum store_event_kind { SEV_GET, SEV_STORE, SEV_EVICT };

struct store_event {
    uint8_t     kind;
    uint8_t     mode;       /* SEV_STORE: enum store_mode */
    bool        fetched;    /* SEV_EVICT: read since stored */
    int         status;     /* SEV_GET: ST_OK/ST_MISS; SEV_STORE: store_put's result */
    const char *key;
    uint32_t    klen;
    uint32_t    vlen;       /* value bytes (0 on a miss) */
    uint32_t    exptime;    /* relative seconds, 0 = never */
    uint32_t    atime;      /* SEV_EVICT: last read of its segment */
    uint32_t    cls;        /* class id (0 on a miss) */
};

/* Set (fn) or clear (NULL) the observer; owner thread only. */
void store_set_observer(struct store *s, void (*fn)(void *arg, const struct store_event *ev),
                        void *arg);

#endif
