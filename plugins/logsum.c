/* logsum: the per-pixel sum over the selected frames of log(frame - min(frame) + 1), the minimum
 * taken over each whole frame (LiberTEM's LogsumUDF): a diffraction pattern with its dynamic range
 * compressed, for finding faint features. Accumulated in float64, rounded once at the end. */
#include <math.h>
#include <stdlib.h>
#include <udfhost/udf.h>

#include "common.h"

static const udf_param_decl logsum_params[] = {
    {.name = "dtype", .type = UDF_PARAM_CHOICE, .default_value = "float32",
     .choices = "float32|float64", .help = "dtype of the result buffer logsum"},
    {0},
};

enum { BUF_ACC, BUF_LOGSUM };

static int logsum_declare(udf_ctx *ctx)
{
    const char *dtype;
    int rc = ctx->host->param_string(ctx, "dtype", 0, &dtype);
    if (rc)
        return rc;
    udf_buffer_decl acc = {.name = "acc", .kind = UDF_KIND_SIG, .dtype = UDF_F64,
                           .flags = UDF_BUFFER_PRIVATE};
    udf_buffer_decl out = {.name = "logsum", .kind = UDF_KIND_SIG, .dtype = common_result_dtype(dtype),
                           .flags = UDF_BUFFER_RESULT_ONLY};
    if ((rc = ctx->host->declare_buffer(ctx, &acc)))
        return rc;
    return ctx->host->declare_buffer(ctx, &out);
}

/* For 8- and 16-bit input, x - min takes at most 65536 values, so log(k + 1) comes from a table
 * computed once: the same log() call on the same exact argument as the direct path, so the bits
 * do not depend on the path, and the per-pixel log (the cost of this plugin) disappears. */
static uint64_t logsum_table_size(udf_dtype d)
{
    switch (d) {
    case UDF_U8: case UDF_I8: return 1u << 8;
    case UDF_U16: case UDF_I16: return 1u << 16;
    default: return 0;
    }
}

static int logsum_init(udf_ctx *ctx, void **task_data)
{
    uint64_t n = logsum_table_size(ctx->meta->input_dtype);
    *task_data = NULL;
    if (!n)
        return UDF_OK;
    double *table = malloc(n * sizeof *table);
    if (!table) {
        ctx->host->error(ctx, "out of memory for a table of %llu logarithms", (unsigned long long)n);
        return UDF_ERR_NOMEM;
    }
    for (uint64_t k = 0; k < n; k++)
        table[k] = log((double)k + 1.0);
    *task_data = table;
    return UDF_OK;
}

static void logsum_cleanup(udf_ctx *ctx, void *task_data)
{
    (void)ctx;
    free(task_data);
}

/* Minimum of a whole frame in its own type (exact). Eight independent lanes so the loop vectorises
 * for floats too (a single running minimum is a reduction the compiler may not reorder). NaN pixels
 * are skipped (x < m is false for them), like np.nanmin; the lanes start at the type's largest
 * value (+inf for floats), so a frame of only NaN has minimum +inf and logs of NaN. */
#define FRAME_MIN(T, HIGHEST, a, n, out)                                                           \
    do {                                                                                           \
        T lane[8];                                                                                 \
        for (int j = 0; j < 8; j++)                                                                \
            lane[j] = (HIGHEST);                                                                   \
        uint64_t p = 0;                                                                            \
        for (; p + 8 <= (n); p += 8)                                                               \
            for (int j = 0; j < 8; j++)                                                            \
                lane[j] = (a)[p + j] < lane[j] ? (a)[p + j] : lane[j];                             \
        for (; p < (n); p++)                                                                       \
            lane[0] = (a)[p] < lane[0] ? (a)[p] : lane[0];                                         \
        for (int j = 1; j < 8; j++)                                                                \
            lane[0] = lane[j] < lane[0] ? lane[j] : lane[0];                                       \
        (out) = lane[0];                                                                           \
    } while (0)

