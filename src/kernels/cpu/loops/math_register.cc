#include "kernels/cpu/loops/math_register.h"

namespace gpuhive::cpu {

void RegisterMathKernels(KernelRegistry& registry) {
  math::RegisterUnaryKernels(registry);
  math::RegisterBinaryKernels(registry);
  math::RegisterCastKernels(registry);
  math::RegisterReduceKernels(registry);
  math::RegisterSoftmaxKernels(registry);
  math::RegisterQuantKernels(registry);
  math::RegisterQLinearContribKernels(registry);
  math::RegisterEinsumKernels(registry);
  math::RegisterMatMulIntegerKernels(registry);
}

}  // namespace gpuhive::cpu
