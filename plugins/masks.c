/* masks: virtual detectors. Applies N masks to every frame, intensity[f, i] = sum over pixels p of
 * frame_f[p] * mask_i[p], with the masks read from .npy files or generated (disk, ring, rectangle,
 * radial bins) in command-line order, applied densely or as sparse runs of pixels. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <udfhost/udf.h>

#include "chunks.h"
#include "common.h"

/* GNU C (GCC, Clang): the dense kernels use vector extensions, and on x86 an AVX2 + FMA variant
 * chosen at run time (the plugins are built for baseline x86-64, SSE2). */
#if defined(__GNUC__)
#define DENSE_VECTOR 1
typedef double vd4 __attribute__((vector_size(32)));
typedef double vd8 __attribute__((vector_size(64)));
typedef float vf8 __attribute__((vector_size(32)));
typedef float vf16 __attribute__((vector_size(64)));
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define DENSE_AVX2 1
#endif
#endif

static const udf_param_decl masks_params[] = {
    {.name = "file", .type = UDF_PARAM_STRING, .flags = UDF_PARAM_REPEATABLE,
     .help = ".npy of N x sig shape (or sig shape for one mask), any numeric dtype or bool"},
    {.name = "disk", .type = UDF_PARAM_FLOATS, .flags = UDF_PARAM_REPEATABLE,
     .help = "CY,CX,R: pixels with (y-CY)^2+(x-CX)^2 <= R^2"},
    {.name = "ring", .type = UDF_PARAM_FLOATS, .flags = UDF_PARAM_REPEATABLE,
     .help = "CY,CX,RI,RO: pixels with RI^2 <= (y-CY)^2+(x-CX)^2 <= RO^2"},
    {.name = "rect", .type = UDF_PARAM_INTS, .flags = UDF_PARAM_REPEATABLE,
     .help = "Y0,X0,Y1,X1: pixels with Y0 <= y < Y1 and X0 <= x < X1"},
    {.name = "radial_bins", .type = UDF_PARAM_FLOATS, .flags = UDF_PARAM_REPEATABLE,
     .help = "CY,CX,RI,RO,N: N rings of equal width from RI to RO (the last includes RO)"},
    {.name = "dtype", .type = UDF_PARAM_CHOICE, .default_value = "float32",
     .choices = "float32|float64", .help = "dtype of the result buffer intensity"},
    {.name = "sparse", .type = UDF_PARAM_CHOICE, .default_value = "auto",
     .choices = "auto|true|false",
     .help = "apply masks as runs of non-zero pixels (auto: when under 25% of entries are "
             "non-zero)"},
    {.name = "compute", .type = UDF_PARAM_CHOICE, .default_value = "float64",
     .choices = "float64|float32",
     .help = "arithmetic of dense masks: float32 is about 1.4 times as fast, rounding weights and "
             "products to float and summing blocks of 128 pixels in float (LiberTEM's default "
             "is float32 throughout)"},
    {0},
};

enum { BUF_ACC, BUF_INTENSITY };

/* Longest run of a sparse mask: 16-bit data then sums a run in 32 bits without overflow
 * (32768 * 65535 < 2^32, 32768 * 32768 <= 2^31), which vectorises better than 64-bit sums. */
#define RUN_MAX 32768u

/* Binary masks whose runs average fewer pixels than this are summed pixel by pixel through an
 * index list (GATHER_FRAMES frames per pass), the others run by run. */
#define GATHER_RUN 16
#define GATHER_FRAMES 4

/* More bins than this is a typing mistake, not a radial profile. */
#define BINS_MAX 65536.0

/* A run of consecutive non-zero pixels of one mask, in flat signal order. */
typedef struct mask_run {
    uint64_t start;   /* flat signal index of the first pixel */
    uint64_t weights; /* index of its weight in masks_task.weights (weighted masks only) */
    uint32_t len;
} mask_run;

enum { SIMD_NONE, SIMD_AVX2, SIMD_AVX512 };

/* Task data, built by init_task and read-only afterwards. Exactly one of packed, packed32 and runs
 * is set. */
typedef struct masks_task {
    uint64_t count;    /* N, the masks */
    uint64_t sig_size;
    double *dense;     /* N x sig_size, mask-major (only while building) */
    /* Dense: sig_size x npad, pixel-major, N padded with zero masks to npad (a multiple of the
     * vector length); 64-byte aligned; packed32 instead with compute=float32. simd: the kernel
     * this CPU runs (fixed for the run, so every partition sums in the same way). */
    double *packed;
    float *packed32;
    uint64_t npad;
    int simd;
    /* Sparse: the runs of mask i are runs[run_first[i] .. run_first[i + 1]), increasing. Masks
     * whose non-zero entries are all 1 are `binary`: their runs are plain sums, exact for
     * integer data; the others multiply by weights. */
    mask_run *runs;
    uint64_t *run_first;
    uint8_t *binary;
    double *weights;
    /* Binary masks with short runs (rings a few pixels wide) are `gathered` instead: the flat
     * indices of their pixels, increasing, idx[idx_first[i] .. idx_first[i + 1]), summed for
     * GATHER_FRAMES frames per pass, so the cost is per pixel, not per run. */
    uint8_t *gather;
    uint32_t *idx;
    uint64_t *idx_first;
    uint64_t ngather; /* masks gathered */
    /* For 8- and 16-bit data the gathered masks are applied as chunk sets instead (chunks.h,
     * eight frames per pass): chunks.pairs is NULL when the tables do not fit. */
    chunk_sets chunks;
} masks_task;

static void task_free(masks_task *t)
{
    if (!t)
        return;
    free(t->dense);
    free(t->packed);
    free(t->packed32);
    free(t->runs);
    free(t->run_first);
    free(t->binary);
    free(t->weights);
    free(t->gather);
    free(t->idx);
    free(t->idx_first);
    chunk_sets_free(&t->chunks);
    free(t);
}

/* --- building the mask stack ----------------------------------------------------------------- */

typedef enum mask_kind {
    KIND_FILE,
    KIND_DISK,
    KIND_RING,
    KIND_RECT,
    KIND_BINS,
    KIND_COUNT
} mask_kind;

static const char *const kind_names[KIND_COUNT] = {"file", "disk", "ring", "rect", "radial_bins"};
static const uint32_t kind_values[KIND_COUNT] = {1, 3, 4, 4, 5};
static const char *const kind_syntax[KIND_COUNT] = {"PATH", "CY,CX,R", "CY,CX,RI,RO",
                                                    "Y0,X0,Y1,X1", "CY,CX,RI,RO,N"};

