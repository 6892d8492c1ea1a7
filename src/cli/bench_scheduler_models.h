// Models for `gpuhive bench scheduler`: small ONNX graphs written as serialized ModelProto bytes
// (a minimal protobuf writer, so the CLI needs no ONNX library of its own) and imported, compiled
// and run by the real importer and runtime.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "gpuhive/runtime.h"
#include "gpuhive/scheduler.h"

namespace gpuhive::cli {

struct BenchModelSpec {
  std::string name;
  std::string onnx_bytes;
  std::vector<int64_t> input_shape;  // batch 1
};

// "mlp": 256 -> 1024 -> 1024 -> 16 fully connected with ReLU (about 5 MiB of weights).
BenchModelSpec SmallMlpModel();
// "convnet": 3x32x32 -> conv16 -> pool -> conv32 -> pool -> fc 2048x1024 -> fc 1024x10 (about 8 MiB).
BenchModelSpec MediumConvModel();

// Runs a CompiledModel with one ExecutionContext per scheduler worker (each with that worker's
// thread budget). Thread safe across workers.
class CompiledModelRunner : public sched::ModelRunner {
 public:
  // Imports and compiles the spec. Errors from the importer or the runtime.
  static StatusOr<std::shared_ptr<CompiledModelRunner>> Create(const BenchModelSpec& spec, int num_workers);

  StatusOr<std::vector<Tensor>> RunBatch(const std::vector<TensorView>& inputs,
                                         const sched::WorkerContext& worker) override;
  std::vector<std::string> input_names() const override;
  std::vector<std::string> output_names() const override;

 private:
  std::unique_ptr<CompiledModel> model_;
  std::vector<std::unique_ptr<ExecutionContext>> contexts_;  // by worker index, created on first use
  std::vector<std::unique_ptr<std::once_flag>> created_;
};

// Wraps a runner so that batches on devices listed in `slow_devices` take `factor` times as long
// (the extra time is spent sleeping, not computing): an emulated slower device for machines with
// too few cores to give two devices unequal core budgets.
class SlowDeviceRunner : public sched::ModelRunner {
 public:
  SlowDeviceRunner(std::shared_ptr<sched::ModelRunner> inner, std::vector<int> slow_devices, double factor)
      : inner_(std::move(inner)), slow_(std::move(slow_devices)), factor_(factor) {}
  StatusOr<std::vector<Tensor>> RunBatch(const std::vector<TensorView>& inputs,
                                         const sched::WorkerContext& worker) override;
  std::vector<std::string> input_names() const override { return inner_->input_names(); }
  std::vector<std::string> output_names() const override { return inner_->output_names(); }

 private:
  std::shared_ptr<sched::ModelRunner> inner_;
  std::vector<int> slow_;
  double factor_;
};

}  // namespace gpuhive::cli
