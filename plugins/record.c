/* record: writes the frames the run sees (after ROI and corrections), optionally cropped and
 * binned, to a new .npy file, streaming in constant memory: format conversion and data reduction
 * in one pass (LiberTEM's RecordUDF). Workers write their frames straight to their place in the
 * file with pwrite(); the file is created under a temporary name and renamed when the run has
 * succeeded, so a failed run leaves no partial file. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <udfhost/udf.h>

static const udf_param_decl record_params[] = {
    {.name = "out", .type = UDF_PARAM_STRING, .flags = UDF_PARAM_REQUIRED,
     .help = "the .npy file to write"},
    {.name = "dtype", .type = UDF_PARAM_CHOICE, .default_value = "native",
     .choices = "native|uint8|uint16|uint32|int8|int16|int32|float32|float64",
     .help = "element type of the file; native: the type the plugins see (float32 after binning)"},
    {.name = "crop", .type = UDF_PARAM_INTS,
     .help = "keep rows Y0..Y1-1 and columns X0..X1-1 of 2-D frames: crop=Y0,X0,Y1,X1"},
    {.name = "bin", .type = UDF_PARAM_INT, .default_value = "1", .min = 1, .max = 1024,
     .help = "sum BIN x BIN pixels of 2-D frames into one (after crop; partial bins dropped)"},
    {.name = "overwrite", .type = UDF_PARAM_BOOL, .default_value = "false",
     .help = "replace an existing file"},
    {0},
};

typedef struct record_task {
    char *path, *tmp;
    int fd;
    udf_dtype out_dtype;
    size_t out_elem;
    uint64_t y0, x0, rows, cols; /* the crop, in input pixels (whole frame without crop) */
    uint64_t bin, out_rows, out_cols, out_pixels;
    uint64_t data_offset;        /* where frame 0 starts in the file */
    uint64_t *rank;              /* flat nav index -> position in the file (with a ROI) */
    int renamed;
} record_task;

static udf_dtype dtype_of(const char *name, udf_dtype native)
{
    static const struct { const char *name; udf_dtype d; } names[] = {
        {"uint8", UDF_U8},   {"uint16", UDF_U16}, {"uint32", UDF_U32},   {"int8", UDF_I8},
        {"int16", UDF_I16},  {"int32", UDF_I32},  {"float32", UDF_F32}, {"float64", UDF_F64},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(name, names[i].name))
            return names[i].d;
    return native;
}

/* NumPy's descr of d in this machine's byte order (the data is written as the plugin holds it). */
static const char *descr_of(udf_dtype d)
{
    static const char *const little[] = {"|u1", "<u2", "<u4", "|i1", "<i2", "<i4", "<f4", "<f8"};
    static const char *const big[] = {"|u1", ">u2", ">u4", "|i1", ">i2", ">i4", ">f4", ">f8"};
    const union { uint16_t u; unsigned char c[2]; } probe = {.u = 1};
    int i = d == UDF_U8 ? 0 : d == UDF_U16 ? 1 : d == UDF_U32 ? 2 : d == UDF_I8 ? 3
          : d == UDF_I16 ? 4 : d == UDF_I32 ? 5 : d == UDF_F32 ? 6 : 7;
    return probe.c[0] ? little[i] : big[i];
}

/* No buffers: the file is the result. */
static int record_declare(udf_ctx *ctx)
{
    (void)ctx;
    return UDF_OK;
}

static int write_all(int fd, const void *buf, size_t n, uint64_t off)
{
    const char *p = buf;
    while (n) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

/* The .npy preamble for the file's shape: nav shape (or the selected count with a ROI) followed
 * by the output frame shape, padded so the data starts at a multiple of 64 bytes. */
static int write_header(udf_ctx *ctx, record_task *t)
{
    const udf_meta *m = ctx->meta;
    char dict[1024], shape[512] = "";
    size_t n = 0;
    if (m->roi)
        n += (size_t)snprintf(shape + n, sizeof shape - n, "%llu, ",
                              (unsigned long long)m->selected_frames);
    else
        for (uint32_t i = 0; i < m->nav_ndim; i++)
            n += (size_t)snprintf(shape + n, sizeof shape - n, "%llu, ",
                                  (unsigned long long)m->nav_shape[i]);
    if (m->sig_ndim == 2)
        snprintf(shape + n, sizeof shape - n, "%llu, %llu", (unsigned long long)t->out_rows,
                 (unsigned long long)t->out_cols);
    else
        for (uint32_t i = 0; i < m->sig_ndim; i++)
            n += (size_t)snprintf(shape + n, sizeof shape - n, i + 1 < m->sig_ndim ? "%llu, " : "%llu",
                                  (unsigned long long)m->sig_shape[i]);
    int len = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }",
                       descr_of(t->out_dtype), shape);
    size_t total = 10 + (size_t)len + 1;
    total = (total + 63) / 64 * 64;
    size_t hlen = total - 10;
    unsigned char pre[1024 + 128];
    memcpy(pre, "\x93NUMPY\x01\x00", 8);
    pre[8] = (unsigned char)(hlen & 0xff);
    pre[9] = (unsigned char)(hlen >> 8);
    memcpy(pre + 10, dict, (size_t)len);
    memset(pre + 10 + len, ' ', hlen - (size_t)len - 1);
    pre[total - 1] = '\n';
    t->data_offset = total;
    return write_all(t->fd, pre, total, 0);
}

