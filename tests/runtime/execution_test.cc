// The one execution interface (execution.h): which backend compiles for which device, residency
// holding only Executables, and loading backend plugins (the CUDA executor's way into the binary).
#include "gpuhive/execution.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include <atomic>

#include "../residency/test_util.h"
#include "gpuhive/onnx_import.h"
#include "gpuhive/residency/device_set.h"
#include "gpuhive/residency/repository.h"
#include "gpuhive/sim_device.h"

namespace gpuhive {
namespace {

using residency::testing::ChainConfig;
using residency::testing::FindStatus;
using residency::testing::MakeInput;
using residency::testing::SmallOptions;

constexpr int kDim = 64;

// A GPU-like device whose kernels the host cannot run (no kernel view): only a registered backend
// can compile for it.
class OpaqueDevice final : public ComputeDevice {
 public:
  DeviceId id() const override { return DeviceId{DeviceType::kCuda, 7}; }
  std::string name() const override { return "opaque"; }
  uint64_t memory_capacity_bytes() const override { return 1 << 20; }
  bool host_accessible() const override { return false; }
  MemoryResource* memory() override { return DefaultHostResource(); }
  const KernelAccess* host_kernel_access() const override { return nullptr; }
  StatusOr<std::unique_ptr<DeviceStream>> CreateStream(int) override { return Unimplemented("opaque"); }
  Status CopyToDevice(void*, const void*, size_t, DeviceStream&) override { return Unimplemented("opaque"); }
  Status CopyToHost(void*, const void*, size_t, DeviceStream&) override { return Unimplemented("opaque"); }
  Status CopyOnDevice(void*, const void*, size_t, DeviceStream&) override { return Unimplemented("opaque"); }
  StatusOr<std::unique_ptr<DeviceEvent>> RecordEvent(DeviceStream&) override { return Unimplemented("opaque"); }
  Status WaitEvent(DeviceStream&, DeviceEvent&) override { return Unimplemented("opaque"); }
  Status EnqueueHostCallback(DeviceStream&, std::function<void()>) override { return Unimplemented("opaque"); }
  Status LaunchHostKernel(DeviceStream&, std::function<Status(const KernelAccess&)>) override {
    return Unimplemented("opaque");
  }
};

// An Executable that is not the CPU executor: wraps one and says it ran, so a test can tell that
// residency reached the model only through the interface.
class CountingExecutable final : public residency::testing::ForwardingExecutable {
 public:
  CountingExecutable(std::unique_ptr<Executable> inner, std::atomic<int>* runs)
      : ForwardingExecutable(std::move(inner)), runs_(runs) {}
  std::string_view backend() const override { return "counting"; }
  StatusOr<std::vector<Tensor>> Run(ExecutionContext& ctx, const std::vector<TensorView>& inputs) override {
    ++*runs_;
    return inner_->Run(ctx, inputs);
  }

