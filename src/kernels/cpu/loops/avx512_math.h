// Vector math on 16 floats for the loops that have an AVX-512 path (softmax and LayerNormalization
// rows, the small-batch LSTM). The build targets baseline x86-64: every function here is compiled for AVX-512F through a
// target attribute, and callers enter them only after Avx512Usable() said yes.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__)
#define GPUHIVE_HAVE_AVX512_PATHS 1
#include <immintrin.h>

// GCC 12's AVX-512 headers start some intrinsics from _mm512_undefined_*(), which -Wuninitialized
// reports once inlined (GCC bug 105593); nothing here reads an uninitialized value.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#define GPUHIVE_AVX512 __attribute__((target("avx512f")))

namespace gpuhive::cpu::loops::avx512 {

// Lanes [0, left) of a 16-float vector.
GPUHIVE_AVX512 inline __mmask16 TailMask(int64_t left) {
  return left >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << left) - 1u);
}

// exp(x) for x <= 0: ExpNonPositive's polynomial (softmax_row.h) on 16 lanes with fused
// multiply-adds; 0 at and below -87.
GPUHIVE_AVX512 inline __m512 ExpNonPositive(__m512 x) {
  const __m512 lo = _mm512_set1_ps(-87.f);
  const __mmask16 under = _mm512_cmp_ps_mask(x, lo, _CMP_LE_OQ);
  x = _mm512_max_ps(x, lo);
  const __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fmadd_ps(k, _mm512_set1_ps(2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  const __m512 e = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.f)));
  const __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(k), _mm512_set1_epi32(127)), 23);
  return _mm512_maskz_mul_ps(static_cast<__mmask16>(~under), e, _mm512_castsi512_ps(bits));
}

GPUHIVE_AVX512 inline __m512 Abs(__m512 x) {
  return _mm512_castsi512_ps(_mm512_and_epi32(_mm512_castps_si512(x), _mm512_set1_epi32(0x7fffffff)));
}

// 1 / x for x in [1, 2] (the sigmoid's and tanh's denominators): the 14-bit estimate and one
// Newton step, ~2^-27 relative error; a division per vector costs several times more.
GPUHIVE_AVX512 inline __m512 ReciprocalOneToTwo(__m512 x) {
  const __m512 r = _mm512_rcp14_ps(x);
  return _mm512_mul_ps(r, _mm512_fnmadd_ps(x, r, _mm512_set1_ps(2.f)));
}

// 1 / (1 + exp(-x)) from e = exp(-|x|), which cannot overflow.
GPUHIVE_AVX512 inline __m512 Sigmoid(__m512 x) {
  const __m512 e = ExpNonPositive(_mm512_sub_ps(_mm512_setzero_ps(), Abs(x)));
  const __m512 r = ReciprocalOneToTwo(_mm512_add_ps(_mm512_set1_ps(1.f), e));
  const __mmask16 negative = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
  return _mm512_mask_mul_ps(r, negative, e, r);
}

// tanh(x) = sign(x) (1 - e) / (1 + e) with e = exp(-2|x|).
GPUHIVE_AVX512 inline __m512 Tanh(__m512 x) {
  const __m512 a = Abs(x);
  const __m512 e = ExpNonPositive(_mm512_mul_ps(a, _mm512_set1_ps(-2.f)));
  const __m512 t = _mm512_mul_ps(_mm512_sub_ps(_mm512_set1_ps(1.f), e), ReciprocalOneToTwo(_mm512_add_ps(_mm512_set1_ps(1.f), e)));
  const __m512i sign = _mm512_and_epi32(_mm512_castps_si512(x), _mm512_set1_epi32(static_cast<int>(0x80000000u)));
  return _mm512_castsi512_ps(_mm512_or_epi32(_mm512_castps_si512(t), sign));
}

}  // namespace gpuhive::cpu::loops::avx512
#endif

namespace gpuhive::cpu::loops {

// Whether the AVX-512 paths may run: the CPU has AVX-512F and oneDNN's effective ISA (which
// ONEDNN_MAX_CPU_ISA caps, so one variable moves every kernel off AVX-512) includes avx512_core.
bool Avx512Usable();

}  // namespace gpuhive::cpu::loops
