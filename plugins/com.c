/* com: the centre of mass of every frame (whole frame, disk or ring), its shift from a reference
 * centre, and the magnitude, divergence and curl of the shift field after scan rotation and flip,
 * as LiberTEM's CoMUDF. Per-frame sums are accumulated in float64 row by row, so the result does
 * not depend on how the host cuts frames into bands; for 8- and 16-bit data they are exact integer
 * sums (COM_ROWS for a mask of every pixel, COM_FAST for other masks), which give the same bits
 * several times faster. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include <udfhost/udf.h>

#include "common.h"

#include "pmadd.h"

/* COM_ROWS also in AVX2 where the compiler can target it for one function (PMADD_AVX2), picked at
 * run time (com_task.lanes): it halves the instructions per pixel, which lets com keep up with the
 * memory bus, alone and with sum and sumsig in the same pass. */

/* Radii beyond any detector; the host needs finite bounds to check a range. */
#define RADIUS_MAX 1e9

/* M_PI is POSIX, not C11. */
#define COM_PI 3.14159265358979323846

/* Widest frame the exact column-sum path (COM_FAST) takes: its column sums live on the stack. */
#define COM_FAST_MAX_WIDTH 8192

/* The hardware prefetcher alone does not keep up with a core streaming the mapped input (com ran
 * at half the speed of sum without this): each row's lines are prefetched COMMON_AHEAD bytes
 * ahead as the row is read (COMMON_PREFETCH_ROW). */

static const udf_param_decl com_params[] = {
    {.name = "cy", .type = UDF_PARAM_FLOAT,
     .help = "row of the mask centre and of the reference for raw_shifts (default (H-1)/2)"},
    {.name = "cx", .type = UDF_PARAM_FLOAT,
     .help = "column of the mask centre and of the reference for raw_shifts (default (W-1)/2)"},
    {.name = "r", .type = UDF_PARAM_FLOAT, .min = 0, .max = RADIUS_MAX,
     .help = "outer radius: only pixels with d^2 <= r^2 count (default: no limit)"},
    {.name = "ri", .type = UDF_PARAM_FLOAT, .default_value = "0", .min = 0, .max = RADIUS_MAX,
     .help = "inner radius: only pixels with ri^2 <= d^2 count"},
    {.name = "scan_rotation", .type = UDF_PARAM_FLOAT, .default_value = "0",
     .help = "degrees to rotate the shifts by (clockwise on screen, y down), as LiberTEM"},
    {.name = "flip_y", .type = UDF_PARAM_BOOL, .default_value = "false",
     .help = "negate the y shift before rotating (detectors with row 0 at the bottom)"},
    {.name = "dtype", .type = UDF_PARAM_CHOICE, .default_value = "float32",
     .choices = "float32|float64", .help = "dtype of the result buffers"},
    {0},
};

enum { BUF_ACC, BUF_RAW_COM, BUF_RAW_SHIFTS, BUF_FIELD, BUF_MAGNITUDE, BUF_DIVERGENCE, BUF_CURL };

/* A run of consecutive mask pixels [x0, x1) of one row. */
typedef struct com_run {
    uint64_t x0, x1;
} com_run;

/* Task data, built by init_task and read-only afterwards. */
typedef struct com_task {
    uint64_t height, width;
    double cy, cx;      /* mask centre and shift reference */
    double cos_a, sin_a; /* of the scan rotation */
    double flip;        /* -1 with flip_y, else 1 */
    uint64_t *row_first; /* the runs of row y are runs[row_first[y] .. row_first[y + 1]) */
    com_run *runs;
    uint64_t x_lo, x_hi; /* the columns the runs cover: [x_lo, x_hi) */
    int fast;            /* 8-/16-bit input whose sums stay exact: COM_FAST */
    uint64_t block_rows; /* > 0: ... the mask holds every pixel, so COM_ROWS, in blocks of rows */
    int lanes;           /* pixels per vector of COM_ROWS: 16 (AVX2) or 8 (SSE2) */
} com_task;

static void task_free(com_task *t)
{
    if (!t)
        return;
    free(t->row_first);
    free(t->runs);
    free(t);
}

