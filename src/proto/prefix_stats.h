/*
 * prefix_stats.h — memcached's `stats detail`: get/hit/set/delete counts per
 * key prefix (the part before the first ':'), while `stats detail on`.
 * Each worker has its own table, written by that worker when it executes a
 * request for a key it owns. The table has a mutex because `stats detail
 * dump` on any worker reads every table: the owner takes it only while
 * detail is on (an opt-in debugging feature, as in memcached, whose own
 * table is one global mutex), and a dump holds it for one table's copy.
 */
#ifndef PERCORE_PREFIX_STATS_H
#define PERCORE_PREFIX_STATS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include "util/buf.h"

#define PREFIX_DELIMITER ':'     /* default of memcached's -D (settings.stat_delim) */

enum pfx_kind { PFX_GET, PFX_SET, PFX_DEL };

struct pfx_table;

struct pfx_table *pfx_create(void);
void pfx_destroy(struct pfx_table *t);
/* stats detail on|off, read by every worker. */
void pfx_enable(bool on);
extern _Atomic bool pfx_on;
/* Inline: every request asks. */
static inline bool pfx_enabled(void)
{
    return atomic_load_explicit(&pfx_on, memory_order_relaxed);
}
/* Count one command for key (nothing when it has no delimiter). */
void pfx_record(struct pfx_table *t, const char *key, size_t klen, enum pfx_kind k, bool hit);
/* Forget everything (stats reset); owner thread. */
void pfx_clear(struct pfx_table *t);
/* "PREFIX <p> get <n> hit <n> set <n> del <n>\r\n" per prefix over all the
 * tables, each summed across them, then "END\r\n". */
void pfx_dump(struct pfx_table *const *tables, unsigned n, struct buf *o);

#endif
