/*
 * udp.c — memcached's UDP protocol (-U). Each worker owns one SO_REUSEPORT
 * UDP socket per listen address and everything behind it: the receive
 * batch, the per-datagram request contexts and the send batch. The main
 * thread creates the sockets and attaches steering (net/steer.c) before the
 * workers start; after that only the owning worker touches its `udp_worker`.
 *
 * One datagram is one request: an 8-byte frame header (request id,
 * sequence number, datagram count, reserved) and one or more complete
 * commands. Commands are parsed by the ordinary text parser against a sink
 * whose session is a `udp_req`. Keyed requests run here when this worker
 * owns the key (what eBPF steering arranges) and otherwise travel to the
 * owner as MSG_UDP messages; the reply is sent once every part is home.
 *
 * Reply framing follows memcached 1.6.18 (checked against its binary):
 * every response object (one per command, one per key of a multi-key get,
 * with END attached to the last) is sent as its own run of datagrams of at
 * most 1400 bytes (1392 payload) numbered 0..n-1 with count n. A miss on a
 * get's first key (unless it is the only key) and `quit` produce a
 * header-only datagram with count 0; other empty responses (misses on later
 * keys, noreply) produce nothing. (memcached also drops the first-key one
 * when the previous command's reply was built in its write buffer, e.g.
 * STORED: an accident of its iovec accounting that percore does not copy.) Frames of 8 bytes or less,
 * frames announcing more than one datagram, and datagrams whose last
 * command is incomplete are dropped without a reply and counted in
 * udp_dropped, as memcached drops them silently.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "util/hash.h"
#include "util/log.h"
#include "net/listener.h"
#include "net/steer.h"
#include "net/xdp_steer.h"
#include "net/udp.h"

#define UDP_HDR        8
#define UDP_DATAGRAM   1400                    /* memcached's UDP_MAX_PAYLOAD_SIZE */
#define UDP_PAYLOAD    (UDP_DATAGRAM - UDP_HDR)
#define UDP_RX_BATCH   16
#define UDP_RX_SIZE    65536                   /* largest IPv4/IPv6 UDP payload fits */
#define UDP_RX_ROUNDS  4                       /* batches per event: bounds one socket's turn */
#define UDP_TX_BATCH   64
#define UDP_PARTS_INLINE 8
#define UDP_SEND_WAIT_MS 20                    /* total wait for socket buffer space */

/* A run of reply bytes: either local bytes in req->out from `off` up to the
 * next local part, or the reply of a request executed by another worker. */
struct udp_part {
    struct msg *remote;
    uint32_t    off;
    bool        start;       /* first part of a response object */
    bool        keep_empty;  /* an empty response still sends a header-only datagram */
};

/* One datagram's request; lives until its last forwarded part is home. */
struct udp_req {
    struct udp_req *next, *prev;   /* worker's free list / in-flight list */
    struct loop   *l;
    int             fd;
    uint16_t        id;
    bool            cmd_open;      /* the command being parsed has produced a part */
    bool            quit;
    bool            binary;        /* the datagram holds binary-protocol packets */
    bool            discard;       /* dropped: free when home, send nothing */
    bool            held;          /* a stats waits for the requests before it ... */
    struct buf      rest;          /* ... with the datagram's bytes from it on */
    unsigned        inflight;
    unsigned        nparts, cap;
    struct udp_part *parts;
    struct udp_part inline_parts[UDP_PARTS_INLINE];
    struct buf      out;
    socklen_t       alen;
    struct sockaddr_storage addr;
};

struct udp_worker {
    struct mmsghdr   rx[UDP_RX_BATCH];
    struct iovec     rxiov[UDP_RX_BATCH];
    struct sockaddr_storage rxaddr[UDP_RX_BATCH];
    char            *rxbuf;                 /* UDP_RX_BATCH * UDP_RX_SIZE */
    struct mmsghdr   tx[UDP_TX_BATCH];
    struct iovec     txiov[UDP_TX_BATCH][2];
    unsigned char    txhdr[UDP_TX_BATCH][UDP_HDR];
    unsigned         ntx;
    struct buf       scratch;               /* a response gathered from several parts */
    struct udp_req  *free;
    struct udp_req  *pending;               /* waiting for replies; reachable for LSan */
};

