/* Float32 TIFF export through libtiff: one page per leading index, all pixel data contiguous after
 * the directories so that ImageJ, which reads an "images=N" stack as one run of bytes from the
 * first page's offset, opens it as well as libtiff readers that walk the directories. */
#include "imgout.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <tiffio.h>
#include <unistd.h>

#include "convert.h"

/* Strips of about this many bytes: the conversion buffer, not a format limit. */
enum { STRIP_BYTES = 1 << 18 };

/* libtiff's first error message, kept for ours instead of being printed. */
typedef struct tiff_msg {
    char text[256];
} tiff_msg;

static int tiff_on_error(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap)
{
    (void)tif;
    (void)module;
    tiff_msg *m = user;
    if (!m->text[0])
        vsnprintf(m->text, sizeof m->text, fmt, ap);
    return 1;
}

static int tiff_on_warning(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap)
{
    (void)tif;
    (void)user;
    (void)module;
    (void)fmt;
    (void)ap;
    return 1; /* nothing we write should warn; never print */
}

/* The file under libtiff: its own read/write procedures (libtiff's retry neither EINTR nor short
 * transfers) that keep the first error and where it happened, for our message. */
typedef struct tiff_file {
    int fd;
    int err_no;      /* first failed read or write; 0 if none */
    bool err_write;  /* whether it was a write */
    uint64_t err_at; /* its file offset */
} tiff_file;

