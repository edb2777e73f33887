/* The runner: partitions on the thread pool, tiles through every plugin, merges in partition
 * order on the calling thread, then get_results. */
#ifndef UDFHOST_RUN_H
#define UDFHOST_RUN_H

#include <stdint.h>

#include "bufs.h"
#include "corr.h"
#include "ds.h"
#include "err.h"
#include "plugin.h"

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
     * processed NaN or 0, are handed to live() on the calling thread. A failure ends the run. */
    uint64_t live_every;
    int (*live)(void *arg, const bufset *results, err *e);
    void *live_arg;
} run_config;

/* Process the dataset with every plugin. On success results[i] holds plugin i's whole result
 * (after get_results); the caller frees them with bufs_free. On failure nothing is left allocated
 * and the message names the plugin, hook and partition, or the dataset and offset. */
int run_execute(const run_config *c, bufset *results, err *e);

#endif
