/* Partition and tile planning. */
#include "plan.h"

#include <stdlib.h>

/* Start frame of unit u: units are runs of `align` frames, the first cut short so that unit
 * boundaries fall where (frame + offset) % align == 0. */
static uint64_t unit_start(uint64_t u, uint64_t align, uint64_t first, uint64_t num_frames)
{
    if (u == 0)
        return 0;
    uint64_t f = first + (u - 1) * align;
    return f < num_frames ? f : num_frames;
}

int plan_partitions(uint64_t num_frames, uint64_t frame_bytes, uint64_t target_bytes,
                    uint64_t align, uint64_t align_offset, const uint8_t *roi, plan *out, err *e)
{
    if (!target_bytes)
        target_bytes = PLAN_PARTITION_BYTES;
    if (align < 1)
        align = 1;
    /* Units of whole chunks (single frames without alignment): the first unit ends at the first
     * aligned boundary after 0. */
    uint64_t first = (align - align_offset % align) % align;
    if (first == 0)
        first = align;
    if (first > num_frames)
        first = num_frames;
    uint64_t units = num_frames ? 1 + (num_frames - first + align - 1) / align : 0;
    /* Units per partition by bytes, at least one. */
    uint64_t unit_bytes = frame_bytes && align > UINT64_MAX / frame_bytes ? UINT64_MAX
                                                                          : frame_bytes * align;
    uint64_t per = unit_bytes ? target_bytes / unit_bytes : units;
    if (per == 0)
        per = 1;
    uint64_t count = units / per + (units % per != 0);
    uint64_t min_count = units < PLAN_MIN_PARTITIONS ? units : PLAN_MIN_PARTITIONS;
    if (count < min_count)
        count = min_count;
    plan_part *parts = calloc(count ? count : 1, sizeof *parts);
    if (!parts)
        return err_set(e, UH_ENOMEM, "out of memory planning %llu partitions",
                       (unsigned long long)count);
    /* Partition i covers units [i*U/count, (i+1)*U/count): sizes differ by at most one unit.
     * Computed as quotient and remainder so nothing overflows. */
    uint64_t q = units / count, r = units % count;
    uint64_t u = 0;
    for (uint64_t i = 0; i < count; i++) {
        uint64_t nu = q + (i < r);
        uint64_t start = unit_start(u, align, first, num_frames);
        uint64_t end = unit_start(u + nu, align, first, num_frames);
        parts[i].frame_start = start;
        parts[i].frame_count = end - start;
        uint64_t sel = end - start;
        if (roi) {
            sel = 0;
            for (uint64_t f = start; f < end; f++)
                sel += roi[f] != 0;
        }
        parts[i].selected = sel;
        u += nu;
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
