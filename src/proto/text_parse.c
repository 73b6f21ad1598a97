/*
 * text_parse.c — the memcached text protocol parser: splits input into
 * command lines (and data blocks), validates them exactly as memcached does
 * and hands keyed requests to the sink. State: struct text_parser, owned by
 * the connection's worker. Meta commands (mg/ms/...) go to meta_parse.c.
 *
 * Two paths: fast_line() takes the common get/gets and plain storage
 * lines in one pass; every other line, and any of those it is unsure of,
 * is tokenized and judged by dispatch(), which is the reference for what
 * memcached replies.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include "util/log.h"
#include "util/options.h"
#include "proto/tunables.h"
#include "proto/meta.h"
#include "proto/text_internal.h"
#include "proto/text_line.h"

/* memcached tokenizes at most 23 words at a time; commands with more are
 * judged on that count, so we count the same way. */
#define MAX_TOKENS 24
/* Without a newline after this many bytes the line is junk (memcached). */
#define LINE_JUNK 2048
/* Upper bound on one get line (memcached's is unbounded; ours is not). */
#define LINE_GET_MAX (2u << 20)
/* Most keys one get line takes the fast path (fast_line) with. */
#define FAST_GET_KEYS 64

static size_t tokenize(const char *line, size_t len, struct tok *t, bool *more)
{
    size_t n = 0, i = 0;
    *more = false;
    while (i < len) {
        while (i < len && line[i] == ' ')
            i++;
        if (i >= len)
            break;
        if (n == MAX_TOKENS - 1) {
            *more = true;
            break;
        }
        size_t s = i;
        while (i < len && line[i] != ' ')
            i++;
        t[n].v = line + s;
        t[n].n = i - s;
        n++;
    }
    return n;
}

static bool tok_is(const struct tok *t, const char *s)
{
    size_t n = strlen(s);
    return t->n == n && memcmp(t->v, s, n) == 0;
}

/* memcached's set_noreply_maybe: the last word decides. */
static bool noreply_last(const struct tok *t, size_t n)
{
    return n > 0 && tok_is(&t[n - 1], "noreply");
}

static void out(const struct proto_sink *sk, void *s, bool noreply, const char *str)
{
    if (!noreply)
        text_reply(sk, s, str);
}

/* get/gets/gat/gats: keys may run past the 23-word tokenizer window, so the
 * whole line is scanned here. All keys are checked before any is dispatched,
 * so a bad key yields only the error, as in memcached. */
static void do_get(const struct proto_conf *cf, const struct proto_sink *sk, void *s,
                   const char *line, size_t len, const struct tok *t, size_t nt,
                   enum req_op op)
{
    bool touch = (op == OP_GAT || op == OP_GATS);
    int32_t exptime = 0;
    size_t first = 1;
    if (touch) {
        if (!parse_i32(t[1].v, t[1].n, &exptime)) {
            text_reply(sk, s, "CLIENT_ERROR invalid exptime argument");
            return;
        }
        first = 2;
    }
    const char *p = (first < nt) ? t[first].v : line + len;
    const char *end = line + len;
    unsigned nkeys = 0;
    for (const char *q = p; q < end;) {
        while (q < end && *q == ' ')
            q++;
        const char *k = q;
        while (q < end && *q != ' ')
            q++;
        if (q > k) {
            if ((size_t)(q - k) > KEY_MAX_LENGTH) {
                text_reply(sk, s, "CLIENT_ERROR bad command line format");
                return;
            }
            nkeys++;
        }
    }
    if (cf->max_get_keys && nkeys > cf->max_get_keys) {
        text_reply(sk, s, "CLIENT_ERROR too many keys in one request");
        return;
    }
    for (const char *q = p; q < end;) {
        while (q < end && *q == ' ')
            q++;
        const char *k = q;
        while (q < end && *q != ' ')
            q++;
        if (q > k) {
            struct req r = {0};
            r.op = (uint8_t)op;
            r.proto = PROTO_TEXT;
            r.key = k;
            r.klen = (uint8_t)(q - k);
            r.exptime = exptime;
            sk->request(s, &r);
        }
    }
    buf_add(sk->output(s), "END\r\n", 5);
}

/* A storage command whose line has been judged: take its data block.
 * Returns the bytes of data block it consumes (value + CRLF), or 0 when it
 * consumes none; sets *wait when the block has not fully arrived. */
