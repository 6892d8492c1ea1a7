#include "gpuhive/memory/adaptors.h"

#include <gtest/gtest.h>

#include <vector>

namespace gpuhive {
namespace {

constexpr AllocTag kModel1Weights{1, MemoryKind::kWeights};
constexpr AllocTag kModel1Acts{1, MemoryKind::kActivations};
constexpr AllocTag kModel2Weights{2, MemoryKind::kWeights};

TEST(LimitResourceTest, TotalLimitRefusesExactlyPastTheLimit) {
  LimitResource::Options o;
  o.total_limit_bytes = 10000;
  LimitResource limit(DefaultHostResource(), o);
  auto a = limit.Allocate(6000);
  ASSERT_TRUE(a.ok());
  auto over = limit.Allocate(4001);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.status().code(), StatusCode::kResourceExhausted);
  auto exact = limit.Allocate(4000);  // lands exactly on the limit
  ASSERT_TRUE(exact.ok());
  EXPECT_EQ(limit.used_bytes(), 10000u);
  EXPECT_FALSE(limit.Allocate(1).ok());
  limit.Deallocate(*exact, 4000);
  auto again = limit.Allocate(4000);  // freed bytes count again
  ASSERT_TRUE(again.ok());
  limit.Deallocate(*again, 4000);
  limit.Deallocate(*a, 6000);
}

TEST(LimitResourceTest, KindAndOwnerLimitsAreIndependent) {
  LimitResource::Options o;
  o.kind_limit_bytes[static_cast<int>(MemoryKind::kActivations)] = 1000;
  o.owner_limit_bytes[1] = 5000;
  LimitResource limit(DefaultHostResource(), o);
  std::vector<std::pair<void*, std::pair<size_t, AllocTag>>> held;
  auto take = [&](size_t n, AllocTag t) {
    auto r = limit.Allocate(n, t);
    if (r.ok()) held.push_back({*r, {n, t}});
    return r.ok();
  };
  EXPECT_TRUE(take(1000, kModel1Acts));
  EXPECT_FALSE(take(1, kModel1Acts));                 // kind limit reached
  EXPECT_TRUE(take(4000, kModel1Weights));            // owner 1 now exactly at 5000
  EXPECT_FALSE(take(1, kModel1Weights));              // owner limit
  EXPECT_TRUE(take(100000, kModel2Weights));          // owner 2 has no limit
  EXPECT_EQ(limit.owner_used_bytes(1), 5000u);
  EXPECT_EQ(limit.kind_used_bytes(MemoryKind::kWeights), 104000u);
  limit.SetOwnerLimit(1, 6000);
  EXPECT_TRUE(take(1000, kModel1Weights));
  limit.SetOwnerLimit(1, kNoLimit);
  EXPECT_TRUE(take(1000, kModel1Weights));
  for (auto& [p, nt] : held) limit.Deallocate(p, nt.first, nt.second);
  EXPECT_EQ(limit.used_bytes(), 0u);
  EXPECT_EQ(limit.owner_used_bytes(1), 0u);
}

TEST(LimitResourceTest, UpstreamFailureRollsBackTheCount) {
  LimitResource::Options inner_o;
  inner_o.total_limit_bytes = 100;
  LimitResource inner(DefaultHostResource(), inner_o);
  LimitResource outer(&inner, {});
  EXPECT_FALSE(outer.Allocate(200).ok());
  EXPECT_EQ(outer.used_bytes(), 0u);
}

TEST(StatisticsResourceTest, CountsByOwnerAndKind) {
  StatisticsResource stats(DefaultHostResource());
  void* a = *stats.Allocate(1000, kModel1Weights);
  void* b = *stats.Allocate(3000, kModel1Acts);
  void* c = *stats.Allocate(500, kModel2Weights);
  stats.Deallocate(b, 3000, kModel1Acts);
  void* d = *stats.Allocate(200, kModel1Acts);
  MemoryStats total = *stats.Stats();
  EXPECT_EQ(total.current_bytes, 1700u);
  EXPECT_EQ(total.peak_bytes, 4500u);
  EXPECT_EQ(total.total_bytes, 4700u);
  EXPECT_EQ(total.num_allocations, 4u);
  EXPECT_EQ(total.num_deallocations, 1u);
  MemoryStats owner1 = stats.OwnerStats(1);
  EXPECT_EQ(owner1.current_bytes, 1200u);
  EXPECT_EQ(owner1.peak_bytes, 4000u);
  EXPECT_EQ(stats.KindStats(MemoryKind::kWeights).current_bytes, 1500u);
  EXPECT_EQ(stats.KindStats(MemoryKind::kActivations).peak_bytes, 3000u);
  EXPECT_EQ(stats.OwnerStats(99).num_allocations, 0u);
  EXPECT_EQ(stats.AllOwnerStats().size(), 2u);
  stats.Deallocate(a, 1000, kModel1Weights);
  stats.Deallocate(c, 500, kModel2Weights);
  stats.Deallocate(d, 200, kModel1Acts);
  EXPECT_EQ(stats.Stats()->current_bytes, 0u);
}

TEST(TrackingResourceTest, ReportsOutstandingAllocationsWithTags) {
  TrackingResource tracking(DefaultHostResource());
  EXPECT_NE(tracking.LeakReport().find("no leaks"), std::string::npos);
  void* a = *tracking.Allocate(1000, kModel1Weights);
  void* b = *tracking.Allocate(2000, kModel2Weights);
  void* c = *tracking.Allocate(300, kModel1Acts);
  tracking.Deallocate(b, 2000, kModel2Weights);
  auto out = tracking.Outstanding();
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].ptr, a);
  EXPECT_EQ(out[0].bytes, 1000u);
  EXPECT_EQ(out[1].tag, kModel1Acts);
  EXPECT_EQ(tracking.outstanding_bytes(), 1300u);
  EXPECT_EQ(tracking.OutstandingForOwner(2).size(), 0u);
  EXPECT_EQ(tracking.OutstandingForOwner(1).size(), 2u);
  std::string report = tracking.LeakReport();
  EXPECT_NE(report.find("2 outstanding allocations, 1300 bytes"), std::string::npos) << report;
  EXPECT_NE(report.find("kind=activations"), std::string::npos) << report;
  tracking.Deallocate(a, 1000, kModel1Weights);
  tracking.Deallocate(c, 300, kModel1Acts);
  EXPECT_TRUE(tracking.Outstanding().empty());
  EXPECT_EQ(tracking.unknown_frees(), 0u);
}

