/*
 * test_auth.c — -Y: the credential file's format (memcached's rules, plus
 * blank lines and every entry kept) and the ASCII login gate in front of
 * the text parser, fed in every split, against a recording sink: replies,
 * that nothing reaches the store before a login, the counters.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "proto/auth.h"
#include "proto/proto.h"

struct rec {
    struct buf out;
    int nreq;
    bool quit;
    struct wstats st;
};

static void s_request(void *s, struct req *r)
{
    struct rec *rc = s;
    char line[300];
    int n = snprintf(line, sizeof line, "<req %.*s>", r->klen, r->key);
    buf_add(&rc->out, line, (size_t)n);
    rc->nreq++;
}
static struct buf *s_output(void *s) { return &((struct rec *)s)->out; }
static void s_stats(void *s, const char *a, size_t n, struct stats_out *so) { }
static void s_flush(void *s, int64_t d, const char *ok, size_t n) { buf_adds(s_output(s), "<flush>"); }
static void s_quit(void *s) { ((struct rec *)s)->quit = true; }
static void s_shutdown(void *s, bool g) { }
static bool s_busy(void *s) { return ((struct rec *)s)->quit; }
static struct wstats *s_counters(void *s) { return &((struct rec *)s)->st; }

static const struct proto_sink sink = {
    .request = s_request, .output = s_output, .stats = s_stats, .flush_all = s_flush,
    .quit = s_quit, .shutdown = s_shutdown, .busy = s_busy, .counters = s_counters,
};
static const struct proto_conf conf = { .item_max = 1024, .use_cas = true, .flush_ok = true,
                                        .auth_ascii = true };

static char path[64];

static int load(const char *content)
{
    strcpy(path, "/tmp/percore-test-auth-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
    char err[256];
    int rc = authfile_load(path, err, sizeof err);
    unlink(path);
    return rc;
}

static bool check(const char *u, const char *p)
{
    return authfile_check(u, strlen(u), p, strlen(p));
}

static void test_file_format(void **state)
{
    assert_int_equal(load("alice:pw\r\nbob:a:b:c\n\ncarol:\ndave:x y\n"), 0);
    assert_int_equal(authfile_entries(), 4);
    assert_true(check("alice", "pw"));
    assert_false(check("alice", "pw\r"));
    assert_false(check("alice", "p"));
    assert_false(check("alice", "pwx"));
    assert_false(check("alic", "pw"));
    assert_true(check("bob", "a:b:c"));
    assert_true(check("carol", ""));
    assert_true(check("dave", "x y"));
    assert_false(check("", ""));
    /* memcached keeps 8 entries; every one is kept here */
    char big[4096] = "";
    for (int i = 0; i < 100; i++)
        sprintf(big + strlen(big), "u%d:p%d\n", i, i);
    assert_int_equal(load(big), 0);
    assert_true(check("u99", "p99"));
    /* a bad file keeps the table that was loaded */
    assert_int_equal(load("alice:pw\nno colon\n"), -1);
    assert_true(check("u0", "p0"));
    char err[256];
    assert_int_equal(authfile_load("/nonexistent/auth", err, sizeof err), -1);
    assert_non_null(strstr(err, "Could not open authfile"));
    /* a reload replaces the entries (SIGHUP) */
    assert_int_equal(load("bob:new\n"), 0);
    assert_true(check("bob", "new"));
    assert_false(check("u0", "p0"));
    assert_int_equal(authfile_entries(), 1);
}

/* Feed `in` in chunks of `step` bytes through the gate, as a connection. */
static char *run(struct rec *rc, const char *in, size_t len, size_t step)
{
    static char res[8192];
    const struct proto_ops *ops = proto_auth_gate(&proto_text, &conf);
    void *state = NULL;
    struct buf pending = {0};
    memset(rc, 0, sizeof *rc);
    for (size_t off = 0; off < len && !rc->quit; off += step) {
        size_t n = len - off < step ? len - off : step;
        buf_add(&pending, in + off, n);
        size_t need;
        ssize_t used = ops->parse(&state, &conf, &sink, rc, pending.data, pending.len, &need);
        if (used < 0) {
            buf_adds(&rc->out, "<close>");
            break;
        }
        buf_consume(&pending, (size_t)used);
    }
    ops->state_free(&state);
    snprintf(res, sizeof res, "%.*s", (int)rc->out.len, rc->out.data ? rc->out.data : "");
    buf_free(&rc->out);
    buf_free(&pending);
    return res;
}

static void test_gate_any_split(void **state)
{
    assert_int_equal(load("alice:pw\n"), 0);
    static const char in[] =
        "get k\r\n"
        "set k 0 0 1\r\nv\r\n"
        "set k 0 0 9\r\nalice pwx\r\n"
        "set k 0 0 8\r\nalice pw\r\n"
        "set k 0 0 1\r\nv\r\nget k\r\n";
    static const char want[] =
        "CLIENT_ERROR unauthenticated\r\n"
        "CLIENT_ERROR bad authentication token format\r\n"
        "CLIENT_ERROR authentication failure\r\n"
        "STORED\r\n"
        "<req k><req k>END\r\n";
    for (size_t step = 1; step <= sizeof in; step++) {
        struct rec rc;
        assert_string_equal(run(&rc, in, sizeof in - 1, step), want);
        assert_int_equal(stat_get(&rc.st.auth_cmds), 2);
        assert_int_equal(stat_get(&rc.st.auth_errors), 1);
    }
}

static void test_gate_refuses_everything_before_login(void **state)
{
    assert_int_equal(load("alice:pw\n"), 0);
    struct rec rc;
    static const char in[] = "delete k\r\nincr k 1\r\nflush_all\r\nmg k v\r\nquit\r\n"
                             "set k 0 0 -1\r\nset k 0 0 x\r\nget k k k k k\r\n";
    char *o = run(&rc, in, sizeof in - 1, sizeof in);
    assert_int_equal(rc.nreq, 0);
    assert_false(rc.quit);
    for (int i = 0; i < 8; i++) {
        assert_memory_equal(o, "CLIENT_ERROR unauthenticated\r\n", 30);
        o += 30;
    }
    assert_string_equal(o, "");
    assert_int_equal(stat_get(&rc.st.auth_cmds), 0);
}

static void test_gate_bad_blocks(void **state)
{
    assert_int_equal(load("alice:pw\n"), 0);
    struct rec rc;
    assert_string_equal(run(&rc, "set k 0 0 8\r\nalice pwXX", 23, 23),
                        "CLIENT_ERROR bad command line termination\r\n");
    assert_string_equal(run(&rc, "set k 0 0 99999\r\n", 17, 17),
                        "CLIENT_ERROR bad authentication token format\r\n");
    assert_true(rc.quit);
    char junk[3000];
    memset(junk, 'x', sizeof junk);
    assert_string_equal(run(&rc, junk, sizeof junk, sizeof junk), "<close>");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_format),
        cmocka_unit_test(test_gate_any_split),
        cmocka_unit_test(test_gate_refuses_everything_before_login),
        cmocka_unit_test(test_gate_bad_blocks),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    authfile_free();
    return rc;
}
