/* udfhost plugin SDK, ABI major 1: the whole contract between udfhost and a UDF plugin.
 *
 * Self-contained: C11 and <stdint.h>/<stddef.h> only, no host internals. A plugin is a shared
 * object that exports exactly one symbol, udf_plugin_entry_v1 (see UDF_PLUGIN_DEFINE), returning a
 * constant descriptor. The host calls nothing else by name: every service it offers reaches the
 * plugin through the udf_host table in each hook's udf_ctx.
 *
 * Processing model (LiberTEM's UDF model):
 *
 *   declare_buffers, init_task                         [main thread, once per run]
 *   for each partition p, concurrently on workers:
 *       fresh zeroed partition buffers
 *       preprocess                                     [worker]
 *       process_tile per tile, or process_frame per frame,
 *       or process_partition once                      [worker]
 *       postprocess                                    [worker]
 *       merge(dest = result, src = partition buffers)  [main thread, in partition order]
 *   get_results                                        [main thread, once; and on
 *                                                       copies for live results]
 *   cleanup                                            [main thread, once; also after a failure]
 *
 * Compatibility rules: numbers in this header never change meaning; structs only grow at the end.
 * Every struct the host hands over starts with struct_size, and a plugin built against a later
 * minor version must check it before reading a field added later (UDF_HAS_FIELD). The descriptor a
 * plugin returns starts with its ABI version and struct_size, and the host reads a field only if
 * that size covers it. An incompatible change gets a new major and a new entry-point name.
 */
#ifndef UDFHOST_UDF_H
#define UDFHOST_UDF_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define UDF_ABI_MAJOR 1
#define UDF_ABI_MINOR 1

/* The only symbol a plugin exports. Its name carries the ABI major. */
#define UDF_ENTRY_NAME "udf_plugin_entry_v1"

/* Maximum number of dimensions of the nav shape, the sig shape and a buffer's extra shape. */
#define UDF_MAX_DIMS 4

/* Status codes returned by hooks and services. 0 is success; failures are negative. These numbers
 * are fixed forever: a retired code keeps its number and is never reused. */
typedef enum udf_status {
    UDF_OK = 0,
    UDF_ERR = -1,             /* failure; the message was given through host->error() */
    UDF_ERR_NOMEM = -2,       /* an allocation failed */
    UDF_ERR_PARAM = -3,       /* a parameter value is invalid for this dataset; from declare_buffers
                                 or init_task the run ends as a usage error (exit status 2) */
    UDF_ERR_UNSUPPORTED = -4, /* this dataset (shape, dtype) is not supported by the plugin */
    UDF_ERR_NOT_FOUND = -5,   /* a looked-up name (parameter, buffer) does not exist */
    UDF_ERR_RANGE = -6        /* an index is out of range */
} udf_status;

/* Element types. The numbers are part of the ABI. */
typedef enum udf_dtype {
    UDF_DTYPE_NONE = 0, /* in udf_plugin.input_dtype: the default, float32 */
    UDF_U8 = 1,
    UDF_U16 = 2,
    UDF_U32 = 3,
    UDF_U64 = 4,
    UDF_I8 = 5,
    UDF_I16 = 6,
    UDF_I32 = 7,
    UDF_I64 = 8,
    UDF_F32 = 9,
    UDF_F64 = 10,
    UDF_BOOL = 11,         /* one byte, 0 or 1 (results only) */
    UDF_DTYPE_NATIVE = 100 /* in udf_plugin.input_dtype only: the dataset's own dtype */
} udf_dtype;

/* Size in bytes of one element of dtype d, 0 for UDF_DTYPE_NONE and UDF_DTYPE_NATIVE. */
static inline size_t udf_dtype_size(udf_dtype d)
{
    switch (d) {
    case UDF_U8: case UDF_I8: case UDF_BOOL: return 1;
    case UDF_U16: case UDF_I16: return 2;
    case UDF_U32: case UDF_I32: case UDF_F32: return 4;
    case UDF_U64: case UDF_I64: case UDF_F64: return 8;
    case UDF_DTYPE_NONE: case UDF_DTYPE_NATIVE: return 0;
    }
    return 0;
}