static int kind_of(const char *name)
{
    for (int k = 0; k < KIND_COUNT; k++)
        if (!strcmp(name, kind_names[k]))
            return k;
    return -1;
}

/* Append k rows of sig_size zeros to the stack (*dense, *count). */
static int stack_grow(udf_ctx *ctx, double **dense, uint64_t *count, uint64_t k)
{
    uint64_t sig = ctx->meta->sig_size, rows = *count + k;
    if (rows < *count || (sig && rows > SIZE_MAX / sizeof(double) / sig)) {
        ctx->host->error(ctx, "%llu masks of %llu pixels do not fit in memory",
                         (unsigned long long)rows, (unsigned long long)sig);
        return UDF_ERR_NOMEM;
    }
    double *d = realloc(*dense, rows * sig * sizeof *d + 1);
    if (!d) {
        ctx->host->error(ctx, "out of memory for %llu masks of %llu pixels",
                         (unsigned long long)rows, (unsigned long long)sig);
        return UDF_ERR_NOMEM;
    }
    memset(d + *count * sig, 0, k * sig * sizeof *d);
    *dense = d;
    *count = rows;
    return UDF_OK;
}

/* "(19, 23)" into buf. */
static const char *shape_text(char *buf, size_t cap, const uint64_t *shape, uint32_t ndim)
{
    size_t n = (size_t)snprintf(buf, cap, "(");
    for (uint32_t i = 0; i < ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%llu", i ? ", " : "",
                              (unsigned long long)shape[i]);
    if (n < cap)
        snprintf(buf + n, cap - n, ndim == 1 ? ",)" : ")");
    return buf;
}

/* A file of masks: N x sig shape, or sig shape for one mask. */
static int stack_add_file(udf_ctx *ctx, const char *path, double **dense, uint64_t *count)
{
    const udf_meta *meta = ctx->meta;
    if (!UDF_HAS_FIELD(ctx->host, udf_host, load_array)) {
        ctx->host->error(ctx, "file=%s: this udfhost cannot load arrays (needs ABI 1.1)", path);
        return UDF_ERR_UNSUPPORTED;
    }
    uint32_t ndim;
    uint64_t shape[UDF_MAX_DIMS];
    void *data;
    int rc = ctx->host->load_array(ctx, path, UDF_F64, &ndim, shape, &data);
    if (rc)
        return rc; /* the host named the file */
    /* Leading axis of masks when the rank is one more than the signal's, else a single mask. */
    uint32_t lead = ndim == meta->sig_ndim + 1 ? 1 : 0;
    int fits = ndim == meta->sig_ndim + lead;
    for (uint32_t i = 0; fits && i < meta->sig_ndim; i++)
        fits = shape[lead + i] == meta->sig_shape[i];
    uint64_t k = lead ? shape[0] : 1;
    if (!fits || k == 0) {
        char a[128], b[128];
        ctx->host->error(ctx, "file=%s: mask shape %s does not fit the signal shape %s "
                         "(expected N x signal shape, or the signal shape)", path,
                         shape_text(a, sizeof a, shape, ndim),
                         shape_text(b, sizeof b, meta->sig_shape, meta->sig_ndim));
        free(data);
        return UDF_ERR_PARAM;
    }
    uint64_t first = *count;
    if (!(rc = stack_grow(ctx, dense, count, k)))
        memcpy(*dense + first * meta->sig_size, data, k * meta->sig_size * sizeof(double));
    free(data);
    return rc;
}

/* A generated mask: checks its numbers, then sets the pixels of (y, x) with the centre of pixel
 * (0, 0) at 0, 0. Distances are compared squared (d2 against R*R) except for radial bins, which
 * compare sqrt(d2) against the bin edges RI + k * (RO - RI) / N: the same double operations a
 * NumPy reference would do, so boundary pixels agree. */
static int stack_add_generated(udf_ctx *ctx, mask_kind kind, uint32_t index, const char *value,
                               double **dense, uint64_t *count)
{
    const udf_meta *meta = ctx->meta;
    const char *name = kind_names[kind];
    double v[5];
    uint32_t n = 0;
    int rc;
    if (kind == KIND_RECT) {
        int64_t iv[5];
        rc = ctx->host->param_ints(ctx, name, index, iv, 5, &n);
        for (uint32_t i = 0; i < n && i < 5; i++)
            v[i] = (double)iv[i];
    } else {
        rc = ctx->host->param_doubles(ctx, name, index, v, 5, &n);
    }
    if (rc) {
        ctx->host->error(ctx, "%s=%s: cannot read the values", name, value);
        return rc;
    }
    if (n != kind_values[kind]) {
        ctx->host->error(ctx, "%s=%s: expected %u values %s, got %u", name, value,
                         kind_values[kind], kind_syntax[kind], n);
        return UDF_ERR_PARAM;
    }
    if (meta->sig_ndim != 2) {
        char s[128];
        ctx->host->error(ctx, "%s=%s: generated masks need a 2-D signal, this one is %s", name,
                         value, shape_text(s, sizeof s, meta->sig_shape, meta->sig_ndim));
        return UDF_ERR_UNSUPPORTED;
    }
    const char *bad = NULL;
    uint64_t k = 1;
    switch (kind) {
    case KIND_DISK:
        if (v[2] < 0)
            bad = "negative radius R";
        break;
    case KIND_RING:
    case KIND_BINS:
        if (v[2] < 0)
            bad = "negative inner radius RI";
        else if (v[2] > v[3] || (kind == KIND_BINS && v[2] == v[3]))
            bad = kind == KIND_RING ? "inner radius RI > outer radius RO"
                                    : "inner radius RI >= outer radius RO";
        else if (kind == KIND_BINS && !(v[4] >= 1 && v[4] <= BINS_MAX && v[4] == floor(v[4])))
            bad = "N must be a whole number from 1 to 65536";
        else if (kind == KIND_BINS)
            k = (uint64_t)v[4];
        break;
    case KIND_RECT:
        if (v[2] <= v[0] || v[3] <= v[1])
            bad = "empty rectangle (need Y0 < Y1 and X0 < X1)";
        break;
    case KIND_FILE:
    case KIND_COUNT:
        break;
    }
    if (bad) {
        ctx->host->error(ctx, "%s=%s: %s", name, value, bad);
        return UDF_ERR_PARAM;
    }
    uint64_t first = *count, rows = meta->sig_shape[0], cols = meta->sig_shape[1];
    if ((rc = stack_grow(ctx, dense, count, k)))
        return rc;
    double *m = *dense + first * meta->sig_size;
    double w = kind == KIND_BINS ? (v[3] - v[2]) / v[4] : 0;
    for (uint64_t y = 0; y < rows; y++) {
        for (uint64_t x = 0; x < cols; x++) {
            uint64_t p = y * cols + x;
            double dy = (double)y - v[0], dx = (double)x - v[1];
            double d2 = dy * dy + dx * dx;
            switch (kind) {
            case KIND_DISK:
                m[p] = d2 <= v[2] * v[2];
                break;
            case KIND_RING:
                m[p] = v[2] * v[2] <= d2 && d2 <= v[3] * v[3];
                break;
            case KIND_RECT:
                m[p] = (double)y >= v[0] && (double)y < v[2] && (double)x >= v[1] &&
                       (double)x < v[3];
                break;
            case KIND_BINS: {
                double d = sqrt(d2);
                for (uint64_t b = 0; b < k; b++) {
                    double lo = v[2] + (double)b * w;
                    double hi = b + 1 == k ? v[3] : v[2] + (double)(b + 1) * w;
                    if (lo <= d && (d < hi || (b + 1 == k && d <= hi))) {
                        m[b * meta->sig_size + p] = 1;
                        break;
                    }
                }
                break;
            }
            case KIND_FILE:
            case KIND_COUNT:
                break;
            }
        }
    }
    return UDF_OK;
}

