/* fem: fluctuation electron microscopy, the population standard deviation of the pixels of every
 * frame inside a ring. Each row's ring pixels are reduced in two passes (mean, then squared
 * deviations) and rows are combined with Chan et al.'s update, in float64: stable for data with a
 * large offset, and the same bits however the host cuts frames into bands. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include <udfhost/udf.h>

#include "common.h"

/* Radii beyond any detector; the host needs finite bounds to check a range. */
#define RADIUS_MAX 1e9

static const udf_param_decl fem_params[] = {
    {.name = "cy", .type = UDF_PARAM_FLOAT, .help = "row of the ring centre (default (H-1)/2)"},
    {.name = "cx", .type = UDF_PARAM_FLOAT, .help = "column of the ring centre (default (W-1)/2)"},
    {.name = "ri", .type = UDF_PARAM_FLOAT, .default_value = "0", .min = 0, .max = RADIUS_MAX,
     .help = "inner radius: pixels with ri^2 <= d^2"},
    {.name = "ro", .type = UDF_PARAM_FLOAT, .min = 0, .max = RADIUS_MAX,
     .help = "outer radius: pixels with d^2 <= ro^2 (default: no limit, the whole frame)"},
    {.name = "dtype", .type = UDF_PARAM_CHOICE, .default_value = "float32",
     .choices = "float32|float64", .help = "dtype of the result buffer intensity"},
    {0},
};

enum { BUF_ACC, BUF_INTENSITY };

typedef struct fem_run {
    uint64_t x0, x1; /* ring pixels [x0, x1) of one row */
} fem_run;

/* Task data, built by init_task and read-only afterwards. */
typedef struct fem_task {
    uint64_t width;
    uint64_t *row_first; /* the runs of row y are runs[row_first[y] .. row_first[y + 1]) */
    uint64_t *row_pixels; /* ring pixels in row y */
    fem_run *runs;
} fem_task;

static void task_free(fem_task *t)
{
    if (!t)
        return;
    free(t->row_first);
    free(t->row_pixels);
    free(t->runs);
    free(t);
}

static int fem_declare(udf_ctx *ctx)
{
    const char *dtype;
    int rc = ctx->host->param_string(ctx, "dtype", 0, &dtype);
    if (rc)
        return rc;
    /* acc[f] = (pixels so far, their mean, sum of squared deviations from it), float64. */
    udf_buffer_decl acc = {.name = "acc", .kind = UDF_KIND_NAV, .dtype = UDF_F64,
                           .flags = UDF_BUFFER_PRIVATE, .extra_ndim = 1, .extra_shape = {3}};
    udf_buffer_decl out = {.name = "intensity", .kind = UDF_KIND_NAV,
                           .flags = UDF_BUFFER_RESULT_ONLY, .dtype = common_result_dtype(dtype)};
    if ((rc = ctx->host->declare_buffer(ctx, &acc)))
        return rc;
    return ctx->host->declare_buffer(ctx, &out);
}

/* Pixel (y, x) is in the ring when ri^2 <= d^2 <= ro^2, computed exactly this way (as the man
 * page and the tests write it, so boundary pixels agree bit for bit). */
static int in_ring(double y, double x, double cy, double cx, double ri, double ro, int limited)
{
    double d2 = (y - cy) * (y - cy) + (x - cx) * (x - cx);
    return ri * ri <= d2 && (!limited || d2 <= ro * ro);
}

static int fem_init(udf_ctx *ctx, void **task_data)
{
    const udf_meta *m = ctx->meta;
    if (m->sig_ndim != 2) {
        ctx->host->error(ctx, "needs a 2-D signal, the dataset's has %u dimensions",
                         (unsigned)m->sig_ndim);
        return UDF_ERR_UNSUPPORTED;
    }
    uint64_t h = m->sig_shape[0], w = m->sig_shape[1];
    double cy, cx, ri, ro = INFINITY;
    int limited = ctx->host->param_count(ctx, "ro") > 0;
    int rc;
    if ((rc = common_param_or(ctx, "cy", (double)(h - 1) / 2, &cy)) ||
        (rc = common_param_or(ctx, "cx", (double)(w - 1) / 2, &cx)) ||
        (rc = ctx->host->param_double(ctx, "ri", 0, &ri)) ||
        (limited && (rc = ctx->host->param_double(ctx, "ro", 0, &ro))))
        return rc;
    if (ri > ro) {
        ctx->host->error(ctx, "inner radius ri %g > outer radius ro %g", ri, ro);
        return UDF_ERR_PARAM;
    }
    fem_task *t = calloc(1, sizeof *t);
    if (!t)
        return UDF_ERR_NOMEM;
    t->width = w;
    if (!(t->row_first = malloc((h + 1) * sizeof *t->row_first)) ||
        !(t->row_pixels = calloc(h, sizeof *t->row_pixels))) {
        task_free(t);
        return UDF_ERR_NOMEM;
    }
    /* One pass to count the runs, one to store them. */
    uint64_t n = 0, pixels = 0;
    for (int pass = 0; pass < 2; pass++) {
        n = 0;
        for (uint64_t y = 0; y < h; y++) {
            t->row_first[y] = n;
            int inside = 0;
            for (uint64_t x = 0; x <= w; x++) {
                int now = x < w && in_ring((double)y, (double)x, cy, cx, ri, ro, limited);
                if (now && !pass)
                    t->row_pixels[y]++;
                if (now && !inside && pass)
                    t->runs[n].x0 = x;
                if (!now && inside) {
                    if (pass)
                        t->runs[n].x1 = x;
                    n++;
                }
                inside = now;
            }
            if (!pass)
                pixels += t->row_pixels[y];
        }
        t->row_first[h] = n;
        if (!pass && pixels == 0) {
            ctx->host->error(ctx, "the ring (ri %g, ro %g around %g, %g) holds no pixel of the "
                             "%llu x %llu frame", ri, ro, cy, cx, (unsigned long long)h,
                             (unsigned long long)w);
            task_free(t);
            return UDF_ERR_PARAM;
        }
        if (!pass && !(t->runs = malloc(n * sizeof *t->runs))) {
            task_free(t);
            return UDF_ERR_NOMEM;
        }
    }
    *task_data = t;
    return UDF_OK;
}

