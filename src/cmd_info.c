/* `udfhost info`: what udfhost makes of a dataset (format, shapes, dtype, size, how it is read),
 * as text or as one JSON object for scripts. A client of the public API (udfhost/udfhost.h):
 * the dataset options go to udfhost_dataset_open as name, value pairs. */
#include <stdio.h>
#include <string.h>
#include <udfhost/udfhost.h>

#include "cli.h"
#include "commands.h"
#include "dsopt.h"
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

/* Dataset options given at most this many times in all (each may be repeated; the last wins). */
#define INFO_MAX_OPTIONS 64

typedef struct info_args {
    const char *path;
    const char *pairs[2 * INFO_MAX_OPTIONS + 1]; /* "--name", value, ..., NULL */
    char names[INFO_MAX_OPTIONS][32];
    unsigned n;
    int json;
    int help;
} info_args;

static int info_option(void *state, int id, const char *v, err *e)
{
    info_args *a = state;
    if (dsopt_is(id)) {
        if (a->n == INFO_MAX_OPTIONS)
            return err_set(e, UH_EUSAGE, "more than %d dataset options", INFO_MAX_OPTIONS);
        for (const cli_option *o = info_options; o->long_name; o++)
            if (o->id == id)
                snprintf(a->names[a->n], sizeof a->names[a->n], "--%s", o->long_name);
        a->pairs[2 * a->n] = a->names[a->n];
        a->pairs[2 * a->n + 1] = v;
        a->n++;
        return 0;
    }
    switch (id) {
    case CLI_POSITIONAL:
        if (a->path)
            return err_set(e, UH_EUSAGE, "more than one dataset given ('%s' and '%s')", a->path,
                           v);
        a->path = v;
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
    int rc = cli_parse(argc, argv, info_options, info_option, &a, e);
    if (!rc && a.help) {
        cli_help(stdout, info_usage, info_options);
        return 0;
    }
    if (!rc && !a.path)
        rc = err_set(e, UH_EUSAGE, "no dataset given (see udfhost info --help)");
    if (rc)
        return rc;
    udfhost_dataset *dataset;
    udfhost_error ue;
    if ((rc = udfhost_dataset_open(a.path, a.pairs, &dataset, &ue)))
        return err_set(e, rc, "%s", ue.message);
    udfhost_dataset_info d;
    udfhost_dataset_describe(dataset, &d);
    uint64_t pixels = 1;
    for (uint32_t i = 0; i < d.sig_ndim; i++)
        pixels *= d.sig_shape[i];
    unsigned long long data_bytes = (unsigned long long)(d.num_frames * d.frame_bytes);
    const char *order = d.frame_bytes == pixels ? "none" : d.big_endian ? "big" : "little";
    const char *io = d.io[0] ? d.io : "?";
    if (a.json) {
        jbuf path = {0};
        jb_str(&path, d.path);
        printf("{\"file\": %s", path.oom ? "null" : path.s);
        jb_free(&path);
        printf(", \"format\": \"%s\", \"nav_shape\": [", d.format);
        print_shape(d.nav_shape, d.nav_ndim, ", ");
        printf("], \"sig_shape\": [");
        print_shape(d.sig_shape, d.sig_ndim, ", ");
        printf("], \"dtype\": \"%s\", \"byte_order\": \"%s\", \"frames\": %llu, "
               "\"frame_bytes\": %llu, \"data_bytes\": %llu, \"file_bytes\": %llu, "
               "\"io\": \"%s\", \"sync_offset\": %lld, \"file_frames\": %llu}\n",
               d.dtype, order, (unsigned long long)d.num_frames,
               (unsigned long long)d.frame_bytes, data_bytes, (unsigned long long)d.file_bytes,
               io, (long long)d.sync_offset, (unsigned long long)d.file_frames);
    } else {
        printf("file: %s\nformat: %s\nnav shape: ", d.path, d.format);
        print_shape(d.nav_shape, d.nav_ndim, ",");
        printf("\nsig shape: ");
        print_shape(d.sig_shape, d.sig_ndim, ",");
        printf("\ndtype: %s\nbyte order: %s\nframes: %llu\nframe size: %llu bytes\n"
               "data size: %llu bytes (%.3g GB)\nfile size: %llu bytes\nio: %s\n",
               d.dtype, order, (unsigned long long)d.num_frames,
               (unsigned long long)d.frame_bytes, data_bytes, data_bytes / 1e9,
               (unsigned long long)d.file_bytes, io);
        if (d.sync_offset)
            printf("sync offset: %lld (the file holds %llu frames)\n", (long long)d.sync_offset,
                   (unsigned long long)d.file_frames);
    }
    udfhost_dataset_close(dataset);
    return 0;
}
