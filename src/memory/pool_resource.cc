#include "gpuhive/memory/pool_resource.h"

#include <algorithm>
#include <bit>

#include "gpuhive/logging.h"
#include "gpuhive/units.h"
#include "memory/stream_events.h"

namespace gpuhive {

namespace {
constexpr size_t kAlign = MemoryResource::kAlignment;
constexpr size_t kSegmentRounding = 2u << 20;
constexpr size_t kSmallLimit = 1u << 20;

struct SizeClassInfo {
  int index;
  size_t size;
};

// 256 B steps up to 4 KiB (16 classes), then 8 classes per power of two up to 1 MiB (64 classes):
// at most 12.5% rounding above 4 KiB.
SizeClassInfo SizeClassOf(size_t bytes) {
  size_t r = AlignUp(bytes, kAlign);
  if (r <= 4096) return {static_cast<int>(r / kAlign) - 1, r};
  int k = 63 - std::countl_zero(static_cast<uint64_t>(r - 1));  // 2^k < r <= 2^(k+1)
  size_t step = (size_t{1} << k) / 8;
  size_t size = AlignUp(r, step);
  int index = 16 + (k - 12) * 8 + static_cast<int>((size - (size_t{1} << k)) / step) - 1;
  return {index, size};
}
}  // namespace

struct PoolResource::Segment {
  char* ptr = nullptr;
  size_t size = 0;
  Block* first = nullptr;
};

struct PoolResource::Block {
  char* ptr = nullptr;
  size_t size = 0;
  Block* prev = nullptr;  // address neighbours inside the segment
  Block* next = nullptr;
  Segment* segment = nullptr;
  bool allocated = false;
  // Free blocks only: the stream whose later work may reuse the block at once (null: any stream),
  // and the event that completes when the freeing stream's work is done.
  void* stream = nullptr;
  void* event = nullptr;
};

bool PoolResource::FreeKeyLess::operator()(const Block* a, const Block* b) const {
  auto sa = reinterpret_cast<uintptr_t>(a->stream), sb = reinterpret_cast<uintptr_t>(b->stream);
  if (sa != sb) return sa < sb;
  if (a->size != b->size) return a->size < b->size;
  return reinterpret_cast<uintptr_t>(a->ptr) < reinterpret_cast<uintptr_t>(b->ptr);
}

StatusOr<std::unique_ptr<PoolResource>> PoolResource::Create(Options options) {
  if (options.small_max_bytes > kSmallLimit) {
    return InvalidArgument("pool small_max_bytes {} exceeds the 1 MiB size-class limit", options.small_max_bytes);
  }
  if (options.range) {
    size_t g = options.range->granularity();
    if (g == 0 || g % kAlign != 0 || options.range->size() % g != 0) {
      return InvalidArgument("virtual range granularity {} must be a non-zero multiple of {} dividing its size {}",
                             g, kAlign, options.range->size());
    }
  }
  if (options.reserve_limit_bytes < kAlign) {
    return InvalidArgument("pool reserve limit {} is smaller than one block", options.reserve_limit_bytes);
  }
  return std::unique_ptr<PoolResource>(new PoolResource(std::move(options)));
}

PoolResource::PoolResource(Options options)
    : options_(std::move(options)),
      upstream_(options_.upstream ? options_.upstream : DefaultHostResource()),
      range_(options_.range.get()),
      events_(options_.stream_events ? options_.stream_events : memory_detail::DefaultStreamEvents()) {
  if (range_ != nullptr) {
    auto* seg = new Segment{range_->base(), range_->size(), nullptr};
    Block* b = NewBlock();
    b->ptr = seg->ptr;
    b->size = seg->size;
    b->segment = seg;
    seg->first = b;
    segments_.push_back(seg);
    free_.insert(b);
    committed_.assign(range_->size() / range_->granularity(), 0);
  }
}

PoolResource::~PoolResource() {
  FlushCaches();
  std::lock_guard<std::mutex> lock(mu_);
  if (!live_.empty()) {
    GH_LOG_WARN("memory", "{} destroyed with {} live allocations", name(), live_.size());
  }
  for (Block* b : pending_) ReleaseEvent(b->event);
  pending_.clear();
  for (Segment* seg : segments_) {
    if (range_ == nullptr) upstream_->Deallocate(seg->ptr, seg->size);
    for (Block* b = seg->first; b != nullptr;) {
      Block* next = b->next;
      delete b;
      b = next;
    }
    delete seg;
  }
  if (range_ != nullptr) {
    size_t g = range_->granularity();
    for (size_t i = 0; i < committed_.size(); ++i) {
      if (committed_[i]) range_->Decommit(i * g, g);
    }
  }
  for (Block* b : spare_blocks_) delete b;
}

DeviceId PoolResource::device() const { return range_ ? range_->device() : upstream_->device(); }

std::string PoolResource::name() const {
  return fmt::format("{}({})", options_.label, range_ ? range_->name() : upstream_->name());
}

PoolResource::Block* PoolResource::NewBlock() {
  if (!spare_blocks_.empty()) {
    Block* b = spare_blocks_.back();
    spare_blocks_.pop_back();
    *b = Block{};
    return b;
  }
  return new Block{};
}

void PoolResource::DeleteBlock(Block* b) {
  if (spare_blocks_.size() < 1024) {
    spare_blocks_.push_back(b);
  } else {
    delete b;
  }
}

void PoolResource::RecordAlloc(size_t bytes) {
  uint64_t cur = cur_bytes_.fetch_add(bytes, std::memory_order_relaxed) + bytes;
  uint64_t peak = peak_bytes_.load(std::memory_order_relaxed);
  while (cur > peak && !peak_bytes_.compare_exchange_weak(peak, cur, std::memory_order_relaxed)) {
  }
  total_bytes_.fetch_add(bytes, std::memory_order_relaxed);
  num_allocs_.fetch_add(1, std::memory_order_relaxed);
}

void PoolResource::RecordReserved() {
  uint64_t peak = peak_reserved_.load(std::memory_order_relaxed);
  while (reserved_ > peak && !peak_reserved_.compare_exchange_weak(peak, reserved_, std::memory_order_relaxed)) {
  }
}

void* PoolResource::RecordFreeEvent(StreamView stream) {
  void* ev = events_->Record(stream);
  if (ev == nullptr) events_->Synchronize(stream);
  return ev;
}
bool PoolResource::EventDone(void* event) { return event == nullptr || events_->Done(event); }
void PoolResource::ReleaseEvent(void* event) {
  if (event != nullptr) events_->Release(event);
}

// ---------------------------------------------------------------------------------------------
// Allocation and free.

StatusOr<void*> PoolResource::DoAllocate(size_t bytes, AllocTag, StreamView stream) {
  void* key = (stream.native != nullptr && events_ != nullptr) ? stream.native : nullptr;
  if (bytes <= options_.small_max_bytes) {
    SizeClassInfo info = SizeClassOf(bytes);
    SizeClass& sc = classes_[info.index];
    char* hit = nullptr;
    void* hit_event = nullptr;
    {
      std::lock_guard<std::mutex> lock(sc.mu);
      size_t n = sc.items.size();
      for (size_t i = n; i > 0 && i + 8 > n; --i) {
        CachedBlock& c = sc.items[i - 1];
        if (c.stream == nullptr || c.stream == key || EventDone(c.event)) {
          hit = c.ptr;
          hit_event = c.event;
          c = sc.items.back();
          sc.items.pop_back();
          break;
        }
      }
    }
    if (hit != nullptr) {
      ReleaseEvent(hit_event);
      cached_small_bytes_.fetch_sub(info.size, std::memory_order_relaxed);
      served_from_cache_.fetch_add(1, std::memory_order_relaxed);
      RecordAlloc(bytes);
      return static_cast<void*>(hit);
    }
    bool grew = false;
    StatusOr<char*> p = AllocateBlock(info.size, key, &grew);
    if (!p.ok()) {
      num_failures_.fetch_add(1, std::memory_order_relaxed);
      return p.status();
    }
    if (!grew) served_from_cache_.fetch_add(1, std::memory_order_relaxed);
    RecordAlloc(bytes);
    return static_cast<void*>(*p);
  }
  bool grew = false;
  StatusOr<char*> p = AllocateBlock(AlignUp(bytes, kAlign), key, &grew);
  if (!p.ok()) {
    num_failures_.fetch_add(1, std::memory_order_relaxed);
    return p.status();
  }
  if (!grew) served_from_cache_.fetch_add(1, std::memory_order_relaxed);
  RecordAlloc(bytes);
  return static_cast<void*>(*p);
}

void PoolResource::DoDeallocate(void* ptr, size_t bytes, AllocTag, StreamView stream) noexcept {
  void* key = (stream.native != nullptr && events_ != nullptr) ? stream.native : nullptr;
  void* event = key ? RecordFreeEvent(stream) : nullptr;
  if (key != nullptr && event == nullptr) key = nullptr;  // synchronized: reusable by any stream
  cur_bytes_.fetch_sub(bytes, std::memory_order_relaxed);
  num_frees_.fetch_add(1, std::memory_order_relaxed);
  if (bytes <= options_.small_max_bytes) {
    SizeClassInfo info = SizeClassOf(bytes);
    SizeClass& sc = classes_[info.index];
    {
      std::lock_guard<std::mutex> lock(sc.mu);
      sc.items.push_back({static_cast<char*>(ptr), key, event});
    }
    size_t cached = cached_small_bytes_.fetch_add(info.size, std::memory_order_relaxed) + info.size;
    if (cached > options_.max_cached_small_bytes) FlushCaches();
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(static_cast<char*>(ptr));
  if (it == live_.end()) {
    GH_LOG_ERROR("memory", "{}: deallocate of unknown pointer {} ({} bytes) ignored", name(), ptr, bytes);
    ReleaseEvent(event);
    return;
  }
  Block* b = it->second;
  live_.erase(it);
  FreeBlockLocked(b, key, event);
  MaybeReleaseAfterFreeLocked();
}

void PoolResource::FreeBlockLocked(Block* b, void* stream_key, void* event) {
  b->allocated = false;
  allocated_ -= b->size;
  b->stream = stream_key;
  b->event = event;
  CoalesceLocked(b);
}

PoolResource::Block* PoolResource::CoalesceLocked(Block* b) {
  // b is free and in neither free_ nor pending_. Neighbours freed on the same stream merge; the
  // merged block keeps b's event, the newest on that stream, so older ones can go.
  auto take_out = [&](Block* n) {
    free_.erase(n);
    if (n->event != nullptr) {
      pending_.erase(n);
      if (b->event != nullptr) {
        ReleaseEvent(n->event);
      } else {
        b->event = n->event;
      }
      n->event = nullptr;
    }
  };
  Block* prev = b->prev;
  if (prev != nullptr && !prev->allocated && prev->stream == b->stream) {
    take_out(prev);
    prev->size += b->size;
    prev->next = b->next;
    if (b->next) b->next->prev = prev;
    prev->event = b->event;
    DeleteBlock(b);
    b = prev;
  }
  Block* next = b->next;
  if (next != nullptr && !next->allocated && next->stream == b->stream) {
    take_out(next);
    b->size += next->size;
    b->next = next->next;
    if (next->next) next->next->prev = b;
    DeleteBlock(next);
  }
  free_.insert(b);
  if (b->event != nullptr) pending_.insert(b);
  return b;
}

PoolResource::Block* PoolResource::FindFreeLocked(size_t rounded, void* stream_key) {
  auto probe = [&](void* key) -> Block* {
    Block probe_block;
    probe_block.stream = key;
    probe_block.size = rounded;
    auto it = free_.lower_bound(&probe_block);
    if (it != free_.end() && (*it)->stream == key) return *it;
    return nullptr;
  };
  if (stream_key != nullptr) {
    if (Block* b = probe(stream_key)) return b;
  }
  // Completed stream frees first join the shared free blocks, so they are reused (and coalesced)
  // before fresh memory is touched; otherwise they would wait for the next pressure.
  if (!pending_.empty()) PollEventsLocked();
  return probe(nullptr);
}

bool PoolResource::PollEventsLocked() {
  std::vector<Block*> done;
  for (Block* b : pending_) {
    if (EventDone(b->event)) done.push_back(b);
  }
  // One at a time: a converted block merges only with neighbours usable by any stream, never
  // with another block in `done` (those still carry their stream key), so none is freed early.
  for (Block* b : done) {
    pending_.erase(b);
    free_.erase(b);
    ReleaseEvent(b->event);
    b->event = nullptr;
    b->stream = nullptr;
    CoalesceLocked(b);
  }
  return !done.empty();
}

StatusOr<char*> PoolResource::AllocateBlock(size_t rounded, void* stream_key, bool* grew) {
  std::lock_guard<std::mutex> lock(mu_);
  for (int attempt = 0;; ++attempt) {
    bool may_retry = attempt < 2;
    Block* b = FindFreeLocked(rounded, stream_key);
    if (b == nullptr) {
      if (range_ != nullptr) {
        if (may_retry && ReleaseLocked(0) > 0) continue;
        return ResourceExhausted("{}: no free range of {} bytes left in the reserved {} bytes", name(), rounded,
                                 range_->size());
      }
      Status s = GrowLocked(rounded);
      if (s.ok()) {
        *grew = true;
        continue;
      }
      if (may_retry && ReleaseLocked(0) > 0) continue;
      return s;
    }
    if (range_ != nullptr) {
      size_t need = UncommittedBytesLocked(b->ptr, rounded);
      if (need > 0) {
        // Among the next best fits, take the one that needs the fewest new pages.
        auto it = free_.find(b);
        for (int k = 0; k < 8 && need > 0 && ++it != free_.end() && (*it)->stream == b->stream; ++k) {
          size_t n = UncommittedBytesLocked((*it)->ptr, rounded);
          if (n < need) {
            b = *it;
            need = n;
          }
        }
      }
      if (need > 0 && options_.expandable_remap_free_pages) {
        // Move physical memory instead of adding more: unmap free pages elsewhere first, so the
        // reserved bytes follow the live bytes rather than the history of placements.
        // The chosen block's own tail (past the allocation) counts as elsewhere.
        size_t freed = b->stream == nullptr ? DecommitRangeLocked(b->ptr + rounded, b->ptr + b->size, need) : 0;
        Block probe;
        for (auto it = free_.lower_bound(&probe); it != free_.end() && (*it)->stream == nullptr && freed < need; ++it) {
          if (*it != b) freed += DecommitFreeBlockLocked(*it, need - freed);
        }
        if (freed > 0) ++releases_;
      }
      if (need > 0) {
        if (reserved_ + need > options_.reserve_limit_bytes) {
          if (may_retry && ReleaseLocked(0) > 0) continue;
          return ResourceExhausted("{}: {} bytes requested, {} reserved of a {} byte limit", name(), rounded,
                                   reserved_, options_.reserve_limit_bytes);
        }
        Status s = CommitLocked(b->ptr, rounded);
        if (!s.ok()) {
          if (may_retry && ReleaseLocked(0) > 0) continue;
          return s;
        }
        *grew = true;
      }
    }
    free_.erase(b);
    if (b->event != nullptr) pending_.erase(b);
    void* event = b->event;
    b->event = nullptr;
    if (b->size - rounded >= kAlign) {
      Block* rest = NewBlock();
      rest->ptr = b->ptr + rounded;
      rest->size = b->size - rounded;
      rest->segment = b->segment;
      rest->prev = b;
      rest->next = b->next;
      if (b->next) b->next->prev = rest;
      b->next = rest;
      b->size = rounded;
      rest->stream = b->stream;
      rest->event = event;  // the remainder still waits for the freeing stream
      event = nullptr;
      free_.insert(rest);
      if (rest->event != nullptr) pending_.insert(rest);
    }
    ReleaseEvent(event);
    b->allocated = true;
    b->stream = nullptr;
    allocated_ += b->size;
    live_.emplace(b->ptr, b);
    return b->ptr;
  }
}

Status PoolResource::GrowLocked(size_t rounded) {
  size_t limit = options_.reserve_limit_bytes;
  if (reserved_ + rounded > limit) {
    return ResourceExhausted("{}: {} bytes requested, {} reserved of a {} byte limit", name(), rounded, reserved_,
                             limit);
  }
  size_t want = std::max(AlignUp(rounded, kSegmentRounding), AlignUp(options_.min_segment_bytes, kAlign));
  size_t room = (limit - reserved_) / kAlign * kAlign;
  size_t size = std::max(rounded, std::min(want, room));
  StatusOr<void*> p = upstream_->Allocate(size);
  if (!p.ok() && size > rounded) {
    size = rounded;
    p = upstream_->Allocate(size);
  }
  if (!p.ok()) return p.status();
  auto* seg = new Segment{static_cast<char*>(*p), size, nullptr};
  Block* b = NewBlock();
  b->ptr = seg->ptr;
  b->size = size;
  b->segment = seg;
  seg->first = b;
  segments_.push_back(seg);
  free_.insert(b);
  reserved_ += size;
  ++upstream_grows_;
  RecordReserved();
  return Status::OK();
}

size_t PoolResource::UncommittedBytesLocked(const char* p, size_t n) const {
  size_t g = range_->granularity();
  size_t first = static_cast<size_t>(p - range_->base()) / g;
  size_t last = static_cast<size_t>(p + n - 1 - range_->base()) / g;
  size_t missing = 0;
  for (size_t i = first; i <= last; ++i) missing += committed_[i] ? 0 : g;
  return missing;
}

Status PoolResource::CommitLocked(const char* p, size_t n) {
  size_t g = range_->granularity();
  size_t first = static_cast<size_t>(p - range_->base()) / g;
  size_t last = static_cast<size_t>(p + n - 1 - range_->base()) / g;
  for (size_t i = first; i <= last;) {
    if (committed_[i]) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j <= last && !committed_[j]) ++j;
    RETURN_IF_ERROR(range_->Commit(i * g, (j - i) * g));
    for (size_t k = i; k < j; ++k) committed_[k] = 1;
    commit_hwm_ = std::max(commit_hwm_, j);
    reserved_ += (j - i) * g;
    ++upstream_grows_;
    i = j;
  }
  RecordReserved();
  return Status::OK();
}

size_t PoolResource::DecommitFreeBlockLocked(const Block* b, size_t max_bytes) {
  return DecommitRangeLocked(b->ptr, b->ptr + b->size, max_bytes);
}

size_t PoolResource::DecommitRangeLocked(const char* lo, const char* hi, size_t max_bytes) {
  size_t g = range_->granularity();
  size_t begin = static_cast<size_t>(lo - range_->base());
  size_t first = (begin + g - 1) / g;
  size_t end = std::min(static_cast<size_t>(hi - range_->base()) / g, commit_hwm_);  // pages fully inside
  size_t released = 0;
  for (size_t i = first; i < end && released < max_bytes;) {
    if (!committed_[i]) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < end && committed_[j] && released + (j - i) * g < max_bytes) ++j;
    range_->Decommit(i * g, (j - i) * g);
    for (size_t k = i; k < j; ++k) committed_[k] = 0;
    released += (j - i) * g;
    i = j;
  }
  reserved_ -= released;
  return released;
}

