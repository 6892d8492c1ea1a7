// Liveness-based offset assignment. Two greedy strategies are run and the smaller arena kept:
//  - by size descending: each buffer goes into the best-fitting gap among the already placed
//    buffers whose lifetimes overlap it (the "greedy by size" planner of TFLite / ONNX Runtime);
//  - by first use: the same gap search in execution order.
#include "gpuhive/arena_planner.h"

#include <algorithm>
#include <limits>
#include <numeric>

namespace gpuhive {
namespace {

struct Item {
  size_t bytes;  // aligned
  int first, last;
};

size_t AlignUp(size_t v, size_t a) { return (v + a - 1) / a * a; }

// Places buffers in `order`; returns the arena size and fills offsets.
size_t PlaceInOrder(const std::vector<Item>& items, const std::vector<size_t>& order,
                    std::vector<size_t>* offsets) {
  struct Placed {
    size_t offset, bytes;
    int first, last;
  };
  std::vector<Placed> placed;
  placed.reserve(items.size());
  size_t arena = 0;
  std::vector<std::pair<size_t, size_t>> busy;  // [offset, end) of conflicting buffers
  for (size_t idx : order) {
    const Item& it = items[idx];
    if (it.bytes == 0) {
      (*offsets)[idx] = 0;
      continue;
    }
    busy.clear();
    for (const Placed& p : placed) {
      if (p.first <= it.last && it.first <= p.last) busy.emplace_back(p.offset, p.offset + p.bytes);
    }
    std::sort(busy.begin(), busy.end());
    // Best fit: the smallest gap between conflicting buffers that holds this one; else the end.
    size_t best = std::numeric_limits<size_t>::max();
    size_t best_gap = std::numeric_limits<size_t>::max();
    size_t cursor = 0;
    for (const auto& [start, end] : busy) {
      if (start > cursor) {
        size_t gap = start - cursor;
        if (gap >= it.bytes && gap < best_gap) {
          best_gap = gap;
          best = cursor;
        }
      }
      cursor = std::max(cursor, end);
    }
    if (best == std::numeric_limits<size_t>::max()) best = cursor;
    (*offsets)[idx] = best;
    placed.push_back({best, it.bytes, it.first, it.last});
    arena = std::max(arena, best + it.bytes);
  }
  return arena;
}

}  // namespace

ArenaPlan PlanArena(const std::vector<BufferLifetime>& buffers, size_t alignment) {
  if (alignment == 0) alignment = 1;
  ArenaPlan plan;
  std::vector<Item> items;
  items.reserve(buffers.size());
  for (const auto& b : buffers) {
    Item it{AlignUp(b.bytes, alignment), b.first_step, std::max(b.first_step, b.last_step)};
    plan.naive_bytes += it.bytes;
    items.push_back(it);
  }
  std::vector<size_t> by_size(items.size());
  std::iota(by_size.begin(), by_size.end(), 0);
  std::stable_sort(by_size.begin(), by_size.end(), [&](size_t a, size_t b) {
    if (items[a].bytes != items[b].bytes) return items[a].bytes > items[b].bytes;
    return items[a].first < items[b].first;
  });
  std::vector<size_t> by_first(items.size());
  std::iota(by_first.begin(), by_first.end(), 0);
  std::stable_sort(by_first.begin(), by_first.end(), [&](size_t a, size_t b) {
    if (items[a].first != items[b].first) return items[a].first < items[b].first;
    return items[a].bytes > items[b].bytes;
  });
  std::vector<size_t> off_size(items.size()), off_first(items.size());
  size_t arena_size = PlaceInOrder(items, by_size, &off_size);
  size_t arena_first = PlaceInOrder(items, by_first, &off_first);
  if (arena_first < arena_size) {
    plan.offsets = std::move(off_first);
    plan.arena_bytes = arena_first;
  } else {
    plan.offsets = std::move(off_size);
    plan.arena_bytes = arena_size;
  }
  if (plan.arena_bytes > plan.naive_bytes) {  // cannot happen with gap search; kept as a guarantee
    size_t off = 0;
    for (size_t i = 0; i < items.size(); ++i) {
      plan.offsets[i] = off;
      off += items[i].bytes;
    }
    plan.arena_bytes = plan.naive_bytes;
  }
  return plan;
}

}  // namespace gpuhive
