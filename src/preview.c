/* Preview PNGs: the statistics that pick the colormap and contrast (an O(n) percentile selection
 * over the finite values), the value-to-colour mapping, and the libpng writer behind a temporary
 * name. Output is 8-bit grey, or 8-bit RGB when the diverging map or a NaN needs colour. */
#include "preview.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <png.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "convert.h"

/* Values are converted to double this many at a time, on the stack: no full-size double copy. */
enum { CHUNK = 1024 };

/* Contrast percentiles (in percent) and the colours that are not part of a stretch. */
#define PCT_LOW 0.5
#define PCT_HIGH 99.5
/* NaN: dark red, which stands out in grey and in blue-white-red alike. */
static const unsigned char nan_rgb[3] = {128, 0, 0};
enum { FLAT_GREY = 128 }; /* a constant image: mid-grey */

typedef enum map_kind {
    MAP_FLAT,     /* no contrast to stretch: every finite value is mid-grey */
    MAP_GREY,     /* t = (v - lo) / (hi - lo), black to white */
    MAP_DIVERGING /* t = v / end in [-1, 1], blue - white (0) - red */
} map_kind;

/* How values become pixels; fixed before the first row is drawn. v is the value after the scale
 * transform (value_transform). */
typedef struct stretch {
    map_kind kind;
    bool log;
    bool rgb;   /* write RGB (diverging map or NaN present); else one grey byte per pixel */
    double min; /* smallest finite value: the log scale's origin in the grey map */
    double lo, hi, end;
} stretch;

/* The scale transform. Grey: x - min, or log1p(x - min), so v >= 0. Diverging: x, or
 * sign(x) log1p(|x|) for log scale, which keeps 0 at white and the map symmetric. x is finite. */
static inline double value_transform(const stretch *s, double x)
{
    if (s->kind == MAP_DIVERGING)
        return s->log ? copysign(log1p(fabs(x)), x) : x;
    return s->log ? log1p(x - s->min) : x - s->min;
}

static inline unsigned char unit_to_byte(double t)
{
    return (unsigned char)lrint(t * 255.0);
}

/* --- statistics ------------------------------------------------------------------------------ */

/* One pass over all values: finite count, range, NaN presence. */
typedef struct value_stats {
    size_t finite;
    bool nan;
    double min, max;
} value_stats;

static void stats_collect(const unsigned char *data, udf_dtype dtype, size_t n, value_stats *st)
{
    size_t elem = udf_dtype_size(dtype);
    double buf[CHUNK];
    st->finite = 0;
    st->nan = false;
    st->min = INFINITY;
    st->max = -INFINITY;
    for (size_t at = 0; at < n; at += CHUNK) {
        size_t m = n - at < CHUNK ? n - at : CHUNK;
        convert_run(buf, UDF_F64, data + at * elem, dtype, false, m);
        for (size_t i = 0; i < m; i++) {
            double x = buf[i];
            if (isnan(x)) {
                st->nan = true;
            } else if (isfinite(x)) {
                st->finite++;
                st->min = x < st->min ? x : st->min;
                st->max = x > st->max ? x : st->max;
            }
        }
    }
}

/* xorshift64: pivot positions that no input order can make quadratic (fixed seed, so the same
 * data always gives the same picture). */
static inline uint64_t rng_next(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *state = x;
}

/* Quickselect with a three-way partition (many equal values, e.g. masks or zero backgrounds, stay
 * linear): rearranges a[from, to) so that a[k] holds the value of rank k, with smaller-or-equal
 * values before it and greater-or-equal after. Expected O(to - from). a holds no NaN. */
static float select_rank(float *a, size_t from, size_t to, size_t k, uint64_t *rng)
{
    while (to - from > 1) {
        float pivot = a[from + rng_next(rng) % (to - from)];
        size_t lt = from, i = from, gt = to;
        while (i < gt) {
            float v = a[i];
            if (v < pivot) {
                a[i++] = a[lt];
                a[lt++] = v;
            } else if (v > pivot) {
                a[i] = a[--gt];
                a[gt] = v;
            } else {
                i++;
            }
        }
        if (k < lt)
            to = lt;
        else if (k >= gt)
            from = gt;
        else
            return pivot;
    }
    return a[k];
}

