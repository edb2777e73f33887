/* Test fixture: exports the v1 entry point, but its descriptor claims ABI major 2. */
#include <udfhost/udf.h>

static int declare(udf_ctx *ctx) { (void)ctx; return UDF_OK; }
static int tile(udf_ctx *ctx, const udf_tile *t) { (void)ctx; (void)t; return UDF_OK; }

static const udf_plugin bad = {
    .abi_major = 2, .abi_minor = 0, .struct_size = sizeof(udf_plugin),
    .signature = UDF_ABI_SIGNATURE, .name = "bad_major", .version = "1",
    .declare_buffers = declare, .process_tile = tile,
};

UDF_PLUGIN_DEFINE(bad)
