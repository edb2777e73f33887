/* TIFF stacks through libtiff: one frame per page. Uncompressed pages at a constant stride in the
 * file are mapped (zero copy); anything else (compressed, tiled, scattered) is decoded per frame
 * by a small pool of libtiff handles. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <tiffio.h>

#include "array.h"
#include "ds.h"
#include "dtype.h"
#include "shape.h"

/* d->io of the decoding path. read() tells the paths apart by this pointer because on the mapped
 * path d->state belongs to ds_map.c. */
static const char io_libtiff[] = "libtiff";

enum { MSG_CAP = 256 }; /* bytes kept of a libtiff message */

/* One libtiff handle. libtiff handles are not thread-safe: a handle is used by one read() call at
 * a time, taken from and given back to the pool. */
typedef struct tiff_handle {
    TIFF *tif;
    char msg[MSG_CAP];   /* libtiff's last error on this handle (its error handler writes it) */
    uint64_t page;       /* the current directory; UINT64_MAX: unknown */
    unsigned char *tile; /* one decoded tile, grown as needed, owned by the handle */
    size_t tile_cap;
    struct tiff_handle *next;
} tiff_handle;

/* The decoding path's state; immutable after open except the pool. */
typedef struct tiff_state {
    uint64_t *ifd_offsets; /* of each page's directory, to jump straight to a page */
    uint32_t width, height;
    udf_dtype dtype;
    pthread_mutex_t pool_lock; /* protects pool */
    tiff_handle *pool;         /* idle handles */
} tiff_state;

/* What open learns from the pages. */
typedef struct tiff_scan {
    uint64_t pages;
    uint64_t *ifd_offsets;          /* grown while walking, NULL until the first page */
    size_t ifd_cap;
    uint32_t width, height;
    udf_dtype dtype;
    bool mappable;                  /* so far every page is uncompressed contiguous strips */
    uint64_t first, stride;         /* ... at first + page * stride */
    uint64_t ij_images, ij_dims[3]; /* ImageJ's images= and frames=, slices=, channels= */
} tiff_scan;

static int tiff_on_error(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap)
{
    (void)tif;
    (void)module;
    char *msg = user;
    vsnprintf(msg, MSG_CAP, fmt, ap);
    /* Messages end up on one line of stderr. */
    for (char *c = msg; *c; c++)
        if (*c == '\n' || *c == '\r')
            *c = ' ';
    return 1; /* handled: libtiff must not print it too */
}

static int tiff_on_warning(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap)
{
    (void)tif;
    (void)user;
    (void)module;
    (void)fmt;
    (void)ap;
    return 1; /* unknown tags and the like: not our concern */
}

/* A new handle on path with its messages captured; NULL with a message in e on failure. */
static tiff_handle *handle_open(const char *path, err *e)
{
    tiff_handle *h = calloc(1, sizeof *h);
    TIFFOpenOptions *opts = h ? TIFFOpenOptionsAlloc() : NULL;
    if (!opts) {
        free(h);
        err_set(e, UH_ENOMEM, "%s: out of memory opening the TIFF", path);
        return NULL;
    }
    TIFFOpenOptionsSetErrorHandlerExtR(opts, tiff_on_error, h->msg);
    TIFFOpenOptionsSetWarningHandlerExtR(opts, tiff_on_warning, NULL);
    h->tif = TIFFOpenExt(path, "r", opts);
    TIFFOpenOptionsFree(opts);
    if (!h->tif) {
        err_set(e, UH_EDATA, "%s: not a readable TIFF: %s", path,
                h->msg[0] ? h->msg : "cannot open");
        free(h);
        return NULL;
    }
    h->page = 0;
    return h;
}

static void handle_close(tiff_handle *h)
{
    if (!h)
        return;
    TIFFClose(h->tif);
    free(h->tile);
    free(h);
}

