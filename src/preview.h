/* Preview images of result buffers (--preview): 8-bit PNG pictures of 2-D arrays, with linear or
 * log scaling, a percentile contrast stretch, and a diverging colormap for signed fields. */
#ifndef UDFHOST_PREVIEW_H
#define UDFHOST_PREVIEW_H

#include <stdint.h>
#include <udfhost/udf.h>

#include "err.h"

typedef enum preview_scale { PREVIEW_LINEAR, PREVIEW_LOG } preview_scale;

/* Write rows x cols values of dtype (native byte order, C order) as an 8-bit PNG at path (written
 * to a temporary name in the same directory and renamed). Grey for data that is not signed
 * around zero; for signed data (both signs present) a diverging blue-white-red map symmetric
 * about 0. Contrast: the 0.5 and 99.5 percentiles of the finite values map to black and white
 * (log: of log1p(x - min)); NaN is drawn dark red. Returns 0 or UH_EIO / UH_ENOMEM naming path. */
int preview_write_png(const char *path, const void *data, udf_dtype dtype, uint64_t rows,
                      uint64_t cols, preview_scale scale, err *e);

/* The same PNG written straight to path, which must not exist (it is created with O_EXCL and
 * removed again on failure): for callers that write to a temporary name and rename it
 * themselves, as results_write does. */
int preview_write_png_new(const char *path, const void *data, udf_dtype dtype, uint64_t rows,
                          uint64_t cols, preview_scale scale, err *e);

#endif
