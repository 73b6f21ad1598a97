/*
 * text_line.h — the text protocol's one-pass line scanning, shared by the
 * parser (text_parse.c) and the connection's single-key get path
 * (net/conn.c), so both take exactly the same lines. Pure functions, no
 * state.
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

/* Bytes of the line terminator at q (CRLF or LF), 0 if q does not end the
 * line. The general path's rule: the line ends at the first LF, less a CR
 * just before it. */
static inline size_t eol_at(const char *q, const char *end)
{
    if (end - q >= 2 && memcmp(q, "\r\n", 2) == 0)
        return 2;
    return q < end && *q == '\n';
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
    size_t lim = len - k < KEY_MAX_LENGTH + 1 ? len - k : KEY_MAX_LENGTH + 1;
    size_t n = word_end(data + k, lim);
    if (n == 0 || n == lim)
        return 0;
    size_t eol = eol_at(data + k + n, data + len);
    if (!eol)
        return 0;   /* more keys, or another blank */
    *key = data + k;
    *klen = n;
    return k + n + eol;
}

#endif
