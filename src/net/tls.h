/*
 * tls.h — TLS as a byte transport under a connection's parser (OpenSSL).
 * Ciphertext received (by recv() or an io_uring completion) is appended to
 * `in`; tls_conn_open() runs the handshake or decrypts it into the
 * connection's input buffer; tls_conn_seal() encrypts the connection's
 * pending output into `out`, which is what goes to the socket. OpenSSL
 * reads and writes through a BIO over these two buffers, never the
 * socket, so the epoll and io_uring paths carry TLS alike, and nothing in
 * here ever waits: a handshake advances as its bytes arrive.
 *
 * Ownership: the context (certificates, settings) is built by the main
 * thread at start-up and replaced by refresh_certs on any worker under a
 * lock; each worker keeps its own reference to the current one (picked up
 * at the next accept, never on the data path). A `struct tls_conn` belongs
 * to the worker that owns its connection.
 */
#ifndef PERCORE_TLS_H
#define PERCORE_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "util/buf.h"
#include "util/stats.h"

struct ssl_st;

struct tls_conn {
    struct ssl_st *ssl;
    struct buf     in;          /* ciphertext received, not yet read by OpenSSL */
    size_t         inoff;       /* ... bytes of it already read */
    struct buf     out;         /* ciphertext to send (own bytes only) */
    size_t         outoff;      /* ... bytes of it already sent */
    uint32_t       started;     /* loop clock at accept: handshake deadline */
    bool           established; /* handshake done */
    bool           failed;      /* a fatal TLS error: no more output */
    bool           not_tls;     /* the first byte was no TLS handshake record */
    bool           shut;        /* close_notify sealed */
    char           peer[96];    /* client certificate's CN (or subject), "" if none */
};

/* Results of tls_conn_open(). */
enum { TLS_OK = 0, TLS_LATER = 1, TLS_CLOSED = 2, TLS_FAILED = -1 };

/* Start-up (main thread): with -Z, build the context from tls_settings;
 * on a bad certificate, key or setting, log why and return -1. */
int  tls_setup(void);
void tls_teardown(void);        /* after the workers stopped */
bool tls_enabled(void);
/* refresh_certs: build a new context from the same files; on success new
 * connections use it and 0 is returned; otherwise the old one stays and
 * err says why (memcached's wording, a file name but never key bytes). */
int  tls_refresh(char *err, size_t n);
/* Seconds since start-up or the last successful refresh. */
unsigned long tls_cert_age(void);
/* Whether the record layer runs in the kernel (ssl_kernel_tls), in words. */
const char *tls_kernel_state(void);

/* Whether a connection accepted on socket fd speaks TLS: with -Z, all but
 * those accepted on a listener whose -l address had the "notls:" prefix. */
struct loop;
bool tls_wanted(const struct loop *l, int fd);
/* A TLS session for a freshly accepted connection on worker `wid`; NULL
 * when out of memory. `now` starts the handshake clock. */
struct tls_conn *tls_conn_new(unsigned wid, uint32_t now);
void tls_conn_free(struct tls_conn *t);
/* Room for n more ciphertext bytes at the end of `in` (recv target). */
bool tls_conn_in_reserve(struct tls_conn *t, size_t n);
/* Handshake as far as the input allows, then decrypt into plain. Handshake
 * steps are limited per worker and loop iteration (`iter`): past that,
 * TLS_LATER (the input stays; call again next iteration). TLS_CLOSED: the
 * peer sent close_notify. TLS_FAILED: a protocol error (counted in st). */
int  tls_conn_open(struct tls_conn *t, struct buf *plain, uint64_t iter, struct wstats *st);
/* Encrypt plain from *off while `out` holds less than `limit` unsent
 * bytes; advances *off. False on a fatal error. */
bool tls_conn_seal(struct tls_conn *t, const struct buf *plain, size_t *off, size_t limit);
/* Seal close_notify (once) before a connection closes cleanly. */
void tls_conn_shutdown(struct tls_conn *t);
static inline size_t tls_conn_unsent(const struct tls_conn *t)
{
    return t->out.len - t->outoff;
}
/* For `stats conns`: protocol version, cipher, record layer. */
void tls_conn_describe(const struct tls_conn *t, const char **version, const char **cipher,
                       const char **records);

#endif
