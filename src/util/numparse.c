/*
 * numparse.c — number parsing with memcached's acceptance rules (see
 * numparse.h). Pure functions, any thread.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include "util/numparse.h"

/* Copy a token into a NUL-terminated scratch buffer for strto*(). */
static bool scratch(const char *s, size_t n, char *tmp, size_t cap)
{
    if (n == 0 || n >= cap)
        return false;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    return true;
}

static bool tail_ok(const char *start, const char *end)
{
    return end != start && (*end == '\0' || isspace((unsigned char)*end));
}

bool parse_u32_trunc(const char *s, size_t n, uint32_t *out)
{
    char tmp[64], *end;
    if (!scratch(s, n, tmp, sizeof tmp))
        return false;
    errno = 0;
    unsigned long l = strtoul(tmp, &end, 10);
    if (errno == ERANGE || !tail_ok(tmp, end))
        return false;
    if ((long)l < 0 && memchr(tmp, '-', (size_t)(end - tmp)))
        return false;
    if (l > UINT32_MAX && memchr(tmp, '-', (size_t)(end - tmp)))
        return false;
    *out = (uint32_t)l;
    return true;
}

bool parse_i32(const char *s, size_t n, int32_t *out)
{
    char tmp[64], *end;
    if (!scratch(s, n, tmp, sizeof tmp))
        return false;
    errno = 0;
    long l = strtol(tmp, &end, 10);
    if (errno == ERANGE || !tail_ok(tmp, end))
        return false;
    if (l > INT_MAX || l < INT_MIN)
        return false;
    *out = (int32_t)l;
    return true;
}

static bool blank(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
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
