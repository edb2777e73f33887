/* Test fixture: a plugin that casts away the const of its input and writes into every tile. The
 * host hands plugins read-only data (the file mapped PROT_READ), so this must crash, or with
 * --io read land in a worker buffer; the file on disk must never change. */
#include <string.h>
#include <udfhost/udf.h>

static int scribble_declare(udf_ctx *ctx)
{
    udf_buffer_decl seen = {.name = "seen", .kind = UDF_KIND_NAV, .dtype = UDF_U8};
    return ctx->host->declare_buffer(ctx, &seen);
}

static int scribble_tile(udf_ctx *ctx, const udf_tile *t)
{
    size_t elem = udf_dtype_size(ctx->meta->input_dtype);
    unsigned char *data = (unsigned char *)(uintptr_t)t->data; /* the const, cast away */
    unsigned char *seen = ctx->buffers[0].data;
    for (uint64_t f = 0; f < t->depth; f++) {
        memset(data + f * t->frame_stride * elem, 0x5a, t->sig_count * elem);
        seen[f] = 1;
    }
    return UDF_OK;
}

static const udf_plugin scribble_plugin = {
    UDF_PLUGIN_HEADER,
    .name = "scribble",
    .version = "1",
    .description = "test fixture: writes into its read-only input",
    .input_dtype = UDF_DTYPE_NATIVE,
    .declare_buffers = scribble_declare,
    .process_tile = scribble_tile,
};

UDF_PLUGIN_DEFINE(scribble_plugin)
