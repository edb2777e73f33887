/* Test fixture: records how the host partitioned and merged. nav `partition`: the partition index
 * of each frame; nav `item`: its position among the partition's selected frames; single `fold`:
 * fold = fold * 1000003 + (index + 1) over merged partitions, in merge order, which only comes out
 * right if merges run in partition order. */
#include <udfhost/udf.h>

static int order_declare(udf_ctx *ctx)
{
    udf_buffer_decl b[] = {
        {.name = "partition", .kind = UDF_KIND_NAV, .dtype = UDF_I64},
        {.name = "item", .kind = UDF_KIND_NAV, .dtype = UDF_I64},
        {.name = "fold", .kind = UDF_KIND_SINGLE, .dtype = UDF_U64},
        {.name = "index", .kind = UDF_KIND_SINGLE, .dtype = UDF_U64, .flags = UDF_BUFFER_PRIVATE},
    };
    for (unsigned i = 0; i < 4; i++) {
        int rc = ctx->host->declare_buffer(ctx, &b[i]);
        if (rc)
            return rc;
    }
    return UDF_OK;
}

static int order_tile(udf_ctx *ctx, const udf_tile *t)
{
    int64_t *part = ctx->buffers[0].data, *item = ctx->buffers[1].data;
    for (uint64_t f = 0; f < t->depth; f++) {
        part[f] = (int64_t)ctx->partition->index;
        item[f] = (int64_t)(t->item_start + f);
    }
    *(uint64_t *)ctx->buffers[3].data = ctx->partition->index;
    return UDF_OK;
}

static int order_merge(udf_ctx *ctx, udf_view *dest, const udf_view *src)
{
    uint64_t index = *(const uint64_t *)src[3].data;
    if (index != ctx->partition->index) {
        ctx->host->error(ctx, "merge got partition %llu's buffers as partition %llu",
                         (unsigned long long)index, (unsigned long long)ctx->partition->index);
        return UDF_ERR;
    }
    uint64_t *fold = dest[2].data;
    *fold = *fold * 1000003u + index + 1;
    return UDF_OK;
}

static const udf_plugin order_plugin = {
    UDF_PLUGIN_HEADER,
    .name = "order",
    .version = "1",
    .description = "test fixture: records partitioning and merge order",
    .input_dtype = UDF_DTYPE_NATIVE,
    .declare_buffers = order_declare,
    .process_tile = order_tile,
    .merge = order_merge,
};

UDF_PLUGIN_DEFINE(order_plugin)
