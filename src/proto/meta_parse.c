/*
 * meta_parse.c — the meta protocol's parser (mg/ms/md/ma/mn/me): validates a
 * tokenized command line exactly as memcached 1.6 does (same checks in the
 * same order, same error strings), then builds one keyed request whose aux
 * carries the parsed flags (see meta.h) for meta_exec() on the key's owner.
 * Runs on the connection's worker; no state beyond the text parser's.
 */
#include <string.h>
#include "proto/meta.h"
#include "proto/text_internal.h"

static const char ERR_FORMAT[] = "CLIENT_ERROR bad command line format";

/* ---- base64, as memcached's (Jouni Malinen's) variant behaves ---------- */

static const char b64_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_val(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9') return ch - '0' + 52;
    if (ch == '+') return 62;
    if (ch == '/') return 63;
    if (ch == '=') return 0;
    return -1;
}

size_t meta_b64_decode(const char *in, size_t n, unsigned char *out, size_t cap)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        if (b64_val((unsigned char)in[i]) >= 0)
            count++;
    if (count == 0 || count % 4)
        return 0;
    if (count / 4 * 3 > cap)
        return 0;
    size_t pos = 0, k = 0;
    unsigned pad = 0;
    unsigned char blk[4];
    for (size_t i = 0; i < n; i++) {
        int v = b64_val((unsigned char)in[i]);
        if (v < 0)
            continue;
        if (in[i] == '=')
            pad++;
        blk[k++] = (unsigned char)v;
        if (k == 4) {
            out[pos++] = (unsigned char)((blk[0] << 2) | (blk[1] >> 4));
            out[pos++] = (unsigned char)((blk[1] << 4) | (blk[2] >> 2));
            out[pos++] = (unsigned char)((blk[2] << 6) | blk[3]);
            k = 0;
            if (pad) {
                if (pad == 1)
                    pos--;
                else if (pad == 2)
                    pos -= 2;
                else
                    return 0;
                break;
            }
        }
    }
    return pos;
}

size_t meta_b64_encode(const unsigned char *in, size_t n, char *out, size_t cap)
{
    size_t need = (n + 2) / 3 * 4;
    if (need > cap)
        return 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned a = in[i], b = i + 1 < n ? in[i + 1] : 0, c = i + 2 < n ? in[i + 2] : 0;
        out[o++] = b64_chars[a >> 2];
        out[o++] = b64_chars[((a & 3) << 4) | (b >> 4)];
        out[o++] = i + 1 < n ? b64_chars[((b & 15) << 2) | (c >> 6)] : '=';
        out[o++] = i + 2 < n ? b64_chars[c & 63] : '=';
    }
    return o;
}

/* ---- flags ------------------------------------------------------------- */

struct meta_req {
    struct meta_hdr h;
    char  text[META_MAX_TOKENS * (META_OPAQUE_MAX + 1)];
    unsigned char key[KEY_MAX_LENGTH];
    const char *kp;
    size_t klen;
};

/* memcached's _meta_flag_preparse: one pass over the flag tokens. Returns
 * the error string to send, or NULL. Errors found by some flags do not stop
 * the scan (a later one may overwrite the message), as in memcached. */
