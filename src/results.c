/* Result files: temporary file, fsync, then rename of all of them once all are complete. */
#include "results.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "imgout.h"
#include "npy.h"
#include "sig.h"

int results_prepare_dir(const char *dir, err *e)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
        return err_set(e, UH_EIO, "%s: path too long", dir);
    /* mkdir -p: create each missing component in turn. */
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(path, 0777) && errno != EEXIST)
            return err_sys(e, UH_EIO, errno, "%s: cannot create output directory", path);
        *p = saved;
        if (!saved)
            break;
    }
    struct stat st;
    if (stat(dir, &st))
        return err_sys(e, UH_EIO, errno, "%s", dir);
    if (!S_ISDIR(st.st_mode))
        return err_set(e, UH_EIO, "%s: output path is not a directory", dir);
    if (access(dir, W_OK | X_OK))
        return err_sys(e, UH_EIO, errno, "%s: output directory is not writable", dir);
    return 0;
}

uint32_t results_shape(const ds *d, const plugin *pl, uint32_t i, uint64_t *shape)
{
    const udf_buffer_decl *b = &pl->buffers[i].decl;
    uint32_t n = 0;
    if (b->kind == UDF_KIND_NAV)
        for (uint32_t k = 0; k < d->nav_ndim; k++)
            shape[n++] = d->nav_shape[k];
    else if (b->kind == UDF_KIND_SIG)
        for (uint32_t k = 0; k < d->sig_ndim; k++)
            shape[n++] = d->sig_shape[k];
    for (uint32_t k = 0; k < b->extra_ndim; k++)
        shape[n++] = b->extra_shape[k];
    return n;
}

/* 0 if dir/name does not exist, else UH_EIO naming it. lstat: a dangling symbolic link counts,
 * as rename would replace it. */
static int check_absent(const char *dir, const char *name, err *e)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (!lstat(path, &st))
        return err_set(e, UH_EIO, "%s: already exists (give --overwrite to replace it)", path);
    if (errno != ENOENT)
        return err_sys(e, UH_EIO, errno, "%s", path);
    return 0;
}

typedef struct pending {
    char *tmp, *final;
    enum { NOT_PLACED, RENAMED, SWAPPED } placed; /* how commit() moved it into place */
} pending;

static int write_one(const char *tmp, const char *final, udf_dtype dtype, uint32_t ndim,
                     const uint64_t *shape, const void *data, err *e)
{
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0)
        return err_sys(e, UH_EIO, errno, "%s: cannot create", tmp);
    int rc = npy_write_fd(fd, final, dtype, ndim, shape, data, e);
    if (!rc && fsync(fd))
        rc = err_sys(e, UH_EIO, errno, "%s: fsync failed", final);
    if (close(fd) && !rc)
        rc = err_sys(e, UH_EIO, errno, "%s: close failed", final);
    return rc;
}

/* One more file to rename into place at the end. */
static pending *add_pending(pending **files, size_t *n, size_t *cap, const char *dir,
                            const char *name, err *e)
{
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 16;
        pending *grown = realloc(*files, c * sizeof *grown);
        if (!grown) {
            err_set(e, UH_ENOMEM, "out of memory");
            return NULL;
        }
        *files = grown;
        *cap = c;
    }
    pending *f = &(*files)[*n];
    f->placed = NOT_PLACED;
    if (asprintf(&f->final, "%s/%s", dir, name) < 0) {
        err_set(e, UH_ENOMEM, "out of memory");
        return NULL;
    }
    if (asprintf(&f->tmp, "%s/.%s.tmp-%ld", dir, name, (long)getpid()) < 0) {
        free(f->final);
        err_set(e, UH_ENOMEM, "out of memory");
        return NULL;
    }
    /* The writers create the temporary file with O_EXCL. One that exists already was left by a
     * killed run whose process had our PID (PIDs repeat, in a container every time), since no
     * other live process on this machine has it: remove it rather than fail at the end of a
     * long run. */
    unlink(f->tmp);
    (*n)++;
    return f;
}

/* <plugin>.<buffer>[.<k>].<ext>: the name of a result file; k < 0 for none. */
static void result_name(char *buf, size_t cap, const plugin *pl, uint32_t i, int64_t k,
                        const char *ext)
{
    if (k >= 0)
        snprintf(buf, cap, "%s.%s.%lld.%s", pl->desc.name, pl->buffers[i].name, (long long)k, ext);
    else
        snprintf(buf, cap, "%s.%s.%s", pl->desc.name, pl->buffers[i].name, ext);
}

