#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "gpuhive/kernel.h"
#include "gpuhive/units.h"
#include "graph/onnx_test_util.h"
#include "test_util.h"

namespace gpuhive::residency {
namespace {

using namespace gpuhive::residency::testing;
namespace fs = std::filesystem;

constexpr int kDim = 128;  // 64 KiB per layer

std::string Chain(int layers, uint32_t seed) {
  return MakeMatMulChainOnnx({.dim = kDim, .layers = layers, .seed = seed, .scale = 0.05f});
}

ModelState StateOf(ModelManager& m, const std::string& name) {
  auto all = m.ListModels();
  const ModelStatus* s = FindStatus(all, name);
  return s ? s->state : ModelState::kOnDisk;
}

TEST(StateMachine, Transitions) {
  using S = ModelState;
  EXPECT_TRUE(IsValidTransition(S::kOnDisk, S::kLoadingHost));
  EXPECT_FALSE(IsValidTransition(S::kOnDisk, S::kResident));
  EXPECT_FALSE(IsValidTransition(S::kOnDisk, S::kLoadingDevice));
  EXPECT_TRUE(IsValidTransition(S::kLoadingHost, S::kInHost));
  EXPECT_TRUE(IsValidTransition(S::kLoadingHost, S::kFailed));
  EXPECT_FALSE(IsValidTransition(S::kLoadingHost, S::kResident));
  EXPECT_TRUE(IsValidTransition(S::kInHost, S::kLoadingDevice));
  EXPECT_TRUE(IsValidTransition(S::kLoadingDevice, S::kResident));
  EXPECT_TRUE(IsValidTransition(S::kResident, S::kInHost));
  EXPECT_TRUE(IsValidTransition(S::kResident, S::kOnDisk));
  EXPECT_FALSE(IsValidTransition(S::kResident, S::kLoadingDevice));
  EXPECT_FALSE(IsValidTransition(S::kResident, S::kFailed));
  EXPECT_TRUE(IsValidTransition(S::kFailed, S::kLoadingDevice));
  EXPECT_FALSE(IsValidTransition(S::kFailed, S::kResident));
  EXPECT_EQ(ModelStateName(S::kResident), "resident");
}

TEST(Manager, RejectsBadOptions) {
  ManagerOptions o = SmallOptions(0);
  EXPECT_EQ(ModelManager::Create(o).status().code(), StatusCode::kInvalidArgument);
  o = SmallOptions(1 << 20);
  o.max_concurrent_loads = 0;
  EXPECT_EQ(ModelManager::Create(o).status().code(), StatusCode::kInvalidArgument);
}

TEST(Manager, HitMissAndRun) {
  auto m = *ModelManager::Create(SmallOptions(8 << 20));
  ASSERT_TRUE(m->AddModel(ChainConfig("a", kDim), Chain(2, 1)).ok());
  EXPECT_EQ(m->AddModel(ChainConfig("a", kDim), Chain(2, 1)).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(StateOf(*m, "a"), ModelState::kInHost);
  EXPECT_EQ(m->Acquire("nope").status().code(), StatusCode::kNotFound);
  {
    auto lease = m->Acquire("a");
    ASSERT_TRUE(lease.ok()) << lease.status().ToString();
    EXPECT_FALSE(lease->was_resident());
    EXPECT_GT(lease->swap_ns(), 0);
    ExecutionContext ctx({.num_threads = 1, .memory = m->memory()});
    Tensor x = MakeInput(3, kDim);
    auto out = m->Run(*lease, ctx, {x.view()});
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    EXPECT_EQ((*out)[0].shape(), (Shape{3, kDim}));
  }
  auto again = m->Acquire("a");
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->was_resident());
  auto st = m->Stats();
  EXPECT_EQ(st.acquires, 2u);
  EXPECT_EQ(st.hits, 1u);
  EXPECT_EQ(st.loads, 1u);
  EXPECT_GT(st.bytes_swapped_in, 2u * kDim * kDim * 4 - 1);
  EXPECT_GT(st.h2d_bytes_per_s, 0);
  EXPECT_EQ(m->Acquire("a", 2).status().code(), StatusCode::kNotFound);
}

// Budget for two 4-layer models (256 KiB of weights each) but not three.
constexpr uint64_t kTwoModels = 700 << 10;

TEST(Manager, EvictsIdleModelsButNeverLeasedOnes) {
  auto m = *ModelManager::Create(SmallOptions(kTwoModels));
  for (const char* n : {"a", "b", "c"}) ASSERT_TRUE(m->AddModel(ChainConfig(n, kDim), Chain(4, n[0])).ok());
  auto a = m->Acquire("a");
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(m->Acquire("b").ok());  // idle again at once
  auto c = m->Acquire("c");            // must evict b (a is leased)
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(StateOf(*m, "a"), ModelState::kResident);
  EXPECT_EQ(StateOf(*m, "b"), ModelState::kInHost);
  EXPECT_EQ(StateOf(*m, "c"), ModelState::kResident);
  // Everything resident is leased: a third model cannot come in now, with a clear error.
  auto b = m->Acquire("b");
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(b.status().message().find("'b'"), std::string::npos) << b.status().message();
  EXPECT_EQ(StateOf(*m, "b"), ModelState::kInHost);  // not a model failure
  a->Release();
  auto b2 = m->Acquire("b");  // now a may go
  ASSERT_TRUE(b2.ok()) << b2.status().ToString();
  EXPECT_EQ(StateOf(*m, "a"), ModelState::kInHost);
  EXPECT_EQ(m->Stats().evictions, 2u);
  EXPECT_LE(m->Stats().peak_used_bytes, kTwoModels);
}

TEST(Manager, LruEvictsLeastRecentlyUsed) {
  ManagerOptions o = SmallOptions(kTwoModels);
  o.policy = MakeLruPolicy();
  int64_t now = 1'000'000'000;
  o.clock = [&now] { return now; };
  auto m = *ModelManager::Create(o);
  for (const char* n : {"a", "b", "c"}) ASSERT_TRUE(m->AddModel(ChainConfig(n, kDim), Chain(4, n[0])).ok());
  ASSERT_TRUE(m->Acquire("a").ok());
  now += 1000;
  ASSERT_TRUE(m->Acquire("b").ok());
  now += 1000;
  ASSERT_TRUE(m->Acquire("a").ok());  // a is now the most recent
  now += 1000;
  ASSERT_TRUE(m->Acquire("c").ok());
  EXPECT_EQ(StateOf(*m, "a"), ModelState::kResident);
  EXPECT_EQ(StateOf(*m, "b"), ModelState::kInHost);
}

TEST(Manager, CostPolicyKeepsTheImportantModel) {
  ManagerOptions o = SmallOptions(kTwoModels);
  int64_t now = 1'000'000'000;
  o.clock = [&now] { return now; };
  auto m = *ModelManager::Create(o);
  ModelConfig important = ChainConfig("a", kDim);
  important.priority = 0;
  ModelConfig background = ChainConfig("b", kDim);
  background.priority = 3;
  ASSERT_TRUE(m->AddModel(important, Chain(4, 1)).ok());
  ASSERT_TRUE(m->AddModel(background, Chain(4, 2)).ok());
  ASSERT_TRUE(m->AddModel(ChainConfig("c", kDim), Chain(4, 3)).ok());
  ASSERT_TRUE(m->Acquire("a").ok());
  now += 1000;
  ASSERT_TRUE(m->Acquire("b").ok());  // more recent, but priority 3
  now += 1000;
  ASSERT_TRUE(m->Acquire("c").ok());
  EXPECT_EQ(StateOf(*m, "a"), ModelState::kResident);  // LRU would have evicted a
  EXPECT_EQ(StateOf(*m, "b"), ModelState::kInHost);
}

TEST(EvictionPolicy, OrderOfLruAndCost) {
  std::vector<EvictionCandidate> c(3);
  c[0] = {.name = "old_small_expensive", .priority = 0, .last_use_ns = 100, .bytes = 1 << 20,
          .reload_ns = 50'000'000, .next_use_probability = 0, .use_count = 50};
  c[1] = {.name = "recent_big_cheap", .priority = 0, .last_use_ns = 900, .bytes = 512 << 20,
          .reload_ns = 1'000'000, .next_use_probability = 0, .use_count = 1};
  c[2] = {.name = "predicted", .priority = 0, .last_use_ns = 50, .bytes = 1 << 20, .reload_ns = 10'000'000,
          .next_use_probability = 0.9, .use_count = 1};
  auto lru = MakeLruPolicy()->Order(c, 1000);
  EXPECT_EQ(lru, (std::vector<size_t>{2, 0, 1}));
  auto cost = MakeCostPolicy()->Order(c, 1000);
  ASSERT_EQ(cost.size(), 3u);
  EXPECT_EQ(cost[0], 1u);  // frees most bytes for the least reload cost
  EXPECT_EQ(cost[2], 0u);  // frequently used and expensive to reload: kept longest
  // Priority: the same model at a lower priority goes first.
  std::vector<EvictionCandidate> p = {c[0], c[0]};
  p[1].name = "background";
  p[1].priority = 4;
  EXPECT_EQ(MakeCostPolicy()->Order(p, 1000)[0], 1u);
  // With decayed use counts: the often-used model stays even though it was used longer ago.
  std::vector<EvictionCandidate> f = {c[0], c[0]};
  f[0].name = "often";
  f[0].last_use_ns = 100;
  f[0].decayed_uses = 20;
  f[1].name = "once_recently";
  f[1].last_use_ns = 900;
  f[1].decayed_uses = 1;
  EXPECT_EQ(MakeCostPolicy()->Order(f, 1000)[0], 1u);
  EXPECT_EQ(MakeLruPolicy()->Order(f, 1000)[0], 0u);
}

TEST(Manager, ModelThatCanNeverFitIsRefusedWithSizes) {
  auto m = *ModelManager::Create(SmallOptions(200 << 10));
  ASSERT_TRUE(m->AddModel(ChainConfig("big", kDim), Chain(4, 1)).ok());
  ASSERT_TRUE(m->AddModel(ChainConfig("small", kDim), Chain(1, 2)).ok());
  auto big = m->Acquire("big");
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(big.status().message().find("never"), std::string::npos) << big.status().message();
  EXPECT_NE(big.status().message().find("200.00 KiB"), std::string::npos) << big.status().message();
  EXPECT_TRUE(m->Acquire("small").ok());
  EXPECT_EQ(m->Stats().refused, 1u);
}

TEST(Manager, PerModelMemoryLimit) {
  auto m = *ModelManager::Create(SmallOptions(8 << 20));
  ModelConfig c = ChainConfig("capped", kDim);
  c.memory_limit_bytes = 100 << 10;
  ASSERT_TRUE(m->AddModel(c, Chain(4, 1)).ok());
  auto r = m->Acquire("capped");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(r.status().message().find("memory_limit"), std::string::npos) << r.status().message();
  EXPECT_EQ(r.status().shortage(), MemoryShortage::kOverLimit);  // typed: callers never parse text
}

TEST(Manager, FailedLoadIsReportedForThatModelOnly) {
  auto m = *ModelManager::Create(SmallOptions(8 << 20));
  ASSERT_TRUE(m->AddModel(ChainConfig("broken", kDim), "definitely not onnx").ok());
  ASSERT_TRUE(m->AddModel(ChainConfig("good", kDim), Chain(2, 1)).ok());
  auto b = m->Acquire("broken");
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("broken"), std::string::npos);
  auto all = m->ListModels();
  EXPECT_EQ(FindStatus(all, "broken")->state, ModelState::kFailed);
  EXPECT_FALSE(FindStatus(all, "broken")->last_error.ok());
  EXPECT_TRUE(m->Acquire("good").ok());
  EXPECT_EQ(m->Stats().load_failures, 1u);
  EXPECT_FALSE(m->Acquire("broken").ok());  // retried, fails again, still contained
  EXPECT_EQ(m->Stats().load_failures, 2u);
}

// Budget bytes one run of model "a" at `rows` rows takes beyond its weights (plan, arena, output),
// measured with an unconstrained manager.
uint64_t RunBytes(int64_t rows) {
  auto m = *ModelManager::Create(SmallOptions(64 << 20));
  EXPECT_TRUE(m->AddModel(ChainConfig("a", kDim, 4096), Chain(4, 1)).ok());
  auto lease = *m->Acquire("a");
  uint64_t before = m->Stats().used_bytes;
  ExecutionContext ctx({.num_threads = 1, .memory = m->memory()});
  Tensor x = MakeInput(rows, kDim);
  auto out = m->Run(lease, ctx, {x.view()});
  EXPECT_TRUE(out.ok());
  return m->Stats().used_bytes - before;
}

std::vector<float> Reference(int64_t rows) {
  auto m = *ModelManager::Create(SmallOptions(64 << 20));
  EXPECT_TRUE(m->AddModel(ChainConfig("a", kDim, 4096), Chain(4, 1)).ok());
  auto lease = *m->Acquire("a");
  ExecutionContext ctx({.num_threads = 1});
  Tensor x = MakeInput(rows, kDim);
  auto out = *lease.model().Run(ctx, {x.view()});
  return std::vector<float>(out[0].as<float>(), out[0].as<float>() + out[0].num_elements());
}

void ExpectClose(const Tensor& t, const std::vector<float>& ref) {
  ASSERT_EQ(static_cast<size_t>(t.num_elements()), ref.size());
  for (size_t i = 0; i < ref.size(); ++i) ASSERT_NEAR(t.as<float>()[i], ref[i], 1e-4f + 1e-4f * std::fabs(ref[i]));
}

TEST(Pressure, AllocationFailureEvictsIdleModelAndRetries) {
  const int64_t rows = 256;
  const uint64_t run = RunBytes(rows);
  auto m = *ModelManager::Create(SmallOptions(64 << 20));
  ASSERT_TRUE(m->AddModel(ChainConfig("a", kDim, 4096), Chain(4, 1)).ok());
  ASSERT_TRUE(m->AddModel(ChainConfig("b", kDim, 4096), Chain(4, 2)).ok());
  ASSERT_TRUE(m->Acquire("b").ok());
  auto a = *m->Acquire("a");
  const uint64_t resident = m->Stats().used_bytes;
  const uint64_t b_bytes = FindStatus(m->ListModels(), "b")->device_bytes;
  ASSERT_GT(b_bytes, 0u);
  ASSERT_LT(b_bytes / 2, run);
  // The run fits only once b is gone.
  ASSERT_TRUE(m->SetBudget(resident + run - b_bytes / 2).ok());
  ASSERT_EQ(StateOf(*m, "b"), ModelState::kResident);
  ExecutionContext ctx({.num_threads = 1, .memory = m->memory()});
  Tensor x = MakeInput(rows, kDim);
  auto out = m->Run(a, ctx, {x.view()});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  ExpectClose((*out)[0], Reference(rows));
  EXPECT_EQ(StateOf(*m, "b"), ModelState::kInHost);
  EXPECT_GE(m->Stats().pressure_retries, 1u);
  EXPECT_EQ(m->Stats().cpu_fallbacks, 0u);
}

TEST(Pressure, SmallerBatchThenCpuFallbackThenRefusal) {
  const int64_t rows = 1024;
  const uint64_t full = RunBytes(rows);
  const uint64_t half = RunBytes(rows / 2);
  const uint64_t half_output = rows / 2 * kDim * 4;  // the first half's output waits for the second
  ASSERT_LT(half + half_output, full);
  const std::vector<float> ref = Reference(rows);
  Tensor x = MakeInput(rows, kDim);
  auto make = [&](int max_batch, bool strict) {
    ManagerOptions o = SmallOptions(64 << 20);
    o.strict_device = strict;
    auto m = *ModelManager::Create(o);
    EXPECT_TRUE(m->AddModel(ChainConfig("a", kDim, max_batch), Chain(4, 1)).ok());
    return m;
  };
  {
    // The full batch misses its budget by 4 KiB; halves fit (the runtime keeps per-shape plans, so
    // the half plan comes on top of what the full one took): split, same results.
    auto m = make(4096, false);
    auto a = *m->Acquire("a");
    ASSERT_TRUE(m->SetBudget(m->Stats().used_bytes + full - 4096).ok());
    ExecutionContext ctx({.num_threads = 1, .memory = m->memory()});
    auto out = m->Run(a, ctx, {x.view()});
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    ExpectClose((*out)[0], ref);
    EXPECT_GE(m->Stats().batch_splits, 1u);
    EXPECT_EQ(m->Stats().cpu_fallbacks, 0u);
    // The joined result is handed back as I/O of this model, outside the budget.
    EXPECT_EQ(m->io_statistics().OwnerStats(a.owner_tag()).current_bytes, (*out)[0].bytes());
  }
  {
    // Nothing fits (the model does not batch, so it cannot be split): CPU fallback.
    auto m = make(0, false);
    auto a = *m->Acquire("a");
    ASSERT_TRUE(m->SetBudget(m->Stats().used_bytes + 4096).ok());
    ExecutionContext ctx({.num_threads = 1, .memory = m->memory()});
    ExecutionContext host_ctx({.num_threads = 1});
    auto out = m->Run(a, ctx, {x.view()}, &host_ctx);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    ExpectClose((*out)[0], ref);
    EXPECT_EQ(m->Stats().cpu_fallbacks, 1u);
    EXPECT_EQ(m->Stats().batch_splits, 0u);
    EXPECT_EQ(m->io_statistics().OwnerStats(a.owner_tag()).current_bytes, (*out)[0].bytes());
  }
  {
    // Strict device mode: refused with a clear error, never an abort.
    auto m = make(0, true);
    auto a = *m->Acquire("a");
    ASSERT_TRUE(m->SetBudget(m->Stats().used_bytes + 4096).ok());
    ExecutionContext ctx({.num_threads = 1, .memory = m->memory()});
    auto out = m->Run(a, ctx, {x.view()});
    ASSERT_FALSE(out.ok());
    EXPECT_EQ(out.status().code(), StatusCode::kResourceExhausted);
    EXPECT_NE(out.status().message().find("strict"), std::string::npos) << out.status().message();
    EXPECT_NE(out.status().message().find("'a'"), std::string::npos);
    EXPECT_EQ(m->Stats().cpu_fallbacks, 0u);
  }
}

TEST(Manager, KeepAliveAndIdleUnload) {
  ManagerOptions o = SmallOptions(8 << 20);
  int64_t now = 1'000'000'000;
  o.clock = [&now] { return now; };
  o.default_keep_alive_us = 1'000'000;
  auto m = *ModelManager::Create(o);
  ModelConfig zero = ChainConfig("zero", kDim);
  zero.keep_alive_us = 0;
  ModelConfig forever = ChainConfig("forever", kDim);
  forever.keep_alive_us = kKeepAliveForever;
  ASSERT_TRUE(m->AddModel(ChainConfig("dflt", kDim), Chain(1, 1)).ok());
  ASSERT_TRUE(m->AddModel(zero, Chain(1, 2)).ok());
  ASSERT_TRUE(m->AddModel(forever, Chain(1, 3)).ok());
  for (const char* n : {"dflt", "zero", "forever"}) {
    auto l = m->Acquire(n);
    ASSERT_TRUE(l.ok()) << l.status().ToString();
  }
  EXPECT_EQ(StateOf(*m, "zero"), ModelState::kInHost);  // unloaded as its lease ended
  now += 500'000'000;
  m->Housekeep();
  EXPECT_EQ(StateOf(*m, "dflt"), ModelState::kResident);
  now += 600'000'000;
  m->Housekeep();
  EXPECT_EQ(StateOf(*m, "dflt"), ModelState::kInHost);
  now += 3600'000'000'000;
  m->Housekeep();
  EXPECT_EQ(StateOf(*m, "forever"), ModelState::kResident);
  EXPECT_EQ(m->Stats().idle_unloads, 2u);
}

TEST(Manager, SetBudgetEvictsToFit) {
  auto m = *ModelManager::Create(SmallOptions(8 << 20));
  for (const char* n : {"a", "b", "c"}) ASSERT_TRUE(m->AddModel(ChainConfig(n, kDim), Chain(4, n[0])).ok());
  for (const char* n : {"a", "b", "c"}) ASSERT_TRUE(m->Acquire(n).ok());
  EXPECT_EQ(m->Stats().evictions, 0u);
  ASSERT_TRUE(m->SetBudget(kTwoModels).ok());
  EXPECT_LE(m->Stats().used_bytes, kTwoModels);
  EXPECT_EQ(m->Stats().evictions, 1u);
  EXPECT_EQ(m->SetBudget(0).code(), StatusCode::kInvalidArgument);
}

TEST(Manager, PreloadsThePredictedNextModel) {
  ManagerOptions o = SmallOptions(kTwoModels);
  o.enable_preloading = true;
  o.preload_min_probability = 0.5;
  auto m = *ModelManager::Create(o);
  for (const char* n : {"a", "b", "c"}) ASSERT_TRUE(m->AddModel(ChainConfig(n, kDim), Chain(4, n[0])).ok());
  // Pipeline a -> b -> c, repeated: only two fit, so without preloading every request misses.
  for (int round = 0; round < 6; ++round) {
    for (const char* n : {"a", "b", "c"}) {
      ASSERT_TRUE(m->Acquire(n).ok());
      m->WaitForPreloads();
    }
  }
  auto st = m->Stats();
  EXPECT_GT(st.preloads, 5u);
  EXPECT_GT(st.preload_hits, 5u);
  EXPECT_GT(st.hits, 9u) << "preloaded models must turn misses into hits";
}

// y = x + ConstantOfShape([1, dim]): a file of a few hundred bytes whose compile (with optimize)
// folds the ConstantOfShape into a dim * 4 byte weight, more than the file size the first load
// estimates it needs.
std::string FoldsIntoAWeight(int64_t dim) {
  namespace t = gpuhive::testing;
  onnx::ModelProto m = t::MakeModel();
  onnx::GraphProto* g = m.mutable_graph();
  t::AddInput(g, "x", onnx::TensorProto::FLOAT, {int64_t{1}, dim});
  t::AddOutput(g, "y", onnx::TensorProto::FLOAT, {int64_t{1}, dim});
  onnx::TensorProto* shape = g->add_initializer();
  shape->set_name("shape");
  shape->set_data_type(onnx::TensorProto::INT64);
  shape->add_dims(2);
  shape->add_int64_data(1);
  shape->add_int64_data(dim);
  t::AddNode(g, "ConstantOfShape", {"shape"}, {"c"});
  t::AddNode(g, "Add", {"x", "c"}, {"y"});
  return t::Serialize(m);
}

// x [1, 32, 16, 16] -> Conv (32 -> 32, 3x3, pads 1) -> y: a layer gpuhive's "auto" convolution
// algorithm puts on Winograd (16x16 outputs, 36 KiB of weights) where the CPU has the kernels.
std::string ConvModel() {
  namespace t = gpuhive::testing;
  onnx::ModelProto m = t::MakeModel();
  onnx::GraphProto* g = m.mutable_graph();
  t::AddInput(g, "x", onnx::TensorProto::FLOAT, {int64_t{1}, int64_t{32}, int64_t{16}, int64_t{16}});
  t::AddOutput(g, "y", onnx::TensorProto::FLOAT, {int64_t{1}, int64_t{32}, int64_t{16}, int64_t{16}});
  std::vector<float> w(32 * 32 * 9);
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(static_cast<int>(i * 37 % 19) - 9) * 0.01f;
  t::AddFloatInit(g, "w", {32, 32, 3, 3}, w);
  t::AddIntsAttr(t::AddNode(g, "Conv", {"x", "w"}, {"y"}), "pads", {1, 1, 1, 1});
  return t::Serialize(m);
}

// config.pbtxt's gpuhive { cpu_convolution } reaches the model's compilation: "auto" holds the
// Winograd-transformed weights (more bytes than the plain ones) where the CPU has oneDNN's Winograd
// kernels (AVX-512), "direct" the plain-sized ones; both compute the same result.
TEST(Manager, CpuConvolutionFromTheConfigReachesTheModel) {
  ManagerOptions o = SmallOptions(64 << 20);
  o.optimize = true;
  auto m = *ModelManager::Create(o);
  const std::string bytes = ConvModel();
  std::vector<Tensor> outputs;
  std::map<std::string, uint64_t> held;
  for (const char* algorithm : {"auto", "direct"}) {
    ModelConfig c;
    c.name = algorithm;
    c.platform = "onnxruntime_onnx";
    c.cpu_convolution = algorithm;
    ASSERT_TRUE(m->AddModel(c, bytes).ok());
    auto lease = m->Acquire(algorithm);
    ASSERT_TRUE(lease.ok()) << lease.status().ToString();
    Tensor x = *Tensor::Allocate(DataType::kFloat32, {1, 32, 16, 16});
    for (int64_t i = 0; i < x.num_elements(); ++i) x.as<float>()[i] = static_cast<float>(i % 11) * 0.1f - 0.5f;
    ExecutionContext ctx({.num_threads = 1, .memory = m->memory()});
    auto out = m->Run(*lease, ctx, {x.view()});
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    outputs.push_back(std::move((*out)[0]));
  }
  for (const auto& st : m->ListModels()) held[st.name] = st.device_bytes;
  if (CpuHasWinogradConv()) {
    // F(2,3) or F(4,3): 16/9 or 4x the 36 KiB of plain weights.
    EXPECT_GE(held["auto"], held["direct"] + 20 * 1024) << held["auto"] << " vs " << held["direct"];
  } else {
    EXPECT_EQ(held["auto"], held["direct"]);
  }
  double diff = 0, norm = 0;
  for (int64_t i = 0; i < outputs[1].num_elements(); ++i) {
    diff += std::pow(outputs[0].as<float>()[i] - outputs[1].as<float>()[i], 2);
    norm += std::pow(outputs[1].as<float>()[i], 2);
  }
  EXPECT_LT(std::sqrt(diff / norm), 1e-5);
}

// A preload never evicts for its prediction: an allocation that fails while a preload compiles is
// not answered by evicting an idle model (the preload fails, the idle model stays), while the same
// failure in a demand load evicts it.
TEST(Manager, APreloadsAllocationFailureEvictsNothing) {
  constexpr int64_t kBigDim = 128 * 1024;  // 512 KiB once folded
  ManagerOptions o = SmallOptions(1 << 20);
  o.enable_preloading = true;
  o.preload_min_probability = 0.5;
  o.optimize = true;
  auto m = *ModelManager::Create(o);
  ASSERT_TRUE(m->AddModel(ChainConfig("idle", kDim), Chain(8, 1)).ok());  // 512 KiB
  ASSERT_TRUE(m->AddModel(ChainConfig("x", kDim), Chain(1, 2)).ok());     // 64 KiB
  ASSERT_TRUE(m->AddModel(ChainConfig("big", static_cast<int>(kBigDim)), FoldsIntoAWeight(kBigDim)).ok());
  // Teach the predictor x -> big while idle and x are leased: big's loads fail without evicting
  // anything and big never learns its size (its next load estimates it from the file).
  {
    auto idle = m->Acquire("idle");
    ASSERT_TRUE(idle.ok()) << idle.status().ToString();
    for (int i = 0; i < 3; ++i) {
      auto x = m->Acquire("x");
      ASSERT_TRUE(x.ok()) << x.status().ToString();
      m->WaitForPreloads();
      EXPECT_EQ(m->Acquire("big").status().code(), StatusCode::kResourceExhausted);
      m->WaitForPreloads();
    }
  }
  const uint64_t evictions = m->Stats().evictions;
  {
    auto x = m->Acquire("x");  // preloads big: its 512 KiB weight fits only if "idle" goes
    ASSERT_TRUE(x.ok()) << x.status().ToString();
    m->WaitForPreloads();
  }
  EXPECT_EQ(StateOf(*m, "idle"), ModelState::kResident);
  EXPECT_NE(StateOf(*m, "big"), ModelState::kResident);
  EXPECT_EQ(m->Stats().evictions, evictions);
  EXPECT_EQ(m->Stats().preloads, 0u);
  // A demand load of big evicts on the same failure.
  auto big = m->Acquire("big");
  ASSERT_TRUE(big.ok()) << big.status().ToString();
  EXPECT_GT(m->Stats().evictions, evictions);
}

class RepoManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("gh_mrepo_" + std::to_string(::getpid()) + "_" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }
  void AddModelDir(const std::string& name, const std::string& config = "") {
    fs::create_directories(root_ / name / "1");
    std::ofstream(root_ / name / "1" / "model.onnx", std::ios::binary) << Chain(2, 7);
    if (!config.empty()) std::ofstream(root_ / name / "config.pbtxt") << config;
  }
  fs::path root_;
};

