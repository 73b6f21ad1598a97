/*
 * hotkeys_report.h — `stats hotkeys [N|reset]`: every worker's sampled top
 * keys (util/topk.h) merged, with the owning worker, and how evenly the
 * workers share the requests. Runs on whichever thread asks (a worker or
 * the /metrics thread); copies each worker's table under its lock.
 */
#ifndef PERCORE_HOTKEYS_REPORT_H
#define PERCORE_HOTKEYS_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include "util/topk.h"
#include "proto/stats_out.h"

struct hotkey {
    struct topk_entry e;
    unsigned worker;          /* the key's owner (the worker that counted it) */
    uint64_t est, est_err;    /* count and over-estimate scaled to requests */
    double   worker_share;    /* of that worker's sampled requests */
};

void hotkeys_report(const char *arg, size_t len, struct stats_out *so);
void hotkeys_reset(void);
/* The hottest up to max keys over all workers, hottest first; 0 when off. */
unsigned hotkeys_top(struct hotkey *out, unsigned max);
/* Requests worker i executed (its own and other workers'), since stats reset. */
uint64_t hotkeys_worker_requests(unsigned i);
/* Append key as printable text (bytes outside '!'..'~' and '%' as %XX). */
void hotkeys_escape(const struct topk_entry *e, char *out, size_t cap);

#endif
