#include "kernels/cpu/loops/layernorm_row.h"

#include <cmath>

#include "kernels/cpu/loops/avx512_math.h"

namespace gpuhive::cpu::loops {

#ifdef GPUHIVE_HAVE_AVX512_PATHS
GPUHIVE_AVX512 void LayerNormRowAvx512(const float* x, float* y, int64_t n, const float* scale, const float* bias,
                                       float epsilon, float* mean_out, float* inv_out) {
  using avx512::TailMask;
  // Two passes over x (a BERT row, 768 floats, stays in L1): the mean, then the centred squares, each
  // with two accumulators.
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm512_add_ps(s0, _mm512_loadu_ps(x + i));
    s1 = _mm512_add_ps(s1, _mm512_loadu_ps(x + i + 16));
  }
  for (; i < n; i += 16) s0 = _mm512_add_ps(s0, _mm512_maskz_loadu_ps(TailMask(n - i), x + i));
  const float mean = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1)) / static_cast<float>(n);
  const __m512 vm = _mm512_set1_ps(mean);
  __m512 q0 = _mm512_setzero_ps(), q1 = _mm512_setzero_ps();
  for (i = 0; i + 32 <= n; i += 32) {
    const __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(x + i), vm), d1 = _mm512_sub_ps(_mm512_loadu_ps(x + i + 16), vm);
    q0 = _mm512_fmadd_ps(d0, d0, q0);
    q1 = _mm512_fmadd_ps(d1, d1, q1);
  }
  for (; i < n; i += 16) {
    const __mmask16 t = TailMask(n - i);
    const __m512 d = _mm512_maskz_sub_ps(t, _mm512_maskz_loadu_ps(t, x + i), vm);
    q0 = _mm512_fmadd_ps(d, d, q0);
  }
  const float var = _mm512_reduce_add_ps(_mm512_add_ps(q0, q1)) / static_cast<float>(n);
  const float inv = 1.f / std::sqrt(var + epsilon);
  const __m512 vi = _mm512_set1_ps(inv);
  for (i = 0; i < n; i += 16) {
    const __mmask16 t = TailMask(n - i);
    const __m512 d = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(t, x + i), vm), vi);
    const __m512 b = bias != nullptr ? _mm512_maskz_loadu_ps(t, bias + i) : _mm512_setzero_ps();
    _mm512_mask_storeu_ps(y + i, t, _mm512_fmadd_ps(d, _mm512_maskz_loadu_ps(t, scale + i), b));
  }
  *mean_out = mean;
  *inv_out = inv;
}
#else
void LayerNormRowAvx512(const float*, float*, int64_t, const float*, const float*, float, float*, float*) {}
#endif

}  // namespace gpuhive::cpu::loops
