#include <sys/mman.h>

#include <cstdlib>
#include <mutex>
#include <vector>

#include "gpuhive/memory_resource.h"
#include "gpuhive/units.h"

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
// Aligned host memory straight from the C library, blocks of 1 MiB and more mapped directly (so
// they leave the process when freed): the upstream of host pools and the default resource when no
// pool is configured.
class AlignedHostResource final : public MemoryResource {
 public:
  DeviceId device() const override { return CpuDevice(); }
  std::string name() const override { return "host"; }

 private:
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

// Per-request buffers (outputs, the naive mode's arenas): blocks of kMinCached bytes and more are
// mapped here and, when freed, kept for reuse by a later allocation of the same page-rounded size,
// so that a model's outputs are not faulted in afresh on every request (LRASPP's 4 MiB output at
// batch 1 spent a fifth of its run in page faults). At most kMaxCachedBytes stay cached, and a block
// unused for kMaxIdleNs is unmapped at the next call. Smaller blocks come from malloc's heap.
class RequestBufferResource final : public MemoryResource {
 public:
  static constexpr size_t kMinCached = 128u << 10;
  static constexpr size_t kMaxCachedBytes = 256u << 20;
  static constexpr int64_t kMaxIdleNs = 2'000'000'000;

  DeviceId device() const override { return CpuDevice(); }
  std::string name() const override { return "host-transient"; }

 private:
  struct Cached {
    void* ptr;
    size_t bytes;
    int64_t freed_ns;
  };

  static size_t PageRounded(size_t bytes) { return (bytes + 4095) & ~size_t{4095}; }

  StatusOr<void*> DoAllocate(size_t bytes, AllocTag, StreamView) override {
    if (bytes < kMinCached) {
      void* p = std::aligned_alloc(kAlignment, (bytes + kAlignment - 1) / kAlignment * kAlignment);
      if (p == nullptr) return ResourceExhausted("host allocation of {} bytes failed", bytes);
      return p;
    }
    const size_t n = PageRounded(bytes);
    std::vector<Cached> stale;
    void* found = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (size_t i = cache_.size(); i-- > 0;) {  // newest first: its pages are the likeliest warm
        if (cache_[i].bytes == n) {
          found = cache_[i].ptr;
          cached_bytes_ -= n;
          cache_.erase(cache_.begin() + static_cast<std::ptrdiff_t>(i));
          break;
        }
      }
      TrimLocked(NowNs(), &stale);
    }
    Unmap(stale);
    if (found != nullptr) return found;
    void* p = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return ResourceExhausted("host allocation of {} bytes failed", bytes);
    return p;
  }

  void DoDeallocate(void* ptr, size_t bytes, AllocTag, StreamView) noexcept override {
    if (bytes < kMinCached) {
      std::free(ptr);
      return;
    }
    const size_t n = PageRounded(bytes);
    std::vector<Cached> stale;
    {
      std::lock_guard<std::mutex> lock(mu_);
      try {
        cache_.push_back({ptr, n, NowNs()});
        cached_bytes_ += n;
      } catch (...) {
        stale.push_back({ptr, n, 0});  // no room to remember it: give it back
      }
      TrimLocked(NowNs(), &stale);
    }
    Unmap(stale);
  }

  // Moves blocks idle too long, then the oldest beyond the byte limit, into `out` (unmapped by the
  // caller outside the lock).
  void TrimLocked(int64_t now, std::vector<Cached>* out) noexcept {
    size_t keep_from = 0;
    while (keep_from < cache_.size() &&
           (now - cache_[keep_from].freed_ns > kMaxIdleNs || cached_bytes_ > kMaxCachedBytes)) {
      cached_bytes_ -= cache_[keep_from].bytes;
      try {
        out->push_back(cache_[keep_from]);
      } catch (...) {
        munmap(cache_[keep_from].ptr, cache_[keep_from].bytes);
      }
      ++keep_from;
    }
    cache_.erase(cache_.begin(), cache_.begin() + static_cast<std::ptrdiff_t>(keep_from));
  }

  static void Unmap(const std::vector<Cached>& blocks) noexcept {
    for (const Cached& c : blocks) munmap(c.ptr, c.bytes);
  }

  std::mutex mu_;
  std::vector<Cached> cache_;  // oldest first
  size_t cached_bytes_ = 0;
};
}  // namespace

MemoryResource* DefaultHostResource() {
  static auto* resource = new AlignedHostResource();  // intentionally never destroyed
  return resource;
}

MemoryResource* TransientHostResource() {
  static auto* resource = new RequestBufferResource();  // intentionally never destroyed
  return resource;
}

}  // namespace gpuhive