TEST_F(RepoManagerTest, NoneModeRegistersAllAndPreloads) {
  AddModelDir("a");
  AddModelDir("b", "name: \"b\" gpuhive { preload: true }");
  AddModelDir("broken", "name: \"broken\" max_batch_size: [");
  auto repo = *ModelRepository::Open(root_.string());
  auto m = *ModelManager::Create(SmallOptions(8 << 20), repo.get());
  auto all = m->ListModels();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(FindStatus(all, "a")->state, ModelState::kOnDisk);
  EXPECT_EQ(FindStatus(all, "b")->state, ModelState::kResident);
  auto a = m->Acquire("a");
  ASSERT_TRUE(a.ok());
  a->Release();
  ASSERT_TRUE(m->Unload("a").ok());
  EXPECT_EQ(StateOf(*m, "a"), ModelState::kOnDisk);
  EXPECT_EQ(FindStatus(m->ListModels(), "a")->host_bytes, 0u);
}

TEST_F(RepoManagerTest, ExplicitModeLoadsAndUnloadsOnRequest) {
  AddModelDir("a");
  auto repo = *ModelRepository::Open(root_.string());
  ManagerOptions o = SmallOptions(8 << 20);
  o.control_mode = ControlMode::kExplicit;
  auto m = *ModelManager::Create(o, repo.get());
  EXPECT_TRUE(m->ListModels().empty());
  EXPECT_EQ(m->Acquire("a").status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(m->Load("a").ok());
  EXPECT_EQ(StateOf(*m, "a"), ModelState::kResident);
  EXPECT_EQ(m->Load("ghost").code(), StatusCode::kNotFound);
  ASSERT_TRUE(m->Unload("a").ok());
  EXPECT_TRUE(m->ListModels().empty());
  EXPECT_EQ(m->outstanding_bytes(), 0u) << m->LeakReport();
}

TEST_F(RepoManagerTest, PollModeSeesNewAndRemovedModels) {
  AddModelDir("a");
  auto repo = *ModelRepository::Open(root_.string());
  ManagerOptions o = SmallOptions(8 << 20);
  o.control_mode = ControlMode::kPoll;
  o.poll_interval_us = 0;
  auto m = *ModelManager::Create(o, repo.get());
  ASSERT_EQ(m->ListModels().size(), 1u);
  ASSERT_TRUE(m->Acquire("a").ok());
  AddModelDir("b");
  m->Housekeep();  // a new file is taken once a second poll sees it unchanged (model_file_test)
  m->Housekeep();
  ASSERT_EQ(m->ListModels().size(), 2u);
  EXPECT_TRUE(m->Acquire("b").ok());
  fs::remove_all(root_ / "a");
  m->Housekeep();
  auto all = m->ListModels();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].name, "b");
  EXPECT_EQ(m->Acquire("a").status().code(), StatusCode::kNotFound);
}

