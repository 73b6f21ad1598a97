/* delay_server.c - test server for percore-bench: the floor server (bench/floor.c,
 * included whole) plus deliberate stalls: every --every N-th request (counted over
 * the whole server) sleeps --delay-us microseconds before it is answered, stalling
 * the single server thread and every connection on it. Lets tests check that an
 * open-loop generator reports those stalls in p99/p99.9/max. Single-threaded: the
 * request counter is owned by the one event-loop thread. */
#define FLOOR_DELAY 1
#define FLOOR_NAME "delay_server"
#include "../../bench/floor.c"
