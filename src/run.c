/* The runner: each partition runs on a pool worker (read -> convert -> every plugin's process
 * hook, tile by tile), and the calling thread merges finished partitions in partition order. */
#include "run.h"

#include <setjmp.h>
#include <signal.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "convert.h"
#include "dtype.h"
#include "plan.h"
#include "sig.h"
#include "pool.h"

/* Tile dtypes the plugins of a run ask for: float32, float64 and the raw dtype at most. */
#define MAX_TARGETS 3

typedef struct worker {
    void *tile[MAX_TARGETS]; /* depth x band pixels of each target dtype */
    void *whole;             /* a whole partition, for process_partition */
    size_t whole_cap;
    void *scratch;           /* for readers that decode or assemble frames */
    size_t scratch_cap;
    uint64_t *nav_index;     /* flat nav index of each frame of the tile (or partition) */
    size_t nav_cap;
    udf_view *views;         /* the current hook's views */
    udf_ctx ctx;
    hook_call call;
} worker;

struct runner {
    const run_config *c;
    ds *d;
    plan plan;
    uint64_t depth;      /* frames per tile */
    uint64_t rows;       /* extent of the first sig axis */
    uint64_t row_pixels; /* pixels per row of the first sig axis */
    uint64_t band_rows;  /* rows per tile */
    bool swap;           /* stored byte order differs from the host's */
    udf_dtype targets[MAX_TARGETS];
    uint32_t n_targets;
    uint32_t *target_of; /* per plugin: index into targets */
    uint32_t max_buffers;
    bool any_tiled;      /* some plugin uses process_tile or process_frame */
    worker *workers;
    unsigned n_workers;
    unsigned window;
    bufset *ring;        /* window slots x n_plugins partition buffer sets */
    bufset *results;
    udf_view *merge_dest, *merge_src;
    udf_ctx main_ctx;
    hook_call main_call;
    uint64_t frames_done;      /* selected frames of the partitions merged so far */
    uint64_t merged;           /* partitions merged so far */
    uint8_t *done;             /* live results: per frame, merged and selected */
    uint64_t frames_total;
    pthread_mutex_t fail_lock; /* protects fail_index and fail */
    uint64_t fail_index;
    err fail;
    pool *pool;
    /* The current run_partitions call: job j of the pool is partition batch[j], and each finished
     * one goes to deliver (on the calling thread, in job order). */
    const uint64_t *batch;
    run_deliver_fn deliver;
    void *deliver_arg;
    sig_call *calls;         /* n_workers + 1: the workers', then the merging thread's */
    sig_call *own_calls;     /* calls, when the runner allocated them */
    pthread_t watchdog;      /* --plugin-timeout */
    bool watching;
    bool watch_stop;         /* protected by watch_lock */
    pthread_mutex_t watch_lock;
    pthread_cond_t watch_wake;
};

static void record_failure(runner *r, uint64_t index, const err *e)
{
    pthread_mutex_lock(&r->fail_lock);
    if (index < r->fail_index) {
        r->fail_index = index;
        r->fail = *e;
    }
    pthread_mutex_unlock(&r->fail_lock);
}

/* The merging thread's context for a hook of pl, its call noted for a crash report and the
 * watchdog; the caller notes sig_note_idle() when the hook returned. */
static void main_ctx(runner *r, plugin *pl, const char *hook, int64_t partition)
{
    plugin_ctx_init(&r->main_ctx, &r->main_call, pl, hook);
    sig_note_call(pl->desc.name, hook, partition);
}

static udf_ctx *worker_ctx(worker *w, plugin *pl, const char *hook, const udf_partition *part)
{
    plugin_ctx_init(&w->ctx, &w->call, pl, hook);
    sig_note_call(pl->desc.name, hook, (int64_t)part->index);
    w->ctx.partition = part;
    w->ctx.buffers = w->views;
    w->ctx.num_buffers = pl->n_buffers;
    return &w->ctx;
}

/* Data of target t for frames raw[i * stride] (i < n), pixels [p0, p0 + np): a pointer into the
 * raw data when no conversion is needed, else converted into buf. */
