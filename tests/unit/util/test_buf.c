/*
 * test_buf.c — output buffers with references (util/buf.h): bytes and
 * references come out of buf_iov in order from any offset, buf_append moves
 * references (and their pins) without releasing them, and every pin is
 * released exactly once. Single-threaded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "util/buf.h"

static int unpins[8];

static void count_unpin(uint16_t owner, uint32_t pin)
{
    (void)owner;
    unpins[pin]++;
}

static size_t flatten(const struct buf *b, size_t off, char *out)
{
    struct iovec iov[3];   /* small batches: the caller continues */
    size_t n = 0, total = buf_size(b);
    while (off + n < total) {
        size_t k = buf_iov(b, off + n, SIZE_MAX, iov, 3);
        assert_true(k > 0);
        for (size_t i = 0; i < k; i++) {
            memcpy(out + n, iov[i].iov_base, iov[i].iov_len);
            n += iov[i].iov_len;
        }
    }
    return n;
}

static void test_refs_in_order(void **state)
{
    (void)state;
    buf_unpin = count_unpin;
    memset(unpins, 0, sizeof unpins);
    static const char v1[] = "0123456789", v2[] = "abcdef";
    struct buf a = {0}, b = {0};
    buf_adds(&a, "H1:");
    buf_ref(&a, v1, 10, 0, 1);
    buf_adds(&a, "|");
    buf_ref(&a, v2, 6, 0, 2);
    buf_ref(&a, v1, 3, 0, 3);
    buf_adds(&b, "B:");
    buf_ref(&b, v2, 2, 1, 4);
    buf_adds(&b, "!");
    assert_true(buf_append(&a, &b));
    assert_int_equal(buf_size(&b), 0);
    buf_free(&b);
    const char *want = "H1:0123456789|abcdef012B:ab!";
    assert_int_equal(buf_size(&a), strlen(want));
    char out[64];
    for (size_t off = 0; off <= strlen(want); off++) {
        size_t n = flatten(&a, off, out);
        assert_int_equal(n, strlen(want) - off);
        assert_memory_equal(out, want + off, n);
    }
    /* a byte limit cuts the pieces, across own bytes and references */
    struct iovec iov[8];
    size_t k = buf_iov(&a, 1, 5, iov, 8), sum = 0;
    for (size_t i = 0; i < k; i++)
        sum += iov[i].iov_len;
    assert_int_equal(k, 2);
    assert_int_equal(sum, 5);
    assert_memory_equal(iov[0].iov_base, "1:", 2);
    assert_memory_equal(iov[1].iov_base, "012", 3);
    for (int i = 0; i < 8; i++)
        assert_int_equal(unpins[i], 0);
    buf_reset(&a);
    assert_int_equal(buf_size(&a), 0);
    for (int i = 1; i <= 4; i++)
        assert_int_equal(unpins[i], 1);
    buf_free(&a);
    for (int i = 1; i <= 4; i++)
        assert_int_equal(unpins[i], 1);
}

/* buf_add_u64 writes what printf's %llu writes: the edges of each digit
 * count and a million random values of every magnitude. */
static void test_add_u64(void **state)
{
    static const uint64_t edge[] = { 0, 1, 9, 10, 11, 99, 100, 101, 999, 1000, 12345,
                                     4294967295ull, 9999999999999999999ull,
                                     10000000000000000000ull, 18446744073709551615ull };
    struct buf b = {0};
    char ref[32];
    srand(7);
    for (int i = 0; i < 1000000 + (int)(sizeof edge / sizeof edge[0]); i++) {
        uint64_t v;
        if (i < (int)(sizeof edge / sizeof edge[0]))
            v = edge[i];
        else
            v = (((uint64_t)rand() << 33) ^ ((uint64_t)rand() << 2) ^ (uint64_t)rand()) >> (rand() % 64);
        b.len = 0;
        assert_true(buf_add_u64(&b, v));
        snprintf(ref, sizeof ref, "%llu", (unsigned long long)v);
        assert_int_equal(b.len, strlen(ref));
        assert_memory_equal(b.data, ref, b.len);
    }
    buf_free(&b);
}

/* buf_dec() against printf: every digit count's edges and a dense range. */
static void check_dec(uint64_t v)
{
    char want[32], got[32];
    int n = snprintf(want, sizeof want, "%llu", (unsigned long long)v);
    size_t m = buf_dec(got, v);
    assert_int_equal(m, (size_t)n);
    assert_memory_equal(got, want, m);
}

static void test_dec(void **state)
{
    (void)state;
    for (uint64_t v = 0; v < 200000; v++)
        check_dec(v);
    for (uint64_t t = 10; t != 0 && t <= UINT64_MAX / 10; t *= 10) {
        check_dec(t - 1);
        check_dec(t);
        check_dec(t + 1);
    }
    check_dec(UINT64_MAX);
    check_dec(UINT64_MAX - 1);
    check_dec(4294967295u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refs_in_order),
        cmocka_unit_test(test_add_u64),
        cmocka_unit_test(test_dec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
