/*
 * steer.bpf.c — the SK_REUSEPORT program that steers each memcached UDP
 * datagram to the socket of the worker owning its (first) key, so workers
 * rarely have to forward. Runs in the kernel, in softirq context, once per
 * datagram arriving on a percore UDP port; its maps are written only by the
 * main thread at start-up (net/steer.c) and read-only afterwards.
 *
 * It finds the key with bpf/mc_key.h (shared with the XDP program) and
 * hashes with key_hash()/key_slot() from util/hash.h, the very code the
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

#define MC_LOAD(ctx, off, buf, n) bpf_skb_load_bytes(ctx, off, buf, n)
#include "bpf/mc_key.h"

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

SEC("sk_reuseport")
int steer(struct sk_reuseport_md *ctx)
{
    /* skb data starts at the UDP header during the socket lookup. */
    int slot = mc_first_slot(ctx, sizeof(struct udphdr), ctx->len);
    if (slot < 0)
        return SK_PASS;
    __u32 s = (__u32)slot;
    __u32 *owner = bpf_map_lookup_elem(&slots, &s);
    if (!owner)
        return SK_PASS;
    /* Fails only while a socket is missing from the array: then the
     * kernel's hash picks one and the worker forwards. */
    bpf_sk_select_reuseport(ctx, &socks, owner, 0);
    return SK_PASS;
}

char LICENSE[] SEC("license") = "GPL";
