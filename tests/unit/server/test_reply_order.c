/*
 * test_reply_order.c — a connection's replies leave in request order however
 * the requests were spread over workers and in whatever order the owners'
 * replies come home. Two workers are built by hand (rings, stores, a
 * socketpair as the client); the test plays worker 1 itself and returns its
 * replies in reverse order. Single-threaded: the test thread is both workers.
 */
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
#include "server/worker.h"
#include "net/conn.h"

static struct worker two[2];
static struct ring r01, r10;

static void setup_workers(void)
{
    memset(two, 0, sizeof two);
    workers = two;
    nworkers = 2;
    settings.conn_out_max = 1 << 20;
    settings.item_max = 1 << 20;
    settings.maxconns = 16;
    settings.io = IO_EPOLL;
    proto_conf = (struct proto_conf){ .item_max = 1 << 20, .use_cas = true, .flush_ok = true };
    slots_init(2);
    assert_int_equal(ring_init(&r01, 64), 0);
    assert_int_equal(ring_init(&r10, 64), 0);
    two[0].out[1] = &r01;
    two[1].in[0] = &r01;
    two[1].out[0] = &r10;
    two[0].in[1] = &r10;
    for (unsigned i = 0; i < 2; i++) {
        struct store_config sc = { .mem_limit = 8 << 20, .item_max = 1 << 20, .shard_id = i,
                                   .use_cas = true };
        two[i].id = i;
        two[i].store = store_create(&sc);
        two[i].now = 1000;
        store_clock(two[i].store, 1000);
        two[i].x = (struct exec_ctx){ .store = two[i].store, .stats = &two[i].stats, .now = 1000 };
        assert_int_equal(reactor_init(&two[i].reactor, false), 0);
    }
}

static void teardown_workers(void)
{
    for (unsigned i = 0; i < 2; i++) {
        store_destroy(two[i].store);
        reactor_fini(&two[i].reactor);
    }
    ring_free(&r01);
    ring_free(&r10);
}

static void run_dirty(struct worker *w)
{
    while (w->dirty) {
        struct conn *c = w->dirty;
        w->dirty = c->dirty_next;
        c->in_dirty = false;
        conn_flush(c);
    }
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

static void test_out_of_order_completion(void **state)
{
    setup_workers();
    int sp[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
    conn_accept_fd(&two[0], sp[0]);
    struct conn *c = two[0].conns;
    assert_non_null(c);

    char local[3][16], remote[3][16];
    keys_on(0, 3, local);
    keys_on(1, 3, remote);
    /* Set every key on its owner directly, then pipeline gets that
     * alternate local / remote, plus one multi-get spanning both. */
    for (int i = 0; i < 3; i++) {
        store_put(two[0].store, SM_SET, local[i], strlen(local[i]), "L", 1, 0, 0, 0, NULL);
        store_put(two[1].store, SM_SET, remote[i], strlen(remote[i]), "R", 1, 0, 0, 0, NULL);
    }
    char req[512];
    snprintf(req, sizeof req, "get %s\r\nget %s\r\nget %s\r\nget %s\r\nget %s %s %s %s\r\n",
             remote[0], local[0], remote[1], local[1], local[2], remote[2], remote[0], local[0]);
    conn_feed(c, req, strlen(req));
    run_dirty(&two[0]);

    /* Worker 1: take every request, answer them in reverse order. */
    struct msg *m[16];
    int n = 0;
    while ((m[n] = ring_pop(&r01)) != NULL)
        n++;
    assert_int_equal(n, 4);
    for (int i = n - 1; i >= 0; i--) {
        proto_exec(&two[1].x, &m[i]->req, &m[i]->reply);
        conn_reply_arrived(m[i]);
        run_dirty(&two[0]);
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
    ssize_t len = recv(sp[1], got, sizeof got - 1, 0);
    assert_true(len > 0);
    got[len] = '\0';
    assert_string_equal(got, expect);

    conn_close(c);
    run_dirty(&two[0]);
    close(sp[1]);
    teardown_workers();
}

static void test_close_with_requests_in_flight(void **state)
{
    setup_workers();
    int sp[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
    conn_accept_fd(&two[0], sp[0]);
    struct conn *c = two[0].conns;
    char remote[2][16];
    keys_on(1, 2, remote);
    char req[128];
    snprintf(req, sizeof req, "get %s\r\nget %s\r\n", remote[0], remote[1]);
    conn_feed(c, req, strlen(req));
    run_dirty(&two[0]);
    /* The client vanishes while both requests are at worker 1. */
    conn_close(c);
    run_dirty(&two[0]);
    struct msg *m;
    int n = 0;
    while ((m = ring_pop(&r01)) != NULL) {
        proto_exec(&two[1].x, &m->req, &m->reply);
        conn_reply_arrived(m);   /* dropped; the last one frees the conn */
        n++;
    }
    assert_int_equal(n, 2);
    assert_null(two[0].conns);
    close(sp[1]);
    teardown_workers();   /* ASan: nothing leaked, nothing used after free */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_out_of_order_completion),
        cmocka_unit_test(test_close_with_requests_in_flight),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
