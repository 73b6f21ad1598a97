/*
 * watch.c — memcached's `watch` streams (see watch.h). State: each worker's
 * struct watch_state, touched by that worker only; the watcher count and
 * the line counter (gid) are the only shared variables (atomics).
 *
 * Line formats are memcached 1.6.18's:
 *   ts=S.US gid=N type=item_get key=K status=found|not_found clsid=C cfd=F size=B
 *   ts=S.US gid=N type=item_store key=K status=stored|... cmd=set|... ttl=T clsid=C cfd=F size=B
 *   ts=S.US gid=N type=eviction key=K fetch=yes|no ttl=T la=A clsid=C
 *   ts=S.US gid=N type=conn_new rip=IP rport=P transport=tcp cfd=F
 *   ts=S.US gid=N type=conn_close rip=IP rport=P transport=tcp reason=normal|error|idle_timeout|shutdown cfd=F
 * with keys URI-encoded. A watcher that does not keep up loses lines; the
 * next delivery starts with "skipped=N", as memcached writes it.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include "server/watch.h"
#include "net/conn.h"

#define WATCH_PENDING_MAX (256 * 1024)   /* per watcher per worker per loop turn */

enum { WOP_ADD = 1, WOP_DEL, WOP_DATA };

struct watch_msg {
    uint8_t  op;
    uint64_t id;
    unsigned flags;
    uint64_t skipped;    /* WOP_DATA: lines dropped before these */
};

struct watcher {         /* a watching connection, as every worker knows it */
    uint64_t   id;
    uint8_t    origin;
    unsigned   flags;
    struct buf pending;
    uint64_t   skipped;
};

struct owned {           /* a watching connection of this worker */
    uint64_t     id;
    struct conn *c;
    uint64_t     skipped;
};

struct watch_state {
    struct watcher *ws;
    unsigned        n, cap;
    struct owned   *own;
    unsigned        nown, capown;
    uint64_t        next_id;
    unsigned        flags;   /* union of the watchers' flags */
};

static _Atomic int watchers;
static _Atomic uint64_t gid;

bool watch_active(void)
{
    return atomic_load_explicit(&watchers, memory_order_relaxed) > 0;
}

static struct watch_state *state(struct worker *w)
{
    if (!w->watch) {
        w->watch = calloc(1, sizeof *w->watch);
        if (!w->watch)
            abort();
    }
    return w->watch;
}

static void on_store_event(void *arg, const struct store_event *ev);

static void recompute(struct worker *w)
{
    struct watch_state *st = state(w);
    st->flags = 0;
    for (unsigned i = 0; i < st->n; i++)
        st->flags |= st->ws[i].flags;
    bool store_events = st->flags & (WATCH_FETCHERS | WATCH_MUTATIONS | WATCH_EVICTIONS);
    store_set_observer(w->store, store_events ? on_store_event : NULL, w);
}

static void local_add(struct worker *w, uint64_t id, unsigned origin, unsigned flags)
{
    struct watch_state *st = state(w);
    if (st->n == st->cap) {
        st->cap = st->cap ? st->cap * 2 : 4;
        st->ws = realloc(st->ws, st->cap * sizeof *st->ws);
        if (!st->ws)
            abort();
    }
    st->ws[st->n++] = (struct watcher){ .id = id, .origin = (uint8_t)origin, .flags = flags };
    recompute(w);
}

static void local_del(struct worker *w, uint64_t id)
{
    struct watch_state *st = state(w);
    for (unsigned i = 0; i < st->n; i++) {
        if (st->ws[i].id != id)
            continue;
        buf_free(&st->ws[i].pending);
        st->ws[i] = st->ws[--st->n];
        break;
    }
    recompute(w);
}

static void broadcast(struct worker *w, uint8_t op, uint64_t id, unsigned flags)
{
    for (unsigned p = 0; p < nworkers; p++) {
        if (p == w->id)
            continue;
        struct msg *m = calloc(1, sizeof *m + sizeof(struct watch_msg));
        if (!m)
            abort();
        m->kind = MSG_WATCH;
        m->from = (uint8_t)w->id;
        *(struct watch_msg *)m->data = (struct watch_msg){ .op = op, .id = id, .flags = flags };
        worker_send(w, p, m);
    }
}

