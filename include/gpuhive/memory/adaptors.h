// Adaptors that stack over any MemoryResource (RMM-style): hard limits, statistics, tracking and
// a failure callback. Each forwards to an upstream it does not own; the upstream must outlive it.
// All are thread safe; none holds its lock while calling the upstream or a callback.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "gpuhive/memory_resource.h"

namespace gpuhive {

inline constexpr uint64_t kNoLimit = std::numeric_limits<uint64_t>::max();

// Refuses (kResourceExhausted) any allocation that would take the bytes in use past a limit: the
// total, the allocation's kind, or its owner (model). An allocation that lands exactly on a limit
// succeeds. Bytes are counted as requested.
class LimitResource final : public MemoryResource {
 public:
  struct Options {
    uint64_t total_limit_bytes = kNoLimit;
    std::array<uint64_t, kNumMemoryKinds> kind_limit_bytes = {kNoLimit, kNoLimit, kNoLimit, kNoLimit, kNoLimit};
    std::map<uint32_t, uint64_t> owner_limit_bytes;  // owners not listed have no limit
  };
  LimitResource(MemoryResource* upstream, Options options);

  // Changes an owner's limit (kNoLimit removes it). Allocations already made stay.
  void SetOwnerLimit(uint32_t owner, uint64_t limit_bytes);
  uint64_t used_bytes() const;
  uint64_t owner_used_bytes(uint32_t owner) const;
  uint64_t kind_used_bytes(MemoryKind kind) const;

  DeviceId device() const override { return upstream_->device(); }
  std::string name() const override { return "limit(" + upstream_->name() + ")"; }

 private:
  StatusOr<void*> DoAllocate(size_t bytes, AllocTag tag, StreamView stream) override;
  void DoDeallocate(void* ptr, size_t bytes, AllocTag tag, StreamView stream) noexcept override;

  MemoryResource* const upstream_;
  mutable std::mutex mu_;
  Options options_;
  uint64_t used_ = 0;
  std::array<uint64_t, kNumMemoryKinds> kind_used_{};
  std::unordered_map<uint32_t, uint64_t> owner_used_;
};

// Counts current, peak and total bytes and allocation counts: overall, per owner and per kind.
class StatisticsResource final : public MemoryResource {
 public:
  explicit StatisticsResource(MemoryResource* upstream) : upstream_(upstream) {}

  std::optional<MemoryStats> Stats() const override;
  MemoryStats OwnerStats(uint32_t owner) const;  // zeros for an owner never seen
  MemoryStats KindStats(MemoryKind kind) const;
  std::map<uint32_t, MemoryStats> AllOwnerStats() const;

  DeviceId device() const override { return upstream_->device(); }
  std::string name() const override { return "stats(" + upstream_->name() + ")"; }

 private:
  StatusOr<void*> DoAllocate(size_t bytes, AllocTag tag, StreamView stream) override;
  void DoDeallocate(void* ptr, size_t bytes, AllocTag tag, StreamView stream) noexcept override;

  MemoryResource* const upstream_;
  mutable std::mutex mu_;
  MemoryStats total_;
  std::array<MemoryStats, kNumMemoryKinds> kinds_{};
  std::map<uint32_t, MemoryStats> owners_;
};

// Remembers every outstanding allocation with its tag, so leaks can be reported (e.g. at model
// unload: everything still owned by the model is a leak).
class TrackingResource final : public MemoryResource {
 public:
  struct Allocation {
    void* ptr = nullptr;
    size_t bytes = 0;
    AllocTag tag;
    StreamView stream;
    uint64_t sequence = 0;  // order of allocation, from 0
  };
  explicit TrackingResource(MemoryResource* upstream) : upstream_(upstream) {}

  // Outstanding allocations in allocation order; `owner` filters when set.
  std::vector<Allocation> Outstanding() const;
  std::vector<Allocation> OutstandingForOwner(uint32_t owner) const;
  uint64_t outstanding_bytes() const;
  // Human-readable report: "no leaks" or one line per outstanding allocation plus totals by owner.
  std::string LeakReport() const;
  // Deallocations of pointers this adaptor never handed out (forwarded anyway, and logged).
  uint64_t unknown_frees() const;

  DeviceId device() const override { return upstream_->device(); }
  std::string name() const override { return "tracking(" + upstream_->name() + ")"; }

 private:
  StatusOr<void*> DoAllocate(size_t bytes, AllocTag tag, StreamView stream) override;
  void DoDeallocate(void* ptr, size_t bytes, AllocTag tag, StreamView stream) noexcept override;

  MemoryResource* const upstream_;
  mutable std::mutex mu_;
  std::unordered_map<void*, Allocation> live_;
  uint64_t next_sequence_ = 0;
  uint64_t outstanding_bytes_ = 0;
  uint64_t unknown_frees_ = 0;
};

// On kResourceExhausted from the upstream, calls the callback (e.g. the residency manager, which
// evicts models) and retries while it returns true, up to max_retries times. Other errors pass
// through untouched. The callback runs without any lock held and may allocate or free through
// this resource.
class FailureCallbackResource final : public MemoryResource {
 public:
  // attempt counts from 0; `error` is the upstream's status for this attempt.
  using Callback = std::function<bool(size_t bytes, AllocTag tag, const Status& error, int attempt)>;
  FailureCallbackResource(MemoryResource* upstream, Callback callback, int max_retries = 8)
      : upstream_(upstream), callback_(std::move(callback)), max_retries_(max_retries) {}

  DeviceId device() const override { return upstream_->device(); }
  std::string name() const override { return "on-failure(" + upstream_->name() + ")"; }

 private:
  StatusOr<void*> DoAllocate(size_t bytes, AllocTag tag, StreamView stream) override;
  void DoDeallocate(void* ptr, size_t bytes, AllocTag tag, StreamView stream) noexcept override {
    upstream_->Deallocate(ptr, bytes, tag, stream);
  }

  MemoryResource* const upstream_;
  const Callback callback_;
  const int max_retries_;
};

// Fault injection (a testing aid: `gpuhive serve --inject-alloc-failures P` and the soak test):
// each allocation fails with kResourceExhausted with probability `probability`, as a device that
// ran out of memory would, so the layers above prove they turn it into eviction or a clear refusal.
// Deterministic for a given seed and call sequence. Thread safe.
class FaultInjectionResource final : public MemoryResource {
 public:
  FaultInjectionResource(MemoryResource* upstream, double probability, uint64_t seed = 1)
      : upstream_(upstream), probability_(probability), state_(seed * 0x9E3779B97F4A7C15ull + 1) {}

  DeviceId device() const override { return upstream_->device(); }
  std::string name() const override { return "fault-injection(" + upstream_->name() + ")"; }
  uint64_t injected() const { return injected_.load(std::memory_order_relaxed); }

 private:
  StatusOr<void*> DoAllocate(size_t bytes, AllocTag tag, StreamView stream) override;
  void DoDeallocate(void* ptr, size_t bytes, AllocTag tag, StreamView stream) noexcept override {
    upstream_->Deallocate(ptr, bytes, tag, stream);
  }

  MemoryResource* const upstream_;
  const double probability_;
  std::atomic<uint64_t> state_;
  std::atomic<uint64_t> injected_{0};
};

}  // namespace gpuhive
