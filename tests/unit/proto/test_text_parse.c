/*
 * test_text_parse.c — the text protocol parser against a recording sink:
 * framing (partial lines, partial data blocks, values containing CRLF),
 * memcached's error replies and what is swallowed after them, noreply;
 * the get and storage fast path replying exactly as the general path, and
 * text_store_line(), the storage line rule the connection shares.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include "proto/proto.h"
#include "proto/text_line.h"

struct rec {
    struct buf out;           /* replies + a line per request */
    int nreq;
    bool quit, busy;
};

static void s_request(void *s, struct req *r)
{
    struct rec *rc = s;
    char line[512];
    int n = snprintf(line, sizeof line, "<op=%d key=%.*s vlen=%u flags=%u exp=%lld cas=%llu d=%llu nr=%d>",
                     r->op, r->klen, r->key, r->vlen, r->flags, (long long)r->exptime,
                     (unsigned long long)r->cas, (unsigned long long)r->delta, r->noreply);
    buf_add(&rc->out, line, (size_t)n);
    if (r->vlen) {
        buf_add(&rc->out, "[", 1);
        buf_add(&rc->out, r->val, r->vlen);
        buf_add(&rc->out, "]", 1);
    }
    rc->nreq++;
}
static struct buf *s_output(void *s) { return &((struct rec *)s)->out; }
static void s_stats(void *s, const char *a, size_t n, struct stats_out *so)
{
    buf_adds(so->o, "<stats>");
}
static void s_flush(void *s, int64_t d, const char *ok, size_t n)
{
    char t[64];
    snprintf(t, sizeof t, "<flush %lld %d>", (long long)d, n == 0);
    buf_adds(s_output(s), t);
}
static void s_quit(void *s) { ((struct rec *)s)->quit = true; }
static void s_shutdown(void *s, bool g) { buf_adds(s_output(s), "<shutdown>"); }
static bool s_busy(void *s) { return ((struct rec *)s)->busy || ((struct rec *)s)->quit; }

static void s_dump(void *s, const struct dump_req *d)
{
    char t[96];
    snprintf(t, sizeof t, "<dump op=%d limit=%u c1=%d c62=%d c63=%d>", d->op, d->limit,
             d->classes[0] >> 1 & 1, d->classes[62 / 8] >> (62 % 8) & 1,
             d->classes[63 / 8] >> (63 % 8) & 1);
    buf_adds(s_output(s), t);
}

static void s_watch(void *s, unsigned flags)
{
    char t[32];
    snprintf(t, sizeof t, "<watch %u>", flags);
    buf_adds(s_output(s), t);
}

static const struct proto_sink sink = {
    s_request, s_output, s_stats, s_flush, s_quit, s_shutdown, s_busy, s_dump, NULL, s_watch, NULL, NULL, NULL, NULL, NULL, NULL,
};
static const struct proto_conf conf = { .item_max = 1024, .use_cas = true, .flush_ok = true,
                                        .dump_ok = true, .watch_ok = true };

/* Feed `in` in chunks of `step` bytes, as a connection would. */
static char *run(struct rec *rc, const char *in, size_t len, size_t step)
{
    static char res[65536];
    struct text_parser p = {0};
    struct buf pending = {0};
    memset(rc, 0, sizeof *rc);
    for (size_t off = 0; off < len; off += step) {
        size_t n = len - off < step ? len - off : step;
        buf_add(&pending, in + off, n);
        size_t need;
        ssize_t used = text_parse(&p, &conf, &sink, rc, pending.data, pending.len, &need);
        if (used < 0) {
            buf_adds(&rc->out, "<close>");
            break;
        }
        buf_consume(&pending, (size_t)used);
    }
    snprintf(res, sizeof res, "%.*s", (int)rc->out.len, rc->out.data ? rc->out.data : "");
    buf_free(&rc->out);
    buf_free(&pending);
    return res;
}

#define RUN(in, step) run(&rc, in, sizeof(in) - 1, step)

