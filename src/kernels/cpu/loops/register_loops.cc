#include "kernels/cpu/register.h"

namespace gpuhive::cpu {
void RegisterLoopKernels(KernelRegistry& registry) {}
}  // namespace gpuhive::cpu
