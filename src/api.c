/* libudfhost's public API (udfhost/udfhost.h) over the engine: datasets, runs, results. */
#include <udfhost/udfhost.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "budget.h"
#include "bufs.h"
#include "config.h"
#include "corr.h"
#include "ds.h"
#include "dsopt.h"
#include "dtype.h"
#include "err.h"
#include "plugin.h"
#include "results.h"
#include "run.h"
#include "runprep.h"
#include "sig.h"

_Static_assert((int)UDFHOST_EUSAGE == UH_EUSAGE && (int)UDFHOST_EDATA == UH_EDATA &&
                   (int)UDFHOST_EPLUGIN == UH_EPLUGIN && (int)UDFHOST_EIO == UH_EIO &&
                   (int)UDFHOST_ENOMEM == UH_ENOMEM && (int)UDFHOST_EINTERNAL == UH_EINTERNAL &&
                   (int)UDFHOST_ECANCELLED == UH_EINTR,
               "the public codes are the host's");
_Static_assert(sizeof(((udfhost_error *)0)->message) == sizeof(((err *)0)->msg),
               "an err copies into a udfhost_error");

#define API_MAX_PLUGINS 64

/* The host's err into the caller's (which may be NULL); returns the code. */
static int report(const err *e, udfhost_error *out)
{
    if (out) {
        out->code = e->code;
        memcpy(out->message, e->msg, sizeof out->message);
    }
    return e->code;
}

static int fail(udfhost_error *out, int code, const char *msg)
{
    err e;
    err_set(&e, code, "%s", msg);
    return report(&e, out);
}

const char *udfhost_code_name(int code)
{
    switch (code) {
    case UDFHOST_OK: return "ok";
    case UDFHOST_EUSAGE: return "usage";
    case UDFHOST_EDATA: return "data";
    case UDFHOST_EPLUGIN: return "plugin";
    case UDFHOST_EIO: return "io";
    case UDFHOST_ENOMEM: return "memory";
    case UDFHOST_EINTERNAL: return "internal";
    case UDFHOST_ECANCELLED: return "cancelled";
    }
    return "?";
}

const char *udfhost_version(void)
{
    return PACKAGE_VERSION;
}

int udfhost_guard_bus_errors(void)
{
    return sig_guard_bus_errors() ? UDFHOST_EINTERNAL : 0;
}

/* --- datasets ------------------------------------------------------------------------------ */

struct udfhost_dataset {
    ds *d;
    char **strings; /* copies of the path and option values the options point into */
    size_t n_strings;
};

static const cli_option dataset_options[] = {DSOPT_CLI_OPTIONS, {NULL, 0, NULL, NULL, 0}};

/* The dataset option called name ('_' or '-' between words), or NULL. */
static const cli_option *dataset_option(const char *name)
{
    if (!strncmp(name, "--", 2))
        name += 2;
    for (const cli_option *o = dataset_options; o->long_name; o++) {
        size_t i = 0;
        while (o->long_name[i] && (name[i] == o->long_name[i] ||
                                   (name[i] == '_' && o->long_name[i] == '-')))
            i++;
        if (!o->long_name[i] && !name[i])
            return o;
    }
    return NULL;
}

static char *keep(udfhost_dataset *h, const char *s)
{
    char *copy = strdup(s);
    if (copy)
        h->strings[h->n_strings++] = copy;
    return copy;
}

static void dataset_free(udfhost_dataset *h)
{
    for (size_t i = 0; i < h->n_strings; i++)
        free(h->strings[i]);
    free(h->strings);
    free(h);
}

