/*
 * udp.h — memcached's UDP protocol: one SO_REUSEPORT UDP socket per worker,
 * the 8-byte frame header, replies split into datagrams. Each worker owns
 * its sockets; requests for keys owned elsewhere travel as MSG_UDP messages.
 */
#ifndef PERCORE_UDP_H
#define PERCORE_UDP_H

#include "net/loop.h"
#include "net/msg.h"

/* Main thread, before workers start: open the sockets (and steering).
 * 0, or -1, or UDP_SETUP_SOCKETS when a socket could not be opened. -U -1:
 * the kernel picks worker 0's port on the first address; every other
 * socket (worker, address) takes the same, which eBPF/XDP steering needs. */
#define UDP_SETUP_SOCKETS (-2)
int  udp_setup(struct loop *const *loops, unsigned nworkers);
/* The UDP port served (the kernel's choice with -U -1); 0 = UDP off. */
int  udp_port(void);
void udp_read(struct loop *l, struct evsrc *src);
void udp_reply_arrived(struct loop *l, struct msg *m);
/* The steering level in force, for start-up logs and stats. */
const char *udp_steering_name(void);

#endif
