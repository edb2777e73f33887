/* pick: the frame at given nav coordinates, exactly as stored (same dtype, native byte order).
 * The plugin tells the host it needs that one frame (select_frames), so a run of pick alone reads
 * one frame of the dataset, however large. */
#include <stdlib.h>
#include <string.h>
#include <udfhost/udf.h>

static const udf_param_decl pick_params[] = {
    {.name = "at", .type = UDF_PARAM_INTS, .flags = UDF_PARAM_REQUIRED,
     .help = "nav coordinates of the frame, C order like --nav-shape (e.g. at=12,40)"},
    {0},
};

static int pick_declare(udf_ctx *ctx)
{
    udf_buffer_decl out = {.name = "intensity", .kind = UDF_KIND_SIG,
                           .dtype = ctx->meta->raw_dtype};
    return ctx->host->declare_buffer(ctx, &out);
}

/* The flat nav index of "at", checked against the nav shape. */
static int pick_flat_index(udf_ctx *ctx, uint64_t *flat)
{
    const udf_meta *m = ctx->meta;
    int64_t at[UDF_MAX_DIMS];
    uint32_t n;
    int rc = ctx->host->param_ints(ctx, "at", 0, at, UDF_MAX_DIMS, &n);
    if (rc)
        return rc;
    if (n != m->nav_ndim) {
        ctx->host->error(ctx, "at: %u coordinates given, the nav shape has %u dimensions", n,
                         m->nav_ndim);
        return UDF_ERR_PARAM;
    }
    uint64_t f = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (at[i] < 0 || (uint64_t)at[i] >= m->nav_shape[i]) {
            ctx->host->error(ctx, "at: coordinate %u is %lld, outside 0..%llu", i,
                             (long long)at[i], (unsigned long long)m->nav_shape[i] - 1);
            return UDF_ERR_PARAM;
        }
        f = f * m->nav_shape[i] + (uint64_t)at[i];
    }
    if (m->roi && !m->roi[f]) {
        ctx->host->error(ctx, "at: the frame is not in the ROI");
        return UDF_ERR_PARAM;
    }
    *flat = f;
    return UDF_OK;
}

static int pick_init(udf_ctx *ctx, void **task)
{
    uint64_t *flat = malloc(sizeof *flat);
    if (!flat)
        return UDF_ERR_NOMEM;
    int rc = pick_flat_index(ctx, flat);
    if (!rc && UDF_HAS_FIELD(ctx->host, udf_host, select_frames))
        rc = ctx->host->select_frames(ctx, flat, 1);
    if (rc) {
        free(flat);
        return rc;
    }
    *task = flat;
    return UDF_OK;
}

/* The sig view covers only the tile's slice of the signal: copy the slice to its start. */
static int pick_tile(udf_ctx *ctx, const udf_tile *t)
{
    uint64_t want = *(const uint64_t *)ctx->task_data;
    size_t elem = udf_dtype_size(ctx->meta->input_dtype);
    for (uint64_t f = 0; f < t->depth; f++)
        if (t->nav_index[f] == want)
            memcpy(ctx->buffers[0].data,
                   (const char *)t->data + f * t->frame_stride * elem, t->sig_count * elem);
    return UDF_OK;
}

/* Only the partition that holds the frame contributes; every other one holds zeros. */
static int pick_merge(udf_ctx *ctx, udf_view *dest, const udf_view *src)
{
    uint64_t want = *(const uint64_t *)ctx->task_data;
    const udf_partition *p = ctx->partition;
    if (want >= p->frame_start && want - p->frame_start < p->frame_count)
        memcpy(dest[0].data, src[0].data, dest[0].count * udf_dtype_size(dest[0].dtype));
    return UDF_OK;
}

static void pick_cleanup(udf_ctx *ctx, void *task)
{
    (void)ctx;
    free(task);
}

static const udf_plugin pick_plugin = {
    UDF_PLUGIN_HEADER,
    .name = "pick",
    .version = "1.0.0",
    .description = "the frame at given nav coordinates, as stored",
    .params = pick_params,
    .input_dtype = UDF_DTYPE_NATIVE,
    .declare_buffers = pick_declare,
    .init_task = pick_init,
    .process_tile = pick_tile,
    .merge = pick_merge,
    .cleanup = pick_cleanup,
};

UDF_PLUGIN_DEFINE(pick_plugin)
