/* A fixed set of worker threads that run numbered jobs 0..n-1: indices are handed out in
 * increasing order, at most `window` ahead of the oldest job not yet consumed, and each finished
 * job is passed to a consumer on the calling thread in index order. This gives the runner
 * deterministic merge order with bounded memory whatever the thread count. */
#ifndef UDFHOST_POOL_H
#define UDFHOST_POOL_H

#include <stdint.h>

typedef struct pool pool;

/* Runs on a worker thread: job `index` on worker `worker` (0 <= worker < threads). Each worker id
 * belongs to one thread for the pool's life and runs one job at a time, so per-worker scratch
 * indexed by it needs no lock. Returns 0 or a non-zero status. Jobs on different workers run
 * concurrently. A job must not call pool_run on its own pool. */
typedef int (*pool_job_fn)(void *arg, unsigned worker, uint64_t index);

/* Runs on the thread that called pool_run, once per successful job, in index order 0, 1, 2, ...
 * Returns 0 or a negative status. */
typedef int (*pool_consume_fn)(void *arg, uint64_t index);

/* Start `threads` (>= 1) worker threads. Returns NULL if threads could not be created (errno set). */
pool *pool_create(unsigned threads);

unsigned pool_threads(const pool *p);

/* Run jobs 0..n_jobs-1 and consume them in order. window (>= 1) bounds how many jobs may be
 * started or finished but not yet consumed: job i + window starts only after consume(i) returned,
 * so callers may keep job outputs in a ring of `window` slots. On the first failure (a job or
 * consume returning non-zero) no new job is started, running jobs finish, no further consume
 * happens, and pool_run returns the status of the lowest-index failure that happened; jobs that
 * succeeded but were not consumed are the caller's to clean up. Returns 0 when all jobs ran and
 * were consumed; UH_EINTERNAL for window 0 or NULL callbacks. Allocates nothing. Not reentrant:
 * one pool_run per pool at a time, never overlapping pool_destroy. */
int pool_run(pool *p, uint64_t n_jobs, unsigned window, pool_job_fn job, pool_consume_fn consume,
             void *arg);

/* Stop and join the workers and free the pool. NULL is fine. */
void pool_destroy(pool *p);

#endif
