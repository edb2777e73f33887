/* Shared by the fuzz targets: turning the fuzzer's bytes into a file the readers can open by
 * name. Each target is one .c with LLVMFuzzerTestOneInput; replay.c drives them without
 * libFuzzer. */
#ifndef UDFHOST_FUZZ_COMMON_H
#define UDFHOST_FUZZ_COMMON_H

#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Make the file at the memfd's /proc/self/fd path hold exactly data[0..size). One memfd per
 * process, reused for every input (no disk I/O, no temp file left behind by a crash). The path
 * stays valid for the life of the process; *path points at static storage. */
static inline void fuzz_memfd_fill(const uint8_t *data, size_t size, const char **path)
{
    static int fd = -1;
    static char name[64];
    if (fd < 0) {
        fd = memfd_create("udfhost-fuzz", MFD_CLOEXEC);
        if (fd < 0) {
            perror("memfd_create");
            abort();
        }
        snprintf(name, sizeof name, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) || (size && pwrite(fd, data, size, 0) != (ssize_t)size)) {
        perror("fuzz memfd");
        abort();
    }
    *path = name;
}

/* Like fuzz_memfd_fill, for readers that need a real name: the file `name` ("x.ini") in a private
 * directory under $FUZZ_TMPDIR (else /dev/shm or /tmp), rewritten for each input and removed at
 * a normal exit (a crash leaves it: fuzz.sh and replay.sh point FUZZ_TMPDIR into their own
 * directories and remove those). Use one name per process. */
static char fuzz_tmp_dir[512], fuzz_tmp_path[640];

static inline void fuzz_tmp_remove(void)
{
    unlink(fuzz_tmp_path);
    rmdir(fuzz_tmp_dir);
}

static inline void fuzz_tmpfile_fill(const uint8_t *data, size_t size, const char *name,
                                     const char **path)
{
    if (!fuzz_tmp_dir[0]) {
        const char *base = getenv("FUZZ_TMPDIR");
        if (!base || !*base)
            base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        if (snprintf(fuzz_tmp_dir, sizeof fuzz_tmp_dir, "%s/udfhost-fuzz-XXXXXX", base) >=
                (int)sizeof fuzz_tmp_dir ||
            !mkdtemp(fuzz_tmp_dir)) {
            perror("mkdtemp");
            abort();
        }
        snprintf(fuzz_tmp_path, sizeof fuzz_tmp_path, "%s/%s", fuzz_tmp_dir, name);
        atexit(fuzz_tmp_remove);
    }
    int fd = open(fuzz_tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size) || close(fd)) {
        perror(fuzz_tmp_path);
        abort();
    }
    *path = fuzz_tmp_path;
}

/* data[0..size) as a NUL-terminated string in a malloc'ed copy (caller frees). Bytes after an
 * embedded NUL are simply not seen by the parsers. */
static inline char *fuzz_string(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    for (size_t i = 0; i < size; i++)
        s[i] = (char)data[i];
    s[size] = '\0';
    return s;
}

#endif
