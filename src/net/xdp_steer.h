/*
 * xdp_steer.h — XDP steering (--steering=xdp, and auto where it attaches in
 * native mode): an XDP program on the interfaces percore's UDP sockets
 * listen on redirects each request to its owning worker's CPU through a
 * cpumap, in front of the sk_reuseport program (net/steer.h). See
 * docs/steering.md. Set up by the main thread before the workers start;
 * afterwards only the counter read-out runs, from any thread (it reads the
 * kernel's maps through descriptors that never change).
 */
#ifndef PERCORE_XDP_STEER_H
#define PERCORE_XDP_STEER_H

#include <stdbool.h>
#include <stdint.h>
#include "proto/stats_out.h"

enum xdp_steer_mode { XDP_MODE_OFF, XDP_MODE_NATIVE, XDP_MODE_GENERIC };

/*
 * Attach to the interfaces behind the listening UDP sockets `group_fds`
 * (the first socket of each reuseport group; a wildcard address means
 * every interface that is up, except loopback). worker_cpu[i] is the CPU
 * worker i is pinned to. `mode` is settings.steering: with STEER_XDP the
 * program goes on in native mode where the driver has it and generic mode
 * elsewhere, and any failure is logged and returned as -1; with STEER_AUTO
 * it goes on only if every interface takes it natively, otherwise nothing
 * is attached and 0 is returned (logged at info level).
 */
int xdp_steer_setup(const int *group_fds, unsigned ngroups, uint16_t port,
                    unsigned nworkers, const int *worker_cpu, int mode);

/* The mode in force: off, native (every interface native), else generic. */
enum xdp_steer_mode xdp_steer_mode(void);

/* xdp_* counters for `stats`; nothing when XDP steering is off. */
void xdp_steer_stats(struct stats_out *so, unsigned nworkers);

/* Building blocks, exposed for tests. Each returns 0 or -errno. */
int xdp_steer_load(uint16_t port, unsigned nworkers, const int *worker_cpu);
int xdp_steer_prog_fd(void);
/* Sums each counter (bpf/xdp_steer_abi.h) over the CPUs into out[]; if
 * per_cpu is not NULL, also XDP_CNT_ARRIVED per CPU into per_cpu[0..ncpu). */
int xdp_steer_read(uint64_t *out, unsigned n, uint64_t *per_cpu, unsigned ncpu);
/* Detaches and unloads everything (also what process exit does). */
void xdp_steer_close(void);

#endif
