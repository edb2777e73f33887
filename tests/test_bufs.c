/* Buffer sets: layout, fill values, tile and merge views, and placing nav results under a ROI. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "bufs.h"

/* A plugin with one buffer of each kind, declared by hand as plugin_setup would. */
static plugin make_plugin(plugin_buffer *b)
{
    memset(b, 0, 4 * sizeof *b);
    strcpy(b[0].name, "nav");
    b[0].decl = (udf_buffer_decl){.kind = UDF_KIND_NAV, .dtype = UDF_F32, .extra_ndim = 1,
                                  .extra_shape = {2}};
    b[0].extra_size = 2;
    strcpy(b[1].name, "sig");
    b[1].decl = (udf_buffer_decl){.kind = UDF_KIND_SIG, .dtype = UDF_I64, .fill = -INFINITY};
    b[1].extra_size = 1;
    strcpy(b[2].name, "single");
    b[2].decl = (udf_buffer_decl){.kind = UDF_KIND_SINGLE, .dtype = UDF_U8, .fill = 300};
    b[2].extra_size = 1;
    strcpy(b[3].name, "final");
    b[3].decl = (udf_buffer_decl){.kind = UDF_KIND_NAV, .dtype = UDF_I32,
                                  .flags = UDF_BUFFER_RESULT_ONLY};
    b[3].extra_size = 1;
    plugin pl = {.buffers = b, .n_buffers = 4};
    pl.desc.name = "test";
    return pl;
}

Test(bufs, partition_layout_and_fill)
{
    plugin_buffer b[4];
    plugin pl = make_plugin(b);
    bufset bs;
    err e = {0};
    cr_assert_eq(bufs_alloc(&pl, &bs, 5, 7, false, &e), 0);
    cr_assert_eq(bs.views[0].count, 5);
    cr_assert_eq(bs.views[1].count, 7);
    cr_assert_eq(bs.views[2].count, 1);
    cr_assert_eq(bs.views[3].count, 0, "result-only buffers have no partition storage");
    cr_assert_null(bs.views[3].data);
    for (int i = 0; i < 3; i++)
        cr_assert_eq((uintptr_t)bs.views[i].data % 64, 0, "buffer %d is 64-byte aligned", i);
    const int64_t *sig = bs.views[1].data;
    for (int i = 0; i < 7; i++)
        cr_assert_eq(sig[i], INT64_MIN, "-inf fill saturates to the dtype's minimum");
    cr_assert_eq(*(uint8_t *)bs.views[2].data, 255, "fill saturates at the maximum");
    cr_assert_eq(((float *)bs.views[0].data)[9], 0.0f);
    bufs_free(&bs);
}

Test(bufs, tile_views_offset_nav_and_sig)
{
    plugin_buffer b[4];
    plugin pl = make_plugin(b);
    bufset bs;
    err e = {0};
    cr_assert_eq(bufs_alloc(&pl, &bs, 10, 100, false, &e), 0);
    udf_view v[4];
    bufs_views_tile(&bs, v, 3, 4, 20, 30);
    cr_assert_eq((char *)v[0].data - (char *)bs.views[0].data, 3 * 2 * sizeof(float));
    cr_assert_eq(v[0].count, 4);
    cr_assert_eq((char *)v[1].data - (char *)bs.views[1].data, 20 * sizeof(int64_t));
    cr_assert_eq(v[1].count, 30);
    cr_assert_eq(v[2].data, bs.views[2].data);
    cr_assert_str_eq(v[1].name, "sig");
    udf_view m[4];
    bufs_views_merge(&bs, m);
    cr_assert_null(m[0].data, "nav buffers are not merged by plugins");
    cr_assert_eq(m[0].count, 0);
    cr_assert_eq(m[1].data, bs.views[1].data);
    cr_assert_eq(m[1].count, 100);
    bufs_free(&bs);
}

Test(bufs, place_nav_under_roi_and_fill_outside)
{
    plugin_buffer b[4];
    plugin pl = make_plugin(b);
    bufset result, part;
    err e = {0};
    uint8_t roi[8] = {0, 1, 1, 0, 1, 0, 0, 1};
    cr_assert_eq(bufs_alloc(&pl, &result, 8, 3, true, &e), 0);
    cr_assert_eq(result.views[3].count, 8, "result-only buffers exist in the result");
    bufs_fill_unselected(&result, roi, 8);
    /* A partition over frames 2..6 has selected frames 2 and 4. */
    cr_assert_eq(bufs_alloc(&pl, &part, 2, 3, false, &e), 0);
    float *pn = part.views[0].data;
    pn[0] = 20, pn[1] = 21, pn[2] = 40, pn[3] = 41;
    bufs_place_nav(&result, &part, 2, 5, roi);
    const float *rn = result.views[0].data;
    cr_assert_eq(rn[4], 20);
    cr_assert_eq(rn[5], 21);
    cr_assert_eq(rn[8], 40);
    cr_assert_eq(rn[9], 41);
    cr_assert(isnan(rn[0]) && isnan(rn[1]) && isnan(rn[6]), "unselected frames are NaN");
    cr_assert_eq(rn[2], 0, "selected frames not yet placed stay as filled");
    cr_assert_eq(((int32_t *)result.views[3].data)[0], 0, "integer nav buffers read 0 outside");
    bufs_free(&part);
    bufs_free(&result);
}