static const void *tile_make(const runner *r, uint32_t t, const unsigned char *raw, size_t stride,
                             uint64_t n, uint64_t p0, uint64_t np, void *buf, uint64_t *fstride)
{
    udf_dtype dt = r->targets[t], raw_dt = r->d->dtype;
    size_t raw_elem = r->d->elem_size, elem = udf_dtype_size(dt);
    const corrections *corr = r->c->corr;
    bool correct = corr && corr->active;
    if (dt == raw_dt && !r->swap && !correct && ((uintptr_t)raw | stride) % elem == 0) {
        *fstride = stride / elem;
        return raw + p0 * elem;
    }
    for (uint64_t i = 0; i < n; i++)
        convert_run((char *)buf + i * np * elem, dt, raw + i * stride + p0 * raw_elem, raw_dt,
                    r->swap, np);
    if (correct)
        corr_apply(corr, buf, dt, n, np, p0, np, r->d->sig_size);
    *fstride = np;
    return buf;
}

static void tile_shape(const runner *r, udf_tile *t, uint64_t row0, uint64_t nrows)
{
    const ds *d = r->d;
    t->struct_size = sizeof *t;
    t->sig_ndim = d->sig_ndim;
    for (uint32_t k = 0; k < d->sig_ndim; k++) {
        t->sig_origin[k] = 0;
        t->sig_shape[k] = d->sig_shape[k];
    }
    t->sig_origin[0] = row0;
    t->sig_shape[0] = nrows;
    t->sig_start = row0 * r->row_pixels;
    t->sig_count = nrows * r->row_pixels;
}

static int grow(void **buf, size_t *cap, size_t need, err *e);

/* A stop was asked for: by SIGINT or SIGTERM (the tool's handlers), or through c->cancel. */
static bool stop_requested(const run_config *c)
{
    return sig_stop_requested() || (c->cancel && atomic_load(c->cancel));
}

