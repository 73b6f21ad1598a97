/*
 * auth_setup.c — turns -Y and -S on at start-up, with memcached's error
 * messages when they cannot be: an unreadable or malformed credential
 * file, or a SASL library that finds no configuration. Main thread only,
 * before workers start (they then only read what was set up here).
 */
#include "util/log.h"
#include "util/options.h"
#include "proto/auth.h"
#include "server/auth_setup.h"

int auth_setup(void)
{
    char err[512];
    if (settings.auth_file) {
        if (authfile_load(settings.auth_file, err, sizeof err) < 0) {
            log_err("%s", err);
            return -1;
        }
        log_info("-Y: ASCII authentication on, %u entries in %s", authfile_entries(),
                 settings.auth_file);
        if (settings.sasl)
            log_warn("-S with -Y: the ASCII protocol and -Y authenticate; SASL (binary) is "
                     "not reachable, as in memcached");
    }
    if (settings.sasl) {
        if (sasl_setup(err, sizeof err) < 0) {
            log_err("%s", err);
            return -1;
        }
        size_t n;
        const char *mechs = sasl_mechs(&n);
        log_info("-S: SASL authentication on, mechanisms: %.*s", (int)n, mechs);
    }
    return 0;
}

void auth_teardown(void)
{
    if (settings.sasl)
        sasl_teardown();
    authfile_free();
}

void auth_sighup(void)
{
    char err[512];
    if (!settings.auth_file) {
        log_info("SIGHUP: nothing to reopen (logs go to stderr); ignored");
        return;
    }
    if (authfile_load(settings.auth_file, err, sizeof err) < 0)
        log_warn("SIGHUP: -Y file not reloaded, the previous entries stay in use: %s", err);
    else
        log_info("SIGHUP: -Y file reloaded, %u entries in %s", authfile_entries(),
                 settings.auth_file);
}