/* All masks the user gave, in command-line order, as one dense N x sig stack (malloc'ed, the
 * caller frees). Every parameter error is found here, so declare_buffers reports it. */
static int stack_build(udf_ctx *ctx, double **dense, uint64_t *count)
{
    uint32_t seen[KIND_COUNT] = {0};
    const char *name, *value;
    *dense = NULL;
    *count = 0;
    for (uint32_t pos = 0; ctx->host->param_given(ctx, pos, &name, &value) == UDF_OK; pos++) {
        int kind = kind_of(name);
        if (kind < 0)
            continue; /* dtype, sparse */
        uint32_t index = seen[kind]++;
        int rc = kind == KIND_FILE
                     ? stack_add_file(ctx, value, dense, count)
                     : stack_add_generated(ctx, (mask_kind)kind, index, value, dense, count);
        if (rc) {
            free(*dense);
            *dense = NULL;
            return rc;
        }
    }
    if (*count == 0) {
        ctx->host->error(ctx, "no mask given (use -p file=..., disk=, ring=, rect= or "
                              "radial_bins=)");
        return UDF_ERR_PARAM;
    }
    return UDF_OK;
}

/* Turn the dense stack of t into runs of non-zero pixels (t->dense stays for the caller). */
static int task_make_sparse(udf_ctx *ctx, masks_task *t)
{
    uint64_t sig = t->sig_size, nruns = 0, nweights = 0;
    t->run_first = malloc((t->count + 1) * sizeof *t->run_first);
    t->binary = malloc(t->count);
    if (!t->run_first || !t->binary)
        goto nomem;
    /* First pass: count runs and weights so the arrays are allocated once. */
    for (uint64_t i = 0; i < t->count; i++) {
        const double *m = t->dense + i * sig;
        uint64_t nonzero = 0;
        int binary = 1;
        for (uint64_t p = 0, len = 0; p < sig; p++) {
            if (m[p] != 0) {
                binary &= m[p] == 1;
                nonzero++;
                if (len == 0 || len == RUN_MAX) {
                    nruns++;
                    len = 0;
                }
                len++;
            } else {
                len = 0;
            }
        }
        t->binary[i] = (uint8_t)binary;
        if (!binary)
            nweights += nonzero;
    }
    t->runs = malloc(nruns * sizeof *t->runs + 1);
    t->weights = malloc(nweights * sizeof *t->weights + 1);
    if (!t->runs || !t->weights)
        goto nomem;
    mask_run *r = t->runs;
    double *w = t->weights;
    for (uint64_t i = 0; i < t->count; i++) {
        const double *m = t->dense + i * sig;
        t->run_first[i] = (uint64_t)(r - t->runs);
        mask_run *open = NULL;
        for (uint64_t p = 0; p < sig; p++) {
            if (m[p] == 0) {
                open = NULL;
                continue;
            }
            if (!open || open->len == RUN_MAX) {
                open = r++;
                *open = (mask_run){.start = p, .weights = (uint64_t)(w - t->weights)};
            }
            open->len++;
            if (!t->binary[i])
                *w++ = m[p];
        }
    }
    t->run_first[t->count] = (uint64_t)(r - t->runs);
    /* Gather the binary masks whose runs are short on average. */
    t->gather = calloc(t->count, 1);
    t->idx_first = malloc((t->count + 1) * sizeof *t->idx_first);
    if (!t->gather || !t->idx_first)
        goto nomem;
    uint64_t nidx = 0;
    for (uint64_t i = 0; i < t->count && sig <= UINT32_MAX; i++) {
        uint64_t pixels = 0, runs = t->run_first[i + 1] - t->run_first[i];
        for (uint64_t k = t->run_first[i]; k < t->run_first[i + 1]; k++)
            pixels += t->runs[k].len;
        t->gather[i] = t->binary[i] && pixels < GATHER_RUN * runs;
        if (t->gather[i]) {
            nidx += pixels;
            t->ngather++;
        }
    }
    t->idx = malloc(nidx * sizeof *t->idx + 1);
    if (!t->idx)
        goto nomem;
    nidx = 0;
    for (uint64_t i = 0; i < t->count; i++) {
        t->idx_first[i] = nidx;
        for (uint64_t k = t->run_first[i]; t->gather[i] && k < t->run_first[i + 1]; k++)
            for (uint32_t p = 0; p < t->runs[k].len; p++)
                t->idx[nidx++] = (uint32_t)(t->runs[k].start + p);
    }
    t->idx_first[t->count] = nidx;
    /* Rows of the first signal axis: tiles cut frames into bands of those. */
    const udf_meta *m = ctx->meta;
    uint64_t height = m->sig_shape[0], width = sig / height;
    udf_dtype d = m->input_dtype;
    if (t->ngather && (d == UDF_U8 || d == UDF_U16 || d == UDF_I8 || d == UDF_I16) &&
        chunk_sets_fit(height, width, t->count) &&
        chunk_sets_build(&t->chunks, height, width, t->count, t->idx, t->idx_first))
        goto nomem;
    return UDF_OK;
nomem:
    ctx->host->error(ctx, "out of memory for the sparse masks");
    return UDF_ERR_NOMEM;
}

