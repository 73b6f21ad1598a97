/* test_meta.c — unit tests of the meta protocol: text_parse() routes mg/ms/
 * md/ma/mn/me to meta_parse.c, whose requests a fake sink executes at once
 * with proto_exec() on a private store, so each test sees exactly the bytes
 * a client would. Also the base64 helpers. Single-threaded. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "util/clock.h"
#include "proto/meta.h"
#include "proto/proto.h"
#include "exec_harness.h"

static int setup(void **state)
{
    harness_setup(state);
    return 0;
}

/* Feed `in` whole; return the reply text (valid until the next call). */
static const char *run(struct harness *h, const char *in)
{
    size_t need;
    h->out.len = 0;
    ssize_t used = text_parse(&h->tp, &h->cf, &sink, h, in, strlen(in), &need);
    assert_int_equal((size_t)used, strlen(in));
    buf_add(&h->out, "", 1);
    h->out.len--;
    return h->out.data ? h->out.data : "";
}

static uint64_t cas_of(struct harness *h, const char *key)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "mg %s c\r\n", key);
    const char *r = run(h, cmd);
    assert_memory_equal(r, "HD c", 4);
    return strtoull(r + 4, NULL, 10);
}

static void test_mn_and_miss(void **state)
{
    struct harness *h = *state;
    assert_string_equal(run(h, "mn\r\n"), "MN\r\n");
    assert_string_equal(run(h, "mg nope v\r\n"), "EN\r\n");
    assert_string_equal(run(h, "mg nope v q\r\nmn\r\n"), "MN\r\n");
    assert_string_equal(run(h, "mg nope v k Oab\r\n"), "EN knope Oab\r\n");
    assert_string_equal(run(h, "me nope\r\n"), "EN\r\n");
    assert_string_equal(run(h, "mx nope\r\n"), "ERROR\r\n");
}

static void test_set_get_flags(void **state)
{
    struct harness *h = *state;
    assert_string_equal(run(h, "ms foo 3 F7 T0\r\nbar\r\n"), "HD\r\n");
    uint64_t cas = cas_of(h, "foo");
    char want[200];
    snprintf(want, sizeof want, "VA 3 s3 f7 t-1 c%llu kfoo Ox h1\r\nbar\r\n",
             (unsigned long long)cas);
    assert_string_equal(run(h, "mg foo v s f t c k Ox h\r\n"), want);
    assert_string_equal(run(h, "mg foo\r\n"), "HD\r\n");
    assert_string_equal(run(h, "mg foo q k\r\n"), "HD kfoo\r\n");   /* q hides misses only */
    assert_string_equal(run(h, "ms foo 3 T30 q\r\nbaz\r\nmg foo t v\r\n"), "VA 3 t30\r\nbaz\r\n");
    assert_string_equal(run(h, "mg foo T60 t t\r\n"), "CLIENT_ERROR duplicate flag\r\n");
    assert_string_equal(run(h, "mg foo t T60 s\r\n"), "HD t30 s3\r\n");
    assert_string_equal(run(h, "mg foo t\r\n"), "HD t60\r\n");
}

static void test_set_modes_and_cas(void **state)
{
    struct harness *h = *state;
    assert_string_equal(run(h, "ms m 1 ME\r\na\r\n"), "HD\r\n");
    assert_string_equal(run(h, "ms m 1 ME c\r\nb\r\n"), "NS c0\r\n");
    assert_string_equal(run(h, "ms m 1 MA\r\nz\r\nms m 1 MP\r\n<\r\nmg m v\r\n"),
                        "HD\r\nHD\r\nVA 3\r\n<az\r\n");
    assert_string_equal(run(h, "ms none 1 MR\r\nx\r\n"), "NS\r\n");
    assert_string_equal(run(h, "ms none 1 C9\r\nx\r\n"), "NF\r\n");
    assert_string_equal(run(h, "ms m 1 C0\r\nx\r\n"), "EX\r\n");
    uint64_t cas = cas_of(h, "m");
    char cmd[100];
    snprintf(cmd, sizeof cmd, "ms m 1 C%llu\r\nx\r\n", (unsigned long long)(cas + 1));
    assert_string_equal(run(h, cmd), "EX\r\n");
    snprintf(cmd, sizeof cmd, "ms m 1 C%llu q\r\nx\r\n", (unsigned long long)cas);
    assert_string_equal(run(h, cmd), "");
    assert_string_equal(run(h, "ms m 1 MQ\r\nx\r\n"), "CLIENT_ERROR invalid mode for ms M token\r\n");
}

