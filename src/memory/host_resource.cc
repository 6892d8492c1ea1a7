#include <sys/mman.h>

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
  explicit AlignedHostResource(bool map_large) : map_large_(map_large) {}
  DeviceId device() const override { return CpuDevice(); }
  std::string name() const override { return map_large_ ? "host" : "host-transient"; }

 private:
  static constexpr size_t kMapThreshold = 1u << 20;
  StatusOr<void*> DoAllocate(size_t bytes, AllocTag, StreamView) override {
    if (map_large_ && bytes >= kMapThreshold) {
      void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) return ResourceExhausted("host allocation of {} bytes failed", bytes);
      return p;  // page aligned
    }
    void* p = std::aligned_alloc(kAlignment, (bytes + kAlignment - 1) / kAlignment * kAlignment);
    if (p == nullptr) return ResourceExhausted("host allocation of {} bytes failed", bytes);
    return p;
  }
  void DoDeallocate(void* ptr, size_t bytes, AllocTag, StreamView) noexcept override {
    if (map_large_ && bytes >= kMapThreshold) {
      munmap(ptr, bytes);
    } else {
      std::free(ptr);
    }
  }

  const bool map_large_;
};
}  // namespace

MemoryResource* DefaultHostResource() {
  static auto* resource = new AlignedHostResource(true);  // intentionally never destroyed
  return resource;
}

MemoryResource* TransientHostResource() {
  static auto* resource = new AlignedHostResource(false);  // intentionally never destroyed
  return resource;
}

}  // namespace gpuhive