/* One element per worker, allocated by the main thread; each worker then
 * touches only its own. */
static struct udp_worker *uws;
static int steer_level = STEER_LEVEL_HASH;   /* written once at set-up */
static int bound_port;                       /* written once at set-up */

/* ---- request contexts --------------------------------------------------- */

static struct udp_req *req_new(struct loop *l)
{
    struct udp_worker *u = &uws[l->id];
    struct udp_req *q = u->free;
    if (q) {
        u->free = q->next;
    } else {
        q = calloc(1, sizeof *q);
        if (!q)
            abort();
    }
    q->l = l;
    q->cmd_open = q->quit = q->discard = q->held = false;
    q->inflight = 0;
    q->nparts = 0;
    q->parts = q->inline_parts;
    q->cap = UDP_PARTS_INLINE;
    q->out.len = 0;
    q->next = q->prev = NULL;
    return q;
}

static void req_free(struct udp_req *q)
{
    struct udp_worker *u = &uws[q->l->id];
    for (unsigned i = 0; i < q->nparts; i++) {
        struct msg *m = q->parts[i].remote;
        if (m)
            msg_release(m);
    }
    if (q->parts != q->inline_parts)
        free(q->parts);
    q->parts = q->inline_parts;
    if (q->out.cap > UDP_RX_SIZE)
        buf_free(&q->out);
    if (q->rest.cap)   /* only while held: udp_reply_arrived takes it */
        buf_free(&q->rest);
    q->next = u->free;
    u->free = q;
}

static void pending_add(struct udp_req *q)
{
    struct udp_worker *u = &uws[q->l->id];
    q->prev = NULL;
    q->next = u->pending;
    if (u->pending)
        u->pending->prev = q;
    u->pending = q;
}

static void pending_del(struct udp_req *q)
{
    struct udp_worker *u = &uws[q->l->id];
    if (q->prev)
        q->prev->next = q->next;
    else
        u->pending = q->next;
    if (q->next)
        q->next->prev = q->prev;
}

static struct udp_part *part_add(struct udp_req *q, bool start, bool keep_empty)
{
    if (q->nparts == q->cap) {
        unsigned cap = q->cap * 2;
        struct udp_part *p = malloc(cap * sizeof *p);
        if (!p)
            abort();
        memcpy(p, q->parts, q->nparts * sizeof *p);
        if (q->parts != q->inline_parts)
            free(q->parts);
        q->parts = p;
        q->cap = cap;
    }
    struct udp_part *p = &q->parts[q->nparts++];
    *p = (struct udp_part){ .remote = NULL, .off = (uint32_t)q->out.len,
                            .start = start, .keep_empty = keep_empty };
    q->cmd_open = true;
    return p;
}

/* ---- the sink the text parser calls ------------------------------------- */

static struct buf *sink_output(void *s)
{
    struct udp_req *q = s;
    /* Output after a request of the same command (END after get keys) joins
     * that request's response, as memcached tags END onto the last one. */
    if (!q->cmd_open)
        part_add(q, true, false);
    else if (q->parts[q->nparts - 1].remote)
        part_add(q, false, false);
    return &q->out;
}

/* A request executed here writes into the part sink_request just opened. */
static struct buf *part_output(void *s)
{
    struct udp_req *q = s;
    return &q->out;
}

static void sink_request(void *s, struct req *r)
{
    struct udp_req *q = s;
    struct loop *l = q->l;
    /* memcached sends the empty response of a get whose first key misses
     * as a header-only datagram (count 0); later keys' empty responses
     * vanish into the previous datagram. */
    r->cfd = q->fd;
    bool first_get = r->op <= OP_GATS && r->proto == PROTO_TEXT && !q->cmd_open;
    struct udp_part *p = part_add(q, true, first_get);
    struct msg *m = loop_route(l, r, MSG_UDP, q, part_output);
    if (!m)
        return;
    p->remote = m;
    q->inflight++;
    STAT_INC(l->stats, udp_forwarded);
}

/* A response of its own whose bytes the runtime writes, sent once every
 * worker has done its part (flush_all's OK, stats reset's RESET): it comes
 * home through udp_reply_arrived like a forwarded request. */
