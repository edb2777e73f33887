/* Fault injection for tests/udfhost-fault, the udfhost binary linked with -Wl,--wrap for every
 * allocation and file I/O call the host makes (plugins, libc and other libraries are not wrapped).
 * UDFHOST_FAULT picks one fault, as SQLite's tests do; UDFHOST_FAULT_COUNT=FILE writes at exit how
 * many calls of each class the run made, so that a test can then try every N:
 *
 *   alloc:N[:persist]                    the N-th allocation (malloc ... strdup, asprintf,
 *                                        fopen) fails with ENOMEM (1-based); with
 *                                        persist, every allocation from the N-th on
 *   read:N:eio|short|eintr[:persist]     the N-th read()/pread(): EIO, half the bytes, or EINTR
 *   write:N:eio|enospc|short|eintr[:persist]   the N-th write()/fwrite() likewise (fwrite, where
 *                                        a short count means failure, takes only eio and enospc)
 *   sync:N:eio|enospc[:persist]          the N-th fsync()
 *   rename:N:eio|enospc[:persist]        the N-th rename()/renameat2()
 *
 * The count file has one "CLASS COUNT" line per class, then "fired CLASS OFFSET" when the fault
 * fired: OFFSET is the failing call's return address in the binary (addr2line -e udfhost-fault). */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum fault_class { FAULT_ALLOC, FAULT_READ, FAULT_WRITE, FAULT_SYNC, FAULT_RENAME, FAULT_CLASSES };
static const char *const class_names[FAULT_CLASSES] = {"alloc", "read", "write", "sync", "rename"};

enum fault_kind { KIND_ENOMEM, KIND_EIO, KIND_ENOSPC, KIND_SHORT, KIND_EINTR };

/* The fault asked for; set once before main, read-only afterwards. */
static struct {
    bool armed, persist;
    enum fault_class cls;
    enum fault_kind kind;
    unsigned long n;
    const char *count_file; /* UDFHOST_FAULT_COUNT, NULL if not set */
} spec;

static atomic_ulong calls[FAULT_CLASSES];
static atomic_uintptr_t fired_at; /* return address of the first failed call, 0 if none */

/* The linker's --wrap renames calls to f into __wrap_f and makes __real_f the original; no header
 * declares either. */
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
void *__real_aligned_alloc(size_t align, size_t size);
int __real_posix_memalign(void **p, size_t align, size_t size);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
char *__real_realpath(const char *path, char *resolved);
FILE *__real_fopen(const char *path, const char *mode);
FILE *__real_fdopen(int fd, const char *mode);
ssize_t __real_read(int fd, void *buf, size_t n);
ssize_t __real_pread(int fd, void *buf, size_t n, off_t off);
ssize_t __real_write(int fd, const void *buf, size_t n);
size_t __real_fwrite(const void *p, size_t size, size_t n, FILE *f);
int __real_fsync(int fd);
int __real_rename(const char *from, const char *to);
int __real_renameat2(int from_dir, const char *from, int to_dir, const char *to, unsigned flags);

/* Write the counts file. It allocates nothing, so that it can run inside a failing malloc. */
static void counts_write(void)
{
    char text[512];
    int n = 0;
    for (int c = 0; c < FAULT_CLASSES; c++)
        n +=
            snprintf(text + n, sizeof text - n, "%s %lu\n", class_names[c], atomic_load(&calls[c]));
    uintptr_t at = atomic_load(&fired_at);
    Dl_info info;
    if (at && dladdr((void *)at, &info))
        snprintf(text + n, sizeof text - n, "fired %s %#lx\n", class_names[spec.cls],
                 (unsigned long)(at - (uintptr_t)info.dli_fbase));
    int fd = open(spec.count_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
        ssize_t ignored = __real_write(fd, text, strlen(text));
        (void)ignored;
        close(fd);
    }
}

/* Whether this call of class cls fails; with a kind for it in *kind. */
static bool fault_now(enum fault_class cls, enum fault_kind *kind, void *caller)
{
    unsigned long i = atomic_fetch_add(&calls[cls], 1) + 1;
    if (!spec.armed || spec.cls != cls || i < spec.n || (i > spec.n && !spec.persist))
        return false;
    uintptr_t none = 0;
    /* Write the counts now too, so that a run that then crashes still says where it failed. */
    if (atomic_compare_exchange_strong(&fired_at, &none, (uintptr_t)caller) && spec.count_file)
        counts_write();
    *kind = spec.kind;
    return true;
}

/* A bad UDFHOST_FAULT is a broken test, not a run to judge: say so and stop. */
static void spec_refuse(const char *text)
{
    fprintf(stderr, "udfhost-fault: bad UDFHOST_FAULT '%s' (CLASS:N[:KIND][:persist])\n", text);
    _exit(99);
}

