/* walltime: run a command and write its whole-process wall time and peak RSS to a file.
 *
 *   walltime OUTFILE CMD [ARGS...]
 *
 * Writes "SECONDS MAXRSS_KIB STATUS" to OUTFILE: seconds from just before fork() to the return of
 * wait4() (process start, run and exit: what a user waits for), the child's peak resident set in
 * KiB (ru_maxrss from wait4, the figure GNU time prints as %M) and its exit status (128+signal if
 * killed). The command's stdin, stdout and stderr are inherited. Exits with the command's status.
 * A fork/exec timer in C, so that whole-process times of a few milliseconds are not swamped by
 * the cost of starting `date` twice. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: walltime OUTFILE CMD [ARGS...]\n");
        return 2;
    }
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "walltime: fork: %s\n", strerror(errno));
        return 70;
    }
    if (pid == 0) {
        execvp(argv[2], argv + 2);
        fprintf(stderr, "walltime: %s: %s\n", argv[2], strerror(errno));
        _exit(127);
    }
    int status;
    struct rusage ru;
    while (wait4(pid, &status, 0, &ru) < 0)
        if (errno != EINTR) {
            fprintf(stderr, "walltime: wait4: %s\n", strerror(errno));
            return 70;
        }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) * 1e-9;
    int rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    FILE *f = fopen(argv[1], "w");
    if (!f || fprintf(f, "%.6f %ld %d\n", secs, ru.ru_maxrss, rc) < 0 || fclose(f) != 0) {
        fprintf(stderr, "walltime: cannot write %s\n", argv[1]);
        return 70;
    }
    return rc;
}
