/* The worker pool: threads that sleep between runs, hand out job indices in order within a window
 * ahead of the consumer, and report completions to the thread in pool_run, which consumes them in
 * index order. */
#include "pool.h"

#include "err.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

/* running[] value of a worker that holds no job. Job indices are < n_jobs <= UINT64_MAX. */
#define POOL_IDLE UINT64_MAX

struct pool_worker {
    pool *pool;
    pthread_t thread;
    uint64_t running; /* index of the job this worker runs, or POOL_IDLE; under run_lock */
};

struct pool {
    unsigned threads;

    /* run_lock protects everything below. Workers wait on job_ready for a job they may start (or
     * for stopping); the thread in pool_run waits on job_done for the next job to finish or, after
     * a failure, for the last running job to finish. */
    pthread_mutex_t run_lock;
    pthread_cond_t job_ready;
    pthread_cond_t job_done;
    bool stopping;

    /* The current run; job is NULL between runs, so a late-waking worker finds nothing to do. */
    pool_job_fn job;
    void *arg;
    uint64_t n_jobs;
    unsigned window;
    uint64_t next_start;   /* lowest index not yet handed to a worker */
    uint64_t next_consume; /* lowest index whose consume has not returned */
    unsigned n_running;
    bool failed;
    uint64_t fail_index; /* lowest failed index, valid if failed */
    int fail_status;

    /* Jobs start in index order, so a handed-out job is finished once no worker's running[] holds
     * it. That is why pool_run needs no per-job (or per-window) status array and cannot fail to
     * allocate one: the only per-job state that matters after a job finishes is a failure. */
    struct pool_worker workers[];
};

static bool pool_job_startable(const pool *p)
{
    /* next_start - next_consume rather than next_consume + window: the sum could wrap. */
    return p->job && !p->failed && p->next_start < p->n_jobs &&
           p->next_start - p->next_consume < p->window;
}

static void pool_failure_record(pool *p, uint64_t index, int status)
{
    if (!p->failed || index < p->fail_index) {
        p->fail_index = index;
        p->fail_status = status;
    }
    p->failed = true;
}

static void *pool_worker_main(void *worker_arg)
{
    struct pool_worker *self = worker_arg;
    pool *p = self->pool;
    unsigned id = (unsigned)(self - p->workers);

    pthread_mutex_lock(&p->run_lock);
    for (;;) {
        while (!p->stopping && !pool_job_startable(p))
            pthread_cond_wait(&p->job_ready, &p->run_lock);
        if (p->stopping)
            break;
        uint64_t index = p->next_start++;
        self->running = index;
        p->n_running++;
        pool_job_fn job = p->job;
        void *arg = p->arg;
        pthread_mutex_unlock(&p->run_lock);

        int status = job(arg, id, index);

        pthread_mutex_lock(&p->run_lock);
        self->running = POOL_IDLE;
        p->n_running--;
        if (status != 0)
            pool_failure_record(p, index, status);
        /* The consumer waits only for next_consume or, after a failure, for n_running to drop to
         * 0; any other completion cannot change what it does. */
        if (index == p->next_consume || p->failed)
            pthread_cond_signal(&p->job_done);
    }
    pthread_mutex_unlock(&p->run_lock);
    return NULL;
}

static bool pool_job_finished(const pool *p, uint64_t index)
{
    if (index >= p->next_start)
        return false;
    for (unsigned w = 0; w < p->threads; w++)
        if (p->workers[w].running == index)
            return false;
    return true;
}

int pool_run(pool *p, uint64_t n_jobs, unsigned window, pool_job_fn job, pool_consume_fn consume,
             void *arg)
{
    /* Caller bugs: window 0 would never start a job, and waiting on it would hang. */
    if (!p || window == 0 || !job || !consume)
        return UH_EINTERNAL;
    if (n_jobs == 0)
        return 0;

    pthread_mutex_lock(&p->run_lock);
    p->job = job;
    p->arg = arg;
    p->n_jobs = n_jobs;
    p->window = window;
    p->next_start = 0;
    p->next_consume = 0;
    p->failed = false;
    p->fail_status = 0;
    pthread_cond_broadcast(&p->job_ready);

    for (;;) {
        if (p->failed) {
            /* Callers free what running jobs use once pool_run returns, so wait for them. */
            while (p->n_running > 0)
                pthread_cond_wait(&p->job_done, &p->run_lock);
            break;
        }
        if (p->next_consume == n_jobs)
            break;
        if (!pool_job_finished(p, p->next_consume)) {
            pthread_cond_wait(&p->job_done, &p->run_lock);
            continue;
        }
        uint64_t index = p->next_consume;
        pthread_mutex_unlock(&p->run_lock);
        int status = consume(arg, index);
        pthread_mutex_lock(&p->run_lock);
        if (status != 0) {
            pool_failure_record(p, index, status);
            continue;
        }
        /* Advance only after consume returned: job index + window may reuse the window slot the
         * caller keeps for this job. One consumed job opens exactly one start, so one worker. */
        p->next_consume++;
        pthread_cond_signal(&p->job_ready);
    }

    int result = p->failed ? p->fail_status : 0;
    p->job = NULL;
    p->arg = NULL;
    pthread_mutex_unlock(&p->run_lock);
    return result;
}

static void pool_workers_stop(pool *p, unsigned started)
{
    pthread_mutex_lock(&p->run_lock);
    p->stopping = true;
    pthread_cond_broadcast(&p->job_ready);
    pthread_mutex_unlock(&p->run_lock);
    for (unsigned w = 0; w < started; w++)
        pthread_join(p->workers[w].thread, NULL);
    pthread_cond_destroy(&p->job_done);
    pthread_cond_destroy(&p->job_ready);
    pthread_mutex_destroy(&p->run_lock);
    free(p);
}

pool *pool_create(unsigned threads)
{
    if (threads == 0) {
        errno = EINVAL;
        return NULL;
    }
    pool *p = calloc(1, sizeof *p + (size_t)threads * sizeof p->workers[0]);
    if (!p)
        return NULL;
    p->threads = threads;
    pthread_mutex_init(&p->run_lock, NULL);
    pthread_cond_init(&p->job_ready, NULL);
    pthread_cond_init(&p->job_done, NULL);
    for (unsigned w = 0; w < threads; w++) {
        p->workers[w].pool = p;
        p->workers[w].running = POOL_IDLE;
    }
    for (unsigned w = 0; w < threads; w++) {
        int rc = pthread_create(&p->workers[w].thread, NULL, pool_worker_main, &p->workers[w]);
        if (rc != 0) {
            pool_workers_stop(p, w);
            errno = rc;
            return NULL;
        }
    }
    return p;
}

unsigned pool_threads(const pool *p)
{
    return p->threads;
}

void pool_destroy(pool *p)
{
    if (p)
        pool_workers_stop(p, p->threads);
}
