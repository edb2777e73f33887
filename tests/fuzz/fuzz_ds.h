/* Shared by the dataset fuzz targets: reading every frame of an opened dataset as a run would. */
#ifndef UDFHOST_FUZZ_DS_H
#define UDFHOST_FUZZ_DS_H

#include <stdlib.h>

#include "ds.h"

/* A frame larger than this is not read (the scratch buffer is the harness's memory, not the
 * reader's); opening still ran. Frames of files of a few KiB are far smaller unless compressed. */
#define FUZZ_MAX_SCRATCH ((uint64_t)64 << 20)
/* Frames read per dataset: every frame of a small file, bounded so that a dataset that claims
 * millions of tiny or padded frames cannot stall the fuzzer. */
#define FUZZ_MAX_FRAMES 4096

/* ds_read each frame (one at a time, into a scratch buffer of one frame as the runner's contract
 * allows), touch its first and last byte so that a frame that is not all there shows up under
 * ASan, and release it. Stops at the first read error. */
static inline void fuzz_ds_read_all(ds *d)
{
    if (!d->frame_bytes || d->frame_bytes > FUZZ_MAX_SCRATCH)
        return;
    unsigned char *scratch = malloc(d->frame_bytes);
    if (!scratch)
        abort();
    uint64_t n = d->num_frames < FUZZ_MAX_FRAMES ? d->num_frames : FUZZ_MAX_FRAMES;
    volatile unsigned char sink = 0;
    for (uint64_t i = 0; i < n; i++) {
        const unsigned char *p = NULL;
        size_t stride = 0;
        err e = {0};
        if (ds_read(d, i, 1, scratch, &p, &stride, &e))
            break;
        sink ^= p[0];
        sink ^= p[d->frame_bytes - 1];
        ds_release(d, i, 1);
    }
    (void)sink;
    free(scratch);
}

#endif
