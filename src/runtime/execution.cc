// Execution backends: the registry by device type, the CPU backend, and plugin loading.
#include "gpuhive/execution.h"

#include <unistd.h>

#include <array>
#include <map>
#include <mutex>

#include "gpuhive/runtime_module.h"

namespace gpuhive {
namespace {

class CpuBackend final : public ExecutionBackend {
 public:
  std::string_view name() const override { return "cpu"; }
  bool runs_host_kernels() const override { return true; }
  StatusOr<std::unique_ptr<Executable>> Compile(std::unique_ptr<ir::Model> model, const CompileOptions& options,
                                                ComputeDevice& device) override {
    if (device.host_kernel_access() == nullptr) {
      return FailedPrecondition("the CPU executor cannot run kernels on {}: the host cannot reach its memory",
                                device.id().ToString());
    }
    ASSIGN_OR_RETURN(std::unique_ptr<CompiledModel> compiled, CompiledModel::Create(std::move(model), options));
    return std::unique_ptr<Executable>(std::move(compiled));
  }
};

struct Registry {
  std::mutex mu;
  std::array<ExecutionBackend*, 3> by_type{};  // indexed by DeviceType
  std::map<std::string, LoadedPlugin> plugins;  // by path
};

Registry& GetRegistry() {
  static Registry* r = new Registry();  // lives for the process (plugins are never unloaded)
  return *r;
}

size_t TypeIndex(DeviceType t) { return static_cast<size_t>(t) < 3 ? static_cast<size_t>(t) : 0; }

std::string AbiText(const ExecutionPluginAbi& a) {
  return fmt::format("v{} sizes {}/{}/{}/{}/{}/{}/{}", a.version, a.compile_options, a.execution_context, a.tensor,
                     a.tensor_view, a.status, a.model, a.graph);
}

}  // namespace

ExecutionBackend* CpuExecutionBackend() {
  static CpuBackend* backend = new CpuBackend();
  return backend;
}

void RegisterExecutionBackend(DeviceType type, ExecutionBackend* backend) {
  Registry& r = GetRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.by_type[TypeIndex(type)] = backend;
}

StatusOr<ExecutionBackend*> ExecutionBackendFor(const ComputeDevice& device) {
  {
    Registry& r = GetRegistry();
    std::lock_guard<std::mutex> lock(r.mu);
    if (ExecutionBackend* b = r.by_type[TypeIndex(device.id().type)]) return b;
  }
  if (device.host_kernel_access() != nullptr) return CpuExecutionBackend();
  return FailedPrecondition("{}: no execution backend is loaded for it (the CUDA plugin, libgpuhive_cuda.so, "
                            "was not found or could not be loaded; see the start-up log)",
                            device.id().ToString());
}

StatusOr<LoadedPlugin> LoadExecutionPlugin(const std::string& path) {
  Registry& r = GetRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  if (auto it = r.plugins.find(path); it != r.plugins.end()) return it->second;
  // RTLD_LOCAL: the plugin's own copy of the runtime stays its own.
  ASSIGN_OR_RETURN(OpenedRuntimeModule module, OpenRuntimeModule(path, kExecutionPluginSymbol, "execution plugin"));
  using Entry = const ExecutionPluginInfo* (*)();
  const ExecutionPluginInfo* info = reinterpret_cast<Entry>(module.entry)();
  if (info == nullptr || info->backend == nullptr) {
    module.Close();
    return FailedPrecondition("{}: the plugin returned no backend", path);
  }
  if (!(info->abi == CurrentExecutionPluginAbi())) {
    std::string theirs = AbiText(info->abi);
    module.Close();
    return FailedPrecondition("{} was built from another gpuhive (plugin ABI {}, this binary {}): rebuild both", path,
                              theirs, AbiText(CurrentExecutionPluginAbi()));
  }
  // From here on the handle stays open: the plugin's code may be running in a backend it made.
  if (info->configure_logging != nullptr) info->configure_logging(GetLogLevel(), GetLogJson());
  std::string error;
  ExecutionBackend* backend = info->backend(&error);
  if (backend == nullptr) {
    return Unavailable("the execution plugin {} cannot serve: {}", path, error.empty() ? "no reason given" : error);
  }
  LoadedPlugin loaded{path, info->description != nullptr ? info->description : "", info->device_type, backend};
  r.by_type[TypeIndex(info->device_type)] = backend;
  r.plugins[path] = loaded;
  return loaded;
}

std::vector<std::string> CudaPluginCandidates() {
  return RuntimeModuleCandidates("GPUHIVE_CUDA_PLUGIN", "libgpuhive_cuda.so");
}

StatusOr<LoadedPlugin> LoadCudaPlugin() {
  ASSIGN_OR_RETURN(std::string path,
                   FindRuntimeModule("GPUHIVE_CUDA_PLUGIN", "libgpuhive_cuda.so", "the CUDA execution plugin"));
  return LoadExecutionPlugin(path);
}

}  // namespace gpuhive
