/* Frames at a fixed stride in one file: the path raw data and every uncompressed format with a
 * header share. Three ways to read them (--io): a read-only mapping, no copy (mmap); pread() of
 * each tile's bytes into a worker's own buffer (read); and the same with O_DIRECT, past the page
 * cache, for cold data larger than memory (direct). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ds.h"
#include "fileio.h"
#include "shape.h"

typedef struct map_state {
    const unsigned char *map; /* mmap: the file up to the last frame's end, PROT_READ */
    size_t map_len;
    int fd;                   /* read, direct: the open file */
    ds_io io;
    uint64_t offset;          /* of frame 0's first pixel byte */
    uint64_t stride;          /* bytes from one frame's first pixel to the next */
    long page;
} map_state;

/* O_DIRECT wants buffer, offset and length aligned to the device's block; 4 KiB covers them. */
#define DIRECT_ALIGN 4096

/* --io auto: the mapping, unless the data would not fit in memory, where pread with the pages
 * dropped behind keeps the page cache from thrashing. */
static ds_io choose_io(ds_io io_mode, uint64_t bytes)
{
    if (io_mode != DS_IO_AUTO)
        return io_mode;
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0 && bytes > (uint64_t)pages * (uint64_t)page)
        return DS_IO_READ;
    return DS_IO_MMAP;
}

const char *ds_io_name(ds_io mode)
{
    return mode == DS_IO_READ ? "read" : mode == DS_IO_DIRECT ? "direct" : "mmap";
}

/* Each worker thread's buffer for read and direct: aligned, grown as needed, freed at exit. */
static pthread_key_t buffer_key;
static pthread_once_t buffer_once = PTHREAD_ONCE_INIT;
static _Thread_local unsigned char *thread_buf;
static _Thread_local size_t thread_cap;

static void make_key(void)
{
    pthread_key_create(&buffer_key, free);
}

static unsigned char *thread_buffer(size_t need)
{
    if (need <= thread_cap)
        return thread_buf;
    pthread_once(&buffer_once, make_key);
    void *p = NULL;
    size_t cap = (need + DIRECT_ALIGN - 1) / DIRECT_ALIGN * DIRECT_ALIGN;
    if (posix_memalign(&p, DIRECT_ALIGN, cap))
        return NULL;
    free(thread_buf);
    thread_buf = p;
    thread_cap = cap;
    pthread_setspecific(buffer_key, p);
    return thread_buf;
}

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
    s->io = choose_io((ds_io)d->io_request, need - first);
    s->offset = first;
    s->stride = stride;
    s->page = sysconf(_SC_PAGESIZE);
    d->file_bytes = (uint64_t)st.st_size;
    d->io = ds_io_name(s->io);
    if (s->io != DS_IO_MMAP) {
        if (s->io == DS_IO_DIRECT) {
            /* A second descriptor with O_DIRECT: the first one proved the file is readable. */
            int dfd = open(path, O_RDONLY | O_CLOEXEC | O_DIRECT);
            int err_no = errno;
            close(fd);
            if (dfd < 0) {
                free(s);
                return err_sys(e, err_no == EINVAL ? UH_EUSAGE : UH_EDATA, err_no,
                               "%s: --io direct: cannot open with O_DIRECT%s", path,
                               err_no == EINVAL ? " (the file system does not support it)" : "");
            }
            fd = dfd;
        }
        s->fd = fd;
        d->state = s;
        return 0;
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
    s->fd = -1;
    d->state = s;
    return 0;
}

int ds_map_read(ds *d, uint64_t first, uint64_t count, void *scratch, const unsigned char **data,
                size_t *stride, err *e)
{
    (void)scratch;
    const map_state *s = d->state;
    *stride = s->stride;
    if (s->io == DS_IO_MMAP) {
        *data = s->map + s->offset + first * s->stride;
        return 0;
    }
    /* The span from the first frame's pixels to the last frame's end, headers between included,
     * read whole into this thread's buffer: one system call per tile. */
    uint64_t off = s->offset + first * s->stride;
    size_t span = (size_t)((count - 1) * s->stride + d->frame_bytes), lead = 0, len = span;
    if (s->io == DS_IO_DIRECT) {
        lead = (size_t)(off % DIRECT_ALIGN);
        off -= lead;
        len = (lead + span + DIRECT_ALIGN - 1) / DIRECT_ALIGN * DIRECT_ALIGN;
    }
    unsigned char *buf = thread_buffer(len);
    if (!buf)
        return err_set(e, UH_ENOMEM, "%s: out of memory for a read buffer of %zu bytes", d->path,
                       len);
    size_t got = 0;
    int rc = file_read_at(s->fd, d->path, buf, len, off, &got, e);
    if (rc)
        return rc;
    if (got < lead + span)
        return err_set(e, UH_EDATA, "%s: file too short: it ended at byte %llu while reading "
                       "frames %llu..%llu (did it shrink?)", d->path,
                       (unsigned long long)(off + got), (unsigned long long)first,
                       (unsigned long long)(first + count - 1));
    *data = buf + lead;
    return 0;
}

void ds_map_release(ds *d, uint64_t first, uint64_t count)
{
    const map_state *s = d->state;
    if (s->io != DS_IO_MMAP) {
        /* Read once: let the kernel drop these pages rather than other data. */
        if (s->io == DS_IO_READ)
            posix_fadvise(s->fd, (off_t)(s->offset + first * s->stride),
                          (off_t)(count * s->stride), POSIX_FADV_DONTNEED);
        return;
    }
    /* Drop only pages wholly inside the released frames; neighbours may still be in use. */
    uintptr_t start = (uintptr_t)(s->map + s->offset + first * s->stride);
    uintptr_t end = start + count * s->stride;
    /* The last frame's footer lies past the mapping, which ends at its pixels. */
    if (end > (uintptr_t)(s->map + s->map_len))
        end = (uintptr_t)(s->map + s->map_len);
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
    if (s->io == DS_IO_MMAP)
        munmap((void *)s->map, s->map_len);
    else
        close(s->fd);
    free(s);
    d->state = NULL;
}
