/* Planning: the partitions of a run (contiguous frame ranges in nav order, sized by bytes) and the
 * tile geometry inside them (frames per tile, signal rows per band). Everything here depends only
 * on the dataset, the ROI and the plugins, never on the thread count, so results are the same
 * bits for any --threads. */
#ifndef UDFHOST_PLAN_H
#define UDFHOST_PLAN_H

#include <stdint.h>

#include "err.h"

/* Default partition size: large enough that per-partition costs (buffer allocation, merge) vanish,
 * small enough that a 1 GiB dataset still gives 2 cores plenty of partitions to balance. */
#define PLAN_PARTITION_BYTES (32ull << 20)

/* Every dataset of at least this many frames gets at least this many partitions. */
#define PLAN_MIN_PARTITIONS 16

/* Bytes of converted tile data a worker aims to keep in cache (per tile). */
#define PLAN_TILE_BYTES (256u << 10)

/* Frames per tile at most: enough to amortise per-tile calls. */
#define PLAN_MAX_DEPTH 64

typedef struct plan_part {
    uint64_t frame_start;
    uint64_t frame_count;
    uint64_t selected; /* frames in the ROI (frame_count without one) */
} plan_part;

typedef struct plan {
    uint64_t count;
    plan_part *parts; /* malloc'ed, count entries */
} plan;

/* Split num_frames frames of frame_bytes each into partitions of about target_bytes (0: the
 * default), at least min(units, PLAN_MIN_PARTITIONS) of them, sizes differing by at most one
 * unit. A unit is one frame, or with align > 1 the frames of one storage chunk: partition
 * boundaries then fall only where (frame + align_offset) % align == 0 (or at the ends), so no
 * chunk is decoded by two partitions. roi: NULL or num_frames bytes (non-zero = selected).
 * Returns 0 or UH_ENOMEM. */
int plan_partitions(uint64_t num_frames, uint64_t frame_bytes, uint64_t target_bytes,
                    uint64_t align, uint64_t align_offset, const uint8_t *roi, plan *out, err *e);

void plan_free(plan *p);

/* Tile geometry for frames of sig_size pixels whose first sig axis has `rows` rows, converted to
 * `elem` bytes per pixel. preferred_depth: the plugins' wish (0: none). full_frames: tiles must be
 * whole frames. Result: *depth frames per tile, *band_rows rows of the first sig axis per tile
 * (== rows for whole frames). The tile stays near PLAN_TILE_BYTES; with bands, a tile holds
 * about 8 frames so loops over frames amortise. */
void plan_tiles(uint64_t sig_size, uint64_t rows, uint64_t elem, uint64_t preferred_depth,
                int full_frames, uint64_t *depth, uint64_t *band_rows);

#endif
