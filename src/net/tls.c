/*
 * tls.c — the TLS transport (see tls.h): the shared context and its
 * refresh, and the per-connection session over in/out buffers. A session
 * runs only on the worker that owns its connection; the context pointer is
 * swapped under ctx_lock (refresh_certs) and each worker takes its own
 * reference when it sees a new generation (at accept).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "util/log.h"
#include "util/options.h"
#include "util/tls_opts.h"
#include "net/loop.h"
#include "net/tls.h"

#ifndef HAVE_OPENSSL

int tls_setup(void)
{
    if (!tls_settings.enabled)
        return 0;
    log_err("TLS (-Z): percore was built without OpenSSL (install libssl-dev and rebuild)");
    return -1;
}
void tls_teardown(void) {}
bool tls_enabled(void) { return false; }
bool tls_wanted(const struct loop *l, int fd) { return false; }
int tls_refresh(char *err, size_t n) { snprintf(err, n, "Error TLS not enabled"); return -1; }
unsigned long tls_cert_age(void) { return 0; }
const char *tls_kernel_state(void) { return "no"; }
struct tls_conn *tls_conn_new(unsigned wid, uint32_t now) { return NULL; }
void tls_conn_free(struct tls_conn *t) {}
bool tls_conn_in_reserve(struct tls_conn *t, size_t n) { return false; }
int tls_conn_open(struct tls_conn *t, struct buf *p, uint64_t i, struct wstats *s) { return TLS_FAILED; }
bool tls_conn_seal(struct tls_conn *t, const struct buf *p, size_t *o, size_t l) { return false; }
void tls_conn_describe(const struct tls_conn *t, const char **v, const char **c, const char **r) {}
void tls_conn_shutdown(struct tls_conn *t) {}

#else

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

/* Handshake steps one worker runs per loop iteration: a full handshake
 * costs a signature and a key exchange (0.1 ms with ECDSA P-256, about
 * 1 ms with RSA-2048), so a thousand clients connecting at once are served
 * over several iterations instead of holding every other connection. */
#define HANDSHAKES_PER_ITER 32
#define RECORD_MAX 16384        /* bytes of plain text per TLS record */

static pthread_mutex_t ctx_lock = PTHREAD_MUTEX_INITIALIZER;
static SSL_CTX *cur_ctx;                 /* under ctx_lock */
static _Atomic unsigned ctx_gen;         /* bumped (release) after cur_ctx changes */
static _Atomic long refreshed_at;        /* time() of the last successful load */
static BIO_METHOD *bio_method;
static bool kernel_tls_available;

/* Each worker's reference to the context and the generation it is from:
 * slot i is written by worker i only (and freed at teardown). */
static struct { SSL_CTX *ctx; unsigned gen; } wctx[MAX_WORKERS];

bool tls_enabled(void)
{
    return tls_settings.enabled;
}

/* The first error OpenSSL queued, as text (file names, never key bytes). */
static void ssl_error_text(char *out, size_t n)
{
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, out, n);
    else
        snprintf(out, n, "%s", errno ? strerror(errno) : "unknown error");
    ERR_clear_error();
}

/* A new context from tls_settings, or NULL with err filled (memcached's
 * messages for the certificate and key). */