static size_t store_block(struct text_parser *p, const struct proto_conf *cf,
                          const struct proto_sink *sk, void *s, enum req_op op,
                          const char *key, size_t klen, uint32_t flags, int32_t exptime,
                          int32_t vlen, uint64_t casv, bool noreply, const char *data,
                          size_t avail, bool *wait)
{
    size_t total = (size_t)vlen + 2;
    if (proto_too_large(cf, klen, flags, (size_t)vlen)) {
        /* Refuse without buffering it: swallow the block as it streams in.
         * A failed set also removes the old value, as memcached does. */
        out(sk, s, noreply, "SERVER_ERROR object too large for cache");
        proto_refuse_large(sk, s, key, klen, op == OP_SET);
        p->swallow = total;
        return 0;
    }
    if (avail < total) {
        *wait = true;
        return total;
    }
    if (data[vlen] != '\r' || data[vlen + 1] != '\n') {
        out(sk, s, noreply, "CLIENT_ERROR bad data chunk");
        return total;
    }
    struct req r = {0};
    r.op = (uint8_t)op;
    r.proto = PROTO_TEXT;
    r.noreply = noreply;
    r.key = key;
    r.klen = (uint8_t)klen;
    r.flags = flags;
    r.exptime = exptime;
    r.val = data;
    r.vlen = (uint32_t)vlen;
    r.cas = casv;
    sk->request(s, &r);
    return total;
}

/* Storage commands: judge the line, then store_block(). */
static size_t do_store(struct text_parser *p, const struct proto_conf *cf,
                       const struct proto_sink *sk, void *s, const struct tok *t,
                       size_t nt, enum req_op op, const char *data, size_t avail,
                       bool *wait)
{
    bool cas = (op == OP_CAS);
    bool noreply = noreply_last(t, nt);
    uint32_t flags;
    int32_t exptime, vlen;
    uint64_t casv = 0;

    if (t[1].n > KEY_MAX_LENGTH) {
        out(sk, s, noreply, "CLIENT_ERROR bad command line format");
        return 0;
    }
    if (!parse_u32_trunc(t[2].v, t[2].n, &flags) || !parse_i32(t[3].v, t[3].n, &exptime) ||
        !parse_i32(t[4].v, t[4].n, &vlen)) {
        out(sk, s, noreply, "CLIENT_ERROR bad command line format");
        return 0;
    }
    if (cas && !parse_u64(t[5].v, t[5].n, &casv)) {
        out(sk, s, noreply, "CLIENT_ERROR bad command line format");
        return 0;
    }
    if (vlen < 0 || vlen > INT32_MAX - 2) {
        out(sk, s, noreply, "CLIENT_ERROR bad command line format");
        return 0;
    }
    return store_block(p, cf, sk, s, op, t[1].v, t[1].n, flags, exptime, vlen, casv, noreply,
                       data, avail, wait);
}

static void do_arith(const struct proto_sink *sk, void *s, const struct tok *t,
                     size_t nt, bool incr)
{
    bool noreply = noreply_last(t, nt);
    uint64_t delta;
    if (t[1].n > KEY_MAX_LENGTH) {
        out(sk, s, noreply, "CLIENT_ERROR bad command line format");
        return;
    }
    if (!parse_u64(t[2].v, t[2].n, &delta)) {
        out(sk, s, noreply, "CLIENT_ERROR invalid numeric delta argument");
        return;
    }
    struct req r = {0};
    r.op = incr ? OP_INCR : OP_DECR;
    r.proto = PROTO_TEXT;
    r.noreply = noreply;
    r.key = t[1].v;
    r.klen = (uint8_t)t[1].n;
    r.delta = delta;
    sk->request(s, &r);
}

static void do_delete(const struct proto_sink *sk, void *s, const struct tok *t, size_t nt)
{
    bool noreply = false;
    if (nt > 2) {
        bool hold_zero = tok_is(&t[2], "0");
        noreply = noreply_last(t, nt);
        bool valid = (nt == 3 && (hold_zero || noreply)) || (nt == 4 && hold_zero && noreply);
        if (!valid) {
            out(sk, s, noreply,
                "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]");
            return;
        }
    }
    if (t[1].n > KEY_MAX_LENGTH) {
        out(sk, s, noreply, "CLIENT_ERROR bad command line format");
        return;
    }
    struct req r = {0};
    r.op = OP_DELETE;
    r.proto = PROTO_TEXT;
    r.noreply = noreply;
    r.key = t[1].v;
    r.klen = (uint8_t)t[1].n;
    sk->request(s, &r);
}

