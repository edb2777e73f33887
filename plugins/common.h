/* Helpers shared by the bundled plugins (not part of the SDK). */
#ifndef UDFHOST_PLUGINS_COMMON_H
#define UDFHOST_PLUGINS_COMMON_H

#include <udfhost/udf.h>

/* COMMON_HOT before a function compiles it twice, for baseline x86-64 (SSE2) and for AVX2, and
 * picks the variant once when the plugin is loaded (an ifunc). The plugins are built to run on any
 * x86-64, yet their per-pixel loops then use the 256-bit vectors of the machine they run on, which
 * halves the instructions per pixel of loops that otherwise run out of instructions before the
 * memory bus runs out of bytes. AVX2 does not include FMA, so the compiler cannot contract a * b +
 * c, and float loops give the same bits in either variant. For loops the compiler vectorises:
 * hand-written SSE2 kernels (stddev's integer path) ran slower recompiled so; logsum's minimum,
 * rewritten as a plain loop, became pminuw in AVX2 and 10 % faster. */
#if defined(__x86_64__) && defined(__ELF__) &&                                                      \
    (defined(__clang__) ? __clang_major__ >= 14 : defined(__GNUC__) && __GNUC__ >= 6)
#define COMMON_HOT __attribute__((target_clones("avx2", "default")))
#else
#define COMMON_HOT
#endif

/* Prefetching a region in small steps spread over other work (issued at once, a few hundred
 * prefetches fill the line-fill buffers and stall the work behind them): the lines of bytes
 * [0, len) of `frames` frames at p, p + stride, ..., in order; COMMON_PF_STEP() issues the next
 * `per` of them, into L1 (level 3) or L2 (level 2). A prefetch never faults, so the region may
 * reach past the data. A cursor with frames = 0 issues nothing. */
typedef struct common_pf {
    const char *p;
    uint64_t len, stride, frames, per, k, o;
} common_pf;

#if defined(__GNUC__)
#define COMMON_PF_STEP(pf, LEVEL)                                                                  \
    do {                                                                                           \
        common_pf *pf_ = (pf);                                                                     \
        for (uint64_t n_ = pf_->per; n_ && pf_->k < pf_->frames; n_--) {                           \
            __builtin_prefetch(pf_->p + pf_->k * pf_->stride + pf_->o, 0, LEVEL);                  \
            if ((pf_->o += 64) >= pf_->len) {                                                      \
                pf_->o = 0;                                                                        \
                pf_->k++;                                                                          \
            }                                                                                      \
        }                                                                                          \
    } while (0)
#else
#define COMMON_PF_STEP(pf, LEVEL) ((void)(pf))
#endif

/* A cursor over frames frames of len bytes at p, p + stride, ..., in `steps` steps. */
static inline common_pf common_pf_start(const void *p, uint64_t len, uint64_t stride,
                                        uint64_t frames, uint64_t steps)
{
    common_pf pf = {.p = p, .len = len, .stride = stride, .frames = frames};
    pf.per = steps ? (frames * ((len + 63) / 64) + steps - 1) / steps : 0;
    return pf;
}

/* Streaming loops prefetch the data COMMON_AHEAD bytes ahead, one prefetch per 64-byte line they
 * read (COMMON_LINE(T) elements): even for plain sequential reads, where the hardware prefetcher
 * should suffice, sum, sumsig and max ran 5-10 % faster with it on this project's machine (and sum
 * + sumsig + com, whose later passes read from L2, 6 %). A prefetch never faults, so reaching past
 * the end of the data is harmless. */
#define COMMON_AHEAD 2048
#define COMMON_LINE(T) (64 / sizeof(T))
#if defined(__GNUC__)
#define COMMON_PREFETCH_AHEAD(q) __builtin_prefetch((const char *)(q) + COMMON_AHEAD, 0, 3)
#else
#define COMMON_PREFETCH_AHEAD(q) ((void)(q))
#endif

/* COMMON_PREFETCH_AHEAD for each line of the `bytes` bytes at p: for loops that read a row at a
 * time with no loop over its lines to put the prefetch in. */
#define COMMON_PREFETCH_ROW(p, bytes)                                                              \
    do {                                                                                           \
        for (uint64_t o_ = 0; o_ < (bytes); o_ += 64)                                              \
            COMMON_PREFETCH_AHEAD((const char *)(p) + o_);                                         \
    } while (0)

/* The value of an optional FLOAT parameter, or dflt when the user gave none. */
static inline int common_param_or(udf_ctx *ctx, const char *name, double dflt, double *out)
{
    if (ctx->host->param_count(ctx, name) == 0) {
        *out = dflt;
        return UDF_OK;
    }
    return ctx->host->param_double(ctx, name, 0, out);
}

/* Accumulator dtype for exact sums of the raw data: int64 for integers, float64 for floats. */
static inline udf_dtype common_acc_dtype(udf_dtype raw)
{
    return raw == UDF_F32 || raw == UDF_F64 ? UDF_F64 : UDF_I64;
}

/* Result dtype from a "float32|float64" choice parameter value. */
static inline udf_dtype common_result_dtype(const char *choice)
{
    return choice[0] == 'f' && choice[5] == '6' ? UDF_F64 : UDF_F32;
}

/* out[i] = acc[i] for acc of int64 or float64 and out of float32 or float64, with one rounding
 * from the exact value: int64 -> float converts directly, not via double. */
static inline void common_round_into(udf_view *out, const udf_view *acc, uint64_t n)
{
    if (acc->dtype == UDF_I64 && out->dtype == UDF_F32)
        for (uint64_t i = 0; i < n; i++)
            ((float *)out->data)[i] = (float)((const int64_t *)acc->data)[i];
    else if (acc->dtype == UDF_I64)
        for (uint64_t i = 0; i < n; i++)
            ((double *)out->data)[i] = (double)((const int64_t *)acc->data)[i];
    else if (out->dtype == UDF_F32)
        for (uint64_t i = 0; i < n; i++)
            ((float *)out->data)[i] = (float)((const double *)acc->data)[i];
    else
        for (uint64_t i = 0; i < n; i++)
            ((double *)out->data)[i] = ((const double *)acc->data)[i];
}

#endif
