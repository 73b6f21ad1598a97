/*
 * steer.bpf.c — the SK_REUSEPORT program that steers each memcached UDP
 * datagram to the socket of the worker owning its (first) key, so workers
 * rarely have to forward. Runs in the kernel, in softirq context, once per
 * datagram arriving on a percore UDP port; its maps are written only by the
 * main thread at start-up (net/steer.c) and read-only afterwards.
 *
 * It hashes with key_hash()/key_slot() from util/hash.h, the very code the
 * workers run, and maps slot -> worker through `slots`, a copy of
 * slot_owner[]. Anything it does not understand (another command, odd
 * spacing, a key longer than 250 bytes, a malformed frame) is left to the
 * kernel's hash (SK_PASS without a selection): the workers check ownership
 * anyway, so a wrong or missing choice costs a forward, never a wrong
 * answer.
 */
#include <linux/bpf.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include "util/hash.h"

#define FRAME     8          /* memcached's UDP frame header */
#define HEAD      24         /* command bytes looked at: "gats <exptime> " fits */
#define KEYBUF    256        /* a 250-byte key and its CRLF */
#define MAX_SOCKS 64         /* MAX_WORKERS */

struct {
    __uint(type, BPF_MAP_TYPE_REUSEPORT_SOCKARRAY);
    __uint(max_entries, MAX_SOCKS);
    __type(key, __u32);
    __type(value, __u64);
} socks SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, SLOT_COUNT);
    __type(key, __u32);
    __type(value, __u32);
} slots SEC(".maps");

/* Does the command start with the n-byte string s? c8 holds its first 8
 * bytes, little-endian; clang folds s into a constant. */
static __always_inline int is(__u64 c8, const char *s, int n)
{
    __u64 w = 0;
#pragma unroll
    for (int i = 0; i < n; i++)
        w |= (__u64)(unsigned char)s[i] << (8 * i);
    __u64 mask = n == 8 ? ~0ull : (1ull << (8 * n)) - 1;
    return (c8 & mask) == w;
}

/* Offset of the first key from the start of the command, 0 if unknown. */
static __always_inline __u32 key_start(const unsigned char *c)
{
    __u64 c8;
    __builtin_memcpy(&c8, c, 8);
    if (is(c8, "get ", 4) || is(c8, "set ", 4) || is(c8, "add ", 4) || is(c8, "cas ", 4))
        return 4;
    if (is(c8, "gets ", 5) || is(c8, "incr ", 5) || is(c8, "decr ", 5))
        return 5;
    if (is(c8, "mg ", 3) || is(c8, "ms ", 3) || is(c8, "md ", 3) || is(c8, "ma ", 3))
        return 3;   /* base64 keys ("b" flag) hash differently: forwarded */
    if (is(c8, "delete ", 7) || is(c8, "append ", 7))
        return 7;
    if (is(c8, "replace ", 8) || is(c8, "prepend ", 8))
        return 8;
    if (is(c8, "touch ", 6))
        return 6;
    if (is(c8, "gat ", 4) || is(c8, "gats ", 5)) {
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
static __always_inline __u64 fit(__u64 v, __u64 max)
{
    if (v > max)
        v = max;
    asm volatile("" : "+r"(v));
    return v;
}

SEC("sk_reuseport")
int steer(struct sk_reuseport_md *ctx)
{
    unsigned char head[FRAME + HEAD];
    unsigned char key[KEYBUF];
    __u32 base = sizeof(struct udphdr);   /* skb data starts at the UDP header */
    __u32 len = ctx->len;

    if (len <= base + FRAME + 4)
        return SK_PASS;
    __u64 n = fit(len - base, sizeof head);
    if (n == 0 || n > sizeof head)
        return SK_PASS;
    __builtin_memset(head, 0, sizeof head);
    if (bpf_skb_load_bytes(ctx, base, head, n) < 0)
        return SK_PASS;
    if (head[4] != 0 || head[5] != 1)   /* not a single-datagram request */
        return SK_PASS;
    __u32 ks = key_start(head + FRAME);
    if (!ks)
        return SK_PASS;

    __u32 off = base + FRAME + ks;
    if (off >= len)
        return SK_PASS;
    /* Nothing computed here stays live past the load, so every command's
     * path merges into one verifier state. */
    n = fit(len - off, KEYBUF);
    if (n == 0 || n > KEYBUF)
        return SK_PASS;
    __builtin_memset(key, 0, sizeof key);
    if (bpf_skb_load_bytes(ctx, off, key, n) < 0)
        return SK_PASS;

    /* The key ends at a space or at the line's end (CRLF or LF), exactly
     * where the text parser's tokenizer ends it. A NUL is taken as the end
     * of the loaded bytes: such a key is left to the kernel's hash. */
    __u32 klen = 0;
    for (__u32 i = 0; i <= KEY_MAX_LENGTH; i++) {
        unsigned char ch = key[i];
        if (ch == ' ' || ch == '\n' || (ch == '\r' && key[i + 1] == '\n')) {
            klen = i;
            break;
        }
        if (ch == 0 || i == KEY_MAX_LENGTH)
            return SK_PASS;              /* cut short, or longer than any key */
    }
    if (!klen)
        return SK_PASS;

    __u32 slot = key_slot(key_hash(key, klen));
    __u32 *owner = bpf_map_lookup_elem(&slots, &slot);
    if (!owner)
        return SK_PASS;
    /* Fails only while a socket is missing from the array: then the
     * kernel's hash picks one and the worker forwards. */
    bpf_sk_select_reuseport(ctx, &socks, owner, 0);
    return SK_PASS;
}

char LICENSE[] SEC("license") = "GPL";