static void do_touch(const struct proto_sink *sk, void *s, const struct tok *t, size_t nt)
{
    bool noreply = noreply_last(t, nt);
    int32_t exptime;
    if (t[1].n > KEY_MAX_LENGTH) {
        out(sk, s, noreply, "CLIENT_ERROR bad command line format");
        return;
    }
    if (!parse_i32(t[2].v, t[2].n, &exptime)) {
        out(sk, s, noreply, "CLIENT_ERROR invalid exptime argument");
        return;
    }
    struct req r = {0};
    r.op = OP_TOUCH;
    r.proto = PROTO_TEXT;
    r.noreply = noreply;
    r.key = t[1].v;
    r.klen = (uint8_t)t[1].n;
    r.exptime = exptime;
    sk->request(s, &r);
}

static void do_flush(const struct proto_conf *cf, const struct proto_sink *sk, void *s,
                     const struct tok *t, size_t nt)
{
    bool noreply = noreply_last(t, nt);
    int32_t delay = 0;
    if (!cf->flush_ok) {
        out(sk, s, noreply, "CLIENT_ERROR flush_all not allowed");
        return;
    }
    if (nt != (noreply ? 2u : 1u)) {
        if (!parse_i32(t[1].v, t[1].n, &delay)) {
            out(sk, s, noreply, "CLIENT_ERROR invalid exptime argument");
            return;
        }
    }
    sk->flush_all(s, delay, "OK\r\n", noreply ? 0 : 4);
}

/* memcached's count of slab classes for -f/-n (its slabs_init() with the
 * default 512 KiB chunk maximum): `slabs reassign` judges class ids by it. */
static int mc_power_largest(void)
{
    double factor = settings.growth_factor > 1.0 ? settings.growth_factor : 1.25;
    unsigned size = 48 + (settings.slab_min_size > 0 ? (unsigned)settings.slab_min_size : 48);
    int i = 0;
    while (++i < 63) {
        if (size >= 524288 / factor)
            break;
        if (size % 8)
            size += 8 - size % 8;
        size = (unsigned)(size * factor);
    }
    return i;
}

/* memcached's safe_strtol() on a 64-bit build: a long, then cut to 32 bits
 * without a range check (so 4294967297 reads as 1). */
static bool parse_long_cut(const struct tok *t, int32_t *out)
{
    char num[32];
    if (t->n == 0 || t->n >= sizeof num)
        return false;
    memcpy(num, t->v, t->n);
    num[t->n] = '\0';
    char *end;
    errno = 0;
    long long l = strtoll(num, &end, 10);
    if (errno == ERANGE || end == num || *end != '\0')
        return false;
    *out = (int32_t)(uint32_t)(unsigned long long)l;
    return true;
}

/* slabs reassign <src> <dst>: percore has no slab pages to move, so every
 * valid request gets the answer a memcached whose source class holds no
 * spare page gives (NOSPARE); the argument checks and their replies are
 * memcached 1.6.18's. */
static void slabs_reassign(const struct proto_sink *sk, void *s, const struct tok *t)
{
    int32_t src, dst;
    if (!parse_long_cut(&t[2], &src) || !parse_long_cut(&t[3], &dst)) {
        text_reply(sk, s, "CLIENT_ERROR bad command line format");
        return;
    }
    int top = mc_power_largest();
    if (src == dst)
        text_reply(sk, s, "SAME src and dst class are identical");
    else if (src < 0 || src > top || dst < 0 || dst > top)   /* -1 (any) finds none */
        text_reply(sk, s, "BADCLASS invalid src or dst class id");
    else
        text_reply(sk, s, "NOSPARE source class has no spare pages");
}

/* slabs automove <0|1|2> | ratio <float> [noreply]: percore has no slab
 * classes to rebalance, so the setting only shows in `stats settings`
 * (proto/tunables.h), but the command is judged and answered exactly as
 * memcached 1.6.18 does (scripts that tune it must keep working). */
static void do_slabs(const struct proto_sink *sk, void *s, const struct tok *t, size_t nt)
{
    if (nt == 4 && tok_is(&t[1], "reassign")) {
        slabs_reassign(sk, s, t);
        return;
    }
    if (nt < 3 || !tok_is(&t[1], "automove")) {
        text_reply(sk, s, "ERROR");
        return;
    }
    bool noreply = noreply_last(t, nt);
    if (tok_is(&t[2], "ratio")) {
        char num[32];
        char *end;
        if (nt < 4 || t[3].n == 0 || t[3].n >= sizeof num) {
            out(sk, s, noreply, "ERROR");
            return;
        }
        memcpy(num, t[3].v, t[3].n);
        num[t[3].n] = '\0';
        double ratio = strtod(num, &end);
        if (*end == '\0')
            TUNE_SET(slab_automove_ratio, ratio);
        out(sk, s, noreply, *end == '\0' ? "OK" : "ERROR");
        return;
    }
    uint32_t level;
    if (!parse_u32_trunc(t[2].v, t[2].n, &level)) {
        out(sk, s, noreply, "CLIENT_ERROR bad command line format");
    } else if (level <= 2) {
        TUNE_SET(slab_automove, (int)level);
        out(sk, s, noreply, "OK");
    } else {
        out(sk, s, noreply, "ERROR");
    }
}

