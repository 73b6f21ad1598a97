/*
 * log.h — one-line log events on stderr, readable by journald (level prefix
 * "<N>" understood by systemd). Any thread may log; each call is one write.
 */
#ifndef PERCORE_LOG_H
#define PERCORE_LOG_H

enum log_level { LOG_ERR = 3, LOG_WARN = 4, LOG_INFO = 6, LOG_DEBUG = 7 };

#include <stdatomic.h>

/* -v count, set at start-up; the `verbosity` command changes it at run
 * time (any worker may write it, every thread reads it: relaxed atomics,
 * a level change need not order anything else). */
extern _Atomic int log_verbosity;

static inline int log_level_now(void)
{
    return atomic_load_explicit(&log_verbosity, memory_order_relaxed);
}

/* memcached's `verbosity` and binary verbosity: a level above 2 acts as 2. */
void log_set_verbosity(unsigned level);

void log_msg(enum log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_err(...)   log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
