/*
 * slots.c — the slot table (slot -> owning worker). Written once by the main
 * thread before workers start; read-only afterwards. The same table is copied
 * into the eBPF steering map so the kernel and the workers always agree.
 */
#include "util/hash.h"

uint8_t slot_owner[SLOT_COUNT];

void slots_init(unsigned nworkers)
{
    /* Round-robin keeps every worker's share within one slot of the others. */
    for (unsigned s = 0; s < SLOT_COUNT; s++)
        slot_owner[s] = (uint8_t)(s % nworkers);
}
