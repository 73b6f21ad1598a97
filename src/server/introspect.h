/*
 * introspect.h — walks of every worker's store for one client request
 * (lru_crawler metadump, stats cachedump, exact stats items/slabs). The
 * request is one message that tours the workers in order, 0 to N-1: each
 * walks its own store on its own thread, a budget of segments per loop
 * iteration, appends its part, and passes the message on; the last one
 * sends it home, where it is the request's reply like any other. No worker
 * ever touches another's store.
 */
#ifndef PERCORE_INTROSPECT_H
#define PERCORE_INTROSPECT_H

#include <stdbool.h>
#include "server/worker.h"

/* Origin: a message for d, to be queued in the connection's reply order,
 * then started with intro_start(). */
struct msg *intro_msg_new(const struct dump_req *d, unsigned from);
void intro_start(struct worker *w, struct msg *m);
/* A MSG_INTRO message arrived on w's ring. */
void intro_arrived(struct worker *w, struct msg *m);
/* Advance w's pending walks by one budget; true while some remain. */
bool intro_run(struct worker *w);
/* Release parked metadump continuations whose connection has room again
 * (call after writing output). */
void intro_unpark(struct worker *w);
/* Teardown: free walks still pending on w (as free_stranded does). */
void intro_drop_pending(struct worker *w, void (*drop)(struct msg *m));

#endif