static int stopped(err *e)
{
    if (!sig_stop_requested())
        return err_set(e, UH_EINTR, "cancelled; no results");
    return err_set(e, UH_EINTR, "stopped by %s; no results written",
                   sig_stop_signal() == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* The tile and frame hooks over all selected frames of one partition. */
static int run_tiles(runner *r, worker *w, const udf_partition *part, bufset *sets, err *e)
{
    const run_config *c = r->c;
    ds *d = r->d;
    uint64_t f = part->frame_start, end = part->frame_start + part->frame_count, item = 0;
    while (f < end) {
        if (stop_requested(c))
            return stopped(e);
        uint64_t n = 1;
        if (c->roi) {
            while (f < end && !c->roi[f])
                f++;
            if (f == end)
                break;
            while (n < r->depth && f + n < end && c->roi[f + n])
                n++;
        } else {
            n = end - f < r->depth ? end - f : r->depth;
        }
        const unsigned char *raw;
        size_t stride;
        int rc = grow(&w->scratch, &w->scratch_cap, n * d->frame_bytes, e);
        if (!rc)
            rc = ds_read(d, f, n, w->scratch, &raw, &stride, e);
        if (rc)
            return rc;
        for (uint64_t i = 0; i < n; i++)
            w->nav_index[i] = f + i;
        for (uint64_t row0 = 0; row0 < r->rows; row0 += r->band_rows) {
            uint64_t nrows = r->rows - row0 < r->band_rows ? r->rows - row0 : r->band_rows;
            udf_tile tile;
            tile_shape(r, &tile, row0, nrows);
            tile.nav_index = w->nav_index;
            tile.item_start = item;
            tile.depth = n;
            const void *data[MAX_TARGETS];
            uint64_t fstride[MAX_TARGETS];
            for (uint32_t t = 0; t < r->n_targets; t++)
                data[t] = tile_make(r, t, raw, stride, n, tile.sig_start, tile.sig_count,
                                    w->tile[t], &fstride[t]);
            for (uint32_t k = 0; k < c->n_plugins; k++) {
                plugin *pl = c->plugins[k];
                uint32_t t = r->target_of[k];
                if (pl->method == PLUGIN_PROCESS_TILE) {
                    tile.data = data[t];
                    tile.frame_stride = fstride[t];
                    bufs_views_tile(&sets[k], w->views, item, n, tile.sig_start, tile.sig_count);
                    udf_ctx *ctx = worker_ctx(w, pl, "process_tile", part);
                    rc = pl->desc.process_tile(ctx, &tile);
                    sig_note_idle();
                    if (rc)
                        return plugin_hook_failed(&w->call, rc, (int64_t)part->index, e);
                } else if (pl->method == PLUGIN_PROCESS_FRAME) {
                    /* Bands are never cut when a process_frame plugin runs. */
                    size_t elem = udf_dtype_size(r->targets[t]);
                    udf_tile one = tile;
                    one.depth = 1;
                    one.frame_stride = fstride[t];
                    for (uint64_t i = 0; i < n; i++) {
                        one.data = (const char *)data[t] + i * fstride[t] * elem;
                        one.nav_index = w->nav_index + i;
                        one.item_start = item + i;
                        bufs_views_tile(&sets[k], w->views, item + i, 1, 0, d->sig_size);
                        udf_ctx *ctx = worker_ctx(w, pl, "process_frame", part);
                        rc = pl->desc.process_frame(ctx, &one);
                        sig_note_idle();
                        if (rc)
                            return plugin_hook_failed(&w->call, rc, (int64_t)part->index, e);
                    }
                }
            }
        }
        item += n;
        f += n;
    }
    return 0;
}

static int grow(void **buf, size_t *cap, size_t need, err *e)
{
    if (need <= *cap)
        return 0;
    void *p = realloc(*buf, need);
    if (!p)
        return err_set(e, UH_ENOMEM, "out of memory for a partition buffer (%.1f MiB)",
                       need / 1048576.0);
    *buf = p;
    *cap = need;
    return 0;
}

/* process_partition for plugin k: all selected frames converted into one buffer. */
static int run_whole(runner *r, worker *w, uint32_t k, const udf_partition *part, bufset *set,
                     err *e)
{
    const run_config *c = r->c;
    ds *d = r->d;
    plugin *pl = c->plugins[k];
    udf_dtype dt = pl->meta.input_dtype;
    size_t elem = udf_dtype_size(dt);
    size_t nav_cap_bytes = w->nav_cap * sizeof *w->nav_index;
    int rc = grow(&w->whole, &w->whole_cap, part->selected * d->sig_size * elem, e);
    if (!rc)
        rc = grow((void **)&w->nav_index, &nav_cap_bytes, part->selected * sizeof *w->nav_index, e);
    if (rc)
        return rc;
    w->nav_cap = nav_cap_bytes / sizeof *w->nav_index;
    uint64_t item = 0;
    for (uint64_t f = part->frame_start; f < part->frame_start + part->frame_count; f++) {
        if (c->roi && !c->roi[f])
            continue;
        if (stop_requested(c))
            return stopped(e);
        const unsigned char *raw;
        size_t stride;
        if ((rc = grow(&w->scratch, &w->scratch_cap, d->frame_bytes, e)) ||
            (rc = ds_read(d, f, 1, w->scratch, &raw, &stride, e)))
            return rc;
        void *frame = (char *)w->whole + item * d->sig_size * elem;
        convert_run(frame, dt, raw, d->dtype, r->swap, d->sig_size);
        if (c->corr && c->corr->active)
            corr_apply(c->corr, frame, dt, 1, d->sig_size, 0, d->sig_size, d->sig_size);
        w->nav_index[item++] = f;
    }
    udf_tile all;
    tile_shape(r, &all, 0, r->rows);
    all.data = w->whole;
    all.depth = part->selected;
    all.frame_stride = d->sig_size;
    all.nav_index = w->nav_index;
    all.item_start = 0;
    bufs_views_tile(set, w->views, 0, part->selected, 0, d->sig_size);
    udf_ctx *ctx = worker_ctx(w, pl, "process_partition", part);
    rc = pl->desc.process_partition(ctx, &all);
    sig_note_idle();
    if (rc)
        return plugin_hook_failed(&w->call, rc, (int64_t)part->index, e);
    return 0;
}

static int run_partition(runner *r, worker *w, const udf_partition *part, bufset *sets, err *e)
{
    const run_config *c = r->c;
    int rc;
    for (uint32_t k = 0; k < c->n_plugins; k++) {
        plugin *pl = c->plugins[k];
        if (!pl->desc.preprocess)
            continue;
        bufs_views_tile(&sets[k], w->views, 0, part->selected, 0, r->d->sig_size);
        udf_ctx *ctx = worker_ctx(w, pl, "preprocess", part);
        rc = pl->desc.preprocess(ctx);
        sig_note_idle();
        if (rc)
            return plugin_hook_failed(&w->call, rc, (int64_t)part->index, e);
    }
    if (r->any_tiled && (rc = run_tiles(r, w, part, sets, e)))
        return rc;
    for (uint32_t k = 0; k < c->n_plugins; k++)
        if (c->plugins[k]->method == PLUGIN_PROCESS_PARTITION &&
            (rc = run_whole(r, w, k, part, &sets[k], e)))
            return rc;
    for (uint32_t k = 0; k < c->n_plugins; k++) {
        plugin *pl = c->plugins[k];
        if (!pl->desc.postprocess)
            continue;
        bufs_views_tile(&sets[k], w->views, 0, part->selected, 0, r->d->sig_size);
        udf_ctx *ctx = worker_ctx(w, pl, "postprocess", part);
        rc = pl->desc.postprocess(ctx);
        sig_note_idle();
        if (rc)
            return plugin_hook_failed(&w->call, rc, (int64_t)part->index, e);
    }
    return 0;
}

static bufset *ring_slot(runner *r, uint64_t index)
{
    return &r->ring[(index % r->window) * r->c->n_plugins];
}

static udf_partition part_info(uint64_t index, const plan_part *pp)
{
    udf_partition part = {
        .struct_size = sizeof part,
        .index = index,
        .frame_start = pp->frame_start,
        .frame_count = pp->frame_count,
        .selected = pp->selected,
    };
    return part;
}

/* run_partition with SIGBUS caught: a mapped file that shrank, or whose storage failed, while
 * it was read ends this partition with an error instead of killing the process. */
static int guarded_partition(runner *r, worker *w, const udf_partition *part, bufset *sets,
                             err *e)
{
    sigjmp_buf jb;
    if (sigsetjmp(jb, 1)) {
        sig_guard_clear();
        return err_set(e, UH_EDATA,
                       "%s: the file changed or could not be read while mapped (SIGBUS) in "
                       "frames %llu..%llu",
                       r->d->path, (unsigned long long)part->frame_start,
                       (unsigned long long)(part->frame_start + part->frame_count - 1));
    }
    sig_guard_set(&jb);
    int rc = run_partition(r, w, part, sets, e);
    sig_guard_clear();
    return rc;
}

static int job(void *arg, unsigned worker_id, uint64_t j)
{
    runner *r = arg;
    const run_config *c = r->c;
    uint64_t index = r->batch[j];
    const plan_part *pp = &r->plan.parts[index];
    if (!pp->selected)
        return 0;
    bufset *sets = ring_slot(r, j);
    udf_partition part = part_info(index, pp);
    err e = {0};
    int rc = 0;
    sig_watch(&r->calls[worker_id]);
    for (uint32_t k = 0; k < c->n_plugins && !rc; k++)
        rc = bufs_alloc(c->plugins[k], &sets[k], pp->selected, r->d->sig_size, false, &e);
    if (!rc)
        rc = guarded_partition(r, &r->workers[worker_id], &part, sets, &e);
    sig_note_idle();
    ds_release(r->d, pp->frame_start, pp->frame_count);
    if (rc) {
        for (uint32_t k = 0; k < c->n_plugins; k++)
            bufs_free(&sets[k]);
        record_failure(r, index, &e);
    }
    return rc;
}

/* get_results on a copy of the merged results, with frames not yet merged left out, for c->live. */
static int live_snapshot(runner *r, err *e)
{
    const run_config *c = r->c;
    bufset snap[c->n_plugins];
    int rc = 0;
    uint32_t made = 0;
    for (; made < c->n_plugins && !rc; made++) {
        plugin *pl = c->plugins[made];
        rc = bufs_alloc(pl, &snap[made], r->d->num_frames, r->d->sig_size, true, e);
        if (rc)
            break;
        for (uint32_t i = 0; i < snap[made].n; i++) {
            const udf_view *from = &r->results[made].views[i];
            memcpy(snap[made].views[i].data, from->data,
                   from->count * from->extra_size * udf_dtype_size(from->dtype));
        }
        /* A plugin without buffers (its results are files of its own) is not asked early. */
        if (pl->n_buffers && pl->desc.get_results) {
            main_ctx(r, pl, "get_results", -1);
            r->main_ctx.buffers = snap[made].views;
            r->main_ctx.num_buffers = snap[made].n;
            rc = pl->desc.get_results(&r->main_ctx);
            sig_note_idle();
            if (rc)
                rc = plugin_hook_failed(&r->main_call, rc, -1, e);
        }
        bufs_fill_unselected(&snap[made], r->done, r->d->num_frames);
    }
    if (!rc)
        rc = c->live(c->live_arg, snap, r->done, r->frames_done, e);
    for (uint32_t k = 0; k < made; k++)
        bufs_free(&snap[k]);
    return rc;
}

/* Job j finished: its buffers go to deliver, which owns them from now on. */
static int consume(void *arg, uint64_t j)
{
    runner *r = arg;
    uint64_t index = r->batch[j];
    bufset *sets = ring_slot(r, j);
    err e = {0};
    int rc = r->deliver(r->deliver_arg, index, sets, &e);
    memset(sets, 0, r->c->n_plugins * sizeof *sets);
    if (rc)
        record_failure(r, index, &e);
    return rc;
}

int run_merge(runner *r, uint64_t index, bufset *sets, err *e)
{
    const run_config *c = r->c;
    const plan_part *pp = &r->plan.parts[index];
    int rc = 0;
    for (uint32_t k = 0; k < c->n_plugins; k++) {
        plugin *pl = c->plugins[k];
        if (!rc && pp->selected) {
            bufs_place_nav(&r->results[k], &sets[k], pp->frame_start, pp->frame_count, c->roi);
            if (pl->desc.merge) {
                bufs_views_merge(&r->results[k], r->merge_dest);
                bufs_views_merge(&sets[k], r->merge_src);
                main_ctx(r, pl, "merge", (int64_t)index);
                udf_partition part = part_info(index, pp);
                r->main_ctx.partition = &part;
                r->main_ctx.buffers = r->merge_dest;
                r->main_ctx.num_buffers = pl->n_buffers;
                rc = pl->desc.merge(&r->main_ctx, r->merge_dest, r->merge_src);
                sig_note_idle();
                if (rc)
                    rc = plugin_hook_failed(&r->main_call, rc, (int64_t)index, e);
            }
        }
        bufs_free(&sets[k]);
    }
    r->frames_done += pp->selected;
    if (!rc && c->progress)
        c->progress(c->progress_arg, r->frames_done, r->frames_total);
    if (!rc && r->done) {
        for (uint64_t f = pp->frame_start; f < pp->frame_start + pp->frame_count; f++)
            r->done[f] = !c->roi || c->roi[f];
        if (++r->merged % c->live_every == 0 && r->merged < r->plan.count)
            rc = live_snapshot(r, e);
    }
    return rc;
}

/* Tile geometry and conversion targets for the run's plugins. */
static void runner_plan_tiles(runner *r)
{
    const run_config *c = r->c;
    const ds *d = r->d;
    bool full_frames = false;
    uint64_t preferred = 0;
    size_t widest = 1;
    for (uint32_t k = 0; k < c->n_plugins; k++) {
        const plugin *pl = c->plugins[k];
        udf_dtype dt = pl->meta.input_dtype;
        uint32_t t = 0;
        while (t < r->n_targets && r->targets[t] != dt)
            t++;
        if (t == r->n_targets)
            r->targets[r->n_targets++] = dt;
        r->target_of[k] = t;
        if (pl->n_buffers > r->max_buffers)
            r->max_buffers = pl->n_buffers;
        if (pl->method == PLUGIN_PROCESS_PARTITION)
            continue;
        r->any_tiled = true;
        if (pl->method == PLUGIN_PROCESS_FRAME || (pl->desc.tiling & UDF_TILE_FULL_FRAMES))
            full_frames = true;
        if (pl->desc.tile_depth && (!preferred || pl->desc.tile_depth < preferred))
            preferred = pl->desc.tile_depth;
        if (udf_dtype_size(dt) > widest)
            widest = udf_dtype_size(dt);
    }
    /* Excluded pixels are patched from their neighbours, which a band of rows may not hold. */
    if (c->corr && c->corr->n_excluded)
        full_frames = true;
    r->rows = d->sig_shape[0];
    r->row_pixels = d->sig_size / r->rows;
    plan_tiles(d->sig_size, r->rows, widest, preferred, full_frames, &r->depth, &r->band_rows);
    r->swap = d->elem_size > 1 && d->big_endian != host_is_big_endian();
}

static void runner_free(runner *r)
{
    if (r->workers)
        for (unsigned i = 0; i < r->n_workers; i++) {
            worker *w = &r->workers[i];
            for (uint32_t t = 0; t < MAX_TARGETS; t++)
                free(w->tile[t]);
            free(w->whole);
            free(w->scratch);
            free(w->nav_index);
            free(w->views);
        }
    free(r->workers);
    if (r->ring)
        for (size_t i = 0; i < (size_t)r->window * r->c->n_plugins; i++)
            bufs_free(&r->ring[i]);
    free(r->ring);
    free(r->merge_dest);
    free(r->merge_src);
    free(r->target_of);
    free(r->done);
    free(r->own_calls);
    plan_free(&r->plan);
    pthread_mutex_destroy(&r->fail_lock);
    pthread_mutex_destroy(&r->watch_lock);
    pthread_cond_destroy(&r->watch_wake);
}

static int plan_run(const run_config *c, plan *p, err *e)
{
    const ds *d = c->d;
    /* Chunked storage: partitions end on chunk boundaries of the file's frames. */
    uint64_t align = d->frames_per_chunk > 1 ? d->frames_per_chunk : 1;
    int64_t off = d->sync_offset % (int64_t)align;
    return plan_partitions(d->num_frames, d->frame_bytes, c->partition_bytes, align,
                           (uint64_t)(off < 0 ? off + (int64_t)align : off), c->roi, p, e);
}

int run_partition_bytes(const run_config *c, uint64_t *bytes, err *e)
{
    plan p = {0};
    int rc = plan_run(c, &p, e);
    uint64_t most = 0;
    for (uint64_t i = 0; !rc && i < p.count; i++)
        if (p.parts[i].selected > most)
            most = p.parts[i].selected;
    plan_free(&p);
    *bytes = 0;
    for (uint32_t k = 0; k < c->n_plugins && !rc && most; k++) {
        uint64_t need = bufs_bytes(c->plugins[k], most, c->d->sig_size, false);
        if (need == UINT64_MAX || need > UINT64_MAX - *bytes)
            return err_set(e, UH_ENOMEM, "out of memory for partition buffers (their size "
                           "overflows)");
        *bytes += need;
    }
    return rc;
}

static int runner_init(runner *r, const run_config *c, err *e)
{
    const ds *d = c->d;
    int rc = plan_run(c, &r->plan, e);
    if (rc)
        return rc;
    if (!(r->target_of = calloc(c->n_plugins, sizeof *r->target_of)))
        return err_set(e, UH_ENOMEM, "out of memory");
    for (uint64_t i = 0; i < r->plan.count; i++)
        r->frames_total += r->plan.parts[i].selected;
    if (c->live_every && c->live && !(r->done = calloc(d->num_frames ? d->num_frames : 1, 1)))
        return err_set(e, UH_ENOMEM, "out of memory for live results");
    runner_plan_tiles(r);
    r->n_workers = c->threads;
    r->window = 2 * c->threads;
    r->workers = calloc(r->n_workers, sizeof *r->workers);
    r->ring = calloc((size_t)r->window * c->n_plugins, sizeof *r->ring);
    r->merge_dest = calloc(r->max_buffers + 1, sizeof *r->merge_dest);
    r->merge_src = calloc(r->max_buffers + 1, sizeof *r->merge_src);
    r->calls = c->calls ? c->calls : (r->own_calls = calloc(r->n_workers + 1, sizeof *r->calls));
    if (!r->workers || !r->ring || !r->merge_dest || !r->merge_src || !r->calls)
        return err_set(e, UH_ENOMEM, "out of memory");
    sig_watch(&r->calls[r->n_workers]);
    uint64_t band_pixels = r->band_rows * r->row_pixels;
    for (unsigned i = 0; i < r->n_workers; i++) {
        worker *w = &r->workers[i];
        w->views = calloc(r->max_buffers + 1, sizeof *w->views);
        w->nav_cap = r->depth;
        w->nav_index = calloc(w->nav_cap, sizeof *w->nav_index);
        if (!w->views || !w->nav_index)
            return err_set(e, UH_ENOMEM, "out of memory");
        for (uint32_t t = 0; t < r->n_targets && r->any_tiled; t++) {
            size_t bytes = r->depth * band_pixels * udf_dtype_size(r->targets[t]);
            if (!(w->tile[t] = aligned_alloc(64, (bytes + 63) & ~(size_t)63)))
                return err_set(e, UH_ENOMEM, "out of memory for tile buffers");
        }
    }
    return 0;
}

int run_timed_out(const sig_call *call, double timeout, err *e)
{
    const char *name = atomic_load(&call->plugin), *hook = atomic_load(&call->hook);
    int64_t partition = atomic_load(&call->partition);
    char where[48] = "";
    if (partition >= 0)
        snprintf(where, sizeof where, " on partition %lld", (long long)partition);
    return err_set(e, UH_EPLUGIN, "plugin %s did not return from %s%s within %g s (--plugin-timeout)",
                   name ? name : "?", hook ? hook : "?", where, timeout);
}

/* --plugin-timeout: a plugin call running longer than c->timeout ends the process. A thread
 * cannot be stopped from outside, and a hung hook may hold any lock, so the run cannot end
 * normally; nothing is lost, as result files appear only by rename after a complete run. */
static void *watchdog(void *arg)
{
    runner *r = arg;
    int64_t limit = (int64_t)(r->c->timeout * 1e9);
    int64_t tick = limit / 4 < 50000000 ? limit / 4 : 50000000;
    pthread_mutex_lock(&r->watch_lock);
    while (!r->watch_stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        int64_t ns = until.tv_nsec + tick;
        until.tv_sec += ns / 1000000000;
        until.tv_nsec = ns % 1000000000;
        pthread_cond_timedwait(&r->watch_wake, &r->watch_lock, &until);
        int64_t now = sig_now();
        for (unsigned i = 0; i <= r->n_workers && !r->watch_stop; i++) {
            int64_t since = atomic_load(&r->calls[i].since);
            if (since && now - since > limit) {
                err e;
                run_timed_out(&r->calls[i], r->c->timeout, &e);
                fprintf(stderr, "udfhost: %s\n", e.msg);
                _exit(err_exit_status(e.code));
            }
        }
    }
    pthread_mutex_unlock(&r->watch_lock);
    return NULL;
}

int run_begin(const run_config *c, bufset *results, runner **out, err *e)
{
    /* Cleared first: the caller frees them whatever this returns. */
    if (results)
        memset(results, 0, c->n_plugins * sizeof *results);
    runner *r = calloc(1, sizeof *r);
    *out = r;
    if (!r)
        return err_set(e, UH_ENOMEM, "out of memory");
    r->c = c;
    r->d = c->d;
    r->results = results;
    r->fail_index = UINT64_MAX;
    pthread_mutex_init(&r->fail_lock, NULL);
    pthread_mutex_init(&r->watch_lock, NULL);
    pthread_cond_init(&r->watch_wake, NULL);
    int rc = runner_init(r, c, e);
    for (uint32_t k = 0; k < c->n_plugins && results && !rc; k++) {
        rc = bufs_alloc(c->plugins[k], &results[k], c->d->num_frames, c->d->sig_size, true, e);
        if (!rc)
            bufs_fill_unselected(&results[k], c->roi, c->d->num_frames);
    }
    if (!rc && !(r->pool = pool_create(c->threads)))
        rc = err_set(e, UH_ENOMEM, "cannot start %u worker threads", c->threads);
    if (!rc && c->timeout > 0) {
        if (pthread_create(&r->watchdog, NULL, watchdog, r))
            rc = err_set(e, UH_ENOMEM, "cannot start the --plugin-timeout watchdog thread");
        else
            r->watching = true;
    }
    return rc;
}

uint64_t run_partition_count(const runner *r)
{
    return r->plan.count;
}

uint64_t run_partition_selected(const runner *r, uint64_t index)
{
    return r->plan.parts[index].selected;
}

int run_partitions(runner *r, const uint64_t *indices, uint64_t n, run_deliver_fn deliver,
                   void *arg, err *e)
{
    r->batch = indices;
    r->deliver = deliver;
    r->deliver_arg = arg;
    int rc = pool_run(r->pool, n, r->window, job, consume, r);
    if (rc && r->fail_index != UINT64_MAX) {
        *e = r->fail;
        rc = e->code;
    } else if (rc)
        err_set(e, rc, "processing failed (status %d)", rc);
    return rc;
}

int run_finish(runner *r, err *e)
{
    const run_config *c = r->c;
    int rc = 0;
    for (uint32_t k = 0; k < c->n_plugins && !rc; k++) {
        plugin *pl = c->plugins[k];
        if (!pl->desc.get_results)
            continue;
        main_ctx(r, pl, "get_results", -1);
        r->main_ctx.buffers = r->results[k].views;
        r->main_ctx.num_buffers = r->results[k].n;
        rc = pl->desc.get_results(&r->main_ctx);
        sig_note_idle();
        if (rc)
            rc = plugin_hook_failed(&r->main_call, rc, -1, e);
        /* get_results computes every frame; outside the ROI the result stays NaN or 0. */
        bufs_fill_unselected(&r->results[k], c->roi, c->d->num_frames);
    }
    return rc;
}

void run_end(runner *r)
{
    if (!r)
        return;
    if (r->watching) {
        pthread_mutex_lock(&r->watch_lock);
        r->watch_stop = true;
        pthread_cond_signal(&r->watch_wake);
        pthread_mutex_unlock(&r->watch_lock);
        pthread_join(r->watchdog, NULL);
    }
    pool_destroy(r->pool);
    sig_watch(NULL);
    runner_free(r);
    free(r);
}

/* One process: every partition in order, each merged as soon as it is its turn. */
static int merge_now(void *arg, uint64_t index, bufset *sets, err *e)
{
    return run_merge(arg, index, sets, e);
}

int run_execute(const run_config *c, bufset *results, err *e)
{
    runner *r;
    uint64_t *all = NULL;
    int rc = run_begin(c, results, &r, e);
    if (!rc && !(all = malloc((r->plan.count ? r->plan.count : 1) * sizeof *all)))
        rc = err_set(e, UH_ENOMEM, "out of memory");
    for (uint64_t i = 0; !rc && i < r->plan.count; i++)
        all[i] = i;
    if (!rc)
        rc = run_partitions(r, all, r->plan.count, merge_now, r, e);
    if (!rc)
        rc = run_finish(r, e);
    free(all);
    run_end(r);
    if (rc)
        for (uint32_t k = 0; k < c->n_plugins; k++)
            bufs_free(&results[k]);
    return rc;
}