static tmsize_t tiff_file_io(thandle_t h, void *buf, tmsize_t n, bool writing)
{
    tiff_file *f = h;
    off_t at = lseek(f->fd, 0, SEEK_CUR);
    tmsize_t done = 0;
    while (done < n) {
        ssize_t r = writing ? write(f->fd, (char *)buf + done, (size_t)(n - done))
                            : read(f->fd, (char *)buf + done, (size_t)(n - done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 || (r == 0 && writing)) {
            if (!f->err_no) {
                f->err_no = r < 0 ? errno : EIO;
                f->err_write = writing;
                f->err_at = (uint64_t)at + (uint64_t)done;
            }
            return -1;
        }
        if (r == 0) /* end of file: libtiff asked past what it wrote */
            break;
        done += r;
    }
    return done;
}

static tmsize_t tiff_file_read(thandle_t h, void *buf, tmsize_t n)
{
    return tiff_file_io(h, buf, n, false);
}

static tmsize_t tiff_file_write(thandle_t h, void *buf, tmsize_t n)
{
    return tiff_file_io(h, buf, n, true);
}

static toff_t tiff_file_seek(thandle_t h, toff_t off, int whence)
{
    return (toff_t)lseek(((tiff_file *)h)->fd, (off_t)off, whence);
}

static int tiff_file_close(thandle_t h)
{
    return close(((tiff_file *)h)->fd);
}

static toff_t tiff_file_size(thandle_t h)
{
    struct stat st;
    return fstat(((tiff_file *)h)->fd, &st) ? 0 : (toff_t)st.st_size;
}

/* Never mapped: libtiff maps only files opened for reading. */
static int tiff_file_map(thandle_t h, void **base, toff_t *size)
{
    (void)h;
    (void)base;
    (void)size;
    return 0;
}

static void tiff_file_unmap(thandle_t h, void *base, toff_t size)
{
    (void)h;
    (void)base;
    (void)size;
}

/* The message of a failure to create (doing "create") or write the TIFF: our I/O error with its
 * offset if there was one, else libtiff's message. */
static int tiff_failed(const tiff_file *f, const tiff_msg *msg, const char *path, const char *doing,
                       err *e)
{
    if (f->err_no)
        return err_sys(e, UH_EIO, f->err_no, "%s: %s failed at offset %llu", path,
                       f->err_write ? "write" : "read", (unsigned long long)f->err_at);
    return err_set(e, UH_EIO, "%s: cannot %s TIFF: %s", path, doing,
                   msg->text[0] ? msg->text : "libtiff failed");
}

/* The image geometry of an array: the last two dims are rows x cols, the rest pages. */
typedef struct tiff_layout {
    uint64_t pages, rows, cols;
    uint32_t rows_per_strip, strips; /* per page */
} tiff_layout;

static int layout_plan(const char *path, uint32_t ndim, const uint64_t *shape, tiff_layout *l,
                       err *e)
{
    l->pages = 1;
    l->rows = ndim >= 2 ? shape[ndim - 2] : 1;
    l->cols = ndim >= 1 ? shape[ndim - 1] : 1;
    for (uint32_t k = 0; k + 2 < ndim; k++) {
        if (shape[k] && l->pages > UINT32_MAX / shape[k])
            return err_set(e, UH_EIO, "%s: more than 2^32 pages do not fit in a TIFF", path);
        l->pages *= shape[k];
    }
    if (!l->pages || !l->rows || !l->cols)
        return err_set(e, UH_EIO, "%s: an empty array cannot be a TIFF", path);
    if (l->rows > UINT32_MAX || l->cols > UINT32_MAX || l->cols > SIZE_MAX / 4 / l->rows)
        return err_set(e, UH_EIO, "%s: a %llux%llu image does not fit in a TIFF", path,
                       (unsigned long long)l->rows, (unsigned long long)l->cols);
    uint64_t row_bytes = l->cols * 4, rps = STRIP_BYTES / row_bytes;
    rps = rps < 1 ? 1 : rps > l->rows ? l->rows : rps;
    l->rows_per_strip = (uint32_t)rps;
    l->strips = (uint32_t)((l->rows + rps - 1) / rps);
    return 0;
}

/* Set the tags of one page. Only the first page of a stack carries the ImageJ description. */
static int page_tags_set(TIFF *tif, const tiff_layout *l, uint64_t page)
{
    int ok = TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, (uint32_t)l->cols) &&
             TIFFSetField(tif, TIFFTAG_IMAGELENGTH, (uint32_t)l->rows) &&
             TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, 32) &&
             TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, 1) &&
             TIFFSetField(tif, TIFFTAG_SAMPLEFORMAT, SAMPLEFORMAT_IEEEFP) &&
             TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK) &&
             TIFFSetField(tif, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG) &&
             TIFFSetField(tif, TIFFTAG_COMPRESSION, COMPRESSION_NONE) &&
             TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, l->rows_per_strip);
    if (ok && l->pages > 1) {
        ok = TIFFSetField(tif, TIFFTAG_SUBFILETYPE, FILETYPE_PAGE) &&
             TIFFSetField(tif, TIFFTAG_PAGENUMBER, (uint16_t)(page < 0xFFFF ? page : 0xFFFF),
                          (uint16_t)(l->pages < 0xFFFF ? l->pages : 0xFFFF));
        if (ok && page == 0) {
            char description[96];
            snprintf(description, sizeof description, "ImageJ=1.11a\nimages=%llu\nslices=%llu\n",
                     (unsigned long long)l->pages, (unsigned long long)l->pages);
            ok = TIFFSetField(tif, TIFFTAG_IMAGEDESCRIPTION, description);
        }
    }
    return ok;
}

/* Write the file in three passes: every directory with its strip arrays deferred, then every strip
 * array (still zeros, at their final size), then the pixels page after page, each page's arrays
 * rewritten in place. Nothing lands between two pages' pixels. Returns 1 or 0 (message in libtiff's
 * handler). */
