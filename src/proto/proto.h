/*
 * proto.h — the protocol layer's interface. A parser turns bytes into
 * requests and hands them to a sink (the connection, or a fuzz harness);
 * proto_exec() (proto/exec.h) runs a keyed request against a store and
 * encodes the reply.
 * Nothing here knows sockets or reactors, and nothing here keeps state
 * outside the structs passed in: parsers' state belongs to the connection's
 * worker, exec runs on the key owner's worker.
 */
#ifndef PERCORE_PROTO_H
#define PERCORE_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include "util/buf.h"
#include "util/hash.h"
#include "util/stats.h"
#include "proto/prefix_stats.h"
#include "proto/request.h"
#include "proto/stats_out.h"
#include "store/store.h"

#define PROTO_VERSION "1.6.18-percore-0.1.0"

struct proto_conf {
    size_t item_max;       /* -I: largest value accepted */
    bool   use_cas;        /* !-C */
    bool   flush_ok;       /* !-F */
    bool   shutdown_ok;    /* -A */
    unsigned max_get_keys; /* keys allowed in one get (0 = unlimited) */
    bool   dump_ok;        /* metadump / cachedump allowed (memcached's -X
                            * clears it; see workers_setup) */
    bool   watch_ok;       /* watch allowed (memcached's -W clears it) */
    bool   auth_ascii;     /* -Y: text sessions authenticate first (proto/auth.h) */
    bool   auth_sasl;      /* -S: binary sessions authenticate by SASL first */
    size_t mem_cap;        /* cache_memlimit's ceiling: -m at start-up, what the
                            * workers' stores were sized for */
};

/* The size memcached gives an item: a 48-byte header, the CAS when it has
 * one, key + NUL, the flags when non-zero, value + CRLF. */
static inline size_t mc_item_size(bool cas, size_t klen, uint32_t flags, size_t vlen)
{
    return 48 + (cas ? 8u : 0u) + klen + 1 + (flags ? 4u : 0u) + vlen + 2;
}

/* Whether memcached would refuse an item as too large for -I: it counts
 * its whole item, not the value alone, so the largest value it stores
 * under -I 1m with a 1-byte key is 1,048,516 bytes. */
static inline bool proto_too_large(const struct proto_conf *cf, size_t klen, uint32_t flags,
                                   size_t vlen)
{
    return mc_item_size(cf->use_cas, klen, flags, vlen) > cf->item_max;
}

/* What a `watch` asks for (memcached's names). */
enum watch_flag {
    WATCH_FETCHERS = 1, WATCH_MUTATIONS = 2, WATCH_EVICTIONS = 4, WATCH_CONNEVENTS = 8,
};

/* A walk of every worker's store whose result is one reply: the parser
 * fills it in, the session runs it (server/introspect.c). */
enum dump_op {
    DUMP_METADUMP,   /* lru_crawler metadump all|hash|<classes> */
    DUMP_CACHEDUMP,  /* stats cachedump <class> <limit> */
    DUMP_ITEMS,      /* stats items, exact */
    DUMP_SLABS,      /* stats slabs, exact */
    DUMP_CONNS,      /* stats conns: every worker's sockets */
};

struct dump_req {
    uint8_t  op;
    uint32_t limit;                                   /* cachedump: 0 = all */
    uint8_t  classes[(STORE_CLASSES_MAX + 8) / 8];    /* bit id: class wanted */
};

/* What a parser calls. `s` is the caller's session (a connection). */
struct proto_sink {
    /* A keyed request: execute locally or forward; its reply takes the next
     * position in the session's reply order. */
    void (*request)(void *s, struct req *r);
    /* Where a locally produced reply goes, in order. */
    struct buf *(*output)(void *s);
    /* `stats <arg>`: the session runs it, the parser's encoder writes it. */
    void (*stats)(void *s, const char *arg, size_t len, struct stats_out *so);
    /* flush_all: `ok` (the protocol's reply, n bytes; n == 0: noreply)
     * takes the next position, sent once every worker has applied it. */
    void (*flush_all)(void *s, int64_t delay, const char *ok, size_t n);
    void (*quit)(void *s);
    void (*shutdown)(void *s, bool graceful);
    /* True when the session wants no more requests for now (back-pressure). */
    bool (*busy)(void *s);
    /* A walk of every worker's store (NULL: the session cannot run one;
     * then stats items/slabs use the published counters and the dump
     * commands answer ERROR). Its reply takes the next position. */
    void (*dump)(void *s, const struct dump_req *d);
    /* Each text command line as it is about to run (memcached's -vv "<FD
     * line" trace); called only while the verbosity level is >= 2. */
    void (*trace)(void *s, const char *line, size_t len);
    /* The session becomes a `watch` stream (NULL: it cannot; ERROR). */
    void (*watch)(void *s, unsigned flags);
    /* The session's worker's counters, for what a parser counts itself
     * (authentication attempts); NULL: nothing is counted. */
    struct wstats *(*counters)(void *s);
    /* The session gives up the rest of this loop iteration after a costly
     * command (a SASL step can take milliseconds of CPU): its remaining
     * input is parsed on the next iteration, after the other sessions.
     * NULL: the parser just goes on. */
    void (*yield)(void *s);
    /* memcached's refresh_certs: reload the TLS certificate and key; the
     * session writes "OK" or the reason it failed (NULL: ERROR). */
    void (*refresh_certs)(void *s, bool noreply);
    /* True when no request of the session is still out at another worker;
     * false: the session holds its input until they are all back (NULL:
     * always true). `stats` asks, so that its counters include the
     * requests before it on the connection, as memcached's do. */
    bool (*settled)(void *s);
    /* cache_memlimit: every worker's store gets its share of `bytes`
     * (NULL: the session cannot; MEMLIMIT_ADJUST_FAILED). */
    void (*memlimit)(void *s, uint64_t bytes);
    /* As quit, for a client that broke the protocol (an HTTP request, a
     * bad login block): `watch connevents` says reason=error, as memcached.
     * NULL: quit is called. */
    void (*quit_error)(void *s);
};

