/*
 * listener.h — listening sockets: one SO_REUSEPORT socket per worker and
 * address, so the kernel spreads connections over workers with no listener
 * thread. Created by the main thread at start-up.
 */
#ifndef PERCORE_LISTENER_H
#define PERCORE_LISTENER_H

#include <stdbool.h>

/* Fails early, with a clear message, if another process holds the port. */
int listener_check_free(const char *addr, int port, bool udp);
/* Returns a bound, non-blocking socket (listening, for TCP), or -1. */
int listener_open(const char *addr, int port, int backlog, bool udp, int cpu);
/* The port a socket is bound to (the kernel's choice after port 0), and
 * its address family in *family; -1 if it cannot be read. */
int listener_port(int fd, int *family);

/* The UNIX socket of -s, created with permissions `mask` (octal, as -a).
 * A socket file left by a dead server is replaced; one that a live server
 * answers on, or a path that is not a socket, is an error. Returns a
 * listening, non-blocking socket, or -1 (logged). */
int listener_open_unix(const char *path, int mask, int backlog);

#endif