static int com_declare(udf_ctx *ctx)
{
    const char *dtype;
    int rc = ctx->host->param_string(ctx, "dtype", 0, &dtype);
    if (rc)
        return rc;
    udf_dtype out = common_result_dtype(dtype);
    /* acc[f] = (sum, sum of y * value, sum of x * value) over the mask, in float64. */
    const udf_buffer_decl decls[] = {
        {.name = "acc", .kind = UDF_KIND_NAV, .dtype = UDF_F64, .flags = UDF_BUFFER_PRIVATE,
         .extra_ndim = 1, .extra_shape = {3}},
        {.name = "raw_com", .kind = UDF_KIND_NAV, .dtype = out, .flags = UDF_BUFFER_RESULT_ONLY,
         .extra_ndim = 1, .extra_shape = {2}},
        {.name = "raw_shifts", .kind = UDF_KIND_NAV, .dtype = out,
         .flags = UDF_BUFFER_RESULT_ONLY, .extra_ndim = 1, .extra_shape = {2}},
        {.name = "field", .kind = UDF_KIND_NAV, .dtype = out, .flags = UDF_BUFFER_RESULT_ONLY,
         .extra_ndim = 1, .extra_shape = {2}},
        {.name = "magnitude", .kind = UDF_KIND_NAV, .dtype = out,
         .flags = UDF_BUFFER_RESULT_ONLY},
        {.name = "divergence", .kind = UDF_KIND_NAV, .dtype = out,
         .flags = UDF_BUFFER_RESULT_ONLY},
        {.name = "curl", .kind = UDF_KIND_NAV, .dtype = out, .flags = UDF_BUFFER_RESULT_ONLY},
    };
    for (size_t i = 0; i < sizeof decls / sizeof decls[0]; i++)
        if ((rc = ctx->host->declare_buffer(ctx, &decls[i])))
            return rc;
    return UDF_OK;
}

/* Pixel (y, x) is in the mask when ri^2 <= d^2 <= r^2, d^2 computed exactly this way (the man
 * page and the tests use the same expression, so boundary pixels agree bit for bit). */
static int in_mask(double y, double x, double cy, double cx, double ri, double r, int limited)
{
    double d2 = (y - cy) * (y - cy) + (x - cx) * (x - cx);
    return ri * ri <= d2 && (!limited || d2 <= r * r);
}

/* Runs of mask pixels, row by row: one pass to count them, one to store them. */
static int runs_build(udf_ctx *ctx, com_task *t, double ri, double r, int limited)
{
    uint64_t h = t->height, w = t->width, n = 0;
    t->row_first = malloc((h + 1) * sizeof *t->row_first);
    if (!t->row_first)
        return UDF_ERR_NOMEM;
    for (int pass = 0; pass < 2; pass++) {
        n = 0;
        for (uint64_t y = 0; y < h; y++) {
            t->row_first[y] = n;
            int inside = 0;
            for (uint64_t x = 0; x <= w; x++) {
                int now = x < w && in_mask((double)y, (double)x, t->cy, t->cx, ri, r, limited);
                if (now && !inside && pass)
                    t->runs[n].x0 = x;
                if (!now && inside) {
                    if (pass)
                        t->runs[n].x1 = x;
                    n++;
                }
                inside = now;
            }
        }
        t->row_first[h] = n;
        if (n == 0) {
            ctx->host->error(ctx, "the mask (ri %g, r %g around %g, %g) holds no pixel of the "
                             "%llu x %llu frame", ri, limited ? r : INFINITY, t->cy, t->cx,
                             (unsigned long long)h, (unsigned long long)w);
            return UDF_ERR_PARAM;
        }
        if (!pass && !(t->runs = malloc(n * sizeof *t->runs)))
            return UDF_ERR_NOMEM;
    }
    return UDF_OK;
}

