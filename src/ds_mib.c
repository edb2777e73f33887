/* Quantum Detectors Merlin .mib files: frames that each start with an ASCII "MQ1," header,
 * decoded big-endian U08/U16/U32 pixels (mapped, no copy) or single-chip raw R64 counter data
 * (unpacked here); one file, or the .mib files of an acquisition named by its .hdr file. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ds.h"
#include "dtype.h"
#include "fileio.h"
#include "shape.h"

/* Limits on header values, far above any Merlin detector (256 x 256 per chip, 768-byte quad
 * headers), that keep hostile headers from asking for absurd sizes. */
#define MIB_MAX_HEADER 65536
#define MIB_MAX_DIM 65536
#define MIB_MAX_CHIPS 64
#define MIB_MAX_HDR_FILE (1 << 20)

/* What one frame header says. Only these fields matter for reading; the rest (timestamps,
 * thresholds, DACs) are skipped. */
typedef struct mib_header {
    uint64_t seq;          /* sequence number, from 1 in an acquisition */
    uint64_t header_bytes; /* bytes from "MQ1," to the first pixel byte */
    uint64_t chips;
    uint64_t width, height; /* pixels: columns (X), rows (Y) */
    char dtype[4];          /* "U08", "U16", "U32", "R64", ... */
    char layout[8];         /* "1x1", "2x2", "2x2G", "Nx1", ... (leading padding removed) */
    uint64_t depth;         /* counter depth from the MQ1A part; 0: not given */
} mib_header;

/* How frames are stored and what they decode to. */
typedef struct mib_layout {
    udf_dtype dtype;
    size_t elem;
    unsigned raw_slot;     /* R64: bits per pixel slot in a 64-bit word (1, 8, 16); 0: decoded */
    uint64_t sig_size;
    uint64_t stored_bytes; /* data bytes of one frame in the file */
} mib_layout;

typedef struct mib_file {
    ds map;         /* this file's frames, mapped by ds_map_frames (map.state) */
    uint64_t first; /* index of its first frame in the dataset */
    char *path;
} mib_file;

typedef struct mib_state {
    mib_file *files;
    size_t n_files;
    mib_layout lay;
} mib_state;

/* ---- frame headers ---------------------------------------------------------------------- */

/* The next comma-separated field of [*cur, end): sets *tok and *len, moves *cur past the comma.
 * False at the end of the header (end of buffer or NUL padding). */
static bool next_field(const char **cur, const char *end, const char **tok, size_t *len)
{
    const char *p = *cur;
    if (p >= end || *p == '\0')
        return false;
    const char *q = p;
    while (q < end && *q != ',' && *q != '\0')
        q++;
    *tok = p;
    *len = (size_t)(q - p);
    *cur = q < end && *q == ',' ? q + 1 : q;
    return true;
}

/* A decimal (or hexadecimal) field with optional leading spaces into *out. */
static bool parse_uint(const char *tok, size_t len, int base, uint64_t *out)
{
    while (len && *tok == ' ')
        tok++, len--;
    if (!len || len > 20)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)tok[i], digit;
        if (c >= '0' && c <= '9')
            digit = c - '0';
        else if (base == 16 && isxdigit(c))
            digit = tolower(c) - 'a' + 10;
        else
            return false;
        if (!size_mul(v, (uint64_t)base, &v) || !size_add(v, (uint64_t)digit, &v))
            return false;
    }
    *out = v;
    return true;
}

static int field_error(const char *path, uint64_t offset, const char *field, const char *tok,
                       size_t len, const char *want, err *e)
{
    return err_set(e, UH_EDATA, "%s: frame header at offset %llu: %s '%.*s' is not %s", path,
                   (unsigned long long)offset, field, (int)(len > 40 ? 40 : len), tok, want);
}

/* Parse the frame header in buf[0, n) read from `offset` of `path`. n may be less than the
 * header size (short file): fields past n count as missing. */
