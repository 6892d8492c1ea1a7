#include <cstdlib>

#include "gpuhive/memory_resource.h"

namespace gpuhive {

std::string_view MemoryKindName(MemoryKind kind) {
  switch (kind) {
    case MemoryKind::kWeights: return "weights";
    case MemoryKind::kActivations: return "activations";
    case MemoryKind::kWorkspace: return "workspace";
    case MemoryKind::kIO: return "io";
    case MemoryKind::kOther: return "other";
  }
  return "other";
}

namespace {
// Aligned host memory straight from the C library: the upstream of host pools and the default
// resource when no pool is configured.
class AlignedHostResource final : public MemoryResource {
 public:
  DeviceId device() const override { return CpuDevice(); }
  std::string name() const override { return "host"; }

 private:
  StatusOr<void*> DoAllocate(size_t bytes, AllocTag, StreamView) override {
    void* p = std::aligned_alloc(kAlignment, (bytes + kAlignment - 1) / kAlignment * kAlignment);
    if (p == nullptr) return ResourceExhausted("host allocation of {} bytes failed", bytes);
    return p;
  }
  void DoDeallocate(void* ptr, size_t, AllocTag, StreamView) noexcept override { std::free(ptr); }
};
}  // namespace

MemoryResource* DefaultHostResource() {
  static auto* resource = new AlignedHostResource();  // intentionally never destroyed
  return resource;
}

}  // namespace gpuhive