/* Per row with ring pixels: mean and squared deviations of the row in two passes, then merged
 * into (count, mean, M2) of the frame by Chan et al.'s pairwise update. */
#define FEM_TILE(T)                                                                                \
    do {                                                                                           \
        const T *restrict data = tile->data;                                                       \
        double *restrict acc = ctx->buffers[BUF_ACC].data;                                         \
        for (uint64_t f = 0; f < tile->depth; f++) {                                               \
            const T *restrict band = data + f * tile->frame_stride;                                \
            double count = acc[3 * f], mean = acc[3 * f + 1], m2 = acc[3 * f + 2];                 \
            for (uint64_t y = y0; y < y0 + rows; y++) {                                            \
                if (!t->row_pixels[y])                                                             \
                    continue;                                                                      \
                const T *restrict row = band + (y - y0) * t->width;                                \
                uint64_t k0 = t->row_first[y], k1 = t->row_first[y + 1];                           \
                double s = 0, rm2 = 0, rn = (double)t->row_pixels[y];                              \
                for (uint64_t k = k0; k < k1; k++)                                                 \
                    for (uint64_t x = t->runs[k].x0; x < t->runs[k].x1; x++)                       \
                        s += (double)row[x];                                                       \
                double rmean = s / rn;                                                             \
                for (uint64_t k = k0; k < k1; k++)                                                 \
                    for (uint64_t x = t->runs[k].x0; x < t->runs[k].x1; x++) {                     \
                        double dv = (double)row[x] - rmean;                                        \
                        rm2 += dv * dv;                                                            \
                    }                                                                              \
                double total = count + rn, delta = rmean - mean;                                   \
                mean += delta * (rn / total);                                                      \
                m2 += rm2 + delta * delta * (count * rn / total);                                  \
                count = total;                                                                     \
            }                                                                                      \
            acc[3 * f] = count;                                                                    \
            acc[3 * f + 1] = mean;                                                                 \
            acc[3 * f + 2] = m2;                                                                   \
        }                                                                                          \
    } while (0)

static int fem_tile(udf_ctx *ctx, const udf_tile *tile)
{
    const fem_task *t = ctx->task_data;
    uint64_t y0 = tile->sig_start / t->width, rows = tile->sig_count / t->width;
    switch (ctx->meta->input_dtype) {
    case UDF_U8: FEM_TILE(uint8_t); break;
    case UDF_U16: FEM_TILE(uint16_t); break;
    case UDF_U32: FEM_TILE(uint32_t); break;
    case UDF_U64: FEM_TILE(uint64_t); break;
    case UDF_I8: FEM_TILE(int8_t); break;
    case UDF_I16: FEM_TILE(int16_t); break;
    case UDF_I32: FEM_TILE(int32_t); break;
    case UDF_I64: FEM_TILE(int64_t); break;
    case UDF_F32: FEM_TILE(float); break;
    case UDF_F64: FEM_TILE(double); break;
    default:
        ctx->host->error(ctx, "unsupported input dtype %d", (int)ctx->meta->input_dtype);
        return UDF_ERR_UNSUPPORTED;
    }
    return UDF_OK;
}

/* intensity = sqrt(M2 / count): ddof 0. Outside the ROI acc is NaN and so is the result. */
static int fem_results(udf_ctx *ctx)
{
    const double *acc = ctx->buffers[BUF_ACC].data;
    udf_view *out = &ctx->buffers[BUF_INTENSITY];
    for (uint64_t i = 0; i < out->count; i++) {
        double v = sqrt(acc[3 * i + 2] / acc[3 * i]);
        if (out->dtype == UDF_F32)
            ((float *)out->data)[i] = (float)v;
        else
            ((double *)out->data)[i] = v;
    }
    return UDF_OK;
}

static void fem_cleanup(udf_ctx *ctx, void *task_data)
{
    (void)ctx;
    task_free(task_data);
}

static const udf_plugin fem_plugin = {
    UDF_PLUGIN_HEADER,
    .name = "fem",
    .version = "1.0.0",
    .description = "standard deviation of the pixels inside a ring of each frame (FEM)",
    .params = fem_params,
    .input_dtype = UDF_DTYPE_NATIVE,
    .declare_buffers = fem_declare,
    .init_task = fem_init,
    .process_tile = fem_tile,
    .get_results = fem_results,
    .cleanup = fem_cleanup,
};

UDF_PLUGIN_DEFINE(fem_plugin)