/* Pack the dense stack of t pixel-major for the dense kernels (t->dense stays for the caller), as
 * float with single != 0 (where the float kernels are built). */
static int task_make_dense(udf_ctx *ctx, masks_task *t, int single)
{
    t->simd = SIMD_NONE;
#ifdef DENSE_AVX2
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw"))
        t->simd = SIMD_AVX512;
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        t->simd = SIMD_AVX2;
#endif
    /* UDFHOST_MASKS_SIMD=avx2|none caps the kernels, so that one machine tests them all. */
    const char *cap = getenv("UDFHOST_MASKS_SIMD");
    if (cap && !strcmp(cap, "none"))
        t->simd = SIMD_NONE;
    else if (cap && !strcmp(cap, "avx2") && t->simd == SIMD_AVX512)
        t->simd = SIMD_AVX2;
#ifndef DENSE_VECTOR
    single = 0;
#endif
    const size_t elem = single ? sizeof(float) : sizeof(double);
    uint64_t sig = t->sig_size, vl = (t->simd == SIMD_AVX512 ? 64 : 32) / elem;
    uint64_t npad = (t->count + vl - 1) / vl * vl;
    size_t bytes =
        npad && sig <= SIZE_MAX / elem / npad ? (size_t)(sig * npad * elem + 63) / 64 * 64 : 0;
    void *packed = bytes ? aligned_alloc(64, bytes) : NULL;
    if (!packed) {
        ctx->host->error(ctx, "out of memory for the dense masks");
        return UDF_ERR_NOMEM;
    }
    t->npad = npad;
    if (single)
        t->packed32 = packed;
    else
        t->packed = packed;
    for (uint64_t p = 0; p < sig; p++)
        for (uint64_t i = 0; i < npad; i++) {
            double v = i < t->count ? t->dense[i * sig + p] : 0;
            if (single)
                t->packed32[p * npad + i] = (float)v;
            else
                t->packed[p * npad + i] = v;
        }
    return UDF_OK;
}

/* --- hooks ----------------------------------------------------------------------------------- */

static int masks_declare(udf_ctx *ctx)
{
    const char *dtype;
    int rc = ctx->host->param_string(ctx, "dtype", 0, &dtype);
    if (rc)
        return rc;
    /* Build the stack once here to learn N and report every parameter error before any data is
     * read; init_task builds it again for keeps (masks are small next to the data). */
    double *dense;
    uint64_t count;
    if ((rc = stack_build(ctx, &dense, &count)))
        return rc;
    free(dense);
    udf_buffer_decl acc = {.name = "acc", .kind = UDF_KIND_NAV, .dtype = UDF_F64,
                           .flags = UDF_BUFFER_PRIVATE, .extra_ndim = 1, .extra_shape = {count}};
    udf_buffer_decl out = {.name = "intensity", .kind = UDF_KIND_NAV,
                           .dtype = common_result_dtype(dtype), .flags = UDF_BUFFER_RESULT_ONLY,
                           .extra_ndim = 1, .extra_shape = {count}};
    if ((rc = ctx->host->declare_buffer(ctx, &acc)))
        return rc;
    return ctx->host->declare_buffer(ctx, &out);
}

static int masks_init(udf_ctx *ctx, void **task_data)
{
    masks_task *t = calloc(1, sizeof *t);
    if (!t) {
        ctx->host->error(ctx, "out of memory");
        return UDF_ERR_NOMEM;
    }
    t->sig_size = ctx->meta->sig_size;
    int rc = stack_build(ctx, &t->dense, &t->count);
    const char *mode = "auto", *compute = "float64";
    if (!rc)
        rc = ctx->host->param_string(ctx, "sparse", 0, &mode);
    if (!rc)
        rc = ctx->host->param_string(ctx, "compute", 0, &compute);
    if (rc) {
        task_free(t);
        return rc;
    }
    uint64_t nonzero = 0, entries = t->count * t->sig_size;
    for (uint64_t e = 0; e < entries; e++)
        nonzero += t->dense[e] != 0;
    /* Dense work is N dot products over every pixel; runs touch only the non-zero entries but
     * pay per run. On 128 x 128 uint16 frames, 1 disk (5% of entries) ran 4x and 16 rings (5%)
     * 5x faster sparse; a quarter of the entries is a conservative cut-over (not measured). */
    int sparse = mode[0] == 't' || (mode[0] == 'a' && nonzero * 4 < entries);
    rc = sparse ? task_make_sparse(ctx, t)
                : task_make_dense(ctx, t, !strcmp(compute, "float32"));
    if (rc) {
        task_free(t);
        return rc;
    }
    free(t->dense);
    t->dense = NULL;
    ctx->host->log(ctx, 2, "%llu masks, %.1f%% non-zero, applied %s", (unsigned long long)t->count,
                   entries ? 100.0 * (double)nonzero / (double)entries : 0.0,
                   sparse ? "sparse" : t->packed32 ? "dense in float32" : "dense");
    *task_data = t;
    return UDF_OK;
}

/* Dense application: the (frames x pixels) by (pixels x N) matrix product. The masks are packed
 * pixel-major (task->packed: sig_size x npad, N padded with zero masks to a multiple of one
 * vector) so a pixel's weights for a vector of masks are one load. A tile is cut into blocks of
 * DENSE_BLOCK pixels (their masks, 16 KiB for 16 masks in double, stay in L1); within a block,
 * groups of up to DENSE_FRAMES frames are converted once and a register-blocked micro-kernel keeps
 * DENSE_FRAMES x 2 vectors of sums in registers, so each loaded weight vector serves DENSE_FRAMES
 * frames and each broadcast pixel up to two vectors of masks. Every sum runs over the block's
 * pixels in order, from zero, and is then added to the frame's double accumulator block by block:
 * the order depends on nothing but the tile's pixel range, not on how frames are grouped.
 *
 * The kernels exist for double (the default) and for float (compute=float32): the float path
 * multiplies and sums each block of pixels in float, like LiberTEM's float32 dot product but
 * never over more than DENSE_BLOCK terms, and sums the blocks in double. */
