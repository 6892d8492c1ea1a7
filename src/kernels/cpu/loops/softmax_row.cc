// The softmax rows of softmax_row.h: an AVX-512 path (intrinsics in functions compiled for
// AVX-512F, entered only when the CPU has it and oneDNN's effective ISA, which ONEDNN_MAX_CPU_ISA
// caps, includes avx512_core) and a portable path whose reductions keep 16 independent lanes, so
// that the compiler vectorizes them instead of chaining one add per element.
#include "kernels/cpu/loops/softmax_row.h"

#include "kernels/cpu/loops/avx512_math.h"

namespace gpuhive::cpu::loops {
namespace {

constexpr int kLanes = 16;

// Max and the NaN/infinity check of a row: false when any element is not finite.
bool RowMaxPortable(const float* x, int64_t n, float* max_out) {
  float lanes[kLanes], check[kLanes];
  for (int j = 0; j < kLanes; ++j) lanes[j] = -std::numeric_limits<float>::infinity(), check[j] = 0.f;
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int j = 0; j < kLanes; ++j) {
      lanes[j] = x[i + j] > lanes[j] ? x[i + j] : lanes[j];
      check[j] += x[i + j] * 0.f;  // NaN or +-inf anywhere makes this NaN
    }
  }
  float m = -std::numeric_limits<float>::infinity(), c = 0.f;
  for (int j = 0; j < kLanes; ++j) m = lanes[j] > m ? lanes[j] : m, c += check[j];
  for (; i < n; ++i) m = x[i] > m ? x[i] : m, c += x[i] * 0.f;
  *max_out = m;
  return std::isfinite(m) && c == 0.f;
}

#ifdef GPUHIVE_HAVE_AVX512_PATHS
using avx512::TailMask;
#define AVX512 GPUHIVE_AVX512

// Softmax of a row whose max m is known and finite.
AVX512 void ExpNormalizeAvx512(const float* x, float* y, int64_t n, float m) {
  const __m512 vm = _mm512_set1_ps(m);
  __m512 sum = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 t = TailMask(n - i);
    const __m512 e = _mm512_maskz_mov_ps(t, avx512::ExpNonPositive(_mm512_sub_ps(_mm512_maskz_loadu_ps(t, x + i), vm)));
    _mm512_mask_storeu_ps(y + i, t, e);
    sum = _mm512_add_ps(sum, e);
  }
  const __m512 inv = _mm512_set1_ps(1.f / _mm512_reduce_add_ps(sum));
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 t = TailMask(n - i);
    _mm512_mask_storeu_ps(y + i, t, _mm512_mul_ps(_mm512_maskz_loadu_ps(t, y + i), inv));
  }
}

AVX512 bool RowMaxAvx512(const float* x, int64_t n, float* max_out) {
  __m512 mx = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __m512 check = _mm512_setzero_ps();
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 t = TailMask(n - i);
    const __m512 v = _mm512_maskz_loadu_ps(t, x + i);
    mx = _mm512_mask_max_ps(mx, t, mx, v);
    check = _mm512_add_ps(check, _mm512_mul_ps(v, zero));
  }
  const float m = _mm512_reduce_max_ps(mx);
  *max_out = m;
  return std::isfinite(m) && _mm512_reduce_add_ps(check) == 0.f;
}

AVX512 bool SoftmaxRowAvx512(const float* x, float* y, int64_t n) {
  float m;
  if (!RowMaxAvx512(x, n, &m)) return false;
  ExpNormalizeAvx512(x, y, n, m);
  return true;
}

AVX512 bool ScaledMaskedSoftmaxRowAvx512(float* row, int64_t n, float scale, const float* mask, int64_t mask_stride) {
  const __m512 s = _mm512_set1_ps(scale);
  if (mask != nullptr && mask_stride > 1) {
    for (int64_t j = 0; j < n; ++j) row[j] = row[j] * scale + mask[j * mask_stride];
  } else {
    const __m512 broadcast = _mm512_set1_ps(mask != nullptr && mask_stride == 0 ? mask[0] : 0.f);
    for (int64_t i = 0; i < n; i += 16) {
      const __mmask16 t = TailMask(n - i);
      const __m512 add = mask != nullptr && mask_stride == 1 ? _mm512_maskz_loadu_ps(t, mask + i) : broadcast;
      _mm512_mask_storeu_ps(row + i, t, _mm512_fmadd_ps(_mm512_maskz_loadu_ps(t, row + i), s, add));
    }
  }
  return SoftmaxRowAvx512(row, row, n);
}
#undef AVX512
#endif

}  // namespace

bool SoftmaxRowFloatPortable(const float* x, float* y, int64_t n) {
  float m;
  if (!RowMaxPortable(x, n, &m)) return false;
  float lanes[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int j = 0; j < kLanes; ++j) {
      const float e = ExpNonPositive(x[i + j] - m);
      y[i + j] = e;
      lanes[j] += e;
    }
  }
  float sum = 0.f;
  for (int j = 0; j < kLanes; ++j) sum += lanes[j];
  for (; i < n; ++i) {
    const float e = ExpNonPositive(x[i] - m);
    y[i] = e;
    sum += e;
  }
  const float inv = 1.f / sum;
  for (int64_t k = 0; k < n; ++k) y[k] *= inv;
  return true;
}

bool ScaledMaskedSoftmaxRowFloatPortable(float* row, int64_t n, float scale, const float* mask, int64_t mask_stride) {
  if (mask == nullptr) {
    for (int64_t j = 0; j < n; ++j) row[j] *= scale;
  } else if (mask_stride == 1) {
    for (int64_t j = 0; j < n; ++j) row[j] = row[j] * scale + mask[j];
  } else {
    for (int64_t j = 0; j < n; ++j) row[j] = row[j] * scale + mask[j * mask_stride];
  }
  return SoftmaxRowFloatPortable(row, row, n);
}

bool SoftmaxRowFloat(const float* x, float* y, int64_t n) {
#ifdef GPUHIVE_HAVE_AVX512_PATHS
  if (Avx512Usable()) return SoftmaxRowAvx512(x, y, n);
#endif
  return SoftmaxRowFloatPortable(x, y, n);
}

bool ScaledMaskedSoftmaxRowFloat(float* row, int64_t n, float scale, const float* mask, int64_t mask_stride) {
#ifdef GPUHIVE_HAVE_AVX512_PATHS
  if (Avx512Usable()) return ScaledMaskedSoftmaxRowAvx512(row, n, scale, mask, mask_stride);
#endif
  return ScaledMaskedSoftmaxRowFloatPortable(row, n, scale, mask, mask_stride);
}

std::string_view SoftmaxRowImplementation() { return Avx512Usable() ? "avx512" : "portable"; }

}  // namespace gpuhive::cpu::loops