static void test_stale_and_win(void **state)
{
    struct harness *h = *state;
    run(h, "ms s 2 T0\r\nv1\r\n");
    assert_string_equal(run(h, "md s I q\r\n"), "");
    assert_string_equal(run(h, "mg s v\r\n"), "VA 2 X W\r\nv1\r\n");
    assert_string_equal(run(h, "mg s v\r\n"), "VA 2 Z X\r\nv1\r\n");
    /* a CAS older than the item's, with I: stored, still stale, and the
     * win token already handed out stays handed out */
    assert_string_equal(run(h, "ms s 2 C1 I\r\nv2\r\nmg s v\r\n"), "HD\r\nVA 2 Z X\r\nv2\r\n");
    assert_string_equal(run(h, "ms s 2\r\nv3\r\nmg s v\r\n"), "HD\r\nVA 2\r\nv3\r\n");
    /* vivify on miss */
    assert_string_equal(run(h, "mg viv N30 s t\r\n"), "HD s0 t30 W\r\n");
    assert_string_equal(run(h, "mg viv N30 s\r\n"), "HD s0 Z\r\n");
    /* recache when the TTL is below R */
    run(h, "ms r 1 T10\r\nx\r\n");
    assert_string_equal(run(h, "mg r R5\r\n"), "HD\r\n");
    assert_string_equal(run(h, "mg r R20\r\n"), "HD W\r\n");
    assert_string_equal(run(h, "mg r R20\r\n"), "HD Z\r\n");
}

static void test_delete(void **state)
{
    struct harness *h = *state;
    run(h, "ms d 1\r\nx\r\n");
    assert_string_equal(run(h, "md d C1 k\r\n"), "EX kd\r\n");
    assert_string_equal(run(h, "md d q\r\nmd d q\r\n"), "NF\r\n");
    assert_string_equal(run(h, "md d Zq\r\n"), "CLIENT_ERROR invalid or duplicate flag\r\n");
}

