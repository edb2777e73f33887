/* Per-frame sums over sets of pixels (radial bins, sparse binary masks) for 8- and 16-bit data:
 * each set as chunks of 8 (SSE2) or 16 (AVX2) pixels with a bit mask each, summed exactly in int32
 * lanes, eight frames per pass over a set's chunks. Shared by the radial and masks plugins; not
 * part of the SDK. */
#ifndef UDFHOST_PLUGINS_CHUNKS_H
#define UDFHOST_PLUGINS_CHUNKS_H

#include <stdint.h>
#include <stdlib.h>

#include <udfhost/udf.h>

#include "common.h"
#include "pmadd.h"

/* The frames are seen as rows of `width` pixels (a band of a tile is a run of whole rows). Each row
 * is cut into chunks of `lanes` columns (16 where the CPU has AVX2, else 8), the last one of a row
 * moved left to end at the row's end (a pixel belongs to the chunk of column lanes * (x / lanes)).
 * Each (set, chunk) holding pixels of the set is a pair (flat offset of the chunk << 16 | one bit
 * per column of the chunk in the set), ordered by set, then row: those of set s and rows [y0, y1)
 * are pairs[first[s * (height + 1) + y0] .. first[s * (height + 1) + y1]). cum_pixels, laid out
 * the same way, counts their pixels before each cell. masks[bits] has 1 in the int16 lanes of the
 * set bits (8 lanes; the AVX2 kernel makes its masks from the bits). Read-only once built. */
typedef struct chunk_sets {
    uint64_t nsets, height, width, lanes;
    uint64_t *pairs;
    uint32_t *first;
    uint32_t *cum_pixels;
    int16_t masks[256][8];
} chunk_sets;

/* Frames per pass over a set's chunks: each pair (and its mask) is loaded once for this many
 * frames, and the frames' int32 sums stay in registers (8 + the mask and the pixels: 10 of the 16
 * vector registers). One frame per pass cost about 12 instructions per pair and frame; eight,
 * about 7. */
#define CHUNK_FRAMES 8

/* Bytes of a frame per block of the walk over a tile (see CHUNK_APPLY), and how many blocks ahead
 * it prefetches. */
#define CHUNK_BLOCK_BYTES 1024
#define CHUNK_AHEAD 2

/* Most pairs summed in one int32 lane: each pair adds at most 2 * 32768 to a lane, so 16384 pairs
 * stay below 2^31. A row holds at most width / lanes + 1 pairs of a set, so blocks of rows are cut
 * to at most CHUNK_BATCH / (width / lanes + 1) rows (a flush to int64 inside the pair loop made GCC
 * copy the accumulators around at every pair). */
#define CHUNK_BATCH 16384

static inline void chunk_sets_free(chunk_sets *c)
{
    free(c->pairs);
    free(c->first);
    free(c->cum_pixels);
    c->pairs = NULL;
    c->first = c->cum_pixels = NULL;
}

/* The chunk width for rows of `width` pixels on this CPU, fixed for the run (the sums are exact, so
 * the bits are the same for either width); 0 without SSE2. */
static inline uint64_t chunk_lanes(uint64_t width)
{
#if defined(PMADD_AVX2)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && width >= 16)
        return 16;
#endif
#if defined(__SSE2__)
    return 8;
#else
    return 0;
#endif
}

/* Whether chunk tables fit frames of height x width pixels and nsets sets: 32-bit pair counts,
 * rows at least a chunk wide, and SSE2. */
static inline int chunk_sets_fit(uint64_t height, uint64_t width, uint64_t nsets)
{
    uint64_t lanes = chunk_lanes(width);
    return lanes && width >= lanes && height * width <= (1u << 30) &&
           nsets * (height + 1) <= (1u << 22);
}

