/*
 * udp.h — memcached's UDP protocol: one SO_REUSEPORT UDP socket per worker,
 * the 8-byte frame header, replies split into datagrams. Each worker owns
 * its sockets; requests for keys owned elsewhere travel as MSG_UDP messages.
 */
#ifndef PERCORE_UDP_H
#define PERCORE_UDP_H

#include "net/loop.h"
#include "net/msg.h"

/* Main thread, before workers start: open the sockets (and steering). */
int  udp_setup(struct loop *const *loops, unsigned nworkers);
void udp_read(struct loop *l, struct evsrc *src);
void udp_reply_arrived(struct loop *l, struct msg *m);
/* The steering level in force, for start-up logs and stats. */
const char *udp_steering_name(void);

#endif