int udfhost_dataset_open(const char *path, const char *const *options, udfhost_dataset **out,
                         udfhost_error *error)
{
    *out = NULL;
    if (!path || !*path)
        return fail(error, UH_EUSAGE, "no dataset path given");
    size_t n_options = 0;
    while (options && options[2 * n_options]) {
        if (!options[2 * n_options + 1])
            return fail(error, UH_EUSAGE, "dataset options: the last name has no value");
        n_options++;
    }
    udfhost_dataset *h = calloc(1, sizeof *h);
    if (h)
        h->strings = calloc(n_options + 1, sizeof *h->strings);
    if (!h || !h->strings) {
        free(h);
        return fail(error, UH_ENOMEM, "out of memory opening a dataset");
    }
    err e = {0};
    int rc = 0;
    dsopt s = {0};
    if (!(s.ds.path = keep(h, path)))
        rc = err_set(&e, UH_ENOMEM, "out of memory opening %s", path);
    for (size_t i = 0; i < n_options && !rc; i++) {
        const char *name = options[2 * i], *value = options[2 * i + 1];
        const cli_option *o = dataset_option(name);
        if (!o) {
            rc = err_set(&e, UH_EUSAGE, "unknown dataset option '%s' (known: format, dtype, "
                         "byte_order, nav_shape, sig_shape, offset, frame_header, frame_footer, "
                         "sig_dims, hdf5_path, sync_offset, io)", name);
            break;
        }
        const char *copy = keep(h, value);
        if (!copy) {
            rc = err_set(&e, UH_ENOMEM, "out of memory opening %s", path);
            break;
        }
        if ((rc = dsopt_handle(&s, o->id, copy, &e))) {
            /* Messages name the option as the tool spells it; the caller used name. */
            char flag[64];
            snprintf(flag, sizeof flag, "--%s", o->long_name);
            if (strcmp(flag, name))
                err_rename(&e, flag, name);
        }
    }
    if (!rc)
        rc = dsopt_finish(&s, &e);
    if (!rc)
        rc = ds_open(&s.ds, &h->d, &e);
    dsopt_free(&s);
    if (rc) {
        dataset_free(h);
        return report(&e, error);
    }
    *out = h;
    return 0;
}

int udfhost_dataset_from_memory(const void *data, const char *dtype, uint32_t ndim,
                                const uint64_t *shape, uint32_t sig_dims, udfhost_dataset **out,
                                udfhost_error *error)
{
    *out = NULL;
    udf_dtype dt;
    bool big, explicit_order;
    if (!dtype || dtype_parse(dtype, &dt, &big, &explicit_order))
        return fail(error, UH_EUSAGE, "memory dataset: unknown dtype");
    if (big != host_is_big_endian())
        return fail(error, UH_EUSAGE, "memory dataset: the data must be in native byte order");
    udfhost_dataset *h = calloc(1, sizeof *h);
    if (!h)
        return fail(error, UH_ENOMEM, "out of memory for a memory dataset");
    err e = {0};
    int rc = ds_open_memory(data, dt, ndim, shape, sig_dims, &h->d, &e);
    if (rc) {
        free(h);
        return report(&e, error);
    }
    *out = h;
    return 0;
}

void udfhost_dataset_close(udfhost_dataset *h)
{
    if (!h)
        return;
    ds_close(h->d);
    dataset_free(h);
}

void udfhost_dataset_describe(const udfhost_dataset *h, udfhost_dataset_info *info)
{
    const ds *d = h->d;
    memset(info, 0, sizeof *info);
    info->path = d->path;
    info->format = d->reader->name;
    info->dtype = dtype_name(d->dtype);
    info->big_endian = d->big_endian;
    info->nav_ndim = d->nav_ndim;
    memcpy(info->nav_shape, d->nav_shape, d->nav_ndim * sizeof *d->nav_shape);
    info->sig_ndim = d->sig_ndim;
    memcpy(info->sig_shape, d->sig_shape, d->sig_ndim * sizeof *d->sig_shape);
    info->num_frames = d->num_frames;
    info->frame_bytes = d->frame_bytes;
    info->file_bytes = d->file_bytes;
    info->io = d->io ? d->io : "";
    info->sync_offset = d->sync_offset;
    info->file_frames = d->file_frames;
}

/* --- results ------------------------------------------------------------------------------- */

typedef struct api_buffer {
    char name[PLUGIN_NAME_MAX];
    udfhost_kind kind;
    udf_dtype dtype;
    uint32_t ndim;
    uint64_t shape[2 * UDF_MAX_DIMS];
    void *data;
    uint64_t bytes;
} api_buffer;

typedef struct api_plugin_result {
    char name[PLUGIN_NAME_MAX];
    bufset set;        /* owns the memory behind the buffers */
    api_buffer *buffers; /* the non-private ones */
    uint32_t n_buffers;
} api_plugin_result;

