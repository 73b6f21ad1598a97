/*
 * msg.c — building a request message: the one place where a request's key,
 * value and protocol bytes are copied for another worker. Runs on the
 * origin worker; the message then belongs to whoever holds it (msg.h).
 */
#include <stdlib.h>
#include <string.h>
#include "net/msg.h"

/* The spares are per thread: a message is released by the worker that
 * made it (its origin), so no spare ever crosses threads. Bounded: at most
 * MSG_POOL_MAX spares of MSG_POOL_DATA bytes with a reply buffer of at
 * most MSG_REPLY_KEEP, about 100 KiB a worker. */
#define MSG_POOL_MAX   64
#define MSG_POOL_DATA  256
#define MSG_REPLY_KEEP 1024

static __thread struct msg *pool;
static __thread unsigned npool;

/* A zeroed message with room for n data bytes (a spare's reply buffer
 * kept, empty). */
static struct msg *msg_take(size_t n)
{
    struct msg *m = NULL;
    if (n <= MSG_POOL_DATA && pool) {
        m = pool;
        pool = m->next;
        npool--;
        struct buf keep = m->reply;
        memset(m, 0, sizeof *m);
        m->reply = keep;
        m->pooled = true;
        return m;
    }
    bool small = n <= MSG_POOL_DATA;
    m = malloc(sizeof *m + (small ? MSG_POOL_DATA : n));
    if (!m)
        abort();
    memset(m, 0, sizeof *m);
    m->pooled = small;
    return m;
}

struct msg *msg_new_req(const struct req *r, enum msg_kind kind, unsigned from)
{
    size_t n = (size_t)r->klen + r->vlen + r->auxlen;
    struct msg *m = msg_take(n);
    m->kind = (uint8_t)kind;
    m->from = (uint8_t)from;
    m->req = *r;
    char *p = m->data;
    memcpy(p, r->key, r->klen);
    m->req.key = p;
    p += r->klen;
    m->req.val = NULL;
    if (r->vlen) {
        memcpy(p, r->val, r->vlen);
        m->req.val = p;
        p += r->vlen;
    }
    m->req.aux = NULL;
    if (r->auxlen) {
        memcpy(p, r->aux, r->auxlen);
        m->req.aux = p;
    }
    return m;
}

struct msg *msg_new_local(void)
{
    struct msg *m = msg_take(0);
    m->kind = MSG_LOCAL;
    m->done = true;
    return m;
}

void msg_release(struct msg *m)
{
    if (m->pooled && npool < MSG_POOL_MAX && m->reply.cap <= MSG_REPLY_KEEP) {
        buf_reset(&m->reply);   /* references let go, as buf_free would */
        m->next = pool;
        pool = m;
        npool++;
        return;
    }
    buf_free(&m->reply);
    free(m);
}

void msg_pool_drain(void)
{
    while (pool) {
        struct msg *m = pool;
        pool = m->next;
        buf_free(&m->reply);
        free(m);
    }
    npool = 0;
}
