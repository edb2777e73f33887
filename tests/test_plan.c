/* Partition and tile planning: coverage, balance, independence of thread count, ROI counts. */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "plan.h"

static void check_cover(const plan *p, uint64_t frames)
{
    uint64_t next = 0, lo = UINT64_MAX, hi = 0;
    for (uint64_t i = 0; i < p->count; i++) {
        cr_assert_eq(p->parts[i].frame_start, next, "partition %llu starts where the last ended",
                     (unsigned long long)i);
        cr_assert_gt(p->parts[i].frame_count, 0);
        next += p->parts[i].frame_count;
        lo = p->parts[i].frame_count < lo ? p->parts[i].frame_count : lo;
        hi = p->parts[i].frame_count > hi ? p->parts[i].frame_count : hi;
    }
    cr_assert_eq(next, frames, "partitions cover every frame once");
    cr_assert_leq(hi - lo, 1, "sizes differ by at most one frame");
}

Test(plan, partitions_by_bytes)
{
    plan p;
    err e = {0};
    /* 65536 frames of 128 KiB (8 GiB) at 32 MiB per partition: 256 partitions of 256 frames. */
    cr_assert_eq(plan_partitions(65536, 128 << 10, 0, 1, 0, NULL, &p, &e), 0);
    cr_assert_eq(p.count, 256);
    cr_assert_eq(p.parts[0].frame_count, 256);
    check_cover(&p, 65536);
    plan_free(&p);
}

Test(plan, odd_sizes_and_minimum_count)
{
    uint64_t frames[] = {1, 2, 15, 16, 17, 1021, 65537};
    for (size_t i = 0; i < sizeof frames / sizeof frames[0]; i++) {
        plan p;
        err e = {0};
        cr_assert_eq(plan_partitions(frames[i], 4099, 1 << 20, 1, 0, NULL, &p, &e), 0);
        check_cover(&p, frames[i]);
        uint64_t want_min = frames[i] < PLAN_MIN_PARTITIONS ? frames[i] : PLAN_MIN_PARTITIONS;
        cr_assert_geq(p.count, want_min);
        plan_free(&p);
    }
}

Test(plan, frames_larger_than_target)
{
    plan p;
    err e = {0};
    cr_assert_eq(plan_partitions(40, 1 << 30, 1 << 20, 1, 0, NULL, &p, &e), 0);
    cr_assert_eq(p.count, 40, "one frame per partition when a frame exceeds the target");
    check_cover(&p, 40);
    plan_free(&p);
}

Test(plan, roi_counts_selected_frames)
{
    uint8_t roi[100] = {0};
    for (int i = 0; i < 100; i += 3)
        roi[i] = 1;
    plan p;
    err e = {0};
    cr_assert_eq(plan_partitions(100, 1000, 10000, 1, 0, roi, &p, &e), 0);
    uint64_t total = 0;
    for (uint64_t i = 0; i < p.count; i++) {
        uint64_t want = 0;
        for (uint64_t f = p.parts[i].frame_start;
             f < p.parts[i].frame_start + p.parts[i].frame_count; f++)
            want += roi[f];
        cr_assert_eq(p.parts[i].selected, want);
        total += want;
    }
    cr_assert_eq(total, 34);
    plan_free(&p);
}

Test(plan, tiles_whole_frames_when_small)
{
    uint64_t depth, band;
    plan_tiles(64 * 64, 64, 4, 0, 0, &depth, &band);
    cr_assert_eq(band, 64);
    cr_assert_eq(depth, PLAN_TILE_BYTES / (64 * 64 * 4));
    cr_assert_geq(depth, 8);
}

Test(plan, tiles_bands_for_large_frames)
{
    uint64_t depth, band;
    plan_tiles(512 * 512, 512, 4, 0, 0, &depth, &band);
    cr_assert_eq(depth, 8);
    cr_assert_lt(band, 512);
    cr_assert_geq(band, 1);
    cr_assert_leq(depth * band * 512 * 4, PLAN_TILE_BYTES);
}

Test(plan, tiles_full_frames_when_required)
{
    uint64_t depth, band;
    plan_tiles(512 * 512, 512, 4, 0, 1, &depth, &band);
    cr_assert_eq(band, 512);
    cr_assert_eq(depth, 1);
    plan_tiles(64, 8, 4, 7, 0, &depth, &band);
    cr_assert_eq(depth, 7, "the plugin's preferred depth is used");
    plan_tiles(1000000, 1, 8, 0, 0, &depth, &band);
    cr_assert_eq(band, 1, "a 1-row signal cannot be banded");
    cr_assert_eq(depth, 1);
}

Test(plan, chunk_aligned_partitions)
{
    /* 1000 frames stored in chunks of 24 frames, the scan shifted by a sync offset of 5: every
     * boundary but the ends falls on (frame + 5) % 24 == 0, partitions tile the frames. */
    plan p;
    err e = {0};
    for (uint64_t target = 1; target <= (1u << 20); target *= 7) {
        cr_assert_eq(plan_partitions(1000, 1000, target, 24, 5, NULL, &p, &e), 0);
        uint64_t next = 0;
        for (uint64_t i = 0; i < p.count; i++) {
            cr_assert_eq(p.parts[i].frame_start, next);
            cr_assert_gt(p.parts[i].frame_count, 0);
            next += p.parts[i].frame_count;
            if (i + 1 < p.count)
                cr_assert_eq((next + 5) % 24, 0, "boundary %llu cuts a chunk (target %llu)",
                             (unsigned long long)next, (unsigned long long)target);
        }
        cr_assert_eq(next, 1000);
        /* 1000 frames make 43 chunk units (the first 19 frames long, the last 12): at least 16
         * partitions, and never more than units. */
        cr_assert_geq(p.count, 16);
        cr_assert_leq(p.count, 43);
        plan_free(&p);
    }
    /* Fewer units than PLAN_MIN_PARTITIONS: one partition per chunk. */
    cr_assert_eq(plan_partitions(50, 8, 0, 20, 0, NULL, &p, &e), 0);
    cr_assert_eq(p.count, 3);
    cr_assert_eq(p.parts[0].frame_count, 20);
    cr_assert_eq(p.parts[2].frame_count, 10);
    plan_free(&p);
}
