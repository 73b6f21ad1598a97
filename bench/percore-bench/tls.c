/* tls.c - percore-bench --tls (see tls.h). */
#include "tls.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>

#ifndef HAVE_OPENSSL
int pb_tls_init(void)
{
    fprintf(stderr, "percore-bench: --tls: built without OpenSSL (install libssl-dev)\n");
    return -1;
}
void *pb_tls_connect(int fd) { return NULL; }
ssize_t pb_tls_recv(void *s, void *p, size_t n) { errno = EINVAL; return -1; }
ssize_t pb_tls_send(void *s, const void *p, size_t n) { errno = EINVAL; return -1; }
int pb_tls_pending(void *s) { return 0; }
void pb_tls_free(void *s) {}
#else
#include <openssl/err.h>
#include <openssl/ssl.h>

static SSL_CTX *ctx;

int pb_tls_init(void)
{
    if (ctx)
        return 0;
    ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        fprintf(stderr, "percore-bench: --tls: cannot create a TLS context\n");
        return -1;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    /* send() semantics: a write may be partial and retried from elsewhere. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    return 0;
}

void *pb_tls_connect(int fd)
{
    SSL *s = SSL_new(ctx);
    if (!s)
        return NULL;
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    SSL_set_fd(s, fd);
    int r = SSL_connect(s);
    fcntl(fd, F_SETFL, fl);
    if (r != 1) {
        char why[256];
        ERR_error_string_n(ERR_get_error(), why, sizeof why);
        fprintf(stderr, "percore-bench: --tls: handshake failed: %s\n", why);
        ERR_clear_error();
        SSL_free(s);
        return NULL;
    }
    return s;
}

static ssize_t result(SSL *s, int r, size_t done)
{
    if (r == 1)
        return (ssize_t)done;
    int e = SSL_get_error(s, r);
    ERR_clear_error();
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        errno = EAGAIN;
        return -1;
    }
    if (e == SSL_ERROR_ZERO_RETURN)
        return 0;
    errno = ECONNRESET;
    return -1;
}

ssize_t pb_tls_recv(void *s, void *p, size_t n)
{
    size_t got = 0;
    int r = SSL_read_ex(s, p, n, &got);
    return result(s, r, got);
}

ssize_t pb_tls_send(void *s, const void *p, size_t n)
{
    size_t done = 0;
    int r = SSL_write_ex(s, p, n, &done);
    return result(s, r, done);
}

int pb_tls_pending(void *s)
{
    return SSL_pending(s);
}

void pb_tls_free(void *s)
{
    SSL_free(s);
}
#endif