static int header_parse(const char *path, uint64_t offset, const unsigned char *buf, size_t n,
                        mib_header *h, err *e)
{
    static const char *const names[] = {"magic", "sequence number", "header size",
                                        "number of chips", "width (X)", "height (Y)",
                                        "pixel depth", "sensor layout"};
    const char *cur = (const char *)buf, *end = cur + n;
    if (n < 4 || memcmp(buf, "MQ1,", 4))
        return err_set(e, UH_EDATA, "%s: no Merlin frame header ('MQ1,') at offset %llu", path,
                       (unsigned long long)offset);
    memset(h, 0, sizeof *h);
    const char *tok;
    size_t len;
    uint64_t *numbers[] = {NULL, &h->seq, &h->header_bytes, &h->chips, &h->width, &h->height};
    for (int i = 0; i < 8; i++) {
        if (!next_field(&cur, end, &tok, &len))
            return err_set(e, UH_EDATA, "%s: frame header at offset %llu ends before its %s",
                           path, (unsigned long long)offset, names[i]);
        if (i >= 1 && i <= 5 && !parse_uint(tok, len, 10, numbers[i]))
            return field_error(path, offset, names[i], tok, len, "a number", e);
        if (i == 2) {
            if (h->header_bytes < 16 || h->header_bytes > MIB_MAX_HEADER)
                return err_set(e, UH_EDATA, "%s: frame header at offset %llu: header size %llu "
                               "is out of range 16..%d", path, (unsigned long long)offset,
                               (unsigned long long)h->header_bytes, MIB_MAX_HEADER);
            /* The rest of the fields lie within the header. */
            if (h->header_bytes < n)
                end = (const char *)buf + h->header_bytes;
        }
        if (i == 6) {
            if (len != 3)
                return field_error(path, offset, names[i], tok, len, "like U16 or R64", e);
            memcpy(h->dtype, tok, 3);
        }
        if (i == 7) {
            while (len && *tok == ' ')
                tok++, len--;
            if (!len || len >= sizeof h->layout)
                return field_error(path, offset, names[i], tok, len, "like 1x1 or 2x2G", e);
            memcpy(h->layout, tok, len);
        }
    }
    if (h->chips < 1 || h->chips > MIB_MAX_CHIPS)
        return err_set(e, UH_EDATA, "%s: frame header at offset %llu: number of chips %llu is "
                       "out of range 1..%d", path, (unsigned long long)offset,
                       (unsigned long long)h->chips, MIB_MAX_CHIPS);
    if (h->width < 1 || h->width > MIB_MAX_DIM || h->height < 1 || h->height > MIB_MAX_DIM)
        return err_set(e, UH_EDATA, "%s: frame header at offset %llu: frame size %llu x %llu "
                       "is out of range 1..%d", path, (unsigned long long)offset,
                       (unsigned long long)h->width, (unsigned long long)h->height, MIB_MAX_DIM);
    /* The counter depth is the third field after "MQ1A" (extended timestamp, shutter time in
     * ns, depth); older software writes no MQ1A part. */
    while (next_field(&cur, end, &tok, &len))
        if (len == 4 && !memcmp(tok, "MQ1A", 4)) {
            for (int k = 0; k < 3; k++)
                if (!next_field(&cur, end, &tok, &len))
                    return err_set(e, UH_EDATA, "%s: frame header at offset %llu ends inside "
                                   "its MQ1A part", path, (unsigned long long)offset);
            if (!parse_uint(tok, len, 10, &h->depth))
                return field_error(path, offset, "counter depth", tok, len, "a number", e);
            break;
        }
    return 0;
}

/* The storage of frames with header h, or UH_EDATA naming what is not supported. */
static int layout_of(const char *path, const mib_header *h, mib_layout *lay, err *e)
{
    memset(lay, 0, sizeof *lay);
    lay->sig_size = h->width * h->height; /* both <= 2^16 */
    if (!strcmp(h->dtype, "U08") || !strcmp(h->dtype, "U16") || !strcmp(h->dtype, "U32")) {
        lay->dtype = h->dtype[1] == '0' ? UDF_U8 : h->dtype[1] == '1' ? UDF_U16 : UDF_U32;
        lay->elem = udf_dtype_size(lay->dtype);
        lay->stored_bytes = lay->sig_size * lay->elem;
        return 0;
    }
    if (strcmp(h->dtype, "R64"))
        return err_set(e, UH_EDATA, "%s: pixel depth '%s' is not supported (U08, U16, U32 and "
                       "single-chip R64 are)", path, h->dtype);
    if (h->chips != 1 || strcmp(h->layout, "1x1"))
        return err_set(e, UH_EDATA, "%s: raw (R64) data of sensor layout %s with %llu chips is "
                       "not supported (only single-chip 1x1 raw data is)", path, h->layout,
                       (unsigned long long)h->chips);
    switch (h->depth) {
    case 1: lay->raw_slot = 1; lay->dtype = UDF_U8; break;
    case 6: lay->raw_slot = 8; lay->dtype = UDF_U8; break;
    case 12: lay->raw_slot = 16; lay->dtype = UDF_U16; break;
    case 0:
        return err_set(e, UH_EDATA, "%s: raw (R64) frame header has no counter depth (MQ1A "
                       "part)", path);
    default:
        return err_set(e, UH_EDATA, "%s: raw (R64) data of counter depth %llu is not supported "
                       "(1, 6 and 12 are)", path, (unsigned long long)h->depth);
    }
    uint64_t per_word = 64 / lay->raw_slot;
    if (lay->sig_size % per_word)
        return err_set(e, UH_EDATA, "%s: raw (R64) frames of %llu x %llu pixels do not fill "
                       "whole 64-bit words of %llu pixels", path, (unsigned long long)h->width,
                       (unsigned long long)h->height, (unsigned long long)per_word);
    lay->elem = udf_dtype_size(lay->dtype);
    lay->stored_bytes = lay->sig_size / per_word * 8;
    return 0;
}

