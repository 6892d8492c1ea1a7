#include "gpuhive/scheduler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>

#include "fake_runner.h"
#include "gpuhive/units.h"

namespace gpuhive::sched {
namespace {

using testing::Collector;
using testing::FakeRunner;
using testing::Gate;
using testing::MakeRequest;

SchedulerOptions OneWorker(int64_t aging_us = 0) {
  SchedulerOptions o;
  o.devices[0].workers = {DeviceSpec::Worker{1, 1, -1}};
  o.aging_interval_us = aging_us;
  o.cpu_nice_per_priority = 0;
  return o;
}

ModelConfig Config(const std::string& name, int max_batch = 0) {
  ModelConfig c;
  c.name = name;
  c.max_batch_size = max_batch;
  return c;
}

// Holds the scheduler's workers on a "block" model until Release().
class Blocker {
 public:
  explicit Blocker(Scheduler& s, int workers = 1) : s_(s), workers_(workers) {
    FakeRunner::Options o;
    o.gate = gate_;
    runner_ = std::make_shared<FakeRunner>(o);
    EXPECT_TRUE(s_.AddModel(Config("block"), runner_).ok());
    for (int i = 0; i < workers; ++i) {
      EXPECT_TRUE(s_.Enqueue(MakeRequest("block", -1000.0f - i, 1, 1, done_.Callback(), 0)).ok());
    }
    EXPECT_TRUE(gate_->WaitForWaiters(workers));
  }
  void Release() {
    gate_->Open();
    EXPECT_TRUE(done_.WaitFor(static_cast<size_t>(workers_)));
  }

