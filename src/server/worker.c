/*
 * worker.c — worker threads: set-up of rings, stores and sockets (main
 * thread, before start), the event loop (each worker's own thread), message
 * passing between workers and the doorbell protocol:
 *
 *   sleeper: sleeping = 1; fence; if any inbound ring non-empty: don't sleep
 *   sender:  push to ring;  fence; if target sleeping: write its eventfd
 *
 * Either the sleeper sees the message or the sender sees the sleeper, so a
 * message is never stranded. Each iteration drains at most a budget of
 * messages per peer; what is left keeps the next wait from sleeping.
 *
 * The network side of each worker (net/loop.h) asks the runtime for what
 * only it can do through `worker_host`: routing to other workers, stats,
 * store walks, watch, flush_all.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include "util/clock.h"
#include "util/hash.h"
#include "util/lat_hist.h"
#include "util/topk.h"
#include "server/introspect.h"
#include "util/log.h"
#include "proto/exec.h"
#include "proto/prefix_stats.h"
#include "server/watch.h"
#include "server/stats_report.h"
#include "server/warm.h"
#include "server/worker.h"
#include "util/sys.h"
#include "net/accept_limit.h"
#include "net/conn.h"
#include "net/listener.h"
#include "net/udp.h"

struct worker *workers;
unsigned nworkers;
struct proto_conf proto_conf;
_Atomic int server_stopping;
unsigned ring_capacity;
size_t rings_bytes;

static struct ring *rings;   /* nworkers * nworkers; [from * n + to] */
/* Test hook (tests/integration/test_observability.py): a worker that served
 * requests for other workers in an iteration busy-waits this long before
 * sending the replies, a known delay on the forwarded path. Set once from
 * PERCORE_TEST_STALL_US before workers start; 0 = never. */
static unsigned test_stall_us;
static __thread struct worker *current_worker;

/* ---- messaging ---------------------------------------------------------- */

void worker_send(struct worker *w, unsigned to, struct msg *m)
{
    if (w->ovf_head[to] || !ring_push(w->out[to], m)) {
        msgq_push(&w->ovf_head[to], &w->ovf_tail[to], m);
        w->ovf_pending = true;
        w->ovf_len++;
        STAT_INC(&w->stats, ring_full);
        if (w->ovf_len > WORKER_OVF_MAX)
            w->loop.route_paused = true;   /* its connections stop parsing (conn.c) */
    }
    w->bell |= 1ull << to;
}

/* A reply to a request served here waits until this iteration's store
 * stats are published (once, after the ring drain): a client that saw its
 * reply and then asks for stats on any worker sees what it changed. */
static void reply_later(struct worker *w, unsigned to, struct msg *m)
{
    msgq_push(&w->rep_head[to], &w->rep_tail[to], m);
    w->rep_pending = true;
}

static void publish_stats_now(struct worker *w, uint64_t gen);

/* Published again only when the store's counters moved (and once a second
 * regardless): most loop iterations of a read-mostly load change nothing. */
static inline void publish_stats(struct worker *w)
{
    /* Nothing reached the store in a way that can change its figures (get
     * hits do not) and the second is the same: nothing to publish. */
    uint64_t gen = *w->store_gen + w->store_events;
    if (gen != w->pub_gen || w->now != w->pub_now)
        publish_stats_now(w, gen);
}

static void send_replies(struct worker *w)
{
    if (!w->rep_pending)
        return;
    if (test_stall_us) {
        uint64_t until = clock_mono_us() + test_stall_us;
        while (clock_mono_us() < until)
            ;
    }
    publish_stats(w);
    for (unsigned p = 0; p < nworkers; p++) {
        struct msg *m = w->rep_head[p];
        w->rep_head[p] = w->rep_tail[p] = NULL;
        while (m) {
            struct msg *next = m->qnext;   /* m is the peer's once sent */
            worker_send(w, p, m);
            m = next;
        }
    }
    w->rep_pending = false;
}

