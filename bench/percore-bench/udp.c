/* udp.c - memcached UDP framing for percore-bench: frame headers, request
 * datagrams and reply reassembly, see udp.h. Pure functions over state owned by
 * the worker thread of the connection the request belongs to. */
#include "udp.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A run of datagrams being collected: chunk i (sequence i) is data[off[i],
 * off[i] + len[i]); off[i] == UINT32_MAX while it is missing. */
struct udp_run {
    uint16_t total, got;
    uint32_t *off, *len;
    char *data;
    size_t dlen, dcap;
};

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        perror("realloc");
        abort();
    }
    return q;
}

void udp_hdr_put(void *dst, const struct udp_hdr *h)
{
    unsigned char *d = dst;
    uint16_t v[4] = { h->id, h->seq, h->total, h->reserved };
    for (int i = 0; i < 4; i++) {
        d[2 * i] = (unsigned char)(v[i] >> 8);
        d[2 * i + 1] = (unsigned char)v[i];
    }
}

int udp_hdr_get(const void *p, size_t n, struct udp_hdr *h)
{
    const unsigned char *s = p;
    if (n < UDP_HDR_LEN)
        return -1;
    h->id = (uint16_t)(s[0] << 8 | s[1]);
    h->seq = (uint16_t)(s[2] << 8 | s[3]);
    h->total = (uint16_t)(s[4] << 8 | s[5]);
    h->reserved = (uint16_t)(s[6] << 8 | s[7]);
    return 0;
}

static size_t dec_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

/* key_format() writes at least "k<id>" even when asked for fewer bytes; the
 * sizes below use the requested length, so they are exact for the generator's
 * keys (id digits + 1 <= length, which the encoders check by measuring). */
size_t udp_get_size(const uint32_t *klen, int nkeys)
{
    size_t n = UDP_HDR_LEN + 3 + 2; /* "get" ... "\r\n" */
    for (int i = 0; i < nkeys; i++)
        n += 1 + klen[i];
    return n;
}

size_t udp_set_size(uint32_t klen, uint32_t vlen)
{
    /* "set " key " 0 0 " vlen "\r\n" value "\r\n" */
    return UDP_HDR_LEN + 4 + klen + 5 + dec_len(vlen) + 2 + vlen + 2;
}

/* Reserve a record, encode the command with proto.c's text encoder, then fill
 * in the length and the header (or take the record back when too big). The
 * record's position is kept relative to out->off: buf_reserve may compact. */
static int finish(struct buf *out, size_t rel, uint16_t id)
{
    size_t rec = out->off + rel;
    size_t dlen = out->len - rec - 2;
    if (dlen > UDP_MAX_DATAGRAM) {
        out->len = rec;
        return -1;
    }
    uint16_t l16 = (uint16_t)dlen;
    memcpy(out->p + rec, &l16, 2);
    struct udp_hdr h = { id, 0, 1, 0 };
    udp_hdr_put(out->p + rec + 2, &h);
    return (int)dlen;
}

static size_t start(struct buf *out)
{
    buf_reserve(out, 2 + UDP_HDR_LEN);
    size_t rel = out->len - out->off;
    out->len += 2 + UDP_HDR_LEN;
    return rel;
}

int udp_encode_get(struct buf *out, uint16_t id, const uint64_t *keys, const uint32_t *klen, int nkeys)
{
    size_t rel = start(out);
    proto_encode_get(PROTO_UDP, out, keys, klen, nkeys);
    return finish(out, rel, id);
}

int udp_encode_set(struct buf *out, uint16_t id, uint64_t key, uint32_t klen, const char *value,
                   uint32_t vlen)
{
    size_t rel = start(out);
    proto_encode_set(PROTO_UDP, out, key, klen, value, vlen);
    return finish(out, rel, id);
}

int udp_next_dgram(const struct buf *out, size_t *off, const char **d, size_t *len)
{
    if (*off + 2 > out->len)
        return -1;
    uint16_t l16;
    memcpy(&l16, out->p + *off, 2);
    *d = out->p + *off + 2;
    *len = l16;
    *off += 2 + (size_t)l16;
    return 0;
}

void udp_rx_init(struct udp_rx *rx)
{
    proto_reset(&rx->ps);
    rx->run = NULL;
}

static void run_free(struct udp_run *r)
{
    if (!r)
        return;
    free(r->off);
    free(r->len);
    free(r->data);
    free(r);
}

void udp_rx_reset(struct udp_rx *rx)
{
    run_free(rx->run);
    udp_rx_init(rx);
}

/* A whole run: feed it to the parser. The run must end the reply or end on a
 * line/data-block boundary (a response object is always whole). */
static int feed_run(struct udp_rx *rx, const struct preq *rq, const char *p, size_t n)
{
    size_t used = 0;
    int rc = proto_feed(PROTO_UDP, &rx->ps, rq, p, n, &used);
    if (rc == PF_DONE)
        return used == n ? UR_DONE : UR_BAD;
    if (rc == PF_MORE)
        return used == n ? UR_MORE : UR_BAD;
    return UR_BAD;
}

int udp_rx_feed(struct udp_rx *rx, const struct preq *rq, const struct udp_hdr *h, const char *payload,
                size_t n)
{
    if (h->total == 0)
        return UR_MORE; /* header-only datagram: an empty response object */
    if (h->seq >= h->total)
        return UR_BAD;
    if (h->total == 1 && !rx->run)
        return feed_run(rx, rq, payload, n);
    struct udp_run *r = rx->run;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            abort();
        r->total = h->total;
        r->off = xrealloc(NULL, sizeof *r->off * h->total);
        r->len = xrealloc(NULL, sizeof *r->len * h->total);
        for (uint32_t i = 0; i < h->total; i++)
            r->off[i] = UINT32_MAX;
        rx->run = r;
    }
    if (h->total != r->total || r->off[h->seq] != UINT32_MAX)
        return UR_MORE; /* a duplicate, or another run interleaved: ignored */
    if (r->dlen + n > r->dcap) {
        size_t nc = r->dcap ? r->dcap : 4096;
        while (nc < r->dlen + n)
            nc *= 2;
        r->data = xrealloc(r->data, nc);
        r->dcap = nc;
    }
    memcpy(r->data + r->dlen, payload, n);
    r->off[h->seq] = (uint32_t)r->dlen;
    r->len[h->seq] = (uint32_t)n;
    r->dlen += n;
    if (++r->got < r->total)
        return UR_MORE;
    /* complete: lay the chunks out in sequence order, then parse */
    char *whole = xrealloc(NULL, r->dlen);
    size_t pos = 0;
    for (uint32_t i = 0; i < r->total; i++) {
        memcpy(whole + pos, r->data + r->off[i], r->len[i]);
        pos += r->len[i];
    }
    rx->run = NULL;
    run_free(r);
    int rc = feed_run(rx, rq, whole, pos);
    free(whole);
    return rc;
}
