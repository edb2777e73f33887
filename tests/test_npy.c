/* NumPy .npy files: the preamble writer and parser, writing and reading whole files, hostile
 * headers, and cross-checks against NumPy itself when $UDFHOST_PYTHON names a Python with numpy. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dtype.h"
#include "npy.h"

static const udf_dtype all_dtypes[] = {UDF_U8,  UDF_U16, UDF_U32, UDF_U64, UDF_I8,  UDF_I16,
                                       UDF_I32, UDF_I64, UDF_F32, UDF_F64, UDF_BOOL};

#define N_DTYPES (sizeof all_dtypes / sizeof all_dtypes[0])

/* A header dict as NumPy writes it for a C-order array. */
#define DICT(descr, shape) "{'descr': '" descr "', 'fortran_order': False, 'shape': " shape ", }"

/* --- helpers --------------------------------------------------------------------------------- */

/* Build a preamble by hand: magic, version major.minor, header length (2 bytes for 1.x, 4 else),
 * then dict padded with spaces and a '\n' so that the total is a multiple of 64. Returns the
 * length. */
static size_t make_preamble(unsigned char *out, size_t cap, unsigned major, unsigned minor,
                            const char *dict)
{
    size_t lead = major == 1 ? 10 : 12;
    size_t n = strlen(dict);
    size_t total = (lead + n + 1 + 63) / 64 * 64;
    cr_assert_leq(total, cap, "test buffer too small");
    size_t hlen = total - lead;
    memcpy(out, "\x93NUMPY", 6);
    out[6] = (unsigned char)major;
    out[7] = (unsigned char)minor;
    for (size_t i = 0; i < lead - 8; i++)
        out[8 + i] = (unsigned char)(hlen >> (8 * i));
    memcpy(out + lead, dict, n);
    memset(out + lead + n, ' ', total - lead - n - 1);
    out[total - 1] = '\n';
    return total;
}

static char tmpdir[64];

static void tmpdir_make(void)
{
    strcpy(tmpdir, "/tmp/udfhost-test-npy-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir), "mkdtemp");
}

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
            unlink(p);
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

static void write_bytes(const char *path, const void *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    cr_assert_geq(fd, 0, "open %s", path);
    cr_assert_eq(write(fd, p, n), (ssize_t)n);
    cr_assert_eq(close(fd), 0);
}

static void write_npy(const char *path, udf_dtype dtype, uint32_t ndim, const uint64_t *shape,
                      const void *data)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    cr_assert_geq(fd, 0, "open %s", path);
    err e = {0};
    cr_assert_eq(npy_write_fd(fd, path, dtype, ndim, shape, data, &e), 0, "%s", e.msg);
    cr_assert_eq(close(fd), 0);
}

/* Element i of a test array of dtype d as raw bytes in native order: distinct, non-trivial
 * values that use the high bytes (so that a byte swap shows) and the sign where there is one. */
static void test_element(udf_dtype d, uint64_t i, void *out)
{
    switch (d) {
    case UDF_U8: { uint8_t v = (uint8_t)(i * 37 + 5); memcpy(out, &v, 1); break; }
    case UDF_I8: { int8_t v = (int8_t)((int)(i * 29 % 256) - 128); memcpy(out, &v, 1); break; }
    case UDF_BOOL: { uint8_t v = (uint8_t)(i % 3 == 0); memcpy(out, &v, 1); break; }
    case UDF_U16: { uint16_t v = (uint16_t)(i * 4099 + 258); memcpy(out, &v, 2); break; }
    case UDF_I16: { int16_t v = (int16_t)(uint16_t)(i * 4099 + 45536); memcpy(out, &v, 2); break; }
    case UDF_U32: {
        uint32_t v = (uint32_t)(i * 16777259u + 0x01020304u);
        memcpy(out, &v, 4);
        break;
    }
    case UDF_I32: { int32_t v = (int32_t)(i * 1000003) - 2000000000; memcpy(out, &v, 4); break; }
    case UDF_U64: {
        uint64_t v = i * 0x0100000000000007ull + 0x0102030405060708ull;
        memcpy(out, &v, 8);
        break;
    }
    case UDF_I64: {
        int64_t v = (int64_t)(i * 0x0100000000000007ull - 0x4000000000000000ull);
        memcpy(out, &v, 8);
        break;
    }
    case UDF_F32: { float v = (float)i * 0.25f - 3.0f; memcpy(out, &v, 4); break; }
    case UDF_F64: { double v = (double)i * -1.5 + 1e10; memcpy(out, &v, 8); break; }
    default: cr_assert_fail("no test element for dtype %d", (int)d);
    }
}

static unsigned char *test_array(udf_dtype d, uint64_t count)
{
    size_t elem = udf_dtype_size(d);
    unsigned char *p = malloc(count * elem + 1);
    cr_assert_not_null(p);
    for (uint64_t i = 0; i < count; i++)
        test_element(d, i, p + i * elem);
    return p;
}

static void hex(const unsigned char *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", p[i]);
    out[2 * n] = 0;
}

/* --- npy_header_format ----------------------------------------------------------------------- */

Test(npy_format, exact_text_like_numpy)
{
    if (host_is_big_endian())
        cr_skip_test("expected text is for a little-endian host");
    char out[2048];
    size_t len = 0;
    err e = {0};
    uint64_t shape2[] = {3, 4};
    cr_assert_eq(npy_header_format(UDF_U16, 2, shape2, out, sizeof out, &len, &e), 0, "%s", e.msg);
    const char dict2[] = "{'descr': '<u2', 'fortran_order': False, 'shape': (3, 4), }";
    cr_assert_eq(len, 128); /* 10 + 59 + '\n' rounded up, as np.save writes it */
    cr_assert_eq(memcmp(out, "\x93NUMPY\x01\x00", 8), 0);
    cr_assert_eq((unsigned char)out[8] | (unsigned char)out[9] << 8, 118);
    cr_assert_eq(memcmp(out + 10, dict2, strlen(dict2)), 0, "%.*s", (int)len - 10, out + 10);
    for (size_t i = 10 + strlen(dict2); i < len - 1; i++)
        cr_assert_eq(out[i], ' ', "padding at %zu", i);
    cr_assert_eq(out[len - 1], '\n');

    uint64_t shape1[] = {7};
    cr_assert_eq(npy_header_format(UDF_F64, 1, shape1, out, sizeof out, &len, &e), 0);
    const char dict1[] = "{'descr': '<f8', 'fortran_order': False, 'shape': (7,), }";
    cr_assert_eq(memcmp(out + 10, dict1, strlen(dict1)), 0, "%.*s", (int)len - 10, out + 10);

    cr_assert_eq(npy_header_format(UDF_BOOL, 0, NULL, out, sizeof out, &len, &e), 0);
    const char dict0[] = "{'descr': '|b1', 'fortran_order': False, 'shape': (), }";
    cr_assert_eq(memcmp(out + 10, dict0, strlen(dict0)), 0, "%.*s", (int)len - 10, out + 10);
}

