/* Tests for the worker pool: every job runs once, consume sees indices in order on the calling
 * thread, the window bounds how far starts run ahead of consume, worker ids map to one thread
 * each, and failures stop the run with the status of the lowest failed index. Jitter only shakes
 * out races; no assertion depends on timing. */
#include "pool.h"

#include <criterion/criterion.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_JOBS 512
#define MAX_THREADS 8

/* Everything a run observed. Workers only bump atomics or take ids_lock; the test thread asserts
 * afterwards, because Criterion assertions must not fail on a worker thread. */
struct harness {
    unsigned window;
    uint64_t fail_job_index; /* job that returns fail_job_status; UINT64_MAX for none */
    int fail_job_status;
    uint64_t fail_consume_index; /* consume that returns fail_consume_status; UINT64_MAX for none */
    int fail_consume_status;
    unsigned jitter_us; /* upper bound of random sleep in job and consume, 0 for none */

    atomic_uint runs[MAX_JOBS];    /* how often each job ran */
    atomic_uint_fast64_t consumed; /* consume calls that returned 0 */
    atomic_uint started;
    atomic_uint in_flight;
    atomic_uint window_violations; /* jobs that started at index >= consumed + window */
    atomic_uint worker_out_of_range;
    atomic_uint worker_overlap; /* a worker id running two jobs at once */
    atomic_uint worker_busy[MAX_THREADS];

    pthread_mutex_t ids_lock; /* protects worker_thread and worker_seen */
    pthread_t worker_thread[MAX_THREADS];
    bool worker_seen[MAX_THREADS];

    /* Touched only by consume, which runs on the test thread. */
    uint64_t consume_order[MAX_JOBS];
    uint64_t n_consume_calls;
    pthread_t caller;
    unsigned consume_off_thread;
};

static void harness_init(struct harness *h, unsigned window)
{
    memset(h, 0, sizeof *h);
    h->window = window;
    h->fail_job_index = UINT64_MAX;
    h->fail_consume_index = UINT64_MAX;
    h->jitter_us = 20;
    h->caller = pthread_self();
    pthread_mutex_init(&h->ids_lock, NULL);
}

/* Reset per-run counts but keep the worker-to-thread map, which must hold across runs. */
static void harness_rerun(struct harness *h, unsigned window)
{
    for (size_t i = 0; i < MAX_JOBS; i++)
        atomic_store(&h->runs[i], 0);
    atomic_store(&h->consumed, 0);
    atomic_store(&h->started, 0);
    h->window = window;
    h->n_consume_calls = 0;
    h->fail_job_index = UINT64_MAX;
    h->fail_consume_index = UINT64_MAX;
}

static void jitter(unsigned max_us, uint64_t index)
{
    if (max_us == 0)
        return;
    unsigned seed = (unsigned)index * 2654435761u ^ (unsigned)(uintptr_t)pthread_self();
    unsigned us = (unsigned)rand_r(&seed) % (max_us + 1);
    if (us % 4 == 0)
        return; /* some jobs finish at once, so completions arrive out of order */
    struct timespec ts = {0, (long)us * 1000};
    nanosleep(&ts, NULL);
}

static void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

static void worker_check(struct harness *h, unsigned worker)
{
    if (worker >= MAX_THREADS) {
        atomic_fetch_add(&h->worker_out_of_range, 1);
        return;
    }
    pthread_mutex_lock(&h->ids_lock);
    if (!h->worker_seen[worker]) {
        h->worker_seen[worker] = true;
        h->worker_thread[worker] = pthread_self();
    } else if (!pthread_equal(h->worker_thread[worker], pthread_self())) {
        atomic_fetch_add(&h->worker_overlap, 1);
    }
    pthread_mutex_unlock(&h->ids_lock);
}

static int job_checked(void *arg, unsigned worker, uint64_t index)
{
    struct harness *h = arg;
    /* consumed only grows, so reading it now can only hide a violation, never invent one. */
    if (index >= atomic_load(&h->consumed) + h->window)
        atomic_fetch_add(&h->window_violations, 1);
    atomic_fetch_add(&h->started, 1);
    atomic_fetch_add(&h->in_flight, 1);
    worker_check(h, worker);
    if (worker < MAX_THREADS && atomic_exchange(&h->worker_busy[worker], 1) != 0)
        atomic_fetch_add(&h->worker_overlap, 1);
    if (index < MAX_JOBS)
        atomic_fetch_add(&h->runs[index], 1);

    jitter(h->jitter_us, index);

    if (worker < MAX_THREADS)
        atomic_store(&h->worker_busy[worker], 0);
    atomic_fetch_sub(&h->in_flight, 1);
    return index == h->fail_job_index ? h->fail_job_status : 0;
}

