/*
 * test_hash.c — the key hash and slot table: known FNV-1a vectors, the
 * 250-byte bound, and that slots spread keys evenly over workers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include "util/hash.h"

static void test_fnv_vectors(void **state)
{
    /* Published FNV-1a 32-bit test vectors. */
    assert_int_equal(key_hash("", 0), 0x811c9dc5u);
    assert_int_equal(key_hash("a", 1), 0xe40c292cu);
    assert_int_equal(key_hash("foobar", 6), 0xbf9cf968u);
}

static void test_bound(void **state)
{
    char a[300], b[300];
    memset(a, 'x', sizeof a);
    memset(b, 'x', sizeof b);
    b[299] = 'y';   /* differs only past byte 250 */
    assert_int_equal(key_hash(a, 300), key_hash(b, 300));
    assert_int_equal(key_hash(a, 300), key_hash(a, 250));
}

static void test_slots_spread(void **state)
{
    for (unsigned n = 1; n <= 8; n++) {
        slots_init(n);
        unsigned count[8] = {0};
        char key[32];
        for (int i = 0; i < 80000; i++) {
            int len = snprintf(key, sizeof key, "key:%d", i);
            unsigned o = key_owner(key, (size_t)len);
            assert_true(o < n);
            count[o]++;
        }
        for (unsigned w = 0; w < n; w++) {
            /* within 10% of a fair share */
            assert_true(count[w] > 80000 / n * 9 / 10);
            assert_true(count[w] < 80000 / n * 11 / 10);
        }
    }
}

static void test_slot_table_covers_workers(void **state)
{
    slots_init(3);
    unsigned seen[3] = {0};
    for (unsigned s = 0; s < SLOT_COUNT; s++)
        seen[slot_owner[s]]++;
    assert_true(seen[0] >= 341 && seen[1] >= 341 && seen[2] >= 341);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fnv_vectors),
        cmocka_unit_test(test_bound),
        cmocka_unit_test(test_slots_spread),
        cmocka_unit_test(test_slot_table_covers_workers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
