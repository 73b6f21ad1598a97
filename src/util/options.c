/*
 * options.c — command-line parsing with memcached's flags and percore's
 * long options, and the start-up checks memcached makes. The option table
 * drives both getopt_long and --help. Runs on the main thread only.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include "util/log.h"
#include "util/topk.h"
#include "util/options.h"
#include "util/tls_opts.h"

struct settings settings;

#define VERSION_STRING "percore 0.1.0 (memcached 1.6.18 protocol)"

/* name, has_arg, short, metavar, help. memcached's flags keep memcached's
 * letters and long names; percore's own options are long only. */
#define OPTIONS(X) \
    X("port",            1, 'p', "<num>",  "TCP port to listen on (default: 11211; 0 = TCP off, -1 = any free port)") \
    X("udp-port",        1, 'U', "<num>",  "UDP port to listen on (default: 0, off; -1 = any free port)") \
    X("unix-socket",     1, 's', "<file>", "UNIX socket to listen on (turns TCP and UDP off)") \
    X("unix-mask",       1, 'a', "<mask>", "permissions of the UNIX socket, in octal (default: 700)") \
    X("enable-shutdown", 0, 'A', "",       "allow the shutdown command") \
    X("listen",          1, 'l', "<addr>", "interface(s) to listen on, addr or addr:port or [v6]:port, comma separated (default: 127.0.0.1)") \
    X("daemon",          0, 'd', "",       "run as a daemon") \
    X("enable-coredumps", 0, 'r', "",      "raise the core file size limit to its maximum") \
    X("user",            1, 'u', "<user>", "drop privileges to this user after start-up") \
    X("memory-limit",    1, 'm', "<num>",  "item memory in megabytes, k/m/g suffix allowed (default: 64)") \
    X("disable-evictions", 0, 'M', "",     "answer SERVER_ERROR out of memory instead of evicting") \
    X("conn-limit",      1, 'c', "<num>",  "max simultaneous connections (default: 1024)") \
    X("lock-memory",     0, 'k', "",       "lock all paged memory (mlockall)") \
    X("verbose",         0, 'v', "",       "verbose logging; -vv for more") \
    X("help",            0, 'h', "",       "print this help and exit") \
    X("license",         0, 'i', "",       "print the license and exit") \
    X("version",         0, 'V', "",       "print version and exit") \
    X("pidfile",         1, 'P', "<file>", "save PID in <file> (removed at exit)") \
    X("slab-growth-factor", 1, 'f', "<num>", "accepted for memcached compatibility; no slab classes here") \
    X("slab-min-size",   1, 'n', "<bytes>", "accepted for memcached compatibility; no slab classes here") \
    X("enable-largepages", 0, 'L', "",     "back item memory with transparent huge pages") \
    X("stat-delimiter",  1, 'D', "<char>", "delimiter of key prefixes in per-prefix stats (turns them on)") \
    X("threads",         1, 't', "<num>",  "number of workers, one per core (default: CPUs available)") \
    X("max-reqs-per-event", 1, 'R', "<num>", "requests one connection may run per event (default: 20)") \
    X("disable-cas",     0, 'C', "",       "disable use of CAS") \
    X("listen-backlog",  1, 'b', "<num>",  "TCP listen backlog (default: 1024)") \
    X("protocol",        1, 'B', "<name>", "ascii, binary or auto (default: auto)") \
    X("max-item-size",   1, 'I', "<num>",  "largest value, k/m suffix allowed (default: 1m, max 128m)") \
    X("enable-sasl",     0, 'S', "",       "SASL authentication, binary protocol only (Cyrus SASL; config: SASL_CONF_PATH or /etc/sasl2/memcached.conf)") \
    X("disable-flush-all", 0, 'F', "",     "disable flush_all") \
    X("disable-dumping", 0, 'X', "",       "disable stats cachedump and lru_crawler metadump") \
    X("disable-watch",   0, 'W', "",       "disable watch commands") \
    X("auth-file",       1, 'Y', "<file>", "ASCII authentication, user:password lines; ASCII protocol only") \
    X("memory-file",     1, 'e', "<file>", "warm restart: item memory in <file>.N (tmpfs), kept by a SIGUSR1 shut-down") \
    X("enable-ssl",      0, 'Z', "",       "TLS on every TCP connection (OpenSSL; -o ssl_chain_cert=,ssl_key=..., see docs/security.md)") \
    X("extended",        1, 'o', "<opts>", "comma separated memcached -o sub-options (see docs/deployment.md)") \
    X("napi_ids",        1, 'N', "<num>",  "accepted for memcached compatibility; no effect") \
    X("cpus",            1, 0x100, "<list>", "CPUs for the workers, e.g. 0-3,6 (default: those allowed)") \
    X("io",              1, 0x101, "<name>", "I/O backend: uring, epoll or poll (busy-poll) (default: uring, epoll where not permitted)") \
    X("steering",        1, 0x102, "<mode>", "UDP request steering: auto, xdp, ebpf, cbpf or off (default: auto)") \
    X("idle-timeout",    1, 0x103, "<sec>",  "close connections idle this long (default: 0, never)") \
    X("max-conn-output", 1, 0x104, "<num>",  "stop reading a client with this much unsent output (default: 4m)") \
    X("max-get-keys",    1, 0x105, "<num>",  "most keys in one get (default: 0, unlimited)") \
    X("segment-size",    1, 0x106, "<num>",  "segment size of the item log (default: automatic)") \
    X("max-worker-output", 1, 0x107, "<num>", "copied output of all a worker's clients before the heaviest stop (default: -m/t/8, at least 4m)") \
    X("zc-send-min",     1, 0x120, "<num>",  "io_uring: replies this large are sent zero-copy, 0 never (default: 64k)") \
    X("latency-stats",   1, 0x170, "<on|off>", "per-worker latency histograms for stats latency and /metrics (default: on)") \
    X("metrics",         1, 0x171, "<addr:port>", "serve Prometheus GET /metrics on this address (default: off)") \
    X("hot-keys",        1, 0x172, "<on|off|N>", "sample 1 request in N (on: 128) for stats hotkeys (default: on)")