 private:
  std::atomic<int>* runs_;
};

class CountingBackend final : public ExecutionBackend {
 public:
  std::string_view name() const override { return "counting"; }
  bool runs_host_kernels() const override { return true; }  // it wraps the CPU executor
  StatusOr<std::unique_ptr<Executable>> Compile(std::unique_ptr<ir::Model> model, const CompileOptions& options,
                                                ComputeDevice& device) override {
    ++compiles;
    ASSIGN_OR_RETURN(auto inner, CpuExecutionBackend()->Compile(std::move(model), options, device));
    return std::unique_ptr<Executable>(std::make_unique<CountingExecutable>(std::move(inner), &runs));
  }
  std::atomic<int> compiles{0};
  std::atomic<int> runs{0};
};

// Registers a backend for the test's duration only.
struct ScopedBackend {
  ScopedBackend(DeviceType t, ExecutionBackend* b) : type(t) { RegisterExecutionBackend(t, b); }
  ~ScopedBackend() { RegisterExecutionBackend(type, nullptr); }
  DeviceType type;
};

TEST(ExecutionBackend, TheHostAndTheSimulatedDeviceRunOnTheCpuExecutor) {
  auto host = ExecutionBackendFor(*HostComputeDevice());
  ASSERT_TRUE(host.ok()) << host.status().ToString();
  EXPECT_EQ(*host, CpuExecutionBackend());
  EXPECT_EQ((*host)->name(), "cpu");
  auto sim = SimDevice::Create({});
  ASSERT_TRUE(sim.ok());
  auto b = ExecutionBackendFor(**sim);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(*b, CpuExecutionBackend());
}

TEST(ExecutionBackend, ADeviceTheHostCannotRunNeedsARegisteredBackend) {
  OpaqueDevice dev;
  auto none = ExecutionBackendFor(dev);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(none.status().message().find("cuda:7: no execution backend"), std::string::npos) << none.status().ToString();
  // The CPU executor refuses it too rather than dereference its memory.
  auto model = ImportOnnxBytes(residency::MakeMatMulChainOnnx({.dim = kDim, .layers = 1}));
  ASSERT_TRUE(model.ok());
  auto cpu = CpuExecutionBackend()->Compile(std::move(*model), {}, dev);
  EXPECT_EQ(cpu.status().code(), StatusCode::kFailedPrecondition) << cpu.status().ToString();
  CountingBackend counting;
  {
    ScopedBackend scoped(DeviceType::kCuda, &counting);
    auto b = ExecutionBackendFor(dev);
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(*b, &counting);
  }
  EXPECT_FALSE(ExecutionBackendFor(dev).ok());
}

// Residency compiles through the device's backend and runs whatever Executable it returns: on a
// simulated device with another backend registered, every load and run goes through it, the
// results are the CPU executor's, and the model's status names the backend.
TEST(ExecutionBackend, ResidencyCompilesAndRunsThroughTheDevicesBackend) {
  CountingBackend counting;
  ScopedBackend scoped(DeviceType::kSim, &counting);
  SimDeviceOptions so;
  so.memory_bytes = 64 << 20;
  auto sim = SimDevice::Create(so);
  ASSERT_TRUE(sim.ok());
  residency::ManagerOptions o = SmallOptions(32 << 20);
  o.device = sim->get();
  auto m = residency::ModelManager::Create(std::move(o), nullptr);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  const std::string onnx = residency::MakeMatMulChainOnnx({.dim = kDim, .layers = 2});
  ASSERT_TRUE((*m)->AddModel(ChainConfig("chain", kDim), onnx).ok());
  Tensor x = MakeInput(3, kDim);
  ExecutionContext ctx({.num_threads = 1, .memory = (*m)->memory()});
  std::vector<Tensor> got;
  {
    auto lease = (*m)->Acquire("chain");
    ASSERT_TRUE(lease.ok()) << lease.status().ToString();
    EXPECT_EQ(lease->model().backend(), "counting");
    auto out = (*m)->Run(*lease, ctx, {x.view()});
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    got = std::move(*out);
  }
  EXPECT_EQ(counting.compiles.load(), 1);
  EXPECT_EQ(counting.runs.load(), 1);
  const auto st_all = (*m)->ListModels();
  const residency::ModelStatus* st = FindStatus(st_all, "chain");
  ASSERT_NE(st, nullptr);
  EXPECT_EQ(st->executor, "counting");
  // The same model on the host CPU, directly.
  auto model = ImportOnnxBytes(onnx);
  ASSERT_TRUE(model.ok());
  auto direct = CompiledModel::Create(std::move(*model), {.optimize = false});
  ASSERT_TRUE(direct.ok());
  ExecutionContext host_ctx({.num_threads = 1});
  auto want = (*direct)->Run(host_ctx, {x.view()});
  ASSERT_TRUE(want.ok());
  ASSERT_EQ(got.size(), 1u);
  ASSERT_EQ(got[0].bytes(), (*want)[0].bytes());
  EXPECT_EQ(0, std::memcmp(got[0].data(), (*want)[0].data(), got[0].bytes()));
}

// A device executor that lacks every operator (as the CUDA executor lacks a few).
class RefusingBackend final : public ExecutionBackend {
 public:
  std::string_view name() const override { return "refusing"; }
  StatusOr<std::unique_ptr<Executable>> Compile(std::unique_ptr<ir::Model>, const CompileOptions&,
                                                ComputeDevice&) override {
    ++compiles;
    return Unimplemented("the test executor lacks operator(s): MatMul");
  }
  std::atomic<int> compiles{0};
};

// A model its device's executor cannot compile runs whole on the host CPU when the server chose
// its device; not when its config asks for a GPU, nor with strict_gpu (--strict-gpu).
TEST(ExecutionBackend, AModelTheDevicesExecutorCannotCompileRunsOnTheCpu) {
  namespace fs = std::filesystem;
  const fs::path root = fs::temp_directory_path() / ("gpuhive_exec_fallback_" + std::to_string(getpid()));
  const std::string onnx = residency::MakeMatMulChainOnnx({.dim = kDim, .layers = 2});
  for (const char* name : {"any", "gpu_only"}) {
    fs::create_directories(root / name / "1");
    std::ofstream(root / name / "1" / "model.onnx", std::ios::binary) << onnx;
  }
  std::ofstream(root / "gpu_only" / "config.pbtxt") << "name: \"gpu_only\" instance_group [{ kind: KIND_GPU }]";
  RefusingBackend refusing;
  ScopedBackend scoped(DeviceType::kSim, &refusing);
  auto sim = SimDevice::Create({});
  ASSERT_TRUE(sim.ok());
  auto repo = residency::ModelRepository::Open(root.string());
  ASSERT_TRUE(repo.ok()) << repo.status().ToString();
  auto make_set = [&](bool strict) {
    residency::DeviceSetOptions o;
    o.devices = {{.device = sim->get(), .gpu_ordinal = 0, .budget_bytes = 32 << 20, .host_budget_bytes = 32 << 20},
                 {.device = nullptr, .gpu_ordinal = -1, .budget_bytes = 32 << 20, .host_budget_bytes = 32 << 20}};
    o.manager = SmallOptions(32 << 20);
    o.strict_gpu = strict;
    return residency::DeviceSet::Create(std::move(o), repo->get());
  };
  {
    auto set = make_set(false);
    ASSERT_TRUE(set.ok()) << set.status().ToString();
    auto lease = (*set)->Acquire("any");
    ASSERT_TRUE(lease.ok()) << lease.status().ToString();
    EXPECT_EQ(lease->model().backend(), "cpu");
    EXPECT_EQ((*set)->PlacedOn("any"), std::optional<size_t>(1));
    ExecutionContext ctx({.num_threads = 1});
    Tensor x = MakeInput(2, kDim);
    auto out = lease->model().Run(ctx, {x.view()});
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    EXPECT_EQ((*out)[0].shape(), (Shape{2, kDim}));
    lease->Release();
    const auto st_all = (*set)->ListModels();
    const residency::ModelStatus* st = FindStatus(st_all, "any");
    ASSERT_NE(st, nullptr);
    EXPECT_EQ(st->device, "cpu");
    EXPECT_EQ(st->executor, "cpu");
    // Unloaded, it is placed afresh: the device is tried again, and the CPU takes it again.
    const int tried = refusing.compiles.load();
    ASSERT_TRUE((*set)->Unload("any").ok());
    ASSERT_TRUE((*set)->Load("any").ok());
    EXPECT_EQ(refusing.compiles.load(), tried + 1);
    EXPECT_EQ((*set)->PlacedOn("any"), std::optional<size_t>(1));
    // KIND_GPU: the user's choice stands, and the error names the missing operator.
    auto gpu_only = (*set)->Acquire("gpu_only");
    ASSERT_FALSE(gpu_only.ok());
    EXPECT_EQ(gpu_only.status().code(), StatusCode::kUnimplemented);
    EXPECT_NE(gpu_only.status().message().find("lacks operator(s): MatMul"), std::string::npos)
        << gpu_only.status().ToString();
    EXPECT_EQ((*set)->PlacedOn("gpu_only"), std::optional<size_t>(0));
  }
  {
    auto strict = make_set(true);
    ASSERT_TRUE(strict.ok());
    auto lease = (*strict)->Acquire("any");
    ASSERT_FALSE(lease.ok());
    EXPECT_EQ(lease.status().code(), StatusCode::kUnimplemented);
    EXPECT_EQ((*strict)->PlacedOn("any"), std::optional<size_t>(0));
  }
  fs::remove_all(root);
}

std::string PluginPath(const char* variant) {
  return std::string(GPUHIVE_TEST_PLUGIN_DIR) + "/libgpuhive_test_plugin_" + variant + ".so";
}

TEST(ExecutionPlugin, ALoadedPluginRegistersItsBackendForItsDeviceType) {
  auto loaded = LoadExecutionPlugin(PluginPath("good"));
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->description, "test plugin");
  EXPECT_EQ(loaded->device_type, DeviceType::kSim);
  ASSERT_NE(loaded->backend, nullptr);
  EXPECT_EQ(loaded->backend->name(), "test-plugin");
  auto sim = SimDevice::Create({});
  ASSERT_TRUE(sim.ok());
  auto b = ExecutionBackendFor(**sim);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*b, loaded->backend);
  // The plugin's code runs: its Compile answers for itself.
  auto model = ImportOnnxBytes(residency::MakeMatMulChainOnnx({.dim = kDim, .layers = 1}));
  ASSERT_TRUE(model.ok());
  auto compiled = (*b)->Compile(std::move(*model), {}, **sim);
  EXPECT_EQ(compiled.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(compiled.status().message().find("compiled by the test plugin"), std::string::npos);
  // Loading it again is the same plugin.
  auto again = LoadExecutionPlugin(PluginPath("good"));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->backend, loaded->backend);
  RegisterExecutionBackend(DeviceType::kSim, nullptr);
}

