/* NumPy .npy datasets: one C-order array (format versions 1.0, 2.0 and 3.0, either byte order)
 * whose trailing --sig-dims dimensions are the frame and leading ones the scan, mapped in place
 * after the header. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ds.h"
#include "dtype.h"
#include "fileio.h"
#include "npy.h"
#include "shape.h"

/* The parser refuses headers longer than 1 MiB (npy.c's NPY_HEADER_MAX), so reading the 12-byte
 * preamble plus one byte more than that is always enough to get its answer. */
#define NPY_HEAD_READ_MAX (12 + (1u << 20) + 1)
#define NPY_PREAMBLE 12

static const unsigned char magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

static bool npy_probe(const unsigned char *head, size_t n)
{
    return n >= sizeof magic && !memcmp(head, magic, sizeof magic);
}

/* The header of the file at path, read with only as many bytes as its preamble announces. */
static int parse_file_header(const char *path, npy_info *info, err *e)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_sys(e, UH_EDATA, errno, "%s: cannot open", path);
    unsigned char pre[NPY_PREAMBLE];
    size_t got;
    int rc = file_read_at(fd, path, pre, sizeof pre, 0, &got, e);
    if (rc) {
        close(fd);
        return rc;
    }
    /* Bytes 8.. hold the header length: 2 of them in version 1.0, 4 later. Anything odd is left
     * to npy_header_parse to name; then the 12 bytes read are all it looks at. */
    size_t want = got;
    if (got == sizeof pre && npy_probe(pre, got) && pre[6] >= 1 && pre[6] <= 3) {
        uint32_t hlen = (uint32_t)pre[8] | (uint32_t)pre[9] << 8;
        size_t lead = 10;
        if (pre[6] > 1) {
            hlen |= (uint32_t)pre[10] << 16 | (uint32_t)pre[11] << 24;
            lead = 12;
        }
        want = hlen < NPY_HEAD_READ_MAX - lead ? lead + hlen : NPY_HEAD_READ_MAX;
    }
    unsigned char *buf = want > got ? malloc(want) : pre;
    if (!buf) {
        close(fd);
        return err_set(e, UH_ENOMEM, "out of memory reading the header of %s", path);
    }
    if (buf != pre)
        rc = file_read_at(fd, path, buf, want, 0, &got, e);
    close(fd);
    if (!rc)
        rc = npy_header_parse(buf, got, path, info, e);
    if (buf != pre)
        free(buf);
    return rc;
}

static int npy_open(ds *d, const ds_options *o, err *e)
{
    npy_info info;
    int rc = parse_file_header(o->path, &info, e);
    if (rc)
        return rc;
    char shape[NPY_MAX_DIMS * 21 + 8];
    shape_format(info.shape, info.ndim, shape, sizeof shape);
    if (info.fortran_order)
        return err_set(e, UH_EDATA,
                       "%s: Fortran-order arrays are not supported for datasets; save a "
                       "C-ordered copy", o->path);
    if (info.dtype == UDF_BOOL || info.dtype == UDF_U64 || info.dtype == UDF_I64)
        return err_set(e, UH_EDATA, "%s: dtype %s is not supported for frame data", o->path,
                       dtype_name(info.dtype));
    if (o->dtype != UDF_DTYPE_NONE && o->dtype != info.dtype)
        return err_set(e, UH_EUSAGE, "%s: --dtype %s does not match the file's dtype %s",
                       o->path, dtype_name(o->dtype), dtype_name(info.dtype));
    uint32_t sig_dims = o->sig_dims ? o->sig_dims : 2;
    if (sig_dims > UDF_MAX_DIMS)
        return err_set(e, UH_EUSAGE, "%s: --sig-dims %u is more than %d", o->path, sig_dims,
                       UDF_MAX_DIMS);
    if (info.ndim < sig_dims)
        return err_set(e, UH_EDATA,
                       "%s: the array has shape (%s): fewer than the %u signal dimensions of "
                       "--sig-dims", o->path, shape, sig_dims);
    for (uint32_t i = 0; i < info.ndim; i++)
        if (!info.shape[i])
            return err_set(e, UH_EDATA, "%s: the array has shape (%s): no frames or empty frames",
                           o->path, shape);

    /* A single frame (as many dims as the signal) is a scan of one position. */
    uint32_t nav_ndim = info.ndim - sig_dims;
    uint64_t one = 1;
    const uint64_t *nav = nav_ndim ? info.shape : &one;
    if (!nav_ndim)
        nav_ndim = 1;
    if (nav_ndim > UDF_MAX_DIMS && !o->nav_ndim)
        return err_set(e, UH_EDATA,
                       "%s: the array has shape (%s): %u scan dimensions, at most %d (flatten "
                       "them with --nav-shape or raise --sig-dims)", o->path, shape, nav_ndim,
                       UDF_MAX_DIMS);
    d->nav_ndim = nav_ndim <= UDF_MAX_DIMS ? nav_ndim : 0;
    memcpy(d->nav_shape, nav, d->nav_ndim * sizeof *nav);
    d->sig_ndim = sig_dims;
    memcpy(d->sig_shape, info.shape + info.ndim - sig_dims, sig_dims * sizeof *info.shape);
    d->dtype = info.dtype;
    d->big_endian = info.big_endian;
    d->elem_size = udf_dtype_size(info.dtype);
    /* npy_header_parse checked that the whole array's bytes fit 64 bits; so do its parts. */
    if (!shape_product(nav, nav_ndim, &d->num_frames) ||
        !shape_product(d->sig_shape, d->sig_ndim, &d->sig_size) ||
        !size_mul(d->sig_size, d->elem_size, &d->frame_bytes))
        return err_set(e, UH_EDATA, "%s: the array shape (%s) overflows 64 bits", o->path, shape);
    rc = ds_apply_user_sig(d, o, e);
    if (!rc)
        rc = ds_apply_user_nav(d, o, e);
    if (rc)
        return rc;
    return ds_map_frames(d, o->path, info.data_offset, d->frame_bytes, e);
}

const ds_reader ds_npy_reader = {
    .name = "npy",
    .extensions = ".npy",
    .probe = npy_probe,
    .open = npy_open,
    .read = ds_map_read,
    .release = ds_map_release,
    .close = ds_map_close,
};