/* Build c for nsets sets of pixels: set s holds the flat pixel indices idx[idx_first[s] ..
 * idx_first[s + 1]), increasing (sets may overlap, and may be empty). Call only when
 * chunk_sets_fit() says so. Returns UDF_OK (c->pairs is NULL if the sets hold 2^32 pixels or more)
 * or UDF_ERR_NOMEM (c then holds nothing to free). */
static inline int chunk_sets_build(chunk_sets *c, uint64_t height, uint64_t width, uint64_t nsets,
                                   const uint32_t *idx, const uint64_t *idx_first)
{
    uint64_t hh = height + 1, cells = nsets * hh + 1, n = idx_first[nsets], L = chunk_lanes(width);
    if (n > UINT32_MAX) /* pair and pixel counts are 32-bit: leave c empty, unused */
        return UDF_OK;
    c->nsets = nsets;
    c->height = height;
    c->width = width;
    c->lanes = L;
    c->pairs = malloc((n ? n : 1) * sizeof *c->pairs); /* at most one pair per pixel */
    c->first = malloc(cells * sizeof *c->first);
    c->cum_pixels = malloc(cells * sizeof *c->cum_pixels);
    if (!c->pairs || !c->first || !c->cum_pixels) {
        chunk_sets_free(c);
        return UDF_ERR_NOMEM;
    }
    uint32_t np = 0, npix = 0;
    for (uint64_t s = 0; s < nsets; s++) {
        uint64_t row = 0; /* the cells of rows before `row` are set */
        for (uint64_t k = idx_first[s]; k < idx_first[s + 1];) {
            uint64_t y = idx[k] / width, c0 = idx[k] % width / L * L;
            uint64_t x0 = c0 + L <= width ? c0 : width - L;
            for (; row <= y; row++) {
                c->first[s * hh + row] = np;
                c->cum_pixels[s * hh + row] = npix;
            }
            uint64_t bits = 0;
            for (; k < idx_first[s + 1] && idx[k] / width == y && idx[k] % width / L * L == c0;
                 k++, npix++)
                bits |= 1u << (idx[k] % width - x0);
            c->pairs[np++] = (y * width + x0) << 16 | bits;
        }
        for (; row <= height; row++) {
            c->first[s * hh + row] = np;
            c->cum_pixels[s * hh + row] = npix;
        }
    }
    c->first[cells - 1] = np;
    c->cum_pixels[cells - 1] = npix;
    for (unsigned bits = 0; bits < 256; bits++)
        for (int j = 0; j < 8; j++)
            c->masks[bits][j] = (int16_t)((bits >> j) & 1);
    return UDF_OK;
}

#if defined(__SSE2__)
/* Per width W (pmadd.h): MASK(p) gives, per lane, SIGN if the pair's bit is set, else 0: the 128
 * kernel loads 1s from masks[]; the 256 one compares the broadcast bits with one bit per lane,
 * which gives -1s. */
#define CHUNK_MASK_128(p) _mm_loadu_si128((const __m128i *)c->masks[(p) & 255])
#define CHUNK_SIGN_128 1
#if defined(PMADD_AVX2)
#define CHUNK_MASK_256(p)                                                                          \
    _mm256_cmpeq_epi16(_mm256_and_si256(_mm256_set1_epi16((short)(p)), lanebit), lanebit)
#define CHUNK_SIGN_256 (-1)
#endif

/* Pixels of the chunk at q masked by m (summed in pairs by pmaddwd), added to the lanes of a. The
 * empty asm pins a to one register for the whole pair loop: without it, GCC 12 spilled four of the
 * eight accumulators of CHUNK_PASS8 to the stack and copied the others between registers at every
 * pair (58 instructions a pair instead of 42). */
#define CHUNK_ADD(W, a, LOAD, q, m)                                                                \
    do {                                                                                           \
        (a) = PMADD_ADD_##W((a), PMADD_MADD_##W(LOAD(q), (m)));                                    \
        CHUNK_PIN(a);                                                                              \
    } while (0)
