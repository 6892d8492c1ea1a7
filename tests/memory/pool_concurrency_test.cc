// Concurrency: several threads allocate, write and free through one pool while another thread
// queries statistics and trims. Run under ThreadSanitizer (label "tsan").
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "gpuhive/memory/adaptors.h"
#include "gpuhive/memory/pool_resource.h"

namespace gpuhive {
namespace {

void Hammer(MemoryResource* mr, int seed, int iterations, std::atomic<int>* errors) {
  std::mt19937 rng(static_cast<unsigned>(seed));
  struct Live {
    unsigned char* p;
    size_t n;
    unsigned char fill;
  };
  std::vector<Live> live;
  for (int i = 0; i < iterations; ++i) {
    if (live.size() < 64 && (live.empty() || rng() % 2 == 0)) {
      size_t n = rng() % 3 == 0 ? (1u << 20) + rng() % (4u << 20) : 1 + rng() % (256u << 10);
      auto r = mr->Allocate(n);
      if (!r.ok()) {
        errors->fetch_add(1);
        continue;
      }
      auto fill = static_cast<unsigned char>(rng());
      auto* p = static_cast<unsigned char*>(*r);
      // Whole small blocks, ends of large ones: another thread owning the same bytes shows up.
      std::memset(p, fill, std::min<size_t>(n, 4096));
      if (n > 4096) std::memset(p + n - 4096, fill, 4096);
      live.push_back({p, n, fill});
    } else {
      size_t k = rng() % live.size();
      Live l = live[k];
      live[k] = live.back();
      live.pop_back();
      for (size_t j = 0; j < std::min<size_t>(l.n, 4096); ++j) {
        if (l.p[j] != l.fill) {
          errors->fetch_add(1);
          break;
        }
      }
      mr->Deallocate(l.p, l.n);
    }
  }
  for (const Live& l : live) mr->Deallocate(l.p, l.n);
}

TEST(PoolConcurrencyTest, ThreadsShareAPoolWithoutCorruption) {
  for (bool expandable : {false, true}) {
    PoolResource::Options o;
    if (expandable) o.range = std::move(*CreateHostVirtualRange(8ull << 30));
    o.max_cached_small_bytes = 8u << 20;  // flushes happen concurrently with the hot path
    auto pool = std::move(*PoolResource::Create(std::move(o)));
    std::atomic<int> errors{0};
    std::atomic<bool> done{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) threads.emplace_back(Hammer, pool.get(), t + 1, 3000, &errors);
    std::thread observer([&] {
      while (!done.load()) {
        PoolStats s = pool->GetPoolStats();
        if (s.free_bytes > s.reserved_bytes) errors.fetch_add(1);
        pool->Trim();
        std::this_thread::yield();
      }
    });
    for (auto& t : threads) t.join();
    done = true;
    observer.join();
    EXPECT_EQ(errors.load(), 0);
    EXPECT_EQ(pool->Stats()->current_bytes, 0u);
    pool->FlushCaches();
    EXPECT_EQ(pool->CheckInvariants(), "");
    for (size_t blocks : pool->BlocksPerSegment()) EXPECT_EQ(blocks, 1u);
  }
}

TEST(PoolConcurrencyTest, AdaptorStackIsThreadSafe) {
  auto pool = std::move(*PoolResource::Create({}));
  StatisticsResource stats(pool.get());
  TrackingResource tracking(&stats);
  LimitResource::Options lo;
  lo.total_limit_bytes = 1ull << 30;
  LimitResource limit(&tracking, lo);
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) threads.emplace_back(Hammer, &limit, t + 10, 2000, &errors);
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(limit.used_bytes(), 0u);
  EXPECT_EQ(tracking.outstanding_bytes(), 0u);
  EXPECT_EQ(stats.Stats()->current_bytes, 0u);
  EXPECT_EQ(stats.Stats()->num_allocations, stats.Stats()->num_deallocations);
}

}  // namespace
}  // namespace gpuhive
