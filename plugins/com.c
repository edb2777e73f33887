/* com: the centre of mass of every frame (whole frame, disk or ring), its shift from a reference
 * centre, and the magnitude, divergence and curl of the shift field after scan rotation and flip,
 * as LiberTEM's CoMUDF. Per-frame sums are accumulated in float64 row by row, so the result does
 * not depend on how the host cuts frames into bands. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include <udfhost/udf.h>

#include "common.h"

/* Radii beyond any detector; the host needs finite bounds to check a range. */
#define RADIUS_MAX 1e9

/* M_PI is POSIX, not C11. */
#define COM_PI 3.14159265358979323846

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

/* The value of an optional FLOAT parameter, or dflt when the user gave none. */
static int param_or(udf_ctx *ctx, const char *name, double dflt, double *out)
{
    if (ctx->host->param_count(ctx, name) == 0) {
        *out = dflt;
        return UDF_OK;
    }
    return ctx->host->param_double(ctx, name, 0, out);
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
    if ((rc = param_or(ctx, "cy", (double)(t->height - 1) / 2, &t->cy)) ||
        (rc = param_or(ctx, "cx", (double)(t->width - 1) / 2, &t->cx)) ||
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

static int com_tile(udf_ctx *ctx, const udf_tile *tile)
{
    const com_task *t = ctx->task_data;
    uint64_t y0 = tile->sig_start / t->width, rows = tile->sig_count / t->width;
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
    case UDF_F32: COM_TILE(float, double, double); break;
    case UDF_F64: COM_TILE(double, double, double); break;
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
