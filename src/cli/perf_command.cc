// `gpuhive perf MODEL`: latency percentiles, throughput, weight bytes and the planned activation
// peak beside the naive sum of all intermediates. With --precision int8 or bf16, the FP32 model and
// its reduced-precision form (gpuhive's INT8 quantization, or BF16 compute) side by side, and the
// reduced outputs' error against FP32.
#include <algorithm>
#include <fstream>
#include <iterator>
#include <map>

#include "cli/command.h"
#include "cli/model_util.h"
#include "gpuhive/kernel.h"
#include "gpuhive/monitor/host_metrics.h"
#include "gpuhive/quantize.h"
#include "gpuhive/units.h"

namespace gpuhive::cli {
namespace {

struct PerfOptions {
  std::string model;
  int64_t batch = 1;
  int threads = 1;
  int iterations = 50;
  int warmup = 5;
  double min_seconds = 0;
  std::vector<std::string> shapes;
  bool json = false;
  bool no_optimize = false;
  bool no_blocked = false;
  std::string conv_algorithm = "auto";
  bool profile = false;
  std::string precision = "fp32";
  std::string calibration, calibration_method = "minmax", validation;
  int int8_keep_float = 0;
};

// {"Resize:separable_2d":2,...}: steps of the last run by operator and the implementation its
// kernel chose (empty without --profile; what tests/executor_guard checks).
std::string ImplementationsJson(const std::vector<ExecutionContext::StepTime>& steps) {
  std::map<std::string, int> counts;
  for (const auto& st : steps) {
    if (!st.implementation.empty()) ++counts[st.op + ":" + st.implementation];
  }
  std::string out;
  for (const auto& [key, n] : counts) {
    if (!out.empty()) out += ",";
    out += "\"" + JsonEscape(key) + "\":" + std::to_string(n);
  }
  return out;
}

// One model's timed runs on the given inputs.
struct Measurement {
  PlanStats stats;
  LatencySummary latency;
  size_t iterations = 0;
  double throughput = 0, prepare_ms = 0;
  size_t weight_bytes = 0;
  uint64_t peak_rss_bytes = 0;  // the process's peak resident memory at the end of the runs (VmHWM)
  std::map<std::string, std::pair<int64_t, int>> by_op;  // op -> (total ns, count)
  std::string implementations;
};

StatusOr<Measurement> Measure(CompiledModel& model, const PerfOptions& o, const std::vector<Shape>& shapes,
                              const std::vector<TensorView>& views) {
  Measurement m;
  int64_t p0 = NowNs();
  ASSIGN_OR_RETURN(m.stats, model.Prepare(shapes));
  m.prepare_ms = (NowNs() - p0) / 1e6;
  ExecutionContext::Options eo;
  eo.num_threads = o.threads;
  eo.profile = o.profile;
  ExecutionContext ctx(eo);
  for (int i = 0; i < o.warmup; ++i) RETURN_IF_ERROR(model.Run(ctx, views).status());
  std::vector<double> lat;
  int64_t start = NowNs();
  for (int i = 0; i < o.iterations || (NowNs() - start) / 1e9 < o.min_seconds; ++i) {
    int64_t a = NowNs();
    RETURN_IF_ERROR(model.Run(ctx, views).status());
    lat.push_back((NowNs() - a) / 1e6);
    for (const auto& st : ctx.step_times()) {
      m.by_op[st.op].first += st.ns;
      m.by_op[st.op].second++;
    }
  }
  const double total_s = (NowNs() - start) / 1e9;
  m.iterations = lat.size();
  m.latency = Summarize(lat);
  m.throughput = o.batch * lat.size() / total_s;
  m.weight_bytes = model.weight_bytes();
  m.implementations = ImplementationsJson(ctx.step_times());
  m.peak_rss_bytes = monitor::ReadHostSample().process_peak_rss_bytes.value_or(0);
  return m;
}

void PrintProfile(const Measurement& m) {
  std::vector<std::pair<int64_t, std::string>> rows;
  int64_t total = 0;
  for (const auto& [op, v] : m.by_op) {
    rows.push_back({v.first, op});
    total += v.first;
  }
  std::sort(rows.rbegin(), rows.rend());
  std::fprintf(stderr, "per-operator time (mean per run):\n");
  for (const auto& [ns, op] : rows) {
    std::fprintf(stderr, "  %-28s %9.3f ms  %5.1f%%  (%d steps/run)\n", op.c_str(), ns / 1e6 / m.iterations,
                 100.0 * ns / std::max<int64_t>(total, 1), m.by_op.at(op).second / static_cast<int>(m.iterations));
  }
}

std::string MeasurementJson(const Measurement& m) {
  return fmt::format(
      "\"p50_ms\":{:.4f},\"p90_ms\":{:.4f},\"p99_ms\":{:.4f},\"mean_ms\":{:.4f},\"min_ms\":{:.4f},"
      "\"throughput_per_s\":{:.2f},\"weight_bytes\":{},\"arena_bytes\":{},\"activation_bytes\":{},"
      "\"naive_activation_bytes\":{},\"workspace_bytes\":{},\"step_workspace_bytes\":{},\"steps\":{},"
      "\"dynamic\":{},\"prepare_ms\":{:.2f},\"peak_rss_bytes\":{},\"implementations\":{{{}}}",
      m.latency.p50_ms, m.latency.p90_ms, m.latency.p99_ms, m.latency.mean_ms, m.latency.min_ms, m.throughput,
      m.weight_bytes, m.stats.arena_bytes, m.stats.activation_bytes, m.stats.naive_activation_bytes,
      m.stats.workspace_bytes, m.stats.step_workspace_bytes, m.stats.num_steps, m.stats.dynamic ? "true" : "false",
      m.prepare_ms, m.peak_rss_bytes, m.implementations);
}

// --precision int8 / bf16: the FP32 model and its reduced-precision form (gpuhive's INT8
// quantization, or BF16 compute), measured on the same inputs, with the reduced outputs' error
// against FP32 on the validation samples (for bf16 without samples: the timing inputs).
int RunPerfReduced(const PerfOptions& o, CompiledModel& fp32, const std::vector<Shape>& shapes,
                   const std::vector<TensorView>& views, const CompileOptions& co) {
  auto fail = [](const Status& s) {
    std::fprintf(stderr, "error: %s\n", s.ToString().c_str());
    return 1;
  };
  const bool int8 = o.precision == "int8";
  if (int8 && o.calibration.empty()) return fail(InvalidArgument("--precision int8 needs --calibration DIR"));
  if (!int8 && !CpuHasBf16Compute()) {
    return fail(FailedPrecondition("--precision bf16: this CPU has no BF16 dot product (AVX512-BF16 or AMX) for oneDNN"));
  }
  Int8Options io;
  io.num_threads = o.threads;
  auto method = ParseCalibrationMethod(o.calibration_method);
  if (!method.ok()) return fail(method.status());
  io.method = *method;
  io.keep_float = o.int8_keep_float;
  StatusOr<std::vector<Sample>> samples = std::vector<Sample>{};
  if (!o.calibration.empty()) samples = ReadSamples(o.calibration, fp32.inputs());
  if (!samples.ok()) return fail(samples.status());
  StatusOr<std::vector<Sample>> separate = std::vector<Sample>{};
  if (!o.validation.empty()) separate = ReadSamples(o.validation, fp32.inputs());
  if (!separate.ok()) return fail(separate.status());
  std::vector<Sample> timing_inputs;  // bf16 without samples: the inputs the timing runs on
  if (o.validation.empty() && samples->empty()) {
    timing_inputs.emplace_back();
    for (const TensorView& v : views) {
      auto t = Tensor::FromBytes(v.dtype, v.shape, v.data, v.plain_bytes());
      if (!t.ok()) return fail(t.status());
      timing_inputs[0].push_back(std::move(*t));
    }
  }
  const std::vector<Sample>* validation = !o.validation.empty() ? &*separate
                                          : !samples->empty()   ? &*samples
                                                                : &timing_inputs;
  int quantized = 0;
  std::vector<std::string> kept_float;  // --int8-keep-float: the activations left float
  const int64_t t0 = NowNs();
  StatusOr<std::unique_ptr<CompiledModel>> reduced = Internal("not compiled");
  if (int8) {
    std::ifstream file(o.model, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    if (!file.good() && !file.eof()) return fail(NotFound("cannot read '{}'", o.model));
    auto int8_ir = QuantizeOnnx(bytes, *samples, io, &quantized, &kept_float);
    if (!int8_ir.ok()) return fail(int8_ir.status());
    reduced = CompiledModel::Create(std::move(*int8_ir), co);
  } else {
    CompileOptions bf16 = co;
    bf16.bf16_compute = true;
    reduced = LoadModel(o.model, bf16);
  }
  if (!reduced.ok()) return fail(reduced.status());
  const double convert_ms = (NowNs() - t0) / 1e6;
  auto report = CompareOutputs(fp32, **reduced, *validation, o.threads);
  if (!report.ok()) return fail(report.status());
  auto a = Measure(fp32, o, shapes, views);
  if (!a.ok()) return fail(a.status());
  auto b = Measure(**reduced, o, shapes, views);
  if (!b.ok()) return fail(b.status());
  const char* name = int8 ? "int8" : "bf16";
  if (o.json) {
    std::string outputs;
    for (const auto& out : report->outputs) {
      if (!outputs.empty()) outputs += ",";
      outputs += fmt::format("{{\"name\":\"{}\",\"rel_l2\":{:.6g},\"top1_agreement\":{:.6g},\"rows\":{}}}",
                             JsonEscape(out.name), out.rel_l2, out.top1_agreement, out.rows);
    }
    const std::string conversion =
        int8 ? fmt::format("\"calibration_method\":\"{}\",\"calibration_samples\":{},\"quantized_ops\":{},\"kept_float\":{},"
                           "\"quantize_ms\":{:.1f}",
                           CalibrationMethodName(io.method), samples->size(), quantized, io.keep_float, convert_ms)
             : fmt::format("\"compile_ms\":{:.1f}", convert_ms);
    std::printf(
        "{\"model\":\"%s\",\"batch\":%lld,\"threads\":%d,\"precision\":\"%s\",%s,\"validation_samples\":%zu,"
        "\"fp32\":{%s},\"%s\":{%s},\"accuracy\":{\"worst_rel_l2\":%.6g,\"worst_top1\":%.6g,\"outputs\":[%s]}}\n",
        JsonEscape(o.model).c_str(), static_cast<long long>(o.batch), o.threads, name, conversion.c_str(),
        validation->size(), MeasurementJson(*a).c_str(), name, MeasurementJson(*b).c_str(), report->worst_rel_l2,
        report->worst_top1, outputs.c_str());
  } else {
    std::printf("model       %s   batch %lld   threads %d\n", o.model.c_str(), static_cast<long long>(o.batch), o.threads);
    if (int8) {
      std::printf("int8        %d operators quantized (%s, %zu calibration samples, %d most sensitive kept float) in %.0f ms\n",
                  quantized, CalibrationMethodName(io.method), samples->size(), io.keep_float, convert_ms);
      for (const std::string& name : kept_float) std::printf("            kept float: %s\n", name.c_str());
    } else {
      std::printf("bf16        one-group Conv, MatMul and Gemm with constant weights compute in BF16 (%.0f ms to compile)\n",
                  convert_ms);
    }
    std::printf("%-10s %10s %10s %12s %12s\n", "", "p50 ms", "p90 ms", "inf/s", "weights");
    for (const auto& [label, m] : {std::pair<const char*, const Measurement*>{"fp32", &*a}, {name, &*b}}) {
      std::printf("%-10s %10.3f %10.3f %12.1f %12s\n", label, m->latency.p50_ms, m->latency.p90_ms, m->throughput,
                  FormatBytes(m->weight_bytes).c_str());
    }
    std::printf("speed-up   %.2fx   weights %.2fx of fp32\n", a->latency.p50_ms / b->latency.p50_ms,
                static_cast<double>(b->weight_bytes) / static_cast<double>(std::max<size_t>(a->weight_bytes, 1)));
    std::printf("error      %s (%zu validation sample(s)%s)\n", report->Summary().c_str(), validation->size(),
                validation == &timing_inputs ? ": the timing inputs" : "");
  }
  if (o.profile) PrintProfile(*b);
  return 0;
}

int RunPerf(const PerfOptions& o) {
  CompileOptions co;
  co.num_threads = o.threads;
  co.optimize = !o.no_optimize;
  co.allow_blocked_layouts = !o.no_blocked;
  const auto algorithm = ParseConvAlgorithm(o.conv_algorithm);
  if (!algorithm) {
    std::fprintf(stderr, "error: --conv-algorithm '%s' is not one of auto, direct, winograd\n", o.conv_algorithm.c_str());
    return 1;
  }
  co.conv_algorithm = *algorithm;
  int64_t t0 = NowNs();
  auto model = LoadModel(o.model, co);
  if (!model.ok()) {
    std::fprintf(stderr, "error: %s\n", model.status().ToString().c_str());
    return 1;
  }
  double load_ms = (NowNs() - t0) / 1e6;
  auto shapes = ResolveInputShapes(**model, o.shapes, o.batch);
  if (!shapes.ok()) {
    std::fprintf(stderr, "error: %s\n", shapes.status().ToString().c_str());
    return 1;
  }
  std::vector<Tensor> inputs;
  std::vector<TensorView> views;
  for (size_t i = 0; i < shapes->size(); ++i) {
    // Integer inputs (token ids, masks) stay in [0, 2): valid for any embedding table or mask.
    auto t = RandomTensor((*model)->inputs()[i].dtype, (*shapes)[i], 1234 + static_cast<uint32_t>(i), 2);
    if (!t.ok()) {
      std::fprintf(stderr, "error: %s\n", t.status().ToString().c_str());
      return 1;
    }
    inputs.push_back(std::move(t).value());
    views.push_back(inputs.back().view());
  }
  if (o.precision == "int8" || o.precision == "bf16") return RunPerfReduced(o, **model, *shapes, views, co);
  if (o.precision != "fp32") {
    std::fprintf(stderr, "error: --precision %s: the CPU runs fp32, bf16 and int8\n", o.precision.c_str());
    return 1;
  }
  auto m = Measure(**model, o, *shapes, views);
  if (!m.ok()) {
    std::fprintf(stderr, "error: %s\n", m.status().ToString().c_str());
    return 1;
  }
  const PlanStats& st = m->stats;
  const LatencySummary& s = m->latency;
  double ratio = st.activation_bytes ? double(st.naive_activation_bytes) / st.activation_bytes : 0;
  if (o.json) {
    std::printf("{\"model\":\"%s\",\"batch\":%lld,\"threads\":%d,\"iterations\":%zu,%s,\"load_ms\":%.2f}\n",
                JsonEscape(o.model).c_str(), static_cast<long long>(o.batch), o.threads, m->iterations,
                MeasurementJson(*m).c_str(), load_ms);
  } else {
    std::printf("model       %s\n", o.model.c_str());
    std::printf("batch       %lld   threads %d   iterations %zu\n", static_cast<long long>(o.batch), o.threads,
                m->iterations);
    std::printf("latency     p50 %.3f ms   p90 %.3f ms   p99 %.3f ms   mean %.3f ms\n", s.p50_ms, s.p90_ms,
                s.p99_ms, s.mean_ms);
    std::printf("throughput  %.1f inferences/s\n", m->throughput);
    std::printf("weights     %s\n", FormatBytes(m->weight_bytes).c_str());
    std::printf("activations planned peak %s vs naive sum %s (%.1fx smaller)\n",
                FormatBytes(st.activation_bytes).c_str(), FormatBytes(st.naive_activation_bytes).c_str(), ratio);
    std::printf("arena       %s per run: activations and each step's workspace (largest %s)%s\n",
                FormatBytes(st.arena_bytes).c_str(), FormatBytes(st.step_workspace_bytes).c_str(),
                st.workspace_bytes > 0 ? fmt::format(", {} beside", FormatBytes(st.workspace_bytes)).c_str() : "");
    const double held = static_cast<double>(m->weight_bytes + st.arena_bytes + st.workspace_bytes);
    std::printf("resident    peak %s, %.2fx the weights and arena it holds (the process: libraries, heap)\n",
                FormatBytes(m->peak_rss_bytes).c_str(), held > 0 ? static_cast<double>(m->peak_rss_bytes) / held : 0.0);
    std::printf("steps       %zu%s\n", st.num_steps,
                st.dynamic ? "   (some steps prepared at run time: data-dependent shapes)" : "");
    std::printf("load        %.1f ms   prepare %.1f ms\n", load_ms, m->prepare_ms);
  }
  if (o.profile) PrintProfile(*m);
  return 0;
}

CommandRegistration kPerf("", "perf", "Measure a model's latency, throughput and memory plan", [](CLI::App& app) {
  auto o = std::make_shared<PerfOptions>();
  app.add_option("model", o->model, "model.onnx")->required();
  app.add_option("--batch,-b", o->batch, "batch size for the first dynamic dimension")->capture_default_str();
  app.add_option("--threads,-t", o->threads, "CPU threads")->capture_default_str();
  app.add_option("--iterations,-n", o->iterations, "timed iterations")->capture_default_str();
  app.add_option("--warmup", o->warmup, "untimed iterations first")->capture_default_str();
  app.add_option("--min-seconds", o->min_seconds, "keep iterating at least this long");
  app.add_option("--shape", o->shapes, "NAME=1x3x224x224 for inputs with other dynamic dims");
  app.add_flag("--json", o->json, "one JSON object");
  app.add_flag("--no-optimize", o->no_optimize, "run the graph as imported (no folding/fusion)");
  app.add_flag("--no-blocked", o->no_blocked, "keep activations in plain layouts");
  app.add_option("--conv-algorithm", o->conv_algorithm,
                 "FP32 3x3 convolutions: auto (Winograd where its copy adds little memory), direct (least "
                 "memory) or winograd (fastest)")
      ->capture_default_str();
  app.add_flag("--profile", o->profile,
               "print time per operator type (stderr); with --json, also the kernels' implementations");
  app.add_option("--precision", o->precision,
                 "int8: also quantize the model (gpuhive's INT8); bf16: also compile it for BF16 compute; either is "
                 "printed side by side with FP32, with its error against FP32")
      ->capture_default_str();
  app.add_option("--calibration", o->calibration, "INT8 calibration samples: DIR/<sample>/<input>.pb (TensorProto)");
  app.add_option("--calibration-method", o->calibration_method, "minmax, percentile or entropy")->capture_default_str();
  app.add_option("--int8-keep-float", o->int8_keep_float,
                 "INT8: keep the N activations whose quantization alone moves the outputs most in float (ranked on the "
                 "calibration samples; one compile per quantizable operator)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--validation", o->validation, "samples the error is measured on (default: the calibration ones)");
  return [o] { return RunPerf(*o); };
});

}  // namespace
}  // namespace gpuhive::cli