static int com_init(udf_ctx *ctx, void **task_data)
{
    const udf_meta *m = ctx->meta;
    if (m->sig_ndim != 2) {
        ctx->host->error(ctx, "needs a 2-D signal, the dataset's has %u dimensions",
                         (unsigned)m->sig_ndim);
        return UDF_ERR_UNSUPPORTED;
    }
    com_task *t = calloc(1, sizeof *t);
    if (!t)
        return UDF_ERR_NOMEM;
    t->height = m->sig_shape[0];
    t->width = m->sig_shape[1];
    double ri, r = INFINITY, degrees;
    int flip, rc;
    int limited = ctx->host->param_count(ctx, "r") > 0;
    if ((rc = common_param_or(ctx, "cy", (double)(t->height - 1) / 2, &t->cy)) ||
        (rc = common_param_or(ctx, "cx", (double)(t->width - 1) / 2, &t->cx)) ||
        (rc = ctx->host->param_double(ctx, "ri", 0, &ri)) ||
        (limited && (rc = ctx->host->param_double(ctx, "r", 0, &r))) ||
        (rc = ctx->host->param_double(ctx, "scan_rotation", 0, &degrees)) ||
        (rc = ctx->host->param_bool(ctx, "flip_y", 0, &flip)))
        goto fail;
    if (limited && ri > r) {
        ctx->host->error(ctx, "inner radius ri %g > outer radius r %g", ri, r);
        rc = UDF_ERR_PARAM;
        goto fail;
    }
    /* The same expression as LiberTEM's rotate_deg, np.pi / 180 * degrees. */
    double radians = COM_PI / 180 * degrees;
    t->cos_a = cos(radians);
    t->sin_a = sin(radians);
    t->flip = flip ? -1 : 1;
    if ((rc = runs_build(ctx, t, ri, r, limited)))
        goto fail;
    t->x_lo = t->width;
    t->x_hi = 0;
    for (uint64_t k = 0; k < t->row_first[t->height]; k++) {
        if (t->runs[k].x0 < t->x_lo)
            t->x_lo = t->runs[k].x0;
        if (t->runs[k].x1 > t->x_hi)
            t->x_hi = t->runs[k].x1;
    }
    {
        /* |value| <= 65535 (8 and 16 bits): sums of value * coordinate over a frame stay below
         * 2^53, so they are exact integers in float64, and the column sums of a band (at most
         * height rows) fit 32 bits. */
        udf_dtype d = m->input_dtype;
        uint64_t longest = t->height > t->width ? t->height : t->width;
        int small = d == UDF_U8 || d == UDF_U16 || d == UDF_I8 || d == UDF_I16;
        t->fast = small && t->width <= COM_FAST_MAX_WIDTH && t->height <= 65536 &&
                  65535.0 * (double)m->sig_size * (double)longest < 9007199254740992.0;
        uint64_t covered = 0;
        for (uint64_t k = 0; k < t->row_first[t->height]; k++)
            covered += t->runs[k].x1 - t->runs[k].x0;
        t->block_rows = 0;
#if defined(__SSE2__)
        /* The vector width, fixed for the run so that every partition sums alike (the bits are the
         * same for either width anyway: exact integers). */
        t->lanes = 8;
#if defined(PMADD_AVX2)
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx2") && t->width >= 16)
            t->lanes = 16;
#endif
        /* The largest block of rows whose int32 lanes cannot overflow in COM_ROWS, with n whole
         * vectors of L per row: per vector and lane |p| <= 2^16 and |q| <= (2L - 3) * 2^15. */
        uint64_t n = t->width / (uint64_t)t->lanes;
        double qmax = (2.0 * t->lanes - 3) * 32768.0;
        if (t->fast && covered == m->sig_size && t->width >= 8)
            for (uint64_t nr = 1; nr <= 4096; nr++) {
                double lim = 2147483647.0, p = 65536.0, rr = (double)nr;
                if (rr * (rr + 1) / 2.0 * (double)(n + 1) * p >= lim ||
                    rr * ((double)n * (double)(n + 1) / 2.0) * p >= lim ||
                    rr * (double)(n + 1) * qmax >= lim)
                    break;
                t->block_rows = nr;
            }
#else
        (void)covered;
#endif
    }
    if (m->nav_ndim != 2)
        ctx->host->log(ctx, 1, "divergence and curl need a 2-D scan; they are NaN for this "
                       "%u-D one", (unsigned)m->nav_ndim);
    *task_data = t;
    return UDF_OK;
fail:
    task_free(t);
    return rc;
}

/* acc[f] += (sum, sum y*v, sum x*v) over the mask pixels of the band's rows, adding one row at a
 * time so the order of additions, and so the bits, do not depend on the band height. R is the
 * type a row is summed in, P the type of v*x: for 8- and 16-bit data int64 and a 32-bit product
 * (exact while W <= 2^16: |v*x| < 2^32 unsigned, 2^31 signed; a row stays below 2^48), which
 * vectorises; double for both otherwise. */
