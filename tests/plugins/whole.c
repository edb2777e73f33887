/* Test fixture for process_partition with float32 input: nav `sum` and sig `sum` over the whole
 * partition in one call. */
#include <udfhost/udf.h>

static int whole_declare(udf_ctx *ctx)
{
    udf_buffer_decl nav = {.name = "navsum", .kind = UDF_KIND_NAV, .dtype = UDF_F64};
    udf_buffer_decl sig = {.name = "sigsum", .kind = UDF_KIND_SIG, .dtype = UDF_F64};
    int rc = ctx->host->declare_buffer(ctx, &nav);
    return rc ? rc : ctx->host->declare_buffer(ctx, &sig);
}

static int whole_partition(udf_ctx *ctx, const udf_tile *t)
{
    const float *x = t->data;
    double *nav = ctx->buffers[0].data, *sig = ctx->buffers[1].data;
    if (t->depth != ctx->partition->selected) {
        ctx->host->error(ctx, "got %llu of %llu frames", (unsigned long long)t->depth,
                         (unsigned long long)ctx->partition->selected);
        return UDF_ERR;
    }
    for (uint64_t f = 0; f < t->depth; f++)
        for (uint64_t p = 0; p < t->sig_count; p++) {
            nav[f] += x[f * t->frame_stride + p];
            sig[p] += x[f * t->frame_stride + p];
        }
    return UDF_OK;
}

static int whole_merge(udf_ctx *ctx, udf_view *dest, const udf_view *src)
{
    (void)ctx;
    double *d = dest[1].data;
    const double *s = src[1].data;
    for (uint64_t p = 0; p < dest[1].count; p++)
        d[p] += s[p];
    return UDF_OK;
}

static const udf_plugin whole_plugin = {
    UDF_PLUGIN_HEADER,
    .name = "whole",
    .version = "1",
    .description = "test fixture: process_partition with float32 input",
    .declare_buffers = whole_declare,
    .process_partition = whole_partition,
    .merge = whole_merge,
};

UDF_PLUGIN_DEFINE(whole_plugin)
