/* Frames at a fixed stride in one file, through a read-only mapping: the zero-copy path that raw
 * data and every uncompressed format with a header share. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ds.h"
#include "shape.h"

typedef struct map_state {
    const unsigned char *map; /* the file up to the last frame's end, PROT_READ */
    size_t map_len;
    uint64_t offset;          /* of frame 0's first pixel byte */
    uint64_t stride;          /* bytes from one frame's first pixel to the next */
    long page;
} map_state;

int ds_map_frames(ds *d, const char *path, uint64_t first, uint64_t stride, err *e)
{
    uint64_t span, need;
    if (!size_mul(stride, d->num_frames - 1, &span) || !size_add(span, d->frame_bytes, &span) ||
        !size_add(first, span, &need))
        return err_set(e, UH_EDATA, "%s: the shape and offsets overflow 64 bits", path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_sys(e, UH_EDATA, errno, "%s: cannot open", path);
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st))
        rc = err_sys(e, UH_EDATA, errno, "%s", path);
    else if (!S_ISREG(st.st_mode))
        rc = err_set(e, UH_EDATA, "%s: not a regular file", path);
    else if ((uint64_t)st.st_size < need)
        rc = err_set(e, UH_EDATA,
                     "%s: file too short: %llu frames of %llu bytes from offset %llu need %llu "
                     "bytes, the file has %llu",
                     path, (unsigned long long)d->num_frames, (unsigned long long)d->frame_bytes,
                     (unsigned long long)first, (unsigned long long)need,
                     (unsigned long long)st.st_size);
    else if (need > SIZE_MAX)
        rc = err_set(e, UH_EDATA, "%s: file too large to map", path);
    map_state *s = rc ? NULL : calloc(1, sizeof *s);
    if (!rc && !s)
        rc = err_set(e, UH_ENOMEM, "out of memory opening %s", path);
    if (rc) {
        close(fd);
        return rc;
    }
    s->map_len = (size_t)need;
    void *map = mmap(NULL, s->map_len, PROT_READ, MAP_SHARED, fd, 0);
    int map_errno = errno;
    close(fd); /* the mapping keeps the file open */
    if (map == MAP_FAILED) {
        free(s);
        return err_sys(e, UH_EDATA, map_errno, "%s: mmap failed", path);
    }
    s->map = map;
    s->offset = first;
    s->stride = stride;
    s->page = sysconf(_SC_PAGESIZE);
    d->file_bytes = (uint64_t)st.st_size;
    d->io = "mmap";
    d->state = s;
    return 0;
}

int ds_map_read(ds *d, uint64_t first, uint64_t count, void *scratch, const unsigned char **data,
                size_t *stride, err *e)
{
    (void)count;
    (void)scratch;
    (void)e;
    const map_state *s = d->state;
    *data = s->map + s->offset + first * s->stride;
    *stride = s->stride;
    return 0;
}

void ds_map_release(ds *d, uint64_t first, uint64_t count)
{
    const map_state *s = d->state;
    /* Drop only pages wholly inside the released frames; neighbours may still be in use. */
    uintptr_t start = (uintptr_t)(s->map + s->offset + first * s->stride);
    uintptr_t end = start + count * s->stride;
    uintptr_t page = (uintptr_t)s->page;
    start = (start + page - 1) & ~(page - 1);
    end &= ~(page - 1);
    if (end > start)
        madvise((void *)start, end - start, MADV_DONTNEED);
}

void ds_map_close(ds *d)
{
    map_state *s = d->state;
    if (!s)
        return;
    munmap((void *)s->map, s->map_len);
    free(s);
    d->state = NULL;
}
