/* Result pictures: preview PNGs (grey and diverging maps, percentile stretch, log scale, NaN,
 * constant images) read back with libpng, and float32 TIFFs (pages, ImageJ description, contiguous
 * pixel data) read back with libtiff and, when $UDFHOST_PYTHON is set, with tifffile. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <tiffio.h>
#include <unistd.h>

#include "imgout.h"
#include "preview.h"

/* --- helpers --------------------------------------------------------------------------------- */

static char tmpdir[64];

static void tmpdir_make(void)
{
    strcpy(tmpdir, "/tmp/udfhost-test-imgout-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir), "mkdtemp");
}

/* Remove the directory and what is in it (one level of subdirectories, empty ones). */
static void tmpdir_remove(void)
{
    if (!tmpdir[0])
        return;
    DIR *dir = opendir(tmpdir);
    if (dir) {
        struct dirent *de;
        while ((de = readdir(dir))) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                continue;
            char p[512];
            snprintf(p, sizeof p, "%s/%s", tmpdir, de->d_name);
            if (unlink(p))
                rmdir(p);
        }
        closedir(dir);
    }
    rmdir(tmpdir);
    tmpdir[0] = 0;
}

static void tmp_path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", tmpdir, name);
}

/* Number of entries in tmpdir other than . and .. */
static int tmpdir_count(void)
{
    DIR *dir = opendir(tmpdir);
    cr_assert_not_null(dir);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(dir)))
        n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
    closedir(dir);
    return n;
}

/* A decoded PNG: 8-bit samples, channels per pixel. */
typedef struct png_read {
    uint32_t width, height;
    int color_type, bit_depth, channels;
    unsigned char *pixels;
} png_read;

/* Read path with the classic libpng API; all state set before setjmp is only read after it. */
static void png_load(const char *path, png_read *out)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "open %s", path);
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    cr_assert_not_null(png);
    png_infop info = png_create_info_struct(png);
    cr_assert_not_null(info);
    png_bytep *volatile rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        fclose(f);
        free(rows);
        cr_assert_fail("libpng could not read %s", path);
    }
    png_init_io(png, f);
    png_read_info(png, info);
    out->width = png_get_image_width(png, info);
    out->height = png_get_image_height(png, info);
    out->color_type = png_get_color_type(png, info);
    out->bit_depth = png_get_bit_depth(png, info);
    out->channels = png_get_channels(png, info);
    size_t row_bytes = png_get_rowbytes(png, info);
    out->pixels = malloc(row_bytes * out->height);
    rows = malloc(out->height * sizeof *rows);
    cr_assert(out->pixels && rows);
    for (uint32_t r = 0; r < out->height; r++)
        rows[r] = out->pixels + r * row_bytes;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    fclose(f);
}

static const unsigned char *png_pixel(const png_read *p, uint32_t row, uint32_t col)
{
    return p->pixels + ((size_t)row * p->width + col) * (size_t)p->channels;
}

/* Write a preview into tmpdir, assert success, and read it back. */
static void preview_round_trip(const char *name, const void *data, udf_dtype d, uint64_t rows,
                               uint64_t cols, preview_scale scale, png_read *out)
{
    char path[256];
    tmp_path(path, sizeof path, name);
    err e = {0};
    int rc = preview_write_png(path, data, d, rows, cols, scale, &e);
    cr_assert_eq(rc, 0, "preview_write_png: %s", e.msg);
    png_load(path, out);
    cr_assert_eq(out->width, cols);
    cr_assert_eq(out->height, rows);
    cr_assert_eq(out->bit_depth, 8);
}

#define ASSERT_RGB(p, r, g, b)                                                                     \
    cr_assert((p)[0] == (r) && (p)[1] == (g) && (p)[2] == (b),                                     \
              "pixel %u,%u,%u, expected %u,%u,%u", (p)[0], (p)[1], (p)[2], (unsigned)(r),          \
              (unsigned)(g), (unsigned)(b))

/* --- preview PNGs ---------------------------------------------------------------------------- */

TestSuite(preview, .init = tmpdir_make, .fini = tmpdir_remove);