/* Format, check the framing, and parse back. */
static void format_and_parse(udf_dtype d, uint32_t ndim, const uint64_t *shape)
{
    char out[2048];
    size_t len = 0;
    err e = {0};
    cr_assert_eq(npy_header_format(d, ndim, shape, out, sizeof out, &len, &e), 0, "%s", e.msg);
    cr_assert_eq(len % 64, 0, "preamble length %zu", len);
    cr_assert_gt(len, 10);
    cr_assert_eq(out[len - 1], '\n');
    cr_assert_eq(memcmp(out, "\x93NUMPY", 6), 0);
    cr_assert_eq(out[6], 1, "version 1.0 suffices");
    cr_assert_eq(out[7], 0);
    size_t hlen = (unsigned char)out[8] | (size_t)(unsigned char)out[9] << 8;
    cr_assert_eq(hlen + 10, len);
    cr_assert_null(memchr(out + 10, '\n', len - 11), "only the last byte is a newline");

    npy_info info;
    memset(&info, 0xa5, sizeof info);
    cr_assert_eq(npy_header_parse((const unsigned char *)out, len, "fmt.npy", &info, &e), 0, "%s",
                 e.msg);
    cr_assert_eq(info.dtype, d);
    cr_assert_eq(info.big_endian, host_is_big_endian());
    cr_assert_not(info.fortran_order);
    cr_assert_eq(info.ndim, ndim);
    uint64_t count = 1;
    for (uint32_t i = 0; i < ndim; i++) {
        cr_assert_eq(info.shape[i], shape[i], "dim %u", i);
        count *= shape[i];
    }
    cr_assert_eq(info.data_offset, len);
    cr_assert_eq(info.data_bytes, count * udf_dtype_size(d));
    cr_assert_eq(info.version, 1);
}

Test(npy_format, round_trips_through_parse)
{
    uint64_t s1[] = {5}, s2[] = {24, 32}, s3[] = {0, 3}, s4[] = {2, 3, 4, 5},
             s5[] = {UINT64_C(1) << 40, 3};
    for (size_t i = 0; i < N_DTYPES; i++) {
        format_and_parse(all_dtypes[i], 0, NULL);
        format_and_parse(all_dtypes[i], 1, s1);
        format_and_parse(all_dtypes[i], 2, s2);
        format_and_parse(all_dtypes[i], 2, s3);
        format_and_parse(all_dtypes[i], 4, s4);
        format_and_parse(all_dtypes[i], 2, s5);
    }
}

Test(npy_format, max_dims)
{
    uint64_t ones[NPY_MAX_DIMS];
    for (int i = 0; i < NPY_MAX_DIMS; i++)
        ones[i] = i % 2 ? 1 : 2;
    format_and_parse(UDF_U8, NPY_MAX_DIMS, ones);

    /* The longest header possible: NPY_MAX_DIMS dimensions of 20 digits. It still fits version
     * 1.0 (the 2.0 branch cannot be reached with NPY_MAX_DIMS = 32), and the parser refuses the
     * byte count it implies rather than wrapping. */
    uint64_t huge[NPY_MAX_DIMS];
    for (int i = 0; i < NPY_MAX_DIMS; i++)
        huge[i] = UINT64_MAX;
    char out[2048];
    size_t len = 0;
    err e = {0};
    cr_assert_eq(npy_header_format(UDF_F64, NPY_MAX_DIMS, huge, out, sizeof out, &len, &e), 0);
    cr_assert_eq(len % 64, 0);
    cr_assert_eq(out[6], 1);
    cr_assert_eq(out[len - 1], '\n');
    cr_assert_not_null(memmem(out, len, "18446744073709551615, 18446744073709551615), }", 46));
    npy_info info;
    cr_assert_eq(npy_header_parse((const unsigned char *)out, len, "huge.npy", &info, &e),
                 UH_EDATA);
    cr_assert_not_null(strstr(e.msg, "huge.npy"), "%s", e.msg);
}

Test(npy_format, refuses_bad_arguments)
{
    char out[2048];
    size_t len = 12345;
    err e = {0};
    uint64_t s[NPY_MAX_DIMS + 1] = {0};
    for (int i = 0; i <= NPY_MAX_DIMS; i++)
        s[i] = 1;
    cr_assert_eq(npy_header_format(UDF_U8, NPY_MAX_DIMS + 1, s, out, sizeof out, &len, &e),
                 UH_EINTERNAL);
    cr_assert_eq(e.code, UH_EINTERNAL);
    cr_assert_eq(npy_header_format(UDF_U8, 2, NULL, out, sizeof out, &len, &e), UH_EINTERNAL);
    cr_assert_eq(npy_header_format(UDF_DTYPE_NONE, 1, s, out, sizeof out, &len, &e), UH_EINTERNAL);
    cr_assert_eq(npy_header_format(UDF_DTYPE_NATIVE, 1, s, out, sizeof out, &len, &e),
                 UH_EINTERNAL);
    cr_assert_eq(len, 12345, "no length on failure");

    /* The capacity must hold the whole preamble: exactly enough works, one less does not. */
    cr_assert_eq(npy_header_format(UDF_U16, 2, s, out, sizeof out, &len, &e), 0);
    size_t need = len;
    memset(out, 'x', sizeof out);
    cr_assert_eq(npy_header_format(UDF_U16, 2, s, out, need - 1, &len, &e), UH_EINTERNAL);
    cr_assert_eq(out[0], 'x', "nothing written when the buffer is too small");
    cr_assert_eq(npy_header_format(UDF_U16, 2, s, out, need, &len, &e), 0);
    cr_assert_eq(len, need);
    cr_assert_eq(out[need], 'x', "nothing written past the capacity");
}

/* --- npy_header_parse: good headers ---------------------------------------------------------- */

Test(npy_parse, accepts_numpy_variants)
{
    unsigned char b[512];
    err e = {0};
    npy_info info;
    const bool host_big = host_is_big_endian();

    /* Keys in any order, double quotes, spaces, no trailing comma, a 1-tuple and a trailing comma
     * after the last dimension. */
    size_t n = make_preamble(b, sizeof b, 1, 0,
                             "{ \"shape\" : ( 2 , 3 , ) ,\"descr\":\">i4\",'fortran_order':False}");
    cr_assert_eq(npy_header_parse(b, n, "v.npy", &info, &e), 0, "%s", e.msg);
    cr_assert_eq(info.dtype, UDF_I32);
    cr_assert(info.big_endian);
    cr_assert_eq(info.ndim, 2);
    cr_assert_eq(info.shape[0], 2);
    cr_assert_eq(info.shape[1], 3);
    cr_assert_eq(info.data_bytes, 24);
    cr_assert_eq(info.data_offset, n);

    /* A byte-order-free descr means the host's order; 'L' suffixes (Python 2) are accepted. */
    n = make_preamble(b, sizeof b, 1, 0, DICT("u2", "(4L, 5L)"));
    cr_assert_eq(npy_header_parse(b, n, "v.npy", &info, &e), 0, "%s", e.msg);
    cr_assert_eq(info.dtype, UDF_U16);
    cr_assert_eq(info.big_endian, host_big);
    cr_assert_eq(info.data_bytes, 40);

    /* Shape () is a scalar: one element. */
    n = make_preamble(b, sizeof b, 1, 0, DICT("<f8", "()"));
    cr_assert_eq(npy_header_parse(b, n, "v.npy", &info, &e), 0, "%s", e.msg);
    cr_assert_eq(info.ndim, 0);
    cr_assert_eq(info.data_bytes, 8);
    cr_assert_not(info.big_endian);

    /* A zero dimension makes an empty array. */
    n = make_preamble(b, sizeof b, 1, 0, DICT("<u8", "(0, 7)"));
    cr_assert_eq(npy_header_parse(b, n, "v.npy", &info, &e), 0, "%s", e.msg);
    cr_assert_eq(info.data_bytes, 0);

    /* '|b1' and '?' are both bool. */
    n = make_preamble(b, sizeof b, 1, 0, DICT("|b1", "(3,)"));
    cr_assert_eq(npy_header_parse(b, n, "v.npy", &info, &e), 0, "%s", e.msg);
    cr_assert_eq(info.dtype, UDF_BOOL);
    n = make_preamble(b, sizeof b, 1, 0, DICT("?", "(3,)"));
    cr_assert_eq(npy_header_parse(b, n, "v.npy", &info, &e), 0, "%s", e.msg);
    cr_assert_eq(info.dtype, UDF_BOOL);

    /* Bytes after the header (the data) do not matter. */
    unsigned char big[4096];
    n = make_preamble(big, sizeof big, 1, 0, DICT("<u2", "(3,)"));
    memset(big + n, 0xff, sizeof big - n);
    cr_assert_eq(npy_header_parse(big, sizeof big, "v.npy", &info, &e), 0, "%s", e.msg);
    cr_assert_eq(info.data_offset, n);
}

