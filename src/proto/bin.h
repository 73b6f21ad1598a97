/*
 * bin.h — the memcached binary protocol: wire constants, what the parser
 * (bin_parse.c, connection's worker) hands the executor (bin_exec.c, key
 * owner's worker) in a request's aux, and the response encoders both use.
 * All multi-byte header fields are big-endian on the wire; the opaque is
 * echoed byte for byte. Private to src/proto.
 */
#ifndef PERCORE_BIN_H
#define PERCORE_BIN_H

#include <stdint.h>
#include "util/buf.h"

#define BIN_REQ_MAGIC 0x80
#define BIN_RES_MAGIC 0x81
#define BIN_HDR_LEN   24

enum bin_opcode {
    BIN_GET = 0x00, BIN_SET = 0x01, BIN_ADD = 0x02, BIN_REPLACE = 0x03,
    BIN_DELETE = 0x04, BIN_INCR = 0x05, BIN_DECR = 0x06, BIN_QUIT = 0x07,
    BIN_FLUSH = 0x08, BIN_GETQ = 0x09, BIN_NOOP = 0x0a, BIN_VERSION = 0x0b,
    BIN_GETK = 0x0c, BIN_GETKQ = 0x0d, BIN_APPEND = 0x0e, BIN_PREPEND = 0x0f,
    BIN_STAT = 0x10, BIN_SETQ = 0x11, BIN_ADDQ = 0x12, BIN_REPLACEQ = 0x13,
    BIN_DELETEQ = 0x14, BIN_INCRQ = 0x15, BIN_DECRQ = 0x16, BIN_QUITQ = 0x17,
    BIN_FLUSHQ = 0x18, BIN_APPENDQ = 0x19, BIN_PREPENDQ = 0x1a,
    BIN_VERBOSITY = 0x1b, BIN_TOUCH = 0x1c, BIN_GAT = 0x1d, BIN_GATQ = 0x1e,
    BIN_SASL_LIST = 0x20, BIN_SASL_AUTH = 0x21, BIN_SASL_STEP = 0x22,
    BIN_GATK = 0x23, BIN_GATKQ = 0x24,
};

enum bin_status {
    BS_OK = 0x00, BS_ENOENT = 0x01, BS_EEXISTS = 0x02, BS_E2BIG = 0x03,
    BS_EINVAL = 0x04, BS_NOT_STORED = 0x05, BS_DELTA_BADVAL = 0x06,
    BS_AUTH_ERROR = 0x20, BS_AUTH_CONTINUE = 0x21, BS_UNKNOWN = 0x81, BS_ENOMEM = 0x82,
};

/* A keyed binary request's aux (copied with memcpy: it may be unaligned).
 * Key, value, flags, exptime, cas and delta travel in struct req. */
struct bin_aux {
    uint8_t  opcode;       /* as received: echoed in the response */
    uint8_t  cmd;          /* opcode with the quiet variant folded in */
    uint8_t  quiet;
    uint8_t  unused;
    uint32_t opaque;       /* raw wire bytes */
    uint32_t exptime;      /* incr/decr: 0xffffffff = don't create */
    uint64_t initial;      /* incr/decr: value when created */
};

/* Append a response header. */
void bin_header(struct buf *o, uint8_t opcode, uint16_t status, uint8_t extlen,
                uint16_t keylen, uint32_t bodylen, uint32_t opaque, uint64_t cas);
/* Append an error response carrying memcached's message for `status`. */
void bin_error(struct buf *o, uint8_t opcode, uint32_t opaque, uint16_t status);

#endif
