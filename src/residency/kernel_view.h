// KernelViewResource: the budgeted device memory as the host-run backend sees it. On a device
// whose kernels the host runs (the simulated device) the pool hands out device pointers, which
// the host must not dereference; the CPU executor, standing in for the device's kernels, gets the
// same allocations through the device's KernelAccess instead. Deallocation maps back, so the pool,
// the budget and the tracking below see only device pointers.
#pragma once

#include <string>

#include "gpuhive/compute_device.h"
#include "gpuhive/memory_resource.h"

namespace gpuhive::residency {

class KernelViewResource final : public MemoryResource {
 public:
  // Neither is owned; both must outlive this resource.
  KernelViewResource(MemoryResource* upstream, const KernelAccess* access) : upstream_(upstream), access_(access) {}
  DeviceId device() const override { return upstream_->device(); }
  std::string name() const override { return "kernel-view(" + upstream_->name() + ")"; }
  std::optional<MemoryStats> Stats() const override { return upstream_->Stats(); }

 private:
  StatusOr<void*> DoAllocate(size_t bytes, AllocTag tag, StreamView stream) override {
    ASSIGN_OR_RETURN(void* p, upstream_->Allocate(bytes, tag, stream));
    return access_->Map(p);
  }
  void DoDeallocate(void* ptr, size_t bytes, AllocTag tag, StreamView stream) noexcept override {
    upstream_->Deallocate(access_->Unmap(ptr), bytes, tag, stream);
  }

  MemoryResource* const upstream_;
  const KernelAccess* const access_;
};

}  // namespace gpuhive::residency
