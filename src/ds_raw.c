/* Raw binary frames: an optional file header, then frames of fixed size in C order, each with
 * optional per-frame header and footer bytes. The file is mapped read-only and never copied. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ds.h"
#include "shape.h"

typedef struct raw_state {
    const unsigned char *map; /* the whole file, PROT_READ */
    size_t map_len;
    uint64_t offset;          /* of frame 0's first pixel byte */
    uint64_t stride;          /* bytes from one frame's first pixel to the next */
    long page;
} raw_state;

static int raw_open(ds *d, const ds_options *o, err *e)
{
    int rc = ds_shape_from_options(d, o, e);
    if (rc)
        return rc;
    uint64_t stride, first, span, need;
    if (!size_add(d->frame_bytes, o->frame_header, &stride) ||
        !size_add(stride, o->frame_footer, &stride) ||
        !size_mul(stride, d->num_frames - 1, &span) || !size_add(span, d->frame_bytes, &span) ||
        !size_add(o->offset, o->frame_header, &first) || !size_add(first, span, &need))
        return err_set(e, UH_EUSAGE, "%s: the given shape and offsets overflow 64 bits", o->path);

    int fd = open(o->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_sys(e, UH_EDATA, errno, "%s: cannot open", o->path);
    struct stat st;
    if (fstat(fd, &st)) {
        rc = err_sys(e, UH_EDATA, errno, "%s", o->path);
        close(fd);
        return rc;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return err_set(e, UH_EDATA, "%s: not a regular file", o->path);
    }
    if ((uint64_t)st.st_size < need) {
        close(fd);
        return err_set(e, UH_EDATA,
                       "%s: file too short: %llu frames of %llu bytes from offset %llu need %llu "
                       "bytes, the file has %llu",
                       o->path, (unsigned long long)d->num_frames,
                       (unsigned long long)d->frame_bytes, (unsigned long long)o->offset,
                       (unsigned long long)need, (unsigned long long)st.st_size);
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        close(fd);
        return err_set(e, UH_EDATA, "%s: file too large to map", o->path);
    }
    raw_state *s = calloc(1, sizeof *s);
    if (!s) {
        close(fd);
        return err_set(e, UH_ENOMEM, "out of memory opening %s", o->path);
    }
    s->map_len = (size_t)need;
    void *map = mmap(NULL, s->map_len, PROT_READ, MAP_SHARED, fd, 0);
    int map_errno = errno;
    close(fd); /* the mapping keeps the file open */
    if (map == MAP_FAILED) {
        free(s);
        return err_sys(e, UH_EDATA, map_errno, "%s: mmap failed", o->path);
    }
    s->map = map;
    s->offset = first;
    s->stride = stride;
    s->page = sysconf(_SC_PAGESIZE);
    d->file_bytes = (uint64_t)st.st_size;
    d->state = s;
    return 0;
}

static int raw_read(ds *d, uint64_t first, uint64_t count, void *scratch,
                    const unsigned char **data, size_t *stride, err *e)
{
    (void)count;
    (void)scratch;
    (void)e;
    const raw_state *s = d->state;
    *data = s->map + s->offset + first * s->stride;
    *stride = s->stride;
    return 0;
}

static void raw_release(ds *d, uint64_t first, uint64_t count)
{
    const raw_state *s = d->state;
    /* Drop only pages wholly inside the released frames; neighbours may still be in use. */
    uintptr_t start = (uintptr_t)(s->map + s->offset + first * s->stride);
    uintptr_t end = start + count * s->stride;
    uintptr_t page = (uintptr_t)s->page;
    start = (start + page - 1) & ~(page - 1);
    end &= ~(page - 1);
    if (end > start)
        madvise((void *)start, end - start, MADV_DONTNEED);
}

static void raw_close(ds *d)
{
    raw_state *s = d->state;
    if (!s)
        return;
    munmap((void *)s->map, s->map_len);
    free(s);
    d->state = NULL;
}

const ds_reader ds_raw_reader = {
    .name = "raw",
    .open = raw_open,
    .read = raw_read,
    .release = raw_release,
    .close = raw_close,
};