Test(preview, uint16_ramp_is_grey_from_black_to_white)
{
    enum { R = 4, C = 8 };
    uint16_t v[R * C];
    for (int i = 0; i < R * C; i++)
        v[i] = (uint16_t)(1000 + 100 * i);
    png_read p;
    preview_round_trip("ramp.png", v, UDF_U16, R, C, PREVIEW_LINEAR, &p);
    cr_assert_eq(p.color_type, PNG_COLOR_TYPE_GRAY);
    cr_assert_eq(p.channels, 1);
    cr_assert_eq(png_pixel(&p, 0, 0)[0], 0, "min is black");
    cr_assert_eq(png_pixel(&p, R - 1, C - 1)[0], 255, "max is white");
    /* Row-major, top row first, brightening monotonically; the middle close to mid-grey. */
    for (int i = 1; i < R * C; i++)
        cr_assert_geq(p.pixels[i], p.pixels[i - 1]);
    cr_assert(abs((int)png_pixel(&p, 2, 0)[0] - 132) <= 1, "got %u", png_pixel(&p, 2, 0)[0]);
    free(p.pixels);
}

Test(preview, nan_is_dark_red)
{
    float v[9] = {0, 1, 2, 3, NAN, 5, 6, 7, 8};
    png_read p;
    preview_round_trip("nan.png", v, UDF_F32, 3, 3, PREVIEW_LINEAR, &p);
    cr_assert_eq(p.color_type, PNG_COLOR_TYPE_RGB);
    ASSERT_RGB(png_pixel(&p, 1, 1), 128, 0, 0);
    ASSERT_RGB(png_pixel(&p, 0, 0), 0, 0, 0);
    ASSERT_RGB(png_pixel(&p, 2, 2), 255, 255, 255);
    const unsigned char *mid = png_pixel(&p, 1, 0); /* 3 of 0..8: grey, not red */
    cr_assert(mid[0] == mid[1] && mid[1] == mid[2] && mid[0] > 0 && mid[0] < 255);
    free(p.pixels);
}

Test(preview, signed_field_is_diverging_with_zero_white)
{
    double v[5] = {-2, -1, 0, 1, 2};
    png_read p;
    preview_round_trip("signed.png", v, UDF_F64, 1, 5, PREVIEW_LINEAR, &p);
    cr_assert_eq(p.color_type, PNG_COLOR_TYPE_RGB);
    ASSERT_RGB(png_pixel(&p, 0, 0), 0, 0, 255);     /* -end: blue */
    ASSERT_RGB(png_pixel(&p, 0, 2), 255, 255, 255); /* 0: white */
    ASSERT_RGB(png_pixel(&p, 0, 4), 255, 0, 0);     /* +end: red */
    ASSERT_RGB(png_pixel(&p, 0, 1), 128, 128, 255); /* half way to blue */
    ASSERT_RGB(png_pixel(&p, 0, 3), 255, 128, 128); /* half way to red */
    free(p.pixels);
}

Test(preview, signed_integers_are_diverging_symmetric_about_zero)
{
    /* Asymmetric range: the end is the 99.5th percentile of |x|, so -1 is a pale blue. */
    int16_t v[4] = {-1, 0, 0, 4};
    png_read p;
    preview_round_trip("signed16.png", v, UDF_I16, 2, 2, PREVIEW_LINEAR, &p);
    cr_assert_eq(p.color_type, PNG_COLOR_TYPE_RGB);
    ASSERT_RGB(png_pixel(&p, 0, 1), 255, 255, 255);
    ASSERT_RGB(png_pixel(&p, 1, 1), 255, 0, 0);
    const unsigned char *neg = png_pixel(&p, 0, 0);
    cr_assert(neg[2] == 255 && neg[0] == neg[1] && neg[0] > 128 && neg[0] < 255,
              "pixel %u,%u,%u", neg[0], neg[1], neg[2]);
    free(p.pixels);
}

Test(preview, constant_image_is_mid_grey)
{
    int32_t v[12];
    for (int i = 0; i < 12; i++)
        v[i] = -7;
    png_read p;
    preview_round_trip("const.png", v, UDF_I32, 3, 4, PREVIEW_LINEAR, &p);
    cr_assert_eq(p.color_type, PNG_COLOR_TYPE_GRAY);
    for (int i = 0; i < 12; i++)
        cr_assert_eq(p.pixels[i], 128);
    free(p.pixels);
}

Test(preview, one_by_one)
{
    uint8_t v = 42;
    png_read p;
    preview_round_trip("one.png", &v, UDF_U8, 1, 1, PREVIEW_LOG, &p);
    cr_assert_eq(p.color_type, PNG_COLOR_TYPE_GRAY);
    cr_assert_eq(p.pixels[0], 128);
    free(p.pixels);
}

