/* sumsig: the sum over each frame, one value per scan position (a virtual bright-field image of
 * the whole detector). Integer data is summed exactly in 64-bit integers, float data in float64,
 * and each value is rounded once to the requested dtype at the end. */
#include <udfhost/udf.h>

#include "common.h"

static const udf_param_decl sumsig_params[] = {
    {.name = "dtype", .type = UDF_PARAM_CHOICE, .default_value = "float32",
     .choices = "float32|float64", .help = "dtype of the result buffer intensity"},
    {0},
};

enum { BUF_ACC, BUF_INTENSITY };

static int sumsig_declare(udf_ctx *ctx)
{
    const char *dtype;
    int rc = ctx->host->param_string(ctx, "dtype", 0, &dtype);
    if (rc)
        return rc;
    udf_buffer_decl acc = {.name = "acc", .kind = UDF_KIND_NAV, .flags = UDF_BUFFER_PRIVATE,
                           .dtype = common_acc_dtype(ctx->meta->raw_dtype)};
    udf_buffer_decl out = {.name = "intensity", .kind = UDF_KIND_NAV,
                           .flags = UDF_BUFFER_RESULT_ONLY,
                           .dtype = common_result_dtype(dtype)};
    if ((rc = ctx->host->declare_buffer(ctx, &acc)))
        return rc;
    return ctx->host->declare_buffer(ctx, &out);
}

/* acc[f] += sum of the tile's pixels of frame f (a frame may arrive in several bands). */
#define SUMSIG_TILE(T, A)                                                                          \
    do {                                                                                           \
        const T *restrict x = tile->data;                                                          \
        A *restrict acc = ctx->buffers[BUF_ACC].data;                                              \
        for (uint64_t f = 0; f < tile->depth; f++) {                                               \
            const T *restrict a = x + f * tile->frame_stride;                                      \
            A s = 0;                                                                               \
            for (uint64_t p = 0; p < tile->sig_count; p++)                                         \
                s += (A)a[p];                                                                      \
            acc[f] += s;                                                                           \
        }                                                                                          \
    } while (0)

/* For 8- and 16-bit data: sum runs of NARROW_RUN pixels in 32 bits (no overflow: 32768 * 65535 <
 * 2^32, 32768 * 32768 <= 2^31), which vectorises far better than widening every pixel to 64. */
#define NARROW_RUN 32768u
#define SUMSIG_NARROW(T, P)                                                                        \
    do {                                                                                           \
        const T *restrict x = tile->data;                                                          \
        int64_t *restrict acc = ctx->buffers[BUF_ACC].data;                                        \
        for (uint64_t f = 0; f < tile->depth; f++) {                                               \
            const T *restrict a = x + f * tile->frame_stride;                                      \
            int64_t s = 0;                                                                         \
            for (uint64_t p0 = 0; p0 < tile->sig_count; p0 += NARROW_RUN) {                       \
                uint64_t end = tile->sig_count - p0 < NARROW_RUN ? tile->sig_count : p0 + NARROW_RUN; \
                P run = 0;                                                                         \
                for (uint64_t p = p0; p < end; p++)                                                \
                    run += a[p];                                                                   \
                s += run;                                                                          \
            }                                                                                      \
            acc[f] += s;                                                                           \
        }                                                                                          \
    } while (0)

static int sumsig_tile(udf_ctx *ctx, const udf_tile *tile)
{
    switch (ctx->meta->input_dtype) {
    case UDF_U8: SUMSIG_NARROW(uint8_t, uint32_t); break;
    case UDF_U16: SUMSIG_NARROW(uint16_t, uint32_t); break;
    case UDF_U32: SUMSIG_TILE(uint32_t, int64_t); break;
    case UDF_I8: SUMSIG_NARROW(int8_t, int32_t); break;
    case UDF_I16: SUMSIG_NARROW(int16_t, int32_t); break;
    case UDF_I32: SUMSIG_TILE(int32_t, int64_t); break;
    case UDF_F32: SUMSIG_TILE(float, double); break;
    case UDF_F64: SUMSIG_TILE(double, double); break;
    default:
        ctx->host->error(ctx, "unsupported input dtype %d", (int)ctx->meta->input_dtype);
        return UDF_ERR_UNSUPPORTED;
    }
    return UDF_OK;
}

static int sumsig_results(udf_ctx *ctx)
{
    const udf_view *acc = &ctx->buffers[BUF_ACC];
    udf_view *out = &ctx->buffers[BUF_INTENSITY];
    common_round_into(out, acc, out->count);
    return UDF_OK;
}

static const udf_plugin sumsig_plugin = {
    UDF_PLUGIN_HEADER,
    .name = "sumsig",
    .version = "1.0.0",
    .description = "sum over each frame (one value per scan position)",
    .params = sumsig_params,
    .input_dtype = UDF_DTYPE_NATIVE,
    .declare_buffers = sumsig_declare,
    .process_tile = sumsig_tile,
    .get_results = sumsig_results,
};

UDF_PLUGIN_DEFINE(sumsig_plugin)