/* Whether two frame headers describe frames stored alike; names the first difference. */
static bool header_same(const mib_header *a, const mib_header *b, char *what, size_t cap)
{
    if (a->header_bytes != b->header_bytes)
        snprintf(what, cap, "header size %llu vs %llu", (unsigned long long)b->header_bytes,
                 (unsigned long long)a->header_bytes);
    else if (a->chips != b->chips)
        snprintf(what, cap, "number of chips %llu vs %llu", (unsigned long long)b->chips,
                 (unsigned long long)a->chips);
    else if (a->width != b->width || a->height != b->height)
        snprintf(what, cap, "frame size %llu x %llu vs %llu x %llu",
                 (unsigned long long)b->width, (unsigned long long)b->height,
                 (unsigned long long)a->width, (unsigned long long)a->height);
    else if (strcmp(a->dtype, b->dtype))
        snprintf(what, cap, "pixel depth %s vs %s", b->dtype, a->dtype);
    else if (strcmp(a->layout, b->layout))
        snprintf(what, cap, "sensor layout %s vs %s", b->layout, a->layout);
    else if (a->depth != b->depth)
        snprintf(what, cap, "counter depth %llu vs %llu", (unsigned long long)b->depth,
                 (unsigned long long)a->depth);
    else
        return true;
    return false;
}

/* Read and parse the frame header at `offset` of the open file fd. */
static int header_read(int fd, const char *path, uint64_t offset, mib_header *h, err *e)
{
    unsigned char *b = malloc(MIB_MAX_HEADER);
    if (!b)
        return err_set(e, UH_ENOMEM, "out of memory opening %s", path);
    size_t n = 0;
    int rc = file_read_at(fd, path, b, MIB_MAX_HEADER, offset, &n, e);
    if (!rc)
        rc = header_parse(path, offset, b, n, h, e);
    if (!rc && n < h->header_bytes)
        rc = err_set(e, UH_EDATA, "%s: file too short: the frame header at offset %llu has %llu "
                     "bytes, the file ends after %zu", path, (unsigned long long)offset,
                     (unsigned long long)h->header_bytes, n);
    free(b);
    return rc;
}

/* ---- one .mib file ---------------------------------------------------------------------- */

/* Open one .mib file: parse its first and last frame headers (O(1): the frames between are
 * assumed alike), check that they match `want` (the acquisition's first file) when given, and
 * map its frames. */
