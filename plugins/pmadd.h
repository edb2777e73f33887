/* pmaddwd building blocks shared by com's exact row sums (COM_ROWS) and chunks.h: 16-bit lanes
 * multiplied in pairs into int32 lanes, for vectors of W bits (128: SSE2, 8 pixels; 256: AVX2,
 * 16 pixels). PMADD_LOAD_* give 8- and 16-bit pixels as int16: uint16 shifted by -32768 (the
 * caller adds the shift back per pixel) so that pmaddwd, which multiplies signed words, takes
 * them. Not part of the SDK. */
#ifndef UDFHOST_PLUGINS_PMADD_H
#define UDFHOST_PLUGINS_PMADD_H

#include <stdint.h>

#if defined(__SSE2__)
#include <emmintrin.h>
/* AVX2 where the compiler can target it for one function (GCC, Clang on x86-64): PMADD_FN_256
 * marks such a function, picked at run time by the caller. */
#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define PMADD_AVX2 1
#define PMADD_FN_256 __attribute__((target("avx2")))
#endif

#define PMADD_LOAD_U8_128(p) _mm_unpacklo_epi8(_mm_loadl_epi64((const __m128i *)(p)), _mm_setzero_si128())
#define PMADD_LOAD_I8_128(p)                                                                       \
    _mm_srai_epi16(_mm_unpacklo_epi8(_mm_setzero_si128(), _mm_loadl_epi64((const __m128i *)(p))), 8)
#define PMADD_LOAD_U16_128(p)                                                                      \
    _mm_xor_si128(_mm_loadu_si128((const __m128i *)(p)), _mm_set1_epi16((short)0x8000))
#define PMADD_LOAD_I16_128(p) _mm_loadu_si128((const __m128i *)(p))
#define PMADD_VEC_128 __m128i
#define PMADD_ZERO_128() _mm_setzero_si128()
#define PMADD_ADD_128 _mm_add_epi32
#define PMADD_MADD_128 _mm_madd_epi16
#define PMADD_HSUM_128 pmadd_hsum_128

/* int64 sum of the four int32 lanes of v. */
static inline int64_t pmadd_hsum_128(__m128i v)
{
    int32_t l[4];
    _mm_storeu_si128((__m128i *)l, v);
    return (int64_t)l[0] + l[1] + l[2] + l[3];
}

#if defined(PMADD_AVX2)
#define PMADD_LOAD_U8_256(p) _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(p)))
#define PMADD_LOAD_I8_256(p) _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(p)))
#define PMADD_LOAD_U16_256(p)                                                                      \
    _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(p)), _mm256_set1_epi16((short)0x8000))
#define PMADD_LOAD_I16_256(p) _mm256_loadu_si256((const __m256i *)(p))
#define PMADD_VEC_256 __m256i
#define PMADD_ZERO_256() _mm256_setzero_si256()
#define PMADD_ADD_256 _mm256_add_epi32
#define PMADD_MADD_256 _mm256_madd_epi16
#define PMADD_HSUM_256 pmadd_hsum_256

/* int64 sum of the eight int32 lanes of v, in registers: through a stack array, GCC stored
 * chunks.h's accumulators at every pair. */
PMADD_FN_256 static inline int64_t pmadd_hsum_256(__m256i v)
{
    __m256i w = _mm256_add_epi64(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(v)),
                                 _mm256_cvtepi32_epi64(_mm256_extracti128_si256(v, 1)));
    __m128i s = _mm_add_epi64(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
    return _mm_cvtsi128_si64(s) + _mm_extract_epi64(s, 1);
}
#endif
#endif /* __SSE2__ */

#endif