/* cache_memlimit <MB> [noreply]: memcached 1.6.18's checks and replies. The
 * stores were sized for -m at start-up (arena, index, tables), so a limit
 * above it is refused the way memcached refuses one it cannot adjust to
 * (with -L's preallocation). */
static void do_memlimit(const struct proto_conf *cf, const struct proto_sink *sk, void *s,
                        const struct tok *t, size_t nt)
{
    if (nt != 2 && nt != 3) {
        text_reply(sk, s, "ERROR");
        return;
    }
    bool noreply = noreply_last(t, nt);
    uint32_t mb;
    if (!parse_u32_trunc(t[1].v, t[1].n, &mb))
        out(sk, s, noreply, "ERROR");
    else if (mb < 8)
        out(sk, s, noreply, "MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m");
    else if (mb > 1000000000)
        out(sk, s, noreply, "MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes");
    else if (!sk->memlimit || ((uint64_t)mb << 20) > cf->mem_cap)
        out(sk, s, noreply, "MEMLIMIT_ADJUST_FAILED out of bounds or unable to adjust");
    else {
        sk->memlimit(s, (uint64_t)mb << 20);
        log_info("maxbytes adjusted to %um", mb);
        out(sk, s, noreply, "OK");
    }
}

static void class_set(struct dump_req *d, uint32_t id)
{
    d->classes[id / 8] |= (uint8_t)(1u << (id % 8));
}

/* A comma list of class ids, each 1..max, marked in d (when not NULL).
 * memcached's crawl takes a trailing empty piece ("1,"), its metadump
 * refuses it: tail_ok says which. */
static bool class_list(const struct tok *t, uint32_t max, bool tail_ok, struct dump_req *d)
{
    const char *p = t->v, *end = t->v + t->n;
    while (tail_ok ? p < end : p <= end) {
        const char *q = memchr(p, ',', (size_t)(end - p));
        if (!q)
            q = end;
        uint32_t id;
        if (!parse_u32_trunc(p, (size_t)(q - p), &id) || id == 0 || id > max)
            return false;
        if (d)
            class_set(d, id);
        p = q + 1;
    }
    return true;
}

/* lru_crawler metadump all|hash|<id>[,<id>...] (memcached 1.6.18; the ids
 * are percore's classes, docs/introspection.md); the crawler's own
 * subcommands as above. */
static void do_lru_crawler(const struct proto_conf *cf, const struct proto_sink *sk, void *s,
                           const struct tok *t, size_t nt)
{
    uint32_t v;
    if (nt == 2 && tok_is(&t[1], "enable")) {
        bool was = atomic_exchange(&mc_tunables.lru_crawler, true);
        text_reply(sk, s, was ? "ERROR failed to start lru crawler thread" : "OK");
        return;
    }
    if (nt == 2 && tok_is(&t[1], "disable")) {
        TUNE_SET(lru_crawler, false);
        text_reply(sk, s, "OK");
        return;
    }
    if (nt == 3 && tok_is(&t[1], "crawl")) {
        if (!TUNE_GET(lru_crawler))
            text_reply(sk, s, "CLIENT_ERROR lru crawler disabled");
        else if (tok_is(&t[2], "all"))
            text_reply(sk, s, "OK");
        else if (tok_is(&t[2], "hash"))
            text_reply(sk, s, "ERROR an unknown error happened");
        else   /* memcached's slab class ids, 1 to 63 */
            text_reply(sk, s, class_list(&t[2], 63, true, NULL) ? "OK"
                                                                : "BADCLASS invalid class id");
        return;
    }
    if (nt == 3 && tok_is(&t[1], "sleep")) {
        if (!parse_u32_trunc(t[2].v, t[2].n, &v)) {
            text_reply(sk, s, "CLIENT_ERROR bad command line format");
        } else if (v > 1000000) {
            text_reply(sk, s, "CLIENT_ERROR sleep must be one second or less");
        } else {
            TUNE_SET(lru_crawler_sleep, v);
            text_reply(sk, s, "OK");
        }
        return;
    }
    if (nt == 3 && tok_is(&t[1], "tocrawl")) {
        bool ok = parse_u32_trunc(t[2].v, t[2].n, &v);
        if (ok)
            TUNE_SET(lru_crawler_tocrawl, v);
        text_reply(sk, s, ok ? "OK" : "CLIENT_ERROR bad command line format");
        return;
    }
    if (nt != 3 || !tok_is(&t[1], "metadump") || !sk->dump) {
        text_reply(sk, s, "ERROR");
        return;
    }
    if (!cf->dump_ok) {
        text_reply(sk, s, "ERROR metadump not allowed");
        return;
    }
    struct dump_req d = { .op = DUMP_METADUMP };
    if (tok_is(&t[2], "all") || tok_is(&t[2], "hash")) {
        memset(d.classes, 0xff, sizeof d.classes);
    } else if (!class_list(&t[2], STORE_CLASSES_MAX, false, &d)) {
        text_reply(sk, s, "BADCLASS invalid class id");
        return;
    }
    sk->dump(s, &d);
}

