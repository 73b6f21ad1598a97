/*
 * uring.h — the io_uring backend of the reactor (reactor_uring.c), as seen
 * by the dispatcher in reactor.c. One ring per worker, created by the main
 * thread at start-up (disabled) and enabled, submitted to and reaped only by
 * that worker's thread afterwards (IORING_SETUP_SINGLE_ISSUER).
 */
#ifndef PERCORE_URING_H
#define PERCORE_URING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "net/reactor.h"

/* 0, or a negative errno; *why then says in a few words what is missing.
 * -EPERM, -ENOSYS, -EOPNOTSUPP mean "not on this kernel/host": fall back. */
int  uring_reactor_init(struct reactor *r, const char **why);
void uring_reactor_fini(struct reactor *r);
int  uring_reactor_add(struct reactor *r, int fd, uint32_t events, void *ptr);
int  uring_reactor_mod(struct reactor *r, int fd, uint32_t events, void *ptr);
int  uring_reactor_del(struct reactor *r, int fd);
int  uring_reactor_wait(struct reactor *r, struct revent *ev, int max, int timeout_ms);
int  uring_reactor_send(struct reactor *r, int fd, struct buf *out, size_t *off);
void uring_reactor_quiesce(struct reactor *r);
/* The ring set-up flags in use, for the start-up log. */
const char *uring_mode_name(const struct reactor *r);

#endif
