// Helpers shared by the model-facing CLI commands (run, perf, conformance, benchmarks).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "gpuhive/runtime.h"
#include "gpuhive/status.h"
#include "gpuhive/tensor.h"

namespace gpuhive::cli {

// Imports and compiles an ONNX file.
StatusOr<std::unique_ptr<CompiledModel>> LoadModel(const std::string& path, const CompileOptions& options);

// Parses "1x3x224x224" or "1,3,224,224".
StatusOr<Shape> ParseShape(const std::string& text);

// Concrete input shapes: declared dims, dynamic dims from `overrides` ("name=1x128"), else the first
// dynamic dim becomes `batch` and any other dynamic dim `default_dim`.
StatusOr<std::vector<Shape>> ResolveInputShapes(const Executable& model, const std::vector<std::string>& overrides,
                                                int64_t batch, int64_t default_dim = 1);

// Deterministic random input (floats in [-1,1), integers in [0, int_range)).
StatusOr<Tensor> RandomTensor(DataType dtype, const Shape& shape, uint32_t seed, int64_t int_range = 100);

struct LatencySummary {
  double p50_ms = 0, p90_ms = 0, p99_ms = 0, mean_ms = 0, min_ms = 0;
};
LatencySummary Summarize(std::vector<double> latencies_ms);

// `s` for a JSON string literal (quotes and backslashes escaped, control characters as spaces).
std::string JsonEscape(const std::string& s);

}  // namespace gpuhive::cli