static SSL_CTX *ctx_build(char *err, size_t n)
{
    char why[256];
    const struct tls_settings *ts = &tls_settings;
    ERR_clear_error();
    errno = 0;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        ssl_error_text(why, sizeof why);
        snprintf(err, n, "Error creating the TLS context: %s", why);
        return NULL;
    }
    static const int vers[] = { TLS1_VERSION, TLS1_1_VERSION, TLS1_2_VERSION, TLS1_3_VERSION };
    SSL_CTX_set_min_proto_version(ctx, vers[ts->min_version & 3]);
    /* Replies are appended to the output as they are produced; partial
     * writes never happen with a memory BIO, but say that a retried write
     * may come from another address (the output buffer can move). */
    SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* SSL_MODE_RELEASE_BUFFERS is not set: it would save an idle session
     * about 9 KiB but costs 1,400 instructions per get (a free and a malloc
     * of the record buffers around every request; docs/performance.md). */
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                        SSL_OP_NO_RENEGOTIATION);
    if (!ts->chain_cert) {
        snprintf(err, n, "Error loading the certificate chain: no ssl_chain_cert given");
        goto fail;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, ts->chain_cert) != 1) {
        ssl_error_text(why, sizeof why);
        snprintf(err, n, "Error loading the certificate chain: %s : %s", ts->chain_cert, why);
        goto fail;
    }
    const char *key = ts->key ? ts->key : ts->chain_cert;
    if (SSL_CTX_use_PrivateKey_file(ctx, key, ts->keyformat == 2 ? SSL_FILETYPE_ASN1
                                                                 : SSL_FILETYPE_PEM) != 1) {
        ssl_error_text(why, sizeof why);
        snprintf(err, n, "Error loading the key: %s : %s", key, why);
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ssl_error_text(why, sizeof why);
        snprintf(err, n, "Error validating the certificate: %s", why);
        goto fail;
    }
    if (ts->ciphers && SSL_CTX_set_cipher_list(ctx, ts->ciphers) != 1) {
        ssl_error_text(why, sizeof why);
        snprintf(err, n, "Error setting the provided cipher(s): %s : %s", ts->ciphers, why);
        goto fail;
    }
    if (ts->ca_cert) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ts->ca_cert);
        if (!names || SSL_CTX_load_verify_locations(ctx, ts->ca_cert, NULL) != 1) {
            if (names)
                sk_X509_NAME_pop_free(names, X509_NAME_free);
            ssl_error_text(why, sizeof why);
            snprintf(err, n, "Error loading the CA certificate: %s : %s", ts->ca_cert, why);
            goto fail;
        }
        SSL_CTX_set_client_CA_list(ctx, names);
    }
    static const int modes[] = {
        SSL_VERIFY_NONE, SSL_VERIFY_PEER,
        SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
        SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT | SSL_VERIFY_CLIENT_ONCE,
    };
    SSL_CTX_set_verify(ctx, modes[ts->verify_mode & 3], NULL);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"percore", 7);
    if (ts->session_cache) {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    } else {
        /* No resumption: no session tickets either (each costs an
         * encryption and a record after every handshake). */
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_num_tickets(ctx, 0);
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

/* ---- the BIO over a connection's in/out buffers ------------------------- */

static int bio_read_ex(BIO *b, char *out, size_t n, size_t *got)
{
    struct tls_conn *t = BIO_get_data(b);
    size_t avail = t->in.len - t->inoff;
    BIO_clear_retry_flags(b);
    if (avail == 0) {
        BIO_set_retry_read(b);
        *got = 0;
        return 0;
    }
    if (n > avail)
        n = avail;
    memcpy(out, t->in.data + t->inoff, n);
    t->inoff += n;
    *got = n;
    return 1;
}

static int bio_write_ex(BIO *b, const char *p, size_t n, size_t *done)
{
    struct tls_conn *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (!buf_add(&t->out, p, n)) {
        *done = 0;
        return 0;
    }
    *done = n;
    return 1;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

/* ---- start-up, refresh --------------------------------------------------- */

/* Does this kernel offer the "tls" upper-layer protocol at all? A socket
 * that is not connected answers ENOTCONN when it does, ENOENT when not. */
static bool probe_kernel_tls(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return false;
    int rc = setsockopt(fd, 6 /* SOL_TCP */, 31 /* TCP_ULP */, "tls", 3);
    int e = errno;
    close(fd);
    return rc == 0 || e == ENOTCONN;
}

int tls_setup(void)
{
    if (!tls_settings.enabled)
        return 0;
    char err[512];
    OPENSSL_init_ssl(OPENSSL_INIT_LOAD_SSL_STRINGS | OPENSSL_INIT_LOAD_CRYPTO_STRINGS, NULL);
    cur_ctx = ctx_build(err, sizeof err);
    if (!cur_ctx) {
        log_err("TLS (-Z): %s", err);
        return -1;
    }
    bio_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "percore conn");
    if (!bio_method || !BIO_meth_set_read_ex(bio_method, bio_read_ex) ||
        !BIO_meth_set_write_ex(bio_method, bio_write_ex) ||
        !BIO_meth_set_ctrl(bio_method, bio_ctrl) || !BIO_meth_set_create(bio_method, bio_create)) {
        log_err("TLS (-Z): cannot set up the connection BIO");
        return -1;
    }
    if (tls_settings.verify_mode > 0 && !tls_settings.ca_cert)
        log_warn("TLS: ssl_verify_mode=%d without ssl_ca_cert: no client certificate can be "
                 "verified", tls_settings.verify_mode);
    if (settings.unix_path)
        log_warn("TLS (-Z): the UNIX socket %s is served in clear text, as memcached does "
                 "(TLS is for TCP listeners; -s turns them off)", settings.unix_path);
    kernel_tls_available = probe_kernel_tls();
    if (tls_settings.kernel_tls)
        log_warn("TLS: ssl_kernel_tls: kernel TLS is %s, and percore does not hand records to "
                 "the kernel yet: records are encrypted in user space (OpenSSL)",
                 kernel_tls_available ? "available" : "not available on this kernel");
    atomic_store(&refreshed_at, (long)time(NULL));
    atomic_store_explicit(&ctx_gen, 1, memory_order_release);
    log_info("TLS on: %s, min %s, client certificates %s%s", tls_settings.chain_cert,
             tls_version_name(tls_settings.min_version),
             tls_settings.verify_mode == 0 ? "not asked" :
             tls_settings.verify_mode == 1 ? "requested" : "required",
             tls_settings.session_cache ? ", session cache" : "");
    return 0;
}

void tls_teardown(void)
{
    for (int i = 0; i < MAX_WORKERS; i++) {
        SSL_CTX_free(wctx[i].ctx);
        wctx[i].ctx = NULL;
    }
    SSL_CTX_free(cur_ctx);
    cur_ctx = NULL;
    BIO_meth_free(bio_method);
    bio_method = NULL;
}

int tls_refresh(char *err, size_t n)
{
    if (!tls_settings.enabled) {
        snprintf(err, n, "Error TLS not enabled");
        return -1;
    }
    SSL_CTX *ctx = ctx_build(err, n);
    if (!ctx)
        return -1;
    pthread_mutex_lock(&ctx_lock);
    SSL_CTX *old = cur_ctx;
    cur_ctx = ctx;
    atomic_fetch_add_explicit(&ctx_gen, 1, memory_order_release);
    pthread_mutex_unlock(&ctx_lock);
    /* Sessions and workers hold their own references to the old one. */
    SSL_CTX_free(old);
    atomic_store(&refreshed_at, (long)time(NULL));
    return 0;
}

unsigned long tls_cert_age(void)
{
    long now = (long)time(NULL), at = atomic_load(&refreshed_at);
    return now > at ? (unsigned long)(now - at) : 0;
}

const char *tls_kernel_state(void)
{
    return "no";
}

/* ---- sessions ------------------------------------------------------------ */

static bool same_listener(const struct sockaddr_storage *conn, const struct sockaddr_storage *ls)
{
    if (conn->ss_family != ls->ss_family)
        return false;
    if (conn->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const void *)conn, *b = (const void *)ls;
        return a->sin_port == b->sin_port &&
               (b->sin_addr.s_addr == htonl(INADDR_ANY) || a->sin_addr.s_addr == b->sin_addr.s_addr);
    }
    if (conn->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const void *)conn, *b = (const void *)ls;
        return a->sin6_port == b->sin6_port &&
               (IN6_IS_ADDR_UNSPECIFIED(&b->sin6_addr) ||
                !memcmp(&a->sin6_addr, &b->sin6_addr, sizeof a->sin6_addr));
    }
    return false;
}

