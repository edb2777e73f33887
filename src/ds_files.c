/* One file per frame: a directory, or a glob pattern, of single-frame files (raw, .npy or
 * single-page TIFF), in natural sort order ("frame_2" before "frame_10"). Opening lists the names
 * and reads the first file's header only; every other file is opened when a partition reads its
 * frame, so 65 536 files open as fast as one. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "array.h"
#include "ds.h"
#include "dtype.h"
#include "npy.h"
#include "shape.h"

typedef enum file_kind { FILE_RAW, FILE_NPY, FILE_TIFF } file_kind;

typedef struct files_state {
    char **names;
    uint64_t count;
    file_kind kind;
    uint64_t offset; /* raw: bytes before the pixels */
} files_state;

bool ds_files_pattern(const char *path)
{
    struct stat st;
    if (!stat(path, &st))
        return S_ISDIR(st.st_mode);
    return strpbrk(path, "*?[") != NULL;
}

/* Natural order: runs of digits compare as numbers, everything else byte by byte. */
static int natural_cmp(const char *a, const char *b)
{
    while (*a && *b) {
        if (*a >= '0' && *a <= '9' && *b >= '0' && *b <= '9') {
            const char *sa = a, *sb = b;
            while (*sa == '0')
                sa++;
            while (*sb == '0')
                sb++;
            const char *ea = sa, *eb = sb;
            while (*ea >= '0' && *ea <= '9')
                ea++;
            while (*eb >= '0' && *eb <= '9')
                eb++;
            if (ea - sa != eb - sb)
                return ea - sa < eb - sb ? -1 : 1;
            int c = strncmp(sa, sb, (size_t)(ea - sa));
            if (c)
                return c;
            a = ea;
            b = eb;
            continue;
        }
        if (*a != *b)
            return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
        a++;
        b++;
    }
    return *a ? 1 : *b ? -1 : 0;
}

static int cmp_names(const void *x, const void *y)
{
    return natural_cmp(*(char *const *)x, *(char *const *)y);
}

