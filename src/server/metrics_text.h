/*
 * metrics_text.h — the Prometheus text exposition (format 0.0.4) of every
 * worker's counters, store stats, latency histograms and hot keys. Runs on
 * the /metrics thread (server/metrics.c); reads what the workers publish:
 * relaxed loads of their single-writer counters and tables, the hot keys
 * under their try-locked mutex. Never touches a worker's store.
 */
#ifndef PERCORE_METRICS_TEXT_H
#define PERCORE_METRICS_TEXT_H

#include <stddef.h>

/* The whole exposition in a malloc'ed buffer (*len bytes), or NULL. */
char *metrics_render(size_t *len);

#endif