/* Only with "notls:" listeners does an accept cost these getsockname()s.
 * A worker's TCP listeners are opened in -l order (server/worker.c), so
 * listener i is -l address i. A UNIX socket (-s, which turns TCP off) is
 * clear text, as in memcached, whose TLS is for TCP listeners only: its
 * clients talk to a -Z -s server without TLS. */
bool tls_wanted(const struct loop *l, int fd)
{
    unsigned mask = tls_settings.notls_mask;
    if (!tls_settings.enabled || settings.unix_path)
        return false;
    if (!mask)
        return true;
    struct sockaddr_storage me, ls;
    socklen_t n = sizeof me;
    if (getsockname(fd, (struct sockaddr *)&me, &n) < 0)
        return true;
    for (int i = 0; i < l->nlisten && i < 32; i++) {
        if (!(mask & (1u << i)))
            continue;
        n = sizeof ls;
        if (getsockname(l->listen[i].fd, (struct sockaddr *)&ls, &n) == 0 && same_listener(&me, &ls))
            return false;
    }
    return true;
}

struct tls_conn *tls_conn_new(unsigned wid, uint32_t now)
{
    if (wid >= MAX_WORKERS)
        return NULL;
    unsigned gen = atomic_load_explicit(&ctx_gen, memory_order_acquire);
    if (wctx[wid].gen != gen || !wctx[wid].ctx) {
        pthread_mutex_lock(&ctx_lock);
        SSL_CTX *ctx = cur_ctx;
        SSL_CTX_up_ref(ctx);
        gen = atomic_load_explicit(&ctx_gen, memory_order_relaxed);
        pthread_mutex_unlock(&ctx_lock);
        SSL_CTX_free(wctx[wid].ctx);
        wctx[wid].ctx = ctx;
        wctx[wid].gen = gen;
    }
    struct tls_conn *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->started = now;
    t->ssl = SSL_new(wctx[wid].ctx);
    BIO *b = t->ssl ? BIO_new(bio_method) : NULL;
    if (!b) {
        SSL_free(t->ssl);
        free(t);
        ERR_clear_error();
        return NULL;
    }
    BIO_set_data(b, t);
    SSL_set_bio(t->ssl, b, b);
    SSL_set_accept_state(t->ssl);
    return t;
}

