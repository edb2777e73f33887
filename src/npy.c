/* NumPy .npy files: formatting and parsing the preamble (magic, version, Python-dict header),
 * writing whole arrays to a file descriptor, and reading small arrays back into memory. The
 * parser treats every file as hostile: all reads are bounded by the buffer, never by a NUL. */
#include "npy.h"

#include "dtype.h"
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const unsigned char npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

/* Data starts at a multiple of this (NumPy's ARRAY_ALIGN), so that it can be mapped aligned. */
#define NPY_ALIGN 64
/* NumPy's own headers stay below 1 KiB; anything past this is garbage or an attack, and refusing
 * it bounds what a version 2.0 file (uint32 length) can make us allocate before any check. */
#define NPY_HEADER_MAX (1u << 20)
/* npy_read_file reads this much first, hoping it holds the whole preamble. */
#define NPY_FIRST_READ (64u * 1024)
/* One read()/write() asks for at most this much: Linux caps a call near 2 GiB anyway, and the
 * count then always fits ssize_t. */
#define NPY_IO_CHUNK ((size_t)1 << 30)

/* Bytes of an array: product(shape) * elem, false on uint64 overflow. Like NumPy, a zero dimension
 * does not excuse the others from the check, so (0, 2^63, 2^63) is refused, not "empty". */
static bool shape_bytes(uint32_t ndim, const uint64_t *shape, size_t elem, uint64_t *bytes)
{
    uint64_t n = elem;
    bool zero = false;
    for (uint32_t i = 0; i < ndim; i++) {
        if (!shape[i])
            zero = true;
        else if (__builtin_mul_overflow(n, shape[i], &n))
            return false;
    }
    *bytes = zero ? 0 : n;
    return true;
}

/* --- Writing --------------------------------------------------------------------------------- */

int npy_header_format(udf_dtype dtype, uint32_t ndim, const uint64_t *shape, char *out, size_t cap,
                      size_t *len, err *e)
{
    const char *descr = dtype_descr(dtype, host_is_big_endian());
    if (!descr)
        return err_set(e, UH_EINTERNAL, "npy: no .npy dtype for udf_dtype %d", (int)dtype);
    if (ndim > NPY_MAX_DIMS || (ndim && !shape))
        return err_set(e, UH_EINTERNAL, "npy: bad shape (%" PRIu32 " dimensions)", ndim);

    /* The dict as NumPy writes it: keys sorted, Python reprs, a comma after every item. At most
     * ~60 + 32 * 22 bytes, so the buffer cannot truncate. */
    char dict[1024];
    size_t n = (size_t)snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                                descr);
    for (uint32_t i = 0; i < ndim; i++)
        n += (size_t)snprintf(dict + n, sizeof dict - n, "%s%" PRIu64, i ? ", " : "", shape[i]);
    n += (size_t)snprintf(dict + n, sizeof dict - n, "%s), }", ndim == 1 ? "," : "");

    /* Pad with spaces, end with '\n'. Version 2.0 only if the length overflows uint16, which
     * NPY_MAX_DIMS rules out today; the rule stays here so that raising it stays correct. */
    unsigned version = 1;
    size_t lead = 10; /* magic, version, uint16 header length */
    size_t total = (lead + n + 1 + NPY_ALIGN - 1) / NPY_ALIGN * NPY_ALIGN;
    if (total - lead > UINT16_MAX) {
        version = 2;
        lead = 12;
        total = (lead + n + 1 + NPY_ALIGN - 1) / NPY_ALIGN * NPY_ALIGN;
    }
    if (total > cap)
        return err_set(e, UH_EINTERNAL, "npy: preamble needs %zu bytes, buffer holds %zu", total,
                       cap);

    size_t hlen = total - lead;
    memcpy(out, npy_magic, sizeof npy_magic);
    out[6] = (char)version;
    out[7] = 0;
    for (size_t i = 0; i < lead - 8; i++)
        out[8 + i] = (char)(hlen >> (8 * i) & 0xff);
    memcpy(out + lead, dict, n);
    memset(out + lead + n, ' ', total - lead - n - 1);
    out[total - 1] = '\n';
    *len = total;
    return 0;
}

/* Write n bytes, resuming after short writes, EINTR, and EAGAIN (a non-blocking stdout pipe).
 * off is where they start in the file, for the message. */
