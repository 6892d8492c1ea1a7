// Shared helpers of the residency tests.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gpuhive/residency/manager.h"
#include "gpuhive/residency/synthetic_models.h"

namespace gpuhive::residency::testing {

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
