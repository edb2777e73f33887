/* radial: the azimuthally integrated profile of every frame, the sum of the pixels in each of N
 * rings of equal width around a centre, and the profile of the summed frame. A pixel->bin table
 * built once in init_task turns each frame into one pass of scattered float64 additions; for 8- and
 * 16-bit data, tables of 8-pixel chunks per bin (RADIAL_CHUNKS) or of runs of one bin
 * (RADIAL_SEG) give exact integer sums per bin instead, with the same bits, several times faster. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include <udfhost/udf.h>

#include "common.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* Radii beyond any detector; the host needs finite bounds to check a range. */
#define RADIUS_MAX 1e9

static const udf_param_decl radial_params[] = {
    {.name = "cy", .type = UDF_PARAM_FLOAT, .help = "row of the centre (default (H-1)/2)"},
    {.name = "cx", .type = UDF_PARAM_FLOAT, .help = "column of the centre (default (W-1)/2)"},
    {.name = "n_bins", .type = UDF_PARAM_INT, .default_value = "16", .min = 1, .max = 65536,
     .help = "number of rings of equal width between ri and ro"},
    {.name = "ri", .type = UDF_PARAM_FLOAT, .default_value = "0", .min = 0, .max = RADIUS_MAX,
     .help = "inner radius of the first bin"},
    {.name = "ro", .type = UDF_PARAM_FLOAT, .min = 0, .max = RADIUS_MAX,
     .help = "outer radius of the last bin, included (default: distance to the farthest corner)"},
    {.name = "dtype", .type = UDF_PARAM_CHOICE, .default_value = "float32",
     .choices = "float32|float64", .help = "dtype of the result buffers"},
    {0},
};

enum { BUF_ACC, BUF_ACC_SUM, BUF_PROFILE, BUF_RADIAL_SUM };

/* Task data, built by init_task and read-only afterwards: the pixels that fall into a bin, in
 * flat signal order, as (column, bin) pairs; those of row y are [row_first[y], row_first[y+1]). */
typedef struct radial_task {
    uint64_t width;
    uint64_t n_bins;
    uint64_t *row_first;
    uint32_t *column;
    uint32_t *bin;
    /* The same pixels as segments of consecutive columns of one bin: those of row y are
     * [seg_first[y], seg_first[y+1]), segment k covering columns [seg_x0[k], seg_x1[k]). */
    uint64_t *seg_first;
    uint32_t *seg_x0, *seg_x1, *seg_bin;
    /* The chunk path (RADIAL_CHUNKS, 8- and 16-bit data with SSE2): each row is cut into chunks
     * of 8 columns (the last one of a row moved left to end at the row's end; a pixel belongs to
     * the chunk of column 8 * (x / 8)), and each (chunk, bin) with pixels of that bin is a pair
     * (offset of the chunk in the frame << 8 | one bit per column of the chunk in the bin),
     * ordered by bin, then row. Those of bin b and rows [y0, y1) are pairs[first[b * (height + 1)
     * + y0] .. first[b * (height + 1) + y1]); cum_pixels, laid out the same way, counts their
     * pixels. masks[bits] has 1 in the int16 lanes of the set bits. */
    int chunks;
    uint64_t height;
    uint32_t *pairs;
    uint32_t *first;
    uint32_t *cum_pixels;
    int16_t masks[256][8];
} radial_task;

static void task_free(radial_task *t)
{
    if (!t)
        return;
    free(t->row_first);
    free(t->column);
    free(t->bin);
    free(t->seg_first);
    free(t->seg_x0);
    free(t->seg_x1);
    free(t->seg_bin);
    free(t->pairs);
    free(t->first);
    free(t->cum_pixels);
    free(t);
}

