/* tls.h - percore-bench --tls: TLS client sessions over the generator's
 * sockets (OpenSSL). One client context for the run, shared by the worker
 * threads (read-only once built); each session belongs to one connection
 * of one worker. Certificates are not verified: this measures, it does not
 * authenticate. */
#ifndef PB_TLS_H
#define PB_TLS_H
#include <stddef.h>
#include <sys/types.h>

/* 0, or -1 with a message on stderr (built without OpenSSL). */
int pb_tls_init(void);
/* Handshake on a connected socket (blocking while it runs, non-blocking
 * again after). Returns the session, or NULL with a message on stderr. */
void *pb_tls_connect(int fd);
/* As recv()/send(): -1 with errno EAGAIN when the session needs the socket
 * to become readable or writable first; 0 at close_notify. */
ssize_t pb_tls_recv(void *s, void *p, size_t n);
ssize_t pb_tls_send(void *s, const void *p, size_t n);
/* Plain text decrypted and not yet returned (epoll will not report it). */
int pb_tls_pending(void *s);
void pb_tls_free(void *s);
#endif
