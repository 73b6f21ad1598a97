/* test_bench_udp.c - unit tests of percore-bench's UDP framing (udp.[ch]): frame
 * headers, request datagrams, reassembly of multi-datagram replies in any order
 * with duplicates, multi-get runs, malformed replies; and the engine over UDP
 * against a fake server thread (127.0.0.1 only) that answers out of order, drops
 * some requests and duplicates datagrams: requests must be matched by id and
 * every dropped one must count as a timeout. The fake server's state belongs to
 * its thread; the counters it shares with the test are atomics. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "../../../bench/percore-bench/bench.h"
#include "../../../bench/percore-bench/udp.h"

static void test_header(void **st)
{
    (void)st;
    unsigned char b[8];
    struct udp_hdr h = { 0xabcd, 2, 3, 0 }, g;
    udp_hdr_put(b, &h);
    const unsigned char want[8] = { 0xab, 0xcd, 0, 2, 0, 3, 0, 0 };
    assert_memory_equal(b, want, 8);
    assert_int_equal(udp_hdr_get(b, 8, &g), 0);
    assert_int_equal(g.id, 0xabcd);
    assert_int_equal(g.seq, 2);
    assert_int_equal(g.total, 3);
    assert_int_equal(g.reserved, 0);
    assert_int_equal(udp_hdr_get(b, 7, &g), -1);
}

static void test_encode(void **st)
{
    (void)st;
    struct buf b = { 0 };
    uint64_t keys[2] = { 1, 22 };
    uint32_t kl[2] = { 4, 5 };
    int n1 = udp_encode_get(&b, 7, keys, kl, 2);
    int n2 = udp_encode_set(&b, 0x1234, 3, 4, "abcdef", 3);
    const char *g = "get k1:x k22:x\r\n", *s = "set k3:x 0 0 3\r\nabc\r\n";
    assert_int_equal(n1, 8 + strlen(g));
    assert_int_equal(n2, 8 + strlen(s));
    assert_int_equal((size_t)n1, udp_get_size(kl, 2));
    assert_int_equal((size_t)n2, udp_set_size(4, 3));
    size_t off = b.off, len;
    const char *d;
    assert_int_equal(udp_next_dgram(&b, &off, &d, &len), 0);
    assert_int_equal(len, (size_t)n1);
    const unsigned char h1[8] = { 0, 7, 0, 0, 0, 1, 0, 0 };
    assert_memory_equal(d, h1, 8);
    assert_memory_equal(d + 8, g, strlen(g));
    assert_int_equal(udp_next_dgram(&b, &off, &d, &len), 0);
    const unsigned char h2[8] = { 0x12, 0x34, 0, 0, 0, 1, 0, 0 };
    assert_memory_equal(d, h2, 8);
    assert_memory_equal(d + 8, s, strlen(s));
    assert_int_equal(udp_next_dgram(&b, &off, &d, &len), -1);

    /* the limit: a set is refused (nothing appended) one byte past 1400 */
    char *val = malloc(2000);
    memset(val, 'v', 2000);
    uint32_t vmax = 0;
    while (udp_set_size(16, vmax + 1) <= UDP_MAX_DATAGRAM)
        vmax++;
    assert_true(vmax > 1300 && vmax < 1400);
    size_t before = b.len;
    assert_int_equal(udp_encode_set(&b, 1, 5, 16, val, vmax), UDP_MAX_DATAGRAM);
    before = b.len;
    assert_int_equal(udp_encode_set(&b, 1, 5, 16, val, vmax + 1), -1);
    assert_int_equal(b.len, before);

    /* records stay whole when the buffer compacts (some already sent) */
    b.off = b.len = 0;
    for (int i = 0; i < 200; i++)
        udp_encode_set(&b, (uint16_t)i, (uint64_t)i, 16, val, 1000);
    for (int round = 0; round < 3; round++) {
        off = b.off;
        for (int i = 0; i < 150; i++)
            udp_next_dgram(&b, &off, &d, &len);
        b.off = off; /* 150 datagrams sent */
        for (int i = 0; i < 150; i++)
            udp_encode_set(&b, (uint16_t)(1000 + i), 7, 16, val, 1000);
    }
    off = b.off;
    int count = 0;
    while (!udp_next_dgram(&b, &off, &d, &len)) {
        struct udp_hdr h;
        assert_int_equal(len, udp_set_size(16, 1000));
        assert_int_equal(udp_hdr_get(d, len, &h), 0);
        assert_int_equal(h.total, 1);
        assert_memory_equal(d + 8, "set k", 5);
        count++;
    }
    assert_int_equal(count, 200);
    assert_int_equal(off, b.len);
    free(val);
    buf_free(&b);
}