/* Small integers: acc[p] += table[x - min], the difference exact in int32. */
#define LOGSUM_TABLE(T, HIGHEST)                                                                   \
    do {                                                                                           \
        const double *restrict table = ctx->task_data;                                             \
        for (uint64_t f = 0; f < tile->depth; f++) {                                               \
            const T *restrict a = (const T *)tile->data + f * tile->frame_stride;                 \
            T lo;                                                                                  \
            FRAME_MIN(T, HIGHEST, a, n, lo);                                                       \
            for (uint64_t p = 0; p < n; p++)                                                       \
                acc[p] += table[(int32_t)a[p] - (int32_t)lo];                                      \
        }                                                                                          \
    } while (0)

/* Everything else: x - min is exact in float64 for 32-bit integers and (nearly always) for
 * float32; +1 then log, as LiberTEM writes it, rather than log1p, so that NumPy's
 * log(x - min + 1) in float64 is the reference. */
#define LOGSUM_DIRECT(T, HIGHEST)                                                                  \
    do {                                                                                           \
        for (uint64_t f = 0; f < tile->depth; f++) {                                               \
            const T *restrict a = (const T *)tile->data + f * tile->frame_stride;                 \
            T lo;                                                                                  \
            FRAME_MIN(T, HIGHEST, a, n, lo);                                                       \
            double m = (double)lo;                                                                 \
            for (uint64_t p = 0; p < n; p++)                                                       \
                acc[p] += log(((double)a[p] - m) + 1.0);                                           \
        }                                                                                          \
    } while (0)

static int logsum_tile(udf_ctx *ctx, const udf_tile *tile)
{
    double *restrict acc = ctx->buffers[BUF_ACC].data;
    uint64_t n = tile->sig_count; /* the whole frame: UDF_TILE_FULL_FRAMES */
    switch (ctx->meta->input_dtype) {
    case UDF_U8: LOGSUM_TABLE(uint8_t, UINT8_MAX); break;
    case UDF_U16: LOGSUM_TABLE(uint16_t, UINT16_MAX); break;
    case UDF_I8: LOGSUM_TABLE(int8_t, INT8_MAX); break;
    case UDF_I16: LOGSUM_TABLE(int16_t, INT16_MAX); break;
    case UDF_U32: LOGSUM_DIRECT(uint32_t, UINT32_MAX); break;
    case UDF_I32: LOGSUM_DIRECT(int32_t, INT32_MAX); break;
    case UDF_F32: LOGSUM_DIRECT(float, INFINITY); break;
    case UDF_F64: LOGSUM_DIRECT(double, INFINITY); break;
    default:
        ctx->host->error(ctx, "unsupported input dtype %d", (int)ctx->meta->input_dtype);
        return UDF_ERR_UNSUPPORTED;
    }
    return UDF_OK;
}

static int logsum_merge(udf_ctx *ctx, udf_view *dest, const udf_view *src)
{
    double *restrict d = dest[BUF_ACC].data;
    const double *restrict s = src[BUF_ACC].data;
    for (uint64_t p = 0; p < dest[BUF_ACC].count; p++)
        d[p] += s[p];
    (void)ctx;
    return UDF_OK;
}

static int logsum_results(udf_ctx *ctx)
{
    udf_view *out = &ctx->buffers[BUF_LOGSUM];
    common_round_into(out, &ctx->buffers[BUF_ACC], out->count);
    return UDF_OK;
}

static const udf_plugin logsum_plugin = {
    UDF_PLUGIN_HEADER,
    .name = "logsum",
    .version = "1.0.0",
    .description = "sum over frames of log(frame - min(frame) + 1) per detector pixel",
    .params = logsum_params,
    .input_dtype = UDF_DTYPE_NATIVE,
    .tiling = UDF_TILE_FULL_FRAMES,
    .declare_buffers = logsum_declare,
    .init_task = logsum_init,
    .process_tile = logsum_tile,
    .merge = logsum_merge,
    .get_results = logsum_results,
    .cleanup = logsum_cleanup,
};

UDF_PLUGIN_DEFINE(logsum_plugin)
