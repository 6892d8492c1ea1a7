// A model's precision at load (ModelConfig::precision, config.pbtxt's gpuhive { precision }):
//
//   fp32             the model as imported.
//   tf32             on a GPU: convolutions and matrix products with TF32 tensor-core math
//                    (CompileOptions::device_math); checked at load by the accuracy gate below. The
//                    CPU runs such a model in FP32 (said in the note).
//   fp16             on a GPU: convolutions and matrix products on float16 operands with FP32
//                    accumulation, weights held in 16 bits; gated like tf32. The CPU runs FP32.
//   bf16             on a GPU: as fp16 with bfloat16 operands. On the CPU: BF16 compute
//                    (KernelOptions::bf16_compute: one-group Conv, MatMul and Gemm with constant
//                    weights), where the CPU has BF16 dot products (else FP32, said in the note).
//                    Gated like the others.
//   int8             gpuhive's post-training static quantization (quantize.h), checked the same way.
//
// Config parameters (Triton's `parameters { key: ... value { string_value: ... } }`):
//     calibration          folder of calibration samples (ONNX test-data layout), relative to the
//                          model's folder or absolute; or "model_warmup": the model's warm-up
//                          samples whose inputs all come from input_data_file. Default: the
//                          folder "calibration" when it exists, else those warm-up samples (bf16's
//                          gate also takes warm-ups of random data: it calibrates nothing)
//     calibration_method   minmax (default), percentile or entropy (int8)
//     validation           samples the accuracy gate compares on; default: the calibration ones
//     int8_max_rel_l2      the gate's limit on each output's relative L2 error against FP32 (0.05;
//     bf16_max_rel_l2      bf16: 0.02; fp16: 0.01; tf32: 0.005)
//     fp16_max_rel_l2, tf32_max_rel_l2, fp16_min_top1, ... likewise for each precision
//     int8_min_top1        its limit on top-1 agreement for classifier-shaped outputs (0.99)
//     bf16_min_top1
//     int8_on_failure      "fp32" (default): run the model in FP32 and say why; "refuse": fail the load
//     int8_keep_float      accuracy-driven mixed precision: this many of the activations whose
//                          quantization alone moves the outputs most stay float (0); "auto": the
//                          fewest of 0, 1, 2, 4, ... (up to a quarter) that pass the gate
//     bf16_on_failure
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <random>

#include "gpuhive/kernel.h"
#include "gpuhive/logging.h"
#include "gpuhive/onnx_import.h"
#include "gpuhive/residency/warmup.h"
#include "residency/manager_internal.h"