#define COM_TILE(T, R, P)                                                                          \
    do {                                                                                           \
        const T *restrict data = tile->data;                                                       \
        double *restrict acc = ctx->buffers[BUF_ACC].data;                                         \
        for (uint64_t f = 0; f < tile->depth; f++) {                                               \
            const T *restrict band = data + f * tile->frame_stride;                                \
            double s = acc[3 * f], sy = acc[3 * f + 1], sx = acc[3 * f + 2];                       \
            for (uint64_t y = y0; y < y0 + rows; y++) {                                            \
                const T *restrict row = band + (y - y0) * t->width;                                \
                R rs = 0, rx = 0;                                                                  \
                for (uint64_t k = t->row_first[y]; k < t->row_first[y + 1]; k++)                   \
                    for (uint64_t x = t->runs[k].x0; x < t->runs[k].x1; x++) {                     \
                        rs += (R)row[x];                                                           \
                        rx += (R)((P)row[x] * (P)x);                                               \
                    }                                                                              \
                s += (double)rs;                                                                   \
                sy += (double)rs * (double)y;                                                      \
                sx += (double)rx;                                                                  \
            }                                                                                      \
            acc[3 * f] = s;                                                                        \
            acc[3 * f + 1] = sy;                                                                   \
            acc[3 * f + 2] = sx;                                                                   \
        }                                                                                          \
    } while (0)

/* The exact integer path for 8- and 16-bit data: per frame and band, the mask pixels are added
 * into per-column sums col[x] (A: 32 bits, exact while the band has at most 65536 rows) and per
 * row into rs; then s += rs, sy += y * rs per row and, once per band, sx = sum x * col[x]. Each
 * inner loop is a contiguous run with plain 32-bit adds, which vectorises. All sums are exact
 * integers (com_init checks they stay below 2^53), so adding band totals to the float64 acc gives
 * the same bits as the row-by-row float64 sums of COM_TILE, whatever the band height. The rows
 * ahead are prefetched (COMMON_PREFETCH_ROW). */
#define COM_FAST(T, A)                                                                             \
    do {                                                                                           \
        const T *restrict data = tile->data;                                                       \
        double *restrict acc = ctx->buffers[BUF_ACC].data;                                         \
        A col[COM_FAST_MAX_WIDTH];                                                                 \
        uint64_t xa = t->x_lo, xb = t->x_hi;                                                       \
        for (uint64_t f = 0; f < tile->depth; f++) {                                               \
            const T *restrict band = data + f * tile->frame_stride;                                \
            for (uint64_t x = xa; x < xb; x++)                                                     \
                col[x] = 0;                                                                        \
            int64_t s = 0, sy = 0, sx = 0;                                                         \
            for (uint64_t y = y0; y < y0 + rows; y++) {                                            \
                const T *restrict row = band + (y - y0) * t->width;                                \
                A rs = 0;                                                                          \
                COMMON_PREFETCH_ROW(row, t->width * sizeof(T));                                    \
                for (uint64_t k = t->row_first[y]; k < t->row_first[y + 1]; k++) {                 \
                    uint64_t x1 = t->runs[k].x1;                                                   \
                    for (uint64_t x = t->runs[k].x0; x < x1; x++) {                                \
                        A v = (A)row[x];                                                           \
                        col[x] += v;                                                               \
                        rs += v;                                                                   \
                    }                                                                              \
                }                                                                                  \
                s += (int64_t)rs;                                                                  \
                sy += (int64_t)y * (int64_t)rs;                                                    \
            }                                                                                      \
            for (uint64_t x = xa; x < xb; x++)                                                     \
                sx += (int64_t)x * (int64_t)col[x];                                                \
            acc[3 * f] += (double)s;                                                               \
            acc[3 * f + 1] += (double)sy;                                                          \
            acc[3 * f + 2] += (double)sx;                                                          \
        }                                                                                          \
    } while (0)