static struct msg *udp_barrier(void *s)
{
    struct udp_req *q = s;
    struct msg *b = calloc(1, sizeof *b);
    if (!b)
        abort();
    b->kind = MSG_UDP_BARRIER;
    b->from = (uint8_t)q->l->id;
    b->u.wait.udp = q;
    part_add(q, true, false)->remote = b;
    q->inflight++;
    return b;
}

/* The runtime may release a barrier before it returns (one worker): the
 * extra count keeps the datagram from being sent and freed while it is
 * still being parsed; what is left is sent when the parse ends. */
static void sink_stats(void *s, const char *arg, size_t len, struct stats_out *so)
{
    struct udp_req *q = s;
    q->inflight++;
    q->l->host->stats(q->l, udp_barrier, q, arg, len, so);
    q->inflight--;
}

static void sink_flush_all(void *s, int64_t delay, const char *ok, size_t n)
{
    struct udp_req *q = s;
    struct msg *barrier = NULL;
    q->inflight++;
    if (n) {
        barrier = udp_barrier(q);
        buf_add(&barrier->reply, ok, n);
    }
    q->l->host->flush_all(q->l, delay, barrier);
    q->inflight--;
}

static void sink_memlimit(void *s, uint64_t bytes)
{
    struct udp_req *q = s;
    q->l->host->memlimit(q->l, bytes);
}

static void sink_quit(void *s)
{
    struct udp_req *q = s;
    /* Text quit answers a header-only datagram; binary quit has already
     * written its own reply (or, quiet, is covered by binary_datagram). */
    if (!q->binary)
        part_add(q, true, true);
    q->quit = true;
}

static void sink_shutdown(void *s, bool graceful)
{
    (void)s;
    kill(getpid(), graceful ? SIGUSR1 : SIGINT);
}

/* A stats answers what the requests before it in the datagram did: until
 * they are home the rest of the datagram waits (udp_reply_arrived). */
static bool sink_settled(void *s)
{
    struct udp_req *q = s;
    q->held = q->inflight > 0;
    return !q->held;
}

/* One command per text_parse() call, so each command's output can be told
 * apart from the next one's (memcached's response objects). */
static bool sink_busy(void *s)
{
    struct udp_req *q = s;
    return q->cmd_open || q->quit;
}

static const struct proto_sink udp_sink = {
    .request = sink_request, .output = sink_output, .stats = sink_stats,
    .flush_all = sink_flush_all, .quit = sink_quit, .shutdown = sink_shutdown,
    .busy = sink_busy, .settled = sink_settled,
    .memlimit = sink_memlimit,
};

/* ---- sending ------------------------------------------------------------ */

static void tx_flush(struct udp_worker *u, struct udp_req *q)
{
    unsigned done = 0;
    int waited = 0;
    while (done < u->ntx) {
        int n = sendmmsg(q->fd, u->tx + done, u->ntx - done, MSG_DONTWAIT);
        if (n > 0) {
            done += (unsigned)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == ENOBUFS) && waited < UDP_SEND_WAIT_MS) {
            /* A large reply can outrun the socket buffer; UDP may drop, but
             * a short wait keeps large values deliverable. */
            struct pollfd pfd = { .fd = q->fd, .events = POLLOUT };
            poll(&pfd, 1, 1);
            waited++;
            continue;
        }
        log_debug("udp: reply to request %u lost: %s", q->id, n < 0 ? strerror(errno) : "short");
        break;
    }
    u->ntx = 0;
}

static void tx_add(struct udp_worker *u, struct udp_req *q, const char *data, size_t len,
                   unsigned seq, unsigned total)
{
    if (u->ntx == UDP_TX_BATCH)
        tx_flush(u, q);
    unsigned i = u->ntx++;
    unsigned char *h = u->txhdr[i];
    h[0] = (unsigned char)(q->id >> 8);
    h[1] = (unsigned char)q->id;
    h[2] = (unsigned char)(seq >> 8);
    h[3] = (unsigned char)seq;
    h[4] = (unsigned char)(total >> 8);
    h[5] = (unsigned char)total;
    h[6] = h[7] = 0;
    u->txiov[i][0] = (struct iovec){ .iov_base = h, .iov_len = UDP_HDR };
    u->txiov[i][1] = (struct iovec){ .iov_base = (void *)data, .iov_len = len };
    u->tx[i].msg_hdr = (struct msghdr){
        .msg_name = &q->addr, .msg_namelen = q->alen,
        .msg_iov = u->txiov[i], .msg_iovlen = len ? 2 : 1,
    };
}

