/* Runs across machines with MPI: rank 0 hands out partitions as ranks ask and merges them in
 * partition order; every rank computes partitions with its own pool (rank 0 on a helper thread)
 * and the others send each partition's buffers back as bytes. Only main threads call MPI. */
#include "mpi_run.h"

#include <limits.h>
#include <mpi.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The protocol. A rank asks for work with TAG_REQUEST (how many partitions it wants); rank 0
 * answers TAG_WORK (first index, count), count 0 meaning there is no more. A computed partition
 * goes to rank 0 as TAG_RESULT (its index), then one TAG_DATA message per buffer that holds data,
 * in plugin and buffer order: both sides allocate the partition's buffers with bufs_alloc from
 * the same plan, so sizes and order agree without being sent. A failure is TAG_FAIL (an err, the
 * same binary on every rank); rank 0 then ends the job. MPI keeps the messages from one rank to
 * another in order, so a result's data follow its header. */
enum { TAG_REQUEST = 1, TAG_WORK, TAG_RESULT, TAG_DATA, TAG_FAIL };

static bool joined;
static int world_rank, world_size = 1;
static char host[MPI_MAX_PROCESSOR_NAME];
static bool failure_named; /* the failure came from another rank and names it already */

void mpi_run_start(int *argc, char ***argv)
{
    /* Open MPI's mpirun sets OMPI_COMM_WORLD_SIZE; SLURM's srun and other PMI/PMIx launchers
     * PMI_SIZE or PMIX_RANK. A plain start stays a plain process: no MPI runtime is touched. */
    if (!getenv("OMPI_COMM_WORLD_SIZE") && !getenv("PMI_SIZE") && !getenv("PMIX_RANK"))
        return;
    int provided, len = 0;
    /* MPI's default error handler ends the job on any MPI failure, this one included. */
    MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    joined = true;
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size);
    MPI_Get_processor_name(host, &len);
}

int mpi_run_world(int *rank)
{
    *rank = world_rank;
    return world_size;
}

void mpi_run_name_failure(err *e)
{
    if (world_size > 1 && !failure_named)
        err_prefix(e, "rank %d on %s", world_rank, host);
}

int mpi_run_end(int status)
{
    if (!joined)
        return status;
    if (status && world_size > 1)
        MPI_Abort(MPI_COMM_WORLD, status); /* the other ranks may wait for rank 0: end them */
    MPI_Finalize();
    return status;
}

/* A buffer's bytes, in pieces MPI's int count can hold. */
#define PIECE ((size_t)1 << 30)

static void bytes_send(const void *data, size_t n)
{
    for (size_t at = 0; at < n; at += PIECE)
        MPI_Send((const char *)data + at, (int)(n - at < PIECE ? n - at : PIECE), MPI_BYTE, 0,
                 TAG_DATA, MPI_COMM_WORLD);
}

