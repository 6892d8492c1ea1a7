// FirstFitResource: the naive design the pool is measured against. One buffer of a fixed capacity
// taken from the upstream up front; allocations take the first free range that fits (address
// order); frees insert into an address-sorted free list and merge with neighbours. It never
// grows, never gives memory back, and fragments: a request can fail while the total free bytes
// would have been enough. Thread safe (one lock).
#pragma once

#include <map>
#include <memory>
#include <mutex>

#include "gpuhive/memory_resource.h"

namespace gpuhive {

class FirstFitResource final : public MemoryResource {
 public:
  // Takes `capacity_bytes` (rounded up to 256) from `upstream` (DefaultHostResource() when null).
  static StatusOr<std::unique_ptr<FirstFitResource>> Create(size_t capacity_bytes, MemoryResource* upstream = nullptr);
  ~FirstFitResource() override;

  size_t capacity() const { return capacity_; }
  size_t free_bytes() const;
  size_t largest_free_block() const;
  size_t num_free_blocks() const;
  std::optional<MemoryStats> Stats() const override;

  DeviceId device() const override { return upstream_->device(); }
  std::string name() const override { return "first-fit(" + upstream_->name() + ")"; }

 private:
  FirstFitResource(MemoryResource* upstream, char* base, size_t capacity);
  StatusOr<void*> DoAllocate(size_t bytes, AllocTag tag, StreamView stream) override;
  void DoDeallocate(void* ptr, size_t bytes, AllocTag tag, StreamView stream) noexcept override;

  MemoryResource* const upstream_;
  char* const base_;
  const size_t capacity_;
  mutable std::mutex mu_;
  std::map<size_t, size_t> free_;  // offset -> size, address order
  size_t free_bytes_ = 0;
  MemoryStats stats_;
};

}  // namespace gpuhive