static void flush_overflow(struct worker *w)
{
    if (!w->ovf_pending)
        return;
    bool left = false;
    for (unsigned p = 0; p < nworkers; p++) {
        while (w->ovf_head[p]) {
            struct msg *m = w->ovf_head[p];
            struct msg *next = m->qnext;   /* m is the peer's once pushed */
            if (!ring_push(w->out[p], m)) {
                left = true;
                break;
            }
            w->ovf_head[p] = next;
            if (!w->ovf_head[p])
                w->ovf_tail[p] = NULL;
            w->ovf_len--;
            w->bell |= 1ull << p;
        }
    }
    w->ovf_pending = left;
    /* Connections held back while the overflow was over its cap (conn.c)
     * have nothing else that would wake them. */
    if (w->loop.route_paused && w->ovf_len <= WORKER_OVF_MAX / 2) {
        w->loop.route_paused = false;
        conn_wake_stalled(&w->loop);
    }
}

static void ring_bells(struct worker *w)
{
    if (!w->bell)
        return;
    atomic_thread_fence(memory_order_seq_cst);
    for (unsigned p = 0; p < nworkers; p++) {
        if (!(w->bell & (1ull << p)))
            continue;
        if (atomic_load_explicit(&workers[p].sleeping, memory_order_relaxed)) {
            uint64_t one = 1;
            ssize_t n = sys_write(workers[p].loop.doorbell.fd, &one, sizeof one);
            (void)n;
            STAT_INC(&w->stats, doorbells);
        }
    }
    w->bell = 0;
}

static void publish_classes(struct worker *w);

/* A copy of `proto` (kind and payload) to every other worker; returns how
 * many were sent. */
static unsigned broadcast(struct worker *w, const struct msg *proto)
{
    unsigned n = 0;
    for (unsigned p = 0; p < nworkers; p++) {
        if (p == w->id)
            continue;
        struct msg *m = calloc(1, sizeof *m);
        if (!m)
            abort();
        m->kind = proto->kind;
        m->u = proto->u;
        m->from = (uint8_t)w->id;
        worker_send(w, p, m);
        n++;
    }
    return n;
}

/* `at` is memcached's oldest_live: the last relative second whose writes
 * are flushed (0 = cancel a pending delayed flush, flush nothing). Once it
 * is reached everything goes, and writes during that second go too. `now`:
 * the origin found it reached already (this worker's clock may lag by a
 * tick; the origin's verdict keeps every shard's flush immediate). */
static void apply_flush(struct worker *w, uint32_t at, bool now)
{
    w->store_events++;
    if (at == 0) {
        w->flush_at = 0;
    } else if (now || at <= w->now) {
        store_flush(w->store);
        store_flush_hold(w->store, at);
        w->flush_at = 0;
    } else {
        store_flush_hold(w->store, 0);
        w->flush_at = at;
    }
}

/* memcached 1.6.18's process_flush_all_command: oldest_live is
 * realtime(delay) - 1 with CAS (a write later in the same second has a
 * newer CAS and survives), realtime(delay) with -C (the whole second is
 * flushed); no delay (or delay <= 0) means "now". realtime() of an
 * absolute time before the process started is 1: that flushes nothing,
 * but still replaces (so cancels) a pending delayed flush. */
static uint32_t flush_target(int64_t delay, uint32_t now)
{
    uint32_t at;
    if (delay <= 0)
        at = now;
    else if (delay > EXPTIME_REL_MAX && delay <= (int64_t)clock_started())
        return 0;
    else
        at = clock_exptime(delay, now);
    return proto_conf.use_cas ? at - 1 : at;
}

/* A barrier (a connection's reply slot, its reply already written) is
 * released when the last worker has done its part: until then some worker
 * could still serve an item the client believes flushed, or count a
 * request that its reset then wipes. */
static void barrier_done(struct worker *w, struct msg *b)
{
    if (--b->u.wait.waiting > 0)
        return;
    if (b->kind == MSG_UDP_BARRIER) {
        b->u.udp = b->u.wait.udp;
        udp_reply_arrived(&w->loop, b);
    } else {
        conn_reply_arrived(b);
    }
}

/* `proto` (MSG_FLUSH or MSG_STATS_RESET) to every other worker, each copy
 * coming home to release `barrier` (NULL: none come home); then `own`, this
 * worker's part, and its share of the barrier. */
static void broadcast_barrier(struct worker *w, struct msg *proto, struct msg *barrier,
                              void (*own)(struct worker *w, const struct msg *proto))
{
    proto->u.bcast.barrier = barrier;
    if (barrier)
        barrier->u.wait.waiting = 1;   /* this worker's own, below */
    unsigned sent = broadcast(w, proto);
    if (barrier)
        barrier->u.wait.waiting += sent;
    own(w, proto);
    if (barrier)
        barrier_done(w, barrier);
}