static int consume_checked(void *arg, uint64_t index)
{
    struct harness *h = arg;
    if (!pthread_equal(pthread_self(), h->caller))
        h->consume_off_thread++;
    if (h->n_consume_calls < MAX_JOBS)
        h->consume_order[h->n_consume_calls] = index;
    h->n_consume_calls++;
    jitter(h->jitter_us, index + 7919);
    if (index == h->fail_consume_index)
        return h->fail_consume_status;
    atomic_fetch_add(&h->consumed, 1);
    return 0;
}

/* What must hold after any run, failed or not. */
static void harness_assert_run(struct harness *h, unsigned threads, const char *what)
{
    cr_assert_eq(atomic_load(&h->in_flight), 0, "%s: a job was still running after pool_run", what);
    cr_assert_eq(atomic_load(&h->window_violations), 0, "%s: a job started a window ahead", what);
    cr_assert_eq(atomic_load(&h->worker_out_of_range), 0, "%s: worker id out of range", what);
    cr_assert_eq(atomic_load(&h->worker_overlap), 0, "%s: worker id shared by threads", what);
    cr_assert_eq(h->consume_off_thread, 0, "%s: consume ran off the calling thread", what);
    for (unsigned w = threads; w < MAX_THREADS; w++)
        cr_assert(!h->worker_seen[w], "%s: worker id %u >= threads %u", what, w, threads);
    for (unsigned a = 0; a < threads; a++)
        for (unsigned b = a + 1; b < threads; b++)
            if (h->worker_seen[a] && h->worker_seen[b])
                cr_assert(!pthread_equal(h->worker_thread[a], h->worker_thread[b]),
                          "%s: worker ids %u and %u on one thread", what, a, b);
    for (uint64_t c = 0; c < h->n_consume_calls; c++)
        cr_assert_eq(h->consume_order[c], c, "%s: consume call %lu saw index %lu", what,
                     (unsigned long)c, (unsigned long)h->consume_order[c]);
}

static void harness_assert_all_done(struct harness *h, uint64_t n_jobs, const char *what)
{
    for (uint64_t i = 0; i < n_jobs; i++)
        cr_assert_eq(atomic_load(&h->runs[i]), 1, "%s: job %lu ran %u times", what,
                     (unsigned long)i, atomic_load(&h->runs[i]));
    cr_assert_eq(atomic_load(&h->started), n_jobs, "%s: extra jobs ran", what);
    cr_assert_eq(h->n_consume_calls, n_jobs, "%s: consume calls", what);
}

static const unsigned thread_counts[] = {1, 2, 8};
static const unsigned windows[] = {1, 2, 16};
#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

Test(pool, runs_every_job_once_and_consumes_in_order, .timeout = 60)
{
    for (size_t t = 0; t < N_ELEMS(thread_counts); t++) {
        for (size_t w = 0; w < N_ELEMS(windows); w++) {
            char what[64];
            snprintf(what, sizeof what, "threads %u window %u", thread_counts[t], windows[w]);
            pool *p = pool_create(thread_counts[t]);
            cr_assert_not_null(p);
            cr_assert_eq(pool_threads(p), thread_counts[t]);
            struct harness *h = malloc(sizeof *h);
            harness_init(h, windows[w]);
            int status = pool_run(p, 300, windows[w], job_checked, consume_checked, h);
            cr_assert_eq(status, 0, "%s: status %d", what, status);
            harness_assert_run(h, thread_counts[t], what);
            harness_assert_all_done(h, 300, what);
            pool_destroy(p);
            free(h);
        }
    }
}

Test(pool, accepts_a_window_larger_than_the_run)
{
    pool *p = pool_create(4);
    struct harness *h = malloc(sizeof *h);
    harness_init(h, UINT_MAX);
    cr_assert_eq(pool_run(p, 100, UINT_MAX, job_checked, consume_checked, h), 0);
    harness_assert_run(h, 4, "window UINT_MAX");
    harness_assert_all_done(h, 100, "window UINT_MAX");
    pool_destroy(p);
    free(h);
}