// ---------------------------------------------------------------------------------------------
// Release policy.

std::vector<PoolResource::CachedBlock> PoolResource::DrainCaches() {
  std::vector<CachedBlock> out;
  for (int i = 0; i < kNumSizeClasses; ++i) {
    SizeClass& sc = classes_[i];
    std::lock_guard<std::mutex> lock(sc.mu);
    if (sc.items.empty()) continue;
    out.insert(out.end(), sc.items.begin(), sc.items.end());
    cached_small_bytes_.fetch_sub(sc.items.size() * ClassSize(i), std::memory_order_relaxed);
    sc.items.clear();
  }
  return out;
}

size_t PoolResource::ReturnCachedLocked(const std::vector<CachedBlock>& blocks) {
  size_t bytes = 0;
  for (const CachedBlock& c : blocks) {
    auto it = live_.find(c.ptr);
    if (it == live_.end()) {
      GH_LOG_ERROR("memory", "{}: cached block {} unknown", name(), static_cast<void*>(c.ptr));
      ReleaseEvent(c.event);
      continue;
    }
    Block* b = it->second;
    live_.erase(it);
    bytes += b->size;
    FreeBlockLocked(b, c.event ? c.stream : nullptr, c.event);
  }
  return bytes;
}

void PoolResource::FlushCaches() {
  std::vector<CachedBlock> blocks = DrainCaches();
  if (blocks.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  ReturnCachedLocked(blocks);
}

size_t PoolResource::ReleaseLocked(size_t target_free) {
  size_t progress = ReturnCachedLocked(DrainCaches());
  if (!pending_.empty()) PollEventsLocked();
  size_t released = 0;
  if (range_ != nullptr) {
    Block probe;
    probe.stream = nullptr;
    probe.size = 0;
    for (auto it = free_.lower_bound(&probe); it != free_.end() && (*it)->stream == nullptr; ++it) {
      released += DecommitFreeBlockLocked(*it, std::numeric_limits<size_t>::max());
      if (target_free > 0 && reserved_ - allocated_ <= target_free) break;
    }
  } else {
    for (size_t i = 0; i < segments_.size();) {
      Segment* seg = segments_[i];
      Block* b = seg->first;
      if (!b->allocated && b->next == nullptr && b->stream == nullptr && b->event == nullptr) {
        free_.erase(b);
        upstream_->Deallocate(seg->ptr, seg->size);
        reserved_ -= seg->size;
        released += seg->size;
        DeleteBlock(b);
        delete seg;
        segments_.erase(segments_.begin() + static_cast<std::ptrdiff_t>(i));
        if (target_free > 0 && reserved_ - allocated_ <= target_free) break;
        continue;
      }
      ++i;
    }
  }
  if (released > 0) ++releases_;
  return progress + released;
}

void PoolResource::MaybeReleaseAfterFreeLocked() {
  if (options_.release_threshold_bytes == std::numeric_limits<size_t>::max()) return;
  if (reserved_ - allocated_ > options_.release_threshold_bytes) {
    ReleaseLocked(std::max<size_t>(options_.release_threshold_bytes, 1));
  }
}

size_t PoolResource::Trim() {
  std::lock_guard<std::mutex> lock(mu_);
  size_t before = reserved_;
  ReleaseLocked(0);
  return before - reserved_;
}

// ---------------------------------------------------------------------------------------------
// Queries.

std::optional<MemoryStats> PoolResource::Stats() const {
  MemoryStats s;
  s.current_bytes = cur_bytes_.load(std::memory_order_relaxed);
  s.peak_bytes = peak_bytes_.load(std::memory_order_relaxed);
  s.total_bytes = total_bytes_.load(std::memory_order_relaxed);
  s.num_allocations = num_allocs_.load(std::memory_order_relaxed);
  s.num_deallocations = num_frees_.load(std::memory_order_relaxed);
  s.num_failures = num_failures_.load(std::memory_order_relaxed);
  return s;
}

PoolStats PoolResource::GetPoolStats() const {
  PoolStats ps;
  ps.requests = *Stats();
  ps.num_served_from_cache = served_from_cache_.load(std::memory_order_relaxed);
  ps.cached_small_bytes = cached_small_bytes_.load(std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(mu_);
  ps.reserved_bytes = reserved_;
  ps.peak_reserved_bytes = peak_reserved_.load(std::memory_order_relaxed);
  ps.allocated_bytes = allocated_ >= ps.cached_small_bytes ? allocated_ - ps.cached_small_bytes : 0;
  ps.num_free_blocks = free_.size();
  ps.num_segments = segments_.size();
  ps.num_upstream_grows = upstream_grows_;
  ps.num_releases = releases_;
  if (range_ == nullptr) {
    for (const Block* b : free_) {
      ps.free_bytes += b->size;
      ps.largest_free_block = std::max<uint64_t>(ps.largest_free_block, b->size);
    }
  } else {
    // Only committed bytes count as free memory. Without remapping, the largest free block is the
    // longest run of committed bytes inside one free block. With remapping, pages that lie wholly
    // inside free blocks can be moved, so a free block can serve its own committed bytes plus every
    // movable page elsewhere: that is the largest request served without growing.
    size_t g = range_->granularity();
    struct PerBlock {
      uint64_t size, committed, movable, longest_run;
    };
    std::vector<PerBlock> blocks;
    uint64_t total_movable = 0;
    for (const Block* b : free_) {
      size_t begin = static_cast<size_t>(b->ptr - range_->base());
      size_t end = begin + b->size;
      PerBlock pb{b->size, 0, 0, 0};
      uint64_t run = 0;
      for (size_t page = begin / g; page * g < end && page < commit_hwm_; ++page) {
        size_t lo = std::max(begin, page * g), hi = std::min(end, (page + 1) * g);
        if (committed_[page]) {
          run += hi - lo;
          pb.committed += hi - lo;
          if (hi - lo == g && b->stream == nullptr) pb.movable += g;
          pb.longest_run = std::max(pb.longest_run, run);
        } else {
          run = 0;
        }
      }
      ps.free_bytes += pb.committed;
      total_movable += pb.movable;
      blocks.push_back(pb);
    }
    for (const PerBlock& pb : blocks) {
      uint64_t servable = options_.expandable_remap_free_pages
                              ? std::min(pb.size, pb.committed + (total_movable - pb.movable))
                              : pb.longest_run;
      ps.largest_free_block = std::max(ps.largest_free_block, servable);
    }
    ps.largest_free_block = std::min(ps.largest_free_block, ps.free_bytes);
  }
  return ps;
}

std::vector<size_t> PoolResource::BlocksPerSegment() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<const Segment*> segs(segments_.begin(), segments_.end());
  std::sort(segs.begin(), segs.end(), [](const Segment* a, const Segment* b) { return a->ptr < b->ptr; });
  std::vector<size_t> out;
  for (const Segment* seg : segs) {
    size_t n = 0;
    for (const Block* b = seg->first; b != nullptr; b = b->next) ++n;
    out.push_back(n);
  }
  return out;
}

std::string PoolResource::CheckInvariants() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t free_count = 0, live_count = 0, allocated = 0;
  for (const Segment* seg : segments_) {
    const char* expect = seg->ptr;
    const Block* prev = nullptr;
    for (const Block* b = seg->first; b != nullptr; b = b->next) {
      if (b->ptr != expect) return fmt::format("block at {} does not follow its neighbour", fmt::ptr(b->ptr));
      if (b->prev != prev) return "broken prev link";
      if (b->segment != seg) return "block points to the wrong segment";
      if (b->size == 0 || b->size % kAlign != 0) return fmt::format("block size {} not a multiple of 256", b->size);
      if (b->allocated) {
        ++live_count;
        allocated += b->size;
        auto it = live_.find(b->ptr);
        if (it == live_.end() || it->second != b) return "live block missing from the live map";
      } else {
        ++free_count;
        if (!free_.count(const_cast<Block*>(b))) return "free block missing from the free set";
        if (prev != nullptr && !prev->allocated && prev->stream == b->stream) {
          return fmt::format("adjacent free blocks at {} not coalesced", fmt::ptr(b->ptr));
        }
        if ((b->event != nullptr) != (pending_.count(const_cast<Block*>(b)) > 0)) return "pending set mismatch";
      }
      expect = b->ptr + b->size;
      prev = b;
    }
    if (expect != seg->ptr + seg->size) return "blocks do not cover their segment";
  }
  if (free_count != free_.size()) return fmt::format("{} free blocks but {} in the free set", free_count, free_.size());
  if (live_count != live_.size()) return fmt::format("{} live blocks but {} in the live map", live_count, live_.size());
  if (allocated != allocated_) return fmt::format("allocated bytes {} but counter says {}", allocated, allocated_);
  if (range_ == nullptr) {
    size_t seg_bytes = 0;
    for (const Segment* seg : segments_) seg_bytes += seg->size;
    if (seg_bytes != reserved_) return "reserved bytes do not match the segments";
  } else {
    size_t committed = 0;
    for (uint8_t c : committed_) committed += c ? range_->granularity() : 0;
    if (committed != reserved_) return "reserved bytes do not match the committed pages";
    for (const auto& [ptr, b] : live_) {
      if (UncommittedBytesLocked(b->ptr, b->size) != 0) return "live block on an uncommitted page";
    }
  }
  return "";
}

size_t PoolResource::ClassSize(int index) {
  if (index < 16) return static_cast<size_t>(index + 1) * kAlign;
  int octave = (index - 16) / 8, sub = (index - 16) % 8;
  size_t base = size_t{4096} << octave;
  return base + static_cast<size_t>(sub + 1) * (base / 8);
}

}  // namespace gpuhive
