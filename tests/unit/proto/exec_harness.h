/*
 * exec_harness.h — the fake connection the protocol unit tests drive a
 * parser through: a sink that runs every keyed request at once with
 * proto_exec() on a private 16 MiB store and appends the reply, so a test
 * sees exactly the bytes a client would. Used by test_meta.c (text parser)
 * and test_binary.c (binary parser); the fuzz targets have their own sink
 * (fuzz/fuzz_harness.h) because they also check the parser's contract.
 * Header-only; each test owns its harness. Single-threaded.
 */
#ifndef PERCORE_TEST_EXEC_HARNESS_H
#define PERCORE_TEST_EXEC_HARNESS_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include "util/clock.h"
#include "proto/exec.h"

struct harness {
    void              *state;  /* the binary parser's, as a connection holds it */
    struct text_parser tp;
    struct store      *store;
    struct wstats      stats;
    struct exec_ctx    x;
    struct buf         out;
    struct buf         in;
    struct proto_conf  cf;
    int                quit, flushed;
};

static void h_request(void *s, struct req *r)
{
    struct harness *h = s;
    proto_exec(&h->x, r, &h->out);
}

static struct buf *h_output(void *s)
{
    return &((struct harness *)s)->out;
}

/* "stats" answers two fixed lines; "stats reset" and unknown groups get
 * their end markers, so the parsers' framing of each can be checked. */
static void h_stats(void *s, const char *arg, size_t len, struct stats_out *so)
{
    if (len == 0) {
        stats_emit(so, "pid", "42");
        stats_emit(so, "version", "1.6");
        so->end(so, STATS_END);
    } else if (len == 5 && memcmp(arg, "reset", 5) == 0) {
        so->end(so, STATS_RESET);
    } else {
        so->end(so, STATS_UNKNOWN);
    }
}

static void h_flush(void *s, int64_t delay, const char *ok, size_t n)
{
    struct harness *h = s;
    h->flushed++;
    store_flush(h->store);
    if (n)
        buf_add(&h->out, ok, n);
}

static void h_quit(void *s)
{
    ((struct harness *)s)->quit = 1;
}

static void h_shutdown(void *s, bool graceful)
{
}

static bool h_busy(void *s)
{
    return ((struct harness *)s)->quit != 0;
}

static const struct proto_sink sink = {
    .request = h_request, .output = h_output, .stats = h_stats, .flush_all = h_flush,
    .quit = h_quit, .shutdown = h_shutdown, .busy = h_busy,
};

static int harness_setup(void **state)
{
    struct harness *h = calloc(1, sizeof *h);
    assert_non_null(h);
    struct store_config sc = {
        .mem_limit = 16u << 20, .item_max = (1u << 20) + 512, .shard_id = 0, .use_cas = true,
    };
    h->store = store_create(&sc);
    assert_non_null(h->store);
    h->x.store = h->store;
    h->x.stats = &h->stats;
    h->x.now = CLOCK_REL_BASE + 100;
    store_clock(h->store, h->x.now);
    h->cf.item_max = 1u << 20;
    h->cf.use_cas = true;
    h->cf.flush_ok = true;
    *state = h;
    return 0;
}

static int harness_teardown(void **state)
{
    struct harness *h = *state;
    proto_binary.state_free(&h->state);
    store_destroy(h->store);
    buf_free(&h->out);
    buf_free(&h->in);
    free(h);
    return 0;
}

#endif