namespace gpuhive::residency::detail {
namespace {

namespace fs = std::filesystem;

std::string Param(const ModelConfig& c, const std::string& key, const std::string& def) {
  auto it = c.parameters.find(key);
  return it == c.parameters.end() || it->second.empty() ? def : it->second;
}

StatusOr<double> NumberParam(const ModelConfig& c, const std::string& key, double def) {
  const std::string text = Param(c, key, "");
  if (text.empty()) return def;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || *end != '\0' || !(v >= 0)) {
    return InvalidArgument("model '{}': parameter {} = '{}' is not a non-negative number", c.name, key, text);
  }
  return v;
}

// A folder named by the config: absolute, or relative to the model's folder (the one holding
// config.pbtxt, above the version folder), else to the version folder.
std::string ResolveFolder(const std::string& model_path, const std::string& name) {
  const fs::path p(name);
  if (p.is_absolute() || model_path.empty()) return name;
  const fs::path version_dir = fs::path(model_path).parent_path();
  std::error_code ec;
  const fs::path in_model_dir = version_dir.parent_path() / p;
  if (fs::exists(in_model_dir, ec)) return in_model_dir.string();
  return (version_dir / p).string();
}

// Samples from the model's warm-up entries, in the model's input order; with files_only, only the
// entries whose every input reads input_data_file (zeros and random values say nothing about real
// activation ranges).
StatusOr<std::vector<Sample>> WarmupSamples(const ModelConfig& c, const std::string& model_path,
                                            const std::vector<TensorInfo>& inputs, bool files_only) {
  const std::string model_dir = fs::path(model_path).parent_path().parent_path().string();
  std::mt19937 rng(7);
  std::vector<Sample> samples;
  for (const WarmupConfig& w : c.warmups) {
    if (files_only && !WarmupHasDataFiles(w)) continue;
    ASSIGN_OR_RETURN(std::vector<WarmupInput> named, WarmupInputs(c, w, model_dir, &rng));
    Sample sample;
    for (const TensorInfo& info : inputs) {
      auto it = std::find_if(named.begin(), named.end(), [&](const WarmupInput& x) { return x.name == info.name; });
      if (it == named.end()) {
        return InvalidArgument("model_warmup '{}' has no sample for input '{}'", w.name, info.name);
      }
      sample.push_back(std::move(it->tensor));
    }
    samples.push_back(std::move(sample));
  }
  if (samples.empty() && files_only) {
    return NotFound("no model_warmup entry reads every input from an input_data_file ({} entr{} of zeros or random "
                    "data cannot calibrate)",
                    c.warmups.size(), c.warmups.size() == 1 ? "y" : "ies");
  }
  if (samples.empty()) return NotFound("no calibration folder and no model_warmup entry");
  return samples;
}

// The calibration samples the config names (see the top of this file) and where they came from.
StatusOr<std::vector<Sample>> CalibrationSamples(const ModelConfig& c, const std::string& model_path,
                                                 const std::vector<TensorInfo>& inputs, std::string* source,
                                                 bool warmup_files_only = true) {
  const std::string named = Param(c, "calibration", "");
  const std::string folder = ResolveFolder(model_path, named.empty() ? "calibration" : named);
  std::error_code ec;
  const bool use_warmup = named == "model_warmup" || (named.empty() && !fs::exists(folder, ec) && !c.warmups.empty());
  if (use_warmup) {
    *source = "model_warmup";
    return WarmupSamples(c, model_path, inputs, warmup_files_only);
  }
  *source = folder;
  return ReadSamples(folder, inputs);
}

// The accuracy gate's limits for precision `p` ("int8", "bf16").
struct Gate {
  double max_rel_l2 = 0, min_top1 = 0;
  std::string on_failure;
};
StatusOr<Gate> ReadGate(const ModelConfig& c, const std::string& p, double default_rel_l2) {
  Gate g;
  ASSIGN_OR_RETURN(g.max_rel_l2, NumberParam(c, p + "_max_rel_l2", default_rel_l2));
  ASSIGN_OR_RETURN(g.min_top1, NumberParam(c, p + "_min_top1", 0.99));
  g.on_failure = Param(c, p + "_on_failure", "fp32");
  if (g.on_failure != "fp32" && g.on_failure != "refuse") {
    return InvalidArgument("model '{}': {}_on_failure '{}' is not fp32 or refuse", c.name, p, g.on_failure);
  }
  return g;
}

// The validation samples: the folder the config names (read into *storage), else `fallback`.
StatusOr<const std::vector<Sample>*> ValidationSamples(const ModelConfig& c, const std::string& model_path,
                                                       const std::vector<TensorInfo>& inputs,
                                                       const std::vector<Sample>* fallback,
                                                       std::vector<Sample>* storage) {
  const std::string name = Param(c, "validation", "");
  if (name.empty()) return fallback;
  auto read = ReadSamples(ResolveFolder(model_path, name), inputs);
  if (!read.ok()) return read.status().WithContext(fmt::format("model '{}': validation samples", c.name));
  *storage = std::move(*read);
  return static_cast<const std::vector<Sample>*>(storage);
}

bool Passes(const Gate& gate, const AccuracyReport& report) {
  return report.worst_rel_l2 <= gate.max_rel_l2 && report.worst_top1 >= gate.min_top1;
}

// int8_keep_float: a count, or "auto".
struct KeepFloat {
  bool automatic = false;
  int count = 0;
};
StatusOr<KeepFloat> ReadKeepFloat(const ModelConfig& c) {
  const std::string text = Param(c, "int8_keep_float", "0");
  if (text == "auto") return KeepFloat{true, 0};
  ASSIGN_OR_RETURN(double n, NumberParam(c, "int8_keep_float", 0));
  if (n != std::floor(n) || n > 1e6) {
    return InvalidArgument("model '{}': int8_keep_float '{}' is not a count or \"auto\"", c.name, text);
  }
  return KeepFloat{false, static_cast<int>(n)};
}

// Records the gate's verdict on `report` for precision `p`. Returns whether the model runs in `p`;
// an error when it failed and the config says "refuse".
StatusOr<bool> Judge(const ModelConfig& c, const std::string& p, const Gate& gate, const AccuracyReport& report,
                     const std::string& measured, PrecisionState* state) {
  state->rel_l2 = report.worst_rel_l2;
  const bool classifier = std::any_of(report.outputs.begin(), report.outputs.end(),
                                      [](const AccuracyReport::Output& o) { return o.top1_agreement >= 0; });
  state->top1 = classifier ? report.worst_top1 : -1;
  state->decided = true;
  if (!Passes(gate, report)) {
    const std::string why = fmt::format("{}; over the limits (relative L2 <= {}, top-1 >= {})", measured,
                                        gate.max_rel_l2, gate.min_top1);
    if (gate.on_failure == "refuse") {
      return FailedPrecondition("model '{}': the {} accuracy gate refused it: {}", c.name, p, why);
    }
    state->precision = "fp32";
    state->note = "runs fp32: " + why;
    GH_LOG_WARN("residency", "model '{}' {}", c.name, state->note);
    return false;
  }
  state->precision = p;
  state->note = measured;
  GH_LOG_INFO("residency", "model '{}': {}", c.name, measured);
  return true;
}

// The samples a bf16 / tf32 / fp16 gate compares on (parameter validation, else the calibration
// samples, which may be warm-ups of random data: these precisions calibrate nothing); `source` says
// where they came from. *storage holds what was read.
StatusOr<const std::vector<Sample>*> GateSamples(const ModelConfig& config, const std::string& model_path,
                                                 const std::vector<TensorInfo>& inputs, const std::string& precision,
                                                 std::string* source, std::vector<Sample>* storage) {
  *source = Param(config, "validation", "");  // ValidationSamples reads it when given
  if (!source->empty()) return ValidationSamples(config, model_path, inputs, nullptr, storage);
  auto samples = CalibrationSamples(config, model_path, inputs, source, /*warmup_files_only=*/false);
  if (!samples.ok()) {
    return samples.status().WithContext(fmt::format(
        "model '{}': precision {} needs samples for its accuracy gate (parameter validation or calibration, a "
        "calibration/ folder, or model_warmup entries)",
        config.name, precision));
  }
  *storage = std::move(*samples);
  return static_cast<const std::vector<Sample>*>(storage);
}

// precision tf32 / fp16 / bf16 on a GPU: the graph stays as imported (the compile reads
// state->precision through DeviceMathOf); the gate compiles the model on the device twice, FP32 and
// the precision, and compares them once per model.
Status GateDeviceMath(const ModelConfig& config, const std::string& model_path, std::string_view onnx_bytes,
                      const DeviceCompiler& compile, PrecisionState* state) {
  if (state->decided) return Status::OK();
  const std::string& p = config.precision;
  const DeviceMath math = DeviceMathOf(p);
  ASSIGN_OR_RETURN(Gate gate, ReadGate(config, p, p == "tf32" ? 0.005 : p == "fp16" ? 0.01 : 0.02));
  ASSIGN_OR_RETURN(std::unique_ptr<ir::Model> reference_ir, ImportOnnxBytes(onnx_bytes));
  ASSIGN_OR_RETURN(std::unique_ptr<Executable> reference, compile(std::move(reference_ir), DeviceMath::kFloat32));
  ASSIGN_OR_RETURN(std::unique_ptr<ir::Model> candidate_ir, ImportOnnxBytes(onnx_bytes));
  ASSIGN_OR_RETURN(std::unique_ptr<Executable> candidate, compile(std::move(candidate_ir), math));
  std::string source;
  std::vector<Sample> samples;
  ASSIGN_OR_RETURN(const std::vector<Sample>* validation,
                   GateSamples(config, model_path, reference->inputs(), p, &source, &samples));
  ASSIGN_OR_RETURN(AccuracyReport report, CompareOutputs(*reference, *candidate, *validation, 1));
  const std::string what = p == "tf32" ? "TF32 math" : p == "fp16" ? "float16 operands" : "bfloat16 operands";
  const std::string measured = fmt::format("{} on {} (convolutions and matrix products with {}, FP32 accumulation, "
                                           "against the device's FP32): {} on {} validation sample(s) from {}",
                                           p, reference->backend(), what, report.Summary(), validation->size(), source);
  return Judge(config, p, gate, report, measured, state).status();
}

// precision bf16: the graph stays as imported (the compile reads state->precision); the gate
// compares a BF16-compute compile with FP32 once per model.
Status GateBf16(const ModelConfig& config, const std::string& model_path, std::string_view onnx_bytes, int threads,
                bool optimize, PrecisionState* state) {
  if (!CpuHasBf16Compute()) {
    state->precision = "fp32";
    state->note = "runs fp32: this CPU has no BF16 dot product (AVX512-BF16 or AMX) for precision bf16";
    state->decided = true;
    return Status::OK();
  }
  if (state->decided) return Status::OK();
  ASSIGN_OR_RETURN(Gate gate, ReadGate(config, "bf16", 0.02));
  CompileOptions co;
  co.num_threads = std::max(1, threads);
  co.optimize = optimize;
  ASSIGN_OR_RETURN(std::unique_ptr<ir::Model> reference_ir, ImportOnnxBytes(onnx_bytes));
  ASSIGN_OR_RETURN(std::unique_ptr<CompiledModel> reference, CompiledModel::Create(std::move(reference_ir), co));
  co.bf16_compute = true;
  ASSIGN_OR_RETURN(std::unique_ptr<ir::Model> candidate_ir, ImportOnnxBytes(onnx_bytes));
  ASSIGN_OR_RETURN(std::unique_ptr<CompiledModel> candidate, CompiledModel::Create(std::move(candidate_ir), co));
  std::string source;
  std::vector<Sample> samples;
  ASSIGN_OR_RETURN(const std::vector<Sample>* validation,
                   GateSamples(config, model_path, reference->inputs(), "bf16", &source, &samples));
  ASSIGN_OR_RETURN(AccuracyReport report, CompareOutputs(*reference, *candidate, *validation, co.num_threads));
  const std::string measured = fmt::format("bf16 (one-group Conv, MatMul and Gemm compute in BF16): {} on {} "
                                           "validation sample(s) from {}",
                                           report.Summary(), validation->size(), source);
  return Judge(config, "bf16", gate, report, measured, state).status();
}

}  // namespace

