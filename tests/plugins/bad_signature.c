/* Test fixture: a descriptor whose ABI signature claims another pointer size. */
#include <udfhost/udf.h>

static int declare(udf_ctx *ctx) { (void)ctx; return UDF_OK; }
static int tile(udf_ctx *ctx, const udf_tile *t) { (void)ctx; (void)t; return UDF_OK; }

static const udf_plugin bad = {
    .abi_major = UDF_ABI_MAJOR, .abi_minor = 0, .struct_size = sizeof(udf_plugin),
    .signature = "ptr4-le", .name = "bad_signature", .version = "1",
    .declare_buffers = declare, .process_tile = tile,
};

UDF_PLUGIN_DEFINE(bad)