#define DENSE_FRAMES 8
#define DENSE_BLOCK 128
/* Sums one kernel call returns per frame at most: two vectors of 16 floats. */
#define DENSE_OUTW 32
/* Frames per tile. While a group of frames is multiplied, the block's pixels of the next group
 * (after the last group: the first group's next block) are prefetched, about one kernel call
 * (~1000 cycles) ahead. Unprefetched, the loads that convert a block waited on memory for a third
 * of the run (perf). 64 frames with that prefetch ran 10 % faster than 32 with it, and 7 % faster
 * than 32 prefetching two blocks ahead per frame; sparse rings, which share the tile, lost 3 %. */
#define DENSE_TILE_DEPTH 64

/* dst[p] = src[offset + p] as ET. The switch runs once per block row, not per pixel. */
#define BLOCK_LOAD(T, ET)                                                                          \
    do {                                                                                           \
        const T *restrict s = (const T *)src + offset;                                             \
        for (uint64_t p = 0; p < n; p++)                                                           \
            dst[p] = (ET)s[p];                                                                     \
    } while (0)
#define BLOCK_LOAD_FN(NAME, ET, ATTR)                                                              \
    ATTR static void NAME(ET *restrict dst, const void *src, udf_dtype dt, uint64_t offset,        \
                          uint64_t n)                                                              \
    {                                                                                              \
        switch (dt) {                                                                              \
        case UDF_U8: BLOCK_LOAD(uint8_t, ET); break;                                               \
        case UDF_U16: BLOCK_LOAD(uint16_t, ET); break;                                             \
        case UDF_U32: BLOCK_LOAD(uint32_t, ET); break;                                             \
        case UDF_I8: BLOCK_LOAD(int8_t, ET); break;                                                \
        case UDF_I16: BLOCK_LOAD(int16_t, ET); break;                                              \
        case UDF_I32: BLOCK_LOAD(int32_t, ET); break;                                              \
        case UDF_F32: BLOCK_LOAD(float, ET); break;                                                \
        default: BLOCK_LOAD(double, ET); break; /* masks_tile admits only these and F64 */         \
        }                                                                                          \
    }
BLOCK_LOAD_FN(block_load, double, )

#if defined(DENSE_VECTOR)

/* out[f * DENSE_OUTW + j] = sum over p < np of xs[f * DENSE_BLOCK + p] * mp[p * npad + j], for
 * f < FR and j < NV * (lanes of VT): FR frames by NV vectors of masks, all sums in registers.
 * MADD(m, x, acc) is m * x + acc (fused or not, but the same for every call of one run). */
#define DENSE_KERNEL_BODY(VT, ET, FR, NV, MADD)                                                    \
    do {                                                                                           \
        VT a[DENSE_FRAMES][2];                                                                     \
        _Pragma("GCC unroll 8") for (int f = 0; f < (FR); f++) {                                   \
            a[f][0] = (VT){0};                                                                     \
            a[f][1] = (VT){0};                                                                     \
        }                                                                                          \
        for (uint64_t p = 0; p < np; p++) {                                                        \
            const VT *m = (const VT *)(mp + p * npad);                                             \
            VT m0 = m[0], m1 = (NV) == 2 ? m[1] : m0;                                              \
            DENSE_KEEP(m0, m1);                                                                    \
            _Pragma("GCC unroll 8") for (int f = 0; f < (FR); f++) {                               \
                ET x = xs[f * DENSE_BLOCK + p];                                                    \
                a[f][0] = MADD(m0, x, a[f][0]);                                                    \
                if ((NV) == 2)                                                                     \
                    a[f][1] = MADD(m1, x, a[f][1]);                                                \
            }                                                                                      \
        }                                                                                          \
        _Pragma("GCC unroll 8") for (int f = 0; f < (FR); f++) {                                   \
            memcpy(out + f * DENSE_OUTW, &a[f][0], sizeof(VT));                                    \
            if ((NV) == 2)                                                                         \
                memcpy(out + f * DENSE_OUTW + sizeof(VT) / sizeof(ET), &a[f][1], sizeof(VT));      \
        }                                                                                          \
    } while (0)

#define DENSE_KERNEL_FN(NAME, ATTR, VT, ET, MADD)                                                  \
    ATTR static void NAME(int fr, int nv, const ET *restrict xs, const ET *restrict mp,            \
                          uint64_t npad, uint64_t np, ET *restrict out)                            \
    {                                                                                              \
        switch (fr * 4 + nv) {                                                                     \
        case 8 * 4 + 2: DENSE_KERNEL_BODY(VT, ET, 8, 2, MADD); break;                              \
        case 7 * 4 + 2: DENSE_KERNEL_BODY(VT, ET, 7, 2, MADD); break;                              \
        case 6 * 4 + 2: DENSE_KERNEL_BODY(VT, ET, 6, 2, MADD); break;                              \
        case 5 * 4 + 2: DENSE_KERNEL_BODY(VT, ET, 5, 2, MADD); break;                              \
        case 4 * 4 + 2: DENSE_KERNEL_BODY(VT, ET, 4, 2, MADD); break;                              \
        case 3 * 4 + 2: DENSE_KERNEL_BODY(VT, ET, 3, 2, MADD); break;                              \
        case 2 * 4 + 2: DENSE_KERNEL_BODY(VT, ET, 2, 2, MADD); break;                              \
        case 1 * 4 + 2: DENSE_KERNEL_BODY(VT, ET, 1, 2, MADD); break;                              \
        case 8 * 4 + 1: DENSE_KERNEL_BODY(VT, ET, 8, 1, MADD); break;                              \
        case 7 * 4 + 1: DENSE_KERNEL_BODY(VT, ET, 7, 1, MADD); break;                              \
        case 6 * 4 + 1: DENSE_KERNEL_BODY(VT, ET, 6, 1, MADD); break;                              \
        case 5 * 4 + 1: DENSE_KERNEL_BODY(VT, ET, 5, 1, MADD); break;                              \
        case 4 * 4 + 1: DENSE_KERNEL_BODY(VT, ET, 4, 1, MADD); break;                              \
        case 3 * 4 + 1: DENSE_KERNEL_BODY(VT, ET, 3, 1, MADD); break;                              \
        case 2 * 4 + 1: DENSE_KERNEL_BODY(VT, ET, 2, 1, MADD); break;                              \
        default: DENSE_KERNEL_BODY(VT, ET, 1, 1, MADD); break;                                     \
        }                                                                                          \
    }

