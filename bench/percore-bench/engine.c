/* engine.c - the load generator's worker threads. Each worker owns an epoll
 * instance, its connections (output buffer, input buffer, ring of in-flight
 * requests, reply parser), its arrival schedule, RNG and histograms; workers share
 * nothing but a few relaxed atomic progress counters that main() reads once a
 * second, and the start/end times main() writes between two barriers.
 * With --proto udp a connection is a connected UDP socket: in-flight requests sit
 * in slots indexed by their request id (replies may come in any order, or never),
 * each request times out on its own, and the socket is never closed (its source
 * port, which the server's SO_REUSEPORT group hashes, stays the same). */
#include "bench.h"
#include "schedule.h"
#include "udp.h"
#include "tls.h"
#include <poll.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

volatile sig_atomic_t pb_stop;

uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void config_defaults(struct config *c)
{
    memset(c, 0, sizeof *c);
    c->name = "server";
    c->host = "127.0.0.1";
    c->port = 11211;
    c->threads = 1;
    c->conns = 4;
    c->rate = 10000;
    c->depth = 1;
    c->max_outstanding = 4096;
    c->keys = 100000;
    c->ksize = (struct sizespec){ SZ_FIXED, 16, 16, 1 };
    c->vsize = (struct sizespec){ SZ_FIXED, 100, 100, 0 };
    c->get_ratio = 0.9;
    c->dist = KD_UNIFORM;
    c->skew = 0.99;
    c->multiget = 1;
    c->duration = 10;
    c->timeout = 1.0;
    c->proto = PROTO_TEXT;
    c->seed = 1;
}

struct inflight {
    uint64_t t0;      /* scheduled (open loop) or actual (closed loop) send time */
    uint8_t op, nkeys;
    uint8_t busy;     /* UDP: slot in use */
    uint16_t id;      /* UDP: request id */
};

struct conn {
    int fd, idx, up, writing;
    void *ssl;            /* --tls: the session over fd */
    int dirty;
    struct buf out;
    char *in;
    size_t in_len, in_cap;
    struct inflight *q;
    uint64_t *qkeys;      /* qcap * multiget key ids */
    uint32_t qhead, qn, qcap;
    struct rparser ps;
    uint64_t retry_at;
    /* UDP: q[] and qkeys[] are indexed by slot = id & (qcap - 1), and qhead is
     * unused; tq is a ring of (slot << 16 | id) in send order, for timeouts
     * (entries of requests already answered are skipped when they reach the head). */
    struct udp_rx *rx;
    uint32_t *tq;
    uint32_t tq_head, tq_n, tq_cap;
    uint16_t next_id;
    int refused;          /* UDP: a send was refused once (ICMP error pending) */
};

struct shared {
    pthread_barrier_t bar;
    uint64_t t_start, t_end;
    int abort;
    atomic_int finished;
};

enum phase { PH_WARM, PH_MEASURE };

struct worker {
    int id;
    pthread_t th;
    const struct config *c;
    struct shared *sh;
    int ep;
    struct conn *conns;
    int nconns;
    int *dirty, ndirty, ndead;
    struct rng rng;
    struct sched sched;
    struct keygen kg;
    char *value;
    int K;                /* keys per slot */
    int udp;
    char *rxbuf;          /* UDP: one received datagram */
    int connect_failed;
    /* phase state */
    enum phase ph;
    int stopping;
    uint64_t wnext, wend;
    uint64_t budget;      /* closed loop: requests left to issue */
    uint64_t inflight;
    uint64_t stop_at;
    /* results (private until joined) */
    struct result r;
    /* progress, read by main */
    atomic_ullong p_done, p_err, p_sent;
};

static uint32_t key_len(const struct config *c, uint64_t id)
{
    uint32_t l = sizespec_for(&c->ksize, id, 0x6b6579);
    if (l > PB_MAX_KEY)
        l = PB_MAX_KEY;
    return l;
}

static uint32_t value_len(const struct config *c, uint64_t id)
{
    return sizespec_for(&c->vsize, id, 0x76616c);
}

static int sock_connect(const struct config *c, int type)
{
    char port[16];
    snprintf(port, sizeof port, "%d", c->port);
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = type }, *res, *ai;
    int e = getaddrinfo(c->host, port, &hints, &res);
    if (e) {
        fprintf(stderr, "percore-bench: %s: %s\n", c->host, gai_strerror(e));
        return -1;
    }
    int fd = -1;
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        if (!connect(fd, ai->ai_addr, ai->ai_addrlen))
            break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        return -1;
    if (type == SOCK_DGRAM) {
        int sz = 4 << 20; /* room for bursts of replies (capped by net.core.rmem_max) */
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    } else {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    return fd;
}

