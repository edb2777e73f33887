/* Results as images for other programs: float32 TIFF (--save-format tiff) that ImageJ/Fiji open. */
#ifndef UDFHOST_IMGOUT_H
#define UDFHOST_IMGOUT_H

#include <stdint.h>
#include <udfhost/udf.h>

#include "err.h"

/* Write an array of ndim dims (C order, native byte order, dtype) as a float32 TIFF at path:
 * the last two dims are the image, any leading dims are pages (an ImageJ stack). 1-D arrays are
 * one row. Returns 0 or UH_EIO naming path. The caller handles temporary naming. */
int imgout_write_tiff(const char *path, const void *data, udf_dtype dtype, uint32_t ndim,
                      const uint64_t *shape, err *e);

#endif
