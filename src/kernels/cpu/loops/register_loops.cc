#include "kernels/cpu/register.h"
#include "kernels/cpu/loops/tensor_register.h"
#include "kernels/cpu/loops/math_register.h"

namespace gpuhive::cpu {
void RegisterLoopKernels(KernelRegistry& registry) {
  RegisterTensorKernels(registry);
  RegisterMathKernels(registry);
}
}  // namespace gpuhive::cpu