static void usage(void)
{
    printf(VERSION_STRING "\n");
#define HELP(name, arg, sh, meta, help)                                        \
    if ((sh) < 0x100)                                                          \
        printf("-%c, --%-18s %-7s %s\n", sh, name, meta, help);                \
    else                                                                       \
        printf("    --%-18s %-7s %s\n", name, meta, help);
    OPTIONS(HELP)
#undef HELP
}

static void die_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "percore: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'percore --help'.\n");
    exit(EXIT_USAGE);
}

/* "64", "64k", "1m", "2g" -> bytes; unit is the multiplier for bare numbers. */
static size_t parse_size(const char *s, size_t unit, const char *what)
{
    char *end;
    if (!isdigit((unsigned char)*s))
        die_usage("invalid %s", what);
    unsigned long long v = strtoull(s, &end, 10);
    size_t mul = unit;
    if (*end) {
        switch (tolower((unsigned char)*end)) {
        case 'k': mul = 1024; break;
        case 'm': mul = 1024 * 1024; break;
        case 'g': mul = 1024ull * 1024 * 1024; break;
        default: die_usage("invalid %s", what);
        }
        if (end[1] && !(tolower((unsigned char)end[1]) == 'b' && !end[2]))
            die_usage("invalid %s", what);
    }
    return (size_t)v * mul;
}

static long parse_int(const char *s, long lo, long hi, const char *what)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi)
        die_usage("invalid %s", what);
    return v;
}

static void parse_cpus(const char *s)
{
    char *copy = strdup(s), *save = NULL;
    settings.ncpus = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *dash = strchr(tok, '-');
        long a = parse_int(dash ? strndup(tok, (size_t)(dash - tok)) : tok, 0, 4095, "--cpus");
        long b = dash ? parse_int(dash + 1, 0, 4095, "--cpus") : a;
        for (long c = a; c <= b && settings.ncpus < MAX_WORKERS; c++)
            settings.cpus[settings.ncpus++] = (int)c;
    }
    free(copy);
    if (settings.ncpus == 0)
        die_usage("invalid %s", "--cpus");
}

static void default_cpus(void)
{
    cpu_set_t set;
    settings.ncpus = 0;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        for (int c = 0; c < CPU_SETSIZE && settings.ncpus < MAX_WORKERS; c++)
            if (CPU_ISSET(c, &set))
                settings.cpus[settings.ncpus++] = c;
    }
    if (settings.ncpus == 0)
        settings.cpus[settings.ncpus++] = -1;
}

