/*
 * warm.h — warm restart (-e PATH): worker i's segments live in the file
 * PATH.i (a shared mapping, normally on tmpfs); a graceful shut-down
 * (SIGUSR1, `shutdown graceful`) writes PATH.i.meta for every worker, and
 * the next start with the same -e restores every item from them, onto the
 * same or another worker count. Main thread only (plus helper threads it
 * joins); all of it runs while no worker does. See docs/storage.md.
 */
#ifndef PERCORE_WARM_H
#define PERCORE_WARM_H

#include <stdint.h>
#include "store/store.h"

/* After the clock and before workers_setup(): lock PATH, read and check the
 * metadata, decide between restoring and starting empty (logging why), and
 * move the clock onto the saved run's. -1 when -e cannot be used at all. */
int  warm_setup(void);
/* Fill worker i's store_config with its memory file (workers_setup). */
void warm_store_config(struct store_config *sc, unsigned i);
/* After workers_setup(): restore the items into the workers' stores, or
 * recreate the stores empty when anything does not check out. */
void warm_restore(void);
/* After workers_stop(): write the metadata (graceful) or remove the memory
 * files (any other stop: they could not be restored anyway). */
void warm_save(void);
void warm_discard(void);

/* For stats: items restored at start-up and how long it took. */
extern uint64_t warm_items_restored;
extern double   warm_seconds;

#endif
