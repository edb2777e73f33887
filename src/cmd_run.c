/* `udfhost run`: options, then open -> plan -> run -> merge -> write. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "array.h"
#include "cli.h"
#include "commands.h"
#include "ds.h"
#include "dsopt.h"
#include "dtype.h"
#include "npy.h"
#include "plan.h"
#include "results.h"
#include "run.h"
#include "shape.h"

enum {
    OPT_PLUGIN = 1,
    OPT_PARAM,
    OPT_ROI,
    OPT_DARK,
    OPT_GAIN,
    OPT_EXCLUDED,
    OPT_THREADS,
    OPT_OUTPUT,
    OPT_PARTITION_SIZE,
    OPT_VERBOSE,
    OPT_QUIET,
    OPT_HELP
};

static const cli_option run_options[] = {
    {"plugin", 0, "NAME|PATH", "run this plugin (repeatable: all run in one pass over the data)", OPT_PLUGIN},
    {"param", 'p', "NAME=VALUE", "parameter of the preceding --plugin (repeatable)", OPT_PARAM},
    DSOPT_CLI_OPTIONS,
    {"roi", 0, "FILE.npy", "process only the frames where this nav-shaped mask is non-zero", OPT_ROI},
    {"dark", 0, "FILE.npy", "dark frame (sig shape) subtracted from every frame", OPT_DARK},
    {"gain", 0, "FILE.npy", "gain map (sig shape) every frame is multiplied with, after --dark", OPT_GAIN},
    {"excluded-pixels", 0, "FILE.npy", "pixels replaced by the mean of their neighbours: a sig-shaped mask or (K, sig dims) coordinates", OPT_EXCLUDED},
    {"threads", 't', "N", "worker threads (default: one per core)", OPT_THREADS},
    {"output", 'o', "DIR", "directory for <plugin>.<buffer>.npy (default: .)", OPT_OUTPUT},
    {"partition-size", 0, "SIZE", "largest partition in bytes of input, e.g. 64M (default 32M)", OPT_PARTITION_SIZE},
    {"verbose", 'v', NULL, "say more (dataset, threads, time and throughput, plugin log messages)", OPT_VERBOSE},
    {"quiet", 'q', NULL, "print nothing but errors", OPT_QUIET},
    {"help", 'h', NULL, "show this help and exit", OPT_HELP},
    {NULL, 0, NULL, NULL, 0},
};

static const char run_usage[] =
    "Usage: udfhost run --plugin NAME [-p NAME=VALUE ...] [--plugin ...] [OPTIONS] FILE\n"
    "Run UDF plugins over every frame of a dataset and write each result buffer as\n"
    "DIR/<plugin>.<buffer>.npy. Results appear only when the whole run succeeded.";

#define MAX_PLUGINS 64

typedef struct run_args {
    dsopt dso;
    plugin *plugins[MAX_PLUGINS];
    uint32_t n_plugins;
    const char *roi_path;
    const char *dark_path, *gain_path, *excluded_path;
    const char *output;
    uint64_t threads;
    uint64_t partition_bytes;
    int verbose;
    int quiet;
    int help;
} run_args;

static int run_option(void *state, int id, const char *v, err *e)
{
    run_args *a = state;
    if (dsopt_is(id))
        return dsopt_handle(&a->dso, id, v, e);
    switch (id) {
    case CLI_POSITIONAL:
        if (a->dso.ds.path)
            return err_set(e, UH_EUSAGE, "more than one dataset given ('%s' and '%s')",
                           a->dso.ds.path, v);
        a->dso.ds.path = v;
        return 0;
    case OPT_PLUGIN: {
        if (a->n_plugins == MAX_PLUGINS)
            return err_set(e, UH_EUSAGE, "more than %d plugins", MAX_PLUGINS);
        plugin *pl;
        int rc = plugin_load(v, &pl, e);
        if (rc)
            return rc;
        for (uint32_t i = 0; i < a->n_plugins; i++)
            if (!strcmp(a->plugins[i]->desc.name, pl->desc.name)) {
                err_set(e, UH_EUSAGE, "plugin %s given twice (its result files would collide)",
                        pl->desc.name);
                plugin_unload(pl);
                return UH_EUSAGE;
            }
        a->plugins[a->n_plugins++] = pl;
        return 0;
    }
    case OPT_PARAM:
        if (!a->n_plugins)
            return err_set(e, UH_EUSAGE, "-p %s: give --plugin before its parameters", v);
        return plugin_param_add(a->plugins[a->n_plugins - 1], v, e);
    case OPT_ROI: a->roi_path = v; return 0;
    case OPT_DARK: a->dark_path = v; return 0;
    case OPT_GAIN: a->gain_path = v; return 0;
    case OPT_EXCLUDED: a->excluded_path = v; return 0;
    case OPT_THREADS:
        if (uint_parse(v, "--threads", 1024, &a->threads, e) || !a->threads)
            return err_set(e, UH_EUSAGE, "--threads: '%s' is not a number from 1 to 1024", v);
        return 0;
    case OPT_OUTPUT: a->output = v; return 0;
    case OPT_PARTITION_SIZE:
        if (size_parse(v, "--partition-size", &a->partition_bytes, e))
            return UH_EUSAGE;
        if (!a->partition_bytes)
            return err_set(e, UH_EUSAGE, "--partition-size: must be positive");
        return 0;
    case OPT_VERBOSE: a->verbose = 1; return 0;
    case OPT_QUIET: a->quiet = 1; return 0;
    case OPT_HELP: a->help = 1; return 0;
    }
    return err_set(e, UH_EINTERNAL, "unhandled option %d", id);
}

/* Read the ROI: a .npy of nav shape (or flat), bool or integer, non-zero = selected. */
static int roi_load(const char *path, const ds *d, uint8_t **roi, uint64_t *selected, err *e)
{
    npy_info info;
    void *data;
    int rc = array_read_file(path, d->num_frames * 8, &info, &data, e);
    if (rc)
        return rc;
    char want[128], got[128];
    shape_format(d->nav_shape, d->nav_ndim, want, sizeof want);
    shape_format(info.shape, info.ndim, got, sizeof got);
    bool same = info.ndim == d->nav_ndim &&
                !memcmp(info.shape, d->nav_shape, d->nav_ndim * sizeof *info.shape);
    bool flat = info.ndim == 1 && info.shape[0] == d->num_frames;
    if (!same && !flat) {
        free(data);
        return err_set(e, UH_EDATA, "%s: ROI shape (%s) does not match the nav shape (%s)", path,
                       got, want);
    }
    if (dtype_is_float(info.dtype)) {
        free(data);
        return err_set(e, UH_EDATA, "%s: ROI must be bool or integer, not %s", path,
                       dtype_name(info.dtype));
    }
    uint8_t *out = malloc(d->num_frames);
    if (!out) {
        free(data);
        return err_set(e, UH_ENOMEM, "out of memory for the ROI");
    }
    size_t es = udf_dtype_size(info.dtype);
    uint64_t n = 0;
    for (uint64_t f = 0; f < d->num_frames; f++) {
        const unsigned char *p = (const unsigned char *)data + f * es;
        unsigned char any = 0;
        for (size_t b = 0; b < es; b++)
            any |= p[b];
        out[f] = any != 0;
        n += out[f];
    }
    free(data);
    *roi = out;
    *selected = n;
    return 0;
}