/* ---- notes on options accepted for compatibility ----------------------- */

/* Options that tune a memcached internal percore does not have are accepted
 * so that an existing command line starts percore; each says once, at -v,
 * why it changes nothing. Collected here because logging is not set up yet
 * while parsing. */
#define MAX_NOTES 64
static struct { const char *what; const char *why; } notes[MAX_NOTES];
static int nnotes;

static void note(const char *what, const char *why)
{
    for (int i = 0; i < nnotes; i++)
        if (!strcmp(notes[i].what, what))
            return;
    if (nnotes < MAX_NOTES)
        notes[nnotes++] = (typeof(notes[0])){ what, why };
}

void options_log_notes(void)
{
    for (int i = 0; i < nnotes; i++)
        log_info("%s: accepted, no effect: %s", notes[i].what, notes[i].why);
}

#define WHY_SLAB  "percore has no slab classes; items live in a per-worker segment log (docs/storage.md)"
#define WHY_LRU   "percore has no LRU lists and no LRU maintainer or crawler threads; segment eviction and TTL reclaim run inside each worker"
#define WHY_HASH  "each worker's index grows incrementally on its own and never stops the world"
#define WHY_ALGO  "the key hash is fixed: the eBPF steering program computes the same one"
#define WHY_EXT   "extstore is not supported; items are kept in memory only"
#define WHY_LOGB  "percore has no watcher log buffers to size"
#define WHY_DEFS  "percore has one set of defaults"
#define WHY_RESP  "replies are sent from the item's bytes; there is no inline/chunked choice"
#define WHY_PRIV  "memcached's seccomp sandbox; percore drops privileges with -u only"
#define WHY_BUFS  "per-connection output is bounded by --max-conn-output instead"
#define WHY_FAST  "connections past -c are always answered ERROR and closed at once"
#define WHY_SIZES "stats sizes is not supported"
#define WHY_COOK  "sockets are not tagged with an id"
#define WHY_NAPI  "connections are spread by SO_REUSEPORT, not by NAPI id"

/* ---- -o sub-options ------------------------------------------------------ */

enum subval { SV_NONE, SV_INT, SV_NUM, SV_STR };

static void so_idle_timeout(const char *v, double n) { settings.idle_timeout = (int)n; }
static void so_maxconns_fast(const char *v, double n) { settings.maxconns_fast = true; }
static void so_no_maxconns_fast(const char *v, double n) { settings.maxconns_fast = false; }
static void so_hash_algorithm(const char *v, double n)
{
    if (strcmp(v, "jenkins") && strcmp(v, "murmur3") && strcmp(v, "xxh3"))
        die_usage("invalid -o hash_algorithm '%s' (jenkins, murmur3, xxh3)", v);
}

/* memcached 1.6.18's sub-options (memcached -h lists most; the rest are in
 * its source). apply = NULL: accepted, no effect, `why` logged once at -v.
 * A value outside [lo, hi] is an error, as in memcached. */
