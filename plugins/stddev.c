/* stddev: per-pixel mean, variance and standard deviation over the selected frames (LiberTEM's
 * StdDevUDF).
 *
 * 8- and 16-bit integer data: the sum and the sum of squares of every pixel are accumulated
 * exactly in 64-bit integers (private buffers isum, isumsq), merged by plain addition, and turned
 * into sum and varsum = (n * sum of squares - sum^2) / n in get_results, the numerator exact in 128
 * bits: the exact variance rounded twice, whatever the thread count or tiling.
 *
 * Everything else: each tile is reduced by two passes in float64 (its own mean, then squared
 * deviations from it); tiles and partitions are combined with the pairwise update of Chan, Golub
 * and LeVeque, so no large sum of squares is ever formed and data with a large offset keeps its
 * precision. */
#include <math.h>
#include <stdint.h>
#include <udfhost/udf.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "common.h"

static const udf_param_decl stddev_params[] = {
    {.name = "dtype", .type = UDF_PARAM_CHOICE, .default_value = "float32",
     .choices = "float32|float64", .help = "dtype of the result buffers mean, var and std"},
    {0},
};

enum { BUF_NUM_FRAMES, BUF_SUM, BUF_VARSUM, BUF_MEAN, BUF_VAR, BUF_STD, BUF_ISUM, BUF_ISUMSQ };

/* The exact integer path takes these input dtypes. Values are shifted into int16 first (uint16
 * by -32768, see int_shift), so every value v satisfies |v| <= 32768 and v^2 <= 2^30. */
static int int_path(udf_dtype d)
{
    return d == UDF_U8 || d == UDF_I8 || d == UDF_U16 || d == UDF_I16;
}

/* isum holds the sum of (x - shift), isumsq the sum of (x - shift)^2; the variance does not
 * depend on the shift, and sum = isum + n * shift. */
static int64_t int_shift(udf_dtype d)
{
    return d == UDF_U16 ? 32768 : 0;
}

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
        /* The exact integer path's accumulators (unused, all zero, for other dtypes). */
        {.name = "isum", .kind = UDF_KIND_SIG, .dtype = UDF_I64, .flags = UDF_BUFFER_PRIVATE},
        {.name = "isumsq", .kind = UDF_KIND_SIG, .dtype = UDF_U64, .flags = UDF_BUFFER_PRIVATE},
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
    /* (mean_b - mean_a)^2 * na * nb / (na + nb) = (na * sb - nb * sa)^2 / (na * nb * (na + nb)):
     * no division per pixel (two of them made this loop a sixth of a float32 run). */
    const double a = (double)na, b = (double)nb, k = 1.0 / (a * b * (a + b));
    for (uint64_t p = 0; p < n; p++) {
        double d = a * sb[p] - b * sum[p];
        varsum[p] += vb[p] + d * d * k;
        sum[p] += sb[p];
    }
}

/* Pixels per block of the two-pass tile reduction: two float64 scratch rows of this length stay in
 * L1 while every frame of the tile is read twice for them. */
#define BLOCK 512

/* For each block of pixels: s = sum over the tile's frames, m = mean, v = sum of (x - m)^2; then
 * fold the block into the partition's buffers. Frames outer, pixels inner: contiguous, vectorises.
 * The first pass prefetches each frame's next block, a line per line read: float32 stddev spent
 * most of its run waiting for loads (perf), and took 0.28 s per GiB on one core instead of 0.23. */
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
                enum { LINE = 64 / sizeof(T) };                                                    \
                uint64_t p = 0;                                                                    \
                for (; p + LINE <= len; p += LINE) {                                               \
                    STDDEV_PREFETCH(a + BLOCK + p);                                                \
                    for (uint64_t q = p; q < p + LINE; q++)                                        \
                        s[q] += (double)a[q];                                                      \
                }                                                                                  \
                for (; p < len; p++)                                                               \
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
            stddev_combine(sum + p0, varsum + p0, na, s, v, depth, len);                           \
        }                                                                                          \
    } while (0)


/* Load 8 pixels as int16 shifted as int_shift says (see int_path). */
#if defined(__SSE2__)
#define STDDEV_LOAD8_U8(p)                                                                          \
    _mm_unpacklo_epi8(_mm_loadl_epi64((const __m128i *)(p)), _mm_setzero_si128())
#define STDDEV_LOAD8_I8(p)                                                                         \
    _mm_srai_epi16(_mm_unpacklo_epi8(_mm_setzero_si128(), _mm_loadl_epi64((const __m128i *)(p))), 8)
#define STDDEV_LOAD8_U16(p)                                                                        \
    _mm_xor_si128(_mm_loadu_si128((const __m128i *)(p)), _mm_set1_epi16((short)0x8000))
#define STDDEV_LOAD8_I16(p) _mm_loadu_si128((const __m128i *)(p))

/* Distance in bytes from each frame's pixels to the ones prefetched for a later strip. */
#define STDDEV_AHEAD 256

