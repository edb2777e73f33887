/* Test fixture: a descriptor whose struct_size is shorter than ABI 1.0's. */
#include <udfhost/udf.h>

static const udf_plugin bad = {
    .abi_major = UDF_ABI_MAJOR, .abi_minor = 0, .struct_size = 24,
    .signature = UDF_ABI_SIGNATURE, .name = "short_desc", .version = "1",
};

UDF_PLUGIN_DEFINE(bad)