Test(npy_parse, every_dtype_both_orders)
{
    for (size_t i = 0; i < N_DTYPES; i++) {
        for (int order = 0; order < 2; order++) {
            const char *descr = dtype_descr(all_dtypes[i], order == 1);
            char dict[128];
            snprintf(dict, sizeof dict, DICT("%s", "(6,)"), descr);
            unsigned char b[256];
            size_t n = make_preamble(b, sizeof b, 1, 0, dict);
            npy_info info;
            err e = {0};
            cr_assert_eq(npy_header_parse(b, n, "d.npy", &info, &e), 0, "%s: %s", descr, e.msg);
            cr_assert_eq(info.dtype, all_dtypes[i], "%s", descr);
            bool want_big = descr[0] == '>' || (descr[0] == '|' && host_is_big_endian());
            cr_assert_eq(info.big_endian, want_big, "%s", descr);
            cr_assert_eq(info.data_bytes, 6 * udf_dtype_size(all_dtypes[i]));
        }
    }
}

Test(npy_parse, versions_2_and_3)
{
    unsigned char b[256];
    npy_info info;
    err e = {0};
    const char *dict = DICT("<i2", "(2, 5)");
    for (unsigned v = 2; v <= 3; v++) {
        size_t n = make_preamble(b, sizeof b, v, 0, dict);
        cr_assert_eq(n % 64, 0);
        cr_assert_eq(npy_header_parse(b, n, "v23.npy", &info, &e), 0, "%u.0: %s", v, e.msg);
        cr_assert_eq(info.version, v);
        cr_assert_eq(info.dtype, UDF_I16);
        cr_assert_eq(info.ndim, 2);
        cr_assert_eq(info.shape[1], 5);
        cr_assert_eq(info.data_offset, n);
        cr_assert_eq(info.data_bytes, 20);
    }
    size_t n = make_preamble(b, sizeof b, 1, 0, dict);
    cr_assert_eq(npy_header_parse(b, n, "v1.npy", &info, &e), 0);
    cr_assert_eq(info.version, 1);
}

Test(npy_parse, fortran_order_true_is_parsed)
{
    unsigned char b[256];
    npy_info info;
    err e = {0};
    size_t n = make_preamble(b, sizeof b, 1, 0,
                             "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }");
    cr_assert_eq(npy_header_parse(b, n, "f.npy", &info, &e), 0, "%s", e.msg);
    cr_assert(info.fortran_order);
    cr_assert_eq(info.data_bytes, 24);
}

/* --- npy_header_parse: hostile headers ------------------------------------------------------- */

/* Parse b[0..n) as "hostile.npy": must fail with UH_EDATA and a message naming the file. */
static void expect_refused(const unsigned char *b, size_t n, const char *what)
{
    npy_info info;
    memset(&info, 0x5a, sizeof info);
    npy_info before = info;
    err e = {0};
    int rc = npy_header_parse(b, n, "dir/hostile.npy", &info, &e);
    cr_assert_eq(rc, UH_EDATA, "%s: rc %d, info.ndim %u", what, rc, info.ndim);
    cr_assert_eq(e.code, UH_EDATA, "%s", what);
    cr_assert_not_null(strstr(e.msg, "dir/hostile.npy"), "%s: message '%s' names the file", what,
                       e.msg);
    cr_assert_eq(memcmp(&info, &before, sizeof info), 0, "%s: info untouched on failure", what);
}

static void expect_dict_refused(unsigned major, const char *dict)
{
    unsigned char b[4096];
    size_t n = make_preamble(b, sizeof b, major, 0, dict);
    expect_refused(b, n, dict);
}

Test(npy_hostile, bad_magic)
{
    unsigned char b[256];
    size_t n = make_preamble(b, sizeof b, 1, 0, DICT("<u2", "(3,)"));
    b[5] = 'Z';
    expect_refused(b, n, "NUMPZ");
    b[5] = 'Y';
    b[0] = 0x92;
    expect_refused(b, n, "first byte");
    expect_refused((const unsigned char *)"PK\x03\x04", 4, "a zip file");
    expect_refused((const unsigned char *)"", 0, "empty");
}

Test(npy_hostile, truncated_preamble)
{
    unsigned char b[256];
    size_t n = make_preamble(b, sizeof b, 1, 0, DICT("<u2", "(3,)"));
    for (size_t cut = 0; cut < 10; cut++)
        expect_refused(b, cut, "v1 preamble cut short");
    expect_refused(b, n - 1, "v1 header one byte short");
    n = make_preamble(b, sizeof b, 2, 0, DICT("<u2", "(3,)"));
    for (size_t cut = 0; cut < 12; cut++)
        expect_refused(b, cut, "v2 preamble cut short");
}

Test(npy_hostile, header_length_past_end)
{
    unsigned char b[256];
    size_t n = make_preamble(b, sizeof b, 1, 0, DICT("<u2", "(3,)"));
    cr_assert_eq(n, 128);
    b[8] = 0xff;
    b[9] = 0xff; /* 65535 bytes of header in a 128-byte buffer */
    expect_refused(b, n, "v1 length 65535");
    b[8] = 119; /* one past the end */
    b[9] = 0;
    expect_refused(b, n, "v1 length 119 of 118");
    b[8] = 118;
    npy_info info;
    err e = {0};
    cr_assert_eq(npy_header_parse(b, n, "ok.npy", &info, &e), 0, "%s", e.msg);

    n = make_preamble(b, sizeof b, 2, 0, DICT("<u2", "(3,)"));
    b[8] = b[9] = b[10] = b[11] = 0xff; /* 4 GiB */
    expect_refused(b, n, "v2 length 2^32-1");
    b[8] = 0, b[9] = 0, b[10] = 0x20, b[11] = 0; /* 2 MiB, beyond the 1 MiB sanity limit */
    expect_refused(b, n, "v2 length 2 MiB");
}

Test(npy_hostile, unsupported_versions)
{
    unsigned char b[256];
    const char *dict = DICT("<u2", "(3,)");
    size_t n = make_preamble(b, sizeof b, 4, 0, dict);
    expect_refused(b, n, "version 4.0");
    n = make_preamble(b, sizeof b, 1, 0, dict);
    b[6] = 0;
    expect_refused(b, n, "version 0.0");
    b[6] = 1;
    b[7] = 1;
    expect_refused(b, n, "version 1.1");
    b[6] = 255;
    b[7] = 0;
    expect_refused(b, n, "version 255.0");
}

