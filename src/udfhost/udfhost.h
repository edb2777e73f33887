/* libudfhost: the udfhost engine as a library. Open a dataset, run UDF plugins over it on a
 * thread pool, and read every result buffer in memory. The udfhost command-line tool and the
 * Python package `udfhost` are its clients.
 *
 * Conventions
 * - Functions that can fail return 0 or a negative udfhost_code and, when err is not NULL, fill
 *   it with the code and one line naming the file, plugin or parameter and the problem (the line
 *   `udfhost run` prints after "udfhost: "). A call that fails changes nothing the caller sees.
 * - The library never exits, never prints and never installs signal handlers on its own. The one
 *   handler it offers (udfhost_guard_bus_errors) is installed only when the caller asks.
 * - Objects are not thread-safe unless a function says so: use one from one thread at a time.
 *   Several datasets and runs may be used at once from different threads, also several runs
 *   over one dataset (a file or memory; standard input serves one run).
 * - Ownership: every object made by udfhost_*_open/create/take is freed by the matching
 *   udfhost_*_close/free; NULL is fine there. Pointers returned by accessors stay valid as long
 *   as the object they came from.
 * - The plugin ABI (udfhost/udf.h) is a separate contract: every plugin loads unchanged.
 */
#ifndef UDFHOST_UDFHOST_H
#define UDFHOST_UDFHOST_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* This header's version: 1.0. Functions are only added; numbers never move. */
#define UDFHOST_API_MAJOR 1
#define UDFHOST_API_MINOR 0

/* Status codes. They equal the command line's kinds of failure (udfhost(1), EXIT STATUS). */
typedef enum udfhost_code {
    UDFHOST_OK = 0,
    UDFHOST_EUSAGE = -1,    /* bad option, parameter or argument (the CLI's exit 2) */
    UDFHOST_EDATA = -2,     /* bad or unreadable input data: dataset, ROI, corrections (3) */
    UDFHOST_EPLUGIN = -3,   /* a plugin failed to load or reported an error (4) */
    UDFHOST_EIO = -4,       /* writing results failed (5): the library writes none itself */
    UDFHOST_ENOMEM = -5,    /* out of memory (6) */
    UDFHOST_EINTERNAL = -6, /* a bug in udfhost (70) */
    UDFHOST_ECANCELLED = -7 /* udfhost_run_cancel was called, or SIGINT/SIGTERM in the tool */
} udfhost_code;

typedef struct udfhost_error {
    int code;          /* a udfhost_code */
    char message[1024]; /* one line, no trailing newline */
} udfhost_error;

/* "usage", "data", "plugin", "io", "memory", "internal", "cancelled"; "?" for others. */
const char *udfhost_code_name(int code);

/* The library's version, e.g. "0.1.0". */
const char *udfhost_version(void);

/* [any thread, once] Install a SIGBUS handler so that a mapped dataset file that shrinks or
 * fails while a run reads it ends that run with UDFHOST_EDATA instead of killing the process.
 * A SIGBUS outside a run's reads goes on to the handler that was installed before (or the
 * default action). Returns 0, or UDFHOST_EINTERNAL if sigaction failed. */
int udfhost_guard_bus_errors(void);

/* --- datasets ------------------------------------------------------------------------------ */

typedef struct udfhost_dataset udfhost_dataset;

/* Open the dataset at path: a file of any format `udfhost run` reads, a directory or glob of one
 * file per frame, or an .ini descriptor. options is NULL or a NULL-terminated list of name,
 * value pairs, the dataset options of `udfhost run` by their long names with '-' or '_' (and
 * messages name them as given; with a leading "--" as the tool's flags):
 * "format", "dtype", "byte_order", "nav_shape" ("256,256"), "sig_shape", "offset",
 * "frame_header", "frame_footer", "sig_dims", "hdf5_path", "sync_offset", "io". The file stays
 * mapped (read-only, never written) until udfhost_dataset_close. */
int udfhost_dataset_open(const char *path, const char *const *options, udfhost_dataset **out,
                         udfhost_error *err);

/* A dataset over memory the caller owns: ndim dimensions of shape, the last sig_dims of them
 * the signal (1 to 4; the others, at least one, the scan), C order, contiguous, native byte
 * order, of dtype ("uint8" "uint16" "uint32" "int8" "int16" "int32" "float32" "float64" or
 * NumPy codes such as "<u2"). Nothing is copied: data must stay valid and unchanged until
 * udfhost_dataset_close. */