/* stats cachedump <class> <limit>: memcached's checks and replies. */
static void do_cachedump(const struct proto_conf *cf, const struct proto_sink *sk, void *s,
                         const struct tok *t, size_t nt)
{
    if (!cf->dump_ok) {
        text_reply(sk, s, "CLIENT_ERROR stats cachedump not allowed");
        return;
    }
    if (nt < 4) {
        text_reply(sk, s, "CLIENT_ERROR bad command line");
        return;
    }
    uint32_t id, limit;
    if (!parse_u32_trunc(t[2].v, t[2].n, &id) || !parse_u32_trunc(t[3].v, t[3].n, &limit)) {
        text_reply(sk, s, "CLIENT_ERROR bad command line format");
        return;
    }
    if (id == 0 || id > STORE_CLASSES_MAX) {
        text_reply(sk, s, "CLIENT_ERROR Illegal slab id");
        return;
    }
    struct dump_req d = { .op = DUMP_CACHEDUMP, .limit = limit };
    class_set(&d, id);
    sk->dump(s, &d);
}

/* watch [fetchers|mutations|evictions|connevents]...: memcached 1.6.18's
 * names; no argument means fetchers. memcached's other streams (rawcmds,
 * sysevents, proxy*) log things percore does not have: ERROR. */
static bool do_watch(const struct proto_conf *cf, const struct proto_sink *sk, void *s,
                     const struct tok *t, size_t nt, bool more)
{
    static const struct { const char *name; unsigned flag; } names[] = {
        { "fetchers", WATCH_FETCHERS }, { "mutations", WATCH_MUTATIONS },
        { "evictions", WATCH_EVICTIONS }, { "connevents", WATCH_CONNEVENTS },
    };
    if (!sk->watch || !cf->watch_ok || more) {
        text_reply(sk, s, "ERROR");
        return false;
    }
    unsigned flags = nt > 1 ? 0 : WATCH_FETCHERS;
    for (size_t i = 1; i < nt; i++) {
        unsigned f = 0;
        for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
            if (tok_is(&t[i], names[k].name))
                f = names[k].flag;
        if (!f) {
            text_reply(sk, s, "ERROR");
            return false;
        }
        flags |= f;
    }
    sk->watch(s, flags);
    return true;
}

/* memcached 1.6.18 drops a connection whose unknown command line ends in a
 * word starting "HTTP/" (a browser or health check hitting the port): the
 * check sits after its per-letter dispatch, so lines whose command starts
 * with a letter of a known command family (a c d g i s t, or a two-letter
 * m...) answer ERROR instead, and so do lines of more than 23 words. */
static bool looks_like_http(const struct tok *t, size_t nt, bool more)
{
    if (more || nt < 1)
        return false;
    char first = t[0].v[0];
    if (strchr("acdgist", first) || (first == 'm' && t[0].n == 2))
        return false;
    const struct tok *last = &t[nt - 1];
    return last->n >= 5 && memcmp(last->v, "HTTP/", 5) == 0;
}

/* Executes one command line. Returns data-block bytes consumed after the
 * line; sets *wait if the data block is incomplete, *close to drop the
 * connection. */
