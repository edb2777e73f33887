/* Buffer sets: allocation, views for hooks, and placing partition nav results into the result. */
#include "bufs.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "shape.h"

static uint64_t item_bytes(const udf_view *v)
{
    return v->extra_size * udf_dtype_size(v->dtype);
}

/* Integer fill values saturate at the dtype's range (so -INFINITY means "the minimum"); NaN is 0. */
static double clamp(double x, double lo, double hi)
{
    return x != x ? 0 : x < lo ? lo : x > hi ? hi : x;
}

#define FILL(T, VALUE)                                                                             \
    do {                                                                                           \
        T *p = v->data, x = (T)(VALUE);                                                            \
        for (uint64_t i = 0; i < n; i++)                                                           \
            p[i] = x;                                                                              \
    } while (0)

static void view_fill(udf_view *v, double value)
{
    uint64_t n = v->count * v->extra_size;
    switch (v->dtype) {
    case UDF_U8: FILL(uint8_t, clamp(value, 0, UINT8_MAX)); break;
    case UDF_BOOL: FILL(uint8_t, value != 0); break;
    case UDF_I8: FILL(int8_t, clamp(value, INT8_MIN, INT8_MAX)); break;
    case UDF_U16: FILL(uint16_t, clamp(value, 0, UINT16_MAX)); break;
    case UDF_I16: FILL(int16_t, clamp(value, INT16_MIN, INT16_MAX)); break;
    case UDF_U32: FILL(uint32_t, clamp(value, 0, UINT32_MAX)); break;
    case UDF_I32: FILL(int32_t, clamp(value, INT32_MIN, INT32_MAX)); break;
    /* 2^64 and 2^63 are the first doubles past the range; stay below them. */
    case UDF_U64: FILL(uint64_t, clamp(value, 0, 18446744073709549568.0)); break;
    case UDF_I64: FILL(int64_t, clamp(value, -9223372036854775808.0, 9223372036854774784.0)); break;
    case UDF_F32: FILL(float, value); break;
    case UDF_F64: FILL(double, value); break;
    default: break;
    }
}

/* Items of buffer b in a set for nav_items frames and sig_items pixels (see bufs_alloc). */
static uint64_t buffer_items(const plugin_buffer *b, uint64_t nav_items, uint64_t sig_items,
                             bool result)
{
    if (!result && (b->decl.flags & UDF_BUFFER_RESULT_ONLY))
        return 0;
    return b->decl.kind == UDF_KIND_NAV ? nav_items : b->decl.kind == UDF_KIND_SIG ? sig_items : 1;
}

/* Bytes of buffer b in such a set, padded to the 64-byte boundary of the next; false on
 * overflow. */
static bool buffer_bytes(const plugin_buffer *b, uint64_t items, uint64_t *bytes)
{
    uint64_t item;
    if (!size_mul(b->extra_size, udf_dtype_size(b->decl.dtype), &item) ||
        !size_mul(items, item, bytes) || !size_add(*bytes, 63, bytes))
        return false;
    *bytes &= ~(uint64_t)63;
    return true;
}

uint64_t bufs_bytes(const plugin *pl, uint64_t nav_items, uint64_t sig_items, bool result)
{
    uint64_t total = 0, bytes;
    for (uint32_t i = 0; i < pl->n_buffers; i++) {
        const plugin_buffer *b = &pl->buffers[i];
        if (!buffer_bytes(b, buffer_items(b, nav_items, sig_items, result), &bytes) ||
            !size_add(total, bytes, &total))
            return UINT64_MAX;
    }
    return total;
}

