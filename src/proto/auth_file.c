/*
 * auth_file.c — the -Y credential table: `user:password` lines, as
 * memcached reads them (the user ends at the first ':', the password at the
 * line's end; a CR before the LF is not part of it). Unlike memcached,
 * every entry is kept (it keeps the first 8 silently) and blank lines are
 * skipped. Loaded by the main thread before workers start, and again on
 * SIGHUP (memcached reloads it then too): a reload builds a new table and
 * publishes it with one release store; workers read the current one with an
 * acquire load. A replaced table is kept until exit, since a worker may
 * still be comparing against it (a reload is an operator's act, and costs
 * at most the file's size).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "proto/auth.h"

/* Far more than a credential file needs; keeps a wrong path (a log, a
 * device) from being read whole. */
#define AUTHFILE_MAX (1u << 20)

struct cred {
    const char *user, *pass;
    size_t      ulen, plen;
};

struct table {
    char         *data;
    struct cred  *creds;
    unsigned      n;
    struct table *retired;   /* the table this one replaced */
};

static _Atomic(struct table *) current;

unsigned authfile_entries(void)
{
    struct table *t = atomic_load_explicit(&current, memory_order_acquire);
    return t ? t->n : 0;
}

void authfile_free(void)
{
    struct table *t = atomic_exchange(&current, NULL);
    while (t) {
        struct table *next = t->retired;
        free(t->creds);
        free(t->data);
        free(t);
        t = next;
    }
}

int authfile_load(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "Could not open authfile [%s] for reading, error %s", path,
                 strerror(errno));
        return -1;
    }
    struct stat sb;
    if (fstat(fileno(f), &sb) < 0 || sb.st_size > AUTHFILE_MAX) {
        snprintf(err, errlen, "Could not stat authfile [%s], error %s", path,
                 errno ? strerror(errno) : "larger than 1 MiB");
        fclose(f);
        return -1;
    }
    size_t size = (size_t)sb.st_size;
    char *data = malloc(size + 1);
    size_t got = data ? fread(data, 1, size, f) : 0;
    fclose(f);
    if (!data || got != size) {
        snprintf(err, errlen, "Could not read authfile [%s]", path);
        free(data);
        return -1;
    }
    data[size] = '\0';
    size_t lines = 1;
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    struct cred *tab = calloc(lines, sizeof *tab);
    struct table *t = malloc(sizeof *t);
    if (!tab || !t) {
        free(t);
        free(tab);
        snprintf(err, errlen, "Could not read authfile [%s]: out of memory", path);
        free(data);
        return -1;
    }
    unsigned n = 0;
    for (char *p = data; p < data + size;) {
        char *nl = memchr(p, '\n', (size_t)(data + size - p));
        char *end = nl ? nl : data + size;
        char *next = nl ? nl + 1 : end;
        if (end > p && end[-1] == '\r')
            end--;
        if (end > p) {
            char *colon = memchr(p, ':', (size_t)(end - p));
            /* memcached: a NUL in the line also makes it malformed */
            if (!colon || memchr(p, '\0', (size_t)(end - p))) {
                snprintf(err, errlen,
                         "Authfile [%s] has a malformed entry. Should be 'user:password'", path);
                free(t);
                free(tab);
                free(data);
                return -1;
            }
            char *pe = memchr(colon + 1, '\r', (size_t)(end - colon - 1));
            tab[n++] = (struct cred){ .user = p, .ulen = (size_t)(colon - p), .pass = colon + 1,
                                      .plen = (size_t)((pe ? pe : end) - colon - 1) };
        }
        p = next;
    }
    *t = (struct table){ .data = data, .creds = tab, .n = n };
    t->retired = atomic_exchange_explicit(&current, t, memory_order_acq_rel);
    return 0;
}

/* Equal bytes, in time that depends only on the stored length. */
static unsigned char ct_diff(const char *a, size_t alen, const char *b, size_t blen)
{
    unsigned char d = alen != blen;
    for (size_t i = 0; i < blen; i++)
        d |= (unsigned char)(b[i] ^ (i < alen ? a[i] : 0));
    return d;
}

bool authfile_check(const char *user, size_t ulen, const char *pass, size_t plen)
{
    bool ok = false;
    const struct table *t = atomic_load_explicit(&current, memory_order_acquire);
    /* Every entry is compared (no early exit), so the time taken does not
     * say which user exists. */
    for (unsigned i = 0; t && i < t->n; i++) {
        const struct cred *c = &t->creds[i];
        unsigned char d = ct_diff(user, ulen, c->user, c->ulen) |
                          ct_diff(pass, plen, c->pass, c->plen);
        ok |= d == 0;
    }
    return ok;
}
