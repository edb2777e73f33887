/* Fuzz target: Merlin acquisition headers (.hdr: "HDR," then "Key:\tValue" lines up to "End"),
 * opened as a mib dataset named by its .hdr file, next to a fixed valid x.mib of 4 frames of
 * 4x4 U16 pixels: the header's frame counts and scan shape meet a real file. */
#include "fuzz_common.h"

#include <string.h>

#include "fuzz_ds.h"

enum { FRAMES = 4, SIDE = 4, HEADER = 384 };

/* Write x.mib next to the .hdr at hdr_path (same directory, same stem). */
static void write_mib(const char *hdr_path)
{
    char path[700];
    snprintf(path, sizeof path, "%.*s.mib", (int)(strlen(hdr_path) - 4), hdr_path);
    FILE *fp = fopen(path, "wb");
    if (!fp)
        abort();
    for (int i = 0; i < FRAMES; i++) {
        char h[HEADER] = {0};
        int n = snprintf(h, sizeof h,
                         "MQ1,%06d,%05d,01,%04d,%04d,U16,   1x1,01,2020-05-18 16:51:49.971626,"
                         "0.000555,0,0,0,1.200000E+2,5.110000E+2,0.000000E+0,0.000000E+0,"
                         "0.000000E+0,0.000000E+0,0.000000E+0,0.000000E+0,3RX,",
                         i + 1, HEADER, SIDE, SIDE);
        for (int k = 0; k < 27; k++)
            n += snprintf(h + n, sizeof h - (size_t)n, "%03d,", k);
        snprintf(h + n, sizeof h - (size_t)n, "MQ1A,2020-05-18T14:51:49.971626178Z,555000ns,12,");
        unsigned char pixels[SIDE * SIDE * 2];
        for (size_t k = 0; k < sizeof pixels; k++)
            pixels[k] = (unsigned char)(i + k);
        if (fwrite(h, 1, sizeof h, fp) != sizeof h || fwrite(pixels, 1, sizeof pixels, fp) !=
                                                           sizeof pixels)
            abort();
    }
    if (fclose(fp))
        abort();
}

static char mib_path[700];

static void remove_mib(void)
{
    unlink(mib_path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path;
    fuzz_tmpfile_fill(data, size, "x.hdr", &path);
    if (!mib_path[0]) {
        write_mib(path);
        snprintf(mib_path, sizeof mib_path, "%.*s.mib", (int)(strlen(path) - 4), path);
        atexit(remove_mib); /* runs before fuzz_tmp_remove removes the directory */
    }
    ds_options o = {.path = path, .format = "mib"};
    ds *d = NULL;
    err e = {0};
    if (ds_open(&o, &d, &e) == 0) {
        fuzz_ds_read_all(d);
        ds_close(d);
    } else if (getenv("FUZZ_VERBOSE")) {
        fprintf(stderr, "%s\n", e.msg);
    }
    return 0;
}
