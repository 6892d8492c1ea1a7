#include "kernels/cpu/loops/tensor_register.h"

namespace gpuhive::cpu {

void RegisterTensorKernels(KernelRegistry& registry) {
  RegisterTensorShapeKernels(registry);
  RegisterTensorMoveKernels(registry);
  RegisterTensorIndexKernels(registry);
  RegisterTensorResizeKernels(registry);
  RegisterTensorDetectionKernels(registry);
  RegisterTensorUniqueKernels(registry);
  RegisterTensorGridSampleKernels(registry);
  RegisterTensorRoiAlignKernels(registry);
}

}  // namespace gpuhive::cpu