static int write_all(int fd, const char *path, const unsigned char *p, size_t n, uint64_t off,
                     err *e)
{
    while (n) {
        ssize_t w = write(fd, p, n < NPY_IO_CHUNK ? n : NPY_IO_CHUNK);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                struct pollfd pfd = {.fd = fd, .events = POLLOUT};
                if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
                    return err_sys(e, UH_EIO, errno, "%s: write failed at offset %" PRIu64, path,
                                   off);
                continue;
            }
            return err_sys(e, UH_EIO, errno, "%s: write failed at offset %" PRIu64, path, off);
        }
        if (w == 0) /* no error and no progress: retrying would spin forever */
            return err_set(e, UH_EIO, "%s: write failed at offset %" PRIu64 ": no bytes written",
                           path, off);
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

int npy_write_fd(int fd, const char *path, udf_dtype dtype, uint32_t ndim, const uint64_t *shape,
                 const void *data, err *e)
{
    char pre[2048];
    size_t pre_len;
    int rc = npy_header_format(dtype, ndim, shape, pre, sizeof pre, &pre_len, e);
    if (rc)
        return rc;
    uint64_t bytes;
    if (!shape_bytes(ndim, shape, udf_dtype_size(dtype), &bytes) || (size_t)bytes != bytes)
        return err_set(e, UH_EINTERNAL, "%s: array size overflows", path);
    if (bytes && !data)
        return err_set(e, UH_EINTERNAL, "%s: no data to write", path);
    rc = write_all(fd, path, (const unsigned char *)pre, pre_len, 0, e);
    if (!rc)
        rc = write_all(fd, path, data, (size_t)bytes, pre_len, e);
    return rc;
}

/* --- Parsing --------------------------------------------------------------------------------- */

/* Position in the header dict. `buf` is the file's first byte, so that p - buf is a file offset. */
typedef struct cursor {
    const unsigned char *buf, *p, *end;
    const char *path;
    err *e;
} cursor;

static int malformed(cursor *c, const char *what)
{
    return err_set(c->e, UH_EDATA, "%s: malformed header at byte %zu: %s", c->path,
                   (size_t)(c->p - c->buf), what);
}

/* Copy s[0..n) into out for a message: one line, printable ASCII, at most 40 characters. */
static const char *printable(const unsigned char *s, size_t n, char out[48])
{
    size_t k = 0;
    for (; k < n && k < 40; k++)
        out[k] = s[k] >= 0x20 && s[k] < 0x7f ? (char)s[k] : '?';
    if (k < n)
        out[k++] = '~';
    out[k] = 0;
    return out;
}

static void skip_space(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r' ||
                             *c->p == '\f' || *c->p == '\v'))
        c->p++;
}

/* A quoted string without escapes ('...' or "..."); *s, *n get its contents. No valid key or
 * descr needs a backslash or a control character, so both are refused rather than decoded. */
static int parse_string(cursor *c, const unsigned char **s, size_t *n)
{
    if (c->p == c->end || (*c->p != '\'' && *c->p != '"'))
        return malformed(c, "expected a quoted string");
    unsigned char quote = *c->p++;
    const unsigned char *start = c->p;
    while (c->p < c->end && *c->p != quote) {
        if (*c->p == '\\' || *c->p < 0x20 || *c->p == 0x7f)
            return malformed(c, "escape or control character in string");
        c->p++;
    }
    if (c->p == c->end)
        return malformed(c, "unterminated string");
    *s = start;
    *n = (size_t)(c->p - start);
    c->p++;
    return 0;
}

static bool word_is(const unsigned char *s, size_t n, const char *word)
{
    return n == strlen(word) && !memcmp(s, word, n);
}

static int parse_bool(cursor *c, bool *out)
{
    const unsigned char *s = c->p;
    while (c->p < c->end && ((*c->p >= 'A' && *c->p <= 'Z') || (*c->p >= 'a' && *c->p <= 'z')))
        c->p++;
    size_t n = (size_t)(c->p - s);
    if (word_is(s, n, "True") || word_is(s, n, "False")) {
        *out = *s == 'T';
        return 0;
    }
    c->p = s;
    return malformed(c, "'fortran_order' must be True or False");
}

