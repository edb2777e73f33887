/* Element types on the host side: names as users and NumPy spell them, sizes, and the byte order
 * of stored data. The dtype numbers themselves are the SDK's udf_dtype. */
#ifndef UDFHOST_DTYPE_H
#define UDFHOST_DTYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <udfhost/udf.h>

/* Canonical name ("uint16", "float32", "bool"); "?" for anything else. */
const char *dtype_name(udf_dtype d);

/* Parse a dtype as a user or NumPy writes it: "uint16", "u2", "<u2", ">f4", "=i4", "|u1", "b1",
 * "float64", "bool". *big_endian is true when the text says '>', or says '=' on a big-endian host;
 * *explicit_order is true when the text carries '<', '>' or '=' (then it overrides a separate
 * byte-order option). Returns 0, or -1 if the text names no supported dtype. */
int dtype_parse(const char *text, udf_dtype *d, bool *big_endian, bool *explicit_order);

/* NumPy's descr for d in the given byte order, e.g. "<u2", "|u1", "|b1". */
const char *dtype_descr(udf_dtype d, bool big_endian);

bool dtype_is_float(udf_dtype d);
bool dtype_is_signed(udf_dtype d);

/* True on a big-endian host. */
static inline bool host_is_big_endian(void)
{
    const union { uint16_t u; unsigned char c[2]; } probe = {.u = 1};
    return probe.c[0] == 0;
}

#endif
