// gpuhive's own INT8 precision: post-training static quantization of a float32 ONNX model.
//
//  1. Calibrate: run the float model on the user's inputs and record the range of every activation
//     a quantized convolution will read (min-max, a percentile, or the entropy threshold).
//  2. QuantizeModel: rewrite the model into QDQ form: each such activation is quantized to uint8
//     (asymmetric, from its range) and the constant weights of each convolution and matrix
//     multiplication to int8 (symmetric, per output channel). FuseQuantizedConv then runs them on
//     oneDNN's int8 kernels and the weights are held as int8 (a quarter of their float32 bytes).
//  3. The accuracy gate: CompareOutputs runs both models on validation inputs and reports each
//     output's relative L2 error and, for classifier-shaped outputs ([N, classes]), top-1 agreement.
//
// Calibration inputs are ONNX test-data folders: DIR/<sample>/<any>.pb, one TensorProto per model
// input named after the input (a file whose name is "input_<i>.pb" and whose tensor has no name
// feeds input i), one sub-folder per sample (DIR itself when it holds .pb files: one sample).
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <set>
#include <vector>

#include "gpuhive/ir.h"
#include "gpuhive/runtime.h"
#include "gpuhive/status.h"
#include "gpuhive/tensor.h"

namespace gpuhive {

enum class CalibrationMethod { kMinMax, kPercentile, kEntropy };
// "minmax", "percentile", "entropy". Errors: kInvalidArgument naming the choices.
StatusOr<CalibrationMethod> ParseCalibrationMethod(std::string_view text);
const char* CalibrationMethodName(CalibrationMethod m);

struct Int8Options {
  CalibrationMethod method = CalibrationMethod::kMinMax;
  double percentile = 99.999;  // kPercentile: the share of values kept inside the range (each tail)
  // Weight bits (2..8). 0: CpuExactInt8WeightBits() (8 with VNNI, else 7, which oneDNN's int8
  // kernels compute exactly).
  int weight_bits = 0;
  int num_threads = 1;  // for the calibration runs
  // Accuracy-driven mixed precision: the keep_float activations whose quantization alone moves the
  // model's outputs most (RankInt8Sensitivity on the calibration samples) stay float (QuantizeOnnx).
  int keep_float = 0;
  // Activations quantized per run instead of over their calibrated range: the MatMul / Gemm reading
  // them runs as DynamicQuantizeLinear -> MatMulInteger with its int8 weights (keep_float picks
  // these for the sensitive products whose weights are large, so they stay 8-bit in memory).
  std::set<std::string> dynamic_activations;
};

struct ActivationRange {
  float lo = 0.f, hi = 0.f;
};
using CalibrationTable = std::map<std::string, ActivationRange>;

// One sample = one tensor per model input, in the model's input order.
using Sample = std::vector<Tensor>;

// Reads calibration / validation samples (see the top of this file) for a model with these inputs.
// Errors: kNotFound (no folder or no .pb file), kInvalidArgument (a file that does not parse, names
// an input the model does not have, or a sample missing an input).
StatusOr<std::vector<Sample>> ReadSamples(const std::string& dir, const std::vector<TensorInfo>& inputs);

// The activations QuantizeModel quantizes: input 0 of every Conv, MatMul and Gemm (transA 0, alpha
// 1, beta 1) with constant float32 weights in the top-level graph (after BatchNormalization folding).
std::vector<std::string> QuantizableActivations(ir::Model& model);

// Runs the float model (serialized ONNX) on every sample and returns the range of each quantizable
// activation. Errors: those of import and compilation, and kInvalidArgument when there is no sample.
StatusOr<CalibrationTable> Calibrate(std::string_view onnx_bytes, const std::vector<Sample>& samples,
                                     const Int8Options& options);

// Rewrites a float32 model (as imported) into QDQ form with `table`, and stores embedding tables
// (Gather from a constant float32 [V, D] of at least 1 MiB) as int8 rows with one scale per row.
// Returns the number of convolutions, matrix multiplications and embedding tables quantized (activations missing from the table, or with an empty range, stay float).
StatusOr<int> QuantizeModel(ir::Model& model, const CalibrationTable& table, const Int8Options& options);

// How far quantizing one activation alone (every other one float) moves the model's outputs: the
// worst output's relative L2 against FP32 over `samples`. One entry per activation of `table`, most
// sensitive first. Compiles the model once per activation (optimized, options.num_threads).
// large_weights: every operator quantizing it is a MatMul / Gemm with >= 256 KiB of weights.
struct Int8Sensitivity {
  std::string activation;
  double rel_l2 = 0;
  bool large_weights = false;
};
StatusOr<std::vector<Int8Sensitivity>> RankInt8Sensitivity(std::string_view onnx_bytes, const CalibrationTable& table,
                                                           const std::vector<Sample>& samples,
                                                           const Int8Options& options);

// Mixed precision from a ranking: the first `count` of `ranked` stay float (removed from *table),
// except those with large_weights, which are quantized per run instead (added to
// options->dynamic_activations) so their weights stay 8-bit. `kept` (optional) receives their
// names, " (per-run INT8)" after the latter.
void KeepMostSensitive(const std::vector<Int8Sensitivity>& ranked, int count, CalibrationTable* table,
                       Int8Options* options, std::vector<std::string>* kept = nullptr);

// Calibrate + QuantizeModel on a fresh import of `onnx_bytes`: the quantized model, ready to
// compile. With options.keep_float > 0 the most sensitive activations stay float. `quantized` (optional) receives the number of convolutions quantized.
// `kept_float` (optional) receives the activations kept float, most sensitive first.
StatusOr<std::unique_ptr<ir::Model>> QuantizeOnnx(std::string_view onnx_bytes, const std::vector<Sample>& calibration,
                                                  const Int8Options& options, int* quantized = nullptr,
                                                  std::vector<std::string>* kept_float = nullptr);

struct AccuracyReport {
  struct Output {
    std::string name;
    double rel_l2 = 0;           // ||candidate - reference|| / ||reference|| over all samples
    double top1_agreement = -1;  // classifier-shaped outputs only; -1 otherwise
    int64_t rows = 0;            // rows compared for top-1
  };
  std::vector<Output> outputs;
  double worst_rel_l2 = 0;
  double worst_top1 = 1;  // the lowest agreement over classifier outputs (1 when there is none)
  // "output 'logits': rel L2 0.0123, top-1 99.4% (994/1000)"; outputs joined by "; ".
  std::string Summary() const;
};

// Runs `reference` and `candidate` (same inputs and outputs) on every sample and compares them.
StatusOr<AccuracyReport> CompareOutputs(Executable& reference, Executable& candidate,
                                        const std::vector<Sample>& samples, int num_threads);

}  // namespace gpuhive
