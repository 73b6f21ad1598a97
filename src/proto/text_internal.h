/*
 * text_internal.h — what the text and meta parsers share: a token type, the
 * reply helper and the meta-command entry point. Private to src/proto.
 */
#ifndef PERCORE_TEXT_INTERNAL_H
#define PERCORE_TEXT_INTERNAL_H

#include "proto/proto.h"

struct tok {
    const char *v;
    size_t      n;
};

void text_reply(const struct proto_sink *sk, void *s, const char *str);

/* mg/ms/md/ma/mn/me. Same contract as the text dispatcher: returns the data
 * bytes consumed after the line, sets *wait if the data block is partial. */
size_t meta_dispatch(struct text_parser *p, const struct proto_conf *cf,
                     const struct proto_sink *sk, void *s, const char *line,
                     size_t len, const struct tok *t, size_t nt,
                     const char *data, size_t avail, bool *wait);

#endif
