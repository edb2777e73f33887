/* Whole-array files: .npy through npy.c, TIFF through libtiff. */
#include "array.h"

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

#include "dtype.h"
#include "fileio.h"

/* libtiff reports through handlers; keep its last message for ours instead of letting it print. */
typedef struct tiff_msg {
    char text[256];
} tiff_msg;

static int tiff_error(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap)
{
    (void)tif;
    (void)module;
    tiff_msg *m = user;
    vsnprintf(m->text, sizeof m->text, fmt, ap);
    return 1;
}

static int tiff_warning(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap)
{
    (void)tif;
    (void)user;
    (void)module;
    (void)fmt;
    (void)ap;
    return 1; /* unknown tags and the like: not our concern */
}

udf_dtype array_tiff_dtype(uint16_t format, uint16_t bits)
{
    if (format == SAMPLEFORMAT_UINT)
        return bits == 8 ? UDF_U8 : bits == 16 ? UDF_U16 : bits == 32 ? UDF_U32 : UDF_DTYPE_NONE;
    if (format == SAMPLEFORMAT_INT)
        return bits == 8 ? UDF_I8 : bits == 16 ? UDF_I16 : bits == 32 ? UDF_I32 : UDF_DTYPE_NONE;
    if (format == SAMPLEFORMAT_IEEEFP)
        return bits == 32 ? UDF_F32 : bits == 64 ? UDF_F64 : UDF_DTYPE_NONE;
    return UDF_DTYPE_NONE;
}

/* The current page's pixels into out (rows x cols, elem bytes each). */
static int read_page(TIFF *tif, const char *path, unsigned page, uint32_t rows, uint32_t cols,
                     size_t elem, unsigned char *out, const tiff_msg *msg, err *e)
{
    size_t row_bytes = (size_t)cols * elem;
    if (TIFFIsTiled(tif)) {
        uint32_t tw = 0, th = 0;
        TIFFGetField(tif, TIFFTAG_TILEWIDTH, &tw);
        TIFFGetField(tif, TIFFTAG_TILELENGTH, &th);
        tmsize_t tsize = TIFFTileSize(tif);
        /* Tiles are multiples of 16 pixels and pad the image by less than that: a larger tile
         * is a lie of the header, not a reason to allocate it. */
        if (!tw || !th || tw >= cols + 16 || th >= rows + 16 ||
            tsize < (tmsize_t)((size_t)tw * th * elem))
            return err_set(e, UH_EDATA, "%s: page %u: bad tile layout", path, page);
        unsigned char *tile = malloc((size_t)tsize);
        if (!tile)
            return err_set(e, UH_ENOMEM, "%s: out of memory for a tile", path);
        for (uint32_t y = 0; y < rows; y += th)
            for (uint32_t x = 0; x < cols; x += tw) {
                if (TIFFReadTile(tif, tile, x, y, 0, 0) < 0) {
                    free(tile);
                    return err_set(e, UH_EDATA, "%s: page %u: %s", path, page,
                                   msg->text[0] ? msg->text : "cannot read a tile");
                }
                uint32_t h = rows - y < th ? rows - y : th, w = cols - x < tw ? cols - x : tw;
                for (uint32_t r = 0; r < h; r++)
                    memcpy(out + (size_t)(y + r) * row_bytes + (size_t)x * elem,
                           tile + (size_t)r * tw * elem, (size_t)w * elem);
            }
        free(tile);
        return 0;
    }
    if ((size_t)TIFFScanlineSize(tif) < row_bytes)
        return err_set(e, UH_EDATA, "%s: page %u: bad strip layout", path, page);
    for (uint32_t r = 0; r < rows; r++)
        if (TIFFReadScanline(tif, out + (size_t)r * row_bytes, r, 0) < 0)
            return err_set(e, UH_EDATA, "%s: page %u, row %u: %s", path, page, r,
                           msg->text[0] ? msg->text : "cannot read");
    return 0;
}

