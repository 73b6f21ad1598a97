/*
 * main.c — start-up and shut-down, in order: options, clock, workers (rings,
 * stores, sockets), privileges, threads; then the main thread waits for a
 * signal and stops the workers. The main thread owns no data-path state.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "util/clock.h"
#include "util/log.h"
#include "util/options.h"
#include "server/auth_setup.h"
#include "server/metrics.h"
#include "server/port_file.h"
#include "server/warm.h"
#include "server/worker.h"
#include "net/listener.h"
#include "net/tls.h"
#include "net/udp.h"

static int drop_privileges(const char *user)
{
    struct passwd *pw = getpwnam(user);
    if (!pw) {
        log_err("unknown user '%s' (-u)", user);
        return -1;
    }
    if (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
        log_err("cannot become user '%s': %s", user, strerror(errno));
        return -1;
    }
    return 0;
}

/* Write end of the pipe on which a daemon tells its parent it is serving. */
static int ready_fd = -1;

/* The parent stays until the child has started (one byte on the pipe) and
 * exits 0, or exits with the child's status if it died first: `percore -d`
 * then fails visibly (port in use, unknown user) instead of exiting 0. */
static int daemonize(void)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid > 0) {
        char c;
        ssize_t n;
        close(p[1]);
        do
            n = read(p[0], &c, 1);
        while (n < 0 && errno == EINTR);
        int st = 0;
        if (n == 1)
            _exit(0);
        if (waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st))
            _exit(WEXITSTATUS(st));
        _exit(EXIT_RUNTIME);
    }
    close(p[0]);
    ready_fd = p[1];
    if (setsid() < 0)
        return -1;
    int fd = open("/dev/null", O_RDWR);
    if (fd >= 0) {
        dup2(fd, STDIN_FILENO);
        dup2(fd, STDOUT_FILENO);
        if (fd > STDERR_FILENO)
            close(fd);
    }
    return 0;
}

static void write_pidfile(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        log_warn("cannot write pid file %s: %s", path, strerror(errno));
        return;
    }
    fprintf(f, "%d\n", (int)getpid());
    fclose(f);
}

/* Descriptors: -c connections plus what percore holds itself (per worker:
 * listeners, UDP sockets, the event loop, the doorbell, the spare kept for
 * refusing connections; plus stdio, the pid file, eBPF maps). As memcached
 * does, raise the soft limit to fit, and the hard one too where allowed
 * (root); otherwise take what the hard limit allows and say so: accept then
 * backs off on EMFILE (net/accept_limit.c) instead of failing. */
static void raise_nofile(void)
{
    rlim_t per_worker = (rlim_t)(2 * settings.nlisten + 5);
    rlim_t need = (rlim_t)settings.maxconns + (rlim_t)settings.nworkers * per_worker + 32;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    if (rl.rlim_cur >= need) {
        log_info("descriptors: soft limit %llu fits -c %d (needs %llu)",
                 (unsigned long long)rl.rlim_cur, settings.maxconns, (unsigned long long)need);
        return;
    }
    struct rlimit want = { need, rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ? rl.rlim_max : need };
    if (setrlimit(RLIMIT_NOFILE, &want) == 0) {
        log_info("descriptors: raised the limit from %llu to %llu for -c %d",
                 (unsigned long long)rl.rlim_cur, (unsigned long long)need, settings.maxconns);
        return;
    }
    want = (struct rlimit){ rl.rlim_max, rl.rlim_max };
    if (rl.rlim_max > rl.rlim_cur && setrlimit(RLIMIT_NOFILE, &want) == 0)
        rl.rlim_cur = rl.rlim_max;
    log_warn("descriptors: -c %d needs %llu, the hard limit allows %llu; connections past it "
             "are answered 'ERROR Too many open connections'",
             settings.maxconns, (unsigned long long)need, (unsigned long long)rl.rlim_cur);
}