/* For 8 pixels at a time over all frames of the tile, two frames per step: interleaving the two
 * frames' int16 values and multiplying with pmaddwd gives a^2 + b^2 per pixel (<= 2^31, exact as
 * uint32) and, against ones, a + b (int32); the squares go on in two 64-bit lanes per pixel. The
 * accumulators live in registers for the whole column strip; an odd last frame pairs with 0. */
#define STDDEV_INT_TILE(T, LOAD8)                                                                  \
    do {                                                                                           \
        const T *restrict x = tile->data;                                                          \
        const __m128i ones = _mm_set1_epi16(1), zero = _mm_setzero_si128();                        \
        for (; p + 8 <= n; p += 8) {                                                               \
            __m128i s_lo = zero, s_hi = zero, q0 = zero, q1 = zero, q2 = zero, q3 = zero;          \
            int pf = (p & (64 / sizeof(T) - 1)) == 0;                                              \
            for (uint64_t f = 0; f < depth; f += 2) {                                              \
                const T *a = x + f * stride + p;                                                   \
                __m128i va = LOAD8(a);                                                             \
                __m128i vb = f + 1 < depth ? LOAD8(a + stride) : zero;                             \
                if (pf) {                                                                          \
                    STDDEV_PREFETCH((const char *)a + STDDEV_AHEAD);                               \
                    if (f + 1 < depth)                                                             \
                        STDDEV_PREFETCH((const char *)(a + stride) + STDDEV_AHEAD);                \
                }                                                                                  \
                __m128i lo = _mm_unpacklo_epi16(va, vb), hi = _mm_unpackhi_epi16(va, vb);          \
                s_lo = _mm_add_epi32(s_lo, _mm_madd_epi16(lo, ones));                              \
                s_hi = _mm_add_epi32(s_hi, _mm_madd_epi16(hi, ones));                              \
                __m128i sq_lo = _mm_madd_epi16(lo, lo), sq_hi = _mm_madd_epi16(hi, hi);            \
                q0 = _mm_add_epi64(q0, _mm_unpacklo_epi32(sq_lo, zero));                           \
                q1 = _mm_add_epi64(q1, _mm_unpackhi_epi32(sq_lo, zero));                           \
                q2 = _mm_add_epi64(q2, _mm_unpacklo_epi32(sq_hi, zero));                           \
                q3 = _mm_add_epi64(q3, _mm_unpackhi_epi32(sq_hi, zero));                           \
            }                                                                                      \
            int32_t sl[8];                                                                         \
            uint64_t ql[8];                                                                        \
            _mm_storeu_si128((__m128i *)sl, s_lo);                                                 \
            _mm_storeu_si128((__m128i *)(sl + 4), s_hi);                                           \
            _mm_storeu_si128((__m128i *)ql, q0);                                                   \
            _mm_storeu_si128((__m128i *)(ql + 2), q1);                                             \
            _mm_storeu_si128((__m128i *)(ql + 4), q2);                                             \
            _mm_storeu_si128((__m128i *)(ql + 6), q3);                                             \
            for (int j = 0; j < 8; j++) {                                                          \
                isum[p + j] += sl[j];                                                              \
                isumsq[p + j] += ql[j];                                                            \
            }                                                                                      \
        }                                                                                          \
    } while (0)
#endif

#if defined(__GNUC__)
#define STDDEV_PREFETCH(p) __builtin_prefetch(p)
#else
#define STDDEV_PREFETCH(p) ((void)(p))
#endif

/* The pixels the vector loop left (or all of them without SSE2), one at a time. */
#define STDDEV_INT_REST(T, SHIFT)                                                                  \
    do {                                                                                           \
        const T *restrict x = tile->data;                                                          \
        for (; p < n; p++) {                                                                       \
            int64_t s = 0;                                                                         \
            uint64_t q = 0;                                                                        \
            for (uint64_t f = 0; f < depth; f++) {                                                 \
                int64_t v = (int64_t)x[f * stride + p] - (SHIFT);                                  \
                s += v;                                                                            \
                q += (uint64_t)(v * v);                                                            \
            }                                                                                      \
            isum[p] += s;                                                                          \
            isumsq[p] += q;                                                                        \
        }                                                                                          \
    } while (0)

static void stddev_int_tile(udf_ctx *ctx, const udf_tile *tile)
{
    int64_t *restrict isum = (int64_t *)ctx->buffers[BUF_ISUM].data;
    uint64_t *restrict isumsq = (uint64_t *)ctx->buffers[BUF_ISUMSQ].data;
    uint64_t n = tile->sig_count, depth = tile->depth, stride = tile->frame_stride, p = 0;
    switch (ctx->meta->input_dtype) {
#if defined(__SSE2__)
    case UDF_U8: STDDEV_INT_TILE(uint8_t, STDDEV_LOAD8_U8); STDDEV_INT_REST(uint8_t, 0); break;
    case UDF_I8: STDDEV_INT_TILE(int8_t, STDDEV_LOAD8_I8); STDDEV_INT_REST(int8_t, 0); break;
    case UDF_U16:
        STDDEV_INT_TILE(uint16_t, STDDEV_LOAD8_U16);
        STDDEV_INT_REST(uint16_t, 32768);
        break;
    case UDF_I16: STDDEV_INT_TILE(int16_t, STDDEV_LOAD8_I16); STDDEV_INT_REST(int16_t, 0); break;
#else
    case UDF_U8: STDDEV_INT_REST(uint8_t, 0); break;
    case UDF_I8: STDDEV_INT_REST(int8_t, 0); break;
    case UDF_U16: STDDEV_INT_REST(uint16_t, 32768); break;
    case UDF_I16: STDDEV_INT_REST(int16_t, 0); break;
#endif
    default: break;
    }
}

