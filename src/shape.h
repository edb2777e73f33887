/* Shapes and sizes: parsing "256,256" from the command line and overflow-checked arithmetic on
 * element counts and byte sizes that come from flags or file headers. */
#ifndef UDFHOST_SHAPE_H
#define UDFHOST_SHAPE_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"

/* Parse a shape written as comma- or 'x'-separated positive integers ("256,256", "16x64x64") into
 * dims[0..*ndim), at most max_ndim dims. `what` names the value in messages ("--nav-shape").
 * Rejects empty parts, zero, signs, junk and products that overflow uint64. */
int shape_parse(const char *text, const char *what, uint32_t max_ndim, uint64_t *dims,
                uint32_t *ndim, err *e);

/* Product of dims into *out; false on uint64 overflow. ndim 0 gives 1. */
bool shape_product(const uint64_t *dims, uint32_t ndim, uint64_t *out);

/* Format dims as "256,256" into buf (always NUL-terminated). */
void shape_format(const uint64_t *dims, uint32_t ndim, char *buf, unsigned long cap);

/* Overflow-checked helpers: false on overflow. */
static inline bool size_mul(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool size_add(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}

/* Parse a byte size: a non-negative integer with an optional K, M, G or T suffix (powers of
 * 1024; "KiB" and "MB" spellings accepted). Returns 0 or UH_EUSAGE naming `what`. */
int size_parse(const char *text, const char *what, uint64_t *out, err *e);

/* Parse a non-negative decimal integer that must fit in max; UH_EUSAGE naming `what` otherwise. */
int uint_parse(const char *text, const char *what, uint64_t max, uint64_t *out, err *e);

#endif