/* --- Buffers --------------------------------------------------------------------------------- */

typedef enum udf_kind {
    UDF_KIND_NAV = 1,   /* one element (x extra shape) per frame, placed into the result by the host */
    UDF_KIND_SIG = 2,   /* one element (x extra shape) per detector pixel, combined by merge */
    UDF_KIND_SINGLE = 3 /* one element (x extra shape) for the whole run, combined by merge */
} udf_kind;

/* Buffer flags (bits). */
enum {
    /* Scratch for the plugin's own use: allocated per partition and merged like any buffer, shown to
     * get_results, but never written as a result file. */
    UDF_BUFFER_PRIVATE = 1u << 0,
    /* Not allocated per partition and not merged: exists only in get_results, which fills it (e.g.
     * std from varsum). Written as a result unless also PRIVATE. */
    UDF_BUFFER_RESULT_ONLY = 1u << 1
};

/* A buffer declaration, passed to host->declare_buffer() from the declare_buffers hook. The host
 * copies everything, including the name; nothing needs to outlive the call. The host reads the
 * fields that existed at the plugin's abi_minor (its descriptor says which), so fields can be
 * appended here without breaking older plugins. */
typedef struct udf_buffer_decl {
    const char *name;   /* [A-Za-z0-9_]+, unique within the plugin; names the file <plugin>.<name>.npy */
    udf_kind kind;
    udf_dtype dtype;    /* any of U8..BOOL */
    uint32_t flags;     /* UDF_BUFFER_* */
    uint32_t extra_ndim;                   /* 0 for a scalar per element */
    uint64_t extra_shape[UDF_MAX_DIMS];    /* C order, trailing the nav/sig shape in the result */
    /* Initial value of every element of the partition buffers and of the result before the first
     * merge, converted to dtype (e.g. -INFINITY for a maximum). 0 by default. */
    double fill;
} udf_buffer_decl;

/* A view of one buffer as a hook sees it. Element e of item i (a frame for nav buffers, a detector
 * pixel for sig buffers, the only item for single buffers) lives at
 *     ((T *)data)[i * extra_size + e],   0 <= i < count, 0 <= e < extra_size.
 * What `data` points at depends on the hook (see the hooks below). The memory belongs to the host;
 * a plugin must not free it or keep the pointer past the hook call. */
typedef struct udf_view {
    void *data;
    uint64_t count;      /* items visible in this call */
    uint64_t extra_size; /* product of the extra shape, 1 if none */
    udf_dtype dtype;
    udf_kind kind;
    uint32_t flags;
    uint32_t reserved;
    const char *name;
} udf_view;

/* --- Parameters ------------------------------------------------------------------------------ */

typedef enum udf_param_type {
    UDF_PARAM_INT = 1,    /* 64-bit signed integer */
    UDF_PARAM_FLOAT = 2,  /* double */
    UDF_PARAM_BOOL = 3,   /* true/false/1/0/yes/no */
    UDF_PARAM_STRING = 4, /* any text */
    UDF_PARAM_CHOICE = 5, /* one of the '|'-separated words in `choices` */
    UDF_PARAM_INTS = 6,   /* comma-separated list of integers, e.g. 12,40 */
    UDF_PARAM_FLOATS = 7  /* comma-separated list of doubles, e.g. 64.5,60,12 */
} udf_param_type;

/* Parameter flags (bits). */
enum {
    UDF_PARAM_REQUIRED = 1u << 0,  /* the run fails unless the user gives a value */
    UDF_PARAM_REPEATABLE = 1u << 1 /* may be given several times; values kept in the order given */
};

/* A parameter declaration. Arrays of these end with an entry whose name is NULL. The host parses
 * `-p name=value` against these before any data is read, and rejects unknown names, values of the
 * wrong type, and values outside [min, max] (checked when min < max, for INT/FLOAT and each list
 * element). */
