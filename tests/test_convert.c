/* Dtype conversion kernels: values, byte swapping and unaligned sources. */
#include <criterion/criterion.h>
#include <string.h>

#include "convert.h"

Test(convert, u16_to_float32_and_float64)
{
    uint16_t src[] = {0, 1, 65535, 12345};
    float f[4];
    double d[4];
    cr_assert(convert_run(f, UDF_F32, src, UDF_U16, false, 4));
    cr_assert(convert_run(d, UDF_F64, src, UDF_U16, false, 4));
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(f[i], (float)src[i]);
        cr_assert_eq(d[i], (double)src[i]);
    }
}

Test(convert, signed_and_wide_types)
{
    int8_t i8[] = {-128, 127, -1};
    int32_t i32[] = {-2147483647 - 1, 2147483647, -5};
    uint32_t u32[] = {4294967295u, 16777217u, 0};
    double d[3];
    float f[3];
    cr_assert(convert_run(d, UDF_F64, i8, UDF_I8, false, 3));
    cr_assert_eq(d[0], -128.0);
    cr_assert_eq(d[1], 127.0);
    cr_assert(convert_run(d, UDF_F64, i32, UDF_I32, false, 3));
    cr_assert_eq(d[0], -2147483648.0);
    cr_assert_eq(d[2], -5.0);
    cr_assert(convert_run(f, UDF_F32, u32, UDF_U32, false, 3));
    cr_assert_eq(f[1], 16777216.0f, "rounded to nearest float32");
    cr_assert(convert_run(d, UDF_F64, u32, UDF_U32, false, 3));
    cr_assert_eq(d[0], 4294967295.0);
}

Test(convert, byte_swapped_sources)
{
    unsigned char be16[] = {0x12, 0x34, 0xff, 0x00};
    float f[2];
    cr_assert(convert_run(f, UDF_F32, be16, UDF_U16, true, 2));
    cr_assert_eq(f[0], (float)0x1234);
    cr_assert_eq(f[1], (float)0xff00);
    /* big-endian float32 1.5 = 0x3fc00000 */
    unsigned char bef[] = {0x3f, 0xc0, 0x00, 0x00};
    double d;
    cr_assert(convert_run(&d, UDF_F64, bef, UDF_F32, true, 1));
    cr_assert_eq(d, 1.5);
    uint16_t same[2];
    cr_assert(convert_run(same, UDF_U16, be16, UDF_U16, true, 2));
    cr_assert_eq(same[0], 0x1234);
}

Test(convert, unaligned_source)
{
    unsigned char buf[1 + 3 * sizeof(double)];
    double v[] = {1.25, -2.5, 1e300}, out[3];
    memcpy(buf + 1, v, sizeof v);
    cr_assert(convert_run(out, UDF_F64, buf + 1, UDF_F64, false, 3));
    cr_assert_eq(memcmp(out, v, sizeof v), 0);
}

Test(convert, refuses_unsupported_pairs)
{
    uint16_t src[1] = {1};
    int32_t dst[1];
    cr_assert_not(convert_run(dst, UDF_I32, src, UDF_U16, false, 1));
}
