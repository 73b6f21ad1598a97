/*
 * test_reply_order.c — a connection's replies leave in request order however
 * the requests were spread over workers and in whatever order the owners'
 * replies come home. Two workers' network sides (struct loop) are built by
 * hand with a host whose routing pushes to a ring; the test plays worker 1
 * itself and returns its replies in reverse order. The client is a real
 * socket pair driven through the reactor, once with epoll and once with
 * io_uring (skipped where the kernel refuses it). Single-threaded.
 */
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>
#include "util/hash.h"
#include "util/ring.h"
#include "net/conn.h"
#include "net/loop.h"

static struct loop two[2];
static struct wstats stats[2];
static struct exec_ctx xs[2];
static struct store *stores[2];
static struct ring r01;
static struct proto_conf conf = { .item_max = 1 << 20, .use_cas = true, .flush_ok = true };

static void route(struct loop *l, unsigned owner, struct msg *m)
{
    assert_int_equal(l->id, 0);
    assert_int_equal(owner, 1);
    assert_true(ring_push(&r01, m));
}

static const struct loop_host host = { .route = route };

/* false: io_uring was asked for and is not available here. */
static bool setup_loops(int io)
{
    memset(two, 0, sizeof two);
    memset(stats, 0, sizeof stats);
    settings.conn_out_max = 1 << 20;
    settings.item_max = 1 << 20;
    settings.maxconns = 16;
    settings.io = io;
    slots_init(2);
    assert_int_equal(ring_init(&r01, 64), 0);
    for (unsigned i = 0; i < 2; i++) {
        struct store_config sc = { .mem_limit = 8 << 20, .item_max = 1 << 20, .shard_id = i,
                                   .use_cas = true };
        stores[i] = store_create(&sc);
        store_clock(stores[i], 1000);
        xs[i] = (struct exec_ctx){ .store = stores[i], .stats = &stats[i], .now = 1000,
                                   .self = (uint16_t)i };
        two[i] = (struct loop){ .id = i, .now = 1000, .stats = &stats[i], .x = &xs[i],
                                .conf = &conf, .host = &host };
        assert_int_equal(reactor_init(&two[i].reactor, false), 0);
    }
    return settings.io == io;
}

static void teardown_loops(void)
{
    for (unsigned i = 0; i < 2; i++) {
        reactor_fini(&two[i].reactor);
        store_destroy(stores[i]);
    }
    ring_free(&r01);
}

/* One turn of worker 0's loop, without sleeping. */
static void turn(void)
{
    struct revent ev[64];
    for (int i = 0; i < 4; i++) {
        int n = reactor_wait(&two[0].reactor, ev, 64, 0);
        loop_dispatch(&two[0], ev, n);
        loop_serve(&two[0]);
    }
}

static void client_send(int fd, const char *s)
{
    assert_int_equal(send(fd, s, strlen(s), 0), (ssize_t)strlen(s));
}