 private:
  Scheduler& s_;
  int workers_;
  std::shared_ptr<Gate> gate_ = std::make_shared<Gate>();
  std::shared_ptr<FakeRunner> runner_;
  Collector done_;
};

TEST(SchedulerTest, ServesStrictPriorityThenArrivalOrder) {
  auto s = Scheduler::Create(OneWorker()).value();
  auto runner = std::make_shared<FakeRunner>(FakeRunner::Options{});
  ASSERT_TRUE(s->AddModel(Config("m"), runner).ok());
  Blocker block(*s);
  Collector c;
  const int prio[] = {3, 1, 2, 0, 1, 0};
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(s->Enqueue(MakeRequest("m", static_cast<float>(i), 1, 2, c.Callback(), prio[i])).ok());
  block.Release();
  ASSERT_TRUE(c.WaitFor(6));
  EXPECT_EQ(runner->order(), (std::vector<float>{3, 5, 1, 4, 2, 0}));
  for (const auto& r : c.responses()) EXPECT_TRUE(r.status.ok()) << r.status.ToString();
}

TEST(SchedulerTest, PriorityHoldsAcrossModels) {
  auto s = Scheduler::Create(OneWorker()).value();
  auto a = std::make_shared<FakeRunner>(FakeRunner::Options{});
  auto b = std::make_shared<FakeRunner>(FakeRunner::Options{});
  ASSERT_TRUE(s->AddModel(Config("a"), a).ok());
  ASSERT_TRUE(s->AddModel(Config("b"), b).ok());
  Blocker block(*s);
  Collector c;
  ASSERT_TRUE(s->Enqueue(MakeRequest("a", 1, 1, 1, c.Callback(), 2)).ok());
  ASSERT_TRUE(s->Enqueue(MakeRequest("b", 2, 1, 1, c.Callback(), 0)).ok());
  block.Release();
  ASSERT_TRUE(c.WaitFor(2));
  auto rs = c.responses();
  EXPECT_EQ(rs[0].model_name, "b");
  EXPECT_EQ(rs[1].model_name, "a");
}

// With aging, a background request that waited long enough is served before newer critical work;
// without aging the critical request goes first.
TEST(SchedulerTest, AgingLetsOldRequestsOvertake) {
  for (bool aging : {false, true}) {
    auto s = Scheduler::Create(OneWorker(aging ? 40'000 : 0)).value();
    auto runner = std::make_shared<FakeRunner>(FakeRunner::Options{});
    ASSERT_TRUE(s->AddModel(Config("m"), runner).ok());
    Blocker block(*s);
    Collector c;
    ASSERT_TRUE(s->Enqueue(MakeRequest("m", 3, 1, 1, c.Callback(), 3)).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // 5 aging intervals > 3 levels
    ASSERT_TRUE(s->Enqueue(MakeRequest("m", 0, 1, 1, c.Callback(), 0)).ok());
    block.Release();
    ASSERT_TRUE(c.WaitFor(2));
    EXPECT_EQ(runner->order(), aging ? (std::vector<float>{3, 0}) : (std::vector<float>{0, 3})) << "aging " << aging;
  }
}

TEST(SchedulerTest, ExpiredDeadlineIsAnsweredAndNeverExecuted) {
  auto s = Scheduler::Create(OneWorker()).value();
  auto runner = std::make_shared<FakeRunner>(FakeRunner::Options{});
  ASSERT_TRUE(s->AddModel(Config("m"), runner).ok());
  Blocker block(*s);
  Collector c;
  auto req = MakeRequest("m", 7, 1, 1, c.Callback(), 0);
  req->deadline_ns = NowNs() + 30'000'000;
  ASSERT_TRUE(s->Enqueue(std::move(req)).ok());
  // Answered at its deadline although the only worker is busy.
  ASSERT_TRUE(c.WaitFor(1));
  EXPECT_EQ(c.Get("7.000000").status.code(), StatusCode::kDeadlineExceeded);
  block.Release();
  ASSERT_TRUE(s->Enqueue(MakeRequest("m", 8, 1, 1, c.Callback(), 0)).ok());
  ASSERT_TRUE(c.WaitFor(2));
  EXPECT_EQ(runner->order(), std::vector<float>{8});
  EXPECT_EQ(s->Stats().models["m"].expired, 1u);

  auto late = MakeRequest("m", 9, 1, 1, c.Callback(), 0);
  late->deadline_ns = NowNs() - 1;
  EXPECT_EQ(s->Enqueue(std::move(late)).code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(c.count("9.000000"), 1u);
}

TEST(SchedulerTest, FullQueueRefusesAtOnceWithRetryAfter) {
  auto s = Scheduler::Create(OneWorker()).value();
  auto runner = std::make_shared<FakeRunner>(FakeRunner::Options{});
  ModelConfig cfg = Config("m");
  cfg.default_queue_policy.max_queue_size = 2;
  ASSERT_TRUE(s->AddModel(cfg, runner).ok());
  Blocker block(*s);
  Collector c;
  EXPECT_TRUE(s->Enqueue(MakeRequest("m", 1, 1, 1, c.Callback(), 1)).ok());
  EXPECT_TRUE(s->Enqueue(MakeRequest("m", 2, 1, 1, c.Callback(), 1)).ok());
  Status full = s->Enqueue(MakeRequest("m", 3, 1, 1, c.Callback(), 1));
  EXPECT_EQ(full.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(full.message().find("retry after"), std::string::npos) << full.message();
  ASSERT_EQ(c.count("3.000000"), 1u);  // answered on the caller's thread, before Enqueue returned
  EXPECT_GE(c.Get("3.000000").retry_after_s, 1);
  // Another level has its own queue.
  EXPECT_TRUE(s->Enqueue(MakeRequest("m", 4, 1, 1, c.Callback(), 0)).ok());
  block.Release();
  ASSERT_TRUE(c.WaitFor(4));
  EXPECT_EQ(runner->order(), (std::vector<float>{4, 1, 2}));
  EXPECT_EQ(s->Stats().models["m"].refused_full, 1u);
}

TEST(SchedulerTest, RejectTimeoutAnswersWithoutRunning) {
  auto s = Scheduler::Create(OneWorker()).value();
  auto runner = std::make_shared<FakeRunner>(FakeRunner::Options{});
  ModelConfig cfg = Config("m");
  cfg.default_queue_policy.default_timeout_us = 20'000;
  cfg.default_queue_policy.timeout_action = TimeoutAction::kReject;
  ASSERT_TRUE(s->AddModel(cfg, runner).ok());
  Blocker block(*s);
  Collector c;
  ASSERT_TRUE(s->Enqueue(MakeRequest("m", 1, 1, 1, c.Callback())).ok());
  ASSERT_TRUE(c.WaitFor(1));
  EXPECT_EQ(c.Get("1.000000").status.code(), StatusCode::kDeadlineExceeded);
  block.Release();
  EXPECT_TRUE(runner->order().empty());
}

TEST(SchedulerTest, DelayTimeoutRunsAfterTimelyRequests) {
  auto s = Scheduler::Create(OneWorker()).value();
  auto runner = std::make_shared<FakeRunner>(FakeRunner::Options{});
  ModelConfig cfg = Config("m");
  cfg.default_queue_policy.default_timeout_us = 20'000;
  cfg.default_queue_policy.timeout_action = TimeoutAction::kDelay;
  ASSERT_TRUE(s->AddModel(cfg, runner).ok());
  Blocker block(*s);
  Collector c;
  ASSERT_TRUE(s->Enqueue(MakeRequest("m", 1, 1, 1, c.Callback(), 0)).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  ASSERT_TRUE(s->Enqueue(MakeRequest("m", 2, 1, 1, c.Callback(), 0)).ok());
  block.Release();
  ASSERT_TRUE(c.WaitFor(2));
  EXPECT_EQ(runner->order(), (std::vector<float>{2, 1}));
  for (const auto& r : c.responses()) EXPECT_TRUE(r.status.ok());
}

TEST(SchedulerTest, PerRequestTimeoutOverrideOnlyWhereAllowed) {
  for (bool allow : {true, false}) {
    auto s = Scheduler::Create(OneWorker()).value();
    auto runner = std::make_shared<FakeRunner>(FakeRunner::Options{});
    ModelConfig cfg = Config("m");
    cfg.default_queue_policy.default_timeout_us = 10'000'000;
    cfg.default_queue_policy.allow_timeout_override = allow;
    ASSERT_TRUE(s->AddModel(cfg, runner).ok());
    Blocker block(*s);
    Collector c;
    auto req = MakeRequest("m", 1, 1, 1, c.Callback());
    req->timeout_us = 20'000;
    ASSERT_TRUE(s->Enqueue(std::move(req)).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(80));
    block.Release();
    ASSERT_TRUE(c.WaitFor(1));
    EXPECT_EQ(c.Get("1.000000").status.code(), allow ? StatusCode::kDeadlineExceeded : StatusCode::kOk);
  }
}

TEST(SchedulerTest, BatchesUpToMaxBatchSizeAndSplitsOutputs) {
  auto s = Scheduler::Create(OneWorker()).value();
  auto runner = std::make_shared<FakeRunner>(FakeRunner::Options{});
  ASSERT_TRUE(s->AddModel(Config("m", 4), runner).ok());
  Blocker block(*s);
  Collector c;
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(s->Enqueue(MakeRequest("m", 10.0f * i, 1, 3, c.Callback(), 1)).ok());
  block.Release();
  ASSERT_TRUE(c.WaitFor(10));
  auto batches = runner->batches();
  ASSERT_EQ(batches.size(), 3u);
  EXPECT_EQ(batches[0].rows, 4);
  EXPECT_EQ(batches[1].rows, 4);
  EXPECT_EQ(batches[2].rows, 2);
  for (const auto& r : c.responses()) {
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    ASSERT_EQ(r.outputs.size(), 1u);
    EXPECT_EQ(r.outputs[0].name, "y");
    EXPECT_EQ(r.outputs[0].tensor.shape(), (Shape{1, 3}));
    EXPECT_FLOAT_EQ(r.outputs[0].tensor.as<float>()[0], 2.0f * std::stof(r.request_id));
  }
}

// batch_min_gain: a model whose time grows with every row (batching buys nothing) is run one
// row at a time after trying 2, while one whose batch costs the same at any size grows to
// max_batch_size; a request larger than the limit still runs, alone. The first run at each size
// is a warm-up, not a measurement, so each size runs twice before it counts. Without the option, the
// first batch already takes max_batch_size rows.
TEST(SchedulerTest, BatchesGrowOnlyAsFarAsBatchingBuys) {
  // Measured times are real sleeps, so the gains asked for leave room for a loaded machine's
  // delays: the linear model would have to look 2.5x slower at one row than it is to grow (0.6),
  // the constant one to lose 60 % of its 50 % per doubling to stop (0.2).
  SchedulerOptions lo = OneWorker(), co = OneWorker();
  lo.batch_min_gain = 0.6;
  co.batch_min_gain = 0.2;
  auto s = Scheduler::Create(lo).value();
  auto sc = Scheduler::Create(co).value();
  FakeRunner::Options per_row;
  per_row.service_us_per_row = 30'000;  // 30 ms a row: no gain from batching
  auto linear = std::make_shared<FakeRunner>(per_row);
  FakeRunner::Options flat;
  flat.service_us = 20'000;  // 20 ms a batch, whatever its size
  auto constant = std::make_shared<FakeRunner>(flat);
  // Requests arrive within microseconds; a batch below the limit waits up to 50 ms for more.
  ModelConfig lc = Config("linear", 8), cc = Config("constant", 8);
  lc.max_queue_delay_us = cc.max_queue_delay_us = 50'000;
  ASSERT_TRUE(s->AddModel(lc, linear).ok());
  ASSERT_TRUE(sc->AddModel(cc, constant).ok());
  EXPECT_EQ(*s->BatchLimit("linear"), 1);
  for (Scheduler* sched : {s.get(), sc.get()}) {
    const std::string model = sched == s.get() ? "linear" : "constant";
    Collector c;
    for (int round = 0; round < 4; ++round) {
      for (int i = 0; i < 8; ++i) ASSERT_TRUE(sched->Enqueue(MakeRequest(model, 1.0f * i, 1, 2, c.Callback(), 1)).ok());
      ASSERT_TRUE(c.WaitFor(static_cast<size_t>(8 * (round + 1))));
    }
  }
  auto rows_of = [](const std::vector<testing::BatchRecord>& batches) {
    std::vector<int64_t> rows;
    for (const auto& b : batches) rows.push_back(b.rows);
    return rows;
  };
  const auto linear_rows = rows_of(linear->batches());
  ASSERT_GE(linear_rows.size(), 5u);
  EXPECT_EQ(linear_rows[0], 1);  // nothing measured: one row (a warm-up), then one measured
  EXPECT_EQ(linear_rows[1], 1);
  EXPECT_EQ(linear_rows[2], 2);  // then 2, to measure it
  EXPECT_EQ(linear_rows[3], 2);
  for (size_t i = 4; i < linear_rows.size(); ++i) EXPECT_EQ(linear_rows[i], 1) << "batch " << i;
  EXPECT_EQ(*s->BatchLimit("linear"), 1);
  // 1, 1, 2, 2, 4, 4 (each size warmed up, measured, a gain), then batches of 8 (on a quiet
  // machine; a loaded one may delay a run enough to hide a doubling's gain, so only growth
  // beyond 2 is required).
  const auto constant_rows = rows_of(constant->batches());
  ASSERT_GE(constant_rows.size(), 4u);
  EXPECT_EQ(constant_rows[0], 1);
  EXPECT_EQ(constant_rows[1], 1);
  EXPECT_EQ(constant_rows[2], 2);
  EXPECT_GE(*std::max_element(constant_rows.begin(), constant_rows.end()), 4);
  EXPECT_LE(*std::max_element(constant_rows.begin(), constant_rows.end()), 8);
  EXPECT_GE(*sc->BatchLimit("constant"), 4);
  // A 4-row request to the model limited to 1 row runs whole, alone.
  Collector big;
  ASSERT_TRUE(s->Enqueue(MakeRequest("linear", 100.0f, 4, 2, big.Callback(), 1)).ok());
  ASSERT_TRUE(big.WaitFor(1));
  ASSERT_EQ(big.responses().size(), 1u);
  EXPECT_TRUE(big.responses()[0].status.ok()) << big.responses()[0].status.ToString();
  EXPECT_EQ(linear->batches().back().rows, 4);
  EXPECT_EQ(s->BatchLimit("ghost").status().code(), StatusCode::kNotFound);

  // Without the option: Triton's rule, the first batch takes max_batch_size rows.
  auto plain = Scheduler::Create(OneWorker()).value();
  auto runner = std::make_shared<FakeRunner>(per_row);
  ASSERT_TRUE(plain->AddModel(Config("linear", 8), runner).ok());
  EXPECT_EQ(*plain->BatchLimit("linear"), 8);
  Blocker block(*plain);
  Collector c;
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(plain->Enqueue(MakeRequest("linear", 1.0f * i, 1, 2, c.Callback(), 1)).ok());
  block.Release();
  ASSERT_TRUE(c.WaitFor(8));
  ASSERT_FALSE(runner->batches().empty());
  EXPECT_EQ(runner->batches()[0].rows, 8);
}

// Sizes not yet measured are tried by one batch at a time, even with several idle workers: each
// worker trying a large size at once would hold that many large arenas.
TEST(SchedulerTest, OneBatchAtATimeTriesAnUnmeasuredSize) {
  SchedulerOptions o;
  o.devices[0].workers = {DeviceSpec::Worker{1, 1, -1}, DeviceSpec::Worker{1, 1, -1}};
  o.aging_interval_us = 0;
  o.cpu_nice_per_priority = 0;
  o.batch_min_gain = 0.3;
  auto s = Scheduler::Create(o).value();
  FakeRunner::Options flat;
  flat.service_us = 20'000;  // the same at any size: every doubling is a gain
  auto runner = std::make_shared<FakeRunner>(flat);
  ASSERT_TRUE(s->AddModel(Config("m", 8), runner).ok());
  Collector c;
  for (int i = 0; i < 64; ++i) ASSERT_TRUE(s->Enqueue(MakeRequest("m", 1.0f * i, 1, 2, c.Callback(), 1)).ok());
  ASSERT_TRUE(c.WaitFor(64));
  const auto batches = runner->batches();
  int tried = 0;
  for (int64_t size : {2, 4, 8}) {
    std::vector<testing::BatchRecord> first;  // the first two batches of this size: warm-up, measurement
    for (const auto& b : batches) {
      if (b.rows == size && first.size() < 2) first.push_back(b);
    }
    if (first.size() < 2) continue;  // growth stopped before it (a loaded machine: see above)
    ++tried;
    EXPECT_LE(first[0].end_ns, first[1].start_ns) << "two trials of size " << size << " overlapped";
  }
  EXPECT_GE(tried, 1);
}

// batch_memory: a batch never holds more activation bytes than the bound (one-row bytes times its
// rows). Auto: the largest one-row bytes of the registered models, so no worker holds more than
// unbatched execution would; a model whose bytes are not known yet runs one row at a time until its
// first batch has taught the runner. A request larger than the bound still runs, alone.
TEST(SchedulerTest, BatchMemoryBoundsTheRowsOfABatch) {
  constexpr uint64_t kMiB = 1 << 20;
  auto make = [](int64_t batch_memory) {
    SchedulerOptions o = OneWorker();
    o.batch_memory = batch_memory;
    return Scheduler::Create(o).value();
  };
  auto runner = [](uint64_t row_bytes, bool after_first_run = false) {
    FakeRunner::Options o;
    o.row_bytes = row_bytes;
    o.row_bytes_after_first_run = after_first_run;
    return std::make_shared<FakeRunner>(o);
  };
  auto s = make(SchedulerOptions::kBatchMemoryAuto);
  auto big = runner(10 * kMiB), small = runner(3 * kMiB), lazy = runner(2 * kMiB, true);
  ASSERT_TRUE(s->AddModel(Config("big", 8), big).ok());
  ASSERT_TRUE(s->AddModel(Config("small", 8), small).ok());
  ASSERT_TRUE(s->AddModel(Config("lazy", 8), lazy).ok());
  EXPECT_EQ(*s->BatchLimit("big"), 1);
  EXPECT_EQ(*s->BatchLimit("small"), 3);  // 3 x 3 MiB <= 10 MiB < 4 x 3 MiB
  EXPECT_EQ(*s->BatchLimit("lazy"), 1);   // not known yet
  {
    Blocker block(*s);
    Collector c;
    for (int i = 0; i < 8; ++i) ASSERT_TRUE(s->Enqueue(MakeRequest("small", 1.0f * i, 1, 2, c.Callback(), 1)).ok());
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(s->Enqueue(MakeRequest("big", 10.0f + i, 1, 2, c.Callback(), 1)).ok());
    block.Release();
    ASSERT_TRUE(c.WaitFor(11));
  }
  ASSERT_FALSE(small->batches().empty());
  EXPECT_EQ(small->batches()[0].rows, 3);
  for (const auto& b : small->batches()) EXPECT_LE(b.rows, 3);
  ASSERT_EQ(big->batches().size(), 3u);
  for (const auto& b : big->batches()) EXPECT_EQ(b.rows, 1);
  Collector one;
  ASSERT_TRUE(s->Enqueue(MakeRequest("lazy", 1.0f, 1, 2, one.Callback(), 1)).ok());
  ASSERT_TRUE(one.WaitFor(1));
  // Learned after its first batch (the worker reads it once the batch is answered): 5 x 2 MiB <=
  // 10 MiB.
  for (int i = 0; i < 200 && *s->BatchLimit("lazy") == 1; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(*s->BatchLimit("lazy"), 5);
  // A 4-row request to the model limited to one row runs whole, alone.
  Collector whole;
  ASSERT_TRUE(s->Enqueue(MakeRequest("big", 100.0f, 4, 2, whole.Callback(), 1)).ok());
  ASSERT_TRUE(whole.WaitFor(1));
  EXPECT_TRUE(whole.responses()[0].status.ok()) << whole.responses()[0].status.ToString();
  EXPECT_EQ(big->batches().back().rows, 4);

  // An explicit bound, and none.
  auto fixed = make(static_cast<int64_t>(7 * kMiB));
  ASSERT_TRUE(fixed->AddModel(Config("small", 8), runner(3 * kMiB)).ok());
  ASSERT_TRUE(fixed->AddModel(Config("unknown", 8), runner(0)).ok());
  EXPECT_EQ(*fixed->BatchLimit("small"), 2);
  EXPECT_EQ(*fixed->BatchLimit("unknown"), 1);
  auto unbounded = make(0);
  ASSERT_TRUE(unbounded->AddModel(Config("small", 8), runner(3 * kMiB)).ok());
  EXPECT_EQ(*unbounded->BatchLimit("small"), 8);
}

// A runner that pads batches to a few plan sizes (the engine: powers of two) runs padding rows at
// the cost of real ones: batches are formed without padding where they can be (7 queued rows run
// as 4, 2, 1 instead of one batch of 7 executed as 8), and a batch's memory is counted at the rows
// it is executed as (3 MiB rows under a 10 MiB bound: 3 rows would run as 4, 12 MiB, so 2). A
// single request keeps its own size. Scenario 1 ran ResNet-50 batches of 5 as 8.
TEST(SchedulerTest, BatchesThatTheRunnerWouldPadRunWithoutThePadding) {
  constexpr uint64_t kMiB = 1 << 20;
  for (int64_t memory : {int64_t{0}, static_cast<int64_t>(10 * kMiB)}) {
    SCOPED_TRACE(memory == 0 ? "unbounded" : "10 MiB");
    SchedulerOptions o = OneWorker();
    o.batch_memory = memory;
    o.batch_min_gain = 0;
    auto s = Scheduler::Create(o).value();
    FakeRunner::Options ro;
    ro.row_bytes = 3 * kMiB;
    ro.pads_to_powers_of_two = true;
    auto runner = std::make_shared<FakeRunner>(ro);
    ASSERT_TRUE(s->AddModel(Config("m", 8), runner).ok());
    {
      Blocker block(*s);
      Collector c;
      for (int i = 0; i < 7; ++i) ASSERT_TRUE(s->Enqueue(MakeRequest("m", 1.0f * i, 1, 2, c.Callback(), 1)).ok());
      block.Release();
      ASSERT_TRUE(c.WaitFor(7));
      for (const auto& r : c.responses()) EXPECT_TRUE(r.status.ok()) << r.status.ToString();
    }
    std::vector<int64_t> rows;
    for (const auto& b : runner->batches()) rows.push_back(b.rows);
    if (memory == 0) {
      EXPECT_EQ(rows, (std::vector<int64_t>{4, 2, 1}));
    } else {
      EXPECT_EQ(rows, (std::vector<int64_t>{2, 2, 2, 1}));
    }
    // In order: the prefix runs first, the rest follows.
    const std::vector<float> order = runner->order();
    EXPECT_EQ(order, (std::vector<float>{0, 1, 2, 3, 4, 5, 6}));
    Collector three;
    ASSERT_TRUE(s->Enqueue(MakeRequest("m", 50.0f, 3, 2, three.Callback(), 1)).ok());
    ASSERT_TRUE(three.WaitFor(1));
    EXPECT_EQ(runner->batches().back().rows, 3);
  }
}

// batch_memory across workers: the unreserved workers together hold at most the per-worker bound
// times their number, less the reserved worker's share (the largest critical-by-default model's one
// row). Two 10 MiB batches do not fit 2 x 10 - 4 MiB side by side, so the second waits while a
// small one runs beside the first; the reserved worker's batches are cut to its share.
TEST(SchedulerTest, BatchMemoryKeepsTheWorkersTogetherWithinTheAllowance) {
  constexpr uint64_t kMiB = 1 << 20;
  SchedulerOptions o;
  o.priority_levels = 2;
  o.devices[0].workers = {DeviceSpec::Worker{1, 1, -1}, DeviceSpec::Worker{1, 1, -1}, DeviceSpec::Worker{1, 0, 0}};
  o.aging_interval_us = 0;
  o.cpu_nice_per_priority = 0;
  o.batch_memory = SchedulerOptions::kBatchMemoryAuto;
  auto s = Scheduler::Create(o).value();
  auto gate = std::make_shared<Gate>();
  FakeRunner::Options bo;
  bo.row_bytes = 10 * kMiB;
  bo.gate = gate;
  auto big = std::make_shared<FakeRunner>(bo);
  FakeRunner::Options so, co;
  so.row_bytes = 3 * kMiB;
  co.row_bytes = 4 * kMiB;
  auto small = std::make_shared<FakeRunner>(so), crit = std::make_shared<FakeRunner>(co);
  ModelConfig bc = Config("big", 8), sc = Config("small", 8), cc = Config("crit", 8);
  bc.default_priority_level = sc.default_priority_level = 1;
  cc.default_priority_level = 0;
  ASSERT_TRUE(s->AddModel(bc, big).ok());
  ASSERT_TRUE(s->AddModel(sc, small).ok());
  ASSERT_TRUE(s->AddModel(cc, crit).ok());
  EXPECT_EQ(*s->BatchLimit("big"), 1);
  EXPECT_EQ(*s->BatchLimit("small"), 5);  // 16 MiB / 3 MiB
  Collector c;
  ASSERT_TRUE(s->Enqueue(MakeRequest("big", 1.0f, 1, 2, c.Callback(), 1)).ok());
  ASSERT_TRUE(gate->WaitForWaiters(1));
  ASSERT_TRUE(s->Enqueue(MakeRequest("big", 2.0f, 1, 2, c.Callback(), 1)).ok());
  ASSERT_TRUE(s->Enqueue(MakeRequest("small", 3.0f, 1, 2, c.Callback(), 1)).ok());
  ASSERT_TRUE(c.WaitFor(1));  // the small one ran beside the first big one; the second waits
  EXPECT_TRUE(c.Get("3.000000").status.ok());
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(s->Enqueue(MakeRequest("crit", 10.0f + i, 1, 2, c.Callback(), 0)).ok());
  ASSERT_TRUE(c.WaitFor(5));
  gate->Open();
  ASSERT_TRUE(c.WaitFor(7));
  const auto runs = big->batches();
  ASSERT_EQ(runs.size(), 2u);
  const auto& first = runs[0].start_ns <= runs[1].start_ns ? runs[0] : runs[1];
  const auto& second = runs[0].start_ns <= runs[1].start_ns ? runs[1] : runs[0];
  EXPECT_GE(second.start_ns, first.end_ns) << "two 10 MiB batches ran together within a 16 MiB allowance";
  for (const auto& b : crit->batches()) {
    if (b.worker_index == 2) {
      EXPECT_EQ(b.rows, 1) << "the reserved worker's share is one 4 MiB row";
    }
  }
}

// A batch that does not fit beside the running ones runs its longest fitting prefix instead of
// leaving its worker idle until they finish: 4 rows of 3 MiB hold 12 of the 16 MiB allowance, so
// of the next 3 rows one runs beside them at once (before, the second worker waited: on 2 cores
// it sat out each 5-row ResNet-50 batch of scenario 1).
TEST(SchedulerTest, BatchMemoryRunsThePrefixThatFitsInsteadOfWaiting) {
  constexpr uint64_t kMiB = 1 << 20;
  SchedulerOptions o;
  o.priority_levels = 1;
  o.devices[0].workers = {DeviceSpec::Worker{1, 1, -1}, DeviceSpec::Worker{1, 1, -1}};
  o.aging_interval_us = 0;
  o.cpu_nice_per_priority = 0;
  o.batch_memory = SchedulerOptions::kBatchMemoryAuto;
  auto s = Scheduler::Create(o).value();
  auto gate = std::make_shared<Gate>();
  FakeRunner::Options so, bo;
  so.row_bytes = 3 * kMiB;
  so.gate = gate;
  bo.row_bytes = 8 * kMiB;  // sets the per-worker bound: 2 x 8 = 16 MiB for the two workers
  auto small = std::make_shared<FakeRunner>(so), big = std::make_shared<FakeRunner>(bo);
  ASSERT_TRUE(s->AddModel(Config("small", 8), small).ok());
  ASSERT_TRUE(s->AddModel(Config("big", 8), big).ok());
  EXPECT_EQ(*s->BatchLimit("small"), 5);
  Collector c;
  {
    Blocker block(*s, 2);
    for (int i = 0; i < 4; ++i) ASSERT_TRUE(s->Enqueue(MakeRequest("small", 1.0f + i, 1, 2, c.Callback(), 0)).ok());
    block.Release();
  }
  ASSERT_TRUE(gate->WaitForWaiters(1));  // 4 rows, 12 MiB, running
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(s->Enqueue(MakeRequest("small", 10.0f + i, 1, 2, c.Callback(), 0)).ok());
  EXPECT_TRUE(gate->WaitForWaiters(2)) << "the second worker waited instead of running the row that fits";
  gate->Open();
  ASSERT_TRUE(c.WaitFor(7));
  auto batches = small->batches();
  std::sort(batches.begin(), batches.end(), [](const auto& a, const auto& b) { return a.start_ns < b.start_ns; });
  ASSERT_GE(batches.size(), 2u);
  EXPECT_EQ(batches[0].rows, 4);
  EXPECT_EQ(batches[1].rows, 1) << "beside 12 MiB, 4 MiB of the allowance hold one 3 MiB row";
  int64_t total = 0;
  for (const auto& b : batches) total += b.rows;
  EXPECT_EQ(total, 7);
}

TEST(SchedulerTest, MultiRowRequestsStayWholeAndOversizedAreRefused) {
  auto s = Scheduler::Create(OneWorker()).value();
  auto runner = std::make_shared<FakeRunner>(FakeRunner::Options{});
  ASSERT_TRUE(s->AddModel(Config("m", 4), runner).ok());
  Collector c;
  EXPECT_EQ(s->Enqueue(MakeRequest("m", 1, 5, 2, c.Callback())).code(), StatusCode::kInvalidArgument);
  Blocker block(*s);
  ASSERT_TRUE(s->Enqueue(MakeRequest("m", 10, 3, 2, c.Callback(), 1)).ok());
  ASSERT_TRUE(s->Enqueue(MakeRequest("m", 20, 2, 2, c.Callback(), 1)).ok());
  ASSERT_TRUE(s->Enqueue(MakeRequest("m", 30, 1, 2, c.Callback(), 1)).ok());
  block.Release();
  ASSERT_TRUE(c.WaitFor(4));
  auto batches = runner->batches();
  // Arrival order is kept: the 2-row request does not fit after 3 rows, so the batch closes there
  // and the next one starts with it.
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_EQ(batches[0].first_values, (std::vector<float>{10, 11, 12}));
  EXPECT_EQ(batches[1].first_values, (std::vector<float>{20, 21, 30}));
  auto r = c.Get("20.000000");
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(r.outputs[0].tensor.shape(), (Shape{2, 2}));
  EXPECT_FLOAT_EQ(r.outputs[0].tensor.as<float>()[2], 42.0f);
}

TEST(SchedulerTest, DifferentInnerShapesNeverShareABatch) {
  auto s = Scheduler::Create(OneWorker()).value();
  auto runner = std::make_shared<FakeRunner>(FakeRunner::Options{});
  ASSERT_TRUE(s->AddModel(Config("m", 8), runner).ok());
  Blocker block(*s);
  Collector c;
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(s->Enqueue(MakeRequest("m", i, 1, i % 2 ? 3 : 5, c.Callback(), 1)).ok());
  block.Release();
  ASSERT_TRUE(c.WaitFor(6));
  auto batches = runner->batches();
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_EQ(batches[0].first_values, (std::vector<float>{0, 2, 4}));
  EXPECT_EQ(batches[1].first_values, (std::vector<float>{1, 3, 5}));
}

TEST(SchedulerTest, PreferredBatchSizeGoesAtOnceRestWaitsForQueueDelay) {
  auto s = Scheduler::Create(OneWorker()).value();
  auto runner = std::make_shared<FakeRunner>(FakeRunner::Options{});
  ModelConfig cfg = Config("m", 8);
  cfg.preferred_batch_sizes = {2, 4};
  cfg.max_queue_delay_us = 150'000;
  ASSERT_TRUE(s->AddModel(cfg, runner).ok());
  Blocker block(*s);
  Collector c;
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(s->Enqueue(MakeRequest("m", i, 1, 1, c.Callback(), 1)).ok());
  int64_t t0 = NowNs();
  block.Release();
  ASSERT_TRUE(c.WaitFor(4));
  auto batches = runner->batches();
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_EQ(batches[0].rows, 4);  // the largest preferred size that can be formed
  EXPECT_LT(NowNs() - t0, 100'000'000);
  ASSERT_TRUE(c.WaitFor(5));
  batches = runner->batches();
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_EQ(batches[1].rows, 1);
  EXPECT_GE(c.Get("4.000000").queue_ns, 140'000'000);  // held for the queue delay
}

TEST(SchedulerTest, QueueDelayGathersABatchOnAnIdleWorker) {
  auto s = Scheduler::Create(OneWorker()).value();
  auto runner = std::make_shared<FakeRunner>(FakeRunner::Options{});
  ModelConfig cfg = Config("m", 8);
  cfg.max_queue_delay_us = 100'000;
  ASSERT_TRUE(s->AddModel(cfg, runner).ok());
  Collector c;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(s->Enqueue(MakeRequest("m", i, 1, 1, c.Callback(), 1)).ok());
  ASSERT_TRUE(c.WaitFor(3));
  auto batches = runner->batches();
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_EQ(batches[0].rows, 3);
}

TEST(SchedulerTest, WithoutDynamicBatchingRequestsRunAlone) {
  auto s = Scheduler::Create(OneWorker()).value();
  auto runner = std::make_shared<FakeRunner>(FakeRunner::Options{});
  ModelConfig cfg = Config("m", 8);
  cfg.dynamic_batching = false;
  ASSERT_TRUE(s->AddModel(cfg, runner).ok());
  Blocker block(*s);
  Collector c;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(s->Enqueue(MakeRequest("m", i, 2, 1, c.Callback(), 1)).ok());
  block.Release();
  ASSERT_TRUE(c.WaitFor(3));
  auto batches = runner->batches();
  ASSERT_EQ(batches.size(), 3u);
  for (const auto& b : batches) EXPECT_EQ(b.rows, 2);
}

TEST(SchedulerTest, RefusesBadRequestsClearly) {
  auto s = Scheduler::Create(OneWorker()).value();
  auto runner = std::make_shared<FakeRunner>(FakeRunner::Options{});
  ASSERT_TRUE(s->AddModel(Config("m", 4), runner).ok());
  EXPECT_EQ(s->AddModel(Config("m", 4), runner).code(), StatusCode::kAlreadyExists);
  Collector c;
  EXPECT_EQ(s->Enqueue(MakeRequest("nope", 1, 1, 1, c.Callback())).code(), StatusCode::kNotFound);
  EXPECT_EQ(s->Enqueue(MakeRequest("m", 2, 1, 1, c.Callback(), 9)).code(), StatusCode::kInvalidArgument);
  auto wrong = MakeRequest("m", 3, 1, 1, c.Callback());
  wrong->inputs[0].name = "z";
  EXPECT_EQ(s->Enqueue(std::move(wrong)).code(), StatusCode::kInvalidArgument);
  auto out = MakeRequest("m", 4, 1, 1, c.Callback());
  out->requested_outputs = {"nope"};
  EXPECT_EQ(s->Enqueue(std::move(out)).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(c.WaitFor(4));
  for (const auto& r : c.responses()) EXPECT_FALSE(r.status.ok());
  ModelConfig bad = Config("b", 4);
  bad.preferred_batch_sizes = {8};
  EXPECT_EQ(s->AddModel(bad, runner).code(), StatusCode::kInvalidArgument);
}

TEST(SchedulerTest, ThreeModelsExecuteAtTheSameTime) {
  SchedulerOptions o;
  o.devices[0].workers.assign(3, DeviceSpec::Worker{1, 1, -1});
  o.cpu_nice_per_priority = 0;
  auto s = Scheduler::Create(o).value();
  std::mutex mu;
  std::condition_variable cv;
  int running = 0, peak = 0;
  FakeRunner::Options ro;
  ro.on_run = [&] {
    std::unique_lock<std::mutex> lk(mu);
    running++;
    peak = std::max(peak, running);
    cv.notify_all();
    cv.wait_for(lk, std::chrono::seconds(5), [&] { return running >= 3; });
    lk.unlock();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    lk.lock();
    running--;
  };
  Collector c;
  for (const char* name : {"a", "b", "c"}) {
    ASSERT_TRUE(s->AddModel(Config(name), std::make_shared<FakeRunner>(ro)).ok());
  }
  for (const char* name : {"a", "b", "c"}) ASSERT_TRUE(s->Enqueue(MakeRequest(name, 1, 1, 1, c.Callback())).ok());
  ASSERT_TRUE(c.WaitFor(3));
  EXPECT_EQ(peak, 3);
}

TEST(SchedulerTest, FairShareFollowsTenantWeights) {
  auto s = Scheduler::Create(OneWorker()).value();
  FakeRunner::Options ro;
  ro.service_us = 2000;
  auto runner = std::make_shared<FakeRunner>(ro);
  ASSERT_TRUE(s->AddModel(Config("m"), runner).ok());
  s->SetTenantWeight("gold", 3);
  s->SetTenantWeight("bronze", 1);
  Blocker block(*s);
  Collector c;
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE(s->Enqueue(MakeRequest("m", i, 1, 1, c.Callback(), 1, "gold")).ok());
    ASSERT_TRUE(s->Enqueue(MakeRequest("m", 100 + i, 1, 1, c.Callback(), 1, "bronze")).ok());
  }
  block.Release();
  ASSERT_TRUE(c.WaitFor(80));
  // Shares are of measured device time (what the scheduler charges), over the first 40 completions,
  // while both tenants are still backlogged.
  auto rs = c.responses();
  double gold_ns = 0, bronze_ns = 0;
  int gold = 0;
  for (size_t i = 0; i < 40; ++i) {
    bool is_gold = std::stof(rs[i].request_id) < 100;
    (is_gold ? gold_ns : bronze_ns) += static_cast<double>(rs[i].compute_ns);
    gold += is_gold;
  }
  double share = gold_ns / (gold_ns + bronze_ns);
  EXPECT_GT(share, 0.67) << gold << " of 40 requests";
  EXPECT_LT(share, 0.83) << gold << " of 40 requests";
  EXPECT_LT(gold, 40);  // bronze is served too
}

TEST(SchedulerTest, CriticalWorkGoesToTheReservedWorker) {
  SchedulerOptions o;
  o.devices[0].workers = {DeviceSpec::Worker{1, 2, -1}, DeviceSpec::Worker{1, 0, 0}};
  o.cpu_nice_per_priority = 0;
  auto s = Scheduler::Create(o).value();
  auto runner = std::make_shared<FakeRunner>(FakeRunner::Options{});
  ASSERT_TRUE(s->AddModel(Config("m"), runner).ok());
  Collector c;
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(s->Enqueue(MakeRequest("m", i, 1, 1, c.Callback(), i % 2 ? 0 : 3)).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_TRUE(c.WaitFor(20));
  for (const auto& b : runner->batches()) {
    bool critical = static_cast<int>(b.first_values[0]) % 2 == 1;
    EXPECT_EQ(b.worker_index, critical ? 1 : 0) << "value " << b.first_values[0];
  }
}

TEST(SchedulerTest, WeightedPlacementPrefersTheFasterDevice) {
  for (auto policy : {PlacementPolicy::kWeighted, PlacementPolicy::kRoundRobin}) {
    SchedulerOptions o;
    o.devices = {DeviceSpec{}, DeviceSpec{}};
    o.devices[0].name = "fast";
    o.devices[1].name = "slow";
    o.placement = policy;
    o.cpu_nice_per_priority = 0;
    auto s = Scheduler::Create(o).value();
    FakeRunner::Options ro;
    ro.service_us_by_device = [](int d) { return d == 0 ? 1000 : 8000; };
    auto runner = std::make_shared<FakeRunner>(ro);
    Scheduler::AddModelOptions ao;
    ao.profile_inputs.push_back(Tensor::FromVector<float>(DataType::kFloat32, {1, 1}, {1.0f}).value());
    ASSERT_TRUE(s->AddModel(Config("m"), runner, ao).ok());
    auto est_fast = s->EstimateNs("m", 0, 1).value(), est_slow = s->EstimateNs("m", 1, 1).value();
    EXPECT_LT(est_fast * 3, est_slow);
    size_t profiled = runner->batches().size();
    Collector c;
    for (int i = 0; i < 40; ++i) {
      ASSERT_TRUE(s->Enqueue(MakeRequest("m", i, 1, 1, c.Callback(), 1)).ok());
      std::this_thread::sleep_for(std::chrono::microseconds(1500));
    }
    ASSERT_TRUE(c.WaitFor(40));
    int on_fast = 0, on_slow = 0;
    auto batches = runner->batches();
    for (size_t i = profiled; i < batches.size(); ++i) (batches[i].device_index == 0 ? on_fast : on_slow)++;
    if (policy == PlacementPolicy::kWeighted) {
      EXPECT_GT(on_fast, 3 * on_slow) << on_fast << " vs " << on_slow;
    } else {
      EXPECT_EQ(on_fast, on_slow);
    }
  }
}

TEST(SchedulerTest, RemoveModelAnswersQueuedRequests) {
  auto s = Scheduler::Create(OneWorker()).value();
  auto runner = std::make_shared<FakeRunner>(FakeRunner::Options{});
  ASSERT_TRUE(s->AddModel(Config("m"), runner).ok());
  Blocker block(*s);
  Collector c;
  ASSERT_TRUE(s->Enqueue(MakeRequest("m", 1, 1, 1, c.Callback())).ok());
  ASSERT_TRUE(s->RemoveModel("m").ok());
  ASSERT_TRUE(c.WaitFor(1));
  EXPECT_EQ(c.Get("1.000000").status.code(), StatusCode::kUnavailable);
  EXPECT_EQ(s->RemoveModel("m").code(), StatusCode::kNotFound);
  block.Release();
  EXPECT_TRUE(runner->order().empty());
}

// Issue 16: unloading answered admitted requests 503; Triton finishes them. DrainAndRemoveModel
// runs what was queued, refuses new requests meanwhile, and returns once the model is gone.
TEST(SchedulerTest, DrainAndRemoveModelFinishesAdmittedRequests) {
  auto s = Scheduler::Create(OneWorker()).value();
  auto runner = std::make_shared<FakeRunner>(FakeRunner::Options{});
  ASSERT_TRUE(s->AddModel(Config("m"), runner).ok());
  Blocker block(*s);
  Collector c;
  for (int i = 1; i <= 3; ++i) ASSERT_TRUE(s->Enqueue(MakeRequest("m", static_cast<float>(i), 1, 1, c.Callback())).ok());
  std::atomic<bool> returned{false};
  std::thread unloader([&] {
    EXPECT_TRUE(s->DrainAndRemoveModel("m", 30'000).ok());
    returned = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(returned.load());  // its requests are still queued behind the blocker
  Collector late;
  EXPECT_FALSE(s->Enqueue(MakeRequest("m", 9, 1, 1, late.Callback())).ok());  // no new admissions
  block.Release();
  unloader.join();
  ASSERT_TRUE(c.WaitFor(3));
  for (const char* id : {"1.000000", "2.000000", "3.000000"}) EXPECT_TRUE(c.Get(id).status.ok()) << id;
  EXPECT_EQ(runner->order().size(), 3u);
  EXPECT_EQ(s->RemoveModel("m").code(), StatusCode::kNotFound);
}

TEST(SchedulerTest, DrainAndRemoveModelAnswersWhatIsStillQueuedAtItsDeadline) {
  auto s = Scheduler::Create(OneWorker()).value();
  auto runner = std::make_shared<FakeRunner>(FakeRunner::Options{});
  ASSERT_TRUE(s->AddModel(Config("m"), runner).ok());
  Blocker block(*s);
  Collector c;
  ASSERT_TRUE(s->Enqueue(MakeRequest("m", 1, 1, 1, c.Callback())).ok());
  ASSERT_TRUE(s->DrainAndRemoveModel("m", 100).ok());  // the worker stays blocked: give up
  ASSERT_TRUE(c.WaitFor(1));
  EXPECT_EQ(c.Get("1.000000").status.code(), StatusCode::kUnavailable);
  block.Release();
  EXPECT_TRUE(runner->order().empty());
}

TEST(SchedulerTest, DestructionDrainsQueuedRequests) {
  Collector c;
  auto runner = std::make_shared<FakeRunner>(FakeRunner::Options{});
  {
    auto s = Scheduler::Create(OneWorker()).value();
    ModelConfig cfg = Config("m", 4);
    cfg.max_queue_delay_us = 10'000'000;
    ASSERT_TRUE(s->AddModel(cfg, runner).ok());
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(s->Enqueue(MakeRequest("m", i, 1, 1, c.Callback())).ok());
  }
  EXPECT_EQ(c.responses().size(), 3u);
  EXPECT_EQ(runner->order().size(), 3u);
}

}  // namespace
}  // namespace gpuhive::sched

namespace gpuhive::sched {
namespace {

TEST(SchedulerConfigTest, RefusesBadOptions) {
  SchedulerOptions o;
  o.devices[0].workers = {DeviceSpec::Worker{1, 0, 0}};
  EXPECT_EQ(Scheduler::Create(o).status().code(), StatusCode::kInvalidArgument);  // all reserved
  o.devices[0].workers = {DeviceSpec::Worker{0, 0, -1}};
  EXPECT_EQ(Scheduler::Create(o).status().code(), StatusCode::kInvalidArgument);  // no threads
  o.devices.clear();
  EXPECT_EQ(Scheduler::Create(o).status().code(), StatusCode::kInvalidArgument);
}

// Round-robin never waits for a device that has no worker allowed to run the batch.
TEST(SchedulerConfigTest, RoundRobinSkipsDevicesWithoutEligibleWorkers) {
  SchedulerOptions o;
  o.devices = {DeviceSpec{}, DeviceSpec{}};
  o.devices[1].workers = {DeviceSpec::Worker{1, 0, 0}};  // critical-only device
  o.placement = PlacementPolicy::kRoundRobin;
  o.cpu_nice_per_priority = 0;
  auto s = Scheduler::Create(o).value();
  auto runner = std::make_shared<testing::FakeRunner>(testing::FakeRunner::Options{});
  ModelConfig cfg;
  cfg.name = "m";
  ASSERT_TRUE(s->AddModel(cfg, runner).ok());
  testing::Collector c;
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(s->Enqueue(testing::MakeRequest("m", i, 1, 1, c.Callback(), 2)).ok());
  ASSERT_TRUE(c.WaitFor(6));
  for (const auto& b : runner->batches()) EXPECT_EQ(b.device_index, 0);
}

}  // namespace
}  // namespace gpuhive::sched
