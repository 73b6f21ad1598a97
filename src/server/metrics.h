/*
 * metrics.h — `--metrics=ADDR:PORT`: a thread of its own serving GET
 * /metrics (server/metrics_text.c) over HTTP/1.1, one request per
 * connection. It reads only what workers publish and never sends them
 * anything, so a scrape (or a hostile client) costs workers nothing. Its
 * state (listener, clients) is the metrics thread's; set up by the main
 * thread before it starts.
 */
#ifndef PERCORE_METRICS_H
#define PERCORE_METRICS_H

/* Bind the listener (main thread, before privileges are dropped); 0 when
 * --metrics is off or bound, -1 with a message on failure. */
int  metrics_setup(void);
/* Start the thread (after the workers), and stop and join it (before them). */
int  metrics_start(void);
void metrics_stop(void);

#endif