static void flush_own(struct worker *w, const struct msg *proto)
{
    apply_flush(w, proto->u.bcast.at, false);
}

static void flush_all(struct worker *w, int64_t delay, struct msg *barrier)
{
    uint32_t at = flush_target(delay, w->now);
    STAT_INC(&w->stats, cmd_flush);
    struct msg proto = { .kind = MSG_FLUSH };
    proto.u.bcast.at = at;
    proto.u.bcast.now = at != 0 && at <= w->now;
    broadcast_barrier(w, &proto, barrier, flush_own);
}

static void reset_own_stats(struct worker *w)
{
    /* Field by field (other workers read these while `stats` runs), and
     * gauges survive a reset, as in memcached. */
#define ZERO(f) \
    if (&w->stats.f != &w->stats.curr_connections) \
        atomic_store_explicit(&w->stats.f, 0, memory_order_relaxed);
    WORKER_COUNTERS(ZERO)
    WORKER_OWN_COUNTERS(ZERO)
#undef ZERO
    atomic_store_explicit(&w->loop_max_ticks, 0, memory_order_relaxed);
    store_reset_class_stats(w->store);
    publish_classes(w);
}

static void reset_own(struct worker *w, const struct msg *proto)
{
    (void)proto;
    reset_own_stats(w);
}

void worker_stats_reset(struct worker *w, struct msg *barrier)
{
    /* The prefix tables are locked (prefix_stats.h): clear them all here, so
     * a `stats detail dump` right after the reset sees none of the old. */
    for (unsigned p = 0; p < nworkers; p++)
        pfx_clear(workers[p].pfx);
    broadcast_barrier(w, &(struct msg){ .kind = MSG_STATS_RESET }, barrier, reset_own);
}

_Atomic size_t mem_limit_total;

static void memlimit_apply(struct worker *w, uint64_t bytes)
{
    store_set_limit(w->store, (size_t)bytes);
    w->store_events++;
}

static void handle_msg(struct worker *w, unsigned from, struct msg *m)
{
    switch (m->kind) {
    case MSG_REQ:
    case MSG_UDP:
        if (m->from == w->id) {
            if (m->lat_t0)
                lat_record(w->loop.lat, m->lat_class, LAT_FORWARDED, lat_ticks() - m->lat_t0);
            if (m->kind == MSG_REQ)
                conn_reply_arrived(m);
            else
                udp_reply_arrived(&w->loop, m);
            return;
        }
        STAT_INC(&w->stats, req_remote_served);
        if (w->loop.hot)
            topk_note(w->loop.hot, m->req.key, m->req.klen);
        /* A TCP reply may send from this store's memory, pinned here until
         * the origin's MSG_UNPIN comes back; a datagram is always copied. */
        w->x.by_ref = m->kind == MSG_REQ;
        proto_exec(&w->x, &m->req, &m->reply);
        reply_later(w, from, m);
        return;
    case MSG_INTRO:
        intro_arrived(w, m);
        return;
    case MSG_WATCH:
        watch_arrived(w, m);
        return;
    case MSG_FLUSH:
    case MSG_STATS_RESET:
        if (m->from == w->id) {   /* a peer has done its part */
            struct msg *b = m->u.bcast.barrier;
            free(m);
            barrier_done(w, b);
            return;
        }
        if (m->kind == MSG_FLUSH)
            apply_flush(w, m->u.bcast.at, m->u.bcast.now);
        else
            reset_own_stats(w);
        if (m->u.bcast.barrier)
            worker_send(w, from, m);
        else
            free(m);
        return;
    case MSG_MEMLIMIT:
        memlimit_apply(w, m->u.limit);
        free(m);
        return;
    case MSG_UNPIN:
        store_unpin(w->store, m->u.pin);
        w->store_events++;
        free(m);
        return;
    default:
        free(m);
        return;
    }
}

/* At most `budget` messages from each peer per call, so a busy peer cannot
 * starve this worker's own sockets; returns true when some were left (the
 * loop then polls instead of sleeping). */
#define RING_DRAIN_BUDGET 1024   /* messages per peer per loop iteration */

static bool drain_rings(struct worker *w, unsigned budget)
{
    if (nworkers == 1)
        return false;
    bool more = false;
    for (unsigned p = 0; p < nworkers; p++) {
        if (p == w->id)
            continue;
        struct msg *m;
        unsigned n = 0;
        while (n < budget && (m = ring_pop(w->in[p])) != NULL) {
            handle_msg(w, p, m);
            n++;
        }
        if (n == budget && !ring_empty(w->in[p]))
            more = true;
    }
    return more;
}

