/*
 * conn.c — TCP connections: accept, read, parse, dispatch, ordered replies,
 * write, back-pressure and close. Everything here runs on the worker that
 * accepted the connection. Requests for keys owned elsewhere become messages
 * (net/msg.h); their replies take their place in the connection's reply
 * queue, and only the completed prefix of that queue is ever written.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "util/hash.h"
#include "util/log.h"
#include "util/sys.h"
#include "net/accept_limit.h"
#include "net/conn.h"
#include "proto/auth.h"
#include "proto/text_line.h"
#include "net/tls.h"
#include "util/tls_opts.h"

#define READ_CHUNK    16384
#define MAX_INFLIGHT  1024          /* per connection, then stop parsing */
#define INFLIGHT_START  64          /* ... until the first reply shows its size */
#define INFLIGHT_MIN    16          /* never fewer, however large replies are */
#define BUF_KEEP      (64 * 1024)   /* larger idle buffers are released */
#define MAX_OUT_REFS  1024          /* values sent by reference pending per connection */
#define IOV_BATCH     64            /* iovecs per sendmsg */
#define RBUF_PAUSE    (64 * 1024)   /* unparsed input that stops reading */
#define SEND_SLICE    (128 * 1024)  /* bytes sent per connection per iteration (epoll) */
#define WORKER_SEND_BUDGET (4u << 20) /* bytes all its connections send per iteration */
/* io_uring: replies per iteration sent with a plain send before the rest go
 * through the ring (see conn_serve). */
#define DIRECT_SENDS_MAX 4u

_Atomic int global_conns;

static void conn_update_events(struct conn *c);

/* ---- the reply queue ---------------------------------------------------- */

static void queue_append(struct conn *c, struct msg *m)
{
    m->next = NULL;
    if (c->q_tail)
        c->q_tail->next = m;
    else
        c->q_head = m;
    c->q_tail = m;
}

static void mark_dirty(struct conn *c)
{
    if (!c->in_dirty) {
        c->in_dirty = true;
        c->dirty_next = c->l->dirty;
        c->l->dirty = c;
    }
}

/* ---- the sink the parsers call ------------------------------------------ */

static __attribute__((noinline)) struct buf *queued_output(struct conn *c)
{
    if (c->q_tail->kind != MSG_LOCAL)
        queue_append(c, msg_new_local());
    return &c->q_tail->reply;
}

/* Where output goes now: wbuf, unless replies wait in the queue. */
static inline struct buf *conn_output(struct conn *c)
{
    return c->q_tail ? queued_output(c) : &c->wbuf;
}

static struct buf *sink_output(void *s)
{
    return conn_output(s);
}

/* Where a request executed here writes its reply (loop_route calls it
 * only then): noted, so the reply's size can be measured. */
static struct buf *exec_output(void *s)
{
    struct conn *c = s;
    c->xout = conn_output(c);
    c->xbefore = buf_size(c->xout);
    return c->xout;
}

/* A keyed request: executed here or forwarded; inline where the
 * connection's own get path calls it, through the sink for the parsers. */
static inline __attribute__((always_inline)) void conn_request(struct conn *c, struct req *r)
{
    r->cfd = c->src.fd;
    struct msg *m = loop_route(c->l, r, MSG_REQ, c, exec_output);
    if (m) {
        queue_append(c, m);
        c->inflight++;
        return;
    }
    size_t n = buf_size(c->xout) - c->xbefore;
    if (n > c->reply_est)
        c->reply_est = n;
    if (c->xout != &c->wbuf) {
        /* Queued behind a forwarded request: count it against the cap. */
        c->qbytes += n;
        c->q_tail->u.qbytes += n;
    }
}

static void sink_request(void *s, struct req *r)
{
    conn_request(s, r);
}

static struct msg *barrier_of(void *s)
{
    return conn_barrier(s);
}

static void sink_stats(void *s, const char *arg, size_t len, struct stats_out *so)
{
    struct conn *c = s;
    c->l->host->stats(c->l, barrier_of, c, arg, len, so);
}

/* A store walk touring the workers (server/introspect.c): queued like a
 * forwarded request, its reply comes home through conn_reply_arrived. */
static void sink_dump(void *s, const struct dump_req *d)
{
    struct conn *c = s;
    struct msg *m = c->l->host->dump_new(c->l, d);
    m->conn = c;
    queue_append(c, m);
    c->inflight++;
    c->l->host->dump_start(c->l, m);
}

static void sink_watch(void *s, unsigned flags)
{
    struct conn *c = s;
    buf_add(sink_output(c), "OK\r\n", 4);
    c->watching = true;
    c->l->host->watch_start(c->l, c, flags);
}

struct msg *conn_barrier(struct conn *c)
{
    struct msg *b = calloc(1, sizeof *b);
    if (!b)
        abort();
    b->kind = MSG_BARRIER;
    b->from = (uint8_t)c->l->id;
    b->conn = c;
    queue_append(c, b);
    c->inflight++;
    return b;
}

/* The "OK" takes its place in the reply order once every worker has applied
 * the flush, so no client can read a flushed item after it. */
static void sink_flush_all(void *s, int64_t delay, const char *ok, size_t n)
{
    struct conn *c = s;
    struct msg *barrier = NULL;
    if (n) {
        barrier = conn_barrier(c);
        buf_add(&barrier->reply, ok, n);
    }
    c->l->host->flush_all(c->l, delay, barrier);
}

static void sink_memlimit(void *s, uint64_t bytes)
{
    struct conn *c = s;
    c->l->host->memlimit(c->l, bytes);
}

static void sink_quit(void *s)
{
    struct conn *c = s;
    c->closing = true;
}

static void sink_quit_error(void *s)
{
    struct conn *c = s;
    c->closing = true;
    c->close_reason = CLOSE_ERROR;
}

static void sink_shutdown(void *s, bool graceful)
{
    struct conn *c = s;
    c->closing = true;
    c->close_reason = CLOSE_SHUTDOWN;
    kill(getpid(), graceful ? SIGUSR1 : SIGINT);
}

/* Output of this connection not yet sent: in wbuf, queued behind a
 * forwarded request, and in the backend's hands. */
