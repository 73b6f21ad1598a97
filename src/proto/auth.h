/*
 * auth.h — client authentication, as memcached defines it, kept in the
 * protocol layer so it works over any transport (TCP, UNIX socket, TLS):
 *
 *  - -Y FILE (auth_file.c, auth_ascii.c): `user:password` lines; a text
 *    session's first command must be a `set` whose data is "user password".
 *    Until then every line is answered `CLIENT_ERROR unauthenticated`.
 *  - -S (auth_sasl.c, bin_parse.c): Cyrus SASL over the binary protocol's
 *    SASL opcodes; until a mechanism succeeds, any other command but
 *    VERSION is answered "Auth failure." and the connection closes.
 *
 * Who owns what: the credential table and the SASL library state are set
 * up by the main thread before any worker starts and only read afterwards;
 * a session's authentication state (the gate's parser state, a SASL
 * connection) belongs to the session's worker. Nothing here logs a
 * password or a SASL exchange.
 */
#ifndef PERCORE_AUTH_H
#define PERCORE_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include "proto/proto.h"

/* -Y: load the file (main thread: before workers, and on SIGHUP while
 * they run; a failed load keeps the entries in use). Returns 0, or -1 with
 * memcached's message in err. */
int authfile_load(const char *path, char *err, size_t errlen);
/* Every table loaded (main thread, after the workers stopped). */
void authfile_free(void);
/* True when user/pass match an entry; compares in time independent of
 * where the bytes differ. Any thread once loaded. */
bool authfile_check(const char *user, size_t ulen, const char *pass, size_t plen);
/* Entries loaded (start-up log). */
unsigned authfile_entries(void);

/* The text protocol behind the -Y gate: a session's parser table when
 * cf->auth_ascii, else `p` itself. */
const struct proto_ops *proto_auth_gate(const struct proto_ops *p, const struct proto_conf *cf);
/* Whether a session speaks text (either table), for the -vv trace. */
bool proto_is_text(const struct proto_ops *p);

/* A -S exchange's outcome (auth_sasl.c). */
enum sasl_res { SASL_RES_OK, SASL_RES_CONTINUE, SASL_RES_FAIL };

/* -S: initialise Cyrus SASL under memcached's application name, reading
 * its configuration (mech_list, sasldb_path, ...) from $SASL_CONF_PATH,
 * else /etc/sasl/memcached.conf or /etc/sasl2/memcached.conf. Main thread,
 * before workers. Returns 0, or -1 with the reason in err. */
int sasl_setup(char *err, size_t errlen);
void sasl_teardown(void);
/* The mechanisms offered, space separated (`mech_list` in the config):
 * a pointer valid until sasl_teardown, and its length. */
const char *sasl_mechs(size_t *len);

/* One session's SASL conversation. NULL until its first SASL command. */
struct sasl_session;
/* Start (`step` false: mechanism `mech`, client's first message `in`) or
 * continue one; the server's reply (a challenge or final data) in
 * out and outlen, valid until the next call on this session. A NULL *ss is
 * created here; a creation failure is SASL_RES_FAIL. */
enum sasl_res sasl_exchange(struct sasl_session **ss, bool step, const char *mech,
                            size_t mechlen, const char *in, size_t inlen,
                            const char **out, unsigned *outlen);
void sasl_session_free(struct sasl_session **ss);

#endif
