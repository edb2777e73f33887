/* Element type names: the canonical long names users type, NumPy's short codes and byte-order
 * prefixes, and the descr strings written into .npy headers. */
#include "dtype.h"

#include <string.h>

/* One row per dtype udf_dtype can store in a file. `code` is NumPy's kind and size ("u2");
 * `alias` is a second short spelling NumPy accepts for the same type ("?" for bool). */
static const struct dtype_row {
    udf_dtype dtype;
    const char *name;
    const char *code;
    const char *alias;
} dtype_rows[] = {
    {UDF_U8, "uint8", "u1", NULL},     {UDF_U16, "uint16", "u2", NULL},
    {UDF_U32, "uint32", "u4", NULL},   {UDF_U64, "uint64", "u8", NULL},
    {UDF_I8, "int8", "i1", NULL},      {UDF_I16, "int16", "i2", NULL},
    {UDF_I32, "int32", "i4", NULL},    {UDF_I64, "int64", "i8", NULL},
    {UDF_F32, "float32", "f4", NULL},  {UDF_F64, "float64", "f8", NULL},
    {UDF_BOOL, "bool", "b1", "?"},
};

#define DTYPE_ROWS (sizeof dtype_rows / sizeof dtype_rows[0])

static const struct dtype_row *dtype_row_find(udf_dtype d)
{
    for (size_t i = 0; i < DTYPE_ROWS; i++)
        if (dtype_rows[i].dtype == d)
            return &dtype_rows[i];
    return NULL;
}

const char *dtype_name(udf_dtype d)
{
    const struct dtype_row *r = dtype_row_find(d);
    return r ? r->name : "?";
}

/* Long names take no byte-order prefix: NumPy only attaches one to the short codes, and a user who
 * types "uint16" means the separate byte-order option (or the default) to decide. Outputs are only
 * written on success, so a failed parse leaves the caller's defaults alone. */
int dtype_parse(const char *text, udf_dtype *d, bool *big_endian, bool *explicit_order)
{
    if (!text)
        return -1;
    for (size_t i = 0; i < DTYPE_ROWS; i++) {
        if (!strcmp(text, dtype_rows[i].name)) {
            if (d)
                *d = dtype_rows[i].dtype;
            if (big_endian)
                *big_endian = false;
            if (explicit_order)
                *explicit_order = false;
            return 0;
        }
    }

    /* '|' is NumPy's "byte order not applicable": accepted, but it states no order. */
    char order = 0;
    if (*text == '<' || *text == '>' || *text == '=' || *text == '|')
        order = *text++;
    for (size_t i = 0; i < DTYPE_ROWS; i++) {
        const struct dtype_row *r = &dtype_rows[i];
        if (strcmp(text, r->code) && !(r->alias && !strcmp(text, r->alias)))
            continue;
        if (d)
            *d = r->dtype;
        if (big_endian)
            *big_endian = order == '>' || (order == '=' && host_is_big_endian());
        if (explicit_order)
            *explicit_order = order == '<' || order == '>' || order == '=';
        return 0;
    }
    return -1;
}

/* NumPy writes '|' for one-byte types whatever the requested order, so we do too: np.load then
 * shows the same dtype string as np.save would have produced. */
const char *dtype_descr(udf_dtype d, bool big_endian)
{
    switch (d) {
    case UDF_U8: return "|u1";
    case UDF_I8: return "|i1";
    case UDF_BOOL: return "|b1";
    case UDF_U16: return big_endian ? ">u2" : "<u2";
    case UDF_U32: return big_endian ? ">u4" : "<u4";
    case UDF_U64: return big_endian ? ">u8" : "<u8";
    case UDF_I16: return big_endian ? ">i2" : "<i2";
    case UDF_I32: return big_endian ? ">i4" : "<i4";
    case UDF_I64: return big_endian ? ">i8" : "<i8";
    case UDF_F32: return big_endian ? ">f4" : "<f4";
    case UDF_F64: return big_endian ? ">f8" : "<f8";
    default: return NULL; /* no element type: nothing a .npy header could name */
    }
}

bool dtype_is_float(udf_dtype d)
{
    return d == UDF_F32 || d == UDF_F64;
}

/* Signed integers only: callers use this to pick sign extension, which floats never need. */
bool dtype_is_signed(udf_dtype d)
{
    return d == UDF_I8 || d == UDF_I16 || d == UDF_I32 || d == UDF_I64;
}