/* The base of buffer i's pictures: the nav or sig shape (none for single buffers). Returns true
 * when it is 2-D, so that a PNG preview can show it. */
static bool picture_base(const ds *d, const plugin *pl, uint32_t i, uint32_t *ndim,
                         const uint64_t **shape)
{
    udf_kind kind = pl->buffers[i].decl.kind;
    *ndim = kind == UDF_KIND_NAV ? d->nav_ndim : kind == UDF_KIND_SIG ? d->sig_ndim : 0;
    *shape = kind == UDF_KIND_NAV ? d->nav_shape : d->sig_shape;
    return *ndim == 2;
}

/* The buffer rearranged so that its extra dims come first: slices[k] is the k-th base-shaped
 * image (rows x cols). Returns a malloc'ed copy, or NULL. */
static void *extra_first(const udf_view *v, uint64_t base, uint64_t extra)
{
    size_t elem = udf_dtype_size(v->dtype), bytes = base * extra * elem;
    unsigned char *out = malloc(bytes ? bytes : 1);
    if (!out)
        return NULL;
    const unsigned char *in = v->data;
    for (uint64_t p = 0; p < base; p++)
        for (uint64_t k = 0; k < extra; k++)
            memcpy(out + (k * base + p) * elem, in + (p * extra + k) * elem, elem);
    return out;
}

static int write_pictures(const ds *d, const plugin *pl, uint32_t i, const udf_view *v,
                          const results_opts *opt, const char *dir, pending **files, size_t *n,
                          size_t *cap, err *e)
{
    uint32_t base_ndim;
    const uint64_t *base_shape;
    bool image = picture_base(d, pl, i, &base_ndim, &base_shape);
    uint64_t extra = pl->buffers[i].extra_size, base = 1;
    for (uint32_t k = 0; k < base_ndim; k++)
        base *= base_shape[k];
    if (!image && !opt->tiff)
        return 0;
    void *slices = extra > 1 ? extra_first(v, base, extra) : v->data;
    if (!slices)
        return err_set(e, UH_ENOMEM, "out of memory");
    size_t elem = udf_dtype_size(v->dtype);
    int rc = 0;
    char name[512];
    for (uint64_t k = 0; opt->preview && image && k < extra && !rc; k++) {
        result_name(name, sizeof name, pl, i, extra > 1 ? (int64_t)k : -1, "png");
        pending *f = add_pending(files, n, cap, dir, name, e);
        rc = f ? preview_write_png_new(f->tmp, (const char *)slices + k * base * elem,
                                       v->dtype, base_shape[0], base_shape[1], opt->scale, e)
               : UH_ENOMEM;
        if (rc && f)
            err_rename(e, f->tmp, f->final);
    }
    if (!rc && opt->tiff) {
        /* Pages of the base image: extra slices, or the leading dims of a larger base. */
        uint64_t shape[2 * UDF_MAX_DIMS];
        uint32_t ndim = 0;
        if (extra > 1)
            shape[ndim++] = extra;
        for (uint32_t k = 0; k < base_ndim; k++)
            shape[ndim++] = base_shape[k];
        if (!ndim)
            shape[ndim++] = 1;
        result_name(name, sizeof name, pl, i, -1, "tif");
        pending *f = add_pending(files, n, cap, dir, name, e);
        rc = f ? imgout_write_tiff(f->tmp, slices, v->dtype, ndim, shape, e) : UH_ENOMEM;
        if (rc && f)
            err_rename(e, f->tmp, f->final);
    }
    if (slices != v->data)
        free(slices);
    return rc;
}

static int write_text(const char *tmp, const char *final, const char *text, err *e)
{
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0)
        return err_sys(e, UH_EIO, errno, "%s: cannot create", tmp);
    size_t len = strlen(text), done = 0;
    int rc = 0;
    while (done < len && !rc) {
        ssize_t w = write(fd, text + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            rc = err_sys(e, UH_EIO, errno, "%s: write failed at offset %zu", final, done);
        else if (w == 0) /* no error and no progress: retrying would spin forever */
            rc = err_set(e, UH_EIO, "%s: write failed at offset %zu: no bytes written", final,
                         done);
        else
            done += (size_t)w;
    }
    if (!rc && fsync(fd))
        rc = err_sys(e, UH_EIO, errno, "%s: fsync failed", final);
    if (close(fd) && !rc)
        rc = err_sys(e, UH_EIO, errno, "%s: close failed", final);
    return rc;
}

