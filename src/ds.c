/* Opening datasets: picks the reader for a format and owns what all readers share. */
#include "ds.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dtype.h"
#include "fileio.h"
#include "shape.h"

static const ds_reader *const readers[] = {&ds_raw_reader,  &ds_npy_reader, &ds_tiff_reader,
                                           &ds_mrc_reader,  &ds_mib_reader, &ds_hdf5_reader};
#define N_READERS (sizeof readers / sizeof readers[0])

const char *ds_format_names(void)
{
    static char names[256];
    if (!names[0])
        for (size_t i = 0, n = 0; i < N_READERS; i++)
            n += (size_t)snprintf(names + n, sizeof names - n, "%s%s", i ? ", " : "",
                                  readers[i]->name);
    return names;
}

/* Does `path` end in one of the '|'-separated endings (case-insensitively)? */
static bool has_extension(const char *path, const char *list)
{
    size_t plen = strlen(path);
    while (list && *list) {
        const char *bar = strchr(list, '|');
        size_t n = bar ? (size_t)(bar - list) : strlen(list);
        if (n && n <= plen && !strncasecmp(path + plen - n, list, n))
            return true;
        list = bar ? bar + 1 : NULL;
    }
    return false;
}

/* The format of o->path: its magic number, else its name's ending, else raw when the user
 * described the raw layout. */
