// The CPU backend's registry: every CPU kernel family registers itself here.
#include "gpuhive/kernel.h"
#include "kernels/cpu/onednn/common.h"
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

int CpuExactInt8WeightBits() { return cpu::onednn::HasInt8DotProduct() ? 8 : 7; }
bool CpuHasBf16Compute() { return cpu::onednn::HasBf16DotProduct(); }
bool CpuHasWinogradConv() { return cpu::onednn::HasWinogradConv(); }

}  // namespace gpuhive