static size_t dispatch(struct text_parser *p, const struct proto_conf *cf,
                       const struct proto_sink *sk, void *s, const char *line,
                       size_t len, const char *data, size_t avail, bool *wait,
                       bool *close)
{
    struct tok t[MAX_TOKENS];
    bool more;
    size_t nt = tokenize(line, len, t, &more);
    /* memcached's ntokens counts a terminal token; "nt" here does not. */
    if (more)
        nt = MAX_TOKENS;   /* judged as "too many" by every fixed-arity command */

    if (nt < 1 || t[0].n < 2) {
        text_reply(sk, s, "ERROR");
        return 0;
    }
    const struct tok *c = &t[0];
    char first = c->v[0];

    if (first == 'm' && c->n == 2)
        return meta_dispatch(p, cf, sk, s, line, len, t, more ? MAX_TOKENS - 1 : nt,
                             data, avail, wait);

    if (first == 'g') {
        if (nt < 2) {
            text_reply(sk, s, "ERROR");
            return 0;
        }
        if (tok_is(c, "get"))
            do_get(cf, sk, s, line, len, t, nt, OP_GET);
        else if (tok_is(c, "gets"))
            do_get(cf, sk, s, line, len, t, nt, OP_GETS);
        else if (tok_is(c, "gat"))
            do_get(cf, sk, s, line, len, t, nt, OP_GAT);
        else if (tok_is(c, "gats"))
            do_get(cf, sk, s, line, len, t, nt, OP_GATS);
        else
            text_reply(sk, s, "ERROR");
        return 0;
    }

    static const struct { const char *name; enum req_op op; } stores[] = {
        { "set", OP_SET }, { "add", OP_ADD }, { "replace", OP_REPLACE },
        { "append", OP_APPEND }, { "prepend", OP_PREPEND }, { "cas", OP_CAS },
    };
    for (size_t i = 0; i < sizeof stores / sizeof stores[0]; i++) {
        if (!tok_is(c, stores[i].name))
            continue;
        size_t base = stores[i].op == OP_CAS ? 6 : 5;
        if (nt != base && nt != base + 1) {
            text_reply(sk, s, "ERROR");
            return 0;
        }
        return do_store(p, cf, sk, s, t, nt, stores[i].op, data, avail, wait);
    }

    if (tok_is(c, "incr") || tok_is(c, "decr")) {
        if (nt != 3 && nt != 4)
            text_reply(sk, s, "ERROR");
        else
            do_arith(sk, s, t, nt, c->v[0] == 'i');
    } else if (tok_is(c, "delete")) {
        if (nt < 2 || nt > 4)
            text_reply(sk, s, "ERROR");
        else
            do_delete(sk, s, t, nt);
    } else if (tok_is(c, "touch")) {
        if (nt != 3 && nt != 4)
            text_reply(sk, s, "ERROR");
        else
            do_touch(sk, s, t, nt);
    } else if (tok_is(c, "stats")) {
        const char *arg = nt > 1 ? t[1].v : line + len;
        if (nt > 1 && tok_is(&t[1], "cachedump") && sk->dump) {
            do_cachedump(cf, sk, s, t, nt);
        } else if (nt == 2 && sk->dump && (tok_is(&t[1], "items") || tok_is(&t[1], "slabs") ||
                                           tok_is(&t[1], "conns"))) {
            static const struct { const char *name; enum dump_op op; } walks[] = {
                { "items", DUMP_ITEMS }, { "slabs", DUMP_SLABS }, { "conns", DUMP_CONNS },
            };
            struct dump_req d = {0};
            for (size_t i = 0; i < sizeof walks / sizeof walks[0]; i++)
                if (tok_is(&t[1], walks[i].name))
                    d.op = walks[i].op;
            sk->dump(s, &d);
        } else if (sk->settled && !sk->settled(s)) {
            *wait = true;   /* parsed again once the earlier requests are counted */
        } else {
            struct stats_out so;
            stats_out_text(&so, sk->output(s));
            sk->stats(s, arg, (size_t)(line + len - arg), &so);
        }
    } else if (tok_is(c, "flush_all")) {
        if (nt > 3)
            text_reply(sk, s, "ERROR");
        else
            do_flush(cf, sk, s, t, nt);
    } else if (tok_is(c, "refresh_certs") && sk->refresh_certs) {
        sk->refresh_certs(s, noreply_last(t, nt));
    } else if (tok_is(c, "version")) {
        text_reply(sk, s, "VERSION " PROTO_VERSION);
    } else if (tok_is(c, "verbosity")) {
        if (nt != 2 && nt != 3) {
            text_reply(sk, s, "ERROR");
        } else {
            bool noreply = noreply_last(t, nt);
            uint32_t lvl;
            if (!parse_u32_trunc(t[1].v, t[1].n, &lvl)) {
                out(sk, s, noreply, "CLIENT_ERROR bad command line format");
            } else {
                log_set_verbosity(lvl);   /* -vv's trace starts or stops here */
                out(sk, s, noreply, "OK");
            }
        }
    } else if (tok_is(c, "quit")) {
        sk->quit(s);
        *close = true;
    } else if (tok_is(c, "shutdown")) {
        if (!cf->shutdown_ok)
            text_reply(sk, s, "ERROR: shutdown not enabled");
        else if (nt == 1)
            sk->shutdown(s, false);
        else if (nt == 2 && tok_is(&t[1], "graceful"))
            sk->shutdown(s, true);
        else
            text_reply(sk, s, "CLIENT_ERROR invalid shutdown mode");
    } else if (tok_is(c, "watch")) {
        /* a watch stream reads nothing after the command */
        *close = do_watch(cf, sk, s, t, nt, more);
    } else if (tok_is(c, "lru_crawler")) {
        do_lru_crawler(cf, sk, s, t, nt);
    } else if (tok_is(c, "slabs")) {
        do_slabs(sk, s, t, nt);
    } else if (tok_is(c, "cache_memlimit")) {
        do_memlimit(cf, sk, s, t, nt);
    } else if (tok_is(c, "lru")) {
        /* memcached's segmented-LRU tuning: percore has no LRU to tune
         * (segments, docs/storage.md); accepted as memcached accepts it and
         * shown in `stats settings` (proto/tunables.h). */
        int32_t ttl;
        bool ok = nt == 3 && ((tok_is(&t[1], "mode") &&
                               (tok_is(&t[2], "flat") || tok_is(&t[2], "segmented"))) ||
                              (tok_is(&t[1], "temp_ttl") && parse_i32(t[2].v, t[2].n, &ttl)));
        if (ok && tok_is(&t[1], "mode")) {
            TUNE_SET(lru_segmented, tok_is(&t[2], "segmented"));
        } else if (ok) {
            TUNE_SET(temp_lru, ttl >= 0);
            if (ttl >= 0)
                TUNE_SET(temporary_ttl, ttl);
        }
        text_reply(sk, s, ok ? "OK" : "ERROR");
    } else if (looks_like_http(t, nt, more)) {
        (sk->quit_error ? sk->quit_error : sk->quit)(s);
        *close = true;
    } else {
        text_reply(sk, s, "ERROR");
    }
    return 0;
}

