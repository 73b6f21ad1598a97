/* test_binary.c — unit tests of the binary protocol: proto_binary.parse() framing,
 * validation and the commands it answers itself, with keyed requests run at
 * once by a fake sink through proto_exec() on a private store, so each test
 * sees the exact response packets. The session is the harness, which
 * holds the parser's state as a connection would. Single-threaded. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "util/clock.h"
#include "proto/bin.h"
#include "proto/proto.h"
#include "exec_harness.h"

/* Append a request packet to h->in. */
static void pkt(struct harness *h, uint8_t op, const char *key, const void *ext, uint8_t extlen,
                const char *val, size_t vlen, uint32_t opaque, uint64_t cas)
{
    size_t kl = key ? strlen(key) : 0;
    unsigned char hd[24] = {0};
    uint32_t bl = (uint32_t)(kl + extlen + vlen);
    hd[0] = 0x80;
    hd[1] = op;
    hd[2] = (unsigned char)(kl >> 8);
    hd[3] = (unsigned char)kl;
    hd[4] = extlen;
    for (int i = 0; i < 4; i++)
        hd[8 + i] = (unsigned char)(bl >> (24 - 8 * i));
    memcpy(hd + 12, &opaque, 4);
    for (int i = 0; i < 8; i++)
        hd[16 + i] = (unsigned char)(cas >> (56 - 8 * i));
    buf_add(&h->in, hd, 24);
    buf_add(&h->in, ext, extlen);
    buf_add(&h->in, key, kl);
    buf_add(&h->in, val, vlen);
}

static void setpkt(struct harness *h, uint8_t op, const char *key, const char *val,
                   uint32_t flags, uint32_t opaque, uint64_t cas)
{
    unsigned char ext[8] = {
        (unsigned char)(flags >> 24), (unsigned char)(flags >> 16), (unsigned char)(flags >> 8),
        (unsigned char)flags, 0, 0, 0, 0,
    };
    pkt(h, op, key, ext, 8, val, strlen(val), opaque, cas);
}

static void arithpkt(struct harness *h, uint8_t op, const char *key, uint64_t delta,
                     uint64_t initial, uint32_t exptime, uint32_t opaque)
{
    unsigned char ext[20];
    for (int i = 0; i < 8; i++) {
        ext[i] = (unsigned char)(delta >> (56 - 8 * i));
        ext[8 + i] = (unsigned char)(initial >> (56 - 8 * i));
    }
    for (int i = 0; i < 4; i++)
        ext[16 + i] = (unsigned char)(exptime >> (24 - 8 * i));
    pkt(h, op, key, ext, 20, NULL, 0, opaque, 0);
}

struct rsp {
    uint8_t  op, extlen;
    uint16_t status, keylen;
    uint32_t bodylen, opaque;
    uint64_t cas;
    const unsigned char *body;
};

/* Parse everything in h->in; return the number of response packets. */
static int run(struct harness *h, struct rsp *r, int max)
{
    size_t need;
    h->out.len = 0;
    ssize_t used = proto_binary.parse(&h->state, &h->cf, &sink, h, h->in.data, h->in.len, &need);
    assert_true(used >= 0);
    assert_int_equal((size_t)used, h->in.len);
    h->in.len = 0;
    int n = 0;
    const unsigned char *p = (const unsigned char *)h->out.data;
    size_t off = 0;
    while (off + 24 <= h->out.len && n < max) {
        const unsigned char *q = p + off;
        assert_int_equal(q[0], 0x81);
        r[n].op = q[1];
        r[n].keylen = (uint16_t)(q[2] << 8 | q[3]);
        r[n].extlen = q[4];
        r[n].status = (uint16_t)(q[6] << 8 | q[7]);
        r[n].bodylen = (uint32_t)q[8] << 24 | (uint32_t)q[9] << 16 | (uint32_t)q[10] << 8 | q[11];
        memcpy(&r[n].opaque, q + 12, 4);
        r[n].cas = 0;
        for (int i = 0; i < 8; i++)
            r[n].cas = r[n].cas << 8 | q[16 + i];
        r[n].body = q + 24;
        off += 24 + r[n].bodylen;
        n++;
    }
    assert_int_equal(off, h->out.len);
    return n;
}