#if defined(__SSE2__)
/* Per width W, besides pmadd.h's operations: the lanes of a vector, and a vector of int16 words. */
#define COM_LANES_128 8
#define COM_WORDS_128(p) _mm_loadu_si128((const __m128i *)(p))
#if defined(PMADD_AVX2)
#define COM_LANES_256 16
#define COM_WORDS_256(p) _mm256_loadu_si256((const __m256i *)(p))
#endif

/* The exact path for a mask of every pixel, in int32 lanes in registers, in streaming order, with
 * vectors of L = COM_LANES_##W pixels. Each row is n vectors j of L pixels (plus, when L does not
 * divide the width, a last vector moved left to end at the row's end, its columns already done
 * weighted 0). pmaddwd against ones gives p, the sums of the pixel pairs (Lj + 2k, Lj + 2k + 1),
 * and against (0, 1, ..., L - 1) gives q = 2k * v + (2k + 1) * v' of the same pair. Per row, rt =
 * running sum of p, and vv += rt after every vector, so that sum over j of j * p_j = n * sum p -
 * vv; per block of rows, st = running sum of rt and uu += st after every row, so that sum y * v =
 * y_end * s - uu. Then sum x * v = L * (n * s_main - vv) + sum q (+ the last vector's x0 * p + q).
 * The shift of uint16 is added back for every pixel at the end. R rows per block keep every lane
 * below 2^31 (com_block_rows). Exact integers throughout, added to the float64 acc per band: the
 * same bits as COM_FAST and COM_TILE, for either width. */