/* The keys after a get line's first, each after one space, all checked
 * before any is sent, as do_get() does. Returns the end of the last key,
 * NULL to leave the line to the general path. The cap bounds the bytes
 * scanned again while a long line is still arriving. Out of line: the
 * single-key get is the common case. */
static __attribute__((noinline)) const char *
get_more_keys(const struct proto_conf *cf, const char *q, const char *end)
{
    unsigned nkeys = 1;
    while (q < end && *q == ' ') {
        const char *k = q + 1;
        size_t klen = fast_key(k, (size_t)(end - k));
        if (klen == 0 || ++nkeys > FAST_GET_KEYS)
            return NULL;
        q = k + klen;
    }
    if (cf->max_get_keys && nkeys > cf->max_get_keys)
        return NULL;
    return q;
}

static inline void get_send(const struct proto_sink *sk, void *s, enum req_op op,
                            const char *key, size_t klen)
{
    struct req r = {0};
    r.op = (uint8_t)op;
    r.proto = PROTO_TEXT;
    r.key = key;
    r.klen = (uint8_t)klen;
    sk->request(s, &r);
}

/* The keys in [key, end) that get_more_keys() passed. */
static __attribute__((noinline)) void
get_send_more(const struct proto_sink *sk, void *s, enum req_op op, const char *key,
              const char *end)
{
    for (;;) {
        size_t klen = word_end(key, (size_t)(end - key));
        get_send(sk, s, op, key, klen);
        key += klen;
        if (key == end)
            break;
        key++;
    }
}

/* The lines nearly every request is: `get <key>...` and `gets <key>...`
 * (up to FAST_GET_KEYS keys) and the plain storage lines text_store_line()
 * takes (set/add/replace/append/prepend, optional noreply), one space
 * between words, plain digits, CRLF or LF. They are recognised in one
 * pass that ends at the line's end, with no newline search, token array or
 * dispatch ladder. Anything else (signs, other blanks, no newline yet, an
 * over-long key, too many keys) returns 0 having done nothing, and the
 * general path judges it as before, so replies cannot differ. Otherwise
 * returns the line's bytes with its terminator; *used and *wait as
 * dispatch() sets them. */
