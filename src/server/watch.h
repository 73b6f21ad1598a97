/*
 * watch.h — memcached's `watch`: a connection that asked for it receives a
 * stream of log lines (fetches, stores, evictions, connection events) from
 * every worker. Every worker keeps its own copy of the list of watchers
 * (kept in step by MSG_WATCH messages), formats the lines of the events it
 * sees into a per-watcher buffer, and once per loop iteration sends each
 * buffer to the watcher's worker, which writes it to the connection. The
 * only shared state is a count of watchers (an atomic), so that a server
 * nobody watches pays one relaxed load per event site.
 */
#ifndef PERCORE_WATCH_H
#define PERCORE_WATCH_H

#include <stdbool.h>
#include "server/worker.h"

/* Connection c (of worker w) starts watching / stops (at close). */
void watch_start(struct worker *w, struct conn *c, unsigned flags);
void watch_stop(struct worker *w, struct conn *c);
/* Any watcher anywhere (cheap check before building an event). */
bool watch_active(void);
/* Connection events on worker w (conn_new / conn_close). */
void watch_conn_event(struct worker *w, int fd, bool is_new, const char *reason);
/* A MSG_WATCH message arrived on w. */
void watch_arrived(struct worker *w, struct msg *m);
/* Once per loop iteration: send what w's events produced; true when some
 * went to w's own connections (which then have output to flush). */
bool watch_flush(struct worker *w);
/* Teardown. */
void watch_free(struct worker *w);

#endif
