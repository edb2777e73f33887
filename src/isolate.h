/* --isolate: partitions computed in worker processes, so that a plugin that crashes, hangs or
 * runs out of memory ends the run with a message instead of taking the host down with it. */
#ifndef UDFHOST_ISOLATE_H
#define UDFHOST_ISOLATE_H

#include "bufs.h"
#include "err.h"
#include "run.h"

/* run_execute with c->threads worker processes of one thread each, forked now (the dataset is
 * open and the plugins are set up). The parent hands out partitions, receives each partition's
 * buffers through shared memory and merges them in partition order, so the results are the
 * same bits as run_execute's. A worker that dies is reported as "plugin X crashed with SIGSEGV
 * in HOOK on partition P"; with c->timeout, one whose plugin call overruns is killed and
 * reported. Every worker is gone when this returns. */
int isolate_execute(const run_config *c, bufset *results, err *e);

#endif
