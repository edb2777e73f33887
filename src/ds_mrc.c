/* MRC (MRC2014) image stacks: a 1024-byte header, an extended header of NSYMBT bytes, then NZ
 * sections of NY rows x NX columns, each section one frame, mapped in place. Layout after
 * https://www.ccpem.ac.uk/mrc_format/mrc2014.php. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ds.h"
#include "dtype.h"
#include "fileio.h"
#include "shape.h"

#define MRC_HEADER 1024
/* Byte offsets of the header words we use (all 4-byte integers in the file's byte order). */
enum { MRC_NX = 0, MRC_NY = 4, MRC_NZ = 8, MRC_MODE = 12, MRC_NSYMBT = 92, MRC_MAP = 208,
       MRC_MACHST = 212 };

static bool mrc_probe(const unsigned char *head, size_t n)
{
    return n >= MRC_MAP + 4 && !memcmp(head + MRC_MAP, "MAP ", 4);
}

static int32_t get_i32(const unsigned char *p, bool big)
{
    uint32_t u = big ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
                     : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
    return (int32_t)u;
}

static bool mode_is_known(int32_t mode)
{
    return (mode >= 0 && mode <= 4) || mode == 6 || mode == 12 || mode == 101;
}

/* The byte order of header and data. The machine stamp says it (0x44 0x44, or 0x44 0x41 from old
 * writers, for little-endian; 0x11 0x11 for big-endian); files without a valid stamp are read in
 * the order that makes MODE a known value, little-endian when both or neither do. */
static bool header_is_big_endian(const unsigned char *h)
{
    if (h[MRC_MACHST] == 0x44)
        return false;
    if (h[MRC_MACHST] == 0x11)
        return true;
    return !mode_is_known(get_i32(h + MRC_MODE, false)) && mode_is_known(get_i32(h + MRC_MODE,
                                                                                  true));
}

/* The frame dtype of a MODE, or a message why there is none. */
static int mode_dtype(const char *path, int32_t mode, udf_dtype *out, err *e)
{
    switch (mode) {
    case 0: *out = UDF_I8; return 0; /* MRC2014: signed; see the --dtype uint8 escape in open */
    case 1: *out = UDF_I16; return 0;
    case 2: *out = UDF_F32; return 0;
    case 6: *out = UDF_U16; return 0;
    case 3:
    case 4:
        return err_set(e, UH_EDATA, "%s: MODE %d (complex %s) is not supported", path, mode,
                       mode == 3 ? "int16" : "float32");
    case 12:
        return err_set(e, UH_EDATA,
                       "%s: MODE 12 (float16) is not supported: frames have no float16 dtype; "
                       "convert the file to MODE 2 (float32)", path);
    case 101:
        return err_set(e, UH_EDATA, "%s: MODE 101 (4-bit packed) is not supported", path);
    default:
        return err_set(e, UH_EDATA, "%s: unknown MODE %d in the header", path, mode);
    }
}

/* Whether path names an MRC file by its ending: older files without the 'MAP ' word are read
 * only then (or when --format mrc says so). */
static bool has_mrc_extension(const char *path)
{
    size_t n = strlen(path);
    return (n >= 4 && !strcasecmp(path + n - 4, ".mrc")) ||
           (n >= 5 && !strcasecmp(path + n - 5, ".mrcs"));
}

/* Read the 1024-byte header and the file size. */
static int read_header(const char *path, unsigned char *h, uint64_t *file_size, err *e)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_sys(e, UH_EDATA, errno, "%s: cannot open", path);
    struct stat st;
    int rc = 0;
    size_t have = 0;
    if (fstat(fd, &st))
        rc = err_sys(e, UH_EDATA, errno, "%s", path);
    else if (!S_ISREG(st.st_mode))
        rc = err_set(e, UH_EDATA, "%s: not a regular file", path);
    if (!rc)
        rc = file_read_at(fd, path, h, MRC_HEADER, 0, &have, e);
    if (!rc && have < MRC_HEADER)
        rc = err_set(e, UH_EDATA, "%s: file too short: %zu bytes, an MRC header alone is %d", path,
                     have, MRC_HEADER);
    close(fd);
    *file_size = rc ? 0 : (uint64_t)st.st_size;
    return rc;
}