struct udfhost_results {
    uint32_t n_plugins;
    api_plugin_result *plugins;
    uint8_t *valid;    /* num_frames bytes */
    uint64_t num_frames;
    uint64_t frames_done, frames_total;
};

void udfhost_results_free(udfhost_results *res)
{
    if (!res)
        return;
    for (uint32_t k = 0; k < res->n_plugins; k++) {
        bufs_free(&res->plugins[k].set);
        free(res->plugins[k].buffers);
    }
    free(res->plugins);
    free(res->valid);
    free(res);
}

/* Results of plugins[0..n) from sets (taken: each entry is zeroed), with the valid frames (NULL:
 * all). */
static int results_make(const ds *d, plugin **plugins, uint32_t n, bufset *sets,
                        const uint8_t *valid, uint64_t done, uint64_t total,
                        udfhost_results **out, err *e)
{
    udfhost_results *res = calloc(1, sizeof *res);
    if (!res || !(res->plugins = calloc(n ? n : 1, sizeof *res->plugins)) ||
        !(res->valid = malloc(d->num_frames ? d->num_frames : 1))) {
        udfhost_results_free(res);
        return err_set(e, UH_ENOMEM, "out of memory for results");
    }
    res->n_plugins = n;
    res->num_frames = d->num_frames;
    res->frames_done = done;
    res->frames_total = total;
    if (valid)
        memcpy(res->valid, valid, d->num_frames);
    else
        memset(res->valid, 1, d->num_frames);
    for (uint32_t k = 0; k < n; k++) {
        const plugin *pl = plugins[k];
        api_plugin_result *pr = &res->plugins[k];
        snprintf(pr->name, sizeof pr->name, "%s", pl->desc.name);
        pr->set = sets[k];
        memset(&sets[k], 0, sizeof sets[k]);
        if (!(pr->buffers = calloc(pl->n_buffers ? pl->n_buffers : 1, sizeof *pr->buffers))) {
            udfhost_results_free(res);
            return err_set(e, UH_ENOMEM, "out of memory for results");
        }
        for (uint32_t i = 0; i < pl->n_buffers; i++) {
            if (pl->buffers[i].decl.flags & UDF_BUFFER_PRIVATE)
                continue;
            api_buffer *b = &pr->buffers[pr->n_buffers++];
            const udf_view *v = &pr->set.views[i];
            snprintf(b->name, sizeof b->name, "%s", pl->buffers[i].name);
            b->kind = pl->buffers[i].decl.kind == UDF_KIND_NAV   ? UDFHOST_KIND_NAV
                      : pl->buffers[i].decl.kind == UDF_KIND_SIG ? UDFHOST_KIND_SIG
                                                                 : UDFHOST_KIND_SINGLE;
            b->dtype = v->dtype;
            b->ndim = results_shape(d, pl, i, b->shape);
            b->data = v->data;
            b->bytes = v->count * v->extra_size * udf_dtype_size(v->dtype);
        }
    }
    *out = res;
    return 0;
}

uint32_t udfhost_results_plugin_count(const udfhost_results *res)
{
    return res->n_plugins;
}

const char *udfhost_results_plugin_name(const udfhost_results *res, uint32_t k)
{
    return k < res->n_plugins ? res->plugins[k].name : NULL;
}

uint32_t udfhost_results_buffer_count(const udfhost_results *res, uint32_t k)
{
    return k < res->n_plugins ? res->plugins[k].n_buffers : 0;
}

int udfhost_results_buffer(const udfhost_results *res, uint32_t k, uint32_t index,
                           udfhost_buffer *out, udfhost_error *error)
{
    if (k >= res->n_plugins || index >= res->plugins[k].n_buffers)
        return fail(error, UH_EUSAGE, "no such result buffer");
    const api_plugin_result *pr = &res->plugins[k];
    const api_buffer *b = &pr->buffers[index];
    memset(out, 0, sizeof *out);
    out->plugin = pr->name;
    out->name = b->name;
    out->kind = b->kind;
    out->dtype = dtype_name(b->dtype);
    out->descr = dtype_descr(b->dtype, host_is_big_endian());
    out->item_size = (uint32_t)udf_dtype_size(b->dtype);
    out->ndim = b->ndim;
    memcpy(out->shape, b->shape, b->ndim * sizeof *b->shape);
    out->data = b->data;
    out->bytes = b->bytes;
    return 0;
}

