/*
 * steer.h — UDP request steering: programs attached to a SO_REUSEPORT group
 * so that the kernel hands each datagram to the socket of the worker that
 * owns its key (see docs/steering.md). Main thread only, at start-up,
 * before the workers run; nothing here is touched afterwards.
 */
#ifndef PERCORE_STEER_H
#define PERCORE_STEER_H

/* Levels, worst to best. */
enum steer_level {
    STEER_LEVEL_HASH,   /* kernel's reuseport hash; workers forward */
    STEER_LEVEL_CBPF,   /* classic BPF: FNV-1a of the key, modulo workers */
    STEER_LEVEL_EBPF,   /* eBPF: FNV-1a of the key, through the slot table */
};

/* Attach steering to one reuseport group whose i-th socket (in joining
 * order) belongs to worker i. `mode` is settings.steering. Returns the
 * level in force, or -1 (after logging why) when an explicitly requested
 * level cannot be had. */
int steer_attach(const int *fds, unsigned n, int mode);
const char *steer_level_name(int level);

/* Building blocks, exposed for tests. Each returns 0 or -errno and logs
 * nothing above debug level. */
int steer_attach_ebpf(const int *fds, unsigned n);
int steer_attach_cbpf(int fd, unsigned n);

#endif