int udfhost_dataset_from_memory(const void *data, const char *dtype, uint32_t ndim,
                                const uint64_t *shape, uint32_t sig_dims, udfhost_dataset **out,
                                udfhost_error *err);

void udfhost_dataset_close(udfhost_dataset *ds);

#define UDFHOST_MAX_DIMS 8

/* What `udfhost info` shows. Strings belong to the dataset. */
typedef struct udfhost_dataset_info {
    const char *path;      /* as given; "<memory>" for memory datasets */
    const char *format;    /* "raw", "npy", "mib", "hdf5", "memory", ... */
    const char *dtype;     /* the stored element type: "uint16", ... */
    int big_endian;        /* stored byte order */
    uint32_t nav_ndim;
    uint64_t nav_shape[UDFHOST_MAX_DIMS];
    uint32_t sig_ndim;
    uint64_t sig_shape[UDFHOST_MAX_DIMS];
    uint64_t num_frames;   /* product of nav_shape */
    uint64_t frame_bytes;  /* bytes of one frame's pixels */
    uint64_t file_bytes;   /* size of the data file(s) */
    const char *io;        /* how frames are read: "mmap", "read", "libtiff", "memory", ... */
    int64_t sync_offset;   /* scan frame i is file frame i + sync_offset */
    uint64_t file_frames;  /* frames the file holds (num_frames without a sync offset) */
} udfhost_dataset_info;

void udfhost_dataset_describe(const udfhost_dataset *ds, udfhost_dataset_info *info);

/* --- runs ---------------------------------------------------------------------------------- */

typedef struct udfhost_run udfhost_run;

/* A run of plugins over ds (which must outlive the run). Set it up with the functions below,
 * then udfhost_run_execute once. */
int udfhost_run_create(udfhost_dataset *ds, udfhost_run **out, udfhost_error *err);

/* Free the run (not its taken results). Must not be called while execute runs. */
void udfhost_run_free(udfhost_run *run);

/* Add a plugin: a name found in $UDFHOST_PLUGIN_PATH or the installed plugin directory, or a
 * path containing '/' (a name found nowhere is UDFHOST_EUSAGE, a file that is no plugin of this
 * ABI UDFHOST_EPLUGIN, as in the tool). params: NULL or a NULL-terminated list of "name=value" strings, as `-p`
 * takes them (repeatable parameters repeated). The plugin is loaded and its parameters are
 * checked now. Plugins run in the order added, all in one pass over the data; a name may be
 * given once. Returns the plugin's index through *index (may be NULL). */
int udfhost_run_add_plugin(udfhost_run *run, const char *spec, const char *const *params,
                           uint32_t *index, udfhost_error *err);

/* Worker threads (default 0: one per core, at most 1024). */
int udfhost_run_set_threads(udfhost_run *run, unsigned threads, udfhost_error *err);

/* Largest partition in bytes of input (default 0: 32 MiB). */
int udfhost_run_set_partition_bytes(udfhost_run *run, uint64_t bytes, udfhost_error *err);

/* Process only frames whose roi byte is non-zero: n must be the dataset's frame count (flat nav
 * order). Copied. NULL: all frames. */
int udfhost_run_set_roi(udfhost_run *run, const uint8_t *roi, uint64_t n, udfhost_error *err);

/* A small array handed to the library, read only during the call that takes it. */
typedef struct udfhost_array {
    const void *data;   /* C order, native byte order */
    const char *dtype;  /* as for udfhost_dataset_from_memory, and "bool" */
    uint32_t ndim;
    uint64_t shape[UDFHOST_MAX_DIMS];
} udfhost_array;

/* Corrections applied to every frame before the plugins see it (udfhost(1), CORRECTIONS): dark
 * subtracted, then multiplied by gain (both of the sig shape), then excluded pixels (a sig-shaped
 * mask, or a (K, sig dims) integer array of coordinates) replaced by the mean of their valid
 * neighbours. Any may be NULL. Copied. */
int udfhost_run_set_corrections(udfhost_run *run, const udfhost_array *dark,
                                const udfhost_array *gain, const udfhost_array *excluded,
                                udfhost_error *err);

