// Shared helpers of the residency tests.
#pragma once

#include <filesystem>
#include <memory>
#include <fstream>
#include <string>
#include <vector>

#include "gpuhive/residency/manager.h"
#include "gpuhive/runtime.h"
#include "gpuhive/residency/synthetic_models.h"

namespace gpuhive::residency::testing {

// An Executable that forwards everything to another: the base of test backends' wrappers, which
// override what they observe (Run) or say (backend).
class ForwardingExecutable : public Executable {
 public:
  explicit ForwardingExecutable(std::unique_ptr<Executable> inner) : inner_(std::move(inner)) {}
  std::string_view backend() const override { return inner_->backend(); }
  const std::vector<TensorInfo>& inputs() const override { return inner_->inputs(); }
  const std::vector<TensorInfo>& outputs() const override { return inner_->outputs(); }
  size_t weight_bytes() const override { return inner_->weight_bytes(); }
  std::shared_ptr<WeightGate> weight_gate() const override { return inner_->weight_gate(); }
  std::vector<WeightCopy> TakePendingWeightCopies() override { return inner_->TakePendingWeightCopies(); }
  void ReleaseSettledWeights() override { inner_->ReleaseSettledWeights(); }
  StatusOr<PlanStats> Prepare(const std::vector<Shape>& shapes) override { return inner_->Prepare(shapes); }
  StatusOr<std::vector<Tensor>> Run(ExecutionContext& ctx, const std::vector<TensorView>& inputs) override {
    return inner_->Run(ctx, inputs);
  }

 protected:
  std::unique_ptr<Executable> inner_;
};

inline ModelConfig ChainConfig(const std::string& name, int dim, int max_batch_size = 0) {
  ModelConfig c;
  c.name = name;
  c.platform = "onnxruntime_onnx";
  c.max_batch_size = max_batch_size;
  c.inputs.push_back({"x", DataType::kFloat32, {-1, dim}});
  c.outputs.push_back({"y", DataType::kFloat32, {-1, dim}});
  return c;
}

inline ManagerOptions SmallOptions(uint64_t budget) {
  ManagerOptions o;
  o.budget_bytes = budget;
  o.housekeeping_interval_us = 0;
  o.bandwidth_probe_bytes = 1 << 20;
  o.enable_preloading = false;
  o.optimize = false;
  return o;
}

// Input [rows, dim] filled with a simple pattern.
inline Tensor MakeInput(int64_t rows, int dim) {
  std::vector<float> v(static_cast<size_t>(rows * dim));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i % 7) * 0.25f - 0.5f;
  return *Tensor::FromVector(DataType::kFloat32, {rows, dim}, v);
}

inline const ModelStatus* FindStatus(const std::vector<ModelStatus>& all, const std::string& name) {
  for (const auto& s : all) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

}  // namespace gpuhive::residency::testing