static int file_open(mib_file *f, const char *path, mib_header *first, const mib_header *want,
                     err *e)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_sys(e, UH_EDATA, errno, "%s: cannot open", path);
    struct stat st;
    mib_header last;
    mib_layout lay;
    char what[160];
    int rc = 0;
    uint64_t stride = 0, frames = 0, size = 0;
    if (fstat(fd, &st))
        rc = err_sys(e, UH_EDATA, errno, "%s", path);
    else if (!S_ISREG(st.st_mode))
        rc = err_set(e, UH_EDATA, "%s: not a regular file", path);
    if (!rc)
        rc = header_read(fd, path, 0, first, e);
    if (!rc)
        rc = layout_of(path, first, &lay, e);
    if (!rc && want && !header_same(want, first, what, sizeof what))
        rc = err_set(e, UH_EDATA, "%s: frames differ from the acquisition's first file: %s",
                     path, what);
    if (!rc) {
        size = (uint64_t)st.st_size;
        stride = first->header_bytes + lay.stored_bytes;
        frames = size / stride;
        if (size % stride)
            rc = err_set(e, UH_EDATA, "%s: file too short or extra bytes: %llu bytes are not a "
                         "whole number of frames of %llu bytes (header %llu + data %llu): %llu "
                         "frames and %llu bytes more (truncated last frame?)", path,
                         (unsigned long long)size, (unsigned long long)stride,
                         (unsigned long long)first->header_bytes,
                         (unsigned long long)lay.stored_bytes, (unsigned long long)frames,
                         (unsigned long long)(size % stride));
    }
    if (!rc && frames > 1) {
        uint64_t at = (frames - 1) * stride;
        rc = header_read(fd, path, at, &last, e);
        if (!rc && !header_same(first, &last, what, sizeof what))
            rc = err_set(e, UH_EDATA, "%s: the last frame's header (offset %llu) differs from "
                         "the first: %s", path, (unsigned long long)at, what);
    }
    close(fd);
    if (rc)
        return rc;
    f->map.num_frames = frames;
    f->map.frame_bytes = lay.stored_bytes;
    f->path = strdup(path);
    if (!f->path)
        return err_set(e, UH_ENOMEM, "out of memory opening %s", path);
    rc = ds_map_frames(&f->map, path, first->header_bytes, stride, e);
    if (rc) {
        free(f->path);
        f->path = NULL;
    }
    return rc;
}

/* ---- acquisition header (.hdr) ---------------------------------------------------------- */

typedef struct hdr_info {
    bool present;
    uint64_t frames, per_trigger, scan_x, scan_y; /* 0: not given */
} hdr_info;

/* Parse the .hdr at path: "HDR," then "Key:\tValue" lines up to "End". Only the frame counts
 * and the scan size are used. A missing file is not an error when `optional`. */
static int hdr_read(const char *path, bool optional, hdr_info *hi, err *e)
{
    memset(hi, 0, sizeof *hi);
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        if (optional && errno == ENOENT)
            return 0;
        return err_sys(e, UH_EDATA, errno, "%s: cannot open", path);
    }
    char *text = malloc(MIB_MAX_HDR_FILE + 1);
    size_t n = text ? fread(text, 1, MIB_MAX_HDR_FILE, fp) : 0;
    bool too_long = text && n == MIB_MAX_HDR_FILE && fgetc(fp) != EOF;
    fclose(fp);
    if (!text)
        return err_set(e, UH_ENOMEM, "out of memory reading %s", path);
    int rc = 0;
    if (too_long)
        rc = err_set(e, UH_EDATA, "%s: acquisition header larger than %d bytes", path,
                     MIB_MAX_HDR_FILE);
    else if (n < 4 || memcmp(text, "HDR,", 4))
        rc = err_set(e, UH_EDATA, "%s: not a Merlin acquisition header (no 'HDR,' at its "
                     "start)", path);
    text[n] = '\0';
    static const struct {
        const char *key;
        size_t offset;
    } keys[] = {
        {"Frames in Acquisition (Number)", offsetof(hdr_info, frames)},
        {"Frames per Trigger (Number)", offsetof(hdr_info, per_trigger)},
        {"ScanX", offsetof(hdr_info, scan_x)},
        {"ScanY", offsetof(hdr_info, scan_y)},
    };
    for (char *line = text; !rc && line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        char *colon = strchr(line, ':');
        if (!strncmp(line, "End", 3) && (line[3] == '\0' || isspace((unsigned char)line[3])))
            break;
        for (size_t k = 0; colon && k < sizeof keys / sizeof keys[0]; k++) {
            if ((size_t)(colon - line) != strlen(keys[k].key) ||
                strncmp(line, keys[k].key, strlen(keys[k].key)))
                continue;
            char *v = colon + 1, *ve = v + strlen(v);
            while (*v && isspace((unsigned char)*v))
                v++;
            while (ve > v && isspace((unsigned char)ve[-1]))
                ve--;
            uint64_t *dst = (uint64_t *)((char *)hi + keys[k].offset);
            if (!parse_uint(v, (size_t)(ve - v), 10, dst) || !*dst)
                rc = err_set(e, UH_EDATA, "%s: %s '%.*s' is not a positive number", path,
                             keys[k].key, (int)(ve - v > 40 ? 40 : ve - v), v);
        }
        line = nl ? nl + 1 : NULL;
    }
    free(text);
    hi->present = !rc;
    return rc;
}