static void test_set_any_split(void **state)
{
    struct rec rc;
    const char in[] = "set k 5 100 4\r\na\r\nb\r\nget k\r\n";
    for (size_t step = 1; step <= sizeof in; step++) {
        char *o = RUN(in, step);
        assert_string_equal(o, "<op=4 key=k vlen=4 flags=5 exp=100 cas=0 d=0 nr=0>[a\r\nb]"
                               "<op=0 key=k vlen=0 flags=0 exp=0 cas=0 d=0 nr=0>END\r\n");
    }
}

/* The one-pass fast path (get/gets/set lines of the common shape) must
 * reply exactly as the general path does. A leading blank sends a line
 * the general way with the same meaning, so each line is run both ways,
 * whole and byte by byte, then followed by a get to show the framing. */
static void test_fast_path_same(void **state)
{
    static const char *lines[] = {
        "get k\r\n", "get k\n", "gets k\r\n", "get k\r\r\n", "get k\rx\r\n", "get k\t\r\n",
        "get k \r\n", "get  k\r\n", "get \r\n", "get k\x7f\xff\r\n", "gets k\n",
        "get k", "set k 0 0 1\r\na\r\n", "set k 0 0 1\na\r\n", "set k 1 2 3\r\nabc\r\n",
        "set k 999999999 999999999 0\r\n\r\n", "set k 0 1000000000 1\r\na\r\n",
        "set k 0 0 1234567890\r\n", "set k 0 0 2000\r\n", "set k 0 0 5 noreply\r\nhello\r\n",
        "set k -1 0 1\r\na\r\n", "set k 0 -1 1\r\na\r\n", "set k 0 0 1\r\nab\r\n",
        "set k 0  0 1\r\na\r\n", "set k 0 0 01\r\na\r\n", "set k 0 0\r\n", "set k\r\n",
        "set k 0 0 1 \r\na\r\n", "set k 0 0 1\r\r\na\r\n", "set k 0 0 +1\r\na\r\n",
        "set k 4294967296 0 1\r\na\r\n", "set k 0x1 0 1\r\na\r\n", "set  k 0 0 1\r\na\r\n",
        "get a b c\r\n", "gets a bb\n", "get a  b\r\n", "get a b \r\n", "get a b\t\r\n",
        "get a b\r\r\n", "get a b",
        "add k 0 0 1\r\na\r\n", "replace k 1 2 3 noreply\r\nabc\r\n", "append k 0 0 1\na\r\n",
        "prepend k 7 0 2 noreply\nab\r\n", "set k 0 0 1 noreply\na\r\n",
        "set k 0 0 1 noreplyx\r\na\r\n", "set k 0 0 1 noreply \r\na\r\n",
        "set k 0 0 1  noreply\r\na\r\n", "set k 0 0 1 noreply extra\r\na\r\n",
        "set k 0 0 1 norepl\r\na\r\n", "add k 0 0 2000 noreply\r\n", "append k 0 0 1\r\nab\r\n",
        "prepend k 0 0 1 noreply\r\nab\r\n", "cas k 0 0 1 5\r\na\r\n", "adds k 0 0 1\r\na\r\n",
        "replac k 0 0 1\r\na\r\n", "append\tk 0 0 1\r\na\r\n", "set k 0 0 1 noreply\r\r\na\r\n",
    };
    char key250[251], key251[252];
    memset(key250, 'k', 250);
    key250[250] = 0;
    memset(key251, 'k', 251);
    key251[251] = 0;
    char extra[8][600];
    snprintf(extra[0], sizeof extra[0], "get %s\r\n", key250);
    snprintf(extra[1], sizeof extra[1], "get %s\r\n", key251);
    snprintf(extra[2], sizeof extra[2], "set %s 0 0 1\r\na\r\n", key250);
    snprintf(extra[3], sizeof extra[3], "set %s 0 0 1\r\na\r\n", key251);
    snprintf(extra[4], sizeof extra[4], "get a %s b\r\n", key250);
    snprintf(extra[5], sizeof extra[5], "get a %s b\r\n", key251);
    /* 64 keys (the fast path's most) and 65 */
    strcpy(extra[6], "gets");
    for (int k = 0; k < 64; k++) {
        size_t at = strlen(extra[6]);
        snprintf(extra[6] + at, sizeof extra[6] - at, " k%d", k);
    }
    strcpy(extra[7], extra[6]);
    strcat(extra[6], "\r\n");
    strcat(extra[7], " z\r\n");
    size_t nl = sizeof lines / sizeof lines[0];
    for (size_t i = 0; i < nl + 8; i++) {
        const char *l = i < nl ? lines[i] : extra[i - nl];
        char fast[4096], slow[4097];
        int n = snprintf(fast, sizeof fast, "%sget z\r\n", l);
        snprintf(slow, sizeof slow, " %s", fast);
        for (size_t step = 1; step <= (size_t)n; step += (size_t)n - 1) {
            struct rec rc;
            char want[65536];
            snprintf(want, sizeof want, "%s", run(&rc, slow, (size_t)n + 1, step));
            char *got = run(&rc, fast, (size_t)n, step);
            if (strcmp(got, want) != 0)
                fail_msg("line %zu step %zu: fast '%s' general '%s'", i, step, got, want);
        }
    }
}

