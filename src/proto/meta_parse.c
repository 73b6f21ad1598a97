/*
 * meta_parse.c — the meta protocol (mg/ms/md/ma/mn/me). Placeholder until
 * the meta protocol lands: answers as memcached does for the trivial
 * commands and ERROR otherwise. Runs on the connection's worker.
 */
#include "proto/text_internal.h"

size_t meta_dispatch(struct text_parser *p, const struct proto_conf *cf,
                     const struct proto_sink *sk, void *s, const char *line,
                     size_t len, const struct tok *t, size_t nt,
                     const char *data, size_t avail, bool *wait)
{
    if (t[0].v[1] == 'n')
        text_reply(sk, s, "MN");
    else
        text_reply(sk, s, "ERROR");
    return 0;
}