/* When every plugin asked for only some frames (select_frames), process only their union, within
 * the ROI; the plugins' meta then shows the narrowed ROI. */
static int narrow_to_wanted(plugin **plugins, uint32_t n, const ds *d, uint8_t **roi,
                            uint64_t *selected, err *e)
{
    for (uint32_t k = 0; k < n; k++)
        if (!plugins[k]->wanted)
            return 0;
    uint8_t *mask = calloc(d->num_frames, 1);
    if (!mask)
        return err_set(e, UH_ENOMEM, "out of memory for the frame selection");
    for (uint32_t k = 0; k < n; k++)
        for (uint64_t i = 0; i < plugins[k]->n_wanted; i++)
            mask[plugins[k]->wanted[i]] = 1;
    uint64_t count = 0;
    for (uint64_t f = 0; f < d->num_frames; f++) {
        if (*roi && !(*roi)[f])
            mask[f] = 0;
        count += mask[f];
    }
    free(*roi);
    *roi = mask;
    *selected = count;
    for (uint32_t k = 0; k < n; k++) {
        plugins[k]->meta.roi = mask;
        plugins[k]->meta.selected_frames = count;
    }
    return 0;
}

static void meta_fill(udf_meta *m, const ds *d, const uint8_t *roi, uint64_t selected)
{
    memset(m, 0, sizeof *m);
    m->struct_size = sizeof *m;
    m->nav_ndim = d->nav_ndim;
    memcpy(m->nav_shape, d->nav_shape, sizeof m->nav_shape);
    m->sig_ndim = d->sig_ndim;
    memcpy(m->sig_shape, d->sig_shape, sizeof m->sig_shape);
    m->num_frames = d->num_frames;
    m->sig_size = d->sig_size;
    m->raw_dtype = d->dtype;
    m->roi = roi;
    m->selected_frames = selected;
}