typedef struct udf_param_decl {
    const char *name;          /* [a-z0-9_]+ */
    udf_param_type type;
    uint32_t flags;            /* UDF_PARAM_* */
    const char *default_value; /* as the user would type it; NULL: no default */
    const char *choices;       /* UDF_PARAM_CHOICE only: "float32|float64" */
    double min, max;           /* inclusive range; ignored unless min < max */
    const char *help;          /* one line for `udfhost plugin-info` */
} udf_param_decl;

/* --- Dataset metadata ------------------------------------------------------------------------ */

typedef struct udf_meta {
    uint32_t struct_size;
    uint32_t nav_ndim;
    uint64_t nav_shape[UDF_MAX_DIMS]; /* C order; frames are numbered in flat C order of this */
    uint32_t sig_ndim;
    uint32_t reserved0;
    uint64_t sig_shape[UDF_MAX_DIMS];
    uint64_t num_frames;     /* product of nav_shape */
    uint64_t sig_size;       /* pixels per frame: product of sig_shape */
    udf_dtype raw_dtype;     /* the dataset's dtype, as stored (byte order is the host's problem) */
    udf_dtype input_dtype;   /* the dtype of tile data this plugin receives (F32, F64 or raw_dtype) */
    /* ROI: NULL when every frame is selected; otherwise num_frames bytes, 1 = selected. */
    const uint8_t *roi;
    uint64_t selected_frames; /* frames the run processes */
} udf_meta;

/* Nav coordinates (C order, meta->nav_ndim of them) of the frame with flat index `flat`. */
static inline void udf_nav_coords(const udf_meta *meta, uint64_t flat, uint64_t *coords)
{
    for (uint32_t i = meta->nav_ndim; i-- > 0;) {
        coords[i] = flat % meta->nav_shape[i];
        flat /= meta->nav_shape[i];
    }
}

/* The partition a worker hook is working on. */
typedef struct udf_partition {
    uint32_t struct_size;
    uint32_t reserved0;
    uint64_t index;        /* 0-based, in nav order; merges happen in this order */
    uint64_t frame_start;  /* flat nav range [frame_start, frame_start + frame_count) */
    uint64_t frame_count;
    uint64_t selected;     /* frames of this range in the ROI: the item count of nav buffers */
} udf_partition;

/* Data handed to process_frame, process_tile and process_partition: `depth` frames, each cut to
 * the same slice of the signal. Pixel p (0 <= p < sig_count) of frame f (0 <= f < depth) is
 *     ((const T *)data)[f * frame_stride + p]
 * with T the C type of meta->input_dtype. That pixel sits at flat signal index sig_start + p. The
 * slice is the hyperrectangle sig_origin/sig_shape of the signal (of sig_ndim dims); it is always
 * contiguous in flat signal order (whole frames, or a band of whole rows of the first sig axis).
 * The data is read-only (it may be the mapped input file) and valid only during the call. */
typedef struct udf_tile {
    uint32_t struct_size;
    uint32_t sig_ndim;
    const void *data;
    uint64_t depth;
    uint64_t frame_stride;           /* elements from one frame to the next, >= sig_count */
    uint64_t sig_start;
    uint64_t sig_count;
    uint64_t sig_origin[UDF_MAX_DIMS];
    uint64_t sig_shape[UDF_MAX_DIMS];
    const uint64_t *nav_index;       /* depth flat nav indices (into meta->nav_shape) */
    uint64_t item_start;             /* index of the first frame among the partition's selected
                                        frames: nav buffer views start at this item */
} udf_tile;

/* --- The context every hook receives --------------------------------------------------------- */

typedef struct udf_host udf_host;

/* One per plugin and hook call. Every field is read-only for the plugin (init_task hands its
 * shared data back through its own argument). A worker's ctx is private to that worker for the
 * duration of the call. */
typedef struct udf_ctx {
    uint32_t struct_size;
    uint32_t num_buffers;           /* entries of `buffers`, in declaration order */
    const udf_host *host;           /* services; valid for the whole run */
    const udf_meta *meta;           /* valid for the whole run */
    const udf_partition *partition; /* worker hooks, and merge (the partition being merged);
                                       NULL otherwise */
    udf_view *buffers;              /* views for this call (see each hook; in merge: dest); NULL
                                       in declare_buffers, init_task and cleanup */
    void *task_data;                /* what init_task stored; shared read-only by all workers */
    void *host_private;             /* the host's; do not touch */
} udf_ctx;