static const struct subopt {
    const char *name;
    uint8_t     val;
    double      lo, hi;
    void      (*apply)(const char *v, double n);
    const char *why;
} subopts[] = {
    { "maxconns_fast",        SV_NONE, 0, 0, so_maxconns_fast, NULL },
    { "no_maxconns_fast",     SV_NONE, 0, 0, so_no_maxconns_fast, WHY_FAST },
    { "hashpower",            SV_INT, 12, 64, NULL, WHY_HASH },
    { "no_hashexpand",        SV_NONE, 0, 0, NULL, WHY_HASH },
    { "slab_reassign",        SV_NONE, 0, 0, NULL, WHY_SLAB },
    { "no_slab_reassign",     SV_NONE, 0, 0, NULL, WHY_SLAB },
    { "slab_automove",        SV_INT, 0, 2, NULL, WHY_SLAB },
    { "no_slab_automove",     SV_NONE, 0, 0, NULL, WHY_SLAB },
    { "slab_automove_ratio",  SV_NUM, 0, 1, NULL, WHY_SLAB },
    { "slab_automove_window", SV_INT, 1, 1e9, NULL, WHY_SLAB },
    { "slab_automove_freeratio", SV_NUM, 0, 1, NULL, WHY_SLAB },
    { "slab_sizes",           SV_STR, 0, 0, NULL, WHY_SLAB },
    { "slab_chunk_max",       SV_INT, 1, 1e9, NULL, WHY_SLAB },
    { "no_chunked_items",     SV_NONE, 0, 0, NULL, WHY_RESP },
    { "tail_repair_time",     SV_INT, 10, 1e9, NULL, WHY_LRU },
    { "hash_algorithm",       SV_STR, 0, 0, so_hash_algorithm, WHY_ALGO },
    { "lru_crawler",          SV_NONE, 0, 0, NULL, WHY_LRU },
    { "no_lru_crawler",       SV_NONE, 0, 0, NULL, WHY_LRU },
    { "lru_crawler_sleep",    SV_INT, 0, 1000000, NULL, WHY_LRU },
    { "lru_crawler_tocrawl",  SV_INT, 0, 1e12, NULL, WHY_LRU },
    { "lru_maintainer",       SV_NONE, 0, 0, NULL, WHY_LRU },
    { "no_lru_maintainer",    SV_NONE, 0, 0, NULL, WHY_LRU },
    { "hot_lru_pct",          SV_INT, 1, 80, NULL, WHY_LRU },
    { "warm_lru_pct",         SV_INT, 1, 80, NULL, WHY_LRU },
    { "hot_max_factor",       SV_NUM, 0, 1e9, NULL, WHY_LRU },
    { "warm_max_factor",      SV_NUM, 0, 1e9, NULL, WHY_LRU },
    { "temporary_ttl",        SV_INT, 0, 1e12, NULL, WHY_LRU },
    { "idle_timeout",         SV_INT, 0, 1 << 30, so_idle_timeout, NULL },
    { "watcher_logbuf_size",  SV_INT, 0, 1e9, NULL, WHY_LOGB },
    { "worker_logbuf_size",   SV_INT, 0, 1e9, NULL, WHY_LOGB },
    { "track_sizes",          SV_NONE, 0, 0, NULL, WHY_SIZES },
    { "inline_ascii_resp",    SV_NONE, 0, 0, NULL, WHY_RESP },
    { "no_inline_ascii_resp", SV_NONE, 0, 0, NULL, WHY_RESP },
    { "modern",               SV_NONE, 0, 0, NULL, WHY_DEFS },
    { "no_modern",            SV_NONE, 0, 0, NULL, WHY_DEFS },
    { "drop_privileges",      SV_NONE, 0, 0, NULL, WHY_PRIV },
    { "no_drop_privileges",   SV_NONE, 0, 0, NULL, WHY_PRIV },
    /* Only memcached-debug has it, but its test suite (t/lib/MemcachedTest.pm)
     * adds it to every command line it starts. */
    { "relaxed_privileges",   SV_NONE, 0, 0, NULL, WHY_PRIV },
    { "resp_obj_mem_limit",   SV_INT, 0, 1e9, NULL, WHY_BUFS },
    { "read_buf_mem_limit",   SV_INT, 0, 1e9, NULL, WHY_BUFS },
    { "sock_cookie_id",       SV_INT, 0, 4294967295.0, NULL, WHY_COOK },
    { "ext_path",             SV_STR, 0, 0, NULL, WHY_EXT },
    { "ext_page_size",        SV_INT, 1, 1e9, NULL, WHY_EXT },
    { "ext_wbuf_size",        SV_INT, 1, 1e9, NULL, WHY_EXT },
    { "ext_threads",          SV_INT, 1, 1e9, NULL, WHY_EXT },
    { "ext_io_depth",         SV_INT, 1, 1e9, NULL, WHY_EXT },
    { "ext_item_size",        SV_INT, 0, 1e12, NULL, WHY_EXT },
    { "ext_item_age",         SV_INT, 0, 1e12, NULL, WHY_EXT },
    { "ext_low_ttl",          SV_INT, 0, 1e12, NULL, WHY_EXT },
    { "ext_recache_rate",     SV_INT, 0, 1e12, NULL, WHY_EXT },
    { "ext_compact_under",    SV_INT, 0, 1e12, NULL, WHY_EXT },
    { "ext_drop_under",       SV_INT, 0, 1e12, NULL, WHY_EXT },
    { "ext_max_sleep",        SV_INT, 0, 1e12, NULL, WHY_EXT },
    { "ext_max_frag",         SV_NUM, 0, 1, NULL, WHY_EXT },
    { "ext_drop_unread",      SV_NONE, 0, 0, NULL, WHY_EXT },
    { "ssl_chain_cert",       SV_STR, 0, 0, tls_opt_chain_cert, NULL },
    { "ssl_key",              SV_STR, 0, 0, tls_opt_key, NULL },
    { "ssl_keyformat",        SV_INT, 0, 1e9, tls_opt_keyformat, NULL },
    { "ssl_verify_mode",      SV_INT, 0, 3, tls_opt_verify_mode, NULL },
    { "ssl_ciphers",          SV_STR, 0, 0, tls_opt_ciphers, NULL },
    { "ssl_ca_cert",          SV_STR, 0, 0, tls_opt_ca_cert, NULL },
    { "ssl_wbuf_size",        SV_INT, 0, 1e9, tls_opt_wbuf_size, NULL },
    { "ssl_session_cache",    SV_NONE, 0, 0, tls_opt_session_cache, NULL },
    { "ssl_kernel_tls",       SV_NONE, 0, 0, tls_opt_kernel_tls, NULL },
    { "ssl_min_version",      SV_STR, 0, 0, tls_opt_min_version, NULL },
    { "ssl_handshake_timeout", SV_INT, 1, 3600, tls_opt_handshake_timeout, NULL },
};

