/*
 * xdp_steer.c — loads the XDP steering program (src/bpf/xdp_steer.bpf.c),
 * fills its maps and attaches it to the interfaces percore's UDP sockets
 * listen on (see xdp_steer.h, docs/steering.md). The main thread writes
 * everything here before the workers start; afterwards the state is
 * read-only and any thread may read the counters through the map
 * descriptors.
 *
 * Each interface gets its own bpf_link, held by this process and never
 * pinned: when the process exits — cleanly, or killed — the kernel closes
 * the descriptors, the links go, and the program is detached. Nothing is
 * left on an interface for an operator to clean up.
 */
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "util/hash.h"
#include "util/log.h"
#include "util/options.h"
#include "util/xdp_abi.h"
#include "net/xdp_steer.h"

#ifdef HAVE_BPF
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include "xdp_steer.skel.h"
#endif

#define XDP_MAX_IFS   32
#define CPUMAP_QSIZE  2048   /* packets queued per CPU before the kthread drops */

static struct {
#ifdef HAVE_BPF
    struct xdp_steer_bpf *sk;
#endif
    int links[XDP_MAX_IFS];
    int ifindex[XDP_MAX_IFS];
    unsigned nlinks;
    enum xdp_steer_mode mode;
    unsigned nworkers;
    int worker_cpu[XDP_MAX_WORKERS];
    int ncpus;               /* possible CPUs: the per-CPU values' count */
} xs;

enum xdp_steer_mode xdp_steer_mode(void)
{
    return xs.mode;
}

#ifdef HAVE_BPF

int xdp_steer_load(uint16_t port, unsigned nworkers, const int *worker_cpu)
{
    if (nworkers == 0 || nworkers > XDP_MAX_WORKERS)
        return -EINVAL;
    for (unsigned i = 0; i < nworkers; i++)
        if (worker_cpu[i] < 0)
            return -ENOENT;   /* an unpinned worker has no CPU to steer to */
    int ncpus = libbpf_num_possible_cpus();
    if (ncpus <= 0)
        return ncpus < 0 ? ncpus : -EINVAL;
    struct xdp_steer_bpf *sk = xdp_steer_bpf__open();
    if (!sk)
        return errno ? -errno : -EINVAL;
    sk->rodata->udp_port = port;
    int err = bpf_map__set_max_entries(sk->maps.cpus, (uint32_t)ncpus);
    if (!err)
        err = xdp_steer_bpf__load(sk);
    if (err) {
        xdp_steer_bpf__destroy(sk);
        return err < 0 ? err : -EINVAL;
    }
    int slots = bpf_map__fd(sk->maps.xslots);
    int wcpu = bpf_map__fd(sk->maps.worker_cpu);
    int cpus = bpf_map__fd(sk->maps.cpus);
    for (uint32_t s = 0; s < SLOT_COUNT && !err; s++) {
        uint32_t owner = slot_owner[s];
        if (bpf_map_update_elem(slots, &s, &owner, BPF_ANY) < 0)
            err = -errno;
    }
    for (uint32_t i = 0; i < nworkers && !err; i++) {
        uint32_t cpu = (uint32_t)worker_cpu[i];
        if (cpu >= (uint32_t)ncpus) {
            err = -ERANGE;
            break;
        }
        /* Each CPU's entry starts a kthread bound to it; the packets
         * redirected there are built into skbs and go up the stack on it,
         * after xdp_arrived() counted them. */
        struct bpf_cpumap_val v = { .qsize = CPUMAP_QSIZE };
        v.bpf_prog.fd = bpf_program__fd(sk->progs.xdp_arrived);
        if (bpf_map_update_elem(wcpu, &i, &cpu, BPF_ANY) < 0 ||
            bpf_map_update_elem(cpus, &cpu, &v, BPF_ANY) < 0)
            err = -errno;
    }
    if (err) {
        xdp_steer_bpf__destroy(sk);
        return err;
    }
    xs.sk = sk;
    xs.nworkers = nworkers;
    xs.ncpus = ncpus;
    for (unsigned i = 0; i < nworkers; i++)
        xs.worker_cpu[i] = worker_cpu[i];
    return 0;
}

int xdp_steer_prog_fd(void)
{
    return xs.sk ? bpf_program__fd(xs.sk->progs.xdp_steer) : -EBADF;
}

int xdp_steer_read(uint64_t *out, unsigned n, uint64_t *per_cpu, unsigned ncpu)
{
    if (!xs.sk)
        return -EBADF;
    uint64_t vals[xs.ncpus];   /* 8-byte values: no padding between CPUs */
    int fd = bpf_map__fd(xs.sk->maps.counts);
    for (uint32_t i = 0; i < n && i < XDP_CNT_N; i++) {
        if (bpf_map_lookup_elem(fd, &i, vals) < 0)
            return -errno;
        out[i] = 0;
        for (int c = 0; c < xs.ncpus; c++)
            out[i] += vals[c];
        if (i == XDP_CNT_ARRIVED && per_cpu)
            for (unsigned c = 0; c < ncpu; c++)
                per_cpu[c] = (int)c < xs.ncpus ? vals[c] : 0;
    }
    return 0;
}