__attribute__((constructor)) static void spec_parse(void)
{
    spec.count_file = getenv("UDFHOST_FAULT_COUNT");
    if (spec.count_file && !*spec.count_file)
        spec.count_file = NULL;
    if (spec.count_file)
        atexit(counts_write);
    const char *text = getenv("UDFHOST_FAULT");
    if (!text || !*text)
        return;
    char cls[16], kind[16] = "", persist[16] = "";
    unsigned long n;
    int got = sscanf(text, "%15[a-z]:%lu:%15[a-z]:%15[a-z]", cls, &n, kind, persist);
    if (got < 2)
        spec_refuse(text);
    if (!strcmp(kind, "persist") && !persist[0]) {
        strcpy(persist, kind);
        kind[0] = '\0';
    }
    static const struct {
        enum fault_class cls;
        const char *name;
        enum fault_kind kind;
    } allowed[] = {
        {FAULT_ALLOC, "", KIND_ENOMEM},     {FAULT_READ, "eio", KIND_EIO},
        {FAULT_READ, "short", KIND_SHORT},  {FAULT_READ, "eintr", KIND_EINTR},
        {FAULT_WRITE, "eio", KIND_EIO},     {FAULT_WRITE, "enospc", KIND_ENOSPC},
        {FAULT_WRITE, "short", KIND_SHORT}, {FAULT_WRITE, "eintr", KIND_EINTR},
        {FAULT_SYNC, "eio", KIND_EIO},      {FAULT_SYNC, "enospc", KIND_ENOSPC},
        {FAULT_RENAME, "eio", KIND_EIO},    {FAULT_RENAME, "enospc", KIND_ENOSPC},
    };
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
        if (!strcmp(cls, class_names[allowed[i].cls]) && !strcmp(kind, allowed[i].name)) {
            spec.cls = allowed[i].cls;
            spec.kind = allowed[i].kind;
            spec.n = n;
            spec.persist = !strcmp(persist, "persist");
            spec.armed = n > 0 && (spec.persist || !persist[0]);
        }
    if (!spec.armed)
        spec_refuse(text);
}

/* --- allocations -------------------------------------------------------------------------- */

#define ALLOC_FAILS() (fault_now(FAULT_ALLOC, &(enum fault_kind){0}, __builtin_return_address(0)))

void *__wrap_malloc(size_t size)
{
    if (ALLOC_FAILS()) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_malloc(size);
}

void *__wrap_calloc(size_t n, size_t size)
{
    if (ALLOC_FAILS()) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t size)
{
    if (ALLOC_FAILS()) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_realloc(p, size);
}

void *__wrap_aligned_alloc(size_t align, size_t size)
{
    if (ALLOC_FAILS()) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_aligned_alloc(align, size);
}

int __wrap_posix_memalign(void **p, size_t align, size_t size)
{
    if (ALLOC_FAILS())
        return ENOMEM;
    return __real_posix_memalign(p, align, size);
}

char *__wrap_strdup(const char *s)
{
    if (ALLOC_FAILS()) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n)
{
    if (ALLOC_FAILS()) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_strndup(s, n);
}

/* Only realpath(path, NULL) allocates. */
char *__wrap_realpath(const char *path, char *resolved)
{
    if (!resolved && ALLOC_FAILS()) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_realpath(path, resolved);
}

/* A stream is an allocation too (glibc mallocs the FILE and its buffer). */
FILE *__wrap_fopen(const char *path, const char *mode)
{
    if (ALLOC_FAILS()) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_fopen(path, mode);
}

FILE *__wrap_fdopen(int fd, const char *mode)
{
    if (ALLOC_FAILS()) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_fdopen(fd, mode);
}

int __wrap_asprintf(char **out, const char *fmt, ...)
{
    if (ALLOC_FAILS()) {
        errno = ENOMEM;
        return -1;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(out, fmt, ap);
    va_end(ap);
    return n;
}

/* --- file I/O ----------------------------------------------------------------------------- */

/* Apply a fault to a read or write of *n bytes: true when the call must fail (-1, errno set); a
 * short fault halves *n instead (a call for one byte cannot be short and goes through). */
static bool io_fails(enum fault_class cls, size_t *n, void *caller)
{
    enum fault_kind kind;
    if (!fault_now(cls, &kind, caller))
        return false;
    if (kind == KIND_SHORT) {
        if (*n > 1)
            *n /= 2;
        return false;
    }
    errno = kind == KIND_EINTR ? EINTR : kind == KIND_ENOSPC ? ENOSPC : EIO;
    return true;
}

ssize_t __wrap_read(int fd, void *buf, size_t n)
{
    if (io_fails(FAULT_READ, &n, __builtin_return_address(0)))
        return -1;
    return __real_read(fd, buf, n);
}

ssize_t __wrap_pread(int fd, void *buf, size_t n, off_t off)
{
    if (io_fails(FAULT_READ, &n, __builtin_return_address(0)))
        return -1;
    return __real_pread(fd, buf, n, off);
}

ssize_t __wrap_write(int fd, const void *buf, size_t n)
{
    if (io_fails(FAULT_WRITE, &n, __builtin_return_address(0)))
        return -1;
    return __real_write(fd, buf, n);
}

/* A short fwrite means an error, so short and eintr faults leave fwrite alone. */
size_t __wrap_fwrite(const void *p, size_t size, size_t n, FILE *f)
{
    enum fault_kind kind;
    if (fault_now(FAULT_WRITE, &kind, __builtin_return_address(0)) &&
        (kind == KIND_EIO || kind == KIND_ENOSPC)) {
        errno = kind == KIND_EIO ? EIO : ENOSPC;
        return 0;
    }
    return __real_fwrite(p, size, n, f);
}

int __wrap_fsync(int fd)
{
    enum fault_kind kind;
    if (fault_now(FAULT_SYNC, &kind, __builtin_return_address(0))) {
        errno = kind == KIND_EIO ? EIO : ENOSPC;
        return -1;
    }
    return __real_fsync(fd);
}

int __wrap_rename(const char *from, const char *to)
{
    enum fault_kind kind;
    if (fault_now(FAULT_RENAME, &kind, __builtin_return_address(0))) {
        errno = kind == KIND_EIO ? EIO : ENOSPC;
        return -1;
    }
    return __real_rename(from, to);
}

int __wrap_renameat2(int from_dir, const char *from, int to_dir, const char *to, unsigned flags)
{
    enum fault_kind kind;
    if (fault_now(FAULT_RENAME, &kind, __builtin_return_address(0))) {
        errno = kind == KIND_EIO ? EIO : ENOSPC;
        return -1;
    }
    return __real_renameat2(from_dir, from, to_dir, to, flags);
}
