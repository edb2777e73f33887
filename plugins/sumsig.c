/* sumsig: the sum over each frame, one value per scan position (a virtual bright-field image of
 * the whole detector). Integer data is summed exactly in 64-bit integers, float data in float64,
 * and each value is rounded once to the requested dtype at the end. */
#include <udfhost/udf.h>

#include "common.h"

/* AVX2 for 16-bit data where the compiler can target it for one function (GCC, Clang on x86-64),
 * picked per tile by a CPU check that costs a load and a test. */
#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define SUMSIG_AVX2 1
#endif

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

#if defined(SUMSIG_AVX2)
/* acc[f] += sum of the tile's pixels of frame f for 16-bit data (flip: 0x8000 for uint16, which
 * pmaddwd, multiplying signed words, then sees as x - 32768; 0 for int16). pmaddwd against ones
 * adds pixel pairs into int32 lanes: 3 instructions for 16 pixels, a third of what the compiler
 * makes of SUMSIG_NARROW. Each lane gains at most 2^16 per vector, so the lanes are flushed into
 * int64 every SUMSIG_VECTORS vectors; the shift is added back per pixel at the end. Exact. */
#define SUMSIG_VECTORS 16384u
__attribute__((target("avx2"))) static void sumsig_avx2(const udf_tile *tile, int64_t *acc,
                                                         short flip, int64_t shift)
{
    const __m256i bits = _mm256_set1_epi16(flip), ones = _mm256_set1_epi16(1);
    const uint64_t n = tile->sig_count, nv = n / 16;
    for (uint64_t f = 0; f < tile->depth; f++) {
        const int16_t *a = (const int16_t *)tile->data + f * tile->frame_stride;
        int64_t s = shift * (int64_t)n;
        for (uint64_t v0 = 0; v0 < nv; v0 += SUMSIG_VECTORS) {
            uint64_t v1 = nv - v0 < SUMSIG_VECTORS ? nv : v0 + SUMSIG_VECTORS;
            /* Two chains of additions, so that one does not wait on the other. */
            __m256i s0 = _mm256_setzero_si256(), s1 = s0;
            uint64_t v = v0;
            for (; v + 2 <= v1; v += 2) {
                COMMON_PREFETCH_AHEAD(a + 16 * v);
                __m256i x0 = _mm256_loadu_si256((const __m256i *)(a + 16 * v));
                __m256i x1 = _mm256_loadu_si256((const __m256i *)(a + 16 * v + 16));
                s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(_mm256_xor_si256(x0, bits), ones));
                s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(_mm256_xor_si256(x1, bits), ones));
            }
            if (v < v1) {
                __m256i x0 = _mm256_loadu_si256((const __m256i *)(a + 16 * v));
                s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(_mm256_xor_si256(x0, bits), ones));
            }
            int32_t l[16];
            _mm256_storeu_si256((__m256i *)l, s0);
            _mm256_storeu_si256((__m256i *)(l + 8), s1);
            for (int k = 0; k < 16; k++)
                s += l[k];
        }
        for (uint64_t p = 16 * nv; p < n; p++)
            s += (int16_t)(a[p] ^ flip);
        acc[f] += s;
    }
}
#endif

COMMON_HOT
static int sumsig_tile(udf_ctx *ctx, const udf_tile *tile)
{
#if defined(SUMSIG_AVX2)
    udf_dtype d = ctx->meta->input_dtype;
    if ((d == UDF_U16 || d == UDF_I16) && (__builtin_cpu_init(), __builtin_cpu_supports("avx2"))) {
        int u = d == UDF_U16;
        sumsig_avx2(tile, ctx->buffers[BUF_ACC].data, u ? (short)0x8000 : 0, u ? 32768 : 0);
        return UDF_OK;
    }
#endif
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