/* The q-th percentile of a[0, m) with NumPy's default (linear) interpolation. Elements of rank
 * below *from are already in a[0, *from) from an earlier call with a smaller q; on return *from
 * is this call's rank, so that the next, larger q selects only within a[*from, m). */
static double percentile(float *a, size_t m, double q, size_t *from, uint64_t *rng)
{
    double pos = q / 100.0 * (double)(m - 1);
    size_t k = (size_t)pos;
    double frac = pos - (double)k;
    double v = select_rank(a, *from, m, k, rng);
    *from = k;
    if (frac > 0 && k + 1 < m) {
        /* a[k + 1, m) holds the values of rank > k: the next rank is their minimum. */
        float next = a[k + 1];
        for (size_t i = k + 2; i < m; i++)
            next = a[i] < next ? a[i] : next;
        v += frac * ((double)next - v);
    }
    return v;
}

/* Decide the map and its end points. Uses one float per finite value as scratch: floats of
 * x - min (or |x|) keep 24 bits relative to the data's own range, plenty for 8 bits out.
 * Returns 0 or UH_ENOMEM. */
static int stretch_plan(const unsigned char *data, udf_dtype dtype, size_t n, preview_scale scale,
                        const char *path, stretch *s, err *e)
{
    value_stats st;
    stats_collect(data, dtype, n, &st);
    s->log = scale == PREVIEW_LOG;
    s->min = st.min;
    s->lo = s->hi = s->end = 0;
    if (st.finite == 0) {
        s->kind = MAP_FLAT;
        s->rgb = st.nan;
        return 0;
    }
    s->kind = st.min < 0 && st.max > 0 ? MAP_DIVERGING : MAP_GREY;
    s->rgb = st.nan || s->kind == MAP_DIVERGING;

    float *a = malloc(st.finite * sizeof *a);
    if (!a)
        return err_set(e, UH_ENOMEM, "%s: out of memory for the preview's statistics", path);
    size_t elem = udf_dtype_size(dtype), m = 0;
    double buf[CHUNK];
    for (size_t at = 0; at < n; at += CHUNK) {
        size_t c = n - at < CHUNK ? n - at : CHUNK;
        convert_run(buf, UDF_F64, data + at * elem, dtype, false, c);
        for (size_t i = 0; i < c; i++)
            if (isfinite(buf[i]))
                a[m++] = (float)fabs(value_transform(s, buf[i]));
    }
    uint64_t rng = 0x9E3779B97F4A7C15u;
    size_t from = 0;
    if (s->kind == MAP_DIVERGING) {
        s->end = percentile(a, m, PCT_HIGH, &from, &rng);
        if (!(s->end > 0)) /* mostly zeros: let the few signed values set the end instead */
            s->end = fmax(fabs(value_transform(s, st.min)), fabs(value_transform(s, st.max)));
    } else {
        s->lo = percentile(a, m, PCT_LOW, &from, &rng);
        s->hi = percentile(a, m, PCT_HIGH, &from, &rng);
        if (!(s->hi > s->lo)) { /* the percentiles coincide: fall back to the full range */
            s->lo = 0;
            s->hi = value_transform(s, st.max);
        }
        if (!(s->hi > s->lo))
            s->kind = MAP_FLAT;
    }
    free(a);
    return 0;
}

/* --- drawing --------------------------------------------------------------------------------- */

