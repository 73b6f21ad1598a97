/*
 * introspect.c — store walks that tour the workers (see introspect.h):
 * `lru_crawler metadump`, `stats cachedump` and exact `stats items|slabs`
 * for text connections. A walk's message belongs to exactly one worker at
 * a time: the one in its `hop`, which keeps it on its own pending list
 * (w->intro_head, touched by that worker only) while it walks its store a
 * budget at a time, between the loop's other work, so serving never stops
 * for long. The reply grows in the message, in worker order; the last
 * worker formats the end and sends it home. A metadump comes home in parts
 * (METADUMP_PART), each continued by a new message queued right behind it
 * once the connection has room (origin's w->intro_parked list).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "util/clock.h"
#include "server/introspect.h"
#include "server/stats_report.h"
#include "net/conn.h"

#define WALK_SEGS_PER_TURN   4              /* segments one walk advances per loop */
#define WALK_BYTES_PER_TURN  (256 * 1024)   /* ... or this much output, first reached */
#define CACHEDUMP_MAX        (2 * 1024 * 1024)  /* memcached caps cachedump output here */
#define METADUMP_PART        (256 * 1024)   /* a metadump comes home in parts of this */

struct intro {
    struct dump_req d;
    uint32_t hop;        /* the worker walking now: tours go 0 .. nworkers-1 */
    uint32_t cursor;     /* store_walk() cursor in that worker's store */
    uint32_t dumped;     /* cachedump: items listed so far */
    bool     full;       /* cachedump: limit or size cap reached */
    bool     partial;    /* a part of the reply going home; the walk goes on */
    bool     finished;   /* reply complete, on its way home */
};

static struct intro *intro_of(struct msg *m)
{
    return (struct intro *)m->data;
}

struct msg *intro_msg_new(const struct dump_req *d, unsigned from)
{
    struct msg *m = calloc(1, sizeof *m + sizeof(struct intro));
    if (!m)
        abort();
    m->kind = MSG_INTRO;
    m->from = (uint8_t)from;
    intro_of(m)->d = *d;
    return m;
}

static void pending_add(struct worker *w, struct msg *m)
{
    msgq_push(&w->intro_head, &w->intro_tail, m);
}

static void deliver(struct worker *w, struct msg *m, unsigned to)
{
    if (to == w->id)
        pending_add(w, m);
    else
        worker_send(w, to, m);
}

void intro_start(struct worker *w, struct msg *m)
{
    deliver(w, m, 0);
}

static void part_home(struct worker *w, struct msg *m);

void intro_arrived(struct worker *w, struct msg *m)
{
    if (intro_of(m)->partial)
        part_home(w, m);         /* home with a part: w is its origin */
    else if (intro_of(m)->finished)
        conn_reply_arrived(m);   /* home: w is its origin */
    else
        pending_add(w, m);
}

/* ---- metadump and cachedump lines --------------------------------------- */

static bool class_wanted(const struct dump_req *d, uint32_t id)
{
    return id <= STORE_CLASSES_MAX && (d->classes[id / 8] >> (id % 8)) & 1;
}

/* memcached's uriencode(): everything but [A-Za-z0-9-._~] as %XX. */
static void uri_key(struct buf *o, const char *k, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)k[i];
        bool plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                     (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' ||
                     ch == '~';
        if (plain) {
            buf_add(o, (const char *)&ch, 1);
        } else {
            char e[3] = { '%', hex[ch >> 4], hex[ch & 15] };
            buf_add(o, e, 3);
        }
    }
}

struct walk_ctx {
    struct intro *in;
    struct buf   *out;
};

/* key=<uri> exp=<unix|-1> la=<unix> cas=<n> fetch=<yes|no> cls=<id> size=<n>\n */
static bool metadump_item(void *arg, const struct store_walk_item *it)
{
    struct walk_ctx *x = arg;
    if (!class_wanted(&x->in->d, it->cls))
        return true;
    long long started = (long long)clock_started();
    char tail[160];
    buf_adds(x->out, "key=");
    uri_key(x->out, it->key, it->klen);
    snprintf(tail, sizeof tail, " exp=%lld la=%lld cas=%llu fetch=%s cls=%u size=%u\n",
             it->exptime ? (long long)it->exptime + started : -1LL,
             (long long)it->atime + started, (unsigned long long)it->cas,
             it->fetched ? "yes" : "no", it->cls, it->size);
    buf_adds(x->out, tail);
    return true;
}

