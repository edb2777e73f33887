/* Test fixture: a working plugin (sig and nav sums in float64) that fails on request in one hook,
 * on one partition: -p hook=process_tile -p partition=3, by returning an error or, with -p how=,
 * by crashing, aborting, hanging or allocating ten times the machine's memory. The runner must
 * stop cleanly, name the plugin, hook and partition, and write no results. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <udfhost/udf.h>

static const udf_param_decl fail_params[] = {
    {.name = "hook", .type = UDF_PARAM_CHOICE, .default_value = "none",
     .choices = "none|declare_buffers|init_task|preprocess|process_tile|postprocess|merge|get_results",
     .help = "the hook that fails"},
    {.name = "partition", .type = UDF_PARAM_INT, .default_value = "0", .min = -1, .max = 1e9,
     .help = "the partition on which worker hooks and merge fail (-1: every one)"},
    {.name = "silent", .type = UDF_PARAM_BOOL, .default_value = "false",
     .help = "fail without a message"},
    {.name = "how", .type = UDF_PARAM_CHOICE, .default_value = "error",
     .choices = "error|segv|abort|hang|alloc",
     .help = "return an error, crash, abort(), never return, or allocate and fill 10x RAM"},
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
    const char *how;
    ctx->host->param_string(ctx, "how", 0, &how);
    if (!strcmp(how, "segv"))
        raise(SIGSEGV); /* what a wild pointer does, without depending on the compiler */
    if (!strcmp(how, "abort"))
        abort();
    if (!strcmp(how, "hang"))
        for (;;)
            pause();
    if (!strcmp(how, "alloc")) {
        size_t ram = (size_t)sysconf(_SC_PHYS_PAGES) * (size_t)sysconf(_SC_PAGESIZE);
        char *p = malloc(10 * ram);
        if (!p) {
            ctx->host->error(ctx, "cannot allocate 10x RAM (%zu GiB)", 10 * ram >> 30);
            return 1;
        }
        for (size_t i = 0; i < 10 * ram; i += 4096)
            p[i] = 1; /* touch every page: only the kernel's OOM killer ends this */
        free(p);
    }
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