/* The two-pass float64 path (the SSE2 kernel of the integer path above is hand-written and gains
 * nothing from AVX2: it ran slower compiled for it). */
COMMON_HOT
static int stddev_float_tile(udf_ctx *ctx, const udf_tile *tile, uint64_t na)
{
    double *sum = ctx->buffers[BUF_SUM].data, *varsum = ctx->buffers[BUF_VARSUM].data;
    uint64_t n = tile->sig_count, depth = tile->depth, stride = tile->frame_stride;
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
    return UDF_OK;
}

static int stddev_tile(udf_ctx *ctx, const udf_tile *tile)
{
    uint64_t *num_frames = ctx->buffers[BUF_NUM_FRAMES].data;
    /* Frames may come in bands of rows, each band once for the same frames. num_frames counts a
     * frame after its last band, so every band of a tile sees the same count na of earlier frames. */
    if (int_path(ctx->meta->input_dtype)) {
        stddev_int_tile(ctx, tile);
    } else {
        int rc = stddev_float_tile(ctx, tile, *num_frames);
        if (rc)
            return rc;
    }
    if (tile->sig_start + tile->sig_count == ctx->meta->sig_size)
        *num_frames += tile->depth;
    return UDF_OK;
}

static int stddev_merge(udf_ctx *ctx, udf_view *dest, const udf_view *src)
{
    uint64_t *na = dest[BUF_NUM_FRAMES].data;
    uint64_t nb = *(const uint64_t *)src[BUF_NUM_FRAMES].data;
    if (int_path(ctx->meta->input_dtype)) {
        int64_t *restrict ds = dest[BUF_ISUM].data;
        uint64_t *restrict dq = dest[BUF_ISUMSQ].data;
        const int64_t *restrict ss = src[BUF_ISUM].data;
        const uint64_t *restrict sq = src[BUF_ISUMSQ].data;
        for (uint64_t p = 0; p < dest[BUF_ISUM].count; p++) {
            ds[p] += ss[p];
            dq[p] += sq[p];
        }
        *na += nb;
        return UDF_OK;
    }
    stddev_combine(dest[BUF_SUM].data, dest[BUF_VARSUM].data, *na, src[BUF_SUM].data,
                   src[BUF_VARSUM].data, nb, dest[BUF_SUM].count);
    *na += nb;
    return UDF_OK;
}

/* sum and varsum of the exact integer path: sum = isum + n * shift, and varsum = (n * isumsq -
 * isum^2) / n with the numerator (the sum over pairs of frames of squared differences, >= 0)
 * exact in 128 bits, or in long double where there is no 128-bit integer type. */
static void stddev_int_results(udf_ctx *ctx, uint64_t n)
{
    const udf_view *b = ctx->buffers;
    const int64_t *isum = b[BUF_ISUM].data;
    const uint64_t *isumsq = b[BUF_ISUMSQ].data;
    double *sum = b[BUF_SUM].data, *varsum = b[BUF_VARSUM].data;
    int64_t shift = int_shift(ctx->meta->input_dtype);
    if (n == 0)
        return;
    for (uint64_t p = 0; p < b[BUF_SUM].count; p++) {
        sum[p] = (double)(isum[p] + (int64_t)n * shift);
#if defined(__SIZEOF_INT128__)
        __extension__ typedef unsigned __int128 u128;
        u128 sq = (u128)(isum[p] < 0 ? -(uint64_t)isum[p] : (uint64_t)isum[p]);
        u128 num = (u128)n * isumsq[p] - sq * sq;
        varsum[p] = (double)num / (double)n;
#else
        long double s = (long double)isum[p];
        varsum[p] = (double)(((long double)n * (long double)isumsq[p] - s * s) / (long double)n);
#endif
    }
}

/* mean = sum / n, var = varsum / n (population variance, NumPy's ddof=0), std = sqrt(var); each
 * computed in float64 and rounded once. With no frames selected n = 0 and all three are NaN. */
static int stddev_results(udf_ctx *ctx)
{
    const udf_view *b = ctx->buffers;
    double n = (double)*(const uint64_t *)b[BUF_NUM_FRAMES].data;
    if (int_path(ctx->meta->input_dtype))
        stddev_int_results(ctx, *(const uint64_t *)b[BUF_NUM_FRAMES].data);
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
