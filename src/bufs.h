/* Buffer sets: one plugin's buffers for one partition or for the whole result, in one allocation,
 * and the views hooks see of them. */
#ifndef UDFHOST_BUFS_H
#define UDFHOST_BUFS_H

#include <stdbool.h>
#include <stdint.h>
#include <udfhost/udf.h>

#include "err.h"
#include "plugin.h"

typedef struct bufset {
    uint32_t n;
    udf_view *views; /* whole buffers: data, count (items), extra_size; n entries */
    void *mem;       /* the single allocation behind every data pointer */
} bufset;

/* Allocate buffers for pl, filled with each declaration's fill value. For a partition (result false): nav buffers hold nav_items
 * items, sig buffers sig_items, single 1; result-only buffers get data NULL and count 0. For the
 * result (result true): every buffer, nav ones with nav_items items. Each buffer starts on a
 * 64-byte boundary. Returns 0 or UH_ENOMEM with the size that did not fit. */
int bufs_alloc(const plugin *pl, bufset *bs, uint64_t nav_items, uint64_t sig_items, bool result,
               err *e);

/* Bytes bufs_alloc would allocate for these arguments (UINT64_MAX if that overflows). */
uint64_t bufs_bytes(const plugin *pl, uint64_t nav_items, uint64_t sig_items, bool result);

void bufs_free(bufset *bs);

/* Set the nav buffers of a result to NaN (float dtypes) or 0 (others) at frames the ROI leaves
 * out. */
void bufs_fill_unselected(bufset *result, const uint8_t *roi, uint64_t num_frames);

/* Copy the nav items of a partition covering frames [frame_start, frame_start + frame_count) into
 * the result at their frames (the selected ones, in order, when roi is not NULL). */
void bufs_place_nav(bufset *result, const bufset *part, uint64_t frame_start,
                    uint64_t frame_count, const uint8_t *roi);

/* Views for a tile: nav views cover items [item_start, item_start + depth), sig views the pixels
 * [sig_start, sig_start + sig_count), single views everything. */
void bufs_views_tile(const bufset *bs, udf_view *out, uint64_t item_start, uint64_t depth,
                     uint64_t sig_start, uint64_t sig_count);

/* Views for merge: sig and single as they are, nav and result-only with data NULL and count 0. */
void bufs_views_merge(const bufset *bs, udf_view *out);

#endif
