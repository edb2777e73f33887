/* HDF5 files (also EMD from Velox or py4DSTEM): one numeric dataset whose leading dims are the nav
 * and trailing --sig-dims dims the signal. Contiguous data is mapped (zero copy); chunked or
 * filtered data is read with H5Dread under one lock, because libhdf5 is not thread-safe. Built
 * as the module udfhost-hdf5.so (see ds_hdf5.h), which ds_hdf5_load.c loads. */
#include <errno.h>
#include <hdf5.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "ds.h"
#include "ds_hdf5.h"
#include "dtype.h"
#include "shape.h"

/* The host's functions this reader calls, set by udfhost_hdf5_reader. */
static ds_hdf5_host host;

/* Protects every call into libhdf5. A serial build may not be entered from two threads; a
 * thread-safe one (Debian's 1.10.8 is, see H5is_library_threadsafe) takes one global lock inside
 * anyway, so locking always costs nothing extra. */
static pthread_mutex_t hdf5_lock = PTHREAD_MUTEX_INITIALIZER;

/* Take hdf5_lock and make sure HDF5 does not print errors to stderr on this thread: we read
 * messages from the error stack instead. Thread-safe builds keep one stack and one printing
 * setting per thread, so every thread that calls in does this once. */
static void hdf5_lock_quiet(void)
{
    static _Thread_local bool quiet;
    pthread_mutex_lock(&hdf5_lock);
    if (!quiet) {
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
        quiet = true;
    }
}

/* Chunk cache bounds: large enough for the chunks that cover a few partitions' worth of frames,
 * so a chunk cut by a tile or partition boundary is decoded once, not once per reader. */
#define CHUNK_CACHE_MIN (16u << 20)
#define CHUNK_CACHE_MAX (512u << 20)

typedef struct hdf5_state {
    hid_t file, dset, mem_type;
    hid_t file_space;          /* the dataset's dataspace; its selection is set per read */
    char *dset_path;           /* for messages */
    uint32_t rank, nav_ndim;   /* of the dataset in the file (before any --nav-shape reshape) */
    hsize_t dims[H5S_MAX_RANK];
    uint64_t frame_bytes;      /* of the file's frames */
    uint64_t frames_per_chunk; /* frame boundaries at multiples of this never cut a chunk */
    char io[128];              /* d->io: layout and filters, for udfhost info */
} hdf5_state;

/* The innermost message on HDF5's error stack (where the failure started), then clear it. */
static herr_t walk_error(unsigned n, const H5E_error2_t *entry, void *arg)
{
    (void)n;
    if (entry->desc && entry->desc[0])
        snprintf(arg, 256, "%s", entry->desc);
    return 0;
}

static const char *hdf5_error(char buf[256])
{
    snprintf(buf, 256, "unknown HDF5 error");
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, walk_error, buf);
    H5Eclear2(H5E_DEFAULT);
    return buf;
}

/* --- Types ---------------------------------------------------------------------------------- */

