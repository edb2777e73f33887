/* Partition and tile planning. */
#include "plan.h"

#include <stdlib.h>

int plan_partitions(uint64_t num_frames, uint64_t frame_bytes, uint64_t target_bytes,
                    const uint8_t *roi, plan *out, err *e)
{
    if (!target_bytes)
        target_bytes = PLAN_PARTITION_BYTES;
    /* Frames per partition by bytes, at least one. */
    uint64_t per = frame_bytes ? target_bytes / frame_bytes : num_frames;
    if (per == 0)
        per = 1;
    uint64_t count = num_frames / per + (num_frames % per != 0);
    uint64_t min_count = num_frames < PLAN_MIN_PARTITIONS ? num_frames : PLAN_MIN_PARTITIONS;
    if (count < min_count)
        count = min_count;
    plan_part *parts = calloc(count, sizeof *parts);
    if (!parts)
        return err_set(e, UH_ENOMEM, "out of memory planning %llu partitions",
                       (unsigned long long)count);
    /* Partition i covers [i*n/count, (i+1)*n/count): sizes differ by at most one frame. Computed
     * as quotient and remainder so nothing overflows. */
    uint64_t q = num_frames / count, r = num_frames % count;
    uint64_t start = 0;
    for (uint64_t i = 0; i < count; i++) {
        uint64_t n = q + (i < r);
        parts[i].frame_start = start;
        parts[i].frame_count = n;
        uint64_t sel = n;
        if (roi) {
            sel = 0;
            for (uint64_t f = start; f < start + n; f++)
                sel += roi[f] != 0;
        }
        parts[i].selected = sel;
        start += n;
    }
    out->count = count;
    out->parts = parts;
    return 0;
}

void plan_free(plan *p)
{
    free(p->parts);
    p->parts = NULL;
    p->count = 0;
}

void plan_tiles(uint64_t sig_size, uint64_t rows, uint64_t elem, uint64_t preferred_depth,
                int full_frames, uint64_t *depth, uint64_t *band_rows)
{
    uint64_t frame = sig_size * elem;
    uint64_t row_bytes = rows > 1 ? frame / rows : frame;
    int may_band = !full_frames && rows > 1;
    uint64_t d;
    if (preferred_depth)
        d = preferred_depth;
    else if (frame * 8 <= PLAN_TILE_BYTES || !may_band)
        d = PLAN_TILE_BYTES / frame;
    else
        d = 8; /* frames too large for 8 to fit: cut them into bands of rows below */
    if (d < 1)
        d = 1;
    if (d > PLAN_MAX_DEPTH)
        d = PLAN_MAX_DEPTH;
    uint64_t b = rows;
    if (may_band && d * frame > PLAN_TILE_BYTES) {
        b = PLAN_TILE_BYTES / (d * row_bytes);
        if (b < 1)
            b = 1;
    }
    *depth = d;
    *band_rows = b;
}