#define COM_ROWS(T, LOAD, SHIFT, W, R)                                                             \
    do {                                                                                           \
        const T *restrict data = tile->data;                                                       \
        double *restrict acc = ctx->buffers[BUF_ACC].data;                                         \
        enum { L = COM_LANES_##W };                                                                \
        const uint64_t w = t->width, n = w / L, xt = w - L;                                        \
        const int tail = w % L != 0;                                                               \
        int16_t wt[L], wq[L], wl[L], w1[L];                                                        \
        for (int c = 0; c < L; c++) {                                                              \
            wt[c] = xt + (uint64_t)c >= L * n;                                                     \
            wq[c] = (int16_t)(wt[c] * c);                                                          \
            wl[c] = (int16_t)c;                                                                    \
            w1[c] = 1;                                                                             \
        }                                                                                          \
        const PMADD_VEC_##W ones = COM_WORDS_##W(w1), lanes = COM_WORDS_##W(wl),                     \
                          mt = COM_WORDS_##W(wt), mq = COM_WORDS_##W(wq);                          \
        const int64_t sumx = (int64_t)(w * (w - 1) / 2),                                           \
                      sumy = (int64_t)((2 * y0 + rows - 1) * rows / 2);                            \
        for (uint64_t f = 0; f < tile->depth; f++) {                                               \
            const T *restrict band = data + f * tile->frame_stride;                                \
            int64_t s = 0, sy = 0, sx = 0;                                                         \
            for (uint64_t r0 = 0; r0 < rows; r0 += (R)) {                                          \
                uint64_t r1 = rows - r0 < (R) ? rows : r0 + (R);                                   \
                PMADD_VEC_##W z = PMADD_ZERO_##W(), st = z, uu = z, vv = z, qq = z, pt = z, qt = z;    \
                for (uint64_t r = r0; r < r1; r++) {                                               \
                    const T *restrict row = band + r * w;                                          \
                    COMMON_PREFETCH_ROW(row, w * sizeof(T));                                       \
                    PMADD_VEC_##W rt = z;                                                            \
                    _Pragma("GCC unroll 4") for (uint64_t j = 0; j < n; j++) {                     \
                        PMADD_VEC_##W v = LOAD(row + L * j);                                         \
                        rt = PMADD_ADD_##W(rt, PMADD_MADD_##W(v, ones));                               \
                        vv = PMADD_ADD_##W(vv, rt);                                                  \
                        qq = PMADD_ADD_##W(qq, PMADD_MADD_##W(v, lanes));                              \
                    }                                                                              \
                    if (tail) {                                                                    \
                        PMADD_VEC_##W v = LOAD(row + xt), p = PMADD_MADD_##W(v, mt);                   \
                        rt = PMADD_ADD_##W(rt, p);                                                   \
                        pt = PMADD_ADD_##W(pt, p);                                                   \
                        qt = PMADD_ADD_##W(qt, PMADD_MADD_##W(v, mq));                                 \
                    }                                                                              \
                    st = PMADD_ADD_##W(st, rt);                                                      \
                    uu = PMADD_ADD_##W(uu, st);                                                      \
                }                                                                                  \
                int64_t bs = PMADD_HSUM_##W(st), bt = PMADD_HSUM_##W(pt);                              \
                s += bs;                                                                           \
                sy += (int64_t)(y0 + r1) * bs - PMADD_HSUM_##W(uu);                                  \
                sx += L * ((int64_t)n * (bs - bt) - PMADD_HSUM_##W(vv)) + PMADD_HSUM_##W(qq) +         \
                      (int64_t)xt * bt + PMADD_HSUM_##W(qt);                                         \
            }                                                                                      \
            s += (int64_t)(SHIFT) * (int64_t)(rows * w);                                           \
            sy += (int64_t)(SHIFT) * (int64_t)w * sumy;                                            \
            sx += (int64_t)(SHIFT) * (int64_t)rows * sumx;                                         \
            acc[3 * f] += (double)s;                                                               \
            acc[3 * f + 1] += (double)sy;                                                          \
            acc[3 * f + 2] += (double)sx;                                                          \
        }                                                                                          \
    } while (0)

/* COM_ROWS for each 8- and 16-bit input dtype, with vectors W; returns whether it took the dtype. */
#define COM_ROWS_DTYPES(W, R)                                                                      \
    switch (ctx->meta->input_dtype) {                                                              \
    case UDF_U8: COM_ROWS(uint8_t, PMADD_LOAD_U8_##W, 0, W, R); return 1;                            \
    case UDF_U16: COM_ROWS(uint16_t, PMADD_LOAD_U16_##W, 32768, W, R); return 1;                     \
    case UDF_I8: COM_ROWS(int8_t, PMADD_LOAD_I8_##W, 0, W, R); return 1;                             \
    case UDF_I16: COM_ROWS(int16_t, PMADD_LOAD_I16_##W, 0, W, R); return 1;                          \
    default: return 0;                                                                             \
    }

static int com_rows_128(udf_ctx *ctx, const com_task *t, const udf_tile *tile, uint64_t y0,
                        uint64_t rows)
{
    COM_ROWS_DTYPES(128, t->block_rows)
}

#if defined(PMADD_AVX2)
PMADD_FN_256 static int com_rows_256(udf_ctx *ctx, const com_task *t, const udf_tile *tile,
                                    uint64_t y0, uint64_t rows)
{
    COM_ROWS_DTYPES(256, t->block_rows)
}
#endif
#endif

/* Float data: the sums of a row are spread over COM_FLOAT_LANES partial sums by position within
 * each run of the mask, and added in a fixed tree at the row's end. One running sum waited for its
 * previous addition at every pixel (float additions may not be reordered); eight independent ones
 * vectorise. The order depends only on the row and the mask, not on bands or threads, so the bits
 * still do not either. The rows ahead are prefetched as in COM_FAST: without, float32 com spent 60 %
 * of its run waiting for loads and took 0.30 s per GiB on one core instead of 0.16. */
#define COM_FLOAT_LANES 8
#define COM_TREE8(a) ((((a)[0] + (a)[1]) + ((a)[2] + (a)[3])) + (((a)[4] + (a)[5]) + ((a)[6] + (a)[7])))
#define COM_FLOAT(T)                                                                               \
    do {                                                                                           \
        const T *restrict data = tile->data;                                                       \
        double *restrict acc = ctx->buffers[BUF_ACC].data;                                         \
        for (uint64_t f = 0; f < tile->depth; f++) {                                               \
            const T *restrict band = data + f * tile->frame_stride;                                \
            double s = acc[3 * f], sy = acc[3 * f + 1], sx = acc[3 * f + 2];                       \
            for (uint64_t y = y0; y < y0 + rows; y++) {                                            \
                const T *restrict row = band + (y - y0) * t->width;                                \
                COMMON_PREFETCH_ROW(row, t->width * sizeof(T));                                    \
                double ls[COM_FLOAT_LANES] = {0}, lx[COM_FLOAT_LANES] = {0};                       \
                for (uint64_t k = t->row_first[y]; k < t->row_first[y + 1]; k++) {                 \
                    uint64_t x = t->runs[k].x0, x1 = t->runs[k].x1;                                \
                    for (; x + COM_FLOAT_LANES <= x1; x += COM_FLOAT_LANES) {                      \
                        const double xd = (double)x; /* exact: (double)(x + l) == xd + l */        \
                        _Pragma("GCC unroll 8") for (int l = 0; l < COM_FLOAT_LANES; l++) {        \
                            double v = (double)row[x + (uint64_t)l];                               \
                            ls[l] += v;                                                            \
                            lx[l] += v * (xd + (double)l);                                         \
                        }                                                                          \
                    }                                                                              \
                    for (int l = 0; x < x1; x++, l++) {                                            \
                        double v = (double)row[x];                                                 \
                        ls[l] += v;                                                                \
                        lx[l] += v * (double)x;                                                    \
                    }                                                                              \
                }                                                                                  \
                double rs = COM_TREE8(ls);                                                         \
                s += rs;                                                                           \
                sy += rs * (double)y;                                                              \
                sx += COM_TREE8(lx);                                                               \
            }                                                                                      \
            acc[3 * f] = s;                                                                        \
            acc[3 * f + 1] = sy;                                                                   \
            acc[3 * f + 2] = sx;                                                                   \
        }                                                                                          \
    } while (0)

COMMON_HOT
static void com_float_tile(udf_ctx *ctx, const com_task *t, const udf_tile *tile, uint64_t y0,
                           uint64_t rows)
{
    if (ctx->meta->input_dtype == UDF_F32)
        COM_FLOAT(float);
    else
        COM_FLOAT(double);
}

static int com_tile(udf_ctx *ctx, const udf_tile *tile)
{
    const com_task *t = ctx->task_data;
    uint64_t y0 = tile->sig_start / t->width, rows = tile->sig_count / t->width;
#if defined(__SSE2__)
#if defined(PMADD_AVX2)
    if (t->block_rows && t->lanes == 16 && com_rows_256(ctx, t, tile, y0, rows))
        return UDF_OK;
#endif
    if (t->block_rows && t->lanes == 8 && com_rows_128(ctx, t, tile, y0, rows))
        return UDF_OK;
#endif
    if (t->fast) {
        switch (ctx->meta->input_dtype) {
        case UDF_U8: COM_FAST(uint8_t, uint32_t); return UDF_OK;
        case UDF_U16: COM_FAST(uint16_t, uint32_t); return UDF_OK;
        case UDF_I8: COM_FAST(int8_t, int32_t); return UDF_OK;
        case UDF_I16: COM_FAST(int16_t, int32_t); return UDF_OK;
        default: break;
        }
    }
    /* Wider rows would overflow the 32-bit products of the narrow path. */
    int narrow = t->width <= 65536;
    switch (ctx->meta->input_dtype) {
    case UDF_U8:
        if (narrow)
            COM_TILE(uint8_t, int64_t, uint32_t);
        else
            COM_TILE(uint8_t, double, double);
        break;
    case UDF_U16:
        if (narrow)
            COM_TILE(uint16_t, int64_t, uint32_t);
        else
            COM_TILE(uint16_t, double, double);
        break;
    case UDF_I8:
        if (narrow)
            COM_TILE(int8_t, int64_t, int32_t);
        else
            COM_TILE(int8_t, double, double);
        break;
    case UDF_I16:
        if (narrow)
            COM_TILE(int16_t, int64_t, int32_t);
        else
            COM_TILE(int16_t, double, double);
        break;
    case UDF_U32: COM_TILE(uint32_t, double, double); break;
    case UDF_I32: COM_TILE(int32_t, double, double); break;
    case UDF_U64: COM_TILE(uint64_t, double, double); break;
    case UDF_I64: COM_TILE(int64_t, double, double); break;
    case UDF_F32: case UDF_F64: com_float_tile(ctx, t, tile, y0, rows); break;
    default:
        ctx->host->error(ctx, "unsupported input dtype %d", (int)ctx->meta->input_dtype);
        return UDF_ERR_UNSUPPORTED;
    }
    return UDF_OK;
}

static void store(udf_view *v, uint64_t i, double value)
{
    if (v->dtype == UDF_F32)
        ((float *)v->data)[i] = (float)value;
    else
        ((double *)v->data)[i] = value;
}

/* d/d(axis) of the ny x nx field component c (stride 2 in `field`) at (y, x), as np.gradient with
 * unit spacing: central differences inside, first-order one-sided differences at the edges, NaN
 * along an axis of length 1 (where np.gradient raises). */
static double gradient(const double *field, int c, uint64_t ny, uint64_t nx, uint64_t y,
                       uint64_t x, int along_y)
{
    uint64_t n = along_y ? ny : nx, i = along_y ? y : x, step = along_y ? nx : 1;
    const double *p = field + 2 * (y * nx + x) + c;
    if (n < 2)
        return NAN;
    if (i == 0)
        return p[2 * step] - p[0];
    if (i == n - 1)
        return p[0] - p[-2 * (int64_t)step];
    return (p[2 * step] - p[-2 * (int64_t)step]) / 2.0;
}

static int com_results(udf_ctx *ctx)
{
    const com_task *t = ctx->task_data;
    const udf_meta *m = ctx->meta;
    const double *acc = ctx->buffers[BUF_ACC].data;
    uint64_t n = m->num_frames;
    /* The rotated field in float64, for the derivatives: rounding it first would cost digits. */
    double *field = malloc(2 * n * sizeof *field);
    if (!field)
        return UDF_ERR_NOMEM;
    for (uint64_t i = 0; i < n; i++) {
        double s = acc[3 * i];
        /* An empty frame has no centre; frames outside the ROI arrive as NaN and stay NaN. */
        double com_y = s == 0 ? NAN : acc[3 * i + 1] / s;
        double com_x = s == 0 ? NAN : acc[3 * i + 2] / s;
        double dy = com_y - t->cy, dx = com_x - t->cx;
        /* LiberTEM's apply_correction: (y', x') = R @ F @ (dy, dx), R = [[c, s], [-s, c]],
         * F = diag(flip, 1). */
        double fy = t->cos_a * (t->flip * dy) + t->sin_a * dx;
        double fx = -t->sin_a * (t->flip * dy) + t->cos_a * dx;
        field[2 * i] = fy;
        field[2 * i + 1] = fx;
        store(&ctx->buffers[BUF_RAW_COM], 2 * i, com_y);
        store(&ctx->buffers[BUF_RAW_COM], 2 * i + 1, com_x);
        store(&ctx->buffers[BUF_RAW_SHIFTS], 2 * i, dy);
        store(&ctx->buffers[BUF_RAW_SHIFTS], 2 * i + 1, dx);
        store(&ctx->buffers[BUF_FIELD], 2 * i, fy);
        store(&ctx->buffers[BUF_FIELD], 2 * i + 1, fx);
        store(&ctx->buffers[BUF_MAGNITUDE], i, sqrt(dy * dy + dx * dx));
    }
    uint64_t ny = m->nav_ndim == 2 ? m->nav_shape[0] : 0, nx = m->nav_ndim == 2 ? m->nav_shape[1] : 0;
    for (uint64_t i = 0; i < n; i++) {
        double div = NAN, curl = NAN;
        if (m->nav_ndim == 2) {
            uint64_t y = i / nx, x = i % nx;
            div = gradient(field, 0, ny, nx, y, x, 1) + gradient(field, 1, ny, nx, y, x, 0);
            curl = gradient(field, 0, ny, nx, y, x, 0) - gradient(field, 1, ny, nx, y, x, 1);
        }
        store(&ctx->buffers[BUF_DIVERGENCE], i, div);
        store(&ctx->buffers[BUF_CURL], i, curl);
    }
    free(field);
    return UDF_OK;
}

static void com_cleanup(udf_ctx *ctx, void *task_data)
{
    (void)ctx;
    task_free(task_data);
}

static const udf_plugin com_plugin = {
    UDF_PLUGIN_HEADER,
    .name = "com",
    .version = "1.0.0",
    .description = "centre of mass of each frame, its shift, and divergence and curl of the shifts",
    .params = com_params,
    .input_dtype = UDF_DTYPE_NATIVE,
    .declare_buffers = com_declare,
    .init_task = com_init,
    .process_tile = com_tile,
    .get_results = com_results,
    .cleanup = com_cleanup,
};

UDF_PLUGIN_DEFINE(com_plugin)