static bool rings_empty(struct worker *w)
{
    if (nworkers == 1)
        return true;
    for (unsigned p = 0; p < nworkers; p++)
        if (p != w->id && !ring_empty(w->in[p]))
            return false;
    return true;
}

static __attribute__((noinline)) void publish_stats_now(struct worker *w, uint64_t gen)
{
    w->pub_gen = gen;
    w->pub_now = w->now;
    store_publish_stats(w->store, w->store_pub);
}

static void publish_classes(struct worker *w)
{
    if (pthread_mutex_trylock(&w->cls_lock) != 0)
        return;   /* a reader is copying: next second */
    w->ncls_pub = store_get_class_stats(w->store, w->cls_pub, STORE_CLASSES_MAX);
    pthread_mutex_unlock(&w->cls_lock);
}

unsigned worker_class_stats(struct worker *w, struct store_class_stats *out, unsigned max)
{
    if (w == current_worker)
        return store_get_class_stats(w->store, out, max);
    pthread_mutex_lock(&w->cls_lock);
    unsigned n = w->ncls_pub < max ? w->ncls_pub : max;
    memcpy(out, w->cls_pub, n * sizeof *out);
    pthread_mutex_unlock(&w->cls_lock);
    return n;
}

void worker_store_stats(struct worker *w, struct store_stats *out)
{
    /* A worker reads its own store directly: what it published may predate
     * requests it executed earlier in this loop iteration. */
    if (w == current_worker) {
        store_get_stats(w->store, out);
        return;
    }
    uint64_t *v = (uint64_t *)out;
    for (size_t i = 0; i < STORE_STATS_WORDS; i++)
        v[i] = atomic_load_explicit(&w->store_pub[i], memory_order_relaxed);
}

/* ---- the loop ----------------------------------------------------------- */

/* buf_unpin: a reply that referenced a store's memory is sent or dropped.
 * The pin is the owner's; another worker's is released by message. After
 * the workers stopped (teardown on the main thread) the stores go whole. */
static void worker_unpin(uint16_t owner, uint32_t pin)
{
    struct worker *w = current_worker;
    if (!w)
        return;
    if (owner == w->id) {
        store_unpin(w->store, pin);
        w->store_events++;
        return;
    }
    struct msg *m = calloc(1, sizeof *m);
    if (!m)
        abort();
    m->kind = MSG_UNPIN;
    m->from = (uint8_t)w->id;
    m->u.pin = pin;
    worker_send(w, owner, m);
}

static void worker_tick(struct worker *w, uint32_t now)
{
    w->now = now;
    w->loop.now = w->now;
    w->x.now = w->now;
    store_clock(w->store, w->now);
    if (w->flush_at && w->now >= w->flush_at)
        apply_flush(w, w->flush_at, true);
}

/* The second hand, read from the monotonic clock only when the TSC says a
 * second may have turned (t: lat_ticks() now): the deadline is set 1% short
 * of the next turn, so a calibration error reads the clock a few times more,
 * never a tick late; a TSC that went backwards (a thread moved to a CPU
 * whose counter lags) reads it too. Without an invariant TSC the clock is
 * read every iteration, as lat_ticks() then is that clock. */