const uint8_t *udfhost_results_valid(const udfhost_results *res, uint64_t *num_frames)
{
    if (num_frames)
        *num_frames = res->num_frames;
    return res->valid;
}

void udfhost_results_progress(const udfhost_results *res, uint64_t *frames_done,
                              uint64_t *frames_total)
{
    if (frames_done)
        *frames_done = res->frames_done;
    if (frames_total)
        *frames_total = res->frames_total;
}

/* --- runs ---------------------------------------------------------------------------------- */

enum run_state { RUN_SETUP, RUN_EXECUTING, RUN_DONE };

struct udfhost_run {
    udfhost_dataset *ds;
    plugin *plugins[API_MAX_PLUGINS];
    uint32_t n_plugins;
    unsigned threads;
    uint64_t partition_bytes;
    uint8_t *roi;
    uint64_t selected;
    corrections corr;
    udfhost_progress_fn progress;
    void *progress_arg;
    uint64_t partial_every;
    udfhost_partial_fn partial;
    void *partial_arg;
    atomic_int cancel;
    enum run_state state;
    udfhost_results *results; /* after a successful execute, until taken */
};

int udfhost_run_create(udfhost_dataset *h, udfhost_run **out, udfhost_error *error)
{
    *out = NULL;
    if (!h)
        return fail(error, UH_EUSAGE, "no dataset given");
    udfhost_run *r = calloc(1, sizeof *r);
    if (!r)
        return fail(error, UH_ENOMEM, "out of memory for a run");
    r->ds = h;
    r->selected = h->d->num_frames;
    atomic_init(&r->cancel, 0);
    *out = r;
    return 0;
}

void udfhost_run_free(udfhost_run *r)
{
    if (!r)
        return;
    for (uint32_t k = 0; k < r->n_plugins; k++) {
        plugin_cleanup(r->plugins[k]);
        plugin_unload(r->plugins[k]);
    }
    free(r->roi);
    corr_free(&r->corr);
    udfhost_results_free(r->results);
    free(r);
}

static int setup_only(const udfhost_run *r, udfhost_error *error)
{
    if (r->state != RUN_SETUP)
        return fail(error, UH_EUSAGE, "the run was executed already: make a new one");
    return 0;
}

int udfhost_run_add_plugin(udfhost_run *r, const char *spec, const char *const *params,
                           uint32_t *index, udfhost_error *error)
{
    int rc = setup_only(r, error);
    if (rc)
        return rc;
    if (!spec || !*spec)
        return fail(error, UH_EUSAGE, "no plugin given");
    if (r->n_plugins == API_MAX_PLUGINS)
        return fail(error, UH_EUSAGE, "more than 64 plugins in one run");
    err e = {0};
    plugin *pl;
    if ((rc = plugin_load(spec, &pl, &e)))
        return report(&e, error);
    for (uint32_t i = 0; i < r->n_plugins && !rc; i++)
        if (!strcmp(r->plugins[i]->desc.name, pl->desc.name))
            rc = err_set(&e, UH_EUSAGE, "plugin %s given twice in one run", pl->desc.name);
    for (size_t i = 0; params && params[i] && !rc; i++)
        rc = plugin_param_add(pl, params[i], &e);
    if (!rc)
        rc = plugin_params_check(pl, &e);
    if (rc) {
        plugin_unload(pl);
        return report(&e, error);
    }
    if (index)
        *index = r->n_plugins;
    r->plugins[r->n_plugins++] = pl;
    return 0;
}

int udfhost_run_set_threads(udfhost_run *r, unsigned threads, udfhost_error *error)
{
    int rc = setup_only(r, error);
    if (rc)
        return rc;
    if (threads > 1024)
        return fail(error, UH_EUSAGE, "threads: at most 1024");
    r->threads = threads;
    return 0;
}