DeviceMath DeviceMathOf(const std::string& precision) {
  if (precision == "tf32") return DeviceMath::kTF32;
  if (precision == "fp16") return DeviceMath::kFloat16;
  if (precision == "bf16") return DeviceMath::kBFloat16;
  return DeviceMath::kFloat32;
}

StatusOr<std::unique_ptr<ir::Model>> ApplyPrecision(const ModelConfig& config, const std::string& model_path,
                                                    std::string_view onnx_bytes, std::unique_ptr<ir::Model> imported,
                                                    int threads, bool optimize, PrecisionState* state,
                                                    const DeviceCompiler* device) {
  const bool device_math = config.precision == "tf32" || config.precision == "fp16" || config.precision == "bf16";
  if (device_math && device != nullptr) {
    RETURN_IF_ERROR(GateDeviceMath(config, model_path, onnx_bytes, *device, state));
    return imported;
  }
  if (config.precision == "tf32" || config.precision == "fp16") {
    state->precision = "fp32";
    state->note = "precision " + config.precision + " is a GPU backend's; the CPU runs the model in fp32";
    return imported;
  }
  if (config.precision == "bf16") {
    RETURN_IF_ERROR(GateBf16(config, model_path, onnx_bytes, threads, optimize, state));
    return imported;
  }
  if (config.precision != "int8") {
    state->precision = "fp32";
    return imported;
  }
  if (state->decided && state->precision == "fp32") return imported;  // the gate already said FP32
  Int8Options options;
  options.num_threads = std::max(1, threads);
  ASSIGN_OR_RETURN(options.method, ParseCalibrationMethod(Param(config, "calibration_method", "minmax")));
  if (state->table == nullptr) {
    // Calibrate, then gate: INT8 against FP32 on the validation samples.
    ASSIGN_OR_RETURN(Gate gate, ReadGate(config, "int8", 0.05));
    CompileOptions co;
    co.num_threads = options.num_threads;
    co.optimize = optimize;  // as the served model will run (int8 runs fused only when optimized)
    ASSIGN_OR_RETURN(std::unique_ptr<ir::Model> reference_ir, ImportOnnxBytes(onnx_bytes));
    ASSIGN_OR_RETURN(std::unique_ptr<CompiledModel> reference, CompiledModel::Create(std::move(reference_ir), co));
    std::string source;
    auto samples = CalibrationSamples(config, model_path, reference->inputs(), &source);
    if (!samples.ok()) {
      return samples.status().WithContext(fmt::format("model '{}': precision int8 needs calibration samples", config.name));
    }
    std::vector<Sample> storage;
    ASSIGN_OR_RETURN(const std::vector<Sample>* validation,
                     ValidationSamples(config, model_path, reference->inputs(), &*samples, &storage));
    ASSIGN_OR_RETURN(CalibrationTable table, Calibrate(onnx_bytes, *samples, options));
    ASSIGN_OR_RETURN(KeepFloat keep, ReadKeepFloat(config));
    // Accuracy-driven mixed precision: the activations whose quantization alone moves the outputs
    // most (ranked on the calibration samples) stay float, int8_keep_float of them, or with "auto"
    // the fewest of 0, 1, 2, 4, ... (at most a quarter of them, at least one) that pass the gate.
    std::vector<Int8Sensitivity> ranked;
    int keep_count = keep.count;
    CalibrationTable chosen;
    Int8Options chosen_options;
    AccuracyReport report;
    int quantized = 0;
    for (;;) {
      if (keep_count > 0 && ranked.empty()) {
        ASSIGN_OR_RETURN(ranked, RankInt8Sensitivity(onnx_bytes, table, *samples, options));
      }
      CalibrationTable attempt = table;
      Int8Options attempt_options = options;
      KeepMostSensitive(ranked, keep_count, &attempt, &attempt_options);
      ASSIGN_OR_RETURN(std::unique_ptr<ir::Model> candidate_ir, ImportOnnxBytes(onnx_bytes));
      ASSIGN_OR_RETURN(quantized, QuantizeModel(*candidate_ir, attempt, attempt_options));
      ASSIGN_OR_RETURN(std::unique_ptr<CompiledModel> candidate, CompiledModel::Create(std::move(candidate_ir), co));
      ASSIGN_OR_RETURN(report, CompareOutputs(*reference, *candidate, *validation, options.num_threads));
      chosen = std::move(attempt);
      chosen_options = std::move(attempt_options);
      const int next = keep_count == 0 ? 1 : 2 * keep_count;
      if (!keep.automatic || Passes(gate, report) || next > std::max(1, static_cast<int>(table.size()) / 4)) break;
      keep_count = next;
    }
    const std::string measured =
        fmt::format("int8 ({} operators, {} kept float, {} calibration on {} sample(s) from {}): {} on {} validation "
                    "sample(s)",
                    quantized, keep_count, CalibrationMethodName(options.method), samples->size(), source,
                    report.Summary(), validation->size());
    ASSIGN_OR_RETURN(bool runs_int8, Judge(config, "int8", gate, report, measured, state));
    if (!runs_int8) return imported;
    state->table = std::make_shared<const CalibrationTable>(std::move(chosen));
    state->dynamic_activations = chosen_options.dynamic_activations;
  }
  options.dynamic_activations = state->dynamic_activations;
  ASSIGN_OR_RETURN(int n, QuantizeModel(*imported, *state->table, options));
  (void)n;
  return imported;
}

}  // namespace gpuhive::residency::detail