/* The nav shape the acquisition header gives for `frames` frames: ScanY x ScanX when both are
 * given and match, else (frames / per trigger) x per trigger when that divides evenly into
 * more than one row, else 1-D. */
static void hdr_nav(const hdr_info *hi, uint64_t frames, ds *d)
{
    d->nav_ndim = 1;
    d->nav_shape[0] = frames;
    if (hi->scan_x && hi->scan_y && hi->scan_x <= frames / hi->scan_y &&
        hi->scan_x * hi->scan_y == frames) {
        d->nav_ndim = 2;
        d->nav_shape[0] = hi->scan_y;
        d->nav_shape[1] = hi->scan_x;
    } else if (hi->per_trigger > 1 && hi->per_trigger < frames && frames % hi->per_trigger == 0) {
        d->nav_ndim = 2;
        d->nav_shape[0] = frames / hi->per_trigger;
        d->nav_shape[1] = hi->per_trigger;
    }
}

/* ---- the acquisition's files ------------------------------------------------------------ */

typedef struct name_entry {
    char *path;
    int rank;        /* 0: "<stem>.mib", 1: numbered */
    uint64_t number; /* the number of "<stem>[_]<N>.mib" */
} name_entry;

static int name_compare(const void *pa, const void *pb)
{
    const name_entry *a = pa, *b = pb;
    if (a->rank != b->rank)
        return a->rank - b->rank;
    if (a->number != b->number)
        return a->number < b->number ? -1 : 1;
    return strcmp(a->path, b->path);
}

/* Whether `name` is "<stem>.mib", "<stem><N>.mib" or "<stem>_<N>.mib"; sets rank and number. */
static bool name_matches(const char *name, const char *stem, int *rank, uint64_t *number)
{
    size_t sl = strlen(stem), nl = strlen(name);
    if (nl < sl + 4 || strncmp(name, stem, sl) || strcasecmp(name + nl - 4, ".mib"))
        return false;
    const char *mid = name + sl;
    size_t ml = nl - sl - 4;
    *rank = ml > 0;
    *number = 0;
    if (!ml)
        return true;
    if (*mid == '_')
        mid++, ml--;
    return ml > 0 && parse_uint(mid, ml, 10, number) && isdigit((unsigned char)*mid);
}

/* The .mib files of the acquisition header hdr_path ("<dir>/<stem>.hdr"), in order. */
static int list_files(const char *hdr_path, name_entry **out, size_t *count, err *e)
{
    const char *slash = strrchr(hdr_path, '/');
    const char *base = slash ? slash + 1 : hdr_path;
    /* dir is both what to list and the prefix of the paths found ("" for the cwd). */
    char *dir = slash ? strndup(hdr_path, (size_t)(base - hdr_path)) : strdup("");
    char *stem = strndup(base, strlen(base) - 4);
    DIR *dp = dir ? opendir(*dir ? dir : ".") : NULL;
    int rc = 0;
    name_entry *list = NULL;
    size_t n = 0, cap = 0;
    if (!dir || !stem)
        rc = err_set(e, UH_ENOMEM, "out of memory opening %s", hdr_path);
    else if (!dp)
        rc = err_sys(e, UH_EDATA, errno, "%s: cannot list its directory", hdr_path);
    for (struct dirent *de; !rc && (de = readdir(dp));) {
        int rank;
        uint64_t number;
        if (!name_matches(de->d_name, stem, &rank, &number))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            name_entry *grown = realloc(list, cap * sizeof *list);
            if (!grown) {
                rc = err_set(e, UH_ENOMEM, "out of memory opening %s", hdr_path);
                break;
            }
            list = grown;
        }
        size_t need = strlen(dir) + strlen(de->d_name) + 1;
        char *p = malloc(need);
        if (!p) {
            rc = err_set(e, UH_ENOMEM, "out of memory opening %s", hdr_path);
            break;
        }
        snprintf(p, need, "%s%s", dir, de->d_name);
        list[n++] = (name_entry){p, rank, number};
    }
    if (dp)
        closedir(dp);
    if (!rc && !n)
        rc = err_set(e, UH_EDATA, "%s: no data files (%s.mib, %s_1.mib, ...) next to the "
                     "acquisition header", hdr_path, stem, stem);
    free(dir);
    free(stem);
    if (rc) {
        for (size_t i = 0; i < n; i++)
            free(list[i].path);
        free(list);
        return rc;
    }
    qsort(list, n, sizeof *list, name_compare);
    *out = list;
    *count = n;
    return 0;
}