static int parse_descr(cursor *c, npy_info *info)
{
    if (c->p < c->end && *c->p == '[')
        return err_set(c->e, UH_EDATA, "%s: structured dtypes (descr is a list) are not supported",
                       c->path);
    const unsigned char *s;
    size_t n;
    if (parse_string(c, &s, &n))
        return c->e ? c->e->code : UH_EDATA;
    char text[16], shown[48];
    bool big = false, explicit_order = false;
    if (n >= sizeof text)
        return err_set(c->e, UH_EDATA, "%s: unsupported dtype '%s'", c->path, printable(s, n, shown));
    memcpy(text, s, n);
    text[n] = 0;
    if (dtype_parse(text, &info->dtype, &big, &explicit_order))
        return err_set(c->e, UH_EDATA, "%s: unsupported dtype '%s'", c->path, printable(s, n, shown));
    /* Without '<', '>' or '=' (e.g. '|u1', 'u2') NumPy means the host's order. */
    info->big_endian = explicit_order ? big : host_is_big_endian();
    return 0;
}

/* A Python tuple of non-negative integers: (), (3,), (2, 3) or (2, 3,). "(3)" is an int in Python,
 * not a tuple, so NumPy refuses it and so do we. A trailing 'L' (Python 2 longs, written by old
 * NumPy) is accepted as NumPy itself does for 1.0 and 2.0 files. */
static int parse_shape(cursor *c, npy_info *info)
{
    if (c->p == c->end || *c->p != '(')
        return malformed(c, "'shape' must be a tuple");
    c->p++;
    skip_space(c);
    info->ndim = 0;
    while (c->p < c->end && *c->p != ')') {
        if (*c->p < '0' || *c->p > '9')
            return malformed(c, "expected a non-negative integer in 'shape'");
        uint64_t v = 0;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, *c->p - '0', &v))
                return malformed(c, "dimension in 'shape' does not fit 64 bits");
            c->p++;
        }
        if (c->p < c->end && *c->p == 'L')
            c->p++;
        if (info->ndim == NPY_MAX_DIMS)
            return err_set(c->e, UH_EDATA, "%s: shape has more than %d dimensions", c->path,
                           NPY_MAX_DIMS);
        info->shape[info->ndim++] = v;
        skip_space(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            skip_space(c);
        } else if (c->p < c->end && *c->p == ')' && info->ndim == 1) {
            return malformed(c, "'shape' of one dimension needs a trailing comma, as in (3,)");
        } else if (c->p < c->end && *c->p != ')') {
            return malformed(c, "expected ',' or ')' in 'shape'");
        }
    }
    if (c->p == c->end)
        return malformed(c, "unterminated 'shape'");
    c->p++;
    return 0;
}

/* The dict literal: exactly the keys descr, fortran_order and shape, in any order, each once. */
static int parse_dict(cursor *c, npy_info *info)
{
    bool have_descr = false, have_fortran = false, have_shape = false;
    skip_space(c);
    if (c->p == c->end || *c->p != '{')
        return malformed(c, "expected '{'");
    c->p++;
    for (;;) {
        skip_space(c);
        if (c->p < c->end && *c->p == '}')
            break;
        const unsigned char *key;
        size_t n;
        char shown[48];
        if (parse_string(c, &key, &n))
            return c->e ? c->e->code : UH_EDATA;
        skip_space(c);
        if (c->p == c->end || *c->p != ':')
            return malformed(c, "expected ':'");
        c->p++;
        skip_space(c);
        bool *seen = word_is(key, n, "descr")           ? &have_descr
                     : word_is(key, n, "fortran_order") ? &have_fortran
                     : word_is(key, n, "shape")         ? &have_shape
                                                        : NULL;
        if (!seen)
            return err_set(c->e, UH_EDATA, "%s: unexpected key '%s' in header", c->path,
                           printable(key, n, shown));
        if (*seen)
            return err_set(c->e, UH_EDATA, "%s: key '%s' given twice in header", c->path,
                           printable(key, n, shown));
        *seen = true;
        int rc = seen == &have_descr     ? parse_descr(c, info)
                 : seen == &have_fortran ? parse_bool(c, &info->fortran_order)
                                         : parse_shape(c, info);
        if (rc)
            return rc;
        skip_space(c);
        if (c->p < c->end && *c->p == ',')
            c->p++;
        else if (c->p == c->end || *c->p != '}')
            return malformed(c, "expected ',' or '}'");
    }
    c->p++;
    skip_space(c);
    if (c->p != c->end)
        return malformed(c, "unexpected text after the dict");
    const char *missing = !have_descr ? "descr" : !have_fortran ? "fortran_order"
                          : !have_shape ? "shape" : NULL;
    if (missing)
        return err_set(c->e, UH_EDATA, "%s: header has no '%s'", c->path, missing);
    return 0;
}