static void test_set_get(void **state)
{
    struct harness *h = *state;
    struct rsp r[16];
    setpkt(h, BIN_SET, "k", "hello", 0xdeadbeef, 1, 0);
    setpkt(h, BIN_SETQ, "q", "quiet", 0, 2, 0);
    pkt(h, BIN_GET, "k", NULL, 0, NULL, 0, 3, 0);
    pkt(h, BIN_GETK, "q", NULL, 0, NULL, 0, 4, 0);
    pkt(h, BIN_GETQ, "miss", NULL, 0, NULL, 0, 5, 0);
    pkt(h, BIN_GETK, "miss", NULL, 0, NULL, 0, 6, 0);
    pkt(h, BIN_GET, "miss", NULL, 0, NULL, 0, 7, 0);
    pkt(h, BIN_NOOP, NULL, NULL, 0, NULL, 0, 8, 0);
    int n = run(h, r, 16);
    assert_int_equal(n, 6);
    assert_int_equal(r[0].opaque, 1);
    assert_int_equal(r[0].status, BS_OK);
    assert_true(r[0].cas != 0);
    assert_int_equal(r[1].opaque, 3);
    assert_int_equal(r[1].cas, r[0].cas);
    assert_int_equal(r[1].extlen, 4);
    assert_int_equal(r[1].bodylen, 9);
    assert_memory_equal(r[1].body, "\xde\xad\xbe\xef" "hello", 9);
    assert_int_equal(r[2].keylen, 1);
    assert_memory_equal(r[2].body + 4, "qquiet", 6);
    assert_int_equal(r[3].opaque, 6);
    assert_int_equal(r[3].status, BS_ENOENT);
    assert_int_equal(r[3].keylen, 4);
    assert_memory_equal(r[3].body, "miss", 4);
    assert_int_equal(r[4].status, BS_ENOENT);
    assert_memory_equal(r[4].body, "Not found", 9);
    assert_int_equal(r[5].op, BIN_NOOP);
    assert_int_equal(r[5].opaque, 8);
}

static void test_store_statuses(void **state)
{
    struct harness *h = *state;
    struct rsp r[16];
    setpkt(h, BIN_ADD, "a", "1", 0, 1, 0);
    setpkt(h, BIN_ADD, "a", "2", 0, 2, 0);
    setpkt(h, BIN_REPLACE, "none", "x", 0, 3, 0);
    pkt(h, BIN_APPEND, "none", NULL, 0, "x", 1, 4, 0);
    setpkt(h, BIN_SET, "a", "3", 0, 5, 12345);
    setpkt(h, BIN_SET, "none", "3", 0, 6, 12345);
    pkt(h, BIN_DELETE, "none", NULL, 0, NULL, 0, 7, 0);
    pkt(h, BIN_DELETEQ, "a", NULL, 0, NULL, 0, 8, 0);
    assert_int_equal(run(h, r, 16), 7);
    uint16_t want[] = { BS_OK, BS_EEXISTS, BS_ENOENT, BS_NOT_STORED, BS_EEXISTS, BS_ENOENT,
                        BS_ENOENT };
    for (int i = 0; i < 7; i++)
        assert_int_equal(r[i].status, want[i]);
    assert_memory_equal(r[1].body, "Data exists for key.", 20);
    assert_memory_equal(r[3].body, "Not stored.", 11);
}

static void test_incr_decr(void **state)
{
    struct harness *h = *state;
    struct rsp r[16];
    arithpkt(h, BIN_INCR, "n", 1, 10, 0xffffffffu, 1);
    arithpkt(h, BIN_INCR, "n", 1, 10, 0, 2);
    arithpkt(h, BIN_INCR, "n", 5, 10, 0, 3);
    arithpkt(h, BIN_DECR, "n", 100, 10, 0, 4);
    arithpkt(h, BIN_INCRQ, "n", 1, 0, 0, 5);
    setpkt(h, BIN_SET, "s", "abc", 0, 6, 0);
    arithpkt(h, BIN_INCR, "s", 1, 0, 0, 7);
    assert_int_equal(run(h, r, 16), 6);
    assert_int_equal(r[0].status, BS_ENOENT);
    assert_int_equal(r[1].bodylen, 8);
    assert_memory_equal(r[1].body, "\0\0\0\0\0\0\0\x0a", 8);
    assert_memory_equal(r[2].body, "\0\0\0\0\0\0\0\x0f", 8);
    assert_memory_equal(r[3].body, "\0\0\0\0\0\0\0\0", 8);
    assert_true(r[3].cas != 0);
    assert_int_equal(r[5].status, BS_DELTA_BADVAL);
}