#if defined(__GNUC__)
#define CHUNK_PIN(a) __asm__("" : "+x"(a))
#else
#define CHUNK_PIN(a) ((void)0)
#endif

/* One pass over pairs [i, e) for the CHUNK_FRAMES frames at b + k * stride: sums[k] += the frame's
 * masked pixels (shifted as LOAD does, times SIGN). At most CHUNK_BATCH pairs (see CHUNK_APPLY).
 * Eight named accumulators, not an array: GCC then keeps them in registers. */
#define CHUNK_PASS8(T, W, LOAD)                                                                    \
    do {                                                                                           \
        PMADD_VEC_##W a0 = PMADD_ZERO_##W(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, \
                      a7 = a0;                                                                     \
        for (; i < e; i++) {                                                                       \
            uint64_t p = pairs[i];                                                                 \
            PMADD_VEC_##W m = CHUNK_MASK_##W(p);                                                   \
            const T *q = b + ((p >> 16) - off0);                                                   \
            CHUNK_ADD(W, a0, LOAD, q, m);                                                          \
            CHUNK_ADD(W, a1, LOAD, q + stride, m);                                                 \
            CHUNK_ADD(W, a2, LOAD, q + 2 * stride, m);                                             \
            CHUNK_ADD(W, a3, LOAD, q + 3 * stride, m);                                             \
            CHUNK_ADD(W, a4, LOAD, q + 4 * stride, m);                                             \
            CHUNK_ADD(W, a5, LOAD, q + 5 * stride, m);                                             \
            CHUNK_ADD(W, a6, LOAD, q + 6 * stride, m);                                             \
            CHUNK_ADD(W, a7, LOAD, q + 7 * stride, m);                                             \
        }                                                                                          \
        sums[0] = PMADD_HSUM_##W(a0);                                                              \
        sums[1] = PMADD_HSUM_##W(a1);                                                              \
        sums[2] = PMADD_HSUM_##W(a2);                                                              \
        sums[3] = PMADD_HSUM_##W(a3);                                                              \
        sums[4] = PMADD_HSUM_##W(a4);                                                              \
        sums[5] = PMADD_HSUM_##W(a5);                                                              \
        sums[6] = PMADD_HSUM_##W(a6);                                                              \
        sums[7] = PMADD_HSUM_##W(a7);                                                              \
    } while (0)

/* The same for one frame. */
#define CHUNK_PASS1(T, W, LOAD)                                                                    \
    do {                                                                                           \
        PMADD_VEC_##W a0 = PMADD_ZERO_##W();                                                       \
        for (; i < e; i++) {                                                                       \
            uint64_t p = pairs[i];                                                                 \
            PMADD_VEC_##W m = CHUNK_MASK_##W(p);                                                   \
            CHUNK_ADD(W, a0, LOAD, b + ((p >> 16) - off0), m);                                     \
        }                                                                                          \
        sums[0] = PMADD_HSUM_##W(a0);                                                              \
    } while (0)

/* Prefetching. In the order the sets visit a block's pixels, the hardware prefetcher did not keep
 * the eight streams of frames coming: radial spent more than half its time waiting for loads and
 * ran at 59 % of the read ceiling. So the walk prefetches, into L1, the block CHUNK_AHEAD blocks
 * ahead in each of the eight frames (past the band's end, the first of the next eight frames),
 * a few lines before each set: issued all at once, the prefetches filled the line-fill buffers
 * and stalled the sums behind them. Blocks of 1 KiB a frame, with two ahead, keep 24 KiB of the
 * frames in L1 (frames 4 KiB apart share L1 sets: 16 KiB a frame would overflow them).
 * CHUNK_PF_START sets pf to the block CHUNK_AHEAD blocks after the one at row ya of frames f..,
 * in one step per set; to nothing when blocks are larger than CHUNK_BLOCK_BYTES (many sets, or
 * wide rows). It reaches one group of frames past the tile when the tile holds whole frames: in a
 * mapped file the next tile's frames usually follow (radial: 6 % faster than stopping at the
 * tile's end), and elsewhere the prefetches are merely wasted. */