/* If `line` is "key=N" with N a decimal number, store N in *value. */
static void imagej_number(const char *line, const char *key, uint64_t *value)
{
    size_t n = strlen(key);
    if (strncmp(line, key, n) || line[n] < '0' || line[n] > '9')
        return;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(line + n, &end, 10);
    if (!errno && (*end == '\n' || *end == '\0'))
        *value = v;
}

/* ImageJ hyperstacks say their shape in page 0's description: "ImageJ=1.53t\nimages=60\n
 * channels=1\nslices=6\nframes=10\n...". Pages are in ImageJ's CZT order (channel fastest). */
static void parse_imagej(const char *desc, tiff_scan *s)
{
    if (strncmp(desc, "ImageJ=", 7))
        return;
    for (const char *line = desc; line;) {
        imagej_number(line, "images=", &s->ij_images);
        imagej_number(line, "frames=", &s->ij_dims[0]);
        imagej_number(line, "slices=", &s->ij_dims[1]);
        imagej_number(line, "channels=", &s->ij_dims[2]);
        line = strchr(line, '\n');
        if (line)
            line++;
    }
}

/* Check the current page (number p) against page 0 and the file, and follow whether the stack
 * can still be mapped. */
static int scan_page(TIFF *tif, const char *path, uint64_t p, uint64_t file_size, tiff_scan *s,
                     err *e)
{
    uint32_t w = 0, h = 0;
    uint16_t bits = 0, spp = 1, fmt = SAMPLEFORMAT_UINT, compression = COMPRESSION_NONE;
    uint16_t fill = FILLORDER_MSB2LSB;
    TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &w);
    TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &h);
    TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &bits);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &spp);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLEFORMAT, &fmt);
    TIFFGetFieldDefaulted(tif, TIFFTAG_COMPRESSION, &compression);
    TIFFGetFieldDefaulted(tif, TIFFTAG_FILLORDER, &fill);
    udf_dtype dt = array_tiff_dtype(fmt, bits);
    if (spp != 1)
        return err_set(e, UH_EDATA,
                       "%s: page %llu has %u samples per pixel; only one (grayscale) is supported",
                       path, (unsigned long long)p, spp);
    if (dt == UDF_DTYPE_NONE)
        return err_set(e, UH_EDATA,
                       "%s: page %llu has %u-bit samples of sample format %u; supported are 8/16/"
                       "32-bit integers and 32/64-bit floats", path, (unsigned long long)p, bits,
                       fmt);
    if (!w || !h)
        return err_set(e, UH_EDATA, "%s: page %llu: image size %ux%u is empty", path,
                       (unsigned long long)p, w, h);
    if (p == 0) {
        s->width = w;
        s->height = h;
        s->dtype = dt;
    } else if (w != s->width || h != s->height || dt != s->dtype) {
        return err_set(e, UH_EDATA, "%s: page %llu is %ux%u %s, page 0 is %ux%u %s", path,
                       (unsigned long long)p, w, h, dtype_name(dt), s->width, s->height,
                       dtype_name(s->dtype));
    }

    /* Every strip or tile must lie inside the file: a truncated file fails here, at open. */
    uint64_t *offsets = NULL, *counts = NULL;
    bool tiled = TIFFIsTiled(tif);
    uint32_t chunks = tiled ? TIFFNumberOfTiles(tif) : TIFFNumberOfStrips(tif);
    uint32_t off_tag = tiled ? TIFFTAG_TILEOFFSETS : TIFFTAG_STRIPOFFSETS;
    uint32_t count_tag = tiled ? TIFFTAG_TILEBYTECOUNTS : TIFFTAG_STRIPBYTECOUNTS;
    if (!chunks || !TIFFGetField(tif, off_tag, &offsets) ||
        !TIFFGetField(tif, count_tag, &counts) || !offsets || !counts)
        return err_set(e, UH_EDATA, "%s: page %llu has no %s offsets or byte counts", path,
                       (unsigned long long)p, tiled ? "tile" : "strip");
    uint64_t total = 0;
    bool contiguous = true;
    for (uint32_t i = 0; i < chunks; i++) {
        uint64_t end;
        if (!size_add(offsets[i], counts[i], &end) || end > file_size)
            return err_set(e, UH_EDATA,
                           "%s: file too short: page %llu %s %u ends at byte %llu, the file has "
                           "%llu", path, (unsigned long long)p, tiled ? "tile" : "strip", i,
                           (unsigned long long)offsets[i] + counts[i],
                           (unsigned long long)file_size);
        if (!size_add(total, counts[i], &total) ||
            (i > 0 && offsets[i] != offsets[i - 1] + counts[i - 1]))
            contiguous = false;
    }

    uint64_t frame_bytes;
    if (!size_mul((uint64_t)w * h, udf_dtype_size(dt), &frame_bytes))
        return err_set(e, UH_EDATA, "%s: page %llu: image size %ux%u overflows", path,
                       (unsigned long long)p, w, h);
    if (s->mappable)
        s->mappable = compression == COMPRESSION_NONE && !tiled && contiguous &&
                      fill == FILLORDER_MSB2LSB && total == frame_bytes;
    if (s->mappable) {
        uint64_t at;
        if (p == 0)
            s->first = offsets[0];
        else if (p == 1)
            s->mappable = offsets[0] >= s->first &&
                          (s->stride = offsets[0] - s->first) >= frame_bytes;
        else
            s->mappable = size_mul(p, s->stride, &at) && size_add(at, s->first, &at) &&
                          offsets[0] == at;
    }
    return 0;
}