/* Bytes of part i: local parts end where the next local part begins. */
static void part_bytes(const struct udp_req *q, unsigned i, const char **p, size_t *n)
{
    const struct udp_part *pt = &q->parts[i];
    if (pt->remote) {
        *p = pt->remote->reply.data;
        *n = pt->remote->reply.len;
        return;
    }
    size_t end = q->out.len;
    for (unsigned j = i + 1; j < q->nparts; j++) {
        if (!q->parts[j].remote) {
            end = q->parts[j].off;
            break;
        }
    }
    *p = q->out.data + pt->off;
    *n = end - pt->off;
}

static void send_response(struct udp_worker *u, struct udp_req *q, const char *data,
                          size_t len, bool keep_empty)
{
    if (len == 0) {
        if (keep_empty)
            tx_add(u, q, NULL, 0, 0, 0);
        return;
    }
    size_t total = (len + UDP_PAYLOAD - 1) / UDP_PAYLOAD;
    if (total > 65535)
        total = 65535;   /* memcached's cap; the count field is 16 bits */
    for (size_t seq = 0, off = 0; off < len; seq++, off += UDP_PAYLOAD) {
        size_t n = len - off < UDP_PAYLOAD ? len - off : UDP_PAYLOAD;
        tx_add(u, q, data + off, n, (unsigned)seq, (unsigned)total);
    }
}

static void req_send(struct udp_req *q)
{
    struct udp_worker *u = &uws[q->l->id];
    unsigned i = 0;
    while (i < q->nparts) {
        unsigned j = i + 1;
        while (j < q->nparts && !q->parts[j].start)
            j++;
        const char *data;
        size_t len;
        part_bytes(q, i, &data, &len);
        if (j > i + 1) {
            /* A response made of several parts is gathered so that its
             * datagrams can be cut at 1392-byte boundaries. */
            tx_flush(u, q);   /* scratch may move */
            u->scratch.len = 0;
            for (unsigned k = i; k < j; k++) {
                const char *d;
                size_t n;
                part_bytes(q, k, &d, &n);
                buf_add(&u->scratch, d, n);
            }
            data = u->scratch.data;
            len = u->scratch.len;
            send_response(u, q, data, len, q->parts[i].keep_empty);
            tx_flush(u, q);
        } else {
            send_response(u, q, data, len, q->parts[i].keep_empty);
        }
        STAT_ADD(q->l->stats, bytes_written, len);
        i = j;
    }
    tx_flush(u, q);
    if (u->scratch.cap > UDP_RX_SIZE)
        buf_free(&u->scratch);
}

/* ---- receiving ---------------------------------------------------------- */

static uint32_t be32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}

/* A datagram of binary packets (memcached 1.6.18 picks the protocol per
 * datagram from its first byte). Each packet is parsed on its own so the
 * first packet's response is known: when it is empty (a quiet command)
 * memcached still sends a header-only datagram, later empty ones vanish.
 * Parsing stops at a byte that is not a request magic (memcached closes
 * the UDP "connection" there, after answering what came before). Returns
 * false when the last packet is incomplete: the datagram is dropped.
 * `first`: body starts the datagram; *stop: where a held stat stopped. */
static bool binary_datagram(struct udp_req *q, const char *body, size_t n, bool first,
                            size_t *stop)
{
    void *state = NULL;
    bool complete = true;
    size_t off = 0;
    for (unsigned k = first ? 0 : 1; off < n && !q->quit; k++) {
        if (!proto_binary.detect(body + off, n - off))
            break;
        if (n - off < 24 || n - off < 24 + (size_t)be32(body + off + 8)) {
            complete = false;
            break;
        }
        size_t plen = 24 + (size_t)be32(body + off + 8), pos = 0;
        unsigned first_part = q->nparts;
        while (pos < plen) {
            size_t need = 0;
            q->cmd_open = false;
            ssize_t used = proto_binary.parse(&state, q->l->conf, &udp_sink, q, body + off + pos,
                                              plen - pos, &need);
            if (used <= 0)
                break;
            pos += (size_t)used;
        }
        if (q->held)
            break;   /* a stat, parsed again from here */
        if (k == 0) {
            if (q->nparts == first_part)
                part_add(q, true, true);
            else
                q->parts[first_part].keep_empty = true;
        }
        off += plen;
    }
    proto_binary.state_free(&state);
    *stop = off;
    return complete;
}