/* ---- the reader ------------------------------------------------------------------------- */

static void state_free(mib_state *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_files; i++) {
        ds_map_close(&s->files[i].map);
        free(s->files[i].path);
    }
    free(s->files);
    free(s);
}

/* Lay the user's --nav-shape, --sig-shape and --dtype over what the files say. */
static int apply_options(ds *d, const ds_options *o, const hdr_info *hi, err *e)
{
    if (o->dtype != UDF_DTYPE_NONE && o->dtype != d->dtype)
        return err_set(e, UH_EUSAGE, "%s: --dtype %s does not match the file's %s", o->path,
                       dtype_name(o->dtype), dtype_name(d->dtype));
    int rc = ds_apply_user_sig(d, o, e);
    if (rc || o->nav_ndim) {
        /* The files' own scan, for the message if the user's does not fit. */
        d->nav_ndim = 1;
        d->nav_shape[0] = d->num_frames;
        return rc ? rc : ds_apply_user_nav(d, o, e);
    }
    if (hi->present && hi->frames && hi->frames != d->num_frames)
        return err_set(e, UH_EDATA, "%s: the acquisition header says %llu frames, the .mib "
                       "file(s) hold %llu (missing file or aborted acquisition? --nav-shape "
                       "reads what is there)", o->path, (unsigned long long)hi->frames,
                       (unsigned long long)d->num_frames);
    hdr_nav(hi, d->num_frames, d);
    return 0;
}

static int mib_open(ds *d, const ds_options *o, err *e)
{
    size_t len = strlen(o->path);
    bool is_hdr = len > 4 && !strcasecmp(o->path + len - 4, ".hdr");
    hdr_info hi;
    name_entry *names = NULL;
    size_t n_names = 1;
    int rc;
    if (is_hdr) {
        rc = hdr_read(o->path, false, &hi, e);
        if (!rc)
            rc = list_files(o->path, &names, &n_names, e);
    } else {
        /* A single file; "X.hdr" next to "X.mib" only contributes the scan shape. */
        char *side = strdup(o->path);
        if (!side)
            return err_set(e, UH_ENOMEM, "out of memory opening %s", o->path);
        rc = 0;
        memset(&hi, 0, sizeof hi);
        if (len > 4 && !strcasecmp(side + len - 4, ".mib")) {
            memcpy(side + len - 4, ".hdr", 4);
            FILE *fp = fopen(side, "rb");
            char magic[4] = {0};
            bool is_acq = fp && fread(magic, 1, 4, fp) == 4 && !memcmp(magic, "HDR,", 4);
            if (fp)
                fclose(fp);
            if (is_acq)
                rc = hdr_read(side, true, &hi, e);
        }
        free(side);
    }
    if (rc)
        return rc;
    mib_state *s = calloc(1, sizeof *s);
    if (s)
        s->files = calloc(n_names, sizeof *s->files);
    if (!s || !s->files)
        rc = err_set(e, UH_ENOMEM, "out of memory opening %s", o->path);
    mib_header first = {0}, h;
    uint64_t frames = 0, bytes = 0;
    for (size_t i = 0; !rc && i < n_names; i++) {
        const char *path = names ? names[i].path : o->path;
        mib_file *f = &s->files[i];
        f->map.io_request = o->io;
        rc = file_open(f, path, i ? &h : &first, i ? &first : NULL, e);
        if (rc)
            break;
        s->n_files++;
        /* Sequence numbers run on across the files of an acquisition: a gap means a file is
         * missing or out of order. */
        if (i && h.seq != first.seq + frames)
            rc = err_set(e, UH_EDATA, "%s: its first frame is number %llu, but the files "
                         "before it end with frame %llu (missing or misnamed file?)", path,
                         (unsigned long long)h.seq,
                         (unsigned long long)(first.seq + frames - 1));
        f->first = frames;
        if (!rc && (!size_add(frames, f->map.num_frames, &frames) ||
                    !size_add(bytes, f->map.file_bytes, &bytes)))
            rc = err_set(e, UH_EDATA, "%s: too many frames", o->path);
    }
    if (names)
        for (size_t i = 0; i < n_names; i++)
            free(names[i].path);
    free(names);
    if (!rc) {
        rc = layout_of(o->path, &first, &s->lay, e);
        d->state = s;
        d->dtype = s->lay.dtype;
        d->elem_size = s->lay.elem;
        /* Decoded pixels are big-endian in the file; raw ones are unpacked in host order. */
        d->big_endian = s->lay.raw_slot ? host_is_big_endian() : true;
        d->sig_ndim = 2;
        d->sig_shape[0] = first.height;
        d->sig_shape[1] = first.width;
        d->sig_size = s->lay.sig_size;
        d->frame_bytes = s->lay.sig_size * s->lay.elem;
        d->num_frames = frames;
        d->file_bytes = bytes;
        d->io = s->lay.raw_slot ? "mmap, R64 unpacked" : "mmap";
    }
    if (!rc)
        rc = apply_options(d, o, &hi, e);
    if (rc) {
        state_free(s);
        d->state = NULL;
    }
    return rc;
}

