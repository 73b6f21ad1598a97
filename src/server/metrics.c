/*
 * metrics.c — the /metrics HTTP thread (see metrics.h). One poll() loop
 * over the listener, a stop eventfd and at most METRICS_CLIENTS clients.
 * Each client gets METRICS_DEADLINE_MS from accept to send its request
 * head (at most METRICS_HEAD_MAX bytes) and read the whole reply; past it,
 * or on a head that is too long or not HTTP, it gets a 400 (when it can
 * still be written) and is closed. Nothing here blocks: sockets are
 * non-blocking and the poll wakes at least every 100 ms.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "util/clock.h"
#include "util/log.h"
#include "util/options.h"
#include "server/metrics.h"
#include "server/metrics_text.h"

#define METRICS_CLIENTS     16
#define METRICS_HEAD_MAX    8192
#define METRICS_DEADLINE_MS 10000

struct mclient {
    int      fd;                 /* -1: free */
    uint64_t deadline_us;
    size_t   inlen;
    char     in[METRICS_HEAD_MAX];
    char    *out;                /* reply being written, or NULL while reading */
    size_t   outlen, outoff;
};

static int listen_fd = -1;
static int stop_fd = -1;
static pthread_t thread;
static bool running;
static struct mclient *clients;
static uint64_t accept_paused_until;   /* out of descriptors: stop polling the listener */

int metrics_setup(void)
{
    if (!settings.metrics_addr)
        return 0;
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
    struct addrinfo *ai = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", settings.metrics_port);
    int rc = getaddrinfo(settings.metrics_addr, port, &hints, &ai);
    if (rc != 0) {
        log_err("--metrics %s:%s: %s", settings.metrics_addr, port, gai_strerror(rc));
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 64) < 0) {
        log_err("--metrics: cannot listen on %s:%s: %s", settings.metrics_addr, port, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    listen_fd = fd;
    stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    clients = calloc(METRICS_CLIENTS, sizeof *clients);
    if (stop_fd < 0 || !clients) {
        log_err("--metrics: out of resources");
        return -1;
    }
    for (int i = 0; i < METRICS_CLIENTS; i++)
        clients[i].fd = -1;
    log_info("metrics on http://%s:%d/metrics", settings.metrics_addr, settings.metrics_port);
    return 0;
}

static void client_close(struct mclient *c)
{
    close(c->fd);
    c->fd = -1;
    free(c->out);
    c->out = NULL;
}

static void reply(struct mclient *c, const char *status, const char *type, char *body, size_t blen)
{
    char head[256];
    int h = snprintf(head, sizeof head,
                     "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                     status, type, blen);
    c->out = malloc((size_t)h + blen);
    if (!c->out) {
        free(body);
        client_close(c);
        return;
    }
    memcpy(c->out, head, (size_t)h);
    if (blen)
        memcpy(c->out + h, body, blen);
    free(body);
    c->outlen = (size_t)h + blen;
    c->outoff = 0;
}

static void reply_text(struct mclient *c, const char *status, const char *text)
{
    size_t n = strlen(text);
    char *body = malloc(n);
    if (body)
        memcpy(body, text, n);
    reply(c, status, "text/plain; charset=utf-8", body, body ? n : 0);
}

/* The head is complete (or the request line alone settles it): answer. */
static void handle(struct mclient *c, const char *line, size_t len)
{
    /* "METHOD SP target SP HTTP/1.x" */
    const char *sp1 = memchr(line, ' ', len);
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', len - (size_t)(sp1 + 1 - line)) : NULL;
    if (!sp1 || !sp2 || sp1 == line || sp2 == sp1 + 1 ||
        (size_t)(line + len - (sp2 + 1)) != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0) {
        reply_text(c, "400 Bad Request", "bad request\n");
        return;
    }
    size_t mlen = (size_t)(sp1 - line), tlen = (size_t)(sp2 - sp1 - 1);
    const char *target = sp1 + 1;
    const char *q = memchr(target, '?', tlen);
    size_t plen = q ? (size_t)(q - target) : tlen;
    if (!(mlen == 3 && memcmp(line, "GET", 3) == 0)) {
        reply_text(c, "405 Method Not Allowed", "only GET\n");
        return;
    }
    if (!(plen == 8 && memcmp(target, "/metrics", 8) == 0)) {
        reply_text(c, "404 Not Found", "see /metrics\n");
        return;
    }
    size_t blen = 0;
    char *body = metrics_render(&blen);
    if (!body) {
        reply_text(c, "500 Internal Server Error", "out of memory\n");
        return;
    }
    reply(c, "200 OK", "text/plain; version=0.0.4; charset=utf-8", body, blen);
}

/* Input arrived: answer once the head is whole; 400 for garbage early. */
static void client_read(struct mclient *c)
{
    for (;;) {
        if (c->inlen == sizeof c->in) {
            reply_text(c, "400 Bad Request", "request head too large\n");
            return;
        }
        ssize_t n = recv(c->fd, c->in + c->inlen, sizeof c->in - c->inlen, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            client_close(c);
            return;
        }
        if (n < 0)
            break;
        c->inlen += (size_t)n;
    }
    char *eol = memchr(c->in, '\n', c->inlen);
    if (!eol)
        return;
    size_t llen = (size_t)(eol - c->in);
    if (llen && c->in[llen - 1] == '\r')
        llen--;
    /* The request line alone shows garbage: no need to wait for the rest. */
    for (size_t i = 0; i < llen; i++)
        if ((unsigned char)c->in[i] < 0x20 || (unsigned char)c->in[i] > 0x7e) {
            reply_text(c, "400 Bad Request", "bad request\n");
            return;
        }
    bool whole = memmem(c->in, c->inlen, "\r\n\r\n", 4) || memmem(c->in, c->inlen, "\n\n", 2);
    if (whole)
        handle(c, c->in, llen);
}

static void client_write(struct mclient *c)
{
    while (c->outoff < c->outlen) {
        ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return;
            client_close(c);
            return;
        }
        c->outoff += (size_t)n;
    }
    shutdown(c->fd, SHUT_WR);
    client_close(c);
}

static void accept_all(void)
{
    for (;;) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            /* Out of descriptors, the listener stays readable: a pause
             * instead of a busy loop (the cache's own clients come first). */
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                accept_paused_until = clock_mono_us() + 100000;
            return;
        }
        struct mclient *c = NULL, *oldest = NULL;
        for (int i = 0; i < METRICS_CLIENTS && !c; i++) {
            if (clients[i].fd < 0)
                c = &clients[i];
            else if (!clients[i].out && (!oldest || clients[i].deadline_us < oldest->deadline_us))
                oldest = &clients[i];
        }
        if (!c && oldest) {
            /* Every slot taken: the longest-waiting client that has not sent
             * a whole request yet (a slowloris) gives way, so hanging
             * connections cannot lock scrapers out. */
            client_close(oldest);
            c = oldest;
        }
        if (!c) {   /* all busy writing replies: refuse this one */
            close(fd);
            continue;
        }
        c->fd = fd;
        c->inlen = 0;
        c->out = NULL;
        c->deadline_us = clock_mono_us() + METRICS_DEADLINE_MS * 1000ull;
    }
}

