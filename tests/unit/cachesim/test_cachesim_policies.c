/*
 * test_cachesim_policies.c — the simulator's policies on small traces whose
 * outcome was worked out by hand (LRU, FIFO, SIEVE, S3-FIFO, OPT), OPT
 * against an exhaustive search of every admit/evict choice on random short
 * traces, the static top-K (A0) policy, TTL expiry, memcached's charge, the oracleGeneral reader, the
 * generators, and the real store behind "percore". Single-threaded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../../bench/cachesim/cachesim.h"

/* a trace from a string of one-letter object names (A-Z, then a-z as 26
 * more objects), all of `size` bytes, one request per second */
static void mk(struct cs_trace *tr, const char *s, uint32_t size, uint32_t ttl)
{
    memset(tr, 0, sizeof(*tr));
    for (uint32_t i = 0; s[i]; i++)
        assert_true(cs_trace_push(tr, i, (uint32_t)(s[i] >= 'a' ? s[i] - 'a' + 26 : s[i] - 'A'),
                                  size, ttl));
    cs_trace_finish(tr);
}

/* the hit/miss pattern ('h' / 'm') of a policy on a trace */
static void run(const struct cs_policy *p, const struct cs_trace *tr, uint64_t cap, char *out)
{
    void *inst = p->create(cap, tr);
    assert_non_null(inst);
    for (uint32_t i = 0; i < tr->n; i++)
        out[i] = p->access(inst, tr, i) ? 'h' : 'm';
    out[tr->n] = 0;
    p->destroy(inst);
}

static void expect(const struct cs_policy *p, const char *trace, uint64_t cap, const char *want)
{
    struct cs_trace tr;
    char got[256];
    mk(&tr, trace, 10, 0);
    run(p, &tr, cap, got);
    if (strcmp(got, want))
        fail_msg("%s on %s (cap %llu): got %s, want %s", p->name, trace,
                 (unsigned long long)cap, got, want);
    cs_trace_free(&tr);
}

/* Three objects fit. After A B C A: LRU evicts B for D, FIFO evicts A;
 * OPT never admits C or D (never asked for again). SIEVE: the hand finds
 * A visited, clears it and evicts B; later C, unvisited, goes for B. */
static void test_hand_checked(void **st)
{
    (void)st;
    expect(&cs_lru, "ABCADAB", 30, "mmmhmhm");
    expect(&cs_fifo, "ABCADAB", 30, "mmmhmmm");
    expect(&cs_opt, "ABCADAB", 30, "mmmhmhh");
    expect(&cs_sieve, "ABCADAB", 30, "mmmhmhm");
    /* an object larger than the cache is never admitted */
    expect(&cs_lru, "AA", 5, "mm");
    expect(&cs_opt, "AA", 5, "mm");
}

/* topk keeps the most requested objects that fit, known from the whole
 * trace: A (3 requests) and B (2); C and D (one each) are never admitted.
 * Equal counts go to the lower id; an object asked for once is not kept
 * even with room to spare. */
static void test_topk(void **st)
{
    (void)st;
    expect(&cs_topk, "ABCADAB", 30, "mmmhmhh");
    expect(&cs_topk, "AABBCC", 20, "mhmhmm");
    expect(&cs_topk, "ABCA", 100, "mmmh");
}

/* S3-FIFO: A read while in the small queue moves to the main queue and
 * survives a run of one-hit wonders that flushes LRU and FIFO; B, seen
 * once and dropped to the ghost queue, returns straight into the main one
 * and survives the next run. Ten objects fit, the small queue is one. */
static void test_s3fifo_one_hit_wonders(void **st)
{
    (void)st;
    const char *t = "AAEFGHIJKLMNOPQRSTUVWXYZA" "B" "cdefghijkl" "B" "mnopqrstuvwxyz" "B";
    struct cs_trace tr;
    char s3[128], lru[128], sv[128];
    mk(&tr, t, 10, 0);
    run(&cs_s3fifo, &tr, 100, s3);
    run(&cs_lru, &tr, 100, lru);
    run(&cs_sieve, &tr, 100, sv);
    size_t a = 24, b1 = 25, b2 = 36, b3 = 51;
    assert_int_equal(s3[a], 'h');
    assert_int_equal(lru[a], 'm');
    assert_int_equal(sv[a], 'h');          /* SIEVE keeps the visited A too */
    assert_int_equal(s3[b1], 'm');
    assert_int_equal(s3[b2], 'm');         /* B was dropped to the ghost queue ... */
    assert_int_equal(s3[b3], 'h');         /* ... came back into M and stayed */
    assert_int_equal(lru[b3], 'm');
    cs_trace_free(&tr);
}