/* Walk every page once (its directory only, not its pixels). */
static int scan_pages(TIFF *tif, const char *path, uint64_t file_size, const char *msg,
                      tiff_scan *s, err *e)
{
    char *desc = NULL;
    if (TIFFGetField(tif, TIFFTAG_IMAGEDESCRIPTION, &desc) && desc)
        parse_imagej(desc, s);
    s->mappable = true;
    for (uint64_t p = 0;; p++) {
        if (p == s->ifd_cap) {
            size_t cap = s->ifd_cap ? 2 * s->ifd_cap : 1024;
            uint64_t *grown = realloc(s->ifd_offsets, cap * sizeof *grown);
            if (!grown)
                return err_set(e, UH_ENOMEM, "%s: out of memory for %llu pages", path,
                               (unsigned long long)p);
            s->ifd_offsets = grown;
            s->ifd_cap = cap;
        }
        s->ifd_offsets[p] = TIFFCurrentDirOffset(tif);
        int rc = scan_page(tif, path, p, file_size, s, e);
        if (rc)
            return rc;
        s->pages = p + 1;
        if (TIFFLastDirectory(tif))
            return 0;
        if (!TIFFReadDirectory(tif))
            return err_set(e, UH_EDATA, "%s: page %llu: cannot read its directory (file "
                           "truncated or corrupt): %s", path, (unsigned long long)p + 1,
                           msg[0] ? msg : "no details");
    }
}

/* d's nav and sig shapes from the user's flags, else ImageJ's hyperstack, else pages x 1. */
static int set_shapes(ds *d, const ds_options *o, const tiff_scan *s, uint64_t frames, err *e)
{
    d->sig_ndim = 2;
    d->sig_shape[0] = s->height;
    d->sig_shape[1] = s->width;
    d->sig_size = (uint64_t)s->height * s->width;
    int rc = ds_apply_user_sig(d, o, e);
    if (rc)
        return rc;
    d->nav_ndim = 1;
    d->nav_shape[0] = frames;
    d->num_frames = frames;
    if (o->nav_ndim) {
        if ((rc = ds_apply_user_nav(d, o, e)))
            return rc;
    } else if (s->ij_images == frames) {
        /* frames, slices, channels: C order of ImageJ's page order; unit axes dropped. */
        uint64_t dims[3], prod = 1;
        uint32_t nd = 0;
        for (int k = 0; k < 3; k++)
            if (s->ij_dims[k] > 1 && size_mul(prod, s->ij_dims[k], &prod))
                dims[nd++] = s->ij_dims[k];
        if (nd > 1 && prod == frames) {
            d->nav_ndim = nd;
            memcpy(d->nav_shape, dims, nd * sizeof dims[0]);
        }
    }
    d->num_frames = frames;
    return 0;
}

