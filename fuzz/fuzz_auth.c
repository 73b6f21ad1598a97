/*
 * fuzz_auth.c — libFuzzer target for the -Y login gate (proto/auth_ascii.c)
 * in front of the real text parser, executors and store, through the
 * connection-like sink of fuzz_harness.h; the credential file holds
 * "alice:pw" (the dictionary's login reaches the parser behind it).
 * Single-threaded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "proto/auth.h"
#include "fuzz_harness.h"

static const struct proto_ops *gate(const struct proto_conf *cf, struct proto_conf *mine)
{
    static bool loaded;
    if (!loaded) {
        char path[] = "/tmp/percore-fuzz-auth-XXXXXX", err[256];
        int fd = mkstemp(path);
        if (fd < 0 || write(fd, "alice:pw\n", 9) != 9)
            abort();
        close(fd);
        if (authfile_load(path, err, sizeof err) < 0)
            abort();
        unlink(path);
        loaded = true;
    }
    *mine = *cf;
    mine->auth_ascii = true;
    return proto_auth_gate(&proto_text, mine);
}

static ssize_t fz_parse(struct session *ss, const struct proto_conf *cf,
                        const struct proto_sink *sk, const char *data, size_t len,
                        size_t *need)
{
    struct proto_conf mine;
    const struct proto_ops *ops = gate(cf, &mine);
    return ops->parse(&ss->pstate, &mine, sk, ss, data, len, need);
}

static void fz_session_end(struct session *ss)
{
    struct proto_conf mine;
    gate(&(struct proto_conf){0}, &mine)->state_free(&ss->pstate);
}
