/*
 * options.c — command-line parsing with memcached's flags and percore's
 * long options, and the start-up checks memcached makes. The option table
 * drives both getopt_long and --help. Runs on the main thread only.
 */
#include <ctype.h>
#include <getopt.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/options.h"

struct settings settings;

#define VERSION_STRING "percore 0.1.0 (memcached 1.6.18 protocol)"

/* name, has_arg, short, metavar, help */
#define OPTIONS(X) \
    X("port",            1, 'p', "<num>",  "TCP port to listen on (default: 11211)") \
    X("udp-port",        1, 'U', "<num>",  "UDP port to listen on (default: 0, off)") \
    X("listen",          1, 'l', "<addr>", "interface(s) to listen on, comma separated (default: 127.0.0.1)") \
    X("memory-limit",    1, 'm', "<num>",  "item memory in megabytes, k/m/g suffix allowed (default: 64)") \
    X("conn-limit",      1, 'c', "<num>",  "max simultaneous connections (default: 1024)") \
    X("threads",         1, 't', "<num>",  "number of workers, one per core (default: CPUs available)") \
    X("max-item-size",   1, 'I', "<num>",  "largest value, k/m suffix allowed (default: 1m, max 128m)") \
    X("verbose",         0, 'v', "",       "verbose logging; -vv for more") \
    X("enable-shutdown", 0, 'A', "",       "allow the shutdown command") \
    X("disable-cas",     0, 'C', "",       "disable use of CAS") \
    X("disable-flush-all", 0, 'F', "",     "disable flush_all") \
    X("daemon",          0, 'd', "",       "run as a daemon") \
    X("user",            1, 'u', "<user>", "drop privileges to this user after start-up") \
    X("pidfile",         1, 'P', "<file>", "save PID in <file>, only used with -d") \
    X("listen-backlog",  1, 'b', "<num>",  "TCP listen backlog (default: 1024)") \
    X("help",            0, 'h', "",       "print this help and exit") \
    X("version",         0, 'V', "",       "print version and exit") \
    X("cpus",            1, 0x100, "<list>", "CPUs for the workers, e.g. 0-3,6 (default: those allowed)") \
    X("io",              1, 0x101, "<name>", "I/O backend: uring, epoll or poll (busy-poll) (default: uring, epoll where not permitted)") \
    X("steering",        1, 0x102, "<mode>", "UDP request steering: auto, ebpf, cbpf or off (default: auto)") \
    X("idle-timeout",    1, 0x103, "<sec>",  "close connections idle this long (default: 0, never)") \
    X("max-conn-output", 1, 0x104, "<num>",  "stop reading a client with this much unsent output (default: 4m)") \
    X("max-get-keys",    1, 0x105, "<num>",  "most keys in one get (default: 0, unlimited)") \
    X("segment-size",    1, 0x106, "<num>",  "segment size of the item log (default: automatic)")

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
        .reqs_per_event = 20,
    };
    bool cpus_given = false;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":p:U:l:m:c:t:I:vACFdu:P:b:hV", longopts, NULL)) != -1) {
        switch (c) {
        case 'p': settings.port = (int)parse_int(optarg, 0, 65535, "port (-p)"); break;
        case 'U': settings.udp_port = (int)parse_int(optarg, 0, 65535, "UDP port (-U)"); break;
        case 'l': {
            char *copy = strdup(optarg), *save = NULL;
            for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                if (settings.nlisten == MAX_LISTEN)
                    die_usage("too many listen addresses (max %s)", "8");
                settings.listen[settings.nlisten++] = strdup(t);
            }
            free(copy);
            break;
        }
        case 'm': settings.maxbytes = parse_size(optarg, 1024 * 1024, "memory limit (-m)"); break;
        case 'c': settings.maxconns = (int)parse_int(optarg, 1, 1 << 20, "connection limit (-c)"); break;
        case 't': settings.nworkers = (int)parse_int(optarg, 1, MAX_WORKERS, "number of threads (-t, 1-64)"); break;
        case 'I': settings.item_max = parse_size(optarg, 1, "max item size (-I)"); break;
        case 'v': settings.verbose++; break;
        case 'A': settings.shutdown_ok = true; break;
        case 'C': settings.use_cas = false; break;
        case 'F': settings.flush_ok = false; break;
        case 'd': settings.daemonize = true; break;
        case 'u': settings.user = optarg; break;
        case 'P': settings.pidfile = optarg; break;
        case 'b': settings.backlog = (int)parse_int(optarg, 1, 1 << 20, "backlog (-b)"); break;
        case 'h': usage(); return 1;
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
            else die_usage("unknown steering mode '%s' (auto, ebpf, cbpf, off)", optarg);
            break;
        case 0x103: settings.idle_timeout = (int)parse_int(optarg, 0, 1 << 30, "--idle-timeout"); break;
        case 0x104: settings.conn_out_max = parse_size(optarg, 1, "--max-conn-output"); break;
        case 0x105: settings.max_get_keys = (unsigned)parse_int(optarg, 0, 1 << 30, "--max-get-keys"); break;
        case 0x106: settings.seg_size = parse_size(optarg, 1, "--segment-size"); break;
        case ':': die_usage("option '%s' needs a value", argv[optind - 1]); break;
        default:  die_usage("unknown option '%s'", argv[optind - 1]); break;
        }
    }
    if (optind < argc)
        die_usage("unexpected argument '%s'", argv[optind]);

    if (settings.nlisten == 0)
        settings.listen[settings.nlisten++] = "127.0.0.1";
    if (!cpus_given)
        default_cpus();
    if (settings.nworkers == 0)
        settings.nworkers = settings.ncpus > 0 ? settings.ncpus : 1;
    /* memcached's start-up checks, with its wording. */
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
