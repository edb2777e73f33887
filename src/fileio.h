/* Reading a file region whole: the one loop every reader needs around pread. */
#ifndef UDFHOST_FILEIO_H
#define UDFHOST_FILEIO_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* pread n bytes at off into buf, retrying EINTR and short reads (at most 1 GiB per call, as
 * Linux caps one near 2 GiB); *got < n only at end of file. A read error is UH_EDATA:
 * "path: read failed at offset N: reason", N where the failing read began. */
int file_read_at(int fd, const char *path, void *buf, size_t n, uint64_t off, size_t *got,
                 err *e);

#endif
