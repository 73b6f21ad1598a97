/*
 * test_xdp_hash.c — proves that the XDP steering program (src/bpf/
 * xdp_steer.bpf.c) sends every request to the CPU of the worker that
 * key_owner() names, on 100,000 random keys, and passes what it must not
 * touch. XDP programs can be run without an interface through
 * BPF_PROG_TEST_RUN: each request is built as a whole Ethernet frame
 * (IPv4 or IPv6, UDP, memcached frame header, a command from the steered
 * set), run through the loaded program, and the program's own per-worker
 * counters say which worker it chose. Skipped without CAP_BPF (or root).
 * Single-threaded; owns the loaded program (net/xdp_steer.c's state).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "util/hash.h"
#include "util/xdp_abi.h"
#include "net/xdp_steer.h"
#include "steer_requests.h"

#ifdef HAVE_BPF
#include <bpf/bpf.h>
#include <linux/bpf.h>
#endif

#define NWORKERS 4
#define PORT     11311
#define NKEYS    100000

#ifdef HAVE_BPF

struct pkt {
    unsigned char pad[2];   /* as NET_IP_ALIGN: puts the IP header on a 4-byte boundary */
    unsigned char b[640];
    uint32_t len;
};

/* Ethernet + IPv4/IPv6 + UDP around `payload`; `pad` zero bytes after the
 * datagram, as a NIC adds to frames under 60 bytes. */
static void build(struct pkt *p, bool v6, uint16_t proto, uint16_t dport, uint16_t frag,
                  const void *payload, size_t n, size_t pad)
{
    memset(p->b, 0, sizeof p->b);
    struct ethhdr *eth = (struct ethhdr *)p->b;
    eth->h_proto = htons(v6 ? ETH_P_IPV6 : ETH_P_IP);
    size_t off = sizeof *eth;
    size_t l4 = (proto == IPPROTO_UDP ? sizeof(struct udphdr) : 20) + n;
    if (v6) {
        struct ipv6hdr *ip6 = (struct ipv6hdr *)(p->b + off);
        ip6->version = 6;
        ip6->payload_len = htons((uint16_t)l4);
        ip6->nexthdr = (uint8_t)proto;
        ip6->hop_limit = 64;
        ip6->saddr.s6_addr[15] = 2;
        ip6->daddr.s6_addr[15] = 1;
        off += sizeof *ip6;
    } else {
        struct iphdr *ip = (struct iphdr *)(p->b + off);
        ip->version = 4;
        ip->ihl = 5;
        ip->tot_len = htons((uint16_t)(sizeof *ip + l4));
        ip->frag_off = htons(frag);
        ip->ttl = 64;
        ip->protocol = (uint8_t)proto;
        ip->saddr = htonl(0x0a000002);
        ip->daddr = htonl(0x0a000001);
        off += sizeof *ip;
    }
    struct udphdr *udp = (struct udphdr *)(p->b + off);
    udp->source = htons(40000);
    udp->dest = htons(dport);
    udp->len = htons((uint16_t)(sizeof *udp + n));
    off += proto == IPPROTO_UDP ? sizeof *udp : 20;
    memcpy(p->b + off, payload, n);
    p->len = (uint32_t)(off + n + pad);
}

static int run(const struct pkt *p)
{
    LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = p->b, .data_size_in = p->len, .repeat = 1);
    int err = bpf_prog_test_run_opts(xdp_steer_prog_fd(), &o);
    assert_int_equal(err, 0);
    return (int)o.retval;
}


static void counters(uint64_t *c)
{
    assert_int_equal(xdp_steer_read(c, XDP_CNT_N, NULL, 0), 0);
}

static int setup(void **state)
{
    int cpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
    int wc[NWORKERS];
    for (int i = 0; i < NWORKERS; i++)
        wc[i] = i % (cpus > 0 ? cpus : 1);
    slots_init(NWORKERS);
    int err = xdp_steer_load(PORT, NWORKERS, wc);
    if (err == -EPERM || err == -EACCES) {
        fprintf(stderr, "skipped: loading XDP programs needs CAP_BPF (or root)\n");
        *state = NULL;
        return 0;
    }
    assert_int_equal(err, 0);
    *state = (void *)1;
    return 0;
}

static int teardown(void **state)
{
    xdp_steer_close();
    return 0;
}

struct job {
    struct pkt p;
    unsigned owner;
    char key[KEY_MAX_LENGTH];
    size_t klen;
};

