/* Fuzz target: whole-array reading (array_read_file), i.e. .npy files and TIFF images or page
 * stacks through our libtiff usage, as masks, ROIs and dark frames are read. */
#include "fuzz_common.h"

#include <string.h>
#include <tiffio.h>

#include "array.h"

/* The largest bound any caller passes (ds_files.c): the reader itself must keep memory in
 * proportion to the file, whatever the header claims. */
#define FUZZ_ARRAY_MAX_BYTES ((uint64_t)1 << 32)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int quiet;
    if (!quiet) {
        /* array.c installs its own per-file handlers; the global ones only add noise. */
        TIFFSetErrorHandler(NULL);
        TIFFSetWarningHandler(NULL);
        quiet = 1;
    }
    const char *path;
    fuzz_memfd_fill(data, size, &path);
    npy_info info;
    void *out = NULL;
    err e = {0};
    if (array_read_file(path, FUZZ_ARRAY_MAX_BYTES, &info, &out, &e) == 0) {
        /* Touch every byte promised so that a short buffer shows up under ASan. */
        volatile unsigned char sink = 0;
        for (uint64_t i = 0; i < info.data_bytes; i += 1 + info.data_bytes / 4096)
            sink ^= ((unsigned char *)out)[i];
        if (info.data_bytes)
            sink ^= ((unsigned char *)out)[info.data_bytes - 1];
        (void)sink;
    }
    free(out);
    return 0;
}
