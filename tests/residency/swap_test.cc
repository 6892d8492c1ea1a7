// Pipelined swap-in (weights copied on the copy engine while the first request runs), failures in
// the middle of a copy, the host tier budget, and outputs outside the device budget.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "gpuhive/onnx_import.h"
#include "gpuhive/sim_device.h"
#include "gpuhive/units.h"
#include "test_util.h"

// oneDNN (libdnnl, not built with TSan) initializes its primitive-cache locks in uninstrumented
// code, so ThreadSanitizer reports its rwlock reads as races; only frames inside libdnnl are
// suppressed (as in the lease test).
extern "C" const char* __tsan_default_suppressions() { return "race:libdnnl.so\n"; }

namespace gpuhive::residency {
namespace {

namespace fs = std::filesystem;
using testing::ChainConfig;
using testing::FindStatus;
using testing::MakeInput;
using testing::SmallOptions;

constexpr int kDim = 64;

// Device memory whose fresh allocations are poisoned (~3.4e38 floats): a step that reads a
// weight before its copy arrived computes garbage instead of the right answer by luck.
class PoisonResource final : public MemoryResource {
 public:
  DeviceId device() const override { return DefaultHostResource()->device(); }
  std::string name() const override { return "poison"; }

 private:
  StatusOr<void*> DoAllocate(size_t bytes, AllocTag tag, StreamView stream) override {
    ASSIGN_OR_RETURN(void* p, DefaultHostResource()->Allocate(bytes, tag, stream));
    std::memset(p, 0x7f, bytes);
    return p;
  }
  void DoDeallocate(void* p, size_t bytes, AllocTag tag, StreamView stream) noexcept override {
    DefaultHostResource()->Deallocate(p, bytes, tag, stream);
  }
};

SyntheticModelSpec BiasedSpec(int layers, uint32_t seed) {
  SyntheticModelSpec s;
  s.dim = kDim;
  s.layers = layers;
  s.seed = seed;
  s.scale = 0.2f;
  s.bias = true;
  return s;
}

// The reference: the model compiled and run directly, without the manager.
std::vector<float> DirectRun(const std::string& onnx, bool optimize, const Tensor& x) {
  auto g = ImportOnnxBytes(onnx);
  EXPECT_TRUE(g.ok());
  auto model = CompiledModel::Create(std::move(*g), {.optimize = optimize});
  EXPECT_TRUE(model.ok());
  ExecutionContext ctx({1});
  auto out = (*model)->Run(ctx, {x.view()});
  EXPECT_TRUE(out.ok());
  const Tensor& y = (*out)[0];
  return std::vector<float>(y.as<float>(), y.as<float>() + y.num_elements());
}

// A copy engine chunk copy that is slow (so execution catches up with it) and records when the
// last chunk went in; optionally fails at one chunk.
struct SlowChunks {
  std::chrono::microseconds delay{300};
  std::atomic<int> chunks{0};
  std::atomic<int> fail_at{-1};  // chunk number (from 0) that fails, once
  std::atomic<int64_t> last_chunk_ns{0};
  ChunkCopy Fn() {
    return [this](void* dst, const void* src, size_t bytes) -> Status {
      std::this_thread::sleep_for(delay);
      int n = chunks++;
      int f = fail_at.load();
      if (n == f && fail_at.compare_exchange_strong(f, -1)) return DataLoss("injected failure at chunk {}", n);
      std::memcpy(dst, src, bytes);
      last_chunk_ns = NowNs();
      return Status::OK();
    };
  }
};

ManagerOptions SwapOptions(bool pipelined, SlowChunks* chunks, MemoryResource* device, bool optimize = false) {
  ManagerOptions o = SmallOptions(64 << 20);
  o.bandwidth_probe_bytes = 0;  // the pool hands out fresh (poisoned) memory
  o.device_upstream = device;
  o.pipelined_swap = pipelined;
  o.optimize = optimize;
  o.copy_engine.chunk_bytes = 4096;
  if (chunks != nullptr) o.copy_engine.copy = chunks->Fn();
  return o;
}

TEST(PipelinedSwap, OutputsMatchAndStepsNeverReadWeightsBeforeTheyArrive) {
  const int layers = 12;  // 12 x (16 KiB + 256 B): 60 chunks of 4 KiB
  std::string onnx = MakeMatMulChainOnnx(BiasedSpec(layers, 5));
  Tensor x = MakeInput(3, kDim);
  for (bool optimize : {false, true}) {
    SCOPED_TRACE(optimize ? "optimized" : "as imported");
    std::vector<float> want = DirectRun(onnx, optimize, x);
    for (bool pipelined : {true, false}) {
      SCOPED_TRACE(pipelined ? "pipelined" : "not pipelined");
      PoisonResource device;
      SlowChunks chunks;
      auto m = ModelManager::Create(SwapOptions(pipelined, &chunks, &device, optimize));
      ASSERT_TRUE(m.ok()) << m.status().ToString();
      ASSERT_TRUE((*m)->AddModel(ChainConfig("m", kDim), onnx).ok());
      ExecutionContext ctx({.num_threads = 1, .memory = (*m)->memory()});
      auto lease = (*m)->Acquire("m");
      ASSERT_TRUE(lease.ok()) << lease.status().ToString();
      const int64_t leased_ns = NowNs();
      const int chunks_at_lease = chunks.chunks.load();
      auto out = (*m)->Run(*lease, ctx, {x.view()});
      ASSERT_TRUE(out.ok()) << out.status().ToString();
      ASSERT_EQ((*out)[0].num_elements(), static_cast<int64_t>(want.size()));
      EXPECT_EQ(std::memcmp((*out)[0].data(), want.data(), want.size() * sizeof(float)), 0);
      lease->Release();
      (*m)->WaitForCopies();
      const int total_chunks = chunks.chunks.load();
      EXPECT_GE(total_chunks, layers * 4);
      if (pipelined) {
        // Leased long before the last chunk: the request ran alongside the copy.
        EXPECT_LT(chunks_at_lease, total_chunks / 2);
        EXPECT_LT(leased_ns, chunks.last_chunk_ns.load());
      } else {
        EXPECT_EQ(chunks_at_lease, total_chunks);
      }
      auto st = (*m)->Stats();
      EXPECT_EQ(st.copy_failures, 0u);
      EXPECT_GE(st.bytes_copied, static_cast<uint64_t>(layers) * kDim * kDim * 4);
      EXPECT_GT(st.copy_ns, 0);
      const auto all = (*m)->ListModels();
      const ModelStatus* s = FindStatus(all, "m");
      ASSERT_NE(s, nullptr);
      EXPECT_GT(s->last_copy_ns, 0);
      EXPECT_FALSE(s->copy_in_flight);
      // A second request (weights in place) agrees too.
      auto again = (*m)->Acquire("m");
      ASSERT_TRUE(again.ok());
      auto out2 = (*m)->Run(*again, ctx, {x.view()});
      ASSERT_TRUE(out2.ok());
      EXPECT_EQ(std::memcmp((*out2)[0].data(), want.data(), want.size() * sizeof(float)), 0);
    }
  }
}

// The device path without a GPU: the manager on a simulated device whose memory the host cannot
// touch (any memcpy into it from the residency layer would fault). Every weight byte and the
// bandwidth probe go through the device's copy API; the executor reaches the weights through the
// device's kernel view; the outputs match the direct run, pipelined or not.
TEST(PipelinedSwap, OnASimulatedDeviceEveryByteGoesThroughTheCopyApi) {
  const int layers = 12;
  std::string onnx = MakeMatMulChainOnnx(BiasedSpec(layers, 7));
  Tensor x = MakeInput(3, kDim);
  std::vector<float> want = DirectRun(onnx, true, x);
  const uint64_t weight_bytes = static_cast<uint64_t>(layers) * (kDim * kDim + kDim) * 4;
  for (bool pipelined : {true, false}) {
    SCOPED_TRACE(pipelined ? "pipelined" : "not pipelined");
    SimDeviceOptions so;
    so.memory_bytes = 64 << 20;
    so.copy_bytes_per_s = 20e6;  // ~10 ms for the weights: the request overlaps the copy
    auto dev = SimDevice::Create(so);
    ASSERT_TRUE(dev.ok());
    ManagerOptions o = SmallOptions(32 << 20);
    o.device = dev->get();
    o.bandwidth_probe_bytes = 64 << 10;
    o.pipelined_swap = pipelined;
    o.copy_engine.chunk_bytes = 4096;
    auto m = ModelManager::Create(o);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    // The probe measured the device's copy path, which is never faster than its bandwidth.
    EXPECT_LE((*m)->h2d_bytes_per_s(), 20e6 * 1.01);
    const uint64_t probe_bytes = (*dev)->stats().host_to_device_bytes;
    EXPECT_EQ(probe_bytes, 4u * (64 << 10));
    ASSERT_TRUE((*m)->AddModel(ChainConfig("m", kDim), onnx).ok());
    ExecutionContext ctx({.num_threads = 1, .memory = (*m)->memory()});
    auto lease = (*m)->Acquire("m");
    ASSERT_TRUE(lease.ok()) << lease.status().ToString();
    auto out = (*m)->Run(*lease, ctx, {x.view()});
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    ASSERT_EQ((*out)[0].num_elements(), static_cast<int64_t>(want.size()));
    EXPECT_EQ(std::memcmp((*out)[0].data(), want.data(), want.size() * sizeof(float)), 0);
    lease->Release();
    (*m)->WaitForCopies();
    SimDeviceStats st = (*dev)->stats();
    EXPECT_GE(st.host_to_device_bytes - probe_bytes, weight_bytes);
    EXPECT_GE(st.allocated_bytes, weight_bytes);  // the weights live in device memory
    EXPECT_EQ((*m)->Stats().copy_failures, 0u);
    // The model's own transfer account: every weight byte the device received for it, and the
    // time, which the device's bandwidth bounds from below.
    const auto ms_all = (*m)->ListModels();
    const ModelStatus* ms = FindStatus(ms_all, "m");
    ASSERT_NE(ms, nullptr);
    EXPECT_EQ(ms->h2d_bytes, st.host_to_device_bytes - probe_bytes);
    EXPECT_EQ(ms->h2d_bytes, (*m)->Stats().bytes_copied);
    EXPECT_GE(static_cast<double>(ms->h2d_ns) * 1e-9, static_cast<double>(ms->h2d_bytes) / 20e6 * 0.9);
    // Unloading gives the device memory back to the pool (and the pool to the device on trim).
    ASSERT_TRUE((*m)->Unload("m").ok());
  }
}

TEST(PipelinedSwap, FailureMidCopyFailsTheRequestAndTheModelReloads) {
  std::string onnx = MakeMatMulChainOnnx(BiasedSpec(10, 9));
  Tensor x = MakeInput(2, kDim);
  std::vector<float> want = DirectRun(onnx, false, x);
  PoisonResource device;
  SlowChunks chunks;
  chunks.fail_at = 20;
  auto m = *ModelManager::Create(SwapOptions(true, &chunks, &device));
  ASSERT_TRUE(m->AddModel(ChainConfig("m", kDim), onnx).ok());
  ExecutionContext ctx({.num_threads = 1, .memory = m->memory()});
  {
    auto lease = m->Acquire("m");
    ASSERT_TRUE(lease.ok()) << lease.status().ToString();
    auto out = m->Run(*lease, ctx, {x.view()});
    ASSERT_FALSE(out.ok());  // its weights never all arrived: the request gets the copy's error
    EXPECT_EQ(out.status().code(), StatusCode::kDataLoss) << out.status().ToString();
    EXPECT_NE(out.status().message().find("injected failure at chunk 20"), std::string::npos) << out.status().ToString();
    // While the broken copy is leased, nobody else gets it.
    auto other = m->Acquire("m");
    EXPECT_EQ(other.status().code(), StatusCode::kUnavailable);
  }
  // The last lease ended: the broken device copy is gone (freed by whichever of the lease's end and
  // the copy engine's report comes last), the host copy stays.
  m->WaitForCopies();
  ctx.ReleaseArena();  // the worker's arena is charged to the model too
  const auto all = m->ListModels();
  const ModelStatus* s = FindStatus(all, "m");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->state, ModelState::kInHost);
  EXPECT_NE(s->last_error.message().find("injected failure"), std::string::npos) << s->last_error.ToString();
  EXPECT_EQ(s->device_bytes, 0u);
  EXPECT_EQ(m->Stats().copy_failures, 1u);
  EXPECT_EQ(m->Stats().used_bytes, 0u) << m->LeakReport();
  // The next Acquire loads it again, and it computes the right answer.
  auto lease = m->Acquire("m");
  ASSERT_TRUE(lease.ok()) << lease.status().ToString();
  auto out = m->Run(*lease, ctx, {x.view()});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(std::memcmp((*out)[0].data(), want.data(), want.size() * sizeof(float)), 0);
  EXPECT_TRUE(m->ListModels()[0].last_error.ok());
  lease->Release();
  ctx.ReleaseArena();
  ASSERT_TRUE(m->Unload("m").ok());
  EXPECT_EQ(m->outstanding_bytes(), 0u) << m->LeakReport();
}

TEST(PipelinedSwap, FailureWithoutPipeliningFailsTheAcquire) {
  std::string onnx = MakeMatMulChainOnnx(BiasedSpec(6, 2));
  PoisonResource device;
  SlowChunks chunks;
  chunks.delay = std::chrono::microseconds(0);
  chunks.fail_at = 3;
  auto m = *ModelManager::Create(SwapOptions(false, &chunks, &device));
  ASSERT_TRUE(m->AddModel(ChainConfig("m", kDim), onnx).ok());
  auto lease = m->Acquire("m");
  ASSERT_FALSE(lease.ok());
  EXPECT_EQ(lease.status().code(), StatusCode::kDataLoss) << lease.status().ToString();
  EXPECT_EQ(FindStatus(m->ListModels(), "m")->state, ModelState::kFailed);
  EXPECT_EQ(m->Stats().used_bytes, 0u);  // the half-filled copy was freed
  auto retry = m->Acquire("m");
  ASSERT_TRUE(retry.ok()) << retry.status().ToString();
  Tensor x = MakeInput(1, kDim);
  ExecutionContext ctx({.num_threads = 1, .memory = m->memory()});
  auto out = m->Run(*retry, ctx, {x.view()});
  ASSERT_TRUE(out.ok());
  std::vector<float> want = DirectRun(onnx, false, x);
  EXPECT_EQ(std::memcmp((*out)[0].data(), want.data(), want.size() * sizeof(float)), 0);
}

TEST(PipelinedSwap, ConcurrentSwapsUnderEvictionStayCorrect) {
  // Five models, room for about three (one lease per thread): every thread keeps swapping models in
  // while the others run and evict.
  const int kModels = 5, kThreads = 3, kIters = 12;
  std::vector<std::string> onnx;
  std::vector<std::vector<float>> want;
  Tensor x = MakeInput(2, kDim);
  for (int i = 0; i < kModels; ++i) {
    onnx.push_back(MakeMatMulChainOnnx(BiasedSpec(6, 40 + i)));
    want.push_back(DirectRun(onnx.back(), false, x));
  }
  PoisonResource device;
  SlowChunks chunks;
  chunks.delay = std::chrono::microseconds(50);
  ManagerOptions o = SwapOptions(true, &chunks, &device);
  auto m = *ModelManager::Create(o);
  for (int i = 0; i < kModels; ++i) ASSERT_TRUE(m->AddModel(ChainConfig("m" + std::to_string(i), kDim), onnx[i]).ok());
  {
    // Room for three of them (what they hold on the device, packed weights included) plus arenas.
    ExecutionContext ctx({.num_threads = 1, .memory = m->memory()});
    auto lease = m->Acquire("m0");
    ASSERT_TRUE(lease.ok());
    ASSERT_TRUE(m->Run(*lease, ctx, {x.view()}).ok());
    const uint64_t device_bytes = FindStatus(m->ListModels(), "m0")->device_bytes;
    ASSERT_TRUE(m->SetBudget(3 * device_bytes + 3 * ctx.arena_bytes() + (64 << 10)).ok());
  }
  std::atomic<int> wrong{0}, errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      ExecutionContext ctx({.num_threads = 1, .memory = m->memory()});
      for (int i = 0; i < kIters; ++i) {
        int k = (i * 7 + t * 3) % kModels;
        auto lease = m->Acquire("m" + std::to_string(k));
        // With every other thread holding a lease and an arena, a swap-in may find the budget
        // taken for a moment (as a server batch does, which waits for it): retry, briefly.
        for (int retry = 0; retry < 500 && !lease.ok() &&
                            (lease.status().code() == StatusCode::kResourceExhausted ||
                             lease.status().code() == StatusCode::kUnavailable);
             ++retry) {
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
          lease = m->Acquire("m" + std::to_string(k));
        }
        if (!lease.ok()) {
          ADD_FAILURE() << lease.status().ToString();
          errors++;
          continue;
        }
        auto out = m->Run(*lease, ctx, {x.view()});
        if (!out.ok()) {
          errors++;
          continue;
        }
        if (std::memcmp((*out)[0].data(), want[k].data(), want[k].size() * sizeof(float)) != 0) wrong++;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(errors.load(), 0);
  EXPECT_GT(m->Stats().evictions, 0u);
  EXPECT_LE(m->Stats().used_bytes, m->Stats().budget_bytes);
  for (int i = 0; i < kModels; ++i) ASSERT_TRUE(m->Unload("m" + std::to_string(i)).ok());
  m->WaitForCopies();
}

TEST(PipelinedSwap, OutputsHeldByTheCallerDoNotHoldTheBudget) {
  auto m = *ModelManager::Create(SmallOptions(8 << 20));
  ASSERT_TRUE(m->AddModel(ChainConfig("m", kDim), MakeMatMulChainOnnx(BiasedSpec(2, 1))).ok());
  ExecutionContext ctx({.num_threads = 1, .memory = m->memory()});
  Tensor x = MakeInput(32, kDim);
  std::vector<std::vector<Tensor>> kept;
  uint64_t used_after_first = 0;
  for (int i = 0; i < 4; ++i) {
    auto lease = m->Acquire("m");
    ASSERT_TRUE(lease.ok());
    auto out = m->Run(*lease, ctx, {x.view()});
    ASSERT_TRUE(out.ok());
    kept.push_back(std::move(*out));
    // The first run ends with the pipelined copy possibly still going, and the plain weights are
    // freed (weights held once) by the first run after it finished: measure from the second run.
    if (i == 0) m->WaitForCopies();
    if (i == 1) used_after_first = m->Stats().used_bytes;
  }
  EXPECT_EQ(m->Stats().used_bytes, used_after_first);  // 4 results held, budget use unchanged
  const uint32_t owner = [&] {
    auto lease = m->Acquire("m");
    return lease->owner_tag();
  }();
  EXPECT_EQ(m->statistics().KindStats(MemoryKind::kIO).current_bytes, 0u);
  EXPECT_EQ(m->io_statistics().OwnerStats(owner).current_bytes, 4u * 32 * kDim * sizeof(float));
  EXPECT_EQ(m->Stats().io_bytes, 4u * 32 * kDim * sizeof(float));
  kept.clear();
  EXPECT_EQ(m->Stats().io_bytes, 0u);
}

class HostBudgetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("gh_hostbudget_" + std::to_string(::getpid()) + "_" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    for (int i = 0; i < 4; ++i) {
      std::string name = "h" + std::to_string(i);
      fs::create_directories(root_ / name / "1");
      onnx_.push_back(MakeMatMulChainOnnx(BiasedSpec(4, 70 + i)));
      std::ofstream(root_ / name / "1" / "model.onnx", std::ios::binary) << onnx_.back();
    }
  }
  void TearDown() override { fs::remove_all(root_); }
  fs::path root_;
  std::vector<std::string> onnx_;
};

TEST_F(HostBudgetTest, HostCopiesBeyondTheBudgetAreDroppedAndComeFromDiskAgain) {
  const uint64_t host_model_bytes = 4 * (kDim * kDim + kDim) * 4;
  auto repo = *ModelRepository::Open(root_.string());
  ManagerOptions o = SmallOptions(2 * host_model_bytes + (256 << 10));  // device: two models
  o.host_budget_bytes = 2 * host_model_bytes + 1024;                    // host: two models
  o.default_keep_alive_us = 0;                                          // evicted when released
  o.policy = MakeLruPolicy();  // deterministic choice of the host copies to drop
  auto m = *ModelManager::Create(o, repo.get());
  Tensor x = MakeInput(2, kDim);
  ExecutionContext ctx({.num_threads = 1, .memory = m->memory()});
  auto run = [&](int i) {
    auto lease = m->Acquire("h" + std::to_string(i));
    EXPECT_TRUE(lease.ok()) << lease.status().ToString();
    if (!lease.ok()) return;
    auto out = m->Run(*lease, ctx, {x.view()});
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    std::vector<float> want = DirectRun(onnx_[i], false, x);
    EXPECT_EQ(std::memcmp((*out)[0].data(), want.data(), want.size() * sizeof(float)), 0) << "model h" << i;
  };
  for (int i = 0; i < 4; ++i) run(i);
  auto st = m->Stats();
  EXPECT_EQ(st.host_budget_bytes, o.host_budget_bytes);
  EXPECT_LE(st.host_used_bytes, o.host_budget_bytes);
  EXPECT_EQ(st.host_drops, 2u);
  auto all = m->ListModels();
  int on_disk = 0, in_host = 0;
  uint64_t host_sum = 0;
  for (const auto& s : all) {
    host_sum += s.host_bytes;
    on_disk += s.state == ModelState::kOnDisk;
    in_host += s.state == ModelState::kInHost;
  }
  for (const auto& s : all) {
    SCOPED_TRACE(s.name + ": " + std::string(ModelStateName(s.state)) + " host " + std::to_string(s.host_bytes));
  }
  EXPECT_EQ(on_disk, 2) << [&] {
    std::string d;
    for (const auto& s : all) d += s.name + "=" + std::string(ModelStateName(s.state)) + " ";
    return d;
  }();
  EXPECT_EQ(in_host, 2);
  EXPECT_EQ(host_sum, st.host_used_bytes);
  // The oldest were dropped (h0, h1): they load from disk again and compute the same.
  EXPECT_EQ(FindStatus(all, "h0")->state, ModelState::kOnDisk);
  EXPECT_EQ(FindStatus(all, "h0")->host_bytes, 0u);
  run(0);
  EXPECT_EQ(m->Stats().host_drops, 3u);
  EXPECT_LE(m->Stats().host_used_bytes, o.host_budget_bytes);
  // Unlimited again: nothing more is dropped.
  m->SetHostBudget(0);
  for (int i = 0; i < 4; ++i) run(i);
  EXPECT_EQ(m->Stats().host_drops, 3u);
  EXPECT_EQ(m->Stats().host_used_bytes, 4 * host_model_bytes);
  // A smaller budget drops at once.
  m->SetHostBudget(host_model_bytes + 1024);
  EXPECT_LE(m->Stats().host_used_bytes, host_model_bytes + 1024);
}

TEST_F(HostBudgetTest, ResidentModelWithoutHostCopyGoesToDiskWhenEvicted) {
  const uint64_t host_model_bytes = 4 * (kDim * kDim + kDim) * 4;
  auto repo = *ModelRepository::Open(root_.string());
  ManagerOptions o = SmallOptions(8 << 20);
  o.default_keep_alive_us = kKeepAliveForever;
  auto m = *ModelManager::Create(o, repo.get());
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(m->Acquire("h" + std::to_string(i)).ok());
  EXPECT_EQ(m->Stats().host_used_bytes, 2 * host_model_bytes);
  m->SetHostBudget(host_model_bytes);  // one host copy of a resident (idle) model goes
  EXPECT_EQ(m->Stats().host_drops, 1u);
  auto all = m->ListModels();
  const ModelStatus* dropped = FindStatus(all, "h0")->host_bytes == 0 ? FindStatus(all, "h0") : FindStatus(all, "h1");
  EXPECT_EQ(dropped->host_bytes, 0u);
  EXPECT_EQ(dropped->state, ModelState::kResident);  // its device copy is untouched
  const std::string name = dropped->name;
  {
    // Under pressure its CPU fallback compiles from the file (no host copy left).
    auto lease = m->Acquire(name);
    ASSERT_TRUE(lease.ok());
    ASSERT_TRUE(m->SetBudget(FindStatus(m->ListModels(), name)->device_bytes + 64).ok());  // no room for an arena
    Tensor x = MakeInput(1, kDim);
    ExecutionContext ctx({.num_threads = 1, .memory = m->memory()});
    auto out = m->Run(*lease, ctx, {x.view()});
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    EXPECT_EQ(m->Stats().cpu_fallbacks, 1u);
    std::vector<float> want = DirectRun(onnx_[name == "h0" ? 0 : 1], false, x);
    EXPECT_EQ(std::memcmp((*out)[0].data(), want.data(), want.size() * sizeof(float)), 0);
  }
  ASSERT_TRUE(m->SetBudget(1024).ok());  // evicts both
  EXPECT_EQ(FindStatus(m->ListModels(), name)->state, ModelState::kOnDisk);
  ASSERT_TRUE(m->SetBudget(8 << 20).ok());
  auto lease = m->Acquire(name);
  ASSERT_TRUE(lease.ok()) << lease.status().ToString();
  Tensor x = MakeInput(1, kDim);
  ExecutionContext ctx({.num_threads = 1, .memory = m->memory()});
  auto out = m->Run(*lease, ctx, {x.view()});
  ASSERT_TRUE(out.ok());
  std::vector<float> want = DirectRun(onnx_[name == "h0" ? 0 : 1], false, x);
  EXPECT_EQ(std::memcmp((*out)[0].data(), want.data(), want.size() * sizeof(float)), 0);
}

}  // namespace
}  // namespace gpuhive::residency
