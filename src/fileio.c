/* Reading a file region whole (fileio.h). */
#include "fileio.h"

#include <errno.h>
#include <inttypes.h>
#include <unistd.h>

#define READ_CHUNK ((size_t)1 << 30)

int file_read_at(int fd, const char *path, void *buf, size_t n, uint64_t off, size_t *got,
                 err *e)
{
    size_t done = 0;
    while (done < n) {
        size_t want = n - done < READ_CHUNK ? n - done : READ_CHUNK;
        ssize_t r = pread(fd, (unsigned char *)buf + done, want, (off_t)(off + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            *got = done;
            return err_sys(e, UH_EDATA, errno, "%s: read failed at offset %" PRIu64, path,
                           off + done);
        }
        if (r == 0)
            break;
        done += (size_t)r;
    }
    *got = done;
    return 0;
}
