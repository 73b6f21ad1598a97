/*
 * sys.h — the socket calls of the workers' hot path, made as plain system
 * calls. glibc's recv/send/sendmsg/epoll_wait are thread-cancellation
 * points: in a multi-threaded process each call switches asynchronous
 * cancellation on and off around the system call (two atomic
 * read-modify-writes, about 90 instructions per request). Workers are never
 * cancelled, so they skip that bookkeeping. Same results and errno as the
 * libc functions. No state.
 */
#ifndef PERCORE_SYS_H
#define PERCORE_SYS_H

#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static inline ssize_t sys_recv(int fd, void *buf, size_t len, int flags)
{
    return syscall(SYS_recvfrom, fd, buf, len, flags, NULL, NULL);
}

static inline ssize_t sys_send(int fd, const void *buf, size_t len, int flags)
{
    return syscall(SYS_sendto, fd, buf, len, flags, NULL, 0);
}

static inline ssize_t sys_sendmsg(int fd, const struct msghdr *mh, int flags)
{
    return syscall(SYS_sendmsg, fd, mh, flags);
}

static inline int sys_epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout_ms)
{
    /* epoll_pwait with no mask is epoll_wait on every architecture. */
    return (int)syscall(SYS_epoll_pwait, epfd, ev, max, timeout_ms, NULL, _NSIG / 8);
}

#endif