/* Split a response object into datagrams as memcached does: chunks of 1392. */
struct dg {
    struct udp_hdr h;
    const char *p;
    size_t n;
};
static int split(const char *obj, size_t len, uint16_t id, struct dg *out)
{
    int total = (int)((len + UDP_MAX_PAYLOAD - 1) / UDP_MAX_PAYLOAD);
    for (int i = 0; i < total; i++) {
        size_t off = (size_t)i * UDP_MAX_PAYLOAD;
        out[i].h = (struct udp_hdr){ id, (uint16_t)i, (uint16_t)total, 0 };
        out[i].p = obj + off;
        out[i].n = len - off < UDP_MAX_PAYLOAD ? len - off : UDP_MAX_PAYLOAD;
    }
    return total;
}

static char *big_value_reply(const char *key, size_t vlen, int end, size_t *len)
{
    char *r = malloc(vlen + 300);
    int n = sprintf(r, "VALUE %s 0 %zu\r\n", key, vlen);
    memset(r + n, 'z', vlen);
    n += (int)vlen;
    n += sprintf(r + n, end ? "\r\nEND\r\n" : "\r\n");
    *len = (size_t)n;
    return r;
}

static void test_single(void **st)
{
    (void)st;
    uint64_t k = 5;
    struct preq get = { OP_GET, 1, &k }, set = { OP_SET, 1, &k };
    struct udp_rx rx;
    udp_rx_init(&rx);
    struct udp_hdr h = { 1, 0, 1, 0 };
    const char *hit = "VALUE k5:x 0 5\r\nhello\r\nEND\r\n";
    assert_int_equal(udp_rx_feed(&rx, &get, &h, hit, strlen(hit)), UR_DONE);
    assert_int_equal(rx.ps.hits, 1);
    assert_int_equal(rx.ps.misses, 0);
    assert_int_equal(rx.ps.hitmask, 1);
    udp_rx_reset(&rx);
    assert_int_equal(udp_rx_feed(&rx, &get, &h, "END\r\n", 5), UR_DONE);
    assert_int_equal(rx.ps.misses, 1);
    udp_rx_reset(&rx);
    assert_int_equal(udp_rx_feed(&rx, &set, &h, "STORED\r\n", 8), UR_DONE);
    assert_int_equal(rx.ps.status, RS_OK);
    udp_rx_reset(&rx);
    assert_int_equal(udp_rx_feed(&rx, &set, &h, "SERVER_ERROR out of memory\r\n", 28), UR_DONE);
    assert_int_equal(rx.ps.status, RS_ERROR);
    udp_rx_reset(&rx);
    /* a header-only datagram (count 0) carries nothing */
    struct udp_hdr empty = { 1, 0, 0, 0 };
    assert_int_equal(udp_rx_feed(&rx, &get, &empty, "", 0), UR_MORE);
    assert_int_equal(udp_rx_feed(&rx, &get, &h, "END\r\n", 5), UR_DONE);
    udp_rx_reset(&rx);
}