static void parse_subopt(char *tok)
{
    char *val = strchr(tok, '=');
    if (val)
        *val++ = '\0';
    const struct subopt *so = NULL;
    for (size_t i = 0; i < sizeof subopts / sizeof subopts[0]; i++)
        if (!strcmp(subopts[i].name, tok))
            so = &subopts[i];
    if (!so)
        die_usage("unknown -o sub-option '%s'", tok);
    double n = 0;
    /* memcached takes a bare `-o slab_automove` as slab_automove=1 (the
     * `-o slab_reassign,slab_automove` of many 1.4-era command lines); it
     * is the only sub-option whose value may be left out. */
    bool bare_ok = !val && !strcmp(so->name, "slab_automove");
    if (so->val != SV_NONE && !bare_ok) {
        if (!val || !*val)
            die_usage("-o %s needs a value", so->name);
        if (so->val != SV_STR) {
            char *end;
            errno = 0;
            n = so->val == SV_INT ? (double)strtoll(val, &end, 10) : strtod(val, &end);
            if (end == val || *end || errno || n < so->lo || n > so->hi) {
                fprintf(stderr, "percore: invalid value for -o %s: '%s' (%g to %g)\n"
                        "Try 'percore --help'.\n", so->name, val, so->lo, so->hi);
                exit(EXIT_USAGE);
            }
        }
    }
    /* Values of no-effect options are still checked: a typo is an error. */
    if (so->apply)
        so->apply(val, n);
    if (so->why)
        note(so->name, so->why);
}

static void parse_extended(const char *arg)
{
    char *copy = strdup(arg), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
        parse_subopt(t);
    /* Names point into the table, never into `copy`. */
    free(copy);
}

/* ---- -l and the listen list --------------------------------------------- */

/* memcached's forms: "addr", "addr:port", "[v6]", "[v6]:port", a bare v6
 * address (two or more colons, no port), and "notls:" before any of them
 * (meaningful with TLS only). Separators: ',' and ';'. */
