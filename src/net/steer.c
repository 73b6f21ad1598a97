/*
 * steer.c — attaches UDP request steering to a SO_REUSEPORT group (see
 * steer.h, docs/steering.md). Main thread only, at start-up. Nothing here
 * is kept after set-up: the kernel holds the programs (the reuseport group
 * references the program, the program its maps), so the data path runs
 * with no user-space state from this file.
 *
 *   eBPF  src/bpf/steer.bpf.c: parses the frame and the first key, hashes
 *         it with util/hash.h and picks the owner's socket from a
 *         REUSEPORT_SOCKARRAY through a copy of slot_owner[].
 *         Needs CAP_BPF (or CAP_SYS_ADMIN) to load.
 *   cBPF  a classic program built here: the same FNV-1a, unrolled over 250
 *         bytes, then slot % n as the index into the group. Classic BPF has
 *         no maps, so it can only follow a round-robin slot table (which is
 *         what slots_init() builds). Needs no privilege.
 *   hash  the kernel's own 4-tuple hash: no steering, workers forward.
 */
#include <errno.h>
#include <linux/filter.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "util/hash.h"
#include "util/log.h"
#include "util/options.h"
#include "net/steer.h"

#ifdef HAVE_BPF
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "steer.skel.h"
#endif

#ifndef SO_ATTACH_REUSEPORT_CBPF
#define SO_ATTACH_REUSEPORT_CBPF 51
#endif
#ifndef SO_ATTACH_REUSEPORT_EBPF
#define SO_ATTACH_REUSEPORT_EBPF 52
#endif

const char *steer_level_name(int level)
{
    switch (level) {
    case STEER_LEVEL_EBPF: return "ebpf";
    case STEER_LEVEL_CBPF: return "cbpf";
    default:               return "off";
    }
}

/* ---- eBPF --------------------------------------------------------------- */

#ifdef HAVE_BPF
static int libbpf_log(enum libbpf_print_level lvl, const char *fmt, va_list ap)
{
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    if (n && line[n - 1] == '\n')
        line[n - 1] = '\0';
    if (lvl != LIBBPF_DEBUG)
        log_debug("libbpf: %s", line);
    return 0;
}

int steer_attach_ebpf(const int *fds, unsigned n)
{
    libbpf_set_print(libbpf_log);
    struct steer_bpf *sk = steer_bpf__open_and_load();
    if (!sk)
        return errno ? -errno : -EPERM;
    int err = 0;
    int slots = bpf_map__fd(sk->maps.slots);
    int socks = bpf_map__fd(sk->maps.socks);
    for (uint32_t s = 0; s < SLOT_COUNT && !err; s++) {
        uint32_t owner = slot_owner[s];
        if (bpf_map_update_elem(slots, &s, &owner, BPF_ANY) < 0)
            err = -errno;
    }
    for (uint32_t i = 0; i < n && !err; i++) {
        uint64_t fd = (uint64_t)fds[i];
        if (bpf_map_update_elem(socks, &i, &fd, BPF_ANY) < 0)
            err = -errno;
    }
    int prog = bpf_program__fd(sk->progs.steer);
    if (!err && setsockopt(fds[0], SOL_SOCKET, SO_ATTACH_REUSEPORT_EBPF, &prog, sizeof prog) < 0)
        err = -errno;
    if (!err) {
        struct bpf_prog_info info = {0};
        uint32_t len = sizeof info;
        if (bpf_obj_get_info_by_fd(prog, &info, &len) == 0)
            log_info("UDP steering: eBPF program '%s' id %u attached (bpftool prog show id %u)",
                     info.name, info.id, info.id);
    }
    /* The group now holds the program and the program its maps. */
    steer_bpf__destroy(sk);
    return err;
}
#else
int steer_attach_ebpf(const int *fds, unsigned n)
{
    (void)fds;
    (void)n;
    return -ENOSYS;
}
#endif

/* ---- classic BPF -------------------------------------------------------- */

#define CB_FALLBACK 0xffffffffu   /* an index past the group: kernel hash */
#define M_OFF 0                   /* scratch: absolute offset of the key */
#define M_H   1                   /* scratch: running hash */
#define CB_MAX 4096               /* BPF_MAXINSNS */

struct cprog {
    struct sock_filter f[CB_MAX];
    unsigned n;
};

static unsigned emit(struct cprog *p, uint16_t code, uint8_t jt, uint8_t jf, uint32_t k)
{
    p->f[p->n] = (struct sock_filter){ code, jt, jf, k };
    return p->n++;
}

#define W4(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (uint32_t)(d))

