/* Raw binary frames: an optional file header, then frames of fixed size in C order, each with
 * optional per-frame header and footer bytes. The shapes and dtype come from the user. */
#include "ds.h"
#include "shape.h"

static int raw_open(ds *d, const ds_options *o, err *e)
{
    int rc = ds_shape_from_options(d, o, e);
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