static void task_free(record_task *t)
{
    if (t->fd >= 0)
        close(t->fd);
    if (t->tmp && !t->renamed)
        unlink(t->tmp);
    free(t->path);
    free(t->tmp);
    free(t->rank);
    free(t);
}

static int record_init(udf_ctx *ctx, void **task)
{
    const udf_host *h = ctx->host;
    const udf_meta *m = ctx->meta;
    const char *out, *dtype;
    int64_t bin, crop[4];
    int overwrite;
    uint32_t ncrop = 0;
    h->param_string(ctx, "out", 0, &out);
    h->param_string(ctx, "dtype", 0, &dtype);
    h->param_int(ctx, "bin", 0, &bin);
    h->param_bool(ctx, "overwrite", 0, &overwrite);
    if (h->param_count(ctx, "crop") && h->param_ints(ctx, "crop", 0, crop, 4, &ncrop) == UDF_OK &&
        ncrop != 4) {
        h->error(ctx, "crop: expected 4 values Y0,X0,Y1,X1, got %u", ncrop);
        return UDF_ERR_PARAM;
    }
    if ((ncrop || bin > 1) && m->sig_ndim != 2) {
        h->error(ctx, "crop and bin need 2-D frames, this signal has %u dimensions", m->sig_ndim);
        return UDF_ERR_PARAM;
    }
    record_task *t = calloc(1, sizeof *t);
    if (!t)
        return UDF_ERR_NOMEM;
    t->fd = -1;
    uint64_t h_rows = m->sig_ndim == 2 ? m->sig_shape[0] : 1;
    uint64_t w_cols = m->sig_ndim == 2 ? m->sig_shape[1] : m->sig_size;
    t->y0 = 0;
    t->x0 = 0;
    t->rows = h_rows;
    t->cols = w_cols;
    if (ncrop) {
        if (crop[0] < 0 || crop[1] < 0 || crop[2] > (int64_t)h_rows || crop[3] > (int64_t)w_cols ||
            crop[0] >= crop[2] || crop[1] >= crop[3]) {
            h->error(ctx, "crop=%lld,%lld,%lld,%lld is empty or outside the %llux%llu frame",
                     (long long)crop[0], (long long)crop[1], (long long)crop[2],
                     (long long)crop[3], (unsigned long long)h_rows, (unsigned long long)w_cols);
            task_free(t);
            return UDF_ERR_PARAM;
        }
        t->y0 = (uint64_t)crop[0];
        t->x0 = (uint64_t)crop[1];
        t->rows = (uint64_t)(crop[2] - crop[0]);
        t->cols = (uint64_t)(crop[3] - crop[1]);
    }
    t->bin = (uint64_t)bin;
    t->out_rows = t->rows / t->bin;
    t->out_cols = t->cols / t->bin;
    if (!t->out_rows || !t->out_cols) {
        h->error(ctx, "bin=%lld is larger than the %llux%llu frame", (long long)bin,
                 (unsigned long long)t->rows, (unsigned long long)t->cols);
        task_free(t);
        return UDF_ERR_PARAM;
    }
    t->out_pixels = t->out_rows * t->out_cols;
    udf_dtype native = t->bin > 1 && m->input_dtype != UDF_F64 ? UDF_F32 : m->input_dtype;
    t->out_dtype = dtype_of(dtype, native);
    t->out_elem = udf_dtype_size(t->out_dtype);

    struct stat st;
    if (!overwrite && stat(out, &st) == 0) {
        h->error(ctx, "%s exists (give -p overwrite=true to replace it)", out);
        task_free(t);
        return UDF_ERR_PARAM;
    }
    size_t plen = strlen(out);
    t->path = strdup(out);
    t->tmp = malloc(plen + 32);
    if (!t->path || !t->tmp) {
        task_free(t);
        return UDF_ERR_NOMEM;
    }
    snprintf(t->tmp, plen + 32, "%s.tmp-%ld", out, (long)getpid());
    t->fd = open(t->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (t->fd < 0) {
        h->error(ctx, "%s: cannot create: %s", t->tmp, strerror(errno));
        free(t->tmp);
        t->tmp = NULL;
        task_free(t);
        return UDF_ERR;
    }
    uint64_t frames = m->roi ? m->selected_frames : m->num_frames;
    if (write_header(ctx, t) ||
        ftruncate(t->fd, (off_t)(t->data_offset + frames * t->out_pixels * t->out_elem))) {
        h->error(ctx, "%s: cannot write: %s", t->tmp, strerror(errno));
        task_free(t);
        return UDF_ERR;
    }
    if (m->roi) {
        t->rank = malloc(m->num_frames * sizeof *t->rank);
        if (!t->rank) {
            task_free(t);
            return UDF_ERR_NOMEM;
        }
        uint64_t r = 0;
        for (uint64_t f = 0; f < m->num_frames; f++) {
            t->rank[f] = r;
            r += m->roi[f] != 0;
        }
    }
    *task = t;
    return UDF_OK;
}

/* Store value v (computed in double) as the output type: integers rounded to nearest and
 * saturated at the type's range (NaN becomes 0). */
static void store(void *dst, udf_dtype d, uint64_t i, double v)
{
#define SAT(T, LO, HI)                                                                             \
    ((T *)dst)[i] = v != v ? (T)0 : v <= (double)(LO) ? (T)(LO) : v >= (double)(HI) ? (T)(HI)     \
                                                                                    : (T)nearbyint(v)
    switch (d) {
    case UDF_U8: SAT(uint8_t, 0, UINT8_MAX); break;
    case UDF_U16: SAT(uint16_t, 0, UINT16_MAX); break;
    case UDF_U32: SAT(uint32_t, 0, UINT32_MAX); break;
    case UDF_I8: SAT(int8_t, INT8_MIN, INT8_MAX); break;
    case UDF_I16: SAT(int16_t, INT16_MIN, INT16_MAX); break;
    case UDF_I32: SAT(int32_t, INT32_MIN, INT32_MAX); break;
    case UDF_F32: ((float *)dst)[i] = (float)v; break;
    default: ((double *)dst)[i] = v; break;
    }
#undef SAT
}

static double load(const void *src, udf_dtype d, uint64_t i)
{
    switch (d) {
    case UDF_U8: return ((const uint8_t *)src)[i];
    case UDF_U16: return ((const uint16_t *)src)[i];
    case UDF_U32: return ((const uint32_t *)src)[i];
    case UDF_I8: return ((const int8_t *)src)[i];
    case UDF_I16: return ((const int16_t *)src)[i];
    case UDF_I32: return ((const int32_t *)src)[i];
    case UDF_F32: return ((const float *)src)[i];
    default: return ((const double *)src)[i];
    }
}

static int record_tile(udf_ctx *ctx, const udf_tile *tile)
{
    record_task *t = ctx->task_data;
    udf_dtype in = ctx->meta->input_dtype;
    size_t in_elem = udf_dtype_size(in);
    uint64_t full_cols = ctx->meta->sig_ndim == 2 ? ctx->meta->sig_shape[1] : ctx->meta->sig_size;
    bool same = t->bin == 1 && t->out_dtype == in && t->rows * t->cols == ctx->meta->sig_size;
    void *buf = same ? NULL : malloc(t->out_pixels * t->out_elem);
    if (!same && !buf)
        return UDF_ERR_NOMEM;
    int rc = UDF_OK;
    for (uint64_t f = 0; f < tile->depth && !rc; f++) {
        const char *frame = (const char *)tile->data + f * tile->frame_stride * in_elem;
        uint64_t nav = tile->nav_index[f];
        uint64_t pos = t->rank ? t->rank[nav] : nav;
        const void *src = frame;
        if (!same) {
            /* Sum bin x bin blocks of the cropped frame, in double, exact for integer data. */
            for (uint64_t oy = 0; oy < t->out_rows; oy++)
                for (uint64_t ox = 0; ox < t->out_cols; ox++) {
                    double s = 0;
                    for (uint64_t by = 0; by < t->bin; by++) {
                        uint64_t row = (t->y0 + oy * t->bin + by) * full_cols + t->x0 + ox * t->bin;
                        for (uint64_t bx = 0; bx < t->bin; bx++)
                            s += load(frame, in, row + bx);
                    }
                    store(buf, t->out_dtype, oy * t->out_cols + ox, s);
                }
            src = buf;
        }
        size_t bytes = t->out_pixels * t->out_elem;
        if (write_all(t->fd, src, bytes, t->data_offset + pos * bytes)) {
            ctx->host->error(ctx, "%s: cannot write: %s", t->tmp, strerror(errno));
            rc = UDF_ERR;
        }
    }
    free(buf);
    return rc;
}

/* The main thread, after every partition succeeded: make the file durable, then give it its
 * name. */
static int record_results(udf_ctx *ctx)
{
    record_task *t = ctx->task_data;
    if (fsync(t->fd) || rename(t->tmp, t->path)) {
        ctx->host->error(ctx, "%s: cannot finish: %s", t->path, strerror(errno));
        return UDF_ERR;
    }
    t->renamed = 1;
    return UDF_OK;
}

static void record_cleanup(udf_ctx *ctx, void *task)
{
    (void)ctx;
    task_free(task);
}

static const udf_plugin record_plugin = {
    UDF_PLUGIN_HEADER,
    .name = "record",
    .version = "1.0.0",
    .description = "write the frames (after ROI, corrections, crop, bin) to a new .npy",
    .params = record_params,
    .input_dtype = UDF_DTYPE_NATIVE,
    .tiling = UDF_TILE_FULL_FRAMES,
    .declare_buffers = record_declare,
    .init_task = record_init,
    .process_tile = record_tile,
    .get_results = record_results,
    .cleanup = record_cleanup,
};

UDF_PLUGIN_DEFINE(record_plugin)
