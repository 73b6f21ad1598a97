/*
 * meta.h — what the meta parser (meta_parse.c, connection's worker) hands
 * the meta executor (meta_exec.c, key owner's worker). A meta request's
 * `aux` holds a struct meta_hdr followed by the request's flag tokens in
 * their original order, compacted: single-letter flags keep only their
 * letter, O(opaque) tokens are kept whole. The executor walks that list to
 * emit return flags in request order, as memcached does. Private to
 * src/proto.
 */
#ifndef PERCORE_META_H
#define PERCORE_META_H

#include <stddef.h>
#include <stdint.h>
#include "proto/text_internal.h"

/* Boolean flags of a meta request (struct meta_hdr.bits). */
enum {
    MF_VALUE   = 1u << 0,   /* v */
    MF_NOREPLY = 1u << 1,   /* q */
    MF_NOBUMP  = 1u << 2,   /* u */
    MF_BINKEY  = 1u << 3,   /* b: key arrived base64-encoded */
    MF_CAS     = 1u << 4,   /* C given */
    MF_STALE   = 1u << 5,   /* I */
    MF_NEWTTL  = 1u << 6,   /* T given */
    MF_VIVIFY  = 1u << 7,   /* N given */
    MF_RECACHE = 1u << 8,   /* R given */
};

/* Longest O(opaque) token memcached accepts, the 'O' included. */
#define META_OPAQUE_MAX 32
/* memcached refuses meta commands of more than this many tokens (counting
 * the command, the key and its terminal empty token). */
#define META_MAX_TOKENS 20

struct meta_hdr {
    char     cmd;          /* 'g' 's' 'd' 'a' 'e' */
    char     mode;         /* M token's character, 0 if none */
    uint16_t bits;         /* MF_* */
    uint16_t ntext;        /* bytes of compacted flag text after the header */
    int32_t  ttl;          /* T, as the client sent it */
    int32_t  viv_ttl;      /* N */
    int32_t  recache;      /* R */
    uint32_t client_flags; /* F */
    uint64_t cas;          /* C */
    uint64_t delta;        /* D (default 1) */
    uint64_t initial;      /* J */
};

/* mg/ms/md/ma/mn/me, called by the text parser (meta_parse.c). Same
 * contract as the text dispatcher: returns the data bytes consumed after
 * the line, sets *wait if the data block is partial. */
size_t meta_dispatch(struct text_parser *p, const struct proto_conf *cf,
                     const struct proto_sink *sk, void *s, const char *line,
                     size_t len, const struct tok *t, size_t nt,
                     const char *data, size_t avail, bool *wait);

/* memcached-compatible base64 (padding written; on decode, characters
 * outside the alphabet are skipped). decode returns 0 on bad input. */
size_t meta_b64_encode(const unsigned char *in, size_t n, char *out, size_t cap);
size_t meta_b64_decode(const char *in, size_t n, unsigned char *out, size_t cap);

#endif
