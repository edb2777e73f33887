/* sum: the sum of all (selected) frames, one value per detector pixel: the average diffraction
 * pattern times the frame count. Integer data is summed exactly in 64-bit integers, float data in
 * float64, and the result is rounded once to the requested dtype at the end. */
#include <udfhost/udf.h>

#include "common.h"

static const udf_param_decl sum_params[] = {
    {.name = "dtype", .type = UDF_PARAM_CHOICE, .default_value = "float32",
     .choices = "float32|float64", .help = "dtype of the result buffer intensity"},
    {0},
};

enum { BUF_ACC, BUF_INTENSITY };

static int sum_declare(udf_ctx *ctx)
{
    const char *dtype;
    int rc = ctx->host->param_string(ctx, "dtype", 0, &dtype);
    if (rc)
        return rc;
    udf_buffer_decl acc = {.name = "acc", .kind = UDF_KIND_SIG, .flags = UDF_BUFFER_PRIVATE,
                           .dtype = common_acc_dtype(ctx->meta->raw_dtype)};
    udf_buffer_decl out = {.name = "intensity", .kind = UDF_KIND_SIG,
                           .flags = UDF_BUFFER_RESULT_ONLY,
                           .dtype = common_result_dtype(dtype)};
    if ((rc = ctx->host->declare_buffer(ctx, &acc)))
        return rc;
    return ctx->host->declare_buffer(ctx, &out);
}

/* acc[p] += frame_f[p] over all frames of the tile. A loop over one frame at a time loads and
 * stores acc (8 bytes a pixel, 128 KiB for a 128 x 128 frame: L2, not L1) for every 2-byte pixel
 * it reads, and stalled at about 11 GB/s a core in issue 5's measurements; adding 8 frames in
 * registers first and updating acc once (SUM_PASS8) reached 25 GB/s. P is the type the frames
 * are added in: 32 bits for 8- and 16-bit data (exact: 8 * 65535 < 2^32), which vectorises far
 * better than widening each to 64.
 * Integer sums are exact in any order; float data keeps passes of four frames (SUM_PASS4) so that
 * its bits stay what they were, rounded in the same order. Both prefetch ahead a line at a time
 * (see COMMON_AHEAD). */
#define SUM_PREFETCH4(a, b, c, d)                                                                  \
    do {                                                                                           \
        COMMON_PREFETCH_AHEAD(a);                                                                  \
        COMMON_PREFETCH_AHEAD(b);                                                                  \
        COMMON_PREFETCH_AHEAD(c);                                                                  \
        COMMON_PREFETCH_AHEAD(d);                                                                  \
    } while (0)
#define SUM_PASS8(T, P, A)                                                                         \
    for (; f + 8 <= depth; f += 8) {                                                               \
        const T *restrict a = x + f * s, *restrict b = a + s, *restrict c = b + s,                 \
                          *restrict d = c + s, *restrict e = d + s, *restrict g = e + s,           \
                          *restrict h = g + s, *restrict k = h + s;                                \
        uint64_t p = 0;                                                                            \
        for (; p + COMMON_LINE(T) <= n; p += COMMON_LINE(T)) {                                     \
            SUM_PREFETCH4(a + p, b + p, c + p, d + p);                                             \
            SUM_PREFETCH4(e + p, g + p, h + p, k + p);                                             \
            for (uint64_t q = p; q < p + COMMON_LINE(T); q++)                                      \
                acc[q] += (A)((((P)a[q] + (P)b[q]) + ((P)c[q] + (P)d[q])) +                        \
                              (((P)e[q] + (P)g[q]) + ((P)h[q] + (P)k[q])));                        \
        }                                                                                          \
        for (; p < n; p++)                                                                         \
            acc[p] += (A)((((P)a[p] + (P)b[p]) + ((P)c[p] + (P)d[p])) +                            \
                          (((P)e[p] + (P)g[p]) + ((P)h[p] + (P)k[p])));                            \
    }