/* text_store_line(), which the connection's storage fast path reads
 * lines with: what it reads, and that it reads nothing until the line is
 * all there. */
static void test_store_line(void **state)
{
    static const struct { const char *in; uint8_t op; bool nr; uint32_t f, e, v; size_t text; }
    ok[] = {
        { "set k 1 2 3\r\nabc\r\n", OP_SET, false, 1, 2, 3, 11 },
        { "add kk 0 0 0\n\r\n", OP_ADD, false, 0, 0, 0, 12 },
        { "replace k 999999999 5 10 noreply\r\n", OP_REPLACE, true, 999999999, 5, 10, 32 },
        { "append k 0 0 1 noreply\n", OP_APPEND, true, 0, 0, 1, 22 },
        { "prepend k 4 0 1\r\n", OP_PREPEND, false, 4, 0, 1, 15 },
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        struct store_line sl;
        size_t len = strlen(ok[i].in);
        size_t want = ok[i].text + (ok[i].in[ok[i].text] == '\r' ? 2 : 1);
        assert_int_equal(text_store_line(ok[i].in, len, &sl), want);
        assert_int_equal(sl.op, ok[i].op);
        assert_int_equal(sl.noreply, ok[i].nr);
        assert_int_equal(sl.flags, ok[i].f);
        assert_int_equal(sl.exptime, ok[i].e);
        assert_int_equal(sl.vlen, ok[i].v);
        assert_int_equal(sl.text, ok[i].text);
        assert_int_equal(sl.klen, (size_t)(strchr(sl.key, ' ') - sl.key));
        for (size_t n = 0; n < want; n++)
            assert_int_equal(text_store_line(ok[i].in, n, &sl), 0);
    }
    static const char *no[] = {
        "set k 0 0 1 noreplyx\r\n", "set k 0 0 1 x\r\n", "set k 0 0 1 \r\n", "cas k 0 0 1 1\r\n",
        "set k 0 -1 1\r\n", "set k 0 0 1000000000\r\n", "set k\t0 0 1\r\n", "set  k 0 0 1\r\n",
        "get k\r\n", "set k 0 0 1\r\r\n", "sets k 0 0 1\r\n", "set k 0 0\r\n",
    };
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        struct store_line sl;
        assert_int_equal(text_store_line(no[i], strlen(no[i]), &sl), 0);
    }
}

/* A refused value is swallowed across reads through the protocol table,
 * whose state is the count itself. */