static const char *preparse(const struct tok *t, size_t start, size_t nt, struct meta_req *m)
{
    unsigned char seen[128] = {0};
    const char *err = ERR_FORMAT;
    bool bad = false;
    for (size_t i = start; i < nt; i++) {
        unsigned char o = (unsigned char)t[i].v[0];
        if (o >= 127 || seen[o])
            return "CLIENT_ERROR duplicate flag";
        seen[o] = 1;
        const char *a = t[i].v + 1;
        size_t an = t[i].n - 1;
        switch (o) {
        case 'b': {
            size_t n = meta_b64_decode(m->kp, m->klen, m->key, sizeof m->key);
            if (n == 0) {
                err = "CLIENT_ERROR error decoding key";
                bad = true;
            }
            m->kp = (const char *)m->key;
            m->klen = n;
            m->h.bits |= MF_BINKEY;
            break;
        }
        case 'N':
        case 'T':
        case 'R': {
            int32_t v;
            if (!parse_i32(a, an, &v)) {
                err = "CLIENT_ERROR bad token in command line format";
                bad = true;
            } else if (o == 'N') {
                m->h.viv_ttl = v;
                m->h.bits |= MF_VIVIFY;
            } else if (o == 'T') {
                m->h.ttl = v;
                m->h.bits |= MF_NEWTTL;
            } else {
                m->h.recache = v;
                m->h.bits |= MF_RECACHE;
            }
            break;
        }
        case 'O': case 'P': case 'L': case 'k': case 's': case 't':
        case 'c': case 'f': case 'h': case 'l':
            break;
        case 'v': m->h.bits |= MF_VALUE; break;
        case 'u': m->h.bits |= MF_NOBUMP; break;
        case 'q': m->h.bits |= MF_NOREPLY; break;
        case 'I': m->h.bits |= MF_STALE; break;
        case 'F':
            if (!parse_u32_trunc(a, an, &m->h.client_flags))
                bad = true;
            break;
        case 'C':
            if (!parse_u64(a, an, &m->h.cas)) {
                err = "CLIENT_ERROR bad token in command line format";
                bad = true;
            } else {
                m->h.bits |= MF_CAS;
            }
            break;
        case 'M':
            if (t[i].n != 2) {
                err = "CLIENT_ERROR incorrect length for M token";
                bad = true;
            } else {
                m->h.mode = t[i].v[1];
            }
            break;
        case 'J':
            if (!parse_u64(a, an, &m->h.initial)) {
                err = "CLIENT_ERROR invalid numeric initial value";
                bad = true;
            }
            break;
        case 'D':
            if (!parse_u64(a, an, &m->h.delta)) {
                err = "CLIENT_ERROR invalid numeric delta value";
                bad = true;
            }
            break;
        default:
            return "CLIENT_ERROR invalid flag";
        }
    }
    return bad ? err : NULL;
}

/* Keep what the executor needs to answer in request order: each flag's
 * letter, and O tokens whole. Returns false if an O token is too long. */
static bool compact(const struct tok *t, size_t start, size_t nt, struct meta_req *m)
{
    size_t n = 0;
    for (size_t i = start; i < nt; i++) {
        if (n)
            m->text[n++] = ' ';
        if (t[i].v[0] == 'O') {
            if (t[i].n > META_OPAQUE_MAX)
                return false;
            memcpy(m->text + n, t[i].v, t[i].n);
            n += t[i].n;
        } else {
            m->text[n++] = t[i].v[0];
        }
    }
    m->h.ntext = (uint16_t)n;
    return true;
}

static void submit(const struct proto_sink *sk, void *s, struct meta_req *m,
                   const char *val, size_t vlen)
{
    char aux[sizeof m->h + sizeof m->text];
    memcpy(aux, &m->h, sizeof m->h);
    memcpy(aux + sizeof m->h, m->text, m->h.ntext);
    struct req r = {0};
    r.op = OP_META;
    r.proto = PROTO_META;
    r.noreply = (m->h.bits & MF_NOREPLY) != 0;
    r.key = m->kp;
    r.klen = (uint8_t)m->klen;
    r.val = val;
    r.vlen = (uint32_t)vlen;
    r.aux = aux;
    r.auxlen = (uint32_t)(sizeof m->h + m->h.ntext);
    sk->request(s, &r);
}

static void meta_init(struct meta_req *m, char cmd, const struct tok *key)
{
    memset(&m->h, 0, sizeof m->h);
    m->h.cmd = cmd;
    m->h.delta = 1;
    m->kp = key->v;
    m->klen = key->n;
}

/* me <key> [b]: memcached's debug dump; only a 'b' right after the key counts. */
static void do_me(const struct proto_sink *sk, void *s, const struct tok *t, size_t nt)
{
    struct meta_req m;
    if (nt < 2 || t[1].n > KEY_MAX_LENGTH) {
        text_reply(sk, s, ERR_FORMAT);
        return;
    }
    meta_init(&m, 'e', &t[1]);
    if (nt >= 3 && t[2].n == 1 && t[2].v[0] == 'b') {
        size_t n = meta_b64_decode(t[1].v, t[1].n, m.key, sizeof m.key);
        if (n == 0) {
            text_reply(sk, s, ERR_FORMAT);
            return;
        }
        m.kp = (const char *)m.key;
        m.klen = n;
        m.h.bits |= MF_BINKEY;
    }
    submit(sk, s, &m, NULL, 0);
}