static void parse_listen(const char *arg)
{
    char *copy = strdup(arg), *save = NULL;
    for (char *t = strtok_r(copy, ",;", &save); t; t = strtok_r(NULL, ",;", &save)) {
        if (!strncmp(t, "notls:", 6)) {
            t += 6;
            tls_settings.notls_mask |= 1u << settings.nlisten;   /* this address, below */
        }
        char *host = t, *port = NULL;
        if (*t == '[') {
            char *close = strchr(t, ']');
            if (!close || (close[1] && close[1] != ':'))
                die_usage("invalid listen address '%s' (-l)", t);
            host = t + 1;
            *close = '\0';
            if (close[1] == ':')
                port = close + 2;
        } else {
            char *colon = strchr(t, ':');
            if (colon && !strchr(colon + 1, ':')) {
                *colon = '\0';
                port = colon + 1;
            }
        }
        if (!*host)
            die_usage("invalid listen address '%s' (-l)", arg);
        if (settings.nlisten == MAX_LISTEN)
            die_usage("too many listen addresses (max %s)", "8");
        int p = port ? (int)parse_int(port, 0, 65535, "port in listen address (-l)") : 0;
        settings.listen_port[settings.nlisten] = port && p == 0 ? -1 : p;   /* :0 = any free */
        settings.listen[settings.nlisten++] = strdup(host);
    }
    free(copy);
}

/* --metrics addr:port, [v6]:port or a bare port (then 127.0.0.1). */
static void parse_metrics(const char *arg)
{
    char *copy = strdup(arg);
    char *host = copy, *port = copy;
    if (*copy == '[') {
        char *close = strchr(copy, ']');
        if (!close || close[1] != ':')
            die_usage("invalid --metrics address '%s' (addr:port)", arg);
        *close = '\0';
        host = copy + 1;
        port = close + 2;
    } else {
        char *colon = strrchr(copy, ':');
        if (colon) {
            *colon = '\0';
            port = colon + 1;
        } else {
            host = "127.0.0.1";
        }
    }
    if (!*host)
        die_usage("invalid --metrics address '%s' (addr:port)", arg);
    settings.metrics_port = (int)parse_int(port, 1, 65535, "--metrics port");
    settings.metrics_addr = strdup(host);
    free(copy);
}

/* -S and -Y (memcached's rules): SASL speaks only binary, the auth file
 * only ASCII (it wins when both are given), and neither goes with UDP,
 * whose datagrams carry no session to authenticate. */
static bool protocol_given;   /* -B appeared (even "auto") */

static void auth_checks(void)
{
    if (settings.sasl) {
        if (protocol_given && settings.protocol != PROT_BINARY)
            die_usage("%s", "ERROR: You cannot allow the ASCII protocol while using SASL.");
        if (settings.udp_port)
            die_usage("%s", "ERROR: Cannot enable UDP while using binary SASL authentication.");
    }
    if (settings.auth_file) {
        if (protocol_given && settings.protocol != PROT_ASCII)
            die_usage("%s", "ERROR: You cannot allow the BINARY protocol while using ascii "
                      "authentication tokens.");
        if (settings.udp_port)
            die_usage("%s", "Cannot use UDP with ascii authentication enabled (-U 0 to disable)");
    }
    if (settings.sasl)
        settings.protocol = PROT_BINARY;
    if (settings.auth_file)
        settings.protocol = PROT_ASCII;
}

