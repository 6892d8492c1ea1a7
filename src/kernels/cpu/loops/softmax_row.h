// Softmax of one contiguous float row, vectorizable (no libm call per element). Shared by the
// Softmax kernel and the fused attention kernel.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace gpuhive::cpu::loops {

// exp for x <= 0 in loops the compiler vectorizes (libm's expf is a call per element: Softmax over
// BERT's attention rows took 13 % of the model). Cephes' expf polynomial after reducing by k*ln2,
// k rounded with the 1.5*2^23 trick; about 1 ulp, and 0 below -87.
inline float ExpNonPositive(float x) {
  x = x < -87.f ? -87.f : x;
  const float k = (x * 1.44269504f + 12582912.f) - 12582912.f;
  const float r = x - k * 0.693359375f + k * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float e = p * r * r + r + 1.f;
  const int32_t bits = (static_cast<int32_t>(k) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return x <= -87.f ? 0.f : e * scale;
}

// Softmax of one contiguous float row; false (nothing written) when the row holds NaN or an
// infinity, which the general path handles with ONNX's semantics.
inline bool SoftmaxRowFloat(const float* x, float* y, int64_t n) {
  float lanes[8];
  for (float& l : lanes) l = -std::numeric_limits<float>::infinity();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int j = 0; j < 8; ++j) lanes[j] = x[i + j] > lanes[j] ? x[i + j] : lanes[j];
  }
  float m = lanes[0];
  for (int j = 1; j < 8; ++j) m = lanes[j] > m ? lanes[j] : m;
  for (; i < n; ++i) m = x[i] > m ? x[i] : m;
  float check = 0.f;
  for (int64_t k = 0; k < n; ++k) check += x[k] * 0.f;  // NaN or +-inf anywhere makes this NaN
  if (!std::isfinite(m) || check != 0.f) return false;
  float sum = 0.f;
  for (int64_t k = 0; k < n; ++k) {
    const float e = ExpNonPositive(x[k] - m);
    y[k] = e;
    sum += e;
  }
  const float inv = 1.f / sum;
  for (int64_t k = 0; k < n; ++k) y[k] *= inv;
  return true;
}

// The general softmax of one row with ONNX's results for non-finite values (masked -inf columns
// give 0, a NaN anywhere gives NaN, an all -inf row gives NaN).
inline void SoftmaxRowGeneral(const float* x, float* y, int64_t n) {
  float m = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) m = x[i] > m ? x[i] : m;
  float sum = 0.f;
  for (int64_t i = 0; i < n; ++i) {
    y[i] = std::exp(x[i] - m);
    sum += y[i];
  }
  for (int64_t i = 0; i < n; ++i) y[i] /= sum;
}

}  // namespace gpuhive::cpu::loops
