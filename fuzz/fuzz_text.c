/*
 * fuzz_text.c — libFuzzer target for the text and meta protocols: the real
 * proto_text parser (meta commands included) feeding the real executors on
 * a real store, through the connection-like sink of fuzz_harness.h.
 * Single-threaded.
 */
#include "fuzz_harness.h"

static ssize_t fz_parse(struct session *ss, const struct proto_conf *cf,
                        const struct proto_sink *sk, const char *data, size_t len,
                        size_t *need)
{
    return proto_text.parse(&ss->pstate, cf, sk, ss, data, len, need);
}

static void fz_session_end(struct session *ss)
{
    proto_text.state_free(&ss->pstate);
}
