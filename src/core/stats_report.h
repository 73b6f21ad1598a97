/*
 * stats_report.h — the `stats` command family: sums every worker's counters
 * (relaxed reads of single-writer counters) into memcached's format.
 * Runs on the worker whose client asked.
 */
#ifndef PERCORE_STATS_REPORT_H
#define PERCORE_STATS_REPORT_H

#include <stddef.h>
#include "core/buf.h"
#include "core/worker.h"

void stats_report(struct worker *w, const char *arg, size_t len, struct buf *out);

#endif