static void mark_dirty(struct worker *w, struct conn *cn)
{
    if (!cn->dirty) {
        cn->dirty = 1;
        w->dirty[w->ndirty++] = cn->idx;
    }
}

static int conn_up(struct worker *w, struct conn *cn)
{
    int fd = sock_connect(w->c, w->udp ? SOCK_DGRAM : SOCK_STREAM);
    if (fd < 0)
        return -1;
    if (w->c->tls && !(cn->ssl = pb_tls_connect(fd))) {
        close(fd);
        return -1;
    }
    cn->fd = fd;
    cn->up = 1;
    cn->writing = 0;
    struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)cn->idx };
    epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev);
    return 0;
}

/* Close a broken or stuck connection; its in-flight requests count as errors or
 * timeouts (never silently dropped). It is reconnected 100 ms later. */
static void conn_fail(struct worker *w, struct conn *cn, int timed_out, uint64_t now)
{
    if (timed_out)
        w->r.timeouts += cn->qn;
    else
        w->r.errors += cn->qn;
    w->inflight -= cn->qn;
    cn->qn = 0;
    cn->qhead = 0;
    pb_tls_free(cn->ssl);
    cn->ssl = NULL;
    close(cn->fd);
    cn->fd = -1;
    cn->up = 0;
    cn->writing = 0;
    cn->out.len = cn->out.off = 0;
    cn->in_len = 0;
    proto_reset(&cn->ps);
    cn->retry_at = now + 100000000ull;
    w->ndead++;
}

/* ---- UDP slots ---------------------------------------------------------- */

/* A free slot and its request id: ids count up (mod 2^16), skipping those whose
 * slot is still busy, so a late reply to an id reused too soon is unlikely (a
 * slot's id repeats only after 65536 / qcap uses). Needs qn < qcap. */
static uint32_t udp_slot_alloc(struct conn *cn, uint16_t *id)
{
    for (;;) {
        uint16_t i = cn->next_id++;
        uint32_t s = i & (cn->qcap - 1);
        if (!cn->q[s].busy) {
            *id = i;
            return s;
        }
    }
}

static void udp_slot_free(struct worker *w, struct conn *cn, uint32_t s)
{
    cn->q[s].busy = 0;
    udp_rx_reset(&cn->rx[s]);
    cn->qn--;
    w->inflight--;
}

static void tq_push(struct conn *cn, uint32_t ent)
{
    if (cn->tq_n == cn->tq_cap) {
        uint32_t nc = cn->tq_cap ? cn->tq_cap * 2 : 1024;
        uint32_t *nq = malloc(sizeof *nq * nc);
        if (!nq)
            abort();
        for (uint32_t i = 0; i < cn->tq_n; i++)
            nq[i] = cn->tq[(cn->tq_head + i) & (cn->tq_cap - 1)];
        free(cn->tq);
        cn->tq = nq;
        cn->tq_cap = nc;
        cn->tq_head = 0;
    }
    cn->tq[(cn->tq_head + cn->tq_n) & (cn->tq_cap - 1)] = ent;
    cn->tq_n++;
}

/* Requests unanswered for longer than tmo (every one still in flight with all) count as
 * timeouts (or errors: timed_out == 0). The socket stays open. */
static void udp_expire(struct worker *w, struct conn *cn, uint64_t now, uint64_t tmo, int all, int timed_out)
{
    while (cn->tq_n) {
        uint32_t ent = cn->tq[cn->tq_head];
        uint32_t s = ent >> 16;
        struct inflight *e = &cn->q[s];
        if (e->busy && e->id == (uint16_t)ent) {
            if (!all && !(now > e->t0 && now - e->t0 > tmo))
                break;
            if (timed_out)
                w->r.timeouts++;
            else
                w->r.errors++;
            udp_slot_free(w, cn, s);
        }
        cn->tq_head = (cn->tq_head + 1) & (cn->tq_cap - 1);
        cn->tq_n--;
    }
    if (all && cn->qn) { /* not reachable: every busy slot has a tq entry */
        for (uint32_t s = 0; s < cn->qcap; s++)
            if (cn->q[s].busy) {
                w->r.errors++;
                udp_slot_free(w, cn, s);
            }
    }
}

