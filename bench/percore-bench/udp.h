/* udp.h - memcached's UDP framing for percore-bench (--proto udp): the 8-byte
 * frame header (request id, sequence number, datagram count, reserved), request
 * datagrams queued in a struct buf, and the reassembly of a reply's datagram runs
 * into the text reply parser. A struct udp_rx belongs to one in-flight request of
 * one connection, so to the worker thread owning that connection; nothing here is
 * shared. Pure functions apart from malloc; unit-tested in test_bench_udp.c. */
#ifndef PB_UDP_H
#define PB_UDP_H
#include <stddef.h>
#include <stdint.h>
#include "proto.h"

#define UDP_HDR_LEN 8
/* memcached's UDP_MAX_PAYLOAD_SIZE: the largest datagram (header included) it
 * sends. A request must fit in one such datagram: a set's key + value can be at
 * most ~1,370 bytes (UDP_MAX_DATAGRAM - udp_set_size(klen, 0)). */
#define UDP_MAX_DATAGRAM 1400
#define UDP_MAX_PAYLOAD (UDP_MAX_DATAGRAM - UDP_HDR_LEN)
#define UDP_RX_MAX 65536   /* receive buffer: the largest UDP datagram fits */

struct udp_hdr {
    uint16_t id, seq, total, reserved;
};
/* Write/read the header (network byte order). udp_hdr_get returns -1 when the
 * datagram is shorter than the header. */
void udp_hdr_put(void *dst, const struct udp_hdr *h);
int udp_hdr_get(const void *p, size_t n, struct udp_hdr *h);

/* Size of the datagram (header included) for a text get of these keys / a set. */
size_t udp_get_size(const uint32_t *klen, int nkeys);
size_t udp_set_size(uint32_t klen, uint32_t vlen);

/* Append one request datagram to `out` as a record [u16 length, host order]
 * [8-byte header: id, seq 0, count 1, 0][text command]. Returns the datagram's
 * length, or -1 (nothing appended) when it would exceed UDP_MAX_DATAGRAM. */
int udp_encode_get(struct buf *out, uint16_t id, const uint64_t *keys, const uint32_t *klen, int nkeys);
int udp_encode_set(struct buf *out, uint16_t id, uint64_t key, uint32_t klen, const char *value,
                   uint32_t vlen);
/* The datagram record at out->p + *off: sets *d and *len and advances *off past
 * it; returns 0, or -1 at the end of the buffer (out->len). */
int udp_next_dgram(const struct buf *out, size_t *off, const char **d, size_t *len);

/* Reassembly of one reply. A server answers each response object (one per
 * command; one per key of a multi-key get, END attached to the last) with its
 * own run of datagrams numbered 0..n-1, count n (memcached 1.6, percore); a
 * header-only datagram with count 0 (memcached: a miss on a multi-get's first
 * key) carries nothing. Each run is put back together by sequence number, in
 * whatever order its datagrams arrive (duplicates ignored), and handed to the
 * text parser as a whole; the reply is complete when the parser has seen all of
 * it (END for a get, the status line for a set). Runs of one reply are assumed
 * to arrive one after another (datagrams of two runs of the same request
 * interleaved cannot be told apart: the first run's are kept, the others
 * ignored, and the request eventually times out). */
struct udp_run;
struct udp_rx {
    struct rparser ps;    /* text parser state across runs */
    struct udp_run *run;  /* run of more than one datagram being collected */
};
enum { UR_MORE = 0, UR_DONE = 1, UR_BAD = -1 };
void udp_rx_init(struct udp_rx *rx);
/* Frees what the request collected; the struct can then be reused. */
void udp_rx_reset(struct udp_rx *rx);
/* One datagram of the reply to `rq` (header already parsed, `payload` is what
 * follows it). UR_DONE: the reply is complete, results in rx->ps; UR_MORE: more
 * datagrams needed; UR_BAD: the reply cannot be parsed (sequence beyond the
 * count, bytes after the end of the reply, a run ending inside a line). */
int udp_rx_feed(struct udp_rx *rx, const struct preq *rq, const struct udp_hdr *h, const char *payload,
                size_t n);
#endif