/*
 * The classic program. Offsets are from the UDP payload (the kernel pulls
 * the UDP header before running a reuseport cBPF filter); loads are
 * big-endian. Layout:
 *   frame check; command -> key offset (M_OFF), walking over gat's
 *   exptime; 250 unrolled FNV-1a steps,
 *   each ending at a space, CR or LF; fold to a slot; slot % n.
 * Loads past the datagram end the program with 0 (socket 0): only
 * malformed datagrams get there, and workers forward or drop them.
 */
static int cbpf_build(struct cprog *p, unsigned nworkers)
{
    p->n = 0;
    /* Key offsets are stored by small stubs placed after the dispatch;
     * dispatch jumps are forward and short (8-bit), so they come first
     * with placeholders patched below. */
    enum { K3, K4, K5, K6, K7, K8, NK, GAT4 = NK, GAT5, NSTUB };
    static const uint32_t koff[NK] = { 11, 12, 13, 14, 15, 16 };
    unsigned patch[32][2];   /* (insn, stub) pairs: jt to fix */
    unsigned npatch = 0;
#define JEQ_STUB(k, stub) do { patch[npatch][0] = p->n; patch[npatch][1] = (stub); npatch++; \
        emit(p, BPF_JMP | BPF_JEQ | BPF_K, 0, 0, (k)); } while (0)

    emit(p, BPF_LD | BPF_H | BPF_ABS, 0, 0, 4);                /* datagram count */
    emit(p, BPF_JMP | BPF_JEQ | BPF_K, 1, 0, 1);
    emit(p, BPF_RET | BPF_K, 0, 0, CB_FALLBACK);
    emit(p, BPF_LD | BPF_W | BPF_ABS, 0, 0, 8);                /* command's first 4 bytes */
    JEQ_STUB(W4('g', 'e', 't', ' '), K4);
    JEQ_STUB(W4('s', 'e', 't', ' '), K4);
    JEQ_STUB(W4('a', 'd', 'd', ' '), K4);
    JEQ_STUB(W4('c', 'a', 's', ' '), K4);
    JEQ_STUB(W4('g', 'a', 't', ' '), GAT4);
    /* Four-letter commands: byte 12 must be the space. */
    unsigned j_gets = p->n;
    emit(p, BPF_JMP | BPF_JEQ | BPF_K, 0, 0, W4('g', 'e', 't', 's'));
    unsigned j_incr = p->n;
    emit(p, BPF_JMP | BPF_JEQ | BPF_K, 0, 0, W4('i', 'n', 'c', 'r'));
    unsigned j_decr = p->n;
    emit(p, BPF_JMP | BPF_JEQ | BPF_K, 0, 0, W4('d', 'e', 'c', 'r'));
    unsigned j_dele = p->n;
    emit(p, BPF_JMP | BPF_JEQ | BPF_K, 0, 0, W4('d', 'e', 'l', 'e'));
    unsigned j_appe = p->n;
    emit(p, BPF_JMP | BPF_JEQ | BPF_K, 0, 0, W4('a', 'p', 'p', 'e'));
    unsigned j_repl = p->n;
    emit(p, BPF_JMP | BPF_JEQ | BPF_K, 0, 0, W4('r', 'e', 'p', 'l'));
    unsigned j_prep = p->n;
    emit(p, BPF_JMP | BPF_JEQ | BPF_K, 0, 0, W4('p', 'r', 'e', 'p'));
    unsigned j_touc = p->n;
    emit(p, BPF_JMP | BPF_JEQ | BPF_K, 0, 0, W4('t', 'o', 'u', 'c'));
    unsigned j_gats = p->n;
    emit(p, BPF_JMP | BPF_JEQ | BPF_K, 0, 0, W4('g', 'a', 't', 's'));
    emit(p, BPF_ALU | BPF_AND | BPF_K, 0, 0, 0xffffff00u);
    JEQ_STUB(W4('m', 'g', ' ', 0), K3);
    JEQ_STUB(W4('m', 's', ' ', 0), K3);
    JEQ_STUB(W4('m', 'd', ' ', 0), K3);
    JEQ_STUB(W4('m', 'a', ' ', 0), K3);
    emit(p, BPF_RET | BPF_K, 0, 0, CB_FALLBACK);

    /* Second words. Each block: load, compare, fall back on mismatch. */
    unsigned blk;