/* Text commands, one text_parse() call each; as binary_datagram. */
static bool text_datagram(struct udp_req *q, const char *body, size_t n, size_t *stop)
{
    struct text_parser tp = {0};
    bool complete = true;
    size_t off = 0;
    while (off < n && !q->quit) {
        size_t need = 0;
        q->cmd_open = false;
        ssize_t used = text_parse(&tp, q->l->conf, &udp_sink, q, body + off, n - off, &need);
        if (used > 0)
            off += (size_t)used;
        if (q->held)
            break;
        if (used <= 0) {
            complete = false;   /* a command cut short by the datagram's end */
            break;
        }
    }
    if (tp.swallow)
        complete = false;       /* a refused value larger than the datagram */
    *stop = off;
    return complete;
}

/* The commands of body[0..n) into q's parts (`first`: body starts the
 * datagram). A stats that waits (q->held) leaves the rest in q->rest.
 * Returns false when the datagram must be dropped. */
static bool parse_body(struct udp_req *q, const char *body, size_t n, bool first)
{
    size_t stop = 0;
    bool complete = q->binary ? binary_datagram(q, body, n, first, &stop)
                              : text_datagram(q, body, n, &stop);
    if (q->held)
        buf_add(&q->rest, body + stop, n - stop);
    if (!complete) {
        STAT_INC(q->l->stats, udp_dropped);
        q->discard = true;
    }
    return complete;
}

static void datagram(struct loop *l, int fd, const char *d, size_t len,
                     const struct sockaddr_storage *from, socklen_t alen)
{
    STAT_ADD(l->stats, bytes_read, len);
    /* memcached ignores the sequence number and the reserved field. */
    if (len <= UDP_HDR || d[4] != 0 || d[5] != 1) {
        STAT_INC(l->stats, udp_dropped);
        return;
    }
    STAT_INC(l->stats, udp_requests);
    struct udp_req *q = req_new(l);
    q->fd = fd;
    q->id = (uint16_t)((unsigned char)d[0] << 8 | (unsigned char)d[1]);
    q->alen = alen;
    memcpy(&q->addr, from, alen);

    const char *body = d + UDP_HDR;
    size_t n = len - UDP_HDR;
    q->binary = proto_detect(body, n) == &proto_binary;
    parse_body(q, body, n, true);
    if (q->inflight) {
        pending_add(q);
        return;
    }
    if (!q->discard)
        req_send(q);
    req_free(q);
}

void udp_read(struct loop *l, struct evsrc *src)
{
    struct udp_worker *u = &uws[l->id];
    for (int round = 0; round < UDP_RX_ROUNDS; round++) {
        for (unsigned i = 0; i < UDP_RX_BATCH; i++) {
            u->rx[i].msg_hdr.msg_namelen = sizeof u->rxaddr[i];
            u->rx[i].msg_hdr.msg_flags = 0;
        }
        int n = recvmmsg(src->fd, u->rx, UDP_RX_BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0) {
            if (n < 0 && errno != EAGAIN && errno != EINTR)
                log_debug("udp: recvmmsg: %s", strerror(errno));
            return;
        }
        for (int i = 0; i < n; i++) {
            if (u->rx[i].msg_hdr.msg_flags & MSG_TRUNC) {
                STAT_INC(l->stats, udp_dropped);
                continue;
            }
            datagram(l, src->fd, u->rxiov[i].iov_base, u->rx[i].msg_len, &u->rxaddr[i],
                     u->rx[i].msg_hdr.msg_namelen);
        }
        if (n < UDP_RX_BATCH)
            return;
    }
}

