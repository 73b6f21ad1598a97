/*
 * auth_sasl.c — -S: Cyrus SASL (Debian's libsasl2) for the binary
 * protocol, configured as memcached is: application name "memcached", so
 * the library reads memcached.conf (mech_list, sasldb_path, pwcheck_method
 * ...) from $SASL_CONF_PATH, else /etc/sasl or /etc/sasl2; mechanisms are
 * the library's plugins (libsasl2-modules: PLAIN, SCRAM-SHA-*, ...; the
 * sasldb backend is libsasl2-modules-db).
 *
 * Threads: sasl_setup/teardown on the main thread, before and after the
 * workers; a struct sasl_session belongs to its session's worker. The
 * library's few shared structures are guarded by the pthread mutexes
 * installed here. The library's log goes through a rate-limited callback
 * that never passes on its password traces (SASL_LOG_PASS).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "util/log.h"
#include "proto/auth.h"

/* Longest mechanism name (memcached's MAX_SASL_MECH_LEN). */
#define MECH_MAX 32

#ifdef HAVE_SASL
#include <sasl/sasl.h>

struct sasl_session {
    sasl_conn_t *conn;
    bool         going;   /* the library asked for a step (SASL_CONTINUE) */
    bool         login_user;   /* LOGIN: the next step carries the username */
};

static char       *mechs;
static size_t      mechs_len;
static const char *conf_dir;

/* memcached's search: $SASL_CONF_PATH, else the first of these holding
 * memcached.conf. */
static const char *find_conf_dir(void)
{
    const char *env = getenv("SASL_CONF_PATH");
    if (env && *env)
        return env;
    static const char *const dirs[] = { "/etc/sasl", "/etc/sasl2" };
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        char p[64];
        snprintf(p, sizeof p, "%s/memcached.conf", dirs[i]);
        if (access(p, F_OK) == 0)
            return dirs[i];
    }
    return NULL;
}

/* sasl.h says the library frees the path; libsasl2 2.1.28 does not (a
 * leak under ASan), so it gets memory that needs no freeing: conf_dir is
 * the environment's string or a literal, alive for the process. */
static int cb_getconfpath(void *ctx, char **path)
{
    *path = (char *)conf_dir;
    return SASL_OK;
}

/* At most one line a second from the library (a password guesser would
 * otherwise write one per attempt), with a count of those left out. */
static int cb_log(void *ctx, int level, const char *message)
{
    static _Atomic long last;
    static _Atomic unsigned dropped;
    int need;
    switch (level) {
    case SASL_LOG_ERR:  need = 0; break;
    case SASL_LOG_FAIL:
    case SASL_LOG_WARN: need = 1; break;
    case SASL_LOG_NOTE:
    case SASL_LOG_DEBUG:
    case SASL_LOG_TRACE: need = 2; break;
    default: return SASL_OK;   /* SASL_LOG_PASS (password traces), NONE */
    }
    if (log_level_now() < need)
        return SASL_OK;
    long now = (long)time(NULL);
    long prev = atomic_load_explicit(&last, memory_order_relaxed);
    if (prev == now || !atomic_compare_exchange_strong(&last, &prev, now)) {
        atomic_fetch_add_explicit(&dropped, 1, memory_order_relaxed);
        return SASL_OK;
    }
    unsigned d = atomic_exchange_explicit(&dropped, 0, memory_order_relaxed);
    if (d)
        log_warn("SASL: %s (%u more SASL messages in the last second not shown)", message, d);
    else
        log_warn("SASL: %s", message);
    return SASL_OK;
}

static void *mx_alloc(void)
{
    pthread_mutex_t *m = malloc(sizeof *m);
    if (m)
        pthread_mutex_init(m, NULL);
    return m;
}

static int mx_lock(void *m)
{
    return pthread_mutex_lock(m) ? -1 : 0;
}

static int mx_unlock(void *m)
{
    return pthread_mutex_unlock(m) ? -1 : 0;
}

static void mx_free(void *m)
{
    if (m) {
        pthread_mutex_destroy(m);
        free(m);
    }
}

/* The library's callback table erases the types; void (*)(void) is the
 * cast the compiler accepts for that. */
#define SASL_CB(f) ((int (*)(void))(void (*)(void))(f))

static sasl_callback_t callbacks[] = {
    { SASL_CB_LOG, SASL_CB(cb_log), NULL },
    { SASL_CB_GETCONFPATH, SASL_CB(cb_getconfpath), NULL },
    { SASL_CB_LIST_END, NULL, NULL },
};

static sasl_conn_t *conn_new(void)
{
    sasl_conn_t *c = NULL;
    if (sasl_server_new("memcached", NULL, NULL, NULL, NULL, NULL, 0, &c) != SASL_OK)
        return NULL;
    return c;
}

