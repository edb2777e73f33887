/* The test helper for myplugin: `check generate FILE NAV SIG` writes a scan of pseudo-random
 * little-endian uint16 frames; `check verify FILE NAV SIG THRESHOLD OUTDIR PLUGIN` recomputes
 * the plugin's results from FILE independently, the plain way, and compares them with the .npy
 * files udfhost wrote. NAV and SIG are "rows,columns". Exit status 0 when all agree, 1 otherwise.
 * Plain C so that the test needs nothing beyond the compiler that builds the plugin. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_shape(const char *s, uint64_t *rows, uint64_t *cols)
{
    unsigned long long r, c;
    char end;
    if (sscanf(s, "%llu,%llu%c", &r, &c, &end) != 2 || !r || !c) {
        fprintf(stderr, "check: shape '%s' is not ROWS,COLUMNS\n", s);
        return -1;
    }
    *rows = r;
    *cols = c;
    return 0;
}

static int generate(const char *path, uint64_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        return 1;
    }
    uint32_t state = 12345;
    for (uint64_t i = 0; i < n; i++) {
        state = state * 1664525u + 1013904223u;
        uint16_t v = (uint16_t)((state >> 16) % 5000);
        unsigned char le[2] = {(unsigned char)(v & 0xff), (unsigned char)(v >> 8)};
        fwrite(le, 1, 2, f);
    }
    if (fclose(f)) {
        perror(path);
        return 1;
    }
    return 0;
}

/* Read a whole .npy of the given descr ("<f8") and shape; returns malloc'ed data or NULL. */
static void *npy_load(const char *path, const char *descr, int ndim, const uint64_t *shape,
                      size_t elem)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return NULL;
    }
    unsigned char pre[12];
    void *data = NULL;
    char *header = NULL;
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6)) {
        fprintf(stderr, "check: %s is not a .npy file\n", path);
        goto done;
    }
    size_t hlen = pre[8] | (size_t)pre[9] << 8;
    if (pre[6] >= 2) { /* versions 2 and 3: a 4-byte header length */
        if (fread(pre + 10, 1, 2, f) != 2)
            goto done;
        hlen |= (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
    }
    header = calloc(1, hlen + 1);
    if (!header || fread(header, 1, hlen, f) != hlen)
        goto done;
    char want_descr[32], want_shape[128] = "";
    snprintf(want_descr, sizeof want_descr, "'descr': '%s'", descr);
    for (int i = 0; i < ndim; i++)
        snprintf(want_shape + strlen(want_shape), sizeof want_shape - strlen(want_shape),
                 "%s%llu", i ? ", " : "", (unsigned long long)shape[i]);
    char *s = strstr(header, "'shape': (");
    size_t n = strlen(want_shape);
    if (!strstr(header, want_descr) || !s || strncmp(s + 10, want_shape, n) ||
        (s[10 + n] != ')' && strncmp(s + 10 + n, ",)", 2))) {
        fprintf(stderr, "check: %s: header %s, expected descr %s and shape (%s)\n", path, header,
                descr, want_shape);
        goto done;
    }
    size_t count = 1;
    for (int i = 0; i < ndim; i++)
        count *= shape[i];
    data = malloc(count * elem + 1);
    if (data && fread(data, elem, count, f) != count) {
        fprintf(stderr, "check: %s: file too short\n", path);
        free(data);
        data = NULL;
    }
done:
    free(header);
    fclose(f);
    return data;
}

/* Relative agreement: the plugin adds band sums in another order than this plain loop. */
static int close_enough(double got, double want)
{
    return fabs(got - want) <= 1e-9 * (fabs(want) > 1 ? fabs(want) : 1);
}

static int verify(const char *path, const uint64_t nav[2], const uint64_t sig[2], double threshold,
                  const char *outdir, const char *plugin)
{
    uint64_t frames = nav[0] * nav[1], pixels = sig[0] * sig[1];
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return 1;
    }
    double *mean = calloc(frames, sizeof *mean), *sum = calloc(pixels, sizeof *sum);
    unsigned char *raw = malloc(pixels * 2);
    if (!mean || !sum || !raw) {
        fprintf(stderr, "check: out of memory\n");
        return 1;
    }
    for (uint64_t i = 0; i < frames; i++) {
        if (fread(raw, 2, pixels, f) != pixels) {
            fprintf(stderr, "check: %s: too short\n", path);
            return 1;
        }
        double s = 0;
        for (uint64_t p = 0; p < pixels; p++) {
            double v = raw[2 * p] | raw[2 * p + 1] << 8;
            if (v < threshold)
                v = 0;
            s += v;
            sum[p] += v;
        }
        mean[i] = s / (double)pixels;
    }
    fclose(f);

    char file[4096];
    int bad = 0;
    snprintf(file, sizeof file, "%s/%s.mean.npy", outdir, plugin);
    const double *got_mean = npy_load(file, "<f8", 2, nav, 8);
    snprintf(file, sizeof file, "%s/%s.sum.npy", outdir, plugin);
    const double *got_sum = npy_load(file, "<f8", 2, sig, 8);
    snprintf(file, sizeof file, "%s/%s.frames.npy", outdir, plugin);
    const uint64_t *got_frames = npy_load(file, "<u8", 0, NULL, 8);
    if (!got_mean || !got_sum || !got_frames)
        return 1;
    for (uint64_t i = 0; i < frames && bad < 5; i++)
        if (!close_enough(got_mean[i], mean[i]) && ++bad)
            fprintf(stderr, "check: mean of frame %llu: %.17g, expected %.17g\n",
                    (unsigned long long)i, got_mean[i], mean[i]);
    for (uint64_t p = 0; p < pixels && bad < 5; p++)
        if (!close_enough(got_sum[p], sum[p]) && ++bad)
            fprintf(stderr, "check: sum at pixel %llu: %.17g, expected %.17g\n",
                    (unsigned long long)p, got_sum[p], sum[p]);
    if (*got_frames != frames && ++bad)
        fprintf(stderr, "check: frames %llu, expected %llu\n", (unsigned long long)*got_frames,
                (unsigned long long)frames);
    return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
    uint64_t nav[2], sig[2];
    if (argc == 5 && !strcmp(argv[1], "generate") && !parse_shape(argv[3], &nav[0], &nav[1]) &&
        !parse_shape(argv[4], &sig[0], &sig[1]))
        return generate(argv[2], nav[0] * nav[1] * sig[0] * sig[1]);
    if (argc == 8 && !strcmp(argv[1], "verify") && !parse_shape(argv[3], &nav[0], &nav[1]) &&
        !parse_shape(argv[4], &sig[0], &sig[1]))
        return verify(argv[2], nav, sig, atof(argv[5]), argv[6], argv[7]);
    fprintf(stderr, "usage: check generate FILE NAV SIG\n"
                    "       check verify FILE NAV SIG THRESHOLD OUTDIR PLUGIN\n");
    return 2;
}