static int tiff_read(const char *path, uint64_t max_bytes, npy_info *info, void **data, err *e)
{
    tiff_msg msg = {{0}};
    TIFFOpenOptions *opts = TIFFOpenOptionsAlloc();
    if (!opts)
        return err_set(e, UH_ENOMEM, "%s: out of memory", path);
    TIFFOpenOptionsSetErrorHandlerExtR(opts, tiff_error, &msg);
    TIFFOpenOptionsSetWarningHandlerExtR(opts, tiff_warning, NULL);
    struct stat st;
    uint64_t file_size = stat(path, &st) ? 0 : (uint64_t)st.st_size;
    TIFF *tif = TIFFOpenExt(path, "r", opts);
    TIFFOpenOptionsFree(opts);
    if (!tif)
        return err_set(e, UH_EDATA, "%s: not a readable TIFF: %s", path,
                       msg.text[0] ? msg.text : "cannot open");
    int rc = 0;
    unsigned pages = TIFFNumberOfDirectories(tif);
    uint32_t rows = 0, cols = 0;
    udf_dtype dt = UDF_DTYPE_NONE;
    unsigned char *buf = NULL;
    size_t page_bytes = 0;
    for (unsigned p = 0; p < pages && !rc; p++) {
        if (p > 0 && !TIFFReadDirectory(tif)) {
            rc = err_set(e, UH_EDATA, "%s: page %u: %s", path, p,
                         msg.text[0] ? msg.text : "cannot read its directory");
            break;
        }
        uint32_t w = 0, h = 0;
        uint16_t bits = 0, spp = 1, fmt = SAMPLEFORMAT_UINT;
        TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &w);
        TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &h);
        TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &bits);
        TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &spp);
        TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLEFORMAT, &fmt);
        udf_dtype d = array_tiff_dtype(fmt, bits);
        if (spp != 1 || d == UDF_DTYPE_NONE) {
            rc = err_set(e, UH_EDATA,
                         "%s: page %u has %u samples of %u bits (format %u); only one sample per "
                         "pixel of 8/16/32-bit integers or 32/64-bit floats is supported",
                         path, p, spp, bits, fmt);
            break;
        }
        if (p == 0) {
            rows = h;
            cols = w;
            dt = d;
            /* Bound what the header claims by the file before allocating: uncompressed data
             * must be in the file, compressed data expands at most 1024-fold (deflate's limit is
             * about 1032). */
            uint16_t comp = COMPRESSION_NONE;
            TIFFGetFieldDefaulted(tif, TIFFTAG_COMPRESSION, &comp);
            uint64_t claim = 0, limit = max_bytes;
            bool fits = !__builtin_mul_overflow((uint64_t)w, (uint64_t)h, &claim) &&
                        !__builtin_mul_overflow(claim, (uint64_t)udf_dtype_size(d), &claim) &&
                        !__builtin_mul_overflow(claim, (uint64_t)pages, &claim);
            uint64_t bound = comp == COMPRESSION_NONE ? file_size : file_size * 1024;
            if (bound < limit)
                limit = bound;
            if (fits && claim > limit) {
                rc = err_set(e, UH_EDATA, "%s: %u pages of %ux%u pixels need %llu bytes, more "
                             "than a file of %llu bytes can hold", path, pages, w, h,
                             (unsigned long long)claim, (unsigned long long)file_size);
                break;
            }
            page_bytes = (size_t)w * h * udf_dtype_size(d);
            if (!w || !h || !fits || (uint64_t)page_bytes * pages > max_bytes) {
                rc = err_set(e, UH_EDATA, "%s: %u pages of %ux%u pixels: empty, or more than %llu "
                             "bytes", path, pages, w, h, (unsigned long long)max_bytes);
                break;
            }
            buf = malloc(page_bytes * pages);
            if (!buf) {
                rc = err_set(e, UH_ENOMEM, "%s: out of memory", path);
                break;
            }
        } else if (w != cols || h != rows || d != dt) {
            rc = err_set(e, UH_EDATA, "%s: page %u is %ux%u %s, page 0 is %ux%u %s", path, p, w,
                         h, dtype_name(d), cols, rows, dtype_name(dt));
            break;
        }
        rc = read_page(tif, path, p, rows, cols, udf_dtype_size(dt), buf + p * page_bytes, &msg, e);
    }
    TIFFClose(tif);
    if (!rc && !pages)
        rc = err_set(e, UH_EDATA, "%s: a TIFF without pages", path);
    if (rc) {
        free(buf);
        return rc;
    }
    memset(info, 0, sizeof *info);
    info->dtype = dt;
    info->big_endian = host_is_big_endian();
    info->ndim = pages > 1 ? 3 : 2;
    uint32_t k = 0;
    if (pages > 1)
        info->shape[k++] = pages;
    info->shape[k++] = rows;
    info->shape[k] = cols;
    info->data_bytes = (uint64_t)page_bytes * pages;
    info->version = 0;
    *data = buf;
    return 0;
}

int array_read_file(const char *path, uint64_t max_bytes, npy_info *info, void **data, err *e)
{
    *data = NULL;
    unsigned char magic[4] = {0};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_sys(e, UH_EDATA, errno, "%s: cannot open", path);
    size_t got = 0;
    int rc = file_read_at(fd, path, magic, sizeof magic, 0, &got, e);
    close(fd);
    if (rc)
        return rc;
    bool tiff = got == 4 && ((magic[0] == 'I' && magic[1] == 'I' && magic[3] == 0 &&
                              (magic[2] == 42 || magic[2] == 43)) ||
                             (magic[0] == 'M' && magic[1] == 'M' && magic[2] == 0 &&
                              (magic[3] == 42 || magic[3] == 43)));
    if (tiff)
        return tiff_read(path, max_bytes, info, data, e);
    return npy_read_file(path, max_bytes, info, data, e);
}
