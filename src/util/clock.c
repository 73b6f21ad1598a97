/*
 * clock.c — relative seconds and exptime conversion (see clock.h). The start
 * instants are written once by main() before any worker starts.
 */
#include "util/clock.h"

static struct timespec mono_start;
static time_t unix_start;

void clock_setup(void)
{
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    clock_gettime(CLOCK_MONOTONIC, &mono_start);
    /* Move the monotonic origin back to the last whole unix second, so that
     * relative seconds tick together with unix seconds: an absolute exptime
     * then expires within the same second as it would by the wall clock. */
    mono_start.tv_nsec -= rt.tv_nsec;
    if (mono_start.tv_nsec < 0) {
        mono_start.tv_nsec += 1000000000L;
        mono_start.tv_sec -= 1;
    }
    unix_start = rt.tv_sec;
}

void clock_rebase(time_t started)
{
    time_t shift = unix_start - CLOCK_REL_BASE - started;
    mono_start.tv_sec -= shift;
    unix_start -= shift;
}

uint32_t clock_rel_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return clock_rel_at(&ts);
}

uint32_t clock_rel_at(const struct timespec *now)
{
    const struct timespec ts = *now;
    time_t secs = ts.tv_sec - mono_start.tv_sec;
    if (ts.tv_nsec < mono_start.tv_nsec)
        secs--;
    return (uint32_t)secs + CLOCK_REL_BASE;
}

uint64_t clock_ns_to_next(const struct timespec *now)
{
    long into = now->tv_nsec - mono_start.tv_nsec;
    if (into < 0)
        into += 1000000000L;
    return (uint64_t)(1000000000L - into);
}

time_t clock_started(void)
{
    return unix_start - CLOCK_REL_BASE;
}

uint32_t clock_exptime(int64_t exptime, uint32_t now)
{
    if (exptime == 0)
        return 0;
    if (exptime < 0)
        return now - 1;                       /* already expired */
    if (exptime > EXPTIME_REL_MAX) {
        /* Absolute unix time. */
        int64_t rel = exptime - (int64_t)clock_started();
        if (rel <= (int64_t)now)
            return now - 1;
        if (rel > UINT32_MAX)
            return UINT32_MAX;
        return (uint32_t)rel;
    }
    uint64_t t = (uint64_t)now + (uint64_t)exptime;
    return t > UINT32_MAX ? UINT32_MAX : (uint32_t)t;
}