/* One image row of n values into out (n grey bytes, or n RGB triples). */
static void row_draw(const stretch *s, const unsigned char *data, udf_dtype dtype, size_t n,
                     unsigned char *restrict out)
{
    size_t elem = udf_dtype_size(dtype);
    size_t channels = s->rgb ? 3 : 1;
    double buf[CHUNK];
    for (size_t at = 0; at < n; at += CHUNK) {
        size_t m = n - at < CHUNK ? n - at : CHUNK;
        convert_run(buf, UDF_F64, data + at * elem, dtype, false, m);
        for (size_t i = 0; i < m; i++) {
            unsigned char *px = out + (at + i) * channels;
            double x = buf[i];
            if (isnan(x)) {
                memcpy(px, nan_rgb, 3); /* only reached when rgb */
                continue;
            }
            unsigned char rgb[3];
            if (s->kind == MAP_DIVERGING) {
                double t = isinf(x) ? copysign(1.0, x) : value_transform(s, x) / s->end;
                t = t < -1 ? -1 : t > 1 ? 1 : t;
                unsigned char fade = unit_to_byte(1 - fabs(t));
                rgb[0] = t < 0 ? fade : 255;
                rgb[1] = fade;
                rgb[2] = t < 0 ? 255 : fade;
            } else {
                double t = 0.5;
                if (isinf(x))
                    t = x > 0 ? 1 : 0;
                else if (s->kind == MAP_GREY)
                    t = (value_transform(s, x) - s->lo) / (s->hi - s->lo);
                t = t < 0 ? 0 : t > 1 ? 1 : t;
                rgb[0] = rgb[1] = rgb[2] = s->kind == MAP_FLAT && !isinf(x) ? FLAT_GREY
                                                                             : unit_to_byte(t);
            }
            memcpy(px, rgb, channels);
        }
    }
}

/* libpng's error and I/O context: the first message, and the file. */
typedef struct png_sink {
    FILE *file;
    uint64_t written; /* bytes handed to the file so far: the offset a failure is at */
    char msg[256];
} png_sink;

