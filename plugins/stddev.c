/* stddev: per-pixel mean, variance and standard deviation over the selected frames (LiberTEM's
 * StdDevUDF). Each tile is reduced by two passes in float64 (its own mean, then squared deviations
 * from it); tiles and partitions are combined with the pairwise update of Chan, Golub and LeVeque,
 * so no large sum of squares is ever formed and data with a large offset keeps its precision. */
#include <math.h>
#include <udfhost/udf.h>

#include "common.h"

static const udf_param_decl stddev_params[] = {
    {.name = "dtype", .type = UDF_PARAM_CHOICE, .default_value = "float32",
     .choices = "float32|float64", .help = "dtype of the result buffers mean, var and std"},
    {0},
};

enum { BUF_NUM_FRAMES, BUF_SUM, BUF_VARSUM, BUF_MEAN, BUF_VAR, BUF_STD };

static int stddev_declare(udf_ctx *ctx)
{
    const char *dtype;
    int rc = ctx->host->param_string(ctx, "dtype", 0, &dtype);
    if (rc)
        return rc;
    udf_dtype out = common_result_dtype(dtype);
    const udf_buffer_decl decls[] = {
        {.name = "num_frames", .kind = UDF_KIND_SINGLE, .dtype = UDF_U64},
        {.name = "sum", .kind = UDF_KIND_SIG, .dtype = UDF_F64},
        {.name = "varsum", .kind = UDF_KIND_SIG, .dtype = UDF_F64},
        {.name = "mean", .kind = UDF_KIND_SIG, .dtype = out, .flags = UDF_BUFFER_RESULT_ONLY},
        {.name = "var", .kind = UDF_KIND_SIG, .dtype = out, .flags = UDF_BUFFER_RESULT_ONLY},
        {.name = "std", .kind = UDF_KIND_SIG, .dtype = out, .flags = UDF_BUFFER_RESULT_ONLY},
    };
    for (size_t i = 0; i < sizeof decls / sizeof decls[0]; i++)
        if ((rc = ctx->host->declare_buffer(ctx, &decls[i])))
            return rc;
    return UDF_OK;
}

/* Combine (nb frames, sum sb, varsum vb) into (na, sum[p], varsum[p]) for n pixels (Chan et al.):
 *     varsum = va + vb + (mean_b - mean_a)^2 * na * nb / (na + nb)
 * Shared by process_tile (b = one tile) and merge (b = one partition). na may be 0: then the
 * update reduces to a copy (w = 0), but the copy is spelt out so that 0/0 is never computed. */
static void stddev_combine(double *restrict sum, double *restrict varsum, uint64_t na,
                           const double *restrict sb, const double *restrict vb, uint64_t nb,
                           uint64_t n)
{
    if (na == 0) {
        for (uint64_t p = 0; p < n; p++) {
            sum[p] = sb[p];
            varsum[p] = vb[p];
        }
        return;
    }
    const double a = (double)na, b = (double)nb, w = a * b / (a + b);
    for (uint64_t p = 0; p < n; p++) {
        double delta = sb[p] / b - sum[p] / a;
        varsum[p] += vb[p] + delta * delta * w;
        sum[p] += sb[p];
    }
}

/* Pixels per block of the two-pass tile reduction: two float64 scratch rows of this length stay in
 * L1 while every frame of the tile is read twice for them. */
#define BLOCK 512

/* For each block of pixels: s = sum over the tile's frames, m = mean, v = sum of (x - m)^2; then
 * fold the block into the partition's buffers. Frames outer, pixels inner: contiguous, vectorises. */
#define STDDEV_TILE(T)                                                                             \
    do {                                                                                           \
        const T *restrict x = tile->data;                                                          \
        for (uint64_t p0 = 0; p0 < n; p0 += BLOCK) {                                               \
            uint64_t len = n - p0 < BLOCK ? n - p0 : BLOCK;                                        \
            double s[BLOCK], v[BLOCK];                                                             \
            for (uint64_t p = 0; p < len; p++)                                                     \
                s[p] = v[p] = 0;                                                                   \
            for (uint64_t f = 0; f < depth; f++) {                                                 \
                const T *restrict a = x + f * stride + p0;                                         \
                for (uint64_t p = 0; p < len; p++)                                                 \
                    s[p] += (double)a[p];                                                          \
            }                                                                                      \
            double mean[BLOCK];                                                                    \
            for (uint64_t p = 0; p < len; p++)                                                     \
                mean[p] = s[p] / (double)depth;                                                    \
            for (uint64_t f = 0; f < depth; f++) {                                                 \
                const T *restrict a = x + f * stride + p0;                                         \
                for (uint64_t p = 0; p < len; p++) {                                               \
                    double d = (double)a[p] - mean[p];                                             \
                    v[p] += d * d;                                                                 \
                }                                                                                  \
            }                                                                                      \
            stddev_combine(sum + p0, varsum + p0, na, s, v, depth, len);                          \
        }                                                                                          \
    } while (0)