Test(pool, reuses_workers_across_many_runs, .timeout = 60)
{
    pool *p = pool_create(4);
    struct harness *h = malloc(sizeof *h);
    harness_init(h, 1);
    h->jitter_us = 5;
    unsigned seed = 12345;
    for (int run = 0; run < 400; run++) {
        uint64_t n = (uint64_t)rand_r(&seed) % 40;
        unsigned window = 1 + (unsigned)rand_r(&seed) % 6;
        harness_rerun(h, window);
        /* Every third run fails, so the next run also starts from a failed pool. */
        if (run % 3 == 1 && n > 0)
            h->fail_job_index = (uint64_t)rand_r(&seed) % n;
        h->fail_job_status = -1 - run;
        char what[64];
        snprintf(what, sizeof what, "run %d: %lu jobs window %u", run, (unsigned long)n, window);
        int status = pool_run(p, n, window, job_checked, consume_checked, h);
        harness_assert_run(h, 4, what);
        if (h->fail_job_index == UINT64_MAX) {
            cr_assert_eq(status, 0, "%s: status %d", what, status);
            harness_assert_all_done(h, n, what);
        } else {
            cr_assert_eq(status, -1 - run, "%s: status %d", what, status);
            cr_assert_leq(h->n_consume_calls, h->fail_job_index, "%s", what);
        }
    }
    pool_destroy(p);
    free(h);
}

static int job_never(void *arg, unsigned worker, uint64_t index)
{
    (void)worker, (void)index;
    atomic_fetch_add((atomic_uint *)arg, 1);
    return -1;
}

static int consume_never(void *arg, uint64_t index)
{
    (void)index;
    atomic_fetch_add((atomic_uint *)arg, 1);
    return -1;
}

Test(pool, returns_0_at_once_for_no_jobs)
{
    pool *p = pool_create(8);
    atomic_uint calls = 0;
    for (unsigned w = 1; w <= 16; w *= 4)
        cr_assert_eq(pool_run(p, 0, w, job_never, consume_never, &calls), 0);
    cr_assert_eq(atomic_load(&calls), 0);
    pool_destroy(p);
}

Test(pool, destroys_a_pool_that_never_ran)
{
    for (unsigned threads = 1; threads <= 16; threads *= 2)
        pool_destroy(pool_create(threads));
    pool_destroy(NULL);
}

/* A failing job at k: jobs 0..k each ran once, nothing at or after k was consumed, and no job
 * started beyond the window that consume had opened (consume never passes k). */
static void check_job_failure(unsigned threads, unsigned window, uint64_t n, uint64_t k)
{
    char what[80];
    snprintf(what, sizeof what, "threads %u window %u fail job %lu", threads, window,
             (unsigned long)k);
    pool *p = pool_create(threads);
    struct harness *h = malloc(sizeof *h);
    harness_init(h, window);
    h->fail_job_index = k;
    h->fail_job_status = -3;
    int status = pool_run(p, n, window, job_checked, consume_checked, h);
    cr_assert_eq(status, -3, "%s: status %d", what, status);
    harness_assert_run(h, threads, what);
    cr_assert_leq(h->n_consume_calls, k, "%s: consumed %lu", what,
                  (unsigned long)h->n_consume_calls);
    for (uint64_t i = 0; i <= k; i++)
        cr_assert_eq(atomic_load(&h->runs[i]), 1, "%s: job %lu", what, (unsigned long)i);
    for (uint64_t i = k + window; i < n; i++)
        cr_assert_eq(atomic_load(&h->runs[i]), 0, "%s: job %lu ran", what, (unsigned long)i);
    /* One thread, or a window of 1, leaves no job that may legally start after k. */
    if (threads == 1 || window == 1)
        cr_assert_eq(atomic_load(&h->started), k + 1, "%s: jobs after k ran", what);
    pool_destroy(p);
    free(h);
}

Test(pool, stops_at_a_failing_job, .timeout = 60)
{
    for (size_t t = 0; t < N_ELEMS(thread_counts); t++)
        for (size_t w = 0; w < N_ELEMS(windows); w++)
            for (uint64_t k = 0; k < 60; k += 29)
                check_job_failure(thread_counts[t], windows[w], 100, k);
    check_job_failure(8, 16, 100, 99);
}