void watch_start(struct worker *w, struct conn *c, unsigned flags)
{
    struct watch_state *st = state(w);
    uint64_t id = (uint64_t)w->id << 56 | ++st->next_id;
    if (st->nown == st->capown) {
        st->capown = st->capown ? st->capown * 2 : 4;
        st->own = realloc(st->own, st->capown * sizeof *st->own);
        if (!st->own)
            abort();
    }
    st->own[st->nown++] = (struct owned){ .id = id, .c = c };
    atomic_fetch_add_explicit(&watchers, 1, memory_order_relaxed);
    local_add(w, id, w->id, flags);
    broadcast(w, WOP_ADD, id, flags);
}

void watch_stop(struct worker *w, struct conn *c)
{
    struct watch_state *st = state(w);
    for (unsigned i = 0; i < st->nown; i++) {
        if (st->own[i].c != c)
            continue;
        uint64_t id = st->own[i].id;
        st->own[i] = st->own[--st->nown];
        atomic_fetch_sub_explicit(&watchers, 1, memory_order_relaxed);
        local_del(w, id);
        broadcast(w, WOP_DEL, id, 0);
        return;
    }
}

/* ---- lines -------------------------------------------------------------- */

static void uri(char *out, size_t cap, const char *k, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < n && o + 4 <= cap; i++) {
        unsigned char ch = (unsigned char)k[i];
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '.' || ch == '_' || ch == '~') {
            out[o++] = (char)ch;
        } else {
            out[o++] = '%';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        }
    }
    out[o] = '\0';
}

static int head(char *b, size_t cap)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned long long g = atomic_fetch_add_explicit(&gid, 1, memory_order_relaxed) + 1;
    return snprintf(b, cap, "ts=%lld.%06ld gid=%llu ", (long long)ts.tv_sec,
                    ts.tv_nsec / 1000, g);
}

static void emit(struct worker *w, unsigned flag, const char *line, size_t n)
{
    struct watch_state *st = state(w);
    for (unsigned i = 0; i < st->n; i++) {
        struct watcher *x = &st->ws[i];
        if (!(x->flags & flag))
            continue;
        if (x->pending.len + n > WATCH_PENDING_MAX)
            x->skipped++;
        else
            buf_add(&x->pending, line, n);
    }
}

static void on_store_event(void *arg, const struct store_event *ev)
{
    static const char *const cmds[] = {
        [SM_SET] = "set", [SM_ADD] = "add", [SM_REPLACE] = "replace",
        [SM_APPEND] = "append", [SM_PREPEND] = "prepend", [SM_CAS] = "cas",
    };
    static const char *const status[] = {
        [ST_OK] = "stored", [ST_MISS] = "not_found", [ST_NOT_STORED] = "not_stored",
        [ST_EXISTS] = "exists", [ST_NOT_FOUND] = "not_found", [ST_TOO_LARGE] = "too_large",
        [ST_NO_MEMORY] = "no_memory", [ST_NON_NUMERIC] = "not_stored",
    };
    struct worker *w = arg;
    unsigned flag = ev->kind == SEV_GET ? WATCH_FETCHERS
                    : ev->kind == SEV_STORE ? WATCH_MUTATIONS : WATCH_EVICTIONS;
    if (!(state(w)->flags & flag))
        return;
    char key[3 * KEY_MAX_LENGTH + 1], line[1024];
    uri(key, sizeof key, ev->key, ev->klen);
    int n = head(line, sizeof line);
    int ttl = ev->exptime ? (int)(ev->exptime - w->now) : 0;
    if (ev->kind == SEV_GET) {
        n += snprintf(line + n, sizeof line - (size_t)n,
                      "type=item_get key=%s status=%s clsid=%u cfd=%d size=%u\n", key,
                      ev->status == ST_OK ? "found" : "not_found", ev->cls, w->x.cfd, ev->vlen);
    } else if (ev->kind == SEV_STORE) {
        const char *stt = ev->status >= 0 && ev->status <= ST_NON_NUMERIC ? status[ev->status]
                                                                          : "not_stored";
        n += snprintf(line + n, sizeof line - (size_t)n,
                      "type=item_store key=%s status=%s cmd=%s ttl=%d clsid=%u cfd=%d size=%u\n",
                      key, stt, ev->mode <= SM_CAS ? cmds[ev->mode] : "set", ttl, ev->cls,
                      w->x.cfd, ev->vlen);
    } else {
        n += snprintf(line + n, sizeof line - (size_t)n,
                      "type=eviction key=%s fetch=%s ttl=%d la=%u clsid=%u\n", key,
                      ev->fetched ? "yes" : "no", ev->exptime ? ttl : -1, w->now - ev->atime,
                      ev->cls);
    }
    if (n > 0 && (size_t)n < sizeof line)
        emit(w, flag, line, (size_t)n);
}