Test(npy_hostile, bad_descr)
{
    expect_dict_refused(1, DICT("<c8", "(3,)"));
    expect_dict_refused(1, DICT("<u3", "(3,)"));
    expect_dict_refused(1, DICT("", "(3,)"));
    expect_dict_refused(1, DICT("<<u2", "(3,)"));
    expect_dict_refused(1, DICT("O", "(3,)"));
    expect_dict_refused(1, DICT("<U10", "(3,)"));
    expect_dict_refused(1, DICT("<u2                                 ", "(3,)"));
    expect_dict_refused(1, "{'descr': [('a', '<u2')], 'fortran_order': False, 'shape': (3,), }");
    expect_dict_refused(1, "{'descr': <u2, 'fortran_order': False, 'shape': (3,), }");
    expect_dict_refused(1, "{'descr': '<u2\", 'fortran_order': False, 'shape': (3,), }");
    expect_dict_refused(1, DICT("<\\u2", "(3,)"));
    expect_dict_refused(1, DICT("<u2\n", "(3,)"));
}

Test(npy_hostile, bad_keys)
{
    expect_dict_refused(1, "{'descr': '<u2', 'fortran_order': False, }");
    expect_dict_refused(1, "{'descr': '<u2', 'shape': (3,), }");
    expect_dict_refused(1, "{'fortran_order': False, 'shape': (3,), }");
    expect_dict_refused(1, "{}");
    expect_dict_refused(1, "{'descr': '<u2', 'fortran_order': False, 'shape': (3,), 'x': 1, }");
    expect_dict_refused(1, "{'descr': '<u2', 'descr': '<u2', 'fortran_order': False, "
                           "'shape': (3,), }");
    expect_dict_refused(1, "{'Descr': '<u2', 'fortran_order': False, 'shape': (3,), }");
    expect_dict_refused(1, "{descr: '<u2', 'fortran_order': False, 'shape': (3,), }");
    expect_dict_refused(1, "{'descr' '<u2', 'fortran_order': False, 'shape': (3,), }");
    expect_dict_refused(1, "{'descr': '<u2',, 'fortran_order': False, 'shape': (3,), }");
    expect_dict_refused(1, "{'descr': '<u2' 'fortran_order': False, 'shape': (3,), }");
    expect_dict_refused(1, "{'descr': '<u2', 'fortran_order': false, 'shape': (3,), }");
    expect_dict_refused(1, "{'descr': '<u2', 'fortran_order': 0, 'shape': (3,), }");
    expect_dict_refused(1, "{'descr': '<u2', 'fortran_order': Trueish, 'shape': (3,), }");
}

Test(npy_hostile, bad_shapes)
{
    expect_dict_refused(1, DICT("<u2", "(-1, 3)"));
    expect_dict_refused(1, DICT("<u2", "(3, -1)"));
    expect_dict_refused(1, DICT("<u2", "(3)"));
    expect_dict_refused(1, "{'descr': '<u2', 'fortran_order': False, 'shape': [3], }");
    expect_dict_refused(1, "{'descr': '<u2', 'fortran_order': False, 'shape': 3, }");
    expect_dict_refused(1, DICT("<u2", "(3 4)"));
    expect_dict_refused(1, DICT("<u2", "(,)"));
    expect_dict_refused(1, DICT("<u2", "(3,,)"));
    expect_dict_refused(1, DICT("<u2", "(3.0,)"));
    expect_dict_refused(1, DICT("<u2", "(0x10,)"));
    expect_dict_refused(1, DICT("<u2", "(+3,)"));
    expect_dict_refused(1, "{'descr': '<u2', 'fortran_order': False, 'shape': (3,");
    /* Beyond 64 bits in one dimension, and a product that overflows. */
    expect_dict_refused(1, DICT("<u2", "(18446744073709551616,)"));
    expect_dict_refused(1, DICT("<u2", "(99999999999999999999,)"));
    expect_dict_refused(1, DICT("<u2", "(4294967296, 4294967296, 16)"));
    expect_dict_refused(1, DICT("|u1", "(4294967296, 4294967296)"));
    expect_dict_refused(1, DICT("<u8", "(2305843009213693952,)"));
    /* Like NumPy, a zero dimension does not excuse an overflowing product of the others. */
    expect_dict_refused(1, DICT("<u2", "(0, 9223372036854775808, 9223372036854775808)"));

    /* 33 dimensions is one too many. */
    char dict[512] = "{'descr': '|u1', 'fortran_order': False, 'shape': (";
    for (int i = 0; i <= NPY_MAX_DIMS; i++)
        strcat(dict, "1, ");
    strcat(dict, "), }");
    expect_dict_refused(1, dict);
}

Test(npy_hostile, overflow_limits_are_exact)
{
    /* Just below the overflow: 2^63 bytes as one '|u1' dimension is fine, 2^63 'u2's are not. */
    unsigned char b[256];
    npy_info info;
    err e = {0};
    size_t n = make_preamble(b, sizeof b, 1, 0, DICT("|u1", "(18446744073709551615,)"));
    cr_assert_eq(npy_header_parse(b, n, "max.npy", &info, &e), 0, "%s", e.msg);
    cr_assert_eq(info.data_bytes, UINT64_MAX);
    expect_dict_refused(1, DICT("<u2", "(9223372036854775808,)"));
}

Test(npy_hostile, unterminated_dict_and_strings)
{
    expect_dict_refused(1, "{'descr': '<u2', 'fortran_order': False, 'shape': (3,), ");
    expect_dict_refused(1, "{'descr': '<u2', 'fortran_order': False, 'shape': (3,)");
    expect_dict_refused(1, "{'descr': '<u2', 'fortran_order': False, 'shape': (3, ");
    expect_dict_refused(1, "{'descr': '<u2");
    expect_dict_refused(1, "{'descr");
    expect_dict_refused(1, "{");
    expect_dict_refused(1, "");
    expect_dict_refused(1, "'descr': '<u2', 'fortran_order': False, 'shape': (3,), }");
    expect_dict_refused(1, "{'descr': '<u2', 'fortran_order': False, 'shape': (3,), }}");
    expect_dict_refused(1, "{'descr': '<u2', 'fortran_order': False, 'shape': (3,), } x");
    expect_dict_refused(2, "{'descr': '<u2', 'fortran_order': False, 'shape': (3,), ");
    expect_dict_refused(3, "{'descr': '<u2', 'fortran_order': False, 'shape': (3,)");
}

Test(npy_hostile, dict_ends_at_the_header_length)
{
    /* A well-formed dict that lies beyond the declared header length is not read. */
    unsigned char b[256];
    size_t n = make_preamble(b, sizeof b, 1, 0, DICT("<u2", "(3,)"));
    b[8] = 20; /* header length 20: "{'descr': '<u2', 'fo" */
    b[9] = 0;
    expect_refused(b, n, "dict cut by the header length");
}

Test(npy_hostile, nul_bytes_are_not_terminators)
{
    unsigned char b[256];
    size_t n = make_preamble(b, sizeof b, 1, 0, DICT("<u2", "(3,)"));
    b[12] = 0; /* inside the key "descr" */
    expect_refused(b, n, "NUL in a key");
    n = make_preamble(b, sizeof b, 1, 0, DICT("<u2", "(3,)"));
    b[10] = 0; /* the '{' */
    expect_refused(b, n, "NUL for the brace");
}