static int tiff_open(ds *d, const ds_options *o, err *e)
{
    struct stat st;
    if (stat(o->path, &st))
        return err_sys(e, UH_EDATA, errno, "%s: cannot open", o->path);
    if (!S_ISREG(st.st_mode))
        return err_set(e, UH_EDATA, "%s: not a regular file", o->path);
    /* Errors libtiff reports without a handle would go to its global handler, which prints. */
    TIFFSetErrorHandler(NULL);
    TIFFSetWarningHandler(NULL);
    tiff_handle *h = handle_open(o->path, e);
    if (!h)
        return e->code;
    tiff_scan s = {0};
    int rc = scan_pages(h->tif, o->path, (uint64_t)st.st_size, h->msg, &s, e);
    uint64_t frames = s.pages;
    /* ImageJ saves stacks over 4 GiB with one directory and every image after the first. */
    if (!rc && s.pages == 1 && s.mappable && s.ij_images > 1) {
        frames = s.ij_images;
        s.stride = (uint64_t)s.width * s.height * udf_dtype_size(s.dtype);
    }
    if (!rc)
        rc = set_shapes(d, o, &s, frames, e);
    if (!rc && o->dtype != UDF_DTYPE_NONE && o->dtype != s.dtype)
        rc = err_set(e, UH_EUSAGE, "%s: --dtype %s does not match the file's %s", o->path,
                     dtype_name(o->dtype), dtype_name(s.dtype));
    if (!rc) {
        d->dtype = s.dtype;
        d->elem_size = udf_dtype_size(s.dtype);
        if (!size_mul(d->sig_size, d->elem_size, &d->frame_bytes) ||
            d->frame_bytes > (UINT64_MAX >> 1) / frames)
            rc = err_set(e, UH_EDATA, "%s: %llu pages of %llu bytes overflow 64 bits", o->path,
                         (unsigned long long)frames, (unsigned long long)d->frame_bytes);
    }
    if (!rc && s.mappable) {
        d->big_endian = TIFFIsBigEndian(h->tif);
        handle_close(h);
        free(s.ifd_offsets);
        return ds_map_frames(d, o->path, s.first, frames > 1 ? s.stride : d->frame_bytes, e);
    }
    tiff_state *ts = rc ? NULL : calloc(1, sizeof *ts);
    if (!rc && (!ts || pthread_mutex_init(&ts->pool_lock, NULL)))
        rc = err_set(e, UH_ENOMEM, "%s: out of memory", o->path);
    if (rc) {
        free(ts);
        handle_close(h);
        free(s.ifd_offsets);
        return rc;
    }
    /* libtiff decodes into the host's byte order. */
    d->big_endian = host_is_big_endian();
    d->file_bytes = (uint64_t)st.st_size;
    d->io = io_libtiff;
    ts->ifd_offsets = s.ifd_offsets;
    ts->width = s.width;
    ts->height = s.height;
    ts->dtype = s.dtype;
    h->page = UINT64_MAX; /* the walk left it on the last page */
    ts->pool = h;
    d->state = ts;
    return 0;
}