static void worker_clock(struct worker *w, uint64_t t)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    worker_tick(w, clock_rel_at(&ts));
    w->clock_at = t;
    w->clock_next = lat_use_tsc ? t + (uint64_t)((double)clock_ns_to_next(&ts) * 0.99 / lat_tick_ns())
                                : 0;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct loop *l = &w->loop;
    struct revent ev[256];
    current_worker = w;
    uint32_t last_tick = 0;
    bool more_maint = false;
    /* Idle-time room-making: after writes took the last free segment the
     * loop polls and evicts while idle, so the next segment a write needs
     * is ready (a write that has to evict walks a whole segment first).
     * Stuck (nothing evictable, e.g. all pinned): retried at the next tick. */
    bool maint_stuck = false;
    uint64_t room_gen = 0;

    if (l->cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(l->cpu, &set);
        if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0)
            log_warn("worker %u: cannot pin to CPU %d", w->id, l->cpu);
    }
    char name[16];
    snprintf(name, sizeof name, "percore-w%u", w->id);
    pthread_setname_np(pthread_self(), name);
    w->store_gen = store_stats_gen_at(w->store);
    publish_stats(w);   /* a store restored at start-up (-e) is not empty */

    while (!atomic_load_explicit(&server_stopping, memory_order_relaxed)) {
        l->iter++;
        int timeout = (w->ovf_pending || more_maint || l->resume || w->intro_head) ? 0 : 1000;
        if (l->accept_paused)
            timeout = accept_limit_tick(l, timeout);
        if (timeout) {
            atomic_store_explicit(&w->sleeping, 1, memory_order_relaxed);
            atomic_thread_fence(memory_order_seq_cst);
            if (!rings_empty(w))
                timeout = 0;
        }
        int n = reactor_wait(&l->reactor, ev, 256, timeout);
        atomic_store_explicit(&w->sleeping, 0, memory_order_relaxed);
        uint64_t t0 = lat_ticks();
        if (t0 >= w->clock_next || t0 < w->clock_at)
            worker_clock(w, t0);
        else if (w->flush_at && w->now >= w->flush_at)
            apply_flush(w, w->flush_at, true);
        if (l->resume)
            conn_resume_all(l);
        loop_dispatch(l, ev, n);
        /* Replies and requests from other workers; replies make their
         * connections dirty, so drain before serving. What the budget
         * leaves keeps the next wait from sleeping (rings_empty above). */
        drain_rings(w, RING_DRAIN_BUDGET);
        send_replies(w);
        if (w->intro_head || w->intro_parked)
            intro_run(w);
        loop_serve(l);
        if (w->watch && watch_flush(w))
            loop_serve(l);     /* watch lines for this worker's watchers */
        if (w->intro_parked)
            intro_unpark(w);   /* output just written may have made room */
        flush_overflow(w);
        ring_bells(w);

        bool tick = w->now != last_tick;
        if (tick) {
            last_tick = w->now;
            conn_idle_sweep(l);
            publish_classes(w);
        }
        if (tick || (more_maint && n == 0)) {
            more_maint = store_maintain(w->store, 64);
            maint_stuck = !more_maint && store_wants_room(w->store);
            w->store_events++;
        } else if (!more_maint && !maint_stuck && *w->store_gen != room_gen) {
            room_gen = *w->store_gen;   /* a write happened */
            more_maint = store_wants_room(w->store);
        }
        publish_stats(w);   /* once per iteration */
        /* The work of one iteration, waiting excluded (the kernel's share of
         * io_uring sends runs inside the next wait, so it is not here). */
        uint64_t dt = lat_ticks() - t0;
        if (dt > atomic_load_explicit(&w->loop_max_ticks, memory_order_relaxed))
            atomic_store_explicit(&w->loop_max_ticks, dt, memory_order_relaxed);
    }
    /* Shutting down: answer what we can, then close. */
    conn_resume_clear(l);
    for (int i = 0; i < 16 && drain_rings(w, RING_DRAIN_BUDGET); i++)
        send_replies(w);
    send_replies(w);
    loop_serve(l);
    conn_close_all(l);
    loop_serve(l);
    reactor_quiesce(&l->reactor);
    msg_pool_drain();
    return NULL;
}

/* ---- what the network side asks of the runtime (net/loop.h) ------------- */

static struct worker *of(struct loop *l)
{
    return l->owner;
}

static void host_route(struct loop *l, unsigned owner, struct msg *m)
{
    worker_send(of(l), owner, m);
}

static void host_stats(struct loop *l, struct msg *(*barrier)(void *sess), void *sess,
                       const char *arg, size_t len, struct stats_out *so)
{
    stats_report(of(l), barrier, sess, arg, len, so);
}

static struct msg *host_dump_new(struct loop *l, const struct dump_req *d)
{
    return intro_msg_new(d, l->id);
}

static void host_dump_start(struct loop *l, struct msg *m)
{
    intro_start(of(l), m);
}

static void host_watch_start(struct loop *l, struct conn *c, unsigned flags)
{
    watch_start(of(l), c, flags);
}

static void host_watch_stop(struct loop *l, struct conn *c)
{
    watch_stop(of(l), c);
}

static void host_conn_event(struct loop *l, int fd, bool is_new, const char *reason)
{
    if (watch_active())
        watch_conn_event(of(l), fd, is_new, reason);
}