/* The same from files (.npy or TIFF), as `--dark`, `--gain`, `--excluded-pixels` take them. */
int udfhost_run_set_correction_files(udfhost_run *run, const char *dark, const char *gain,
                                     const char *excluded, udfhost_error *err);

/* [called on the thread running execute] After each merged partition: frames merged so far and
 * in all (selected frames). Must return quickly; may read nothing of the run. */
typedef void (*udfhost_progress_fn)(void *arg, uint64_t frames_done, uint64_t frames_total);
int udfhost_run_set_progress(udfhost_run *run, udfhost_progress_fn fn, void *arg,
                             udfhost_error *err);

typedef struct udfhost_results udfhost_results;

/* [called on the thread running execute] After every `every` merged partitions (0 or a NULL fn:
 * never; not after the last: execute's own results are the final ones), the results so far as get_results makes
 * them from a copy of the merged buffers. The callee owns partial and frees it with
 * udfhost_results_free, at any time, on any thread. Return 0 to go on, a negative udfhost_code
 * to end the run with it (err is the callee's to fill). */
typedef int (*udfhost_partial_fn)(void *arg, udfhost_results *partial, udfhost_error *err);
int udfhost_run_set_partial(udfhost_run *run, uint64_t every, udfhost_partial_fn fn, void *arg,
                            udfhost_error *err);

/* Run every plugin over the dataset on the calling thread (the workers are threads of their
 * own). Blocks until done, failed or cancelled. On success the results are in the run
 * (udfhost_run_take_results). On failure nothing is left of the run's results and err names
 * the plugin, hook and partition, or the file and problem. A run executes once. */
int udfhost_run_execute(udfhost_run *run, udfhost_error *err);

/* [thread-safe, async-signal-safe] Ask a running execute to stop: workers stop between tiles and
 * execute returns UDFHOST_ECANCELLED soon after. Before execute starts, it makes execute return
 * UDFHOST_ECANCELLED at once. */
void udfhost_run_cancel(udfhost_run *run);

/* After a successful execute: the results, now owned by the caller and independent of the run
 * and the dataset (both may be freed). A second call gives NULL (UDFHOST_EUSAGE). */
int udfhost_run_take_results(udfhost_run *run, udfhost_results **out, udfhost_error *err);

/* --- results ------------------------------------------------------------------------------- */

typedef enum udfhost_kind { UDFHOST_KIND_NAV = 0, UDFHOST_KIND_SIG = 1, UDFHOST_KIND_SINGLE = 2 } udfhost_kind;

/* One result buffer: the array `udfhost run` writes as <plugin>.<name>.npy. */
typedef struct udfhost_buffer {
    const char *plugin;  /* the plugin's name */
    const char *name;
    udfhost_kind kind;
    const char *dtype;   /* "float32", "uint64", "bool", ... */
    const char *descr;   /* NumPy's descr in native byte order: "<f4" */
    uint32_t item_size;  /* bytes per element */
    uint32_t ndim;
    uint64_t shape[2 * UDFHOST_MAX_DIMS]; /* nav + extra, sig + extra, or extra (single) */
    void *data;          /* C order; writable by the owner of the results */
    uint64_t bytes;
} udfhost_buffer;

/* Plugins of the run, in the order added. */
uint32_t udfhost_results_plugin_count(const udfhost_results *res);
const char *udfhost_results_plugin_name(const udfhost_results *res, uint32_t plugin);

/* Result buffers of one plugin (private ones left out), in the plugin's declaration order. */
uint32_t udfhost_results_buffer_count(const udfhost_results *res, uint32_t plugin);
int udfhost_results_buffer(const udfhost_results *res, uint32_t plugin, uint32_t index,
                           udfhost_buffer *out, udfhost_error *err);

/* The nav shape's frames whose results these hold: selected by the ROI and (for partial
 * results) merged so far; num_frames bytes, 1 = valid. LiberTEM's damage / valid mask. */
const uint8_t *udfhost_results_valid(const udfhost_results *res, uint64_t *num_frames);

/* Frames merged into these results, and frames the whole run selects. */
void udfhost_results_progress(const udfhost_results *res, uint64_t *frames_done,
                              uint64_t *frames_total);

/* Free the results and the memory of every buffer. */
void udfhost_results_free(udfhost_results *res);

#ifdef __cplusplus
}
#endif

#endif
