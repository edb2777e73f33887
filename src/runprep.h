/* What a run needs besides the runner, shared by `udfhost run` and the library (api.c). */
#ifndef UDFHOST_RUNPREP_H
#define UDFHOST_RUNPREP_H

#include <stdint.h>
#include <udfhost/udf.h>

#include "ds.h"
#include "err.h"
#include "plugin.h"

/* Read a ROI file: a .npy or TIFF of nav shape (or flat), bool or integer, non-zero = selected.
 * *roi: d->num_frames bytes of 0/1 (caller frees); *selected: how many are 1. UH_EDATA naming
 * the file otherwise. */
int runprep_roi_load(const char *path, const ds *d, uint8_t **roi, uint64_t *selected, err *e);

/* When every plugin asked for only some frames (select_frames), process only their union, within
 * the ROI (*roi is replaced, and may be NULL before); the plugins' meta then shows the narrowed
 * ROI. */
int runprep_narrow(plugin **plugins, uint32_t n, const ds *d, uint8_t **roi, uint64_t *selected,
                   err *e);

/* The dataset as plugins see it, before plugin_setup sets each one's input dtype. */
void runprep_meta_fill(udf_meta *m, const ds *d, const uint8_t *roi, uint64_t selected);

/* One worker per online core, 1 to 1024. */
unsigned runprep_default_threads(void);

#endif
