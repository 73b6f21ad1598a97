/*
 * fuzz_harness.h — the body shared by the protocol fuzz targets: a sink that
 * behaves like a single-worker connection (every keyed request runs at once
 * with proto_exec() on one real store, replies appended in order), and a
 * driver that feeds the input to the target's parser twice: in one read, and
 * split into reads of fuzzer-chosen sizes. Single-threaded; all state is per
 * input. A target defines fz_parse() and fz_session_end() and includes this.
 *
 * Input layout: byte 0 picks the configuration (item size limit, get-key
 * limit, CAS, back-pressure period), byte 1 seeds the read-size generator,
 * the rest is the byte stream a client sends.
 *
 * Besides the sanitizers, the driver checks the parser's contract (bytes
 * consumed within bounds, *need beyond what is buffered) and that the split
 * run replied exactly what the whole run did, or a prefix of it when the
 * split run had to close the connection (a line over the junk limit).
 */
#ifndef PERCORE_FUZZ_HARNESS_H
#define PERCORE_FUZZ_HARNESS_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "util/clock.h"
#include "proto/exec.h"

#define OUT_CAP (8u << 20)   /* a session that says more is cut short */

/* The session holds the parser's state as a connection does. */
struct session {
    void           *pstate;
    struct store   *store;
    struct wstats   stats;
    struct exec_ctx x;
    struct buf      out;
    unsigned        busy_every;  /* 0 = never busy */
    unsigned        since_drain;
    bool            closing;
};

static void fz_request(void *s, struct req *r)
{
    struct session *ss = s;
    if (r->klen == 0 || r->key == NULL)
        abort();   /* the parser must never hand out an empty key */
    proto_exec(&ss->x, r, &ss->out);
    ss->since_drain++;
}

static struct buf *fz_output(void *s)
{
    struct session *ss = s;
    return &ss->out;
}

static void fz_stats(void *s, const char *arg, size_t len, struct stats_out *so)
{
    (void)s;
    (void)arg;
    (void)len;
    so->end(so, STATS_END);
}

static void fz_flush_all(void *s, int64_t delay, const char *ok, size_t n)
{
    struct session *ss = s;
    if (delay <= 0)
        store_flush(ss->store);
    if (n)
        buf_add(&ss->out, ok, n);
}

static void fz_quit(void *s)
{
    struct session *ss = s;
    ss->closing = true;
}

static void fz_shutdown(void *s, bool graceful)
{
    struct session *ss = s;
    (void)graceful;
    ss->closing = true;
}

static bool fz_busy(void *s)
{
    struct session *ss = s;
    return ss->closing || ss->out.len > OUT_CAP ||
           (ss->busy_every && ss->since_drain >= ss->busy_every);
}

/* The parser under test: same contract as text_parse(). */
static ssize_t fz_parse(struct session *ss, const struct proto_conf *cf,
                        const struct proto_sink *sk, const char *data, size_t len,
                        size_t *need);

static void fz_session_end(struct session *ss);

static const struct proto_sink fz_sink = {
    .request = fz_request, .output = fz_output, .stats = fz_stats,
    .flush_all = fz_flush_all, .quit = fz_quit, .shutdown = fz_shutdown,
    .busy = fz_busy,
};

static struct proto_conf conf_from(uint8_t b)
{
    static const size_t item_max[] = { 1024, 4096, 65536, 1u << 20 };
    static const unsigned get_keys[] = { 0, 1, 3, 100 };
    return (struct proto_conf){
        .item_max = item_max[b & 3],
        .max_get_keys = get_keys[(b >> 2) & 3],
        .use_cas = !(b & 0x10),
        .flush_ok = !(b & 0x20),
        .shutdown_ok = (b & 0x40) != 0,
    };
}

/* Runs one session. chunk_seed 0 = the whole input in one read. Returns
 * true when the session ended in a close (parser error or quit). */
static bool run(const struct proto_conf *cf, uint8_t cfgb, uint8_t chunk_seed,
                const uint8_t *data, size_t size, struct buf *reply)
{
    struct store_config sc = {
        .mem_limit = 2u << 20, .item_max = cf->item_max + KEY_MAX_LENGTH + 64,
        .shard_id = 0, .use_cas = cf->use_cas,
    };
    struct session ss = { .store = store_create(&sc) };
    if (!ss.store)
        abort();
    ss.x = (struct exec_ctx){ .store = ss.store, .stats = &ss.stats, .now = CLOCK_REL_BASE + 10 };
    store_clock(ss.store, ss.x.now);
    ss.busy_every = (cfgb >> 7) ? 3 : 0;

    struct buf in = {0};
    size_t off = 0;
    uint32_t rng = chunk_seed * 2654435761u + 1;
    bool closed = false;
    while (off < size && !closed) {
        size_t n = size - off;
        if (chunk_seed) {
            rng = rng * 1103515245u + 12345u;
            size_t c = 1 + ((rng >> 16) % 64);
            if ((rng >> 8) & 1)
                c = 1 + ((rng >> 10) % 4096);
            if (c < n)
                n = c;
        }
        buf_add(&in, data + off, n);
        off += n;
        /* Parse what is buffered, re-calling while back-pressure (our own
         * busy period) holds input back, as a connection does when its
         * output drains. */
        for (;;) {
            size_t need = 12345;
            ssize_t used = fz_parse(&ss, cf, &fz_sink, in.data, in.len, &need);
            if (used < 0) {
                closed = true;
                break;
            }
            if ((size_t)used > in.len)
                abort();   /* consumed more than it was given */
            buf_consume(&in, (size_t)used);
            if (need && need <= in.len && !fz_busy(&ss))
                abort();   /* asked to wait for bytes it already has */
            if (ss.closing) {
                closed = true;
                break;
            }
            if (ss.out.len > OUT_CAP)
                break;
            if (ss.busy_every && ss.since_drain >= ss.busy_every && in.len) {
                ss.since_drain = 0;
                continue;
            }
            ss.since_drain = 0;
            break;
        }
        if (ss.out.len > OUT_CAP)
            break;
    }
    *reply = ss.out;
    buf_free(&in);
    fz_session_end(&ss);
    store_destroy(ss.store);
    return closed;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    clock_setup();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint8_t cfgb = data[0];
    uint8_t seed = data[1] ? data[1] : 1;
    struct proto_conf cf = conf_from(cfgb);
    struct buf whole, split;
    bool whole_closed = run(&cf, cfgb, 0, data + 2, size - 2, &whole);
    bool split_closed = run(&cf, cfgb, seed, data + 2, size - 2, &split);
    /* Reads split differently must not change what the client is told. */
    if (whole.len <= OUT_CAP && split.len <= OUT_CAP) {
        bool prefix = split.len <= whole.len &&
                      (split.len == 0 || memcmp(split.data, whole.data, split.len) == 0);
        if (!prefix || (!split_closed && split.len != whole.len)) {
            fprintf(stderr, "split reads changed the reply (whole %zu bytes%s, split %zu%s)\n",
                    whole.len, whole_closed ? " closed" : "", split.len,
                    split_closed ? " closed" : "");
            abort();
        }
    }
    buf_free(&whole);
    buf_free(&split);
    return 0;
}

#endif
