/*
 * stats_out.c — the text and binary encoders of a `stats` reply (see
 * stats_out.h). Runs on the asking session's worker; writes only the
 * buffer it was given.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "proto/bin.h"
#include "proto/stats_out.h"

void stats_emit(struct stats_out *so, const char *name, const char *val)
{
    so->pair(so, name, strlen(name), val, strlen(val));
}

void stats_emitf(struct stats_out *so, const char *name, const char *fmt, ...)
{
    char val[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(val, sizeof val, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    so->pair(so, name, strlen(name), val, (size_t)n < sizeof val ? (size_t)n : sizeof val - 1);
}

/* ---- text: "STAT <name> <value>\r\n" ... "END\r\n" ---------------------- */

static void text_pair(struct stats_out *so, const char *name, size_t nlen, const char *val,
                      size_t vlen)
{
    buf_reserve(so->o, nlen + vlen + 8);
    buf_add(so->o, "STAT ", 5);
    buf_add(so->o, name, nlen);
    buf_add(so->o, " ", 1);
    buf_add(so->o, val, vlen);
    buf_add(so->o, "\r\n", 2);
}

static void text_blob(struct stats_out *so, const char *text, size_t n)
{
    buf_add(so->o, text, n);
}

static void text_end(struct stats_out *so, enum stats_end how)
{
    static const char *const words[] = {
        [STATS_END] = "END\r\n", [STATS_RESET] = "RESET\r\n", [STATS_OK] = "OK\r\n",
        [STATS_UNKNOWN] = "ERROR\r\n",
        [STATS_USAGE] = "CLIENT_ERROR usage: stats detail on|off|dump\r\n",
        [STATS_DONE] = "",
    };
    buf_adds(so->o, words[how]);
}

void stats_out_text(struct stats_out *so, struct buf *o)
{
    *so = (struct stats_out){ .pair = text_pair, .blob = text_blob, .end = text_end, .o = o };
}

void stats_out_retarget(struct stats_out *so, struct buf *o)
{
    so->o = o;
    so->start = o->len;
}

/* ---- binary: one packet per pair, then an empty one (memcached 1.6) ----- */

static void bin_pair(struct stats_out *so, const char *name, size_t nlen, const char *val,
                     size_t vlen)
{
    bin_header(so->o, so->opcode, BS_OK, 0, (uint16_t)nlen, (uint32_t)(nlen + vlen),
               so->opaque, 0);
    buf_add(so->o, name, nlen);
    buf_add(so->o, val, vlen);
}

/* memcached 1.6.18 answers `stats detail dump` with one stat named
 * "detailed" whose value is the text listing. */
static void bin_blob(struct stats_out *so, const char *text, size_t n)
{
    bin_pair(so, "detailed", 8, text, n);
}

static void bin_end(struct stats_out *so, enum stats_end how)
{
    /* An unknown group, or detail's usage error after anything but a bare
     * "detail": "not found", and nothing else of this reply. */
    if (how == STATS_UNKNOWN || (how == STATS_USAGE && !so->bare)) {
        so->o->len = so->start;
        bin_error(so->o, so->opcode, so->opaque, BS_ENOENT);
        return;
    }
    bin_header(so->o, so->opcode, BS_OK, 0, 0, 0, so->opaque, 0);
}

void stats_out_binary(struct stats_out *so, struct buf *o, uint8_t opcode, uint32_t opaque,
                      bool bare_detail)
{
    *so = (struct stats_out){ .pair = bin_pair, .blob = bin_blob, .end = bin_end, .o = o,
                              .start = o->len, .opaque = opaque, .opcode = opcode,
                              .bare = bare_detail };
}