static int stddev_tile(udf_ctx *ctx, const udf_tile *tile)
{
    uint64_t *num_frames = ctx->buffers[BUF_NUM_FRAMES].data;
    double *sum = ctx->buffers[BUF_SUM].data, *varsum = ctx->buffers[BUF_VARSUM].data;
    /* Frames may come in bands of rows, each band once for the same frames. num_frames counts a
     * frame after its last band, so every band of a tile sees the same count na of earlier frames. */
    uint64_t na = *num_frames, n = tile->sig_count, depth = tile->depth;
    uint64_t stride = tile->frame_stride;
    switch (ctx->meta->input_dtype) {
    case UDF_U8: STDDEV_TILE(uint8_t); break;
    case UDF_U16: STDDEV_TILE(uint16_t); break;
    case UDF_U32: STDDEV_TILE(uint32_t); break;
    case UDF_I8: STDDEV_TILE(int8_t); break;
    case UDF_I16: STDDEV_TILE(int16_t); break;
    case UDF_I32: STDDEV_TILE(int32_t); break;
    case UDF_F32: STDDEV_TILE(float); break;
    case UDF_F64: STDDEV_TILE(double); break;
    default:
        ctx->host->error(ctx, "unsupported input dtype %d", (int)ctx->meta->input_dtype);
        return UDF_ERR_UNSUPPORTED;
    }
    if (tile->sig_start + tile->sig_count == ctx->meta->sig_size)
        *num_frames += depth;
    return UDF_OK;
}

static int stddev_merge(udf_ctx *ctx, udf_view *dest, const udf_view *src)
{
    uint64_t *na = dest[BUF_NUM_FRAMES].data;
    uint64_t nb = *(const uint64_t *)src[BUF_NUM_FRAMES].data;
    stddev_combine(dest[BUF_SUM].data, dest[BUF_VARSUM].data, *na, src[BUF_SUM].data,
                   src[BUF_VARSUM].data, nb, dest[BUF_SUM].count);
    *na += nb;
    (void)ctx;
    return UDF_OK;
}

/* mean = sum / n, var = varsum / n (population variance, NumPy's ddof=0), std = sqrt(var); each
 * computed in float64 and rounded once. With no frames selected n = 0 and all three are NaN. */
static int stddev_results(udf_ctx *ctx)
{
    const udf_view *b = ctx->buffers;
    double n = (double)*(const uint64_t *)b[BUF_NUM_FRAMES].data;
    const double *sum = b[BUF_SUM].data, *varsum = b[BUF_VARSUM].data;
    uint64_t count = b[BUF_SUM].count;
    if (b[BUF_MEAN].dtype == UDF_F64) {
        double *mean = b[BUF_MEAN].data, *var = b[BUF_VAR].data, *std = b[BUF_STD].data;
        for (uint64_t p = 0; p < count; p++) {
            mean[p] = sum[p] / n;
            var[p] = varsum[p] / n;
            std[p] = sqrt(var[p]);
        }
    } else {
        float *mean = b[BUF_MEAN].data, *var = b[BUF_VAR].data, *std = b[BUF_STD].data;
        for (uint64_t p = 0; p < count; p++) {
            double v = varsum[p] / n;
            mean[p] = (float)(sum[p] / n);
            var[p] = (float)v;
            std[p] = (float)sqrt(v);
        }
    }
    return UDF_OK;
}

static const udf_plugin stddev_plugin = {
    UDF_PLUGIN_HEADER,
    .name = "stddev",
    .version = "1.0.0",
    .description = "per-pixel mean, variance and standard deviation over frames",
    .params = stddev_params,
    .input_dtype = UDF_DTYPE_NATIVE,
    .declare_buffers = stddev_declare,
    .process_tile = stddev_tile,
    .merge = stddev_merge,
    .get_results = stddev_results,
};

UDF_PLUGIN_DEFINE(stddev_plugin)
