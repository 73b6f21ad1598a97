/* test_bench_proto.c - unit tests of percore-bench's request encoders and the
 * streaming reply parser (text and meta), fed whole and one byte at a time.
 * Single-threaded. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdint.h>
#include <string.h>
#include "../../../bench/percore-bench/proto.h"

static void test_keys(void **st)
{
    (void)st;
    char k[300];
    size_t n = key_format(k, 42, 16);
    assert_int_equal(n, 16);
    assert_memory_equal(k, "k42:xxxxxxxxxxxx", 16);
    uint64_t id;
    assert_int_equal(key_parse(k, n, &id), 0);
    assert_int_equal(id, 42);
    n = key_format(k, 1234567, 4); /* too short: the id still fits */
    assert_int_equal(n, 8);
    assert_int_equal(key_parse(k, n, &id), 0);
    assert_int_equal(id, 1234567);
    assert_int_not_equal(key_parse("foo", 3, &id), 0);
}

static void test_encode(void **st)
{
    (void)st;
    struct buf b = { 0 };
    uint64_t keys[2] = { 1, 2 };
    uint32_t kl[2] = { 4, 4 };
    proto_encode_get(PROTO_TEXT, &b, keys, kl, 2);
    proto_encode_set(PROTO_TEXT, &b, 3, 4, "abcdef", 3);
    const char *want = "get k1:x k2:x\r\nset k3:x 0 0 3\r\nabc\r\n";
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.p, want, b.len);
    b.len = 0;
    proto_encode_get(PROTO_META, &b, keys, kl, 2);
    proto_encode_set(PROTO_META, &b, 3, 4, "abcdef", 2);
    want = "mg k1:x v\r\nmg k2:x v\r\nms k3:x 2\r\nab\r\n";
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.p, want, b.len);
    buf_free(&b);
}

/* Feed a stream holding replies for reqs[], whole or byte by byte. */
static void feed_all(enum proto_kind k, const char *stream, const struct preq *reqs, int nreq,
                     struct rparser *results, int bytewise)
{
    struct rparser ps;
    proto_reset(&ps);
    size_t len = strlen(stream), pos = 0, avail = bytewise ? 0 : len;
    int r = 0;
    while (r < nreq) {
        if (bytewise && avail < len)
            avail++;
        size_t used;
        int rc = proto_feed(k, &ps, &reqs[r], stream + pos, avail - pos, &used);
        assert_int_not_equal(rc, PF_BAD);
        pos += used;
        if (rc == PF_DONE) {
            results[r++] = ps;
            proto_reset(&ps);
        } else {
            assert_true(avail < len); /* needs more and there is more */
        }
    }
    assert_int_equal(pos, len);
}

static void test_text_replies(void **st)
{
    (void)st;
    uint64_t k3[3] = { 5, 6, 7 };
    struct preq reqs[] = {
        { OP_GET, 3, k3 }, { OP_SET, 1, k3 }, { OP_GET, 1, k3 }, { OP_SET, 1, k3 }, { OP_GET, 1, k3 },
    };
    const char *stream = "VALUE k5:x 0 5\r\nhello\r\nVALUE k7:xx 3 2 99\r\nEN\r\nEND\r\n"
                         "STORED\r\n"
                         "END\r\n"
                         "NOT_STORED\r\n"
                         "SERVER_ERROR out of memory\r\n";
    for (int bw = 0; bw < 2; bw++) {
        struct rparser res[5];
        feed_all(PROTO_TEXT, stream, reqs, 5, res, bw);
        assert_int_equal(res[0].hits, 2);
        assert_int_equal(res[0].misses, 1);
        assert_int_equal(res[0].hitmask, 5); /* keys 0 and 2 */
        assert_int_equal(res[0].status, RS_OK);
        assert_int_equal(res[1].status, RS_OK);
        assert_int_equal(res[2].hits, 0);
        assert_int_equal(res[2].misses, 1);
        assert_int_equal(res[3].status, RS_NOTSTORED);
        assert_int_equal(res[4].status, RS_ERROR);
    }
}

static void test_meta_replies(void **st)
{
    (void)st;
    uint64_t k2[2] = { 1, 2 };
    struct preq reqs[] = { { OP_GET, 2, k2 }, { OP_SET, 1, k2 }, { OP_GET, 1, k2 }, { OP_SET, 1, k2 } };
    const char *stream = "EN\r\nVA 3 \r\nabc\r\nHD\r\nVA 0\r\n\r\nNS\r\n";
    for (int bw = 0; bw < 2; bw++) {
        struct rparser res[4];
        feed_all(PROTO_META, stream, reqs, 4, res, bw);
        assert_int_equal(res[0].hits, 1);
        assert_int_equal(res[0].misses, 1);
        assert_int_equal(res[0].hitmask, 2);
        assert_int_equal(res[1].status, RS_OK);
        assert_int_equal(res[2].hits, 1);
        assert_int_equal(res[3].status, RS_NOTSTORED);
    }
}

static void test_garbage(void **st)
{
    (void)st;
    uint64_t k = 1;
    struct preq rq = { OP_GET, 1, &k };
    struct rparser ps;
    proto_reset(&ps);
    size_t used;
    assert_int_equal(proto_feed(PROTO_TEXT, &ps, &rq, "HELLO\r\n", 7, &used), PF_BAD);
    proto_reset(&ps);
    assert_int_equal(proto_feed(PROTO_TEXT, &ps, &rq, "EN", 2, &used), PF_MORE);
    assert_int_equal(used, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_encode),
        cmocka_unit_test(test_text_replies),
        cmocka_unit_test(test_meta_replies),
        cmocka_unit_test(test_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
