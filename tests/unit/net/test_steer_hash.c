/*
 * test_steer_hash.c — proves that the kernel steering programs pick the
 * same worker as the workers' own key_owner() for a large, varied key set.
 *
 * sk_reuseport programs cannot be run with BPF_PROG_TEST_RUN (the kernel
 * has no test_run for that program type), so the test runs them for real:
 * it opens a SO_REUSEPORT group of N UDP sockets on 127.0.0.1, attaches
 * the eBPF program (src/bpf/steer.bpf.c, which compiles util/hash.h itself)
 * or the classic BPF program (net/steer.c), sends memcached UDP requests
 * and checks that each datagram lands on socket key_owner(key). That covers
 * the hash, the slot map, the frame and command parsing and the socket
 * array together. The eBPF case is skipped without CAP_BPF.
 * Single-threaded; owns all its sockets.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>
#include "util/hash.h"
#include "net/steer.h"
#include "steer_requests.h"

#define NSOCK 4
#define BATCH 64

struct group {
    int fds[NSOCK];
    int client;
    struct sockaddr_in addr;
};

static void group_open(struct group *g)
{
    int one = 1;
    memset(&g->addr, 0, sizeof g->addr);
    g->addr.sin_family = AF_INET;
    g->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < NSOCK; i++) {
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        assert_true(fd >= 0);
        assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one), 0);
        int big = 4 << 20;
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
        assert_int_equal(bind(fd, (struct sockaddr *)&g->addr, sizeof g->addr), 0);
        if (i == 0) {
            socklen_t l = sizeof g->addr;
            assert_int_equal(getsockname(fd, (struct sockaddr *)&g->addr, &l), 0);
        }
        g->fds[i] = fd;
    }
    g->client = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(g->client >= 0);
}

static void group_close(struct group *g)
{
    for (int i = 0; i < NSOCK; i++)
        close(g->fds[i]);
    close(g->client);
}


struct sent {
    unsigned owner;
    bool     seen;
};

/* Sends `count` requests and checks each arrives at its owner's socket. */
static void check_steering(struct group *g, unsigned count, bool plain_only)
{
    unsigned seed = 12345;
    char key[KEY_MAX_LENGTH], d[600];
    struct sent *s = calloc(count, sizeof *s);
    assert_non_null(s);
    unsigned wrong = 0, got = 0;
    for (unsigned base = 0; base < count; base += BATCH) {
        unsigned end = base + BATCH < count ? base + BATCH : count;
        for (unsigned i = base; i < end; i++) {
            /* Lengths: many short keys, every length up to 250 too. */
            size_t len = (i % 3 == 0) ? 1 + i % KEY_MAX_LENGTH : 1 + (unsigned)rand_r(&seed) % 24;
            bool plain = plain_only || i % 2 == 0;
            steer_random_key(key, len, &seed, plain);
            s[i].owner = key_owner(key, len);
            size_t n = steer_request(d, i, key, len);
            /* The request index travels in the first 4 bytes... */
            d[2] = (char)(i >> 24);
            d[3] = (char)(i >> 16);
            /* ...since the sequence number is ignored by steering. */
            ssize_t w = sendto(g->client, d, n, 0, (struct sockaddr *)&g->addr, sizeof g->addr);
            assert_int_equal(w, (ssize_t)n);
        }
        unsigned want = end - base, have = 0;
        while (have < want) {
            struct pollfd p[NSOCK];
            for (int k = 0; k < NSOCK; k++)
                p[k] = (struct pollfd){ .fd = g->fds[k], .events = POLLIN };
            int r = poll(p, NSOCK, 2000);
            assert_true(r > 0);
            for (int k = 0; k < NSOCK; k++) {
                char buf[600];
                ssize_t n;
                while ((n = recv(g->fds[k], buf, sizeof buf, MSG_DONTWAIT)) >= 8) {
                    unsigned i = (unsigned)(unsigned char)buf[2] << 24 |
                                 (unsigned)(unsigned char)buf[3] << 16 |
                                 (unsigned)(unsigned char)buf[0] << 8 | (unsigned char)buf[1];
                    assert_true(i < count);
                    assert_false(s[i].seen);
                    s[i].seen = true;
                    if (s[i].owner != (unsigned)k) {
                        if (wrong < 5)
                            fprintf(stderr, "request %u (%.*s...) went to %d, owner %u\n", i,
                                    12, buf + 8, k, s[i].owner);
                        wrong++;
                    }
                    have++;
                    got++;
                }
            }
        }
    }
    fprintf(stderr, "%u datagrams, %u on the wrong socket\n", got, wrong);
    assert_int_equal(got, count);
    assert_int_equal(wrong, 0);
    free(s);
}

static void test_ebpf_agrees_with_key_owner(void **state)
{
    struct group g;
    slots_init(NSOCK);
    group_open(&g);
    int err = steer_attach_ebpf(g.fds, NSOCK);
    if (err == -EPERM || err == -ENOSYS || err == -EACCES) {
        group_close(&g);
        skip();
    }
    assert_int_equal(err, 0);
    check_steering(&g, 20000, false);
    group_close(&g);
}

static void test_cbpf_agrees_with_key_owner(void **state)
{
    struct group g;
    slots_init(NSOCK);
    group_open(&g);
    assert_int_equal(steer_attach_cbpf(g.fds[0], NSOCK), 0);
    /* cBPF ends a key at any CR, even one not followed by LF; the keys
     * here have no CR, so both programs see the same keys. */
    check_steering(&g, 20000, false);
    group_close(&g);
}

/* Datagrams steering does not understand still arrive (kernel hash). */
static void test_unsteerable_still_delivered(void **state)
{
    struct group g;
    slots_init(NSOCK);
    group_open(&g);
    int err = steer_attach_ebpf(g.fds, NSOCK);
    if (err)
        assert_int_equal(steer_attach_cbpf(g.fds[0], NSOCK), 0);
    static const char *const odd[] = {
        "\0\1\0\0\0\1\0\0stats\r\n", "\0\2\0\0\0\1\0\0get", "\0\3\0\0\0\2\0\0get a\r\n",
        "\0\4\0\0\0\1\0\0get  a\r\n", "\0\5\0\0\0\1", "\0\6\0\0\0\1\0\0version\r\n",
    };
    static const size_t len[] = { 15, 11, 15, 16, 6, 17 };
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++)
        assert_int_equal(sendto(g.client, odd[i], len[i], 0, (struct sockaddr *)&g.addr,
                                sizeof g.addr), (ssize_t)len[i]);
    size_t have = 0;
    while (have < sizeof odd / sizeof odd[0]) {
        struct pollfd p[NSOCK];
        for (int k = 0; k < NSOCK; k++)
            p[k] = (struct pollfd){ .fd = g.fds[k], .events = POLLIN };
        assert_true(poll(p, NSOCK, 2000) > 0);
        char buf[64];
        for (int k = 0; k < NSOCK; k++)
            while (recv(g.fds[k], buf, sizeof buf, MSG_DONTWAIT) >= 0)
                have++;
    }
    group_close(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ebpf_agrees_with_key_owner),
        cmocka_unit_test(test_cbpf_agrees_with_key_owner),
        cmocka_unit_test(test_unsteerable_still_delivered),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
