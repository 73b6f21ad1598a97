/*
 * auth_file.c — the -Y credential table: `user:password` lines, as
 * memcached reads them (the user ends at the first ':', the password at the
 * line's end; a CR before the LF is not part of it). Unlike memcached,
 * every entry is kept (it keeps the first 8 silently) and blank lines are
 * skipped. Loaded by the main thread before workers start; read-only after.
 */
#include <errno.h>
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

static char        *file_data;
static struct cred *creds;
static unsigned     ncreds;

unsigned authfile_entries(void)
{
    return ncreds;
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
    if (!tab) {
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
    free(creds);
    free(file_data);
    creds = tab;
    file_data = data;
    ncreds = n;
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
    /* Every entry is compared (no early exit), so the time taken does not
     * say which user exists. */
    for (unsigned i = 0; i < ncreds; i++) {
        unsigned char d = ct_diff(user, ulen, creds[i].user, creds[i].ulen) |
                          ct_diff(pass, plen, creds[i].pass, creds[i].plen);
        ok |= d == 0;
    }
    return ok;
}
