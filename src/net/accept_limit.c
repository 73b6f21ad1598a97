/*
 * accept_limit.c — descriptor exhaustion at accept time (see
 * accept_limit.h). Each worker's state lives in `st[l->id]` and is touched
 * only by that worker; the main thread opens and closes the spares.
 *
 * Why a spare: with no descriptor left, accept() cannot take the waiting
 * connection off the queue, so the client would hang until it gives up, and
 * a level-triggered listener would wake the loop at once, for ever (the
 * 1.4 GB log of issue 12). Closing the spare frees exactly one slot: accept,
 * answer, close, and repeat for the next one; then re-open the spare.
 * Another thread may take the freed slot first; then this round refuses
 * nobody and the next one (after the back-off) tries again.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "util/log.h"
#include "net/loop.h"
#include "net/accept_limit.h"
#include "net/reactor.h"

#define BACKOFF_MIN_MS   10
#define BACKOFF_MAX_MS   100
#define REFUSE_PER_ROUND 64     /* bounded work per failure, like accept's batch */
#define LOG_EVERY_MS     1000

struct al_state {
    bool          ready;        /* set up (teardown may see workers that were not) */
    int           spare;        /* a /dev/null descriptor held in reserve, or -1 */
    bool          paused;
    unsigned      backoff_ms;
    uint64_t      resume_ms;
    uint64_t      last_fail_ms;
    uint64_t      last_log_ms;
    uint64_t      fails;        /* since the last log line */
    uint64_t      refused;      /* since the last log line */
    int           last_err;
    int           npaused;
    struct evsrc *paused_ls[MAX_LISTEN + 1];
};

static struct al_state st[MAX_WORKERS];

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int spare_open(void)
{
    return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

int accept_limit_setup(struct loop *l)
{
    struct al_state *s = &st[l->id];
    *s = (struct al_state){ .ready = true, .backoff_ms = BACKOFF_MIN_MS };
    s->spare = spare_open();
    return s->spare < 0 ? -1 : 0;
}

void accept_limit_teardown(struct loop *l)
{
    struct al_state *s = &st[l->id];
    if (s->ready && s->spare >= 0)
        close(s->spare);
    s->ready = false;
    s->spare = -1;
}

/* Answer one client and close it. The request it may already have sent is
 * read first: closing a socket with unread input sends a reset, and the
 * client could lose the error line to it. */
static void refuse(int fd)
{
    static const char msg[] = "ERROR Too many open connections\r\n";
    ssize_t n = send(fd, msg, sizeof msg - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)n;
    shutdown(fd, SHUT_WR);
    char sink[512];
    for (int i = 0; i < 4 && recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0; i++)
        ;
    close(fd);
}

static void refuse_waiting(struct al_state *s, struct evsrc *ls)
{
    if (s->spare < 0)
        s->spare = spare_open();    /* lost to another thread last time */
    if (s->spare < 0)
        return;
    close(s->spare);
    s->spare = -1;
    for (int i = 0; i < REFUSE_PER_ROUND; i++) {
        int fd = accept4(ls->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            break;
        refuse(fd);
        s->refused++;
    }
    s->spare = spare_open();
}

bool accept_limit_failed(struct loop *l, struct evsrc *ls, int err)
{
    if (err != EMFILE && err != ENFILE)
        return false;
    struct al_state *s = &st[l->id];
    uint64_t now = now_ms();
    /* A quiet second since the last failure: start the back-off afresh. */
    if (now - s->last_fail_ms > LOG_EVERY_MS)
        s->backoff_ms = BACKOFF_MIN_MS;
    s->last_fail_ms = now;
    s->fails++;
    s->last_err = err;
    refuse_waiting(s, ls);

    bool known = false;
    for (int i = 0; i < s->npaused; i++)
        known |= s->paused_ls[i] == ls;
    if (!known && s->npaused < MAX_LISTEN + 1) {
        s->paused_ls[s->npaused++] = ls;
        reactor_mod(&l->reactor, ls->fd, 0, ls);
    }
    if (!s->paused) {
        s->paused = true;
        l->accept_paused = true;
        s->resume_ms = now + s->backoff_ms;
        s->backoff_ms = s->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : s->backoff_ms * 2;
    }
    if (now - s->last_log_ms >= LOG_EVERY_MS) {
        log_warn("worker %u: accept: %s (%llu times since the last report); %llu connections "
                 "answered 'ERROR Too many open connections'; accepting again in %llu ms",
                 l->id, strerror(s->last_err), (unsigned long long)s->fails,
                 (unsigned long long)s->refused, (unsigned long long)(s->resume_ms - now));
        s->last_log_ms = now;
        s->fails = 0;
        s->refused = 0;
    }
    return true;
}

int accept_limit_tick(struct loop *l, int timeout_ms)
{
    struct al_state *s = &st[l->id];
    if (!s->paused)
        return timeout_ms;
    uint64_t now = now_ms();
    if (now < s->resume_ms) {
        uint64_t left = s->resume_ms - now;
        return timeout_ms >= 0 && (uint64_t)timeout_ms < left ? timeout_ms : (int)left;
    }
    /* Listening again; a still-full table brings the next failure here,
     * with a longer back-off. */
    for (int i = 0; i < s->npaused; i++)
        reactor_mod(&l->reactor, s->paused_ls[i]->fd, EV_READ, s->paused_ls[i]);
    s->npaused = 0;
    s->paused = false;
    l->accept_paused = false;
    return timeout_ms;
}
