/*
 * text_line.h — the text protocol's one-pass line scanning, shared by the
 * parser (text_parse.c) and the connection's single-key get and plain
 * storage paths (net/conn.c), so both take exactly the same lines. Pure
 * functions, no state.
 */
#ifndef PERCORE_TEXT_LINE_H
#define PERCORE_TEXT_LINE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include "util/hash.h"
#include "proto/request.h"

/* Index of the first byte <= ' ' in p[0..n) (blank, CR, LF or another
 * control byte: where a word of a fast-path line ends), or n. Eight bytes
 * a step, as keys run to tens of bytes and every get scans one: a byte
 * below 0x21 sets its top bit in (w - 0x21..) & ~w, and the lowest byte
 * so flagged is exact (borrows only run upward from a true hit). */
static inline size_t word_end(const char *p, size_t n)
{
    size_t i = 0;
#if defined(__SSE2__)
    /* Sixteen bytes a step where SSE2 is there (every x86-64): a byte is
     * <= ' ' exactly when the unsigned minimum with ' ' is the byte. */
    if (n >= 16) {
        const __m128i sp = _mm_set1_epi8(' ');
        for (; i + 16 <= n; i += 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
            unsigned m = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(v, sp), v));
            if (m)
                return i + (size_t)__builtin_ctz(m);
        }
        if (i < n) {
            /* The last 16 bytes: those overlapping the loop's are known clean. */
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + n - 16));
            unsigned m = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(v, sp), v));
            return m ? n - 16 + (size_t)__builtin_ctz(m) : n;
        }
        return n;
    }
#endif
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const uint64_t lo = 0x2121212121212121ull, hi = 0x8080808080808080ull;
    uint64_t w, m;
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, p + i, 8);
        if ((m = (w - lo) & ~w & hi))
            return i + (size_t)(__builtin_ctzll(m) >> 3);
    }
    if (i < n && n >= 8) {
        /* The last 8 bytes: those overlapping the loop's are known clean. */
        memcpy(&w, p + n - 8, 8);
        m = (w - lo) & ~w & hi;
        return m ? n - 8 + (size_t)(__builtin_ctzll(m) >> 3) : n;
    }
#endif
    for (; i < n; i++)
        if ((unsigned char)p[i] <= ' ')
            return i;
    return n;
}

/* The length of the key at p (avail bytes from p to the end of the
 * input): the fast paths' key rule, one word of 1 to KEY_MAX_LENGTH bytes
 * ended by a blank or the line's end. 0 when it is empty, too long, or
 * runs to the end of what has arrived (the line is not all here). */
static inline size_t fast_key(const char *p, size_t avail)
{
    size_t lim = avail < KEY_MAX_LENGTH + 1 ? avail : KEY_MAX_LENGTH + 1;
    size_t n = word_end(p, lim);
    return n == lim ? 0 : n;
}

/* Bytes of the line terminator at q (CRLF or LF), 0 if q does not end the
 * line. The general path's rule: the line ends at the first LF, less a CR
 * just before it. */
static inline size_t eol_at(const char *q, const char *end)
{
    if (end - q >= 2 && memcmp(q, "\r\n", 2) == 0)
        return 2;
    return q < end && *q == '\n';
}

/* Could data[0..len) be a text_get_line() below? Its first test alone, for
 * callers that would otherwise pay a call to learn "no" (a set, say). */
static inline bool text_get_start(const char *data, size_t len)
{
    return len >= 6 && memcmp(data, "get", 3) == 0;
}

/* The line nearly every text request is: does data[0..len) start with a
 * whole single-key `get <key>` or `gets <key>` line (one space, CRLF or LF)
 * that text_parse() would take as exactly that? Then returns the line's
 * bytes with *op and the key set; the caller may run it as the parser
 * would (the request, then "END\r\n") and parse on after it. 0 otherwise
 * (anything else, or not all here yet): text_parse() judges it. */
