/* Small arrays read whole from a file: masks, ROIs, dark frames, gain maps. NumPy .npy files and
 * TIFF images or page stacks (via libtiff), told apart by their first bytes. */
#ifndef UDFHOST_ARRAY_H
#define UDFHOST_ARRAY_H

#include <stdint.h>

#include "err.h"
#include "npy.h"

/* Read the array in `path` into a malloc'ed buffer in *data (caller frees), native byte order,
 * C order, and describe it in *info (dtype, ndim, shape, data_bytes; the other fields as for
 * npy_read_file). A TIFF of one page is (rows, columns); of several pages of equal size and type,
 * (pages, rows, columns). TIFF pages must have one sample per pixel of 8, 16 or 32-bit integers
 * or 32 or 64-bit floats, any compression libtiff decodes, strips or tiles. max_bytes bounds the
 * data. Returns 0, or UH_EDATA / UH_ENOMEM with a message naming path and problem. */
int array_read_file(const char *path, uint64_t max_bytes, npy_info *info, void **data, err *e);

/* The dtype of TIFF samples of SampleFormat `format` (1 uint, 2 int, 3 float) and `bits` bits,
 * or UDF_DTYPE_NONE when udfhost has none for them. */
udf_dtype array_tiff_dtype(uint16_t format, uint16_t bits);

#endif