static void host_flush_all(struct loop *l, int64_t delay, struct msg *barrier)
{
    flush_all(of(l), delay, barrier);
}

/* cache_memlimit: the total for stats at once, each store's share by
 * message; a store that shrinks evicts in its maintenance slices. */
static void host_memlimit(struct loop *l, uint64_t bytes)
{
    struct worker *w = of(l);
    atomic_store_explicit(&mem_limit_total, (size_t)bytes, memory_order_relaxed);
    struct msg proto = { .kind = MSG_MEMLIMIT };
    proto.u.limit = bytes / nworkers;
    broadcast(w, &proto);
    memlimit_apply(w, proto.u.limit);
}

static const struct loop_host worker_host = {
    .route = host_route, .stats = host_stats, .dump_new = host_dump_new,
    .dump_start = host_dump_start, .watch_start = host_watch_start,
    .watch_stop = host_watch_stop, .conn_event = host_conn_event,
    .flush_all = host_flush_all, .memlimit = host_memlimit,
};

/* ---- set-up and tear-down (main thread) --------------------------------- */

/* The socket file of -s is ours to remove at exit once we created it. */
static bool unix_listening;

/* -l addr:port names its own port; a bare address uses -p. -1: any free
 * port (-p -1, -l addr:0), chosen by the kernel for worker 0's socket. */
static int listen_port(int a)
{
    return settings.listen_port[a] ? settings.listen_port[a] : settings.port;
}

/* Worker w's listener for address a (its a-th TCP socket); the other
 * workers join the port worker 0's got, so one port serves them all. */
static int open_tcp(struct worker *w, int a)
{
    int port = listen_port(a), family;
    if (port < 0 && w->id > 0)   /* no -s with TCP: worker 0's TCP sockets come first */
        port = listener_port(workers[0].loop.listen[a].fd, &family);
    return listener_open(settings.listen[a], port < 0 ? 0 : port, settings.backlog, false,
                         w->loop.cpu);
}