/* Queue one request on cn; 0, or -1 when it cannot be encoded (counted as an error). */
static int push(struct worker *w, struct conn *cn, uint8_t op, const uint64_t *keys, int nkeys, uint64_t t0)
{
    uint16_t id = 0;
    uint32_t slot = w->udp ? udp_slot_alloc(cn, &id) : (cn->qhead + cn->qn) & (cn->qcap - 1);
    cn->q[slot] = (struct inflight){ .t0 = t0, .op = op, .nkeys = (uint8_t)nkeys, .busy = 1, .id = id };
    uint64_t *qk = cn->qkeys + (size_t)slot * w->K;
    uint32_t kl[PB_MAX_MULTIGET];
    for (int i = 0; i < nkeys; i++) {
        qk[i] = keys[i];
        kl[i] = key_len(w->c, keys[i]);
    }
    if (w->udp) {
        int n = op == OP_GET ? udp_encode_get(&cn->out, id, keys, kl, nkeys)
                             : udp_encode_set(&cn->out, id, keys[0], kl[0], w->value, value_len(w->c, keys[0]));
        if (n < 0) { /* larger than a datagram (main() checks the sizes first) */
            cn->q[slot].busy = 0;
            w->r.errors++;
            return -1;
        }
        tq_push(cn, slot << 16 | id);
    } else if (op == OP_GET) {
        proto_encode_get(w->c->proto, &cn->out, keys, kl, nkeys);
    } else {
        proto_encode_set(w->c->proto, &cn->out, keys[0], kl[0], w->value, value_len(w->c, keys[0]));
    }
    cn->qn++;
    w->inflight++;
    if (w->ph == PH_MEASURE)
        w->r.sent++;
    mark_dirty(w, cn);
    return 0;
}

/* Generate one measured request (or a warmup set) on cn, sent at t0. */
static int gen(struct worker *w, struct conn *cn, uint64_t t0)
{
    const struct config *c = w->c;
    uint64_t keys[PB_MAX_MULTIGET];
    if (w->ph == PH_WARM) {
        keys[0] = w->wnext++;
        return push(w, cn, OP_SET, keys, 1, t0);
    }
    if (rng_double(&w->rng) < c->get_ratio) {
        for (int i = 0; i < c->multiget; i++)
            keys[i] = keygen_next(&w->kg, &w->rng);
        return push(w, cn, OP_GET, keys, c->multiget, t0);
    }
    keys[0] = keygen_next(&w->kg, &w->rng);
    return push(w, cn, OP_SET, keys, 1, t0);
}

static int closed_want(const struct worker *w)
{
    return w->ph == PH_WARM ? 16 : w->c->depth;
}

/* Closed loop (and warmup): keep the connection's window full. */
static void top_up(struct worker *w, struct conn *cn, uint64_t now)
{
    if (!cn->up || w->stopping)
        return;
    int want = closed_want(w);
    while ((int)cn->qn < want) {
        if (w->ph == PH_WARM) {
            if (w->wnext >= w->wend)
                return;
        } else {
            if (!w->budget)
                return;
            w->budget--;
        }
        if (gen(w, cn, now))
            return;
    }
}

static void on_reply(struct worker *w, struct conn *cn, const struct inflight *e,
                     const uint64_t *keys, const struct rparser *ps, uint64_t now)
{
    struct result *r = &w->r;
    if (w->ph == PH_WARM) {
        r->warmup_sets++;
        if (ps->status == RS_ERROR)
            r->errors++;
        return;
    }
    uint64_t lat = now > e->t0 ? now - e->t0 : 0;
    r->completed++;
    if (!w->stopping)
        r->completed_in_window++;
    if (ps->status == RS_ERROR)
        r->errors++;
    else if (ps->status == RS_NOTSTORED)
        r->notstored++;
    if (e->op == OP_GET) {
        r->gets++;
        r->hits += ps->hits;
        r->misses += ps->misses;
        hist_record(&r->get, lat);
        hist_record(&r->all, lat);
        if (w->c->miss_set && ps->misses && ps->status == RS_OK) {
            for (int i = 0; i < e->nkeys && i < 64; i++) {
                if (ps->hitmask & (1ull << i))
                    continue;
                if (cn->qn >= cn->qcap)
                    break;
                if (!push(w, cn, OP_FILL, &keys[i], 1, now))
                    r->sent--; /* fills are not offered load */
            }
        }
    } else if (e->op == OP_SET) {
        r->sets++;
        hist_record(&r->set, lat);
        hist_record(&r->all, lat);
    } else {
        r->fills++;
        r->completed--;
        if (!w->stopping)
            r->completed_in_window--;
    }
}

static void handle_read_once(struct worker *w, struct conn *cn);

/* TLS: a record already decrypted is not on the socket any more, so epoll
 * will not report it: read until the session holds nothing. */
static void handle_read(struct worker *w, struct conn *cn)
{
    do
        handle_read_once(w, cn);
    while (cn->up && cn->ssl && pb_tls_pending(cn->ssl) > 0);
}