void xdp_steer_close(void)
{
    for (unsigned i = 0; i < xs.nlinks; i++)
        close(xs.links[i]);
    xs.nlinks = 0;
    xs.mode = XDP_MODE_OFF;
    if (xs.sk)
        xdp_steer_bpf__destroy(xs.sk);
    xs.sk = NULL;
}

/* Attach to one interface: native first, then generic unless native_only.
 * Returns the link's descriptor or -errno (the native attempt's error when
 * native was all that was allowed). */
static int attach_one(int ifindex, bool native_only, enum xdp_steer_mode *got)
{
    int prog = bpf_program__fd(xs.sk->progs.xdp_steer);
    LIBBPF_OPTS(bpf_link_create_opts, o, .flags = XDP_FLAGS_DRV_MODE);
    int fd = bpf_link_create(prog, ifindex, BPF_XDP, &o);
    if (fd >= 0) {
        *got = XDP_MODE_NATIVE;
        return fd;
    }
    int err = -errno;
    if (native_only || err == -EBUSY || err == -EEXIST)   /* another program holds it */
        return err;
    o.flags = XDP_FLAGS_SKB_MODE;
    fd = bpf_link_create(bpf_program__fd(xs.sk->progs.xdp_steer_skb), ifindex, BPF_XDP, &o);
    if (fd < 0)
        return -errno;
    *got = XDP_MODE_GENERIC;
    return fd;
}

#else  /* !HAVE_BPF */

int xdp_steer_load(uint16_t port, unsigned nworkers, const int *worker_cpu)
{
    (void)port;
    (void)nworkers;
    (void)worker_cpu;
    return -ENOSYS;
}

int xdp_steer_prog_fd(void)
{
    return -ENOSYS;
}

int xdp_steer_read(uint64_t *out, unsigned n, uint64_t *per_cpu, unsigned ncpu)
{
    (void)out;
    (void)n;
    (void)per_cpu;
    (void)ncpu;
    return -ENOSYS;
}

void xdp_steer_close(void)
{
}

static int attach_one(int ifindex, bool native_only, enum xdp_steer_mode *got)
{
    (void)ifindex;
    (void)native_only;
    (void)got;
    return -ENOSYS;
}

#endif

/* ---- which interfaces --------------------------------------------------- */

static bool same_addr(const struct sockaddr *a, const struct sockaddr_storage *b)
{
    if (a->sa_family != b->ss_family)
        return false;
    if (a->sa_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                   &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr));
}

static bool is_wildcard(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
    return !memcmp(&((const struct sockaddr_in6 *)ss)->sin6_addr, &in6addr_any,
                   sizeof(struct in6_addr));
}

static void add_if(int *ifs, unsigned *n, int ifindex)
{
    for (unsigned i = 0; i < *n; i++)
        if (ifs[i] == ifindex)
            return;
    if (ifindex > 0 && *n < XDP_MAX_IFS)
        ifs[(*n)++] = ifindex;
}

/* The interfaces a datagram to these sockets can arrive on; *loopback
 * tells whether one of them is a loopback device. */
static int find_ifs(const int *group_fds, unsigned ngroups, int *ifs, unsigned *nifs, bool *loopback)
{
    struct ifaddrs *all;
    if (getifaddrs(&all) < 0)
        return -errno;
    *nifs = 0;
    for (unsigned g = 0; g < ngroups; g++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        if (getsockname(group_fds[g], (struct sockaddr *)&ss, &sl) < 0) {
            freeifaddrs(all);
            return -errno;
        }
        bool any = is_wildcard(&ss);
        for (struct ifaddrs *a = all; a; a = a->ifa_next) {
            if (!a->ifa_addr || !(a->ifa_flags & IFF_UP))
                continue;
            /* A wildcard socket hears every interface; loopback traffic
             * is left to the socket-level program (it never met a NIC). */
            if (any ? !(a->ifa_flags & IFF_LOOPBACK) : same_addr(a->ifa_addr, &ss)) {
                add_if(ifs, nifs, (int)if_nametoindex(a->ifa_name));
                *loopback |= (a->ifa_flags & IFF_LOOPBACK) != 0;
            }
        }
    }
    freeifaddrs(all);
    return 0;
}

/* ---- set-up ------------------------------------------------------------- */

