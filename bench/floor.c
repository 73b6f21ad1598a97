/* floor.c - "the floor": a trivial memcached-text-protocol server that stores
 * nothing. Every get/gets answers END, every storage command (its data block read
 * and discarded) STORED, version "VERSION floor", meta mg/ms/mn EN/HD/MN, anything
 * else ERROR. It is the lower bound of server cost against which percore-bench's
 * own ceiling and every real server are compared. -t N runs N threads, each with
 * its own SO_REUSEPORT listener and epoll loop; each thread owns its connections.
 * tests/tools/delay_server.c includes this file with FLOOR_DELAY defined to add
 * deliberate stalls. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef FLOOR_NAME
#define FLOOR_NAME "percore-floor"
#endif

struct fconn {
    int fd;
    char *in;
    size_t in_len, in_cap;
    char *out;
    size_t out_len, out_off, out_cap;
    size_t skip;      /* data-block bytes still to discard */
    int writing;
};

static const char *opt_addr = "127.0.0.1";
static int opt_port = 11211, opt_threads = 1;
#ifdef FLOOR_DELAY
static long opt_delay_us = 1000, opt_every = 100;
static int opt_per_conn;
static unsigned long g_count; /* per process: threads>1 with delays is not supported */
#endif

static void out_add(struct fconn *c, const char *s, size_t n)
{
    if (c->out_len + n > c->out_cap) {
        size_t nc = c->out_cap ? c->out_cap : 16384;
        while (nc < c->out_len + n)
            nc *= 2;
        c->out = realloc(c->out, nc);
        if (!c->out)
            abort();
        c->out_cap = nc;
    }
    memcpy(c->out + c->out_len, s, n);
    c->out_len += n;
}
#define OUT(c, lit) out_add((c), lit, sizeof(lit) - 1)

static int word_is(const char *l, size_t n, const char *w)
{
    size_t wn = strlen(w);
    return n >= wn && !memcmp(l, w, wn) && (n == wn || l[wn] == ' ');
}

/* n-th token (0-based) of the line as a number, -1 if absent. */
static long tok_num(const char *l, size_t n, int idx, int *is_noreply_after)
{
    size_t i = 0;
    long val = -1;
    int t = 0;
    while (i < n) {
        while (i < n && l[i] == ' ')
            i++;
        size_t s = i;
        while (i < n && l[i] != ' ')
            i++;
        if (s == i)
            break;
        if (t == idx) {
            char tmp[24];
            size_t len = i - s < 23 ? i - s : 23;
            memcpy(tmp, l + s, len);
            tmp[len] = 0;
            char *end;
            val = strtol(tmp, &end, 10);
            if (*end)
                val = -1;
        }
        if (is_noreply_after && t > idx && i - s == 7 && !memcmp(l + s, "noreply", 7))
            *is_noreply_after = 1;
        t++;
    }
    return val;
}

#ifdef FLOOR_DELAY
static void maybe_delay(void)
{
    if (opt_every > 0 && ++g_count % (unsigned long)opt_every == 0) {
        struct timespec ts = { opt_delay_us / 1000000, (opt_delay_us % 1000000) * 1000 };
        while (nanosleep(&ts, &ts) && errno == EINTR)
            ;
    }
}
#endif

/* Handle one command line (without \r\n). Returns -1 to close. */
static int command(struct fconn *c, const char *l, size_t n)
{
#ifdef FLOOR_DELAY
    maybe_delay();
#endif
    if (word_is(l, n, "get") || word_is(l, n, "gets")) {
        OUT(c, "END\r\n");
    } else if (word_is(l, n, "set") || word_is(l, n, "add") || word_is(l, n, "replace") ||
               word_is(l, n, "append") || word_is(l, n, "prepend") || word_is(l, n, "cas")) {
        int noreply = 0;
        long bytes = tok_num(l, n, 4, &noreply);
        if (bytes < 0) {
            OUT(c, "CLIENT_ERROR bad command line format\r\n");
            return 0;
        }
        c->skip = (size_t)bytes + 2;
        if (!noreply)
            OUT(c, "STORED\r\n");
    } else if (word_is(l, n, "mg")) {
        OUT(c, "EN\r\n");
    } else if (word_is(l, n, "ms")) {
        long bytes = tok_num(l, n, 2, NULL);
        if (bytes < 0) {
            OUT(c, "CLIENT_ERROR bad command line format\r\n");
            return 0;
        }
        c->skip = (size_t)bytes + 2;
        OUT(c, "HD\r\n");
    } else if (word_is(l, n, "mn")) {
        OUT(c, "MN\r\n");
    } else if (word_is(l, n, "version")) {
        OUT(c, "VERSION floor\r\n");
    } else if (word_is(l, n, "quit")) {
        return -1;
    } else {
        OUT(c, "ERROR\r\n");
    }
    return 0;
}

