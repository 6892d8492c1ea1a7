#include "gpuhive/memory/naive_resource.h"

#include <algorithm>

#include "gpuhive/logging.h"
#include "gpuhive/units.h"

namespace gpuhive {

StatusOr<std::unique_ptr<FirstFitResource>> FirstFitResource::Create(size_t capacity_bytes,
                                                                     MemoryResource* upstream) {
  if (upstream == nullptr) upstream = DefaultHostResource();
  size_t capacity = AlignUp(capacity_bytes, kAlignment);
  if (capacity == 0) return InvalidArgument("first-fit resource of 0 bytes");
  ASSIGN_OR_RETURN(void* base, upstream->Allocate(capacity));
  return std::unique_ptr<FirstFitResource>(new FirstFitResource(upstream, static_cast<char*>(base), capacity));
}

FirstFitResource::FirstFitResource(MemoryResource* upstream, char* base, size_t capacity)
    : upstream_(upstream), base_(base), capacity_(capacity) {
  free_[0] = capacity;
  free_bytes_ = capacity;
}

FirstFitResource::~FirstFitResource() { upstream_->Deallocate(base_, capacity_); }

size_t FirstFitResource::free_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return free_bytes_;
}
size_t FirstFitResource::largest_free_block() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t largest = 0;
  for (const auto& [off, size] : free_) largest = std::max(largest, size);
  return largest;
}
size_t FirstFitResource::num_free_blocks() const {
  std::lock_guard<std::mutex> lock(mu_);
  return free_.size();
}
std::optional<MemoryStats> FirstFitResource::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

StatusOr<void*> FirstFitResource::DoAllocate(size_t bytes, AllocTag, StreamView) {
  size_t rounded = AlignUp(bytes, kAlignment);
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = free_.begin(); it != free_.end(); ++it) {
    if (it->second < rounded) continue;
    size_t off = it->first, size = it->second;
    free_.erase(it);
    if (size > rounded) free_[off + rounded] = size - rounded;
    free_bytes_ -= rounded;
    stats_.current_bytes += bytes;
    stats_.peak_bytes = std::max(stats_.peak_bytes, stats_.current_bytes);
    stats_.total_bytes += bytes;
    ++stats_.num_allocations;
    return static_cast<void*>(base_ + off);
  }
  ++stats_.num_failures;
  return ResourceExhausted("first-fit: no free range of {} bytes ({} free in {} ranges)", rounded, free_bytes_,
                           free_.size());
}

void FirstFitResource::DoDeallocate(void* ptr, size_t bytes, AllocTag, StreamView) noexcept {
  char* p = static_cast<char*>(ptr);
  if (p < base_ || p >= base_ + capacity_) {
    GH_LOG_ERROR("memory", "first-fit: deallocate of foreign pointer {} ignored", ptr);
    return;
  }
  size_t off = static_cast<size_t>(p - base_), size = AlignUp(bytes, kAlignment);
  std::lock_guard<std::mutex> lock(mu_);
  auto next = free_.lower_bound(off);
  if (next != free_.end() && next->first == off) {
    GH_LOG_ERROR("memory", "first-fit: double free of {} ignored", ptr);
    return;
  }
  free_bytes_ += size;
  stats_.current_bytes -= std::min<uint64_t>(bytes, stats_.current_bytes);
  ++stats_.num_deallocations;
  if (next != free_.end() && off + size == next->first) {
    size += next->second;
    next = free_.erase(next);
  }
  if (next != free_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == off) {
      prev->second += size;
      return;
    }
  }
  free_[off] = size;
}

}  // namespace gpuhive