static size_t conn_pending(const struct conn *c)
{
    return buf_size(&c->wbuf) - c->woff + c->qbytes + c->tx_bytes +
           (c->tls ? tls_conn_unsent(c->tls) : 0);
}

/* What its pending output costs in memory: own bytes (values sent by
 * reference cost a descriptor, not a copy; queued replies are counted whole,
 * which errs on the safe side). */
static size_t conn_owned(const struct conn *c)
{
    return c->wbuf.len + c->qbytes + c->tx_own + (c->tls ? c->tls->out.len : 0);
}

/* Keep the worker's sum of its connections' own output current. */
static void conn_recount(struct conn *c)
{
    size_t now = c->closed ? 0 : conn_owned(c);
    c->l->out_bytes += now - c->counted;
    c->counted = now;
}

/* Back-pressure, judged before each request (never in the middle of one):
 *  - this connection: output not yet sent past --max-conn-output, or too
 *    many values referenced, or forwarded requests beyond what the cap
 *    leaves room for at the largest reply seen here (a window of
 *    INFLIGHT_START until one is seen, never fewer than INFLIGHT_MIN);
 *  - the worker: all its connections' own output past out_max; then the
 *    connections holding more than their share stop first, and past twice
 *    out_max every connection with output pending does.
 * A connection that stops is not read until its output drains. */
static __attribute__((noinline)) bool out_full_slow(struct conn *c, size_t out);

static inline bool out_full(struct conn *c)
{
    size_t out = conn_pending(c);
    /* The common cases, inline (it is asked before every request): nothing
     * in flight, and nothing unsent, or (a pipelining client) only own
     * bytes under both caps; out_full_slow() answers the same for them. */
    if (c->inflight == 0 && c->wbuf.nrefs == 0 && !c->closing && !c->l->route_paused) {
        if (out == 0)
            return false;
        struct loop *l = c->l;
        if (out <= settings.conn_out_max && c->tx_refs == 0 &&
            (!l->out_max || l->out_bytes + conn_owned(c) - c->counted <= l->out_max))
            return false;
    }
    return out_full_slow(c, out);
}

static bool out_full_slow(struct conn *c, size_t out)
{
    size_t cap = settings.conn_out_max;
    if (c->closing || c->inflight >= MAX_INFLIGHT || (c->settling && c->inflight))
        return true;
    if (out > cap || c->wbuf.nrefs + c->tx_refs >= MAX_OUT_REFS) {
        STAT_INC(c->l->stats, conn_output_throttled);
        return true;
    }
    struct loop *l = c->l;
    if (l->route_paused) {
        STAT_INC(l->stats, ring_backpressure);
        return true;
    }
    size_t own = conn_owned(c);
    size_t total = l->out_bytes + own - c->counted;
    if (l->out_max && total > l->out_max && own > 0 &&
        (total > 2 * l->out_max || own >= total / (l->nconns ? l->nconns : 1))) {
        STAT_INC(l->stats, worker_output_throttled);
        return true;
    }
    if (c->inflight < INFLIGHT_MIN)
        return false;
    if (c->reply_est == 0)
        return c->inflight >= INFLIGHT_START;
    return out >= cap || (cap - out) / c->reply_est <= c->inflight;
}

/* Start this connection's per-iteration shares (commands, bytes sent) when
 * the worker's loop has moved on. */
static void conn_iteration(struct conn *c)
{
    if (c->iter != c->l->iter) {
        c->iter = c->l->iter;
        c->nreq = 0;
        c->sent_iter = 0;
    }
}

/* Fairness: at most -R commands of one connection per loop iteration; the
 * rest of its input waits for the next iteration, after every other ready
 * connection and ring has had its turn. */
static inline bool conn_busy(struct conn *c)
{
    if (out_full(c))
        return true;
    /* conn_iteration() ran when this parse started (conn_parse). */
    if (settings.reqs_per_event > 0 && c->nreq >= (unsigned)settings.reqs_per_event) {
        if (!c->yielded)
            STAT_INC(c->l->stats, conn_yields);
        c->yielded = true;
        return true;
    }
    c->nreq++;
    return false;
}

static bool sink_busy(void *s)
{
    return conn_busy(s);
}

/* Not settled: input stops (out_full) until the last reply is home, and
 * conn_reply_arrived's wake-up parses the held line again. */
static bool sink_settled(void *s)
{
    struct conn *c = s;
    c->settling = c->inflight > 0;
    return !c->settling;
}

static struct wstats *sink_counters(void *s)
{
    return ((struct conn *)s)->l->stats;
}

/* As a -R yield, asked by the parser (proto.h). */
static void sink_yield(void *s)
{
    struct conn *c = s;
    if (!c->yielded)
        STAT_INC(c->l->stats, conn_yields);
    c->yielded = true;
}

/* refresh_certs (memcached's replies: "OK", or its error line as is).
 * Reading the files costs this worker a few hundred microseconds, once. */
static void sink_refresh_certs(void *s, bool noreply)
{
    struct conn *c = s;
    char err[512];
    struct buf *o = sink_output(c);
    if (tls_refresh(err, sizeof err) == 0) {
        if (!noreply)
            buf_adds(o, "OK\r\n");
        return;
    }
    buf_adds(o, err);
    buf_adds(o, "\r\n");
}

const struct proto_sink conn_sink = {
    .request = sink_request, .output = sink_output, .stats = sink_stats,
    .flush_all = sink_flush_all, .quit = sink_quit, .quit_error = sink_quit_error, .shutdown = sink_shutdown,
    .dump = sink_dump, .busy = sink_busy, .settled = sink_settled, .trace = conn_trace_in, .watch = sink_watch,
    .counters = sink_counters, .yield = sink_yield,
    .refresh_certs = sink_refresh_certs,
    .memlimit = sink_memlimit,
};

/* ---- accept ------------------------------------------------------------- */

