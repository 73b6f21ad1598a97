/*
 * log.c — stderr logging (see log.h). Stateless apart from the verbosity
 * level written once at start-up.
 */
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>
#include "core/log.h"

int log_verbosity;

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
    if (lvl == LOG_INFO && log_verbosity < 1)
        return;
    if (lvl == LOG_DEBUG && log_verbosity < 2)
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
