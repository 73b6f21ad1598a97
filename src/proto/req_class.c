/*
 * req_class.c — compile-time check behind req_class.h's reading of a meta
 * request's first aux byte. No state.
 */
#include <stddef.h>
#include "proto/meta.h"
#include "proto/req_class.h"

_Static_assert(offsetof(struct meta_hdr, cmd) == 0, "req_class() reads the meta command first");