/* ITEM <key> [<value bytes> b; <exptime unix|0> s]\r\n */
static bool cachedump_item(void *arg, const struct store_walk_item *it)
{
    struct walk_ctx *x = arg;
    struct intro *in = x->in;
    if (!class_wanted(&in->d, it->cls))
        return true;
    if ((in->d.limit && in->dumped >= in->d.limit) ||
        x->out->len + it->klen + 64 > CACHEDUMP_MAX) {
        in->full = true;
        return false;
    }
    char tail[96];
    buf_adds(x->out, "ITEM ");
    buf_add(x->out, it->key, it->klen);
    snprintf(tail, sizeof tail, " [%u b; %llu s]\r\n", it->vlen,
             it->exptime ? (unsigned long long)it->exptime + (unsigned long long)clock_started()
                         : 0ULL);
    buf_adds(x->out, tail);
    in->dumped++;
    return true;
}

/* ---- one turn of a walk on worker w ------------------------------------- */

enum turn { TURN_MORE, TURN_DONE, TURN_PART };

/* Walks some more of w's store: TURN_DONE when w's part is complete,
 * TURN_PART when the reply has grown to a part's size. */
static enum turn walk_turn(struct worker *w, struct msg *m)
{
    struct intro *in = intro_of(m);
    if (in->d.op == DUMP_ITEMS || in->d.op == DUMP_SLABS) {
        /* Sum this worker's classes into the array the reply carries. */
        size_t need = STORE_CLASSES_MAX * sizeof(struct store_class_stats);
        struct store_class_stats *one = calloc(STORE_CLASSES_MAX, sizeof *one);
        if (!one || !buf_reserve(&m->reply, need))
            abort();
        if (m->reply.len == 0) {
            memset(m->reply.data, 0, need);
            m->reply.len = need;
        }
        unsigned n = store_get_class_stats(w->store, one, STORE_CLASSES_MAX);
        stats_classes_add((struct store_class_stats *)(void *)m->reply.data, one, n);
        free(one);
        return TURN_DONE;
    }
    if (in->d.op == DUMP_CONNS) {
        struct stats_out so;   /* a text connection's walk: STAT lines */
        stats_out_text(&so, &m->reply);
        conn_stats_report(&w->loop, m->conn, &so);
        return TURN_DONE;
    }
    if (in->full)
        return TURN_DONE;
    struct walk_ctx x = { in, &m->reply };
    bool (*fn)(void *, const struct store_walk_item *) =
        in->d.op == DUMP_METADUMP ? metadump_item : cachedump_item;
    size_t start = m->reply.len;
    for (unsigned i = 0; i < WALK_SEGS_PER_TURN; i++) {
        if (store_walk(w->store, &in->cursor, 1, fn, &x))
            return TURN_DONE;
        if (in->d.op == DUMP_METADUMP && m->reply.len >= METADUMP_PART)
            return TURN_PART;
        if (m->reply.len - start >= WALK_BYTES_PER_TURN)
            break;
    }
    return in->full ? TURN_DONE : TURN_MORE;
}

/* memcached lists `stats conns` blocks by descriptor; the workers' parts
 * arrive one worker after another, so sort the blocks ("STAT <fd>:...")
 * by fd, keeping each block's lines in order. */
struct conn_block {
    long        fd;
    const char *p;
    size_t      n;
};

static int block_cmp(const void *a, const void *b)
{
    const struct conn_block *x = a, *y = b;
    return (x->fd > y->fd) - (x->fd < y->fd);
}

