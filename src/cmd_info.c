/* `udfhost info`: what udfhost makes of a dataset (format, shapes, dtype, size, how it is read),
 * as text or as one JSON object for scripts. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "ds.h"
#include "dsopt.h"
#include "dtype.h"
#include "json.h"

enum { OPT_JSON = 1, OPT_HELP };

static const cli_option info_options[] = {
    DSOPT_CLI_OPTIONS,
    {"json", 0, NULL, "print one JSON object instead of text", OPT_JSON},
    {"help", 'h', NULL, "show this help and exit", OPT_HELP},
    {NULL, 0, NULL, NULL, 0},
};

static const char info_usage[] =
    "Usage: udfhost info [OPTIONS] FILE\n"
    "Show the format, nav and sig shape, dtype, byte order, frame count, data size and I/O\n"
    "method of a dataset, as udfhost run would open it with the same options.";

typedef struct info_args {
    dsopt dso;
    int json;
    int help;
} info_args;

static int info_option(void *state, int id, const char *v, err *e)
{
    info_args *a = state;
    if (dsopt_is(id))
        return dsopt_handle(&a->dso, id, v, e);
    switch (id) {
    case CLI_POSITIONAL:
        if (a->dso.ds.path)
            return err_set(e, UH_EUSAGE, "more than one dataset given ('%s' and '%s')",
                           a->dso.ds.path, v);
        a->dso.ds.path = v;
        return 0;
    case OPT_JSON: a->json = 1; return 0;
    case OPT_HELP: a->help = 1; return 0;
    }
    return err_set(e, UH_EINTERNAL, "unhandled option %d", id);
}

static void print_shape(const uint64_t *dims, uint32_t n, const char *sep)
{
    for (uint32_t i = 0; i < n; i++)
        printf("%s%llu", i ? sep : "", (unsigned long long)dims[i]);
}

int cmd_info(int argc, char **argv, err *e)
{
    info_args a = {0};
    ds *d = NULL;
    int rc = cli_parse(argc, argv, info_options, info_option, &a, e);
    if (!rc && a.help) {
        cli_help(stdout, info_usage, info_options);
        dsopt_free(&a.dso);
        return 0;
    }
    if (!rc && !a.dso.ds.path)
        rc = err_set(e, UH_EUSAGE, "no dataset given (see udfhost info --help)");
    if (!rc)
        rc = dsopt_finish(&a.dso, e);
    if (!rc)
        rc = ds_open(&a.dso.ds, &d, e);
    if (rc) {
        dsopt_free(&a.dso);
        return rc;
    }
    unsigned long long data_bytes = (unsigned long long)(d->num_frames * d->frame_bytes);
    const char *order = d->elem_size == 1 ? "none" : d->big_endian ? "big" : "little";
    if (a.json) {
        jbuf path = {0};
        jb_str(&path, d->path);
        printf("{\"file\": %s", path.oom ? "null" : path.s);
        jb_free(&path);
        printf(", \"format\": \"%s\", \"nav_shape\": [", d->reader->name);
        print_shape(d->nav_shape, d->nav_ndim, ", ");
        printf("], \"sig_shape\": [");
        print_shape(d->sig_shape, d->sig_ndim, ", ");
        printf("], \"dtype\": \"%s\", \"byte_order\": \"%s\", \"frames\": %llu, "
               "\"frame_bytes\": %llu, \"data_bytes\": %llu, \"file_bytes\": %llu, "
               "\"io\": \"%s\", \"sync_offset\": %lld, \"file_frames\": %llu}\n",
               dtype_name(d->dtype), order, (unsigned long long)d->num_frames,
               (unsigned long long)d->frame_bytes, data_bytes, (unsigned long long)d->file_bytes,
               d->io ? d->io : "?", (long long)d->sync_offset,
               (unsigned long long)d->file_frames);
    } else {
        printf("file: %s\nformat: %s\nnav shape: ", d->path, d->reader->name);
        print_shape(d->nav_shape, d->nav_ndim, ",");
        printf("\nsig shape: ");
        print_shape(d->sig_shape, d->sig_ndim, ",");
        printf("\ndtype: %s\nbyte order: %s\nframes: %llu\nframe size: %llu bytes\n"
               "data size: %llu bytes (%.3g GB)\nfile size: %llu bytes\nio: %s\n",
               dtype_name(d->dtype), order, (unsigned long long)d->num_frames,
               (unsigned long long)d->frame_bytes, data_bytes, data_bytes / 1e9,
               (unsigned long long)d->file_bytes, d->io ? d->io : "?");
        if (d->sync_offset)
            printf("sync offset: %lld (the file holds %llu frames)\n", (long long)d->sync_offset,
                   (unsigned long long)d->file_frames);
    }
    ds_close(d);
    dsopt_free(&a.dso);
    return 0;
}
