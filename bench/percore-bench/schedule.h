/* schedule.h - open-loop Poisson arrival schedule for percore-bench. Each worker
 * thread owns one struct sched: arrivals at `rate` per second with exponential
 * gaps, computed from the previous *scheduled* time (never from when the request
 * was actually sent), so a generator that falls behind cannot slow its offered
 * load: the requests go out late and their lateness is counted as latency. */
#ifndef PB_SCHEDULE_H
#define PB_SCHEDULE_H
#include <stdint.h>
#include "dist.h"

struct sched {
    double mean_ns;   /* mean gap between arrivals */
    double next;      /* next scheduled time, ns (CLOCK_MONOTONIC) */
    uint64_t issued;  /* arrivals handed out so far */
    uint64_t limit;   /* stop after this many arrivals (UINT64_MAX: no limit) */
    struct rng rng;
};

void sched_init(struct sched *s, double rate_per_s, uint64_t start_ns, uint64_t seed, uint64_t limit);
/* Scheduled time of the next arrival, or UINT64_MAX when the limit is reached. */
uint64_t sched_peek(const struct sched *s);
/* Take the next arrival: returns its scheduled time and draws the one after. */
uint64_t sched_take(struct sched *s);
/* Number of arrivals scheduled strictly before `t` that were not taken yet
 * (taking them): used at the end of a run to count requests never sent. */
uint64_t sched_drain_before(struct sched *s, uint64_t t);
#endif