/* -r: as memcached, core files as large as the hard limit allows. */
static void enable_coredumps(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_CORE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_CORE, &rl) < 0)
            log_warn("-r: cannot raise the core file limit: %s", strerror(errno));
    }
}

int main(int argc, char **argv)
{
    if (options_parse(argc, argv) != 0)
        return 0;
    log_verbosity = settings.verbose;
    signal(SIGPIPE, SIG_IGN);
    options_log_notes();
    if (settings.enable_coredumps)
        enable_coredumps();
    raise_nofile();

    /* Workers inherit this mask; only the main thread takes signals. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    clock_setup();
    /* Before -u drops privileges: a credential file is often root's alone. */
    if (auth_setup() < 0)
        return EXIT_RUNTIME;
    /* -Z: certificates are read before -u drops privileges (keys are
     * often readable by root only); a bad one stops start-up, as memcached. */
    if (tls_setup() < 0)
        return EXIT_USAGE;
    if (settings.daemonize && daemonize() < 0) {
        log_err("cannot daemonize: %s", strerror(errno));
        return EXIT_RUNTIME;
    }
    if (warm_setup() < 0)
        return EXIT_RUNTIME;
    int rc = workers_setup();
    if (rc < 0 || metrics_setup() < 0) {
        metrics_stop();
        workers_teardown();
        /* memcached: EX_OSERR when a listener cannot be opened */
        return rc == SETUP_SOCKETS ? EXIT_OSERR : EXIT_RUNTIME;
    }
    port_file_write();
    warm_restore();
    if (settings.user && drop_privileges(settings.user) < 0) {
        workers_teardown();
        return EXIT_RUNTIME;
    }
    /* As memcached 1.6: written with or without -d. */
    if (settings.pidfile)
        write_pidfile(settings.pidfile);
    /* -k: after the stores are allocated, and for what comes later too. */
    if (settings.lock_memory && mlockall(MCL_CURRENT | MCL_FUTURE) < 0)
        log_warn("-k: cannot lock memory: %s (RLIMIT_MEMLOCK or CAP_IPC_LOCK); continuing unlocked",
                 strerror(errno));

    if (settings.unix_path)
        log_info("listening on UNIX socket %s (mask %03o), %d workers, %zu MiB, item max %zu bytes, "
                 "max %d connections", settings.unix_path, settings.unix_mask, settings.nworkers,
                 settings.maxbytes >> 20, settings.item_max, settings.maxconns);
    else if (settings.port == 0)
        log_info("TCP off (-p 0), %d workers, %zu MiB, item max %zu bytes, max %d connections",
                 settings.nworkers, settings.maxbytes >> 20, settings.item_max, settings.maxconns);
    else
        log_info("listening on %s port %d, %d workers, %zu MiB, item max %zu bytes, max %d connections",
                 settings.listen[0], listener_port(workers[0].loop.listen[0].fd, &(int){0}),
                 settings.nworkers, settings.maxbytes >> 20, settings.item_max, settings.maxconns);
    if (settings.udp_port)
        log_info("UDP port %d, steering: %s", udp_port(), udp_steering_name());

    if (workers_start() < 0 || metrics_start() < 0)
        return EXIT_RUNTIME;
    if (ready_fd >= 0) {
        ssize_t w = write(ready_fd, "", 1);
        (void)w;
        close(ready_fd);
    }

    int sig = 0;
    for (;;) {
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            auth_sighup();   /* reloads -Y's file; otherwise nothing to do */
            continue;
        }
        log_info("signal %d: shutting down", sig);
        break;
    }
    metrics_stop();
    workers_stop();
    /* -e: SIGUSR1 (memcached's graceful shut-down, also `shutdown
     * graceful`) keeps the cache for the next start; other stops drop it. */
    if (sig == SIGUSR1)
        warm_save();
    else
        warm_discard();
    workers_teardown();
    auth_teardown();
    tls_teardown();
    if (settings.pidfile)
        unlink(settings.pidfile);
    return 0;
}
