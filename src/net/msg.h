/*
 * msg.h — a message between workers. A request message is allocated by the
 * worker that read the request (the origin), carries a copy of the key and
 * value, is executed by the key's owner, which fills `reply`, and comes back
 * on the reverse ring; the origin frees it. Ownership moves with the message:
 * exactly one thread touches a message's fields at a time, except `next` and
 * `done`, which only the origin ever touches.
 */
#ifndef PERCORE_MSG_H
#define PERCORE_MSG_H

#include <stdbool.h>
#include <stdint.h>
#include "util/buf.h"
#include "proto/request.h"

enum msg_kind {
    MSG_REQ,          /* keyed request; comes back with its reply */
    MSG_LOCAL,        /* origin-only: a chunk of local replies in a conn's queue */
    MSG_FLUSH,        /* flush_all broadcast; comes home when it has a barrier */
    MSG_BARRIER,      /* origin-only: a reply slot completed by the runtime once every
                       * worker has done its part (flush_all's OK, stats reset's RESET) */
    MSG_UDP_BARRIER,  /* origin-only: the same for a datagram's reply (net/udp.c) */
    MSG_STATS_RESET,  /* stats reset broadcast; comes home when it has a barrier */
    MSG_UDP,          /* request from a UDP datagram; the reply is sent by its origin */
    MSG_UNPIN,        /* a reply sent by reference is done: the owner's pin */
    MSG_WATCH,        /* watch registration or lines (server/watch.c) */
    MSG_INTRO,        /* store walk touring the workers (server/introspect.h); comes
                       * home with its reply like MSG_REQ */
    MSG_MEMLIMIT,     /* cache_memlimit broadcast: the new per-worker limit */
};

struct conn;
struct udp_req;

struct msg {
    struct msg  *next;      /* origin: link in a connection's reply queue */
    struct msg  *qnext;     /* holder: link in an overflow queue */
    uint8_t      kind;
    uint8_t      from;      /* origin worker */
    bool         done;      /* origin: reply has arrived */
    uint8_t      lat_class; /* origin: latency class (proto/req_class.h) */
    bool         pooled;    /* from the allocating worker's spares (msg_release) */
    struct conn *conn;      /* origin's connection; never dereferenced elsewhere */
    union {                 /* what the kind carries besides the request */
        size_t          qbytes;   /* origin: reply bytes counted in the conn's queue */
        uint32_t        pin;      /* MSG_UNPIN */
        struct udp_req *udp;      /* MSG_UDP: the origin's datagram session */
        struct {                  /* MSG_BARRIER, MSG_UDP_BARRIER */
            unsigned        waiting;  /* workers yet to answer */
            struct udp_req *udp;      /* MSG_UDP_BARRIER: the datagram's session */
        } wait;
        uint64_t        limit;    /* MSG_MEMLIMIT: bytes for each worker's store */
        struct {                  /* MSG_FLUSH, MSG_STATS_RESET */
            struct msg *barrier;  /* the origin's reply slot, or NULL */
            uint32_t    at;       /* MSG_FLUSH: oldest_live (0 = cancel) */
            bool        now;      /* ... and the origin found it reached */
        } bcast;
    } u;
    uint64_t     lat_t0;    /* origin: lat_ticks() when parsed, 0 = not timed */
    struct req   req;       /* key/val/aux point into data[] */
    struct buf   reply;     /* written by the owner, freed by the origin */
    char         data[];
};

/* Append m to a holder's FIFO of messages linked through qnext (overflow
 * queues, held replies, pending store walks). */
static inline void msgq_push(struct msg **head, struct msg **tail, struct msg *m)
{
    m->qnext = NULL;
    if (*tail)
        (*tail)->qnext = m;
    else
        *head = m;
    *tail = m;
}

/* A request message carrying a copy of r's key, value and aux bytes (the
 * only copy made on the way to the owner). Aborts on allocation failure. */
struct msg *msg_new_req(const struct req *r, enum msg_kind kind, unsigned from);
/* An origin-only MSG_LOCAL message (done; replies written into it). */
struct msg *msg_new_local(void);
/* A request or local message its holder is done with: its reply's
 * references are let go, and a small one goes back to this thread's
 * spares with its reply buffer (a forwarded get allocated and freed a
 * message and a reply buffer, and usually a local message too: at one
 * request per wake-up malloc and free were a third of its cost). */
void msg_release(struct msg *m);
/* Thread exit: free the spares. */
void msg_pool_drain(void);

#endif