static int mrc_open(ds *d, const ds_options *o, err *e)
{
    unsigned char h[MRC_HEADER];
    uint64_t file_size = 0;
    int rc = read_header(o->path, h, &file_size, e);
    if (rc)
        return rc;
    bool magic = mrc_probe(h, sizeof h);
    if (!magic && !has_mrc_extension(o->path) && !o->format)
        return err_set(e, UH_EDATA, "%s: not an MRC file (no 'MAP ' at byte %d)", o->path,
                       MRC_MAP);
    bool big = header_is_big_endian(h);
    int32_t nx = get_i32(h + MRC_NX, big), ny = get_i32(h + MRC_NY, big),
            nz = get_i32(h + MRC_NZ, big), mode = get_i32(h + MRC_MODE, big),
            nsymbt = get_i32(h + MRC_NSYMBT, big);
    const char *bad = nx <= 0 ? "NX" : ny <= 0 ? "NY" : nz <= 0 ? "NZ" : NULL;
    if (bad)
        return err_set(e, UH_EDATA, "%s: %s is %d in the header: must be positive%s", o->path,
                       bad, bad[1] == 'X' ? nx : bad[1] == 'Y' ? ny : nz,
                       magic ? "" : " (and there is no 'MAP ' magic: is this an MRC file?)");
    if (nsymbt < 0)
        return err_set(e, UH_EDATA, "%s: NSYMBT (extended header bytes) is %d: negative",
                       o->path, nsymbt);
    rc = mode_dtype(o->path, mode, &d->dtype, e);
    if (rc)
        return rc;
    uint64_t data_start = MRC_HEADER + (uint64_t)nsymbt;
    if (data_start > file_size)
        return err_set(e, UH_EDATA,
                       "%s: file too short: NSYMBT says %d bytes of extended header after the "
                       "%d-byte header, the file has %llu bytes", o->path, nsymbt, MRC_HEADER,
                       (unsigned long long)file_size);
    /* Mode 0 is signed in MRC2014, but older writers stored unsigned bytes: the user may say so. */
    if (o->dtype == UDF_U8 && mode == 0)
        d->dtype = UDF_U8;
    if (o->dtype != UDF_DTYPE_NONE && o->dtype != d->dtype)
        return err_set(e, UH_EUSAGE, "%s: --dtype %s does not match the file's MODE %d (%s)",
                       o->path, dtype_name(o->dtype), mode, dtype_name(d->dtype));

    d->big_endian = big;
    d->elem_size = udf_dtype_size(d->dtype);
    d->nav_ndim = 1;
    d->nav_shape[0] = (uint64_t)nz;
    d->sig_ndim = 2;
    d->sig_shape[0] = (uint64_t)ny;
    d->sig_shape[1] = (uint64_t)nx;
    d->num_frames = (uint64_t)nz;
    uint64_t data_bytes, need;
    if (!size_mul((uint64_t)nx, (uint64_t)ny, &d->sig_size) ||
        !size_mul(d->sig_size, d->elem_size, &d->frame_bytes) ||
        !size_mul(d->frame_bytes, d->num_frames, &data_bytes) ||
        !size_add(data_start, data_bytes, &need))
        return err_set(e, UH_EDATA,
                       "%s: NX %d x NY %d x NZ %d x %zu bytes (MODE %d) overflows 64 bits",
                       o->path, nx, ny, nz, d->elem_size, mode);
    /* Without the magic only a header whose sizes account for the file exactly is believed. */
    if (!magic && need != file_size)
        return err_set(e, UH_EDATA,
                       "%s: no 'MAP ' at byte %d and the header's sizes do not fit the file "
                       "(NX %d, NY %d, NZ %d, MODE %d, NSYMBT %d need %llu bytes, the file has "
                       "%llu): not an MRC file?", o->path, MRC_MAP, nx, ny, nz, mode, nsymbt,
                       (unsigned long long)need, (unsigned long long)file_size);
    rc = ds_apply_user_sig(d, o, e);
    if (!rc)
        rc = ds_apply_user_nav(d, o, e);
    if (rc)
        return rc;
    return ds_map_frames(d, o->path, data_start, d->frame_bytes, e);
}

const ds_reader ds_mrc_reader = {
    .name = "mrc",
    .extensions = ".mrc|.mrcs",
    .probe = mrc_probe,
    .open = mrc_open,
    .read = ds_map_read,
    .release = ds_map_release,
    .close = ds_map_close,
};