/* The udf_dtype of an HDF5 type, or false with a name for it in buf ("int64", "string", ...). */
static bool type_to_dtype(hid_t t, udf_dtype *dt, bool *big_endian, char *buf, size_t cap)
{
    /* Not static: the H5T_ names are library globals, set when libhdf5 initialises. */
    const struct {
        hid_t id;
        udf_dtype dt;
        bool be;
    } table[] = {
        {H5T_STD_U8LE, UDF_U8, false},     {H5T_STD_U8BE, UDF_U8, true},
        {H5T_STD_I8LE, UDF_I8, false},     {H5T_STD_I8BE, UDF_I8, true},
        {H5T_STD_U16LE, UDF_U16, false},   {H5T_STD_U16BE, UDF_U16, true},
        {H5T_STD_I16LE, UDF_I16, false},   {H5T_STD_I16BE, UDF_I16, true},
        {H5T_STD_U32LE, UDF_U32, false},   {H5T_STD_U32BE, UDF_U32, true},
        {H5T_STD_I32LE, UDF_I32, false},   {H5T_STD_I32BE, UDF_I32, true},
        {H5T_IEEE_F32LE, UDF_F32, false},  {H5T_IEEE_F32BE, UDF_F32, true},
        {H5T_IEEE_F64LE, UDF_F64, false},  {H5T_IEEE_F64BE, UDF_F64, true},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (H5Tequal(t, table[i].id) > 0) {
            *dt = table[i].dt;
            *big_endian = table[i].be;
            snprintf(buf, cap, "%s%s", dtype_name(*dt), *big_endian ? " big-endian" : "");
            return true;
        }
    size_t size = H5Tget_size(t);
    switch (H5Tget_class(t)) {
    case H5T_INTEGER:
        snprintf(buf, cap, "%sint%zu", H5Tget_sign(t) == H5T_SGN_NONE ? "u" : "", size * 8);
        break;
    case H5T_FLOAT: snprintf(buf, cap, "float%zu", size * 8); break;
    case H5T_STRING: snprintf(buf, cap, "string"); break;
    case H5T_COMPOUND: snprintf(buf, cap, "compound"); break;
    case H5T_ENUM: snprintf(buf, cap, "enum (e.g. bool)"); break;
    case H5T_OPAQUE: snprintf(buf, cap, "opaque"); break;
    case H5T_REFERENCE: snprintf(buf, cap, "reference"); break;
    case H5T_VLEN: snprintf(buf, cap, "variable-length"); break;
    case H5T_ARRAY: snprintf(buf, cap, "array"); break;
    case H5T_BITFIELD: snprintf(buf, cap, "bitfield"); break;
    default: snprintf(buf, cap, "unknown type"); break;
    }
    return false;
}

/* "(100, 64, 64)" */
static void dims_format(const hsize_t *dims, int rank, char *buf, size_t cap)
{
    size_t n = (size_t)snprintf(buf, cap, "(");
    for (int k = 0; k < rank && n < cap; k++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%llu", k ? ", " : "",
                              (unsigned long long)dims[k]);
    if (n < cap)
        snprintf(buf + n, cap - n, ")");
}

/* --- Finding the dataset -------------------------------------------------------------------- */

/* Every dataset in the file, as "/a (100, 64, 64) uint16" lines joined by ", ", split into those
 * that could be the frames (>= 3 dims) and the rest. */
typedef struct dset_list {
    unsigned n_candidates, n_others;
    char first[1024];      /* path of the first candidate */
    char candidates[700];  /* descriptions, cut with ", ..." when too long */
    char others[700];
} dset_list;

static void list_append(char *list, size_t cap, const char *item)
{
    size_t n = strlen(list);
    if (n + 6 >= cap)
        return; /* already cut */
    if (n + strlen(item) + 2 + 5 >= cap) {
        snprintf(list + n, cap - n, "%s...", n ? ", " : "");
        return;
    }
    snprintf(list + n, cap - n, "%s%s", n ? ", " : "", item);
}

static herr_t visit_link(hid_t group, const char *name, const H5L_info_t *info, void *arg)
{
    dset_list *l = arg;
    /* Soft and external links could point out of the file or loop; the hard links reach every
     * object of the file anyway. */
    if (info->type != H5L_TYPE_HARD)
        return 0;
    hid_t obj = H5Oopen(group, name, H5P_DEFAULT);
    if (obj < 0) {
        H5Eclear2(H5E_DEFAULT);
        return 0;
    }
    if (H5Iget_type(obj) == H5I_DATASET) {
        hid_t space = H5Dget_space(obj), type = H5Dget_type(obj);
        hsize_t dims[H5S_MAX_RANK];
        int rank = space >= 0 ? H5Sget_simple_extent_dims(space, dims, NULL) : -1;
        char shape[160] = "(?)", tname[48] = "?", item[300];
        udf_dtype dt;
        bool be;
        if (rank >= 0)
            dims_format(dims, rank, shape, sizeof shape);
        if (type >= 0)
            type_to_dtype(type, &dt, &be, tname, sizeof tname);
        snprintf(item, sizeof item, "/%s %s %s", name, shape, tname);
        if (rank >= 3) {
            if (!l->n_candidates++)
                snprintf(l->first, sizeof l->first, "/%s", name);
            list_append(l->candidates, sizeof l->candidates, item);
        } else {
            l->n_others++;
            list_append(l->others, sizeof l->others, item);
        }
        if (space >= 0)
            H5Sclose(space);
        if (type >= 0)
            H5Tclose(type);
    }
    H5Oclose(obj);
    H5Eclear2(H5E_DEFAULT);
    return 0;
}

/* The dataset the user named, or the only one with >= 3 dims. Sets *name (malloc'ed). */
static int find_dataset(hid_t file, const char *path, const ds_options *o, char **name, err *e)
{
    char msg[256];
    if (o->hdf5_path) {
        hid_t obj = H5Oopen(file, o->hdf5_path, H5P_DEFAULT);
        if (obj < 0)
            return err_set(e, UH_EUSAGE, "%s: --hdf5-path %s: not found in the file (%s)", path,
                           o->hdf5_path, hdf5_error(msg));
        H5I_type_t t = H5Iget_type(obj);
        H5Oclose(obj);
        if (t != H5I_DATASET)
            return err_set(e, UH_EUSAGE, "%s: --hdf5-path %s: is a %s, not a dataset", path,
                           o->hdf5_path, t == H5I_GROUP ? "group" : "named type");
        *name = strdup(o->hdf5_path);
    } else {
        dset_list *l = calloc(1, sizeof *l);
        if (!l)
            return err_set(e, UH_ENOMEM, "out of memory opening %s", path);
        int rc = 0;
        if (H5Lvisit(file, H5_INDEX_NAME, H5_ITER_INC, visit_link, l) < 0)
            rc = err_set(e, UH_EDATA, "%s: cannot list the datasets (%s)", path,
                         hdf5_error(msg));
        else if (l->n_candidates > 1)
            rc = err_set(e, UH_EUSAGE,
                         "%s: several datasets could be the frames: %s; choose one with "
                         "--hdf5-path", path, l->candidates);
        else if (!l->n_candidates)
            rc = err_set(e, UH_EDATA, "%s: no dataset with 3 or more dimensions in the file%s%s%s",
                         path, l->n_others ? " (found: " : "", l->others,
                         l->n_others ? ")" : "");
        else
            *name = strdup(l->first);
        free(l);
        if (rc)
            return rc;
    }
    if (!*name)
        return err_set(e, UH_ENOMEM, "out of memory opening %s", path);
    return 0;
}

/* --- Shapes ---------------------------------------------------------------------------------- */

/* d's nav/sig shape from the dataset's dims, reshaped by --nav-shape/--sig-shape when given. */
static int set_shape(ds *d, const ds_options *o, hdf5_state *s, err *e)
{
    const char *path = o->path, *name = s->dset_path;
    uint32_t sig_dims = o->sig_dims ? o->sig_dims : 2;
    char shape[160];
    dims_format(s->dims, (int)s->rank, shape, sizeof shape);
    if (s->rank < sig_dims + 1)
        return err_set(e, UH_EDATA, "%s: %s: the dataset has %u dimensions %s; frames need nav "
                       "dimensions before the %u signal dimensions (--sig-dims)", path, name,
                       s->rank, shape, sig_dims);
    if (s->rank - sig_dims > UDF_MAX_DIMS)
        return err_set(e, UH_EDATA, "%s: %s: %u nav dimensions %s, at most %d are supported "
                       "(raise --sig-dims?)", path, name, s->rank - sig_dims, shape,
                       UDF_MAX_DIMS);
    for (uint32_t k = 0; k < s->rank; k++)
        if (!s->dims[k])
            return err_set(e, UH_EDATA, "%s: %s: dimension %u of %s is 0: the dataset is empty",
                           path, name, k, shape);
    s->nav_ndim = d->nav_ndim = s->rank - sig_dims;
    d->sig_ndim = sig_dims;
    for (uint32_t k = 0; k < s->rank; k++) {
        if (k < d->nav_ndim)
            d->nav_shape[k] = s->dims[k];
        else
            d->sig_shape[k - d->nav_ndim] = s->dims[k];
    }
    if (!shape_product(d->nav_shape, d->nav_ndim, &d->num_frames) ||
        !shape_product(d->sig_shape, d->sig_ndim, &d->sig_size) ||
        !size_mul(d->sig_size, d->elem_size, &d->frame_bytes) ||
        d->frame_bytes > (UINT64_MAX >> 1) / d->num_frames)
        return err_set(e, UH_EDATA, "%s: %s: the dataset's size %s overflows 64 bits", path,
                       name, shape);
    s->frame_bytes = d->frame_bytes;
    /* The user's shapes may regroup the file's dims but must keep frame count and size. */
    int rc = host.apply_user_nav(d, o, e);
    return rc ? rc : host.apply_user_sig(d, o, e);
}

/* --- Layout ---------------------------------------------------------------------------------- */

/* Frames per chunk along the nav, in flat frame order: the outermost nav dim j that a chunk cuts
 * into pieces of c > 1 gives slabs of c * (frames per index of j). When c does not divide that dim
 * and j is not the first, multiples of that would drift off the chunk grid in the next row: then
 * the whole dim is the unit (its ends are always chunk ends). 1 if chunks hold single frames. */
static uint64_t chunk_frames(const hdf5_state *s, const hsize_t *chunk)
{
    uint32_t j = 0;
    while (j < s->nav_ndim && chunk[j] <= 1)
        j++;
    if (j == s->nav_ndim)
        return 1;
    uint64_t a = j == 0 || s->dims[j] % chunk[j] == 0 ? chunk[j] : s->dims[j];
    for (uint32_t m = j + 1; m < s->nav_ndim; m++)
        a *= s->dims[m]; /* cannot overflow: at most the frame count */
    return a;
}

/* For chunked data: check every filter can be decoded here, describe the layout in s->io, and
 * reopen the dataset with a chunk cache sized for it. */
static int setup_chunked(ds *d, hdf5_state *s, hid_t dcpl, err *e)
{
    char msg[256];
    hsize_t chunk[H5S_MAX_RANK];
    if (H5Pget_chunk(dcpl, (int)s->rank, chunk) != (int)s->rank)
        return err_set(e, UH_EDATA, "%s: %s: cannot read the chunk shape (%s)", d->path,
                       s->dset_path, hdf5_error(msg));
    s->frames_per_chunk = chunk_frames(s, chunk);
    d->frames_per_chunk = s->frames_per_chunk; /* partitions end on chunk boundaries */
    size_t n = (size_t)snprintf(s->io, sizeof s->io, "hdf5 (chunks ");
    for (uint32_t k = 0; k < s->rank && n < sizeof s->io; k++)
        n += (size_t)snprintf(s->io + n, sizeof s->io - n, "%s%llu", k ? "x" : "",
                              (unsigned long long)chunk[k]);
    int nfilters = H5Pget_nfilters(dcpl);
    for (int i = 0; i < nfilters; i++) {
        unsigned flags, conf;
        size_t nvalues = 0;
        char name[64] = "";
        H5Z_filter_t id = H5Pget_filter2(dcpl, (unsigned)i, &flags, &nvalues, NULL,
                                         sizeof name, name, &conf);
        if (id < 0)
            return err_set(e, UH_EDATA, "%s: %s: cannot read filter %d (%s)", d->path,
                           s->dset_path, i, hdf5_error(msg));
        if (H5Zfilter_avail(id) <= 0) {
            H5Eclear2(H5E_DEFAULT);
            return err_set(e, UH_EDATA, "%s: %s: compressed with filter %d%s%s%s, which this "
                           "libhdf5 cannot decode (install its plugin and set HDF5_PLUGIN_PATH)",
                           d->path, s->dset_path, (int)id, name[0] ? " (" : "", name,
                           name[0] ? ")" : "");
        }
        const char *shown = id == H5Z_FILTER_DEFLATE   ? "gzip"
                            : id == H5Z_FILTER_SHUFFLE ? "shuffle"
                            : id == H5Z_FILTER_FLETCHER32 ? "fletcher32"
                            : name[0] ? name : "filter";
        if (n < sizeof s->io)
            n += (size_t)snprintf(s->io + n, sizeof s->io - n, "%s%s", i ? "+" : ", ", shown);
    }
    if (n < sizeof s->io)
        snprintf(s->io + n, sizeof s->io - n, "; %" PRIu64 " frames per chunk)",
                 s->frames_per_chunk);

    uint64_t chunk_bytes = d->elem_size, slab, cache;
    for (uint32_t k = 0; k < s->rank; k++)
        chunk_bytes *= chunk[k]; /* HDF5 limits a chunk to 4 GiB */
    if (!size_mul(s->frames_per_chunk, d->frame_bytes, &slab) || !size_mul(slab, 4, &cache))
        cache = CHUNK_CACHE_MAX;
    cache = cache < CHUNK_CACHE_MIN ? CHUNK_CACHE_MIN : cache > CHUNK_CACHE_MAX ? CHUNK_CACHE_MAX
                                                                                : cache;
    /* HDF5 wants about 100 hash slots per chunk that fits, prime-ish. */
    uint64_t slots = cache / chunk_bytes * 100 + 1;
    slots = slots < 521 ? 521 : slots > 1000003 ? 1000003 : slots;
    hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS);
    /* w0 = 1: a chunk read to its end is evicted first; frames are read in order. */
    if (dapl < 0 || H5Pset_chunk_cache(dapl, (size_t)slots, (size_t)cache, 1.0) < 0) {
        if (dapl >= 0)
            H5Pclose(dapl);
        return err_set(e, UH_ENOMEM, "%s: %s: cannot set up the chunk cache (%s)", d->path,
                       s->dset_path, hdf5_error(msg));
    }
    H5Dclose(s->dset);
    s->dset = H5Dopen2(s->file, s->dset_path, dapl);
    H5Pclose(dapl);
    if (s->dset < 0)
        return err_set(e, UH_EDATA, "%s: %s: cannot reopen the dataset (%s)", d->path,
                       s->dset_path, hdf5_error(msg));
    return 0;
}

