// Softmax of one contiguous float row. Shared by the Softmax kernel and the fused attention
// kernel. The rows run on an AVX-512 path where the CPU has it (chosen once at start-up; the build
// targets baseline x86-64, where GCC vectorizes these loops to SSE with one serial chain per
// reduction: 3.5 of BERT-base's 93 ms at batch 1 went to the attention's softmax), and on a
// portable path elsewhere.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string_view>

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

// y = softmax(x) of one contiguous float row; false (y then holds unspecified values, x is
// unchanged unless x == y) when the row holds NaN or an infinity, which the general path handles
// with ONNX's semantics. x == y is allowed.
bool SoftmaxRowFloat(const float* x, float* y, int64_t n);

// row = softmax(row * scale + mask[j * mask_stride]) in place (mask may be null; a stride of 0
// broadcasts mask[0]). False when the scaled, masked row holds NaN or an infinity: the row then
// holds row * scale + mask, for the general path.
bool ScaledMaskedSoftmaxRowFloat(float* row, int64_t n, float scale, const float* mask, int64_t mask_stride);

// Which path the two functions above take on this CPU: "avx512" or "portable".
std::string_view SoftmaxRowImplementation();

// The portable paths, callable on any CPU (the tests compare both paths where AVX-512 exists).
bool SoftmaxRowFloatPortable(const float* x, float* y, int64_t n);
bool ScaledMaskedSoftmaxRowFloatPortable(float* row, int64_t n, float scale, const float* mask,
                                         int64_t mask_stride);

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
