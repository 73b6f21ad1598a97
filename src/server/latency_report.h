/*
 * latency_report.h — `stats latency [reset]` and the merged histograms the
 * /metrics thread reads. Runs on whichever thread asks (a worker serving a
 * client, or the metrics thread); reads the workers' tables (util/lat_hist.h)
 * with relaxed loads. A reset keeps a baseline under a lock instead of
 * writing the workers' counters, so each counter keeps one writer and
 * /metrics stays monotonic.
 */
#ifndef PERCORE_LATENCY_REPORT_H
#define PERCORE_LATENCY_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include "util/lat_hist.h"
#include "proto/stats_out.h"

/* `stats latency` (arg: what followed "latency", spaces trimmed). */
void latency_report(const char *arg, size_t len, struct stats_out *so);
/* Forget everything recorded so far for `stats latency` (also `stats reset`). */
void latency_reset(void);
/* Worker `worker`'s (or, when worker < 0, all workers') histogram of one
 * class and path since start, into *out (zeroed first). False when off. */
bool latency_snapshot(int worker, unsigned cls, unsigned path, struct lat_snap *out);

#endif