int sasl_setup(char *err, size_t errlen)
{
    conf_dir = find_conf_dir();
    if (!conf_dir) {
        snprintf(err, errlen, "-S: no SASL configuration: set SASL_CONF_PATH to the directory "
                 "of a memcached.conf, or create /etc/sasl2/memcached.conf (see docs/security.md)");
        return -1;
    }
    sasl_set_mutex(mx_alloc, mx_lock, mx_unlock, mx_free);
    int rc = sasl_server_init(callbacks, "memcached");
    if (rc != SASL_OK) {
        snprintf(err, errlen, "-S: Error initializing sasl: %s", sasl_errstring(rc, NULL, NULL));
        return -1;
    }
    sasl_conn_t *c = conn_new();
    const char *list = NULL;
    unsigned len = 0;
    rc = c ? sasl_listmech(c, NULL, "", " ", "", &list, &len, NULL) : SASL_FAIL;
    if (rc == SASL_OK && len)
        mechs = strndup(list, len);
    if (c)
        sasl_dispose(&c);
    if (!mechs) {
        snprintf(err, errlen, "-S: no SASL mechanism available with the configuration in %s "
                 "(mech_list, and the libsasl2-modules package)", conf_dir);
        sasl_server_done();
        return -1;
    }
    mechs_len = len;
    log_info("-S: SASL configuration from %s/memcached.conf", conf_dir);
    return 0;
}

void sasl_teardown(void)
{
    if (!mechs)
        return;
    free(mechs);
    mechs = NULL;
    sasl_server_done();
}

const char *sasl_mechs(size_t *len)
{
    *len = mechs_len;
    return mechs ? mechs : "";
}

enum sasl_res sasl_exchange(struct sasl_session **ss, bool step, const char *mech,
                            size_t mechlen, const char *in, size_t inlen,
                            const char **out, unsigned *outlen)
{
    *out = NULL;
    *outlen = 0;
    struct sasl_session *s = *ss;
    if (!s) {
        if (!(s = calloc(1, sizeof *s)))
            return SASL_RES_FAIL;
        *ss = s;
    }
    /* A step outside an exchange in progress (none started, or it ended)
     * is refused here: Cyrus's sasl_server_step() on a connection whose
     * start was never called dereferences state it does not have (a
     * SASL_STEP as the first packet crashed the server). memcached refuses
     * it too ("SASL_STEP called but sasl_server_start not called"). */
    if (step && !s->going)
        return SASL_RES_FAIL;
    /* LOGIN with an empty username (or one that starts with NUL) is refused
     * at that step, not passed on: Cyrus's LOGIN plugin (2.1.28) fails it
     * only after the password step and never frees the password it copied
     * (fuzz_sasl found it), so repeated attempts grew the server without
     * bound before any login. memcached passes it on and answers "Auth
     * failure." one step later. */
    bool login_user = s->login_user;
    s->login_user = false;
    if (step && login_user && (inlen == 0 || in[0] == '\0')) {
        s->going = false;
        sasl_dispose(&s->conn);
        return SASL_RES_FAIL;
    }
    /* A new exchange starts on a fresh library connection: nothing of a
     * failed or finished one carries over. */
    if (!step && s->conn)
        sasl_dispose(&s->conn);
    if (!s->conn && !(s->conn = conn_new()))
        return SASL_RES_FAIL;
    int rc;
    if (step) {
        rc = sasl_server_step(s->conn, inlen ? in : NULL, (unsigned)inlen, out, outlen);
    } else {
        char m[MECH_MAX + 1];
        if (mechlen > MECH_MAX)
            return SASL_RES_FAIL;
        memcpy(m, mech, mechlen);
        m[mechlen] = '\0';
        rc = sasl_server_start(s->conn, m, inlen ? in : NULL, (unsigned)inlen, out, outlen);
    }
    s->going = rc == SASL_CONTINUE;
    /* The LOGIN prompt: without an initial response the first step is the
     * username. */
    s->login_user = s->going && !step && mechlen == 5 && strncasecmp(mech, "LOGIN", 5) == 0 &&
                    inlen == 0;
    if (rc == SASL_OK)
        return SASL_RES_OK;
    if (rc == SASL_CONTINUE)
        return SASL_RES_CONTINUE;
    *out = NULL;
    *outlen = 0;
    return SASL_RES_FAIL;
}

void sasl_session_free(struct sasl_session **ss)
{
    if (*ss) {
        if ((*ss)->conn)
            sasl_dispose(&(*ss)->conn);
        free(*ss);
        *ss = NULL;
    }
}

#else /* !HAVE_SASL: built without libsasl2-dev */

struct sasl_session {
    int unused;
};

int sasl_setup(char *err, size_t errlen)
{
    snprintf(err, errlen, "-S: this percore was built without Cyrus SASL (install libsasl2-dev, "
             "or run scripts/deps.sh run, and rebuild)");
    return -1;
}

void sasl_teardown(void)
{
}

const char *sasl_mechs(size_t *len)
{
    *len = 0;
    return "";
}

enum sasl_res sasl_exchange(struct sasl_session **ss, bool step, const char *mech,
                            size_t mechlen, const char *in, size_t inlen,
                            const char **out, unsigned *outlen)
{
    *out = NULL;
    *outlen = 0;
    return SASL_RES_FAIL;
}

void sasl_session_free(struct sasl_session **ss)
{
    *ss = NULL;
}

#endif
