/* Helpers shared by the bundled plugins (not part of the SDK). */
#ifndef UDFHOST_PLUGINS_COMMON_H
#define UDFHOST_PLUGINS_COMMON_H

#include <udfhost/udf.h>

/* Accumulator dtype for exact sums of the raw data: int64 for integers, float64 for floats. */
static inline udf_dtype common_acc_dtype(udf_dtype raw)
{
    return raw == UDF_F32 || raw == UDF_F64 ? UDF_F64 : UDF_I64;
}

/* Result dtype from a "float32|float64" choice parameter value. */
static inline udf_dtype common_result_dtype(const char *choice)
{
    return choice[0] == 'f' && choice[5] == '6' ? UDF_F64 : UDF_F32;
}

/* out[i] = acc[i] for acc of int64 or float64 and out of float32 or float64, with one rounding
 * from the exact value: int64 -> float converts directly, not via double. */
static inline void common_round_into(udf_view *out, const udf_view *acc, uint64_t n)
{
    if (acc->dtype == UDF_I64 && out->dtype == UDF_F32)
        for (uint64_t i = 0; i < n; i++)
            ((float *)out->data)[i] = (float)((const int64_t *)acc->data)[i];
    else if (acc->dtype == UDF_I64)
        for (uint64_t i = 0; i < n; i++)
            ((double *)out->data)[i] = (double)((const int64_t *)acc->data)[i];
    else if (out->dtype == UDF_F32)
        for (uint64_t i = 0; i < n; i++)
            ((float *)out->data)[i] = (float)((const double *)acc->data)[i];
    else
        for (uint64_t i = 0; i < n; i++)
            ((double *)out->data)[i] = ((const double *)acc->data)[i];
}

#endif
