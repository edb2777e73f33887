/* Runs across machines: `mpirun -n N udfhost run ...`. Rank 0 hands out partitions as ranks ask,
 * merges them in partition order and alone writes results. Without configure --with-mpi, or when
 * not started by an MPI launcher, there is one rank and everything here is a no-op. */
#ifndef UDFHOST_MPI_RUN_H
#define UDFHOST_MPI_RUN_H

#include "config.h"
#include "err.h"
#include "run.h"

#ifdef HAVE_MPI

/* [main thread, first thing in main] Join the MPI job when an MPI launcher (mpirun, srun)
 * started this process; otherwise do nothing, so that a plain start needs no MPI runtime. */
void mpi_run_start(int *argc, char ***argv);

/* Number of ranks in the job (1 when not started by a launcher); *rank is this one's (0..N-1). */
int mpi_run_world(int *rank);

/* Like run_execute, on every rank of the job at once, each with c->threads workers. On rank 0 a
 * success leaves every plugin's whole result in results, bit-identical to run_execute's; on other
 * ranks results are left untouched and unallocated. A failure on any rank fails rank 0 with a
 * message naming that rank, its host and the cause. A rank other than 0 whose failure was
 * handed to rank 0 does not return: rank 0 ends the job (mpi_run_end). */
int mpi_run_execute(const run_config *c, bufset *results, err *e);

/* [main thread, before printing a failure] Prefix "rank R on HOST" to a failure of a job of
 * several ranks, unless it already names one. */
void mpi_run_name_failure(err *e);

/* [main thread, last thing in main] Leave the MPI job: after a failure of a job of several
 * ranks, end every rank (MPI_Abort with the exit status). Returns status. */
int mpi_run_end(int status);

#else

static inline void mpi_run_start(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
}

static inline int mpi_run_world(int *rank)
{
    *rank = 0;
    return 1;
}

static inline int mpi_run_execute(const run_config *c, bufset *results, err *e)
{
    return run_execute(c, results, e);
}

static inline void mpi_run_name_failure(err *e)
{
    (void)e;
}

static inline int mpi_run_end(int status)
{
    return status;
}

#endif
#endif
