/* Element types: canonical names, parsing user and NumPy spellings with byte-order prefixes, .npy
 * descr strings, kind predicates and the SDK's element sizes. */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <string.h>

#include "dtype.h"

/* Every dtype a file can hold, with the facts the tests check against. */
static const struct {
    udf_dtype d;
    const char *name;
    const char *le_descr;
    const char *be_descr;
    size_t size;
    bool is_float;
    bool is_signed;
} all[] = {
    {UDF_U8, "uint8", "|u1", "|u1", 1, false, false},
    {UDF_U16, "uint16", "<u2", ">u2", 2, false, false},
    {UDF_U32, "uint32", "<u4", ">u4", 4, false, false},
    {UDF_U64, "uint64", "<u8", ">u8", 8, false, false},
    {UDF_I8, "int8", "|i1", "|i1", 1, false, true},
    {UDF_I16, "int16", "<i2", ">i2", 2, false, true},
    {UDF_I32, "int32", "<i4", ">i4", 4, false, true},
    {UDF_I64, "int64", "<i8", ">i8", 8, false, true},
    {UDF_F32, "float32", "<f4", ">f4", 4, true, false},
    {UDF_F64, "float64", "<f8", ">f8", 8, true, false},
    {UDF_BOOL, "bool", "|b1", "|b1", 1, false, false},
};

#define N_ALL (sizeof all / sizeof all[0])

Test(dtype, names)
{
    for (size_t i = 0; i < N_ALL; i++)
        cr_assert_str_eq(dtype_name(all[i].d), all[i].name);
    cr_assert_str_eq(dtype_name(UDF_DTYPE_NONE), "?");
    cr_assert_str_eq(dtype_name(UDF_DTYPE_NATIVE), "?");
    cr_assert_str_eq(dtype_name((udf_dtype)12), "?");
    cr_assert_str_eq(dtype_name((udf_dtype)-1), "?");
}

Test(dtype, parses_long_names_without_order)
{
    for (size_t i = 0; i < N_ALL; i++) {
        udf_dtype d = UDF_DTYPE_NONE;
        bool big = true, expl = true;
        cr_assert_eq(dtype_parse(all[i].name, &d, &big, &expl), 0, "'%s'", all[i].name);
        cr_assert_eq(d, all[i].d, "'%s'", all[i].name);
        cr_assert_not(big, "'%s' states no byte order", all[i].name);
        cr_assert_not(expl, "'%s' states no byte order", all[i].name);
    }
}

