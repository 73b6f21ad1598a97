/*
 * log.c — stderr logging (see log.h). Stateless apart from the verbosity
 * level (an atomic: set at start-up and by the `verbosity` command).
 */
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>
#include "util/log.h"

_Atomic int log_verbosity;

void log_set_verbosity(unsigned level)
{
    atomic_store_explicit(&log_verbosity, level > 2 ? 2 : (int)level, memory_order_relaxed);
}

static const char *level_name(enum log_level l)
{
    switch (l) {
    case LOG_ERR:  return "error";
    case LOG_WARN: return "warning";
    case LOG_INFO: return "info";
    default:       return "debug";
    }
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
    int v = log_level_now();
    if (lvl == LOG_INFO && v < 1)
        return;
    if (lvl == LOG_DEBUG && v < 2)
        return;
    char line[1024];
    int n = snprintf(line, sizeof line, "<%d>percore: %s: ", (int)lvl, level_name(lvl));
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}