#define SUM_PASS4(T, P, A)                                                                         \
    for (; f + 4 <= depth; f += 4) {                                                               \
        const T *restrict a = x + f * s, *restrict b = a + s, *restrict c = b + s,                 \
                          *restrict d = c + s;                                                     \
        uint64_t p = 0;                                                                            \
        for (; p + COMMON_LINE(T) <= n; p += COMMON_LINE(T)) {                                     \
            SUM_PREFETCH4(a + p, b + p, c + p, d + p);                                             \
            for (uint64_t q = p; q < p + COMMON_LINE(T); q++)                                      \
                acc[q] += (A)(((P)a[q] + (P)b[q]) + ((P)c[q] + (P)d[q]));                          \
        }                                                                                          \
        for (; p < n; p++)                                                                         \
            acc[p] += (A)(((P)a[p] + (P)b[p]) + ((P)c[p] + (P)d[p]));                              \
    }
#define SUM_TILE(T, P, A, PASS)                                                                    \
    do {                                                                                           \
        const T *restrict x = tile->data;                                                          \
        A *restrict acc = ctx->buffers[BUF_ACC].data;                                              \
        const uint64_t n = tile->sig_count, s = tile->frame_stride, depth = tile->depth;           \
        uint64_t f = 0;                                                                            \
        PASS(T, P, A)                                                                              \
        for (; f < depth; f++) {                                                                   \
            const T *restrict a = x + f * s;                                                       \
            for (uint64_t p = 0; p < n; p++)                                                       \
                acc[p] += (A)a[p];                                                                 \
        }                                                                                          \
    } while (0)

COMMON_HOT
static int sum_tile(udf_ctx *ctx, const udf_tile *tile)
{
    switch (ctx->meta->input_dtype) {
    case UDF_U8: SUM_TILE(uint8_t, uint32_t, int64_t, SUM_PASS8); break;
    case UDF_U16: SUM_TILE(uint16_t, uint32_t, int64_t, SUM_PASS8); break;
    case UDF_U32: SUM_TILE(uint32_t, int64_t, int64_t, SUM_PASS8); break;
    case UDF_I8: SUM_TILE(int8_t, int32_t, int64_t, SUM_PASS8); break;
    case UDF_I16: SUM_TILE(int16_t, int32_t, int64_t, SUM_PASS8); break;
    case UDF_I32: SUM_TILE(int32_t, int64_t, int64_t, SUM_PASS8); break;
    case UDF_F32: SUM_TILE(float, double, double, SUM_PASS4); break;
    case UDF_F64: SUM_TILE(double, double, double, SUM_PASS4); break;
    default:
        ctx->host->error(ctx, "unsupported input dtype %d", (int)ctx->meta->input_dtype);
        return UDF_ERR_UNSUPPORTED;
    }
    return UDF_OK;
}

static int sum_merge(udf_ctx *ctx, udf_view *dest, const udf_view *src)
{
    uint64_t n = dest[BUF_ACC].count;
    if (dest[BUF_ACC].dtype == UDF_I64) {
        int64_t *restrict d = dest[BUF_ACC].data;
        const int64_t *restrict s = src[BUF_ACC].data;
        for (uint64_t p = 0; p < n; p++)
            d[p] += s[p];
    } else {
        double *restrict d = dest[BUF_ACC].data;
        const double *restrict s = src[BUF_ACC].data;
        for (uint64_t p = 0; p < n; p++)
            d[p] += s[p];
    }
    (void)ctx;
    return UDF_OK;
}

static int sum_results(udf_ctx *ctx)
{
    const udf_view *acc = &ctx->buffers[BUF_ACC];
    udf_view *out = &ctx->buffers[BUF_INTENSITY];
    common_round_into(out, acc, out->count);
    return UDF_OK;
}

static const udf_plugin sum_plugin = {
    UDF_PLUGIN_HEADER,
    .name = "sum",
    .version = "1.0.0",
    .description = "sum of all frames (one value per detector pixel)",
    .params = sum_params,
    .input_dtype = UDF_DTYPE_NATIVE,
    .declare_buffers = sum_declare,
    .process_tile = sum_tile,
    .merge = sum_merge,
    .get_results = sum_results,
};

UDF_PLUGIN_DEFINE(sum_plugin)
