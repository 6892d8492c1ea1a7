#include "gpuhive/memory/pool_resource.h"

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <random>

#include "gpuhive/memory/adaptors.h"
#include "gpuhive/memory/upstreams.h"
#include "gpuhive/units.h"

namespace gpuhive {
namespace {

enum class Mode { kSegments, kExpandable };

struct PoolUnderTest {
  std::unique_ptr<TrackingResource> upstream;  // sees every byte the pool takes and gives back
  std::unique_ptr<PoolResource> pool;
};

PoolUnderTest MakePool(Mode mode, size_t limit = std::numeric_limits<size_t>::max(), size_t small_max = 1u << 20) {
  PoolUnderTest p;
  p.upstream = std::make_unique<TrackingResource>(DefaultHostResource());
  PoolResource::Options o;
  o.small_max_bytes = small_max;
  o.reserve_limit_bytes = limit;
  if (mode == Mode::kExpandable) {
    auto range = CreateHostVirtualRange(4ull << 30, 2u << 20);
    EXPECT_TRUE(range.ok()) << range.status().ToString();
    o.range = std::move(*range);
  } else {
    o.upstream = p.upstream.get();
  }
  auto pool = PoolResource::Create(std::move(o));
  EXPECT_TRUE(pool.ok()) << pool.status().ToString();
  p.pool = std::move(*pool);
  return p;
}

// Writes a pattern derived from the pointer into the first and last bytes of a block, so a block
// handed out twice (overlap) is detected when the pattern is checked.
void Stamp(char* p, size_t n) {
  uint64_t v = reinterpret_cast<uintptr_t>(p) * 0x9E3779B97F4A7C15ull;
  std::memcpy(p, &v, std::min<size_t>(8, n));
  if (n >= 16) std::memcpy(p + n - 8, &v, 8);
}
bool StampIntact(const char* p, size_t n) {
  uint64_t v = reinterpret_cast<uintptr_t>(p) * 0x9E3779B97F4A7C15ull, a = 0, b = 0;
  std::memcpy(&a, p, std::min<size_t>(8, n));
  uint64_t va = 0;
  std::memcpy(&va, &v, std::min<size_t>(8, n));
  if (a != va) return false;
  if (n >= 16) {
    std::memcpy(&b, p + n - 8, 8);
    if (b != v) return false;
  }
  return true;
}

class PoolModeTest : public ::testing::TestWithParam<Mode> {};

TEST_P(PoolModeTest, RandomizedBlocksNeverOverlapAlignAndAllBytesComeBack) {
  PoolUnderTest p = MakePool(GetParam());
  std::mt19937_64 rng(42);
  std::map<char*, size_t> live;  // address -> bytes
  uint64_t live_bytes = 0;
  auto size_dist = [&]() -> size_t {
    switch (rng() % 4) {
      case 0: return 1 + rng() % 4096;                 // tiny
      case 1: return 4096 + rng() % (1u << 20);        // size classes
      case 2: return (1u << 20) + rng() % (8u << 20);  // large
      default: return 1 + rng() % (64u << 10);
    }
  };
  for (int step = 0; step < 6000; ++step) {
    bool do_alloc = live.empty() || (live.size() < 300 && rng() % 100 < 55);
    if (do_alloc) {
      size_t n = size_dist();
      auto r = p.pool->Allocate(n);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      char* ptr = static_cast<char*>(*r);
      ASSERT_EQ(reinterpret_cast<uintptr_t>(ptr) % MemoryResource::kAlignment, 0u);
      auto next = live.lower_bound(ptr);
      if (next != live.end()) {
        ASSERT_LE(ptr + n, next->first) << "overlaps the next live block";
      }
      if (next != live.begin()) {
        auto prev = std::prev(next);
        ASSERT_LE(prev->first + prev->second, ptr) << "overlaps the previous live block";
      }
      Stamp(ptr, n);
      live[ptr] = n;
      live_bytes += n;
    } else {
      auto it = live.begin();
      std::advance(it, static_cast<long>(rng() % live.size()));
      ASSERT_TRUE(StampIntact(it->first, it->second)) << "block contents overwritten";
      p.pool->Deallocate(it->first, it->second);
      live_bytes -= it->second;
      live.erase(it);
    }
    if (step % 500 == 0) {
      ASSERT_EQ(p.pool->CheckInvariants(), "");
      ASSERT_EQ(p.pool->Stats()->current_bytes, live_bytes);
    }
  }
  for (auto& [ptr, n] : live) {
    ASSERT_TRUE(StampIntact(ptr, n));
    p.pool->Deallocate(ptr, n);
  }
  EXPECT_EQ(p.pool->Stats()->current_bytes, 0u);
  p.pool->FlushCaches();
  EXPECT_EQ(p.pool->CheckInvariants(), "");
  // Coalescing: everything freed leaves exactly one block per segment.
  for (size_t blocks : p.pool->BlocksPerSegment()) EXPECT_EQ(blocks, 1u);
  PoolStats before = p.pool->GetPoolStats();
  EXPECT_EQ(before.allocated_bytes, 0u);
  EXPECT_EQ(before.free_bytes, before.reserved_bytes);
  if (GetParam() == Mode::kExpandable) {
    // One range, one free block: no external fragmentation left.
    EXPECT_DOUBLE_EQ(before.external_fragmentation(), 0.0);
    EXPECT_EQ(before.largest_free_block, before.free_bytes);
  }
  EXPECT_GT(before.reserved_bytes, 0u);
  size_t released = p.pool->Trim();
  EXPECT_EQ(released, before.reserved_bytes);
  EXPECT_EQ(p.pool->GetPoolStats().reserved_bytes, 0u);
  EXPECT_EQ(p.upstream->outstanding_bytes(), 0u);  // every byte went back to the upstream
  EXPECT_EQ(p.pool->CheckInvariants(), "");
}

TEST_P(PoolModeTest, SmallSizeClassReusesFreedBlock) {
  PoolUnderTest p = MakePool(GetParam());
  auto a = p.pool->Allocate(1000);
  ASSERT_TRUE(a.ok());
  p.pool->Deallocate(*a, 1000);
  auto b = p.pool->Allocate(900);  // same class (1024)
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*a, *b);
  p.pool->Deallocate(*b, 900);
  PoolStats s = p.pool->GetPoolStats();
  EXPECT_EQ(s.requests.num_allocations, 2u);
  EXPECT_DOUBLE_EQ(s.reuse_rate(), 0.5);  // the first one had to grow the pool
}

TEST_P(PoolModeTest, ZeroBytesIsNullAndNullFreeIsNoop) {
  PoolUnderTest p = MakePool(GetParam());
  auto a = p.pool->Allocate(0);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(*a, nullptr);
  p.pool->Deallocate(nullptr, 0);
  EXPECT_EQ(p.pool->Stats()->num_allocations, 0u);
}

TEST_P(PoolModeTest, LimitRefusesBeyondReserveLimitAndRecoversAfterFree) {
  PoolUnderTest p = MakePool(GetParam(), 32u << 20, 0);
  auto a = p.pool->Allocate(32u << 20);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  auto b = p.pool->Allocate(256);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(p.pool->Stats()->num_failures, 1u);
  p.pool->Deallocate(*a, 32u << 20);
  auto c = p.pool->Allocate(16u << 20);
  ASSERT_TRUE(c.ok());
  p.pool->Deallocate(*c, 16u << 20);
}

INSTANTIATE_TEST_SUITE_P(Modes, PoolModeTest, ::testing::Values(Mode::kSegments, Mode::kExpandable),
                         [](const auto& info) { return info.param == Mode::kSegments ? "Segments" : "Expandable"; });

TEST(PoolTest, FragmentationFiguresMatchTheBlockLayout) {
  auto upstream = std::make_unique<TrackingResource>(DefaultHostResource());
  PoolResource::Options o;
  o.upstream = upstream.get();
  o.small_max_bytes = 0;
  o.min_segment_bytes = 8u << 20;
  auto pool = std::move(*PoolResource::Create(std::move(o)));
  std::vector<void*> ptrs;
  for (int i = 0; i < 4; ++i) ptrs.push_back(*pool->Allocate(2u << 20));
  EXPECT_EQ(pool->BlocksPerSegment(), std::vector<size_t>{4});
  pool->Deallocate(ptrs[0], 2u << 20);
  pool->Deallocate(ptrs[2], 2u << 20);
  PoolStats s = pool->GetPoolStats();
  EXPECT_EQ(s.reserved_bytes, 8u << 20);
  EXPECT_EQ(s.free_bytes, 4u << 20);
  EXPECT_EQ(s.largest_free_block, 2u << 20);
  EXPECT_DOUBLE_EQ(s.external_fragmentation(), 0.5);
  EXPECT_DOUBLE_EQ(s.reserved_over_requested(), 2.0);
  pool->Deallocate(ptrs[1], 2u << 20);  // merges 0,1,2 into one 6 MiB block
  s = pool->GetPoolStats();
  EXPECT_EQ(s.largest_free_block, 6u << 20);
  EXPECT_EQ(pool->BlocksPerSegment(), std::vector<size_t>{2});
  pool->Deallocate(ptrs[3], 2u << 20);
  EXPECT_EQ(pool->BlocksPerSegment(), std::vector<size_t>{1});
}

// Holes between live blocks: a segment pool cannot serve a request larger than any hole, while
// the expandable pool gives the holes' pages back and maps them where the request fits.
TEST(PoolTest, ExpandableRangeServesWhatSegmentsCannot) {
  constexpr size_t kMiB = 1u << 20;
  for (Mode mode : {Mode::kSegments, Mode::kExpandable}) {
    PoolUnderTest p = MakePool(mode, 64 * kMiB, 0);
    if (mode == Mode::kSegments) {
      // one 64 MiB segment, as a naive single buffer would have
      auto big = p.pool->Allocate(64 * kMiB);
      ASSERT_TRUE(big.ok());
      p.pool->Deallocate(*big, 64 * kMiB);
    }
    std::vector<void*> v;
    for (int i = 0; i < 3; ++i) {
      auto r = p.pool->Allocate(20 * kMiB);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      v.push_back(*r);
    }
    p.pool->Deallocate(v[0], 20 * kMiB);
    p.pool->Deallocate(v[2], 20 * kMiB);
    auto r = p.pool->Allocate(40 * kMiB);  // 44 MiB are free, but in two 20 MiB holes and a 4 MiB tail
    if (mode == Mode::kSegments) {
      EXPECT_FALSE(r.ok());
    } else {
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      EXPECT_LE(p.pool->GetPoolStats().reserved_bytes, 64 * kMiB);
      std::memset(*r, 0x5a, 40 * kMiB);  // the pages are really usable
      p.pool->Deallocate(*r, 40 * kMiB);
    }
    p.pool->Deallocate(v[1], 20 * kMiB);
    EXPECT_EQ(p.pool->CheckInvariants(), "");
  }
}

TEST(PoolTest, PressureFlushesSizeClassCachesAndReleasesSegments) {
  constexpr size_t kMiB = 1u << 20;
  PoolUnderTest p = MakePool(Mode::kSegments, 64 * kMiB);
  std::vector<void*> small;
  for (int i = 0; i < 120; ++i) {
    auto r = p.pool->Allocate(512 * 1024);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    small.push_back(*r);
  }
  for (void* s : small) p.pool->Deallocate(s, 512 * 1024);
  EXPECT_EQ(p.pool->GetPoolStats().cached_small_bytes, 120u * 512 * 1024);
  auto big = p.pool->Allocate(60 * kMiB);  // needs the cached memory back
  ASSERT_TRUE(big.ok()) << big.status().ToString();
  EXPECT_EQ(p.pool->GetPoolStats().cached_small_bytes, 0u);
  EXPECT_GE(p.pool->GetPoolStats().num_releases, 1u);
  p.pool->Deallocate(*big, 60 * kMiB);
  EXPECT_EQ(p.pool->CheckInvariants(), "");
}

TEST(PoolTest, ReleaseThresholdGivesMemoryBackOnFree) {
  auto upstream = std::make_unique<TrackingResource>(DefaultHostResource());
  PoolResource::Options o;
  o.upstream = upstream.get();
  o.release_threshold_bytes = 0;
  auto pool = std::move(*PoolResource::Create(std::move(o)));
  auto r = pool->Allocate(10u << 20);
  ASSERT_TRUE(r.ok());
  EXPECT_GT(upstream->outstanding_bytes(), 0u);
  pool->Deallocate(*r, 10u << 20);
  EXPECT_EQ(upstream->outstanding_bytes(), 0u);
}

TEST(PoolTest, RejectsBadOptions) {
  PoolResource::Options o;
  o.small_max_bytes = 2u << 20;
  auto pool = PoolResource::Create(std::move(o));
  ASSERT_FALSE(pool.ok());
  EXPECT_EQ(pool.status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(CreateHostVirtualRange(1u << 20, 1000).ok());
}

TEST(PoolTest, UpstreamFailureIsReportedNotFatal) {
  // An upstream limit smaller than the pool's: the upstream refuses, the pool reports it.
  LimitResource::Options lo;
  lo.total_limit_bytes = 4u << 20;
  LimitResource limited(DefaultHostResource(), lo);
  PoolResource::Options o;
  o.upstream = &limited;
  auto pool = std::move(*PoolResource::Create(std::move(o)));
  auto r = pool->Allocate(8u << 20);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
  auto ok = pool->Allocate(3u << 20);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  pool->Deallocate(*ok, 3u << 20);
}

TEST(PoolTest, CpuBuildHasNoCudaUpstreams) {
  if (CudaDeviceCount() > 0) GTEST_SKIP() << "a CUDA device is present; covered by memory_cuda_test";
  EXPECT_EQ(CreateCudaDeviceResource(0).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(CreateCudaAsyncResource(0).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(CreateCudaVirtualRange(0, 1u << 30).status().code(), StatusCode::kUnavailable);
  auto pinned = CreatePinnedHostResource();
  auto r = pinned->Allocate(1000);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(*r) % 256, 0u);
  pinned->Deallocate(*r, 1000);
}

}  // namespace
}  // namespace gpuhive