static int radial_declare(udf_ctx *ctx)
{
    const char *dtype;
    int64_t n_bins;
    int rc;
    if ((rc = ctx->host->param_string(ctx, "dtype", 0, &dtype)) ||
        (rc = ctx->host->param_int(ctx, "n_bins", 0, &n_bins)))
        return rc;
    udf_dtype out = common_result_dtype(dtype);
    /* float64 accumulators: per frame (acc) and over the partition's frames (acc_sum). */
    const udf_buffer_decl decls[] = {
        {.name = "acc", .kind = UDF_KIND_NAV, .dtype = UDF_F64, .flags = UDF_BUFFER_PRIVATE,
         .extra_ndim = 1, .extra_shape = {(uint64_t)n_bins}},
        {.name = "acc_sum", .kind = UDF_KIND_SINGLE, .dtype = UDF_F64,
         .flags = UDF_BUFFER_PRIVATE, .extra_ndim = 1, .extra_shape = {(uint64_t)n_bins}},
        {.name = "profile", .kind = UDF_KIND_NAV, .dtype = out, .flags = UDF_BUFFER_RESULT_ONLY,
         .extra_ndim = 1, .extra_shape = {(uint64_t)n_bins}},
        {.name = "radial_sum", .kind = UDF_KIND_SINGLE, .dtype = out,
         .flags = UDF_BUFFER_RESULT_ONLY, .extra_ndim = 1, .extra_shape = {(uint64_t)n_bins}},
    };
    for (size_t i = 0; i < sizeof decls / sizeof decls[0]; i++)
        if ((rc = ctx->host->declare_buffer(ctx, &decls[i])))
            return rc;
    return UDF_OK;
}

static int param_or(udf_ctx *ctx, const char *name, double dflt, double *out)
{
    if (ctx->host->param_count(ctx, name) == 0) {
        *out = dflt;
        return UDF_OK;
    }
    return ctx->host->param_double(ctx, name, 0, out);
}

/* Distance of pixel (y, x) from (cy, cx); the man page and the tests use the same expression. */
static double distance(double y, double x, double cy, double cx)
{
    return sqrt((y - cy) * (y - cy) + (x - cx) * (x - cx));
}

/* The bin k with ri + k*w <= d < ri + (k+1)*w (the last bin up to ro inclusive), or -1 outside
 * [ri, ro]. The division only guesses k; the comparisons with the edges as the man page writes
 * them decide, so that a pixel on an edge lands where the documented formula puts it. */
static int64_t bin_of(double d, double ri, double ro, double w, int64_t n)
{
    if (!(d >= ri && d <= ro))
        return -1;
    double guess = floor((d - ri) / w);
    int64_t k = guess < 0 ? 0 : guess > (double)(n - 1) ? n - 1 : (int64_t)guess;
    while (k > 0 && d < ri + (double)k * w)
        k--;
    while (k + 1 < n && d >= ri + (double)(k + 1) * w)
        k++;
    return k;
}

/* Build the pairs of the chunk path, when it applies (see radial_task): two passes over the
 * rows, one counting the pairs and pixels of each (bin, row), one storing the pairs. */
static int chunks_build(radial_task *t, uint64_t h, uint64_t w)
{
    uint64_t nb = t->n_bins, cells = nb * (h + 1) + 1;
#if !defined(__SSE2__)
    (void)cells;
    return UDF_OK;
#else
    if (w < 8 || w > 65536 || h * w > (1u << 24) || nb * (h + 1) > (1u << 22))
        return UDF_OK;
    int64_t *rowbin = malloc(w * sizeof *rowbin);
    uint32_t *fill = NULL;
    if (!rowbin || !(t->first = calloc(cells, sizeof *t->first)) ||
        !(t->cum_pixels = calloc(cells, sizeof *t->cum_pixels)) ||
        !(fill = malloc(cells * sizeof *fill))) {
        free(rowbin);
        return UDF_ERR_NOMEM;
    }
    for (int pass = 0; pass < 2; pass++) {
        for (uint64_t y = 0; y < h; y++) {
            for (uint64_t x = 0; x < w; x++)
                rowbin[x] = -1;
            for (uint64_t i = t->row_first[y]; i < t->row_first[y + 1]; i++)
                rowbin[t->column[i]] = t->bin[i];
            for (uint64_t c0 = 0; c0 < w; c0 += 8) {
                uint64_t x0 = c0 + 8 <= w ? c0 : w - 8, c1 = c0 + 8 <= w ? c0 + 8 : w;
                /* The bins of this chunk's columns, each once, with its bits. */
                for (uint64_t x = c0; x < c1; x++) {
                    int64_t b = rowbin[x];
                    if (b < 0)
                        continue;
                    unsigned bits = 0, npix = 0;
                    for (uint64_t u = x; u < c1; u++)
                        if (rowbin[u] == b) {
                            bits |= 1u << (u - x0);
                            npix++;
                            if (u > x)
                                rowbin[u] = -2 - b; /* done; restored below */
                        }
                    uint64_t cell = (uint64_t)b * (h + 1) + y;
                    if (pass == 0) {
                        t->first[cell]++;
                        t->cum_pixels[cell] += npix;
                    } else {
                        t->pairs[fill[cell]++] = (uint32_t)((y * w + x0) << 8 | bits);
                    }
                }
                for (uint64_t x = c0; x < c1; x++)
                    if (rowbin[x] <= -2)
                        rowbin[x] = -2 - rowbin[x];
            }
        }
        if (pass == 0) {
            /* Counts to exclusive prefix sums, in (bin, row) order. */
            uint32_t np = 0, npx = 0;
            for (uint64_t c = 0; c < cells; c++) {
                uint32_t a = t->first[c], b = t->cum_pixels[c];
                t->first[c] = np;
                t->cum_pixels[c] = npx;
                fill[c] = np;
                np += a;
                npx += b;
            }
            if (!(t->pairs = malloc((np ? np : 1) * sizeof *t->pairs))) {
                free(rowbin);
                free(fill);
                return UDF_ERR_NOMEM;
            }
        }
    }
    free(rowbin);
    free(fill);
    for (unsigned bits = 0; bits < 256; bits++)
        for (int j = 0; j < 8; j++)
            t->masks[bits][j] = (int16_t)((bits >> j) & 1);
    t->chunks = 1;
    return UDF_OK;
#endif
}