void udp_reply_arrived(struct loop *l, struct msg *m)
{
    struct udp_req *q = m->u.udp;
    (void)l;
    if (--q->inflight)
        return;
    if (q->held) {
        /* The held stats (and what follows it) now sees every request
         * before it executed; it may forward more and wait again. */
        struct buf in = q->rest;
        q->rest = (struct buf){0};
        q->held = false;
        parse_body(q, in.data, in.len, false);
        buf_free(&in);
        if (q->inflight)
            return;
    }
    pending_del(q);
    if (!q->discard)
        req_send(q);
    req_free(q);
}

/* ---- set-up (main thread) ----------------------------------------------- */

int udp_setup(struct loop *const *loops, unsigned nworkers)
{
    uws = calloc(nworkers, sizeof *uws);
    if (!uws)
        return -1;
    bound_port = settings.udp_port;
    for (int a = 0; bound_port > 0 && a < settings.nlisten; a++)
        if (listener_check_free(settings.listen[a], bound_port, true) < 0)
            return UDP_SETUP_SOCKETS;
    for (unsigned i = 0; i < nworkers; i++) {
        struct udp_worker *u = &uws[i];
        u->rxbuf = malloc((size_t)UDP_RX_BATCH * UDP_RX_SIZE);
        if (!u->rxbuf)
            return -1;
        for (unsigned k = 0; k < UDP_RX_BATCH; k++) {
            u->rxiov[k] = (struct iovec){ u->rxbuf + (size_t)k * UDP_RX_SIZE, UDP_RX_SIZE };
            u->rx[k].msg_hdr = (struct msghdr){
                .msg_name = &u->rxaddr[k], .msg_namelen = sizeof u->rxaddr[k],
                .msg_iov = &u->rxiov[k], .msg_iovlen = 1,
            };
        }
    }
    int level = STEER_LEVEL_EBPF;
    int group_fds[MAX_LISTEN];
    for (int a = 0; a < settings.nlisten; a++) {
        /* Sockets join the reuseport group in worker order, so index i in
         * the group is worker i: the cBPF fallback relies on it. */
        int fds[MAX_WORKERS];
        for (unsigned i = 0; i < nworkers; i++) {
            struct loop *l = loops[i];
            int fd = listener_open(settings.listen[a], bound_port < 0 ? 0 : bound_port, 0, true,
                                   l->cpu);
            if (fd < 0)
                return UDP_SETUP_SOCKETS;
            int family;
            if (bound_port < 0 && (bound_port = listener_port(fd, &family)) < 0)
                return UDP_SETUP_SOCKETS;
            l->udp[a].type = SRC_UDP;
            l->udp[a].fd = fd;
            l->nudp++;
            fds[i] = fd;
            if (i == 0)
                group_fds[a] = fd;
            if (reactor_add(&l->reactor, fd, EV_READ, &l->udp[a]) < 0)
                return -1;
        }
        int got = steer_attach(fds, nworkers, settings.steering);
        if (got < 0)
            return -1;
        if (got < level)
            level = got;
    }
    steer_level = level;
    /* XDP in front of the socket-level program: sends each request to its
     * owner's CPU before the stack runs (net/xdp_steer.c). */
    if (level == STEER_LEVEL_EBPF && (settings.steering == STEER_XDP || settings.steering == STEER_AUTO)) {
        int cpu[MAX_WORKERS];
        for (unsigned i = 0; i < nworkers; i++)
            cpu[i] = loops[i]->cpu;
        if (xdp_steer_setup(group_fds, (unsigned)settings.nlisten, (uint16_t)bound_port,
                            nworkers, cpu, settings.steering) < 0)
            return -1;
    }
    if (settings.steering == STEER_AUTO && level != STEER_LEVEL_EBPF)
        log_warn("UDP steering: %s (eBPF not available); requests for other workers' keys "
                 "are forwarded between workers", steer_level_name(level));
    return 0;
}

int udp_port(void)
{
    return bound_port;
}

const char *udp_steering_name(void)
{
    switch (xdp_steer_mode()) {
    case XDP_MODE_NATIVE:  return "xdp-native";
    case XDP_MODE_GENERIC: return "xdp-generic";
    default:               return steer_level_name(steer_level);
    }
}