Test(preview, bool_mask_is_black_and_white)
{
    uint8_t v[4] = {0, 1, 1, 0};
    png_read p;
    preview_round_trip("mask.png", v, UDF_BOOL, 2, 2, PREVIEW_LINEAR, &p);
    cr_assert_eq(p.color_type, PNG_COLOR_TYPE_GRAY);
    cr_assert(p.pixels[0] == 0 && p.pixels[1] == 255 && p.pixels[2] == 255 && p.pixels[3] == 0);
    free(p.pixels);
}

/* 10 zeros, 180 values of 99, 10 of 9999: both percentiles land on the extremes. Linear: 99 is
 * 99/9999 of the way (about 3/255); log: log1p(99)/log1p(9999) = log 100 / log 10000 = 1/2. */
Test(preview, log_scale_stretches_log1p_of_offset)
{
    enum { N = 200 };
    uint32_t v[N];
    for (int i = 0; i < N; i++)
        v[i] = i < 10 ? 0 : i >= N - 10 ? 9999 : 99;
    png_read lin, lg;
    preview_round_trip("lin.png", v, UDF_U32, 1, N, PREVIEW_LINEAR, &lin);
    preview_round_trip("log.png", v, UDF_U32, 1, N, PREVIEW_LOG, &lg);
    cr_assert_eq(lin.pixels[0], 0);
    cr_assert_eq(lin.pixels[N - 1], 255);
    cr_assert_eq(lin.pixels[100], 3);
    cr_assert_eq(lg.pixels[0], 0);
    cr_assert_eq(lg.pixels[N - 1], 255);
    cr_assert(abs((int)lg.pixels[100] - 128) <= 1, "got %u", lg.pixels[100]);
    free(lin.pixels);
    free(lg.pixels);
}

Test(preview, log_scale_of_negative_offset_data)
{
    /* log1p(x - min) is defined for any sign once shifted: -50..-40 is grey, not diverging. */
    float v[11];
    for (int i = 0; i < 11; i++)
        v[i] = -50.0f + (float)i;
    png_read p;
    preview_round_trip("neglog.png", v, UDF_F32, 1, 11, PREVIEW_LOG, &p);
    cr_assert_eq(p.color_type, PNG_COLOR_TYPE_GRAY);
    cr_assert_eq(p.pixels[0], 0);
    cr_assert_eq(p.pixels[10], 255);
    free(p.pixels);
}

/* 1% outliers do not set the contrast: the clipped stretch keeps the bulk visible. */
Test(preview, percentiles_clip_outliers)
{
    enum { R = 100, C = 100 };
    float *v = malloc(R * C * sizeof *v);
    cr_assert_not_null(v);
    for (int i = 0; i < R * C; i++)
        v[i] = (float)(i % 100);
    v[0] = -1e6f; /* a single outlier each way: rank 0 and rank n-1 */
    v[1] = 1e6f;
    png_read p;
    preview_round_trip("outliers.png", v, UDF_F32, R, C, PREVIEW_LINEAR, &p);
    /* Diverging (both signs), end = 99.5th percentile of |x| = 99: 50 is half-way red. */
    cr_assert_eq(p.color_type, PNG_COLOR_TYPE_RGB);
    const unsigned char *half = png_pixel(&p, 1, 50);
    cr_assert(half[0] == 255 && abs((int)half[1] - 126) <= 1, "pixel %u,%u,%u", half[0], half[1],
              half[2]);
    free(p.pixels);
    free(v);
}

Test(preview, all_nan_and_infinities)
{
    double v[3] = {NAN, INFINITY, -INFINITY};
    png_read p;
    preview_round_trip("nonfinite.png", v, UDF_F64, 1, 3, PREVIEW_LOG, &p);
    cr_assert_eq(p.color_type, PNG_COLOR_TYPE_RGB);
    ASSERT_RGB(png_pixel(&p, 0, 0), 128, 0, 0);
    ASSERT_RGB(png_pixel(&p, 0, 1), 255, 255, 255);
    ASSERT_RGB(png_pixel(&p, 0, 2), 0, 0, 0);
    free(p.pixels);
}

Test(preview, large_image_is_fast_enough)
{
    enum { R = 1024, C = 1024 };
    uint16_t *v = malloc((size_t)R * C * sizeof *v);
    cr_assert_not_null(v);
    for (size_t i = 0; i < (size_t)R * C; i++)
        v[i] = (uint16_t)(i * 2654435761u >> 16);
    png_read p;
    preview_round_trip("large.png", v, UDF_U16, R, C, PREVIEW_LOG, &p);
    cr_assert_eq(p.color_type, PNG_COLOR_TYPE_GRAY);
    free(p.pixels);
    free(v);
}