static void png_on_error(png_structp png, png_const_charp msg)
{
    png_sink *sink = png_get_error_ptr(png);
    if (!sink->msg[0])
        snprintf(sink->msg, sizeof sink->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg)
{
    (void)png; /* nothing we write should warn; never print */
    (void)msg;
}

static void png_on_write(png_structp png, png_bytep bytes, size_t len)
{
    png_sink *sink = png_get_io_ptr(png);
    if (fwrite(bytes, 1, len, sink->file) != len) {
        snprintf(sink->msg, sizeof sink->msg, "write failed at offset %" PRIu64 ": %s",
                 sink->written, strerror(errno));
        png_error(png, sink->msg);
    }
    sink->written += len;
}

static void png_on_flush(png_structp png)
{
    png_sink *sink = png_get_io_ptr(png);
    if (fflush(sink->file)) {
        snprintf(sink->msg, sizeof sink->msg, "write failed before offset %" PRIu64 ": %s",
                 sink->written, strerror(errno));
        png_error(png, sink->msg);
    }
}

/* Encode the image. All state that outlives a longjmp (png, info, row) belongs to the caller and
 * is not modified here after setjmp, so nothing needs to be volatile. Returns 0, or -1 with the
 * message in the sink. */
static int png_encode(png_structp png, png_infop info, png_sink *sink, const stretch *s,
                      const unsigned char *data, udf_dtype dtype, uint32_t rows, uint32_t cols,
                      unsigned char *row)
{
    if (setjmp(png_jmpbuf(png)))
        return -1;
    png_set_write_fn(png, sink, png_on_write, png_on_flush);
    png_set_IHDR(png, info, cols, rows, 8, s->rgb ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    size_t row_bytes = (size_t)cols * udf_dtype_size(dtype);
    for (uint32_t r = 0; r < rows; r++) {
        row_draw(s, data + (size_t)r * row_bytes, dtype, cols, row);
        png_write_row(png, row);
    }
    png_write_end(png, NULL);
    return 0;
}

/* Write the PNG into the open file f (which this closes), flushed and fsynced. */
static int png_file_write(FILE *f, const char *path, const stretch *s, const unsigned char *data,
                          udf_dtype dtype, uint32_t rows, uint32_t cols, err *e)
{
    png_sink sink = {.file = f};
    unsigned char *row = malloc((size_t)cols * (s->rgb ? 3 : 1));
    png_structp png =
        row ? png_create_write_struct(PNG_LIBPNG_VER_STRING, &sink, png_on_error, png_on_warning)
            : NULL;
    png_infop info = png ? png_create_info_struct(png) : NULL;
    int rc = 0;
    if (!info)
        rc = err_set(e, UH_ENOMEM, "%s: out of memory for the PNG encoder", path);
    else if (png_encode(png, info, &sink, s, data, dtype, rows, cols, row))
        rc = err_set(e, UH_EIO, "%s: cannot write PNG: %s", path,
                     sink.msg[0] ? sink.msg : "libpng failed");
    if (png)
        png_destroy_write_struct(&png, info ? &info : NULL);
    free(row);
    if (!rc && fflush(f))
        rc = err_sys(e, UH_EIO, errno, "%s: write failed before offset %" PRIu64, path,
                     sink.written);
    if (!rc && fsync(fileno(f)))
        rc = err_sys(e, UH_EIO, errno, "%s: fsync failed", path);
    if (fclose(f) && !rc)
        rc = err_sys(e, UH_EIO, errno, "%s: close failed", path);
    return rc;
}

/* The PNG of the values into `file`, created here (O_EXCL); messages name `path`. */
static int png_create(const char *file, const char *path, const void *data, udf_dtype dtype,
                      uint64_t rows, uint64_t cols, preview_scale scale, err *e)
{
    if (udf_dtype_size(dtype) == 0)
        return err_set(e, UH_EIO, "%s: cannot draw values of dtype %d", path, (int)dtype);
    /* PNG dimensions are 31-bit and non-zero. */
    if (rows == 0 || cols == 0 || rows > PNG_UINT_31_MAX || cols > PNG_UINT_31_MAX)
        return err_set(e, UH_EIO, "%s: a %llux%llu image cannot be a PNG", path,
                       (unsigned long long)rows, (unsigned long long)cols);
    if (rows > SIZE_MAX / cols)
        return err_set(e, UH_ENOMEM, "%s: %llux%llu values do not fit in memory", path,
                       (unsigned long long)rows, (unsigned long long)cols);

    stretch s;
    int rc = stretch_plan(data, dtype, (size_t)(rows * cols), scale, path, &s, e);
    if (rc)
        return rc;
    int fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0)
        return err_sys(e, UH_EIO, errno, "%s: cannot create %s", path, file);
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        rc = err_sys(e, errno == ENOMEM ? UH_ENOMEM : UH_EIO, errno, "%s: cannot open a stream",
                     path);
        close(fd);
    } else {
        rc = png_file_write(f, path, &s, data, dtype, (uint32_t)rows, (uint32_t)cols, e);
    }
    if (rc)
        unlink(file);
    return rc;
}

int preview_write_png(const char *path, const void *data, udf_dtype dtype, uint64_t rows,
                      uint64_t cols, preview_scale scale, err *e)
{
    char *tmp = NULL;
    if (asprintf(&tmp, "%s.tmp-%ld", path, (long)getpid()) < 0)
        return err_set(e, UH_ENOMEM, "%s: out of memory", path);
    int rc = png_create(tmp, path, data, dtype, rows, cols, scale, e);
    if (!rc && rename(tmp, path))
        rc = err_sys(e, UH_EIO, errno, "%s: cannot rename into place", path);
    if (rc)
        unlink(tmp);
    free(tmp);
    return rc;
}

int preview_write_png_new(const char *path, const void *data, udf_dtype dtype, uint64_t rows,
                          uint64_t cols, preview_scale scale, err *e)
{
    return png_create(path, path, data, dtype, rows, cols, scale, e);
}
