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
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include "util/log.h"
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

int listener_port(int fd, int *family)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return -1;
    *family = ss.ss_family;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

/* Only a socket that refuses connections is stale: a live server behind it
 * keeps it, and a path that is not a socket is never deleted. */
static int unix_clear_stale(const struct sockaddr_un *sa)
{
    struct stat st;
    if (lstat(sa->sun_path, &st) < 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISSOCK(st.st_mode)) {
        errno = EEXIST;
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int rc = connect(fd, (const struct sockaddr *)sa, sizeof *sa);
    int e = errno;
    close(fd);
    if (rc == 0) {
        errno = EADDRINUSE;
        return -1;
    }
    if (e != ECONNREFUSED) {
        errno = e;
        return -1;
    }
    log_info("removing stale UNIX socket %s", sa->sun_path);
    return unlink(sa->sun_path);
}

int listener_open_unix(const char *path, int mask, int backlog)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    if (unix_clear_stale(&sa) < 0) {
        log_err("cannot listen on UNIX socket %s: %s", path, strerror(errno));
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        log_err("socket: %s", strerror(errno));
        return -1;
    }
    /* The umask makes bind() create the file with the -a permissions, so
     * there is no moment at which it is more open than asked. Start-up is
     * single-threaded, so changing the process umask here is safe. */
    mode_t old = umask((mode_t)(~mask & 0777));
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
    int e = errno;
    umask(old);
    if (rc < 0 || listen(fd, backlog) < 0) {
        if (rc == 0) {
            e = errno;
            unlink(path);
        }
        log_err("cannot listen on UNIX socket %s: %s", path, strerror(e));
        close(fd);
        return -1;
    }
    return fd;
}