static int radial_init(udf_ctx *ctx, void **task_data)
{
    const udf_meta *m = ctx->meta;
    if (m->sig_ndim != 2) {
        ctx->host->error(ctx, "needs a 2-D signal, the dataset's has %u dimensions",
                         (unsigned)m->sig_ndim);
        return UDF_ERR_UNSUPPORTED;
    }
    uint64_t h = m->sig_shape[0], w = m->sig_shape[1];
    double cy, cx, ri, ro;
    int64_t n;
    int rc;
    if ((rc = param_or(ctx, "cy", (double)(h - 1) / 2, &cy)) ||
        (rc = param_or(ctx, "cx", (double)(w - 1) / 2, &cx)) ||
        (rc = ctx->host->param_double(ctx, "ri", 0, &ri)) ||
        (rc = ctx->host->param_int(ctx, "n_bins", 0, &n)))
        return rc;
    /* Default: out to the farthest pixel centre, so every pixel at or beyond ri has a bin. */
    double corner = 0;
    for (int c = 0; c < 4; c++)
        corner = fmax(corner, distance(c & 1 ? (double)(h - 1) : 0, c & 2 ? (double)(w - 1) : 0,
                                       cy, cx));
    if ((rc = param_or(ctx, "ro", corner, &ro)))
        return rc;
    if (!(ri < ro)) {
        ctx->host->error(ctx, "inner radius ri %g must be below outer radius ro %g", ri, ro);
        return UDF_ERR_PARAM;
    }
    double width = (ro - ri) / (double)n;

    radial_task *t = calloc(1, sizeof *t);
    if (!t)
        return UDF_ERR_NOMEM;
    t->width = w;
    t->n_bins = (uint64_t)n;
    if (!(t->row_first = malloc((h + 1) * sizeof *t->row_first)) ||
        !(t->column = malloc(h * w * sizeof *t->column)) ||
        !(t->bin = malloc(h * w * sizeof *t->bin))) {
        task_free(t);
        return UDF_ERR_NOMEM;
    }
    uint64_t k = 0;
    for (uint64_t y = 0; y < h; y++) {
        t->row_first[y] = k;
        for (uint64_t x = 0; x < w; x++) {
            int64_t b = bin_of(distance((double)y, (double)x, cy, cx), ri, ro, width, n);
            if (b >= 0) {
                t->column[k] = (uint32_t)x;
                t->bin[k++] = (uint32_t)b;
            }
        }
    }
    t->row_first[h] = k;
    /* Segments: a new one starts wherever the column is not the previous one's + 1 or the bin
     * changes. At most one per binned pixel. */
    if (!(t->seg_first = malloc((h + 1) * sizeof *t->seg_first)) ||
        !(t->seg_x0 = malloc((k ? k : 1) * sizeof *t->seg_x0)) ||
        !(t->seg_x1 = malloc((k ? k : 1) * sizeof *t->seg_x1)) ||
        !(t->seg_bin = malloc((k ? k : 1) * sizeof *t->seg_bin))) {
        task_free(t);
        return UDF_ERR_NOMEM;
    }
    uint64_t ns = 0;
    for (uint64_t y = 0; y < h; y++) {
        t->seg_first[y] = ns;
        for (uint64_t i = t->row_first[y]; i < t->row_first[y + 1]; i++) {
            if (i > t->row_first[y] && t->column[i] == t->seg_x1[ns - 1] &&
                t->bin[i] == t->seg_bin[ns - 1]) {
                t->seg_x1[ns - 1]++;
                continue;
            }
            t->seg_x0[ns] = t->column[i];
            t->seg_x1[ns] = t->column[i] + 1;
            t->seg_bin[ns++] = t->bin[i];
        }
    }
    t->seg_first[h] = ns;
    t->height = h;
    if ((rc = chunks_build(t, h, w)) != UDF_OK) {
        task_free(t);
        return rc;
    }
    *task_data = t;
    return UDF_OK;
}