/*
 * 100,000 keys of 1..250 random bytes, in groups by owner: all of one
 * owner's requests are run, then that owner's counter must have grown by
 * exactly the group's size and every other worker's by nothing — which
 * holds only if each request went to its owner. A failing group is rerun
 * key by key to name the first key that went astray.
 */
static void test_xdp_hash_agrees_with_key_owner(void **state)
{
    if (!*state)
        skip();
    unsigned seed = 4242;
    struct job *jobs = calloc(NKEYS, sizeof *jobs);
    unsigned *order = calloc(NKEYS, sizeof *order);
    assert_non_null(jobs);
    assert_non_null(order);
    char d[600];
    for (unsigned i = 0; i < NKEYS; i++) {
        struct job *j = &jobs[i];
        j->klen = i % 4 == 0 ? 1 + (unsigned)rand_r(&seed) % KEY_MAX_LENGTH
                             : 1 + (unsigned)rand_r(&seed) % 40;
        steer_random_key(j->key, j->klen, &seed, false);
        j->owner = key_owner(j->key, j->klen);
        size_t n = steer_request(d, i, j->key, j->klen);
        build(&j->p, i % 3 == 2, IPPROTO_UDP, PORT, i % 2 ? 0x4000 : 0, d, n, i % 5 == 0 ? 6 : 0);
    }
    unsigned per[NWORKERS] = {0}, k = 0;
    for (unsigned w = 0; w < NWORKERS; w++)
        for (unsigned i = 0; i < NKEYS; i++)
            if (jobs[i].owner == w) {
                order[k++] = i;
                per[w]++;
            }
    assert_int_equal(k, NKEYS);

    uint64_t before[XDP_CNT_N], after[XDP_CNT_N];
    counters(before);
    unsigned at = 0;
    for (unsigned w = 0; w < NWORKERS; w++) {
        for (unsigned g = 0; g < per[w]; g++)
            assert_int_equal(run(&jobs[order[at + g]].p), XDP_REDIRECT);
        counters(after);
        bool ok = true;
        for (unsigned v = 0; v < NWORKERS; v++) {
            uint64_t got = after[XDP_CNT_REDIRECTED + v] - before[XDP_CNT_REDIRECTED + v];
            ok &= got == (v == w ? per[w] : 0);
        }
        if (!ok) {
            for (unsigned g = 0; g < per[w]; g++) {
                struct job *j = &jobs[order[at + g]];
                counters(before);
                run(&j->p);
                counters(after);
                if (after[XDP_CNT_REDIRECTED + w] == before[XDP_CNT_REDIRECTED + w]) {
                    fprintf(stderr, "key of %zu bytes (request %u) not steered to its owner %u\n",
                            j->klen, order[at + g], w);
                    break;
                }
            }
            fail();
        }
        memcpy(before, after, sizeof before);
        at += per[w];
    }
    fprintf(stderr, "%u keys: %u %u %u %u per worker, every one on its owner\n", NKEYS,
            per[0], per[1], per[2], per[3]);
    free(order);
    free(jobs);
}

/* TCP, other ports, fragments, ARP: XDP_PASS, counted as passed; to the
 * port but without a key to steer by: XDP_PASS, counted unparsable. */
