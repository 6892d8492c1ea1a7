#include "kernels/cpu/register.h"

namespace gpuhive::cpu {
void RegisterOnednnKernels(KernelRegistry& registry) {}
}  // namespace gpuhive::cpu