static void test_swallow_state(void **state)
{
    struct rec rc;
    memset(&rc, 0, sizeof rc);
    void *st = NULL;
    size_t need;
    const char head[] = "set k 0 0 2000\r\n";
    ssize_t used = proto_text.parse(&st, &conf, &sink, &rc, head, sizeof head - 1, &need);
    assert_int_equal(used, sizeof head - 1);
    assert_true(st != NULL);
    char junk[1000];
    memset(junk, 'x', sizeof junk);
    for (int k = 0; k < 2; k++)
        assert_int_equal(proto_text.parse(&st, &conf, &sink, &rc, junk, sizeof junk, &need),
                         sizeof junk);
    const char tail[] = "\r\nget k\r\n";
    assert_int_equal(proto_text.parse(&st, &conf, &sink, &rc, tail, sizeof tail - 1, &need),
                     sizeof tail - 1);
    assert_null(st);
    buf_add(&rc.out, "", 1);
    assert_string_equal(rc.out.data, "SERVER_ERROR object too large for cache\r\n"
                                     "<op=16 key=k vlen=0 flags=0 exp=0 cas=0 d=0 nr=1>"
                                     "<op=0 key=k vlen=0 flags=0 exp=0 cas=0 d=0 nr=0>END\r\n");
    proto_text.state_free(&st);
    buf_free(&rc.out);
}

static void test_multiget(void **state)
{
    struct rec rc;
    char *o = RUN("gets a  bb ccc\r\n", 100);
    assert_string_equal(o, "<op=1 key=a vlen=0 flags=0 exp=0 cas=0 d=0 nr=0>"
                           "<op=1 key=bb vlen=0 flags=0 exp=0 cas=0 d=0 nr=0>"
                           "<op=1 key=ccc vlen=0 flags=0 exp=0 cas=0 d=0 nr=0>END\r\n");
    assert_int_equal(rc.nreq, 3);
}

static void test_long_key(void **state)
{
    struct rec rc;
    char in[600];
    char key[252];
    memset(key, 'k', 251);
    key[251] = 0;
    int n = snprintf(in, sizeof in, "get a %s\r\nset %s 0 0 1\r\nx\r\n", key, key);
    char *o = run(&rc, in, (size_t)n, 1000);
    /* No request for "a": a bad key voids the whole get. The set's data
     * line is then parsed as a command, as in memcached. */
    assert_string_equal(o, "CLIENT_ERROR bad command line format\r\n"
                           "CLIENT_ERROR bad command line format\r\nERROR\r\n");
    assert_int_equal(rc.nreq, 0);
}

static void test_bad_data_chunk(void **state)
{
    struct rec rc;
    char *o = RUN("set k 0 0 2\r\nabcd\r\nget k\r\n", 3);
    assert_string_equal(o, "CLIENT_ERROR bad data chunk\r\nERROR\r\n"
                           "<op=0 key=k vlen=0 flags=0 exp=0 cas=0 d=0 nr=0>END\r\n");
}

static void test_too_large_swallowed(void **state)
{
    struct rec rc;
    char in[4096];
    int n = snprintf(in, sizeof in, "set big 0 0 2000\r\n");
    memset(in + n, 'v', 2000);
    n += 2000;
    n += snprintf(in + n, sizeof in - (size_t)n, "\r\nget big\r\n");
    for (size_t step = 7; step < 3000; step += 997) {
        char *o = run(&rc, in, (size_t)n, step);
        /* The old value is removed (OP_DROP: no reply, no delete
         * counters), the block is swallowed and the next command parses
         * normally. */
        assert_string_equal(o, "SERVER_ERROR object too large for cache\r\n"
                               "<op=16 key=big vlen=0 flags=0 exp=0 cas=0 d=0 nr=1>"
                               "<op=0 key=big vlen=0 flags=0 exp=0 cas=0 d=0 nr=0>END\r\n");
    }
}