static void test_xdp_passes_the_rest(void **state)
{
    if (!*state)
        skip();
    struct pkt p;
    const char get[] = "\0\1\0\0\0\1\0\0get k\r\n";
    uint64_t a[XDP_CNT_N], b[XDP_CNT_N];
    counters(a);
    build(&p, false, IPPROTO_TCP, PORT, 0, get, sizeof get - 1, 0);
    assert_int_equal(run(&p), XDP_PASS);
    build(&p, true, IPPROTO_TCP, PORT, 0, get, sizeof get - 1, 0);
    assert_int_equal(run(&p), XDP_PASS);
    build(&p, false, IPPROTO_UDP, PORT + 1, 0, get, sizeof get - 1, 0);
    assert_int_equal(run(&p), XDP_PASS);
    build(&p, false, IPPROTO_UDP, PORT, 0x2000, get, sizeof get - 1, 0);   /* MF */
    assert_int_equal(run(&p), XDP_PASS);
    build(&p, false, IPPROTO_UDP, PORT, 0x0010, get, sizeof get - 1, 0);   /* offset */
    assert_int_equal(run(&p), XDP_PASS);
    build(&p, false, IPPROTO_UDP, PORT, 0, get, sizeof get - 1, 0);
    ((struct ethhdr *)p.b)->h_proto = htons(ETH_P_ARP);
    assert_int_equal(run(&p), XDP_PASS);
    counters(b);
    assert_int_equal(b[XDP_CNT_PASSED] - a[XDP_CNT_PASSED], 6);

    static const char *const odd[] = {
        "\0\1\0\0\0\1\0\0stats\r\n", "\0\2\0\0\0\1\0\0get", "\0\3\0\0\0\2\0\0get a\r\n",
        "\0\4\0\0\0\1\0\0get  a\r\n", "\0\5\0\0\0\1", "\0\6\0\0\0\1\0\0version\r\n",
        "\0\7\0\0\0\1\0\0get a\0b\r\n",
    };
    static const size_t len[] = { 15, 11, 15, 16, 6, 17, 17 };
    unsigned nodd = sizeof odd / sizeof odd[0];
    for (unsigned i = 0; i < nodd; i++) {
        build(&p, i % 2, IPPROTO_UDP, PORT, 0, odd[i], len[i], 0);
        assert_int_equal(run(&p), XDP_PASS);
    }
    /* A key longer than any key, and one cut short by the datagram's end
     * even though the frame has bytes after it (Ethernet padding). */
    char big[300] = "\0\10\0\0\0\1\0\0get ";
    memset(big + 12, 'k', 260);
    memcpy(big + 272, "\r\n", 2);
    build(&p, false, IPPROTO_UDP, PORT, 0, big, 274, 0);
    assert_int_equal(run(&p), XDP_PASS);
    build(&p, false, IPPROTO_UDP, PORT, 0, "\0\11\0\0\0\1\0\0get kk", 14, 8);
    assert_int_equal(run(&p), XDP_PASS);
    counters(a);
    assert_int_equal(a[XDP_CNT_UNPARSABLE] - b[XDP_CNT_UNPARSABLE], nodd + 2);
    assert_int_equal(a[XDP_CNT_PASSED], b[XDP_CNT_PASSED]);

    /* A checksum left to offload (only the pseudo-header sum in the
     * field): passed, since a redirected frame would fail verification. */
    build(&p, false, IPPROTO_UDP, PORT, 0, get, sizeof get - 1, 0);
    struct iphdr *ip = (struct iphdr *)(p.b + sizeof(struct ethhdr));
    struct udphdr *udp = (struct udphdr *)(ip + 1);
    uint32_t s = (ip->saddr & 0xffff) + (ip->saddr >> 16) + (ip->daddr & 0xffff) +
                 (ip->daddr >> 16) + htons(IPPROTO_UDP) + udp->len;
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    udp->check = (uint16_t)s;
    assert_int_equal(run(&p), XDP_PASS);
    udp->check = (uint16_t)(s + 1);   /* a full checksum: steered */
    assert_int_equal(run(&p), XDP_REDIRECT);
    counters(b);
    assert_int_equal(b[XDP_CNT_CSUM_PARTIAL] - a[XDP_CNT_CSUM_PARTIAL], 1);
}

/* Not a check: the program's cost per request, which BPF_PROG_TEST_RUN
 * measures itself (the average of `repeat` runs, in ns), printed for
 * docs/steering.md. */
static void test_xdp_cost(void **state)
{
    if (!*state)
        skip();
    static const unsigned lens[] = { 10, 100, 250 };
    for (unsigned i = 0; i < 3; i++) {
        char key[KEY_MAX_LENGTH], d[600];
        memset(key, 'k', lens[i]);
        size_t n = steer_request(d, 0, key, lens[i]);   /* a get */
        struct pkt p;
        build(&p, false, IPPROTO_UDP, PORT, 0, d, n, 0);
        LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = p.b, .data_size_in = p.len, .repeat = 100000);
        assert_int_equal(bpf_prog_test_run_opts(xdp_steer_prog_fd(), &o), 0);
        assert_int_equal(o.retval, XDP_REDIRECT);
        fprintf(stderr, "XDP program, get of a %u-byte key over IPv4: %u ns per run (average of 100,000)\n",
                lens[i], o.duration);
    }
}

#else

static void test_xdp_cost(void **state)
{
    skip();
}

static int setup(void **state)
{
    *state = NULL;
    return 0;
}

static int teardown(void **state)
{
    return 0;
}

static void test_xdp_hash_agrees_with_key_owner(void **state)
{
    fprintf(stderr, "skipped: built without libbpf\n");
    skip();
}

static void test_xdp_passes_the_rest(void **state)
{
    skip();
}

#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xdp_hash_agrees_with_key_owner),
        cmocka_unit_test(test_xdp_passes_the_rest),
        cmocka_unit_test(test_xdp_cost),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