/* --- npy_write_fd + npy_read_file ------------------------------------------------------------ */

TestSuite(npy_file, .init = tmpdir_make, .fini = tmpdir_remove);

static void write_and_read(udf_dtype d, uint32_t ndim, const uint64_t *shape)
{
    uint64_t count = 1;
    for (uint32_t i = 0; i < ndim; i++)
        count *= shape[i];
    size_t bytes = count * udf_dtype_size(d);
    unsigned char *data = test_array(d, count);
    char path[256];
    tmp_path(path, sizeof path, "rt.npy");
    write_npy(path, d, ndim, shape, data);

    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    npy_info info;
    void *back = NULL;
    err e = {0};
    cr_assert_eq(npy_read_file(path, UINT64_MAX, &info, &back, &e), 0, "%s", e.msg);
    cr_assert_not_null(back);
    cr_assert_eq(info.dtype, d);
    cr_assert_eq(info.ndim, ndim);
    for (uint32_t i = 0; i < ndim; i++)
        cr_assert_eq(info.shape[i], shape[i]);
    cr_assert_eq(info.data_bytes, bytes);
    cr_assert_eq(info.data_offset % 64, 0);
    cr_assert_eq((uint64_t)st.st_size, info.data_offset + bytes, "file holds preamble + data only");
    cr_assert_not(info.fortran_order);
    cr_assert_eq(info.version, 1);
    cr_assert_eq(memcmp(back, data, bytes), 0, "%s: data differs", dtype_name(d));
    free(back);
    free(data);
}

Test(npy_file, write_read_round_trip_every_dtype)
{
    uint64_t s1[] = {37}, s2[] = {3, 5}, s3[] = {2, 3, 4}, s0[] = {4, 0};
    for (size_t i = 0; i < N_DTYPES; i++) {
        write_and_read(all_dtypes[i], 0, NULL);
        write_and_read(all_dtypes[i], 1, s1);
        write_and_read(all_dtypes[i], 2, s2);
        write_and_read(all_dtypes[i], 3, s3);
        write_and_read(all_dtypes[i], 2, s0);
    }
}

Test(npy_file, round_trip_larger_than_first_read)
{
    /* More than the 64 KiB the reader takes first. */
    uint64_t s[] = {300, 257};
    write_and_read(UDF_F64, 2, s);
}

Test(npy_file, write_refuses_missing_data)
{
    char path[256];
    tmp_path(path, sizeof path, "nodata.npy");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    cr_assert_geq(fd, 0);
    uint64_t s[] = {3};
    err e = {0};
    cr_assert_eq(npy_write_fd(fd, path, UDF_U16, 1, s, NULL, &e), UH_EINTERNAL);
    uint64_t z[] = {0};
    cr_assert_eq(npy_write_fd(fd, path, UDF_U16, 1, z, NULL, &e), 0, "empty array needs no data");
    close(fd);
}

Test(npy_file, write_failure_is_eio_naming_the_path)
{
    char path[256];
    tmp_path(path, sizeof path, "ro.npy");
    write_bytes(path, "", 0);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0);
    uint64_t s[] = {3};
    uint16_t v[3] = {1, 2, 3};
    err e = {0};
    cr_assert_eq(npy_write_fd(fd, "out/result.npy", UDF_U16, 1, s, v, &e), UH_EIO);
    cr_assert_not_null(strstr(e.msg, "out/result.npy"), "%s", e.msg);
    close(fd);
}

static void write_raw(const char *name, unsigned major, const char *dict, const void *data,
                      size_t n, char *path, size_t cap)
{
    unsigned char b[8192];
    size_t len = make_preamble(b, sizeof b, major, 0, dict);
    cr_assert_leq(len + n, sizeof b);
    memcpy(b + len, data, n);
    tmp_path(path, cap, name);
    write_bytes(path, b, len + n);
}

Test(npy_file, big_endian_data_is_converted)
{
    char path[256];
    npy_info info;
    void *data;
    err e = {0};

    const unsigned char u2[] = {0x01, 0x02, 0xab, 0xcd, 0x00, 0xff};
    write_raw("be_u2.npy", 1, DICT(">u2", "(3,)"), u2, sizeof u2, path, sizeof path);
    cr_assert_eq(npy_read_file(path, 1 << 20, &info, &data, &e), 0, "%s", e.msg);
    cr_assert(info.big_endian);
    const uint16_t *p16 = data;
    cr_assert_eq(p16[0], 0x0102);
    cr_assert_eq(p16[1], 0xabcd);
    cr_assert_eq(p16[2], 0x00ff);
    free(data);

    const unsigned char le_u2[] = {0x01, 0x02, 0xab, 0xcd};
    write_raw("le_u2.npy", 1, DICT("<u2", "(2,)"), le_u2, sizeof le_u2, path, sizeof path);
    cr_assert_eq(npy_read_file(path, 1 << 20, &info, &data, &e), 0, "%s", e.msg);
    cr_assert_not(info.big_endian);
    p16 = data;
    cr_assert_eq(p16[0], 0x0201);
    cr_assert_eq(p16[1], 0xcdab);
    free(data);

    const unsigned char i4[] = {0xff, 0xff, 0xff, 0xfe, 0x7f, 0x00, 0x00, 0x01};
    write_raw("be_i4.npy", 2, DICT(">i4", "(2,)"), i4, sizeof i4, path, sizeof path);
    cr_assert_eq(npy_read_file(path, 1 << 20, &info, &data, &e), 0, "%s", e.msg);
    cr_assert_eq(info.version, 2);
    const int32_t *p32 = data;
    cr_assert_eq(p32[0], -2);
    cr_assert_eq(p32[1], 0x7f000001);
    free(data);

    /* 1.5 and -0.375 as big-endian IEEE doubles. */
    const unsigned char f8[] = {0x3f, 0xf8, 0, 0, 0, 0, 0, 0, 0xbf, 0xd8, 0, 0, 0, 0, 0, 0};
    write_raw("be_f8.npy", 3, DICT(">f8", "(1, 2)"), f8, sizeof f8, path, sizeof path);
    cr_assert_eq(npy_read_file(path, 1 << 20, &info, &data, &e), 0, "%s", e.msg);
    cr_assert_eq(info.version, 3);
    const double *pd = data;
    cr_assert_eq(pd[0], 1.5);
    cr_assert_eq(pd[1], -0.375);
    free(data);

    const unsigned char f4[] = {0xc0, 0x20, 0x00, 0x00}; /* -2.5f */
    write_raw("be_f4.npy", 1, DICT(">f4", "()"), f4, sizeof f4, path, sizeof path);
    cr_assert_eq(npy_read_file(path, 1 << 20, &info, &data, &e), 0, "%s", e.msg);
    cr_assert_eq(info.ndim, 0);
    cr_assert_eq(*(const float *)data, -2.5f);
    free(data);

    const unsigned char u8[] = {1, 2, 3, 4, 5, 6, 7, 8};
    write_raw("be_u8.npy", 1, DICT(">u8", "(1,)"), u8, sizeof u8, path, sizeof path);
    cr_assert_eq(npy_read_file(path, 1 << 20, &info, &data, &e), 0, "%s", e.msg);
    cr_assert_eq(*(const uint64_t *)data, 0x0102030405060708ull);
    free(data);

    /* One-byte types are never swapped, whatever the descr says. */
    const unsigned char b1[] = {0, 1, 1};
    write_raw("be_b1.npy", 1, DICT(">b1", "(3,)"), b1, sizeof b1, path, sizeof path);
    cr_assert_eq(npy_read_file(path, 1 << 20, &info, &data, &e), 0, "%s", e.msg);
    cr_assert_eq(memcmp(data, b1, 3), 0);
    free(data);
}

