/*
 * tls_opts.h — the TLS settings (-Z and memcached's -o ssl_* sub-options),
 * parsed by the main thread with the rest of the command line
 * (util/options.c calls the tls_opt_* setters) and read-only afterwards.
 * The TLS transport itself lives in net/tls.c.
 */
#ifndef PERCORE_TLS_OPTS_H
#define PERCORE_TLS_OPTS_H

#include <stdbool.h>

struct tls_settings {
    bool  enabled;          /* -Z */
    char *chain_cert;       /* ssl_chain_cert: PEM certificate chain */
    char *key;              /* ssl_key: private key (default: in chain_cert) */
    int   keyformat;        /* ssl_keyformat: 1 PEM, 2 DER (OpenSSL's SSL_FILETYPE_*) */
    int   verify_mode;      /* ssl_verify_mode: 0 none, 1 request, 2 require, 3 require once */
    char *ciphers;          /* ssl_ciphers: OpenSSL cipher list (TLS 1.2 and older) */
    char *ca_cert;          /* ssl_ca_cert: CAs whose client certificates are accepted */
    int   wbuf_size;        /* ssl_wbuf_size, KiB: accepted, reported (records are 16 KiB) */
    bool  session_cache;    /* ssl_session_cache: server-side session resumption */
    bool  kernel_tls;       /* ssl_kernel_tls: ask for kTLS (net/tls.c says if it got it) */
    int   min_version;      /* ssl_min_version: 0..3 = TLS 1.0..1.3 */
    int   handshake_secs;   /* ssl_handshake_timeout: an unfinished handshake is closed after it */
    unsigned notls_mask;    /* bit i: -l address i had memcached's "notls:" prefix */
};

extern struct tls_settings tls_settings;

/* The -o setters (util/options.c's sub-option table). Each exits with the
 * usage status on a bad value, as the other sub-options do. */
void tls_opt_chain_cert(const char *v, double n);
void tls_opt_key(const char *v, double n);
void tls_opt_keyformat(const char *v, double n);
void tls_opt_verify_mode(const char *v, double n);
void tls_opt_ciphers(const char *v, double n);
void tls_opt_ca_cert(const char *v, double n);
void tls_opt_wbuf_size(const char *v, double n);
void tls_opt_session_cache(const char *v, double n);
void tls_opt_kernel_tls(const char *v, double n);
void tls_opt_min_version(const char *v, double n);
void tls_opt_handshake_timeout(const char *v, double n);

/* memcached's name of a minimum version ("tlsv1.2"). */
const char *tls_version_name(int v);

#endif
