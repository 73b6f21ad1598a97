/*
 * steer_requests.h — the memcached UDP requests and random keys that the
 * steering tests (test_steer_hash.c: sk_reuseport programs; test_xdp_hash.c:
 * the XDP program) feed to the kernel-side hash. One definition, so both
 * programs are checked against exactly the same command mix.
 * Header-only, no state.
 */
#ifndef PERCORE_TEST_STEER_REQUESTS_H
#define PERCORE_TEST_STEER_REQUESTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* A key of `len` bytes drawn from what the text protocol accepts in a key:
 * anything but space, CR, LF and NUL (the BPF programs take NUL as the end
 * of the loaded bytes). With `plain`, only letters, digits and ":_-". */
static inline size_t steer_random_key(char *k, size_t len, unsigned *seed, bool plain)
{
    static const char alnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:_-";
    for (size_t i = 0; i < len; i++) {
        unsigned r = (unsigned)rand_r(seed);
        char c;
        if (plain) {
            c = alnum[r % (sizeof alnum - 1)];
        } else {
            do
                c = (char)(r++ % 255 + 1);
            while (c == ' ' || c == '\r' || c == '\n');
        }
        k[i] = c;
    }
    return len;
}

/* Request number i for key k, cycling through every steered command:
 * frame header (request id i, sequence 0, one datagram) + the command. */
static inline size_t steer_request(char *d, unsigned i, const char *k, size_t klen)
{
    static const char *const pre[] = {
        "get ", "gets ", "gat 100 ", "gats -1 ", "set ", "add ", "replace ", "append ",
        "prepend ", "cas ", "delete ", "incr ", "decr ", "touch ", "mg ", "ms ", "md ", "ma ",
    };
    static const char *const post[] = {
        "\r\n", "\r\n", "\r\n", "\r\n", " 0 0 1\r\nx\r\n", " 1 2 1\r\nx\r\n", " 0 0 1\r\nx\r\n",
        " 0 0 1\r\nx\r\n", " 0 0 1\r\nx\r\n", " 0 0 1 99\r\nx\r\n", "\r\n", " 1\n", " 1\r\n",
        " 10\r\n", " v k\r\n", " 1 T0\r\nx\r\n", "\r\n", " D1\r\n",
    };
    unsigned c = i % (sizeof pre / sizeof pre[0]);
    const char hdr[8] = { (char)(i >> 8), (char)i, 0, 0, 0, 1, 0, 0 };
    size_t n = 0;
    memcpy(d, hdr, sizeof hdr);
    n += sizeof hdr;
    memcpy(d + n, pre[c], strlen(pre[c]));
    n += strlen(pre[c]);
    memcpy(d + n, k, klen);
    n += klen;
    memcpy(d + n, post[c], strlen(post[c]));
    return n + strlen(post[c]);
}

#endif