/* Look up a buffer's position in ctx->buffers by name: -1 if absent. */
static inline int udf_buffer_find(const udf_ctx *ctx, const char *name)
{
    for (uint32_t i = 0; i < ctx->num_buffers; i++) {
        const char *a = ctx->buffers[i].name, *b = name;
        while (*a && *a == *b) {
            a++;
            b++;
        }
        if (*a == *b)
            return (int)i;
    }
    return -1;
}

/* Services offered by the host. Every function may be called from any hook on any thread unless
 * stated otherwise. Entries are only appended; check struct_size (UDF_HAS_FIELD) before calling an
 * entry added after minor 0. Services return UDF_OK or a negative udf_status. */
struct udf_host {
    uint32_t struct_size;
    uint16_t abi_major, abi_minor;

    /* Report why a hook is about to fail; printf-style, one line. Only the hook's negative return
     * fails the run: the host then prints this message (the last one given in that call) after
     * the plugin name, hook and partition, or "no message given". */
    void (*error)(udf_ctx *ctx, const char *fmt, ...)
#if defined(__GNUC__)
        __attribute__((format(printf, 2, 3)))
#endif
        ;
    /* Log a message (level: 0 error, 1 warning, 2 info, 3 debug); shown per --verbose. */
    void (*log)(udf_ctx *ctx, int level, const char *fmt, ...)
#if defined(__GNUC__)
        __attribute__((format(printf, 3, 4)))
#endif
        ;

    /* [declare_buffers only] Declare one buffer; the host copies *decl. Returns UDF_OK, or
     * UDF_ERR_PARAM for a bad name, kind, dtype, shape or a duplicate name. */
    int (*declare_buffer)(udf_ctx *ctx, const udf_buffer_decl *decl);

    /* Parameters, valid in every hook. `index` selects among repeated values (0 for the first);
     * a parameter not given by the user has its default as its only value, or no value at all
     * when it has no default. Strings returned stay valid until cleanup returns. The readers
     * return UDF_ERR_NOT_FOUND for an undeclared name, UDF_ERR_RANGE when index >= the count,
     * UDF_ERR_PARAM when the type does not fit:
     *   param_int: INT.  param_double: FLOAT, INT.  param_bool: BOOL.
     *   param_string: any type (the text as given).  param_ints: INT, INTS.
     *   param_doubles: FLOAT, FLOATS, INT, INTS.
     * param_count: the number of values (given, else 1 for a default, else 0; 0 if undeclared). */
    uint32_t (*param_count)(udf_ctx *ctx, const char *name);
    int (*param_int)(udf_ctx *ctx, const char *name, uint32_t index, int64_t *out);
    int (*param_double)(udf_ctx *ctx, const char *name, uint32_t index, double *out);
    int (*param_bool)(udf_ctx *ctx, const char *name, uint32_t index, int *out);
    int (*param_string)(udf_ctx *ctx, const char *name, uint32_t index, const char **out);
    /* Lists (INTS, FLOATS; an INT or FLOAT reads as a list of one). Stores up to `max` values and
     * the number of values the list holds in *n (which may exceed max). */
    int (*param_ints)(udf_ctx *ctx, const char *name, uint32_t index, int64_t *out, uint32_t max,
                      uint32_t *n);
    int (*param_doubles)(udf_ctx *ctx, const char *name, uint32_t index, double *out, uint32_t max,
                         uint32_t *n);
    /* All values the user gave, in command-line order across names (for plugins where the order of
     * different repeatable parameters matters, e.g. a list of masks). Returns UDF_ERR_RANGE past
     * the end. */
    int (*param_given)(udf_ctx *ctx, uint32_t position, const char **name, const char **value);

