/* Shape parsing and overflow-checked size arithmetic. */
#include <criterion/criterion.h>
#include <string.h>

#include "shape.h"

Test(shape, parses_commas_and_x)
{
    uint64_t d[4];
    uint32_t n;
    err e = {0};
    cr_assert_eq(shape_parse("256,128", "--nav-shape", 4, d, &n, &e), 0);
    cr_assert_eq(n, 2);
    cr_assert_eq(d[0], 256);
    cr_assert_eq(d[1], 128);
    cr_assert_eq(shape_parse("3x5X7", "--sig-shape", 4, d, &n, &e), 0);
    cr_assert_eq(n, 3);
    cr_assert_eq(d[2], 7);
    cr_assert_eq(shape_parse("1", "x", 4, d, &n, &e), 0);
    cr_assert_eq(n, 1);
}

Test(shape, rejects_bad_text_naming_the_option)
{
    const char *bad[] = {"", "0", "3,0", "3,,4", ",3", "3,", "-3", "+3", "3.5", "a", "3 4",
                         "1,2,3,4,5", "99999999999999999999", "4294967296,4294967296"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t d[4];
        uint32_t n;
        err e = {0};
        cr_assert_eq(shape_parse(bad[i], "--nav-shape", 4, d, &n, &e), UH_EUSAGE, "'%s'", bad[i]);
        cr_assert(strstr(e.msg, "--nav-shape"), "message '%s' names the option", e.msg);
    }
}

Test(shape, product_detects_overflow)
{
    uint64_t out;
    uint64_t ok[] = {1u << 20, 1u << 20, 1u << 20};
    cr_assert(shape_product(ok, 3, &out));
    cr_assert_eq(out, 1ull << 60);
    uint64_t big[] = {1u << 20, 1u << 20, 1u << 20, 1u << 4};
    cr_assert_not(shape_product(big, 4, &out));
    cr_assert(shape_product(ok, 0, &out));
    cr_assert_eq(out, 1);
}

Test(shape, formats)
{
    uint64_t d[] = {24, 32, 48};
    char buf[64];
    shape_format(d, 3, buf, sizeof buf);
    cr_assert_str_eq(buf, "24,32,48");
}

Test(shape, sizes_with_suffixes)
{
    uint64_t v;
    err e = {0};
    cr_assert_eq(size_parse("64M", "--partition-size", &v, &e), 0);
    cr_assert_eq(v, 64ull << 20);
    cr_assert_eq(size_parse("2GiB", "s", &v, &e), 0);
    cr_assert_eq(v, 2ull << 30);
    cr_assert_eq(size_parse("512", "s", &v, &e), 0);
    cr_assert_eq(v, 512);
    cr_assert_eq(size_parse("1KB", "s", &v, &e), 0);
    cr_assert_eq(v, 1024);
    cr_assert_eq(size_parse("16777216T", "s", &v, &e), UH_EUSAGE);
    cr_assert_eq(size_parse("5Q", "s", &v, &e), UH_EUSAGE);
    cr_assert_eq(size_parse("-1", "s", &v, &e), UH_EUSAGE);
    cr_assert_eq(size_parse("1Mx", "s", &v, &e), UH_EUSAGE);
}

Test(shape, unsigned_integers_with_limit)
{
    uint64_t v;
    err e = {0};
    cr_assert_eq(uint_parse("1024", "--threads", 1024, &v, &e), 0);
    cr_assert_eq(v, 1024);
    cr_assert_eq(uint_parse("1025", "--threads", 1024, &v, &e), UH_EUSAGE);
    cr_assert_eq(uint_parse("12a", "--offset", UINT64_MAX, &v, &e), UH_EUSAGE);
    cr_assert_eq(uint_parse("18446744073709551616", "--offset", UINT64_MAX, &v, &e), UH_EUSAGE);
}
