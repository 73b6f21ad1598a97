/*
 * conn_report.c — `stats conns` for one worker: a block per socket it owns
 * (its listening sockets, its UDP sockets, its client connections) in
 * memcached 1.6.18's format. Runs on the worker that owns those sockets,
 * as one hop of a store-walk tour (server/introspect.c); reads its own
 * connection list only.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include "util/clock.h"
#include "net/conn.h"
#include "net/tls.h"

/* memcached's "tcp:1.2.3.4:11211" / "tcp6:[::1]:11211" / "unix:/path". A
 * UNIX socket's client has no address of its own, and memcached prints the
 * empty one it keeps for it as "?:<AF 0>". */
static void addr_text(const struct sockaddr_storage *ss, const char *proto, char *out,
                      size_t n)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const void *)ss;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
        port = ntohs(a->sin_port);
        snprintf(out, n, "%s:%s:%u", proto, ip, port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const void *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
        port = ntohs(a->sin6_port);
        snprintf(out, n, "%s6:[%s]:%u", proto, ip, port);
    } else if (ss->ss_family == AF_UNIX) {
        const struct sockaddr_un *a = (const void *)ss;
        if (a->sun_path[0])
            snprintf(out, n, "unix:%.*s", (int)sizeof a->sun_path, a->sun_path);
        else
            snprintf(out, n, "?:<AF 0>");
    } else {
        snprintf(out, n, "%s:?", proto);
    }
}

static void sock_addr(int fd, bool peer, const char *proto, char *out, size_t n)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    memset(&ss, 0, sizeof ss);
    int rc = peer ? getpeername(fd, (struct sockaddr *)&ss, &len)
                  : getsockname(fd, (struct sockaddr *)&ss, &len);
    if (rc < 0)
        ss.ss_family = AF_UNSPEC;
    addr_text(&ss, proto, out, n);
}

static void line(struct stats_out *so, int fd, const char *name, const char *val)
{
    char key[64];
    snprintf(key, sizeof key, "%d:%s", fd, name);
    stats_emit(so, key, val);
}

static void secs_line(struct stats_out *so, int fd, uint32_t secs)
{
    char v[16];
    snprintf(v, sizeof v, "%u", secs);
    line(so, fd, "secs_since_last_cmd", v);
}

void conn_stats_report(struct loop *l, const void *asking, struct stats_out *so)
{
    char a[160];
    uint32_t up = l->now - CLOCK_REL_BASE;
    for (int i = 0; i < l->nlisten; i++) {
        int fd = l->listen[i].fd;
        sock_addr(fd, false, "tcp", a, sizeof a);
        line(so, fd, "addr", a);
        line(so, fd, "state", "conn_listening");
        secs_line(so, fd, up);
    }
    for (int i = 0; i < l->nudp; i++) {
        int fd = l->udp[i].fd;
        line(so, fd, "UDP", "UDP");
        sock_addr(fd, false, "udp", a, sizeof a);
        line(so, fd, "addr", a);
        line(so, fd, "state", "conn_read");
        secs_line(so, fd, up);
    }
    for (const struct conn *c = l->conns; c; c = c->next) {
        int fd = c->src.fd;
        if (fd < 0)
            continue;
        sock_addr(fd, true, "tcp", a, sizeof a);
        line(so, fd, "addr", a);
        sock_addr(fd, false, "tcp", a, sizeof a);
        line(so, fd, "listen_addr", a);
        /* memcached's names: conn_nread while a command waits for the
         * rest of its value (the parser asked for more than is here). */
        size_t have = c->rin ? c->rin_len : c->rbuf.len;
        const char *state = c == asking ? "conn_parse_cmd"
                            : c->woff < buf_size(&c->wbuf) ? "conn_mwrite"
                            : c->rneed > have ? "conn_nread" : "conn_read";
        line(so, fd, "state", state);
        secs_line(so, fd, l->now - c->last_active);
        if (c->tls) {
            /* percore's own: the session, and the client certificate's
             * name under ssl_verify_mode 1..3. */
            const char *ver, *cipher, *records;
            tls_conn_describe(c->tls, &ver, &cipher, &records);
            line(so, fd, "tls_version", ver);
            line(so, fd, "tls_cipher", cipher);
            line(so, fd, "tls_records", records);
            if (c->tls->peer[0])
                line(so, fd, "tls_peer", c->tls->peer);
        }
    }
}
