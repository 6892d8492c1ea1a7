// Many producers, several models, workers and devices, deadlines and full queues: every request's
// callback runs exactly once, outputs belong to the right request, and the counters add up.
// Labelled "tsan": scripts/sanitizer-tests.sh runs it under ThreadSanitizer.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <random>
#include <thread>

#include "fake_runner.h"
#include "gpuhive/scheduler.h"
#include "gpuhive/units.h"

namespace gpuhive::sched {
namespace {

using testing::FakeRunner;
using testing::MakeRequest;

TEST(SchedulerStressTest, NoRequestLostOrDuplicated) {
  for (auto policy : {PlacementPolicy::kWeighted, PlacementPolicy::kRoundRobin}) {
    SchedulerOptions o;
    o.devices = {DeviceSpec{}, DeviceSpec{}};
    o.devices[0].workers = {DeviceSpec::Worker{1, 1, -1}, DeviceSpec::Worker{1, 0, 0}};
    o.devices[1].workers = {DeviceSpec::Worker{1, 2, -1}};
    o.placement = policy;
    o.aging_interval_us = 2000;
    o.cpu_nice_per_priority = 0;
    auto s = Scheduler::Create(o).value();
    const int kModels = 3;
    std::vector<std::shared_ptr<FakeRunner>> runners;
    for (int m = 0; m < kModels; ++m) {
      FakeRunner::Options ro;
      ro.service_us = 50 * (m + 1);
      runners.push_back(std::make_shared<FakeRunner>(ro));
      ModelConfig cfg;
      cfg.name = "m" + std::to_string(m);
      cfg.max_batch_size = m == 0 ? 0 : 8;
      cfg.max_queue_delay_us = m == 2 ? 300 : 0;
      cfg.preferred_batch_sizes = m == 2 ? std::vector<int>{4} : std::vector<int>{};
      cfg.default_queue_policy.max_queue_size = 64;
      cfg.default_queue_policy.timeout_action = m == 1 ? TimeoutAction::kDelay : TimeoutAction::kReject;
      cfg.default_queue_policy.default_timeout_us = 50'000;
      cfg.tenant = m == 2 ? "t2" : "t1";
      ASSERT_TRUE(s->AddModel(cfg, runners.back()).ok());
    }
    s->SetTenantWeight("t1", 2);

    const int kProducers = 6, kPerProducer = 300;
    const int total = kProducers * kPerProducer;
    std::vector<std::atomic<int>> calls(static_cast<size_t>(total));
    std::vector<std::atomic<int>> bad_outputs(1);
    std::atomic<int> ok{0}, refused{0}, expired{0}, other{0};
    std::vector<std::thread> producers;
    for (int p = 0; p < kProducers; ++p) {
      producers.emplace_back([&, p] {
        std::mt19937 rng(static_cast<uint32_t>(p * 7919 + 1));
        for (int i = 0; i < kPerProducer; ++i) {
          int id = p * kPerProducer + i;
          int model = static_cast<int>(rng() % kModels);
          int64_t rows = model == 0 ? 1 : 1 + static_cast<int64_t>(rng() % 3);
          auto req = MakeRequest(
              "m" + std::to_string(model), static_cast<float>(id) * 4.0f, rows, 2,
              [&, id, rows](InferenceResponse r) {
                calls[static_cast<size_t>(id)]++;
                if (r.status.ok()) {
                  ok++;
                  if (r.outputs.size() != 1 || r.outputs[0].tensor.shape() != Shape{rows, 2} ||
                      r.outputs[0].tensor.as<float>()[0] != static_cast<float>(id) * 8.0f) {
                    bad_outputs[0]++;
                  }
                } else if (r.status.code() == StatusCode::kResourceExhausted) {
                  refused++;
                } else if (r.status.code() == StatusCode::kDeadlineExceeded) {
                  expired++;
                } else {
                  other++;
                }
              },
              static_cast<int>(rng() % 4));
          if (rng() % 10 == 0) req->deadline_ns = NowNs() + static_cast<int64_t>(rng() % 3000) * 1000;
          (void)s->Enqueue(std::move(req));
          if (rng() % 8 == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
      });
    }
    for (auto& t : producers) t.join();
    s.reset();  // drains
    for (int id = 0; id < total; ++id) ASSERT_EQ(calls[static_cast<size_t>(id)].load(), 1) << "request " << id;
    EXPECT_EQ(bad_outputs[0].load(), 0);
    EXPECT_EQ(other.load(), 0);
    EXPECT_EQ(ok + refused + expired, total);
    EXPECT_GT(ok.load(), total / 10);  // most may be refused or time out under a sanitizer
    size_t executed_rows = 0;
    for (auto& r : runners) {
      for (const auto& b : r->batches()) {
        executed_rows += static_cast<size_t>(b.rows);
        EXPECT_LE(b.rows, 8);
      }
    }
    EXPECT_GE(executed_rows, static_cast<size_t>(ok.load()));
  }
}

}  // namespace
}  // namespace gpuhive::sched
