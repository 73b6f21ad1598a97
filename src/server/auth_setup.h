/*
 * auth_setup.h — start-up of -Y and -S (proto/auth.h does the work): load
 * the credential file, initialise SASL. Main thread, before workers start.
 */
#ifndef PERCORE_AUTH_SETUP_H
#define PERCORE_AUTH_SETUP_H

/* 0, or -1 after logging why the server cannot start. */
int auth_setup(void);
void auth_teardown(void);
/* SIGHUP (main thread): reload the -Y file, as memcached does; logs what
 * happened (also that there was nothing to do). */
void auth_sighup(void);

#endif
