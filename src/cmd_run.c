/* `udfhost run`: options, then open -> plan -> run -> merge -> write. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "array.h"
#include "budget.h"
#include "cli.h"
#include "commands.h"
#include "ds.h"
#include "config.h"
#include "dsopt.h"
#include "dtype.h"
#include "isolate.h"
#include "json.h"
#include "mpi_run.h"
#include "npy.h"
#include "plan.h"
#include "results.h"
#include "run.h"
#include "runprep.h"
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
    OPT_PROGRESS,
    OPT_NO_PROGRESS,
    OPT_JSON,
    OPT_STDOUT,
    OPT_PREVIEW,
    OPT_PREVIEW_SCALE,
    OPT_SAVE_FORMAT,
    OPT_LIVE_EVERY,
    OPT_ISOLATE,
    OPT_PLUGIN_TIMEOUT,
    OPT_OVERWRITE,
    OPT_ALLOW_UNSAFE_PLUGINS,
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
    {"progress", 0, NULL, "show a progress bar on stderr (default: when stderr is a terminal)", OPT_PROGRESS},
    {"no-progress", 0, NULL, "never show a progress bar", OPT_NO_PROGRESS},
    {"json", 0, NULL, "print a JSON summary of the run on stdout when done", OPT_JSON},
    {"stdout", 0, "PLUGIN.BUFFER", "also write this result buffer as .npy to stdout", OPT_STDOUT},
    {"preview", 0, NULL, "write a PNG picture of every 2-D result next to it", OPT_PREVIEW},
    {"preview-scale", 0, "SCALE", "linear (default) or log", OPT_PREVIEW_SCALE},
    {"save-format", 0, "FORMAT", "npy (default) or tiff: results also as float32 TIFF", OPT_SAVE_FORMAT},
    {"live-every", 0, "N", "rewrite the results (and previews) after every N merged partitions", OPT_LIVE_EVERY},
    {"isolate", 0, NULL, "run the plugins in worker processes: a crash or hang ends the run with a message, not the host", OPT_ISOLATE},
    {"plugin-timeout", 0, "SECONDS", "a plugin call running longer than this is an error (default: no limit)", OPT_PLUGIN_TIMEOUT},
    {"overwrite", 0, NULL, "replace result files that exist already (default: refuse to start)", OPT_OVERWRITE},
    {"allow-unsafe-plugins", 0, NULL, "load plugin files that others could have changed (see udfhost(1), PLUGIN SAFETY)", OPT_ALLOW_UNSAFE_PLUGINS},
    {"help", 'h', NULL, "show this help and exit", OPT_HELP},
    {NULL, 0, NULL, NULL, 0},
};

static const char run_usage[] =
    "Usage: udfhost run --plugin NAME [-p NAME=VALUE ...] [--plugin ...] [OPTIONS] FILE\n"
    "Run UDF plugins over every frame of a dataset and write each result buffer as\n"
    "DIR/<plugin>.<buffer>.npy. Results appear only when the whole run succeeded; a run that\n"
    "would replace existing files refuses to start unless given --overwrite.";

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
    int progress; /* 1 on, 0 off, -1 when stderr is a terminal */
    int json;
    const char *stdout_buffer;
    results_opts out;
    uint64_t live_every;
    int isolate;
    double timeout;
    int overwrite;
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
    case OPT_PROGRESS: a->progress = 1; return 0;
    case OPT_NO_PROGRESS: a->progress = 0; return 0;
    case OPT_JSON: a->json = 1; return 0;
    case OPT_STDOUT:
        if (!strchr(v, '.'))
            return err_set(e, UH_EUSAGE, "--stdout: '%s' is not PLUGIN.BUFFER", v);
        a->stdout_buffer = v;
        return 0;
    case OPT_PREVIEW: a->out.preview = true; return 0;
    case OPT_PREVIEW_SCALE:
        if (strcmp(v, "linear") && strcmp(v, "log"))
            return err_set(e, UH_EUSAGE, "--preview-scale: '%s' is neither linear nor log", v);
        a->out.scale = !strcmp(v, "log") ? PREVIEW_LOG : PREVIEW_LINEAR;
        return 0;
    case OPT_SAVE_FORMAT:
        if (strcmp(v, "npy") && strcmp(v, "tiff"))
            return err_set(e, UH_EUSAGE, "--save-format: '%s' is neither npy nor tiff", v);
        a->out.tiff = !strcmp(v, "tiff");
        return 0;
    case OPT_LIVE_EVERY:
        if (uint_parse(v, "--live-every", UINT32_MAX, &a->live_every, e) || !a->live_every)
            return err_set(e, UH_EUSAGE, "--live-every: '%s' is not a positive number", v);
        return 0;
    case OPT_ISOLATE: a->isolate = 1; return 0;
    case OPT_PLUGIN_TIMEOUT: {
        char *end;
        errno = 0;
        double t = strtod(v, &end);
        /* Up to a year: beyond that the limit is no limit, and the nanoseconds would overflow. */
        if (end == v || *end || errno || !(t > 0 && t <= 3.2e7))
            return err_set(e, UH_EUSAGE, "--plugin-timeout: '%s' is not a number of seconds "
                           "above 0 and up to 3.2e7", v);
        a->timeout = t;
        return 0;
    }
    case OPT_OVERWRITE: a->overwrite = 1; return 0;
    case OPT_ALLOW_UNSAFE_PLUGINS: return 0; /* taken by unsafe_prescan */
    case OPT_HELP: a->help = 1; return 0;
    }
    return err_set(e, UH_EINTERNAL, "unhandled option %d", id);
}