/* Make `page` the handle's current directory. */
static int handle_seek(tiff_handle *h, const tiff_state *ts, uint64_t page)
{
    if (h->page == page)
        return 0;
    h->page = UINT64_MAX;
    if (!TIFFSetSubDirectory(h->tif, ts->ifd_offsets[page]))
        return -1;
    uint32_t w = 0, ht = 0;
    uint16_t bits = 0, fmt = SAMPLEFORMAT_UINT, spp = 1;
    TIFFGetField(h->tif, TIFFTAG_IMAGEWIDTH, &w);
    TIFFGetField(h->tif, TIFFTAG_IMAGELENGTH, &ht);
    TIFFGetFieldDefaulted(h->tif, TIFFTAG_BITSPERSAMPLE, &bits);
    TIFFGetFieldDefaulted(h->tif, TIFFTAG_SAMPLESPERPIXEL, &spp);
    TIFFGetFieldDefaulted(h->tif, TIFFTAG_SAMPLEFORMAT, &fmt);
    /* The file changed since open: decoding would not fit the frame. */
    if (w != ts->width || ht != ts->height || spp != 1 || array_tiff_dtype(fmt, bits) != ts->dtype) {
        snprintf(h->msg, sizeof h->msg, "the page changed since the file was opened");
        return -1;
    }
    h->page = page;
    return 0;
}

/* Decode the current page into out (height x width pixels of elem bytes). */
static int handle_decode(tiff_handle *h, const tiff_state *ts, size_t elem, unsigned char *out)
{
    TIFF *tif = h->tif;
    size_t row_bytes = (size_t)ts->width * elem;
    if (!TIFFIsTiled(tif)) {
        uint32_t rps = 0;
        TIFFGetFieldDefaulted(tif, TIFFTAG_ROWSPERSTRIP, &rps);
        if (!rps || rps > ts->height)
            rps = ts->height;
        uint32_t strips = TIFFNumberOfStrips(tif);
        if ((uint64_t)strips * rps < ts->height) {
            snprintf(h->msg, sizeof h->msg, "%u strips of %u rows do not cover %u rows", strips,
                     rps, ts->height);
            return -1;
        }
        /* 64-bit positions: y + rps must not wrap for heights near 2^32. */
        uint32_t s = 0;
        for (uint64_t y = 0; y < ts->height; y += rps, s++) {
            uint64_t rows = ts->height - y < rps ? ts->height - y : rps;
            tmsize_t want = (tmsize_t)(rows * row_bytes);
            if (TIFFReadEncodedStrip(tif, s, out + y * row_bytes, want) != want) {
                if (!h->msg[0])
                    snprintf(h->msg, sizeof h->msg, "strip %u is short", s);
                return -1;
            }
        }
        return 0;
    }
    uint32_t tw = 0, th = 0;
    TIFFGetField(tif, TIFFTAG_TILEWIDTH, &tw);
    TIFFGetField(tif, TIFFTAG_TILELENGTH, &th);
    tmsize_t tsize = TIFFTileSize(tif);
    if (!tw || !th || tsize <= 0 || (uint64_t)tsize < (uint64_t)tw * th * elem) {
        snprintf(h->msg, sizeof h->msg, "bad tile size %ux%u", tw, th);
        return -1;
    }
    /* Tiles may overhang the image (writers use 256 x 256 for small images too), but a tile far
     * larger than the frame is a corrupt header: its buffer must not grow with the claim. */
    uint64_t frame_pad = ((uint64_t)ts->width + 15) * ((uint64_t)ts->height + 15) * elem;
    if ((uint64_t)tsize > ((uint64_t)16 << 20) && (uint64_t)tsize > 2 * frame_pad) {
        snprintf(h->msg, sizeof h->msg, "tiles of %ux%u are far larger than the %ux%u image", tw,
                 th, ts->width, ts->height);
        return -1;
    }
    if ((size_t)tsize > h->tile_cap) {
        unsigned char *grown = realloc(h->tile, (size_t)tsize);
        if (!grown) {
            snprintf(h->msg, sizeof h->msg, "out of memory for a tile");
            return -1;
        }
        h->tile = grown;
        h->tile_cap = (size_t)tsize;
    }
    for (uint64_t y = 0; y < ts->height; y += th)
        for (uint64_t x = 0; x < ts->width; x += tw) {
            uint32_t tile = TIFFComputeTile(tif, (uint32_t)x, (uint32_t)y, 0, 0);
            if (TIFFReadEncodedTile(tif, tile, h->tile, tsize) != tsize) {
                if (!h->msg[0])
                    snprintf(h->msg, sizeof h->msg, "tile at %llu,%llu is short",
                             (unsigned long long)x, (unsigned long long)y);
                return -1;
            }
            uint64_t rows = ts->height - y < th ? ts->height - y : th;
            size_t cols_bytes = (size_t)(ts->width - x < tw ? ts->width - x : tw) * elem;
            for (uint64_t r = 0; r < rows; r++)
                memcpy(out + (size_t)(y + r) * row_bytes + (size_t)x * elem,
                       h->tile + (size_t)r * tw * elem, cols_bytes);
        }
    return 0;
}

