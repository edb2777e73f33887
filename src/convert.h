/* Dtype conversion of frame data while it is copied into a worker's tile buffer: one pass per
 * tile, the dtype switch once per call, plain loops the compiler vectorises. */
#ifndef UDFHOST_CONVERT_H
#define UDFHOST_CONVERT_H

#include <stdbool.h>
#include <stddef.h>
#include <udfhost/udf.h>

/* Convert n elements of src (dtype s; byte-swapped first when swap) into dst of dtype d. d is
 * UDF_F32, UDF_F64, or s itself (then this is a copy or a byte swap). Integers convert to floats
 * as C does (exact in F64; rounded to nearest in F32 above 2^24). dst and src do not overlap;
 * src need not be aligned (it may be a file mapping at any offset). Returns false for an
 * unsupported pair. */
bool convert_run(void *restrict dst, udf_dtype d, const void *restrict src, udf_dtype s, bool swap,
                 size_t n);

#endif