/* Unpack `count` raw frames. Each 64-bit word is stored big-endian; its pixel k (in frame
 * order) sits in bits [k * slot, (k + 1) * slot) counted from the least significant bit. */
static void raw_unpack(const mib_layout *lay, const unsigned char *restrict in,
                       unsigned char *restrict out)
{
    uint64_t words = lay->stored_bytes / 8;
    unsigned slot = lay->raw_slot, per_word = 64 / slot;
    uint64_t mask = (UINT64_C(1) << slot) - 1;
    uint16_t *out16 = (uint16_t *)(void *)out;
    for (uint64_t w = 0; w < words; w++) {
        uint64_t v = 0;
        for (int b = 0; b < 8; b++)
            v = v << 8 | in[w * 8 + (uint64_t)b];
        for (unsigned k = 0; k < per_word; k++) {
            uint64_t px = v >> (k * slot) & mask;
            if (slot == 16)
                out16[w * per_word + k] = (uint16_t)px;
            else
                out[w * per_word + k] = (unsigned char)px;
        }
    }
}

/* The file holding dataset frame `frame`. */
static mib_file *file_of(const mib_state *s, uint64_t frame)
{
    size_t lo = 0, hi = s->n_files;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->files[mid].first <= frame)
            lo = mid;
        else
            hi = mid;
    }
    return &s->files[lo];
}

static int mib_read(ds *d, uint64_t first, uint64_t count, void *scratch,
                    const unsigned char **data, size_t *stride, err *e)
{
    const mib_state *s = d->state;
    mib_file *f = file_of(s, first);
    uint64_t local = first - f->first;
    if (!s->lay.raw_slot && local + count <= f->map.num_frames)
        return ds_map_read(&f->map, local, count, NULL, data, stride, e);
    /* Raw frames, or a run that crosses into the next file: assemble in scratch. */
    unsigned char *out = scratch;
    for (uint64_t i = 0; i < count; i++) {
        uint64_t frame = first + i;
        if (frame - f->first >= f->map.num_frames)
            f = file_of(s, frame);
        const unsigned char *src;
        size_t src_stride;
        int rc = ds_map_read(&f->map, frame - f->first, 1, NULL, &src, &src_stride, e);
        if (rc)
            return rc;
        unsigned char *dst = out + i * d->frame_bytes;
        if (s->lay.raw_slot)
            raw_unpack(&s->lay, src, dst);
        else
            memcpy(dst, src, d->frame_bytes);
    }
    *data = out;
    *stride = d->frame_bytes;
    return 0;
}

static void mib_release(ds *d, uint64_t first, uint64_t count)
{
    const mib_state *s = d->state;
    uint64_t end = first + count;
    while (first < end) {
        mib_file *f = file_of(s, first);
        uint64_t local = first - f->first, n = f->map.num_frames - local;
        if (n > end - first)
            n = end - first;
        ds_map_release(&f->map, local, n);
        first += n;
    }
}

static void mib_close(ds *d)
{
    state_free(d->state);
    d->state = NULL;
}

static bool mib_probe(const unsigned char *head, size_t n)
{
    return n >= 4 && !memcmp(head, "MQ1,", 4);
}

const ds_reader ds_mib_reader = {
    .name = "mib",
    .extensions = ".mib|.hdr",
    .probe = mib_probe,
    .open = mib_open,
    .read = mib_read,
    .release = mib_release,
    .close = mib_close,
};
