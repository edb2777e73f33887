/* `udfhost plugin-info`: what a plugin is, how it processes, and its parameters. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "dtype.h"
#include "plugin.h"

enum { OPT_HELP = 1 };

static const cli_option info_options[] = {
    {"help", 'h', NULL, "show this help and exit", OPT_HELP},
    {NULL, 0, NULL, NULL, 0},
};

static const char info_usage[] =
    "Usage: udfhost plugin-info NAME|PATH\n"
    "Show a plugin's version, description, file, processing method and parameters.";

typedef struct info_args {
    const char *spec;
    int help;
} info_args;

static int info_option(void *state, int id, const char *v, err *e)
{
    info_args *a = state;
    if (id == OPT_HELP) {
        a->help = 1;
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
        if (p->flags & UDF_PARAM_REQUIRED)
            printf(" required");
        else if (p->default_value)
            printf(" default %s", p->default_value);
        printf("\n      %s\n", p->help ? p->help : "");
    }
    plugin_unload(pl);
    return 0;
}