#define SECOND(jfrom, code, k, mask, stub) do { \
        blk = p->n; p->f[jfrom].jt = (uint8_t)(blk - (jfrom) - 1); \
        emit(p, BPF_LD | (code) | BPF_ABS, 0, 0, 12); \
        if (mask) emit(p, BPF_ALU | BPF_AND | BPF_K, 0, 0, (mask)); \
        patch[npatch][0] = p->n; patch[npatch][1] = (stub); npatch++; \
        emit(p, BPF_JMP | BPF_JEQ | BPF_K, 0, 0, (k)); \
        emit(p, BPF_RET | BPF_K, 0, 0, CB_FALLBACK); } while (0)
    SECOND(j_gets, BPF_B, ' ', 0, K5);
    SECOND(j_incr, BPF_B, ' ', 0, K5);
    SECOND(j_decr, BPF_B, ' ', 0, K5);
    SECOND(j_dele, BPF_W, W4('t', 'e', ' ', 0), 0xffffff00u, K7);
    SECOND(j_appe, BPF_W, W4('n', 'd', ' ', 0), 0xffffff00u, K7);
    SECOND(j_repl, BPF_W, W4('a', 'c', 'e', ' '), 0, K8);
    SECOND(j_prep, BPF_W, W4('e', 'n', 'd', ' '), 0, K8);
    SECOND(j_touc, BPF_H, ('h' << 8) | ' ', 0, K6);
    SECOND(j_gats, BPF_B, ' ', 0, GAT5);
#undef SECOND
#undef JEQ_STUB

    /* Stubs: store the key offset and go hash. */
    unsigned stub_at[NSTUB], stub_ja[NSTUB];
    for (int s = 0; s < NK; s++) {
        stub_at[s] = emit(p, BPF_LD | BPF_IMM, 0, 0, koff[s]);
        emit(p, BPF_ST, 0, 0, M_OFF);
        stub_ja[s] = emit(p, BPF_JMP | BPF_JA, 0, 0, 0);
    }
    /* gat/gats <exptime> <key>: X walks over an optional '-' and up to 11
     * digits; the key starts after the space that must follow. */
    for (int s = GAT4; s < NSTUB; s++) {
        stub_at[s] = emit(p, BPF_LDX | BPF_IMM, 0, 0, s == GAT4 ? 12 : 13);
        emit(p, BPF_LD | BPF_B | BPF_IND, 0, 0, 0);
        emit(p, BPF_JMP | BPF_JEQ | BPF_K, 0, 3, '-');
        emit(p, BPF_MISC | BPF_TXA, 0, 0, 0);
        emit(p, BPF_ALU | BPF_ADD | BPF_K, 0, 0, 1);
        emit(p, BPF_MISC | BPF_TAX, 0, 0, 0);
        unsigned digit_out[11];
        for (int d = 0; d < 11; d++) {
            emit(p, BPF_LD | BPF_B | BPF_IND, 0, 0, 0);
            digit_out[d] = emit(p, BPF_JMP | BPF_JGE | BPF_K, 0, 0, '0');
            emit(p, BPF_JMP | BPF_JGT | BPF_K, 0, 0, '9');   /* jt patched below */
            emit(p, BPF_MISC | BPF_TXA, 0, 0, 0);
            emit(p, BPF_ALU | BPF_ADD | BPF_K, 0, 0, 1);
            emit(p, BPF_MISC | BPF_TAX, 0, 0, 0);
        }
        unsigned out = emit(p, BPF_LD | BPF_B | BPF_IND, 0, 0, 0);
        for (int d = 0; d < 11; d++) {
            p->f[digit_out[d]].jf = (uint8_t)(out - digit_out[d] - 1);
            p->f[digit_out[d] + 1].jt = (uint8_t)(out - digit_out[d] - 2);
        }
        emit(p, BPF_JMP | BPF_JEQ | BPF_K, 1, 0, ' ');
        emit(p, BPF_RET | BPF_K, 0, 0, CB_FALLBACK);
        emit(p, BPF_MISC | BPF_TXA, 0, 0, 0);
        emit(p, BPF_ALU | BPF_ADD | BPF_K, 0, 0, 1);
        emit(p, BPF_ST, 0, 0, M_OFF);
        stub_ja[s] = emit(p, BPF_JMP | BPF_JA, 0, 0, 0);
    }
    for (unsigned i = 0; i < npatch; i++) {
        unsigned d = stub_at[patch[i][1]] - patch[i][0] - 1;
        if (d > 255)
            return -E2BIG;
        p->f[patch[i][0]].jt = (uint8_t)d;
    }
    unsigned hash_at = emit(p, BPF_LD | BPF_IMM, 0, 0, 2166136261u);
    for (int s = 0; s < NSTUB; s++)
        p->f[stub_ja[s]].k = hash_at - stub_ja[s] - 1;
    emit(p, BPF_ST, 0, 0, M_H);

    /* One FNV-1a step per key byte; the step that meets the key's end
     * jumps to `end` through its own trampoline (conditional jumps reach
     * only 255 instructions). */
    unsigned tramp[KEY_MAX_LENGTH];
    for (unsigned i = 0; i < KEY_MAX_LENGTH; i++) {
        emit(p, BPF_LDX | BPF_MEM, 0, 0, M_OFF);
        emit(p, BPF_LD | BPF_B | BPF_IND, 0, 0, i);
        emit(p, BPF_JMP | BPF_JEQ | BPF_K, 8, 0, ' ');
        emit(p, BPF_JMP | BPF_JEQ | BPF_K, 7, 0, '\n');
        emit(p, BPF_JMP | BPF_JEQ | BPF_K, 6, 0, '\r');
        emit(p, BPF_MISC | BPF_TAX, 0, 0, 0);
        emit(p, BPF_LD | BPF_MEM, 0, 0, M_H);
        emit(p, BPF_ALU | BPF_XOR | BPF_X, 0, 0, 0);
        emit(p, BPF_ALU | BPF_MUL | BPF_K, 0, 0, 16777619u);
        emit(p, BPF_ST, 0, 0, M_H);
        emit(p, BPF_JMP | BPF_JA, 0, 0, 1);
        tramp[i] = emit(p, BPF_JMP | BPF_JA, 0, 0, 0);
    }
    /* 250 bytes without an end: longer than any valid key. */
    emit(p, BPF_LDX | BPF_MEM, 0, 0, M_OFF);
    emit(p, BPF_LD | BPF_B | BPF_IND, 0, 0, KEY_MAX_LENGTH);
    emit(p, BPF_JMP | BPF_JEQ | BPF_K, 3, 0, ' ');
    emit(p, BPF_JMP | BPF_JEQ | BPF_K, 2, 0, '\n');
    emit(p, BPF_JMP | BPF_JEQ | BPF_K, 1, 0, '\r');
    emit(p, BPF_RET | BPF_K, 0, 0, CB_FALLBACK);
    unsigned end = p->n;
    for (unsigned i = 0; i < KEY_MAX_LENGTH; i++)
        p->f[tramp[i]].k = end - tramp[i] - 1;
    /* key_slot(): (h ^ h >> 16) & (SLOT_COUNT - 1), then slot_owner[]. */
    emit(p, BPF_LD | BPF_MEM, 0, 0, M_H);
    emit(p, BPF_ALU | BPF_RSH | BPF_K, 0, 0, 16);
    emit(p, BPF_MISC | BPF_TAX, 0, 0, 0);
    emit(p, BPF_LD | BPF_MEM, 0, 0, M_H);
    emit(p, BPF_ALU | BPF_XOR | BPF_X, 0, 0, 0);
    emit(p, BPF_ALU | BPF_AND | BPF_K, 0, 0, SLOT_COUNT - 1);
    emit(p, BPF_ALU | BPF_MOD | BPF_K, 0, 0, nworkers);
    emit(p, BPF_RET | BPF_A, 0, 0, 0);
    return 0;
}

