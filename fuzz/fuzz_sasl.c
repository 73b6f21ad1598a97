/*
 * fuzz_sasl.c — libFuzzer target for -S: the binary parser with
 * cf->auth_sasl, its SASL gate (bin_parse.c) and Cyrus SASL itself
 * (proto/auth_sasl.c), then the real executors and store behind it,
 * through the connection-like sink of fuzz_harness.h. Single-threaded.
 *
 * Once per process, as the server does at start (sasl_setup, called by
 * server/auth_setup.c): a memcached.conf offering PLAIN and LOGIN (their
 * replies are deterministic, as the harness's whole-vs-split comparison
 * needs; SCRAM's and DIGEST-MD5's nonces are not) and a sasldb holding
 * alice / pw, written from here with sasl_setpass() as saslpasswd2 does,
 * in a fresh directory under $TMPDIR found through SASL_CONF_PATH. The
 * directory goes at exit; one left by a process that crashed (libFuzzer
 * leaves by _Exit then) is swept by the next run.
 *
 * It found that Cyrus's LOGIN plugin (2.1.28) returns without freeing the
 * password it copied when the username it was given is empty (AUTH LOGIN,
 * STEP "", STEP <password> lost 17 + its length bytes each time); the
 * server now refuses an empty LOGIN username at that step (auth_sasl.c),
 * and regressions/fuzz_sasl/login_empty_username replays the shape with
 * no suppression.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include "proto/auth.h"
#include "fuzz_harness.h"

#ifndef HAVE_SASL
#error "fuzz_sasl needs Cyrus SASL (libsasl2-dev): mk/fuzz.mk passes -DHAVE_SASL when it is there"
#endif
#include <sasl/sasl.h>

#define DIR_PREFIX "percore-fuzz-sasl-"

static char dir[256];

/* Every file in d, then d (the library makes only the config and the db
 * here, but a Berkeley DB build may add its own). */
static void remove_dir(const char *d)
{
    DIR *dp = opendir(d);
    if (dp) {
        struct dirent *e;
        char p[512];
        while ((e = readdir(dp))) {
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                snprintf(p, sizeof p, "%s/%s", d, e->d_name);
                unlink(p);
            }
        }
        closedir(dp);
    }
    rmdir(d);
}

/* Directories of earlier runs whose process is gone (named by its pid). */
static void sweep(const char *tmp)
{
    DIR *dp = opendir(tmp);
    if (!dp)
        return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(dp))) {
        if (strncmp(e->d_name, DIR_PREFIX, sizeof DIR_PREFIX - 1))
            continue;
        long pid = strtol(e->d_name + sizeof DIR_PREFIX - 1, NULL, 10);
        if (pid <= 0 || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        snprintf(p, sizeof p, "%s/%s", tmp, e->d_name);
        remove_dir(p);
    }
    closedir(dp);
}

static void done(void)
{
    sasl_teardown();
    remove_dir(dir);
}

static void setup(void)
{
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    sweep(tmp);
    snprintf(dir, sizeof dir, "%s/" DIR_PREFIX "%ld-XXXXXX", tmp, (long)getpid());
    if (!mkdtemp(dir))
        abort();
    char p[512];
    snprintf(p, sizeof p, "%s/memcached.conf", dir);
    FILE *f = fopen(p, "w");
    if (!f)
        abort();
    fprintf(f, "mech_list: plain login\nsasldb_path: %s/sasldb2\n", dir);
    if (fclose(f))
        abort();
    /* sasl_setup keeps a pointer to the environment's string. */
    setenv("SASL_CONF_PATH", dir, 1);
    atexit(done);
    char err[512];
    if (sasl_setup(err, sizeof err) < 0) {
        fprintf(stderr, "fuzz_sasl: %s\n", err);
        abort();
    }
    /* The user, as saslpasswd2 -c -a memcached makes it: on a connection
     * made as the server makes its own, so the realm is the same. */
    sasl_conn_t *c = NULL;
    if (sasl_server_new("memcached", NULL, NULL, NULL, NULL, NULL, 0, &c) != SASL_OK ||
        sasl_setpass(c, "alice", "pw", 2, NULL, 0, SASL_SET_CREATE) != SASL_OK) {
        fprintf(stderr, "fuzz_sasl: cannot write the sasldb in %s: %s\n", dir,
                c ? sasl_errdetail(c) : "no connection");
        abort();
    }
    sasl_dispose(&c);
}

static ssize_t fz_parse(struct session *ss, const struct proto_conf *cf,
                        const struct proto_sink *sk, const char *data, size_t len,
                        size_t *need)
{
    static bool ready;
    if (!ready) {
        setup();
        ready = true;
    }
    struct proto_conf mine = *cf;
    mine.auth_sasl = true;
    return proto_binary.parse(&ss->pstate, &mine, sk, ss, data, len, need);
}

static void fz_session_end(struct session *ss)
{
    proto_binary.state_free(&ss->pstate);
}