static void sort_conn_blocks(struct buf *reply)
{
    size_t nb = 0, cap = 0;
    struct conn_block *bl = NULL;
    const char *p = reply->data, *end = reply->data + reply->len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        eol = eol ? eol + 1 : end;
        long fd = strtol(p + 5, NULL, 10);      /* after "STAT " */
        if (nb && bl[nb - 1].fd == fd) {
            bl[nb - 1].n += (size_t)(eol - p);
        } else {
            if (nb == cap) {
                cap = cap ? cap * 2 : 64;
                bl = realloc(bl, cap * sizeof *bl);
                if (!bl)
                    abort();
            }
            bl[nb++] = (struct conn_block){ fd, p, (size_t)(eol - p) };
        }
        p = eol;
    }
    qsort(bl, nb, sizeof *bl, block_cmp);
    struct buf sorted = {0};
    for (size_t i = 0; i < nb; i++)
        buf_add(&sorted, bl[i].p, bl[i].n);
    free(bl);
    buf_free(reply);
    *reply = sorted;
}

static void finish(struct msg *m)
{
    struct intro *in = intro_of(m);
    if (in->d.op == DUMP_CONNS)
        sort_conn_blocks(&m->reply);
    if (in->d.op == DUMP_ITEMS || in->d.op == DUMP_SLABS) {
        struct buf text = {0};
        struct stats_out so;
        stats_out_text(&so, &text);
        const struct store_class_stats *sum = (const void *)m->reply.data;
        if (in->d.op == DUMP_ITEMS)
            stats_items_format(sum, &so);
        else
            stats_slabs_format(sum, &so);
        buf_free(&m->reply);
        m->reply = text;
    }
    buf_adds(&m->reply, "END\r\n");
    in->finished = true;
}

/* Origin: a part of a metadump came home. Its continuation takes the next
 * place in the connection's reply order and waits (parked) until the
 * connection's output is under --max-conn-output, so a slow reader holds
 * about the cap plus one part, never the whole dump. */
static void part_home(struct worker *w, struct msg *m)
{
    struct conn *c = m->conn;
    struct intro *in = intro_of(m);
    in->partial = false;
    if (!c->closed) {
        struct msg *next = intro_msg_new(&in->d, m->from);
        *intro_of(next) = *in;
        next->conn = c;
        conn_queue_after(c, m, next);
        next->qnext = w->intro_parked;
        w->intro_parked = next;
    }
    conn_reply_arrived(m);
}

void intro_unpark(struct worker *w)
{
    struct msg **pp = &w->intro_parked;
    while (*pp) {
        struct msg *m = *pp;
        if (!conn_output_room(m->conn)) {
            pp = &m->qnext;
            continue;
        }
        *pp = m->qnext;
        if (m->conn->closed)
            conn_reply_arrived(m);   /* frees it */
        else
            deliver(w, m, intro_of(m)->hop);
    }
}

static void send_home(struct worker *w, struct msg *m)
{
    if (m->from != w->id)
        worker_send(w, m->from, m);
    else if (intro_of(m)->partial)
        part_home(w, m);
    else
        conn_reply_arrived(m);
}

bool intro_run(struct worker *w)
{
    if (w->intro_parked)
        intro_unpark(w);
    struct msg *m = w->intro_head;
    w->intro_head = w->intro_tail = NULL;
    while (m) {
        struct msg *next = m->qnext;
        struct intro *in = intro_of(m);
        enum turn t = walk_turn(w, m);
        if (t == TURN_MORE) {
            pending_add(w, m);
        } else if (t == TURN_PART) {
            in->partial = true;
            send_home(w, m);
        } else if (++in->hop < nworkers) {
            in->cursor = 0;
            deliver(w, m, in->hop);
        } else {
            finish(m);
            send_home(w, m);
        }
        m = next;
    }
    return w->intro_head != NULL;
}

void intro_drop_pending(struct worker *w, void (*drop)(struct msg *m))
{
    while (w->intro_parked) {
        struct msg *m = w->intro_parked;
        w->intro_parked = m->qnext;
        drop(m);
    }
    while (w->intro_head) {
        struct msg *m = w->intro_head;
        w->intro_head = m->qnext;
        drop(m);
    }
    w->intro_tail = NULL;
}