/* Expired objects miss for every policy; before the expiry they hit. */
static void test_ttl(void **st)
{
    (void)st;
    const struct cs_policy *ps[] = { &cs_lru, &cs_lru_mc, &cs_fifo, &cs_s3fifo, &cs_sieve,
                                     &cs_opt, &cs_percore };
    struct cs_trace tr = {0};
    /* A at t=0 with TTL 5: hit at t=4, miss at t=5 (expired), then
     * re-admitted at t=5 until t=10: hit at t=9 */
    uint32_t ts[] = { 0, 4, 5, 9 };
    for (unsigned i = 0; i < 4; i++)
        assert_true(cs_trace_push(&tr, ts[i], 0, 120, 5));
    cs_trace_finish(&tr);
    for (unsigned k = 0; k < sizeof(ps) / sizeof(ps[0]); k++) {
        char got[8];
        run(ps[k], &tr, 1 << 20, got);
        if (strcmp(got, "mhmh"))
            fail_msg("%s: got %s", ps[k]->name, got);
    }
    cs_trace_free(&tr);
}

/* The fewest misses any policy (admit or not, evict anything) can have,
 * by dynamic programming over the sets of cached objects. */
static unsigned brute_min(const struct cs_trace *tr, unsigned nobj, unsigned capn)
{
    unsigned best[1 << 6], nb[1 << 6];
    unsigned nmask = 1u << nobj;
    for (unsigned m = 0; m < nmask; m++)
        best[m] = m ? 1000 : 0;
    for (uint32_t i = 0; i < tr->n; i++) {
        unsigned bit = 1u << tr->r[i].id;
        for (unsigned m = 0; m < nmask; m++)
            nb[m] = 1000;
        for (unsigned m = 0; m < nmask; m++) {
            if (best[m] >= 1000)
                continue;
            unsigned cost = best[m] + !(m & bit);
            unsigned from = m | ((m & bit) ? 0 : 0);
            /* afterwards: any subset of what is cached, plus the object */
            for (unsigned m2 = 0; m2 < nmask; m2++) {
                if ((m2 & ~(from | bit)) || (unsigned)__builtin_popcount(m2) > capn)
                    continue;
                if (cost < nb[m2])
                    nb[m2] = cost;
            }
        }
        memcpy(best, nb, sizeof(best));
    }
    unsigned b = 1000;
    for (unsigned m = 0; m < nmask; m++)
        if (best[m] < b)
            b = best[m];
    return b;
}

static void test_opt_is_optimal(void **st)
{
    (void)st;
    uint64_t s = 12345;
    for (int round = 0; round < 300; round++) {
        char t[20];
        unsigned nobj = 3 + round % 3, n = 8 + round % 10, capn = 1 + round % 3;
        for (unsigned i = 0; i < n; i++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            t[i] = (char)('A' + (s >> 33) % nobj);
        }
        t[n] = 0;
        struct cs_trace tr;
        char got[32];
        mk(&tr, t, 10, 0);
        run(&cs_opt, &tr, 10 * capn, got);
        unsigned miss = 0;
        for (unsigned i = 0; i < n; i++)
            miss += got[i] == 'm';
        unsigned want = brute_min(&tr, tr.nobj, capn);
        if (miss != want)
            fail_msg("opt on %s cap %u: %u misses, optimum %u", t, capn, miss, want);
        /* and no online policy beats it */
        const struct cs_policy *ps[] = { &cs_lru, &cs_fifo, &cs_s3fifo, &cs_sieve };
        for (unsigned k = 0; k < 4; k++) {
            char o[32];
            unsigned m2 = 0;
            run(ps[k], &tr, 10 * capn, o);
            for (unsigned i = 0; i < n; i++)
                m2 += o[i] == 'm';
            assert_true(m2 >= want);
        }
        cs_trace_free(&tr);
    }
}

static void test_memcached_charge(void **st)
{
    (void)st;
    /* 20 B key + 100 B value: 56 + 120 + 3 = 179 B, in the 192 B class */
    assert_int_equal(cs_memcached_charge(120), 192);
    assert_int_equal(cs_memcached_charge(1), 96);
    assert_int_equal(cs_memcached_charge(61), 120);
}

