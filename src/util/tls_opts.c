/*
 * tls_opts.c — parsing of memcached's -o ssl_* sub-options into
 * tls_settings (see tls_opts.h). Main thread only, before workers start.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "util/options.h"
#include "util/tls_opts.h"

struct tls_settings tls_settings = {
    .keyformat = 1, .wbuf_size = 16, .min_version = 2, .kernel_tls = false, .handshake_secs = 10,
};

static void bad(const char *name, const char *v, const char *allowed)
{
    fprintf(stderr, "percore: invalid value for -o %s: '%s' (%s)\nTry 'percore --help'.\n",
            name, v ? v : "", allowed);
    exit(EXIT_USAGE);
}

void tls_opt_chain_cert(const char *v, double n) { tls_settings.chain_cert = strdup(v); }
void tls_opt_key(const char *v, double n) { tls_settings.key = strdup(v); }
void tls_opt_ciphers(const char *v, double n) { tls_settings.ciphers = strdup(v); }
void tls_opt_ca_cert(const char *v, double n) { tls_settings.ca_cert = strdup(v); }
void tls_opt_verify_mode(const char *v, double n) { tls_settings.verify_mode = (int)n; }
void tls_opt_wbuf_size(const char *v, double n) { tls_settings.wbuf_size = (int)n; }
void tls_opt_session_cache(const char *v, double n) { tls_settings.session_cache = true; }
void tls_opt_kernel_tls(const char *v, double n) { tls_settings.kernel_tls = true; }
void tls_opt_handshake_timeout(const char *v, double n) { tls_settings.handshake_secs = (int)n; }

void tls_opt_keyformat(const char *v, double n)
{
    /* OpenSSL's SSL_FILETYPE_PEM (1) and SSL_FILETYPE_ASN1 (2), as memcached. */
    if (n != 1 && n != 2)
        bad("ssl_keyformat", v, "1 = PEM, 2 = DER");
    tls_settings.keyformat = (int)n;
}

static const char *const versions[] = { "tlsv1.0", "tlsv1.1", "tlsv1.2", "tlsv1.3" };

/* memcached's names; the numbers 0..3 that earlier percore accepted too. */
void tls_opt_min_version(const char *v, double n)
{
    for (int i = 0; i < 4; i++) {
        char num[2] = { (char)('0' + i), 0 };
        if (!strcmp(v, versions[i]) || !strcmp(v, num)) {
            tls_settings.min_version = i;
            return;
        }
    }
    bad("ssl_min_version", v, "tlsv1.0, tlsv1.1, tlsv1.2 or tlsv1.3");
}

const char *tls_version_name(int v)
{
    return v >= 0 && v < 4 ? versions[v] : "?";
}
