/*
 * conn.h — a TCP client connection. Owned entirely by the worker that
 * accepted it: buffers, parser state and the ordered reply queue. Other
 * workers only ever hold messages that point back at it, and never
 * dereference that pointer; a connection closed with messages in flight
 * stays allocated (fd closed) until the last one comes home.
 */
#ifndef PERCORE_CONN_H
#define PERCORE_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include "core/buf.h"
#include "core/worker.h"
#include "proto/proto.h"

enum conn_proto { CP_UNKNOWN, CP_TEXT, CP_BINARY };

struct conn {
    struct evsrc   src;          /* type + fd; first member */
    struct worker *w;
    struct conn   *prev, *next;  /* worker's list of open connections */
    struct conn   *dirty_next;
    bool           in_dirty;
    bool           closing;      /* quit / fatal: close once output drained */
    bool           closed;       /* fd gone; waiting for in-flight replies */
    bool           stalled;      /* input left unparsed because of back-pressure */
    bool           feed_pending; /* bytes fed by a completion backend, not yet parsed */
    uint8_t        proto;
    uint32_t       events;       /* current reactor interest */
    uint32_t       last_active;
    unsigned       inflight;     /* requests out at other workers */
    size_t         qbytes;       /* reply bytes queued (q_head..) not yet in wbuf */
    size_t         tx_bytes;     /* bytes the backend is sending (io_uring) */
    size_t         tx_own;       /* ... of them in its own buffer, not referenced */
    uint32_t       tx_refs;      /* ... and the references among them */
    size_t         counted;      /* own output bytes counted in w->out_bytes */
    uint64_t       iter;         /* worker loop iteration nreq counts for */
    unsigned       nreq;         /* commands run in that iteration */
    size_t         sent_iter;    /* bytes sent in that iteration (epoll) */
    bool           yielded;      /* stopped parsing: its share of the iteration is used */
    bool           in_resume;    /* on w->resume: parse again next iteration */
    struct conn   *resume_next;
    size_t         reply_est;    /* largest keyed reply seen here (0 = none yet) */
    size_t         rneed;        /* bytes the parser needs to make progress */
    struct buf     rbuf;
    struct buf     wbuf;
    size_t         woff;         /* bytes of wbuf already sent */
    struct msg    *q_head, *q_tail;  /* replies not yet in wbuf, in order */
    struct text_parser tp;
    void          *bin;          /* binary protocol state, when in use */
};

void conn_accept(struct worker *w, struct evsrc *ls);
/* Completion-based reactors (io_uring) hand over accepted sockets and
 * received bytes directly; the rest of the path is shared with epoll. */
void conn_accept_fd(struct worker *w, int fd);
void conn_feed(struct conn *c, const char *data, size_t n);
void conn_event(struct conn *c, uint32_t events);
/* A reply for this connection came back from another worker. */
void conn_reply_arrived(struct msg *m);
/* Send what completed replies allow; called for connections in w->dirty. */
void conn_flush(struct conn *c);
void conn_close(struct conn *c);
void conn_idle_sweep(struct worker *w);
/* Connections that yielded in the last iteration continue (worker loop). */
void conn_resume_all(struct worker *w);
/* Worker exit: forget the resume list (every connection is closed next). */
void conn_resume_clear(struct worker *w);
void conn_close_all(struct worker *w);

#endif
