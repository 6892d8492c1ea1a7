// Static activation planner: assigns every activation buffer an offset in one arena so that two
// buffers alive at the same step never share bytes, keeping the arena small.
// Pure function of its input; thread safe.
#pragma once

#include <cstddef>
#include <vector>

namespace gpuhive {

// One buffer: its size and the inclusive range of execution steps during which it is alive.
struct BufferLifetime {
  size_t bytes;
  int first_step;
  int last_step;
};

struct ArenaPlan {
  std::vector<size_t> offsets;  // one per buffer, in input order; multiples of the alignment
  size_t arena_bytes = 0;       // bytes the arena must hold (>= every offset + aligned size)
  size_t naive_bytes = 0;       // sum of the aligned sizes (no reuse), for comparison
};

// Plans offsets. Buffers of 0 bytes get offset 0 and occupy nothing. A buffer with
// last_step < first_step is treated as alive at first_step only. `alignment` 0 means 1.
// Never returns an arena larger than naive_bytes.
ArenaPlan PlanArena(const std::vector<BufferLifetime>& buffers, size_t alignment = 256);

}  // namespace gpuhive
