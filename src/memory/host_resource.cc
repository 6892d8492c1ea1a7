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
  DeviceId device() const override { return CpuDevice(); }
  std::string name() const override { return "host"; }

 private:
  // Large blocks (weights, host-tier copies, pool segments) are mapped and unmapped directly: their
  // pages go back to the system the moment they are freed. From malloc's heaps, freed weights of
  // evicted models stayed in the process (fragmented arenas): a server swapping sixteen 8 MiB models
  // through a 40 MiB budget grew to 449 MiB resident.
  static constexpr size_t kMapThreshold = 1u << 20;
  StatusOr<void*> DoAllocate(size_t bytes, AllocTag, StreamView) override {
    if (bytes >= kMapThreshold) {
      void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) return ResourceExhausted("host allocation of {} bytes failed", bytes);
      return p;  // page aligned
    }
    void* p = std::aligned_alloc(kAlignment, (bytes + kAlignment - 1) / kAlignment * kAlignment);
    if (p == nullptr) return ResourceExhausted("host allocation of {} bytes failed", bytes);
    return p;
  }
  void DoDeallocate(void* ptr, size_t bytes, AllocTag, StreamView) noexcept override {
    if (bytes >= kMapThreshold) {
      munmap(ptr, bytes);
    } else {
      std::free(ptr);
    }
  }
};
}  // namespace

MemoryResource* DefaultHostResource() {
  static auto* resource = new AlignedHostResource();  // intentionally never destroyed
  return resource;
}

}  // namespace gpuhive
