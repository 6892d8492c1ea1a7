// A model's precision at load (ModelConfig::precision, config.pbtxt's gpuhive { precision }):
//
//   fp32             the model as imported.
//   fp16, bf16       16-bit storage is the GPU backend's; the CPU runs them in FP32 (said in the note).
//   int8             gpuhive's post-training static quantization (quantize.h), with these config
//                    parameters (Triton's `parameters { key: ... value { string_value: ... } }`):
//     calibration          folder of calibration samples (ONNX test-data layout), relative to the
//                          model's folder or absolute; or "model_warmup": the model's warm-up
//                          samples whose inputs all come from input_data_file. Default: the
//                          folder "calibration" when it exists, else those warm-up samples
//     calibration_method   minmax (default), percentile or entropy
//     validation           samples the accuracy gate compares on; default: the calibration ones
//     int8_max_rel_l2      the gate's limit on each output's relative L2 error against FP32 (0.05)
//     int8_min_top1        its limit on top-1 agreement for classifier-shaped outputs (0.99)
//     int8_on_failure      "fp32" (default): run the model in FP32 and say why; "refuse": fail the load
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <random>

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

// Calibration samples from the model's warm-up entries whose every input reads input_data_file
// (zeros and random values say nothing about real activation ranges), in the model's input order.
StatusOr<std::vector<Sample>> WarmupSamples(const ModelConfig& c, const std::string& model_path,
                                            const std::vector<TensorInfo>& inputs) {
  const std::string model_dir = fs::path(model_path).parent_path().parent_path().string();
  std::mt19937 unused(0);
  std::vector<Sample> samples;
  for (const WarmupConfig& w : c.warmups) {
    if (!WarmupHasDataFiles(w)) continue;
    ASSIGN_OR_RETURN(std::vector<WarmupInput> named, WarmupInputs(c, w, model_dir, &unused));
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
  if (samples.empty()) {
    return NotFound("no model_warmup entry reads every input from an input_data_file ({} entr{} of zeros or random "
                    "data cannot calibrate)",
                    c.warmups.size(), c.warmups.size() == 1 ? "y" : "ies");
  }
  return samples;
}

// The calibration samples the config names (see the top of this file) and where they came from.
StatusOr<std::vector<Sample>> CalibrationSamples(const ModelConfig& c, const std::string& model_path,
                                                 const std::vector<TensorInfo>& inputs, std::string* source) {
  const std::string named = Param(c, "calibration", "");
  const std::string folder = ResolveFolder(model_path, named.empty() ? "calibration" : named);
  std::error_code ec;
  const bool use_warmup = named == "model_warmup" || (named.empty() && !fs::exists(folder, ec) && !c.warmups.empty());
  if (use_warmup) {
    *source = "model_warmup";
    return WarmupSamples(c, model_path, inputs);
  }
  *source = folder;
  return ReadSamples(folder, inputs);
}

}  // namespace

StatusOr<std::unique_ptr<ir::Model>> ApplyPrecision(const ModelConfig& config, const std::string& model_path,
                                                    std::string_view onnx_bytes, std::unique_ptr<ir::Model> imported,
                                                    int threads, bool optimize, PrecisionState* state) {
  if (config.precision == "fp16" || config.precision == "bf16") {
    state->precision = "fp32";
    state->note = fmt::format("precision {} is the GPU backend's; the CPU runs the model in fp32", config.precision);
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
    ASSIGN_OR_RETURN(double max_rel_l2, NumberParam(config, "int8_max_rel_l2", 0.05));
    ASSIGN_OR_RETURN(double min_top1, NumberParam(config, "int8_min_top1", 0.99));
    const std::string on_failure = Param(config, "int8_on_failure", "fp32");
    if (on_failure != "fp32" && on_failure != "refuse") {
      return InvalidArgument("model '{}': int8_on_failure '{}' is not fp32 or refuse", config.name, on_failure);
    }
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
    StatusOr<std::vector<Sample>> separate = std::vector<Sample>{};
    const std::string validation_name = Param(config, "validation", "");
    if (!validation_name.empty()) separate = ReadSamples(ResolveFolder(model_path, validation_name), reference->inputs());
    if (!separate.ok()) return separate.status().WithContext(fmt::format("model '{}': validation samples", config.name));
    const std::vector<Sample>& validation = validation_name.empty() ? *samples : *separate;
    ASSIGN_OR_RETURN(CalibrationTable table, Calibrate(onnx_bytes, *samples, options));
    ASSIGN_OR_RETURN(std::unique_ptr<ir::Model> candidate_ir, ImportOnnxBytes(onnx_bytes));
    ASSIGN_OR_RETURN(int quantized, QuantizeModel(*candidate_ir, table, options));
    ASSIGN_OR_RETURN(std::unique_ptr<CompiledModel> candidate, CompiledModel::Create(std::move(candidate_ir), co));
    ASSIGN_OR_RETURN(AccuracyReport report, CompareOutputs(*reference, *candidate, validation, options.num_threads));
    state->rel_l2 = report.worst_rel_l2;
    const bool classifier = std::any_of(report.outputs.begin(), report.outputs.end(),
                                        [](const AccuracyReport::Output& o) { return o.top1_agreement >= 0; });
    state->top1 = classifier ? report.worst_top1 : -1;
    state->decided = true;
    const bool pass = report.worst_rel_l2 <= max_rel_l2 && report.worst_top1 >= min_top1;
    const std::string measured =
        fmt::format("int8 ({} operators, {} calibration on {} sample(s) from {}): {} on {} validation sample(s)",
                    quantized, CalibrationMethodName(options.method), samples->size(), source, report.Summary(),
                    validation.size());
    if (!pass) {
      const std::string why = fmt::format("{}; over the limits (relative L2 <= {}, top-1 >= {})", measured, max_rel_l2,
                                          min_top1);
      if (on_failure == "refuse") {
        return FailedPrecondition("model '{}': the int8 accuracy gate refused it: {}", config.name, why);
      }
      state->precision = "fp32";
      state->note = "runs fp32: " + why;
      GH_LOG_WARN("residency", "model '{}' {}", config.name, state->note);
      return imported;
    }
    state->precision = "int8";
    state->note = measured;
    state->table = std::make_shared<const CalibrationTable>(std::move(table));
    GH_LOG_INFO("residency", "model '{}': {}", config.name, measured);
  }
  ASSIGN_OR_RETURN(int n, QuantizeModel(*imported, *state->table, options));
  (void)n;
  return imported;
}

}  // namespace gpuhive::residency::detail