/* A connection accepted by worker 0 for one end of a socket pair. */
static struct conn *accept_pair(int sp[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
    conn_accept_fd(&two[0], sp[0]);
    assert_non_null(two[0].conns);
    return two[0].conns;
}

static int pop_all(struct msg **m, int max)
{
    int n = 0;
    for (int tries = 0; tries < 200 && n < max; tries++) {
        struct msg *x = ring_pop(&r01);
        if (x)
            m[n++] = x;
        else if (n > 0 && tries > 20)
            break;
        else
            turn();
    }
    return n;
}
/* Finds n keys owned by worker `owner`. */
static void keys_on(unsigned owner, int n, char out[][16])
{
    int found = 0;
    for (int i = 0; found < n; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%d", i);
        if (key_owner(k, strlen(k)) == owner)
            strcpy(out[found++], k);
    }
}

static void out_of_order_completion(int io)
{
    if (!setup_loops(io)) {
        teardown_loops();
        skip();
    }
    int sp[2];
    struct conn *c = accept_pair(sp);

    char local[3][16], remote[3][16];
    keys_on(0, 3, local);
    keys_on(1, 3, remote);
    /* Set every key on its owner directly, then pipeline gets that
     * alternate local / remote, plus one multi-get spanning both. */
    for (int i = 0; i < 3; i++) {
        store_put(stores[0], SM_SET, local[i], strlen(local[i]), "L", 1, 0, 0, 0, NULL);
        store_put(stores[1], SM_SET, remote[i], strlen(remote[i]), "R", 1, 0, 0, 0, NULL);
    }
    char req[512];
    snprintf(req, sizeof req, "get %s\r\nget %s\r\nget %s\r\nget %s\r\nget %s %s %s %s\r\n",
             remote[0], local[0], remote[1], local[1], local[2], remote[2], remote[0], local[0]);
    client_send(sp[1], req);

    /* Worker 1: take every request, answer them in reverse order. */
    struct msg *m[16];
    int n = pop_all(m, 16);
    assert_int_equal(n, 4);
    for (int i = n - 1; i >= 0; i--) {
        proto_exec(&xs[1], &m[i]->req, &m[i]->reply);
        conn_reply_arrived(m[i]);
        turn();
        if (i > 0) {
            /* Nothing past the first unanswered request may have left. */
            char tmp[64];
            ssize_t got = recv(sp[1], tmp, sizeof tmp, MSG_DONTWAIT);
            assert_true(got < 0);
        }
    }
    char expect[1024];
    snprintf(expect, sizeof expect,
             "VALUE %s 0 1\r\nR\r\nEND\r\nVALUE %s 0 1\r\nL\r\nEND\r\n"
             "VALUE %s 0 1\r\nR\r\nEND\r\nVALUE %s 0 1\r\nL\r\nEND\r\n"
             "VALUE %s 0 1\r\nL\r\nVALUE %s 0 1\r\nR\r\nVALUE %s 0 1\r\nR\r\n"
             "VALUE %s 0 1\r\nL\r\nEND\r\n",
             remote[0], local[0], remote[1], local[1], local[2], remote[2], remote[0], local[0]);
    char got[1024];
    size_t len = 0;
    for (int tries = 0; tries < 100 && len < strlen(expect); tries++) {
        struct pollfd p = { .fd = sp[1], .events = POLLIN };
        if (poll(&p, 1, 10) == 1) {
            ssize_t r = recv(sp[1], got + len, sizeof got - 1 - len, 0);
            assert_true(r > 0);
            len += (size_t)r;
        } else {
            turn();
        }
    }
    got[len] = '\0';
    assert_string_equal(got, expect);

    conn_close(c);
    turn();
    close(sp[1]);
    teardown_loops();
}

static void close_with_requests_in_flight(int io)
{
    if (!setup_loops(io)) {
        teardown_loops();
        skip();
    }
    int sp[2];
    struct conn *c = accept_pair(sp);
    char remote[2][16];
    keys_on(1, 2, remote);
    char req[128];
    snprintf(req, sizeof req, "get %s\r\nget %s\r\n", remote[0], remote[1]);
    client_send(sp[1], req);
    struct msg *m[4];
    int n = pop_all(m, 4);
    assert_int_equal(n, 2);
    /* The client vanished while both requests are at worker 1. */
    conn_close(c);
    turn();
    for (int i = 0; i < n; i++) {
        proto_exec(&xs[1], &m[i]->req, &m[i]->reply);
        conn_reply_arrived(m[i]);   /* dropped; the last one frees the conn */
    }
    assert_null(two[0].conns);
    close(sp[1]);
    turn();
    teardown_loops();   /* ASan: nothing leaked, nothing used after free */
}

static void test_order_epoll(void **state) { out_of_order_completion(IO_EPOLL); }
static void test_order_uring(void **state) { out_of_order_completion(IO_URING); }
static void test_close_epoll(void **state) { close_with_requests_in_flight(IO_EPOLL); }
static void test_close_uring(void **state) { close_with_requests_in_flight(IO_URING); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_epoll),
        cmocka_unit_test(test_order_uring),
        cmocka_unit_test(test_close_epoll),
        cmocka_unit_test(test_close_uring),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