void tls_conn_free(struct tls_conn *t)
{
    if (!t)
        return;
    SSL_free(t->ssl);
    buf_free(&t->in);
    buf_free(&t->out);
    free(t);
}

bool tls_conn_in_reserve(struct tls_conn *t, size_t n)
{
    if (t->inoff && t->inoff == t->in.len)
        t->in.len = t->inoff = 0;
    return buf_reserve(&t->in, n);
}

/* The client certificate's common name (or its whole subject), printable
 * characters only: it is shown in `stats conns`. */
static void note_peer(struct tls_conn *t)
{
    X509 *x = SSL_get0_peer_certificate(t->ssl);
    if (!x)
        return;
    X509_NAME *name = X509_get_subject_name(x);
    if (X509_NAME_get_text_by_NID(name, NID_commonName, t->peer, sizeof t->peer) < 0)
        X509_NAME_oneline(name, t->peer, sizeof t->peer);
    for (char *p = t->peer; *p; p++)
        if (*p <= ' ' || *p > '~')
            *p = '?';
}

/* Per-thread count of handshake steps in this loop iteration. */
static __thread uint64_t hs_iter;
static __thread unsigned hs_count;

int tls_conn_open(struct tls_conn *t, struct buf *plain, uint64_t iter, struct wstats *st)
{
    int rc = TLS_OK;
    /* OpenSSL's error queue is cleared only after a failure: clearing it
     * costs a thread-local look-up per call, on every request. */
    if (!t->established) {
        if (hs_iter != iter) {
            hs_iter = iter;
            hs_count = 0;
        }
        if (hs_count >= HANDSHAKES_PER_ITER)
            return TLS_LATER;
        /* 0x16: a handshake record. Anything else (a memcached command in
         * clear text, say) gets a clear-text error line from the caller. */
        if (SSL_in_before(t->ssl) && t->in.len > t->inoff && t->in.data[t->inoff] != 0x16)
            t->not_tls = true;
        hs_count++;
        int r = SSL_do_handshake(t->ssl);
        if (r != 1) {
            int e = SSL_get_error(t->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                rc = TLS_OK;
                goto done;
            }
            STAT_INC(st, tls_handshake_errors);
            t->failed = true;
            ERR_clear_error();
            return TLS_FAILED;
        }
        t->established = true;
        STAT_INC(st, tls_handshakes);
        if (SSL_session_reused(t->ssl))
            STAT_INC(st, tls_resumed);
        note_peer(t);
    }
    for (;;) {
        /* Plain text is never longer than the ciphertext it came in (plus
         * what OpenSSL holds decrypted): reserve that, not a whole record,
         * so a small request does not leave 16 KiB behind. */
        size_t room = t->in.len - t->inoff + (size_t)SSL_pending(t->ssl);
        if (!buf_reserve(plain, room < 256 ? 256 : room > RECORD_MAX ? RECORD_MAX : room)) {
            rc = TLS_FAILED;
            break;
        }
        size_t got = 0;
        if (SSL_read_ex(t->ssl, plain->data + plain->len, plain->cap - plain->len, &got) == 1) {
            plain->len += got;
            /* All input taken and nothing decrypted left over: the next
             * call would only say "want read" (at a cost per request). */
            if (t->inoff == t->in.len && SSL_pending(t->ssl) == 0)
                break;
            continue;
        }
        int e = SSL_get_error(t->ssl, 0);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            break;
        if (e == SSL_ERROR_ZERO_RETURN) {
            rc = TLS_CLOSED;
            break;
        }
        STAT_INC(st, tls_record_errors);
        t->failed = true;
        ERR_clear_error();
        rc = TLS_FAILED;
        break;
    }
done:
    if (t->inoff == t->in.len) {
        t->in.len = t->inoff = 0;
        if (t->in.cap > 4096)
            buf_free(&t->in);   /* idle: an epoll read reserved 16 KiB */
    }
    return rc;
}