void watch_conn_event(struct worker *w, int fd, bool is_new, const char *reason)
{
    if (!w->watch || !(w->watch->flags & WATCH_CONNEVENTS))
        return;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char ip[INET6_ADDRSTRLEN] = "unknown";
    unsigned port = 0;
    memset(&ss, 0, sizeof ss);
    if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET) {
            const struct sockaddr_in *a = (const void *)&ss;
            inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
            port = ntohs(a->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            const struct sockaddr_in6 *a = (const void *)&ss;
            inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
            port = ntohs(a->sin6_port);
        }
    }
    char line[256];
    int n = head(line, sizeof line);
    if (is_new)
        n += snprintf(line + n, sizeof line - (size_t)n,
                      "type=conn_new rip=%s rport=%u transport=tcp cfd=%d\n", ip, port, fd);
    else
        n += snprintf(line + n, sizeof line - (size_t)n,
                      "type=conn_close rip=%s rport=%u transport=tcp reason=%s cfd=%d\n",
                      ip, port, reason ? reason : "normal", fd);
    if (n > 0 && (size_t)n < sizeof line)
        emit(w, WATCH_CONNEVENTS, line, (size_t)n);
}

/* ---- delivery ----------------------------------------------------------- */

/* On the watcher's own worker: write to its connection, unless it has gone
 * or its output is over the cap (then the lines count as skipped). */
static void deliver(struct worker *w, uint64_t id, const char *data, size_t n,
                    uint64_t skipped)
{
    struct watch_state *st = state(w);
    for (unsigned i = 0; i < st->nown; i++) {
        struct owned *o = &st->own[i];
        if (o->id != id)
            continue;
        o->skipped += skipped;
        if (!conn_output_room(o->c)) {
            for (size_t k = 0; k < n; k++)
                o->skipped += data[k] == '\n';
            return;
        }
        if (o->skipped) {
            char sk[48];
            int k = snprintf(sk, sizeof sk, "skipped=%llu\n", (unsigned long long)o->skipped);
            conn_push(o->c, sk, (size_t)k);
            o->skipped = 0;
        }
        conn_push(o->c, data, n);
        return;
    }
}

bool watch_flush(struct worker *w)
{
    struct watch_state *st = w->watch;
    bool local = false;
    if (!st)
        return false;
    for (unsigned i = 0; i < st->n; i++) {
        struct watcher *x = &st->ws[i];
        if (!x->pending.len && !x->skipped)
            continue;
        if (x->origin == w->id) {
            deliver(w, x->id, x->pending.data, x->pending.len, x->skipped);
            x->pending.len = 0;
            local = true;
        } else {
            struct msg *m = calloc(1, sizeof *m + sizeof(struct watch_msg));
            if (!m)
                abort();
            m->kind = MSG_WATCH;
            m->from = (uint8_t)w->id;
            *(struct watch_msg *)m->data =
                (struct watch_msg){ .op = WOP_DATA, .id = x->id, .skipped = x->skipped };
            m->reply = x->pending;
            x->pending = (struct buf){0};
            worker_send(w, x->origin, m);
        }
        x->skipped = 0;
    }
    return local;
}

void watch_arrived(struct worker *w, struct msg *m)
{
    struct watch_msg *wm = (struct watch_msg *)m->data;
    if (wm->op == WOP_ADD)
        local_add(w, wm->id, m->from, wm->flags);
    else if (wm->op == WOP_DEL)
        local_del(w, wm->id);
    else
        deliver(w, wm->id, m->reply.data, m->reply.len, wm->skipped);
    buf_free(&m->reply);
    free(m);
}

void watch_free(struct worker *w)
{
    struct watch_state *st = w->watch;
    if (!st)
        return;
    for (unsigned i = 0; i < st->n; i++)
        buf_free(&st->ws[i].pending);
    free(st->ws);
    free(st->own);
    free(st);
    w->watch = NULL;
}
