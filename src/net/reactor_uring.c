/*
 * reactor_uring.c — io_uring backend of the reactor (reactor.h,
 * reactor_backend.h). One ring per worker: created disabled by the main
 * thread at start-up, then enabled, submitted to and reaped only by its
 * worker's thread, so it can run with IORING_SETUP_SINGLE_ISSUER |
 * IORING_SETUP_DEFER_TASKRUN (completions are posted only when the worker
 * asks, in its one io_uring_enter per loop iteration, which also submits
 * that iteration's sends and re-arms).
 *
 * Every fd the reactor knows has a `struct uio`:
 *   connection  multishot recv into the provided-buffer ring (uring_bufs.h),
 *               reported as REV_DATA pointing into the buffer, which goes
 *               back to the kernel at a later wait (held_return); at most
 *               one send in flight, from the uio's own buffer (REV_SENT)
 *   listener    multishot accept, each socket reported as REV_ACCEPT
 *   doorbell    read of the eventfd, re-armed after each wake-up (silent)
 *   other (UDP) poll, reported as REV_READY like epoll's
 * Nothing here calls above the reactor. A uio outlives its fd's
 * registration: reactor_del() detaches it (src = NULL) and cancels what is
 * outstanding; it is freed when the last CQE naming it has arrived (`refs`),
 * so the kernel never writes into freed memory.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "util/buf.h"
#include "util/log.h"
#include "util/options.h"
#include "net/reactor_backend.h"

#ifndef HAVE_LIBURING

int uring_reactor_init(struct reactor *r, const char **why)
{
    (void)r;
    *why = "built without liburing";
    return -ENOSYS;
}
void uring_reactor_fini(struct reactor *r) { (void)r; }
int uring_reactor_add(struct reactor *r, int fd, uint32_t e, struct evsrc *s) { return -1; }
int uring_reactor_mod(struct reactor *r, int fd, uint32_t e, struct evsrc *s) { return -1; }
int uring_reactor_del(struct reactor *r, int fd, bool f) { return -1; }
int uring_reactor_wait(struct reactor *r, struct revent *ev, int max, int t) { return -1; }
int uring_reactor_send(struct reactor *r, int fd, struct buf *o, size_t *off) { return -1; }
const char *uring_mode_name(const struct reactor *r) { return "none"; }
void uring_reactor_quiesce(struct reactor *r) { (void)r; }

#else

#include <liburing.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include "net/uring_bufs.h"
#include "util/stats.h"
#include "util/sys.h"

#define URING_SQ_ENTRIES  1024
#define URING_CQ_ENTRIES  8192        /* multishot: many CQEs per SQE */
/* Provided buffers per worker: every one becomes resident (the kernel
 * cycles through the ring), so the pool is small: 512 KiB. Each recv
 * completion takes a whole buffer, so more connections than buffers
 * receiving in one iteration end some multishot recvs with -ENOBUFS;
 * they are re-armed after the batch. */
#define URING_NBUFS       128
#define URING_BUF_SIZE    4096
#define URING_BGID        0
#define TX_KEEP           (64 * 1024) /* larger idle send buffers are released */
#define TX_IOV            64          /* iovecs per sendmsg; the rest follows */
#define TX_SLICE          REACTOR_TX_SLICE
#define URING_FILES_MAX   65536       /* registered-file slots per worker, at most */
/* Kernel ABI (6.2) that liburing 2.3's copy of io_uring.h predates. */
#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE  (1U << 3)
#endif
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)
#endif

/* What a CQE completes, in the low bits of user_data (uios are 16-aligned):
 * a connection's receive has a tag of its own, so the usual completion is
 * known from user_data alone. */
enum { OP_RECV = 0, OP_SEND = 1, OP_CANCEL = 2, OP_ARM = 3 /* any other kind's */ };
#define OP_MASK 3ull

enum ukind { UK_CONN, UK_LISTEN, UK_DOORBELL, UK_POLL };