int bufs_alloc(const plugin *pl, bufset *bs, uint64_t nav_items, uint64_t sig_items, bool result,
               err *e)
{
    memset(bs, 0, sizeof *bs);
    bs->n = pl->n_buffers;
    if (!bs->n)
        return 0;
    bs->views = calloc(bs->n, sizeof *bs->views);
    if (!bs->views)
        return err_set(e, UH_ENOMEM, "out of memory for buffers of plugin %s", pl->desc.name);
    uint64_t total = 0, offsets[bs->n];
    for (uint32_t i = 0; i < bs->n; i++) {
        const plugin_buffer *b = &pl->buffers[i];
        udf_view *v = &bs->views[i];
        v->name = b->name;
        v->dtype = b->decl.dtype;
        v->kind = b->decl.kind;
        v->flags = b->decl.flags;
        v->extra_size = b->extra_size;
        v->count = buffer_items(b, nav_items, sig_items, result);
        uint64_t bytes;
        if (!buffer_bytes(b, v->count, &bytes) || !size_add(total, bytes, &offsets[i])) {
            free(bs->views);
            return err_set(e, UH_ENOMEM, "plugin %s: buffer %s is too large", pl->desc.name,
                           b->name);
        }
        uint64_t start = total;
        total = offsets[i];
        offsets[i] = start;
    }
    if (total > SIZE_MAX || !(bs->mem = aligned_alloc(64, total ? total : 64))) {
        free(bs->views);
        bs->views = NULL;
        /* The words of budget_check's message, which refuses what cannot fit before the run. */
        return err_set(e, UH_ENOMEM, "out of memory for %s buffers (needs %.2f GiB, plugin %s)",
                       result ? "result" : "partition", total / 1073741824.0, pl->desc.name);
    }
    memset(bs->mem, 0, total);
    for (uint32_t i = 0; i < bs->n; i++) {
        udf_view *v = &bs->views[i];
        v->data = v->count ? (char *)bs->mem + offsets[i] : NULL;
        if (v->data && pl->buffers[i].decl.fill != 0)
            view_fill(v, pl->buffers[i].decl.fill);
    }
    return 0;
}

void bufs_free(bufset *bs)
{
    free(bs->mem);
    free(bs->views);
    memset(bs, 0, sizeof *bs);
}

void bufs_fill_unselected(bufset *result, const uint8_t *roi, uint64_t num_frames)
{
    if (!roi)
        return;
    for (uint32_t i = 0; i < result->n; i++) {
        udf_view *v = &result->views[i];
        if (v->kind != UDF_KIND_NAV || !v->data)
            continue;
        uint64_t ib = v->extra_size * udf_dtype_size(v->dtype);
        for (uint64_t f = 0; f < num_frames; f++) {
            if (roi[f])
                continue;
            if (v->dtype == UDF_F32) {
                float *p = (float *)v->data + f * v->extra_size;
                for (uint64_t k = 0; k < v->extra_size; k++)
                    p[k] = NAN;
            } else if (v->dtype == UDF_F64) {
                double *p = (double *)v->data + f * v->extra_size;
                for (uint64_t k = 0; k < v->extra_size; k++)
                    p[k] = NAN;
            } else {
                memset((char *)v->data + f * ib, 0, ib);
            }
        }
    }
}

void bufs_place_nav(bufset *result, const bufset *part, uint64_t frame_start,
                    uint64_t frame_count, const uint8_t *roi)
{
    for (uint32_t i = 0; i < result->n; i++) {
        udf_view *dst = &result->views[i];
        const udf_view *src = &part->views[i];
        if (dst->kind != UDF_KIND_NAV || !src->data)
            continue;
        uint64_t ib = item_bytes(dst);
        char *out = (char *)dst->data + frame_start * ib;
        const char *in = src->data;
        if (!roi) {
            memcpy(out, in, frame_count * ib);
            continue;
        }
        for (uint64_t f = 0; f < frame_count; f++)
            if (roi[frame_start + f]) {
                memcpy(out + f * ib, in, ib);
                in += ib;
            }
    }
}

void bufs_views_tile(const bufset *bs, udf_view *out, uint64_t item_start, uint64_t depth,
                     uint64_t sig_start, uint64_t sig_count)
{
    for (uint32_t i = 0; i < bs->n; i++) {
        const udf_view *v = &bs->views[i];
        out[i] = *v;
        if (!v->data)
            continue;
        if (v->kind == UDF_KIND_NAV) {
            out[i].data = (char *)v->data + item_start * item_bytes(v);
            out[i].count = depth;
        } else if (v->kind == UDF_KIND_SIG) {
            out[i].data = (char *)v->data + sig_start * item_bytes(v);
            out[i].count = sig_count;
        }
    }
}

void bufs_views_merge(const bufset *bs, udf_view *out)
{
    for (uint32_t i = 0; i < bs->n; i++) {
        out[i] = bs->views[i];
        if (out[i].kind == UDF_KIND_NAV || (out[i].flags & UDF_BUFFER_RESULT_ONLY)) {
            out[i].data = NULL;
            out[i].count = 0;
        }
    }
}
