/*
 * xdp_abi.h — the layout of the XDP steering program's counter map,
 * shared by the program (xdp_steer.bpf.c) and its loader (net/xdp_steer.c).
 * It sits in util/ because src/bpf may include util/ only and net/ may not
 * include src/bpf.
 * Constants only.
 */
#ifndef PERCORE_XDP_ABI_H
#define PERCORE_XDP_ABI_H

#define XDP_MAX_WORKERS 64      /* MAX_WORKERS */

/* Indexes into `counts`, a per-CPU array: each CPU counts what it ran. */
enum {
    XDP_CNT_PASSED,             /* not a UDP datagram to percore's port */
    XDP_CNT_UNPARSABLE,         /* to percore's port, but no key to steer by */
    XDP_CNT_NO_CPU,             /* the owner's CPU is missing from the cpumap */
    XDP_CNT_CSUM_PARTIAL,       /* checksum left to offload by a local sender */
    XDP_CNT_ARRIVED,            /* steered packets, counted on the CPU they reached */
    XDP_CNT_REDIRECTED,         /* + worker: steered to that worker's CPU */
    XDP_CNT_N = XDP_CNT_REDIRECTED + XDP_MAX_WORKERS,
};

#endif
