/* test_prefix_stats.c — unit tests of the `stats detail` tables
 * (src/proto/prefix_stats.c): counting by prefix, keys without a delimiter,
 * summing tables in the dump, clearing. Single-threaded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proto/prefix_stats.h"

static void rec(struct pfx_table *t, const char *k, enum pfx_kind kind, bool hit)
{
    pfx_record(t, k, strlen(k), kind, hit);
}

static void test_count_and_sum(void **state)
{
    (void)state;
    struct pfx_table *t[2] = { pfx_create(), pfx_create() };
    rec(t[0], "user:1", PFX_GET, true);
    rec(t[0], "user:2", PFX_GET, false);
    rec(t[1], "user:3", PFX_SET, false);
    rec(t[1], "sess:9", PFX_DEL, false);
    rec(t[1], "nodelim", PFX_GET, true);
    rec(t[0], ":empty", PFX_SET, false);
    struct buf o = {0};
    pfx_dump(t, 2, &o);
    buf_add(&o, "", 1);
    /* one line per prefix, summed over the tables, in no set order */
    assert_non_null(strstr(o.data, "PREFIX user get 2 hit 1 set 1 del 0\r\n"));
    assert_non_null(strstr(o.data, "PREFIX  get 0 hit 0 set 1 del 0\r\n"));
    assert_non_null(strstr(o.data, "PREFIX sess get 0 hit 0 set 0 del 1\r\n"));
    assert_int_equal(o.len, 113);   /* those three, END, and the NUL added above */
    buf_free(&o);
    pfx_clear(t[0]);
    pfx_clear(t[1]);
    pfx_dump(t, 2, &o);
    assert_int_equal(o.len, 5);
    buf_free(&o);
    pfx_destroy(t[0]);
    pfx_destroy(t[1]);
}

static void test_many_prefixes(void **state)
{
    (void)state;
    struct pfx_table *t = pfx_create();
    char k[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(k, sizeof k, "p%d:x", i);
        rec(t, k, PFX_GET, i % 2);
        rec(t, k, PFX_GET, i % 2);
    }
    struct buf o = {0};
    pfx_dump(&t, 1, &o);
    buf_add(&o, "", 1);
    assert_non_null(strstr(o.data, "PREFIX p4999 get 2 hit 2 set 0 del 0\r\n"));
    assert_non_null(strstr(o.data, "PREFIX p0 get 2 hit 0 set 0 del 0\r\n"));
    buf_free(&o);
    pfx_destroy(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_count_and_sum),
        cmocka_unit_test(test_many_prefixes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
