/* Corpus replay without libFuzzer: runs LLVMFuzzerTestOneInput once on every file named on the
 * command line and every regular file in named directories (not recursive), so that a target
 * built with gcc -fsanitize=address,undefined checks its corpus in `make check`. Any sanitizer
 * report aborts the process; exit 0 means every input ran clean. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Run one file. Returns 0, or -1 when it cannot be read. */
static int replay_file(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + len, 1, cap - len, fp)) > 0) {
        len += got;
        if (len == cap) {
            uint8_t *bigger = realloc(buf, cap *= 2);
            if (!bigger)
                free(buf);
            buf = bigger;
        }
    }
    int bad = ferror(fp) || !buf;
    fclose(fp);
    if (bad) {
        fprintf(stderr, "replay: %s: cannot read\n", path);
        free(buf);
        return -1;
    }
    /* An exact-size copy, so that ASan catches a read one past the input as libFuzzer would. */
    uint8_t *exact = malloc(len ? len : 1);
    if (!exact) {
        free(buf);
        return -1;
    }
    memcpy(exact, buf, len);
    free(buf);
    fprintf(stderr, "Running: %s\n", path); /* names the input a sanitizer report is about */
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    return 0;
}

static int name_compare(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Run every regular file in dir, in name order. Returns the number of files that could not be
 * read (-1 if dir cannot be listed); *count gets the number run. */
static int replay_dir(const char *dir, unsigned *count)
{
    DIR *dp = opendir(dir);
    if (!dp) {
        fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(dp))) {
        if (de->d_name[0] == '.')
            continue;
        char **more = realloc(names, (n + 1) * sizeof *names);
        if (!more)
            break;
        names = more;
        size_t need = strlen(dir) + strlen(de->d_name) + 2;
        if (!(names[n] = malloc(need)))
            break;
        snprintf(names[n], need, "%s/%s", dir, de->d_name);
        n++;
    }
    closedir(dp);
    qsort(names, n, sizeof *names, name_compare);
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (!stat(names[i], &st) && S_ISREG(st.st_mode)) {
            failed += replay_file(names[i]) != 0;
            ++*count;
        }
        free(names[i]);
    }
    free(names);
    return failed;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
        return 2;
    }
    unsigned count = 0;
    int failed = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (!stat(argv[i], &st) && S_ISDIR(st.st_mode)) {
            int rc = replay_dir(argv[i], &count);
            failed += rc < 0 ? 1 : rc;
        } else {
            failed += replay_file(argv[i]) != 0;
            count++;
        }
    }
    printf("replay: %s: %u inputs, %d unreadable\n", argv[0], count, failed);
    return failed ? 1 : 0;
}
