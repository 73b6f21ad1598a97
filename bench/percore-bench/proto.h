/* proto.h - request encoding and streaming reply parsing for percore-bench.
 * Protocols: memcached text (get/set), meta (mg/ms), and text over UDP (the
 * framing is in udp.h; the commands and replies are parsed as text here). A struct rparser belongs to one connection and so to the
 * worker thread owning that connection; nothing here is shared. */
#ifndef PB_PROTO_H
#define PB_PROTO_H
#include <stddef.h>
#include <stdint.h>

enum proto_kind { PROTO_TEXT, PROTO_META, PROTO_UDP }; /* UDP: text commands, one per datagram */
enum op { OP_GET, OP_SET, OP_FILL };  /* FILL: a set issued after a get missed */

#define PB_MAX_MULTIGET 64
#define PB_MAX_KEY 250

/* Growable output buffer. */
struct buf {
    char *p;
    size_t len, off, cap;  /* bytes [off, len) still to send */
};
void buf_reserve(struct buf *b, size_t more);
void buf_free(struct buf *b);

/* Key naming: key id -> "k<id>:" padded with 'x' up to len (at least the id fits). */
size_t key_format(char *dst, uint64_t id, uint32_t len);
/* Parse the id back from a key produced by key_format; -1 if not ours. */
int key_parse(const char *k, size_t n, uint64_t *id);

/* Encoders append to `out`. `klen` gives each key's length, `value` is a pattern
 * buffer of at least vlen bytes. */
void proto_encode_get(enum proto_kind k, struct buf *out, const uint64_t *keys,
                      const uint32_t *klen, int nkeys);
void proto_encode_set(enum proto_kind k, struct buf *out, uint64_t key, uint32_t klen,
                      const char *value, uint32_t vlen);

/* Streaming reply parser. */
enum { PF_MORE = 0, PF_DONE = 1, PF_BAD = -1 };
enum { RS_OK = 0, RS_NOTSTORED = 1, RS_ERROR = 2 };
struct rparser {
    int in_data;       /* skipping a value's data block */
    size_t skip;       /* bytes of it left, including the trailing \r\n */
    int nreplies;      /* meta: replies seen for the current request */
    int next_key;      /* text multiget: position to match VALUE keys from */
    /* results of the current reply */
    uint32_t hits, misses;
    uint64_t hitmask;  /* bit i: keys[i] hit */
    int status;        /* RS_* */
};
struct preq {
    uint8_t op;
    uint8_t nkeys;
    const uint64_t *keys;
};
void proto_reset(struct rparser *ps);
/* Feed bytes [p, p+n) for the request at the head of the queue. Sets *used to the
 * bytes consumed. PF_DONE: a whole reply was read (results in *ps; call
 * proto_reset before the next one); PF_MORE: needs more bytes (an incomplete line
 * is left unconsumed); PF_BAD: the stream cannot be parsed. */
int proto_feed(enum proto_kind k, struct rparser *ps, const struct preq *rq,
               const char *p, size_t n, size_t *used);
#endif