static void test_noop_version_flush_stat(void **state)
{
    struct harness *h = *state;
    struct rsp r[16];
    pkt(h, BIN_VERSION, NULL, NULL, 0, NULL, 0, 1, 0);
    pkt(h, BIN_FLUSHQ, NULL, NULL, 0, NULL, 0, 2, 0);
    pkt(h, BIN_FLUSH, NULL, "\0\0\0\0", 4, NULL, 0, 3, 0);
    pkt(h, BIN_STAT, NULL, NULL, 0, NULL, 0, 4, 0);
    pkt(h, BIN_STAT, "reset", NULL, 0, NULL, 0, 5, 0);
    pkt(h, BIN_STAT, "bogus", NULL, 0, NULL, 0, 6, 0);
    pkt(h, BIN_VERBOSITY, NULL, "\0\0\0\1", 4, NULL, 0, 7, 0);
    pkt(h, BIN_SASL_LIST, NULL, NULL, 0, NULL, 0, 8, 0);
    int n = run(h, r, 16);
    assert_int_equal(n, 9);
    assert_int_equal(h->flushed, 2);
    assert_memory_equal(r[0].body, PROTO_VERSION, strlen(PROTO_VERSION));
    assert_int_equal(r[1].opaque, 3);
    assert_int_equal(r[2].keylen, 3);
    assert_memory_equal(r[2].body, "pid42", 5);
    assert_memory_equal(r[3].body, "version1.6", 10);
    assert_int_equal(r[4].bodylen, 0);                /* terminator */
    assert_int_equal(r[5].opaque, 5);
    assert_int_equal(r[5].bodylen, 0);
    assert_int_equal(r[6].status, BS_ENOENT);
    assert_int_equal(r[7].op, BIN_VERBOSITY);
    assert_int_equal(r[7].status, BS_OK);
    assert_int_equal(r[8].status, BS_UNKNOWN);
    h->cf.flush_ok = false;
    pkt(h, BIN_FLUSH, NULL, NULL, 0, NULL, 0, 9, 0);
    assert_int_equal(run(h, r, 16), 1);
    assert_int_equal(r[0].status, BS_AUTH_ERROR);
}

static void test_partial_and_swallow(void **state)
{
    struct harness *h = *state;
    struct rsp r[4];
    size_t need;
    setpkt(h, BIN_SET, "part", "0123456789", 0, 1, 0);
    /* header only: wait for the whole packet */
    h->out.len = 0;
    assert_int_equal(proto_binary.parse(&h->state, &h->cf, &sink, h, h->in.data, 10, &need), 0);
    assert_int_equal(need, 24);
    assert_int_equal(proto_binary.parse(&h->state, &h->cf, &sink, h, h->in.data, 40, &need), 0);
    assert_int_equal(need, h->in.len);
    assert_int_equal(run(h, r, 4), 1);
    assert_int_equal(r[0].status, BS_OK);

    /* a value above -I is refused at once and its body discarded as it comes */
    size_t big = (1u << 20) + 1;
    char *v = calloc(1, big + 1);
    memset(v, 'x', big);
    setpkt(h, BIN_SET, "part", v, 0, 2, 0);
    free(v);
    h->out.len = 0;
    ssize_t used = proto_binary.parse(&h->state, &h->cf, &sink, h, h->in.data, 1000, &need);
    assert_int_equal(used, 1000);
    buf_consume(&h->in, 1000);
    pkt(h, BIN_GET, "part", NULL, 0, NULL, 0, 3, 0);
    size_t keep = h->out.len;
    used = proto_binary.parse(&h->state, &h->cf, &sink, h, h->in.data, h->in.len, &need);
    assert_int_equal((size_t)used, h->in.len);
    assert_true(h->out.len > keep);
    const unsigned char *o = (const unsigned char *)h->out.data;
    assert_int_equal(o[7], BS_E2BIG);
    assert_int_equal(o[24 + 10 + 7], BS_ENOENT);      /* the old value is gone */
    h->in.len = 0;
}

static void test_protocol_errors(void **state)
{
    struct harness *h = *state;
    struct rsp r[4];
    size_t need;
    pkt(h, BIN_GET, "k", "ext!", 4, NULL, 0, 1, 0);        /* extras on get */
    pkt(h, BIN_NOOP, NULL, NULL, 0, NULL, 0, 2, 0);
    assert_int_equal(run(h, r, 4), 1);
    assert_int_equal(r[0].status, BS_EINVAL);
    assert_true(h->quit);
    h->quit = 0;
    /* unknown opcode: answered, body skipped, the next packet still parsed */
    pkt(h, 0x40, "abc", NULL, 0, "zz", 2, 3, 0);
    pkt(h, BIN_NOOP, NULL, NULL, 0, NULL, 0, 4, 0);
    assert_int_equal(run(h, r, 4), 2);
    assert_int_equal(r[0].status, BS_UNKNOWN);
    assert_int_equal(r[1].op, BIN_NOOP);
    /* bad magic: the connection is dropped */
    unsigned char bad[24] = {0x81};
    assert_int_equal(proto_binary.parse(&h->state, &h->cf, &sink, h, (const char *)bad, 24, &need), -1);
    /* quit answers, then stops parsing */
    pkt(h, BIN_QUIT, NULL, NULL, 0, NULL, 0, 5, 0);
    pkt(h, BIN_NOOP, NULL, NULL, 0, NULL, 0, 6, 0);
    assert_int_equal(run(h, r, 4), 1);
    assert_int_equal(r[0].op, BIN_QUIT);
    assert_true(h->quit);
}

int main(void)
{
    clock_setup();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_set_get, harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_store_statuses, harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_incr_decr, harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_noop_version_flush_stat, harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_partial_and_swallow, harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_protocol_errors, harness_setup, harness_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