#define CHUNK_PF_START(T, pf)                                                                      \
    do {                                                                                           \
        const uint64_t band_ = (y1 - y0) * w * sizeof(T), bb_ = block * w * sizeof(T);             \
        uint64_t at_ = (ya - y0) * w * sizeof(T) + CHUNK_AHEAD * bb_, g_ = f;                      \
        for (; at_ >= band_; at_ -= band_)                                                         \
            g_ += CHUNK_FRAMES;                                                                    \
        (pf) = (common_pf){0};                                                                     \
        const uint64_t end_ = tile->depth + (y1 - y0 == c->height ? CHUNK_FRAMES : 0);             \
        if (bb_ <= CHUNK_BLOCK_BYTES && g_ < end_)                                                 \
            (pf) = common_pf_start((const char *)(data + g_ * stride) + at_,                       \
                                   at_ + bb_ < band_ ? bb_ : band_ - at_, stride * sizeof(T),      \
                                   CHUNK_FRAMES, c->nsets);                                        \
    } while (0)

/* acc[f * nacc + s] += the sum of set s's pixels in frame f of the tile (its band of rows), for
 * data of type T, with vectors of width W. The tile is walked in blocks of rows, all sets of a
 * block before the next one, so that eight frames' rows of one block stay in L1 while the sets
 * visit them in their own order, and the blocks stream through memory, prefetched (see
 * CHUNK_PF_START); walking a whole tile set by set instead reads it from L2 in no order, and ran
 * slower than one frame at a time even with half the instructions. Blocks are CHUNK_BLOCK_BYTES
 * of a frame (at least a row), and more when there are many sets, so that skipping the sets
 * without pixels in a block costs at most about one test per chunk (within CHUNK_BATCH). All sums
 * are exact integers below 2^53, so each float64 addition is exact and the bits do not depend on
 * the band height, the blocks, the width or how frames are grouped. */
