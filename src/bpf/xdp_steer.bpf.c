/*
 * xdp_steer.bpf.c — the XDP program that sends each memcached UDP request,
 * right after the driver, to the CPU of the worker owning its (first) key,
 * through a cpumap: the kernel's whole receive path (IP, UDP, the socket
 * look-up, where steer.bpf.c then picks the owner's socket) runs on the
 * owner's core. Runs in the driver's NAPI poll (native) or in
 * netif_receive_skb (generic), on whichever CPU received the packet. Maps
 * and the read-only globals are written by the main thread at start-up
 * (net/xdp_steer.c); afterwards the program writes only its per-CPU
 * counters, which user space only reads.
 *
 * Anything else — not IPv4/IPv6 + UDP to percore's port, an IP fragment,
 * IPv6 extension headers, VLAN tags, a request with no key to steer by —
 * is XDP_PASS untouched: the reuseport program and the workers' own
 * ownership check still get it to the right worker, at the cost of a
 * forward at worst.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include "util/hash.h"

#define MC_LOAD(ctx, off, buf, n) bpf_xdp_load_bytes(ctx, off, buf, n)
#include "bpf/mc_key.h"
#include "util/xdp_abi.h"

/* Set by the loader before load, constant for the verifier. */
const volatile __u16 udp_port = 0;   /* host order */

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, SLOT_COUNT);
    __type(key, __u32);
    __type(value, __u32);
} xslots SEC(".maps");               /* slot -> worker: slot_owner[] */

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, XDP_MAX_WORKERS);
    __type(key, __u32);
    __type(value, __u32);
} worker_cpu SEC(".maps");           /* worker -> the CPU it is pinned to */

struct {
    __uint(type, BPF_MAP_TYPE_CPUMAP);
    __uint(max_entries, 1);          /* resized to the possible CPUs at load */
    __type(key, __u32);
    __type(value, struct bpf_cpumap_val);
} cpus SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, XDP_CNT_N);
    __type(key, __u32);
    __type(value, __u64);
} counts SEC(".maps");

static __always_inline int count(__u32 i, int verdict)
{
    __u64 *c = bpf_map_lookup_elem(&counts, &i);
    if (c)
        (*c)++;
    return verdict;
}

/* One's complement sum of 16-bit words, folded. */
static __always_inline __u32 fold(__u32 s)
{
    s = (s & 0xffff) + (s >> 16);
    return (s & 0xffff) + (s >> 16);
}

/*
 * Does the UDP checksum field hold just the pseudo-header sum? That is what
 * a local sender leaves there when it hands the rest to checksum offload
 * (CHECKSUM_PARTIAL: a veth peer, a container). The skb knows, but a packet
 * redirected from native XDP becomes a bare frame and the checksum would
 * then be verified, fail, and the datagram be dropped; such packets are
 * passed instead. A real checksum that happens to equal this value (1 in
 * 65,536) is merely not steered. Words are summed as stored: the one's
 * complement sum does not care about byte order.
 */
static __always_inline int csum_partial4(const struct iphdr *ip, const struct udphdr *udp)
{
    __u32 s = (ip->saddr & 0xffff) + (ip->saddr >> 16) + (ip->daddr & 0xffff) +
              (ip->daddr >> 16) + bpf_htons(IPPROTO_UDP) + udp->len;
    return udp->check == fold(s);
}

static __always_inline int csum_partial6(const struct ipv6hdr *ip6, const struct udphdr *udp)
{
    const __u16 *a = (const __u16 *)&ip6->saddr;   /* saddr and daddr: 16 words */
    __u32 s = bpf_htons(IPPROTO_UDP) + udp->len;
#pragma unroll
    for (int i = 0; i < 16; i++)
        s += a[i];
    return udp->check == fold(s);
}

/* The whole program; guard_csum is a constant (see the two entry points). */
static __always_inline int steer(struct xdp_md *ctx, const int guard_csum)
{
    void *data = (void *)(long)ctx->data;
    void *end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    __u32 off = sizeof *eth;
    struct iphdr *ip = NULL;
    struct ipv6hdr *ip6 = NULL;

    if ((void *)(eth + 1) > end)
        return count(XDP_CNT_PASSED, XDP_PASS);
    if (eth->h_proto == bpf_htons(ETH_P_IP)) {
        ip = data + off;
        if ((void *)(ip + 1) > end || ip->protocol != IPPROTO_UDP || ip->ihl < 5)
            return count(XDP_CNT_PASSED, XDP_PASS);
        if (ip->frag_off & bpf_htons(0x3fff))   /* MF or an offset: a fragment */
            return count(XDP_CNT_PASSED, XDP_PASS);
        off += ip->ihl * 4u;
    } else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
        ip6 = data + off;
        if ((void *)(ip6 + 1) > end || ip6->nexthdr != IPPROTO_UDP)
            return count(XDP_CNT_PASSED, XDP_PASS);
        off += sizeof *ip6;
    } else {
        return count(XDP_CNT_PASSED, XDP_PASS);
    }
    if (off > 80)   /* at most 14 + 60: keeps the offset small for the verifier */
        return count(XDP_CNT_PASSED, XDP_PASS);
    struct udphdr *udp = data + off;
    if ((void *)(udp + 1) > end || udp->dest != bpf_htons(udp_port))
        return count(XDP_CNT_PASSED, XDP_PASS);
    if (guard_csum && (ip ? csum_partial4(ip, udp) : ip6 && csum_partial6(ip6, udp)))
        return count(XDP_CNT_CSUM_PARTIAL, XDP_PASS);

    /* The datagram ends where the UDP length says (short frames may carry
     * Ethernet padding after it), and never past the packet. */
    __u32 len = off + bpf_ntohs(udp->len);
    __u32 pkt = (__u32)(end - data);
    if (len > pkt)
        len = pkt;
    int slot = mc_first_slot(ctx, off + sizeof *udp, len);
    if (slot < 0)
        return count(XDP_CNT_UNPARSABLE, XDP_PASS);
    __u32 s = (__u32)slot;
    __u32 *w = bpf_map_lookup_elem(&xslots, &s);
    if (!w || *w >= XDP_MAX_WORKERS)
        return count(XDP_CNT_NO_CPU, XDP_PASS);
    __u32 worker = *w;
    __u32 *cpu = bpf_map_lookup_elem(&worker_cpu, &worker);
    if (!cpu)
        return count(XDP_CNT_NO_CPU, XDP_PASS);
    /* XDP_PASS as the fallback: a CPU missing from the map passes. */
    int verdict = bpf_redirect_map(&cpus, *cpu, XDP_PASS);
    if (verdict != XDP_REDIRECT)
        return count(XDP_CNT_NO_CPU, verdict);
    return count(XDP_CNT_REDIRECTED + worker, verdict);
}

/* Native mode: the packet is a bare frame, and so is what the cpumap gets. */
SEC("xdp")
int xdp_steer(struct xdp_md *ctx)
{
    return steer(ctx, 1);
}

/* Generic mode: the skb itself is queued to the owner's CPU, keeping its
 * checksum state, so nothing needs guarding. */
SEC("xdp")
int xdp_steer_skb(struct xdp_md *ctx)
{
    return steer(ctx, 0);
}

/*
 * Runs in the cpumap's kthread, on the CPU the packet was sent to, just
 * before the kernel builds the skb: counting here per CPU shows where the
 * steered requests really landed (stats: xdp_arrived_cpu_N).
 */
SEC("xdp/cpumap")
int xdp_arrived(struct xdp_md *ctx)
{
    return count(XDP_CNT_ARRIVED, XDP_PASS);
}

char LICENSE[] SEC("license") = "GPL";
