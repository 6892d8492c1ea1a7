#include "gpuhive/memory/adaptors.h"

#include <algorithm>

#include "gpuhive/logging.h"
#include "gpuhive/units.h"

namespace gpuhive {

namespace {
void AddAlloc(MemoryStats& s, size_t bytes) {
  s.current_bytes += bytes;
  s.peak_bytes = std::max(s.peak_bytes, s.current_bytes);
  s.total_bytes += bytes;
  ++s.num_allocations;
}
void AddFree(MemoryStats& s, size_t bytes) {
  s.current_bytes -= std::min<uint64_t>(bytes, s.current_bytes);
  ++s.num_deallocations;
}
}  // namespace

// ---- LimitResource ------------------------------------------------------------------------------

LimitResource::LimitResource(MemoryResource* upstream, Options options)
    : upstream_(upstream), options_(std::move(options)) {}

void LimitResource::SetOwnerLimit(uint32_t owner, uint64_t limit_bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  if (limit_bytes == kNoLimit) {
    options_.owner_limit_bytes.erase(owner);
  } else {
    options_.owner_limit_bytes[owner] = limit_bytes;
  }
}

uint64_t LimitResource::used_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return used_;
}
uint64_t LimitResource::owner_used_bytes(uint32_t owner) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = owner_used_.find(owner);
  return it == owner_used_.end() ? 0 : it->second;
}
uint64_t LimitResource::kind_used_bytes(MemoryKind kind) const {
  std::lock_guard<std::mutex> lock(mu_);
  return kind_used_[static_cast<int>(kind)];
}

StatusOr<void*> LimitResource::DoAllocate(size_t bytes, AllocTag tag, StreamView stream) {
  int k = static_cast<int>(tag.kind);
  {
    // Reserve the bytes first so concurrent allocations cannot overshoot together.
    std::lock_guard<std::mutex> lock(mu_);
    uint64_t& owner_used = owner_used_[tag.owner];
    if (bytes > options_.total_limit_bytes - std::min(used_, options_.total_limit_bytes)) {
      return ResourceExhausted("{} bytes would exceed the total limit of {} ({} in use)", bytes,
                               options_.total_limit_bytes, used_);
    }
    uint64_t kind_limit = options_.kind_limit_bytes[k];
    if (bytes > kind_limit - std::min(kind_used_[k], kind_limit)) {
      return ResourceExhausted("{} bytes would exceed the {} limit of {} ({} in use)", bytes,
                               MemoryKindName(tag.kind), kind_limit, kind_used_[k]);
    }
    auto it = options_.owner_limit_bytes.find(tag.owner);
    if (it != options_.owner_limit_bytes.end() && bytes > it->second - std::min(owner_used, it->second)) {
      return ResourceExhausted("{} bytes would exceed owner {}'s limit of {} ({} in use)", bytes, tag.owner,
                               it->second, owner_used);
    }
    used_ += bytes;
    kind_used_[k] += bytes;
    owner_used += bytes;
  }
  StatusOr<void*> p = upstream_->Allocate(bytes, tag, stream);
  if (!p.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    used_ -= bytes;
    kind_used_[k] -= bytes;
    owner_used_[tag.owner] -= bytes;
  }
  return p;
}

void LimitResource::DoDeallocate(void* ptr, size_t bytes, AllocTag tag, StreamView stream) noexcept {
  upstream_->Deallocate(ptr, bytes, tag, stream);
  std::lock_guard<std::mutex> lock(mu_);
  used_ -= std::min<uint64_t>(bytes, used_);
  uint64_t& kind_used = kind_used_[static_cast<int>(tag.kind)];
  kind_used -= std::min<uint64_t>(bytes, kind_used);
  auto it = owner_used_.find(tag.owner);
  if (it != owner_used_.end()) {
    it->second -= std::min<uint64_t>(bytes, it->second);
    if (it->second == 0) owner_used_.erase(it);
  }
}

// ---- StatisticsResource -------------------------------------------------------------------------

std::optional<MemoryStats> StatisticsResource::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return total_;
}
MemoryStats StatisticsResource::OwnerStats(uint32_t owner) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = owners_.find(owner);
  return it == owners_.end() ? MemoryStats{} : it->second;
}
MemoryStats StatisticsResource::KindStats(MemoryKind kind) const {
  std::lock_guard<std::mutex> lock(mu_);
  return kinds_[static_cast<int>(kind)];
}
std::map<uint32_t, MemoryStats> StatisticsResource::AllOwnerStats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return owners_;
}

