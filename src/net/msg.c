/*
 * msg.c — building a request message: the one place where a request's key,
 * value and protocol bytes are copied for another worker. Runs on the
 * origin worker; the message then belongs to whoever holds it (msg.h).
 */
#include <stdlib.h>
#include <string.h>
#include "net/msg.h"

struct msg *msg_new_req(const struct req *r, enum msg_kind kind, unsigned from)
{
    size_t n = (size_t)r->klen + r->vlen + r->auxlen;
    struct msg *m = malloc(sizeof *m + n);
    if (!m)
        abort();
    memset(m, 0, sizeof *m);
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
