/*
 * test_snapshot.c — unit tests of warm restart at the store level
 * (store/seg_map.c, store/snapshot.c): a store on a file in /dev/shm is
 * saved, destroyed and restored from the same file; the restored store is
 * consistent (test_store_check.h) and answers every item with its flags,
 * CAS and exptime; a changed byte or a different geometry is refused; items
 * move to other stores keeping their CAS. Single-threaded, like the store.
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

#include "store/snapshot.h"
#include "store/store.h"
#include "store/store_int.h"
#include "test_store_check.h"

#define MB (1024u * 1024u)
#define NKEYS 20000

static char path[128];

struct buf {
    uint8_t *p;
    size_t n, cap;
};

static bool put_buf(void *ctx, const void *p, size_t n)
{
    struct buf *b = ctx;
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
    return true;
}

static struct store *mk(size_t mem, unsigned shard, bool keep, const char *file)
{
    struct store_config c = { .mem_limit = mem, .item_max = 2 * MB, .seg_size = 64 * 1024,
                              .shard_id = shard,
                              .use_cas = true, .mem_path = file, .mem_keep = keep };
    struct store *s = store_create(&c);
    assert_non_null(s);
    store_clock(s, 5000);
    return s;
}

static size_t vlen_of(unsigned i)
{
    return i % 997 == 0 ? 200000 + i : (i * 37) % 1500;   /* a few large items */
}

static void fill(struct store *s, uint64_t *cas)
{
    static char val[300000];
    for (size_t i = 0; i < sizeof val; i++)
        val[i] = (char)(i * 7);
    for (unsigned i = 0; i < NKEYS; i++) {
        char k[32];
        int kl = snprintf(k, sizeof k, "key:%u", i);
        uint32_t exp = i % 5 == 0 ? 0 : i % 5 == 1 ? 5002 : 5100 + (i % 300) * 10;
        assert_int_equal(store_put(s, SM_SET, k, (size_t)kl, val + i % 64, vlen_of(i), i * 11u,
                                   exp, 0, &cas[i]), ST_OK);
    }
    /* some dead bytes: overwrites and deletes */
    for (unsigned i = 0; i < NKEYS; i += 7) {
        char k[32];
        int kl = snprintf(k, sizeof k, "key:%u", i);
        assert_int_equal(store_delete(s, k, (size_t)kl, 0), ST_OK);
        cas[i] = 0;
    }
}

static void expect_all(struct store *s, const uint64_t *cas, uint32_t now)
{
    for (unsigned i = 0; i < NKEYS; i++) {
        char k[32];
        int kl = snprintf(k, sizeof k, "key:%u", i);
        struct item_view iv;
        int st = store_peek(s, k, (size_t)kl, &iv);
        uint32_t exp = i % 5 == 0 ? 0 : i % 5 == 1 ? 5002 : 5100 + (i % 300) * 10;
        if (cas[i] == 0 || (exp && exp <= now)) {
            assert_int_equal(st, ST_MISS);
            continue;
        }
        assert_int_equal(st, ST_OK);
        assert_int_equal(iv.vlen, vlen_of(i));
        assert_int_equal(iv.flags, i * 11u);
        assert_int_equal(iv.exptime, exp);
        assert_true(store_view_cas(s, &iv) == cas[i]);
    }
}

static struct buf save(struct store *s)
{
    struct buf b = { 0 };
    assert_true(store_save(s, put_buf, &b));
    return b;
}

static void test_save_restore_same(void **state)
{
    static uint64_t cas[NKEYS];
    struct store *s = mk(64 * MB, 2, false, path);
    fill(s, cas);
    struct store_stats before;
    store_get_stats(s, &before);
    uint32_t nprob = s->nprob;
    assert_true(nprob > 0);
    struct buf b = save(s);
    store_destroy(s);

    s = mk(64 * MB, 2, true, path);
    store_clock(s, 5003);     /* time passed: the 5002 items expired */
    char why[256] = "";
    assert_true(store_restore(s, b.p, b.n, why, sizeof why));
    check_consistency(s);
    check_mem(s);
    expect_all(s, cas, 5003);
    /* probation rebuilt: its count, and a queue of its sealed segments */
    assert_int_equal(s->nprob, nprob);
    uint32_t sealed = 0;
    for (uint32_t id = 0; id < s->seg_fresh; id++)
        sealed += s->segs[id].prob && s->segs[id].state == SEG_SEALED;
    assert_int_equal(s->probq_n, sealed);
    struct store_stats after;
    store_get_stats(s, &after);
    assert_true(after.curr_items < before.curr_items);
    assert_true(after.large_items <= before.large_items);   /* expired ones dropped */
    /* new writes get CAS values no restored item has */
    uint64_t c;
    assert_int_equal(store_put(s, SM_SET, "new", 3, "v", 1, 0, 0, 0, &c), ST_OK);
    for (unsigned i = 0; i < NKEYS; i++)
        assert_true(c != cas[i]);
    check_consistency(s);
    store_destroy(s);
    free(b.p);
}

