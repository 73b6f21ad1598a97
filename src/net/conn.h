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
#include "util/buf.h"
#include "net/loop.h"
#include "net/msg.h"
#include "proto/proto.h"

struct tls_conn;

enum conn_close_reason { CLOSE_NORMAL, CLOSE_ERROR, CLOSE_IDLE, CLOSE_SHUTDOWN };

struct conn {
    struct evsrc   src;          /* type + fd; first member */
    struct loop *l;
    struct conn   *prev, *next;  /* worker's list of open connections */
    struct conn   *dirty_next;
    bool           in_dirty;
    bool           closing;      /* quit / fatal: close once output drained */
    bool           closed;       /* fd gone; waiting for in-flight replies */
    bool           stalled;      /* input left unparsed because of back-pressure */
    bool           feed_pending; /* input not yet parsed: parse in this iteration's serve pass */
    bool           eof;          /* the peer closed after that input: close once it is parsed */
    bool           watching;     /* a `watch` stream: input is ignored (server/watch.c) */
    uint8_t        close_reason; /* enum conn_close_reason, for watch connevents */
    uint32_t       events;       /* current reactor interest */
    uint32_t       last_active;
    unsigned       inflight;     /* requests out at other workers */
    size_t         qbytes;       /* reply bytes queued (q_head..) not yet in wbuf */
    size_t         tx_bytes;     /* bytes the backend is sending (io_uring) */
    size_t         tx_own;       /* ... of them in its own buffer, not referenced */
    uint32_t       tx_refs;      /* ... and the references among them */
    size_t         counted;      /* own output bytes counted in l->out_bytes */
    uint64_t       iter;         /* worker loop iteration nreq counts for */
    unsigned       nreq;         /* commands run in that iteration */
    size_t         sent_iter;    /* bytes sent in that iteration (epoll) */
    bool           yielded;      /* stopped parsing: its share of the iteration is used */
    bool           settling;     /* holding a `stats` until inflight is 0 (sink_settled) */
    bool           in_resume;    /* on l->resume: parse again next iteration */
    struct conn   *resume_next;
    size_t         reply_est;    /* largest keyed reply seen here (0 = none yet) */
    size_t         rneed;        /* bytes the parser needs to make progress */
    struct buf    *xout;         /* where the request executing here replies */
    size_t         xbefore;      /* ... and its size before that reply */
    struct buf     rbuf;
    const char    *rin;          /* io_uring: input still in the backend's buffer (valid
                                  * until its next wait), parsed there when rbuf is empty */
    size_t         rin_len;
    struct buf     wbuf;
    size_t         woff;         /* bytes of wbuf already sent */
    struct msg    *q_head, *q_tail;  /* replies not yet in wbuf, in order */
    size_t         trace_off;    /* -vv: wbuf bytes already traced (conn_trace.c) */
    size_t         trace_skip;   /* -vv: data bytes of a traced reply to skip */
    uint32_t       trace_ref;    /* -vv: wbuf references (values) already skipped */
    bool           trace_stats;  /* -vv: inside a stats reply */
    const struct proto_ops *pops; /* the protocol spoken (NULL until the first bytes) */
    void          *pstate;       /* its parser's state (proto_ops.state_free) */
    struct tls_conn *tls;        /* -Z: the TLS session under the parser (net/tls.h), or NULL */
};

extern _Atomic int global_conns;

/* The reactor's reports for a connection (net/loop.c). */
void conn_accept(struct loop *l, struct evsrc *ls);        /* listener readable (epoll) */
void conn_accept_fd(struct loop *l, int fd);               /* a socket accepted */
void conn_ready(struct conn *c, uint32_t events);          /* readiness (epoll) */
void conn_feed(struct conn *c, const char *data, size_t n);/* bytes received (io_uring) */
void conn_sent(struct conn *c, size_t n, bool failed);     /* a send finished (io_uring) */
void conn_peer_closed(struct conn *c);                     /* end of stream or error */
/* The one entry into parsing and writing: parse what arrived, send what the
 * completed replies allow; for connections in l->dirty (loop_serve). */
void conn_serve(struct conn *c);
/* A reply for this connection came back from another worker. */
void conn_reply_arrived(struct msg *m);
/* A slot in c's reply order that the runtime releases through
 * conn_reply_arrived once every worker has done its part; its reply (written
 * by the caller before that) is flush_all's OK or stats reset's RESET. */
struct msg *conn_barrier(struct conn *c);
void conn_close(struct conn *c);
void conn_idle_sweep(struct loop *l);
/* Connections held back by the worker's ring overflow may continue. */
void conn_wake_stalled(struct loop *l);
/* Connections that yielded in the last iteration continue (worker loop). */
void conn_resume_all(struct loop *l);
/* Worker exit: forget the resume list (every connection is closed next). */
void conn_resume_clear(struct loop *l);
void conn_close_all(struct loop *l);
/* After the workers stopped: a message that held c in flight is gone. */
void conn_release(struct conn *c);
/* Store walks replying in parts (server/introspect.c): queue `next` right
 * after `m` (one more in flight), and whether output is under the cap. */
void conn_queue_after(struct conn *c, struct msg *m, struct msg *next);
bool conn_output_room(const struct conn *c);
/* Bytes for the connection after everything queued (watch lines). */
void conn_push(struct conn *c, const char *data, size_t n);
/* memcached's -vv trace (conn_trace.c): on while the level is >= 2. */
bool conn_tracing(void);
void conn_trace_event(const struct conn *c, const char *what);
void conn_trace_in(void *s, const char *line, size_t n);
void conn_trace_out(struct conn *c);
/* `stats conns` blocks for the sockets worker w owns (conn_report.c);
 * `asking` is the connection that asked, if it is one of w's. */
void conn_stats_report(struct loop *l, const void *asking, struct stats_out *so);

#endif