bool tls_conn_seal(struct tls_conn *t, const struct buf *plain, size_t *off, size_t limit)
{
    if (t->failed || !t->established)
        return !t->failed;
    /* Own bytes and referenced values are gathered into full records: a
     * record per small piece would cost a header, a tag and a cipher call
     * each. */
    char rec[RECORD_MAX];
    size_t size = buf_size(plain);
    while (*off < size && tls_conn_unsent(t) < limit) {
        struct iovec iov[16];
        size_t niov = buf_iov(plain, *off, RECORD_MAX, iov, 16);
        const char *p;
        size_t n;
        if (niov == 1 || iov[0].iov_len >= RECORD_MAX) {
            p = iov[0].iov_base;
            n = iov[0].iov_len;
        } else {
            n = 0;
            for (size_t i = 0; i < niov; i++) {
                memcpy(rec + n, iov[i].iov_base, iov[i].iov_len);
                n += iov[i].iov_len;
            }
            p = rec;
        }
        size_t done = 0;
        if (n == 0)
            break;
        if (SSL_write_ex(t->ssl, p, n, &done) != 1) {
            ERR_clear_error();
            t->failed = true;
            return false;
        }
        *off += done;
    }
    return true;
}

void tls_conn_shutdown(struct tls_conn *t)
{
    if (t->shut || t->failed || !t->established)
        return;
    t->shut = true;
    SSL_shutdown(t->ssl);
    ERR_clear_error();
}

void tls_conn_describe(const struct tls_conn *t, const char **version, const char **cipher,
                       const char **records)
{
    *version = t->established ? SSL_get_version(t->ssl) : "handshake";
    *cipher = t->established ? SSL_get_cipher_name(t->ssl) : "none";
    *records = "user";
}

#endif
