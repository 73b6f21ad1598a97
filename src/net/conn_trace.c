/*
 * conn_trace.c — memcached's -vv command trace for text connections, on
 * stderr in its format: "<FD new auto-negotiating client connection",
 * "FD: Client using the ascii protocol", "<FD <command line>", ">FD <reply>"
 * (">FD sending key K" for each hit), "<FD connection closed.". On while
 * the verbosity level (-vv, or `verbosity 2`) is at least 2. Runs on the
 * connection's worker; the only state is the connection's trace cursor.
 *
 * Replies are traced from the write buffer just before they are sent, so
 * replies made on other workers are traced too. Like memcached, only what
 * it writes with out_string() is traced: not stats lines (nor the END after
 * them), not meta replies other than MN, not VALUE data, not dump lines.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "util/log.h"
#include "net/conn.h"
#include "proto/auth.h"

static void trace_line(char dir, int fd, const char *what, size_t n)
{
    char b[2048];
    int h = snprintf(b, sizeof b, "%c%d ", dir, fd);
    if (n > sizeof b - (size_t)h - 1)
        n = sizeof b - (size_t)h - 1;
    memcpy(b + h, what, n);
    b[h + (int)n] = '\n';
    ssize_t w = write(STDERR_FILENO, b, (size_t)h + n + 1);
    (void)w;
}

bool conn_tracing(void)
{
    return log_level_now() >= 2;
}

void conn_trace_event(const struct conn *c, const char *what)
{
    if (strcmp(what, "ascii") == 0) {
        char b[64];
        int n = snprintf(b, sizeof b, "%d: Client using the ascii protocol\n", c->src.fd);
        ssize_t w = write(STDERR_FILENO, b, (size_t)n);
        (void)w;
        return;
    }
    trace_line('<', c->src.fd, what, strlen(what));
}

void conn_trace_in(void *s, const char *line, size_t n)
{
    const struct conn *c = s;
    if (conn_tracing())
        trace_line('<', c->src.fd, line, n);
}

/* Data bytes that follow a reply line (VALUE and meta VA lines), or -1. */
static long data_len(const char *l, size_t n, int field)
{
    int f = 0;
    size_t i = 0;
    while (i < n && f < field) {
        while (i < n && l[i] != ' ')
            i++;
        while (i < n && l[i] == ' ')
            i++;
        f++;
    }
    if (i >= n || l[i] < '0' || l[i] > '9')
        return -1;
    long v = 0;
    while (i < n && l[i] >= '0' && l[i] <= '9' && v < (1L << 40))
        v = v * 10 + (l[i++] - '0');
    return v + 2;
}

/* Meta replies memcached does not trace (MN it does). */
static bool meta_code(const char *l, size_t n)
{
    static const char codes[][3] = { "HD", "NF", "NS", "EX", "EN", "ME" };
    if (n < 2 || (n > 2 && l[2] != ' '))
        return false;
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (l[0] == codes[i][0] && l[1] == codes[i][1])
            return true;
    return false;
}

static bool starts(const char *l, size_t n, const char *p)
{
    size_t k = strlen(p);
    return n >= k && memcmp(l, p, k) == 0;
}

void conn_trace_out(struct conn *c)
{
    if (!proto_is_text(c->pops) || !conn_tracing()) {
        c->trace_off = c->wbuf.len;
        return;
    }
    const char *b = c->wbuf.data;
    size_t off = c->trace_off, end = c->wbuf.len;
    while (off < end) {
        /* A value sent by reference is not in data[]: it is the skip. */
        while (c->trace_skip && c->trace_ref < c->wbuf.nrefs &&
               c->wbuf.refs[c->trace_ref].at <= off) {
            size_t r = c->wbuf.refs[c->trace_ref++].len;
            c->trace_skip -= r < c->trace_skip ? r : c->trace_skip;
        }
        if (c->trace_skip) {
            size_t k = end - off < c->trace_skip ? end - off : c->trace_skip;
            off += k;
            c->trace_skip -= k;
            continue;
        }
        const char *nl = memchr(b + off, '\n', end - off);
        if (!nl)
            break;
        const char *l = b + off;
        size_t n = (size_t)(nl - l);
        if (n && l[n - 1] == '\r')
            n--;
        off = (size_t)(nl - b) + 1;
        if (starts(l, n, "VALUE ")) {
            const char *k = l + 6, *ke = memchr(k, ' ', n - 6);
            char msg[300];
            int m = snprintf(msg, sizeof msg, "sending key %.*s",
                             (int)(ke ? ke - k : (long)(n - 6)), k);
            trace_line('>', c->src.fd, msg, (size_t)m);
            long d = data_len(l, n, 3);
            c->trace_skip = d > 0 ? (size_t)d : 0;
        } else if (starts(l, n, "VA ")) {
            long d = data_len(l, n, 1);
            c->trace_skip = d > 0 ? (size_t)d : 0;
        } else if (starts(l, n, "STAT ")) {
            c->trace_stats = true;
        } else if (n == 3 && memcmp(l, "END", 3) == 0 && c->trace_stats) {
            c->trace_stats = false;
        } else if (meta_code(l, n) || starts(l, n, "ITEM ") || starts(l, n, "key=")) {
            /* not out_string() replies in memcached */
        } else {
            trace_line('>', c->src.fd, l, n);
        }
    }
    c->trace_off = off;
}
