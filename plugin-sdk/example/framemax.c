/* framemax: an example udfhost plugin, built out of tree. For every frame it records the brightest
 * pixel's value (nav buffer `max`, float32) and its detector position (nav buffer `argmax`, int64
 * y,x). Only 2-D detectors are supported. */
#include <udfhost/udf.h>

/* ctx->buffers lists the buffers in declaration order, so fixed positions are enough here;
 * udf_buffer_find() looks one up by name instead. */
enum { BUFFER_MAX, BUFFER_ARGMAX };

static int framemax_declare_buffers(udf_ctx *ctx)
{
    const udf_host *host = ctx->host;
    if (ctx->meta->sig_ndim != 2) {
        host->error(ctx, "needs 2-D detector frames, but this dataset's signal has %u dimensions",
                    (unsigned)ctx->meta->sig_ndim);
        return UDF_ERR_UNSUPPORTED;
    }
    const udf_buffer_decl max = {.name = "max", .kind = UDF_KIND_NAV, .dtype = UDF_F32};
    const udf_buffer_decl argmax = {
        .name = "argmax",
        .kind = UDF_KIND_NAV,
        .dtype = UDF_I64,
        .extra_ndim = 1,
        .extra_shape = {2}, /* detector y, x */
    };
    int status = host->declare_buffer(ctx, &max);
    if (status == UDF_OK)
        status = host->declare_buffer(ctx, &argmax);
    return status;
}

/* Called on a worker with `depth` whole frames (UDF_TILE_FULL_FRAMES below). Frame f starts
 * frame_stride elements after frame f - 1, which may be more than the frame size; pixel p of the
 * slice is at flat detector index sig_start + p. */
static int framemax_process_tile(udf_ctx *ctx, const udf_tile *tile)
{
    const udf_meta *meta = ctx->meta;
    if (tile->sig_count != meta->sig_size) {
        /* The host promised whole frames; a partial one would give a wrong maximum. */
        ctx->host->error(ctx, "got a tile of %llu pixels per frame, expected whole frames of %llu",
                         (unsigned long long)tile->sig_count, (unsigned long long)meta->sig_size);
        return UDF_ERR;
    }
    /* Nav views start at this tile's first frame: item f is frame f of the tile. */
    float *restrict max_out = ctx->buffers[BUFFER_MAX].data;
    int64_t *restrict argmax_out = ctx->buffers[BUFFER_ARGMAX].data;
    const uint64_t width = meta->sig_shape[1];

    for (uint64_t f = 0; f < tile->depth; f++) {
        const float *restrict pixels = (const float *)tile->data + f * tile->frame_stride;
        /* Ties go to the first pixel in flat order, as with numpy.argmax. */
        float best = pixels[0];
        uint64_t best_p = 0;
        for (uint64_t p = 1; p < tile->sig_count; p++) {
            if (pixels[p] > best) {
                best = pixels[p];
                best_p = p;
            }
        }
        const uint64_t flat = tile->sig_start + best_p;
        max_out[f] = best;
        argmax_out[2 * f] = (int64_t)(flat / width);
        argmax_out[2 * f + 1] = (int64_t)(flat % width);
    }
    return UDF_OK;
}

static const udf_plugin framemax_plugin = {
    UDF_PLUGIN_HEADER,
    .name = "framemax",
    .version = "1.0",
    .description = "maximum of each frame and its detector position (y, x)",
    .params = NULL,
    .input_dtype = UDF_DTYPE_NONE, /* float32 */
    .tiling = UDF_TILE_FULL_FRAMES,
    .declare_buffers = framemax_declare_buffers,
    .process_tile = framemax_process_tile,
    /* Only nav buffers, which the host places itself: no merge is needed. */
};

UDF_PLUGIN_DEFINE(framemax_plugin)
