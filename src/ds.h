/* Datasets: one reader interface, one source file per format (ds_raw.c, ...). A dataset is
 * num_frames frames in flat C order of nav_shape, each of sig_size pixels of one dtype. Readers
 * hand out raw frame bytes (in the file's dtype and byte order); the runner converts them. */
#ifndef UDFHOST_DS_H
#define UDFHOST_DS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <udfhost/udf.h>

#include "err.h"

/* What the user said about the dataset (flags now, an .ini descriptor later). Zero means "not
 * given" for every field. */
typedef struct ds_options {
    const char *path;
    const char *format;       /* "raw"; NULL: detect */
    udf_dtype dtype;          /* UDF_DTYPE_NONE: not given */
    bool big_endian;
    bool byte_order_given;    /* big_endian was stated (--byte-order, or < > = in --dtype) */
    uint32_t nav_ndim;
    uint64_t nav_shape[UDF_MAX_DIMS];
    uint32_t sig_ndim;
    uint64_t sig_shape[UDF_MAX_DIMS];
    uint64_t offset;          /* bytes before the first frame */
    uint64_t frame_header;    /* bytes before each frame */
    uint64_t frame_footer;    /* bytes after each frame */
    uint32_t sig_dims;        /* formats with one array (npy, hdf5): trailing dims that are the
                                 signal; 0: 2 */
    const char *hdf5_path;    /* the dataset inside an HDF5 file; NULL: the only 3-D/4-D one */
    int64_t sync_offset;      /* scan frame i is file frame i + sync_offset; frames outside the
                                 file are zeros (LiberTEM's sync_offset) */
    int io;                   /* ds_io: how mapped-layout data is read; 0 (DS_IO_AUTO): chosen */
} ds_options;

typedef struct ds ds;

typedef struct ds_reader {
    const char *name;
    /* File name endings that suggest this format (".tif|.tiff"), or NULL. */
    const char *extensions;
    /* Whether the first bytes of a file (n of them, n may be less than 512 for short files) are
     * this format's magic. NULL for formats without one (raw). */
    bool (*probe)(const unsigned char *head, size_t n);
    /* Fill d's shape, dtype and byte order from o and the file, and set up d->state. On failure
     * the reader frees what it allocated; d->path is set by the caller. Without o->nav_ndim the
     * nav shape is the file's (every frame it holds). After open the host may replace d's nav
     * shape and num_frames (sync offset): read() and release() must rely on the reader's own
     * state, not on those fields. */
    int (*open)(ds *d, const ds_options *o, err *e);
    /* Raw bytes of frames [first, first + count) (count >= 1, within the dataset): *data points at
     * frame `first`, frame i of the run at *data + i * *stride. The bytes may live in a mapping of
     * the file (no copy) or in `scratch` (capacity count * d->frame_bytes, may be NULL for readers
     * that never copy). Valid until release() of these frames. Safe to call from several threads. */
    int (*read)(ds *d, uint64_t first, uint64_t count, void *scratch, const unsigned char **data,
                size_t *stride, err *e);
    /* The caller is done with frames [first, first + count): a mapping may drop their pages
     * (keeps the resident set flat on data larger than RAM). Optional. */
    void (*release)(ds *d, uint64_t first, uint64_t count);
    void (*close)(ds *d);
} ds_reader;

struct ds {
    const ds_reader *reader;
    char *path;
    uint32_t nav_ndim;
    uint64_t nav_shape[UDF_MAX_DIMS];
    uint32_t sig_ndim;
    uint64_t sig_shape[UDF_MAX_DIMS];
    uint64_t num_frames;  /* product of nav_shape */
    uint64_t sig_size;    /* product of sig_shape */
    udf_dtype dtype;
    bool big_endian;      /* byte order of the stored data */
    size_t elem_size;
    uint64_t frame_bytes; /* sig_size * elem_size: the pixel bytes of one frame */
    uint64_t file_bytes;  /* size of the data file(s) */
    const char *io;       /* how frames are read, for udfhost info: "mmap", "libtiff", ... */
    int64_t sync_offset;  /* see ds_options; 0: scan frames are file frames */
    uint64_t file_frames; /* frames the file holds (== num_frames without a sync offset) */
    uint64_t frames_per_chunk; /* >1: the file stores frames in chunks of this many (in file
                                  frame order, from frame 0); partitions do not cut them */
    const uint8_t *roi;   /* the run's ROI (NULL: all), set before the run: a stream reader drops
                             frames no partition will ask for */
    int io_request;       /* ds_options.io, for ds_map_frames */
    void *state;          /* the reader's */
};