struct uio {
    struct evsrc *src;        /* NULL once reactor_del() detached it */
    int           fd;
    uint8_t       kind;
    bool          want;       /* EV_READ interest */
    bool          armed;      /* the receiving request is outstanding */
    bool          cancelling; /* ... and a cancel for it was queued */
    bool          tx_busy;    /* a send is outstanding */
    bool          rearm_queued;
    bool          bell_poll;  /* this kernel makes us poll the doorbell */
    bool          fixed;      /* fd is also its slot in the ring's registered files */
    bool          zc_sent;    /* the send in flight is zero-copy */
    bool          zc_notif;   /* a zero-copy send's result is in; its notification is not */
    int           zc_res;     /* ... that result */
    bool          no_zc;      /* the socket refused a zero-copy send: plain ones */
    unsigned      refs;       /* outstanding requests + pending re-arm */
    struct buf    tx;         /* bytes of the send in flight (own and referenced) */
    size_t        txoff;
    size_t        txdone;     /* ... of them written so far */
    struct msghdr txmsg;      /* sendmsg of tx when it holds references */
    struct iovec *txiov;      /* TX_IOV entries, allocated on first use */
    uint64_t      bell;       /* the doorbell's read target */
    struct uio   *prev, *next;     /* every uio of the ring, for teardown */
    struct uio   *rearm_next;
};

struct uring {
    struct io_uring   ring;
    struct uring_bufs bufs;
    uint16_t          held[URING_NBUFS];  /* buffers of reported REV_DATA events */
    unsigned          nheld;
    struct uio      **byfd;
    size_t            nbyfd;
    struct uio       *all;
    struct uio       *rearm;       /* re-arm after the CQE batch */
    bool              enabled;
    bool              timer_armed; /* the idle wake-up timeout is outstanding */
    struct __kernel_timespec timer_ts;
    unsigned          flags;
    unsigned          pending;     /* requests the kernel has not finished */
    unsigned          nfiles;      /* registered-file slots (0: none); slot = fd */
    bool              zc;          /* the kernel has SENDMSG_ZC */
    struct wstats    *stats;
};

/* ---- set-up ------------------------------------------------------------ */