static void test_errors(void **state)
{
    struct rec rc;
    assert_string_equal(RUN("bogus\r\n", 100), "ERROR\r\n");
    assert_string_equal(RUN("\r\n", 100), "ERROR\r\n");
    assert_string_equal(RUN("get\r\n", 100), "ERROR\r\n");
    assert_string_equal(RUN("set k 0 0\r\n", 100), "ERROR\r\n");
    assert_string_equal(RUN("set k abc 0 1\r\n", 100), "CLIENT_ERROR bad command line format\r\n");
    assert_string_equal(RUN("set k 0 0 -1\r\n", 100), "CLIENT_ERROR bad command line format\r\n");
    assert_string_equal(RUN("set k 0 0 1 noreply\r\nx\r\n", 100),
                        "<op=4 key=k vlen=1 flags=0 exp=0 cas=0 d=0 nr=1>[x]");
    assert_string_equal(RUN("set k 0 0 z noreply\r\n", 100), "");
    assert_string_equal(RUN("incr k abc\r\n", 100), "CLIENT_ERROR invalid numeric delta argument\r\n");
    assert_string_equal(RUN("incr k -1\r\n", 100), "CLIENT_ERROR invalid numeric delta argument\r\n");
    assert_string_equal(RUN("delete k 5\r\n", 100),
                        "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n");
    assert_string_equal(RUN("touch k x\r\n", 100), "CLIENT_ERROR invalid exptime argument\r\n");
    assert_string_equal(RUN("gat x k\r\n", 100), "CLIENT_ERROR invalid exptime argument\r\n");
    assert_string_equal(RUN("flush_all x\r\n", 100), "CLIENT_ERROR invalid exptime argument\r\n");
    assert_string_equal(RUN("verbosity\r\n", 100), "ERROR\r\n");
    assert_string_equal(RUN("verbosity 1\r\n", 100), "OK\r\n");
    assert_string_equal(RUN("shutdown\r\n", 100), "ERROR: shutdown not enabled\r\n");
}

static void test_commands(void **state)
{
    struct rec rc;
    assert_string_equal(RUN("flush_all\r\nflush_all 10 noreply\r\n", 100),
                        "<flush 0 0><flush 10 1>");
    assert_string_equal(RUN("incr n 18446744073709551615\r\n", 100),
                        "<op=11 key=n vlen=0 flags=0 exp=0 cas=0 d=18446744073709551615 nr=0>");
    assert_string_equal(RUN("cas k 4294967295 -1 1 99\r\nx\r\n", 100),
                        "<op=9 key=k vlen=1 flags=4294967295 exp=-1 cas=99 d=0 nr=0>[x]");
    assert_string_equal(RUN("delete k 0 noreply\r\n", 100),
                        "<op=10 key=k vlen=0 flags=0 exp=0 cas=0 d=0 nr=1>");
    assert_string_equal(RUN("stats\r\nversion\r\n", 100),
                        "<stats>VERSION " PROTO_VERSION "\r\n");
    /* A bare LF ends a line too. */
    assert_string_equal(RUN("get k\n", 100), "<op=0 key=k vlen=0 flags=0 exp=0 cas=0 d=0 nr=0>END\r\n");
}

static void test_quit_stops(void **state)
{
    struct rec rc;
    assert_string_equal(RUN("quit\r\nget k\r\n", 100), "");
    assert_true(rc.quit);
}

static void test_junk_line_closes(void **state)
{
    struct rec rc;
    char in[3000];
    memset(in, 'x', sizeof in);
    assert_string_equal(run(&rc, in, sizeof in, 3000), "<close>");
}

/* memcached 1.6.18: an unknown command ending in HTTP/... closes, silently;
 * nothing after it runs. */
static void test_http_line_closes(void **state)
{
    struct rec rc;
    assert_string_equal(RUN("GET / HTTP/1.0\r\nget a\r\n", 1000), "");
    assert_true(rc.quit);
    assert_int_equal(rc.nreq, 0);
    assert_string_equal(RUN("set / HTTP/1.0\r\n", 1000), "ERROR\r\n");
    assert_string_equal(RUN("x HTTP/1.0\r\n", 1000), "ERROR\r\n");
    assert_string_equal(RUN("xx HTTP\r\n", 1000), "ERROR\r\n");
    assert_false(rc.quit);
}

