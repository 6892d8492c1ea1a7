// MemoryResource: the one allocator interface every weight, activation, workspace and I/O buffer in
// gpuhive goes through (DESIGN.md "Memory model"). Modeled on RMM's device_memory_resource: public
// non-virtual Allocate/Deallocate call private virtual DoAllocate/DoDeallocate, so adaptors (limits,
// statistics, tracking, failure callback) stack over any upstream.
//
// Contract for every implementation:
//  - Allocate returns memory aligned to at least kAlignment (256 bytes), or an error status
//    (kResourceExhausted when out of memory or over a limit); it never throws or aborts.
//  - Allocate(0) returns nullptr with OK; Deallocate(nullptr, ...) is a no-op.
//  - Deallocate must receive the same bytes, tag and stream that Allocate was called with.
//  - Stream-ordered: memory freed on stream S may be reused by work later on S at once, and on
//    another stream only after S's earlier work is complete.
//  - Thread safe unless the implementation's comment says otherwise.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "gpuhive/device.h"
#include "gpuhive/status.h"

namespace gpuhive {

enum class MemoryKind : uint8_t { kWeights = 0, kActivations, kWorkspace, kIO, kOther };
inline constexpr int kNumMemoryKinds = 5;
std::string_view MemoryKindName(MemoryKind kind);

// Who owns an allocation: owner 0 means "no model" (server-wide); models get ids from the
// residency manager. Used for per-model limits and accounting.
struct AllocTag {
  uint32_t owner = 0;
  MemoryKind kind = MemoryKind::kOther;
  friend bool operator==(const AllocTag&, const AllocTag&) = default;
};

// Counters a resource may report through MemoryResource::Stats(). Byte counts are the bytes
// callers asked for (not rounded). Pools and the statistics adaptor report them; plain upstreams
// report nothing.
struct MemoryStats {
  uint64_t current_bytes = 0;      // allocated and not yet freed
  uint64_t peak_bytes = 0;         // highest current_bytes seen
  uint64_t total_bytes = 0;        // sum over every successful allocation
  uint64_t num_allocations = 0;    // successful allocations
  uint64_t num_deallocations = 0;
  uint64_t num_failures = 0;       // allocations that returned an error
};

class MemoryResource {
 public:
  static constexpr size_t kAlignment = 256;

  virtual ~MemoryResource() = default;

  StatusOr<void*> Allocate(size_t bytes, AllocTag tag = {}, StreamView stream = {}) {
    if (bytes == 0) return static_cast<void*>(nullptr);
    return DoAllocate(bytes, tag, stream);
  }
  void Deallocate(void* ptr, size_t bytes, AllocTag tag = {}, StreamView stream = {}) noexcept {
    if (ptr != nullptr) DoDeallocate(ptr, bytes, tag, stream);
  }

  // The device whose memory this resource hands out (CPU for host and pinned memory).
  virtual DeviceId device() const = 0;
  // Short human-readable name for logs and benchmarks ("host", "pool(cuda:0)").
  virtual std::string name() const = 0;
  // Statistics of this resource, when it keeps them (nullopt otherwise). Thread safe.
  virtual std::optional<MemoryStats> Stats() const { return std::nullopt; }

 private:
  virtual StatusOr<void*> DoAllocate(size_t bytes, AllocTag tag, StreamView stream) = 0;
  virtual void DoDeallocate(void* ptr, size_t bytes, AllocTag tag, StreamView stream) noexcept = 0;
};

// Process-wide aligned host allocator (never null, never destroyed). The default upstream on CPU.
// Blocks of 1 MiB and more are mapped and unmapped directly, so long-lived large blocks (weights,
// host-tier models) leave the process when freed; per-request buffers belong in
// TransientHostResource() (gpuhive/memory/upstreams.h).
MemoryResource* DefaultHostResource();

// RAII owner of one allocation. Move-only. The resource must outlive the buffer.
class Buffer {
 public:
  Buffer() = default;
  Buffer(MemoryResource* mr, void* ptr, size_t bytes, AllocTag tag, StreamView stream)
      : mr_(mr), ptr_(ptr), bytes_(bytes), tag_(tag), stream_(stream) {}
  Buffer(Buffer&& o) noexcept { *this = std::move(o); }
  Buffer& operator=(Buffer&& o) noexcept {
    if (this != &o) {
      Reset();
      mr_ = std::exchange(o.mr_, nullptr);
      ptr_ = std::exchange(o.ptr_, nullptr);
      bytes_ = std::exchange(o.bytes_, 0);
      tag_ = o.tag_;
      stream_ = o.stream_;
    }
    return *this;
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { Reset(); }

  static StatusOr<Buffer> Allocate(MemoryResource* mr, size_t bytes, AllocTag tag = {},
                                   StreamView stream = {}) {
    ASSIGN_OR_RETURN(void* p, mr->Allocate(bytes, tag, stream));
    return Buffer(mr, p, bytes, tag, stream);
  }

  void Reset() noexcept {
    if (mr_ != nullptr) mr_->Deallocate(ptr_, bytes_, tag_, stream_);
    mr_ = nullptr;
    ptr_ = nullptr;
    bytes_ = 0;
  }

  void* data() const { return ptr_; }
  size_t size() const { return bytes_; }
  AllocTag tag() const { return tag_; }
  MemoryResource* resource() const { return mr_; }

 private:
  MemoryResource* mr_ = nullptr;
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
  AllocTag tag_;
  StreamView stream_;
};

}  // namespace gpuhive