/* Check magic and version and read the header length; *start is the offset of the dict. Needs
 * only the first 12 bytes, so npy_read_file can learn how much more to read. */
static int preamble_parse(const unsigned char *buf, size_t len, const char *path, unsigned *version,
                          size_t *start, size_t *hlen, err *e)
{
    size_t have = len < sizeof npy_magic ? len : sizeof npy_magic;
    if (memcmp(buf, npy_magic, have))
        return err_set(e, UH_EDATA, "%s: not a NumPy file (bad magic)", path);
    if (len < 8)
        return err_set(e, UH_EDATA, "%s: truncated preamble (%zu bytes)", path, len);
    if (buf[6] < 1 || buf[6] > 3 || buf[7] != 0)
        return err_set(e, UH_EDATA, "%s: unsupported .npy format version %u.%u", path, buf[6], buf[7]);
    size_t lead = buf[6] == 1 ? 10 : 12;
    if (len < lead)
        return err_set(e, UH_EDATA, "%s: truncated preamble (%zu bytes)", path, len);
    uint32_t n = (uint32_t)buf[8] | (uint32_t)buf[9] << 8;
    if (lead == 12)
        n |= (uint32_t)buf[10] << 16 | (uint32_t)buf[11] << 24;
    if (n > NPY_HEADER_MAX)
        return err_set(e, UH_EDATA, "%s: header length %" PRIu32 " is absurd (limit %u)", path, n,
                       NPY_HEADER_MAX);
    *version = buf[6];
    *start = lead;
    *hlen = n;
    return 0;
}

int npy_header_parse(const unsigned char *buf, size_t len, const char *path, npy_info *info, err *e)
{
    unsigned version;
    size_t start, hlen;
    int rc = preamble_parse(buf, len, path, &version, &start, &hlen, e);
    if (rc)
        return rc;
    if (hlen > len - start)
        return err_set(e, UH_EDATA, "%s: truncated header: preamble says %zu bytes, %zu present",
                       path, hlen, len - start);
    npy_info tmp;
    memset(&tmp, 0, sizeof tmp);
    cursor c = {.buf = buf, .p = buf + start, .end = buf + start + hlen, .path = path, .e = e};
    rc = parse_dict(&c, &tmp);
    if (rc)
        return rc;
    if (!shape_bytes(tmp.ndim, tmp.shape, udf_dtype_size(tmp.dtype), &tmp.data_bytes))
        return err_set(e, UH_EDATA, "%s: shape is too large (bytes overflow 64 bits)", path);
    tmp.data_offset = start + hlen;
    tmp.version = version;
    *info = tmp;
    return 0;
}

/* --- Reading --------------------------------------------------------------------------------- */

/* Read the preamble into a malloc'ed *buf of *len bytes: the first 64 KiB, and then the rest of
 * the header if the preamble says it is longer and the file holds it (else the parse reports). */
static int preamble_read(int fd, const char *path, uint64_t size, unsigned char **buf, size_t *len,
                         err *e)
{
    size_t want = size < NPY_FIRST_READ ? (size_t)size : NPY_FIRST_READ, got;
    unsigned char *b = malloc(want ? want : 1);
    if (!b)
        return err_set(e, UH_ENOMEM, "%s: out of memory for the header", path);
    int rc = file_read_at(fd, path, b, want, 0, &got, e);
    unsigned version;
    size_t start, hlen;
    if (!rc && !preamble_parse(b, got, path, &version, &start, &hlen, NULL) && start + hlen > got &&
        start + hlen <= size) {
        unsigned char *bigger = realloc(b, start + hlen);
        if (!bigger)
            rc = err_set(e, UH_ENOMEM, "%s: out of memory for the header", path);
        else {
            b = bigger;
            size_t more;
            rc = file_read_at(fd, path, b + got, start + hlen - got, got, &more, e);
            got += more;
        }
    }
    if (rc) {
        free(b);
        return rc;
    }
    *buf = b;
    *len = got;
    return 0;
}

/* Reverse the bytes of each of count elements of elem bytes, in place. */
static void swap_bytes(unsigned char *p, uint64_t count, size_t elem)
{
    for (uint64_t i = 0; i < count; i++, p += elem) {
        if (elem == 2) {
            uint16_t v;
            memcpy(&v, p, 2);
            v = __builtin_bswap16(v);
            memcpy(p, &v, 2);
        } else if (elem == 4) {
            uint32_t v;
            memcpy(&v, p, 4);
            v = __builtin_bswap32(v);
            memcpy(p, &v, 4);
        } else if (elem == 8) {
            uint64_t v;
            memcpy(&v, p, 8);
            v = __builtin_bswap64(v);
            memcpy(p, &v, 8);
        }
    }
}

