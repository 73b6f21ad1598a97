/*
 * log.h — one-line log events on stderr, readable by journald (level prefix
 * "<N>" understood by systemd). Any thread may log; each call is one write.
 */
#ifndef PERCORE_LOG_H
#define PERCORE_LOG_H

enum log_level { LOG_ERR = 3, LOG_WARN = 4, LOG_INFO = 6, LOG_DEBUG = 7 };

extern int log_verbosity;   /* -v count; set at start-up, read-only after */

void log_msg(enum log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_err(...)   log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