/* A freshly accepted socket, from accept4() or an io_uring multishot accept. */
void conn_accept_fd(struct loop *l, int fd)
{
    static const char too_many[] = "ERROR Too many open connections\r\n";
    if (atomic_fetch_add(&global_conns, 1) >= settings.maxconns) {
        atomic_fetch_sub(&global_conns, 1);
        STAT_INC(l->stats, rejected_connections);
        ssize_t wr = send(fd, too_many, sizeof too_many - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)wr;
        close(fd);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (l->reactor.busy_poll) {
        /* --io poll: the socket's own NAPI busy polling, for kernels without
         * epoll's (reactor_epoll.c); refused without CAP_NET_ADMIN on some
         * kernels, which only costs the optimisation. */
        int usecs = 50;
        setsockopt(fd, SOL_SOCKET, SO_BUSY_POLL, &usecs, sizeof usecs);
        setsockopt(fd, SOL_SOCKET, SO_PREFER_BUSY_POLL, &one, sizeof one);
    }
    struct conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        atomic_fetch_sub(&global_conns, 1);
        return;
    }
    c->src.type = SRC_CONN;
    c->src.fd = fd;
    c->l = l;
    c->last_active = l->now;
    c->events = EV_READ;
    if (tls_wanted(l, fd) && !(c->tls = tls_conn_new(l->id, l->now))) {
        close(fd);
        free(c);
        atomic_fetch_sub(&global_conns, 1);
        return;
    }
    if (reactor_add(&l->reactor, fd, c->events, &c->src) < 0) {
        tls_conn_free(c->tls);
        close(fd);
        free(c);
        atomic_fetch_sub(&global_conns, 1);
        return;
    }
    c->next = l->conns;
    if (l->conns)
        l->conns->prev = c;
    l->conns = c;
    l->nconns++;
    STAT_INC(l->stats, curr_connections);
    STAT_INC(l->stats, total_connections);
    if (conn_tracing())
        conn_trace_event(c, "new auto-negotiating client connection");
    if (l->host->conn_event)
        l->host->conn_event(l, fd, true, NULL);
}

void conn_accept(struct loop *l, struct evsrc *ls)
{
    for (int i = 0; i < 64; i++) {
        int fd = accept4(ls->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (accept_limit_failed(l, ls, errno))
                return;    /* out of descriptors: paused, see accept_limit.c */
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                log_warn("accept: %s", strerror(errno));
            return;
        }
        conn_accept_fd(l, fd);
    }
}

/* ---- close -------------------------------------------------------------- */

/* Drop the reply queue. In-flight messages belong to their owners until
 * they come home (conn_reply_arrived frees them), so they are only unlinked;
 * this must run when the connection closes, before any of them returns. */
static void queue_drop(struct conn *c)
{
    for (struct msg *m = c->q_head, *n; m; m = n) {
        n = m->next;
        if (m->kind == MSG_LOCAL || m->done)
            msg_release(m);
    }
    c->q_head = c->q_tail = NULL;
}

static void conn_free(struct conn *c)
{
    queue_drop(c);
    buf_free(&c->rbuf);
    buf_free(&c->wbuf);
    tls_conn_free(c->tls);
    c->tls = NULL;
    if (c->pops)
        c->pops->state_free(&c->pstate);
    if (c->inflight == 0 && !c->in_resume)
        free(c);
}

void conn_release(struct conn *c)
{
    if (--c->inflight == 0 && c->closed && !c->in_dirty && !c->in_resume)
        free(c);
}

/* memcached's words for why a connection closed (watch connevents). A
 * protocol error, an idle timeout and the shutdown command are told apart;
 * every other close (the client's quit or end of stream, a reset, a
 * failed send) says normal, where memcached says error for the resets. */
static const char *const close_reasons[] = {
    [CLOSE_NORMAL] = "normal", [CLOSE_ERROR] = "error",
    [CLOSE_IDLE] = "idle_timeout", [CLOSE_SHUTDOWN] = "shutdown",
};

/* Defined with the TLS transport below. */
static void tls_close_notify(struct conn *c);

void conn_close(struct conn *c)
{
    if (c->closed)
        return;
    struct loop *l = c->l;
    if (c->tls)
        tls_close_notify(c);
    if (conn_tracing())
        conn_trace_event(c, "connection closed.");
    if (c->watching)
        l->host->watch_stop(l, c);
    if (l->host->conn_event)
        l->host->conn_event(l, c->src.fd, false, close_reasons[c->close_reason]);
    reactor_del(&l->reactor, c->src.fd, c->closing);
    close(c->src.fd);
    c->src.fd = -1;
    c->closed = true;
    queue_drop(c);
    c->qbytes = 0;
    conn_recount(c);
    if (c->prev)
        c->prev->next = c->next;
    else
        l->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    l->nconns--;
    STAT_DEC(l->stats, curr_connections);
    atomic_fetch_sub(&global_conns, 1);
    /* Freed from the dirty pass, so callers up the stack may still look. */
    mark_dirty(c);
}

/* ---- output ------------------------------------------------------------- */

/* Send from wbuf (own bytes and references, in order) with sendmsg, at
 * most SEND_SLICE per loop iteration: filling a client's socket buffer with
 * megabytes is a copy the worker pays for, and one connection must not hold
 * the loop for long (the rest goes when epoll reports it writable again). */
/* What the worker may still send in this iteration, over all its
 * connections: the copies into socket buffers are the loop's largest cost
 * under many clients of large values, and they must not add up to seconds. */
/* The worker's per-iteration send counts start over when its loop moved on. */
static void send_counts_sync(struct loop *l)
{
    if (l->sent_at != l->iter) {
        l->sent_at = l->iter;
        l->sent_iter = 0;
        l->direct_sends = 0;
    }
}

static size_t send_room(struct loop *l)
{
    send_counts_sync(l);
    return l->sent_iter < WORKER_SEND_BUDGET ? WORKER_SEND_BUDGET - l->sent_iter : 0;
}

/* Continue this connection in the next loop iteration. */
static void resume_later(struct conn *c)
{
    if (c->in_resume)
        return;
    c->in_resume = true;
    c->resume_next = c->l->resume;
    c->l->resume = c;
}

/* io_uring: may this iteration still send a reply directly? */
static bool direct_send_ok(struct loop *l)
{
    send_counts_sync(l);
    return l->direct_sends++ < DIRECT_SENDS_MAX;
}