/* The elements of a Fortran-order array (first index fastest) rearranged into C order. Walks
 * the source in order and keeps the C offset of the current index up to date. */
static unsigned char *to_c_order(const unsigned char *src, const npy_info *inf, size_t elem)
{
    unsigned char *dst = malloc((size_t)inf->data_bytes);
    if (!dst)
        return NULL;
    uint64_t cstride[NPY_MAX_DIMS], idx[NPY_MAX_DIMS] = {0};
    cstride[inf->ndim - 1] = 1;
    for (uint32_t k = inf->ndim - 1; k-- > 0;)
        cstride[k] = cstride[k + 1] * inf->shape[k + 1];
    uint64_t n = inf->data_bytes / elem, off = 0;
    for (uint64_t i = 0; i < n; i++) {
        memcpy(dst + off * elem, src + i * elem, elem);
        for (uint32_t k = 0; k < inf->ndim; k++) {
            off += cstride[k];
            if (++idx[k] < inf->shape[k])
                break;
            off -= cstride[k] * inf->shape[k];
            idx[k] = 0;
        }
    }
    return dst;
}

static int read_fd(int fd, const char *path, uint64_t max_bytes, npy_info *info, void **data,
                   err *e)
{
    struct stat st;
    if (fstat(fd, &st))
        return err_sys(e, UH_EDATA, errno, "%s: cannot stat", path);
    if (!S_ISREG(st.st_mode))
        return err_set(e, UH_EDATA, "%s: not a regular file", path);
    uint64_t size = (uint64_t)st.st_size;

    unsigned char *head = NULL;
    size_t head_len = 0;
    npy_info inf;
    int rc = preamble_read(fd, path, size, &head, &head_len, e);
    if (rc)
        return rc;
    rc = npy_header_parse(head, head_len, path, &inf, e);
    free(head);
    if (rc)
        return rc;

    if (inf.data_bytes > max_bytes)
        return err_set(e, UH_EDATA, "%s: %" PRIu64 " bytes of data, more than the limit of %" PRIu64,
                       path, inf.data_bytes, max_bytes);
    uint64_t avail = size > inf.data_offset ? size - inf.data_offset : 0;
    if (avail < inf.data_bytes)
        return err_set(e, UH_EDATA,
                       "%s: file too short: header says %" PRIu64 " bytes of data, file has %" PRIu64,
                       path, inf.data_bytes, avail);
    if ((size_t)inf.data_bytes != inf.data_bytes)
        return err_set(e, UH_ENOMEM, "%s: %" PRIu64 " bytes of data do not fit in memory", path,
                       inf.data_bytes);

    unsigned char *buf = malloc(inf.data_bytes ? (size_t)inf.data_bytes : 1);
    if (!buf)
        return err_set(e, UH_ENOMEM, "%s: out of memory for %" PRIu64 " bytes of data", path,
                       inf.data_bytes);
    size_t got;
    rc = file_read_at(fd, path, buf, (size_t)inf.data_bytes, inf.data_offset, &got, e);
    if (!rc && got < inf.data_bytes) /* the file shrank after fstat */
        rc = err_set(e, UH_EDATA,
                     "%s: file too short: header says %" PRIu64 " bytes of data, file has %zu",
                     path, inf.data_bytes, got);
    if (rc) {
        free(buf);
        return rc;
    }
    size_t elem = udf_dtype_size(inf.dtype);
    if (elem > 1 && inf.big_endian != host_is_big_endian())
        swap_bytes(buf, inf.data_bytes / elem, elem);
    if (inf.fortran_order && inf.ndim > 1 && inf.data_bytes) {
        unsigned char *c = to_c_order(buf, &inf, elem);
        free(buf);
        if (!c)
            return err_set(e, UH_ENOMEM, "%s: out of memory for %" PRIu64 " bytes of data", path,
                           inf.data_bytes);
        buf = c;
    }
    *info = inf;
    *data = buf;
    return 0;
}

int npy_read_file(const char *path, uint64_t max_bytes, npy_info *info, void **data, err *e)
{
    *data = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_sys(e, UH_EDATA, errno, "%s: cannot open", path);
    int rc = read_fd(fd, path, max_bytes, info, data, e);
    close(fd); /* read-only: a close error cannot lose data */
    return rc;
}