Test(preview, unwritable_path_is_eio_naming_it)
{
    const char *path = "/nonexistent/dir/x.png";
    uint8_t v[4] = {1, 2, 3, 4};
    err e = {0};
    int rc = preview_write_png(path, v, UDF_U8, 2, 2, PREVIEW_LINEAR, &e);
    cr_assert_eq(rc, UH_EIO);
    cr_assert_eq(e.code, UH_EIO);
    cr_assert_not_null(strstr(e.msg, path), "message: %s", e.msg);
    cr_assert_null(strchr(e.msg, '\n'), "one line: %s", e.msg);
}

Test(preview, failed_rename_leaves_no_temporary_file)
{
    /* The target is a directory: the temporary file is written, the rename fails. */
    char path[256];
    tmp_path(path, sizeof path, "taken");
    cr_assert_eq(mkdir(path, 0777), 0);
    uint8_t v[4] = {1, 2, 3, 4};
    err e = {0};
    int rc = preview_write_png(path, v, UDF_U8, 2, 2, PREVIEW_LINEAR, &e);
    cr_assert_eq(rc, UH_EIO);
    cr_assert_not_null(strstr(e.msg, path), "message: %s", e.msg);
    cr_assert_eq(tmpdir_count(), 1, "only the directory remains");
}

Test(preview, empty_image_is_refused)
{
    uint8_t v = 0;
    char path[256];
    tmp_path(path, sizeof path, "empty.png");
    err e = {0};
    cr_assert_eq(preview_write_png(path, &v, UDF_U8, 0, 5, PREVIEW_LINEAR, &e), UH_EIO);
    cr_assert_not_null(strstr(e.msg, path));
    cr_assert_eq(tmpdir_count(), 0);
}

/* --- TIFF ------------------------------------------------------------------------------------ */

TestSuite(imgout, .init = tmpdir_make, .fini = tmpdir_remove);

/* Check the current page's tags and read its pixels into out (rows x cols floats). Returns the
 * offsets of its first and last strip and the size of the last, for the contiguity check. */
static void tiff_page_check(TIFF *tif, uint32_t rows, uint32_t cols, float *out, uint64_t *first,
                            uint64_t *end)
{
    uint32_t w = 0, h = 0;
    uint16_t bits = 0, spp = 0, fmt = 0, photo = 0, comp = 0;
    cr_assert(TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &w));
    cr_assert(TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &h));
    cr_assert(TIFFGetField(tif, TIFFTAG_BITSPERSAMPLE, &bits));
    cr_assert(TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &spp));
    cr_assert(TIFFGetField(tif, TIFFTAG_SAMPLEFORMAT, &fmt));
    cr_assert(TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &photo));
    cr_assert(TIFFGetField(tif, TIFFTAG_COMPRESSION, &comp));
    cr_assert_eq(w, cols);
    cr_assert_eq(h, rows);
    cr_assert_eq(bits, 32);
    cr_assert_eq(spp, 1);
    cr_assert_eq(fmt, SAMPLEFORMAT_IEEEFP);
    cr_assert_eq(photo, PHOTOMETRIC_MINISBLACK);
    cr_assert_eq(comp, COMPRESSION_NONE);
    for (uint32_t r = 0; r < rows; r++)
        cr_assert_geq(TIFFReadScanline(tif, out + (size_t)r * cols, r, 0), 0);
    uint64_t *offsets = NULL, *counts = NULL;
    cr_assert(TIFFGetField(tif, TIFFTAG_STRIPOFFSETS, &offsets));
    cr_assert(TIFFGetField(tif, TIFFTAG_STRIPBYTECOUNTS, &counts));
    uint32_t n = TIFFNumberOfStrips(tif);
    /* Strips of one page follow each other. */
    for (uint32_t s = 1; s < n; s++)
        cr_assert_eq(offsets[s], offsets[s - 1] + counts[s - 1], "strip %u", s);
    *first = offsets[0];
    *end = offsets[n - 1] + counts[n - 1];
}