/* Portable: multiply, then add (two roundings). With only SSE2 a 32-byte vector is two registers,
 * so these are called with nv = 1 and at most 6 frames (6 x 2 sums plus operands fit 16
 * registers). */
#define MADD_PLAIN(m, x, acc) ((m) * (x) + (acc))
#define DENSE_KEEP(a, b) ((void)0)
DENSE_KERNEL_FN(dense_kernel, , vd4, double, MADD_PLAIN)
DENSE_KERNEL_FN(dense_kernel_f32, , vf8, float, MADD_PLAIN)
#undef DENSE_KEEP

#ifdef DENSE_AVX2
/* Keep both weight vectors in registers: loaded once per pixel, not once per frame. */
#define DENSE_KEEP(a, b) __asm__("" : "+v"(a), "+v"(b))

/* AVX2 + FMA, chosen at run time when the CPU has them: one rounding per term; 6 frames x 2
 * vectors. */
#define MADD_FMA(m, x, acc) ((vd4)_mm256_fmadd_pd((__m256d)(m), _mm256_set1_pd(x), (__m256d)(acc)))
#define MADD_FMA_F32(m, x, acc)                                                                    \
    ((vf8)_mm256_fmadd_ps((__m256)(m), _mm256_set1_ps(x), (__m256)(acc)))
DENSE_KERNEL_FN(dense_kernel_avx2, __attribute__((target("avx2,fma"))), vd4, double, MADD_FMA)
DENSE_KERNEL_FN(dense_kernel_avx2_f32, __attribute__((target("avx2,fma"))), vf8, float,
                MADD_FMA_F32)

/* AVX-512F: 32 registers, 8 frames x 2 vectors; the same fused operations as the AVX2 kernels,
 * so both give the same bits. */
#define MADD_FMA512(m, x, acc)                                                                     \
    ((vd8)_mm512_fmadd_pd((__m512d)(m), _mm512_set1_pd(x), (__m512d)(acc)))
#define MADD_FMA512_F32(m, x, acc)                                                                 \
    ((vf16)_mm512_fmadd_ps((__m512)(m), _mm512_set1_ps(x), (__m512)(acc)))
DENSE_KERNEL_FN(dense_kernel_avx512, __attribute__((target("avx512f"))), vd8, double, MADD_FMA512)
DENSE_KERNEL_FN(dense_kernel_avx512_f32, __attribute__((target("avx512f"))), vf16, float,
                MADD_FMA512_F32)
#undef DENSE_KEEP

/* The block conversions with AVX-512 (16 pixels an instruction): the SSE2 loop took a third of a
 * run of 16 dense masks (perf); this one made the run 13 % faster. Without AVX-512BW, GCC 12 made
 * 256-bit code of it that gave back those 13 %, so the AVX-512 path needs both (as every AVX-512
 * Xeon has). */
BLOCK_LOAD_FN(block_load_avx512, double, __attribute__((target("avx512f,avx512bw"))))
BLOCK_LOAD_FN(block_load_avx512_f32, float, __attribute__((target("avx512f,avx512bw"))))
#define DENSE_KERNEL_CASES(SUFFIX)                                                                 \
    case SIMD_AVX512:                                                                              \
        dense_kernel_avx512##SUFFIX(fr, nv, xs, mblock + g, npad, np, out);                        \
        break;                                                                                     \
    case SIMD_AVX2:                                                                                \
        dense_kernel_avx2##SUFFIX(fr, nv, xs, mblock + g, npad, np, out);                          \
        break;
#define DENSE_LOAD_AVX512(SUFFIX)                                                                  \
    if (t->simd == SIMD_AVX512)                                                                    \
        block_load_avx512##SUFFIX(xs + f * DENSE_BLOCK, frame, dt, p0, np);                        \
    else
#else
#define DENSE_KERNEL_CASES(SUFFIX)
#define DENSE_LOAD_AVX512(SUFFIX)
#endif
BLOCK_LOAD_FN(block_load_f32, float, )

/* The code around the kernels (adding each block's sums to acc, the loops) also as an AVX-512
 * clone, picked when the plugin is loaded: 3-6 % faster for 16 dense masks (paired A/B). */
#if defined(DENSE_AVX2) && defined(__ELF__) &&                                                     \
    (defined(__clang__) ? __clang_major__ >= 14 : defined(__GNUC__) && __GNUC__ >= 6)
#define DENSE_TILE_CLONES __attribute__((target_clones("avx512f", "default")))
#else
#define DENSE_TILE_CLONES
#endif

