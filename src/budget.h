/* Memory budget: before any data is read, the bytes a run's buffers will take against what the
 * process can get, so that a run that cannot fit fails at once and not hours later. */
#ifndef UDFHOST_BUDGET_H
#define UDFHOST_BUDGET_H

#include "err.h"
#include "run.h"

/* 0 if the result buffers of c's plugins (with a second copy for live results), and the partition
 * buffers in flight (two per worker thread), fit into what the process can get: its address
 * space and data limits (ulimit -v, ulimit -d) less what it uses already, and RAM + swap. Else
 * UH_ENOMEM: "out of memory for result buffers (needs N GiB, ...)" naming the plugin that needs
 * the most and the limit. The count is a lower bound (tiles, stacks and the plugins' own memory
 * come on top), so a run refused here could never have finished. */
int budget_check(const run_config *c, err *e);

#endif
