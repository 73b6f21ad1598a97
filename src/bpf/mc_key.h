/*
 * mc_key.h — finds the first key of a memcached UDP request, for the two
 * eBPF steering programs (steer.bpf.c at the socket, xdp_steer.bpf.c at the
 * driver). One parser for both, so the two hooks can never disagree on
 * which key a datagram is steered by. Pure functions on the program's own
 * stack; no state.
 *
 * The includer defines MC_LOAD(ctx, off, buf, n), the program type's
 * "copy n packet bytes at off" helper (bpf_skb_load_bytes or
 * bpf_xdp_load_bytes): reading through a helper into zeroed stack buffers
 * keeps the scan verifiable whatever the packet layout.
 */
#ifndef PERCORE_BPF_MC_KEY_H
#define PERCORE_BPF_MC_KEY_H

#include "util/hash.h"

#define MC_FRAME  8          /* memcached's UDP frame header */
#define MC_HEAD   24         /* command bytes looked at: "gats <exptime> " fits */
#define MC_KEYBUF 256        /* a 250-byte key and its CRLF */

/* Does the command start with the n-byte string s? c8 holds its first 8
 * bytes, little-endian; clang folds s into a constant. */
static __always_inline int mc_is(__u64 c8, const char *s, int n)
{
    __u64 w = 0;
#pragma unroll
    for (int i = 0; i < n; i++)
        w |= (__u64)(unsigned char)s[i] << (8 * i);
    __u64 mask = n == 8 ? ~0ull : (1ull << (8 * n)) - 1;
    return (c8 & mask) == w;
}

/* Offset of the first key from the start of the command, 0 if unknown. */
static __always_inline __u32 mc_key_start(const unsigned char *c)
{
    __u64 c8;
    __builtin_memcpy(&c8, c, 8);
    if (mc_is(c8, "get ", 4) || mc_is(c8, "set ", 4) || mc_is(c8, "add ", 4) || mc_is(c8, "cas ", 4))
        return 4;
    if (mc_is(c8, "gets ", 5) || mc_is(c8, "incr ", 5) || mc_is(c8, "decr ", 5))
        return 5;
    if (mc_is(c8, "mg ", 3) || mc_is(c8, "ms ", 3) || mc_is(c8, "md ", 3) || mc_is(c8, "ma ", 3))
        return 3;   /* base64 keys ("b" flag) hash differently: forwarded */
    if (mc_is(c8, "delete ", 7) || mc_is(c8, "append ", 7))
        return 7;
    if (mc_is(c8, "replace ", 8) || mc_is(c8, "prepend ", 8))
        return 8;
    if (mc_is(c8, "touch ", 6))
        return 6;
    if (mc_is(c8, "gat ", 4) || mc_is(c8, "gats ", 5)) {
        /* gat <exptime> <key>: skip a signed decimal exptime. */
        __u32 i = c[3] == ' ' ? 4 : 5;
        if (c[i] == '-')
            i++;
#pragma unroll
        for (int k = 0; k < 11; k++) {
            if (c[i] < '0' || c[i] > '9')
                break;
            i++;
        }
        return c[i] == ' ' ? i + 1 : 0;
    }
    return 0;
}

/* min(v, max), checked again after a compiler barrier so that the bound is
 * on the very register passed to the helper, where the verifier needs it. */
static __always_inline __u64 mc_fit(__u64 v, __u64 max)
{
    if (v > max)
        v = max;
    asm volatile("" : "+r"(v));
    return v;
}

/*
 * The slot of the first key of the request whose frame header starts at
 * packet offset `base` and which ends at `len`; -1 when there is none to
 * steer by (not a single-datagram request, another command, odd spacing, a
 * key cut short or longer than 250 bytes, a NUL in the key).
 */
static __always_inline int mc_first_slot(void *ctx, __u32 base, __u32 len)
{
    unsigned char head[MC_FRAME + MC_HEAD];
    unsigned char key[MC_KEYBUF];

    if (len <= base + MC_FRAME + 4)
        return -1;
    __u64 n = mc_fit(len - base, sizeof head);
    if (n == 0 || n > sizeof head)
        return -1;
    __builtin_memset(head, 0, sizeof head);
    if (MC_LOAD(ctx, base, head, n) < 0)
        return -1;
    if (head[4] != 0 || head[5] != 1)   /* not a single-datagram request */
        return -1;
    __u32 ks = mc_key_start(head + MC_FRAME);
    if (!ks)
        return -1;

    __u32 off = base + MC_FRAME + ks;
    if (off >= len)
        return -1;
    /* Nothing computed here stays live past the load, so every command's
     * path merges into one verifier state. */
    n = mc_fit(len - off, MC_KEYBUF);
    if (n == 0 || n > MC_KEYBUF)
        return -1;
    __builtin_memset(key, 0, sizeof key);
    if (MC_LOAD(ctx, off, key, n) < 0)
        return -1;

    /* The key ends at a space or at the line's end (CRLF or LF), exactly
     * where the text parser's tokenizer ends it. A NUL is taken as the end
     * of the loaded bytes: such a key is not steered. */
    __u32 klen = 0;
    for (__u32 i = 0; i <= KEY_MAX_LENGTH; i++) {
        unsigned char ch = key[i];
        if (ch == ' ' || ch == '\n' || (ch == '\r' && key[i + 1] == '\n')) {
            klen = i;
            break;
        }
        if (ch == 0 || i == KEY_MAX_LENGTH)
            return -1;              /* cut short, or longer than any key */
    }
    if (!klen)
        return -1;
    return (int)key_slot(key_hash(key, klen));
}

#endif