static void test_oracle_reader(void **st)
{
    (void)st;
    char path[] = "/tmp/cachesim-test-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    struct { uint32_t t; uint64_t id; uint32_t size; int64_t next; } __attribute__((packed)) rec[] = {
        { 1000, 77, 300, -1 }, { 1001, 5, 40, -1 }, { 1003, 77, 300, -1 }, { 1004, 9, 0, -1 },
    };
    assert_int_equal(sizeof(rec[0]), 24);
    assert_int_equal(write(fd, rec, sizeof(rec)), (ssize_t)sizeof(rec));
    assert_int_equal(write(fd, "xyz", 3), 3);     /* a torn last record is ignored */
    close(fd);
    struct cs_trace tr = {0};
    char err[128];
    assert_true(cs_read_oracle(path, 100, 0, &tr, err, sizeof(err)));
    assert_int_equal(tr.n, 4);
    assert_int_equal(tr.nobj, 3);
    assert_int_equal(tr.r[0].id, 0);
    assert_int_equal(tr.r[1].id, 1);
    assert_int_equal(tr.r[2].id, 0);
    assert_int_equal(tr.r[2].t, 3);
    assert_int_equal(tr.r[0].next, 2);
    assert_int_equal(tr.r[1].next, CS_NONE);
    assert_int_equal(tr.r[3].size, 1);            /* size 0 counts as 1 byte */
    assert_int_equal(tr.footprint, 300 + 40 + 1);
    cs_trace_free(&tr);
    /* --max-requests and --fixed-size */
    assert_true(cs_read_oracle(path, 2, 120, &tr, err, sizeof(err)));
    assert_int_equal(tr.n, 2);
    assert_int_equal(tr.r[0].size, 120);
    cs_trace_free(&tr);
    unlink(path);
    assert_false(cs_read_oracle(path, 2, 0, &tr, err, sizeof(err)));
}

static void test_generators(void **st)
{
    (void)st;
    struct cs_gen g = { .kind = "scan", .alpha = 0.99, .keys = 1000, .requests = 20000,
                        .size = 120, .rate = 1000, .scan_frac = 0.2, .scan_keys = 100000,
                        .seed = 3 };
    struct cs_trace tr = {0};
    char err[128];
    assert_true(cs_generate(&g, &tr, err, sizeof(err)));
    unsigned scan = 0;
    for (uint32_t i = 0; i < tr.n; i++) {
        scan += tr.r[i].id >= 1000;
        assert_true(tr.r[i].id < 1000 + 100000);
        assert_int_equal(tr.r[i].t, i / 1000);
        if (tr.r[i].id >= 1000)
            assert_int_equal(tr.r[i].next, CS_NONE);   /* one-hit wonders */
    }
    assert_in_range(scan, 3500, 4500);
    cs_trace_free(&tr);
    g.kind = "ttl";
    assert_true(cs_generate(&g, &tr, err, sizeof(err)));
    unsigned never = 0;
    for (uint32_t i = 0; i < tr.n; i++)
        never += tr.r[i].ttl == 0;
    assert_in_range(never, 1000, 8000);
    cs_trace_free(&tr);
    g.kind = "nope";
    assert_false(cs_generate(&g, &tr, err, sizeof(err)));
}

/* The real store: everything fits, so the second pass only hits; a store
 * a tenth the footprint's size evicts but keeps the hottest keys. */
static void test_percore_store(void **st)
{
    (void)st;
    struct cs_trace tr = {0};
    for (int pass = 0; pass < 2; pass++)
        for (uint32_t id = 0; id < 5000; id++)
            assert_true(cs_trace_push(&tr, 0, id, 120, 0));
    cs_trace_finish(&tr);
    void *p = cs_percore.create(4 << 20, &tr);
    assert_non_null(p);
    unsigned hits = 0;
    for (uint32_t i = 0; i < tr.n; i++)
        hits += cs_percore.access(p, &tr, i);
    cs_percore.destroy(p);
    assert_int_equal(hits, 5000);
    cs_trace_free(&tr);

    struct cs_gen g = { .kind = "zipf", .alpha = 0.99, .keys = 100000, .requests = 400000,
                        .size = 120, .rate = 100000, .seed = 5 };
    char err[128];
    assert_true(cs_generate(&g, &tr, err, sizeof(err)));
    p = cs_percore.create(tr.footprint / 10, &tr);
    hits = 0;
    for (uint32_t i = 0; i < tr.n; i++)
        hits += cs_percore.access(p, &tr, i);
    cs_percore.destroy(p);
    assert_in_range(hits, tr.n / 3, tr.n - 100000);
    cs_trace_free(&tr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hand_checked),
        cmocka_unit_test(test_s3fifo_one_hit_wonders),
        cmocka_unit_test(test_topk),
        cmocka_unit_test(test_ttl),
        cmocka_unit_test(test_opt_is_optimal),
        cmocka_unit_test(test_memcached_charge),
        cmocka_unit_test(test_oracle_reader),
        cmocka_unit_test(test_generators),
        cmocka_unit_test(test_percore_store),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