static unsigned default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 1024 ? 1024 : (unsigned)n;
}

int cmd_run(int argc, char **argv, err *e)
{
    run_args a = {0};
    ds *d = NULL;
    uint8_t *roi = NULL;
    corrections corr = {0};
    bufset results[MAX_PLUGINS];
    bool have_results = false;
    int rc = cli_parse(argc, argv, run_options, run_option, &a, e);
    if (!rc && a.help) {
        cli_help(stdout, run_usage, run_options);
        goto done;
    }
    if (!rc && !a.n_plugins)
        rc = err_set(e, UH_EUSAGE, "no --plugin given (see udfhost run --help)");
    if (!rc && !a.dso.ds.path)
        rc = err_set(e, UH_EUSAGE, "no dataset given (see udfhost run --help)");
    if (!rc)
        rc = dsopt_finish(&a.dso, e);
    for (uint32_t k = 0; k < a.n_plugins && !rc; k++)
        rc = plugin_params_check(a.plugins[k], e);
    if (rc)
        goto done;
    /* The command line wins over an .ini descriptor's [udfhost] defaults. */
    if (!a.output)
        a.output = a.dso.output ? a.dso.output : ".";
    if (!a.threads)
        a.threads = a.dso.threads;
    if (a.verbose)
        plugin_log_level = 3;
    if (a.quiet)
        plugin_log_level = 0;
    if ((rc = ds_open(&a.dso.ds, &d, e)))
        goto done;
    uint64_t selected = d->num_frames;
    if (a.roi_path && (rc = roi_load(a.roi_path, d, &roi, &selected, e)))
        goto done;
    if ((rc = corr_load(&corr, d, a.dark_path, a.gain_path, a.excluded_path, e)))
        goto done;
    udf_meta meta;
    meta_fill(&meta, d, roi, selected);
    if (corr.active)
        meta.raw_dtype = corr_dtype(d->dtype);
    for (uint32_t k = 0; k < a.n_plugins && !rc; k++)
        rc = plugin_setup(a.plugins[k], &meta, e);
    if (rc || (rc = narrow_to_wanted(a.plugins, a.n_plugins, d, &roi, &selected, e)))
        goto done;
    /* Check the output directory before reading data, a long run must not fail at its end; and
     * after the plugins accepted their parameters, so that a refused run creates nothing. */
    if ((rc = results_prepare_dir(a.output, e)))
        goto done;
    d->roi = roi;
    run_config c = {
        .d = d,
        .plugins = a.plugins,
        .n_plugins = a.n_plugins,
        .threads = a.threads ? (unsigned)a.threads : default_threads(),
        .roi = roi,
        .partition_bytes = a.partition_bytes,
        .corr = &corr,
    };
    if (a.verbose)
        fprintf(stderr, "udfhost: %s: %llu frames of %llu pixels (%s), %u threads\n", d->path,
                (unsigned long long)d->num_frames, (unsigned long long)d->sig_size,
                dtype_name(d->dtype), c.threads);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if ((rc = run_execute(&c, results, e)))
        goto done;
    have_results = true;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (a.verbose) {
        double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        double bytes = (double)selected * (double)d->frame_bytes;
        fprintf(stderr, "udfhost: processed %llu frames (%.3g GB) in %.3f s, %.2f GB/s\n",
                (unsigned long long)selected, bytes / 1e9, secs, secs > 0 ? bytes / 1e9 / secs : 0);
    }
    rc = results_write(d, a.plugins, results, a.n_plugins, a.output, e);
done:
    for (uint32_t k = 0; k < a.n_plugins; k++) {
        if (have_results)
            bufs_free(&results[k]);
        plugin_cleanup(a.plugins[k]);
        plugin_unload(a.plugins[k]);
    }
    free(roi);
    corr_free(&corr);
    ds_close(d);
    dsopt_free(&a.dso);
    return rc;
}
