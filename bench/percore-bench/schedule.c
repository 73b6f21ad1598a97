/* schedule.c - open-loop Poisson schedule, see schedule.h. A struct sched is owned
 * by one worker thread. */
#include "schedule.h"

void sched_init(struct sched *s, double rate_per_s, uint64_t start_ns, uint64_t seed, uint64_t limit)
{
    s->mean_ns = rate_per_s > 0 ? 1e9 / rate_per_s : 1e18;
    rng_seed(&s->rng, seed);
    s->issued = 0;
    s->limit = limit;
    /* The first arrival is one exponential gap after the start, like every other. */
    s->next = (double)start_ns + rng_exp(&s->rng, s->mean_ns);
}

uint64_t sched_peek(const struct sched *s)
{
    if (s->issued >= s->limit)
        return UINT64_MAX;
    return (uint64_t)s->next;
}

uint64_t sched_take(struct sched *s)
{
    uint64_t t = (uint64_t)s->next;
    s->issued++;
    s->next += rng_exp(&s->rng, s->mean_ns);
    return t;
}

uint64_t sched_drain_before(struct sched *s, uint64_t t)
{
    uint64_t n = 0;
    while (sched_peek(s) < t) {
        sched_take(s);
        n++;
    }
    return n;
}
