/* Fuzz target: the raw reader with fuzzed parameters (dtype, byte order, nav and sig shapes,
 * offset, per-frame header and footer, sync offset, I/O mode) over fuzzed file contents: the
 * overflow checks on shapes and offsets that come from flags, and ds_read's sync-offset padding. */
#include "fuzz_common.h"

#include <string.h>

#include "fuzz_ds.h"

/* The input: a fixed-size parameter block, then the file's bytes. */
enum { PARAMS = 56 };

static uint64_t get(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < PARAMS)
        return 0;
    const uint8_t *p = data;
    /* Dims are 16-bit, or 16-bit shifted into the high bits when flag 8 or 16 says so: small
     * shapes that fit a small file, and shapes whose products overflow. Never 0: shape_parse
     * rejects zero, so no flag or descriptor can give it. */
    unsigned flags = p[3];
    ds_options o = {.format = "raw"};
    o.dtype = (udf_dtype)(p[0] % 12); /* UDF_DTYPE_NONE .. UDF_BOOL */
    o.nav_ndim = p[1] % (UDF_MAX_DIMS + 1);
    o.sig_ndim = p[2] % (UDF_MAX_DIMS + 1);
    o.big_endian = flags & 1;
    o.byte_order_given = flags & 2;
    for (unsigned i = 0; i < UDF_MAX_DIMS; i++) {
        o.nav_shape[i] = get(p + 4 + 2 * i, 2) << (flags & 8 ? 48 : 0);
        o.sig_shape[i] = get(p + 12 + 2 * i, 2) << (flags & 16 ? 48 : 0);
        o.nav_shape[i] += !o.nav_shape[i];
        o.sig_shape[i] += !o.sig_shape[i];
    }
    o.offset = get(p + 20, 8);
    o.frame_header = get(p + 28, 4); /* uint_parse caps both at UINT32_MAX */
    o.frame_footer = get(p + 32, 4);
    o.sync_offset = (int64_t)get(p + 36, 8);
    if (!(flags & 32)) /* mostly small values, which the file can hold */
        o.offset &= 0xffff, o.sync_offset = (int16_t)o.sync_offset;
    o.io = flags & 4 ? DS_IO_READ : DS_IO_MMAP;
    const char *path;
    fuzz_memfd_fill(data + PARAMS, size - PARAMS, &path);
    o.path = path;
    ds *d = NULL;
    err e = {0};
    if (ds_open(&o, &d, &e) == 0) {
        fuzz_ds_read_all(d);
        ds_close(d);
    }
    return 0;
}
