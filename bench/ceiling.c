/* ceiling: the read-bandwidth ceiling for udfhost's benchmark. The least a program can do with a
 * dataset file: read every byte and sum it as uint16, on N threads, each over one contiguous slice.
 *
 *   ceiling mmap  FILE THREADS   map the file read-only and sum it in place
 *   ceiling pread FILE THREADS   pread() 1 MiB chunks into a private buffer per thread and sum
 *
 * Prints one line: mode, threads, bytes, seconds (open to join: no process start or exit), GB/s
 * (1e9 bytes) and the sum (so the compiler cannot drop the work). Exit status 0 on success.
 *
 * Built by bench/run.sh with -O3 -ftree-vectorize -pthread and no -march: the numbers must be
 * comparable across machines of the same ISA. The sum is exact: blocks of at most 65536 uint16
 * are summed in 32 bits (65535 * 65536 < 2^32, and uint16 -> uint32 widening vectorises at 4 or 8
 * lanes), each block total added to a 64-bit accumulator. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (1u << 20)    /* pread chunk: 1 MiB */
#define BLOCK 65536u        /* uint16 elements summed in 32 bits before widening */

static uint64_t sum_u16(const uint16_t *restrict p, size_t n)
{
    uint64_t total = 0;
    while (n > 0) {
        size_t m = n < BLOCK ? n : BLOCK;
        uint32_t s = 0;
        for (size_t i = 0; i < m; i++)
            s += p[i];
        total += s;
        p += m;
        n -= m;
    }
    return total;
}

typedef struct job {
    int fd;
    const unsigned char *map;   /* mmap mode */
    uint64_t begin, end;        /* byte range of this thread's slice */
    uint64_t sum;
    int err;                    /* errno of a failed pread, or -1 for a short file */
} job;

static void *run_mmap(void *arg)
{
    job *j = arg;
    /* Slices start on even offsets (run.sh files have whole uint16), so the cast is aligned. */
    j->sum = sum_u16((const uint16_t *)(j->map + j->begin), (size_t)(j->end - j->begin) / 2);
    return NULL;
}

static void *run_pread(void *arg)
{
    job *j = arg;
    uint16_t *buf = aligned_alloc(4096, CHUNK);
    if (!buf) {
        j->err = ENOMEM;
        return NULL;
    }
    uint64_t off = j->begin, s = 0;
    while (off < j->end) {
        size_t want = j->end - off < CHUNK ? (size_t)(j->end - off) : CHUNK;
        ssize_t got = pread(j->fd, buf, want, (off_t)off);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            j->err = errno;
            break;
        }
        if (got == 0) {
            j->err = -1;
            break;
        }
        s += sum_u16(buf, (size_t)got / 2);
        off += (uint64_t)got;
    }
    j->sum = s;
    free(buf);
    return NULL;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc != 4 || (strcmp(argv[1], "mmap") && strcmp(argv[1], "pread"))) {
        fprintf(stderr, "usage: ceiling mmap|pread FILE THREADS\n");
        return 2;
    }
    int use_mmap = !strcmp(argv[1], "mmap");
    char *endp;
    long nt = strtol(argv[3], &endp, 10);
    if (*endp || nt < 1 || nt > 1024) {
        fprintf(stderr, "ceiling: bad thread count '%s'\n", argv[3]);
        return 2;
    }

    double t0 = now();
    int fd = open(argv[2], O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        fprintf(stderr, "ceiling: %s: %s\n", argv[2], strerror(errno));
        return 1;
    }
    uint64_t size = (uint64_t)st.st_size;
    const unsigned char *map = NULL;
    if (use_mmap && size > 0) {
        void *m = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            fprintf(stderr, "ceiling: mmap %s: %s\n", argv[2], strerror(errno));
            return 1;
        }
        map = m;
    }

    /* Contiguous slices: mmap ones rounded to 4 KiB, pread ones to whole 1 MiB chunks. */
    uint64_t grain = use_mmap ? 4096 : CHUNK;
    uint64_t units = (size + grain - 1) / grain;
    job *jobs = calloc((size_t)nt, sizeof *jobs);
    pthread_t *tid = calloc((size_t)nt, sizeof *tid);
    if (!jobs || !tid) {
        fprintf(stderr, "ceiling: out of memory\n");
        return 1;
    }
    for (long t = 0; t < nt; t++) {
        uint64_t b = units * (uint64_t)t / (uint64_t)nt * grain;
        uint64_t e = units * (uint64_t)(t + 1) / (uint64_t)nt * grain;
        jobs[t].fd = fd;
        jobs[t].map = map;
        jobs[t].begin = b < size ? b : size;
        jobs[t].end = e < size ? e : size;
    }
    void *(*fn)(void *) = use_mmap ? run_mmap : run_pread;
    for (long t = 1; t < nt; t++)
        if (pthread_create(&tid[t], NULL, fn, &jobs[t]) != 0) {
            fprintf(stderr, "ceiling: cannot start thread %ld\n", t);
            return 1;
        }
    fn(&jobs[0]);
    uint64_t sum = jobs[0].sum;
    int err = jobs[0].err;
    for (long t = 1; t < nt; t++) {
        pthread_join(tid[t], NULL);
        sum += jobs[t].sum;
        if (jobs[t].err)
            err = jobs[t].err;
    }
    if (map)
        munmap((void *)map, (size_t)size);
    close(fd);
    double secs = now() - t0;

    if (err) {
        fprintf(stderr, "ceiling: read %s: %s\n", argv[2], err < 0 ? "file shrank" : strerror(err));
        return 1;
    }
    printf("mode=%s threads=%ld bytes=%llu seconds=%.6f gbps=%.3f sum=%llu\n", argv[1], nt,
           (unsigned long long)size, secs, secs > 0 ? (double)size / secs / 1e9 : 0.0,
           (unsigned long long)sum);
    free(jobs);
    free(tid);
    return 0;
}
