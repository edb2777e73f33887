/* myplugin: a starting point for a udfhost plugin. Per frame, the mean of the pixels after
 * clipping everything below -p threshold=T to zero (`mean`, a nav buffer); per detector pixel,
 * the sum of the clipped values over all frames (`sum`, a sig buffer); and the number of frames
 * processed (`frames`, a single value). Rename it as README.md says. */
#include <udfhost/udf.h>

static const udf_param_decl myplugin_params[] = {
    {.name = "threshold", .type = UDF_PARAM_FLOAT, .default_value = "0",
     .help = "pixels below this value count as 0"},
    {.name = NULL},
};

/* Buffer positions in ctx->buffers: the order of declaration below. */
enum { BUF_MEAN, BUF_SUM, BUF_FRAMES };

/* [main thread] The buffers this plugin fills; shapes come from the dataset. */
static int myplugin_declare(udf_ctx *ctx)
{
    const udf_buffer_decl decls[] = {
        {.name = "mean", .kind = UDF_KIND_NAV, .dtype = UDF_F64},
        {.name = "sum", .kind = UDF_KIND_SIG, .dtype = UDF_F64},
        {.name = "frames", .kind = UDF_KIND_SINGLE, .dtype = UDF_U64},
    };
    for (unsigned i = 0; i < sizeof decls / sizeof decls[0]; i++) {
        int rc = ctx->host->declare_buffer(ctx, &decls[i]);
        if (rc)
            return rc;
    }
    return UDF_OK;
}

/* [worker] One tile: tile->depth frames, each cut to the same band of pixels (sig_count pixels
 * from flat pixel sig_start). The same frames may come back for the next band, so the nav
 * result accumulates (+=) its share of the mean, and frames are counted on the first band only. */
static int myplugin_tile(udf_ctx *ctx, const udf_tile *tile)
{
    double threshold;
    int rc = ctx->host->param_double(ctx, "threshold", 0, &threshold);
    if (rc) {
        ctx->host->error(ctx, "cannot read the threshold parameter");
        return rc;
    }
    const double *restrict px = tile->data; /* float64: the input_dtype asked for below */
    double *restrict mean = ctx->buffers[BUF_MEAN].data; /* this tile's frames */
    double *restrict sum = ctx->buffers[BUF_SUM].data;   /* this tile's band of pixels */
    uint64_t *frames = ctx->buffers[BUF_FRAMES].data;
    const double n_pixels = (double)ctx->meta->sig_size;
    for (uint64_t f = 0; f < tile->depth; f++) {
        const double *frame = px + f * tile->frame_stride;
        double s = 0;
        for (uint64_t p = 0; p < tile->sig_count; p++) {
            double v = frame[p] < threshold ? 0.0 : frame[p];
            s += v;
            sum[p] += v;
        }
        mean[f] += s / n_pixels;
    }
    if (tile->sig_start == 0)
        *frames += tile->depth;
    return UDF_OK;
}

/* [main thread, in partition order] Add a finished partition into the result. Nav buffers are
 * placed by the host (their views are empty here). */
static int myplugin_merge(udf_ctx *ctx, udf_view *dest, const udf_view *src)
{
    (void)ctx;
    double *restrict d = dest[BUF_SUM].data;
    const double *restrict s = src[BUF_SUM].data;
    for (uint64_t i = 0; i < dest[BUF_SUM].count; i++)
        d[i] += s[i];
    *(uint64_t *)dest[BUF_FRAMES].data += *(const uint64_t *)src[BUF_FRAMES].data;
    return UDF_OK;
}

static const udf_plugin myplugin = {
    UDF_PLUGIN_HEADER,
    .name = "myplugin",
    .version = "0.1",
    .description = "per-frame mean and per-pixel sum of the pixels above a threshold",
    .params = myplugin_params,
    .input_dtype = UDF_F64,
    .declare_buffers = myplugin_declare,
    .process_tile = myplugin_tile,
    .merge = myplugin_merge,
};

UDF_PLUGIN_DEFINE(myplugin)
