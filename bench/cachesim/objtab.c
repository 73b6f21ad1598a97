/*
 * objtab.c — per-object tables and the id list shared by the simulated
 * policies (objtab.h). Single-threaded.
 */
#include <stdlib.h>
#include <string.h>

#include "objtab.h"

bool objtab_init(struct objtab *o, uint64_t cap, uint32_t nobj)
{
    memset(o, 0, sizeof(*o));
    o->cap = cap;
    size_t n = nobj ? nobj : 1;
    o->charge = calloc(n, 4);
    o->size = calloc(n, 4);
    o->exp = calloc(n, 4);
    o->flag = calloc(n, 1);
    o->where = calloc(n, 1);
    o->prev = calloc(n, 4);
    o->next = calloc(n, 4);
    if (!o->charge || !o->size || !o->exp || !o->flag || !o->where || !o->prev || !o->next) {
        objtab_free(o);
        return false;
    }
    return true;
}

void objtab_free(struct objtab *o)
{
    free(o->charge);
    free(o->size);
    free(o->exp);
    free(o->flag);
    free(o->where);
    free(o->prev);
    free(o->next);
    memset(o, 0, sizeof(*o));
}

void dl_init(struct dlist *l, struct objtab *o)
{
    l->prev = o->prev;
    l->next = o->next;
    l->head = l->tail = CS_NONE;
    l->bytes = 0;
    l->n = 0;
}

void dl_push_head(struct dlist *l, uint32_t id, uint32_t bytes)
{
    l->prev[id] = CS_NONE;
    l->next[id] = l->head;
    if (l->head != CS_NONE)
        l->prev[l->head] = id;
    else
        l->tail = id;
    l->head = id;
    l->bytes += bytes;
    l->n++;
}

void dl_remove(struct dlist *l, uint32_t id, uint32_t bytes)
{
    uint32_t p = l->prev[id], n = l->next[id];
    if (p != CS_NONE)
        l->next[p] = n;
    else
        l->head = n;
    if (n != CS_NONE)
        l->prev[n] = p;
    else
        l->tail = p;
    l->bytes -= bytes;
    l->n--;
}