static void shuffle(int *a, int n, unsigned *seed)
{
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(rand_r(seed) % (unsigned)(i + 1));
        int t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

static void test_reassembly(void **st)
{
    (void)st;
    uint64_t k = 9;
    struct preq get = { OP_GET, 1, &k };
    size_t len;
    char *obj = big_value_reply("k9:xxxx", 10000, 1, &len);
    struct dg d[16];
    int total = split(obj, len, 77, d);
    assert_int_equal(total, 8);
    unsigned seed = 1;
    for (int trial = 0; trial < 200; trial++) {
        int order[32], n = 0;
        for (int i = 0; i < total; i++)
            order[n++] = i;
        if (trial == 1)
            for (int i = 0; i < total; i++) /* reversed */
                order[i] = total - 1 - i;
        else if (trial > 1)
            shuffle(order, n, &seed);
        if (trial > 10) /* duplicates, anywhere before the last new datagram */
            for (int j = 0; j < 4; j++) {
                int at = (int)(rand_r(&seed) % (unsigned)(n - 1));
                memmove(order + at + 1, order + at, sizeof(int) * (size_t)(n - at));
                order[at] = order[rand_r(&seed) % (unsigned)(at + 1)];
                n++;
            }
        struct udp_rx rx;
        udp_rx_init(&rx);
        int seen[16] = { 0 }, nseen = 0;
        for (int i = 0; i < n; i++) {
            int s = order[i];
            int fresh = !seen[s];
            seen[s] = 1;
            nseen += fresh;
            int rc = udp_rx_feed(&rx, &get, &d[s].h, d[s].p, d[s].n);
            if (nseen == total && fresh) {
                assert_int_equal(rc, UR_DONE);
                break;
            }
            assert_int_equal(rc, UR_MORE);
        }
        assert_int_equal(rx.ps.hits, 1);
        assert_int_equal(rx.ps.misses, 0);
        assert_int_equal(rx.ps.status, RS_OK);
        udp_rx_reset(&rx);
    }
    free(obj);
}

/* memcached's multi-get over UDP: one run per key, END on the last object, a
 * header-only datagram for a miss on the first key, nothing for later misses. */
static void test_multiget_runs(void **st)
{
    (void)st;
    uint64_t keys[4] = { 1, 2, 3, 4 };
    struct preq get = { OP_GET, 4, keys };
    size_t la, lb;
    char *a = big_value_reply("k2:xxxxxx", 3000, 0, &la);
    char *b = big_value_reply("k4:xxxxxx", 10, 1, &lb);
    struct dg da[4], db[1];
    int na = split(a, la, 5, da), nb = split(b, lb, 5, db);
    assert_int_equal(na, 3);
    assert_int_equal(nb, 1);
    struct udp_rx rx;
    udp_rx_init(&rx);
    struct udp_hdr empty = { 5, 0, 0, 0 };
    assert_int_equal(udp_rx_feed(&rx, &get, &empty, "", 0), UR_MORE);
    assert_int_equal(udp_rx_feed(&rx, &get, &da[2].h, da[2].p, da[2].n), UR_MORE);
    assert_int_equal(udp_rx_feed(&rx, &get, &da[0].h, da[0].p, da[0].n), UR_MORE);
    assert_int_equal(udp_rx_feed(&rx, &get, &da[1].h, da[1].p, da[1].n), UR_MORE);
    assert_int_equal(udp_rx_feed(&rx, &get, &db[0].h, db[0].p, db[0].n), UR_DONE);
    assert_int_equal(rx.ps.hits, 2);
    assert_int_equal(rx.ps.misses, 2);
    assert_int_equal(rx.ps.hitmask, 0xa); /* keys 1 and 3 */
    udp_rx_reset(&rx);
    /* a run of the same request interleaved with an incomplete one is ignored */
    assert_int_equal(udp_rx_feed(&rx, &get, &da[0].h, da[0].p, da[0].n), UR_MORE);
    struct udp_hdr other = { 5, 1, 2, 0 };
    assert_int_equal(udp_rx_feed(&rx, &get, &other, "xx", 2), UR_MORE);
    udp_rx_reset(&rx); /* frees the pending run */
    free(a);
    free(b);
}

static void test_bad(void **st)
{
    (void)st;
    uint64_t k = 1;
    struct preq get = { OP_GET, 1, &k };
    struct udp_rx rx;
    udp_rx_init(&rx);
    struct udp_hdr h = { 1, 0, 1, 0 }, beyond = { 1, 3, 3, 0 };
    assert_int_equal(udp_rx_feed(&rx, &get, &beyond, "END\r\n", 5), UR_BAD);
    udp_rx_reset(&rx);
    assert_int_equal(udp_rx_feed(&rx, &get, &h, "END\r\nEND\r\n", 10), UR_BAD); /* bytes after the reply */
    udp_rx_reset(&rx);
    assert_int_equal(udp_rx_feed(&rx, &get, &h, "EN", 2), UR_BAD); /* run ends inside a line */
    udp_rx_reset(&rx);
    assert_int_equal(udp_rx_feed(&rx, &get, &h, "HELLO\r\n", 7), UR_BAD);
    udp_rx_reset(&rx);
}

/* ---- the engine against a fake server ---------------------------------- */

struct fake {
    int fd, port;
    pthread_t th;
    atomic_int stop;
    atomic_ullong dropped, hits, requests;
};

static void fake_reply(struct fake *f, const struct sockaddr_in *to, const char *req, size_t n)
{
    struct udp_hdr h;
    if (udp_hdr_get(req, n, &h))
        return;
    const char *cmd = req + 8;
    size_t cl = n - 8;
    char out[UDP_MAX_DATAGRAM];
    static char big[4000];
    struct dg d[4];
    int nd = 0;
    size_t objlen = 0;
    if (cl >= 7 && !memcmp(cmd, "version", 7)) {
        objlen = (size_t)sprintf(big, "VERSION fake\r\n");
    } else if (cl > 4 && !memcmp(cmd, "get ", 4)) {
        atomic_fetch_add(&f->requests, 1);
        uint64_t id = strtoull(cmd + 5, NULL, 10);
        if (id % 10 == 7) { /* lost */
            atomic_fetch_add(&f->dropped, 1);
            return;
        }
        if (id % 10 == 3) {
            const char *sp = memchr(cmd + 4, '\r', cl - 4);
            int klen = (int)(sp - (cmd + 4));
            int m = sprintf(big, "VALUE %.*s 0 3000\r\n", klen, cmd + 4);
            memset(big + m, 'q', 3000);
            memcpy(big + m + 3000, "\r\nEND\r\n", 7);
            objlen = (size_t)m + 3007;
            atomic_fetch_add(&f->hits, 1);
        } else {
            objlen = (size_t)sprintf(big, "END\r\n");
        }
    } else if (cl > 4 && !memcmp(cmd, "set ", 4)) {
        atomic_fetch_add(&f->requests, 1);
        objlen = (size_t)sprintf(big, "STORED\r\n");
    } else {
        objlen = (size_t)sprintf(big, "ERROR\r\n");
    }
    nd = split(big, objlen, h.id, d);
    /* send a multi-datagram reply as 2, 0, 1 and a duplicate of 0 */
    int order[5] = { 0 }, no = 0;
    if (nd == 3) {
        order[0] = 2, order[1] = 0, order[2] = 1, order[3] = 0;
        no = 4;
    } else {
        for (int i = 0; i < nd; i++)
            order[no++] = i;
    }
    for (int i = 0; i < no; i++) {
        struct dg *g = &d[order[i]];
        udp_hdr_put(out, &g->h);
        memcpy(out + 8, g->p, g->n);
        sendto(f->fd, out, 8 + g->n, 0, (const struct sockaddr *)to, sizeof *to);
    }
}

/* Collects requests and answers them in reverse order once a batch is full or
 * nothing came for 1 ms. */
static void *fake_main(void *arg)
{
    struct fake *f = arg;
    enum { B = 16 };
    static char req[B][2048];
    size_t len[B];
    struct sockaddr_in from[B];
    int nb = 0;
    while (!atomic_load(&f->stop)) {
        struct pollfd p = { .fd = f->fd, .events = POLLIN };
        int r = poll(&p, 1, 1);
        if (r > 0) {
            socklen_t al = sizeof from[nb];
            ssize_t n = recvfrom(f->fd, req[nb], sizeof req[nb], 0, (struct sockaddr *)&from[nb], &al);
            if (n > 0)
                len[nb++] = (size_t)n;
        }
        if (nb && (r == 0 || nb == B)) {
            while (nb--)
                fake_reply(f, &from[nb], req[nb], len[nb]);
            nb = 0;
        }
    }
    return NULL;
}

static void fake_start(struct fake *f)
{
    memset(f, 0, sizeof *f);
    f->fd = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(f->fd >= 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    assert_int_equal(bind(f->fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t al = sizeof a;
    getsockname(f->fd, (struct sockaddr *)&a, &al);
    f->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&f->th, NULL, fake_main, f), 0);
}

static void fake_stop(struct fake *f)
{
    atomic_store(&f->stop, 1);
    pthread_join(f->th, NULL);
    close(f->fd);
}

static void run_engine(int closed)
{
    struct fake f;
    fake_start(&f);
    struct config c;
    config_defaults(&c);
    c.port = f.port;
    c.proto = PROTO_UDP;
    c.quiet = 1;
    c.keys = 1000;
    c.get_ratio = 0.8;
    c.timeout = 0.5;   /* a late reply on a busy machine (ASan, load 8) must not read as a drop */
    c.conns = 3;
    if (closed) {
        c.closed = 1;
        c.depth = 4;
        c.requests = 600;
        c.duration = 20;
    } else {
        c.rate = 4000;
        c.duration = 0.6;
    }
    struct result *r = malloc(sizeof *r);
    assert_int_equal(bench_run(&c, r), 0);
    fake_stop(&f);
    unsigned long long dropped = atomic_load(&f.dropped), hits = atomic_load(&f.hits);
    unsigned long long reqs = atomic_load(&f.requests);
    printf("# %s: sent %llu completed %llu timeouts %llu (server dropped %llu) hits %llu stray %llu\n",
           closed ? "closed" : "open", (unsigned long long)r->sent, (unsigned long long)r->completed,
           (unsigned long long)r->timeouts, dropped, (unsigned long long)r->hits,
           (unsigned long long)r->udp_stray);
    assert_true(r->sent > 500);
    assert_int_equal(reqs, r->sent);
    assert_true(dropped > 0);
    assert_int_equal(r->errors, 0);
    assert_int_equal(r->unsent, 0);
    assert_int_equal(r->timeouts, dropped);              /* every lost request, none else */
    assert_int_equal(r->completed + r->timeouts, r->sent); /* none silently dropped */
    assert_int_equal(r->hits, hits);                     /* every 3-datagram reply reassembled */
    assert_int_equal(r->udp_stray, hits);                /* the duplicate after each */
    assert_int_equal(r->gets + r->sets, r->completed);
    free(r);
}

static void test_engine_open(void **st)
{
    (void)st;
    run_engine(0);
}

static void test_engine_closed(void **st)
{
    (void)st;
    run_engine(1);
}

static void test_engine_no_server(void **st)
{
    (void)st;
    /* a bound socket that never answers: the probe fails, the run is refused */
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    bind(fd, (struct sockaddr *)&a, sizeof a);
    socklen_t al = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &al);
    struct config c;
    config_defaults(&c);
    c.port = ntohs(a.sin_port);
    c.proto = PROTO_UDP;
    c.quiet = 1;
    c.duration = 0.1;
    struct result *r = malloc(sizeof *r);
    assert_int_equal(bench_run(&c, r), -1);
    free(r);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header),         cmocka_unit_test(test_encode),
        cmocka_unit_test(test_single),         cmocka_unit_test(test_reassembly),
        cmocka_unit_test(test_multiget_runs),  cmocka_unit_test(test_bad),
        cmocka_unit_test(test_engine_open),    cmocka_unit_test(test_engine_closed),
        cmocka_unit_test(test_engine_no_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
