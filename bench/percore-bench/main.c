/* main.c - percore-bench command line: option parsing, signal handling, and the
 * loop over servers and offered loads (sweep). Runs on the main thread; the
 * measuring happens in engine.c's worker threads. */
#include "bench.h"
#include "udp.h"
#include "hgrm.h"
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SERVERS 16
#define MAX_RATES 256

static void usage(FILE *f)
{
    fprintf(f,
"usage: percore-bench [options]\n"
"Open-loop (default) or closed-loop load generator for memcached-protocol servers.\n"
"Target:\n"
"  -s, --server [NAME=]HOST:PORT  server to measure (repeatable; default 127.0.0.1:11211)\n"
"      --proto text|meta|udp      memcached text (get/set) or meta (mg/ms) over TCP, or text\n"
"                                 over UDP (one datagram per request, at most %d bytes:\n"
"                                 a set's key + value must fit in about 1370)\n"
"Load:\n"
"  -r, --rate R           open loop: R requests/s in total, Poisson arrivals (default 10000)\n"
"      --closed           closed loop: keep --depth requests outstanding per connection\n"
"      --depth N          closed loop outstanding per connection (default 1); alias --pipeline\n"
"      --max-outstanding N  open loop cap per connection; later requests wait (and are late)\n"
"  -t, --threads T        generator threads, one epoll loop each (default 1)\n"
"  -c, --conns C          connections per thread (default 4)\n"
"  -d, --duration S       measured seconds (default 10)\n"
"  -n, --requests N       stop after N requests instead (bounded by --duration if given, else 600 s)\n"
"      --spin-us N        open loop: wake N us early and busy-poll to send on time\n"
"                         (costs a core; removes timer wake-up lateness, default 0)\n"
"      --timeout S        a request unanswered S seconds counts as timeout (default 1)\n"
"      --sweep R1,R2,...  open loop at each rate in turn (per server); see --csv\n"
"      --csv FILE         append CSV rows (server,offered,achieved,p50..max in us,errors,timeouts)\n"
"Workload:\n"
"      --keys N           key space (default 100000)\n"
"      --key-size N|A-B|etc    key length (default 16; etc: GEV as in Facebook ETC)\n"
"      --value-size N|A-B|etc  value length (default 100; etc: generalized Pareto, ETC)\n"
"      --value-max N      clamp for etc values (default 500000)\n"
"      --get-ratio F      fraction of gets (default 0.9), the rest are sets\n"
"      --dist uniform|zipf  key popularity (default uniform); --skew S for zipf (0.99)\n"
"      --multiget K       keys per get (default 1, max %d)\n"
"      --warmup           set every key once (closed loop) before measuring\n"
"      --miss-set         after a get misses, set the missed key (hit-ratio experiments)\n"
"      --seed N           random seed (default 1)\n"
"Output:\n"
"      --json             one JSON object per run on stdout instead of the table\n"
"      --hgrm FILE        HdrHistogram percentile distribution (.hgrm, ms) of all requests'\n"
"                         latency; with several runs the Nth (N > 1) goes to FILE-N\n"
"  -V, --version          print the version and exit\n"
"      --tls              TCP connections speak TLS (server started with -Z; not verified)\n"
"  -q, --quiet            no progress line on stderr\n"
"  -h, --help\n", UDP_MAX_DATAGRAM, PB_MAX_MULTIGET);
}

/* The Nth run's distribution: FILE for the first, FILE-N after. */
static int write_hgrm(const char *file, int n, const struct hist *h)
{
    char name[4096];
    if (n == 1)
        snprintf(name, sizeof name, "%s", file);
    else
        snprintf(name, sizeof name, "%s-%d", file, n);
    FILE *f = fopen(name, "w");
    if (!f) {
        perror(name);
        return -1;
    }
    hgrm_write(f, h);
    return fclose(f) == 0 ? 0 : -1;
}

static void on_sigint(int sig)
{
    (void)sig;
    pb_stop = pb_stop ? 2 : 1;
}

struct target { char *name, *host; int port; char *mem[2]; };