int options_parse(int argc, char **argv)
{
    static struct option longopts[] = {
#define LONGOPT(name, arg, sh, meta, help) { name, arg, NULL, sh },
        OPTIONS(LONGOPT)
#undef LONGOPT
        { NULL, 0, NULL, 0 }
    };
    settings = (struct settings){
        .port = 11211, .udp_port = 0, .maxbytes = 64ull << 20, .maxconns = 1024,
        .nworkers = 0, .item_max = 1 << 20, .use_cas = true, .flush_ok = true,
        .backlog = 1024, .io = IO_URING, .steering = STEER_AUTO,
        .conn_out_max = 4u << 20,
        .zc_send_min = 64u << 10,
        .unix_mask = 0700, .reqs_per_event = 20, .protocol = PROT_AUTO,
        .stat_delim = ':', .maxconns_fast = true, .growth_factor = 1.25,
        .slab_min_size = 48, .hotkeys_interval = TOPK_SAMPLE_DEFAULT,
    };
    bool cpus_given = false, tcp_given = false, udp_given = false;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":p:U:s:a:Al:dru:m:Mc:kvhiVP:f:n:LD:t:R:Cb:B:I:SFXWY:e:Zo:N:",
                            longopts, NULL)) != -1) {
        switch (c) {
        case 'p':
            settings.port = (int)parse_int(optarg, -1, 65535, "port (-p)");
            tcp_given = true;
            break;
        case 'U':
            settings.udp_port = (int)parse_int(optarg, -1, 65535, "UDP port (-U)");
            udp_given = true;
            break;
        case 's': settings.unix_path = optarg; break;
        case 'a': {
            char *end;
            long m = strtol(optarg, &end, 8);
            if (!*optarg || *end || m < 0 || m > 0777)
                die_usage("invalid UNIX socket mask (-a) '%s': octal, 0 to 777", optarg);
            settings.unix_mask = (int)m;
            break;
        }
        case 'l': parse_listen(optarg); break;
        case 'm': settings.maxbytes = parse_size(optarg, 1024 * 1024, "memory limit (-m)"); break;
        case 'M': settings.no_evict = true; break;
        case 'c': settings.maxconns = (int)parse_int(optarg, 1, 1 << 20, "connection limit (-c)"); break;
        case 'k': settings.lock_memory = true; break;
        case 't': settings.nworkers = (int)parse_int(optarg, 1, MAX_WORKERS, "number of threads (-t, 1-64)"); break;
        case 'I': settings.item_max = parse_size(optarg, 1, "max item size (-I)"); break;
        case 'v': settings.verbose++; break;
        case 'A': settings.shutdown_ok = true; break;
        case 'C': settings.use_cas = false; break;
        case 'F': settings.flush_ok = false; break;
        case 'd': settings.daemonize = true; break;
        case 'r': settings.enable_coredumps = true; break;
        case 'u': settings.user = optarg; break;
        case 'P': settings.pidfile = optarg; break;
        case 'b': settings.backlog = (int)parse_int(optarg, 1, 1 << 20, "backlog (-b)"); break;
        case 'f': {
            char *end;
            double f = strtod(optarg, &end);
            if (end == optarg || *end || f <= 1.0)
                die_usage("invalid slab growth factor (-f) '%s': must be greater than 1", optarg);
            settings.growth_factor = f;
            note("-f", WHY_SLAB);
            break;
        }
        case 'n': settings.slab_min_size = (int)parse_int(optarg, 1, 1 << 20, "slab minimum size (-n)");
                  note("-n", WHY_SLAB); break;
        case 'L': settings.large_pages = true; break;
        case 'D':
            if (strlen(optarg) != 1)
                die_usage("invalid stats prefix delimiter (-D) '%s': one character", optarg);
            settings.stat_delim = optarg[0];
            settings.detail_enabled = true;
            break;
        case 'R': settings.reqs_per_event = (int)parse_int(optarg, 1, 1 << 20, "requests per event (-R)"); break;
        case 'B':
            protocol_given = true;
            if (!strcmp(optarg, "auto")) settings.protocol = PROT_AUTO;
            else if (!strcmp(optarg, "ascii")) settings.protocol = PROT_ASCII;
            else if (!strcmp(optarg, "binary")) settings.protocol = PROT_BINARY;
            else die_usage("invalid protocol (-B) '%s' (ascii, binary, auto)", optarg);
            break;
        case 'X': settings.dump_disabled = true; break;
        case 'W': settings.watch_disabled = true; break;
        case 'e': settings.memory_file = optarg; break;
        case 'o': parse_extended(optarg); break;
        case 'N': settings.napi_ids = (int)parse_int(optarg, 1, 1 << 20, "number of NAPI ids (-N)");
                  note("-N", WHY_NAPI); break;
        case 'S': settings.sasl = true; break;
        case 'Y': settings.auth_file = optarg; break;
        case 'Z': tls_settings.enabled = true; break;
        case 'h': usage(); return 1;
        case 'i':
            printf(VERSION_STRING "\nLicensed under the terms in the LICENSE file of its source "
                   "distribution.\n");
            return 1;
        case 'V': printf(VERSION_STRING "\n"); return 1;
        case 0x100: parse_cpus(optarg); cpus_given = true; break;
        case 0x101:
            if (!strcmp(optarg, "epoll")) settings.io = IO_EPOLL;
            else if (!strcmp(optarg, "poll")) settings.io = IO_POLL;
            else if (!strcmp(optarg, "uring")) settings.io = IO_URING;
            else die_usage("unknown I/O backend '%s' (epoll, poll, uring)", optarg);
            break;
        case 0x102:
            if (!strcmp(optarg, "auto")) settings.steering = STEER_AUTO;
            else if (!strcmp(optarg, "ebpf")) settings.steering = STEER_EBPF;
            else if (!strcmp(optarg, "cbpf")) settings.steering = STEER_CBPF;
            else if (!strcmp(optarg, "off")) settings.steering = STEER_OFF;
            else if (!strcmp(optarg, "xdp")) settings.steering = STEER_XDP;
            else die_usage("unknown steering mode '%s' (auto, xdp, ebpf, cbpf, off)", optarg);
            break;
        case 0x103: settings.idle_timeout = (int)parse_int(optarg, 0, 1 << 30, "--idle-timeout"); break;
        case 0x104: settings.conn_out_max = parse_size(optarg, 1, "--max-conn-output"); break;
        case 0x107: settings.worker_out_max = parse_size(optarg, 1, "--max-worker-output"); break;
        case 0x120: settings.zc_send_min = parse_size(optarg, 1, "--zc-send-min"); break;
        case 0x105: settings.max_get_keys = (unsigned)parse_int(optarg, 0, 1 << 30, "--max-get-keys"); break;
        case 0x106: settings.seg_size = parse_size(optarg, 1, "--segment-size"); break;
        case 0x170:
            if (!strcmp(optarg, "on")) settings.latency_off = false;
            else if (!strcmp(optarg, "off")) settings.latency_off = true;
            else die_usage("invalid --latency-stats '%s' (on, off)", optarg);
            break;
        case 0x171: parse_metrics(optarg); break;
        case 0x172:
            if (!strcmp(optarg, "on")) settings.hotkeys_interval = TOPK_SAMPLE_DEFAULT;
            else if (!strcmp(optarg, "off")) settings.hotkeys_interval = 0;
            else settings.hotkeys_interval = (unsigned)parse_int(optarg, 1, 1 << 20, "--hot-keys (on, off or 1 to 1048576)");
            break;
        case ':': die_usage("option '%s' needs a value", argv[optind - 1]); break;
        default:  die_usage("unknown option '%s'", argv[optind - 1]); break;
        }
    }
    if (optind < argc)
        die_usage("unexpected argument '%s'", argv[optind]);

    /* memcached's rule: a UDP port given without -p is the TCP port too
     * (`memcached -U 11222` serves TCP on 11222, not 11211). */
    if (udp_given && settings.udp_port != 0 && !tcp_given)
        settings.port = settings.udp_port;
    if (settings.nlisten == 0)
        settings.listen[settings.nlisten++] = "127.0.0.1";
    /* As memcached: a UNIX socket replaces the network listeners, and -p 0
     * turns TCP off (a port in -l included). */
    if (settings.unix_path) {
        if (strlen(settings.unix_path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
            die_usage("UNIX socket path too long (-s) '%s'", settings.unix_path);
        settings.port = 0;
        settings.udp_port = 0;
    }
    /* UDP datagrams cannot be carried over TLS: refuse rather than serve
     * the same cache in clear text on another port. */
    if (tls_settings.enabled && settings.udp_port)
        die_usage("%s", "ERROR: Cannot enable UDP while TLS is enabled (-Z); use -U 0");
    if (tls_settings.enabled && !tls_settings.chain_cert)
        die_usage("%s", "TLS (-Z) needs a certificate: -o ssl_chain_cert=<file>[,ssl_key=<file>]");
    if (settings.port == 0)
        for (int i = 0; i < settings.nlisten; i++)
            settings.listen_port[i] = 0;
    if (!cpus_given)
        default_cpus();
    if (settings.nworkers == 0)
        settings.nworkers = settings.ncpus > 0 ? settings.ncpus : 1;
    /* memcached's start-up checks, with its wording. */
    auth_checks();
    /* The memory limit first: the item size checks below are relative to it. */
    if (settings.maxbytes < (1u << 20))
        die_usage("%s", "Memory limit (-m) must be at least 1 megabyte.");
    if (settings.item_max < 1024)
        die_usage("%s", "Item max size cannot be less than 1024 bytes.");
    if (settings.item_max > settings.maxbytes / 2)
        die_usage("%s", "Cannot set item size limit higher than 1/2 of memory max.");
    if (settings.item_max > (128u << 20))
        die_usage("%s", "Cannot set item size limit higher than 128 MiB.");
    return 0;
}