Test(npy_file, fortran_order_is_read_into_c_order)
{
    char path[256];
    /* A 2 x 3 array [[0, 1, 2], [3, 4, 5]] stored column by column. */
    float v[6] = {0, 3, 1, 4, 2, 5};
    write_raw("fortran.npy", 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", v,
              sizeof v, path, sizeof path);
    npy_info info;
    void *data = NULL;
    err e = {0};
    cr_assert_eq(npy_read_file(path, 1 << 20, &info, &data, &e), 0, "%s", e.msg);
    cr_assert(info.fortran_order);
    for (int i = 0; i < 6; i++)
        cr_assert_eq(((float *)data)[i], (float)i, "element %d", i);
    free(data);
}

Test(npy_file, short_file_is_refused)
{
    char path[256];
    uint16_t v[10] = {0};
    npy_info info;
    void *data = (void *)1;
    err e = {0};
    /* 19 of 20 data bytes. */
    write_raw("short.npy", 1, DICT("<u2", "(10,)"), v, sizeof v - 1, path, sizeof path);
    cr_assert_eq(npy_read_file(path, 1 << 20, &info, &data, &e), UH_EDATA);
    cr_assert_null(data);
    cr_assert_not_null(strstr(e.msg, path), "%s", e.msg);

    /* No data at all, and a header that claims more than the file has. */
    write_raw("nodata.npy", 1, DICT("<u2", "(10,)"), v, 0, path, sizeof path);
    cr_assert_eq(npy_read_file(path, 1 << 20, &info, &data, &e), UH_EDATA);
    cr_assert_not_null(strstr(e.msg, path), "%s", e.msg);

    unsigned char b[256];
    size_t n = make_preamble(b, sizeof b, 1, 0, DICT("<u2", "(10,)"));
    tmp_path(path, sizeof path, "cut_header.npy");
    write_bytes(path, b, n - 20);
    cr_assert_eq(npy_read_file(path, 1 << 20, &info, &data, &e), UH_EDATA);
    cr_assert_not_null(strstr(e.msg, path), "%s", e.msg);

    tmp_path(path, sizeof path, "empty.npy");
    write_bytes(path, "", 0);
    cr_assert_eq(npy_read_file(path, 1 << 20, &info, &data, &e), UH_EDATA);
    cr_assert_not_null(strstr(e.msg, path), "%s", e.msg);

    /* An overflowing shape in a file. */
    write_raw("overflow.npy", 1,
              DICT("<u2", "(4294967296, 4294967296, 16)"), v, sizeof v, path, sizeof path);
    cr_assert_eq(npy_read_file(path, UINT64_MAX, &info, &data, &e), UH_EDATA);
    cr_assert_not_null(strstr(e.msg, path), "%s", e.msg);

    /* Extra bytes after the data are tolerated. */
    write_raw("long.npy", 1, DICT("<u2", "(9,)"), v, sizeof v, path, sizeof path);
    cr_assert_eq(npy_read_file(path, 1 << 20, &info, &data, &e), 0, "%s", e.msg);
    cr_assert_eq(info.data_bytes, 18);
    free(data);
}

Test(npy_file, max_bytes_is_a_limit)
{
    char path[256];
    uint16_t v[10] = {0};
    write_raw("limit.npy", 1, DICT("<u2", "(10,)"), v, sizeof v, path, sizeof path);
    npy_info info;
    void *data;
    err e = {0};
    cr_assert_eq(npy_read_file(path, 19, &info, &data, &e), UH_EDATA);
    cr_assert_null(data);
    cr_assert_not_null(strstr(e.msg, path), "%s", e.msg);
    cr_assert_eq(npy_read_file(path, 20, &info, &data, &e), 0, "%s", e.msg);
    free(data);
}

Test(npy_file, missing_and_non_regular_files)
{
    char path[256];
    tmp_path(path, sizeof path, "does-not-exist.npy");
    npy_info info;
    void *data;
    err e = {0};
    cr_assert_eq(npy_read_file(path, 1 << 20, &info, &data, &e), UH_EDATA);
    cr_assert_null(data);
    cr_assert_not_null(strstr(e.msg, path), "%s", e.msg);
    cr_assert_eq(npy_read_file(tmpdir, 1 << 20, &info, &data, &e), UH_EDATA);
    cr_assert_not_null(strstr(e.msg, tmpdir), "%s", e.msg);
}

Test(npy_file, long_header_past_first_read)
{
    /* A version 2.0 header longer than the 64 KiB read first: padding NumPy would accept. */
    size_t hlen = 70 * 1024;
    size_t total = 12 + hlen;
    unsigned char *b = malloc(total + 6);
    cr_assert_not_null(b);
    memcpy(b, "\x93NUMPY\x02\x00", 8);
    for (int i = 0; i < 4; i++)
        b[8 + i] = (unsigned char)(hlen >> (8 * i));
    memset(b + 12, ' ', hlen);
    const char dict[] = "{'descr': '<u2', 'fortran_order': False, 'shape': (3,), }";
    memcpy(b + 12, dict, strlen(dict));
    b[total - 1] = '\n';
    const uint16_t v[3] = {7, 8, 9};
    memcpy(b + total, v, 6);
    char path[256];
    tmp_path(path, sizeof path, "longhdr.npy");
    write_bytes(path, b, total + 6);
    npy_info info;
    void *data;
    err e = {0};
    cr_assert_eq(npy_read_file(path, 1 << 20, &info, &data, &e), 0, "%s", e.msg);
    cr_assert_eq(info.data_offset, total);
    cr_assert_eq(memcmp(data, v, 6), 0);
    free(data);

    /* The same file cut inside the header. */
    write_bytes(path, b, 66 * 1024);
    cr_assert_eq(npy_read_file(path, 1 << 20, &info, &data, &e), UH_EDATA);
    cr_assert_not_null(strstr(e.msg, path), "%s", e.msg);
    free(b);
}

/* --- cross-checks against NumPy -------------------------------------------------------------- */

static const char *numpy_python(void)
{
    const char *py = getenv("UDFHOST_PYTHON");
    return py && *py ? py : NULL;
}

/* Run the python with the script and arguments; return its stdout (malloc'ed). */
static char *run_python(const char *py, const char *script, const char *args)
{
    char script_path[256];
    tmp_path(script_path, sizeof script_path, "check.py");
    write_bytes(script_path, script, strlen(script));
    size_t cmd_cap = strlen(py) + strlen(script_path) + strlen(args) + 16;
    char *cmd = malloc(cmd_cap);
    cr_assert_not_null(cmd);
    snprintf(cmd, cmd_cap, "'%s' '%s' %s", py, script_path, args);
    FILE *f = popen(cmd, "r");
    cr_assert_not_null(f, "popen %s", cmd);
    size_t cap = 1 << 16, n = 0;
    char *out = malloc(cap);
    cr_assert_not_null(out);
    size_t r;
    while ((r = fread(out + n, 1, cap - 1 - n, f)) > 0) {
        n += r;
        if (n == cap - 1) {
            cap *= 2;
            out = realloc(out, cap);
            cr_assert_not_null(out);
        }
    }
    out[n] = 0;
    int status = pclose(f);
    cr_assert_eq(status, 0, "%s exited with %d; output:\n%s", cmd, status, out);
    free(cmd);
    return out;
}

