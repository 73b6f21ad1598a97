/*
 * cachesim.h — the offline cache simulator's shared types: a request trace
 * held in memory (dense object ids, each request knowing the index of the
 * next request for the same object, so Belady's OPT can look ahead) and the
 * interface every replacement policy implements. Single-threaded: the
 * simulator runs one policy at a time on the calling thread.
 */
#ifndef CACHESIM_H
#define CACHESIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CS_NONE UINT32_MAX

/* One request. `next` is the index of the next request for the same id
 * (CS_NONE if none); `ttl` is 0 (never expires) or seconds from `t`. */
struct cs_req {
    uint32_t t;       /* seconds since the trace's start */
    uint32_t id;      /* dense object id, 0 .. nobj-1 */
    uint32_t size;    /* key + value bytes */
    uint32_t ttl;
    uint32_t next;
};

struct cs_trace {
    struct cs_req *r;
    uint32_t n, cap;
    uint32_t nobj;
    uint64_t footprint;   /* bytes of all distinct objects (last size seen) */
    char     name[64];
};

/* trace.c */
bool cs_trace_push(struct cs_trace *tr, uint32_t t, uint32_t id, uint32_t size, uint32_t ttl);
void cs_trace_finish(struct cs_trace *tr);   /* computes next[] and footprint */
void cs_trace_free(struct cs_trace *tr);

/* gen.c: synthetic workloads, see cachesim.c's usage text */
struct cs_gen {
    const char *kind;     /* zipf | scan | shift | ttl */
    double   alpha;
    uint32_t keys;
    uint32_t requests;
    uint32_t size;        /* key + value bytes of every object */
    uint32_t rate;        /* requests per simulated second */
    double   scan_frac;   /* scan: share of requests that belong to the scan */
    uint32_t scan_keys;   /* scan: size of the scanned key space */
    uint32_t shift_every; /* shift: requests between popularity shifts */
    uint64_t seed;
    bool     prefill;     /* first request every key once, in id order */
    bool     hot_first;   /* rank r is key r (percore-bench's mapping), not scattered */
};
bool cs_generate(const struct cs_gen *g, struct cs_trace *tr, char *err, size_t errlen);

/* oracle.c: libCacheSim's oracleGeneral binary format */
bool cs_read_oracle(const char *path, uint32_t max_requests, uint32_t fixed_size,
                    struct cs_trace *tr, char *err, size_t errlen);

/* A policy caches whole objects within `cap` bytes, each charged
 * charge(size). access() looks request i up, returns true on a hit and,
 * on a miss, admits the object (fill on miss) as the policy decides. */
struct cs_policy {
    const char *name;
    void *(*create)(uint64_t cap, const struct cs_trace *tr);
    bool  (*access)(void *p, const struct cs_trace *tr, uint32_t i);
    void  (*destroy)(void *p);
};

extern const struct cs_policy cs_lru, cs_lru_mc, cs_fifo, cs_s3fifo, cs_sieve, cs_opt,
    cs_percore, cs_topk;

/* memcached 1.6's cost of an object: the 48-byte item header + CAS, the key
 * with its NUL, the value with "\r\n", rounded up to its slab class
 * (chunks from 96 B growing by 1.25, 8-byte aligned). */
uint64_t cs_memcached_charge(uint32_t size);

#endif
