// PoolResource: gpuhive's caching allocator (DESIGN.md "Memory model").
//
// Two paths:
//  - small requests (<= Options::small_max_bytes) are rounded to one of 80 size classes (256 B
//    steps to 4 KiB, then 8 classes per power of two) and served from a per-class free list with
//    its own lock: the hot path is a lock, a pop and an unlock;
//  - large requests (and size-class misses) go best-fit, O(log n), into free blocks kept in an
//    ordered set keyed by (stream, size, address); blocks are split on allocation and coalesced
//    with free address neighbours on free.
//
// Memory comes either from an upstream MemoryResource in segments (segment mode), or from one
// VirtualRange committed page by page (expandable mode): there, a hole in the middle of the range
// can give its pages back and the range commits pages elsewhere, so free memory never stays
// stranded in slivers, and everything coalesces into one block across growth steps.
//
// Streams: with StreamView.native == nullptr (CPU) work is synchronous and freed memory is reused
// at once. With a CUDA stream a freed block stays on that stream's free list, usable at once by
// later work on the same stream and by other streams only after an event recorded at free time
// has completed.
//
// Release policy: when an allocation does not fit under reserve_limit_bytes or the upstream is
// out of memory, the pool flushes its size-class caches, coalesces, gives free segments (or free
// committed pages) back and retries before it reports kResourceExhausted. Trim() does the same on
// demand, and release_threshold_bytes keeps cached memory below a bound at all times.
//
// Thread safe. The pool must outlive every allocation made from it; destroying it returns all
// memory to the upstream.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "gpuhive/memory/upstreams.h"
#include "gpuhive/memory_resource.h"

namespace gpuhive {

namespace memory_detail {
class StreamEvents;
}

// Fragmentation and cache figures of a pool, computed on demand.
struct PoolStats {
  MemoryStats requests;              // bytes as asked for by callers
  uint64_t reserved_bytes = 0;       // held from the upstream (committed bytes in expandable mode)
  uint64_t peak_reserved_bytes = 0;
  uint64_t allocated_bytes = 0;      // bytes in live blocks (rounded), excluding size-class caches
  uint64_t cached_small_bytes = 0;   // free blocks parked in size-class caches
  uint64_t free_bytes = 0;           // reserved bytes in free blocks (committed part only)
  // Largest request servable from free reserved memory without growing: the largest free block in
  // segment mode; in expandable mode a free block's committed bytes plus the free pages that can be
  // remapped into it (or, without remapping, its longest committed run).
  uint64_t largest_free_block = 0;
  uint64_t num_free_blocks = 0;
  uint64_t num_segments = 0;
  uint64_t num_upstream_grows = 0;   // segment allocations or page commits
  uint64_t num_releases = 0;         // times memory was given back to the upstream
  uint64_t num_served_from_cache = 0;  // allocations served without growing
  // 1 - largest_free_block / free_bytes; 0 when nothing is free.
  double external_fragmentation() const {
    return free_bytes == 0 ? 0.0 : 1.0 - double(largest_free_block) / double(free_bytes);
  }
  // reserved / requested in use right now (1.0 when nothing is in use).
  double reserved_over_requested() const {
    return requests.current_bytes == 0 ? 1.0 : double(reserved_bytes) / double(requests.current_bytes);
  }
  // Share of allocations served from memory the pool already held.
  double reuse_rate() const {
    return requests.num_allocations == 0 ? 0.0
                                         : double(num_served_from_cache) / double(requests.num_allocations);
  }
};

class PoolResource final : public MemoryResource {
 public:
  struct Options {
    // Segment mode: where segments come from (DefaultHostResource() when null). Not owned.
    MemoryResource* upstream = nullptr;
    // Expandable mode when set: the pool owns the range and commits it page by page.
    std::unique_ptr<VirtualRange> range;
    // Never hold more than this many bytes from the upstream (a device budget).
    size_t reserve_limit_bytes = std::numeric_limits<size_t>::max();
    // Segment mode: smallest segment asked from the upstream; segments are 2 MiB multiples.
    size_t min_segment_bytes = 2u << 20;
    // Requests up to this size use the size-class caches (0 disables them). At most 1 MiB.
    size_t small_max_bytes = 1u << 20;
    // Size-class caches are flushed back into the block structure beyond this many bytes.
    size_t max_cached_small_bytes = 64u << 20;
    // When free reserved bytes exceed this after a free, the pool gives memory back until they
    // do not. Default: keep everything until pressure.
    size_t release_threshold_bytes = std::numeric_limits<size_t>::max();
    // Expandable mode: before committing new pages, unmap free committed pages elsewhere in the
    // range, so reserved memory tracks live memory (costs map/unmap calls on growth; the hot
    // path is unaffected).
    bool expandable_remap_free_pages = true;
    // Source of the events recorded for frees on device streams (not owned). Null: CUDA events
    // when built with CUDA and a device is present, else streams are treated as synchronous.
    // Tests substitute their own to exercise the stream-ordered paths without a GPU.
    memory_detail::StreamEvents* stream_events = nullptr;
    std::string label = "pool";
  };