static void handle_read_once(struct worker *w, struct conn *cn)
{
    if (cn->in_cap - cn->in_len < 16384) {
        size_t nc = cn->in_cap ? cn->in_cap * 2 : 65536;
        char *p = realloc(cn->in, nc);
        if (!p)
            abort();
        cn->in = p;
        cn->in_cap = nc;
    }
    ssize_t n = cn->ssl ? pb_tls_recv(cn->ssl, cn->in + cn->in_len, cn->in_cap - cn->in_len)
                        : recv(cn->fd, cn->in + cn->in_len, cn->in_cap - cn->in_len, 0);
    uint64_t now = now_ns();
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        conn_fail(w, cn, 0, now);
        return;
    }
    if (n < 0)
        return;
    cn->in_len += (size_t)n;
    size_t pos = 0;
    while (pos < cn->in_len) {
        if (!cn->qn) {
            conn_fail(w, cn, 0, now); /* bytes nobody asked for */
            w->r.errors++;
            return;
        }
        struct inflight *e = &cn->q[cn->qhead];
        const uint64_t *keys = cn->qkeys + (size_t)cn->qhead * w->K;
        struct preq rq = { .op = e->op == OP_FILL ? OP_SET : e->op, .nkeys = e->nkeys, .keys = keys };
        size_t used = 0;
        int rc = proto_feed(w->c->proto, &cn->ps, &rq, cn->in + pos, cn->in_len - pos, &used);
        pos += used;
        if (rc == PF_MORE)
            break;
        if (rc == PF_BAD) {
            conn_fail(w, cn, 0, now);
            return;
        }
        struct inflight done = *e;
        uint64_t dkeys[PB_MAX_MULTIGET];
        memcpy(dkeys, keys, sizeof(uint64_t) * done.nkeys);
        cn->qhead = (cn->qhead + 1) & (cn->qcap - 1);
        cn->qn--;
        w->inflight--;
        struct rparser res = cn->ps;
        proto_reset(&cn->ps);
        on_reply(w, cn, &done, dkeys, &res, now);
    }
    if (pos) {
        memmove(cn->in, cn->in + pos, cn->in_len - pos);
        cn->in_len -= pos;
    }
    if (w->c->closed || w->ph == PH_WARM)
        top_up(w, cn, now);
}

/* UDP: read the datagrams waiting on the socket (a bounded batch; epoll is
 * level-triggered), match each to its request by id, reassemble, and complete
 * the requests whose replies are whole. */
static void handle_read_udp(struct worker *w, struct conn *cn)
{
    uint64_t now = now_ns();
    for (int k = 0; k < 64; k++) {
        ssize_t n = recv(cn->fd, w->rxbuf, UDP_RX_MAX, 0);
        if (n < 0) {
            if (errno == EINTR || errno == ECONNREFUSED)
                continue; /* ICMP port unreachable: those requests will time out */
            break;
        }
        now = now_ns();
        struct udp_hdr h;
        if (udp_hdr_get(w->rxbuf, (size_t)n, &h)) {
            w->r.udp_stray++;
            continue;
        }
        uint32_t s = h.id & (cn->qcap - 1);
        struct inflight *e = &cn->q[s];
        if (!e->busy || e->id != h.id) {
            w->r.udp_stray++; /* late (timed out), duplicate, or not ours */
            continue;
        }
        const uint64_t *keys = cn->qkeys + (size_t)s * w->K;
        struct preq rq = { .op = e->op == OP_FILL ? OP_SET : e->op, .nkeys = e->nkeys, .keys = keys };
        int rc = udp_rx_feed(&cn->rx[s], &rq, &h, w->rxbuf + UDP_HDR_LEN, (size_t)n - UDP_HDR_LEN);
        if (rc == UR_MORE)
            continue;
        struct inflight done = *e;
        uint64_t dkeys[PB_MAX_MULTIGET];
        memcpy(dkeys, keys, sizeof(uint64_t) * done.nkeys);
        struct rparser res = cn->rx[s].ps;
        udp_slot_free(w, cn, s);
        if (rc == UR_BAD)
            w->r.errors++; /* unparseable reply: an error, not a latency sample */
        else
            on_reply(w, cn, &done, dkeys, &res, now);
    }
    if (w->c->closed || w->ph == PH_WARM)
        top_up(w, cn, now);
}

/* UDP: send the queued datagrams, one send() each (a datagram is sent whole or
 * not at all). A datagram the kernel refuses for good costs its request an error. */