/* acc[f][bin] += pixel for the binned pixels of the band, in flat pixel order, so the order of
 * additions does not depend on the band height. */
#define RADIAL_TILE(T)                                                                             \
    do {                                                                                           \
        const T *restrict data = tile->data;                                                       \
        double *restrict acc = ctx->buffers[BUF_ACC].data;                                         \
        const uint32_t *restrict column = t->column, *restrict bin = t->bin;                       \
        for (uint64_t f = 0; f < tile->depth; f++) {                                               \
            const T *restrict band = data + f * tile->frame_stride;                                \
            double *restrict a = acc + f * t->n_bins;                                              \
            for (uint64_t y = y0; y < y0 + rows; y++) {                                            \
                const T *restrict row = band + (y - y0) * t->width;                                \
                for (uint64_t k = t->row_first[y]; k < t->row_first[y + 1]; k++)                   \
                    a[bin[k]] += (double)row[column[k]];                                           \
            }                                                                                      \
        }                                                                                          \
    } while (0)

/* Bytes ahead of each row that RADIAL_SEG prefetches: the hardware prefetcher alone does not keep
 * a core streaming the mapped input busy. A prefetch never faults, so reaching past the tile is
 * harmless. Locality 2 (prefetcht1): measured a little faster here than prefetching into L1. */
#define RADIAL_PREFETCH_AHEAD 2048
#if defined(__GNUC__)
#define RADIAL_PREFETCH(p) __builtin_prefetch(p, 0, 2)
#else
#define RADIAL_PREFETCH(p) ((void)(p))
#endif

/* 8- and 16-bit data: each segment (consecutive columns of one bin) is summed exactly in 32 bits
 * (A; a row holds at most 65536 * 65535 < 2^32), then added to the bin's float64 sum. Every sum is
 * an integer below 2^53, so each float64 addition is exact and the bits equal those of the
 * pixel-by-pixel RADIAL_TILE, whatever the band height. */
