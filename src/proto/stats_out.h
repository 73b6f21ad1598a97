/*
 * stats_out.h — a `stats` reply as name/value pairs. The code that knows
 * the numbers (server/stats_report.c, net/conn_report.c) emits pairs and
 * says how the reply ends; the protocol that asked picks the encoder: text
 * STAT lines, or binary STAT packets written directly (no text in
 * between). One lives on the asking session's worker for one reply.
 */
#ifndef PERCORE_STATS_OUT_H
#define PERCORE_STATS_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "util/buf.h"

/* How a reply ends: text words, binary terminator or error packet. */
enum stats_end {
    STATS_END,       /* END */
    STATS_RESET,     /* RESET */
    STATS_OK,        /* OK (stats detail on|off) */
    STATS_UNKNOWN,   /* ERROR: no such group (binary: not found) */
    STATS_USAGE,     /* stats detail usage error */
    STATS_DONE,      /* nothing more in text (after a blob) */
};

struct stats_out {
    void (*pair)(struct stats_out *so, const char *name, size_t nlen,
                 const char *val, size_t vlen);
    /* A ready-made text block (the `stats detail dump` listing). */
    void (*blob)(struct stats_out *so, const char *text, size_t n);
    void (*end)(struct stats_out *so, enum stats_end how);
    struct buf *o;
    size_t   start;      /* binary: where this reply began in o */
    uint32_t opaque;     /* binary: echoed */
    uint8_t  opcode;     /* binary: echoed */
    bool     bare;       /* binary: the request was a bare "detail" */
};

void stats_out_text(struct stats_out *so, struct buf *o);
/* The rest of the reply goes to o instead (a reply slot that waits). */
void stats_out_retarget(struct stats_out *so, struct buf *o);
void stats_out_binary(struct stats_out *so, struct buf *o, uint8_t opcode, uint32_t opaque,
                      bool bare_detail);

void stats_emit(struct stats_out *so, const char *name, const char *val);
void stats_emitf(struct stats_out *so, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
