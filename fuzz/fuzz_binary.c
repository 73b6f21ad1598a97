/*
 * fuzz_binary.c — libFuzzer target for the binary protocol: the real
 * bin_parse() feeding the real executors on a real store, through the
 * connection-like sink of fuzz_harness.h. Single-threaded.
 */
#include "fuzz_harness.h"

/* Declared where the connection uses them (conn.c), defined in bin_parse.c. */
ssize_t bin_parse(struct conn *c, const struct proto_conf *cf, const struct proto_sink *sk,
                  const char *data, size_t len, size_t *need);
void bin_conn_free(struct conn *c);

static ssize_t fz_parse(struct session *ss, const struct proto_conf *cf,
                        const struct proto_sink *sk, const char *data, size_t len,
                        size_t *need)
{
    return bin_parse(&ss->c, cf, sk, data, len, need);
}

static void fz_session_end(struct session *ss)
{
    bin_conn_free(&ss->c);
}