static void test_arith(void **state)
{
    struct harness *h = *state;
    assert_string_equal(run(h, "ma n\r\n"), "NF\r\n");
    assert_string_equal(run(h, "ma n N0 J10 v\r\n"), "VA 2\r\n10\r\n");
    assert_string_equal(run(h, "ma n D5 v\r\n"), "VA 2\r\n15\r\n");
    assert_string_equal(run(h, "ma n MD D100 v t\r\n"), "VA 1 t-1\r\n0\r\n");
    assert_string_equal(run(h, "ma n q\r\n"), "");
    assert_string_equal(run(h, "ma n Mx\r\n"), "CLIENT_ERROR invalid mode for ma M token\r\n");
    assert_string_equal(run(h, "ma n Dabc\r\n"), "CLIENT_ERROR invalid or duplicate flag\r\n");
    run(h, "ms s 1\r\nx\r\n");
    assert_string_equal(run(h, "ma s\r\n"),
                        "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
    assert_string_equal(run(h, "ma n C1 k\r\n"), "EX kn\r\n");
}

static void test_parse_errors(void **state)
{
    struct harness *h = *state;
    assert_string_equal(run(h, "mg\r\n"), "ERROR\r\n");
    assert_string_equal(run(h, "me\r\n"), "CLIENT_ERROR bad command line format\r\n");
    assert_string_equal(run(h, "mg k X\r\n"), "CLIENT_ERROR invalid flag\r\n");
    assert_string_equal(run(h, "mg k v v\r\n"), "CLIENT_ERROR duplicate flag\r\n");
    assert_string_equal(run(h, "mg k Nx\r\n"), "CLIENT_ERROR bad token in command line format\r\n");
    assert_string_equal(run(h, "mg a b c d e f g h i j k l m n o p q r s t u\r\n"),
                        "CLIENT_ERROR options flags are too long\r\n");
    assert_string_equal(run(h, "mg k Oaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"),
                        "CLIENT_ERROR opaque token too long\r\n");
    char line[400];
    memset(line, 'k', sizeof line);
    memcpy(line, "mg ", 3);
    strcpy(line + 3 + 251, " v\r\n");
    assert_string_equal(run(h, line), "CLIENT_ERROR bad command line format\r\n");
    /* errors after the length is known swallow the data block */
    assert_string_equal(run(h, "ms k 2 Zz\r\nab\r\nmn\r\n"), "CLIENT_ERROR invalid flag\r\nMN\r\n");
    assert_string_equal(run(h, "ms k 2\r\nabc\r\n"), "CLIENT_ERROR bad data chunk\r\nERROR\r\n");
    assert_string_equal(run(h, "ms k\r\n"), "CLIENT_ERROR bad command line format\r\n");
}

static void test_too_large(void **state)
{
    struct harness *h = *state;
    run(h, "ms big 1\r\nx\r\n");
    size_t n = (1u << 20) + 1;
    char *in = malloc(n + 64);
    int hl = sprintf(in, "ms big %zu\r\n", n);
    memset(in + hl, 'x', n);
    strcpy(in + hl + n, "\r\nmg big\r\n");
    assert_string_equal(run(h, in), "SERVER_ERROR object too large for cache\r\nEN\r\n");
    free(in);
}

static void test_partial_input(void **state)
{
    struct harness *h = *state;
    const char *in = "ms part 10 c\r\n0123456789\r\n";
    size_t need = 0;
    h->out.len = 0;
    ssize_t used = text_parse(&h->tp, &h->cf, &sink, h, in, 20, &need);
    assert_int_equal(used, 0);
    assert_int_equal(need, strlen(in));
    used = text_parse(&h->tp, &h->cf, &sink, h, in, strlen(in), &need);
    assert_int_equal((size_t)used, strlen(in));
    assert_memory_equal(h->out.data, "HD c", 4);
}

static void test_base64(void **state)
{
    struct harness *h = *state;
    unsigned char out[16];
    char enc[32];
    assert_int_equal(meta_b64_decode("Zm9vYg==", 8, out, sizeof out), 4);
    assert_memory_equal(out, "foob", 4);
    assert_int_equal(meta_b64_decode("Zm9v", 4, out, sizeof out), 3);
    assert_int_equal(meta_b64_decode("Zm9", 3, out, sizeof out), 0);
    assert_int_equal(meta_b64_decode("####", 4, out, sizeof out), 0);
    assert_int_equal(meta_b64_encode((const unsigned char *)"foob", 4, enc, sizeof enc), 8);
    assert_memory_equal(enc, "Zm9vYg==", 8);
    assert_string_equal(run(h, "ms Zm9vYg== 2 b k\r\nhi\r\n"), "HD kZm9vYg== b\r\n");
    assert_string_equal(run(h, "mg foob v\r\n"), "VA 2\r\nhi\r\n");
    assert_string_equal(run(h, "mg foo b v\r\n"), "CLIENT_ERROR error decoding key\r\n");
    const char *me = run(h, "me Zm9vYg== b\r\n");
    const char *pre = "ME Zm9vYg== exp=-1 la=0 cas=", *post = " fetch=yes cls=1 size=65\r\n";
    assert_memory_equal(me, pre, strlen(pre));
    assert_string_equal(me + strlen(me) - strlen(post), post);
}

int main(void)
{
    clock_setup();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_mn_and_miss, setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_set_get_flags, setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_set_modes_and_cas, setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_stale_and_win, setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_delete, setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_arith, setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_parse_errors, setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_too_large, setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_partial_input, setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_base64, setup, harness_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