/* Write, then read back with libtiff and compare to expect (pages x rows x cols float32). */
static void tiff_round_trip(const char *name, const void *data, udf_dtype d, uint32_t ndim,
                            const uint64_t *shape, uint32_t pages, uint32_t rows, uint32_t cols,
                            const float *expect)
{
    char path[256];
    tmp_path(path, sizeof path, name);
    err e = {0};
    int rc = imgout_write_tiff(path, data, d, ndim, shape, &e);
    cr_assert_eq(rc, 0, "imgout_write_tiff: %s", e.msg);
    TIFF *tif = TIFFOpen(path, "r");
    cr_assert_not_null(tif, "libtiff cannot open %s", path);
    cr_assert_eq(TIFFNumberOfDirectories(tif), pages);
    const char *description = NULL;
    int has_description = TIFFGetField(tif, TIFFTAG_IMAGEDESCRIPTION, &description);
    if (pages > 1) {
        char want[128];
        snprintf(want, sizeof want, "ImageJ=1.11a\nimages=%u\nslices=%u\n", pages, pages);
        cr_assert(has_description, "a stack carries the ImageJ description");
        cr_assert_str_eq(description, want);
    } else {
        cr_assert_not(has_description);
    }
    size_t page_values = (size_t)rows * cols;
    float *got = malloc(page_values * sizeof *got);
    cr_assert_not_null(got);
    uint64_t first0 = 0, prev_end = 0;
    for (uint32_t p = 0; p < pages; p++) {
        if (p > 0)
            cr_assert(TIFFReadDirectory(tif));
        uint64_t first, end;
        tiff_page_check(tif, rows, cols, got, &first, &end);
        /* ImageJ reads an images=N stack as one run from page 0's first strip. */
        if (p == 0)
            first0 = first;
        else
            cr_assert_eq(first, prev_end, "page %u follows page %u", p, p - 1);
        cr_assert_eq(first, first0 + (uint64_t)p * page_values * 4);
        prev_end = end;
        const float *want = expect + p * page_values;
        for (size_t i = 0; i < page_values; i++)
            cr_assert(memcmp(&got[i], &want[i], sizeof(float)) == 0,
                      "page %u value %zu: %.9g, expected %.9g", p, i, (double)got[i],
                      (double)want[i]);
    }
    free(got);
    TIFFClose(tif);
}

Test(imgout, uint16_image)
{
    enum { R = 3, C = 5 };
    uint16_t v[R * C];
    float want[R * C];
    for (int i = 0; i < R * C; i++) {
        v[i] = (uint16_t)(i * 4099);
        want[i] = (float)v[i];
    }
    const uint64_t shape[2] = {R, C};
    tiff_round_trip("u16.tif", v, UDF_U16, 2, shape, 1, R, C, want);
}

Test(imgout, float64_stack_is_converted_exactly)
{
    enum { P = 4, R = 3, C = 5, N = P * R * C };
    double v[N];
    float want[N];
    for (int i = 0; i < N; i++) {
        v[i] = i * 0.37 - 5 + 1e-9; /* not float-representable: tests the rounding */
        want[i] = (float)v[i];
    }
    v[7] = NAN;
    want[7] = NAN;
    v[8] = 1e300; /* overflows to inf, as a C conversion does */
    want[8] = (float)v[8];
    const uint64_t shape[3] = {P, R, C};
    tiff_round_trip("f64.tif", v, UDF_F64, 3, shape, P, R, C, want);
}

Test(imgout, multi_strip_pages_are_contiguous)
{
    /* 300 x 300 float32 is 360000 bytes a page: several strips each. */
    enum { P = 3, R = 300, C = 300 };
    size_t n = (size_t)P * R * C;
    float *v = malloc(n * sizeof *v);
    cr_assert_not_null(v);
    for (size_t i = 0; i < n; i++)
        v[i] = (float)i * 0.5f;
    const uint64_t shape[3] = {P, R, C};
    tiff_round_trip("strips.tif", v, UDF_F32, 3, shape, P, R, C, v);
    free(v);
}

Test(imgout, four_dims_are_pages)
{
    enum { N = 2 * 3 * 2 * 2 };
    int8_t v[N];
    float want[N];
    for (int i = 0; i < N; i++) {
        v[i] = (int8_t)(i * 11 - 128);
        want[i] = (float)v[i];
    }
    const uint64_t shape[4] = {2, 3, 2, 2};
    tiff_round_trip("i8.tif", v, UDF_I8, 4, shape, 6, 2, 2, want);
}

Test(imgout, one_dim_is_one_row_and_zero_dim_one_pixel)
{
    int64_t v[7] = {-3, 0, 1, 2, 1 << 24, (1 << 24) + 1, INT64_MAX};
    float want[7];
    for (int i = 0; i < 7; i++)
        want[i] = (float)v[i];
    const uint64_t shape[1] = {7};
    tiff_round_trip("row.tif", v, UDF_I64, 1, shape, 1, 1, 7, want);
    uint8_t b = 1;
    float one = 1;
    tiff_round_trip("scalar.tif", &b, UDF_BOOL, 0, NULL, 1, 1, 1, &one);
}