Test(dtype, parses_short_codes_and_prefixes)
{
    const bool host_big = host_is_big_endian();
    const struct {
        const char *text;
        udf_dtype d;
        bool big, expl;
    } cases[] = {
        {"u2", UDF_U16, false, false},  {"<u2", UDF_U16, false, true},
        {">u2", UDF_U16, true, true},   {"=u2", UDF_U16, host_big, true},
        {"|u2", UDF_U16, false, false}, {">f4", UDF_F32, true, true},
        {"<f4", UDF_F32, false, true},  {"=i4", UDF_I32, host_big, true},
        {"|u1", UDF_U8, false, false},  {"u1", UDF_U8, false, false},
        {"|i1", UDF_I8, false, false},  {"b1", UDF_BOOL, false, false},
        {"|b1", UDF_BOOL, false, false}, {"?", UDF_BOOL, false, false},
        {"|?", UDF_BOOL, false, false}, {">i8", UDF_I64, true, true},
        {"<u8", UDF_U64, false, true},  {"f8", UDF_F64, false, false},
        {">i2", UDF_I16, true, true},   {"u4", UDF_U32, false, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        udf_dtype d = UDF_DTYPE_NONE;
        bool big = !cases[i].big, expl = !cases[i].expl;
        cr_assert_eq(dtype_parse(cases[i].text, &d, &big, &expl), 0, "'%s'", cases[i].text);
        cr_assert_eq(d, cases[i].d, "'%s': dtype %d", cases[i].text, (int)d);
        cr_assert_eq(big, cases[i].big, "'%s': big_endian", cases[i].text);
        cr_assert_eq(expl, cases[i].expl, "'%s': explicit_order", cases[i].text);
    }
}

Test(dtype, null_outputs_are_allowed)
{
    cr_assert_eq(dtype_parse(">u2", NULL, NULL, NULL), 0);
    cr_assert_eq(dtype_parse("uint16", NULL, NULL, NULL), 0);
    udf_dtype d = UDF_DTYPE_NONE;
    cr_assert_eq(dtype_parse("<f8", &d, NULL, NULL), 0);
    cr_assert_eq(d, UDF_F64);
}

Test(dtype, rejects_unknown_text_and_leaves_outputs_alone)
{
    const char *bad[] = {"u3", "", "complex64", "<<u2", "<", ">", "|", "c8", "<c8", "f2", "u16",
                         "UINT16", "uint16 ", " uint16", "<uint16", ">float32", "u2x", "i", "b",
                         "<>u2", "float", "int", "??", "b2", "u 2"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        udf_dtype d = UDF_I16;
        bool big = true, expl = true;
        cr_assert_eq(dtype_parse(bad[i], &d, &big, &expl), -1, "'%s' is refused", bad[i]);
        cr_assert_eq(d, UDF_I16, "'%s' left the dtype alone", bad[i]);
        cr_assert(big, "'%s' left big_endian alone", bad[i]);
        cr_assert(expl, "'%s' left explicit_order alone", bad[i]);
    }
    cr_assert_eq(dtype_parse(NULL, NULL, NULL, NULL), -1);
}

Test(dtype, descr_strings)
{
    for (size_t i = 0; i < N_ALL; i++) {
        cr_assert_str_eq(dtype_descr(all[i].d, false), all[i].le_descr);
        cr_assert_str_eq(dtype_descr(all[i].d, true), all[i].be_descr);
    }
    cr_assert_null(dtype_descr(UDF_DTYPE_NONE, false));
    cr_assert_null(dtype_descr(UDF_DTYPE_NATIVE, true));
    cr_assert_null(dtype_descr((udf_dtype)42, false));
}

Test(dtype, descr_round_trips_through_parse)
{
    for (size_t i = 0; i < N_ALL; i++) {
        for (int order = 0; order < 2; order++) {
            bool want_big = order == 1;
            const char *descr = dtype_descr(all[i].d, want_big);
            cr_assert_not_null(descr);
            udf_dtype d = UDF_DTYPE_NONE;
            bool big = !want_big, expl = false;
            cr_assert_eq(dtype_parse(descr, &d, &big, &expl), 0, "'%s'", descr);
            cr_assert_eq(d, all[i].d, "'%s'", descr);
            if (all[i].size > 1) {
                /* Multi-byte descrs carry the order and it survives the trip. */
                cr_assert(expl, "'%s' states its order", descr);
                cr_assert_eq(big, want_big, "'%s' keeps its order", descr);
            } else {
                /* One-byte descrs say '|': no order, and none is reported. */
                cr_assert_eq(descr[0], '|');
                cr_assert_not(expl, "'%s' states no order", descr);
                cr_assert_not(big, "'%s'", descr);
            }
        }
    }
}

Test(dtype, name_round_trips_through_parse)
{
    for (size_t i = 0; i < N_ALL; i++) {
        udf_dtype d = UDF_DTYPE_NONE;
        cr_assert_eq(dtype_parse(dtype_name(all[i].d), &d, NULL, NULL), 0);
        cr_assert_eq(d, all[i].d);
    }
}

Test(dtype, kinds)
{
    for (size_t i = 0; i < N_ALL; i++) {
        cr_assert_eq(dtype_is_float(all[i].d), all[i].is_float, "%s", all[i].name);
        cr_assert_eq(dtype_is_signed(all[i].d), all[i].is_signed, "%s", all[i].name);
    }
    cr_assert_not(dtype_is_float(UDF_DTYPE_NONE));
    cr_assert_not(dtype_is_signed(UDF_DTYPE_NONE));
    cr_assert_not(dtype_is_float(UDF_DTYPE_NATIVE));
    cr_assert_not(dtype_is_signed(UDF_DTYPE_NATIVE));
}

Test(dtype, sdk_sizes)
{
    for (size_t i = 0; i < N_ALL; i++)
        cr_assert_eq(udf_dtype_size(all[i].d), all[i].size, "%s", all[i].name);
    cr_assert_eq(udf_dtype_size(UDF_DTYPE_NONE), 0);
    cr_assert_eq(udf_dtype_size(UDF_DTYPE_NATIVE), 0);
    cr_assert_eq(udf_dtype_size((udf_dtype)12), 0);
    cr_assert_eq(udf_dtype_size((udf_dtype)99), 0);
}

Test(dtype, sizes_match_the_descr_digit)
{
    /* The byte count in NumPy's descr ("<u2" -> 2) is the SDK's element size. */
    for (size_t i = 0; i < N_ALL; i++) {
        const char *descr = dtype_descr(all[i].d, false);
        cr_assert_eq(strlen(descr), 3);
        cr_assert_eq((size_t)(descr[2] - '0'), udf_dtype_size(all[i].d), "%s", descr);
    }
}

Test(dtype, host_order_probe)
{
    const union { uint32_t u; unsigned char c[4]; } probe = {.u = 0x01020304};
    cr_assert_eq(host_is_big_endian(), probe.c[0] == 0x01);
}
