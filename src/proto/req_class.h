/*
 * req_class.h — which latency class (util/lat_hist.h) a parsed request
 * counts in. Pure function of the request; called on the worker that
 * parsed it. A meta request's aux starts with struct meta_hdr, whose first
 * byte is the command letter (checked in req_class.c).
 */
#ifndef PERCORE_REQ_CLASS_H
#define PERCORE_REQ_CLASS_H

#include "util/lat_hist.h"
#include "proto/request.h"

static inline unsigned req_class(const struct req *r)
{
    static const uint8_t by_op[] = {
        [OP_GET] = LAT_get, [OP_GETS] = LAT_get, [OP_GAT] = LAT_touch, [OP_GATS] = LAT_touch,
        [OP_SET] = LAT_set, [OP_ADD] = LAT_set, [OP_REPLACE] = LAT_set, [OP_APPEND] = LAT_set,
        [OP_PREPEND] = LAT_set, [OP_CAS] = LAT_set, [OP_DELETE] = LAT_delete,
        [OP_INCR] = LAT_incr_decr, [OP_DECR] = LAT_incr_decr, [OP_TOUCH] = LAT_touch,
        [OP_META] = LAT_other, [OP_BINARY] = LAT_binary,
    };
    if (r->op == OP_META && r->auxlen) {
        char c = r->aux[0];
        return c == 'g' ? LAT_meta_get : c == 's' ? LAT_meta_set : LAT_other;
    }
    return r->op < sizeof by_op ? by_op[r->op] : LAT_other;
}

#endif
