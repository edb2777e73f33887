/* Fuzz target: the command-line value parsers on one NUL-terminated string: shapes, byte sizes,
 * integers, dtypes, every dataset option (dsopt_handle) and plugin parameter values of each
 * type (param_value_check). */
#include "fuzz_common.h"

#include <string.h>

#include "dsopt.h"
#include "dtype.h"
#include "param.h"
#include "shape.h"

/* One declaration per parameter type, with and without a range. */
static const udf_param_decl decls[] = {
    {.name = "i", .type = UDF_PARAM_INT},
    {.name = "ir", .type = UDF_PARAM_INT, .min = -5, .max = 1e6},
    {.name = "f", .type = UDF_PARAM_FLOAT},
    {.name = "fr", .type = UDF_PARAM_FLOAT, .min = 0.5, .max = 2.5},
    {.name = "b", .type = UDF_PARAM_BOOL},
    {.name = "s", .type = UDF_PARAM_STRING},
    {.name = "c", .type = UDF_PARAM_CHOICE, .choices = "float32|float64|a||b"},
    {.name = "is", .type = UDF_PARAM_INTS},
    {.name = "fs", .type = UDF_PARAM_FLOATS, .min = -1, .max = 1},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_string(data, size);
    err e = {0};
    uint64_t dims[UDF_MAX_DIMS], n;
    uint32_t ndim;
    for (uint32_t max = 1; max <= UDF_MAX_DIMS; max += UDF_MAX_DIMS - 1)
        if (shape_parse(text, "--shape", max, dims, &ndim, &e) == 0) {
            uint64_t prod;
            char buf[32];
            /* shape_parse promises 1..max positive dims whose product fits. */
            if (ndim < 1 || ndim > max || !shape_product(dims, ndim, &prod))
                abort();
            for (uint32_t i = 0; i < ndim; i++)
                if (!dims[i])
                    abort();
            shape_format(dims, ndim, buf, sizeof buf); /* truncates, never overflows */
        }
    size_parse(text, "--size", &n, &e);
    uint_parse(text, "--n", UINT64_MAX, &n, &e);
    if (uint_parse(text, "--n", 1000, &n, &e) == 0 && n > 1000)
        abort();
    udf_dtype d;
    bool big, explicit_order;
    if (dtype_parse(text, &d, &big, &explicit_order) == 0 && udf_dtype_size(d) == 0)
        abort();
    for (int id = DSOPT_FORMAT; id < DSOPT_LAST; id++) {
        dsopt s = {0};
        dsopt_handle(&s, id, text, &e);
    }
    char why[256];
    for (size_t i = 0; i < sizeof decls / sizeof decls[0]; i++)
        param_value_check(&decls[i], text, why, sizeof why);
    free(text);
    return 0;
}
