/* Detector corrections: loading the maps and applying them to converted tiles. */
#include "corr.h"

#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "convert.h"
#include "dtype.h"
#include "npy.h"
#include "shape.h"

/* A correction file is read whole; 8 bytes per detector pixel bounds any sensible one, and the
 * coordinate list of every pixel (K x sig_ndim int64) as well. */
static uint64_t max_bytes(const ds *d)
{
    return d->sig_size * 8 * (d->sig_ndim + 1) + 4096;
}

static bool is_sig_shaped(const npy_info *info, const ds *d)
{
    return info->ndim == d->sig_ndim &&
           !memcmp(info->shape, d->sig_shape, d->sig_ndim * sizeof *info->shape);
}

static int shape_mismatch(const char *path, const char *what, const npy_info *info, const ds *d,
                          err *e)
{
    char want[128], got[128];
    shape_format(d->sig_shape, d->sig_ndim, want, sizeof want);
    shape_format(info->shape, info->ndim, got, sizeof got);
    return err_set(e, UH_EDATA, "%s: %s shape (%s) does not match the sig shape (%s)", path, what,
                   got, want);
}

/* A sig-shaped map as float64 and float32 copies. */
static int load_map(const corr_array *a, const char *what, const ds *d, double **out64,
                    float **out32, err *e)
{
    if (!is_sig_shaped(&a->info, d))
        return shape_mismatch(a->name, what, &a->info, d, e);
    double *m64 = malloc(d->sig_size * sizeof *m64);
    float *m32 = malloc(d->sig_size * sizeof *m32);
    if (!m64 || !m32) {
        free(m64);
        free(m32);
        return err_set(e, UH_ENOMEM, "%s: out of memory", a->name);
    }
    udf_dtype from = a->info.dtype == UDF_BOOL ? UDF_U8 : a->info.dtype;
    convert_run(m64, UDF_F64, a->data, from, false, d->sig_size);
    for (uint64_t p = 0; p < d->sig_size; p++)
        m32[p] = (float)m64[p];
    *out64 = m64;
    *out32 = m32;
    return 0;
}

/* The excluded-pixel mask (sig_size bytes) from a mask or a coordinate list. */
static int load_excluded_mask(const corr_array *a, const ds *d, uint8_t **out, err *e)
{
    const char *path = a->name;
    const npy_info info = a->info;
    const void *raw = a->data;
    int rc = 0;
    if (dtype_is_float(info.dtype)) {
        return err_set(e, UH_EDATA, "%s: excluded pixels must be bool or integer, not %s", path,
                       dtype_name(info.dtype));
    }
    uint8_t *mask = calloc(d->sig_size, 1);
    int64_t *v = malloc((info.data_bytes / udf_dtype_size(info.dtype) + 1) * sizeof *v);
    if (!mask || !v) {
        free(mask);
        free(v);
        return err_set(e, UH_ENOMEM, "%s: out of memory", path);
    }
    uint64_t count = info.data_bytes / udf_dtype_size(info.dtype);
    udf_dtype from = info.dtype == UDF_BOOL ? UDF_U8 : info.dtype;
    for (uint64_t i = 0; i < count; i++) {
        double x;
        convert_run(&x, UDF_F64, (const char *)raw + i * udf_dtype_size(from), from, false, 1);
        v[i] = (int64_t)x;
    }
    /* A (K, sig_ndim) integer array lists coordinates; anything sig-shaped is a mask. */
    bool coords = info.dtype != UDF_BOOL && info.ndim == 2 && info.shape[1] == d->sig_ndim;
    if (coords) {
        for (uint64_t k = 0; k < info.shape[0]; k++) {
            uint64_t flat = 0;
            for (uint32_t j = 0; j < d->sig_ndim; j++) {
                int64_t c = v[k * d->sig_ndim + j];
                if (c < 0 || (uint64_t)c >= d->sig_shape[j]) {
                    rc = err_set(e, UH_EDATA,
                                 "%s: pixel %llu has coordinate %lld on axis %u, outside 0..%llu",
                                 path, (unsigned long long)k, (long long)c, j,
                                 (unsigned long long)d->sig_shape[j] - 1);
                    break;
                }
                flat = flat * d->sig_shape[j] + (uint64_t)c;
            }
            if (rc)
                break;
            mask[flat] = 1;
        }
    } else if (is_sig_shaped(&info, d)) {
        for (uint64_t p = 0; p < d->sig_size; p++)
            mask[p] = v[p] != 0;
    } else {
        rc = err_set(e, UH_EDATA,
                     "%s: excluded pixels must be a mask of the sig shape or a list of (K, %u) "
                     "coordinates",
                     path, d->sig_ndim);
    }
    free(v);
    if (rc) {
        free(mask);
        return rc;
    }
    *out = mask;
    return 0;
}