static void flush_udp(struct worker *w, struct conn *cn)
{
    while (cn->out.off < cn->out.len) {
        size_t off = cn->out.off, len;
        const char *d;
        udp_next_dgram(&cn->out, &off, &d, &len);
        ssize_t n = send(cn->fd, d, len, 0);
        if (n >= 0) {
            cn->out.off = off;
            cn->refused = 0;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno == ECONNREFUSED && !cn->refused) {
            cn->refused = 1; /* the error of an earlier datagram: this one was not sent, retry */
            continue;
        }
        if (errno == EAGAIN || errno == ENOBUFS) {
            if (!cn->writing) {
                struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)cn->idx };
                epoll_ctl(w->ep, EPOLL_CTL_MOD, cn->fd, &ev);
                cn->writing = 1;
            }
            return;
        }
        cn->refused = 0;
        cn->out.off = off;
        struct udp_hdr h;
        udp_hdr_get(d, len, &h);
        uint32_t s = h.id & (cn->qcap - 1);
        if (cn->q[s].busy && cn->q[s].id == h.id) {
            w->r.errors++;
            udp_slot_free(w, cn, s);
        }
    }
    cn->out.off = cn->out.len = 0;
    if (cn->writing) {
        struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)cn->idx };
        epoll_ctl(w->ep, EPOLL_CTL_MOD, cn->fd, &ev);
        cn->writing = 0;
    }
}

static void flush(struct worker *w, struct conn *cn)
{
    if (!cn->up)
        return;
    if (w->udp) {
        flush_udp(w, cn);
        return;
    }
    while (cn->out.off < cn->out.len) {
        ssize_t n = cn->ssl ? pb_tls_send(cn->ssl, cn->out.p + cn->out.off, cn->out.len - cn->out.off)
                            : send(cn->fd, cn->out.p + cn->out.off, cn->out.len - cn->out.off, MSG_NOSIGNAL);
        if (n > 0) {
            cn->out.off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            if (!cn->writing) {
                struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)cn->idx };
                epoll_ctl(w->ep, EPOLL_CTL_MOD, cn->fd, &ev);
                cn->writing = 1;
            }
            return;
        }
        conn_fail(w, cn, 0, now_ns());
        return;
    }
    cn->out.off = cn->out.len = 0;
    if (cn->writing) {
        struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)cn->idx };
        epoll_ctl(w->ep, EPOLL_CTL_MOD, cn->fd, &ev);
        cn->writing = 0;
    }
}

static struct conn *pick_conn(struct worker *w)
{
    int n = w->nconns;
    int start = (int)rng_below(&w->rng, (uint64_t)n);
    for (int i = 0; i < n; i++) {
        struct conn *cn = &w->conns[(start + i) % n];
        if (cn->up && (int)cn->qn < w->c->max_outstanding)
            return cn;
    }
    return NULL;
}

static int wait_events(struct worker *w, struct epoll_event *ev, int max, uint64_t wait)
{
    static atomic_int no_pwait2;
    if (!no_pwait2) {
        struct timespec ts = { (time_t)(wait / 1000000000ull), (long)(wait % 1000000000ull) };
        int n = epoll_pwait2(w->ep, ev, max, &ts, NULL);
        if (n >= 0 || errno != ENOSYS)
            return n;
        no_pwait2 = 1;
    }
    return epoll_wait(w->ep, ev, max, (int)((wait + 999999) / 1000000));
}