  // kInvalidArgument for inconsistent options (e.g. small_max_bytes > 1 MiB).
  static StatusOr<std::unique_ptr<PoolResource>> Create(Options options);
  ~PoolResource() override;

  DeviceId device() const override;
  std::string name() const override;
  std::optional<MemoryStats> Stats() const override;

  PoolStats GetPoolStats() const;

  // Flushes the size-class caches, completes finished stream frees and gives every free segment
  // (or free committed page) back to the upstream. Returns the bytes given back.
  size_t Trim();
  // Moves size-class cache contents back into the block structure (coalescing them).
  void FlushCaches();

  // Test and debugging support. Number of blocks (free or live) in each segment, in address order
  // of the segments; expandable mode reports the range as one segment.
  std::vector<size_t> BlocksPerSegment() const;
  // Checks the pool's internal invariants (blocks tile each segment, free neighbours with the same
  // stream are merged, the free set matches the blocks). Returns an empty string when they hold.
  std::string CheckInvariants() const;

 private:
  struct Block;
  struct Segment;
  struct FreeKeyLess {
    bool operator()(const Block* a, const Block* b) const;
  };
  struct CachedBlock {
    char* ptr;
    void* stream;
    void* event;
  };
  struct alignas(64) SizeClass {
    std::mutex mu;
    std::vector<CachedBlock> items;
  };
  static constexpr int kNumSizeClasses = 80;

  explicit PoolResource(Options options);

  StatusOr<void*> DoAllocate(size_t bytes, AllocTag tag, StreamView stream) override;
  void DoDeallocate(void* ptr, size_t bytes, AllocTag tag, StreamView stream) noexcept override;

  StatusOr<char*> AllocateBlock(size_t rounded, void* stream_key, bool* grew);
  void FreeBlockLocked(Block* b, void* stream_key, void* event);
  Block* FindFreeLocked(size_t rounded, void* stream_key);
  bool PollEventsLocked();
  Block* CoalesceLocked(Block* b);
  Status GrowLocked(size_t rounded);
  size_t ReleaseLocked(size_t target_free);
  size_t UncommittedBytesLocked(const char* p, size_t n) const;
  Status CommitLocked(const char* p, size_t n);
  size_t DecommitFreeBlockLocked(const Block* b, size_t max_bytes);
  size_t DecommitRangeLocked(const char* lo, const char* hi, size_t max_bytes);
  void MaybeReleaseAfterFreeLocked();
  std::vector<CachedBlock> DrainCaches();
  size_t ReturnCachedLocked(const std::vector<CachedBlock>& blocks);
  static size_t ClassSize(int index);
  Block* NewBlock();
  void DeleteBlock(Block* b);
  void RecordAlloc(size_t bytes);
  void RecordReserved();
  void* RecordFreeEvent(StreamView stream);
  bool EventDone(void* event);
  void ReleaseEvent(void* event);

  const Options options_;
  MemoryResource* const upstream_;
  VirtualRange* const range_;  // owned by options_.range
  memory_detail::StreamEvents* const events_;  // null in CPU builds / without a device

  mutable std::mutex mu_;  // guards everything below up to the size classes
  std::set<Block*, FreeKeyLess> free_;
  std::unordered_map<char*, Block*> live_;
  std::unordered_set<Block*> pending_;  // free blocks waiting for a stream event
  std::vector<Segment*> segments_;
  std::vector<Block*> spare_blocks_;
  std::vector<uint8_t> committed_;  // expandable mode: one flag per granule
  size_t commit_hwm_ = 0;           // no page at or past this index was ever committed
  size_t reserved_ = 0;
  size_t allocated_ = 0;
  uint64_t upstream_grows_ = 0;
  uint64_t releases_ = 0;

  SizeClass classes_[kNumSizeClasses];
  std::atomic<size_t> cached_small_bytes_{0};

  std::atomic<uint64_t> cur_bytes_{0}, peak_bytes_{0}, total_bytes_{0};
  std::atomic<uint64_t> num_allocs_{0}, num_frees_{0}, num_failures_{0}, served_from_cache_{0};
  std::atomic<uint64_t> peak_reserved_{0};
};

}  // namespace gpuhive
