// The scheduler wakes one waiting worker per kind for new work instead of all of them. These tests
// check that no ready batch is left waiting for a busy worker while another worker sleeps.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "fake_runner.h"
#include "gpuhive/scheduler.h"

namespace gpuhive::sched {
namespace {

using testing::Collector;
using testing::FakeRunner;
using testing::Gate;
using testing::MakeRequest;

SchedulerOptions Workers(std::vector<DeviceSpec::Worker> workers) {
  SchedulerOptions o;
  o.devices[0].workers = std::move(workers);
  o.aging_interval_us = 0;
  o.cpu_nice_per_priority = 0;
  return o;
}

// Two batches become ready at the same moment (the queue delay of two requests that cannot share a
// batch expires), while only one worker was woken for them: the worker that takes the first must
// hand the second to the other, sleeping worker.
TEST(SchedulerWakeupTest, SecondReadyBatchWakesAnotherWorker) {
  auto s = Scheduler::Create(Workers({{1, 1, -1}, {1, 1, -1}})).value();
  FakeRunner::Options ro;
  ro.gate = std::make_shared<Gate>();
  auto runner = std::make_shared<FakeRunner>(ro);
  ModelConfig c;
  c.name = "m";
  c.max_batch_size = 4;
  c.max_queue_delay_us = 300'000;
  ASSERT_TRUE(s->AddModel(c, runner).ok());
  Collector done;
  // Let both workers start and go to sleep with nothing to do.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  // Different widths: two signatures, so two batches of one row each.
  ASSERT_TRUE(s->Enqueue(MakeRequest("m", 1.0f, 1, 2, done.Callback())).ok());
  // Let the woken worker go back to waiting (on the delay), so that the next request wakes it again.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(s->Enqueue(MakeRequest("m", 2.0f, 1, 3, done.Callback())).ok());
  // Both batches run at once: both workers reach the gate.
  EXPECT_TRUE(ro.gate->WaitForWaiters(2));
  ro.gate->Open();
  ASSERT_TRUE(done.WaitFor(2));
  for (const auto& r : done.responses()) EXPECT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(runner->batches().size(), 2u);
}

// Requests arriving back to back while every worker sleeps each get a worker of their own.
TEST(SchedulerWakeupTest, BackToBackRequestsRunInParallel) {
  auto s = Scheduler::Create(Workers({{1, 1, -1}, {1, 1, -1}, {1, 1, -1}})).value();
  FakeRunner::Options ro;
  ro.gate = std::make_shared<Gate>();
  auto runner = std::make_shared<FakeRunner>(ro);
  ModelConfig c;
  c.name = "m";
  ASSERT_TRUE(s->AddModel(c, runner).ok());
  Collector done;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(s->Enqueue(MakeRequest("m", static_cast<float>(i), 1, 2, done.Callback())).ok());
  EXPECT_TRUE(ro.gate->WaitForWaiters(3));
  ro.gate->Open();
  ASSERT_TRUE(done.WaitFor(3));
  std::vector<int> workers;
  for (const auto& b : runner->batches()) workers.push_back(b.worker_index);
  std::sort(workers.begin(), workers.end());
  EXPECT_EQ(workers, (std::vector<int>{0, 1, 2}));
}

// Critical work wakes the worker reserved for it while the general worker is busy.
TEST(SchedulerWakeupTest, CriticalRequestWakesReservedWorker) {
  auto s = Scheduler::Create(Workers({{1, 1, -1}, {1, 0, 0}})).value();
  FakeRunner::Options bo;
  bo.gate = std::make_shared<Gate>();
  auto background = std::make_shared<FakeRunner>(bo);
  auto critical = std::make_shared<FakeRunner>(FakeRunner::Options{});
  ModelConfig b;
  b.name = "background";
  ASSERT_TRUE(s->AddModel(b, background).ok());
  ModelConfig k;
  k.name = "critical";
  ASSERT_TRUE(s->AddModel(k, critical).ok());
  Collector bg, crit;
  ASSERT_TRUE(s->Enqueue(MakeRequest("background", 1.0f, 1, 2, bg.Callback(), 3)).ok());
  ASSERT_TRUE(bo.gate->WaitForWaiters(1));
  ASSERT_TRUE(s->Enqueue(MakeRequest("critical", 2.0f, 1, 2, crit.Callback(), 0)).ok());
  EXPECT_TRUE(crit.WaitFor(1));  // while the general worker is held at the gate
  bo.gate->Open();
  ASSERT_TRUE(bg.WaitFor(1));
  ASSERT_EQ(critical->batches().size(), 1u);
  EXPECT_EQ(critical->batches()[0].worker_index, 1);
}

}  // namespace
}  // namespace gpuhive::sched