static void bytes_receive(void *data, size_t n, int source)
{
    for (size_t at = 0; at < n; at += PIECE)
        MPI_Recv((char *)data + at, (int)(n - at < PIECE ? n - at : PIECE), MPI_BYTE, source,
                 TAG_DATA, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
}

static size_t view_bytes(const udf_view *v)
{
    return v->data ? v->count * v->extra_size * udf_dtype_size(v->dtype) : 0;
}

/* --- ranks other than 0 ----------------------------------------------------------------------- */

/* run_deliver_fn: a computed partition goes to rank 0 whole, nav buffers included. */
static int partition_send(void *arg, uint64_t index, bufset *sets, err *e)
{
    const run_config *c = arg;
    (void)e;
    MPI_Send(&index, 1, MPI_UINT64_T, 0, TAG_RESULT, MPI_COMM_WORLD);
    for (uint32_t k = 0; k < c->n_plugins; k++) {
        for (uint32_t i = 0; i < sets[k].n; i++)
            bytes_send(sets[k].views[i].data, view_bytes(&sets[k].views[i]));
        bufs_free(&sets[k]);
    }
    return 0;
}

/* Hand a failure to rank 0, which prints it and ends the job; this rank waits for that end. */
static void failure_report(err *e)
{
    err_prefix(e, "rank %d on %s", world_rank, host);
    MPI_Send(e, (int)sizeof *e, MPI_BYTE, 0, TAG_FAIL, MPI_COMM_WORLD);
    for (;;) {
        uint64_t range[2];
        MPI_Recv(range, 2, MPI_UINT64_T, 0, TAG_WORK, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    }
}

/* Ask for as many partitions as there are workers, compute them, send them; until none is left.
 * The next batch is asked for before computing this one, so that no worker waits for rank 0. */
static int worker_run(const run_config *c, err *e)
{
    runner *r;
    uint64_t want = c->threads, range[2], next[2];
    uint64_t *batch = malloc(want * sizeof *batch);
    int rc = run_begin(c, NULL, &r, e);
    if (!rc && !batch)
        rc = err_set(e, UH_ENOMEM, "out of memory");
    if (!rc) {
        MPI_Send(&want, 1, MPI_UINT64_T, 0, TAG_REQUEST, MPI_COMM_WORLD);
        MPI_Recv(range, 2, MPI_UINT64_T, 0, TAG_WORK, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    }
    while (!rc && range[1]) {
        MPI_Send(&want, 1, MPI_UINT64_T, 0, TAG_REQUEST, MPI_COMM_WORLD);
        for (uint64_t i = 0; i < range[1]; i++)
            batch[i] = range[0] + i;
        rc = run_partitions(r, batch, range[1], partition_send, (void *)c, e);
        if (!rc) {
            MPI_Recv(next, 2, MPI_UINT64_T, 0, TAG_WORK, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            memcpy(range, next, sizeof range);
        }
    }
    if (rc)
        failure_report(e);
    free(batch);
    run_end(r);
    return rc;
}

/* --- rank 0 ----------------------------------------------------------------------------------- */

typedef struct hub {
    runner *r;
    const run_config *c;
    uint64_t count;         /* partitions */
    uint64_t limit;         /* partitions handed out but not yet merged, at most */
    pthread_mutex_t lock;   /* protects the fields below */
    pthread_cond_t changed; /* a partition arrived or was merged, or the run stopped */
    uint64_t next_free;     /* the lowest partition not handed out */
    uint64_t next_merge;    /* the lowest partition not merged */
    /* Arrived partitions waiting for their turn: partition p's n_plugins sets at slot p % limit,
     * which no other partition in flight shares. Whoever receives p fills the slot, then sets
     * arrived; the merging thread owns it from then on. */
    bufset *slots;
    bool *arrived;
    bool stop;    /* a failure: hand out nothing more */
    int local_rc; /* the failure of rank 0's own workers */
    err local_err;
} hub;

static bufset *hub_slot(const hub *h, uint64_t index)
{
    return &h->slots[(index % h->limit) * h->c->n_plugins];
}

/* Hand out up to want partitions from next_free, no further than limit past next_merge: the
 * first in *first, the count returned. 0 while next_free < count: ask again after a merge. Call
 * with lock held. */
static uint64_t hub_grant(hub *h, uint64_t want, uint64_t *first)
{
    uint64_t end = h->count - h->next_merge > h->limit ? h->next_merge + h->limit : h->count;
    uint64_t n = end - h->next_free < want ? end - h->next_free : want;
    *first = h->next_free;
    h->next_free += n;
    return n;
}

/* run_deliver_fn for rank 0's own workers: into the partition's slot. */
static int partition_keep(void *arg, uint64_t index, bufset *sets, err *e)
{
    hub *h = arg;
    pthread_mutex_lock(&h->lock);
    bool stop = h->stop;
    if (!stop) {
        memcpy(hub_slot(h, index), sets, h->c->n_plugins * sizeof *sets);
        h->arrived[index % h->limit] = true;
        pthread_cond_broadcast(&h->changed);
    }
    pthread_mutex_unlock(&h->lock);
    if (!stop)
        return 0;
    for (uint32_t k = 0; k < h->c->n_plugins; k++)
        bufs_free(&sets[k]);
    return err_set(e, UH_EINTR, "stopped because another rank failed");
}

/* Rank 0's own share, on a thread of its own so that the main thread stays free for MPI and
 * merging: batches of c->threads partitions from the same counter the other ranks draw from. */
static void *hub_work(void *arg)
{
    hub *h = arg;
    uint64_t want = h->c->threads, *batch = malloc(want * sizeof *batch);
    err e = {0};
    int rc = batch ? 0 : err_set(&e, UH_ENOMEM, "out of memory");
    while (!rc) {
        uint64_t first = 0, n = 0;
        pthread_mutex_lock(&h->lock);
        while (!h->stop && !(n = hub_grant(h, want, &first)) && h->next_free < h->count)
            pthread_cond_wait(&h->changed, &h->lock);
        pthread_mutex_unlock(&h->lock);
        if (!n)
            break;
        for (uint64_t i = 0; i < n; i++)
            batch[i] = first + i;
        rc = run_partitions(h->r, batch, n, partition_keep, h, &e);
    }
    free(batch);
    pthread_mutex_lock(&h->lock);
    if (rc && !h->stop) {
        h->local_rc = rc;
        h->local_err = e;
        h->stop = true;
        pthread_cond_broadcast(&h->changed);
    }
    pthread_mutex_unlock(&h->lock);
    return NULL;
}

/* Answer rank `rank`'s request for want partitions if it can be answered now (with work, or with
 * "no more"). Returns whether it was; *finished tells whether it was told "no more". */
static bool hub_answer(hub *h, int rank, uint64_t want, bool *finished)
{
    uint64_t range[2];
    pthread_mutex_lock(&h->lock);
    range[1] = h->stop ? 0 : hub_grant(h, want, &range[0]);
    bool all_out = h->next_free == h->count;
    pthread_mutex_unlock(&h->lock);
    if (!range[1] && !all_out)
        return false;
    range[0] = range[1] ? range[0] : h->count;
    MPI_Send(range, 2, MPI_UINT64_T, rank, TAG_WORK, MPI_COMM_WORLD);
    *finished = !range[1];
    return true;
}

/* A computed partition from rank `source` into its slot. */
static int hub_receive(hub *h, int source, err *e)
{
    const run_config *c = h->c;
    uint64_t index;
    MPI_Recv(&index, 1, MPI_UINT64_T, source, TAG_RESULT, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    if (index < h->next_merge || index >= h->count)
        return err_set(e, UH_EINTERNAL, "rank %d sent partition %llu, which is not in flight",
                       source, (unsigned long long)index);
    bufset *sets = hub_slot(h, index);
    uint64_t selected = run_partition_selected(h->r, index);
    for (uint32_t k = 0; k < c->n_plugins && selected; k++) {
        int rc = bufs_alloc(c->plugins[k], &sets[k], selected, c->d->sig_size, false, e);
        if (rc)
            return rc;
        for (uint32_t i = 0; i < sets[k].n; i++)
            bytes_receive(sets[k].views[i].data, view_bytes(&sets[k].views[i]), source);
    }
    pthread_mutex_lock(&h->lock);
    h->arrived[index % h->limit] = true;
    pthread_mutex_unlock(&h->lock);
    return 0;
}

/* Merge every partition whose turn it is. Sets *merged when any was. */
static int hub_merge(hub *h, bool *merged, err *e)
{
    pthread_mutex_lock(&h->lock);
    while (!h->stop && h->next_merge < h->count && h->arrived[h->next_merge % h->limit]) {
        uint64_t index = h->next_merge;
        h->arrived[index % h->limit] = false;
        pthread_mutex_unlock(&h->lock);
        int rc = run_merge(h->r, index, hub_slot(h, index), e);
        if (rc)
            return rc;
        *merged = true;
        pthread_mutex_lock(&h->lock);
        h->next_merge++;
        pthread_cond_broadcast(&h->changed); /* a place in the window is free */
    }
    int rc = h->local_rc;
    if (rc)
        *e = h->local_err;
    pthread_mutex_unlock(&h->lock);
    return rc;
}

/* Until every partition is merged: merge what is due, answer requests, take in results. */
static int hub_serve(hub *h, uint64_t *pending, bool *finished, err *e)
{
    int rc = 0;
    while (!rc) {
        bool busy = false;
        if ((rc = hub_merge(h, &busy, e)) || h->next_merge == h->count)
            break;
        for (int rank = 1; rank < world_size; rank++)
            if (pending[rank] && hub_answer(h, rank, pending[rank], &finished[rank])) {
                pending[rank] = 0;
                busy = true;
            }
        int flag;
        MPI_Status st;
        MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st);
        if (flag) {
            busy = true;
            int from = st.MPI_SOURCE;
            if (st.MPI_TAG == TAG_REQUEST) {
                MPI_Recv(&pending[from], 1, MPI_UINT64_T, from, TAG_REQUEST, MPI_COMM_WORLD,
                         MPI_STATUS_IGNORE);
                if (hub_answer(h, from, pending[from], &finished[from]))
                    pending[from] = 0;
            } else if (st.MPI_TAG == TAG_RESULT) {
                rc = hub_receive(h, from, e);
            } else if (st.MPI_TAG == TAG_FAIL) {
                MPI_Recv(e, (int)sizeof *e, MPI_BYTE, from, TAG_FAIL, MPI_COMM_WORLD,
                         MPI_STATUS_IGNORE);
                e->msg[sizeof e->msg - 1] = '\0';
                failure_named = true;
                rc = e->code ? e->code : UH_EINTERNAL;
            } else {
                rc = err_set(e, UH_EINTERNAL, "unexpected message (tag %d) from rank %d",
                             st.MPI_TAG, from);
            }
        }
        if (!busy) {
            /* Nothing to do: wait for rank 0's workers, and look at MPI again soon (200 us). */
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += 200000;
            if (until.tv_nsec >= 1000000000) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000;
            }
            pthread_mutex_lock(&h->lock);
            if (!h->stop && !h->arrived[h->next_merge % h->limit])
                pthread_cond_timedwait(&h->changed, &h->lock, &until);
            pthread_mutex_unlock(&h->lock);
        }
    }
    return rc;
}

static int hub_run(const run_config *c, bufset *results, err *e)
{
    hub h = {.c = c};
    runner *r = NULL;
    uint64_t *pending = calloc((size_t)world_size, sizeof *pending);
    bool *finished = calloc((size_t)world_size, sizeof *finished);
    pthread_mutex_init(&h.lock, NULL);
    pthread_cond_init(&h.changed, NULL);
    int rc = run_begin(c, results, &r, e);
    h.r = r;
    if (!rc) {
        h.count = run_partition_count(r);
        /* Memory bound on rank 0: each rank holds up to two batches (one computed, one asked
         * for ahead); as many again may wait for their turn. */
        h.limit = 4 * (uint64_t)world_size * c->threads;
        h.slots = calloc(h.limit * c->n_plugins, sizeof *h.slots);
        h.arrived = calloc(h.limit, sizeof *h.arrived);
    }
    if (!rc && (!pending || !finished || !h.slots || !h.arrived))
        rc = err_set(e, UH_ENOMEM, "out of memory");
    pthread_t local;
    bool started = false;
    if (!rc && !(started = !pthread_create(&local, NULL, hub_work, &h)))
        rc = err_set(e, UH_ENOMEM, "cannot start a thread");
    if (!rc)
        rc = hub_serve(&h, pending, finished, e);
    pthread_mutex_lock(&h.lock);
    h.stop = true;
    pthread_cond_broadcast(&h.changed);
    pthread_mutex_unlock(&h.lock);
    if (started)
        pthread_join(local, NULL);
    /* Every partition is merged: tell each rank there is no more work as it asks. */
    for (int rank = 1; rank < world_size && !rc; rank++) {
        while (!finished[rank]) {
            if (!pending[rank])
                MPI_Recv(&pending[rank], 1, MPI_UINT64_T, rank, TAG_REQUEST, MPI_COMM_WORLD,
                         MPI_STATUS_IGNORE);
            hub_answer(&h, rank, pending[rank], &finished[rank]);
            pending[rank] = 0;
        }
    }
    if (!rc)
        rc = run_finish(r, e);
    for (uint64_t i = 0; h.slots && i < h.limit * c->n_plugins; i++)
        bufs_free(&h.slots[i]);
    free(h.slots);
    free(h.arrived);
    free(pending);
    free(finished);
    run_end(r);
    pthread_cond_destroy(&h.changed);
    pthread_mutex_destroy(&h.lock);
    if (rc)
        for (uint32_t k = 0; k < c->n_plugins; k++)
            bufs_free(&results[k]);
    return rc;
}

int mpi_run_execute(const run_config *c, bufset *results, err *e)
{
    if (world_size == 1)
        return run_execute(c, results, e);
    return world_rank ? worker_run(c, e) : hub_run(c, results, e);
}