int udfhost_run_set_partition_bytes(udfhost_run *r, uint64_t bytes, udfhost_error *error)
{
    int rc = setup_only(r, error);
    if (!rc)
        r->partition_bytes = bytes;
    return rc;
}

int udfhost_run_set_roi(udfhost_run *r, const uint8_t *roi, uint64_t n, udfhost_error *error)
{
    int rc = setup_only(r, error);
    if (rc)
        return rc;
    const ds *d = r->ds->d;
    if (!roi) {
        free(r->roi);
        r->roi = NULL;
        r->selected = d->num_frames;
        return 0;
    }
    if (n != d->num_frames) {
        err e;
        err_set(&e, UH_EDATA, "ROI of %llu frames for a dataset of %llu frames",
                (unsigned long long)n, (unsigned long long)d->num_frames);
        return report(&e, error);
    }
    uint8_t *copy = malloc(n ? n : 1);
    if (!copy)
        return fail(error, UH_ENOMEM, "out of memory for the ROI");
    uint64_t selected = 0;
    for (uint64_t f = 0; f < n; f++)
        selected += copy[f] = roi[f] != 0;
    free(r->roi);
    r->roi = copy;
    r->selected = selected;
    return 0;
}

/* A udfhost_array as a corr_array named name. */
static int array_in(const udfhost_array *a, const char *name, corr_array *out, err *e)
{
    udf_dtype dt;
    bool big, explicit_order;
    if (!a->dtype || dtype_parse(a->dtype, &dt, &big, &explicit_order))
        return err_set(e, UH_EDATA, "%s: unknown dtype '%s'", name, a->dtype ? a->dtype : "");
    if (big != host_is_big_endian())
        return err_set(e, UH_EDATA, "%s: the array must be in native byte order", name);
    if (a->ndim > UDFHOST_MAX_DIMS)
        return err_set(e, UH_EDATA, "%s: more than %d dimensions", name, UDFHOST_MAX_DIMS);
    memset(out, 0, sizeof *out);
    out->name = name;
    out->data = a->data;
    out->info.dtype = dt;
    out->info.ndim = a->ndim;
    uint64_t n = 1;
    for (uint32_t i = 0; i < a->ndim; i++) {
        out->info.shape[i] = a->shape[i];
        if (__builtin_mul_overflow(n, a->shape[i], &n))
            return err_set(e, UH_EDATA, "%s: its size overflows 64 bits", name);
    }
    out->info.data_bytes = n * udf_dtype_size(dt);
    if (n && !a->data)
        return err_set(e, UH_EDATA, "%s: no data", name);
    return 0;
}

int udfhost_run_set_corrections(udfhost_run *r, const udfhost_array *dark,
                                const udfhost_array *gain, const udfhost_array *excluded,
                                udfhost_error *error)
{
    int rc = setup_only(r, error);
    if (rc)
        return rc;
    err e = {0};
    corr_array a[3];
    const udfhost_array *in[3] = {dark, gain, excluded};
    static const char *const names[3] = {"dark", "gain", "excluded_pixels"};
    for (int i = 0; i < 3 && !rc; i++)
        if (in[i])
            rc = array_in(in[i], names[i], &a[i], &e);
    corrections c;
    if (!rc)
        rc = corr_set(&c, r->ds->d, dark ? &a[0] : NULL, gain ? &a[1] : NULL,
                      excluded ? &a[2] : NULL, &e);
    if (rc)
        return report(&e, error);
    corr_free(&r->corr);
    r->corr = c;
    return 0;
}

int udfhost_run_set_correction_files(udfhost_run *r, const char *dark, const char *gain,
                                     const char *excluded, udfhost_error *error)
{
    int rc = setup_only(r, error);
    if (rc)
        return rc;
    err e = {0};
    corrections c;
    if ((rc = corr_load(&c, r->ds->d, dark, gain, excluded, &e)))
        return report(&e, error);
    corr_free(&r->corr);
    r->corr = c;
    return 0;
}

int udfhost_run_set_progress(udfhost_run *r, udfhost_progress_fn fn, void *arg,
                             udfhost_error *error)
{
    int rc = setup_only(r, error);
    if (!rc) {
        r->progress = fn;
        r->progress_arg = arg;
    }
    return rc;
}

