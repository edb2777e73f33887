/* Result files: temporary file, fsync, then rename of all of them once all are complete. */
#include "results.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "npy.h"

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

typedef struct pending {
    char *tmp, *final;
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

int results_write(const ds *d, plugin **plugins, const bufset *results, uint32_t n_plugins,
                  const char *dir, err *e)
{
    size_t total = 0, n = 0;
    for (uint32_t k = 0; k < n_plugins; k++)
        total += plugins[k]->n_buffers;
    pending *files = calloc(total + 1, sizeof *files);
    if (!files)
        return err_set(e, UH_ENOMEM, "out of memory");
    int rc = 0;
    for (uint32_t k = 0; k < n_plugins && !rc; k++) {
        const plugin *pl = plugins[k];
        for (uint32_t i = 0; i < pl->n_buffers && !rc; i++) {
            if (pl->buffers[i].decl.flags & UDF_BUFFER_PRIVATE)
                continue;
            pending *f = &files[n];
            if (asprintf(&f->final, "%s/%s.%s.npy", dir, pl->desc.name, pl->buffers[i].name) < 0 ||
                asprintf(&f->tmp, "%s/.%s.%s.npy.tmp-%ld", dir, pl->desc.name, pl->buffers[i].name,
                         (long)getpid()) < 0) {
                rc = err_set(e, UH_ENOMEM, "out of memory");
                break;
            }
            n++;
            uint64_t shape[2 * UDF_MAX_DIMS];
            uint32_t ndim = results_shape(d, pl, i, shape);
            const udf_view *v = &results[k].views[i];
            rc = write_one(f->tmp, f->final, v->dtype, ndim, shape, v->data, e);
            if (rc)
                unlink(f->tmp);
        }
    }
    for (size_t i = 0; i < n && !rc; i++)
        if (rename(files[i].tmp, files[i].final))
            rc = err_sys(e, UH_EIO, errno, "%s: cannot rename into place", files[i].final);
    if (!rc) {
        /* Make the renames durable too. */
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (rc)
            unlink(files[i].tmp);
        free(files[i].tmp);
        free(files[i].final);
    }
    free(files);
    return rc;
}