TEST(ExecutionPlugin, BadPluginsAreClearErrors) {
  auto missing = LoadExecutionPlugin(PluginPath("missing"));
  EXPECT_EQ(missing.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(missing.status().message().find("libgpuhive_test_plugin_missing.so"), std::string::npos)
      << missing.status().ToString();
  auto abi = LoadExecutionPlugin(PluginPath("bad_abi"));
  EXPECT_EQ(abi.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(abi.status().message().find("built from another gpuhive"), std::string::npos) << abi.status().ToString();
  auto no_backend = LoadExecutionPlugin(PluginPath("no_backend"));
  EXPECT_EQ(no_backend.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(no_backend.status().message().find("the test plugin has no device here"), std::string::npos)
      << no_backend.status().ToString();
  // A shared library that is not a plugin.
  auto not_plugin = LoadExecutionPlugin("libm.so.6");
  EXPECT_EQ(not_plugin.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(not_plugin.status().message().find("not a gpuhive execution plugin"), std::string::npos)
      << not_plugin.status().ToString();
  // None of them registered anything.
  auto sim = SimDevice::Create({});
  ASSERT_TRUE(sim.ok());
  EXPECT_EQ(*ExecutionBackendFor(**sim), CpuExecutionBackend());
}

TEST(ExecutionPlugin, TheCudaPluginIsLookedForWhereItIsSaid) {
  ASSERT_EQ(setenv("GPUHIVE_CUDA_PLUGIN", "/nowhere/libgpuhive_cuda.so", 1), 0);
  EXPECT_EQ(CudaPluginCandidates(), std::vector<std::string>{"/nowhere/libgpuhive_cuda.so"});
  auto none = LoadCudaPlugin();
  EXPECT_EQ(none.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(none.status().message().find("/nowhere/libgpuhive_cuda.so"), std::string::npos) << none.status().ToString();
  ASSERT_EQ(unsetenv("GPUHIVE_CUDA_PLUGIN"), 0);
  auto candidates = CudaPluginCandidates();
  ASSERT_EQ(candidates.size(), 2u);
  EXPECT_NE(candidates[0].find("/libgpuhive_cuda.so"), std::string::npos);
}

// The real CUDA plugin: it must load here (every symbol resolved, cuDNN and cuBLASLt found, the
// same ABI), and without a GPU say why it cannot serve instead of registering a backend.
TEST(ExecutionPlugin, TheCudaPluginLoadsAndSaysWhyItCannotServeWithoutAGpu) {
#ifndef GPUHIVE_CUDA_PLUGIN_PATH
  GTEST_SKIP() << "built without CUDA: there is no CUDA plugin";
#else
  auto loaded = LoadExecutionPlugin(GPUHIVE_CUDA_PLUGIN_PATH);
  if (access("/dev/nvidia0", F_OK) == 0) {
    ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
    EXPECT_EQ(loaded->backend->name(), "cuda");
    return;
  }
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), StatusCode::kUnavailable) << loaded.status().ToString();
  EXPECT_NE(loaded.status().message().find("cannot serve"), std::string::npos) << loaded.status().ToString();
  OpaqueDevice gpu_like;
  EXPECT_FALSE(ExecutionBackendFor(gpu_like).ok());
#endif
}

}  // namespace
}  // namespace gpuhive
