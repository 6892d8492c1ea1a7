// Registration of the plain-loop math kernels: elementwise unary/binary math, comparison and logic,
// Cast, reductions, arg-reductions, CumSum, TopK, the softmax family, quantization, Einsum,
// MatMulInteger and QLinearMatMul.
#pragma once

#include "gpuhive/kernel.h"

namespace gpuhive::cpu {

// Registers every math_* kernel (called once from RegisterLoopKernels).
void RegisterMathKernels(KernelRegistry& registry);

namespace math {
// One per source file; RegisterMathKernels calls them all.
void RegisterUnaryKernels(KernelRegistry& registry);
void RegisterBinaryKernels(KernelRegistry& registry);
void RegisterCastKernels(KernelRegistry& registry);
void RegisterReduceKernels(KernelRegistry& registry);
void RegisterSoftmaxKernels(KernelRegistry& registry);
void RegisterQuantKernels(KernelRegistry& registry);
void RegisterQLinearContribKernels(KernelRegistry& registry);  // com.microsoft QLinearAdd, ... (math_qlinear.cc)
void RegisterEinsumKernels(KernelRegistry& registry);
void RegisterMatMulIntegerKernels(KernelRegistry& registry);
}  // namespace math

}  // namespace gpuhive::cpu