/* For each excluded pixel, its valid neighbours in the last two sig axes (one for 1-D signals). */
static int build_neighbours(corrections *c, const ds *d, const uint8_t *mask, err *e)
{
    uint64_t w = d->sig_shape[d->sig_ndim - 1];
    uint64_t h = d->sig_ndim >= 2 ? d->sig_shape[d->sig_ndim - 2] : 1;
    uint64_t n = 0;
    for (uint64_t p = 0; p < d->sig_size; p++)
        n += mask[p];
    c->n_excluded = n;
    c->excluded = malloc((n + 1) * sizeof *c->excluded);
    c->nb_start = malloc((n + 1) * sizeof *c->nb_start);
    c->nb = malloc((8 * n + 1) * sizeof *c->nb);
    if (!c->excluded || !c->nb_start || !c->nb)
        return err_set(e, UH_ENOMEM, "out of memory for the excluded pixels");
    uint64_t k = 0, m = 0;
    for (uint64_t p = 0; p < d->sig_size; p++) {
        if (!mask[p])
            continue;
        uint64_t plane = p / (w * h) * (w * h), y = p % (w * h) / w, x = p % w;
        c->excluded[k] = p;
        c->nb_start[k] = m;
        for (int dy = -1; dy <= 1; dy++)
            for (int dx = -1; dx <= 1; dx++) {
                if ((!dy && !dx) || (dy < 0 && y == 0) || (dy > 0 && y + 1 == h) ||
                    (dx < 0 && x == 0) || (dx > 0 && x + 1 == w))
                    continue;
                uint64_t q = plane + (y + (uint64_t)(int64_t)dy) * w + x + (uint64_t)(int64_t)dx;
                if (!mask[q])
                    c->nb[m++] = q;
            }
        k++;
    }
    c->nb_start[k] = m;
    return 0;
}

int corr_set(corrections *c, const ds *d, const corr_array *dark, const corr_array *gain,
             const corr_array *excluded, err *e)
{
    memset(c, 0, sizeof *c);
    int rc = 0;
    if (dark)
        rc = load_map(dark, "dark frame", d, &c->dark64, &c->dark32, e);
    if (!rc && gain)
        rc = load_map(gain, "gain map", d, &c->gain64, &c->gain32, e);
    if (!rc && excluded) {
        uint8_t *mask;
        rc = load_excluded_mask(excluded, d, &mask, e);
        if (!rc) {
            rc = build_neighbours(c, d, mask, e);
            free(mask);
        }
    }
    if (rc) {
        corr_free(c);
        return rc;
    }
    c->active = dark || gain || excluded;
    return 0;
}

int corr_load(corrections *c, const ds *d, const char *dark, const char *gain,
              const char *excluded, err *e)
{
    const char *paths[3] = {dark, gain, excluded};
    corr_array arrays[3];
    void *data[3] = {NULL, NULL, NULL};
    int rc = 0;
    memset(c, 0, sizeof *c);
    for (int i = 0; i < 3 && !rc; i++)
        if (paths[i]) {
            rc = array_read_file(paths[i], max_bytes(d), &arrays[i].info, &data[i], e);
            arrays[i].name = paths[i];
            arrays[i].data = data[i];
        }
    if (!rc)
        rc = corr_set(c, d, dark ? &arrays[0] : NULL, gain ? &arrays[1] : NULL,
                      excluded ? &arrays[2] : NULL, e);
    for (int i = 0; i < 3; i++)
        free(data[i]);
    return rc;
}

void corr_free(corrections *c)
{
    free(c->dark32);
    free(c->gain32);
    free(c->dark64);
    free(c->gain64);
    free(c->excluded);
    free(c->nb_start);
    free(c->nb);
    memset(c, 0, sizeof *c);
}

udf_dtype corr_dtype(udf_dtype raw)
{
    return raw == UDF_F64 ? UDF_F64 : UDF_F32;
}

/* x = (x - dark) * gain over one tile, then the excluded pixels of whole frames. T is float or
 * double; the maps are of the same type so the arithmetic is the tile's own. */
#define CORR_APPLY(T, DARK, GAIN)                                                                  \
    do {                                                                                           \
        const T *restrict dk = DARK ? DARK + p0 : NULL, *restrict gn = GAIN ? GAIN + p0 : NULL;    \
        for (uint64_t f = 0; f < n; f++) {                                                         \
            T *restrict x = (T *)data + f * stride;                                                \
            if (dk && gn)                                                                          \
                for (uint64_t p = 0; p < np; p++)                                                  \
                    x[p] = (x[p] - dk[p]) * gn[p];                                                 \
            else if (dk)                                                                           \
                for (uint64_t p = 0; p < np; p++)                                                  \
                    x[p] -= dk[p];                                                                 \
            else if (gn)                                                                           \
                for (uint64_t p = 0; p < np; p++)                                                  \
                    x[p] *= gn[p];                                                                 \
            if (!whole)                                                                            \
                continue;                                                                          \
            for (uint64_t k = 0; k < c->n_excluded; k++) {                                         \
                uint64_t a = c->nb_start[k], b = c->nb_start[k + 1];                               \
                double s = 0;                                                                      \
                for (uint64_t i = a; i < b; i++)                                                   \
                    s += (double)x[c->nb[i]];                                                      \
                x[c->excluded[k]] = b > a ? (T)(s / (double)(b - a)) : (T)0;                       \
            }                                                                                      \
        }                                                                                          \
    } while (0)

void corr_apply(const corrections *c, void *data, udf_dtype dt, uint64_t n, uint64_t stride,
                uint64_t p0, uint64_t np, uint64_t sig_size)
{
    bool whole = p0 == 0 && np == sig_size;
    if (dt == UDF_F64)
        CORR_APPLY(double, c->dark64, c->gain64);
    else
        CORR_APPLY(float, c->dark32, c->gain32);
}