/* Open the dataset o->path with the reader named o->format (or detected). Returns 0 and *out, or a
 * negative status with a message naming the file and the problem. */
int ds_open(const ds_options *o, ds **out, err *e);

/* A dataset over ndim dimensions of shape in memory the caller owns and keeps unchanged until
 * ds_close (C order, native byte order): the last sig_dims are the signal. No copy. Returns 0 and
 * *out, or UH_EUSAGE / UH_ENOMEM. */
int ds_open_memory(const void *data, udf_dtype dtype, uint32_t ndim, const uint64_t *shape,
                   uint32_t sig_dims, ds **out, err *e);

/* Close and free; NULL is fine. */
void ds_close(ds *d);

/* What the runner calls instead of d->reader->read/release: applies the sync offset (frames
 * outside the file come out as zeros, assembled in scratch, which holds count * frame_bytes).
 * Readers never see scan frame numbers, only file frame numbers within [0, file_frames). */
int ds_read(ds *d, uint64_t first, uint64_t count, void *scratch, const unsigned char **data,
            size_t *stride, err *e);
void ds_release(ds *d, uint64_t first, uint64_t count);

/* Set d's shape fields from o's nav/sig shape and dtype, checking every product for overflow.
 * For readers whose shapes come from flags. Returns 0 or UH_EDATA/UH_EUSAGE. */
int ds_shape_from_options(ds *d, const ds_options *o, err *e);

/* For readers whose files describe their own shapes: lay the user's --sig-shape / --nav-shape
 * over d's (set from the file) when given. Only a reshape: the pixels per frame and the number of
 * frames must stay, else UH_EUSAGE naming the file and both shapes. The nav form needs
 * d->num_frames set. */
int ds_apply_user_sig(ds *d, const ds_options *o, err *e);
int ds_apply_user_nav(ds *d, const ds_options *o, err *e);

/* How ds_map_frames reads (ds_options.io, --io): auto (mmap unless the data exceeds physical
 * memory, then read), mmap, read (pread into a worker buffer, pages dropped behind), direct
 * (O_DIRECT). */
typedef enum ds_io { DS_IO_AUTO, DS_IO_MMAP, DS_IO_READ, DS_IO_DIRECT } ds_io;
const char *ds_io_name(ds_io mode);

/* Frames at a fixed stride in one file, read through a read-only mapping with no copy: for raw
 * and every format whose frames lie contiguously after a header (npy, mrc, uncompressed tiff,
 * mib). d's shape must be set. `first` is the byte offset of frame 0's first pixel, `stride` the
 * bytes from one frame's first pixel to the next (>= frame_bytes). Checks that the file holds
 * every frame ("file too short ..." otherwise), maps it, and sets d->state and d->file_bytes; the
 * reader then uses ds_map_read, ds_map_release and ds_map_close. */
int ds_map_frames(ds *d, const char *path, uint64_t first, uint64_t stride, err *e);
int ds_map_read(ds *d, uint64_t first, uint64_t count, void *scratch, const unsigned char **data,
                size_t *stride, err *e);
void ds_map_release(ds *d, uint64_t first, uint64_t count);
void ds_map_close(ds *d);

/* Whether path names one file per frame: a directory, or a glob pattern that is not itself a
 * file's name. Such datasets are read by ds_files_reader. */
bool ds_files_pattern(const char *path);

/* The names of all formats, "raw, npy, ..." (for messages and --help). */
const char *ds_format_names(void);

extern const ds_reader ds_raw_reader, ds_npy_reader, ds_mrc_reader, ds_tiff_reader, ds_mib_reader,
    ds_hdf5_reader, ds_files_reader, ds_stdin_reader;

#endif