static int process(struct fconn *c)
{
    size_t i = 0;
    while (i < c->in_len) {
        if (c->skip) {
            size_t take = c->in_len - i < c->skip ? c->in_len - i : c->skip;
            i += take;
            c->skip -= take;
            continue;
        }
        char *nl = memchr(c->in + i, '\n', c->in_len - i);
        if (!nl) {
            if (c->in_len - i > 65536)
                return -1; /* line too long */
            break;
        }
        size_t ll = (size_t)(nl - (c->in + i));
        size_t adv = ll + 1;
        if (ll && c->in[i + ll - 1] == '\r')
            ll--;
        if (command(c, c->in + i, ll))
            return -1;
        i += adv;
    }
    memmove(c->in, c->in + i, c->in_len - i);
    c->in_len -= i;
    return 0;
}

static void conn_close(int ep, struct fconn *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->in);
    free(c->out);
    free(c);
}

static int flush_out(int ep, struct fconn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (w > 0) {
            c->out_off += (size_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else if (w < 0 && errno == EAGAIN) {
            if (!c->writing) {
                struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = c };
                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                c->writing = 1;
            }
            return 0;
        } else {
            return -1;
        }
    }
    c->out_off = c->out_len = 0;
    if (c->writing) {
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        c->writing = 0;
    }
    return 0;
}

static int make_listener(void)
{
    char port[16];
    snprintf(port, sizeof port, "%d", opt_port);
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *res;
    if (getaddrinfo(opt_addr, port, &hints, &res)) {
        fprintf(stderr, "%s: cannot resolve %s\n", FLOOR_NAME, opt_addr);
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (bind(fd, res->ai_addr, res->ai_addrlen) || listen(fd, 1024)) {
        fprintf(stderr, "%s: bind/listen %s:%d: %s\n", FLOOR_NAME, opt_addr, opt_port, strerror(errno));
        freeaddrinfo(res);
        close(fd);
        return -1;
    }
    freeaddrinfo(res);
    return fd;
}

static void *loop(void *arg)
{
    int lfd = (int)(long)arg;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        for (int i = 0; i < n; i++) {
            struct fconn *c = evs[i].data.ptr;
            if (!c) {
                int fd;
                while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    int one = 1;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    c = calloc(1, sizeof *c);
                    c->fd = fd;
                    struct epoll_event ce = { .events = EPOLLIN, .data.ptr = c };
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ce);
                }
                continue;
            }
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                if (c->in_cap - c->in_len < 4096) {
                    c->in_cap = c->in_cap ? c->in_cap * 2 : 65536;
                    c->in = realloc(c->in, c->in_cap);
                    if (!c->in)
                        abort();
                }
                ssize_t r = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
                if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
                    conn_close(ep, c);
                    continue;
                }
                if (r > 0) {
                    c->in_len += (size_t)r;
                    if (process(c)) {
                        flush_out(ep, c);
                        conn_close(ep, c);
                        continue;
                    }
                }
            }
            if (flush_out(ep, c))
                conn_close(ep, c);
        }
    }
    return NULL;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: %s [-p PORT] [-l ADDR] [-t THREADS]"
#ifdef FLOOR_DELAY
               " [--delay-us US] [--every N]"
#endif
               "\n", FLOOR_NAME);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "port", required_argument, 0, 'p' }, { "listen", required_argument, 0, 'l' },
        { "threads", required_argument, 0, 't' }, { "help", no_argument, 0, 'h' },
#ifdef FLOOR_DELAY
        { "delay-us", required_argument, 0, 'D' }, { "every", required_argument, 0, 'E' },
#endif
        { 0, 0, 0, 0 }
    };
    int o;
    while ((o = getopt_long(argc, argv, "p:l:t:hU:m:c:", opts, NULL)) != -1) {
        switch (o) {
        case 'p': opt_port = atoi(optarg); break;
        case 'l': opt_addr = optarg; break;
        case 't': opt_threads = atoi(optarg); break;
        case 'U': case 'm': case 'c': break; /* accepted for memcached compatibility, ignored */
#ifdef FLOOR_DELAY
        case 'D': opt_delay_us = atol(optarg); break;
        case 'E': opt_every = atol(optarg); break;
#endif
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (opt_threads < 1)
        opt_threads = 1;
#ifdef FLOOR_DELAY
    (void)opt_per_conn;
    if (opt_threads > 1) {
        fprintf(stderr, "%s: one thread only\n", FLOOR_NAME);
        opt_threads = 1;
    }
#endif
    signal(SIGPIPE, SIG_IGN);
    int fds[256];
    if (opt_threads > 256)
        opt_threads = 256;
    for (int t = 0; t < opt_threads; t++)
        if ((fds[t] = make_listener()) < 0)
            return 1;
    pthread_t th;
    for (int t = 1; t < opt_threads; t++)
        pthread_create(&th, NULL, loop, (void *)(long)fds[t]);
    loop((void *)(long)fds[0]);
    return 0;
}
