/*
 * snapshot.h — saving a store's metadata at a graceful shut-down and
 * restoring the store from it at the next start (warm restart, -e). The
 * segments' bytes themselves stay in the store's file-backed arena
 * (store_config.mem_path); what is saved is what the store keeps outside
 * it: the segment table, TTL buckets, the CAS serial, counters, a checksum
 * of every segment's bytes and copies of the large items. The index is not
 * saved: a restore rebuilds it by walking the segments. Everything here runs
 * on the thread that owns the store while no worker runs (the main thread,
 * or a helper thread per store during a restore).
 */
#ifndef PERCORE_STORE_SNAPSHOT_H
#define PERCORE_STORE_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* The checksum used for segments and metadata files (64-bit, fast). */
uint64_t snapshot_sum(const void *p, size_t n);

/* Writes the store's section through put (false from put aborts: returns
 * false). The store must be quiescent; s's clock should be current. */
bool store_save(struct store *s, bool (*put)(void *ctx, const void *p, size_t n), void *ctx);

/* Restores a store just created with the same config and mem_keep from the
 * section at p. Every check that fails (layout, sizes, segment table, TTL
 * chains, a segment checksum, an item that does not decode, a key twice)
 * returns false with the reason in why; the store is then unusable and
 * must be destroyed (a partial restore is never served). Expired items are
 * dropped; on success the store is exactly as it was saved, minus those. */
bool store_restore(struct store *s, const uint8_t *p, size_t len, char *why, size_t whylen);

/* One item handed over by store_restore_each. */
struct store_copy {
    const char *key, *val;
    uint32_t    klen, vlen, flags, exptime;
    uint64_t    cas;
    uint8_t     mbits;   /* ITEM_* */
};

/* Visit every live item of a restored store once, oldest first per TTL
 * bucket, then the large items; each segment's pages are given back once
 * visited (the store is only good for destroying afterwards). fn returning
 * false stops the walk (returns false). For moving items to other stores
 * when the worker count changed. */
bool store_restore_each(struct store *s, bool (*fn)(void *arg, const struct store_copy *c),
                        void *arg);

/* Store a copied item keeping its CAS (an explicit CAS field) and meta bits.
 * May evict, as any write. ST_OK, ST_TOO_LARGE or ST_NO_MEMORY. */
int store_restore_put(struct store *s, const struct store_copy *c);

/* CAS values a store may have handed out are below store_cas_floor();
 * store_cas_raise() makes s hand out only values above floor, so items
 * moved in with their old CAS never collide with new ones. */
uint64_t store_cas_floor(const struct store *s);
void store_cas_raise(struct store *s, uint64_t floor);

#endif