/* np.load each file and print one line: dtype.str, the shape, the native bytes as hex, and an
 * exact sum (integers as Python ints, floats as float.hex of an exactly representable sum). */
static const char load_script[] =
    "import sys\n"
    "import numpy as np\n"
    "for p in sys.argv[1:]:\n"
    "    a = np.load(p)\n"
    "    nat = a.astype(a.dtype.newbyteorder('='))\n"
    "    if a.dtype.kind == 'f':\n"
    "        s = float.hex(float(sum(float(x) for x in a.ravel().tolist())))\n"
    "    else:\n"
    "        s = str(sum(int(x) for x in a.ravel().tolist()))\n"
    "    print(a.dtype.str, ','.join(str(d) for d in a.shape), a.flags.c_contiguous,\n"
    "          nat.tobytes().hex() or '-', s)\n";

static void c_sum(udf_dtype d, const unsigned char *p, uint64_t count, char *out, size_t cap)
{
    size_t elem = udf_dtype_size(d);
    if (dtype_is_float(d)) {
        double s = 0;
        for (uint64_t i = 0; i < count; i++) {
            if (d == UDF_F32) {
                float v;
                memcpy(&v, p + i * elem, 4);
                s += v;
            } else {
                double v;
                memcpy(&v, p + i * elem, 8);
                s += v;
            }
        }
        /* Python's float.hex spelling. */
        if (s == 0)
            snprintf(out, cap, "%s", signbit(s) ? "-0x0.0p+0" : "0x0.0p+0");
        else
            snprintf(out, cap, "%a", s);
        return;
    }
    /* Integers: a 128-bit sum, printed in decimal. */
    __int128 s = 0;
    for (uint64_t i = 0; i < count; i++) {
        const unsigned char *q = p + i * elem;
        switch (d) {
        case UDF_U8: case UDF_BOOL: s += *q; break;
        case UDF_I8: s += (int8_t)*q; break;
        case UDF_U16: { uint16_t v; memcpy(&v, q, 2); s += v; break; }
        case UDF_I16: { int16_t v; memcpy(&v, q, 2); s += v; break; }
        case UDF_U32: { uint32_t v; memcpy(&v, q, 4); s += v; break; }
        case UDF_I32: { int32_t v; memcpy(&v, q, 4); s += v; break; }
        case UDF_U64: { uint64_t v; memcpy(&v, q, 8); s += v; break; }
        case UDF_I64: { int64_t v; memcpy(&v, q, 8); s += v; break; }
        default: cr_assert_fail("dtype %d", (int)d);
        }
    }
    char digits[64];
    int k = 0;
    bool neg = s < 0;
    unsigned __int128 u = neg ? (unsigned __int128)(-s) : (unsigned __int128)s;
    do {
        digits[k++] = (char)('0' + (int)(u % 10));
        u /= 10;
    } while (u);
    size_t j = 0;
    if (neg)
        out[j++] = '-';
    while (k && j + 1 < cap)
        out[j++] = digits[--k];
    out[j] = 0;
}

/* Python's float.hex gives "0x1.8000000000000p+0"; glibc's %a gives "0x1.8p+0". Compare values. */
static bool sums_equal(const char *a, const char *b)
{
    if (strchr(a, 'p') || strchr(b, 'p')) {
        double x = strtod(a, NULL), y = strtod(b, NULL);
        return x == y && signbit(x) == signbit(y);
    }
    return !strcmp(a, b);
}

/* The directory is made only after the skip check: a skipped test runs no .fini. */
Test(npy_numpy, numpy_loads_what_we_write, .fini = tmpdir_remove, .timeout = 60)
{
    const char *py = numpy_python();
    if (!py)
        cr_skip_test("UDFHOST_PYTHON is not set");
    tmpdir_make();

    struct {
        uint32_t ndim;
        uint64_t shape[4];
    } shapes[] = {{0, {0}}, {1, {13}}, {2, {3, 7}}, {3, {2, 3, 4}}, {2, {0, 5}}, {4, {1, 2, 1, 3}}};
    const size_t n_shapes = sizeof shapes / sizeof shapes[0];
    char args[8192] = "";
    char expect[N_DTYPES * 6][1024];
    size_t n_files = 0;
    for (size_t i = 0; i < N_DTYPES; i++) {
        for (size_t k = 0; k < n_shapes; k++) {
            udf_dtype d = all_dtypes[i];
            uint64_t count = 1;
            for (uint32_t j = 0; j < shapes[k].ndim; j++)
                count *= shapes[k].shape[j];
            unsigned char *data = test_array(d, count);
            char name[64], path[256];
            snprintf(name, sizeof name, "w_%s_%zu.npy", dtype_name(d), k);
            tmp_path(path, sizeof path, name);
            write_npy(path, d, shapes[k].ndim, shapes[k].shape, data);
            strcat(args, " '");
            strcat(args, path);
            strcat(args, "'");

            char shape_text[128] = "", hex_text[600], sum[64];
            for (uint32_t j = 0; j < shapes[k].ndim; j++) {
                char dim[24];
                snprintf(dim, sizeof dim, "%s%" PRIu64, j ? "," : "", shapes[k].shape[j]);
                strcat(shape_text, dim);
            }
            size_t bytes = count * udf_dtype_size(d);
            cr_assert_lt(2 * bytes, sizeof hex_text);
            hex(data, bytes, hex_text);
            c_sum(d, data, count, sum, sizeof sum);
            snprintf(expect[n_files++], sizeof expect[0], "%s %s True %s %s",
                     dtype_descr(d, host_is_big_endian()), shape_text, bytes ? hex_text : "-", sum);
            free(data);
        }
    }

    char *out = run_python(py, load_script, args);
    char *save = NULL, *line = strtok_r(out, "\n", &save);
    for (size_t f = 0; f < n_files; f++, line = strtok_r(NULL, "\n", &save)) {
        cr_assert_not_null(line, "NumPy printed %zu lines of %zu", f, n_files);
        /* Everything but the sum compares as text; the sum by value. */
        const char *got_sum = strrchr(line, ' '), *want_sum = strrchr(expect[f], ' ');
        cr_assert_not_null(got_sum, "%s", line);
        cr_assert_eq(got_sum - line, want_sum - expect[f], "file %zu:\n got  %s\n want %s", f, line,
                     expect[f]);
        cr_assert_eq(memcmp(line, expect[f], (size_t)(got_sum - line)), 0,
                     "file %zu:\n got  %s\n want %s", f, line, expect[f]);
        cr_assert(sums_equal(got_sum + 1, want_sum + 1), "file %zu sum: got %s, want %s", f,
                  got_sum + 1, want_sum + 1);
    }
    cr_assert_null(line, "extra output: %s", line);
    free(out);
}

/* NumPy writes files with np.save and np.lib.format.write_array; we read them. The arrays are
 * defined by formulas the C side recomputes. */