static inline __attribute__((always_inline)) size_t
fast_line(struct text_parser *p, const struct proto_conf *cf, const struct proto_sink *sk,
          void *s, const char *start, size_t avail, size_t *used, bool *wait)
{
    enum req_op op;
    size_t k;
    if (avail < 6)   /* "get k\n" */
        return 0;
    if (memcmp(start, "get ", 4) == 0) {
        op = OP_GET, k = 4;
    } else if (memcmp(start, "gets ", 5) == 0) {
        op = OP_GETS, k = 5;
    } else {
        struct store_line sl;
        size_t line;
        if (!text_store_first(*start) || !(line = text_store_line(start, avail, &sl)))
            return 0;
        if (sk->trace && log_level_now() >= 2)
            sk->trace(s, start, sl.text);
        *used = store_block(p, cf, sk, s, sl.op, sl.key, sl.klen, sl.flags,
                            (int32_t)sl.exptime, (int32_t)sl.vlen, 0, sl.noreply,
                            start + line, avail - line, wait);
        return line;
    }
    const char *end = start + avail, *key = start + k;
    size_t klen = fast_key(key, avail - k);
    if (klen == 0)
        return 0;   /* empty, over KEY_MAX_LENGTH, or the line is not all here */
    const char *q = key + klen;
    if (*q == ' ' && !(q = get_more_keys(cf, q, end)))
        return 0;
    size_t eol = eol_at(q, end);
    if (!eol)
        return 0;
    size_t line = (size_t)(q - start) + eol;
    if (sk->trace && log_level_now() >= 2)
        sk->trace(s, start, (size_t)(q - start));
    get_send(sk, s, op, key, klen);
    if (key + klen != q)
        get_send_more(sk, s, op, key + klen + 1, q);
    buf_add(sk->output(s), "END\r\n", 5);
    *used = 0;
    return line;
}

/* The parser proper, inlined into both entry points below: the table's
 * runs once per read of every connection, so a call layer costs per request. */
static inline __attribute__((always_inline)) ssize_t
parse(struct text_parser *p, const struct proto_conf *cf, const struct proto_sink *sk, void *s,
      const char *data, size_t len, size_t *need)
{
    size_t off = 0;
    *need = 0;
    while (off < len) {
        if (p->swallow) {
            size_t n = len - off < p->swallow ? len - off : (size_t)p->swallow;
            off += n;
            p->swallow -= n;
            continue;
        }
        if (sk->busy(s))
            break;
        const char *start = data + off;
        size_t avail = len - off;
        bool wait = false, close = false;
        size_t used;
        size_t line = fast_line(p, cf, sk, s, start, avail, &used, &wait);
        if (line) {
            if (wait) {
                *need = line + used;
                break;
            }
            off += line + used;
            continue;
        }
        const char *nl = memchr(start, '\n', avail);
        if (!nl) {
            if (avail > LINE_JUNK) {
                const char *q = start;
                while (q < start + avail && *q == ' ')
                    q++;
                size_t rest = (size_t)(start + avail - q);
                bool is_get = (rest >= 4 && memcmp(q, "get ", 4) == 0) ||
                              (rest >= 5 && memcmp(q, "gets ", 5) == 0);
                if (q - start > 100 || !is_get || avail > LINE_GET_MAX)
                    return -1;
                /* A long get line still arriving: ask for one byte more
                 * than is here, so the connection reads past its usual
                 * pause (RBUF_PAUSE) instead of waiting for a newline
                 * it has stopped reading. */
                *need = avail + 1;
            }
            break;
        }
        size_t linelen = (size_t)(nl - start);
        if (linelen > 1 && nl[-1] == '\r')
            linelen--;
        const char *next = nl + 1;
        size_t after = (size_t)(data + len - next);
        if (sk->trace && log_level_now() >= 2)
            sk->trace(s, start, linelen);
        used = dispatch(p, cf, sk, s, start, linelen, next, after, &wait, &close);
        if (wait) {
            /* Whole command not here yet: leave it for the next call. */
            *need = (size_t)(next - start) + used;
            break;
        }
        off = (size_t)(next - data) + used;
        if (close)
            break;   /* quit: the sink has marked the session closing */
    }
    return (ssize_t)off;
}

ssize_t text_parse(struct text_parser *p, const struct proto_conf *cf,
                   const struct proto_sink *sk, void *s,
                   const char *data, size_t len, size_t *need)
{
    return parse(p, cf, sk, s, data, len, need);
}

/* A session's text state is one count, the data bytes still to swallow
 * after a refused value, kept in the session's state word itself rather
 * than behind it: a value is at most INT32_MAX bytes, so the count fits any
 * pointer, and the per-read path neither allocates nor tests for a block. */
static ssize_t text_parse_state(void **state, const struct proto_conf *cf,
                                const struct proto_sink *sk, void *s, const char *data,
                                size_t len, size_t *need)
{
    struct text_parser p = { .swallow = (uintptr_t)*state };
    ssize_t used = parse(&p, cf, sk, s, data, len, need);
    *state = (void *)(uintptr_t)p.swallow;
    return used;
}

static void text_state_free(void **state)
{
    *state = NULL;
}

/* Anything that is not another protocol's is text (memcached). */
static bool text_detect(const char *data, size_t len)
{
    return true;
}

const struct proto_ops proto_text = {
    .name = "ascii", .detect = text_detect, .parse = text_parse_state,
    .state_free = text_state_free,
};
