/* bench.h - configuration and results of one percore-bench run, and the entry
 * point that runs it (engine.c). The config is read-only while a run is going;
 * struct result is filled by bench_run() from the workers' private counters after
 * they have joined. */
#ifndef PB_BENCH_H
#define PB_BENCH_H
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include "dist.h"
#include "hist.h"
#include "proto.h"

/* Released with the server of the same version (src/util/options.c). */
#define PB_VERSION "0.1.0"

struct config {
    const char *name;       /* server label, for reports */
    const char *host;
    int port;
    int threads, conns;     /* conns per thread */
    int closed;             /* 0: open loop (Poisson), 1: closed loop */
    double rate;            /* open loop: total requests/s */
    int depth;              /* closed loop: outstanding per connection */
    int max_outstanding;    /* open loop: cap per connection (excess waits, late) */
    uint64_t keys;
    struct sizespec ksize, vsize;
    double get_ratio;
    enum keydist dist;
    double skew;
    int multiget;
    int warmup;
    int miss_set;
    double duration;        /* seconds (used when requests == 0) */
    uint64_t requests;      /* total requests, 0: use duration */
    double timeout;         /* seconds */
    enum proto_kind proto;
    int quiet;
    int spin_us;            /* open loop: busy-poll this long before each arrival */
    uint64_t seed;
    int tls;                /* --tls: TCP connections speak TLS (tls.c) */
};

struct result {
    const char *mode;       /* "open" or "closed" */
    double offered_rps;     /* open loop: configured rate; closed: 0 */
    double achieved_rps;    /* replies received inside the window / window */
    double window_s;        /* measurement window */
    uint64_t scheduled;     /* open loop: arrivals due inside the window */
    uint64_t sent, completed, completed_in_window;
    uint64_t gets, sets, fills;
    uint64_t hits, misses, notstored;
    uint64_t errors, timeouts, unsent;
    uint64_t udp_stray;     /* UDP: datagrams matching no request in flight (late, duplicate) */
    uint64_t warmup_sets;
    double warmup_s;
    int interrupted;
    struct hist all, get, set;
    struct hist late;       /* open loop: actual send - scheduled send (the tool's own lag) */
};

/* Set by the SIGINT handler: 1 = stop and drain, 2 = stop now. */
extern volatile sig_atomic_t pb_stop;

void config_defaults(struct config *c);
/* Runs warmup (if c->warmup) then the measured phase. Returns 0, or -1 when the
 * server cannot be reached (message on stderr). */
int bench_run(const struct config *c, struct result *r);
uint64_t now_ns(void);

/* report.c */
void report_human(FILE *f, const struct config *c, const struct result *r);
void report_json(FILE *f, const struct config *c, const struct result *r);
void report_csv_header(FILE *f);
void report_csv_row(FILE *f, const struct config *c, const struct result *r);
#endif
