/*
 * auth_ascii.c — the -Y gate in front of the text parser (memcached's
 * "ASCII auth"). Until a session authenticates, each line must be
 *
 *     set <any key> <any flags> <any exptime> <bytes>\r\n
 *     <user> <password>\r\n
 *
 * and is answered STORED (authenticated: from then on the session is plain
 * text protocol, parsed by proto_text) or CLIENT_ERROR authentication
 * failure; any other line gets CLIENT_ERROR unauthenticated and runs
 * nothing. Replies, their order and the counters (auth_cmds, auth_errors)
 * are memcached 1.6's. State: struct text_auth, the session's protocol
 * state, owned by the session's worker; once authenticated it only holds
 * the text parser's own state word, and each read costs one test more.
 */
#include <stdlib.h>
#include <string.h>
#include "proto/auth.h"
#include "proto/cmd.h"
#include "proto/text_internal.h"

/* Without a newline after this many bytes the line is junk (memcached). */
#define LINE_JUNK 2048
/* Largest credentials block accepted: memcached's file lines are at most
 * 256 bytes; anything far beyond is not a login. */
#define BLOCK_MAX 4096

struct text_auth {
    void    *text;     /* proto_text's state, once authenticated */
    uint32_t block;    /* bytes of the credentials block (+CRLF) awaited; 0: a line */
    bool     ok;       /* authenticated */
};

/* The n-th space-separated word of p[0..len), or false. */
static bool word(const char *p, size_t len, unsigned n, struct tok *t)
{
    size_t i = 0;
    for (unsigned k = 0;; k++) {
        while (i < len && p[i] == ' ')
            i++;
        if (i >= len)
            return false;
        size_t s = i;
        while (i < len && p[i] != ' ')
            i++;
        if (k == n) {
            t->v = p + s;
            t->n = i - s;
            return true;
        }
    }
}

/* A login line: "set" and at least five words, the fifth a size. The CR
 * of a CRLF stays in the line, as in memcached (the size parser stops at
 * it). */
static bool login_line(const char *line, size_t len, uint32_t *size)
{
    struct tok cmd, bytes;
    return word(line, len, 0, &cmd) && cmd.n == 3 && memcmp(cmd.v, "set", 3) == 0 &&
           word(line, len, 4, &bytes) && parse_u32_trunc(bytes.v, bytes.n, size);
}

static void count(const struct proto_sink *sk, void *s, bool ok)
{
    if (sk->counters)
        cmd_count_auth(sk->counters(s), ok);
}

/* The credentials block blk[0..n) (n >= 2): judge it and reply. */
static bool login(const struct proto_sink *sk, void *s, const char *blk, size_t n)
{
    if (blk[n - 2] != '\r' || blk[n - 1] != '\n') {
        text_reply(sk, s, "CLIENT_ERROR bad command line termination");
        return false;
    }
    struct tok user, pass;
    if (!word(blk, n - 2, 0, &user) || !word(blk, n - 2, 1, &pass)) {
        text_reply(sk, s, "CLIENT_ERROR bad authentication token format");
        return false;
    }
    bool ok = authfile_check(user.v, user.n, pass.v, pass.n);
    count(sk, s, ok);
    text_reply(sk, s, ok ? "STORED" : "CLIENT_ERROR authentication failure");
    return ok;
}

/* Before the login (and the read that carries it): out of line, so the
 * logged-in path below stays a test and a tail call. */
static __attribute__((noinline)) ssize_t
login_parse(void **state, const struct proto_conf *cf, const struct proto_sink *sk, void *s,
            const char *data, size_t len, size_t *need)
{
    struct text_auth *a = *state;
    if (!a) {
        if (!(a = calloc(1, sizeof *a)))
            return -1;
        *state = a;
    }
    size_t off = 0;
    *need = 0;
    while (off < len && !a->ok) {
        const char *p = data + off;
        size_t avail = len - off;
        if (a->block) {
            if (avail < a->block) {
                *need = a->block;
                return (ssize_t)off;
            }
            a->ok = login(sk, s, p, a->block);
            off += a->block;
            a->block = 0;
            continue;
        }
        if (sk->busy(s))
            return (ssize_t)off;
        const char *nl = memchr(p, '\n', avail);
        if (!nl)
            return avail > LINE_JUNK ? -1 : (ssize_t)off;
        uint32_t size;
        off += (size_t)(nl - p) + 1;
        if (!login_line(p, (size_t)(nl - p), &size)) {
            text_reply(sk, s, "CLIENT_ERROR unauthenticated");
            continue;
        }
        if (size > BLOCK_MAX) {
            /* Not a login, and not worth reading: say so and hang up. */
            text_reply(sk, s, "CLIENT_ERROR bad authentication token format");
            (sk->quit_error ? sk->quit_error : sk->quit)(s);
            return (ssize_t)len;
        }
        a->block = size + 2;
    }
    if (a->ok && off < len) {
        ssize_t used = proto_text.parse(&a->text, cf, sk, s, data + off, len - off, need);
        if (used < 0)
            return -1;
        off += (size_t)used;
    }
    return (ssize_t)off;
}

static ssize_t auth_parse(void **state, const struct proto_conf *cf,
                          const struct proto_sink *sk, void *s, const char *data, size_t len,
                          size_t *need)
{
    struct text_auth *a = *state;
    if (__builtin_expect(a && a->ok, 1))
        return proto_text.parse(&a->text, cf, sk, s, data, len, need);
    return login_parse(state, cf, sk, s, data, len, need);
}

static void auth_state_free(void **state)
{
    struct text_auth *a = *state;
    if (a) {
        proto_text.state_free(&a->text);
        free(a);
    }
    *state = NULL;
}

static const struct proto_ops proto_text_auth = {
    .name = "ascii", .detect = NULL, .parse = auth_parse, .state_free = auth_state_free,
};

const struct proto_ops *proto_auth_gate(const struct proto_ops *p, const struct proto_conf *cf)
{
    return p == &proto_text && cf->auth_ascii ? &proto_text_auth : p;
}

bool proto_is_text(const struct proto_ops *p)
{
    return p == &proto_text || p == &proto_text_auth;
}