StatusOr<void*> StatisticsResource::DoAllocate(size_t bytes, AllocTag tag, StreamView stream) {
  StatusOr<void*> p = upstream_->Allocate(bytes, tag, stream);
  std::lock_guard<std::mutex> lock(mu_);
  if (!p.ok()) {
    ++total_.num_failures;
    ++kinds_[static_cast<int>(tag.kind)].num_failures;
    ++owners_[tag.owner].num_failures;
    return p;
  }
  AddAlloc(total_, bytes);
  AddAlloc(kinds_[static_cast<int>(tag.kind)], bytes);
  AddAlloc(owners_[tag.owner], bytes);
  return p;
}

void StatisticsResource::DoDeallocate(void* ptr, size_t bytes, AllocTag tag, StreamView stream) noexcept {
  upstream_->Deallocate(ptr, bytes, tag, stream);
  std::lock_guard<std::mutex> lock(mu_);
  AddFree(total_, bytes);
  AddFree(kinds_[static_cast<int>(tag.kind)], bytes);
  AddFree(owners_[tag.owner], bytes);
}

// ---- TrackingResource ---------------------------------------------------------------------------

StatusOr<void*> TrackingResource::DoAllocate(size_t bytes, AllocTag tag, StreamView stream) {
  StatusOr<void*> p = upstream_->Allocate(bytes, tag, stream);
  if (!p.ok()) return p;
  std::lock_guard<std::mutex> lock(mu_);
  live_[*p] = Allocation{*p, bytes, tag, stream, next_sequence_++};
  outstanding_bytes_ += bytes;
  return p;
}

void TrackingResource::DoDeallocate(void* ptr, size_t bytes, AllocTag tag, StreamView stream) noexcept {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = live_.find(ptr);
    if (it == live_.end()) {
      ++unknown_frees_;
    } else {
      outstanding_bytes_ -= it->second.bytes;
      live_.erase(it);
    }
  }
  upstream_->Deallocate(ptr, bytes, tag, stream);
}

std::vector<TrackingResource::Allocation> TrackingResource::Outstanding() const {
  std::vector<Allocation> out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    out.reserve(live_.size());
    for (const auto& [p, a] : live_) out.push_back(a);
  }
  std::sort(out.begin(), out.end(), [](const Allocation& a, const Allocation& b) { return a.sequence < b.sequence; });
  return out;
}

std::vector<TrackingResource::Allocation> TrackingResource::OutstandingForOwner(uint32_t owner) const {
  std::vector<Allocation> all = Outstanding();
  std::erase_if(all, [owner](const Allocation& a) { return a.tag.owner != owner; });
  return all;
}

uint64_t TrackingResource::outstanding_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return outstanding_bytes_;
}

uint64_t TrackingResource::unknown_frees() const {
  std::lock_guard<std::mutex> lock(mu_);
  return unknown_frees_;
}

std::string TrackingResource::LeakReport() const {
  std::vector<Allocation> all = Outstanding();
  if (all.empty()) return "no leaks: 0 outstanding allocations\n";
  std::string out = fmt::format("{} outstanding allocations, {} bytes ({})\n", all.size(), outstanding_bytes(),
                                FormatBytes(outstanding_bytes()));
  std::map<uint32_t, std::pair<uint64_t, uint64_t>> by_owner;
  for (const Allocation& a : all) {
    out += fmt::format("  #{} {} bytes at {} owner={} kind={}\n", a.sequence, a.bytes, a.ptr, a.tag.owner,
                       MemoryKindName(a.tag.kind));
    auto& [count, bytes] = by_owner[a.tag.owner];
    ++count;
    bytes += a.bytes;
  }
  for (const auto& [owner, cb] : by_owner) {
    out += fmt::format("  owner {}: {} allocations, {} bytes\n", owner, cb.first, cb.second);
  }
  return out;
}

// ---- FailureCallbackResource --------------------------------------------------------------------

StatusOr<void*> FailureCallbackResource::DoAllocate(size_t bytes, AllocTag tag, StreamView stream) {
  for (int attempt = 0;; ++attempt) {
    StatusOr<void*> p = upstream_->Allocate(bytes, tag, stream);
    if (p.ok() || p.status().code() != StatusCode::kResourceExhausted) return p;
    if (attempt >= max_retries_ || !callback_ || !callback_(bytes, tag, p.status(), attempt)) {
      return p.status().WithContext(fmt::format("after {} retries", attempt));
    }
  }
}

StatusOr<void*> FaultInjectionResource::DoAllocate(size_t bytes, AllocTag tag, StreamView stream) {
  // splitmix64 over an atomic counter: a lock-free, reproducible draw per call.
  uint64_t z = state_.fetch_add(0x9E3779B97F4A7C15ull, std::memory_order_relaxed);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  if (static_cast<double>(z >> 11) * 0x1.0p-53 < probability_) {
    injected_.fetch_add(1, std::memory_order_relaxed);
    return ResourceExhausted("injected allocation failure ({} bytes) in {}", bytes, upstream_->name());
  }
  return upstream_->Allocate(bytes, tag, stream);
}

}  // namespace gpuhive