int xdp_steer_setup(const int *group_fds, unsigned ngroups, uint16_t port,
                    unsigned nworkers, const int *worker_cpu, int mode)
{
    bool must = mode == STEER_XDP;
    const char *why = NULL;
    int ifs[XDP_MAX_IFS];
    unsigned nifs = 0;
    bool loopback = false;
    int err = find_ifs(group_fds, ngroups, ifs, &nifs, &loopback);
    if (!err && nifs == 0) {
        err = -ENODEV;
        why = "no interface carries the UDP listen address";
    }
    /* auto wants native mode everywhere, which loopback never has: say so
     * without loading anything (the default -l 127.0.0.1 ends here). */
    if (!err && !must && loopback) {
        err = -EOPNOTSUPP;
        why = "loopback has no native XDP";
    }
    if (!err) {
        err = xdp_steer_load(port, nworkers, worker_cpu);
        if (err == -ENOENT)
            why = "a worker is not pinned to a CPU (see --cpus)";
    }
    enum xdp_steer_mode mode_all = XDP_MODE_NATIVE;
    char ifname[IF_NAMESIZE] = "";   /* the interface an attachment failed on */
    for (unsigned i = 0; !err && i < nifs; i++) {
        enum xdp_steer_mode got = XDP_MODE_OFF;
        int fd = attach_one(ifs[i], !must, &got);
        if (!if_indextoname((unsigned)ifs[i], ifname))
            snprintf(ifname, sizeof ifname, "#%d", ifs[i]);
        if (fd < 0) {
            err = fd;
            if (err == -EBUSY || err == -EEXIST)
                why = "another XDP program is attached there";
            break;
        }
        xs.links[xs.nlinks] = fd;
        xs.ifindex[xs.nlinks++] = ifs[i];
        if (got == XDP_MODE_GENERIC) {
            mode_all = XDP_MODE_GENERIC;
            log_warn("XDP steering on %s: generic mode (the driver has no native XDP), "
                     "so the program runs after the kernel built the skb", ifname);
        } else {
            log_info("XDP steering on %s: native mode", ifname);
        }
    }
    if (!err) {
        xs.mode = mode_all;
#ifdef HAVE_BPF
        struct bpf_prog_info info = {0};
        uint32_t len = sizeof info;
        if (bpf_obj_get_info_by_fd(xdp_steer_prog_fd(), &info, &len) == 0)
            log_info("UDP steering: XDP program '%s' id %u on %u interface(s), redirecting "
                     "to the owners' CPUs (bpftool net show)", info.name, info.id, nifs);
#endif
        return 0;
    }
    xdp_steer_close();
    if (must) {
        log_err("--steering=xdp: cannot attach the XDP steering program%s%s: %s%s%s",
                ifname[0] ? " to " : "", ifname, why ? why : strerror(-err),
                err == -EPERM ? " (needs CAP_BPF and CAP_NET_ADMIN, or root)"
                : err == -ENOSYS ? " (built without libbpf)" : "",
                err == -EOPNOTSUPP ? " (the kernel cannot run XDP there)" : "");
        return -1;
    }
    log_info("UDP steering: XDP not attached (%s%s%s); steering at the socket only",
             why ? why : strerror(-err), ifname[0] ? " on " : "", ifname);
    return 0;
}

/* ---- stats -------------------------------------------------------------- */

void xdp_steer_stats(struct stats_out *so, unsigned nworkers)
{
    if (xs.mode == XDP_MODE_OFF)
        return;
    uint64_t c[XDP_CNT_N];
    uint64_t arrived[XDP_MAX_WORKERS * 4] = {0};
    unsigned ncpu = sizeof arrived / sizeof arrived[0];
    if (xdp_steer_read(c, XDP_CNT_N, arrived, ncpu) < 0)
        return;
    uint64_t redirected = 0;
    for (unsigned i = 0; i < nworkers && i < XDP_MAX_WORKERS; i++)
        redirected += c[XDP_CNT_REDIRECTED + i];
    stats_emitf(so, "xdp_redirected", "%llu", (unsigned long long)redirected);
    stats_emitf(so, "xdp_passed", "%llu", (unsigned long long)c[XDP_CNT_PASSED]);
    stats_emitf(so, "xdp_unparsable", "%llu", (unsigned long long)c[XDP_CNT_UNPARSABLE]);
    stats_emitf(so, "xdp_no_cpu", "%llu", (unsigned long long)c[XDP_CNT_NO_CPU]);
    stats_emitf(so, "xdp_csum_partial", "%llu", (unsigned long long)c[XDP_CNT_CSUM_PARTIAL]);
    for (unsigned i = 0; i < nworkers && i < XDP_MAX_WORKERS; i++) {
        char name[48];
        snprintf(name, sizeof name, "worker_%u_xdp_redirected", i);
        stats_emitf(so, name, "%llu", (unsigned long long)c[XDP_CNT_REDIRECTED + i]);
    }
    /* Where the redirected packets went up the stack: one line per CPU
     * that a worker is pinned to. */
    for (unsigned i = 0; i < xs.nworkers; i++) {
        unsigned cpu = (unsigned)xs.worker_cpu[i];
        bool dup = false;
        for (unsigned k = 0; k < i; k++)
            dup |= (unsigned)xs.worker_cpu[k] == cpu;
        if (dup || cpu >= ncpu)
            continue;
        char name[48];
        snprintf(name, sizeof name, "xdp_arrived_cpu_%u", cpu);
        stats_emitf(so, name, "%llu", (unsigned long long)arrived[cpu]);
    }
}
