/*
 * numparse.c — strict number parsing with memcached's acceptance rules
 * (leading blanks and a sign allowed, the whole token must be consumed,
 * negative values refused for unsigned fields). Pure functions.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include "proto/proto.h"

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

bool parse_u64(const char *s, size_t n, uint64_t *out)
{
    char tmp[64], *end;
    if (!scratch(s, n, tmp, sizeof tmp))
        return false;
    errno = 0;
    unsigned long long l = strtoull(tmp, &end, 10);
    if (errno == ERANGE || !tail_ok(tmp, end))
        return false;
    if ((long long)l < 0 && memchr(tmp, '-', (size_t)(end - tmp)))
        return false;
    *out = l;
    return true;
}
