/* Detector corrections applied by the host while it converts frames, so plugins see corrected
 * data: dark frame subtracted, gain map multiplied, excluded (dead, hot) pixels replaced by the
 * mean of their valid neighbours. Corrected data is floating point: with corrections, plugins
 * see the dataset's dtype as float32 (float64 when the data is float64). */
#ifndef UDFHOST_CORR_H
#define UDFHOST_CORR_H

#include <stdbool.h>
#include <stdint.h>
#include <udfhost/udf.h>

#include "ds.h"
#include "err.h"
#include "npy.h"

typedef struct corrections {
    bool active;        /* any correction given */
    float *dark32, *gain32; /* sig_size values each, or NULL */
    double *dark64, *gain64;
    /* Excluded pixels (flat sig indices, ascending) and, for each, its valid neighbours:
     * nb[nb_start[i] .. nb_start[i + 1]). */
    uint64_t n_excluded;
    uint64_t *excluded;
    uint64_t *nb_start;
    uint64_t *nb;
} corrections;

/* Load the corrections for dataset d from .npy files (each path may be NULL):
 *   dark, gain: an array of the sig shape (any numeric dtype);
 *   excluded: a bool array of the sig shape (true = excluded), an integer array of the sig shape
 *   (non-zero = excluded), or an integer array (K, sig_ndim) of pixel coordinates.
 * Neighbours of a pixel are the up to 8 pixels around it in the last two sig axes (2 along a 1-D
 * signal) that are not excluded themselves. Returns 0, or UH_EDATA naming the file and problem. */
int corr_load(corrections *c, const ds *d, const char *dark, const char *gain,
              const char *excluded, err *e);

/* A correction array in memory (native byte order, C order), named in messages by name: the
 * file it came from, or what the caller calls it. */
typedef struct corr_array {
    const char *name;
    npy_info info; /* dtype, ndim, shape and data_bytes are read */
    const void *data;
} corr_array;

/* corr_load from arrays in memory (each may be NULL); the arrays are copied as needed. */
int corr_set(corrections *c, const ds *d, const corr_array *dark, const corr_array *gain,
             const corr_array *excluded, err *e);

void corr_free(corrections *c);

/* The dtype plugins see for stored dtype raw when corrections are active. */
udf_dtype corr_dtype(udf_dtype raw);

/* Correct n frames of data (dtype F32 or F64), pixels [p0, p0 + np) of each, frame f at
 * data + f * stride elements. Excluded pixels are patched only when the tile holds whole frames
 * (p0 == 0, np == sig_size); the runner asks for whole frames when there are excluded pixels. */
void corr_apply(const corrections *c, void *data, udf_dtype dt, uint64_t n, uint64_t stride,
                uint64_t p0, uint64_t np, uint64_t sig_size);

#endif