static void run_phase(struct worker *w, enum phase ph)
{
    const struct config *c = w->c;
    struct shared *sh = w->sh;
    w->ph = ph;
    w->stopping = 0;
    uint64_t now = now_ns();
    uint64_t t_end = ph == PH_MEASURE ? sh->t_end : now + 120000000000ull; /* warmup: 2 min at most */
    uint64_t deadline = 0, next_tcheck = now;
    uint64_t tmo = (uint64_t)(c->timeout * 1e9);
    uint64_t spin = (uint64_t)c->spin_us * 1000u;
    int open = ph == PH_MEASURE && !c->closed;
    if (!open)
        for (int i = 0; i < w->nconns; i++)
            top_up(w, &w->conns[i], now);
    struct epoll_event ev[64];
    for (;;) {
        now = now_ns();
        int held = 0, more_due = 0;
        if (open && !w->stopping) {
            /* send every arrival that is due (up to the end of the window) */
            uint64_t lim = now < t_end ? now : t_end;
            int budget = 512;
            for (; budget && sched_peek(&w->sched) <= lim; budget--) {
                struct conn *cn = pick_conn(w);
                if (!cn) {
                    held = 1;
                    break;
                }
                uint64_t t0 = sched_take(&w->sched);
                hist_record(&w->r.late, now > t0 ? now - t0 : 0);
                gen(w, cn, t0);
            }
            more_due = !budget && sched_peek(&w->sched) <= lim;
        }
        if (!w->stopping) {
            int done = (now >= t_end && !more_due) || pb_stop;
            if (ph == PH_WARM)
                done |= w->wnext >= w->wend && !w->inflight;
            else if (open)
                done |= sched_peek(&w->sched) == UINT64_MAX;
            else
                done |= !w->budget;
            if (done) {
                w->stopping = 1;
                w->stop_at = now < t_end ? now : t_end;
                if (open)
                    w->r.unsent += sched_drain_before(&w->sched, w->stop_at);
                deadline = pb_stop >= 2 ? now : now + tmo;
            }
        }
        for (int i = 0; i < w->ndirty; i++) {
            struct conn *cn = &w->conns[w->dirty[i]];
            cn->dirty = 0;
            flush(w, cn);
        }
        w->ndirty = 0;
        if (w->stopping && (!w->inflight || now >= deadline || pb_stop >= 2))
            break;
        if (now >= next_tcheck) {
            next_tcheck = now + 10000000ull;
            for (int i = 0; i < w->nconns; i++) {
                struct conn *cn = &w->conns[i];
                if (w->udp) {
                    if (cn->qn) {
                        udp_expire(w, cn, now, tmo, 0, 1);
                        if (!open)
                            top_up(w, cn, now);
                    }
                } else if (cn->up && cn->qn && now > cn->q[cn->qhead].t0 && now - cn->q[cn->qhead].t0 > tmo)
                    conn_fail(w, cn, 1, now);
                else if (!cn->up && !w->stopping && now >= cn->retry_at) {
                    if (!conn_up(w, cn)) {
                        w->ndead--;
                        if (!open)
                            top_up(w, cn, now);
                    } else {
                        cn->retry_at = now + 100000000ull;
                    }
                }
            }
        }
        atomic_store_explicit(&w->p_done, w->r.completed, memory_order_relaxed);
        atomic_store_explicit(&w->p_err, w->r.errors + w->r.timeouts, memory_order_relaxed);
        atomic_store_explicit(&w->p_sent, w->r.sent, memory_order_relaxed);

        uint64_t wake = more_due ? now : now + 100000000ull;
        if (w->stopping) {
            if (deadline < wake)
                wake = deadline;
        } else {
            if (t_end < wake)
                wake = t_end;
            if (open) {
                uint64_t nx = held ? now + 1000000ull : sched_peek(&w->sched);
                /* --spin-us: sleep until shortly before the arrival, then poll */
                nx = nx > spin ? nx - spin : 0;
                if (nx < wake)
                    wake = nx;
            }
        }
        if (w->inflight && next_tcheck < wake)
            wake = next_tcheck;
        uint64_t wait = wake > now && !w->ndirty ? wake - now : 0;
        int n = wait_events(w, ev, 64, wait);
        for (int i = 0; i < n; i++) {
            struct conn *cn = &w->conns[ev[i].data.u32];
            if (!cn->up)
                continue;
            if (ev[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                if (w->udp)
                    handle_read_udp(w, cn);
                else
                    handle_read(w, cn);
            }
            if (cn->up && (ev[i].events & EPOLLOUT))
                flush(w, cn);
        }
    }
    /* whatever is still in flight got no reply within the timeout */
    for (int i = 0; i < w->nconns; i++) {
        struct conn *cn = &w->conns[i];
        if (w->udp) {
            udp_expire(w, cn, now, 0, 1, ph == PH_MEASURE);
            cn->out.off = cn->out.len = 0;
        } else if (cn->qn) {
            if (ph == PH_MEASURE)
                conn_fail(w, cn, 1, now);
            else
                conn_fail(w, cn, 0, now);
        }
    }
    /* reconnect anything that broke so the next phase starts whole */
    for (int i = 0; i < w->nconns && !pb_stop; i++)
        if (!w->conns[i].up && !conn_up(w, &w->conns[i]))
            w->ndead--;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    const struct config *c = w->c;
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0); /* wake on time: lateness is latency */
    for (int i = 0; i < w->nconns; i++)
        if (conn_up(w, &w->conns[i]))
            w->connect_failed = 1;
    pthread_barrier_wait(&w->sh->bar); /* 1: connected */
    pthread_barrier_wait(&w->sh->bar); /* 2: main checked */
    if (!w->sh->abort && c->warmup) {
        uint64_t t = now_ns();
        run_phase(w, PH_WARM);
        w->r.warmup_s = (double)(now_ns() - t) / 1e9;
        if (w->r.errors || w->r.timeouts) /* UDP: a lost set is a timeout */
            fprintf(stderr, "percore-bench: warmup: %llu errors, %llu timeouts\n", (unsigned long long)w->r.errors,
                    (unsigned long long)w->r.timeouts);
        w->r.errors = w->r.timeouts = w->r.udp_stray = 0;
    }
    pthread_barrier_wait(&w->sh->bar); /* 3: warm */
    pthread_barrier_wait(&w->sh->bar); /* 4: start/end times set */
    if (!w->sh->abort) {
        if (!c->closed) {
            uint64_t lim = UINT64_MAX;
            if (c->requests)
                lim = c->requests / (uint64_t)c->threads + ((uint64_t)w->id < c->requests % (uint64_t)c->threads);
            sched_init(&w->sched, c->rate / c->threads, w->sh->t_start, c->seed * 7919 + (uint64_t)w->id, lim);
        }
        run_phase(w, PH_MEASURE);
    }
    atomic_fetch_add(&w->sh->finished, 1);
    return NULL;
}

