// Leases under concurrency (run under ThreadSanitizer with the "tsan" label): many threads acquire,
// run and release models while another changes the budget and unloads models. A leased model must
// stay resident and runnable for the whole lease; nothing may leak.
#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>

#include "test_util.h"

// oneDNN (libdnnl, not built with TSan) initializes its primitive-cache locks in uninstrumented
// code, so ThreadSanitizer reports its rwlock reads as races with the allocation. Those reports are
// about the library, not the residency manager; only frames inside libdnnl are suppressed.
extern "C" const char* __tsan_default_suppressions() { return "race:libdnnl.so\n"; }

namespace gpuhive::residency {
namespace {

using namespace gpuhive::residency::testing;

constexpr int kDim = 32;
constexpr int kModels = 6;
constexpr uint64_t kModelBytes = 2ull * kDim * kDim * 4;

TEST(Leases, ConcurrentAcquireRunReleaseWithChurn) {
  ManagerOptions o = SmallOptions(3 * kModelBytes + (64 << 10));
  o.enable_preloading = true;
  o.max_concurrent_loads = 2;
  o.housekeeping_interval_us = 1000;
  o.default_keep_alive_us = 2000;
  auto m = *ModelManager::Create(o);
  for (int i = 0; i < kModels; ++i) {
    ASSERT_TRUE(m->AddModel(ChainConfig("m" + std::to_string(i), kDim, 4),
                            MakeMatMulChainOnnx({.dim = kDim, .layers = 2, .seed = uint32_t(i + 1)}))
                    .ok());
  }
  std::atomic<int> ok{0}, contended{0}, wrong{0}, evicted_while_leased{0};
  std::atomic<bool> stop{false};
  auto worker = [&](int seed) {
    std::mt19937 rng(seed);
    ExecutionContext ctx({.num_threads = 1, .memory = m->memory()});
    ExecutionContext host_ctx({.num_threads = 1});
    Tensor x = MakeInput(2, kDim);
    for (int i = 0; i < 150; ++i) {
      std::string name = "m" + std::to_string(rng() % kModels);
      auto lease = m->Acquire(name);
      if (!lease.ok()) {
        auto c = lease.status().code();
        (c == StatusCode::kResourceExhausted || c == StatusCode::kUnavailable ? contended : wrong)++;
        continue;
      }
      if (lease->name() != name) wrong++;
      if (i % 10 == 0) {
        auto all = m->ListModels();
        const ModelStatus* s = FindStatus(all, name);
        if (s == nullptr || s->state != ModelState::kResident || s->leases < 1) evicted_while_leased++;
      }
      auto out = m->Run(*lease, ctx, {x.view()}, &host_ctx);
      if (out.ok() && (*out)[0].shape() == Shape{2, kDim}) {
        ok++;
      } else if (!out.ok() && out.status().code() == StatusCode::kResourceExhausted) {
        contended++;
      } else {
        wrong++;
      }
    }
  };
  std::thread churn([&] {
    std::mt19937 rng(99);
    while (!stop.load()) {
      uint64_t budget = (2 + rng() % 4) * kModelBytes + (64 << 10);
      EXPECT_TRUE(m->SetBudget(budget).ok());
      EXPECT_TRUE(m->Unload("m" + std::to_string(rng() % kModels)).ok());
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) threads.emplace_back(worker, t + 1);
  for (auto& t : threads) t.join();
  stop = true;
  churn.join();
  m->WaitForPreloads();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(evicted_while_leased.load(), 0);
  EXPECT_GT(ok.load(), 300);
  for (const auto& s : m->ListModels()) EXPECT_EQ(s.leases, 0) << s.name;
  for (int i = 0; i < kModels; ++i) ASSERT_TRUE(m->Unload("m" + std::to_string(i)).ok());
  EXPECT_EQ(m->outstanding_bytes(), 0u) << m->LeakReport();
}

TEST(Leases, ConcurrentAcquiresOfOneModelLoadItOnce) {
  auto m = *ModelManager::Create(SmallOptions(4 << 20));
  ASSERT_TRUE(m->AddModel(ChainConfig("only", kDim), MakeMatMulChainOnnx({.dim = kDim, .layers = 4})).ok());
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      auto lease = m->Acquire("only");
      if (lease.ok() && lease->model().weight_bytes() > 0) ok++;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 8);
  EXPECT_EQ(m->Stats().loads, 1u);
  EXPECT_EQ(m->Stats().acquires, 8u);
}

}  // namespace
}  // namespace gpuhive::residency