/* After a store refused by proto_too_large(): count it in store_too_large
 * (the parser's worker; memcached counts every refused storage command) and,
 * for a set, drop the key's old value as memcached does, without counting
 * a delete. */
static inline void proto_refuse_large(const struct proto_sink *sk, void *s, const char *key,
                                      size_t klen, bool drop)
{
    if (sk->counters)
        STAT_INC(sk->counters(s), store_too_large);
    if (drop) {
        struct req r = {0};
        r.op = OP_DROP;
        r.proto = PROTO_TEXT;
        r.noreply = true;
        r.key = key;
        r.klen = (uint8_t)klen;
        sk->request(s, &r);
    }
}

struct pfx_table;

struct exec_ctx {
    struct store  *store;
    struct wstats *stats;
    uint32_t       now;
    uint16_t       self;     /* the executing worker: owner of pins taken */
    bool           by_ref;   /* reply may reference item memory (TCP) */
    bool           detail;   /* this request counts in `stats detail` (proto/cmd.c) */
    struct pfx_table *pfx;   /* this worker's `stats detail` table */
    int32_t        cfd;      /* client fd of the request executing (watch lines) */
};

/* Values at least this long are sent by reference when x->by_ref. Shorter
 * ones cost less to copy than to pin, describe and unpin. */
#define PROTO_REF_MIN 2048

/* Text protocol parser state (UDP keeps one per datagram on its stack). */
struct text_parser {
    uint64_t swallow;      /* data bytes still to discard after an error */
};

/* Parse as many complete commands as `data` holds. Returns the bytes
 * consumed, or -1 when the connection must be closed. *need is set to the
 * total size the input must reach before more progress is possible (0 if
 * unknown), so the caller can grow its buffer for a large value. */
ssize_t text_parse(struct text_parser *p, const struct proto_conf *cf,
                   const struct proto_sink *sk, void *s,
                   const char *data, size_t len, size_t *need);

/* One protocol a session may speak: the table the connection (net/conn.c)
 * and UDP (net/udp.c) call through, so neither names a parser. A
 * session keeps a `void *` state for the protocol, NULL until the parser
 * needs one, owned by the session's worker; state_free releases it. It is
 * the parser's to interpret: text keeps its swallow count in the word. */
struct proto_ops {
    const char *name;      /* memcached's -B name: "ascii", "binary" */
    /* Do these first bytes (len >= 1) open a request of this protocol? */
    bool (*detect)(const char *data, size_t len);
    /* Same contract as text_parse(). */
    ssize_t (*parse)(void **state, const struct proto_conf *cf, const struct proto_sink *sk,
                     void *s, const char *data, size_t len, size_t *need);
    void (*state_free)(void **state);
};

extern const struct proto_ops proto_text;     /* text and meta (text_parse.c) */

extern const struct proto_ops proto_binary;   /* binary (bin_parse.c) */

/* The protocol whose detect() claims these first bytes (len >= 1): binary
 * by its magic byte, text otherwise, as memcached's auto-negotiation. */
const struct proto_ops *proto_detect(const char *data, size_t len);

/* The executors proto_exec() picks from (text_exec.c, meta_exec.c, bin_exec.c). */
void text_exec(struct exec_ctx *x, const struct req *r, struct buf *out);
void meta_exec(struct exec_ctx *x, const struct req *r, struct buf *out);
void bin_exec(struct exec_ctx *x, const struct req *r, struct buf *out);

/* Append n bytes of the value of the item iv views: pinned and referenced
 * (see struct buf) when allowed and worth it, copied otherwise. */
void proto_add_value(struct exec_ctx *x, struct buf *o, const struct item_view *iv, uint32_t n);

#endif
