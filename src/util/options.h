/*
 * options.h — the server's settings, parsed from the command line by the
 * main thread before any worker starts and read-only afterwards.
 */
#ifndef PERCORE_OPTIONS_H
#define PERCORE_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>

#define MAX_WORKERS 64
#define MAX_LISTEN 8

/* Exit codes: usage errors versus failures at run time. */
#define EXIT_USAGE 64
#define EXIT_RUNTIME 1
#define EXIT_OSERR 71   /* a listener could not be opened (memcached's EX_OSERR) */

struct settings {
    int      port;             /* -p (0 = off, -1 = any free port) */
    int      udp_port;         /* -U (0 = off, -1 = any free port) */
    char    *listen[MAX_LISTEN];
    int      nlisten;          /* -l (comma-separated list) */
    size_t   maxbytes;         /* -m, bytes */
    int      maxconns;         /* -c */
    int      nworkers;         /* -t */
    size_t   item_max;         /* -I */
    int      verbose;          /* -v count */
    bool     shutdown_ok;      /* -A */
    bool     use_cas;          /* !-C */
    bool     flush_ok;         /* !-F */
    bool     daemonize;        /* -d */
    char    *user;             /* -u */
    char    *pidfile;          /* -P */
    int      backlog;          /* -b */
    int      cpus[MAX_WORKERS];/* --cpus: cpu of each worker, -1 = unpinned */
    int      ncpus;
    int      io;               /* --io */
    int      steering;         /* --steering */
    int      idle_timeout;     /* --idle-timeout seconds, 0 = off */
    size_t   conn_out_max;     /* --max-conn-output: back-pressure threshold */
    size_t   zc_send_min;      /* --zc-send-min: io_uring sends this large go zero-copy (0 = never) */
    unsigned max_get_keys;     /* --max-get-keys */
    size_t   seg_size;         /* --segment-size, 0 = store picks */

    /* memcached flags added for drop-in use (issue 12). */
    int      listen_port[MAX_LISTEN]; /* -l host:port; 0 = the -p port, -1 = any free */
    char    *unix_path;        /* -s: UNIX socket; turns TCP and UDP off */
    int      unix_mask;        /* -a: permissions of the socket file (octal) */
    bool     no_evict;         /* -M: SERVER_ERROR out of memory, never evict */
    bool     lock_memory;      /* -k: mlockall() */
    bool     large_pages;      /* -L: ask for transparent huge pages */
    bool     enable_coredumps; /* -r: raise RLIMIT_CORE */
    int      reqs_per_event;   /* -R: commands per connection per loop iteration */
    size_t   worker_out_max;   /* all connections' copied output per worker, 0 = auto */
    int      protocol;         /* -B: enum bind_protocol */
    bool     dump_disabled;    /* -X: no stats cachedump / lru_crawler metadump */
    bool     watch_disabled;   /* -W: no watch */
    char     stat_delim;       /* -D: key prefix delimiter of per-prefix stats */
    bool     detail_enabled;   /* -D turns per-prefix stats on at start-up */
    char    *memory_file;      /* -e: warm restart files (server/warm.c) */
    bool     maxconns_fast;    /* -o (no_)maxconns_fast */
    double   growth_factor;    /* -f: accepted for stats settings, no effect */
    int      slab_min_size;    /* -n: accepted, no effect */
    int      napi_ids;         /* -N: accepted, no effect */

    /* Authentication (issue 15, proto/auth.h). */
    bool     sasl;             /* -S: SASL over the binary protocol */
    char    *auth_file;        /* -Y: user:password lines, ASCII protocol */

    /* Observability (issue 17). */
    bool     latency_off;      /* --latency-stats off */
    unsigned hotkeys_interval; /* --hot-keys: sample 1 request in this many, 0 = off */
    char    *metrics_addr;     /* --metrics addr:port, NULL = off */
    int      metrics_port;
};

enum bind_protocol { PROT_AUTO, PROT_ASCII, PROT_BINARY };

enum io_backend { IO_EPOLL, IO_POLL, IO_URING };
enum steering_mode { STEER_AUTO, STEER_EBPF, STEER_CBPF, STEER_OFF, STEER_XDP };

extern struct settings settings;

/* Parses argv into `settings`. Returns 0 to run, 1 when --help/--version was
 * printed, or exits with EXIT_USAGE on a bad flag. */
int options_parse(int argc, char **argv);
/* Logs, once, what options accepted for compatibility do not change here
 * (at -v), and warnings for those an operator must know about. Called after
 * log_verbosity is set. */
void options_log_notes(void);

#endif