static const char save_script[] =
    "import sys, os\n"
    "import numpy as np\n"
    "d = sys.argv[1]\n"
    "i = np.arange(24)\n"
    "np.save(os.path.join(d, 'u2.npy'), (i * 2731 + 7).astype('<u2').reshape(4, 6))\n"
    "np.save(os.path.join(d, 'be_u2.npy'), (i * 2731 + 7).astype('>u2').reshape(4, 6))\n"
    "np.save(os.path.join(d, 'be_f8.npy'), (i * 0.5 - 3.25).astype('>f8').reshape(2, 3, 4))\n"
    "np.save(os.path.join(d, 'be_i8.npy'), (i * -123456789012 + 5).astype('>i8'))\n"
    "np.save(os.path.join(d, 'f4.npy'), (i / 8.0).astype('<f4').reshape(2, 12))\n"
    "np.save(os.path.join(d, 'i1.npy'), (i * 11 - 128).astype('i1').reshape(3, 8))\n"
    "np.save(os.path.join(d, 'b1.npy'), (i % 3 == 0).reshape(6, 4))\n"
    "np.save(os.path.join(d, 'scalar.npy'), np.array(-7, dtype='<i4'))\n"
    "np.save(os.path.join(d, 'empty.npy'), np.zeros((0, 3), dtype='<u4'))\n"
    "np.save(os.path.join(d, 'fortran.npy'), np.asfortranarray((i * 1.0).reshape(4, 6)))\n"
    "with open(os.path.join(d, 'v2.npy'), 'wb') as f:\n"
    "    np.lib.format.write_array(f, (i * 3 - 40).astype('>i4').reshape(6, 4), version=(2, 0))\n"
    "with open(os.path.join(d, 'v3.npy'), 'wb') as f:\n"
    "    np.lib.format.write_array(f, (i * 70000 + 1).astype('<u8'), version=(3, 0))\n"
    "print('ok')\n";

static void *read_numpy_file(const char *name, udf_dtype want, uint32_t ndim,
                             const uint64_t *shape, npy_info *info)
{
    char path[256];
    tmp_path(path, sizeof path, name);
    void *data = NULL;
    err e = {0};
    cr_assert_eq(npy_read_file(path, 1 << 20, info, &data, &e), 0, "%s: %s", name, e.msg);
    cr_assert_eq(info->dtype, want, "%s: dtype %s", name, dtype_name(info->dtype));
    cr_assert_eq(info->ndim, ndim, "%s", name);
    for (uint32_t i = 0; i < ndim; i++)
        cr_assert_eq(info->shape[i], shape[i], "%s dim %u", name, i);
    cr_assert_eq(info->data_offset % 64, 0, "%s: NumPy aligns data to 64", name);
    return data;
}

/* The directory is made only after the skip check: a skipped test runs no .fini. */
Test(npy_numpy, we_read_what_numpy_writes, .fini = tmpdir_remove, .timeout = 60)
{
    const char *py = numpy_python();
    if (!py)
        cr_skip_test("UDFHOST_PYTHON is not set");
    tmpdir_make();
    char arg[300];
    snprintf(arg, sizeof arg, "'%s'", tmpdir);
    char *out = run_python(py, save_script, arg);
    cr_assert_str_eq(out, "ok\n");
    free(out);

    npy_info info;
    uint64_t s46[] = {4, 6}, s234[] = {2, 3, 4}, s24[] = {24}, s2_12[] = {2, 12}, s38[] = {3, 8},
             s64[] = {6, 4}, s03[] = {0, 3};

    uint16_t *u2 = read_numpy_file("u2.npy", UDF_U16, 2, s46, &info);
    cr_assert_not(info.big_endian);
    cr_assert_eq(info.version, 1);
    for (int i = 0; i < 24; i++)
        cr_assert_eq(u2[i], (uint16_t)(i * 2731 + 7), "u2[%d] = %u", i, u2[i]);
    free(u2);

    u2 = read_numpy_file("be_u2.npy", UDF_U16, 2, s46, &info);
    cr_assert(info.big_endian);
    for (int i = 0; i < 24; i++)
        cr_assert_eq(u2[i], (uint16_t)(i * 2731 + 7), "be u2[%d] = %u", i, u2[i]);
    free(u2);

    double *f8 = read_numpy_file("be_f8.npy", UDF_F64, 3, s234, &info);
    cr_assert(info.big_endian);
    for (int i = 0; i < 24; i++)
        cr_assert_eq(f8[i], i * 0.5 - 3.25, "be f8[%d] = %g", i, f8[i]);
    free(f8);

    int64_t *i8 = read_numpy_file("be_i8.npy", UDF_I64, 1, s24, &info);
    for (int i = 0; i < 24; i++)
        cr_assert_eq(i8[i], i * -123456789012ll + 5, "be i8[%d]", i);
    free(i8);

    float *f4 = read_numpy_file("f4.npy", UDF_F32, 2, s2_12, &info);
    for (int i = 0; i < 24; i++)
        cr_assert_eq(f4[i], (float)(i / 8.0), "f4[%d] = %g", i, f4[i]);
    free(f4);

    int8_t *i1 = read_numpy_file("i1.npy", UDF_I8, 2, s38, &info);
    for (int i = 0; i < 24; i++)
        cr_assert_eq(i1[i], (int8_t)(i * 11 - 128), "i1[%d] = %d", i, i1[i]);
    free(i1);

    uint8_t *b1 = read_numpy_file("b1.npy", UDF_BOOL, 2, s64, &info);
    for (int i = 0; i < 24; i++)
        cr_assert_eq(b1[i], i % 3 == 0, "b1[%d] = %u", i, b1[i]);
    free(b1);

    int32_t *scalar = read_numpy_file("scalar.npy", UDF_I32, 0, NULL, &info);
    cr_assert_eq(info.data_bytes, 4);
    cr_assert_eq(*scalar, -7);
    free(scalar);

    void *empty = read_numpy_file("empty.npy", UDF_U32, 2, s03, &info);
    cr_assert_eq(info.data_bytes, 0);
    free(empty);

    int32_t *v2 = read_numpy_file("v2.npy", UDF_I32, 2, s64, &info);
    cr_assert_eq(info.version, 2);
    cr_assert(info.big_endian);
    for (int i = 0; i < 24; i++)
        cr_assert_eq(v2[i], i * 3 - 40, "v2[%d] = %d", i, v2[i]);
    free(v2);

    uint64_t *v3 = read_numpy_file("v3.npy", UDF_U64, 1, s24, &info);
    cr_assert_eq(info.version, 3);
    for (int i = 0; i < 24; i++)
        cr_assert_eq(v3[i], (uint64_t)i * 70000 + 1, "v3[%d]", i);
    free(v3);

    /* NumPy's Fortran-order file: the parser sees it, the reader returns C order. */
    char path[256];
    tmp_path(path, sizeof path, "fortran.npy");
    void *data = NULL;
    err e = {0};
    cr_assert_eq(npy_read_file(path, 1 << 20, &info, &data, &e), 0, "%s", e.msg);
    for (int i = 0; i < 24; i++)
        cr_assert_eq(((double *)data)[i], (double)i, "fortran[%d]", i);
    free(data);
    unsigned char head[4096];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0);
    ssize_t got = read(fd, head, sizeof head);
    close(fd);
    cr_assert_gt(got, 64);
    cr_assert_eq(npy_header_parse(head, (size_t)got, path, &info, &e), 0, "%s", e.msg);
    cr_assert(info.fortran_order);
}