    /* Optional services by revisioned id ("udfhost.aux/1"); NULL when the host has none. The
     * returned table lives for the whole run. */
    const void *(*get_extension)(udf_ctx *ctx, const char *id);

    /* --- ABI 1.1 (check with UDF_HAS_FIELD(ctx->host, udf_host, load_array)) --- */

    /* Read a whole array file for the plugin's own use (masks, reference frames, coordinates):
     * NumPy .npy of any version, byte order and numeric dtype; or a TIFF image (rows, columns) or
     * stack of equal pages (pages, rows, columns) of one integer or float sample per pixel, any
     * compression libtiff reads, told apart by the file's first bytes. The values are converted
     * to `dtype` (UDF_F32 or UDF_F64) in native byte order. Stores the number of dimensions in
     * *ndim (0 to UDF_MAX_DIMS), the shape in shape[0..*ndim), and the data in *data, which the
     * plugin releases with free(). On failure (missing or malformed file, more than UDF_MAX_DIMS
     * dimensions, Fortran order, over 4 GiB) the host has already reported a message naming the
     * file through error(), and the hook only returns the status (UDF_ERR_PARAM, UDF_ERR_NOMEM). */
    int (*load_array)(udf_ctx *ctx, const char *path, udf_dtype dtype, uint32_t *ndim,
                      uint64_t *shape, void **data);

    /* [init_task only] The plugin needs only these frames (flat nav indices, any order, n >= 1).
     * When every plugin of the run says so, the host reads only the union of their frames (within
     * the ROI, if one is given): picking one frame from a terabyte touches one frame. Otherwise all
     * frames are passed. Either way a plugin may see frames it did not ask for and must ignore
     * them. From preprocess on, meta->roi and meta->selected_frames describe the frames the run
     * really processes. UDF_ERR_RANGE for an index >= num_frames. */
    int (*select_frames)(udf_ctx *ctx, const uint64_t *flat, uint64_t n);
};

/* True when the struct s (with a struct_size first member) is large enough to hold `field`. */
#define UDF_HAS_FIELD(s, type, field)                                                               \
    ((s)->struct_size >= offsetof(type, field) + sizeof(((type *)0)->field))

/* --- The plugin descriptor ------------------------------------------------------------------- */

/* Tiling needs (bits in udf_plugin.tiling); binding for the host. */
enum {
    UDF_TILE_FULL_FRAMES = 1u << 0 /* process_tile sees only whole frames (sig_count == sig_size) */
};

/* Signature of ABI-relevant build settings: pointer size and byte order. The host refuses a plugin
 * whose signature differs and says which part. */
#define UDF_SIGNATURE_STR2(x) #x
#define UDF_SIGNATURE_STR(x) UDF_SIGNATURE_STR2(x)
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define UDF_SIGNATURE_ENDIAN "be"
#else
#define UDF_SIGNATURE_ENDIAN "le"
#endif
#define UDF_ABI_SIGNATURE "ptr" UDF_SIGNATURE_STR(__SIZEOF_POINTER__) "-" UDF_SIGNATURE_ENDIAN

