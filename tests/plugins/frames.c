/* Test fixture for process_frame with float64 input: nav `sum` (sum of each frame), nav `coords`
 * (the frame's nav coordinates, extra shape = nav ndim), sig `max` (maximum over frames; fill
 * -inf, so it also checks the fill value reaches partition and result buffers). */
#include <math.h>
#include <udfhost/udf.h>

static int frames_declare(udf_ctx *ctx)
{
    udf_buffer_decl b[] = {
        {.name = "sum", .kind = UDF_KIND_NAV, .dtype = UDF_F64},
        {.name = "coords", .kind = UDF_KIND_NAV, .dtype = UDF_I64, .extra_ndim = 1,
         .extra_shape = {ctx->meta->nav_ndim}},
        {.name = "max", .kind = UDF_KIND_SIG, .dtype = UDF_F64, .fill = -INFINITY},
    };
    for (unsigned i = 0; i < 3; i++) {
        int rc = ctx->host->declare_buffer(ctx, &b[i]);
        if (rc)
            return rc;
    }
    return UDF_OK;
}

static int frames_frame(udf_ctx *ctx, const udf_tile *t)
{
    const double *x = t->data;
    double s = 0, *mx = ctx->buffers[2].data;
    if (t->depth != 1 || t->sig_count != ctx->meta->sig_size) {
        ctx->host->error(ctx, "process_frame got %llu frames of %llu pixels",
                         (unsigned long long)t->depth, (unsigned long long)t->sig_count);
        return UDF_ERR;
    }
    for (uint64_t p = 0; p < t->sig_count; p++) {
        s += x[p];
        if (x[p] > mx[p])
            mx[p] = x[p];
    }
    *(double *)ctx->buffers[0].data = s;
    udf_nav_coords(ctx->meta, t->nav_index[0], (uint64_t *)ctx->buffers[1].data);
    return UDF_OK;
}

static int frames_merge(udf_ctx *ctx, udf_view *dest, const udf_view *src)
{
    (void)ctx;
    double *d = dest[2].data;
    const double *s = src[2].data;
    for (uint64_t p = 0; p < dest[2].count; p++)
        if (s[p] > d[p])
            d[p] = s[p];
    return UDF_OK;
}

static const udf_plugin frames_plugin = {
    UDF_PLUGIN_HEADER,
    .name = "frames",
    .version = "1",
    .description = "test fixture: process_frame with float64 input",
    .input_dtype = UDF_F64,
    .declare_buffers = frames_declare,
    .process_frame = frames_frame,
    .merge = frames_merge,
};

UDF_PLUGIN_DEFINE(frames_plugin)
