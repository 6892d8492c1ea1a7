// Registration entry points of the CPU kernel families (explicit calls: static libraries drop
// self-registering objects).
#pragma once

#include "gpuhive/kernel.h"

namespace gpuhive::cpu {

// oneDNN-backed operators: Conv, ConvTranspose, MatMul, Gemm, pooling, normalizations, Softmax,
// elementwise and binary math, reductions, Resize, LSTM/GRU, and the gpuhive.Fused* ops.
void RegisterOnednnKernels(KernelRegistry& registry);
// Plain-loop operators: shape, indexing, type conversion, comparison/logic and integer math.
void RegisterLoopKernels(KernelRegistry& registry);

}  // namespace gpuhive::cpu
