/* Raw binary frames: an optional file header, then frames of fixed size in C order, each with
 * optional per-frame header and footer bytes. The shapes and dtype come from the user; without
 * --nav-shape, the nav is 1-D over every whole frame the file holds. */
#include <errno.h>
#include <sys/stat.h>

#include "ds.h"
#include "dtype.h"
#include "shape.h"

/* The number of whole frames in the file after the offset. */
static int count_frames(const ds_options *o, uint64_t *frames, err *e)
{
    if (!o->sig_ndim || o->dtype == UDF_DTYPE_NONE)
        return err_set(e, UH_EUSAGE, "%s: the raw format needs --dtype and --sig-shape", o->path);
    struct stat st;
    if (stat(o->path, &st))
        return err_sys(e, UH_EDATA, errno, "%s: cannot open", o->path);
    uint64_t pixels, bytes, stride, lead;
    if (!shape_product(o->sig_shape, o->sig_ndim, &pixels) ||
        !size_mul(pixels, udf_dtype_size(o->dtype), &bytes) ||
        !size_add(bytes, o->frame_header, &stride) || !size_add(stride, o->frame_footer, &stride) ||
        !size_add(o->offset, o->frame_header, &lead) || !size_add(lead, bytes, &lead))
        return err_set(e, UH_EUSAGE, "%s: the given shape and offsets overflow 64 bits", o->path);
    uint64_t size = (uint64_t)st.st_size;
    if (size < lead)
        return err_set(e, UH_EDATA, "%s: file too short: it holds no whole frame of %llu bytes "
                       "after offset %llu", o->path, (unsigned long long)bytes,
                       (unsigned long long)o->offset);
    *frames = (size - lead) / stride + 1;
    return 0;
}

static int raw_open(ds *d, const ds_options *o, err *e)
{
    ds_options with_nav = *o;
    if (!o->nav_ndim) {
        int rc = count_frames(o, &with_nav.nav_shape[0], e);
        if (rc)
            return rc;
        with_nav.nav_ndim = 1;
    }
    int rc = ds_shape_from_options(d, &with_nav, e);
    if (rc)
        return rc;
    uint64_t stride, first;
    if (!size_add(d->frame_bytes, o->frame_header, &stride) ||
        !size_add(stride, o->frame_footer, &stride) ||
        !size_add(o->offset, o->frame_header, &first))
        return err_set(e, UH_EUSAGE, "%s: the given shape and offsets overflow 64 bits", o->path);
    return ds_map_frames(d, o->path, first, stride, e);
}

const ds_reader ds_raw_reader = {
    .name = "raw",
    .extensions = ".raw|.bin|.dat",
    .open = raw_open,
    .read = ds_map_read,
    .release = ds_map_release,
    .close = ds_map_close,
};
