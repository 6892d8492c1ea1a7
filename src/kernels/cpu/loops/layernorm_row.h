// One LayerNormalization row, y = (x - mean) / sqrt(var + eps) * scale + bias, with full-length
// scale and bias (bias may be null). The build targets baseline x86-64, where the kernel's loops
// run as SSE; where the CPU has AVX-512 (loops::Avx512Usable) the rows run 16 lanes wide.
#pragma once

#include <cstdint>

namespace gpuhive::cpu::loops {

// Writes y (may equal x) and returns mean and 1 / sqrt(var + eps) through the pointers. AVX-512
// only: call when Avx512Usable().
void LayerNormRowAvx512(const float* x, float* y, int64_t n, const float* scale, const float* bias, float epsilon,
                        float* mean, float* inv_std);

}  // namespace gpuhive::cpu::loops
