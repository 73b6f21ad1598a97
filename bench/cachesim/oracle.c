/*
 * oracle.c — reads libCacheSim's oracleGeneral binary traces (as published
 * with many research cache traces): packed little-endian 24-byte records
 *
 *   uint32 clock_time | uint64 obj_id | uint32 obj_size | int64 next_access_vtime
 *
 * The file's next_access_vtime is ignored (recomputed); object ids are
 * remapped to dense ones. Compressed traces (.zst) are read through a pipe:
 * `zstd -dc t.oracleGeneral.zst | cachesim --trace -`. Single-threaded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cachesim.h"

struct idmap {
    uint64_t *key;
    uint32_t *val;
    uint64_t  mask, n;
};

static uint64_t mix(uint64_t k)
{
    k ^= k >> 33;
    k *= UINT64_C(0xff51afd7ed558ccd);
    k ^= k >> 33;
    return k;
}

static bool idmap_grow(struct idmap *m)
{
    uint64_t cap = m->mask ? (m->mask + 1) * 2 : 1u << 16;
    uint64_t *k = malloc(cap * sizeof(*k));
    uint32_t *v = malloc(cap * sizeof(*v));
    if (!k || !v) {
        free(k);
        free(v);
        return false;
    }
    memset(v, 0xff, cap * sizeof(*v));
    for (uint64_t i = 0; m->mask && i <= m->mask; i++) {
        if (m->val[i] == CS_NONE)
            continue;
        uint64_t j = mix(m->key[i]) & (cap - 1);
        while (v[j] != CS_NONE)
            j = (j + 1) & (cap - 1);
        k[j] = m->key[i];
        v[j] = m->val[i];
    }
    free(m->key);
    free(m->val);
    m->key = k;
    m->val = v;
    m->mask = cap - 1;
    return true;
}

/* the dense id of obj, a new one if unseen; CS_NONE when out of memory */
static uint32_t idmap_get(struct idmap *m, uint64_t obj)
{
    if ((m->n + 1) * 2 > m->mask + 1 && !idmap_grow(m))
        return CS_NONE;
    uint64_t j = mix(obj) & m->mask;
    while (m->val[j] != CS_NONE) {
        if (m->key[j] == obj)
            return m->val[j];
        j = (j + 1) & m->mask;
    }
    m->key[j] = obj;
    m->val[j] = (uint32_t)m->n++;
    return m->val[j];
}

bool cs_read_oracle(const char *path, uint32_t max_requests, uint32_t fixed_size,
                    struct cs_trace *tr, char *err, size_t errlen)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) {
        snprintf(err, errlen, "cannot open %s", path);
        return false;
    }
    struct idmap m = {0};
    unsigned char rec[24];
    uint32_t t0 = 0;
    bool ok = true;
    size_t got;
    while (tr->n < max_requests && (got = fread(rec, 1, sizeof(rec), f)) == sizeof(rec)) {
        uint32_t t, size;
        uint64_t obj;
        memcpy(&t, rec, 4);          /* the format is little-endian, as is x86 */
        memcpy(&obj, rec + 4, 8);
        memcpy(&size, rec + 12, 4);
        if (tr->n == 0)
            t0 = t;
        uint32_t id = idmap_get(&m, obj);
        if (id == CS_NONE || !cs_trace_push(tr, t >= t0 ? t - t0 : 0, id,
                                            fixed_size ? fixed_size : size, 0)) {
            snprintf(err, errlen, "out of memory after %u requests", tr->n);
            ok = false;
            break;
        }
    }
    if (ok && ferror(f)) {
        snprintf(err, errlen, "read error in %s", path);
        ok = false;
    }
    if (f != stdin)
        fclose(f);
    free(m.key);
    free(m.val);
    if (ok && tr->n == 0) {
        snprintf(err, errlen, "%s: no complete 24-byte record", path);
        ok = false;
    }
    if (ok) {
        const char *b = strrchr(path, '/');
        snprintf(tr->name, sizeof(tr->name), "%s", b ? b + 1 : path);
        cs_trace_finish(tr);
    }
    return ok;
}
