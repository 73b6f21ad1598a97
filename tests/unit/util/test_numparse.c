/*
 * test_numparse.c — the hand-written parse_u32_trunc/parse_i32 against the
 * strtoul/strtol versions they replaced (kept here as the reference):
 * same verdict and value on hand-picked edge cases and on random spans
 * drawn from the characters that matter (digits, signs, blanks, NUL).
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "util/numparse.h"

static bool ref_scratch(const char *s, size_t n, char *tmp, size_t cap)
{
    if (n == 0 || n >= cap)
        return false;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    return true;
}

static bool ref_tail_ok(const char *start, const char *end)
{
    return end != start && (*end == '\0' || isspace((unsigned char)*end));
}

static bool ref_u32_trunc(const char *s, size_t n, uint32_t *out)
{
    char tmp[64], *end;
    if (!ref_scratch(s, n, tmp, sizeof tmp))
        return false;
    errno = 0;
    unsigned long l = strtoul(tmp, &end, 10);
    if (errno == ERANGE || !ref_tail_ok(tmp, end))
        return false;
    if ((long)l < 0 && memchr(tmp, '-', (size_t)(end - tmp)))
        return false;
    if (l > UINT32_MAX && memchr(tmp, '-', (size_t)(end - tmp)))
        return false;
    *out = (uint32_t)l;
    return true;
}

static bool ref_i32(const char *s, size_t n, int32_t *out)
{
    char tmp[64], *end;
    if (!ref_scratch(s, n, tmp, sizeof tmp))
        return false;
    errno = 0;
    long l = strtol(tmp, &end, 10);
    if (errno == ERANGE || !ref_tail_ok(tmp, end))
        return false;
    if (l > INT_MAX || l < INT_MIN)
        return false;
    *out = (int32_t)l;
    return true;
}

static void same(const char *s, size_t n)
{
    uint32_t u = 7, ru = 7;
    int32_t i = 7, ri = 7;
    bool a = parse_u32_trunc(s, n, &u), b = ref_u32_trunc(s, n, &ru);
    if (a != b || u != ru)
        fail_msg("u32 '%.*s' (%zu): %d/%u vs ref %d/%u", (int)n, s, n, a, u, b, ru);
    a = parse_i32(s, n, &i);
    b = ref_i32(s, n, &ri);
    if (a != b || i != ri)
        fail_msg("i32 '%.*s' (%zu): %d/%d vs ref %d/%d", (int)n, s, n, a, i, b, ri);
}

static void test_edges(void **state)
{
    static const char *cases[] = {
        "0", "1", "-0", "+0", "-1", "+1", "007", " 5", "\t5", "5 ", "5\t", "5x", "x5",
        "", " ", "-", "+", "--1", "+-1", "1-", " -5",
        "2147483647", "2147483648", "-2147483648", "-2147483649",
        "4294967295", "4294967296", "-4294967295", "-4294967296",
        "9223372036854775807", "9223372036854775808", "-9223372036854775808",
        "-9223372036854775809", "18446744073709551615", "18446744073709551616",
        "-18446744073709551615", "-18446744073709551616", "-18446744069414584320",
        "-18446744069414584321", "-10000000000000000000", "99999999999999999999999",
        "000000000000000000000000000000000000000000000000000000000000001",
        "0000000000000000000000000000000000000000000000000000000000000001",
        "1\v", "1\f", "1\r", "1\n", "\r\n1",
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
        same(cases[k], strlen(cases[k]));
    same("5\0x", 3);
    same("\0" "5", 2);
    same("-\0" "5", 3);
}

static void test_random(void **state)
{
    static const char alpha[] = "0123456789999000-+ \t\r\nx\0";
    char s[80];
    unsigned seed = 12345;
    for (int r = 0; r < 200000; r++) {
        seed = seed * 1103515245u + 12345u;
        size_t n = (seed >> 16) % 70;
        for (size_t k = 0; k < n; k++) {
            seed = seed * 1103515245u + 12345u;
            unsigned pick = (seed >> 16) % 100;
            /* mostly digits, so long numbers and overflows come up */
            s[k] = pick < 70 ? (char)('0' + pick % 10) : alpha[pick % (sizeof alpha - 1)];
        }
        same(s, n);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edges),
        cmocka_unit_test(test_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