// The residency manager's path: the budget is full, the callback evicts (frees) and the
// allocation is retried and succeeds.
TEST(FailureCallbackResourceTest, RetryAfterEvictionSucceeds) {
  LimitResource::Options o;
  o.total_limit_bytes = 10000;
  LimitResource limit(DefaultHostResource(), o);
  std::vector<std::pair<void*, size_t>> evictable;
  for (int i = 0; i < 3; ++i) evictable.push_back({*limit.Allocate(3000, kModel2Weights), 3000});
  int calls = 0;
  FailureCallbackResource mr(&limit, [&](size_t bytes, AllocTag tag, const Status& error, int attempt) {
    ++calls;
    EXPECT_EQ(bytes, 5000u);
    EXPECT_EQ(tag, kModel1Weights);
    EXPECT_EQ(error.code(), StatusCode::kResourceExhausted);
    EXPECT_EQ(attempt, calls - 1);
    if (evictable.empty()) return false;
    limit.Deallocate(evictable.back().first, 3000, kModel2Weights);
    evictable.pop_back();
    return true;
  });
  auto r = mr.Allocate(5000, kModel1Weights);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(calls, 2);  // 9000 used -> evict one (6000) -> still short -> evict another (3000)
  EXPECT_EQ(evictable.size(), 1u);
  mr.Deallocate(*r, 5000, kModel1Weights);
  limit.Deallocate(evictable.back().first, 3000, kModel2Weights);
}

TEST(FailureCallbackResourceTest, GivesUpWhenCallbackDeclinesOrRetriesRunOut) {
  LimitResource::Options o;
  o.total_limit_bytes = 100;
  LimitResource limit(DefaultHostResource(), o);
  int calls = 0;
  FailureCallbackResource declines(&limit, [&](size_t, AllocTag, const Status&, int) {
    ++calls;
    return false;
  });
  auto r = declines.Allocate(200);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(calls, 1);
  calls = 0;
  FailureCallbackResource always(&limit, [&](size_t, AllocTag, const Status&, int) {
    ++calls;
    return true;
  }, 3);
  EXPECT_FALSE(always.Allocate(200).ok());
  EXPECT_EQ(calls, 3);
}

}  // namespace
TEST(FaultInjectionResourceTest, FailsAtTheGivenRateAndReproducibly) {
  auto run = [](double p, uint64_t seed, std::vector<bool>* pattern) {
    FaultInjectionResource r(DefaultHostResource(), p, seed);
    int failed = 0;
    for (int i = 0; i < 2000; ++i) {
      auto b = Buffer::Allocate(&r, 64);
      if (!b.ok()) {
        EXPECT_EQ(b.status().code(), StatusCode::kResourceExhausted);
        ++failed;
      }
      if (pattern) pattern->push_back(b.ok());
    }
    EXPECT_EQ(r.injected(), static_cast<uint64_t>(failed));
    return failed;
  };
  EXPECT_EQ(run(0.0, 1, nullptr), 0);
  EXPECT_EQ(run(1.0, 1, nullptr), 2000);
  std::vector<bool> a, b;
  int n = run(0.1, 7, &a);
  EXPECT_GT(n, 120);  // 200 expected; a fixed seed makes the count exact and the bounds safe
  EXPECT_LT(n, 280);
  run(0.1, 7, &b);
  EXPECT_EQ(a, b);  // same seed, same failures
}

}  // namespace gpuhive
