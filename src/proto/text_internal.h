/*
 * text_internal.h — what the text and meta parsers share, below both of
 * them: the token type and the reply helper. text_parse.c calls into
 * meta_parse.c (meta.h), never the other way. Private to src/proto.
 */
#ifndef PERCORE_TEXT_INTERNAL_H
#define PERCORE_TEXT_INTERNAL_H

#include <string.h>
#include "util/numparse.h"
#include "proto/proto.h"

struct tok {
    const char *v;
    size_t      n;
};

/* A one-line reply, in order with the session's other replies. */
static inline void text_reply(const struct proto_sink *sk, void *s, const char *str)
{
    struct buf *o = sk->output(s);
    buf_adds(o, str);
    buf_add(o, "\r\n", 2);
}

#endif
