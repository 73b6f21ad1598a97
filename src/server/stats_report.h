/*
 * stats_report.h — the `stats` command family: sums every worker's counters
 * (relaxed reads of single-writer counters) into memcached's format.
 * Runs on the worker whose client asked.
 */
#ifndef PERCORE_STATS_REPORT_H
#define PERCORE_STATS_REPORT_H

#include <stddef.h>
#include "util/buf.h"
#include "proto/stats_out.h"
#include "server/worker.h"

/* `stats <arg>` asked on worker w by a session; new_barrier(sess) is its
 * reply slot for `stats reset` (loop.h). */
void stats_report(struct worker *w, struct msg *(*new_barrier)(void *sess), void *sess,
                  const char *arg, size_t len, struct stats_out *so);

/* Per-class `stats items` / `stats slabs` pieces, shared with the exact
 * walk of server/introspect.c: sum n classes into an array indexed by id - 1
 * (STORE_CLASSES_MAX long), and emit such an array (without the end). */
void stats_classes_add(struct store_class_stats *sum, const struct store_class_stats *one,
                       unsigned n);
void stats_items_format(const struct store_class_stats *sum, struct stats_out *so);
void stats_slabs_format(const struct store_class_stats *sum, struct stats_out *so);

#endif