static uint32_t pow2_at_least(uint64_t n)
{
    uint32_t p = 1;
    while (p < n && p < (1u << 30))
        p <<= 1;
    return p;
}

/* UDP has no connection to fail: ask for `version` (3 tries, 300 ms each) so that
 * a server not listening on UDP is reported instead of measured as all timeouts. */
static int udp_probe(const struct config *c)
{
    int fd = sock_connect(c, SOCK_DGRAM);
    if (fd < 0)
        return -1;
    char req[UDP_HDR_LEN + 9], *rep = malloc(UDP_RX_MAX);
    struct udp_hdr h = { 0xfffe, 0, 1, 0 };
    udp_hdr_put(req, &h);
    memcpy(req + UDP_HDR_LEN, "version\r\n", 9);
    int ok = 0;
    for (int tries = 0; tries < 3 && !ok; tries++) {
        if (send(fd, req, sizeof req, 0) < 0 && errno != ECONNREFUSED)
            break;
        uint64_t end = now_ns() + 300000000ull;
        for (uint64_t now = now_ns(); now < end && !ok; now = now_ns()) {
            struct pollfd pfd = { .fd = fd, .events = POLLIN };
            if (poll(&pfd, 1, (int)((end - now) / 1000000 + 1)) <= 0)
                break;
            ssize_t n = recv(fd, rep, UDP_RX_MAX, 0);
            struct udp_hdr rh;
            if (n >= UDP_HDR_LEN + 7 && !udp_hdr_get(rep, (size_t)n, &rh) && rh.id == h.id &&
                !memcmp(rep + UDP_HDR_LEN, "VERSION", 7))
                ok = 1;
        }
    }
    free(rep);
    close(fd);
    return ok ? 0 : -1;
}