static int tiff_pages_write(TIFF *tif, const tiff_layout *l, const unsigned char *data,
                            udf_dtype dtype, float *strip)
{
    /* TIFFWriteDirectory starts the next, empty directory itself. */
    for (uint64_t p = 0; p < l->pages; p++)
        if (!page_tags_set(tif, l, p) || !TIFFDeferStrileArrayWriting(tif) ||
            !TIFFWriteCheck(tif, 0, "imgout") || !TIFFWriteDirectory(tif))
            return 0;
    for (uint64_t p = 0; p < l->pages; p++)
        if (!(p == 0 ? TIFFSetDirectory(tif, 0) : TIFFReadDirectory(tif)) ||
            !TIFFForceStrileArrayWriting(tif))
            return 0;
    size_t elem = udf_dtype_size(dtype), page_values = (size_t)(l->rows * l->cols);
    for (uint64_t p = 0; p < l->pages; p++) {
        if (!(p == 0 ? TIFFSetDirectory(tif, 0) : TIFFReadDirectory(tif)))
            return 0;
        const unsigned char *page = data + (size_t)p * page_values * elem;
        for (uint32_t s = 0; s < l->strips; s++) {
            uint64_t row = (uint64_t)s * l->rows_per_strip;
            uint64_t n_rows = l->rows - row < l->rows_per_strip ? l->rows - row : l->rows_per_strip;
            size_t n = (size_t)(n_rows * l->cols);
            convert_run(strip, UDF_F32, page + (size_t)(row * l->cols) * elem, dtype, false, n);
            tmsize_t bytes = (tmsize_t)(n * sizeof *strip);
            if (TIFFWriteEncodedStrip(tif, s, strip, bytes) != bytes)
                return 0;
        }
        if (!TIFFFlush(tif))
            return 0;
    }
    return 1;
}

int imgout_write_tiff(const char *path, const void *data, udf_dtype dtype, uint32_t ndim,
                      const uint64_t *shape, err *e)
{
    if (udf_dtype_size(dtype) == 0)
        return err_set(e, UH_EIO, "%s: cannot store values of dtype %d", path, (int)dtype);
    tiff_layout l = {0};
    int rc = layout_plan(path, ndim, shape, &l, e);
    if (rc)
        return rc;
    /* Classic TIFF offsets are 32-bit: switch to BigTIFF when pixels plus directories (generously
     * 512 bytes each) and strip arrays (8 bytes per strip) could pass 4 GiB. */
    uint64_t bytes = l.pages * (l.rows * l.cols * 4 + 512 + 16ull * l.strips) + 4096;
    const char *mode = bytes < UINT32_MAX ? "w" : "w8";

    float *strip = malloc((size_t)l.rows_per_strip * (size_t)l.cols * sizeof *strip);
    if (!strip)
        return err_set(e, UH_ENOMEM, "%s: out of memory", path);
    /* Our own descriptor so that the data can be fsynced before libtiff closes it. Only a file
     * this call created is removed on failure: path may name something else (a device, say). */
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    bool created = fd >= 0;
    if (fd < 0 && errno == EEXIST)
        fd = open(path, O_RDWR | O_TRUNC | O_CLOEXEC);
    if (fd < 0) {
        rc = err_sys(e, UH_EIO, errno, "%s: cannot create", path);
        free(strip);
        return rc;
    }
    tiff_msg msg = {{0}};
    tiff_file file = {.fd = fd};
    TIFFOpenOptions *opts = TIFFOpenOptionsAlloc();
    TIFF *tif = NULL;
    if (opts) {
        TIFFOpenOptionsSetErrorHandlerExtR(opts, tiff_on_error, &msg);
        TIFFOpenOptionsSetWarningHandlerExtR(opts, tiff_on_warning, NULL);
        tif = TIFFClientOpenExt(path, mode, &file, tiff_file_read, tiff_file_write, tiff_file_seek,
                                tiff_file_close, tiff_file_size, tiff_file_map, tiff_file_unmap,
                                opts);
        TIFFOpenOptionsFree(opts);
    }
    if (!tif) {
        close(fd);
        rc = opts ? tiff_failed(&file, &msg, path, "create", e)
                  : err_set(e, UH_ENOMEM, "%s: out of memory", path);
    } else {
        /* Flushed before the fsync, so that TIFFClose has nothing left to write. libtiff
         * passes over some failed reads and writes (of directories), hence file.err_no. */
        if (!tiff_pages_write(tif, &l, data, dtype, strip) || !TIFFFlush(tif) || file.err_no)
            rc = tiff_failed(&file, &msg, path, "write", e);
        else if (fsync(fd))
            rc = err_sys(e, UH_EIO, errno, "%s: fsync failed", path);
        TIFFClose(tif); /* closes fd */
    }
    free(strip);
    if (rc && created)
        unlink(path);
    return rc;
}