/* Move every temporary into place, all or nothing: a rename can fail (EIO, a read-only or full
 * file system) after others succeeded. A file that replaces one (--overwrite) is swapped with it,
 * so that the old results wait under the temporary's name until every file is in place; after a
 * failure they are swapped back and new files removed. Where the file system cannot swap, a
 * plain rename replaces the old file for good. */
static int commit(pending *files, size_t n, err *e)
{
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        pending *f = &files[i];
        if (!renameat2(AT_FDCWD, f->tmp, AT_FDCWD, f->final, RENAME_EXCHANGE))
            f->placed = SWAPPED;
        else if ((errno == ENOENT || errno == EINVAL || errno == ENOSYS) &&
                 !rename(f->tmp, f->final))
            f->placed = RENAMED;
        else
            rc = err_sys(e, UH_EIO, errno, "%s: cannot rename into place", f->final);
    }
    for (size_t i = 0; i < n && rc; i++) {
        if (files[i].placed == SWAPPED)
            renameat2(AT_FDCWD, files[i].tmp, AT_FDCWD, files[i].final, RENAME_EXCHANGE);
        else if (files[i].placed == RENAMED)
            unlink(files[i].final);
    }
    return rc;
}

int results_write(const ds *d, plugin **plugins, const bufset *results, uint32_t n_plugins,
                  const char *dir, const results_opts *opt, err *e)
{
    static const results_opts none = {0};
    if (!opt)
        opt = &none;
    pending *files = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    char name[512];
    for (uint32_t k = 0; k < n_plugins && !rc; k++) {
        const plugin *pl = plugins[k];
        for (uint32_t i = 0; i < pl->n_buffers && !rc; i++) {
            if (pl->buffers[i].decl.flags & UDF_BUFFER_PRIVATE)
                continue;
            result_name(name, sizeof name, pl, i, -1, "npy");
            pending *f = add_pending(&files, &n, &cap, dir, name, e);
            if (!f) {
                rc = UH_ENOMEM;
                break;
            }
            uint64_t shape[2 * UDF_MAX_DIMS];
            uint32_t ndim = results_shape(d, pl, i, shape);
            const udf_view *v = &results[k].views[i];
            rc = write_one(f->tmp, f->final, v->dtype, ndim, shape, v->data, e);
            if (!rc && (opt->preview || opt->tiff))
                rc = write_pictures(d, pl, i, v, opt, dir, &files, &n, &cap, e);
        }
    }
    if (!rc && opt->record) {
        pending *f = add_pending(&files, &n, &cap, dir, "udfhost-run.json", e);
        rc = f ? write_text(f->tmp, f->final, opt->record, e) : UH_ENOMEM;
    }
    /* Stopped by a signal while writing: leave nothing behind instead of renaming. */
    if (!rc && sig_stop_requested())
        rc = err_set(e, UH_EINTR, "stopped by a signal while writing results; none written");
    if (!rc)
        rc = commit(files, n, e);
    if (!rc) {
        /* Make the renames durable too. */
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
    /* Failed: the new results; succeeded: the old ones that were swapped out. */
    for (size_t i = 0; i < n; i++) {
        if (rc || files[i].placed == SWAPPED)
            unlink(files[i].tmp);
        free(files[i].tmp);
        free(files[i].final);
    }
    free(files);
    return rc;
}

int results_check_absent(const ds *d, plugin **plugins, uint32_t n_plugins, const char *dir,
                         const results_opts *opt, err *e)
{
    char name[512];
    int rc = 0;
    for (uint32_t k = 0; k < n_plugins && !rc; k++) {
        const plugin *pl = plugins[k];
        for (uint32_t i = 0; i < pl->n_buffers && !rc; i++) {
            if (pl->buffers[i].decl.flags & UDF_BUFFER_PRIVATE)
                continue;
            result_name(name, sizeof name, pl, i, -1, "npy");
            rc = check_absent(dir, name, e);
            uint32_t base_ndim;
            const uint64_t *base_shape;
            bool image = picture_base(d, pl, i, &base_ndim, &base_shape);
            uint64_t extra = pl->buffers[i].extra_size;
            for (uint64_t p = 0; opt->preview && image && p < extra && !rc; p++) {
                result_name(name, sizeof name, pl, i, extra > 1 ? (int64_t)p : -1, "png");
                rc = check_absent(dir, name, e);
            }
            if (!rc && opt->tiff) {
                result_name(name, sizeof name, pl, i, -1, "tif");
                rc = check_absent(dir, name, e);
            }
        }
    }
    return rc ? rc : check_absent(dir, "udfhost-run.json", e);
}