static int read_sysctl(const char *path)
{
    FILE *f = fopen(path, "r");
    int v = -1;
    if (f) {
        if (fscanf(f, "%d", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

static int ring_create(struct io_uring *ring, unsigned *used)
{
    /* Best first; older kernels refuse newer flags with EINVAL. */
    static const unsigned modes[] = {
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
        IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
        0,
    };
    int rc = -EINVAL;
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        struct io_uring_params p;
        memset(&p, 0, sizeof p);
        /* Disabled until the worker thread enables it: the single issuer
         * is whoever enables the ring, not the main thread creating it. */
        p.flags = modes[i] | IORING_SETUP_CQSIZE | IORING_SETUP_R_DISABLED;
        p.cq_entries = URING_CQ_ENTRIES;
        rc = io_uring_queue_init_params(URING_SQ_ENTRIES, ring, &p);
        if (rc == 0) {
            *used = modes[i];
            return 0;
        }
        if (rc != -EINVAL)
            return rc;
    }
    return rc;
}

int uring_reactor_init(struct reactor *r, const char **why)
{
    if (getenv("PERCORE_NO_URING")) {
        *why = "PERCORE_NO_URING is set";
        return -EPERM;
    }
    if (read_sysctl("/proc/sys/kernel/io_uring_disabled") == 2) {
        *why = "kernel.io_uring_disabled = 2";
        return -EPERM;
    }
    struct uring *u = calloc(1, sizeof *u);
    if (!u) {
        *why = "out of memory";
        return -ENOMEM;
    }
    int rc = ring_create(&u->ring, &u->flags);
    if (rc < 0) {
        *why = rc == -EPERM ? "io_uring_setup not permitted (kernel.io_uring_disabled, seccomp?)"
             : rc == -ENOSYS ? "kernel without io_uring" : "io_uring_setup failed";
        free(u);
        return rc == -EINVAL ? -EOPNOTSUPP : rc;
    }
    /* Multishot recv came with kernel 6.0, as did SEND_ZC: use it as the
     * probe, since older kernels reject the recv only when it runs. */
    struct io_uring_probe *probe = io_uring_get_probe_ring(&u->ring);
    bool ok = probe && io_uring_opcode_supported(probe, IORING_OP_SEND_ZC);
    u->zc = probe && io_uring_opcode_supported(probe, IORING_OP_SENDMSG_ZC);
    if (probe)
        io_uring_free_probe(probe);
    if (!ok) {
        *why = "kernel older than 6.0 (no multishot recv)";
        io_uring_queue_exit(&u->ring);
        free(u);
        return -EOPNOTSUPP;
    }
    rc = uring_bufs_init(&u->ring, &u->bufs, URING_NBUFS, URING_BUF_SIZE, URING_BGID);
    if (rc < 0) {
        *why = "cannot register a provided-buffer ring";
        io_uring_queue_exit(&u->ring);
        free(u);
        return rc == -EINVAL ? -EOPNOTSUPP : rc;
    }
    r->uring = u;
    r->fd = -1;
    return 0;
}

const char *uring_mode_name(const struct reactor *r)
{
    /* Registered files are set up when the worker enables its ring, after
     * this is first logged; they are reported in `stats settings`. */
    unsigned f = r->uring->flags;
    if (f & IORING_SETUP_DEFER_TASKRUN)
        return "single issuer, deferred task work";
    if (f & IORING_SETUP_COOP_TASKRUN)
        return "cooperative task work";
    return "plain";
}

void uring_reactor_fini(struct reactor *r)
{
    struct uring *u = r->uring;
    if (!u)
        return;
    /* Cancels and waits for everything in flight: no CQE can follow. */
    io_uring_queue_exit(&u->ring);
    for (struct uio *x = u->all, *n; x; x = n) {
        n = x->next;
        buf_free(&x->tx);
        free(x->txiov);
        free(x);
    }
    uring_bufs_free(&u->bufs);
    free(u->byfd);
    free(u);
    r->uring = NULL;
}

/* ---- requests ---------------------------------------------------------- */

static struct io_uring_sqe *sqe_get(struct uring *u)
{
    struct io_uring_sqe *s = io_uring_get_sqe(&u->ring);
    if (!s && u->enabled) {
        /* SQ full within one iteration: pass this batch to the kernel. */
        io_uring_submit(&u->ring);
        s = io_uring_get_sqe(&u->ring);
    }
    if (!s)
        abort();
    return s;
}

/* A connection's requests name its registered slot: the kernel then skips
 * looking up and reference-counting the file on every receive and send. */
static inline void sqe_file(struct io_uring_sqe *s, const struct uio *x)
{
    if (x->fixed)
        s->flags |= IOSQE_FIXED_FILE;   /* s->fd is the slot, which is the fd */
}

static void uio_put(struct uring *u, struct uio *x)
{
    if (--x->refs > 0 || x->src)
        return;
    if (x->prev)
        x->prev->next = x->next;
    else
        u->all = x->next;
    if (x->next)
        x->next->prev = x->prev;
    buf_free(&x->tx);
    free(x->txiov);
    free(x);
}

static inline unsigned arm_op(const struct uio *x)
{
    return x->kind == UK_CONN ? OP_RECV : OP_ARM;
}

static void arm(struct uring *u, struct uio *x)
{
    struct io_uring_sqe *s = sqe_get(u);
    switch (x->kind) {
    case UK_CONN:
        io_uring_prep_recv_multishot(s, x->fd, NULL, 0, 0);
        sqe_file(s, x);
        s->flags |= IOSQE_BUFFER_SELECT;
        s->buf_group = URING_BGID;
        break;
    case UK_LISTEN:
        io_uring_prep_multishot_accept(s, x->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        break;
    case UK_DOORBELL:
        if (x->bell_poll)
            io_uring_prep_poll_add(s, x->fd, POLLIN);
        else
            io_uring_prep_read(s, x->fd, &x->bell, sizeof x->bell, 0);
        break;
    default:
        /* One-shot, re-armed after the caller has read: level-triggered like
         * epoll, so what udp_read() leaves for later raises it again. */
        io_uring_prep_poll_add(s, x->fd, POLLIN);
        break;
    }
    io_uring_sqe_set_data64(s, (uint64_t)(uintptr_t)x | arm_op(x));
    u->pending++;
    x->armed = true;
    x->cancelling = false;
    x->refs++;
}

static void cancel(struct uring *u, struct uio *x, unsigned op)
{
    struct io_uring_sqe *s = sqe_get(u);
    io_uring_prep_cancel64(s, (uint64_t)(uintptr_t)x | op, 0);
    io_uring_sqe_set_data64(s, (uint64_t)(uintptr_t)x | OP_CANCEL);
    u->pending++;
    x->refs++;
}

static void send_tx(struct uring *u, struct uio *x)
{
    /* A buffer with references (values sent from their segments) goes out
     * with sendmsg, up to TX_IOV pieces at a time. */
    struct io_uring_sqe *s = sqe_get(u);
    /* Large replies (values sent from their segments, mostly) go zero-copy:
     * the kernel sends from our pages instead of copying them into socket
     * buffers, and says when it has let go of them in a second completion
     * (the notification), until which the buffer and its pins stay. */
    size_t left = buf_size(&x->tx) - x->txoff;
    bool zc = u->zc && !x->no_zc && settings.zc_send_min && left >= settings.zc_send_min;
    /* WAITALL: the kernel retries a short send on a stream socket itself,
     * so a completion means all sent or the connection failed. */
    if (x->tx.nrefs || zc) {
        if (!x->txiov) {
            x->txiov = malloc(TX_IOV * sizeof *x->txiov);
            if (!x->txiov)
                abort();
        }
        x->txmsg = (struct msghdr){
            .msg_iov = x->txiov,
            .msg_iovlen = buf_iov(&x->tx, x->txoff, TX_SLICE, x->txiov, TX_IOV),
        };
        x->zc_sent = zc;
        if (zc) {
            io_uring_prep_sendmsg_zc(s, x->fd, &x->txmsg, MSG_NOSIGNAL | MSG_WAITALL);
            s->ioprio |= IORING_SEND_ZC_REPORT_USAGE;
            STAT_INC(u->stats, uring_zc_sends);
        } else {
            io_uring_prep_sendmsg(s, x->fd, &x->txmsg, MSG_NOSIGNAL | MSG_WAITALL);
        }
    } else {
        x->zc_sent = false;
        io_uring_prep_send(s, x->fd, x->tx.data + x->txoff, left < TX_SLICE ? left : TX_SLICE,
                           MSG_NOSIGNAL | MSG_WAITALL);
    }
    sqe_file(s, x);
    io_uring_sqe_set_data64(s, (uint64_t)(uintptr_t)x | OP_SEND);
    u->pending++;
}

/* Re-arming waits for the end of the CQE batch, so every buffer that batch
 * consumed is back in the ring first (a recv ended by -ENOBUFS would
 * otherwise end again at once). */
static void queue_rearm(struct uring *u, struct uio *x)
{
    if (x->rearm_queued)
        return;
    x->rearm_queued = true;
    x->refs++;
    x->rearm_next = u->rearm;
    u->rearm = x;
}

static void run_rearms(struct uring *u)
{
    while (u->rearm) {
        struct uio *x = u->rearm;
        u->rearm = x->rearm_next;
        x->rearm_queued = false;
        if (x->src && x->want && !x->armed)
            arm(u, x);
        uio_put(u, x);
    }
}

/* ---- the reactor interface --------------------------------------------- */

static int byfd_set(struct uring *u, int fd, struct uio *x)
{
    if ((size_t)fd >= u->nbyfd) {
        size_t n = u->nbyfd ? u->nbyfd : 256;
        while (n <= (size_t)fd)
            n *= 2;
        struct uio **p = realloc(u->byfd, n * sizeof *p);
        if (!p)
            return -1;
        memset(p + u->nbyfd, 0, (n - u->nbyfd) * sizeof *p);
        u->byfd = p;
        u->nbyfd = n;
    }
    u->byfd[fd] = x;
    return 0;
}

static struct uio *byfd_get(struct uring *u, int fd)
{
    return fd >= 0 && (size_t)fd < u->nbyfd ? u->byfd[fd] : NULL;
}

int uring_reactor_add(struct reactor *r, int fd, uint32_t events, struct evsrc *src)
{
    struct uring *u = r->uring;
    struct uio *x = calloc(1, sizeof *x);
    if (!x || byfd_set(u, fd, x) < 0) {
        free(x);
        return -1;
    }
    x->src = src;
    x->fd = fd;
    x->kind = src->type == SRC_CONN ? UK_CONN : src->type == SRC_LISTEN ? UK_LISTEN
            : src->type == SRC_DOORBELL ? UK_DOORBELL : UK_POLL;
    x->want = (events & EV_READ) != 0;
    if (x->kind == UK_CONN && (unsigned)fd < u->nfiles &&
        io_uring_register_files_update(&u->ring, (unsigned)fd, &fd, 1) == 1)
        x->fixed = true;
    x->refs = 1;   /* held by the fd until reactor_del */
    x->next = u->all;
    if (u->all)
        u->all->prev = x;
    u->all = x;
    if (x->want)
        arm(u, x);
    return 0;
}

int uring_reactor_mod(struct reactor *r, int fd, uint32_t events, struct evsrc *src)
{
    struct uring *u = r->uring;
    struct uio *x = byfd_get(u, fd);
    if (!x)
        return -1;
    /* EV_WRITE means nothing here: sends complete by themselves. */
    x->want = (events & EV_READ) != 0;
    if (x->want && !x->armed)
        arm(u, x);
    else if (!x->want && x->armed && !x->cancelling) {
        /* Back-pressure: stop receiving, so the socket buffer and then
         * the TCP window fill up, as with epoll. */
        cancel(u, x, arm_op(x));
        x->cancelling = true;
    }
    return 0;
}

int uring_reactor_del(struct reactor *r, int fd, bool finish_send)
{
    struct uring *u = r->uring;
    struct uio *x = byfd_get(u, fd);
    if (!x)
        return -1;
    u->byfd[fd] = NULL;
    x->src = NULL;
    x->want = false;
    if (x->fixed) {
        /* Requests in flight hold their own reference to the file; the
         * slot is freed now, before the fd number can come back. */
        int none = -1;
        io_uring_register_files_update(&u->ring, (unsigned)fd, &none, 1);
    }
    if (x->armed && !x->cancelling) {
        cancel(u, x, arm_op(x));
        x->cancelling = true;
    }
    /* After `quit` the last replies still go out: the send, once issued,
     * holds the socket open past close(), so issue it before the caller
     * closes the fd. On any other close they are abandoned. */
    if (x->tx_busy) {
        if (finish_send)
            io_uring_submit(&u->ring);
        else
            cancel(u, x, OP_SEND);
    }
    uio_put(u, x);
    return 0;
}

int uring_reactor_send(struct reactor *r, int fd, struct buf *out, size_t *off)
{
    struct uring *u = r->uring;
    struct uio *x = byfd_get(u, fd);
    if (!x)
        return -1;
    if (x->tx_busy || *off >= buf_size(out))
        return 0;
    /* Swap buffers: the kernel reads from x->tx until the completion, the
     * connection keeps building replies in the (empty) other one. */
    struct buf spare = x->tx;
    x->tx = *out;
    x->txoff = *off;
    x->txdone = 0;
    buf_reset(&spare);
    *out = spare;
    *off = 0;
    x->tx_busy = true;
    x->refs++;
    send_tx(u, x);
    return 0;
}

/* ---- shut-down --------------------------------------------------------- */

#define QUIESCE_TAG 0x1ull   /* user_data of the cancel-everything request */
#define TIMER_TAG   0x2ull   /* ... of the idle wake-up timeout (wait) */
#define QUIESCE_MS  1000

/* On the worker's own thread (the ring's single issuer), after its
 * connections are closed: cancel every request still in the kernel and reap
 * until none is left. A pending multishot accept holds a reference to its
 * listening socket; left to the ring's asynchronous teardown, the socket
 * outlives the process by milliseconds and a percore restarted on the same
 * port fails to bind. Completions are only counted here, never dispatched:
 * nothing above the reactor may run any more. */
void uring_reactor_quiesce(struct reactor *r)
{
    struct uring *u = r->uring;
    if (!u || !u->enabled)
        return;
    struct io_uring_sqe *s = sqe_get(u);
    io_uring_prep_cancel(s, NULL, IORING_ASYNC_CANCEL_ANY);
    io_uring_sqe_set_data64(s, QUIESCE_TAG);
    bool cancel_done = false;
    for (int waited = 0; (u->pending > 0 || !cancel_done) && waited < QUIESCE_MS; waited += 10) {
        struct __kernel_timespec ts = { .tv_sec = 0, .tv_nsec = 10 * 1000000 };
        struct io_uring_cqe *cqe;
        io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, &ts, NULL);
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&u->ring, head, cqe) {
            seen++;
            if (cqe->user_data == QUIESCE_TAG) {
                cancel_done = true;
                continue;
            }
            if (cqe->user_data == TIMER_TAG) {
                u->pending--;
                continue;
            }
            struct uio *x = (struct uio *)(uintptr_t)(cqe->user_data & ~OP_MASK);
            unsigned op = (unsigned)(cqe->user_data & OP_MASK);
            if (op == OP_ARM && x->kind == UK_LISTEN && cqe->res >= 0)
                close(cqe->res);   /* accepted in the last moment */
            if (!(cqe->flags & IORING_CQE_F_MORE))
                u->pending--;
        }
        io_uring_cq_advance(&u->ring, seen);
    }
    if (u->pending > 0)
        log_warn("io_uring: %u requests still pending at exit", u->pending);
}

/* ---- completions ------------------------------------------------------- */

/* Each returns true when it filled *e (an event for the caller). */

static bool on_recv(struct uring *u, struct uio *x, struct io_uring_cqe *cqe, struct revent *e)
{
    int res = cqe->res;
    if (cqe->flags & IORING_CQE_F_BUFFER) {
        unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
        if (res > 0 && x->src) {
            /* The caller reads the bytes in place; the buffer goes back at
             * a later wait (held_return). */
            u->held[u->nheld++] = (uint16_t)bid;
            *e = (struct revent){ .src = x->src, .kind = REV_DATA,
                                  .data = uring_bufs_addr(&u->bufs, bid), .len = (size_t)res };
            return true;
        }
        uring_bufs_put(&u->bufs, bid);
    }
    if (x->src && (res == 0 || (res < 0 && res != -ENOBUFS && res != -ECANCELED))) {
        x->want = false;   /* EOF or error: nothing more to receive */
        *e = (struct revent){ .src = x->src, .kind = REV_CLOSED, .res = res };
        return true;
    }
    return false;
}

static bool on_accept(struct uio *x, int res, struct revent *e)
{
    if (!x->src) {
        if (res >= 0)
            close(res);
        return false;
    }
    if (res == -EMFILE || res == -ENFILE)
        x->want = false;   /* the caller backs off, then asks for EV_READ again */
    else if (res == -ECANCELED || res == -EAGAIN || res == -EINTR || res == -ECONNABORTED)
        return false;
    *e = (struct revent){ .src = x->src, .kind = REV_ACCEPT, .res = res };
    return true;
}

static void on_doorbell(struct uio *x, int res)
{
    /* Some kernels honour the eventfd's O_NONBLOCK for reads: poll then. */
    if (res == -EAGAIN && !x->bell_poll)
        x->bell_poll = true;
    else if (x->bell_poll && res > 0) {
        ssize_t n = read(x->fd, &x->bell, sizeof x->bell);
        (void)n;
    }
}

static bool on_send(struct uring *u, struct uio *x, int res, struct revent *e)
{
    size_t left = buf_size(&x->tx) - x->txoff;
    if (res > 0) {
        x->txdone += (size_t)res;
    } else if (res == -EOPNOTSUPP && x->zc_sent && x->src) {
        /* Only TCP and UDP sockets take zero-copy sends: a UNIX socket's
         * connection refuses it, having sent nothing. Plain sends from now
         * on, this one first; the refused one is no zero-copy send. */
        STAT_DEC(u->stats, uring_zc_sends);
        x->no_zc = true;
        send_tx(u, x);
        return false;
    }
    if (x->src && res > 0 && (size_t)res < left) {
        /* One slice (or TX_IOV pieces) of a longer buffer, or interrupted
         * part way by a signal: send the rest. */
        x->txoff += (size_t)res;
        send_tx(u, x);
        return false;
    }
    x->tx_busy = false;
    buf_reset(&x->tx);   /* sent: the references' pins go back */
    x->txoff = 0;
    if (x->tx.cap > TX_KEEP)
        buf_free(&x->tx);
    bool report = x->src != NULL;
    if (report)
        *e = (struct revent){ .src = x->src, .kind = REV_SENT, .res = (long)x->txdone,
                              .events = res <= 0 && left > 0 ? EV_ERROR : 0 };
    uio_put(u, x);
    return report;
}

/* Buffers of reported REV_DATA events, consumed since (their bytes are
 * valid only until the next wait), go back to the kernel all at once, at
 * most HELD_BATCH waits late on the usual wake-up (the return's set-up is
 * then paid once per batch, and the kernel is short of at most
 * HELD_BATCH - 1 of the URING_NBUFS buffers), and at every other wait. */
#define HELD_BATCH 16

static inline void held_return(struct uring *u)
{
    if (u->nheld == 0)
        return;
    uring_bufs_put_many(&u->bufs, u->held, u->nheld);
    u->nheld = 0;
}

/* Every completion from `head` on, the general way; then the CQ advanced
 * and the batch's re-arms issued. The fast path of uring_reactor_wait()
 * hands over at the first completion it does not take itself. */
static __attribute__((noinline)) int reap(struct uring *u, struct revent *ev, int n, int max,
                                          unsigned head)
{
    struct io_uring *ring = &u->ring;
    for (; head != io_uring_smp_load_acquire(ring->cq.ktail); head++) {
        if (n == max)
            break;   /* no room to report more: the rest waits in the CQ */
        struct io_uring_cqe *cqe = &ring->cq.cqes[head & ring->cq.ring_mask];
        if (cqe->user_data == TIMER_TAG) {
            u->pending--;
            u->timer_armed = false;
            continue;
        }
        struct uio *x = (struct uio *)(uintptr_t)(cqe->user_data & ~OP_MASK);
        unsigned op = (unsigned)(cqe->user_data & OP_MASK);
        bool final = !(cqe->flags & IORING_CQE_F_MORE);
        if (final)
            u->pending--;
        if (op == OP_CANCEL) {
            uio_put(u, x);
            continue;
        }
        if (op == OP_SEND) {
            if (cqe->flags & IORING_CQE_F_NOTIF) {
                /* The kernel let go of a zero-copy send's pages: now it is
                 * done (REPORT_USAGE: whether it copied them after all). */
                if ((uint32_t)cqe->res & IORING_NOTIF_USAGE_ZC_COPIED)
                    STAT_INC(u->stats, uring_zc_copied);
                x->zc_notif = false;
                n += on_send(u, x, x->zc_res, &ev[n]);
            } else if (cqe->flags & IORING_CQE_F_MORE) {
                x->zc_notif = true;   /* its result; the notification follows */
                x->zc_res = cqe->res;
            } else if (x->zc_sent && cqe->res == -EINVAL && u->zc) {
                /* A kernel without REPORT_USAGE (6.1): plain sends from now. */
                u->zc = false;
                send_tx(u, x);
            } else {
                n += on_send(u, x, cqe->res, &ev[n]);
            }
            continue;
        }
        bool got = false;
        switch (x->kind) {
        case UK_CONN:
            got = on_recv(u, x, cqe, &ev[n]);
            break;
        case UK_LISTEN:
            got = on_accept(x, cqe->res, &ev[n]);
            break;
        case UK_DOORBELL:
            on_doorbell(x, cqe->res);
            break;
        default:
            if (x->src && cqe->res > 0) {
                ev[n] = (struct revent){ .src = x->src, .kind = REV_READY,
                    .events = EV_READ | ((cqe->res & (POLLERR | POLLHUP)) ? EV_ERROR : 0) };
                got = true;
            }
            break;
        }
        n += got;
        if (final) {
            x->armed = false;
            x->cancelling = false;
            if (x->src && x->want)
                queue_rearm(u, x);
            uio_put(u, x);   /* the request's own reference */
        }
    }
    io_uring_smp_store_release(ring->cq.khead, head);
    run_rearms(u);
    return n;
}

/* Everything but the usual wake-up: the ring's first wait (enable it,
 * register the files), arming the idle timer, a wait with something to
 * submit or a timeout under a second, a poll. */
static __attribute__((noinline)) int wait_slow(struct reactor *r, struct revent *ev, int max,
                                               int timeout_ms)
{
    struct uring *u = r->uring;
    held_return(u);
    if (!u->enabled) {
        int rc = io_uring_register(u->ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0);
        if (rc < 0) {
            log_err("io_uring: cannot enable ring: %s", strerror(-rc));
            abort();
        }
        u->enabled = true;
        u->stats = r->stats;
        /* Registered files, one slot per possible fd (capped): the
         * worker's thread registers them, as a single-issuer ring asks. */
        struct rlimit rl;
        unsigned want = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < URING_FILES_MAX
                      ? (unsigned)rl.rlim_cur : URING_FILES_MAX;
        if (io_uring_register_files_sparse(&u->ring, want) == 0)
            u->nfiles = want;
    }
    /* One io_uring_enter: submits this iteration's sends and re-arms, runs
     * deferred completions, and sleeps only if there are none. The loop's
     * usual one-second wait is a timeout request kept outstanding, so the
     * enter is a plain one; liburing's wait-with-timeout costs about a
     * hundred more instructions on every sleep. Shorter timeouts (a
     * listener's back-off) take that path. */
    if (timeout_ms >= 1000 && io_uring_cq_ready(&u->ring) == 0) {
        if (!u->timer_armed) {
            struct io_uring_sqe *s = sqe_get(u);
            u->timer_ts = (struct __kernel_timespec){ .tv_sec = timeout_ms / 1000 };
            io_uring_prep_timeout(s, &u->timer_ts, 0, 0);
            io_uring_sqe_set_data64(s, TIMER_TAG);
            u->timer_armed = true;
            u->pending++;
        }
        io_uring_submit_and_wait(&u->ring, 1);
    } else if (timeout_ms != 0 && io_uring_cq_ready(&u->ring) == 0) {
        struct __kernel_timespec ts = {
            .tv_sec = timeout_ms / 1000, .tv_nsec = (long long)(timeout_ms % 1000) * 1000000,
        };
        struct io_uring_cqe *cqe;
        io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, &ts, NULL);
    } else {
        io_uring_submit_and_get_events(&u->ring);
    }
    return reap(u, ev, 0, max, *u->ring.cq.khead);
}

/* io_uring_enter(fd, 0, 1, GETEVENTS): its result is not needed (the CQ
 * says what happened; EINTR is a wake-up like any other), so errno is left
 * alone and nothing is called, unlike sys_call6(). */
static inline void ring_enter_getevents(int fd)
{
#if defined(__x86_64__) && defined(__linux__)
    long ret;
    register long r10 __asm__("r10") = IORING_ENTER_GETEVENTS;
    register long r8 __asm__("r8") = 0;
    register long r9 __asm__("r9") = 0;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"((long)__NR_io_uring_enter), "D"((long)fd), "S"(0L), "d"(1L),
                       "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    (void)ret;
#else
    sys_call6(__NR_io_uring_enter, fd, 0, 1, IORING_ENTER_GETEVENTS, 0, 0);
#endif
}

/* The completions of the usual wake-up: bytes received on a connection
 * whose multishot receive goes on, taken here as on_recv() would (the
 * caller reads them in place; the buffer goes back at a later wait,
 * held_return). At the first other one, reap() takes over. Every completion taken
 * here is one event and one more held buffer. */
static inline __attribute__((always_inline)) int reap_fast(struct uring *u, struct revent *ev, int max)
{
    struct io_uring *ring = &u->ring;
    unsigned head = *ring->cq.khead;
    unsigned tail = io_uring_smp_load_acquire(ring->cq.ktail);
    int n = 0;
    for (; head != tail && n < max; head++, n++) {
        /* 16-byte CQEs: the ring is never set up with IORING_SETUP_CQE32. */
        const struct io_uring_cqe *cqe = &ring->cq.cqes[head & ring->cq.ring_mask];
        uint64_t ud = cqe->user_data;
        struct uio *x = (struct uio *)(uintptr_t)ud;   /* OP_RECV is 0 */
        uint32_t flags = cqe->flags;
        int res = cqe->res;
        /* A receive (OP_RECV is 0) with a buffer and more to come: the
         * three tests in one, the flags being the two low bits. */
        _Static_assert(OP_MASK == (IORING_CQE_F_BUFFER | IORING_CQE_F_MORE), "flag bits");
        if (((ud | ~(uint64_t)flags) & OP_MASK) != 0 || res <= 0 || !x->src)
            return reap(u, ev, n, max, head);
        unsigned bid = flags >> IORING_CQE_BUFFER_SHIFT;
        u->held[u->nheld] = (uint16_t)bid;
        u->nheld++;
        ev[n] = (struct revent){ .src = x->src, .kind = REV_DATA,
                                 .data = u->bufs.mem + (size_t)bid * URING_BUF_SIZE,
                                 .len = (size_t)res };
    }
    io_uring_smp_store_release(ring->cq.khead, head);
    return n;
}

/* The usual wake-up is kept short, as one small function that calls nothing
 * (both slow paths are tail calls): the held buffers back once HELD_BATCH
 * have collected, the enter with nothing to submit, then completions that are bytes received on a connection
 * whose multishot receive goes on. Anything else goes to reap(). */
int uring_reactor_wait(struct reactor *r, struct revent *ev, int max, int timeout_ms)
{
    struct uring *u = r->uring;
    struct io_uring *ring = &u->ring;
    /* With the idle timer outstanding (so the ring is enabled), a wait of
     * a second or more and nothing to submit (the usual wake-up: receives
     * are multishot, the reply went out with a plain send), the enter is
     * the system call itself, without liburing's submission bookkeeping
     * (the ring's own fd: it is not registered). Completions already
     * waiting (a batch larger than `max`) need no test: the kernel returns
     * at once when the CQ holds min_complete of them. */
    /* Nothing to submit: every SQE handed out (sqe_tail) has been consumed
     * by the kernel (khead <= ktail <= sqe_tail, so one test covers SQEs not
     * yet flushed and those a short submission left). */
    if (timeout_ms < 1000 || !u->timer_armed ||
        io_uring_smp_load_acquire(ring->sq.khead) != ring->sq.sqe_tail)
        return wait_slow(r, ev, max, timeout_ms);
    if (u->nheld >= HELD_BATCH)
        held_return(u);
    ring_enter_getevents(ring->ring_fd);
    return reap_fast(u, ev, max);
}

#endif