int workers_setup(void)
{
    nworkers = (unsigned)settings.nworkers;
    workers = calloc(nworkers, sizeof *workers);
    rings = calloc((size_t)nworkers * nworkers, sizeof *rings);
    if (!workers || !rings)
        return -1;
    /* Teardown may follow a set-up that failed half way: mark what is open. */
    for (unsigned i = 0; i < nworkers; i++) {
        workers[i].loop.reactor.fd = -1;
        workers[i].loop.doorbell.fd = -1;
    }
    slots_init(nworkers);
    buf_unpin = worker_unpin;
    lat_clock_setup();
    const char *stall = getenv("PERCORE_TEST_STALL_US");
    test_stall_us = stall ? (unsigned)strtoul(stall, NULL, 10) : 0;
    proto_conf = (struct proto_conf){
        .item_max = settings.item_max, .use_cas = settings.use_cas,
        .flush_ok = settings.flush_ok, .shutdown_ok = settings.shutdown_ok,
        .max_get_keys = settings.max_get_keys,
        .dump_ok = !settings.dump_disabled,     /* -X */
        .watch_ok = !settings.watch_disabled,   /* -W */
        .auth_ascii = settings.auth_file != NULL,   /* -Y (proto/auth.h) */
        .auth_sasl = settings.sasl && !settings.auth_file,   /* -S; -Y wins, as in memcached */
        .mem_cap = settings.maxbytes,
    };
    mem_limit_total = settings.maxbytes;
    if (settings.detail_enabled)
        pfx_enable(true);                       /* -D */
    /* About 16k slots into each worker in all (4096 per ring at most, 256
     * at least): with many workers, n * (n - 1) rings of 4096 would take
     * megabytes of slot arrays that a full ring rarely needs. */
    ring_capacity = 4096;
    while (nworkers > 1 && ring_capacity > 256 && ring_capacity * (nworkers - 1) > 16384)
        ring_capacity /= 2;
    rings_bytes = (size_t)nworkers * nworkers * sizeof *rings;
    for (unsigned i = 0; i < nworkers; i++)
        for (unsigned j = 0; j < nworkers; j++) {
            if (i == j)
                continue;
            if (ring_init(&rings[i * nworkers + j], ring_capacity) < 0)
                return -1;
            rings_bytes += ring_capacity * sizeof(void *);
        }

    for (int a = 0; settings.port && a < settings.nlisten; a++)
        if (listen_port(a) > 0 && listener_check_free(settings.listen[a], listen_port(a), false) < 0)
            return SETUP_SOCKETS;
    /* AF_UNIX has no SO_REUSEPORT: one listening socket, and every worker
     * watches its own dup() of it (each reactor then owns a distinct fd,
     * closed independently). Whichever worker's accept runs first takes a
     * connection (a non-blocking accept4 elsewhere sees EAGAIN; io_uring
     * hands each connection to one multishot accept), so local clients
     * spread over workers as TCP clients do, instead of all landing on
     * worker 0; the cost is a spurious wake-up of idle workers per accept,
     * negligible for the long-lived connections local clients keep. */
    int unix_fd = -1;
    if (settings.unix_path) {
        unix_fd = listener_open_unix(settings.unix_path, settings.unix_mask, settings.backlog);
        if (unix_fd < 0)
            return SETUP_SOCKETS;
        unix_listening = true;
    }

    for (unsigned i = 0; i < nworkers; i++) {
        struct worker *w = &workers[i];
        w->id = i;
        w->loop.id = i;
        w->loop.solo = nworkers == 1;
        w->loop.stats = &w->stats;
        w->loop.x = &w->x;
        if (!settings.latency_off) {
            w->loop.lat = calloc(1, sizeof *w->loop.lat);
            if (!w->loop.lat)
                return -1;
        }
        if (settings.hotkeys_interval) {
            w->loop.hot = malloc(sizeof *w->loop.hot);
            if (!w->loop.hot ||
                topk_init(w->loop.hot, 0x9e3779b9u * (i + 1), settings.hotkeys_interval) < 0)
                return -1;
        }
        w->loop.conf = &proto_conf;
        w->loop.host = &worker_host;
        w->loop.owner = w;
        w->loop.cpu = settings.ncpus > 0 ? settings.cpus[i % (unsigned)settings.ncpus] : -1;
        for (unsigned p = 0; p < nworkers; p++) {
            if (p == i)
                continue;
            w->in[p] = &rings[p * nworkers + i];
            w->out[p] = &rings[i * nworkers + p];
        }
        struct store_config sc = {
            .mem_limit = settings.maxbytes / nworkers,
            .item_max = settings.item_max + KEY_MAX_LENGTH + 64,
            .seg_size = settings.seg_size,
            .shard_id = i,
            .use_cas = settings.use_cas,
            .huge_pages = settings.large_pages,
            .no_evict = settings.no_evict,
        };
        if (i == 0 && sc.mem_limit > store_mem_max())
            log_warn("-m %zu MiB over %u workers is more than one worker's store can use "
                     "(%zu MiB each): the rest stays unused; raise -t to use it",
                     settings.maxbytes >> 20, nworkers, store_mem_max() >> 20);
        warm_store_config(&sc, i);   /* -e: the segments' file */
        w->store = store_create(&sc);
        w->cls_pub = calloc(STORE_CLASSES_MAX, sizeof *w->cls_pub);
        pthread_mutex_init(&w->cls_lock, NULL);
        if (!w->store || !w->cls_pub) {
            log_err("worker %u: cannot create store (%zu bytes)", i, sc.mem_limit);
            return -1;
        }
        w->now = w->loop.now = clock_rel_now();
        store_clock(w->store, w->now);
        w->pfx = pfx_create();
        if (!w->pfx)
            return -1;
        w->loop.out_max = settings.worker_out_max;
        if (w->loop.out_max == 0) {
            /* An eighth of the worker's share of -m, at least 4 MiB. */
            w->loop.out_max = settings.maxbytes / nworkers / 8;
            if (w->loop.out_max < (4u << 20))
                w->loop.out_max = 4u << 20;
        }
        w->x = (struct exec_ctx){ .store = w->store, .stats = &w->stats, .now = w->now,
                                  .self = (uint16_t)i, .pfx = w->pfx };
        w->loop.reactor.stats = &w->stats;
        if (reactor_init(&w->loop.reactor, settings.io == IO_POLL) < 0)
            return -1;
        if (accept_limit_setup(&w->loop) < 0)
            return -1;
        w->loop.doorbell.type = SRC_DOORBELL;
        w->loop.doorbell.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (w->loop.doorbell.fd < 0 || reactor_add(&w->loop.reactor, w->loop.doorbell.fd, EV_READ, &w->loop.doorbell) < 0)
            return -1;
        if (unix_fd >= 0) {
            int fd = i == 0 ? unix_fd : fcntl(unix_fd, F_DUPFD_CLOEXEC, 0);
            if (fd < 0)
                return -1;
            w->loop.listen[w->loop.nlisten].type = SRC_LISTEN;
            w->loop.listen[w->loop.nlisten].fd = fd;
            if (reactor_add(&w->loop.reactor, fd, EV_READ, &w->loop.listen[w->loop.nlisten]) < 0)
                return -1;
            w->loop.nlisten++;
        }
        for (int a = 0; settings.port && a < settings.nlisten; a++) {
            int fd = open_tcp(w, a);
            if (fd < 0)
                return SETUP_SOCKETS;
            w->loop.listen[w->loop.nlisten].type = SRC_LISTEN;
            w->loop.listen[w->loop.nlisten].fd = fd;
            if (reactor_add(&w->loop.reactor, fd, EV_READ, &w->loop.listen[w->loop.nlisten]) < 0)
                return -1;
            w->loop.nlisten++;
        }
    }
    if (settings.udp_port != 0) {
        struct loop *loops[MAX_WORKERS];
        for (unsigned i = 0; i < nworkers; i++)
            loops[i] = &workers[i].loop;
        int rc = udp_setup(loops, nworkers);
        if (rc < 0)
            return rc == UDP_SETUP_SOCKETS ? SETUP_SOCKETS : -1;
    }
    return 0;
}

