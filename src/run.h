/* The runner: partitions on the thread pool, tiles through every plugin, merges in partition
 * order on the calling thread, then get_results. */
#ifndef UDFHOST_RUN_H
#define UDFHOST_RUN_H

#include <stdatomic.h>
#include <stdint.h>

#include "bufs.h"
#include "corr.h"
#include "ds.h"
#include "err.h"
#include "plugin.h"
#include "sig.h"

typedef struct run_config {
    ds *d;
    plugin **plugins;        /* set up with plugin_setup */
    uint32_t n_plugins;
    unsigned threads;        /* >= 1 */
    const uint8_t *roi;      /* NULL or d->num_frames bytes, non-zero = selected */
    uint64_t partition_bytes; /* 0: PLAN_PARTITION_BYTES */
    const corrections *corr; /* NULL or the corrections applied to every tile */
    /* Called on the calling thread after each partition is merged, with the selected frames
     * merged so far and in all; NULL for none. */
    void (*progress)(void *arg, uint64_t frames_done, uint64_t frames_total);
    void *progress_arg;
    /* Live results: after every live_every merged partitions (0: never), the results so far, as
     * get_results makes them from a copy of the merged buffers, with nav items of frames not yet
     * processed NaN or 0, are handed to live() on the calling thread, with done (num_frames
     * bytes: 1 for the selected frames merged so far) and the count of those frames. live() may
     * keep any of the n_plugins sets by taking it and zeroing the entry; the runner frees the
     * rest, and done stays the runner's. A failure ends the run. */
    uint64_t live_every;
    int (*live)(void *arg, bufset *results, const uint8_t *done, uint64_t frames_done, err *e);
    void *live_arg;
    /* Set non-zero from any thread to stop the run: workers notice between tiles and the run ends
     * with UH_EINTR. NULL: only SIGINT/SIGTERM (sig_stop_requested) stop it. */
    const atomic_int *cancel;
    /* --plugin-timeout: a plugin hook call still running after this many seconds ends the process
     * with a message naming plugin, hook and partition (0: no limit). */
    double timeout;
    /* Where each worker (calls[0..threads)) and the merging thread (calls[threads]) publish their
     * current plugin call; NULL: the runner keeps its own. --isolate passes shared memory. */
    sig_call *calls;
} run_config;

/* Process the dataset with every plugin. On success results[i] holds plugin i's whole result
 * (after get_results); the caller frees them with bufs_free. On failure nothing is left allocated
 * and the message names the plugin, hook and partition, or the dataset and offset. */
int run_execute(const run_config *c, bufset *results, err *e);

/* The same run in steps, for callers that decide themselves which partitions this process
 * computes and when each is merged (mpi_run.c). Partitions are numbered 0..run_partition_count-1
 * by the plan, which depends only on the dataset, ROI and partition size, so every process that
 * opens the same dataset with the same options numbers them alike. */
typedef struct runner runner;

/* Plan the partitions and start c->threads workers. results: NULL for a process that only
 * computes partitions, else n_plugins sets allocated here (the caller frees them with bufs_free,
 * also on failure). *r is set even on failure; the caller ends it with run_end. */
int run_begin(const run_config *c, bufset *results, runner **r, err *e);

uint64_t run_partition_count(const runner *r);

/* Bytes of the buffers of every plugin for the largest partition c's plan makes: room for one
 * computed partition (as run_deliver_fn receives it). */
int run_partition_bytes(const run_config *c, uint64_t *bytes, err *e);

/* Frames of partition index that the ROI selects: its nav buffers hold that many items. */
uint64_t run_partition_selected(const runner *r, uint64_t index);

/* Called on the thread that called run_partitions, once per finished partition, in the order of
 * the indices given: sets are n_plugins partition buffer sets (data NULL for a partition without
 * selected frames), which the callee owns and frees with bufs_free, also when it fails. Returns 0
 * or a negative status, which stops the run. */
typedef int (*run_deliver_fn)(void *arg, uint64_t index, bufset *sets, err *e);

/* Compute partitions indices[0..n) on the workers and hand each to deliver. Not reentrant: one
 * call per runner at a time. On failure the message of the lowest failed partition is in e. */
int run_partitions(runner *r, const uint64_t *indices, uint64_t n, run_deliver_fn deliver,
                   void *arg, err *e);

/* Merge partition index into the results (nav items placed, merge hook called), then report
 * progress and live results. Partitions must be merged in index order, each once, all on one
 * thread; it may run while run_partitions runs on another. Frees sets. */
int run_merge(runner *r, uint64_t index, bufset *sets, err *e);

/* After every partition was merged: get_results of every plugin, on the merging thread. */
int run_finish(runner *r, err *e);

/* The message for a plugin call that overran timeout seconds: UH_EPLUGIN. */
int run_timed_out(const sig_call *call, double timeout, err *e);

/* Stop the workers and free the runner (not the results). NULL is fine. */
void run_end(runner *r);

#endif