typedef struct udf_plugin {
    /* Header: checked by the host before anything else. Fill with UDF_PLUGIN_HEADER. */
    uint32_t abi_major;       /* UDF_ABI_MAJOR the plugin was built with */
    uint32_t abi_minor;       /* UDF_ABI_MINOR the plugin was built with */
    uint32_t struct_size;     /* sizeof(udf_plugin) the plugin was built with */
    uint32_t reserved0;
    const char *signature;    /* UDF_ABI_SIGNATURE */

    /* Identity. name: [a-z0-9_]+, the name users type after --plugin. */
    const char *name;
    const char *version;
    const char *description;  /* one line */

    const udf_param_decl *params; /* NULL, or an array ending with a NULL name */

    /* Tile data dtype: UDF_DTYPE_NONE (float32), UDF_F32, UDF_F64 or UDF_DTYPE_NATIVE. Tile data
     * is always in the host's byte order and aligned to its element size. When the host applies
     * corrections (dark frame, gain), integer data cannot hold the result: NATIVE then means
     * float32. meta->input_dtype says what arrives. */
    udf_dtype input_dtype;
    uint32_t tiling;          /* UDF_TILE_* */
    uint64_t tile_depth;      /* preferred frames per tile (a hint); 0: the host chooses */

    /* [main thread] Declare the buffers with host->declare_buffer(). meta and parameters are
     * available; ctx->buffers is NULL. Required. */
    int (*declare_buffers)(udf_ctx *ctx);

    /* [main thread, once, optional] Compute data shared read-only by all workers (masks, lookup
     * tables) and store it in *task_data; it reaches every later hook as ctx->task_data. Free it
     * in cleanup. */
    int (*init_task)(udf_ctx *ctx, void **task_data);

    /* [worker, optional] Before the first tile of a partition. ctx->buffers: the partition's
     * buffers, filled with their fill values: nav views cover the partition's selected frames
     * (count = partition->selected), sig and single views the whole buffer. Partitions without
     * selected frames are skipped entirely. */
    int (*preprocess)(udf_ctx *ctx);

    /* Process hooks: provide at least one; the host uses process_tile if present, else
     * process_frame, else process_partition. [worker] Different partitions run concurrently, each
     * on its own buffers; calls within one partition are sequential, in nav order.
     *   process_tile: ctx->buffers nav views start at tile->item_start and cover tile->depth
     *     items; sig views cover the tile's signal slice (data starts at item tile->sig_start,
     *     count = tile->sig_count); single views the whole buffer. Unless UDF_TILE_FULL_FRAMES
     *     is set, frames may arrive cut into bands of rows: the same frames (same nav items) come
     *     once per band, bands in row order, before the next frames; nav results must therefore
     *     accumulate (+=) rather than assign.
     *   process_frame: as process_tile with depth 1 and whole frames.
     *   process_partition: one call with all selected frames of the partition in one tile and
     *     whole frames (needs memory for the whole partition; prefer process_tile). */
    int (*process_tile)(udf_ctx *ctx, const udf_tile *tile);
    int (*process_frame)(udf_ctx *ctx, const udf_tile *frame);
    int (*process_partition)(udf_ctx *ctx, const udf_tile *all);

    /* [worker, optional] After the last tile of a partition; views as in preprocess. */
    int (*postprocess)(udf_ctx *ctx);

    /* [main thread] Combine a finished partition into the result: dest[i] and src[i] are the
     * views of buffer i (ctx->num_buffers of each) for the result and the partition; ctx->buffers
     * is dest and ctx->partition the partition merged. Sig and single views cover the whole
     * buffer; the result starts out filled with each buffer's fill value. Nav buffers are placed
     * by the host and have data NULL and count 0 here, as have result-only buffers. Called in
     * partition order, only for partitions with selected frames. Private buffers are merged too.
     * Required when any non-result-only sig or single buffer exists. */
    int (*merge)(udf_ctx *ctx, udf_view *dest, const udf_view *src);

    /* [main thread, once, optional] Final transform. ctx->buffers: the whole results (nav views
     * cover all num_frames frames; frames outside the ROI hold NaN for float dtypes, 0 else),
     * result-only buffers zero-filled (nav ones NaN/0 outside the ROI). Afterwards the host sets
     * nav results outside the ROI to NaN/0 again, so the hook may compute every frame. Not called
     * if the run failed. With `udfhost run --live-every`, also called during the run on copies of
     * the results merged so far (frames not yet merged hold NaN/0): it must only compute its
     * buffers from the others, with no other effect (plugins with no buffers are not called). */
    int (*get_results)(udf_ctx *ctx);

    /* [main thread, once, optional] Free task_data. Called once declare_buffers and init_task (if
     * any) succeeded, also after a failure later in the run. A failing init_task frees what it
     * allocated itself. */
    void (*cleanup)(udf_ctx *ctx, void *task_data);
} udf_plugin;

#define UDF_PLUGIN_HEADER                                                                           \
    .abi_major = UDF_ABI_MAJOR, .abi_minor = UDF_ABI_MINOR, .struct_size = sizeof(udf_plugin),     \
    .signature = UDF_ABI_SIGNATURE