/* What goes to the socket: the replies themselves, or with TLS the
 * ciphertext they were sealed into (tls_seal). */
static struct buf *sock_out(struct conn *c, size_t **off)
{
    if (c->tls) {
        *off = &c->tls->outoff;
        return &c->tls->out;
    }
    *off = &c->woff;
    return &c->wbuf;
}

static inline __attribute__((always_inline)) bool send_direct(struct conn *c)
{
    struct loop *l = c->l;
    size_t *off;
    struct buf *ob = sock_out(c, &off);
    if (*off >= buf_size(ob))
        return true;   /* nothing to send */
    conn_iteration(c);
    send_counts_sync(l);
    for (;;) {
        size_t room = SEND_SLICE - c->sent_iter;
        size_t wroom = l->sent_iter < WORKER_SEND_BUDGET ? WORKER_SEND_BUDGET - l->sent_iter : 0;
        if (wroom < room)
            room = wroom;
        if (room == 0)
            break;
        ssize_t n;
        if (ob->nrefs == 0) {
            /* Own bytes only (the common case): one plain send. */
            size_t len = ob->len - *off;
            n = sys_send(c->src.fd, ob->data + *off, len < room ? len : room,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        } else {
            struct iovec iov[IOV_BATCH];
            size_t niov = buf_iov(ob, *off, room, iov, IOV_BATCH);
            struct msghdr mh = { .msg_iov = iov, .msg_iovlen = niov };
            n = sys_sendmsg(c->src.fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        }
        if (n > 0) {
            *off += (size_t)n;
            c->sent_iter += (size_t)n;
            l->sent_iter += (size_t)n;
            STAT_ADD(c->l->stats, bytes_written, (uint64_t)n);
            if (*off >= buf_size(ob))
                break;   /* all of it sent */
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            break;
        return false;   /* peer gone */
    }
    return true;
}

/* ---- input -------------------------------------------------------------- */

/* Input received in place (c->rin) moves into rbuf, from byte `from` on:
 * before more arrives behind it, or what is left unparsed before the
 * backend's buffer goes back. rbuf is empty whenever rin is set. */
static __attribute__((noinline)) bool rin_keep(struct conn *c, size_t from)
{
    size_t n = c->rin_len - from, want = n > c->rneed ? n : c->rneed;
    const char *p = c->rin + from;
    c->rin = NULL;
    c->rin_len = 0;
    if (n == 0)
        return true;
    if (!buf_reserve(&c->rbuf, want)) {
        conn_close(c);
        return false;
    }
    memcpy(c->rbuf.data + c->rbuf.len, p, n);
    c->rbuf.len += n;
    return true;
}

/* One single-key text get (text_get_line's), as the parser runs it: the
 * request, then "END". */
static inline __attribute__((always_inline)) void text_get(struct conn *c, uint8_t op,
                                                           const char *key, size_t klen)
{
    struct req r = {0};
    r.op = op;
    r.proto = PROTO_TEXT;
    r.key = key;
    r.klen = (uint8_t)klen;
    conn_request(c, &r);
    buf_add(conn_output(c), "END\r\n", 5);
}

/* Single-key text gets at the front of the input, run as the text parser
 * would run them (its busy check, the request, "END"), without its general
 * loop and the sink's calls through pointers: at one request per wake-up
 * that loop was a fifth of a get. Stops at the first other line, which the
 * parser then takes; *busy when back-pressure or -R stopped it, as the
 * parser would have stopped. Returns the bytes consumed. */
static size_t serve_gets(struct conn *c, const char *data, size_t len, bool *busy)
{
    size_t off = 0, line, klen;
    const char *key;
    uint8_t op;
    while ((line = text_get_line(data + off, len - off, &op, &key, &klen))) {
        if (conn_busy(c)) {
            *busy = true;
            break;
        }
        text_get(c, op, key, klen);
        off += line;
    }
    return off;
}

/* Plain storage commands (set/add/replace/append/prepend, text_line.h's
 * rules) at the front of the input whose data block is all here, run as
 * the parser's store_block() would run them: its busy check, then the
 * request with the value where it lies in the receive buffer (the store
 * copies it once, into its segment; a forwarded one is copied into its
 * message as the parser's would be). A value over -I, a bad data chunk or
 * one not all here stops it before the busy check, and the parser judges
 * that line (its reply, the swallow, the wait for more); the parser also
 * takes whatever follows the stores (its own fast_line reads gets and
 * stores in one pass). Inline in parse_rest, out of conn_parse's get
 * path, and the request through the sink's own out-of-line copy: another
 * inlined copy of the get executor made conn_serve's get path dearer.
 * *busy as serve_gets. Returns the bytes consumed. */
static inline size_t serve_stores(struct conn *c, const char *data, size_t len, bool *busy)
{
    size_t off = 0, line;
    struct store_line sl;
    while ((line = text_store_line(data + off, len - off, &sl))) {
        const char *val = data + off + line;
        size_t total = line + (size_t)sl.vlen + 2;
        if (sl.vlen > c->l->conf->item_max || len - off < total || val[sl.vlen] != '\r' ||
            val[sl.vlen + 1] != '\n')
            break;
        if (conn_busy(c)) {
            *busy = true;
            break;
        }
        struct req r = {0};
        r.op = sl.op;
        r.proto = PROTO_TEXT;
        r.noreply = sl.noreply;
        r.key = sl.key;
        r.klen = (uint8_t)sl.klen;
        r.flags = sl.flags;
        r.exptime = (int32_t)sl.exptime;
        r.val = val;
        r.vlen = sl.vlen;
        sink_request(c, &r);
        off += total;
    }
    return off;
}

/* The protocol's own parser from off on: the bytes consumed in all, or -1
 * (close). */
static inline ssize_t parse_general(struct conn *c, const char *data, size_t len, size_t off,
                                    size_t *need)
{
    ssize_t more = c->pops->parse(&c->pstate, c->l->conf, &conn_sink, c, data + off,
                                  len - off, need);
    return more < 0 ? -1 : (ssize_t)off + more;
}

/* What the gets at the front left, when it may start with a storage
 * line: the plain stores, then the parser. Out of line, so conn_parse's
 * get path keeps its registers. Returns the bytes consumed in all, or -1
 * (close). */
static __attribute__((noinline)) ssize_t
parse_rest(struct conn *c, const char *data, size_t len, size_t off, size_t *need)
{
    bool busy = false;
    off += serve_stores(c, data + off, len - off, &busy);
    if (busy || off == len)
        return (ssize_t)off;
    return parse_general(c, data, len, off, need);
}

/* Run the parser over the input (rbuf, or what io_uring received in place):
 * the only place requests are parsed. */
static void conn_parse(struct conn *c)
{
    if (c->watching) {
        c->rbuf.len = 0;   /* a watch stream ignores what its client sends */
        c->rin = NULL;
        return;
    }
    const char *data = c->rin ? c->rin : c->rbuf.data;
    size_t len = c->rin ? c->rin_len : c->rbuf.len;
    /* -B ascii|binary fixes the protocol as memcached does (a binary
     * request is then parsed as text, or text fails the magic check). */
    if (!c->pops && len) {
        c->pops = settings.protocol == PROT_ASCII ? &proto_text
                : settings.protocol == PROT_BINARY ? &proto_binary
                : proto_detect(data, len);
        if (c->pops == &proto_text && conn_tracing())
            conn_trace_event(c, "ascii");
        c->pops = proto_auth_gate(c->pops, c->l->conf);   /* -Y */
    }
    if (!c->pops)
        return;   /* TLS: nothing decrypted yet */
    size_t need = 0, off = 0;
    bool busy = false;
    conn_iteration(c);   /* the -R share sink_busy() counts */
    bool fast = c->pops == &proto_text && !c->pstate && log_level_now() < 2;
    if (fast)
        off = serve_gets(c, data, len, &busy);
    ssize_t used = (ssize_t)off;
    if (!busy && off < len) {
        used = fast && text_store_first(data[off]) ? parse_rest(c, data, len, off, &need)
                                                   : parse_general(c, data, len, off, &need);
    }
    if (used < 0) {
        c->close_reason = CLOSE_ERROR;
        conn_close(c);
        return;
    }
    c->rneed = need;
    if (c->rin) {
        if ((size_t)used == len)
            c->rin = NULL;   /* all of it parsed: nothing to keep */
        else if (!rin_keep(c, (size_t)used))
            return;
    } else {
        buf_consume(&c->rbuf, (size_t)used);
    }
    c->stalled = c->rbuf.len > 0 && (c->yielded || out_full(c));
    if (c->yielded) {
        c->yielded = false;
        if (c->rbuf.len > 0)
            resume_later(c);
    }
    /* The worker's output sum is brought up to date by conn_update_events()
     * (or conn_close()), which every path out of conn_serve() reaches before
     * another connection is served. */
    if (c->rbuf.len == 0 && c->rbuf.cap > BUF_KEEP)
        buf_free(&c->rbuf);
}

/* ---- a lone get: one request per wake-up ------------------------------- */

/* At one request per wake-up nearly every input is one get on a connection
 * with nothing else going on. It runs where its bytes arrive (conn_read,
 * conn_feed) and its reply goes out at once, without the serve pass and
 * conn_serve's general steps, each of which would conclude "nothing to do"
 * (at that load they were a tenth of a get). Input is still parsed in
 * order: a connection with anything unparsed, queued or unsent is not
 * fresh, and its input waits for the serve pass as before. */

/* Fresh: nothing parsed, queued, unsent, in flight or held back, and plain
 * text without TLS or tracing (the reply goes straight to the socket). One
 * test of the fields that are zero then; what both callers have just
 * established is not asked again (open, input noted). */
static inline bool conn_fresh(const struct conn *c)
{
    return (c->wbuf.len | c->wbuf.rlen | c->tx_bytes | c->inflight | c->rneed |
            (uintptr_t)c->q_head | (uintptr_t)c->pstate | (uintptr_t)c->tls) == 0 &&
           !(c->eof | c->stalled | c->closing | c->watching) &&
           c->pops == &proto_text && !c->l->route_paused && log_level_now() < 2;
}

/* Input that is exactly one single-key get line (text_get_line), run as
 * serve_gets runs it, the input then consumed as conn_parse would; false,
 * with nothing done, for anything else. A fresh connection has no output,
 * so back-pressure cannot stop it; -R can, and then the parser decides. */
static inline bool serve_lone_get(struct conn *c)
{
    const char *data = c->rin ? c->rin : c->rbuf.data;
    size_t len = c->rin ? c->rin_len : c->rbuf.len, klen;
    const char *key;
    uint8_t op;
    size_t line = text_get_line(data, len, &op, &key, &klen);
    if (line == 0 || line != len)
        return false;
    conn_iteration(c);
    if (settings.reqs_per_event > 0 && c->nreq >= (unsigned)settings.reqs_per_event)
        return false;
    c->nreq++;
    c->feed_pending = false;
    text_get(c, op, key, klen);
    if (c->rin)
        c->rin = NULL;
    else
        c->rbuf.len = 0;
    if (c->rbuf.cap > BUF_KEEP)
        buf_free(&c->rbuf);
    return true;
}

/* Its reply, when it is all own bytes in wbuf and may go now: one plain
 * send, as send_direct's usual case. True when everything is sent and the
 * connection is as conn_quiet() wants it; false leaves whatever is left to
 * conn_serve's general steps (a forwarded get, a value by reference, a
 * partial or failed send, io_uring's direct sends spent). The per-iteration
 * send budgets (SEND_SLICE, WORKER_SEND_BUDGET) are not asked or charged:
 * they keep large copies from holding the loop, and a lone reply is small
 * (values of PROTO_REF_MIN bytes and more go by reference, which is not
 * this path), at most one per event of the iteration. */
static inline bool send_lone_reply(struct conn *c)
{
    struct loop *l = c->l;
    if (c->q_head || c->wbuf.nrefs || (reactor_sends(&l->reactor) && !direct_send_ok(l)))
        return false;
    size_t len = c->wbuf.len;
    ssize_t n = sys_send(c->src.fd, c->wbuf.data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n <= 0)
        return false;
    STAT_ADD(l->stats, bytes_written, (uint64_t)n);
    if ((size_t)n < len) {
        c->woff = (size_t)n;
        return false;
    }
    c->wbuf.len = 0;   /* buf_reset without references; woff and the -vv
                        * trace offsets are still 0 (fresh, not tracing) */
    if (c->wbuf.cap > BUF_KEEP)
        buf_free(&c->wbuf);
    return c->events == EV_READ && c->counted == 0;
}

/* The lone get where its input arrived: true when it ran and its reply
 * went out, leaving nothing for the serve pass; false (not fresh, not a
 * lone get, or a reply that could not go at once) leaves it to the serve
 * pass. One out-of-line copy of the inlined get executor for both
 * backends. */
static __attribute__((noinline)) bool serve_quick(struct conn *c)
{
    return conn_fresh(c) && serve_lone_get(c) && send_lone_reply(c);
}

/* New input: parsed once in this iteration's serve pass, after every read
 * and completion of the iteration is in (a line split over several reads or
 * provided buffers is judged whole). */
static inline void input_noted(struct conn *c, size_t n)
{
    c->last_active = c->l->now;
    STAT_ADD(c->l->stats, bytes_read, (uint64_t)n);
    c->feed_pending = true;
}

static inline void input_arrived(struct conn *c, size_t n)
{
    input_noted(c, n);
    mark_dirty(c);
}

/* conn_feed() for all but the usual case (conn_feed takes that). */
static __attribute__((noinline)) void feed_slow(struct conn *c, const char *data, size_t n)
{
    if (c->closed)
        return;
    if (c->tls) {
        /* Ciphertext: decrypted in this iteration's serve pass (tls_input). */
        if (!tls_conn_in_reserve(c->tls, n)) {
            conn_close(c);
            return;
        }
        memcpy(c->tls->in.data + c->tls->in.len, data, n);
        c->tls->in.len += n;
        input_arrived(c, n);
        return;
    }
    /* Bytes left over, or still held where they arrived: this follows. */
    if (c->rin && !rin_keep(c, 0))
        return;
    size_t want = n;
    if (c->rneed > c->rbuf.len && c->rneed - c->rbuf.len > want)
        want = c->rneed - c->rbuf.len;
    if (!buf_reserve(&c->rbuf, want)) {
        conn_close(c);
        return;
    }
    memcpy(c->rbuf.data + c->rbuf.len, data, n);
    c->rbuf.len += n;
    input_arrived(c, n);
}

void conn_feed(struct conn *c, const char *data, size_t n)
{
    /* The usual case first, calling nothing (the rest is a tail call): an
     * open plain connection with nothing left over parses the bytes where
     * they lie (the serve pass comes before the buffer goes back); only
     * what is left over is copied. */
    if ((c->rbuf.len | (uintptr_t)c->rin | (uintptr_t)c->tls | c->closed) == 0) {
        c->rin = data;
        c->rin_len = n;
        input_noted(c, n);
        if (!(text_get_start(data, n) && serve_quick(c)))
            mark_dirty(c);
        return;
    }
    feed_slow(c, data, n);
}

/* A client may send its last commands and close at once (a noreply set,
 * then EOF in the same batch): what arrived before the end still runs, as a
 * reading server would have run it; then the connection closes. */
void conn_peer_closed(struct conn *c)
{
    if (c->closed)
        return;
    if (c->feed_pending) {
        c->eof = true;
        mark_dirty(c);
        return;
    }
    conn_close(c);
}

static void conn_read(struct conn *c)
{
    bool got = false;
    for (int round = 0; round < 4; round++) {
        size_t want = READ_CHUNK;
        if (!c->tls && c->rneed > c->rbuf.len && c->rneed - c->rbuf.len > want)
            want = c->rneed - c->rbuf.len;
        /* With TLS the socket carries ciphertext: it goes to the session's
         * input, decrypted in the serve pass (tls_input). */
        struct buf *in = c->tls ? &c->tls->in : &c->rbuf;
        if (c->tls ? !tls_conn_in_reserve(c->tls, want) : !buf_reserve(in, want)) {
            conn_close(c);
            return;
        }
        size_t room = in->cap - in->len;
        ssize_t n = sys_recv(c->src.fd, in->data + in->len, room, MSG_DONTWAIT);
        if (n == 0) {
            conn_peer_closed(c);
            return;
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                break;
            conn_peer_closed(c);
            return;
        }
        in->len += (size_t)n;
        input_noted(c, (size_t)n);
        got = true;
        if ((size_t)n < room || in->len >= RBUF_PAUSE)
            break;
    }
    if (got && !(text_get_start(c->rbuf.data, c->rbuf.len) && serve_quick(c)))
        mark_dirty(c);
}

void conn_ready(struct conn *c, uint32_t events)
{
    if (c->closed)
        return;
    if (events & EV_READ)
        conn_read(c);
    if (!c->closed && (events & (EV_WRITE | EV_ERROR)))
        mark_dirty(c);
}

void conn_sent(struct conn *c, size_t n, bool failed)
{
    if (c->closed)
        return;
    STAT_ADD(c->l->stats, bytes_written, (uint64_t)n);
    c->tx_bytes = c->tx_own = 0;
    c->tx_refs = 0;
    if (failed) {
        conn_close(c);   /* peer gone */
        return;
    }
    mark_dirty(c);
}

/* ---- TLS (net/tls.h): the transport under the parser ------------------- */

/* What the session has sealed and not sent, if the socket takes it at
 * once: best effort, never waiting (an alert or close_notify before a
 * close). */
static void tls_send_now(struct conn *c)
{
    struct tls_conn *t = c->tls;
    if (tls_conn_unsent(t)) {
        ssize_t n = send(c->src.fd, t->out.data + t->outoff, tls_conn_unsent(t),
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)n;
    }
}

/* A session that failed: its alert (already sealed) goes out if the
 * socket takes it at once, then the connection closes. */
static void tls_abort(struct conn *c)
{
    static const char need_tls[] = "SERVER_ERROR this port requires TLS\r\n";
    struct tls_conn *t = c->tls;
    if (t->not_tls && c->tx_bytes == 0) {
        /* A clear-text client: a line it can read instead of an alert. */
        ssize_t n = send(c->src.fd, need_tls, sizeof need_tls - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)n;
    } else if (c->tx_bytes == 0) {
        tls_send_now(c);
    }
    if (conn_tracing())
        conn_trace_event(c, t->established ? "TLS record error." : "TLS handshake failed.");
    conn_close(c);
}

/* Every close of an established session ends it with close_notify, as
 * memcached's conn_close does (SSL_shutdown): an idle timeout, `shutdown`,
 * a protocol error or the server stopping is then a clean end of stream to
 * the client, not a truncation (Perl's IO::Socket::SSL died of SIGPIPE on
 * its next request after an idle close; t/idle-timeout.t over TLS). Only
 * when nothing else is waiting or in flight on the socket, so the record
 * cannot overtake earlier ones; best effort, never waiting, as memcached. */
static void tls_close_notify(struct conn *c)
{
    struct tls_conn *t = c->tls;
    if (t->shut || !t->established || t->failed || c->tx_bytes || tls_conn_unsent(t))
        return;
    tls_conn_shutdown(t);
    tls_send_now(c);
}

/* Ciphertext received: handshake, then decrypt into rbuf for the parser.
 * False when the connection was closed. */
static bool tls_input(struct conn *c)
{
    int rc = tls_conn_open(c->tls, &c->rbuf, c->l->iter, c->l->stats);
    switch (rc) {
    case TLS_FAILED:
        tls_abort(c);
        return false;
    case TLS_LATER:
        /* This worker's handshakes for the iteration are spent: continue
         * after every other connection had its turn. The wait is ours, not
         * the client's: its handshake deadline starts again. */
        c->tls->started = c->l->now;
        c->feed_pending = false;
        resume_later(c);
        return true;
    case TLS_CLOSED:
        c->eof = true;   /* close_notify: what came before it still runs */
        break;
    }
    if (c->rbuf.len == 0)
        c->feed_pending = false;   /* a record not yet whole, or handshake only */
    return true;
}

/* Seal the replies written so far into ciphertext, at most SEND_SLICE
 * ahead of the socket. False when the connection was closed. */
static bool tls_seal(struct conn *c)
{
    struct tls_conn *t = c->tls;
    if (t->outoff == t->out.len)
        t->out.len = t->outoff = 0;
    if (!tls_conn_seal(t, &c->wbuf, &c->woff, SEND_SLICE)) {
        STAT_INC(c->l->stats, tls_record_errors);
        tls_abort(c);
        return false;
    }
    if (c->closing && !c->q_head && c->woff == buf_size(&c->wbuf))
        tls_conn_shutdown(t);   /* quit: close_notify after the last reply */
    return true;
}

/* Handshakes that did not finish in time are closed (a client that
 * connects and says nothing must not hold a connection slot). */
static void tls_sweep(struct loop *l)
{
    for (struct conn *c = l->conns, *n; c; c = n) {
        n = c->next;
        if (c->tls && !c->tls->established && l->now - c->tls->started > (uint32_t)tls_settings.handshake_secs) {
            STAT_INC(l->stats, tls_handshake_timeouts);
            conn_close(c);
        }
    }
}

/* ---- serving: parse, then write ------------------------------------------ */

/* Everything sent, nothing owed, reading and not held back: what
 * conn_update_events() and the stall check would conclude, known from one
 * test of fields that are all zero in the common case (at one request per
 * wake-up, asking them the long way cost a tenth of a get). */
static inline bool conn_quiet(const struct conn *c)
{
    /* Implied, so not asked: woff and wbuf's references (wbuf is reset
     * once all of it is sent), tx_own (zero with tx_bytes), qbytes (zero
     * with q_head). */
    return (c->wbuf.len | c->wbuf.rlen | c->tx_bytes | c->counted | c->inflight |
            (uintptr_t)c->q_head | (uintptr_t)c->tls) == 0 &&
           !(c->stalled | c->closing | c->closed) && c->events == EV_READ &&
           c->rbuf.len < RBUF_PAUSE && !c->l->route_paused;
}

void conn_serve(struct conn *c)
{
    if (c->closed) {
        conn_free(c);
        return;
    }
    if (c->tls && c->feed_pending && !tls_input(c))
        return;
    /* A value still arriving cannot be parsed: wait for all of it instead
     * of tokenizing its command line again for every piece. */
    if (c->feed_pending && (c->eof || (c->rin ? c->rin_len : c->rbuf.len) >= c->rneed)) {
        c->feed_pending = false;
        conn_parse(c);
        if (c->closed)
            return;
    }
    if (c->rin && !rin_keep(c, 0))
        return;   /* a value still arriving: keep what came */
    if (c->eof) {
        conn_close(c);
        return;
    }
    while (c->q_head && c->q_head->done) {
        struct msg *m = c->q_head;
        c->q_head = m->next;
        if (!c->q_head)
            c->q_tail = NULL;
        c->qbytes -= m->u.qbytes;
        if (buf_size(&c->wbuf) == 0 && m->reply.len > c->wbuf.cap) {
            /* Steal the buffer instead of copying a large reply. */
            buf_free(&c->wbuf);
            c->wbuf = m->reply;
            m->reply = (struct buf){0};
        } else if (!buf_append(&c->wbuf, &m->reply)) {
            msg_release(m);
            conn_close(c);
            return;
        }
        msg_release(m);
    }
    if (c->trace_off < c->wbuf.len && log_level_now() >= 2)
        conn_trace_out(c);   /* -vv (conn_trace.c) */
    if (c->tls && !tls_seal(c))
        return;
    size_t *off;
    struct buf *ob = sock_out(c, &off);
    if (reactor_sends(&c->l->reactor)) {
        /* io_uring, first few replies of an iteration: one plain send, as
         * epoll does. Handed to the ring instead, a reply that the kernel
         * sends at once still comes back as a completion, and that
         * completion costs a whole loop iteration of its own (at one
         * request per wake-up, nearly half of what a request cost). Later
         * replies of a busy iteration go to the ring, one submit for all. */
        if (*off < buf_size(ob) && c->tx_bytes == 0 && ob->nrefs == 0 &&
            direct_send_ok(c->l) && !send_direct(c)) {
            conn_close(c);   /* peer gone */
            return;
        }
        /* The backend takes the rest (and the references' pins); its
         * completion raises EV_WRITE, which brings us back here for the
         * next batch. */
        size_t size = buf_size(ob), own = ob->len;
        uint32_t refs = ob->nrefs;
        if (*off < size && send_room(c->l) == 0) {
            resume_later(c);   /* this iteration's sends are spent */
        } else if (*off < size) {
            size_t handed = size - *off;
            if (reactor_send(&c->l->reactor, c->src.fd, ob, off) < 0) {
                conn_close(c);
                return;
            }
            if (buf_size(ob) == 0) {
                c->tx_bytes = handed;
                c->tx_own = own;
                c->tx_refs = refs;
                c->l->sent_iter += handed < REACTOR_TX_SLICE ? handed : REACTOR_TX_SLICE;
            }
        }
    } else if (!send_direct(c)) {
        conn_close(c);   /* peer gone */
        return;
    }
    if (c->woff == buf_size(&c->wbuf)) {
        c->woff = c->trace_off = 0;
        c->trace_ref = 0;
        buf_reset(&c->wbuf);   /* sent: the references' pins go back */
        if (c->wbuf.cap > BUF_KEEP)
            buf_free(&c->wbuf);
        if (c->closing && !c->q_head && c->tx_bytes == 0 &&
            !(c->tls && tls_conn_unsent(c->tls))) {
            conn_close(c);
            return;
        }
    }
    if (conn_quiet(c))
        return;
    conn_update_events(c);
    /* Output drained or replies came home: requests held back may now run
     * (serve again, in this same pass). */
    if (c->stalled && !c->in_resume && !out_full(c)) {
        c->stalled = false;
        c->feed_pending = true;
        mark_dirty(c);
    }
}

static void conn_update_events(struct conn *c)
{
    if (c->closed)
        return;
    conn_recount(c);
    uint32_t ev = 0;
    /* Input waiting for its turn (yielded) is not added to: reading resumes
     * when the parser has caught up, so a fast sender cannot grow rbuf. */
    size_t in_max = c->rneed > RBUF_PAUSE ? c->rneed : RBUF_PAUSE;
    if (!out_full(c) && c->rbuf.len < in_max)
        ev |= EV_READ;
    if (c->woff < buf_size(&c->wbuf) || (c->tls && tls_conn_unsent(c->tls)))
        ev |= EV_WRITE;
    if (ev != c->events) {
        if (!(ev & EV_READ) && (c->events & EV_READ))
            STAT_INC(c->l->stats, conn_output_paused);
        c->events = ev;
        reactor_mod(&c->l->reactor, c->src.fd, ev, &c->src);
    }
}

void conn_reply_arrived(struct msg *m)
{
    struct conn *c = m->conn;
    c->inflight--;
    if (c->closed) {
        msg_release(m);
        if (c->inflight == 0 && !c->in_dirty && !c->in_resume)
            free(c);
        return;
    }
    m->done = true;
    m->u.qbytes = buf_size(&m->reply);   /* origin-only from here: counted in qbytes */
    c->qbytes += m->u.qbytes;
    /* A store walk's one large reply says nothing about keyed replies. */
    if (m->kind == MSG_REQ && m->u.qbytes > c->reply_est)
        c->reply_est = m->u.qbytes;
    mark_dirty(c);
}

/* A store walk that returns its reply in parts (server/introspect.c): the
 * next part takes the position right after this one. */
void conn_queue_after(struct conn *c, struct msg *m, struct msg *next)
{
    next->next = m->next;
    m->next = next;
    if (c->q_tail == m)
        c->q_tail = next;
    c->inflight++;
}

/* True when the connection has room under --max-conn-output (or is gone):
 * a store walk asks before producing its next part. */
bool conn_output_room(const struct conn *c)
{
    return c->closed || conn_pending(c) < settings.conn_out_max;
}

void conn_push(struct conn *c, const char *data, size_t n)
{
    if (c->closed)
        return;
    buf_add(sink_output(c), data, n);
    mark_dirty(c);
}

void conn_idle_sweep(struct loop *l)
{
    if (tls_enabled())
        tls_sweep(l);
    if (settings.idle_timeout <= 0)
        return;
    for (struct conn *c = l->conns, *n; c; c = n) {
        n = c->next;
        /* Strictly greater: the clock ticks in whole seconds, so ">=" could
         * close a connection that was active a moment ago. */
        if (l->now - c->last_active > (uint32_t)settings.idle_timeout && c->inflight == 0 &&
            c->woff == buf_size(&c->wbuf) && c->tx_bytes == 0) {
            STAT_INC(l->stats, conn_idle_closed);
            c->close_reason = CLOSE_IDLE;
            conn_close(c);
        }
    }
}

void conn_wake_stalled(struct loop *l)
{
    for (struct conn *c = l->conns; c; c = c->next)
        if (c->stalled || !(c->events & EV_READ))
            mark_dirty(c);
}

/* Take the resume list; a closed connection on it is freed here if nothing
 * else holds it (conn_free left it for this pass), and `go` decides whether
 * the open ones continue. */
static void resume_take(struct loop *l, bool go)
{
    struct conn *c = l->resume;
    l->resume = NULL;
    while (c) {
        struct conn *n = c->resume_next;
        c->in_resume = false;
        if (c->closed) {
            if (c->inflight == 0 && !c->in_dirty)
                free(c);
        } else if (go) {
            c->feed_pending = true;   /* parse what is left, in the serve pass */
            mark_dirty(c);
        }
        c = n;
    }
}

void conn_resume_all(struct loop *l)
{
    resume_take(l, true);
}

void conn_resume_clear(struct loop *l)
{
    resume_take(l, false);
}

void conn_close_all(struct loop *l)
{
    while (l->conns)
        conn_close(l->conns);
}