static int parse_target(const char *arg, struct target *t)
{
    char *s = strdup(arg);
    t->mem[0] = s;
    t->mem[1] = NULL;
    char *eq = strchr(s, '=');
    char *hp = s;
    if (eq) {
        *eq = 0;
        hp = eq + 1;
    }
    char *colon = strrchr(hp, ':');
    if (!colon)
        return -1;
    *colon = 0;
    t->port = atoi(colon + 1);
    if (t->port <= 0 || t->port > 65535)
        return -1;
    t->host = hp;
    if (*hp == '[' && colon[-1] == ']') { /* [::1]:11211 */
        colon[-1] = 0;
        t->host = hp + 1;
    }
    if (eq) {
        t->name = s;
    } else {
        t->name = t->mem[1] = strdup(arg);
    }
    return 0;
}

static int parse_rates(const char *s, double *rates)
{
    int n = 0;
    char *d = strdup(s), *save = NULL;
    for (char *tok = strtok_r(d, ",", &save); tok && n < MAX_RATES; tok = strtok_r(NULL, ",", &save)) {
        char *end;
        double v = strtod(tok, &end);
        if (end == tok || v <= 0) {
            free(d);
            return -1;
        }
        if (*end == 'k' || *end == 'K')
            v *= 1000;
        rates[n++] = v;
    }
    free(d);
    return n;
}

enum {
    O_PROTO = 256, O_CLOSED, O_DEPTH, O_MAXOUT, O_TIMEOUT, O_SWEEP, O_CSV, O_KEYS, O_KSIZE, O_VSIZE,
    O_VMAX, O_GETR, O_DIST, O_SKEW, O_MULTI, O_WARM, O_MISS, O_SEED, O_JSON, O_HOST, O_PORT, O_SPIN,
    O_HGRM, O_TLS
};

