// The CUDA executor behind the execution interface (execution.h), built as the plugin
// libgpuhive_cuda.so: the engine loads it when a GPU is found, so the binary itself never needs
// cuDNN or cuBLAS. Everything here is local to the plugin except its entry point.
#include <mutex>

#include "gpuhive/cuda_device.h"
#include "gpuhive/cuda_executor.h"
#include "gpuhive/execution.h"

namespace gpuhive::cuda {
namespace {

class CudaExecutable final : public Executable {
 public:
  CudaExecutable(std::unique_ptr<ir::Model> model, std::unique_ptr<CudaExecutor> executor)
      : model_(std::move(model)), executor_(std::move(executor)) {
    for (const ir::Value* v : model_->graph->inputs()) inputs_.push_back(TensorInfoOf(*v));
    for (const ir::Value* v : model_->graph->outputs()) outputs_.push_back(TensorInfoOf(*v));
  }

  std::string_view backend() const override { return "cuda"; }
  const std::vector<TensorInfo>& inputs() const override { return inputs_; }
  const std::vector<TensorInfo>& outputs() const override { return outputs_; }
  size_t weight_bytes() const override { return executor_->stats().weight_bytes; }
  // With CompileOptions::defer_weight_copies (residency's loads) the weights are copied by the
  // device's copy engine into storage the executor placed at compile; plans wait on the gate for
  // each weight they read (ExecutorOptions::defer_weight_copies). No plain copy to release.
  std::shared_ptr<WeightGate> weight_gate() const override { return executor_->weight_gate(); }
  std::vector<WeightCopy> TakePendingWeightCopies() override { return executor_->TakePendingWeightCopies(); }
  void ReleaseSettledWeights() override {}

  StatusOr<PlanStats> Prepare(const std::vector<Shape>& input_shapes) override {
    if (input_shapes.size() != inputs_.size()) {
      return InvalidArgument("model takes {} inputs, got {}", inputs_.size(), input_shapes.size());
    }
    std::vector<TensorView> views;
    for (size_t i = 0; i < input_shapes.size(); ++i) {
      RETURN_IF_ERROR(CheckInputShape(inputs_[i], input_shapes[i]));
      views.push_back(TensorView{inputs_[i].dtype, input_shapes[i], nullptr, Layout::kPlain});
    }
    ASSIGN_OR_RETURN(PlanPreview preview, PreviewCudaPlan(*model_->graph, views));
    PlanStats stats;
    stats.input_shapes = input_shapes;
    stats.arena_bytes = preview.arena_bytes;
    stats.naive_activation_bytes = preview.naive_bytes;
    stats.num_steps = preview.device_steps;
    return stats;
  }

  // Each worker (and stream priority) runs on its own stream of the executor (RunLane).
  StatusOr<std::vector<Tensor>> Run(ExecutionContext& ctx, const std::vector<TensorView>& inputs) override {
    ASSIGN_OR_RETURN(std::vector<Shape> shapes, CheckInputs(inputs_, inputs));
    for (size_t i = 0; i < shapes.size(); ++i) RETURN_IF_ERROR(CheckInputShape(inputs_[i], shapes[i]));
    return executor_->Run(inputs, RunLane{ctx.options().worker, ctx.options().stream_priority});
  }

 private:
  std::unique_ptr<ir::Model> model_;  // the graph the executor reads (shared with it)
  std::unique_ptr<CudaExecutor> executor_;
  std::vector<TensorInfo> inputs_, outputs_;
};

class CudaBackend final : public ExecutionBackend {
 public:
  std::string_view name() const override { return "cuda"; }
  StatusOr<std::unique_ptr<Executable>> Compile(std::unique_ptr<ir::Model> model, const CompileOptions& options,
                                                ComputeDevice& device) override {
    if (model == nullptr || model->graph == nullptr) return InvalidArgument("the CUDA backend was given no model");
    if (device.id().type != DeviceType::kCuda) {
      return FailedPrecondition("the CUDA backend cannot run models on {}", device.id().ToString());
    }
    // Folding and fusion limited to what the executor implements (it needs the folded shapes).
    RETURN_IF_ERROR(OptimizeForCuda(*model));
    ExecutorOptions eo;
    eo.device_index = device.id().index;
    eo.memory = options.memory;
    eo.owner_tag = options.owner_tag;
    eo.defer_weight_copies = options.defer_weight_copies;
    switch (options.device_math) {
      case DeviceMath::kFloat32: eo.math = MathMode::kFloat32; break;
      case DeviceMath::kTF32: eo.math = MathMode::kTF32; break;
      case DeviceMath::kFloat16: eo.math = MathMode::kFloat16; break;
      case DeviceMath::kBFloat16: eo.math = MathMode::kBFloat16; break;
    }
    ASSIGN_OR_RETURN(std::unique_ptr<CudaExecutor> executor,
                     CudaExecutor::Create(std::shared_ptr<const ir::Graph>(model->graph), eo));
    return std::unique_ptr<Executable>(std::make_unique<CudaExecutable>(std::move(model), std::move(executor)));
  }
  Status LoadLibraries(ComputeDevice& device) override {
    if (device.id().type != DeviceType::kCuda) return Status::OK();
    return WarmUpLibraries(device.id().index);
  }
};

ExecutionBackend* Backend(std::string* error) {
  static std::once_flag once;
  static CudaBackend* backend = nullptr;
  static std::string reason;
  std::call_once(once, [] {
    auto count = DeviceCountOrError();
    if (count.ok()) {
      backend = new CudaBackend();  // lives for the process
    } else {
      reason = std::string(count.status().message());
    }
  });
  if (backend == nullptr && error != nullptr) *error = reason;
  return backend;
}

void ConfigureLogging(LogLevel level, bool json) {
  SetLogLevel(level);
  SetLogJson(json);
}

}  // namespace
}  // namespace gpuhive::cuda

extern "C" __attribute__((visibility("default"))) const gpuhive::ExecutionPluginInfo* gpuhive_execution_plugin_v1() {
  static const gpuhive::ExecutionPluginInfo info{gpuhive::CurrentExecutionPluginAbi(), gpuhive::DeviceType::kCuda,
                                                 "CUDA executor (cuDNN, cuBLASLt and gpuhive's kernels)",
                                                 &gpuhive::cuda::Backend, &gpuhive::cuda::ConfigureLogging};
  return &info;
}
