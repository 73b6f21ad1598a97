/*
 * request.h — a parsed keyed request, independent of the wire format it came
 * in. A request is built by the parser on the worker that read it and is
 * either executed there or copied (once) into a message for the key's owner.
 */
#ifndef PERCORE_REQUEST_H
#define PERCORE_REQUEST_H

#include <stdbool.h>
#include <stdint.h>

enum req_op {
    OP_GET, OP_GETS, OP_GAT, OP_GATS,
    OP_SET, OP_ADD, OP_REPLACE, OP_APPEND, OP_PREPEND, OP_CAS,
    OP_DELETE, OP_INCR, OP_DECR, OP_TOUCH,
    OP_META,        /* mg/ms/md/ma: details in aux (meta protocol) */
    OP_BINARY,      /* binary protocol: header in aux */
    OP_DROP,        /* a refused store drops the key's old value: no reply, no
                     * delete counters (proto_refuse_large) */
};

enum req_proto { PROTO_TEXT = 0, PROTO_META = 1, PROTO_BINARY = 2, PROTO_COUNT };

struct req {
    uint8_t     op;
    uint8_t     proto;
    bool        noreply;
    uint8_t     klen;
    uint32_t    vlen;
    uint32_t    auxlen;
    int32_t     cfd;       /* the client's descriptor, for watch lines (set by the session) */
    uint32_t    flags;
    int64_t     exptime;   /* as the client sent it; converted by the owner */
    uint64_t    cas;
    uint64_t    delta;
    const char *key;
    const char *val;
    const char *aux;       /* protocol-specific extra bytes (meta flags, binary header) */
};

#endif