static inline size_t text_get_line(const char *data, size_t len, uint8_t *op,
                                   const char **key, size_t *klen)
{
    size_t k;
    if (len < 6)   /* "get k\n" */
        return 0;
    if (memcmp(data, "get ", 4) == 0) {
        *op = OP_GET, k = 4;
    } else if (memcmp(data, "gets ", 5) == 0) {
        *op = OP_GETS, k = 5;
    } else {
        return 0;
    }
    /* fast_line()'s rules for the key and the line's end. */
    size_t n = fast_key(data + k, len - k);
    if (n == 0)
        return 0;
    size_t eol = eol_at(data + k + n, data + len);
    if (!eol)
        return 0;   /* more keys, or another blank */
    *key = data + k;
    *klen = n;
    return k + n + eol;
}

/* 1 to 9 decimal digits at q (anything longer or signed goes the general
 * way): the value, and where they end; NULL if none. Nine digits fit the
 * int32 and uint32 fields with no range check. */
static inline const char *line_num(const char *q, const char *end, uint32_t *v)
{
    /* One digit (flags and exptime are nearly always 0): no loop. */
    if (end - q >= 2 && (unsigned)((unsigned char)q[0] - '0') < 10 &&
        (unsigned)((unsigned char)q[1] - '0') >= 10) {
        *v = (uint32_t)(q[0] - '0');
        return q + 1;
    }
    const char *d = q, *lim = end - q > 10 ? q + 10 : end;
    uint32_t x = 0;
    unsigned c;
    /* One bound for the digits and the buffer's end: ten bytes at most. */
    while (q < lim && (c = (unsigned char)*q - '0') < 10) {
        x = x * 10 + c;
        q++;
    }
    *v = x;
    return (q == d || q - d > 9) ? NULL : q;
}

/* A plain storage command line, as text_store_line() read it. */
struct store_line {
    uint8_t     op;        /* OP_SET, OP_ADD, OP_REPLACE, OP_APPEND, OP_PREPEND */
    bool        noreply;
    const char *key;
    size_t      klen;
    uint32_t    flags, exptime, vlen;
    size_t      text;      /* the line's bytes without its terminator (-vv trace) */
};

/* Can a line starting with byte b be one text_store_line() takes? A test
 * to skip it cheaply for every other line (meta commands, gets). */
static inline bool text_store_first(char b)
{
    return b == 's' || b == 'a' || b == 'r' || b == 'p';
}

/* Does data[0..len) start with a whole `set|add|replace|append|prepend
 * <key> <flags> <exptime> <bytes>[ noreply]` line (one space between
 * words, 1 to 9 plain digits each, CRLF or LF) that text_parse() would
 * take as exactly that? Then returns the line's bytes with its terminator
 * and fills *sl; the data block (not looked at here) follows. 0 otherwise
 * (cas, signs, other blanks, a sixth word that is not noreply, an
 * over-long key, not all here yet): text_parse() judges it. */
static inline size_t text_store_line(const char *data, size_t len, struct store_line *sl)
{
    size_t k;
    if (len < 12)   /* "set k 0 0 0\n" */
        return 0;
    if (memcmp(data, "set ", 4) == 0) {
        sl->op = OP_SET, k = 4;
    } else if (memcmp(data, "add ", 4) == 0) {
        sl->op = OP_ADD, k = 4;
    } else if (memcmp(data, "replace ", 8) == 0) {
        sl->op = OP_REPLACE, k = 8;
    } else if (memcmp(data, "append ", 7) == 0) {
        sl->op = OP_APPEND, k = 7;
    } else if (memcmp(data, "prepend ", 8) == 0) {
        sl->op = OP_PREPEND, k = 8;
    } else {
        return 0;
    }
    const char *end = data + len, *key = data + k;
    size_t klen = fast_key(key, len - k);
    if (klen == 0)
        return 0;   /* empty, over KEY_MAX_LENGTH, or the line is not all here */
    const char *q = key + klen;
    if (*q != ' ' || !(q = line_num(q + 1, end, &sl->flags)) || q == end || *q != ' ' ||
        !(q = line_num(q + 1, end, &sl->exptime)) || q == end || *q != ' ' ||
        !(q = line_num(q + 1, end, &sl->vlen)))
        return 0;
    /* memcached's set_noreply_maybe: a sixth word "noreply". */
    sl->noreply = end - q >= 8 && memcmp(q, " noreply", 8) == 0;
    if (sl->noreply)
        q += 8;
    size_t eol = eol_at(q, end);
    if (!eol)
        return 0;
    sl->key = key;
    sl->klen = klen;
    sl->text = (size_t)(q - data);
    return sl->text + eol;
}

#endif
