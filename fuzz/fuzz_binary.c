/*
 * fuzz_binary.c — libFuzzer target for the binary protocol: the real
 * proto_binary parser feeding the real executors on a real store, through
 * the connection-like sink of fuzz_harness.h. Single-threaded.
 */
#include "fuzz_harness.h"

static ssize_t fz_parse(struct session *ss, const struct proto_conf *cf,
                        const struct proto_sink *sk, const char *data, size_t len,
                        size_t *need)
{
    return proto_binary.parse(&ss->pstate, cf, sk, ss, data, len, need);
}

static void fz_session_end(struct session *ss)
{
    proto_binary.state_free(&ss->pstate);
}