int udfhost_run_set_partial(udfhost_run *r, uint64_t every, udfhost_partial_fn fn, void *arg,
                            udfhost_error *error)
{
    int rc = setup_only(r, error);
    if (!rc) {
        r->partial_every = fn ? every : 0;
        r->partial = fn;
        r->partial_arg = arg;
    }
    return rc;
}

void udfhost_run_cancel(udfhost_run *r)
{
    atomic_store(&r->cancel, 1);
}

/* run_config.live: the snapshot's sets become a udfhost_results for the caller's callback. */
static int live_to_partial(void *arg, bufset *sets, const uint8_t *done, uint64_t frames_done,
                           err *e)
{
    udfhost_run *r = arg;
    udfhost_results *res;
    uint64_t total = r->roi ? r->selected : r->ds->d->num_frames;
    int rc = results_make(r->ds->d, r->plugins, r->n_plugins, sets, done, frames_done, total,
                          &res, e);
    if (rc)
        return rc;
    udfhost_error ue = {0};
    rc = r->partial(r->partial_arg, res, &ue);
    if (rc) {
        if (!ue.message[0])
            snprintf(ue.message, sizeof ue.message, "the partial results callback failed");
        return err_set(e, rc, "%s", ue.message);
    }
    return 0;
}

int udfhost_run_execute(udfhost_run *r, udfhost_error *error)
{
    int rc = setup_only(r, error);
    if (rc)
        return rc;
    r->state = RUN_EXECUTING;
    err e = {0};
    ds *d = r->ds->d;
    bufset sets[API_MAX_PLUGINS];
    bool have_sets = false;
    if (!r->n_plugins)
        rc = err_set(&e, UH_EUSAGE, "no plugin given");
    udf_meta meta;
    runprep_meta_fill(&meta, d, r->roi, r->selected);
    if (r->corr.active)
        meta.raw_dtype = corr_dtype(d->dtype);
    for (uint32_t k = 0; k < r->n_plugins && !rc; k++)
        rc = plugin_setup(r->plugins[k], &meta, &e);
    if (!rc)
        rc = runprep_narrow(r->plugins, r->n_plugins, d, &r->roi, &r->selected, &e);
    run_config c = {
        .d = d,
        .plugins = r->plugins,
        .n_plugins = r->n_plugins,
        .threads = r->threads ? r->threads : runprep_default_threads(),
        .roi = r->roi,
        .partition_bytes = r->partition_bytes,
        .corr = &r->corr,
        .progress = r->progress,
        .progress_arg = r->progress_arg,
        .cancel = &r->cancel,
    };
    if (r->partial && r->partial_every) {
        c.live_every = r->partial_every;
        c.live = live_to_partial;
        c.live_arg = r;
    }
    if (!rc && atomic_load(&r->cancel))
        rc = err_set(&e, UH_EINTR, "cancelled; no results");
    if (!rc)
        rc = budget_check(&c, &e);
    if (!rc) {
        /* A stream reader drops the frames no partition asks for; mapped and memory datasets
         * ignore d->roi, and stay free for other runs at the same time. */
        bool stream = d->reader == &ds_stdin_reader;
        if (stream)
            d->roi = r->roi;
        rc = run_execute(&c, sets, &e);
        if (stream)
            d->roi = NULL;
        have_sets = !rc;
    }
    if (!rc)
        rc = results_make(d, r->plugins, r->n_plugins, sets, r->roi, r->selected, r->selected,
                          &r->results, &e);
    if (have_sets)
        for (uint32_t k = 0; k < r->n_plugins; k++)
            bufs_free(&sets[k]);
    for (uint32_t k = 0; k < r->n_plugins; k++)
        plugin_cleanup(r->plugins[k]);
    r->state = RUN_DONE;
    return rc ? report(&e, error) : 0;
}

int udfhost_run_take_results(udfhost_run *r, udfhost_results **out, udfhost_error *error)
{
    *out = r->results;
    r->results = NULL;
    if (!*out)
        return fail(error, UH_EUSAGE, "no results: the run did not execute successfully, or they "
                    "were taken already");
    return 0;
}
