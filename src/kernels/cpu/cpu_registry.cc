// The CPU backend's registry: every CPU kernel family registers itself here.
#include "gpuhive/kernel.h"
#include "kernels/cpu/register.h"

namespace gpuhive {

const KernelRegistry& CpuKernelRegistry() {
  static const KernelRegistry* registry = [] {
    auto* r = new KernelRegistry();  // lives for the whole process
    cpu::RegisterOnednnKernels(*r);
    cpu::RegisterLoopKernels(*r);
    return r;
  }();
  return *registry;
}

}  // namespace gpuhive