#define RADIAL_SEG(T, A)                                                                           \
    do {                                                                                           \
        const T *restrict data = tile->data;                                                       \
        double *restrict acc = ctx->buffers[BUF_ACC].data;                                         \
        const uint32_t *restrict sx0 = t->seg_x0, *restrict sx1 = t->seg_x1,                       \
                                 *restrict sbin = t->seg_bin;                                      \
        for (uint64_t f = 0; f < tile->depth; f++) {                                               \
            const T *restrict band = data + f * tile->frame_stride;                                \
            double *restrict a = acc + f * t->n_bins;                                              \
            for (uint64_t y = y0; y < y0 + rows; y++) {                                            \
                const T *restrict row = band + (y - y0) * t->width;                                \
                for (uint64_t o = 0; o < t->width * sizeof(T); o += 64)                            \
                    RADIAL_PREFETCH((const char *)row + RADIAL_PREFETCH_AHEAD + o);                \
                for (uint64_t k = t->seg_first[y]; k < t->seg_first[y + 1]; k++) {                 \
                    A sum = 0;                                                                     \
                    for (uint32_t x = sx0[k]; x < sx1[k]; x++)                                     \
                        sum += (A)row[x];                                                          \
                    a[sbin[k]] += (double)sum;                                                     \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    } while (0)

#if defined(__SSE2__)
/* 8 pixels of a chunk as int16: uint16 shifted by -32768 (SHIFT; added back per pixel at the end)
 * so that pmaddwd, which multiplies signed words, takes them. */
#define RADIAL_LOAD_U8(p)                                                                          \
    _mm_unpacklo_epi8(_mm_loadl_epi64((const __m128i *)(p)), _mm_setzero_si128())
#define RADIAL_LOAD_I8(p)                                                                          \
    _mm_srai_epi16(_mm_unpacklo_epi8(_mm_setzero_si128(), _mm_loadl_epi64((const __m128i *)(p))), 8)
#define RADIAL_LOAD_U16(p)                                                                         \
    _mm_xor_si128(_mm_loadu_si128((const __m128i *)(p)), _mm_set1_epi16((short)0x8000))
#define RADIAL_LOAD_I16(p) _mm_loadu_si128((const __m128i *)(p))

/* Pairs summed into one int32 vector before it is flushed into int64: each pair adds at most
 * 2 * 32768 to a lane. */
#define RADIAL_BATCH 16384

/* Per frame and bin: the bin's pairs of the band's rows, each the 8 pixels of its chunk masked to
 * the bin and summed pairwise into int32 lanes by one pmaddwd, in registers; then the exact total
 * (plus SHIFT per pixel) is added to the bin's float64 sum. All sums are exact integers below
 * 2^53, so the bits equal those of RADIAL_TILE, whatever the band height. The next frame's band
 * (past the tile for its last frame: a prefetch never faults) is prefetched meanwhile, since the
 * bins visit the frame in no streaming order. */
#define RADIAL_CHUNKS(T, LOAD8, SHIFT)                                                             \
    do {                                                                                           \
        const T *restrict data = tile->data;                                                       \
        double *restrict acc = ctx->buffers[BUF_ACC].data;                                         \
        const uint32_t *restrict pairs = t->pairs;                                                 \
        uint64_t hh = t->height + 1, band_bytes = rows * t->width * sizeof(T);                     \
        uint64_t off0 = y0 * t->width; /* pair offsets count from the frame's start */             \
        for (uint64_t f = 0; f < tile->depth; f++) {                                               \
            const T *restrict band = data + f * tile->frame_stride;                                \
            double *restrict a = acc + f * t->n_bins;                                              \
            const char *next = (const char *)(band + tile->frame_stride);                          \
            uint64_t pf = 0;                                                                       \
            for (uint64_t b = 0; b < t->n_bins; b++) {                                             \
                /* Spread over the bins: a burst of prefetches would stall on the fill buffers. */ \
                for (uint64_t pe = (b + 1) * band_bytes / t->n_bins; pf < pe; pf += 64)            \
                    RADIAL_PREFETCH(next + pf);                                                    \
                uint64_t i = t->first[b * hh + y0], e = t->first[b * hh + y0 + rows];              \
                if (i == e)                                                                        \
                    continue;                                                                      \
                int64_t total = (int64_t)(SHIFT) * (int64_t)(t->cum_pixels[b * hh + y0 + rows] -   \
                                                             t->cum_pixels[b * hh + y0]);          \
                while (i < e) {                                                                    \
                    uint64_t stop = e - i > RADIAL_BATCH ? i + RADIAL_BATCH : e;                   \
                    __m128i s0 = _mm_setzero_si128(), s1 = _mm_setzero_si128();                    \
                    for (; i + 1 < stop; i += 2) {                                                 \
                        uint32_t p0 = pairs[i], p1 = pairs[i + 1];                                 \
                        __m128i m0 = _mm_loadu_si128((const __m128i *)t->masks[p0 & 255]);         \
                        __m128i m1 = _mm_loadu_si128((const __m128i *)t->masks[p1 & 255]);         \
                        __m128i v0 = LOAD8(band + ((p0 >> 8) - off0));                             \
                        __m128i v1 = LOAD8(band + ((p1 >> 8) - off0));                             \
                        s0 = _mm_add_epi32(s0, _mm_madd_epi16(v0, m0));                            \
                        s1 = _mm_add_epi32(s1, _mm_madd_epi16(v1, m1));                            \
                    }                                                                              \
                    if (i < stop) {                                                                \
                        uint32_t p0 = pairs[i++];                                                  \
                        __m128i m0 = _mm_loadu_si128((const __m128i *)t->masks[p0 & 255]);         \
                        __m128i v0 = LOAD8(band + ((p0 >> 8) - off0));                             \
                        s0 = _mm_add_epi32(s0, _mm_madd_epi16(v0, m0));                            \
                    }                                                                              \
                    int32_t l0[4], l1[4];                                                          \
                    _mm_storeu_si128((__m128i *)l0, s0);                                           \
                    _mm_storeu_si128((__m128i *)l1, s1);                                           \
                    for (int j = 0; j < 4; j++)                                                    \
                        total += (int64_t)l0[j] + (int64_t)l1[j];                                  \
                }                                                                                  \
                a[b] += (double)total;                                                             \
            }                                                                                      \
        }                                                                                          \
    } while (0)
#endif

static int radial_tile(udf_ctx *ctx, const udf_tile *tile)
{
    const radial_task *t = ctx->task_data;
    uint64_t y0 = tile->sig_start / t->width, rows = tile->sig_count / t->width;
#if defined(__SSE2__)
    if (t->chunks) {
        switch (ctx->meta->input_dtype) {
        case UDF_U8: RADIAL_CHUNKS(uint8_t, RADIAL_LOAD_U8, 0); return UDF_OK;
        case UDF_U16: RADIAL_CHUNKS(uint16_t, RADIAL_LOAD_U16, 32768); return UDF_OK;
        case UDF_I8: RADIAL_CHUNKS(int8_t, RADIAL_LOAD_I8, 0); return UDF_OK;
        case UDF_I16: RADIAL_CHUNKS(int16_t, RADIAL_LOAD_I16, 0); return UDF_OK;
        default: break;
        }
    }
#endif
    if (t->width <= 65536) {
        switch (ctx->meta->input_dtype) {
        case UDF_U8: RADIAL_SEG(uint8_t, uint32_t); return UDF_OK;
        case UDF_U16: RADIAL_SEG(uint16_t, uint32_t); return UDF_OK;
        case UDF_I8: RADIAL_SEG(int8_t, int32_t); return UDF_OK;
        case UDF_I16: RADIAL_SEG(int16_t, int32_t); return UDF_OK;
        default: break;
        }
    }
    switch (ctx->meta->input_dtype) {
    case UDF_U8: RADIAL_TILE(uint8_t); break;
    case UDF_U16: RADIAL_TILE(uint16_t); break;
    case UDF_U32: RADIAL_TILE(uint32_t); break;
    case UDF_U64: RADIAL_TILE(uint64_t); break;
    case UDF_I8: RADIAL_TILE(int8_t); break;
    case UDF_I16: RADIAL_TILE(int16_t); break;
    case UDF_I32: RADIAL_TILE(int32_t); break;
    case UDF_I64: RADIAL_TILE(int64_t); break;
    case UDF_F32: RADIAL_TILE(float); break;
    case UDF_F64: RADIAL_TILE(double); break;
    default:
        ctx->host->error(ctx, "unsupported input dtype %d", (int)ctx->meta->input_dtype);
        return UDF_ERR_UNSUPPORTED;
    }
    return UDF_OK;
}

/* acc_sum = the sum of the partition's frame profiles, in frame order. */
static int radial_postprocess(udf_ctx *ctx)
{
    const udf_view *acc = &ctx->buffers[BUF_ACC];
    double *restrict sum = ctx->buffers[BUF_ACC_SUM].data;
    const double *restrict a = acc->data;
    uint64_t nb = acc->extra_size;
    for (uint64_t f = 0; f < acc->count; f++)
        for (uint64_t b = 0; b < nb; b++)
            sum[b] += a[f * nb + b];
    return UDF_OK;
}

static int radial_merge(udf_ctx *ctx, udf_view *dest, const udf_view *src)
{
    double *restrict d = dest[BUF_ACC_SUM].data;
    const double *restrict s = src[BUF_ACC_SUM].data;
    for (uint64_t b = 0; b < dest[BUF_ACC_SUM].extra_size; b++)
        d[b] += s[b];
    (void)ctx;
    return UDF_OK;
}

static int radial_results(udf_ctx *ctx)
{
    udf_view *b = ctx->buffers;
    common_round_into(&b[BUF_PROFILE], &b[BUF_ACC], b[BUF_PROFILE].count * b[BUF_PROFILE].extra_size);
    common_round_into(&b[BUF_RADIAL_SUM], &b[BUF_ACC_SUM], b[BUF_RADIAL_SUM].extra_size);
    return UDF_OK;
}

static void radial_cleanup(udf_ctx *ctx, void *task_data)
{
    (void)ctx;
    task_free(task_data);
}

static const udf_plugin radial_plugin = {
    UDF_PLUGIN_HEADER,
    .name = "radial",
    .version = "1.0.0",
    .description = "radial profile (sum per ring of equal width) of each frame and of their sum",
    .params = radial_params,
    .input_dtype = UDF_DTYPE_NATIVE,
    .declare_buffers = radial_declare,
    .init_task = radial_init,
    .process_tile = radial_tile,
    .postprocess = radial_postprocess,
    .merge = radial_merge,
    .get_results = radial_results,
    .cleanup = radial_cleanup,
};

UDF_PLUGIN_DEFINE(radial_plugin)