Test(pool, stops_at_a_failing_consume, .timeout = 60)
{
    for (size_t t = 0; t < N_ELEMS(thread_counts); t++) {
        for (size_t w = 0; w < N_ELEMS(windows); w++) {
            unsigned threads = thread_counts[t], window = windows[w];
            char what[64];
            snprintf(what, sizeof what, "threads %u window %u", threads, window);
            pool *p = pool_create(threads);
            struct harness *h = malloc(sizeof *h);
            harness_init(h, window);
            h->fail_consume_index = 40;
            h->fail_consume_status = -4;
            int status = pool_run(p, 100, window, job_checked, consume_checked, h);
            cr_assert_eq(status, -4, "%s: status %d", what, status);
            harness_assert_run(h, threads, what);
            /* Nothing failed before 40, so consume ran for exactly 0..40 and then stopped. */
            cr_assert_eq(h->n_consume_calls, 41, "%s: consume calls %lu", what,
                         (unsigned long)h->n_consume_calls);
            for (uint64_t i = 0; i <= 40; i++)
                cr_assert_eq(atomic_load(&h->runs[i]), 1, "%s: job %lu", what, (unsigned long)i);
            for (uint64_t i = 40 + window; i < 100; i++)
                cr_assert_eq(atomic_load(&h->runs[i]), 0, "%s: job %lu", what, (unsigned long)i);
            pool_destroy(p);
            free(h);
        }
    }
}

/* Two failures where the higher index fails first: the low one's status must win. */
struct race {
    atomic_bool high_done;              /* the higher-index failure has returned */
    atomic_bool low_in_consume_entered; /* consume(low) is running */
    uint64_t low, high;
    bool low_in_consume; /* the low failure is a consume, not a job */
    atomic_uint consumed_at_or_after_low;
};

/* Wait for a flag, bounded so that a broken pool fails the test instead of hanging it. The low
 * failure then sleeps a little more so the pool has most likely recorded the high one first. */
static void race_wait_for(atomic_bool *flag)
{
    for (int i = 0; i < 5000 && !atomic_load(flag); i++)
        sleep_us(1000);
}

static int race_job(void *arg, unsigned worker, uint64_t index)
{
    struct race *r = arg;
    (void)worker;
    if (index == r->high) {
        /* A failed job before consume(low) was called would rightly stop all consumes. */
        if (r->low_in_consume)
            race_wait_for(&r->low_in_consume_entered);
        atomic_store(&r->high_done, true);
        return -5;
    }
    if (index == r->low && !r->low_in_consume) {
        race_wait_for(&r->high_done);
        sleep_us(2000);
        return -2;
    }
    return 0;
}

static int race_consume(void *arg, uint64_t index)
{
    struct race *r = arg;
    if (index >= r->low)
        atomic_fetch_add(&r->consumed_at_or_after_low, 1);
    if (index == r->low && r->low_in_consume) {
        atomic_store(&r->low_in_consume_entered, true);
        race_wait_for(&r->high_done);
        sleep_us(2000);
        return -2;
    }
    return 0;
}

Test(pool, reports_the_lowest_failed_index_not_the_first, .timeout = 60)
{
    for (int low_in_consume = 0; low_in_consume <= 1; low_in_consume++) {
        pool *p = pool_create(8);
        struct race r = {.low = 20, .high = 40, .low_in_consume = low_in_consume};
        int status = pool_run(p, 100, 64, race_job, race_consume, &r);
        cr_assert_eq(status, -2, "low failure in %s: status %d", low_in_consume ? "consume" : "job",
                     status);
        /* A failing consume is called for its index; a failing job is never consumed. */
        cr_assert_eq(atomic_load(&r.consumed_at_or_after_low), (unsigned)low_in_consume);
        pool_destroy(p);
    }
}

Test(pool, rejects_a_window_of_0)
{
    pool *p = pool_create(2);
    atomic_uint calls = 0;
    cr_assert_neq(pool_run(p, 10, 0, job_never, consume_never, &calls), 0);
    cr_assert_eq(atomic_load(&calls), 0);
    pool_destroy(p);
}
