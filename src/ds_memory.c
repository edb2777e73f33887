/* Memory datasets: frames in an array the caller owns (a NumPy array from Python), read in
 * place with no copy. */
#include <stdlib.h>
#include <string.h>

#include "ds.h"
#include "dtype.h"
#include "shape.h"

static int memory_read(ds *d, uint64_t first, uint64_t count, void *scratch,
                       const unsigned char **data, size_t *stride, err *e)
{
    (void)count;
    (void)scratch;
    (void)e;
    *data = (const unsigned char *)d->state + first * d->frame_bytes;
    *stride = d->frame_bytes;
    return 0;
}

/* The memory is the caller's: nothing to free but what ds_close frees. */
static void memory_close(ds *d)
{
    (void)d;
}

static const ds_reader ds_memory_reader = {
    .name = "memory",
    .read = memory_read,
    .close = memory_close,
};

int ds_open_memory(const void *data, udf_dtype dtype, uint32_t ndim, const uint64_t *shape,
                   uint32_t sig_dims, ds **out, err *e)
{
    if (!data)
        return err_set(e, UH_EUSAGE, "memory dataset: no data");
    if (dtype == UDF_DTYPE_NONE || dtype == UDF_BOOL || dtype == UDF_U64 || dtype == UDF_I64)
        return err_set(e, UH_EUSAGE, "memory dataset: dtype %s is not supported for frame data "
                       "(uint8 uint16 uint32 int8 int16 int32 float32 float64 are)",
                       dtype == UDF_DTYPE_NONE ? "?" : dtype_name(dtype));
    if (sig_dims < 1 || sig_dims > UDF_MAX_DIMS)
        return err_set(e, UH_EUSAGE, "memory dataset: sig_dims must be 1 to %d, not %u",
                       UDF_MAX_DIMS, sig_dims);
    if (ndim <= sig_dims || ndim - sig_dims > UDF_MAX_DIMS)
        return err_set(e, UH_EUSAGE, "memory dataset: an array of %u dimensions with %u signal "
                       "dimensions needs 1 to %d navigation dimensions before them", ndim,
                       sig_dims, UDF_MAX_DIMS);
    for (uint32_t i = 0; i < ndim; i++)
        if (!shape[i])
            return err_set(e, UH_EUSAGE, "memory dataset: the array has an empty dimension %u",
                           i);
    ds *d = calloc(1, sizeof *d);
    if (!d || !(d->path = strdup("<memory>"))) {
        free(d);
        return err_set(e, UH_ENOMEM, "out of memory for a memory dataset");
    }
    d->reader = &ds_memory_reader;
    d->nav_ndim = ndim - sig_dims;
    memcpy(d->nav_shape, shape, d->nav_ndim * sizeof *shape);
    d->sig_ndim = sig_dims;
    memcpy(d->sig_shape, shape + d->nav_ndim, sig_dims * sizeof *shape);
    d->dtype = dtype;
    d->big_endian = host_is_big_endian();
    d->elem_size = udf_dtype_size(dtype);
    if (!shape_product(d->nav_shape, d->nav_ndim, &d->num_frames) ||
        !shape_product(d->sig_shape, d->sig_ndim, &d->sig_size) ||
        !size_mul(d->sig_size, d->elem_size, &d->frame_bytes) ||
        !size_mul(d->frame_bytes, d->num_frames, &d->file_bytes)) {
        ds_close(d);
        return err_set(e, UH_EUSAGE, "memory dataset: its size overflows 64 bits");
    }
    d->io = "memory";
    d->file_frames = d->num_frames;
    d->state = (void *)data;
    *out = d;
    return 0;
}