static void test_changed_byte_refused(void **state)
{
    static uint64_t cas[NKEYS];
    struct store *s = mk(64 * MB, 2, false, path);
    fill(s, cas);
    /* a byte in the middle of a live segment */
    uint32_t id = s->ttl[TTL_NEVER].head;
    assert_true(id != NONE32);
    struct buf b = save(s);
    uint8_t *p = s->arena + (size_t)id * s->seg_size + s->segs[id].wpos / 2;
    *p ^= 0x20;
    store_destroy(s);

    s = mk(64 * MB, 2, true, path);
    char why[256] = "";
    assert_false(store_restore(s, b.p, b.n, why, sizeof why));
    assert_non_null(strstr(why, "checksum"));
    store_destroy(s);

    /* and a store of another size refuses the section outright */
    s = mk(32 * MB, 2, false, path);
    assert_false(store_restore(s, b.p, b.n, why, sizeof why));
    assert_non_null(strstr(why, "geometry differs"));
    store_destroy(s);

    /* a truncated section */
    s = mk(64 * MB, 2, true, path);
    assert_false(store_restore(s, b.p, b.n - 9, why, sizeof why));
    store_destroy(s);
    free(b.p);
}

struct two {
    struct store *dst[2];
    unsigned n[2];
};

static bool move_one(void *arg, const struct store_copy *c)
{
    struct two *t = arg;
    unsigned w = (unsigned)(c->key[c->klen - 1] & 1);
    assert_int_equal(store_restore_put(t->dst[w], c), ST_OK);
    t->n[w]++;
    return true;
}

static void test_rehome_keeps_cas(void **state)
{
    static uint64_t cas[NKEYS];
    struct store *s = mk(64 * MB, 0, false, path);
    fill(s, cas);
    struct buf b = save(s);
    store_destroy(s);

    s = mk(64 * MB, 0, true, path);
    char why[256] = "";
    assert_true(store_restore(s, b.p, b.n, why, sizeof why));
    struct two t = { { mk(40 * MB, 0, false, NULL), mk(40 * MB, 1, false, NULL) }, { 0, 0 } };
    uint64_t floor = store_cas_floor(s);
    assert_true(store_restore_each(s, move_one, &t));
    store_destroy(s);
    for (int w = 0; w < 2; w++) {
        store_cas_raise(t.dst[w], floor);
        check_consistency(t.dst[w]);
        check_mem(t.dst[w]);
    }
    for (unsigned i = 0; i < NKEYS; i++) {
        char k[32];
        int kl = snprintf(k, sizeof k, "key:%u", i);
        struct item_view iv;
        int st = store_peek(t.dst[k[kl - 1] & 1], k, (size_t)kl, &iv);
        if (cas[i] == 0) {
            assert_int_equal(st, ST_MISS);
            continue;
        }
        assert_int_equal(st, ST_OK);
        assert_int_equal(iv.vlen, vlen_of(i));
        assert_int_equal(iv.flags, i * 11u);
        assert_true(store_view_cas(t.dst[k[kl - 1] & 1], &iv) == cas[i]);
    }
    for (int w = 0; w < 2; w++) {
        uint64_t c;
        assert_int_equal(store_put(t.dst[w], SM_SET, "new", 3, "v", 1, 0, 0, 0, &c), ST_OK);
        for (unsigned i = 0; i < NKEYS; i++)
            assert_true(c != cas[i]);
        store_destroy(t.dst[w]);
    }
    free(b.p);
}

int main(void)
{
    snprintf(path, sizeof path, "/dev/shm/percore-test-snapshot.%d", (int)getpid());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_save_restore_same),
        cmocka_unit_test(test_changed_byte_refused),
        cmocka_unit_test(test_rehome_keeps_cas),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    unlink(path);
    return rc;
}