Test(imgout, unwritable_path_is_eio_naming_it)
{
    const char *path = "/nonexistent/dir/x.tif";
    float v[4] = {0};
    const uint64_t shape[2] = {2, 2};
    err e = {0};
    cr_assert_eq(imgout_write_tiff(path, v, UDF_F32, 2, shape, &e), UH_EIO);
    cr_assert_eq(e.code, UH_EIO);
    cr_assert_not_null(strstr(e.msg, path), "message: %s", e.msg);
}

Test(imgout, empty_array_is_refused_and_leaves_nothing)
{
    char path[256];
    tmp_path(path, sizeof path, "empty.tif");
    float v = 0;
    const uint64_t shape[3] = {2, 0, 3};
    err e = {0};
    cr_assert_eq(imgout_write_tiff(path, &v, UDF_F32, 3, shape, &e), UH_EIO);
    cr_assert_not_null(strstr(e.msg, path));
    cr_assert_eq(tmpdir_count(), 0);
}

Test(imgout, failure_keeps_a_file_it_did_not_create)
{
    /* A FIFO opens for writing but cannot seek: libtiff fails, and the FIFO must survive (the
     * writer removes only what it created; think of a device node named by the caller). */
    char path[256];
    tmp_path(path, sizeof path, "fifo");
    cr_assert_eq(mkfifo(path, 0666), 0, "mkfifo: %s", strerror(errno));
    float v[4] = {0};
    const uint64_t shape[2] = {2, 2};
    err e = {0};
    cr_assert_eq(imgout_write_tiff(path, v, UDF_F32, 2, shape, &e), UH_EIO);
    cr_assert_not_null(strstr(e.msg, path), "message: %s", e.msg);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "the FIFO is still there");
    cr_assert(S_ISFIFO(st.st_mode));
}

/* tifffile (what most Python users open these with) sees an ImageJ stack of the right shape and
 * the same float32 values. */
Test(imgout, tifffile_reads_the_same_values)
{
    const char *py = getenv("UDFHOST_PYTHON");
    if (!py || !*py) {
        tmpdir_remove(); /* a skipped test does not reach .fini */
        cr_skip_test("UDFHOST_PYTHON is not set");
    }
    enum { P = 3, R = 4, C = 6, N = P * R * C };
    double v[N];
    for (int i = 0; i < N; i++)
        v[i] = i * 0.37 - 5;
    const uint64_t shape[3] = {P, R, C};
    char path[256];
    tmp_path(path, sizeof path, "py.tif");
    err e = {0};
    cr_assert_eq(imgout_write_tiff(path, v, UDF_F64, 3, shape, &e), 0, "%s", e.msg);
    static const char script[] =
        "import sys\n"
        "try:\n"
        "    import numpy as np, tifffile\n"
        "except ImportError:\n"
        "    sys.exit(77)\n"
        "path, p, r, c = sys.argv[1], *map(int, sys.argv[2:5])\n"
        "want = (np.arange(p * r * c, dtype=np.float64) * 0.37 - 5).astype(np.float32)\n"
        "want = want.reshape(p, r, c)\n"
        "with tifffile.TiffFile(path) as t:\n"
        "    assert t.is_imagej, 'not an ImageJ file'\n"
        "    assert t.imagej_metadata['images'] == p, t.imagej_metadata\n"
        "    assert len(t.pages) == p, len(t.pages)\n"
        "    got = t.asarray()\n"
        "assert got.dtype == np.float32, got.dtype\n"
        "assert got.shape == want.shape, got.shape\n"
        "assert np.array_equal(got, want), (got, want)\n";
    char dims[3][16];
    snprintf(dims[0], sizeof dims[0], "%d", P);
    snprintf(dims[1], sizeof dims[1], "%d", R);
    snprintf(dims[2], sizeof dims[2], "%d", C);
    pid_t pid = fork();
    cr_assert_geq(pid, 0, "fork");
    if (pid == 0) {
        execlp(py, py, "-c", script, path, dims[0], dims[1], dims[2], (char *)NULL);
        _exit(127);
    }
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status), "python died");
    if (WEXITSTATUS(status) == 77) {
        tmpdir_remove();
        cr_skip_test("tifffile is not importable by %s", py);
    }
    cr_assert_eq(WEXITSTATUS(status), 0, "tifffile check failed (see stderr)");
}