static void *metrics_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "percore-metrics");
    struct pollfd pf[2 + METRICS_CLIENTS];
    struct mclient *who[2 + METRICS_CLIENTS];
    for (;;) {
        int n = 0;
        pf[n++] = (struct pollfd){ .fd = stop_fd, .events = POLLIN };
        uint64_t now = clock_mono_us();
        /* A negative fd is ignored by poll(): the listener while paused. */
        pf[n++] = (struct pollfd){ .fd = now >= accept_paused_until ? listen_fd : -1, .events = POLLIN };
        for (int i = 0; i < METRICS_CLIENTS; i++) {
            struct mclient *c = &clients[i];
            if (c->fd < 0)
                continue;
            if (now >= c->deadline_us) {   /* slowloris, or a reader that stalls */
                client_close(c);
                continue;
            }
            who[n] = c;
            pf[n++] = (struct pollfd){ .fd = c->fd, .events = c->out ? POLLOUT : POLLIN };
        }
        if (poll(pf, (nfds_t)n, 100) < 0 && errno != EINTR)
            break;
        if (pf[0].revents)
            break;
        if (pf[1].revents & POLLIN)
            accept_all();
        for (int k = 2; k < n; k++) {
            struct mclient *c = who[k];
            if (!pf[k].revents || c->fd < 0)
                continue;
            if (!c->out)
                client_read(c);
            if (c->fd >= 0 && c->out)
                client_write(c);
        }
    }
    for (int i = 0; i < METRICS_CLIENTS; i++)
        if (clients[i].fd >= 0)
            client_close(&clients[i]);
    return NULL;
}

int metrics_start(void)
{
    if (listen_fd < 0)
        return 0;
    if (pthread_create(&thread, NULL, metrics_main, NULL) != 0) {
        log_err("cannot start the metrics thread");
        return -1;
    }
    running = true;
    return 0;
}

void metrics_stop(void)
{
    if (running) {
        uint64_t one = 1;
        ssize_t n = write(stop_fd, &one, sizeof one);
        (void)n;
        pthread_join(thread, NULL);
        running = false;
    }
    if (listen_fd >= 0)
        close(listen_fd);
    if (stop_fd >= 0)
        close(stop_fd);
    listen_fd = stop_fd = -1;
    free(clients);
    clients = NULL;
}
