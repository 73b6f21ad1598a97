/*
 * numparse.c — number parsing with memcached's acceptance rules (see
 * numparse.h). Pure functions, any thread.
 *
 * The parsers run per request, so they scan the span once by hand instead
 * of copying it out for strto*(); each states the strto* behaviour it
 * reproduces, since that is what memcached (and so the tests) define.
 */
#include <limits.h>
#include <string.h>
#include "util/numparse.h"

static bool blank(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* The strto*() scan of a NUL-terminated copy of s[0..n): leading blanks,
 * a sign, decimal digits accumulated without passing 2^64 - 1, then the
 * copy's end, a NUL inside the span or a blank. Spans of 64 bytes or more
 * are refused, as the old fixed scratch copy refused them. *mag is the
 * magnitude, *neg the sign. */
static bool scan(const char *s, size_t n, uint64_t *mag, bool *neg)
{
    size_t i = 0;
    uint64_t v = 0;
    if (n == 0 || n >= 64)
        return false;
    while (i < n && blank(s[i]))
        i++;
    *neg = i < n && s[i] == '-';
    if (i < n && (s[i] == '+' || s[i] == '-'))
        i++;
    size_t digits = i;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;   /* ERANGE */
        v = v * 10 + d;
    }
    if (i == digits || (i < n && s[i] != '\0' && !blank(s[i])))
        return false;
    *mag = v;
    return true;
}

/* strtoul() on a 64-bit long, then memcached's safe_strtoul: a '-' is
 * refused when the wrapped result reads as negative or exceeds 32 bits,
 * so "-0" passes and so does a '-' whose wrap lands in 32 bits; values
 * above 32 bits without a sign are truncated. */
bool parse_u32_trunc(const char *s, size_t n, uint32_t *out)
{
    uint64_t v;
    bool neg;
    if (!scan(s, n, &v, &neg))
        return false;
    if (neg) {
        v = -v;
        if ((int64_t)v < 0 || v > UINT32_MAX)
            return false;
    }
    *out = (uint32_t)v;
    return true;
}

/* strtol() on a 64-bit long, then a range check to int32. */
bool parse_i32(const char *s, size_t n, int32_t *out)
{
    uint64_t v;
    bool neg;
    if (!scan(s, n, &v, &neg))
        return false;
    if (neg ? v > (uint64_t)INT32_MAX + 1 : v > INT32_MAX)
        return false;
    *out = neg ? (int32_t)(0 - v) : (int32_t)v;
    return true;
}
/* safe_strtoull over n bytes: what strtoull() accepts (leading blanks, a
 * sign, decimal digits, no overflow), then the end or a blank; a '-' is
 * refused when the negated result would read as negative. */
bool parse_u64(const char *s, size_t n, uint64_t *out)
{
    size_t i = 0;
    uint64_t v = 0;
    while (i < n && blank(s[i]))
        i++;
    bool neg = i < n && s[i] == '-';
    if (i < n && (s[i] == '+' || s[i] == '-'))
        i++;
    size_t digits = i;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (i == digits || (i < n && !blank(s[i])))
        return false;
    if (neg) {
        v = -v;
        if ((int64_t)v < 0)
            return false;
    }
    *out = v;
    return true;
}