static void free_names(char **names, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* The regular files of a directory (hidden ones skipped) or of a glob pattern. */
static int list_files(const char *path, char ***out, uint64_t *count, err *e)
{
    struct stat st;
    char **names = NULL;
    uint64_t n = 0, cap = 0;
    if (!stat(path, &st) && S_ISDIR(st.st_mode)) {
        DIR *dir = opendir(path);
        if (!dir)
            return err_sys(e, UH_EDATA, errno, "%s: cannot open the directory", path);
        struct dirent *de;
        while ((de = readdir(dir))) {
            if (de->d_name[0] == '.' || (de->d_type != DT_REG && de->d_type != DT_UNKNOWN &&
                                         de->d_type != DT_LNK))
                continue;
            if (n == cap) {
                cap = cap ? 2 * cap : 1024;
                char **grown = realloc(names, cap * sizeof *grown);
                if (!grown) {
                    closedir(dir);
                    free_names(names, n);
                    return err_set(e, UH_ENOMEM, "%s: out of memory listing files", path);
                }
                names = grown;
            }
            size_t len = strlen(path) + strlen(de->d_name) + 2;
            if (!(names[n] = malloc(len))) {
                closedir(dir);
                free_names(names, n);
                return err_set(e, UH_ENOMEM, "%s: out of memory listing files", path);
            }
            snprintf(names[n++], len, "%s/%s", path, de->d_name);
        }
        closedir(dir);
    } else {
        glob_t g;
        int rc = glob(path, GLOB_NOSORT, NULL, &g);
        if (rc == GLOB_NOMATCH)
            return err_set(e, UH_EDATA, "%s: no file matches", path);
        if (rc)
            return err_set(e, UH_EDATA, "%s: cannot list the files", path);
        names = malloc((g.gl_pathc + 1) * sizeof *names);
        for (size_t i = 0; names && i < g.gl_pathc; i++) {
            if (!(names[n] = strdup(g.gl_pathv[i]))) {
                free_names(names, n);
                names = NULL;
                break;
            }
            n++;
        }
        globfree(&g);
        if (!names)
            return err_set(e, UH_ENOMEM, "%s: out of memory listing files", path);
    }
    if (!n) {
        free(names);
        return err_set(e, UH_EDATA, "%s: no files", path);
    }
    qsort(names, n, sizeof *names, cmp_names);
    *out = names;
    *count = n;
    return 0;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcasecmp(s + n - m, suffix);
}

/* The frame layout from the first file: its header for .npy and TIFF, the flags for raw. */
static int first_file(ds *d, files_state *s, const ds_options *o, err *e)
{
    const char *first = s->names[0];
    if (ends_with(first, ".npy") || ends_with(first, ".tif") || ends_with(first, ".tiff")) {
        npy_info info;
        void *data;
        int rc = array_read_file(first, (uint64_t)1 << 32, &info, &data, e);
        if (rc)
            return rc;
        free(data);
        if (!info.ndim || info.ndim > UDF_MAX_DIMS)
            return err_set(e, UH_EDATA, "%s: a frame of %u dimensions", first, info.ndim);
        s->kind = ends_with(first, ".npy") ? FILE_NPY : FILE_TIFF;
        if (s->kind == FILE_TIFF && info.ndim != 2)
            return err_set(e, UH_EDATA, "%s: one page per file expected, it has %llu", first,
                           (unsigned long long)info.shape[0]);
        ds_options f = *o;
        f.dtype = info.dtype;
        f.big_endian = host_is_big_endian(); /* array_read_file returns native order */
        f.sig_ndim = o->sig_ndim ? o->sig_ndim : info.ndim;
        if (!o->sig_ndim)
            memcpy(f.sig_shape, info.shape, info.ndim * sizeof *info.shape);
        f.nav_ndim = o->nav_ndim ? o->nav_ndim : 1;
        if (!o->nav_ndim)
            f.nav_shape[0] = s->count;
        if (o->dtype != UDF_DTYPE_NONE && o->dtype != info.dtype)
            return err_set(e, UH_EUSAGE, "%s: --dtype says %s, the file holds %s", first,
                           dtype_name(o->dtype), dtype_name(info.dtype));
        int rc2 = ds_shape_from_options(d, &f, e);
        if (rc2)
            return rc2;
        uint64_t pixels;
        if (!shape_product(info.shape, info.ndim, &pixels) || pixels != d->sig_size)
            return err_set(e, UH_EUSAGE, "%s: --sig-shape has %llu pixels, the file %llu", first,
                           (unsigned long long)d->sig_size, (unsigned long long)pixels);
        return 0;
    }
    s->kind = FILE_RAW;
    s->offset = o->offset;
    ds_options f = *o;
    if (!o->nav_ndim) {
        f.nav_ndim = 1;
        f.nav_shape[0] = s->count;
    }
    return ds_shape_from_options(d, &f, e);
}

static int files_open(ds *d, const ds_options *o, err *e)
{
    files_state *s = calloc(1, sizeof *s);
    if (!s)
        return err_set(e, UH_ENOMEM, "out of memory opening %s", o->path);
    int rc = list_files(o->path, &s->names, &s->count, e);
    if (!rc)
        rc = first_file(d, s, o, e);
    if (!rc && d->num_frames != s->count)
        rc = err_set(e, UH_EUSAGE, "%s: --nav-shape has %llu frames, there are %llu files",
                     o->path, (unsigned long long)d->num_frames, (unsigned long long)s->count);
    if (rc) {
        free_names(s->names, s->count);
        free(s);
        return rc;
    }
    d->file_bytes = s->count * d->frame_bytes; /* the pixel bytes; headers are not counted */
    d->io = "one file per frame";
    d->state = s;
    return 0;
}

/* Read one frame file into out (frame_bytes). */
static int read_one(ds *d, const files_state *s, uint64_t index, unsigned char *out, err *e)
{
    const char *name = s->names[index];
    if (s->kind != FILE_RAW) {
        npy_info info;
        void *data;
        int rc = array_read_file(name, d->frame_bytes, &info, &data, e);
        if (rc)
            return rc;
        if (info.dtype != d->dtype || info.data_bytes != d->frame_bytes) {
            free(data);
            return err_set(e, UH_EDATA, "%s: frame %llu: %s of %llu bytes, the first file has %s "
                           "of %llu", name, (unsigned long long)index, dtype_name(info.dtype),
                           (unsigned long long)info.data_bytes, dtype_name(d->dtype),
                           (unsigned long long)d->frame_bytes);
        }
        memcpy(out, data, d->frame_bytes);
        free(data);
        return 0;
    }
    int fd = open(name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_sys(e, UH_EDATA, errno, "%s: frame %llu: cannot open", name,
                       (unsigned long long)index);
    uint64_t done = 0;
    while (done < d->frame_bytes) {
        ssize_t n = pread(fd, out + done, d->frame_bytes - done, (off_t)(s->offset + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int err_no = n < 0 ? errno : 0;
            close(fd);
            if (err_no)
                return err_sys(e, UH_EDATA, err_no, "%s: frame %llu: read failed at offset %llu",
                               name, (unsigned long long)index,
                               (unsigned long long)(s->offset + done));
            return err_set(e, UH_EDATA, "%s: frame %llu: file too short: %llu bytes from offset "
                           "%llu needed", name, (unsigned long long)index,
                           (unsigned long long)d->frame_bytes, (unsigned long long)s->offset);
        }
        done += (uint64_t)n;
    }
    close(fd);
    return 0;
}

static int files_read(ds *d, uint64_t first, uint64_t count, void *scratch,
                      const unsigned char **data, size_t *stride, err *e)
{
    const files_state *s = d->state;
    unsigned char *out = scratch;
    for (uint64_t i = 0; i < count; i++) {
        int rc = read_one(d, s, first + i, out + i * d->frame_bytes, e);
        if (rc)
            return rc;
    }
    *data = out;
    *stride = d->frame_bytes;
    return 0;
}

static void files_close(ds *d)
{
    files_state *s = d->state;
    if (!s)
        return;
    free_names(s->names, s->count);
    free(s);
    d->state = NULL;
}

const ds_reader ds_files_reader = {
    .name = "files",
    .open = files_open,
    .read = files_read,
    .close = files_close,
};