// Issue 16: a model that can never fit says so in ListModels (the server reports it not ready).
TEST(Manager, AModelThatCanNeverFitIsReportedSo) {
  auto m = *ModelManager::Create(SmallOptions(16 << 10));
  ASSERT_TRUE(m->AddModel(ChainConfig("big", kDim), Chain(2, 1)).ok());  // 128 KiB of weights
  auto fits = [&] {
    auto all = m->ListModels();
    return FindStatus(all, "big")->fits;
  };
  EXPECT_EQ(fits().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(fits().message().find("budget"), std::string::npos) << fits().ToString();
  EXPECT_EQ(m->Acquire("big").status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(m->Acquire("big").status().shortage(), MemoryShortage::kNeverFits);
  ASSERT_TRUE(m->SetBudget(8 << 20).ok());
  EXPECT_TRUE(fits().ok()) << fits().ToString();
  EXPECT_TRUE(m->Acquire("big").ok());
  ASSERT_TRUE(m->SetMemoryLimit("big", 16 << 10).ok());
  EXPECT_EQ(fits().code(), StatusCode::kResourceExhausted);
}

// A batch whose smallest split cannot fit beside the model's weights fails at once with "can never
// run" (the server answers 503 without waiting for memory), and the model stays ready: the proof
// is the failed allocation itself, not a look at what other models hold at some later moment.
TEST(Manager, ARunThatCanNeverFitSaysSoWithoutMarkingABatchTheModel) {
  ManagerOptions o = SmallOptions(8 << 20);
  o.strict_device = true;  // no CPU fallback to hide the failure
  auto m = *ModelManager::Create(o);
  ASSERT_TRUE(m->AddModel(ChainConfig("a", kDim, 8), Chain(2, 1)).ok());
  uint64_t weights = 0;
  {
    auto lease = m->Acquire("a");
    ASSERT_TRUE(lease.ok()) << lease.status().ToString();
    weights = FindStatus(m->ListModels(), "a")->device_bytes;
  }
  ASSERT_GT(weights, 0u);
  ASSERT_TRUE(m->SetBudget(weights + 64).ok());  // the weights fit; no activation row does
  ExecutionContext ctx({.num_threads = 1, .memory = m->memory()});
  auto lease = m->Acquire("a");
  ASSERT_TRUE(lease.ok()) << lease.status().ToString();
  Tensor x = MakeInput(4, kDim);
  auto out = m->Run(*lease, ctx, {x.view()});
  ASSERT_EQ(out.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(out.status().message().find("this request can never run"), std::string::npos) << out.status().ToString();
  EXPECT_EQ(out.status().shortage(), MemoryShortage::kNeverFits);
  EXPECT_TRUE(FindStatus(m->ListModels(), "a")->fits.ok());  // a batch proves nothing about one row
  ctx.ReleaseArena();
  Tensor one = MakeInput(1, kDim);
  out = m->Run(*lease, ctx, {one.view()});
  ASSERT_EQ(out.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(out.status().message().find("can never run: one request"), std::string::npos) << out.status().ToString();
  EXPECT_EQ(FindStatus(m->ListModels(), "a")->fits.code(), StatusCode::kResourceExhausted);
}

TEST(Manager, SwappedInModelComputesTheSameResults) {
  auto m = *ModelManager::Create(SmallOptions(8 << 20));
  ASSERT_TRUE(m->AddModel(ChainConfig("a", kDim, 8), Chain(4, 5)).ok());
  ExecutionContext ctx({.num_threads = 1, .memory = m->memory()});
  Tensor x = MakeInput(3, kDim);
  std::vector<std::vector<float>> results;
  for (int round = 0; round < 3; ++round) {
    auto lease = m->Acquire("a");
    ASSERT_TRUE(lease.ok()) << lease.status().ToString();
    EXPECT_FALSE(lease->was_resident());
    auto out = m->Run(*lease, ctx, {x.view()});
    ASSERT_TRUE(out.ok());
    const Tensor& y = (*out)[0];
    results.emplace_back(y.as<float>(), y.as<float>() + y.num_elements());
    lease->Release();
    ASSERT_TRUE(m->Unload("a").ok());  // device copy dropped; the host tier keeps the graph
    EXPECT_EQ(StateOf(*m, "a"), ModelState::kInHost);
    EXPECT_GT(FindStatus(m->ListModels(), "a")->host_bytes, 4u * kDim * kDim * 4 - 1);
  }
  EXPECT_EQ(results[0], results[1]);
  EXPECT_EQ(results[0], results[2]);
  EXPECT_EQ(m->Stats().loads, 3u);
}

TEST(Manager, ManagedRunnerRunsBatchesPerWorker) {
  auto m = *ModelManager::Create(SmallOptions(kTwoModels));
  for (const char* n : {"a", "b", "c"}) ASSERT_TRUE(m->AddModel(ChainConfig(n, kDim, 8), Chain(4, n[0])).ok());
  ManagedModelRunner ra(m.get(), "a", 2), rc(m.get(), "c", 2);
  EXPECT_EQ(ra.input_names(), (std::vector<std::string>{"x"}));
  EXPECT_EQ(ra.output_names(), (std::vector<std::string>{"y"}));
  Tensor x = MakeInput(2, kDim);
  for (int i = 0; i < 4; ++i) {
    auto out = (i % 2 ? rc : ra).RunBatch({x.view()}, i % 2, 1);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    EXPECT_EQ((*out)[0].shape(), (Shape{2, kDim}));
  }
  EXPECT_EQ(ra.RunBatch({x.view()}, 2, 1).status().code(), StatusCode::kInvalidArgument);
  ManagedModelRunner ghost(m.get(), "ghost", 1);
  EXPECT_EQ(ghost.RunBatch({x.view()}, 0, 1).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(ghost.input_names().empty());
}

// Issue 12: the one acquire -> run -> release path. A shortage that only other leases cause is
// waited out (holding nothing) up to pressure_wait_ms; one that can never pass is refused at once;
// an unknown model stays kNotFound.
TEST(Manager, RunBatchWaitsOutContentionAndRefusesWhatCanNeverFit) {
  auto m = *ModelManager::Create(SmallOptions(kTwoModels));
  for (const char* n : {"a", "b", "c"}) ASSERT_TRUE(m->AddModel(ChainConfig(n, kDim), Chain(4, n[0])).ok());
  ExecutionContext ctx({.num_threads = 1, .memory = m->memory()});
  Tensor x = MakeInput(2, kDim);
  EXPECT_EQ(m->RunBatch("ghost", ctx, {x.view()}, nullptr, {}).status().code(), StatusCode::kNotFound);

  auto a = m->Acquire("a");
  auto b = m->Acquire("b");
  ASSERT_TRUE(a.ok() && b.ok());
  // Everything resident is leased: no wait means kUnavailable at once, typed as contention.
  auto now = m->RunBatch("c", ctx, {x.view()}, nullptr, {});
  ASSERT_FALSE(now.ok());
  EXPECT_EQ(now.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(now.status().shortage(), MemoryShortage::kContended);
  // With a wait, the batch runs once a lease ends.
  std::thread release([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    a->Release();
  });
  const int64_t t0 = NowNs();
  auto waited = m->RunBatch("c", ctx, {x.view()}, nullptr, {.pressure_wait_ms = 5'000});
  release.join();
  ASSERT_TRUE(waited.ok()) << waited.status().ToString();
  EXPECT_EQ((*waited)[0].shape(), (Shape{2, kDim}));
  EXPECT_GE(NowNs() - t0, 40'000'000);
  EXPECT_EQ(ctx.arena_bytes(), 0u);  // the arena went back to the pool
  b->Release();

  // A model larger than the whole budget is refused without waiting.
  auto small = *ModelManager::Create(SmallOptions(16 << 10));
  ASSERT_TRUE(small->AddModel(ChainConfig("big", kDim), Chain(2, 1)).ok());
  ExecutionContext sctx({.num_threads = 1, .memory = small->memory()});
  const int64_t t1 = NowNs();
  auto never = small->RunBatch("big", sctx, {x.view()}, nullptr, {.pressure_wait_ms = 5'000});
  EXPECT_LT(NowNs() - t1, 2'000'000'000);
  ASSERT_FALSE(never.ok());
  EXPECT_EQ(never.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(never.status().shortage(), MemoryShortage::kNeverFits);
  EXPECT_NE(never.status().message().find("cannot be made resident"), std::string::npos) << never.status().ToString();
}

TEST(Manager, NoLeaksAfterUnloadingEverything) {
  auto m = *ModelManager::Create(SmallOptions(kTwoModels));
  for (const char* n : {"a", "b", "c"}) ASSERT_TRUE(m->AddModel(ChainConfig(n, kDim, 8), Chain(4, n[0])).ok());
  {
    ExecutionContext ctx({.num_threads = 1, .memory = m->memory()});
    for (int i = 0; i < 9; ++i) {
      auto lease = m->Acquire(std::string(1, static_cast<char>('a' + i % 3)));
      ASSERT_TRUE(lease.ok()) << lease.status().ToString();
      Tensor x = MakeInput(4, kDim);
      ASSERT_TRUE(m->Run(*lease, ctx, {x.view()}).ok());
    }
  }
  EXPECT_GT(m->outstanding_bytes(), 0u);
  for (const char* n : {"a", "b", "c"}) ASSERT_TRUE(m->Unload(n).ok());
  EXPECT_EQ(m->outstanding_bytes(), 0u) << m->LeakReport();
  EXPECT_EQ(m->Stats().used_bytes, 0u);
}

}  // namespace
}  // namespace gpuhive::residency
