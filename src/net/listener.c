/*
 * listener.c — creation of the per-worker SO_REUSEPORT sockets (see
 * listener.h). Main thread only, before workers start.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "core/log.h"
#include "net/listener.h"

static int open_one(const char *addr, int port, int backlog, bool udp, bool reuseport, int cpu)
{
    struct addrinfo hints = {0}, *res = NULL;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = udp ? SOCK_DGRAM : SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int rc = getaddrinfo(addr, portstr, &hints, &res);
    if (rc != 0) {
        log_err("cannot resolve listen address '%s': %s", addr, gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family, res->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        log_err("socket: %s", strerror(errno));
        freeaddrinfo(res);
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuseport)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (res->ai_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
#ifdef SO_INCOMING_CPU
    /* Connections whose packets arrive on this worker's CPU prefer it. */
    if (cpu >= 0)
        setsockopt(fd, SOL_SOCKET, SO_INCOMING_CPU, &cpu, sizeof cpu);
#endif
    if (bind(fd, res->ai_addr, res->ai_addrlen) < 0) {
        int e = errno;
        close(fd);
        freeaddrinfo(res);
        errno = e;
        return -1;
    }
    freeaddrinfo(res);
    if (!udp && listen(fd, backlog) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

int listener_check_free(const char *addr, int port, bool udp)
{
    int fd = open_one(addr, port, 1, udp, false, -1);
    if (fd < 0) {
        log_err("cannot bind %s %s:%d: %s", udp ? "UDP" : "TCP", addr, port, strerror(errno));
        return -1;
    }
    close(fd);
    return 0;
}

int listener_open(const char *addr, int port, int backlog, bool udp, int cpu)
{
    int fd = open_one(addr, port, backlog, udp, true, cpu);
    if (fd < 0)
        log_err("cannot listen on %s %s:%d: %s", udp ? "UDP" : "TCP", addr, port, strerror(errno));
    return fd;
}
