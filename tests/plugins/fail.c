/* Test fixture: a working plugin (sig and nav sums in float64) that fails on request in one hook,
 * on one partition: -p hook=process_tile -p partition=3. The runner must stop cleanly, name the
 * plugin, hook and partition, and write no results. */
#include <signal.h>
#include <string.h>
#include <udfhost/udf.h>

static const udf_param_decl fail_params[] = {
    {.name = "hook", .type = UDF_PARAM_CHOICE, .default_value = "none",
     .choices = "none|declare_buffers|init_task|preprocess|process_tile|postprocess|merge|get_results",
     .help = "the hook that fails"},
    {.name = "partition", .type = UDF_PARAM_INT, .default_value = "0", .min = -1, .max = 1e9,
     .help = "the partition on which worker hooks and merge fail (-1: every one)"},
    {.name = "silent", .type = UDF_PARAM_BOOL, .default_value = "false",
     .help = "fail without a message"},
    {.name = "crash", .type = UDF_PARAM_BOOL, .default_value = "false",
     .help = "crash (SIGSEGV) instead of returning an error"},
    {0},
};

static int should_fail(udf_ctx *ctx, const char *hook)
{
    const char *which;
    int64_t part;
    int silent;
    ctx->host->param_string(ctx, "hook", 0, &which);
    ctx->host->param_int(ctx, "partition", 0, &part);
    ctx->host->param_bool(ctx, "silent", 0, &silent);
    if (strcmp(which, hook))
        return 0;
    if (ctx->partition && part >= 0 && ctx->partition->index != (uint64_t)part)
        return 0;
    int crash;
    ctx->host->param_bool(ctx, "crash", 0, &crash);
    if (crash)
        raise(SIGSEGV); /* what a wild pointer does, without depending on the compiler */
    if (!silent)
        ctx->host->error(ctx, "deliberate failure in %s", hook);
    return 1;
}

static int fail_declare(udf_ctx *ctx)
{
    if (should_fail(ctx, "declare_buffers"))
        return UDF_ERR;
    udf_buffer_decl sig = {.name = "sig", .kind = UDF_KIND_SIG, .dtype = UDF_F64};
    udf_buffer_decl nav = {.name = "nav", .kind = UDF_KIND_NAV, .dtype = UDF_F64};
    int rc = ctx->host->declare_buffer(ctx, &sig);
    return rc ? rc : ctx->host->declare_buffer(ctx, &nav);
}

static int fail_init(udf_ctx *ctx, void **task)
{
    *task = NULL;
    return should_fail(ctx, "init_task") ? UDF_ERR : UDF_OK;
}

static int fail_pre(udf_ctx *ctx)
{
    return should_fail(ctx, "preprocess") ? UDF_ERR : UDF_OK;
}

static int fail_post(udf_ctx *ctx)
{
    return should_fail(ctx, "postprocess") ? UDF_ERR : UDF_OK;
}

static int fail_tile(udf_ctx *ctx, const udf_tile *t)
{
    if (should_fail(ctx, "process_tile"))
        return UDF_ERR_PARAM;
    const float *x = t->data;
    double *sig = ctx->buffers[0].data, *nav = ctx->buffers[1].data;
    for (uint64_t f = 0; f < t->depth; f++)
        for (uint64_t p = 0; p < t->sig_count; p++) {
            sig[p] += x[f * t->frame_stride + p];
            nav[f] += x[f * t->frame_stride + p];
        }
    return UDF_OK;
}

static int fail_merge(udf_ctx *ctx, udf_view *dest, const udf_view *src)
{
    if (should_fail(ctx, "merge"))
        return UDF_ERR;
    double *d = dest[0].data;
    const double *s = src[0].data;
    for (uint64_t p = 0; p < dest[0].count; p++)
        d[p] += s[p];
    return UDF_OK;
}

static int fail_results(udf_ctx *ctx)
{
    return should_fail(ctx, "get_results") ? UDF_ERR : UDF_OK;
}

static const udf_plugin fail_plugin = {
    UDF_PLUGIN_HEADER,
    .name = "fail",
    .version = "1",
    .description = "test fixture: fails in a chosen hook",
    .params = fail_params,
    .declare_buffers = fail_declare,
    .init_task = fail_init,
    .preprocess = fail_pre,
    .process_tile = fail_tile,
    .postprocess = fail_post,
    .merge = fail_merge,
    .get_results = fail_results,
};

UDF_PLUGIN_DEFINE(fail_plugin)