static int detect(const ds_options *o, const ds_reader **out, err *e)
{
    unsigned char head[512];
    size_t n = 0;
    int fd = open(o->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_sys(e, UH_EDATA, errno, "%s: cannot open", o->path);
    struct stat st;
    /* The whole head or the whole file: a probe given a short read could guess wrong. */
    bool regular = !fstat(fd, &st) && S_ISREG(st.st_mode);
    int rc = regular ? file_read_at(fd, o->path, head, sizeof head, 0, &n, e) : 0;
    close(fd);
    if (rc)
        return rc;
    for (size_t i = 0; i < N_READERS && n > 0; i++)
        if (readers[i]->probe && readers[i]->probe(head, (size_t)n)) {
            *out = readers[i];
            return 0;
        }
    for (size_t i = 0; i < N_READERS; i++)
        if (has_extension(o->path, readers[i]->extensions)) {
            *out = readers[i];
            return 0;
        }
    if (o->dtype != UDF_DTYPE_NONE) {
        *out = &ds_raw_reader;
        return 0;
    }
    return err_set(e, UH_EUSAGE,
                   "%s: cannot tell the format (give --format: %s; raw data needs --dtype, "
                   "--nav-shape, --sig-shape)",
                   o->path, ds_format_names());
}

int ds_open(const ds_options *o, ds **out, err *e)
{
    const ds_reader *r = NULL;
    if (!strcmp(o->path, "-")) {
        if (o->format && strcmp(o->format, "raw"))
            return err_set(e, UH_EUSAGE, "stdin: only raw frames can be streamed, not %s",
                           o->format);
        if (o->sync_offset)
            return err_set(e, UH_EUSAGE, "stdin: --sync-offset is not supported for streams");
        r = &ds_stdin_reader;
    } else if (ds_files_pattern(o->path)) {
        r = &ds_files_reader; /* each file's own kind is told by its name */
    } else if (o->format) {
        for (size_t i = 0; i < N_READERS; i++)
            if (!strcmp(readers[i]->name, o->format))
                r = readers[i];
        if (!r)
            return err_set(e, UH_EUSAGE, "--format: unknown format '%s' (known: %s)", o->format,
                           ds_format_names());
    } else {
        int rc = detect(o, &r, e);
        if (rc)
            return rc;
    }
    ds *d = calloc(1, sizeof *d);
    if (!d || !(d->path = strdup(o->path))) {
        free(d);
        return err_set(e, UH_ENOMEM, "out of memory opening %s", o->path);
    }
    d->reader = r;
    d->io_request = o->io;
    /* With a sync offset the file's own frame count matters: open it as it is, then lay the
     * user's nav shape over it. */
    ds_options file_o = *o;
    if (o->sync_offset)
        file_o.nav_ndim = 0;
    int rc = r->open(d, &file_o, e);
    if (rc) {
        free(d->path);
        free(d);
        return rc;
    }
    d->file_frames = d->num_frames;
    d->sync_offset = o->sync_offset;
    if (o->sync_offset && o->nav_ndim) {
        d->nav_ndim = o->nav_ndim;
        memcpy(d->nav_shape, o->nav_shape, sizeof d->nav_shape);
        if (!shape_product(d->nav_shape, d->nav_ndim, &d->num_frames) ||
            d->frame_bytes > (UINT64_MAX >> 1) / d->num_frames) {
            ds_close(d);
            return err_set(e, UH_EUSAGE, "%s: --nav-shape x frame size overflows 64 bits",
                           o->path);
        }
    }
    /* Scan frame f is file frame f + offset, which the reads compute as int64_t: beyond the file
     * such frames are zeros, but f + offset must not overflow. */
    int64_t room = (int64_t)((uint64_t)INT64_MAX - (d->num_frames < (uint64_t)INT64_MAX
                                                        ? d->num_frames : (uint64_t)INT64_MAX));
    if (d->sync_offset > room || d->sync_offset < -room) {
        err_set(e, UH_EUSAGE, "%s: --sync-offset %lld is out of range for a scan of %llu frames",
                o->path, (long long)d->sync_offset, (unsigned long long)d->num_frames);
        ds_close(d);
        return UH_EUSAGE;
    }
    *out = d;
    return 0;
}

int ds_read(ds *d, uint64_t first, uint64_t count, void *scratch, const unsigned char **data,
            size_t *stride, err *e)
{
    int64_t n = d->sync_offset;
    int64_t start = (int64_t)first + n;
    if (start >= 0 && (uint64_t)start + count <= d->file_frames)
        return d->reader->read(d, (uint64_t)start, count, scratch, data, stride, e);
    /* At the scan's ends: frames the file does not have are zeros. */
    unsigned char *out = scratch;
    for (uint64_t i = 0; i < count; i++) {
        unsigned char *slot = out + i * d->frame_bytes;
        int64_t fi = start + (int64_t)i;
        if (fi < 0 || (uint64_t)fi >= d->file_frames) {
            memset(slot, 0, d->frame_bytes);
            continue;
        }
        const unsigned char *p;
        size_t s;
        int rc = d->reader->read(d, (uint64_t)fi, 1, slot, &p, &s, e);
        if (rc)
            return rc;
        if (p != slot)
            memmove(slot, p, d->frame_bytes);
    }
    *data = out;
    *stride = d->frame_bytes;
    return 0;
}

void ds_release(ds *d, uint64_t first, uint64_t count)
{
    if (!d->reader->release)
        return;
    int64_t lo = (int64_t)first + d->sync_offset, hi = lo + (int64_t)count;
    if (lo < 0)
        lo = 0;
    if (hi > (int64_t)d->file_frames)
        hi = (int64_t)d->file_frames;
    if (hi > lo)
        d->reader->release(d, (uint64_t)lo, (uint64_t)(hi - lo));
}

void ds_close(ds *d)
{
    if (!d)
        return;
    d->reader->close(d);
    free(d->path);
    free(d);
}

int ds_apply_user_sig(ds *d, const ds_options *o, err *e)
{
    uint64_t n;
    if (!o->sig_ndim)
        return 0;
    if (!shape_product(o->sig_shape, o->sig_ndim, &n) || n != d->sig_size) {
        char want[128], have[128];
        shape_format(o->sig_shape, o->sig_ndim, want, sizeof want);
        shape_format(d->sig_shape, d->sig_ndim, have, sizeof have);
        return err_set(e, UH_EUSAGE,
                       "%s: --sig-shape %s does not match the file's frames of %llu pixels (sig "
                       "shape %s)", o->path, want, (unsigned long long)d->sig_size, have);
    }
    d->sig_ndim = o->sig_ndim;
    memcpy(d->sig_shape, o->sig_shape, sizeof d->sig_shape);
    return 0;
}

int ds_apply_user_nav(ds *d, const ds_options *o, err *e)
{
    uint64_t n;
    if (!o->nav_ndim)
        return 0;
    if (!shape_product(o->nav_shape, o->nav_ndim, &n) || n != d->num_frames) {
        char want[128], have[128];
        shape_format(o->nav_shape, o->nav_ndim, want, sizeof want);
        shape_format(d->nav_shape, d->nav_ndim, have, sizeof have);
        return err_set(e, UH_EUSAGE,
                       "%s: --nav-shape %s does not match the file's %llu frames (nav shape %s)",
                       o->path, want, (unsigned long long)d->num_frames, have);
    }
    d->nav_ndim = o->nav_ndim;
    memcpy(d->nav_shape, o->nav_shape, sizeof d->nav_shape);
    return 0;
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