int bench_run(const struct config *c, struct result *out)
{
    if (c->proto == PROTO_UDP && udp_probe(c)) {
        fprintf(stderr, "percore-bench: no UDP reply from %s:%d (is the server listening on UDP, e.g. -U %d?)\n",
                c->host, c->port, c->port);
        memset(out, 0, sizeof *out);
        return -1;
    }
    if (c->tls && pb_tls_init() < 0) {
        memset(out, 0, sizeof *out);
        return -1;
    }
    struct shared sh;
    memset(&sh, 0, sizeof sh);
    pthread_barrier_init(&sh.bar, NULL, (unsigned)c->threads + 1);
    struct worker **ws = calloc((size_t)c->threads, sizeof *ws);
    uint32_t vmax = c->vsize.kind == SZ_FIXED ? c->vsize.a : c->vsize.b;
    char *value = malloc((size_t)vmax + 1);
    for (uint32_t i = 0; i < vmax; i++)
        value[i] = (char)('a' + i % 26);
    int K = c->multiget < 1 ? 1 : c->multiget;
    for (int t = 0; t < c->threads; t++) {
        struct worker *w = calloc(1, sizeof *w);
        ws[t] = w;
        w->id = t;
        w->c = c;
        w->sh = &sh;
        w->K = K;
        w->value = value;
        w->udp = c->proto == PROTO_UDP;
        if (w->udp)
            w->rxbuf = malloc(UDP_RX_MAX);
        w->ep = epoll_create1(EPOLL_CLOEXEC);
        w->nconns = c->conns;
        w->conns = calloc((size_t)c->conns, sizeof *w->conns);
        w->dirty = calloc((size_t)c->conns, sizeof *w->dirty);
        rng_seed(&w->rng, c->seed * 1000003 + (uint64_t)t);
        keygen_init(&w->kg, c->dist, c->keys, c->skew);
        uint64_t cap = c->closed ? (uint64_t)c->depth * (uint64_t)(K + 1) : (uint64_t)c->max_outstanding;
        if (cap < 32)
            cap = 32; /* warmup window */
        for (int i = 0; i < c->conns; i++) {
            struct conn *cn = &w->conns[i];
            cn->idx = i;
            cn->fd = -1;
            cn->qcap = pow2_at_least(cap);
            cn->q = calloc(cn->qcap, sizeof *cn->q);
            cn->qkeys = calloc((size_t)cn->qcap * K, sizeof *cn->qkeys);
            if (w->udp)
                cn->rx = calloc(cn->qcap, sizeof *cn->rx); /* zeroed == udp_rx_init */
        }
        w->wnext = c->keys * (uint64_t)t / (uint64_t)c->threads;
        w->wend = c->keys * (uint64_t)(t + 1) / (uint64_t)c->threads;
        w->budget = UINT64_MAX;
        if (c->closed && c->requests)
            w->budget = c->requests / (uint64_t)c->threads + ((uint64_t)t < c->requests % (uint64_t)c->threads);
        hist_init(&w->r.all);
        hist_init(&w->r.get);
        hist_init(&w->r.set);
        hist_init(&w->r.late);
        pthread_create(&w->th, NULL, worker_main, w);
    }
    pthread_barrier_wait(&sh.bar); /* 1 */
    int failed = 0;
    for (int t = 0; t < c->threads; t++)
        failed |= ws[t]->connect_failed;
    if (failed) {
        fprintf(stderr, "percore-bench: cannot connect to %s:%d\n", c->host, c->port);
        sh.abort = 1;
    }
    pthread_barrier_wait(&sh.bar); /* 2 */
    pthread_barrier_wait(&sh.bar); /* 3: warmup done */
    double dur = c->duration > 0 ? c->duration : 10;
    sh.t_start = now_ns() + 1000000ull;
    sh.t_end = sh.t_start + (uint64_t)(dur * 1e9);
    pthread_barrier_wait(&sh.bar); /* 4 */

    uint64_t last_t = sh.t_start, last_done = 0;
    while (!sh.abort && atomic_load(&sh.finished) < c->threads) {
        struct timespec ts = { 0, 50000000 };
        nanosleep(&ts, NULL);
        uint64_t now = now_ns();
        if (now - last_t < 1000000000ull || c->quiet)
            continue;
        uint64_t done = 0, err = 0, sent = 0;
        for (int t = 0; t < c->threads; t++) {
            done += atomic_load_explicit(&ws[t]->p_done, memory_order_relaxed);
            err += atomic_load_explicit(&ws[t]->p_err, memory_order_relaxed);
            sent += atomic_load_explicit(&ws[t]->p_sent, memory_order_relaxed);
        }
        fprintf(stderr, "[%s] %5.1fs sent %llu done %llu (%.0f/s) in-flight %llu errors+timeouts %llu\n",
                c->name, (double)(now - sh.t_start) / 1e9, (unsigned long long)sent,
                (unsigned long long)done, (double)(done - last_done) * 1e9 / (double)(now - last_t),
                (unsigned long long)(sent - done), (unsigned long long)err);
        last_t = now;
        last_done = done;
    }

    memset(out, 0, sizeof *out);
    hist_init(&out->all);
    hist_init(&out->get);
    hist_init(&out->set);
    hist_init(&out->late);
    uint64_t stop_at = sh.t_start;
    for (int t = 0; t < c->threads; t++) {
        struct worker *w = ws[t];
        pthread_join(w->th, NULL);
        struct result *r = &w->r;
        out->sent += r->sent;
        out->completed += r->completed;
        out->completed_in_window += r->completed_in_window;
        out->gets += r->gets;
        out->sets += r->sets;
        out->fills += r->fills;
        out->hits += r->hits;
        out->misses += r->misses;
        out->notstored += r->notstored;
        out->errors += r->errors;
        out->timeouts += r->timeouts;
        out->unsent += r->unsent;
        out->udp_stray += r->udp_stray;
        out->warmup_sets += r->warmup_sets;
        if (r->warmup_s > out->warmup_s)
            out->warmup_s = r->warmup_s;
        hist_merge(&out->all, &r->all);
        hist_merge(&out->get, &r->get);
        hist_merge(&out->set, &r->set);
        hist_merge(&out->late, &r->late);
        if (w->stop_at > stop_at)
            stop_at = w->stop_at;
        for (int i = 0; i < w->nconns; i++) {
            struct conn *cn = &w->conns[i];
            pb_tls_free(cn->ssl);
            if (cn->fd >= 0)
                close(cn->fd);
            buf_free(&cn->out);
            free(cn->in);
            free(cn->q);
            free(cn->qkeys);
            if (cn->rx)
                for (uint32_t s = 0; s < cn->qcap; s++)
                    udp_rx_reset(&cn->rx[s]);
            free(cn->rx);
            free(cn->tq);
        }
        free(w->rxbuf);
        close(w->ep);
        free(w->conns);
        free(w->dirty);
        free(w);
    }
    free(ws);
    free(value);
    pthread_barrier_destroy(&sh.bar);
    out->timeouts += out->unsent;
    out->mode = c->closed ? "closed" : "open";
    out->offered_rps = c->closed ? 0 : c->rate;
    out->window_s = (double)(stop_at - sh.t_start) / 1e9;
    out->scheduled = out->sent + out->unsent;
    out->achieved_rps = out->window_s > 0 ? (double)out->completed_in_window / out->window_s : 0;
    out->interrupted = pb_stop != 0;
    return sh.abort ? -1 : 0;
}
