// Execution backends: which executor compiles a model for a device (DESIGN.md "Layers": runtime).
//
// Residency compiles every model through ExecutionBackendFor(its device) and holds the result as
// an Executable (runtime.h); nothing above the runtime names an executor. The CPU executor is the
// backend of the host and of the simulated device (the host runs its kernels through the device's
// kernel view). The CUDA executor needs cuDNN and cuBLASLt, which a CPU-only machine lacks, so it
// is not linked into the binary: it is a plugin (libgpuhive_cuda.so, built next to the binary)
// that the engine loads when a GPU is found, as ONNX Runtime loads its CUDA execution provider.
// One binary therefore serves GPU and CPU-only machines.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gpuhive/compute_device.h"
#include "gpuhive/logging.h"
#include "gpuhive/runtime.h"

namespace gpuhive {

class ExecutionBackend {
 public:
  virtual ~ExecutionBackend() = default;
  virtual std::string_view name() const = 0;  // "cpu", "cuda"
  // True when the backend's kernels are host code (the CPU executor, or one wrapping it): on a
  // device whose memory the host cannot touch, residency then hands it the device's kernel view
  // as its memory, so those kernels reach device memory the way the device's own kernels would.
  virtual bool runs_host_kernels() const { return false; }
  // Compiles `model` to run on `device`: weights, arenas and workspaces from options.memory (a
  // resource over the device's memory; for a device whose kernels the host runs, its kernel
  // view), outputs from options.output_memory (host memory). Errors: as CompiledModel::Create;
  // kUnimplemented naming the operators the backend lacks (nothing was allocated); kUnavailable
  // when the device cannot be used.
  virtual StatusOr<std::unique_ptr<Executable>> Compile(std::unique_ptr<ir::Model> model,
                                                        const CompileOptions& options, ComputeDevice& device) = 0;
  // Loads on `device` what every model the backend runs there needs whatever the model: library
  // handles and the kernel images a first run would load (cuDNN, cuBLASLt, its own kernels). The
  // engine calls it once when it opens the device and keeps the device memory it took (the drop in
  // memory_free_bytes) out of the default budget as the device's library reserve. Default: none.
  virtual Status LoadLibraries(ComputeDevice& device) { return Status::OK(); }
};

// The CPU executor (CompiledModel) as a backend. Never null; lives for the process.
ExecutionBackend* CpuExecutionBackend();

// Makes `backend` the one for devices of `type` (replacing the one before; null removes it).
// Backends live for the process. Thread safe.
void RegisterExecutionBackend(DeviceType type, ExecutionBackend* backend);

// The backend that runs models on `device`: the one registered for its type; else the CPU backend
// when the host can run the device's kernels (host_kernel_access() is not null: the host and the
// simulated device). Errors: kFailedPrecondition naming the device when neither holds (a GPU
// whose plugin is not loaded).
StatusOr<ExecutionBackend*> ExecutionBackendFor(const ComputeDevice& device);

// ---- Backend plugins --------------------------------------------------------------------------
//
// A plugin is a shared library built from this source tree that exports
//   extern "C" const gpuhive::ExecutionPluginInfo* gpuhive_execution_plugin_v1();
// It carries its own copy of the runtime it needs (linked statically, symbols kept local), so the
// types crossing the boundary are the ones below and their layout must match: `abi` is compared
// field by field at load.

struct ExecutionPluginAbi {
  uint32_t version = 0;
  uint32_t compile_options = 0;  // sizeof(CompileOptions)
  uint32_t execution_context = 0;
  uint32_t tensor = 0;
  uint32_t tensor_view = 0;
  uint32_t status = 0;
  uint32_t model = 0;  // sizeof(ir::Model)
  uint32_t graph = 0;  // sizeof(ir::Graph)
  bool operator==(const ExecutionPluginAbi&) const = default;
};

// The layout this build has. Bump `version` when a type crossing the boundary changes meaning or
// its virtual functions change (ComputeDevice: 2, memory_free_bytes; ExecutionBackend: 3,
// LoadLibraries).
inline constexpr ExecutionPluginAbi CurrentExecutionPluginAbi() {
  return ExecutionPluginAbi{3,
                            static_cast<uint32_t>(sizeof(CompileOptions)),
                            static_cast<uint32_t>(sizeof(ExecutionContext)),
                            static_cast<uint32_t>(sizeof(Tensor)),
                            static_cast<uint32_t>(sizeof(TensorView)),
                            static_cast<uint32_t>(sizeof(Status)),
                            static_cast<uint32_t>(sizeof(ir::Model)),
                            static_cast<uint32_t>(sizeof(ir::Graph))};
}

struct ExecutionPluginInfo {
  ExecutionPluginAbi abi;
  DeviceType device_type = DeviceType::kCuda;
  const char* description = "";  // "CUDA executor (cuDNN 9.x, cuBLASLt 13.x)"
  // The backend, created on the first call; null with *error set when the plugin cannot serve
  // (its libraries are present but unusable). Lives for the process.
  ExecutionBackend* (*backend)(std::string* error) = nullptr;
  // The host's log settings, so the plugin's copy of the logger writes as the host's does.
  void (*configure_logging)(LogLevel level, bool json) = nullptr;
};

inline constexpr const char* kExecutionPluginSymbol = "gpuhive_execution_plugin_v1";

struct LoadedPlugin {
  std::string path;
  std::string description;
  DeviceType device_type = DeviceType::kCuda;
  ExecutionBackend* backend = nullptr;
};

// Loads the plugin at `path` (once per path; never unloaded), checks its ABI and registers its
// backend for its device type. Errors: kUnavailable with the loader's reason (a missing file, a
// library the plugin needs that this machine lacks) or the plugin's own, kFailedPrecondition for
// a plugin of another build (ABI mismatch) or without the entry point.
StatusOr<LoadedPlugin> LoadExecutionPlugin(const std::string& path);

// Where the CUDA plugin is looked for, in order: $GPUHIVE_CUDA_PLUGIN when set (only it), else
// libgpuhive_cuda.so next to the running binary, then in ../lib from it.
std::vector<std::string> CudaPluginCandidates();

// Loads the CUDA plugin from the first candidate that exists. Errors: kUnavailable listing the
// places looked at when none exists, else LoadExecutionPlugin's.
StatusOr<LoadedPlugin> LoadCudaPlugin();

}  // namespace gpuhive
