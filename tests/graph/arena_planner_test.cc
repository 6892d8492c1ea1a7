#include "gpuhive/arena_planner.h"

#include <gtest/gtest.h>

#include <random>

namespace gpuhive {
namespace {

size_t AlignUp(size_t v, size_t a) { return (v + a - 1) / a * a; }

// Checks the plan's invariants independently of how it was made.
void CheckPlan(const std::vector<BufferLifetime>& b, const ArenaPlan& p, size_t align) {
  ASSERT_EQ(p.offsets.size(), b.size());
  size_t naive = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    naive += AlignUp(b[i].bytes, align);
    EXPECT_EQ(p.offsets[i] % align, 0u);
    EXPECT_LE(p.offsets[i] + AlignUp(b[i].bytes, align), p.arena_bytes) << i;
  }
  EXPECT_EQ(p.naive_bytes, naive);
  EXPECT_LE(p.arena_bytes, p.naive_bytes);
  for (size_t i = 0; i < b.size(); ++i) {
    for (size_t j = i + 1; j < b.size(); ++j) {
      if (b[i].bytes == 0 || b[j].bytes == 0) continue;
      int li = std::max(b[i].first_step, b[i].last_step), lj = std::max(b[j].first_step, b[j].last_step);
      bool live_together = b[i].first_step <= lj && b[j].first_step <= li;
      if (!live_together) continue;
      bool disjoint = p.offsets[i] + b[i].bytes <= p.offsets[j] || p.offsets[j] + b[j].bytes <= p.offsets[i];
      ASSERT_TRUE(disjoint) << "buffers " << i << " and " << j << " overlap in time and memory";
    }
  }
}

TEST(ArenaPlanner, Empty) {
  ArenaPlan p = PlanArena({});
  EXPECT_EQ(p.arena_bytes, 0u);
  EXPECT_EQ(p.naive_bytes, 0u);
  EXPECT_TRUE(p.offsets.empty());
}

TEST(ArenaPlanner, ChainReusesMemory) {
  // A linear chain: buffer i lives during steps [i, i+1]; only neighbours overlap.
  std::vector<BufferLifetime> b;
  for (int i = 0; i < 10; ++i) b.push_back({1000, i, i + 1});
  ArenaPlan p = PlanArena(b, 256);
  CheckPlan(b, p, 256);
  EXPECT_EQ(p.naive_bytes, 10u * 1024u);
  EXPECT_EQ(p.arena_bytes, 2u * 1024u);  // two buffers alive at once at most
}

TEST(ArenaPlanner, AllAliveIsNaive) {
  std::vector<BufferLifetime> b = {{100, 0, 5}, {300, 1, 5}, {50, 2, 5}};
  ArenaPlan p = PlanArena(b, 64);
  CheckPlan(b, p, 64);
  EXPECT_EQ(p.arena_bytes, p.naive_bytes);
  EXPECT_EQ(p.naive_bytes, 128u + 320u + 64u);
}

TEST(ArenaPlanner, SmallBufferFillsGap) {
  // A and C are alive through step 2; B (freed at 1) leaves a gap that D fits into.
  std::vector<BufferLifetime> b = {{1024, 0, 2}, {1024, 0, 1}, {1024, 0, 2}, {512, 2, 2}};
  ArenaPlan p = PlanArena(b, 256);
  CheckPlan(b, p, 256);
  EXPECT_EQ(p.arena_bytes, 3u * 1024u);
}

TEST(ArenaPlanner, ZeroBytesAndReversedLifetime) {
  std::vector<BufferLifetime> b = {{0, 0, 3}, {10, 2, 1}, {10, 2, 2}};
  ArenaPlan p = PlanArena(b, 0);
  CheckPlan(b, p, 1);
  EXPECT_EQ(p.arena_bytes, 20u);
}

TEST(ArenaPlanner, RandomizedNeverOverlapsNeverWorseThanNaive) {
  std::mt19937 rng(1234);
  size_t total_arena = 0, total_naive = 0;
  for (int iter = 0; iter < 400; ++iter) {
    const int steps = 1 + static_cast<int>(rng() % 40);
    const int n = static_cast<int>(rng() % 60);
    std::vector<BufferLifetime> b;
    for (int i = 0; i < n; ++i) {
      int first = static_cast<int>(rng() % steps);
      int len = static_cast<int>(rng() % 6);
      size_t bytes = (rng() % 4 == 0) ? rng() % 100 : rng() % 100000;
      b.push_back({bytes, first, std::min(steps - 1, first + len)});
    }
    const size_t align = size_t{1} << (rng() % 9);
    ArenaPlan p = PlanArena(b, align);
    CheckPlan(b, p, align);
    if (::testing::Test::HasFatalFailure()) return;
    // Lower bound: the bytes alive at the busiest step.
    size_t peak = 0;
    for (int s = 0; s < steps; ++s) {
      size_t live = 0;
      for (const auto& x : b) {
        if (x.first_step <= s && s <= x.last_step) live += AlignUp(x.bytes, align);
      }
      peak = std::max(peak, live);
    }
    EXPECT_GE(p.arena_bytes, peak);
    total_arena += p.arena_bytes;
    total_naive += p.naive_bytes;
  }
  // With short lifetimes reuse must be substantial overall.
  EXPECT_LT(total_arena * 2, total_naive);
}

}  // namespace
}  // namespace gpuhive
