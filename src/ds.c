/* Opening datasets: picks the reader for a format and owns what all readers share. */
#include "ds.h"

#include <stdlib.h>
#include <string.h>

#include "dtype.h"
#include "shape.h"

static const ds_reader *const readers[] = {&ds_raw_reader};

int ds_open(const ds_options *o, ds **out, err *e)
{
    const ds_reader *r = NULL;
    const char *format = o->format ? o->format : "raw";
    for (size_t i = 0; i < sizeof readers / sizeof readers[0]; i++)
        if (!strcmp(readers[i]->name, format))
            r = readers[i];
    if (!r)
        return err_set(e, UH_EUSAGE, "--format: unknown format '%s' (known: raw)", format);
    ds *d = calloc(1, sizeof *d);
    if (!d || !(d->path = strdup(o->path))) {
        free(d);
        return err_set(e, UH_ENOMEM, "out of memory opening %s", o->path);
    }
    d->reader = r;
    int rc = r->open(d, o, e);
    if (rc) {
        free(d->path);
        free(d);
        return rc;
    }
    *out = d;
    return 0;
}

void ds_close(ds *d)
{
    if (!d)
        return;
    d->reader->close(d);
    free(d->path);
    free(d);
}

int ds_shape_from_options(ds *d, const ds_options *o, err *e)
{
    if (!o->nav_ndim)
        return err_set(e, UH_EUSAGE, "%s: the %s format needs --nav-shape", o->path,
                       d->reader->name);
    if (!o->sig_ndim)
        return err_set(e, UH_EUSAGE, "%s: the %s format needs --sig-shape", o->path,
                       d->reader->name);
    if (o->dtype == UDF_DTYPE_NONE)
        return err_set(e, UH_EUSAGE, "%s: the %s format needs --dtype", o->path, d->reader->name);
    if (o->dtype == UDF_BOOL || o->dtype == UDF_U64 || o->dtype == UDF_I64)
        return err_set(e, UH_EUSAGE, "%s: dtype %s is not supported for frame data", o->path,
                       dtype_name(o->dtype));
    d->nav_ndim = o->nav_ndim;
    memcpy(d->nav_shape, o->nav_shape, sizeof d->nav_shape);
    d->sig_ndim = o->sig_ndim;
    memcpy(d->sig_shape, o->sig_shape, sizeof d->sig_shape);
    d->dtype = o->dtype;
    d->big_endian = o->big_endian;
    d->elem_size = udf_dtype_size(o->dtype);
    if (!shape_product(d->nav_shape, d->nav_ndim, &d->num_frames) ||
        !shape_product(d->sig_shape, d->sig_ndim, &d->sig_size) ||
        !size_mul(d->sig_size, d->elem_size, &d->frame_bytes) ||
        d->frame_bytes > (UINT64_MAX >> 1) / d->num_frames)
        return err_set(e, UH_EUSAGE, "%s: nav shape x sig shape x %zu bytes overflows 64 bits",
                       o->path, d->elem_size);
    return 0;
}
