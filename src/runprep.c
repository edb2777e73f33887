/* What a run needs besides the runner, shared by `udfhost run` and the library: the ROI, the
 * frame selection plugins ask for, the dataset as plugins see it, the default thread count. */
#include "runprep.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "array.h"
#include "dtype.h"
#include "npy.h"
#include "shape.h"

/* Read the ROI: a .npy of nav shape (or flat), bool or integer, non-zero = selected. */
int runprep_roi_load(const char *path, const ds *d, uint8_t **roi, uint64_t *selected, err *e)
{
    npy_info info;
    void *data;
    int rc = array_read_file(path, d->num_frames * 8, &info, &data, e);
    if (rc)
        return rc;
    char want[128], got[128];
    shape_format(d->nav_shape, d->nav_ndim, want, sizeof want);
    shape_format(info.shape, info.ndim, got, sizeof got);
    bool same = info.ndim == d->nav_ndim &&
                !memcmp(info.shape, d->nav_shape, d->nav_ndim * sizeof *info.shape);
    bool flat = info.ndim == 1 && info.shape[0] == d->num_frames;
    if (!same && !flat) {
        free(data);
        return err_set(e, UH_EDATA, "%s: ROI shape (%s) does not match the nav shape (%s)", path,
                       got, want);
    }
    if (dtype_is_float(info.dtype)) {
        free(data);
        return err_set(e, UH_EDATA, "%s: ROI must be bool or integer, not %s", path,
                       dtype_name(info.dtype));
    }
    uint8_t *out = malloc(d->num_frames);
    if (!out) {
        free(data);
        return err_set(e, UH_ENOMEM, "out of memory for the ROI");
    }
    size_t es = udf_dtype_size(info.dtype);
    uint64_t n = 0;
    for (uint64_t f = 0; f < d->num_frames; f++) {
        const unsigned char *p = (const unsigned char *)data + f * es;
        unsigned char any = 0;
        for (size_t b = 0; b < es; b++)
            any |= p[b];
        out[f] = any != 0;
        n += out[f];
    }
    free(data);
    *roi = out;
    *selected = n;
    return 0;
}

/* When every plugin asked for only some frames (select_frames), process only their union, within
 * the ROI; the plugins' meta then shows the narrowed ROI. */
int runprep_narrow(plugin **plugins, uint32_t n, const ds *d, uint8_t **roi,
                            uint64_t *selected, err *e)
{
    for (uint32_t k = 0; k < n; k++)
        if (!plugins[k]->wanted)
            return 0;
    uint8_t *mask = calloc(d->num_frames, 1);
    if (!mask)
        return err_set(e, UH_ENOMEM, "out of memory for the frame selection");
    for (uint32_t k = 0; k < n; k++)
        for (uint64_t i = 0; i < plugins[k]->n_wanted; i++)
            mask[plugins[k]->wanted[i]] = 1;
    uint64_t count = 0;
    for (uint64_t f = 0; f < d->num_frames; f++) {
        if (*roi && !(*roi)[f])
            mask[f] = 0;
        count += mask[f];
    }
    free(*roi);
    *roi = mask;
    *selected = count;
    for (uint32_t k = 0; k < n; k++) {
        plugins[k]->meta.roi = mask;
        plugins[k]->meta.selected_frames = count;
    }
    return 0;
}

void runprep_meta_fill(udf_meta *m, const ds *d, const uint8_t *roi, uint64_t selected)
{
    memset(m, 0, sizeof *m);
    m->struct_size = sizeof *m;
    m->nav_ndim = d->nav_ndim;
    memcpy(m->nav_shape, d->nav_shape, sizeof m->nav_shape);
    m->sig_ndim = d->sig_ndim;
    memcpy(m->sig_shape, d->sig_shape, sizeof m->sig_shape);
    m->num_frames = d->num_frames;
    m->sig_size = d->sig_size;
    m->raw_dtype = d->dtype;
    m->roi = roi;
    m->selected_frames = selected;
}

unsigned runprep_default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 1024 ? 1024 : (unsigned)n;
}