static void test_slabs_automove(void **state)
{
    struct rec rc;
    assert_string_equal(RUN("slabs automove 1\r\nslabs automove 3\r\nslabs automove x\r\n"
                            "slabs automove 2 noreply\r\nslabs automove ratio 0.8\r\n"
                            "slabs automove ratio\r\nslabs reassign 1 2\r\n", 7),
                        "OK\r\nERROR\r\nCLIENT_ERROR bad command line format\r\n"
                        "OK\r\nERROR\r\nNOSPARE source class has no spare pages\r\n");
    assert_string_equal(RUN("slabs reassign 1 1\r\nslabs reassign 40 1\r\nslabs reassign 1\r\n"
                            "cache_memlimit 7\r\ncache_memlimit\r\n", 5),
                        "SAME src and dst class are identical\r\n"
                        "BADCLASS invalid src or dst class id\r\nERROR\r\n"
                        "MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\nERROR\r\n");
}

static void test_dump_commands(void **state)
{
    struct rec rc;
    assert_string_equal(RUN("lru_crawler metadump all\r\n", 1000),
                        "<dump op=0 limit=0 c1=1 c62=1 c63=1>");
    assert_string_equal(RUN("lru_crawler metadump 1,62\r\n", 1000),
                        "<dump op=0 limit=0 c1=1 c62=1 c63=0>");
    assert_string_equal(RUN("lru_crawler metadump 64\r\nlru_crawler metadump 1,\r\n", 1000),
                        "BADCLASS invalid class id\r\nBADCLASS invalid class id\r\n");
    assert_string_equal(RUN("lru_crawler metadump\r\nlru_crawler crawl\r\n", 1000),
                        "ERROR\r\nERROR\r\n");
    assert_string_equal(RUN("stats cachedump 62 5\r\n", 1000),
                        "<dump op=1 limit=5 c1=0 c62=1 c63=0>");
    assert_string_equal(RUN("stats cachedump 0 5\r\nstats cachedump 1\r\n", 1000),
                        "CLIENT_ERROR Illegal slab id\r\nCLIENT_ERROR bad command line\r\n");
    assert_string_equal(RUN("stats items\r\nstats slabs\r\nstats\r\n", 1000),
                        "<dump op=2 limit=0 c1=0 c62=0 c63=0>"
                        "<dump op=3 limit=0 c1=0 c62=0 c63=0><stats>");
    assert_string_equal(RUN("stats conns\r\nstats conns x\r\n", 1000),
                        "<dump op=4 limit=0 c1=0 c62=0 c63=0><stats>");
}

/* watch: memcached's names, fetchers by default; nothing after it is read. */
static void test_watch(void **state)
{
    struct rec rc;
    assert_string_equal(RUN("watch\r\nget a\r\n", 1000), "<watch 1>");
    assert_int_equal(rc.nreq, 0);
    assert_string_equal(RUN("watch mutations evictions connevents fetchers\r\n", 1000),
                        "<watch 15>");
    assert_string_equal(RUN("watch bogus\r\nwatch rawcmds\r\nget a\r\n", 1000),
                        "ERROR\r\nERROR\r\n<op=0 key=a vlen=0 flags=0 exp=0 cas=0 d=0 nr=0>"
                        "END\r\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_any_split),
        cmocka_unit_test(test_fast_path_same),
        cmocka_unit_test(test_store_line),
        cmocka_unit_test(test_swallow_state),
        cmocka_unit_test(test_multiget),
        cmocka_unit_test(test_long_key),
        cmocka_unit_test(test_bad_data_chunk),
        cmocka_unit_test(test_too_large_swallowed),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_commands),
        cmocka_unit_test(test_quit_stops),
        cmocka_unit_test(test_junk_line_closes),
        cmocka_unit_test(test_http_line_closes),
        cmocka_unit_test(test_slabs_automove),
        cmocka_unit_test(test_dump_commands),
        cmocka_unit_test(test_watch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