/* mg / md / ma: no data block. */
static void do_keyed(const struct proto_sink *sk, void *s, const struct tok *t, size_t nt,
                     char cmd)
{
    struct meta_req m;
    if (nt < 2) {
        text_reply(sk, s, "ERROR");
        return;
    }
    if (t[1].n > KEY_MAX_LENGTH) {
        text_reply(sk, s, ERR_FORMAT);
        return;
    }
    if (nt + 1 > META_MAX_TOKENS) {
        text_reply(sk, s, cmd == 'g' ? "CLIENT_ERROR options flags are too long"
                                     : "CLIENT_ERROR options flags too long");
        return;
    }
    meta_init(&m, cmd, &t[1]);
    const char *err = preparse(t, 2, nt, &m);
    if (err) {
        text_reply(sk, s, cmd == 'g' ? err : "CLIENT_ERROR invalid or duplicate flag");
        return;
    }
    if (cmd == 'a') {
        char md = m.h.mode;
        if (md != 0 && md != 'I' && md != '+' && md != 'D' && md != '-') {
            text_reply(sk, s, "CLIENT_ERROR invalid mode for ma M token");
            return;
        }
    }
    if (!compact(t, 2, nt, &m)) {
        text_reply(sk, s, "CLIENT_ERROR opaque token too long");
        return;
    }
    submit(sk, s, &m, NULL, 0);
}

/* ms <key> <datalen> <flags>*: like do_store in text_parse.c, errors found
 * after the length is known swallow the data block as memcached does. */
static size_t do_ms(struct text_parser *p, const struct proto_conf *cf,
                    const struct proto_sink *sk, void *s, const struct tok *t, size_t nt,
                    const char *data, size_t avail, bool *wait)
{
    struct meta_req m;
    int32_t vlen;
    if (nt < 2) {
        text_reply(sk, s, "ERROR");
        return 0;
    }
    if (t[1].n > KEY_MAX_LENGTH || nt == 2) {
        text_reply(sk, s, ERR_FORMAT);
        return 0;
    }
    if (nt + 1 > META_MAX_TOKENS) {
        text_reply(sk, s, "CLIENT_ERROR options flags too long");
        return 0;
    }
    if (!parse_i32(t[2].v, t[2].n, &vlen) || vlen < 0 || vlen > INT32_MAX - 2) {
        text_reply(sk, s, ERR_FORMAT);
        return 0;
    }
    size_t total = (size_t)vlen + 2;
    meta_init(&m, 's', &t[1]);
    const char *err = preparse(t, 3, nt, &m);
    if (!err) {
        char md = m.h.mode;
        if (md != 0 && md != 'E' && md != 'A' && md != 'P' && md != 'R' && md != 'S')
            err = "CLIENT_ERROR invalid mode for ms M token";
        else if (!compact(t, 3, nt, &m))
            err = "CLIENT_ERROR opaque token too long";
    }
    if (!err && proto_too_large(cf, t[1].n, m.h.client_flags, (size_t)vlen)) {
        err = "SERVER_ERROR object too large for cache";
        /* memcached drops the old value when it cannot store the new one. */
        text_reply(sk, s, err);
        proto_refuse_large(sk, s, m.kp, m.klen, true);
        p->swallow = total;
        return 0;
    }
    if (err) {
        text_reply(sk, s, err);
        p->swallow = total;
        return 0;
    }
    if (avail < total) {
        *wait = true;
        return total;
    }
    if (data[vlen] != '\r' || data[vlen + 1] != '\n') {
        text_reply(sk, s, "CLIENT_ERROR bad data chunk");
        return total;
    }
    submit(sk, s, &m, data, (size_t)vlen);
    return total;
}

size_t meta_dispatch(struct text_parser *p, const struct proto_conf *cf,
                     const struct proto_sink *sk, void *s, const char *line,
                     size_t len, const struct tok *t, size_t nt,
                     const char *data, size_t avail, bool *wait)
{
    switch (t[0].v[1]) {
    case 'n':
        text_reply(sk, s, "MN");
        break;
    case 'g':
    case 'd':
    case 'a':
        do_keyed(sk, s, t, nt, t[0].v[1]);
        break;
    case 's':
        return do_ms(p, cf, sk, s, t, nt, data, avail, wait);
    case 'e':
        do_me(sk, s, t, nt);
        break;
    default:
        text_reply(sk, s, "ERROR");
        break;
    }
    return 0;
}