#define CHUNK_APPLY(T, LOAD, SHIFT, W)                                                             \
    do {                                                                                           \
        const T *data = tile->data;                                                                \
        const uint64_t *restrict pairs = c->pairs;                                                 \
        const uint64_t w = c->width, hh = c->height + 1, stride = tile->frame_stride;              \
        const uint64_t y0 = tile->sig_start / w, y1 = y0 + tile->sig_count / w, off0 = y0 * w;     \
        const uint64_t most_ = CHUNK_BATCH / (w / c->lanes + 1), most = most_ ? most_ : 1;         \
        const uint64_t fit_ = CHUNK_BLOCK_BYTES / (w * sizeof(T)), rows_ = fit_ ? fit_ : 1;        \
        uint64_t block = c->nsets * 8 / w > rows_ ? c->nsets * 8 / w : rows_;                     \
        block = block < most ? block : most;                                                       \
        for (uint64_t f = 0; f < tile->depth;) {                                                   \
            const uint64_t nf = tile->depth - f >= CHUNK_FRAMES ? CHUNK_FRAMES : 1;                \
            const T *b = data + f * stride;                                                        \
            for (uint64_t ya = y0; ya < y1; ya += block) {                                         \
                const uint64_t yb = y1 - ya < block ? y1 : ya + block;                             \
                common_pf pf;                                                                      \
                CHUNK_PF_START(T, pf);                                                             \
                for (uint64_t s = 0; s < c->nsets; s++) {                                          \
                    COMMON_PF_STEP(&pf, 3);                                                        \
                    uint64_t i = c->first[s * hh + ya];                                            \
                    const uint64_t e = c->first[s * hh + yb];                                      \
                    if (i == e)                                                                    \
                        continue;                                                                  \
                    const int64_t shift = (int64_t)(SHIFT) * (int64_t)(c->cum_pixels[s * hh + yb] -\
                                                                       c->cum_pixels[s * hh + ya]);\
                    int64_t sums[CHUNK_FRAMES];                                                    \
                    if (nf == CHUNK_FRAMES)                                                        \
                        CHUNK_PASS8(T, W, LOAD##_##W);                                             \
                    else                                                                           \
                        CHUNK_PASS1(T, W, LOAD##_##W);                                             \
                    for (uint64_t k = 0; k < nf; k++)                                              \
                        acc[(f + k) * nacc + s] += (double)(CHUNK_SIGN_##W * sums[k] + shift);     \
                }                                                                                  \
            }                                                                                      \
            f += nf;                                                                               \
        }                                                                                          \
    } while (0)

/* Defines chunk_sets_apply_SUFFIX(c, tile, acc, nacc), which runs CHUNK_APPLY for data of type T
 * (LOAD: PMADD_LOAD_U8 ... PMADD_LOAD_I16) with the width c->lanes. */
#if defined(PMADD_AVX2)
#define CHUNK_SETS_DEFINE(SUFFIX, T, LOAD, SHIFT)                                                  \
    PMADD_FN_256 static void chunk_sets_apply256_##SUFFIX(const chunk_sets *c,                    \
                                                          const udf_tile *tile, double *acc,       \
                                                          uint64_t nacc)                           \
    {                                                                                              \
        const __m256i lanebit = _mm256_setr_epi16(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024,     \
                                                  2048, 4096, 8192, 16384, (short)0x8000);         \
        CHUNK_APPLY(T, LOAD, SHIFT, 256);                                                          \
    }                                                                                              \
    static void chunk_sets_apply_##SUFFIX(const chunk_sets *c, const udf_tile *tile, double *acc,  \
                                          uint64_t nacc)                                           \
    {                                                                                              \
        if (c->lanes == 16)                                                                        \
            chunk_sets_apply256_##SUFFIX(c, tile, acc, nacc);                                      \
        else                                                                                       \
            CHUNK_APPLY(T, LOAD, SHIFT, 128);                                                      \
    }
#else
#define CHUNK_SETS_DEFINE(SUFFIX, T, LOAD, SHIFT)                                                  \
    static void chunk_sets_apply_##SUFFIX(const chunk_sets *c, const udf_tile *tile, double *acc,  \
                                          uint64_t nacc)                                           \
    {                                                                                              \
        CHUNK_APPLY(T, LOAD, SHIFT, 128);                                                          \
    }
#endif
CHUNK_SETS_DEFINE(u8, uint8_t, PMADD_LOAD_U8, 0)
CHUNK_SETS_DEFINE(u16, uint16_t, PMADD_LOAD_U16, 32768)
CHUNK_SETS_DEFINE(i8, int8_t, PMADD_LOAD_I8, 0)
CHUNK_SETS_DEFINE(i16, int16_t, PMADD_LOAD_I16, 0)
#endif

/* acc[f * nacc + s] += the sum of set s's pixels in frame f of the tile, for data of dtype dt.
 * Returns 1 when done, 0 (nothing added) when c holds no tables, dt is not an 8- or 16-bit
 * integer type, or the compiler has no SSE2: the caller then sums another way. */
static inline int chunk_sets_apply(const chunk_sets *c, const udf_tile *tile, udf_dtype dt,
                                   double *acc, uint64_t nacc)
{
#if defined(__SSE2__)
    if (c->pairs)
        switch (dt) {
        case UDF_U8: chunk_sets_apply_u8(c, tile, acc, nacc); return 1;
        case UDF_U16: chunk_sets_apply_u16(c, tile, acc, nacc); return 1;
        case UDF_I8: chunk_sets_apply_i8(c, tile, acc, nacc); return 1;
        case UDF_I16: chunk_sets_apply_i16(c, tile, acc, nacc); return 1;
        default: break;
        }
#endif
    (void)c;
    (void)tile;
    (void)dt;
    (void)acc;
    (void)nacc;
    return 0;
}

#endif
