/* `udfhost plugin-info`: what a plugin is, how it processes, its parameters and its buffers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "dtype.h"
#include "plugin.h"

enum { OPT_HELP = 1, OPT_PARAM, OPT_ALLOW_UNSAFE };

static const cli_option info_options[] = {
    {"param", 'p', "NAME=VALUE", "a parameter, as for udfhost run (buffers may depend on them)",
     OPT_PARAM},
    {"allow-unsafe-plugins", 0, NULL,
     "load plugin files that others could have changed (see udfhost(1), PLUGIN SAFETY)",
     OPT_ALLOW_UNSAFE},
    {"help", 'h', NULL, "show this help and exit", OPT_HELP},
    {NULL, 0, NULL, NULL, 0},
};

static const char info_usage[] =
    "Usage: udfhost plugin-info NAME|PATH [-p NAME=VALUE ...]\n"
    "Show a plugin's version, description, file, processing method, parameters and the buffers\n"
    "it declares for a 2-D scan of 2-D uint16 frames (256 x 256) with the parameters given.";

#define INFO_MAX_PARAMS 256

typedef struct info_args {
    const char *spec;
    const char *params[INFO_MAX_PARAMS];
    unsigned n_params;
    int help;
} info_args;

static int info_option(void *state, int id, const char *v, err *e)
{
    info_args *a = state;
    if (id == OPT_HELP) {
        a->help = 1;
        return 0;
    }
    if (id == OPT_ALLOW_UNSAFE) {
        plugin_allow_unsafe = true;
        return 0;
    }
    if (id == OPT_PARAM) {
        if (a->n_params == INFO_MAX_PARAMS)
            return err_set(e, UH_EUSAGE, "-p: more than %d parameters", INFO_MAX_PARAMS);
        a->params[a->n_params++] = v;
        return 0;
    }
    if (a->spec)
        return err_set(e, UH_EUSAGE, "plugin-info takes one plugin");
    a->spec = v;
    return 0;
}

static const char *type_name(udf_param_type t)
{
    static const char *const names[] = {"?", "int", "float", "bool", "string", "choice", "ints",
                                        "floats"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

static const char *kind_name(udf_kind k)
{
    return k == UDF_KIND_NAV ? "nav" : k == UDF_KIND_SIG ? "sig" : "single";
}

/* The buffers declare_buffers gives for a nominal dataset: 16 x 16 scan of 256 x 256 uint16. */
static void print_buffers(plugin *pl)
{
    udf_meta meta = {.struct_size = sizeof meta, .nav_ndim = 2, .nav_shape = {16, 16},
                     .sig_ndim = 2, .sig_shape = {256, 256}, .num_frames = 256,
                     .sig_size = 65536, .raw_dtype = UDF_U16, .selected_frames = 256};
    err e = {0};
    if (plugin_declare(pl, &meta, &e)) {
        printf("buffers: declared when the run starts (here: %s)\n", e.msg);
        return;
    }
    printf("buffers:%s\n", pl->n_buffers ? "" : " none");
    for (uint32_t i = 0; i < pl->n_buffers; i++) {
        const plugin_buffer *b = &pl->buffers[i];
        printf("  %s (%s", b->name, kind_name(b->decl.kind));
        for (uint32_t j = 0; j < b->decl.extra_ndim; j++)
            printf("%s%llu", j ? "," : " x ", (unsigned long long)b->decl.extra_shape[j]);
        printf(", %s%s)\n", dtype_name(b->decl.dtype),
               b->decl.flags & UDF_BUFFER_PRIVATE       ? ", private: not written"
               : b->decl.flags & UDF_BUFFER_RESULT_ONLY ? ", result"
                                                        : "");
    }
}

int cmd_plugin_info(int argc, char **argv, err *e)
{
    info_args a = {0};
    int rc = cli_parse(argc, argv, info_options, info_option, &a, e);
    if (rc)
        return rc;
    if (a.help) {
        cli_help(stdout, info_usage, info_options);
        return 0;
    }
    if (!a.spec)
        return err_set(e, UH_EUSAGE, "no plugin given (see udfhost plugin-info --help)");
    plugin *pl;
    if ((rc = plugin_load(a.spec, &pl, e)))
        return rc;
    for (unsigned i = 0; i < a.n_params && !rc; i++)
        rc = plugin_param_add(pl, a.params[i], e);
    if (rc) {
        plugin_unload(pl);
        return rc;
    }
    const udf_plugin *d = &pl->desc;
    static const char *const methods[] = {"process_tile", "process_frame", "process_partition"};
    printf("%s %s: %s\n", d->name, d->version, d->description ? d->description : "");
    printf("file: %s\n", pl->path);
    printf("method: %s\n", methods[pl->method]);
    printf("input dtype: %s\n", d->input_dtype == UDF_DTYPE_NATIVE ? "native"
                                : d->input_dtype == UDF_F64        ? "float64"
                                                                   : "float32");
    printf("parameters:%s\n", pl->n_params ? "" : " none");
    for (uint32_t i = 0; i < pl->n_params; i++) {
        const udf_param_decl *p = &d->params[i];
        printf("  %s (%s%s%s%s)", p->name, type_name(p->type),
               p->type == UDF_PARAM_CHOICE ? ": " : "",
               p->type == UDF_PARAM_CHOICE ? p->choices : "",
               p->flags & UDF_PARAM_REPEATABLE ? ", repeatable" : "");
        if (p->min < p->max)
            printf(" in [%g, %g]", p->min, p->max);
        if (p->flags & UDF_PARAM_REQUIRED)
            printf(" required");
        else if (p->default_value)
            printf(" default %s", p->default_value);
        printf("\n      %s\n", p->help ? p->help : "");
    }
    print_buffers(pl);
    plugin_unload(pl);
    return 0;
}
