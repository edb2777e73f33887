/* The max and min plugins, one implementation: max.c and min.c define EXTREMUM_NAME, EXTREMUM_
 * DESCRIPTION, EXTREMUM_BEYOND(x, m) (x beyond m: x > m, or x < m) and EXTREMUM_FILL (the identity:
 * -INFINITY, or INFINITY), then include this file once. Not part of the SDK. */
#ifndef UDFHOST_PLUGINS_EXTREMUM_H
#define UDFHOST_PLUGINS_EXTREMUM_H

#include <math.h>
#include <udfhost/udf.h>

#include "common.h"

static int extremum_declare(udf_ctx *ctx)
{
    /* input_dtype: the raw dtype, or float32 when the host applies corrections (NATIVE rule). The
     * fill (-inf for max, +inf for min) saturates to the lowest or highest value of an integer
     * type: the identity of the operation. */
    udf_buffer_decl out = {.name = "intensity", .kind = UDF_KIND_SIG,
                           .dtype = ctx->meta->input_dtype, .fill = EXTREMUM_FILL};
    return ctx->host->declare_buffer(ctx, &out);
}

/* m = max(m, x) or min(m, x), elementwise. For floats a NaN x replaces m (x != x), and a NaN m
 * stays (x > NaN and x < NaN are false): NaN wins whichever side it is on. For integers x != x
 * is always false. Both forms compile to branch-free selects, so the loops vectorise. */
#define EXTREMUM_OF(m, x) (EXTREMUM_BEYOND(x, m) || (x) != (x) ? (x) : (m))

/* Frames outer, pixels inner: every frame of the tile streams over the same slice of m. The bounds
 * are copied to locals because a store through an 8-bit m may alias *tile as far as C is concerned,
 * which would make the compiler reload them and give up on vectorising. Each line read is
 * prefetched ahead (COMMON_AHEAD); ivdep, because m (the plugin's buffer) never overlaps the
 * frames, and GCC otherwise tested for that at every line: 0.8 instructions a pixel, not 0.5. */
#define EXTREMUM_TILE(T)                                                                           \
    do {                                                                                           \
        T *restrict m = ctx->buffers[0].data;                                                      \
        const uint64_t n = tile->sig_count, depth = tile->depth, stride = tile->frame_stride;      \
        for (uint64_t f = 0; f < depth; f++) {                                                     \
            const T *restrict a = (const T *)tile->data + f * stride;                              \
            uint64_t p = 0;                                                                        \
            for (; p + COMMON_LINE(T) <= n; p += COMMON_LINE(T)) {                                 \
                COMMON_PREFETCH_AHEAD(a + p);                                                      \
                _Pragma("GCC ivdep") for (uint64_t q = p; q < p + COMMON_LINE(T); q++)             \
                    m[q] = EXTREMUM_OF(m[q], a[q]);                                                \
            }                                                                                      \
            for (; p < n; p++)                                                                     \
                m[p] = EXTREMUM_OF(m[p], a[p]);                                                    \
        }                                                                                          \
    } while (0)

#define EXTREMUM_MERGE(T)                                                                          \
    do {                                                                                           \
        T *restrict m = dest[0].data;                                                              \
        const T *restrict s = src[0].data;                                                         \
        const uint64_t n = dest[0].count;                                                          \
        for (uint64_t p = 0; p < n; p++)                                                           \
            m[p] = EXTREMUM_OF(m[p], s[p]);                                                        \
    } while (0)

/* One switch over the element type for both hooks; the tile hook passes src == NULL. */
COMMON_HOT
static int extremum_dispatch(udf_ctx *ctx, const udf_tile *tile, udf_view *dest,
                             const udf_view *src)
{
    switch (ctx->meta->input_dtype) {
#define CASE(D, T)                                                                                 \
    case D:                                                                                        \
        if (tile)                                                                                  \
            EXTREMUM_TILE(T);                                                                      \
        else                                                                                       \
            EXTREMUM_MERGE(T);                                                                     \
        break;
    CASE(UDF_U8, uint8_t)
    CASE(UDF_U16, uint16_t)
    CASE(UDF_U32, uint32_t)
    CASE(UDF_U64, uint64_t)
    CASE(UDF_I8, int8_t)
    CASE(UDF_I16, int16_t)
    CASE(UDF_I32, int32_t)
    CASE(UDF_I64, int64_t)
    CASE(UDF_F32, float)
    CASE(UDF_F64, double)
#undef CASE
    default:
        ctx->host->error(ctx, "unsupported input dtype %d", (int)ctx->meta->input_dtype);
        return UDF_ERR_UNSUPPORTED;
    }
    return UDF_OK;
}

static int extremum_tile(udf_ctx *ctx, const udf_tile *tile)
{
    return extremum_dispatch(ctx, tile, NULL, NULL);
}

static int extremum_merge(udf_ctx *ctx, udf_view *dest, const udf_view *src)
{
    return extremum_dispatch(ctx, NULL, dest, src);
}

static const udf_plugin extremum_plugin = {
    UDF_PLUGIN_HEADER,
    .name = EXTREMUM_NAME,
    .version = "1.0.0",
    .description = EXTREMUM_DESCRIPTION,
    .input_dtype = UDF_DTYPE_NATIVE,
    .declare_buffers = extremum_declare,
    .process_tile = extremum_tile,
    .merge = extremum_merge,
};

UDF_PLUGIN_DEFINE(extremum_plugin)

#endif