/* One tile through the kernels of element type ET (SUFFIX names them), masks from PACKED. */
#define DENSE_TILE_FN(NAME, ET, PACKED, SUFFIX)                                                    \
    DENSE_TILE_CLONES static void NAME(const masks_task *t, const udf_tile *tile, udf_dtype dt,   \
                                       double *acc)                                                \
    {                                                                                              \
        _Alignas(64) ET xs[DENSE_FRAMES * DENSE_BLOCK];                                            \
        _Alignas(64) ET out[DENSE_FRAMES * DENSE_OUTW];                                            \
        const size_t elem = udf_dtype_size(dt);                                                    \
        const uint64_t n = t->count, npad = t->npad;                                               \
        /* Masks per vector (as task_make_dense packed them: a constant divisor here), frames per  \
         * group, vectors of masks per call at most. */                                            \
        const uint64_t vl = (t->simd == SIMD_AVX512 ? 64 : 32) / sizeof(ET);                       \
        const uint64_t frames = t->simd == SIMD_AVX512 ? 8 : 6;                                    \
        const uint64_t nvmax = t->simd == SIMD_NONE ? 1 : 2;                                       \
        for (uint64_t p0 = 0; p0 < tile->sig_count; p0 += DENSE_BLOCK) {                           \
            uint64_t np = tile->sig_count - p0 < DENSE_BLOCK ? tile->sig_count - p0 : DENSE_BLOCK; \
            const ET *mblock = t->PACKED + (tile->sig_start + p0) * npad;                          \
            for (uint64_t f0 = 0; f0 < tile->depth; f0 += frames) {                                \
                int fr = (int)(tile->depth - f0 < frames ? tile->depth - f0 : frames);             \
                for (int f = 0; f < fr; f++) {                                                     \
                    const char *frame =                                                            \
                        (const char *)tile->data + (f0 + (uint64_t)f) * tile->frame_stride * elem; \
                    uint64_t nf = f0 + frames + (uint64_t)f, np0 = p0;                             \
                    if (nf >= tile->depth) {                                                       \
                        nf -= tile->depth;                                                         \
                        np0 += DENSE_BLOCK;                                                        \
                    }                                                                              \
                    const char *next = (const char *)tile->data + nf * tile->frame_stride * elem;  \
                    for (uint64_t o = 0; o < np * elem; o += 64)                                   \
                        __builtin_prefetch(next + np0 * elem + o, 0, 3);                           \
                    DENSE_LOAD_AVX512(SUFFIX)                                                      \
                    block_load##SUFFIX(xs + f * DENSE_BLOCK, frame, dt, p0, np);                   \
                }                                                                                  \
                for (uint64_t g = 0; g < npad;) {                                                  \
                    int nv = (int)((npad - g) / vl < nvmax ? (npad - g) / vl : nvmax);             \
                    switch (t->simd) {                                                             \
                        DENSE_KERNEL_CASES(SUFFIX)                                                 \
                    default:                                                                       \
                        dense_kernel##SUFFIX(fr, nv, xs, mblock + g, npad, np, out);               \
                        break;                                                                     \
                    }                                                                              \
                    uint64_t w = (uint64_t)nv * vl, wn = n - g < w ? n - g : w;                    \
                    for (int f = 0; f < fr; f++)                                                   \
                        for (uint64_t j = 0; j < wn; j++)                                          \
                            acc[(f0 + (uint64_t)f) * n + g + j] +=                                 \
                                (double)out[f * DENSE_OUTW + (int)j];                              \
                    g += w;                                                                        \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }
DENSE_TILE_FN(dense_tile, double, packed, )
DENSE_TILE_FN(dense_tile_f32, float, packed32, _f32)
#else
/* Without GNU vector extensions: one dot product per frame and mask and block, in double
 * (compute=float32 is not built: see task_make_dense). */
static inline double dot(const double *restrict x, const double *restrict m, uint64_t n,
                         uint64_t stride)
{
    double s = 0;
    for (uint64_t p = 0; p < n; p++)
        s += x[p] * m[p * stride];
    return s;
}

static void dense_tile(const masks_task *t, const udf_tile *tile, udf_dtype dt, double *acc)
{
    double xs[DENSE_BLOCK];
    const size_t elem = udf_dtype_size(dt);
    for (uint64_t p0 = 0; p0 < tile->sig_count; p0 += DENSE_BLOCK) {
        uint64_t np = tile->sig_count - p0 < DENSE_BLOCK ? tile->sig_count - p0 : DENSE_BLOCK;
        for (uint64_t f = 0; f < tile->depth; f++) {
            block_load(xs, (const char *)tile->data + f * tile->frame_stride * elem, dt, p0, np);
            for (uint64_t i = 0; i < t->count; i++)
                acc[f * t->count + i] +=
                    dot(xs, t->packed + (tile->sig_start + p0) * t->npad + i, np, t->npad);
        }
    }
}
#endif
#undef BLOCK_LOAD
#undef BLOCK_LOAD_FN

/* The first run of mask i that ends after flat pixel `from`. */
static const mask_run *runs_from(const masks_task *t, uint64_t i, uint64_t from)
{
    uint64_t lo = t->run_first[i], hi = t->run_first[i + 1];
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (t->runs[mid].start + t->runs[mid].len <= from)
            lo = mid + 1;
        else
            hi = mid;
    }
    return t->runs + lo;
}

/* Ask for the bytes [p, p + n) in sequence: the gathers below visit a frame in the order of
 * their masks, which the hardware prefetcher does not follow from memory. */
static inline void prefetch_span(const void *p, uint64_t n)
{
#if defined(__GNUC__)
    for (uint64_t o = 0; o < n; o += 64)
        __builtin_prefetch((const char *)p + o);
#else
    (void)p;
    (void)n;
#endif
}

/* First position k in [lo, hi) of the increasing idx with idx[k] >= v. */
static uint64_t idx_lower(const uint32_t *idx, uint64_t lo, uint64_t hi, uint64_t v)
{
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (idx[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Sparse application for data of type T: binary masks sum each run in S (exact: see RUN_MAX) and
 * the runs of a frame in A; gathered masks sum their pixels in S in chunks of RUN_MAX, the chunks
 * in A, four frames per pass (each frame's sum in the same order as alone); weighted masks
 * accumulate x * w in double. Runs and index lists are clipped to the tile's band [ts, te) of flat
 * pixels. */
#define SPARSE_TILE(T, S, A)                                                                       \
    do {                                                                                           \
        const uint64_t ts = tile->sig_start, te = ts + tile->sig_count;                            \
        for (uint64_t f0 = 0; !chunked && f0 < tile->depth; f0 += GATHER_FRAMES) {                \
            uint64_t nf = tile->depth - f0 < GATHER_FRAMES ? tile->depth - f0 : GATHER_FRAMES;     \
            if (t->ngather)                                                                        \
                for (uint64_t f = 0; f < nf; f++)                                                  \
                    prefetch_span((const T *)tile->data + (f0 + f) * tile->frame_stride,           \
                                  tile->sig_count * sizeof(T));                                    \
            for (uint64_t i = 0; i < t->count; i++) {                                              \
                if (!t->gather[i])                                                                 \
                    continue;                                                                      \
                uint64_t lo = t->idx_first[i], hi = t->idx_first[i + 1];                           \
                if (ts)                                                                            \
                    lo = idx_lower(t->idx, lo, hi, ts);                                            \
                if (te < t->sig_size)                                                              \
                    hi = idx_lower(t->idx, lo, hi, te);                                            \
                const T *x0 = (const T *)tile->data + f0 * tile->frame_stride;                     \
                if (nf == GATHER_FRAMES) {                                                         \
                    const T *restrict a = x0, *restrict b = a + tile->frame_stride,                \
                                      *restrict c = b + tile->frame_stride,                        \
                                      *restrict d = c + tile->frame_stride;                        \
                    A sa = 0, sb = 0, sc = 0, sd = 0;                                              \
                    for (uint64_t k0 = lo; k0 < hi; k0 += RUN_MAX) {                               \
                        uint64_t k1 = hi - k0 < RUN_MAX ? hi : k0 + RUN_MAX;                       \
                        S pa = 0, pb = 0, pc = 0, pd = 0;                                          \
                        for (uint64_t k = k0; k < k1; k++) {                                       \
                            uint64_t q = t->idx[k] - ts;                                           \
                            pa += (S)a[q];                                                         \
                            pb += (S)b[q];                                                         \
                            pc += (S)c[q];                                                         \
                            pd += (S)d[q];                                                         \
                        }                                                                          \
                        sa += (A)pa;                                                               \
                        sb += (A)pb;                                                               \
                        sc += (A)pc;                                                               \
                        sd += (A)pd;                                                               \
                    }                                                                              \
                    acc[f0 * t->count + i] += (double)sa;                                          \
                    acc[(f0 + 1) * t->count + i] += (double)sb;                                    \
                    acc[(f0 + 2) * t->count + i] += (double)sc;                                    \
                    acc[(f0 + 3) * t->count + i] += (double)sd;                                    \
                    continue;                                                                      \
                }                                                                                  \
                for (uint64_t f = 0; f < nf; f++) {                                                \
                    const T *restrict a = x0 + f * tile->frame_stride;                             \
                    A sa = 0;                                                                      \
                    for (uint64_t k0 = lo; k0 < hi; k0 += RUN_MAX) {                               \
                        uint64_t k1 = hi - k0 < RUN_MAX ? hi : k0 + RUN_MAX;                       \
                        S pa = 0;                                                                  \
                        for (uint64_t k = k0; k < k1; k++)                                         \
                            pa += (S)a[t->idx[k] - ts];                                            \
                        sa += (A)pa;                                                               \
                    }                                                                              \
                    acc[(f0 + f) * t->count + i] += (double)sa;                                    \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        for (uint64_t f = 0; f < tile->depth; f++) {                                               \
            const T *restrict x = (const T *)tile->data + f * tile->frame_stride;                  \
            double *accf = acc + f * t->count;                                                     \
            for (uint64_t i = 0; i < t->count; i++) {                                              \
                if (t->gather[i])                                                                  \
                    continue;                                                                      \
                const mask_run *r = ts ? runs_from(t, i, ts) : t->runs + t->run_first[i];          \
                const mask_run *end = t->runs + t->run_first[i + 1];                               \
                if (t->binary[i]) {                                                                \
                    A sum = 0;                                                                     \
                    for (; r < end && r->start < te; r++) {                                        \
                        uint64_t a = r->start > ts ? r->start : ts;                                \
                        uint64_t b = r->start + r->len < te ? r->start + r->len : te;              \
                        const T *restrict xr = x + (a - ts);                                       \
                        S s = 0;                                                                   \
                        for (uint64_t p = 0; p < b - a; p++)                                       \
                            s += (S)xr[p];                                                         \
                        sum += (A)s;                                                               \
                    }                                                                              \
                    accf[i] += (double)sum;                                                        \
                } else {                                                                           \
                    double sum = 0;                                                                \
                    for (; r < end && r->start < te; r++) {                                        \
                        uint64_t a = r->start > ts ? r->start : ts;                                \
                        uint64_t b = r->start + r->len < te ? r->start + r->len : te;              \
                        const T *restrict xr = x + (a - ts);                                       \
                        const double *restrict w = t->weights + r->weights + (a - r->start);       \
                        for (uint64_t p = 0; p < b - a; p++)                                       \
                            sum += (double)xr[p] * w[p];                                           \
                    }                                                                              \
                    accf[i] += sum;                                                                \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    } while (0)

static int masks_tile(udf_ctx *ctx, const udf_tile *tile)
{
    const masks_task *t = ctx->task_data;
    double *acc = ctx->buffers[BUF_ACC].data;
    udf_dtype dt = ctx->meta->input_dtype;
    switch (dt) {
    case UDF_U8: case UDF_U16: case UDF_U32: case UDF_I8: case UDF_I16: case UDF_I32:
    case UDF_F32: case UDF_F64:
        break;
    default:
        ctx->host->error(ctx, "unsupported input dtype %d", (int)dt);
        return UDF_ERR_UNSUPPORTED;
    }
    if (t->packed) {
        dense_tile(t, tile, dt, acc);
        return UDF_OK;
    }
#ifdef DENSE_VECTOR
    if (t->packed32) {
        dense_tile_f32(t, tile, dt, acc);
        return UDF_OK;
    }
#endif
    /* The gathered masks as chunk sets; SPARSE_TILE then does the others. */
    int chunked = t->chunks.pairs != NULL;
    chunk_sets_apply(&t->chunks, tile, dt, acc, t->count);
    switch (dt) {
    case UDF_U8: SPARSE_TILE(uint8_t, uint32_t, int64_t); break;
    case UDF_U16: SPARSE_TILE(uint16_t, uint32_t, int64_t); break;
    case UDF_U32: SPARSE_TILE(uint32_t, int64_t, int64_t); break;
    case UDF_I8: SPARSE_TILE(int8_t, int32_t, int64_t); break;
    case UDF_I16: SPARSE_TILE(int16_t, int32_t, int64_t); break;
    case UDF_I32: SPARSE_TILE(int32_t, int64_t, int64_t); break;
    case UDF_F32: SPARSE_TILE(float, double, double); break;
    default: SPARSE_TILE(double, double, double); break;
    }
    return UDF_OK;
}

static int masks_results(udf_ctx *ctx)
{
    const udf_view *acc = &ctx->buffers[BUF_ACC];
    udf_view *out = &ctx->buffers[BUF_INTENSITY];
    common_round_into(out, acc, out->count * out->extra_size);
    return UDF_OK;
}

static void masks_cleanup(udf_ctx *ctx, void *task_data)
{
    (void)ctx;
    task_free(task_data);
}

static const udf_plugin masks_plugin = {
    UDF_PLUGIN_HEADER,
    .name = "masks",
    .version = "1.0.0",
    .description = "virtual detectors: N masks applied to every frame (one N-vector per position)",
    .params = masks_params,
    /* Native data: the host hands over the mapped file without a copy, and integer data with
     * 0/1 masks is summed exactly. */
    .input_dtype = UDF_DTYPE_NATIVE,
    /* The dense path reuses each block of masks for every frame of a tile. */
    .tile_depth = DENSE_TILE_DEPTH,
    .declare_buffers = masks_declare,
    .init_task = masks_init,
    .process_tile = masks_tile,
    .get_results = masks_results,
    .cleanup = masks_cleanup,
};

UDF_PLUGIN_DEFINE(masks_plugin)