static int tiff_read(ds *d, uint64_t first, uint64_t count, void *scratch,
                     const unsigned char **data, size_t *stride, err *e)
{
    if (d->io != io_libtiff)
        return ds_map_read(d, first, count, scratch, data, stride, e);
    tiff_state *ts = d->state;
    pthread_mutex_lock(&ts->pool_lock);
    tiff_handle *h = ts->pool;
    if (h)
        ts->pool = h->next;
    pthread_mutex_unlock(&ts->pool_lock);
    if (!h && !(h = handle_open(d->path, e)))
        return e->code;
    int rc = 0;
    for (uint64_t i = 0; i < count && !rc; i++) {
        h->msg[0] = '\0';
        unsigned char *out = (unsigned char *)scratch + i * d->frame_bytes;
        if (handle_seek(h, ts, first + i) || handle_decode(h, ts, d->elem_size, out))
            rc = err_set(e, UH_EDATA, "%s: frame %llu: %s", d->path,
                         (unsigned long long)(first + i), h->msg[0] ? h->msg : "cannot decode");
    }
    if (rc) {
        /* Do not trust a handle that failed mid-decode. */
        handle_close(h);
        return rc;
    }
    pthread_mutex_lock(&ts->pool_lock);
    h->next = ts->pool;
    ts->pool = h;
    pthread_mutex_unlock(&ts->pool_lock);
    *data = scratch;
    *stride = d->frame_bytes;
    return 0;
}

static void tiff_release(ds *d, uint64_t first, uint64_t count)
{
    if (d->io != io_libtiff)
        ds_map_release(d, first, count);
}

static void tiff_close(ds *d)
{
    if (d->io != io_libtiff) {
        ds_map_close(d);
        return;
    }
    tiff_state *ts = d->state;
    if (!ts)
        return;
    while (ts->pool) {
        tiff_handle *next = ts->pool->next;
        handle_close(ts->pool);
        ts->pool = next;
    }
    pthread_mutex_destroy(&ts->pool_lock);
    free(ts->ifd_offsets);
    free(ts);
    d->state = NULL;
}

/* Classic TIFF ("II*\0", "MM\0*") and BigTIFF ("II+\0", "MM\0+"). */
static bool tiff_probe(const unsigned char *head, size_t n)
{
    if (n < 4)
        return false;
    if (head[0] == 'I' && head[1] == 'I')
        return (head[2] == 42 || head[2] == 43) && head[3] == 0;
    if (head[0] == 'M' && head[1] == 'M')
        return head[2] == 0 && (head[3] == 42 || head[3] == 43);
    return false;
}

const ds_reader ds_tiff_reader = {
    .name = "tiff",
    .extensions = ".tif|.tiff",
    .probe = tiff_probe,
    .open = tiff_open,
    .read = tiff_read,
    .release = tiff_release,
    .close = tiff_close,
};
