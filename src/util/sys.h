/*
 * sys.h — the socket calls of the workers' hot path, made as plain system
 * calls. glibc's recv/send/sendmsg/epoll_wait are thread-cancellation
 * points: in a multi-threaded process each call switches asynchronous
 * cancellation on and off around the system call (two atomic
 * read-modify-writes, about 90 instructions per request). Workers are never
 * cancelled, so they skip that bookkeeping. On x86-64 the system call
 * instruction is issued inline: glibc's generic syscall() shuffles all six
 * argument registers and sets errno through a second call, about 20
 * instructions a call, three calls a request. Same results and errno as the
 * libc functions. No state.
 */
#ifndef PERCORE_SYS_H
#define PERCORE_SYS_H

#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <errno.h>
#include <unistd.h>

static inline long sys_call6(long n, long a1, long a2, long a3, long a4, long a5, long a6)
{
#if defined(__x86_64__) && defined(__linux__)
    long ret;
    register long r10 __asm__("r10") = a4;
    register long r8 __asm__("r8") = a5;
    register long r9 __asm__("r9") = a6;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(n), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    if ((unsigned long)ret > -4096ul) {
        errno = (int)-ret;
        return -1;
    }
    return ret;
#else
    return syscall(n, a1, a2, a3, a4, a5, a6);
#endif
}

static inline ssize_t sys_recv(int fd, void *buf, size_t len, int flags)
{
    return sys_call6(SYS_recvfrom, fd, (long)buf, (long)len, flags, 0, 0);
}

static inline ssize_t sys_send(int fd, const void *buf, size_t len, int flags)
{
    return sys_call6(SYS_sendto, fd, (long)buf, (long)len, flags, 0, 0);
}

static inline ssize_t sys_sendmsg(int fd, const struct msghdr *mh, int flags)
{
    return sys_call6(SYS_sendmsg, fd, (long)mh, flags, 0, 0, 0);
}

/* A doorbell's eventfd: read and write without libc's cancellation-point
 * wrapper (~40 instructions a call; a forwarded request rings two). */
static inline ssize_t sys_read(int fd, void *buf, size_t len)
{
    return sys_call6(SYS_read, fd, (long)buf, (long)len, 0, 0, 0);
}

static inline ssize_t sys_write(int fd, const void *buf, size_t len)
{
    return sys_call6(SYS_write, fd, (long)buf, (long)len, 0, 0, 0);
}

static inline int sys_epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout_ms)
{
    /* epoll_pwait with no mask is epoll_wait on every architecture. */
    return (int)sys_call6(SYS_epoll_pwait, epfd, (long)ev, max, timeout_ms, 0, _NSIG / 8);
}

#endif