/* --plugin loads its plugin while the options are parsed (the -p after it need its parameter
 * declarations), so --allow-unsafe-plugins must be known before: a first pass over the same
 * table looks for it alone. Errors are left to the second pass to report. */
static int unsafe_prescan(void *state, int id, const char *v, err *e)
{
    (void)state;
    (void)v;
    (void)e;
    if (id == OPT_ALLOW_UNSAFE_PLUGINS)
        plugin_allow_unsafe = true;
    return 0;
}

/* --- progress bar -------------------------------------------------------------------------- */

typedef struct progress {
    struct timespec start, last;
    uint64_t frame_bytes;
    bool shown;
} progress;

static double seconds_since(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t->tv_sec) + 1e-9 * (double)(now.tv_nsec - t->tv_nsec);
}

/* One line on stderr, redrawn at most 10 times a second: bar, frames, GB/s, time left. */
static void progress_update(void *arg, uint64_t done, uint64_t total)
{
    progress *p = arg;
    if (done < total && p->shown && seconds_since(&p->last) < 0.1)
        return;
    clock_gettime(CLOCK_MONOTONIC, &p->last);
    double secs = seconds_since(&p->start), frac = total ? (double)done / (double)total : 1;
    double gbs = secs > 0 ? (double)done * (double)p->frame_bytes / 1e9 / secs : 0;
    char bar[31];
    int fill = (int)(frac * 30);
    for (int i = 0; i < 30; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[30] = '\0';
    char eta[32] = "";
    if (done && done < total)
        snprintf(eta, sizeof eta, ", %.0f s left", secs / frac - secs);
    fprintf(stderr, "\r[%s] %3.0f%% %llu/%llu frames, %.2f GB/s%s\033[K", bar, frac * 100,
            (unsigned long long)done, (unsigned long long)total, gbs, eta);
    fflush(stderr);
    p->shown = true;
}

static void progress_end(progress *p)
{
    if (p->shown)
        fputc('\n', stderr);
}

/* --- the run record (udfhost-run.json, --json) ------------------------------------------------- */

static void iso_time(time_t t, char *buf, size_t cap)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* What a run did, enough to repeat it: program, command line, plugins with their parameters,
 * dataset, corrections, threads, times, and every result file. */
static char *run_record(int argc, char **argv, const run_args *a, const ds *d, unsigned threads,
                        int ranks, time_t started, double secs, uint64_t selected,
                        const bufset *results)
{
    jbuf b = {0};
    char when[32];
    jb_printf(&b, "{\n  \"udfhost\": ");
    jb_str(&b, PACKAGE_VERSION);
    jb_printf(&b, ",\n  \"command\": [\"udfhost\", \"run\"");
    for (int i = 0; i < argc; i++) {
        jb_printf(&b, ", ");
        jb_str(&b, argv[i]);
    }
    jb_printf(&b, "],\n  \"plugins\": [");
    for (uint32_t k = 0; k < a->n_plugins; k++) {
        const plugin *pl = a->plugins[k];
        jb_printf(&b, "%s\n    {\"name\": ", k ? "," : "");
        jb_str(&b, pl->desc.name);
        jb_printf(&b, ", \"version\": ");
        jb_str(&b, pl->desc.version);
        jb_printf(&b, ", \"file\": ");
        jb_str(&b, pl->path);
        jb_printf(&b, ", \"parameters\": [");
        for (uint32_t i = 0; i < pl->n_given; i++) {
            jb_printf(&b, "%s[", i ? ", " : "");
            jb_str(&b, pl->given[i].decl->name);
            jb_printf(&b, ", ");
            jb_str(&b, pl->given[i].value);
            jb_printf(&b, "]");
        }
        jb_printf(&b, "]}");
    }
    struct stat st;
    bool have_stat = strcmp(d->path, "-") && !stat(d->path, &st);
    char *abs = have_stat ? realpath(d->path, NULL) : NULL;
    jb_printf(&b, "\n  ],\n  \"dataset\": {\"path\": ");
    jb_str(&b, abs ? abs : d->path);
    free(abs);
    jb_printf(&b, ", \"format\": ");
    jb_str(&b, d->reader->name);
    jb_printf(&b, ", \"nav_shape\": ");
    jb_dims(&b, d->nav_shape, d->nav_ndim);
    jb_printf(&b, ", \"sig_shape\": ");
    jb_dims(&b, d->sig_shape, d->sig_ndim);
    jb_printf(&b, ", \"dtype\": \"%s\", \"byte_order\": \"%s\", \"bytes\": %llu",
              dtype_name(d->dtype), d->big_endian ? "big" : "little",
              (unsigned long long)(d->num_frames * d->frame_bytes));
    if (have_stat) {
        iso_time(st.st_mtime, when, sizeof when);
        jb_printf(&b, ", \"modified\": \"%s\"", when);
    }
    jb_printf(&b, ", \"sync_offset\": %lld},\n  \"roi\": ", (long long)d->sync_offset);
    jb_str(&b, a->roi_path);
    jb_printf(&b, ",\n  \"corrections\": {\"dark\": ");
    jb_str(&b, a->dark_path);
    jb_printf(&b, ", \"gain\": ");
    jb_str(&b, a->gain_path);
    jb_printf(&b, ", \"excluded_pixels\": ");
    jb_str(&b, a->excluded_path);
    jb_printf(&b, "},\n  \"threads\": %u,\n  \"ranks\": %d,\n", threads, ranks);
    iso_time(started, when, sizeof when);
    jb_printf(&b, "  \"started\": \"%s\",\n", when);
    iso_time(time(NULL), when, sizeof when);
    double bytes = (double)selected * (double)d->frame_bytes;
    jb_printf(&b, "  \"finished\": \"%s\",\n  \"seconds\": %.6f,\n  \"frames\": %llu,\n"
              "  \"gb_per_s\": %.3f,\n  \"results\": [", when, secs,
              (unsigned long long)selected, secs > 0 ? bytes / 1e9 / secs : 0.0);
    bool first = true;
    for (uint32_t k = 0; k < a->n_plugins; k++) {
        const plugin *pl = a->plugins[k];
        for (uint32_t i = 0; i < pl->n_buffers; i++) {
            if (pl->buffers[i].decl.flags & UDF_BUFFER_PRIVATE)
                continue;
            uint64_t shape[2 * UDF_MAX_DIMS];
            uint32_t ndim = results_shape(d, pl, i, shape);
            jb_printf(&b, "%s\n    {\"plugin\": ", first ? "" : ",");
            jb_str(&b, pl->desc.name);
            jb_printf(&b, ", \"buffer\": ");
            jb_str(&b, pl->buffers[i].name);
            jb_printf(&b, ", \"file\": \"%s.%s.npy\", \"kind\": \"%s\", \"shape\": ",
                      pl->desc.name, pl->buffers[i].name,
                      pl->buffers[i].decl.kind == UDF_KIND_NAV   ? "nav"
                      : pl->buffers[i].decl.kind == UDF_KIND_SIG ? "sig"
                                                                 : "single");
            jb_dims(&b, shape, ndim);
            jb_printf(&b, ", \"dtype\": \"%s\"}", dtype_name(results[k].views[i].dtype));
            first = false;
        }
    }
    jb_printf(&b, "\n  ]\n}\n");
    if (b.oom) {
        jb_free(&b);
        return NULL;
    }
    return b.s;
}

/* The result buffer named PLUGIN.BUFFER: plugin k, buffer i. UH_EUSAGE if there is none. */
static int find_result(const run_args *a, const char *spec, uint32_t *k, uint32_t *i, err *e)
{
    const char *dot = strchr(spec, '.');
    for (uint32_t p = 0; p < a->n_plugins; p++) {
        const plugin *pl = a->plugins[p];
        if (strlen(pl->desc.name) != (size_t)(dot - spec) ||
            strncmp(pl->desc.name, spec, (size_t)(dot - spec)))
            continue;
        for (uint32_t j = 0; j < pl->n_buffers; j++)
            if (!strcmp(pl->buffers[j].name, dot + 1) &&
                !(pl->buffers[j].decl.flags & UDF_BUFFER_PRIVATE)) {
                *k = p;
                *i = j;
                return 0;
            }
    }
    return err_set(e, UH_EUSAGE, "--stdout: no result buffer %s in this run", spec);
}

/* --live-every: the results so far, written as the final ones are (without the run record). */
typedef struct live_target {
    const run_args *a;
    const ds *d;
} live_target;

static int write_live(void *arg, bufset *snapshot, const uint8_t *done, uint64_t frames_done,
                      err *e)
{
    const live_target *t = arg;
    (void)done;
    (void)frames_done;
    results_opts opt = t->a->out;
    opt.record = NULL;
    return results_write(t->d, (plugin **)t->a->plugins, snapshot, t->a->n_plugins, t->a->output,
                         &opt, e);
}

int cmd_run(int argc, char **argv, err *e)
{
    run_args a = {.progress = -1};
    ds *d = NULL;
    uint8_t *roi = NULL;
    corrections corr = {0};
    bufset results[MAX_PLUGINS];
    bool have_results = false;
    /* In an MPI job every rank runs this; only rank 0 talks to the user and writes results. */
    int rank, ranks = mpi_run_world(&rank);
    err prescan_err = {0};
    cli_parse(argc, argv, run_options, unsafe_prescan, NULL, &prescan_err);
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
    if (!rc && ranks > 1 && !strcmp(a.dso.ds.path, "-"))
        rc = err_set(e, UH_EUSAGE, "standard input is not a dataset for %d MPI ranks: give a file "
                     "on a shared file system", ranks);
    if (!rc && a.isolate && ranks > 1)
        rc = err_set(e, UH_EUSAGE, "--isolate is for one process: MPI ranks are isolated already");
    if (!rc && a.isolate && !strcmp(a.dso.ds.path, "-"))
        rc = err_set(e, UH_EUSAGE, "--isolate cannot share standard input among worker processes: "
                     "give a file");
    if (!rc && a.json && a.stdout_buffer)
        rc = err_set(e, UH_EUSAGE, "--json and --stdout both write to stdout: choose one");
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
    if (a.quiet || rank)
        plugin_log_level = 0;
    if (rank) {
        a.verbose = 0;
        a.progress = 0;
    }
    if ((rc = ds_open(&a.dso.ds, &d, e)))
        goto done;
    uint64_t selected = d->num_frames;
    if (a.roi_path && (rc = runprep_roi_load(a.roi_path, d, &roi, &selected, e)))
        goto done;
    if ((rc = corr_load(&corr, d, a.dark_path, a.gain_path, a.excluded_path, e)))
        goto done;
    udf_meta meta;
    runprep_meta_fill(&meta, d, roi, selected);
    if (corr.active)
        meta.raw_dtype = corr_dtype(d->dtype);
    for (uint32_t k = 0; k < a.n_plugins && !rc; k++)
        rc = plugin_setup(a.plugins[k], &meta, e);
    if (rc || (rc = runprep_narrow(a.plugins, a.n_plugins, d, &roi, &selected, e)))
        goto done;
    uint32_t out_k = 0, out_i = 0;
    if (a.stdout_buffer && (rc = find_result(&a, a.stdout_buffer, &out_k, &out_i, e)))
        goto done;
    d->roi = roi;
    run_config c = {
        .d = d,
        .plugins = a.plugins,
        .n_plugins = a.n_plugins,
        .threads = a.threads ? (unsigned)a.threads : runprep_default_threads(),
        .roi = roi,
        .partition_bytes = a.partition_bytes,
        .corr = &corr,
        .timeout = a.timeout,
    };
    if (a.verbose)
        fprintf(stderr, "udfhost: %s: %llu frames of %llu pixels (%s), %u threads\n", d->path,
                (unsigned long long)d->num_frames, (unsigned long long)d->sig_size,
                dtype_name(d->dtype), c.threads);
    progress bar = {.frame_bytes = d->frame_bytes};
    if (a.progress == 1 || (a.progress == -1 && !a.quiet && isatty(STDERR_FILENO))) {
        c.progress = progress_update;
        c.progress_arg = &bar;
    }
    live_target live = {.a = &a, .d = d};
    if (a.live_every && !rank) {
        c.live_every = a.live_every;
        c.live = write_live;
        c.live_arg = &live;
    }
    /* Before any frame is read: a run whose results cannot fit fails now, not at its end. */
    if ((rc = budget_check(&c, e)))
        goto done;
    /* Check the output directory before reading data, a long run must not fail at its end; and
     * after the plugins accepted their parameters and the budget, so that a refused run creates
     * nothing. */
    if (!rank && (rc = results_prepare_dir(a.output, e)))
        goto done;
    if (!rank && !a.overwrite &&
        (rc = results_check_absent(d, a.plugins, a.n_plugins, a.output, &a.out, e)))
        goto done;
    time_t started = time(NULL);
    clock_gettime(CLOCK_MONOTONIC, &bar.start);
    rc = a.isolate ? isolate_execute(&c, results, e) : mpi_run_execute(&c, results, e);
    progress_end(&bar);
    if (rc || rank)
        goto done;
    have_results = true;
    double secs = seconds_since(&bar.start);
    if (a.verbose) {
        double bytes = (double)selected * (double)d->frame_bytes;
        fprintf(stderr, "udfhost: processed %llu frames (%.3g GB) in %.3f s, %.2f GB/s\n",
                (unsigned long long)selected, bytes / 1e9, secs, secs > 0 ? bytes / 1e9 / secs : 0);
    }
    char *record =
        run_record(argc, argv, &a, d, c.threads, ranks, started, secs, selected, results);
    if (!record) {
        rc = err_set(e, UH_ENOMEM, "out of memory for the run record");
        goto done;
    }
    a.out.record = record;
    rc = results_write(d, a.plugins, results, a.n_plugins, a.output, &a.out, e);
    if (!rc && a.json && (fputs(record, stdout) == EOF || fflush(stdout)))
        rc = err_sys(e, UH_EIO, errno, "stdout: cannot write the summary");
    free(record);
    if (!rc && a.stdout_buffer) {
        uint64_t shape[2 * UDF_MAX_DIMS];
        uint32_t ndim = results_shape(d, a.plugins[out_k], out_i, shape);
        const udf_view *v = &results[out_k].views[out_i];
        fflush(stdout);
        rc = npy_write_fd(STDOUT_FILENO, "stdout", v->dtype, ndim, shape, v->data, e);
    }
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