#if defined(__GNUC__)
#define UDF_EXPORT __attribute__((visibility("default")))
#else
#define UDF_EXPORT
#endif

/* Defines the entry point returning the descriptor `desc` (a static const udf_plugin):
 *     static const udf_plugin my_plugin = { UDF_PLUGIN_HEADER, .name = "mine", ... };
 *     UDF_PLUGIN_DEFINE(my_plugin)
 * Build with -fvisibility=hidden so that this is the only exported symbol. The entry point has C
 * linkage in C++ too. */
#ifdef __cplusplus
#define UDF_ENTRY_LINKAGE extern "C"
#else
#define UDF_ENTRY_LINKAGE
#endif
#define UDF_PLUGIN_DEFINE(desc)                                                                     \
    UDF_ENTRY_LINKAGE UDF_EXPORT const udf_plugin *udf_plugin_entry_v1(void);                      \
    UDF_ENTRY_LINKAGE UDF_EXPORT const udf_plugin *udf_plugin_entry_v1(void) { return &(desc); }

/* --- One-function plugins (the analogue of LiberTEM's ctx.map) -------------------------------
 *
 *     static int brightness(udf_ctx *ctx, const float *frame, double *out)
 *     {
 *         double s = 0;
 *         for (uint64_t p = 0; p < ctx->meta->sig_size; p++)
 *             s += frame[p];
 *         out[0] = s / (double)ctx->meta->sig_size;
 *         return UDF_OK;
 *     }
 *     UDF_MAP_PLUGIN("brightness", brightness, 1, "mean intensity of each frame")
 *
 * is a whole plugin: FN is called once per frame with the whole frame (meta->sig_size float32
 * pixels in C order) and N_OUT doubles to fill (N_OUT a positive constant). The result is
 * the nav buffer `result`, float64, of the nav shape (with an extra dimension of N_OUT when
 * N_OUT > 1), written as NAME.result.npy. FN runs on worker threads, concurrently for different
 * frames: it may read parameters through ctx->host, and must not write shared state. It returns
 * UDF_OK, or a negative status after ctx->host->error(). UDF_MAP_PLUGIN_PARAMS adds a
 * udf_param_decl array. C only (it uses designated initialisers). */
#define UDF_MAP_PLUGIN_PARAMS(NAME, FN, N_OUT, DESCRIPTION, PARAMS)                                 \
    static int udf_map_declare_(udf_ctx *ctx)                                                      \
    {                                                                                              \
        const udf_buffer_decl result = {.name = "result", .kind = UDF_KIND_NAV, .dtype = UDF_F64, \
                                        .extra_ndim = (N_OUT) > 1 ? 1 : 0,                        \
                                        .extra_shape = {(N_OUT)}};                                 \
        return ctx->host->declare_buffer(ctx, &result);                                            \
    }                                                                                              \
    static int udf_map_frame_(udf_ctx *ctx, const udf_tile *tile)                                  \
    {                                                                                              \
        return FN(ctx, (const float *)tile->data, (double *)ctx->buffers[0].data);                 \
    }                                                                                              \
    static const udf_plugin udf_map_plugin_ = {                                                    \
        UDF_PLUGIN_HEADER,                                                                         \
        .name = NAME,                                                                              \
        .version = "1",                                                                            \
        .description = DESCRIPTION,                                                                \
        .params = PARAMS,                                                                          \
        .input_dtype = UDF_F32,                                                                    \
        .declare_buffers = udf_map_declare_,                                                       \
        .process_frame = udf_map_frame_,                                                           \
    };                                                                                             \
    UDF_PLUGIN_DEFINE(udf_map_plugin_)

#define UDF_MAP_PLUGIN(NAME, FN, N_OUT, DESCRIPTION)                                               \
    UDF_MAP_PLUGIN_PARAMS(NAME, FN, N_OUT, DESCRIPTION, NULL)

#ifdef __cplusplus
}
#endif

#endif /* UDFHOST_UDF_H */
