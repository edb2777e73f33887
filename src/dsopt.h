/* The dataset options every command shares (--format, --dtype, shapes, offsets, ...) and .ini
 * dataset descriptors, which give the same settings in a file: flags given on the command line
 * win over the descriptor. */
#ifndef UDFHOST_DSOPT_H
#define UDFHOST_DSOPT_H

#include <stdbool.h>
#include <stdint.h>

#include "cli.h"
#include "ds.h"
#include "err.h"

/* Option ids 100..199 belong to the dataset options. */
enum {
    DSOPT_FORMAT = 100,
    DSOPT_DTYPE,
    DSOPT_BYTE_ORDER,
    DSOPT_NAV_SHAPE,
    DSOPT_SIG_SHAPE,
    DSOPT_OFFSET,
    DSOPT_FRAME_HEADER,
    DSOPT_FRAME_FOOTER,
    DSOPT_SIG_DIMS,
    DSOPT_HDF5_PATH,
    DSOPT_SYNC_OFFSET,
    DSOPT_IO,
    DSOPT_LAST
};

/* The entries of the dataset options, to splice into a command's table. */
#define DSOPT_CLI_OPTIONS                                                                          \
    {"format", 0, "FORMAT",                                                                        \
     "dataset format: raw npy tiff mrc mib hdf5 (default: detected from the file)",               \
     DSOPT_FORMAT},                                                                                \
    {"dtype", 0, "DTYPE",                                                                          \
     "element type: uint8 uint16 uint32 int8 int16 int32 float32 float64, or <u2 >f4 ...",        \
     DSOPT_DTYPE},                                                                                 \
    {"byte-order", 0, "ORDER", "little (default) or big, unless --dtype says < or >",             \
     DSOPT_BYTE_ORDER},                                                                            \
    {"nav-shape", 0, "SHAPE", "scan shape, C order, e.g. 256,256 (1 to 4 dims)", DSOPT_NAV_SHAPE}, \
    {"sig-shape", 0, "SHAPE", "detector frame shape, e.g. 128,128 (1 to 4 dims)",                 \
     DSOPT_SIG_SHAPE},                                                                             \
    {"offset", 0, "BYTES", "bytes to skip at the start of the file (default 0)", DSOPT_OFFSET},   \
    {"frame-header", 0, "BYTES", "bytes to skip before each frame (default 0)",                    \
     DSOPT_FRAME_HEADER},                                                                          \
    {"frame-footer", 0, "BYTES", "bytes to skip after each frame (default 0)",                     \
     DSOPT_FRAME_FOOTER},                                                                          \
    {"sig-dims", 0, "N", "npy, hdf5: the last N dimensions of the array are the signal (default 2)", \
     DSOPT_SIG_DIMS},                                                                              \
    {"hdf5-path", 0, "PATH",                                                                       \
     "hdf5: the dataset in the file, e.g. /data/frames (default: the only 3-D or 4-D one)",       \
     DSOPT_HDF5_PATH},                                                                             \
    {"sync-offset", 0, "N",                                                                        \
     "scan frame i is file frame i+N: skip N frames (N > 0) or pad -N missing frames at the "      \
     "start (N < 0)",                                                                              \
     DSOPT_SYNC_OFFSET},                                                                           \
    {"io", 0, "MODE",                                                                              \
     "how mapped-layout data is read: auto (default), mmap, read (pread), direct (O_DIRECT)",     \
     DSOPT_IO}

typedef struct dsopt {
    ds_options ds;
    bool byte_order_given, dtype_order_explicit, big_endian_flag;
    bool sync_given;
    int io;           /* ds_io; DS_IO_AUTO when not given */
    /* From an .ini's [udfhost] section (0 / NULL: not given). */
    uint64_t threads;
    char *output;
    char *owned_path; /* ds.path when it came from an .ini (resolved against its directory) */
    char **ini_values; /* the .ini's setting strings, which ds points into */
} dsopt;

static inline bool dsopt_is(int id)
{
    return id >= DSOPT_FORMAT && id < DSOPT_LAST;
}

/* Handle one dataset option. Returns 0 or UH_EUSAGE. */
int dsopt_handle(dsopt *s, int id, const char *value, err *e);

/* After parsing: when the dataset is an .ini descriptor, read it and fill in what the command
 * line did not give; apply --byte-order. Returns 0, or UH_EUSAGE / UH_EDATA naming the file,
 * line and key. */
int dsopt_finish(dsopt *s, err *e);

void dsopt_free(dsopt *s);

#endif