int main(int argc, char **argv)
{
    struct config c;
    config_defaults(&c);
    static const struct option opts[] = {
        { "server", required_argument, 0, 's' },   { "host", required_argument, 0, O_HOST },
        { "port", required_argument, 0, O_PORT },   { "proto", required_argument, 0, O_PROTO },
        { "rate", required_argument, 0, 'r' },      { "closed", no_argument, 0, O_CLOSED },
        { "depth", required_argument, 0, O_DEPTH }, { "pipeline", required_argument, 0, O_DEPTH },
        { "max-outstanding", required_argument, 0, O_MAXOUT },
        { "threads", required_argument, 0, 't' },   { "conns", required_argument, 0, 'c' },
        { "duration", required_argument, 0, 'd' },  { "requests", required_argument, 0, 'n' },
        { "timeout", required_argument, 0, O_TIMEOUT }, { "sweep", required_argument, 0, O_SWEEP },
        { "csv", required_argument, 0, O_CSV },     { "keys", required_argument, 0, O_KEYS },
        { "key-size", required_argument, 0, O_KSIZE }, { "value-size", required_argument, 0, O_VSIZE },
        { "value-max", required_argument, 0, O_VMAX }, { "get-ratio", required_argument, 0, O_GETR },
        { "dist", required_argument, 0, O_DIST },   { "skew", required_argument, 0, O_SKEW },
        { "multiget", required_argument, 0, O_MULTI }, { "warmup", no_argument, 0, O_WARM },
        { "miss-set", no_argument, 0, O_MISS },     { "seed", required_argument, 0, O_SEED },
        { "spin-us", required_argument, 0, O_SPIN },
        { "tls", no_argument, 0, O_TLS },
        { "json", no_argument, 0, O_JSON },         { "quiet", no_argument, 0, 'q' },
        { "hgrm", required_argument, 0, O_HGRM },   { "version", no_argument, 0, 'V' },
        { "help", no_argument, 0, 'h' },            { 0, 0, 0, 0 }
    };
    struct target targets[MAX_SERVERS];
    int ntargets = 0;
    double rates[MAX_RATES];
    int nrates = 0;
    const char *hgrm = NULL;
    int runs = 0;
    const char *csv = NULL, *ksz = "16", *vsz = "100", *host = NULL;
    int port = 0, json = 0, duration_given = 0;
    uint32_t vmax = 500000;
    int o;
    while ((o = getopt_long(argc, argv, "s:r:t:c:d:n:qhV", opts, NULL)) != -1) {
        switch (o) {
        case 's':
            if (ntargets >= MAX_SERVERS || parse_target(optarg, &targets[ntargets])) {
                fprintf(stderr, "percore-bench: bad --server %s (want [NAME=]HOST:PORT)\n", optarg);
                return 2;
            }
            ntargets++;
            break;
        case O_HOST: host = optarg; break;
        case O_PORT: port = atoi(optarg); break;
        case O_PROTO:
            if (!strcmp(optarg, "text"))
                c.proto = PROTO_TEXT;
            else if (!strcmp(optarg, "meta"))
                c.proto = PROTO_META;
            else if (!strcmp(optarg, "udp"))
                c.proto = PROTO_UDP;
            else {
                fprintf(stderr, "percore-bench: --proto text|meta|udp\n");
                return 2;
            }
            break;
        case 'r': c.rate = strtod(optarg, NULL); break;
        case O_CLOSED: c.closed = 1; break;
        case O_DEPTH: c.depth = atoi(optarg); break;
        case O_MAXOUT: c.max_outstanding = atoi(optarg); break;
        case 't': c.threads = atoi(optarg); break;
        case 'c': c.conns = atoi(optarg); break;
        case 'd': c.duration = strtod(optarg, NULL); duration_given = 1; break;
        case 'n': c.requests = strtoull(optarg, NULL, 10); break;
        case O_TIMEOUT: c.timeout = strtod(optarg, NULL); break;
        case O_SWEEP:
            nrates = parse_rates(optarg, rates);
            if (nrates <= 0) {
                fprintf(stderr, "percore-bench: bad --sweep list\n");
                return 2;
            }
            break;
        case O_CSV: csv = optarg; break;
        case O_KEYS: c.keys = strtoull(optarg, NULL, 10); break;
        case O_KSIZE: ksz = optarg; break;
        case O_VSIZE: vsz = optarg; break;
        case O_VMAX: vmax = (uint32_t)strtoul(optarg, NULL, 10); break;
        case O_GETR: c.get_ratio = strtod(optarg, NULL); break;
        case O_DIST:
            if (!strcmp(optarg, "uniform"))
                c.dist = KD_UNIFORM;
            else if (!strcmp(optarg, "zipf"))
                c.dist = KD_ZIPF;
            else {
                fprintf(stderr, "percore-bench: --dist uniform|zipf\n");
                return 2;
            }
            break;
        case O_SKEW: c.skew = strtod(optarg, NULL); break;
        case O_MULTI: c.multiget = atoi(optarg); break;
        case O_WARM: c.warmup = 1; break;
        case O_MISS: c.miss_set = 1; break;
        case O_SEED: c.seed = strtoull(optarg, NULL, 10); break;
        case O_JSON: json = 1; break;
        case O_SPIN: c.spin_us = atoi(optarg); break;
        case O_TLS: c.tls = 1; break;
        case 'q': c.quiet = 1; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("percore-bench " PB_VERSION "\n"); return 0;
        case O_HGRM: hgrm = optarg; break;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "percore-bench: unexpected argument %s\n", argv[optind]);
        return 2;
    }
    if (sizespec_parse(&c.ksize, ksz, 8, PB_MAX_KEY) || sizespec_parse(&c.vsize, vsz, 1, vmax)) {
        fprintf(stderr, "percore-bench: bad --key-size/--value-size (N, A-B or etc)\n");
        return 2;
    }
    c.ksize.key = 1;
    if (c.ksize.b > PB_MAX_KEY) {
        fprintf(stderr, "percore-bench: keys are at most %d bytes\n", PB_MAX_KEY);
        return 2;
    }
    if (c.threads < 1 || c.conns < 1 || c.depth < 1 || c.max_outstanding < 1 || c.keys < 1 ||
        c.multiget < 1 || c.multiget > PB_MAX_MULTIGET || c.get_ratio < 0 || c.get_ratio > 1 ||
        c.timeout <= 0 || c.duration <= 0 || (!c.closed && c.rate <= 0) || c.skew < 0) {
        fprintf(stderr, "percore-bench: option out of range (see --help)\n");
        return 2;
    }
    if (c.tls && c.proto == PROTO_UDP) {
        fprintf(stderr, "percore-bench: --tls is for TCP (--proto text|meta)\n");
        return 2;
    }
    if (c.proto == PROTO_UDP) {
        /* every request must fit in one datagram; the slot index is part of the 16-bit id */
        uint32_t kmax = c.ksize.kind == SZ_FIXED ? c.ksize.a : c.ksize.b;
        uint32_t vmx = c.vsize.kind == SZ_FIXED ? c.vsize.a : c.vsize.b;
        uint32_t kl[PB_MAX_MULTIGET];
        for (int i = 0; i < c.multiget; i++)
            kl[i] = kmax;
        int sets = c.get_ratio < 1 || c.warmup || c.miss_set;
        if (sets && udp_set_size(kmax, vmx) > UDP_MAX_DATAGRAM) {
            fprintf(stderr, "percore-bench: --proto udp: a set of a %u-byte key and a %u-byte value needs %zu "
                    "bytes, more than one %d-byte datagram (lower --value-size/--value-max/--key-size)\n",
                    kmax, vmx, udp_set_size(kmax, vmx), UDP_MAX_DATAGRAM);
            return 2;
        }
        if (udp_get_size(kl, c.multiget) > UDP_MAX_DATAGRAM) {
            fprintf(stderr, "percore-bench: --proto udp: a get of %d keys of %u bytes does not fit in one "
                    "%d-byte datagram\n", c.multiget, kmax, UDP_MAX_DATAGRAM);
            return 2;
        }
        int64_t cap = c.closed ? (int64_t)c.depth * (c.multiget + 1) : c.max_outstanding;
        if (cap > 32768) {
            fprintf(stderr, "percore-bench: --proto udp: at most 32768 requests outstanding per socket "
                    "(--max-outstanding, --depth)\n");
            return 2;
        }
    }
    if (c.requests && !duration_given)
        c.duration = 600; /* --requests: still bounded */
    if (host || port || !ntargets) {
        if (ntargets < MAX_SERVERS) {
            targets[ntargets].host = (char *)(host ? host : "127.0.0.1");
            targets[ntargets].port = port ? port : 11211;
            char *nm = malloc(300);
            snprintf(nm, 300, "%s:%d", targets[ntargets].host, targets[ntargets].port);
            targets[ntargets].name = nm;
            targets[ntargets].mem[0] = nm;
            targets[ntargets].mem[1] = NULL;
            if (!ntargets || host || port)
                ntargets++;
            else
                free(nm);
        }
    }
    if (nrates && c.closed) {
        fprintf(stderr, "percore-bench: --sweep is for open loop (drop --closed)\n");
        return 2;
    }
    if (!nrates)
        rates[nrates++] = c.rate;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    FILE *cf = NULL;
    if (csv) {
        cf = !strcmp(csv, "-") ? stdout : fopen(csv, "a");
        if (!cf) {
            perror(csv);
            return 2;
        }
        if (cf != stdout && ftell(cf) == 0)
            report_csv_header(cf);
        else if (cf == stdout)
            report_csv_header(cf);
    }
    struct result *r = malloc(sizeof *r);
    int rc = 0;
    for (int s = 0; s < ntargets && !pb_stop; s++) {
        c.name = targets[s].name;
        c.host = targets[s].host;
        c.port = targets[s].port;
        int warm = c.warmup;
        for (int i = 0; i < nrates && !pb_stop; i++) {
            c.rate = rates[i];
            if (bench_run(&c, r)) {
                rc = 1;
                break;
            }
            c.warmup = 0; /* once per server */
            if (json)
                report_json(stdout, &c, r);
            else if (cf != stdout)
                report_human(stdout, &c, r);
            if (cf) {
                report_csv_row(cf, &c, r);
                fflush(cf);
            }
            if (hgrm && write_hgrm(hgrm, ++runs, &r->all) < 0)
                rc = 1;
            fflush(stdout);
        }
        c.warmup = warm;
    }
    if (cf && cf != stdout)
        fclose(cf);
    free(r);
    for (int s = 0; s < ntargets; s++) {
        free(targets[s].mem[0]);
        free(targets[s].mem[1]);
    }
    return rc;
}