int steer_attach_cbpf(int fd, unsigned n)
{
    /* Classic BPF cannot read a table: it only matches slots_init()'s
     * round-robin layout. */
    for (unsigned s = 0; s < SLOT_COUNT; s++)
        if (slot_owner[s] != s % n)
            return -ENOTSUP;
    static struct cprog p;   /* main thread, start-up only */
    int err = cbpf_build(&p, n);
    if (err)
        return err;
    struct sock_fprog fp = { .len = (unsigned short)p.n, .filter = p.f };
    if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &fp, sizeof fp) < 0)
        return -errno;
    log_debug("UDP steering: classic BPF program of %u instructions attached", p.n);
    return 0;
}

/* ---- choosing a level --------------------------------------------------- */

int steer_attach(const int *fds, unsigned n, int mode)
{
    int err;
    if (mode == STEER_OFF)
        return STEER_LEVEL_HASH;
    /* XDP steering keeps the socket-level eBPF program behind it. */
    if (mode == STEER_EBPF || mode == STEER_AUTO || mode == STEER_XDP) {
        err = steer_attach_ebpf(fds, n);
        if (!err)
            return STEER_LEVEL_EBPF;
        if (mode != STEER_AUTO) {
            log_err("--steering=%s: cannot load the eBPF steering program: %s%s",
                    mode == STEER_XDP ? "xdp" : "ebpf", strerror(-err),
                    err == -EPERM ? " (needs CAP_BPF and CAP_NET_ADMIN, or root)"
                    : err == -ENOSYS ? " (built without libbpf)" : "");
            return -1;
        }
        log_info("UDP steering: eBPF unavailable (%s); trying classic BPF", strerror(-err));
    }
    err = steer_attach_cbpf(fds[0], n);
    if (!err)
        return STEER_LEVEL_CBPF;
    if (mode == STEER_CBPF) {
        log_err("--steering=cbpf: cannot attach the classic BPF steering program: %s",
                strerror(-err));
        return -1;
    }
    log_info("UDP steering: classic BPF unavailable (%s); using the kernel's hash", strerror(-err));
    return STEER_LEVEL_HASH;
}
