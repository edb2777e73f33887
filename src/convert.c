/* Conversion kernels: one loop per (source dtype, destination dtype, byte order). */
#include "convert.h"

#include <string.h>

/* Load one element of unaligned, possibly byte-swapped source data. memcpy compiles to a plain
 * load; __builtin_bswap to one instruction. */
#define LOAD_FN(name, T, U, BSWAP)                                                                 \
    static inline T name(const unsigned char *p, bool swap)                                        \
    {                                                                                              \
        U u;                                                                                       \
        memcpy(&u, p, sizeof u);                                                                   \
        if (swap)                                                                                  \
            u = BSWAP(u);                                                                          \
        T v;                                                                                       \
        memcpy(&v, &u, sizeof v);                                                                  \
        return v;                                                                                  \
    }

static inline uint8_t bswap8(uint8_t v) { return v; }
LOAD_FN(load_u8, uint8_t, uint8_t, bswap8)
LOAD_FN(load_i8, int8_t, uint8_t, bswap8)
LOAD_FN(load_u16, uint16_t, uint16_t, __builtin_bswap16)
LOAD_FN(load_i16, int16_t, uint16_t, __builtin_bswap16)
LOAD_FN(load_u32, uint32_t, uint32_t, __builtin_bswap32)
LOAD_FN(load_i32, int32_t, uint32_t, __builtin_bswap32)
LOAD_FN(load_u64, uint64_t, uint64_t, __builtin_bswap64)
LOAD_FN(load_i64, int64_t, uint64_t, __builtin_bswap64)
LOAD_FN(load_f32, float, uint32_t, __builtin_bswap32)
LOAD_FN(load_f64, double, uint64_t, __builtin_bswap64)

/* The swap flag is hoisted: each kernel is instantiated for swap = false and true so the inner
 * loop has no branch. */
#define KERNEL(name, DT, LOAD, SIZE)                                                               \
    static void name(DT *restrict dst, const unsigned char *restrict src, bool swap, size_t n)    \
    {                                                                                              \
        if (swap)                                                                                  \
            for (size_t i = 0; i < n; i++)                                                         \
                dst[i] = (DT)LOAD(src + i * (SIZE), true);                                         \
        else                                                                                       \
            for (size_t i = 0; i < n; i++)                                                         \
                dst[i] = (DT)LOAD(src + i * (SIZE), false);                                        \
    }

#define KERNELS(SUFFIX, T, LOAD)                                                                   \
    KERNEL(to_f32_##SUFFIX, float, LOAD, sizeof(T))                                                \
    KERNEL(to_f64_##SUFFIX, double, LOAD, sizeof(T))                                               \
    KERNEL(to_same_##SUFFIX, T, LOAD, sizeof(T))

KERNELS(u8, uint8_t, load_u8)
KERNELS(i8, int8_t, load_i8)
KERNELS(u16, uint16_t, load_u16)
KERNELS(i16, int16_t, load_i16)
KERNELS(u32, uint32_t, load_u32)
KERNELS(i32, int32_t, load_i32)
KERNELS(u64, uint64_t, load_u64)
KERNELS(i64, int64_t, load_i64)
KERNELS(f32, float, load_f32)
KERNELS(f64, double, load_f64)

#define DISPATCH(SUFFIX)                                                                           \
    do {                                                                                           \
        if (d == UDF_F32)                                                                          \
            to_f32_##SUFFIX(dst, src, swap, n);                                                    \
        else if (d == UDF_F64)                                                                     \
            to_f64_##SUFFIX(dst, src, swap, n);                                                    \
        else if (d == s)                                                                           \
            to_same_##SUFFIX(dst, src, swap, n);                                                   \
        else                                                                                       \
            return false;                                                                          \
        return true;                                                                               \
    } while (0)

bool convert_run(void *restrict dst, udf_dtype d, const void *restrict src_v, udf_dtype s,
                 bool swap, size_t n)
{
    const unsigned char *src = src_v;
    switch (s) {
    case UDF_U8: case UDF_BOOL: DISPATCH(u8);
    case UDF_I8: DISPATCH(i8);
    case UDF_U16: DISPATCH(u16);
    case UDF_I16: DISPATCH(i16);
    case UDF_U32: DISPATCH(u32);
    case UDF_I32: DISPATCH(i32);
    case UDF_U64: DISPATCH(u64);
    case UDF_I64: DISPATCH(i64);
    case UDF_F32: DISPATCH(f32);
    case UDF_F64: DISPATCH(f64);
    default: return false;
    }
}
