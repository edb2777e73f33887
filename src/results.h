/* Writing results: every non-private buffer of every plugin as <dir>/<plugin>.<buffer>.npy, all
 * or nothing: each is written to a temporary file in <dir>, flushed to disk, and only when every
 * file is complete are they renamed into place. */
#ifndef UDFHOST_RESULTS_H
#define UDFHOST_RESULTS_H

#include <stdbool.h>
#include <stdint.h>

#include "bufs.h"
#include "ds.h"
#include "err.h"
#include "plugin.h"
#include "preview.h"

/* Create dir (and missing parents) if needed and check it is a writable directory, before any
 * processing starts. Returns 0 or UH_EIO. */
int results_prepare_dir(const char *dir, err *e);

/* Shape of buffer i of pl in the result file: nav shape + extra (nav), sig shape + extra (sig),
 * extra (single). Returns ndim. */
uint32_t results_shape(const ds *d, const plugin *pl, uint32_t i, uint64_t *shape);

/* What results_write writes besides the .npy files. */
typedef struct results_opts {
    const char *record;       /* text of <dir>/udfhost-run.json, or NULL */
    bool preview;             /* <plugin>.<buffer>[.<k>].png for buffers with a 2-D base shape */
    preview_scale scale;
    bool tiff;                /* <plugin>.<buffer>.tif (float32; extra dims as pages) too */
} results_opts;

/* Before processing, unless --overwrite: 0 when none of the files a whole run writes into dir
 * (what results_write writes for these buffers and opt, and udfhost-run.json) exists, else
 * UH_EIO with a message naming the first that does. The plugins must be set up (buffers
 * declared). */
int results_check_absent(const ds *d, plugin **plugins, uint32_t n_plugins, const char *dir,
                         const results_opts *opt, err *e);

/* Write all results (and what opt asks for); on failure no new file is left in dir and existing
 * files are untouched. opt may be NULL. */
int results_write(const ds *d, plugin **plugins, const bufset *results, uint32_t n_plugins,
                  const char *dir, const results_opts *opt, err *e);

#endif
