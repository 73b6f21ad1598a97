/*
 * numparse.h — decimal parsing with memcached's acceptance rules (its
 * safe_strto* family): leading blanks and a sign allowed, the number must
 * end the span or be followed by a blank, negative values refused for
 * unsigned fields. Used by the parsers (tokens) and by the store (incr on
 * a stored value). Pure functions, any thread.
 */
#ifndef PERCORE_NUMPARSE_H
#define PERCORE_NUMPARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

bool parse_u32_trunc(const char *s, size_t n, uint32_t *out);
bool parse_i32(const char *s, size_t n, int32_t *out);
bool parse_u64(const char *s, size_t n, uint64_t *out);

#endif