int workers_start(void)
{
    for (unsigned i = 0; i < nworkers; i++) {
        if (pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]) != 0) {
            log_err("cannot start worker %u", i);
            return -1;
        }
    }
    return 0;
}

void workers_stop(void)
{
    atomic_store(&server_stopping, 1);
    for (unsigned i = 0; i < nworkers; i++) {
        uint64_t one = 1;
        ssize_t n = write(workers[i].loop.doorbell.fd, &one, sizeof one);
        (void)n;
    }
    for (unsigned i = 0; i < nworkers; i++)
        pthread_join(workers[i].thread, NULL);
}

/* After all workers stopped: free messages still in rings or queues. */
static void free_stranded(struct msg *m)
{
    if ((m->kind == MSG_FLUSH || m->kind == MSG_STATS_RESET) && m->u.bcast.barrier) {
        struct msg *b = m->u.bcast.barrier;
        if (--b->u.wait.waiting == 0)
            free_stranded(b);
    } else if (m->kind == MSG_REQ || m->kind == MSG_INTRO || m->kind == MSG_BARRIER) {
        conn_release(m->conn);
    }
    buf_free(&m->reply);
    free(m);
}

void workers_teardown(void)
{
    if (!workers)
        return;
    for (unsigned i = 0; i < nworkers; i++) {
        struct worker *w = &workers[i];
        for (unsigned p = 0; p < nworkers; p++) {
            if (p == i || !w->in[p])
                continue;
            struct msg *m;
            while ((m = ring_pop(w->in[p])) != NULL)
                free_stranded(m);
            while ((m = w->ovf_head[p]) != NULL) {
                w->ovf_head[p] = m->qnext;
                free_stranded(m);
            }
        }
        intro_drop_pending(w, free_stranded);
    }
    for (unsigned i = 0; i < nworkers; i++) {
        struct worker *w = &workers[i];
        for (int a = 0; a < w->loop.nlisten; a++)
            close(w->loop.listen[a].fd);
        for (int a = 0; a < w->loop.nudp; a++)
            close(w->loop.udp[a].fd);
        if (w->loop.doorbell.fd >= 0)
            close(w->loop.doorbell.fd);
        accept_limit_teardown(&w->loop);
        if (w->loop.reactor.fd >= 0 || w->loop.reactor.uring)
            reactor_fini(&w->loop.reactor);
        if (w->store)
            store_destroy(w->store);
        pfx_destroy(w->pfx);
        free(w->loop.lat);
        if (w->loop.hot)
            topk_fini(w->loop.hot);
        free(w->loop.hot);
        watch_free(w);
        if (w->cls_pub)
            pthread_mutex_destroy(&w->cls_lock);
        free(w->cls_pub);
    }
    if (unix_listening) {
        unlink(settings.unix_path);
        unix_listening = false;
    }
    for (unsigned i = 0; i < nworkers * nworkers; i++)
        ring_free(&rings[i]);
    free(rings);
    free(workers);
    workers = NULL;
}