static void state_free(hdf5_state *s)
{
    if (!s)
        return;
    if (s->file_space >= 0)
        H5Sclose(s->file_space);
    if (s->mem_type >= 0)
        H5Tclose(s->mem_type);
    if (s->dset >= 0)
        H5Dclose(s->dset);
    if (s->file >= 0)
        H5Fclose(s->file);
    H5Eclear2(H5E_DEFAULT);
    free(s->dset_path);
    free(s);
}

/* Contiguous data needs no HDF5 after open: the host's mapping reader serves it (its functions
 * are filled in by udfhost_hdf5_reader). */
static ds_reader hdf5_mapped_reader = {.name = "hdf5"};

/* The dataset's type, shape and layout; everything under hdf5_lock. On success either s is
 * d->state (read through H5Dread) or *map_offset is where the contiguous data starts. */
static int open_locked(ds *d, const ds_options *o, hdf5_state *s, haddr_t *map_offset, err *e)
{
    char msg[256], tname[48];
    const char *path = o->path;
    s->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (s->file < 0) {
        hdf5_error(msg);
        /* HDF5 compares the end of file the superblock records with the real size. */
        const char *eof = strstr(msg, "eof = "), *stored = strstr(msg, "stored_eof = ");
        unsigned long long have, need;
        if (strstr(msg, "truncated") && eof && stored && sscanf(eof, "eof = %llu", &have) == 1 &&
            sscanf(stored, "stored_eof = %llu", &need) == 1)
            return err_set(e, UH_EDATA, "%s: file too short: the HDF5 superblock says %llu "
                           "bytes, the file has %llu", path, need, have);
        if (strstr(msg, "truncated"))
            return err_set(e, UH_EDATA, "%s: file too short: %s", path, msg);
        return err_set(e, UH_EDATA, "%s: cannot open as HDF5: %s", path, msg);
    }
    int rc = find_dataset(s->file, path, o, &s->dset_path, e);
    if (rc)
        return rc;
    const char *name = s->dset_path;
    s->dset = H5Dopen2(s->file, name, H5P_DEFAULT);
    if (s->dset < 0)
        return err_set(e, UH_EDATA, "%s: %s: cannot open the dataset (%s)", path, name,
                       hdf5_error(msg));
    s->mem_type = H5Dget_type(s->dset);
    s->file_space = H5Dget_space(s->dset);
    if (s->mem_type < 0 || s->file_space < 0)
        return err_set(e, UH_EDATA, "%s: %s: cannot read type and shape (%s)", path, name,
                       hdf5_error(msg));
    int rank = H5Sget_simple_extent_dims(s->file_space, s->dims, NULL);
    if (rank < 0 || H5Sget_simple_extent_type(s->file_space) != H5S_SIMPLE)
        return err_set(e, UH_EDATA, "%s: %s: the dataset is a scalar or empty, not an array",
                       path, name);
    s->rank = (uint32_t)rank;
    if (!type_to_dtype(s->mem_type, &d->dtype, &d->big_endian, tname, sizeof tname))
        return err_set(e, UH_EDATA, "%s: %s: element type %s is not supported (uint8/16/32, "
                       "int8/16/32, float32/64)", path, name, tname);
    d->elem_size = udf_dtype_size(d->dtype);
    if (o->dtype != UDF_DTYPE_NONE && (o->dtype != d->dtype || (o->big_endian && !d->big_endian)))
        return err_set(e, UH_EUSAGE, "%s: --dtype %s%s does not match %s's %s", path,
                       dtype_name(o->dtype), o->big_endian ? " big-endian" : "", name, tname);
    if ((rc = set_shape(d, o, s, e)))
        return rc;

    hid_t dcpl = H5Dget_create_plist(s->dset);
    if (dcpl < 0)
        return err_set(e, UH_EDATA, "%s: %s: cannot read the layout (%s)", path, name,
                       hdf5_error(msg));
    H5D_layout_t layout = H5Pget_layout(dcpl);
    int external = H5Pget_external_count(dcpl);
    rc = 0;
    s->frames_per_chunk = 1;
    snprintf(s->io, sizeof s->io, "hdf5");
    if (layout == H5D_VIRTUAL)
        rc = err_set(e, UH_EDATA, "%s: %s: virtual datasets (data in other files) are not "
                     "supported (a missing source would read as fill values); open a source "
                     "file, or copy the data into a regular dataset", path, name);
    else if (external > 0)
        rc = err_set(e, UH_EDATA, "%s: %s: datasets stored in external raw files are not "
                     "supported; read the raw file with --format raw", path, name);
    else if (layout == H5D_CHUNKED)
        rc = setup_chunked(d, s, dcpl, e);
    else if (layout == H5D_CONTIGUOUS) {
        /* Undefined until written: such a dataset holds its fill value, which H5Dread gives. */
        haddr_t at = H5Dget_offset(s->dset);
        H5Eclear2(H5E_DEFAULT);
        uint64_t bytes = d->num_frames * d->frame_bytes; /* checked in set_shape */
        if (at != HADDR_UNDEF && H5Dget_storage_size(s->dset) != bytes)
            rc = err_set(e, UH_EDATA, "%s: %s: contiguous storage of %llu bytes, the shape "
                         "needs %llu", path, name,
                         (unsigned long long)H5Dget_storage_size(s->dset),
                         (unsigned long long)bytes);
        *map_offset = at;
    }
    H5Pclose(dcpl);
    return rc;
}

