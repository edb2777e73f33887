/* Fuzz target: opening a dataset file with each self-describing format's reader (npy, mrc, tiff,
 * mib, and by detection) and reading every frame through ds_read, as a run would. Built with
 * -DFUZZ_HDF5 it is fuzz_hdf5: the same with the hdf5 reader only (slow, and a real file). */
#include "fuzz_common.h"

#include <string.h>

#include "fuzz_ds.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
#ifdef FUZZ_HDF5
    static const char *const formats[] = {"hdf5"};
#else
    static const char *const formats[] = {"npy", "mrc", "tiff", "mib", NULL};
#endif
    static int verbose = -1;
    if (verbose < 0)
        verbose = getenv("FUZZ_VERBOSE") != NULL; /* say why each reader refused the input */
    const char *path;
#ifdef FUZZ_HDF5
    /* HDF5 wants the real path of the file, which a memfd has not. */
    fuzz_tmpfile_fill(data, size, "x.h5", &path);
#else
    fuzz_memfd_fill(data, size, &path);
#endif
    /* Both ways ds_map reads frames, chosen by the input so that each input replays the same. */
    int io = size & 1 ? DS_IO_READ : DS_IO_MMAP;
    for (size_t f = 0; f < sizeof formats / sizeof formats[0]; f++) {
        /* NULL: detection by magic, as without --format. */
        ds_options o = {.path = path, .format = formats[f], .io = io};
        ds *d = NULL;
        err e = {0};
        if (ds_open(&o, &d, &e) == 0) {
            fuzz_ds_read_all(d);
            ds_close(d);
        } else if (verbose) {
            fprintf(stderr, "%s: %s\n", o.format ? o.format : "detect", e.msg);
        }
    }
    return 0;
}