#ifndef UDFHOST_HDF5_BUILTIN
/* A sanitizer's shadow memory needs terabytes of address space: no limit under one. */
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define PROBE_LIMITS_MEMORY 1
/* This process's address space in bytes (VmSize), 0 if unknown. */
static uint64_t address_space(void)
{
    FILE *f = fopen("/proc/self/status", "re");
    unsigned long long kb = 0;
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %llu kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return (uint64_t)kb * 1024;
}
#endif

/* libhdf5 trusts a file's structure: a corrupt one can crash it or make it allocate without
 * bound (examples in tests/fuzz/known-crashes/: a 1449-byte file drives it into the OOM killer).
 * So the file is first opened as hdf5_open would, in a child process with 256 MiB more address
 * space and 60 s; this process opens it only when that went well, and would then do the same
 * work within the same bounds. The child's own failure message comes back through a pipe. */
#define PROBE_HEADROOM ((uint64_t)256 << 20)
#define PROBE_SECONDS 60

static int probe_open(const ds_options *o, err *e)
{
    int pipefd[2];
    if (pipe(pipefd))
        return err_sys(e, UH_EDATA, errno, "%s: cannot open (pipe)", o->path);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(pipefd[0]);
        close(pipefd[1]);
        return err_sys(e, UH_EDATA, errno, "%s: cannot open (fork)", o->path);
    }
    if (!pid) {
        static const int deadly[] = {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL, SIGINT, SIGTERM};
        for (size_t i = 0; i < sizeof deadly / sizeof *deadly; i++)
            signal(deadly[i], SIG_DFL);
        close(pipefd[0]);
#ifdef PROBE_LIMITS_MEMORY
        uint64_t now = address_space();
        struct rlimit rl;
        if (now && !getrlimit(RLIMIT_AS, &rl) &&
            (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > now + PROBE_HEADROOM)) {
            rl.rlim_cur = now + PROBE_HEADROOM;
            setrlimit(RLIMIT_AS, &rl);
        }
#endif
        alarm(PROBE_SECONDS);
        ds scratch;
        memset(&scratch, 0, sizeof scratch);
        scratch.path = (char *)o->path; /* for messages */
        hdf5_state *s = calloc(1, sizeof *s);
        err mine = {0};
        haddr_t at = HADDR_UNDEF;
        int rc = s ? 0 : err_set(&mine, UH_ENOMEM, "out of memory opening %s", o->path);
        if (!rc) {
            s->file = s->dset = s->mem_type = s->file_space = H5I_INVALID_HID;
            hdf5_lock_quiet();
            rc = open_locked(&scratch, o, s, &at, &mine);
        }
        if (rc) {
            ssize_t ignored = write(pipefd[1], &mine, sizeof mine);
            (void)ignored;
        }
        _exit(rc ? 1 : 0);
    }
    close(pipefd[1]);
    err theirs;
    size_t got = 0;
    while (got < sizeof theirs) {
        ssize_t n = read(pipefd[0], (char *)&theirs + got, sizeof theirs - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(pipefd[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(status) && !WEXITSTATUS(status))
        return 0;
    if (WIFEXITED(status) && got == sizeof theirs && theirs.code) {
        theirs.msg[sizeof theirs.msg - 1] = '\0';
        *e = theirs;
        return theirs.code;
    }
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
        return err_set(e, UH_EDATA, "%s: libhdf5 did not finish opening the file in %d s; it is "
                       "probably corrupt", o->path, PROBE_SECONDS);
    if (WIFSIGNALED(status) && (WTERMSIG(status) == SIGINT || WTERMSIG(status) == SIGTERM))
        return err_set(e, UH_EINTR, "%s: stopped while opening", o->path);
    if (WIFSIGNALED(status))
        return err_set(e, UH_EDATA, "%s: libhdf5 crashed opening the file (%s); it is probably "
                       "corrupt", o->path, strsignal(WTERMSIG(status)));
    return err_set(e, UH_EDATA, "%s: libhdf5 could not open the file within 256 MiB of memory; "
                   "it is probably corrupt", o->path);
}
#endif

static int hdf5_open(ds *d, const ds_options *o, err *e)
{
    struct stat st;
    if (stat(o->path, &st))
        return err_sys(e, UH_EDATA, errno, "%s: cannot open", o->path);
#ifndef UDFHOST_HDF5_BUILTIN
    int probed = probe_open(o, e);
    if (probed)
        return probed;
#endif
    hdf5_state *s = calloc(1, sizeof *s);
    if (!s)
        return err_set(e, UH_ENOMEM, "out of memory opening %s", o->path);
    s->file = s->dset = s->mem_type = s->file_space = H5I_INVALID_HID;
    haddr_t map_offset = HADDR_UNDEF;
    hdf5_lock_quiet();
    int rc = open_locked(d, o, s, &map_offset, e);
    if (rc || map_offset != HADDR_UNDEF) {
        state_free(s);
        s = NULL;
    }
    pthread_mutex_unlock(&hdf5_lock);
    if (rc)
        return rc;
    if (map_offset != HADDR_UNDEF) {
        /* ds_map_frames checks that the file holds every frame ("file too short"). */
        if ((rc = host.map_frames(d, o->path, map_offset, d->frame_bytes, e)))
            return rc;
        d->reader = &hdf5_mapped_reader;
        d->io = "mmap (hdf5 contiguous)";
        return 0;
    }
    d->file_bytes = (uint64_t)st.st_size;
    d->io = s->io;
    d->state = s;
    return 0;
}

/* Decode file frames [first, first + count) (flat C order of the file's nav dims) into out, one
 * H5Dread per box of whole frames: at most 2 * nav_ndim - 1 of them. Each memory space has its
 * box's shape, which lets HDF5 copy whole runs per chunk; a flat memory space or a union of
 * boxes makes it map every element on its own, several times slower than gzip itself. The
 * caller holds hdf5_lock. */
static herr_t read_locked(hdf5_state *s, uint64_t first, uint64_t count, unsigned char *out)
{
    hsize_t start[H5S_MAX_RANK], size[H5S_MAX_RANK];
    for (uint32_t k = s->nav_ndim; k < s->rank; k++) {
        start[k] = 0;
        size[k] = s->dims[k];
    }
    uint64_t f = first, left = count;
    while (left) {
        uint64_t idx[UDF_MAX_DIMS], rem = f;
        for (uint32_t k = s->nav_ndim; k-- > 0;) {
            idx[k] = rem % s->dims[k];
            rem /= s->dims[k];
        }
        /* Climb to the outermost dim L where f starts a whole block that still fits. */
        uint32_t L = s->nav_ndim - 1;
        uint64_t block = 1;
        while (L > 0 && idx[L] == 0 && block * s->dims[L] <= left) {
            block *= s->dims[L];
            L--;
        }
        uint64_t run = s->dims[L] - idx[L];
        if (run > left / block)
            run = left / block;
        for (uint32_t k = 0; k < s->nav_ndim; k++) {
            start[k] = k <= L ? idx[k] : 0;
            size[k] = k < L ? 1 : k == L ? run : s->dims[k];
        }
        hid_t mem = H5Screate_simple((int)s->rank, size, NULL);
        herr_t r = mem < 0 ? -1
                   : H5Sselect_hyperslab(s->file_space, H5S_SELECT_SET, start, NULL, size, NULL);
        if (r >= 0)
            r = H5Dread(s->dset, s->mem_type, mem, s->file_space, H5P_DEFAULT, out);
        if (mem >= 0)
            H5Sclose(mem);
        if (r < 0)
            return r;
        out += run * block * s->frame_bytes;
        f += run * block;
        left -= run * block;
    }
    return 0;
}

static int hdf5_read(ds *d, uint64_t first, uint64_t count, void *scratch,
                     const unsigned char **data, size_t *stride, err *e)
{
    hdf5_state *s = d->state;
    int rc = 0;
    hdf5_lock_quiet();
    if (read_locked(s, first, count, scratch) < 0) {
        /* Find the frame that fails, for the message. */
        char msg[256] = "";
        uint64_t bad = first;
        for (uint64_t i = 0; i < count; i++) {
            H5Eclear2(H5E_DEFAULT);
            if (read_locked(s, first + i, 1, scratch) < 0) {
                bad = first + i;
                break;
            }
        }
        rc = err_set(e, UH_EDATA, "%s: %s: frame %" PRIu64 ": cannot read (%s)", d->path,
                     s->dset_path, bad, hdf5_error(msg));
    }
    pthread_mutex_unlock(&hdf5_lock);
    *data = scratch;
    *stride = d->frame_bytes;
    return rc;
}

static void hdf5_close(ds *d)
{
    hdf5_lock_quiet();
    state_free(d->state);
    pthread_mutex_unlock(&hdf5_lock);
    d->state = NULL;
}

static const ds_reader hdf5_reader = {
    .name = "hdf5",
    .open = hdf5_open,
    .read = hdf5_read,
    .close = hdf5_close,
};

__attribute__((visibility("default")))
const ds_reader *udfhost_hdf5_reader(const ds_hdf5_host *h, const char *version)
{
    if (strcmp(version, PACKAGE_VERSION))
        return NULL;
    host = *h;
    hdf5_mapped_reader.read = host.map_read;
    hdf5_mapped_reader.release = host.map_release;
    hdf5_mapped_reader.close = host.map_close;
    return &hdf5_reader;
}
