// `gpuhive perf MODEL`: latency percentiles, throughput, weight bytes and the planned activation
// peak beside the naive sum of all intermediates.
#include <algorithm>
#include <map>

#include "cli/command.h"
#include "cli/model_util.h"
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
  bool profile = false;
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

int RunPerf(const PerfOptions& o) {
  CompileOptions co;
  co.num_threads = o.threads;
  co.optimize = !o.no_optimize;
  co.allow_blocked_layouts = !o.no_blocked;
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
  int64_t p0 = NowNs();
  auto stats = (*model)->Prepare(*shapes);
  if (!stats.ok()) {
    std::fprintf(stderr, "error: %s\n", stats.status().ToString().c_str());
    return 1;
  }
  double prepare_ms = (NowNs() - p0) / 1e6;
  ExecutionContext::Options eo;
  eo.num_threads = o.threads;
  eo.profile = o.profile;
  ExecutionContext ctx(eo);
  std::map<std::string, std::pair<int64_t, int>> by_op;  // op -> (total ns, count)
  for (int i = 0; i < o.warmup; ++i) {
    auto r = (*model)->Run(ctx, views);
    if (!r.ok()) {
      std::fprintf(stderr, "error: %s\n", r.status().ToString().c_str());
      return 1;
    }
  }
  std::vector<double> lat;
  int64_t start = NowNs();
  for (int i = 0; i < o.iterations || (NowNs() - start) / 1e9 < o.min_seconds; ++i) {
    int64_t a = NowNs();
    auto r = (*model)->Run(ctx, views);
    if (!r.ok()) {
      std::fprintf(stderr, "error: %s\n", r.status().ToString().c_str());
      return 1;
    }
    lat.push_back((NowNs() - a) / 1e6);
    for (const auto& st : ctx.step_times()) {
      by_op[st.op].first += st.ns;
      by_op[st.op].second++;
    }
  }
  double total_s = (NowNs() - start) / 1e9;
  LatencySummary s = Summarize(lat);
  double throughput = o.batch * lat.size() / total_s;
  double ratio = stats->arena_bytes ? double(stats->naive_activation_bytes) / stats->arena_bytes : 0;
  if (o.json) {
    std::printf(
        "{\"model\":\"%s\",\"batch\":%lld,\"threads\":%d,\"iterations\":%zu,\"p50_ms\":%.4f,\"p90_ms\":%.4f,"
        "\"p99_ms\":%.4f,\"mean_ms\":%.4f,\"min_ms\":%.4f,\"throughput_per_s\":%.2f,\"weight_bytes\":%zu,"
        "\"arena_bytes\":%zu,\"naive_activation_bytes\":%zu,\"workspace_bytes\":%zu,\"steps\":%zu,"
        "\"dynamic\":%s,\"load_ms\":%.2f,\"prepare_ms\":%.2f,\"implementations\":{%s}}\n",
        o.model.c_str(), static_cast<long long>(o.batch), o.threads, lat.size(), s.p50_ms, s.p90_ms, s.p99_ms,
        s.mean_ms, s.min_ms, throughput, (*model)->weight_bytes(), stats->arena_bytes,
        stats->naive_activation_bytes, stats->workspace_bytes, stats->num_steps, stats->dynamic ? "true" : "false",
        load_ms, prepare_ms, ImplementationsJson(ctx.step_times()).c_str());
  } else {
    std::printf("model       %s\n", o.model.c_str());
    std::printf("batch       %lld   threads %d   iterations %zu\n", static_cast<long long>(o.batch), o.threads,
                lat.size());
    std::printf("latency     p50 %.3f ms   p90 %.3f ms   p99 %.3f ms   mean %.3f ms\n", s.p50_ms, s.p90_ms,
                s.p99_ms, s.mean_ms);
    std::printf("throughput  %.1f inferences/s\n", throughput);
    std::printf("weights     %s\n", FormatBytes((*model)->weight_bytes()).c_str());
    std::printf("activations planned peak %s vs naive sum %s (%.1fx smaller)\n",
                FormatBytes(stats->arena_bytes).c_str(), FormatBytes(stats->naive_activation_bytes).c_str(), ratio);
    std::printf("workspace   %s   steps %zu%s\n", FormatBytes(stats->workspace_bytes).c_str(), stats->num_steps,
                stats->dynamic ? "   (some steps prepared at run time: data-dependent shapes)" : "");
    std::printf("load        %.1f ms   prepare %.1f ms\n", load_ms, prepare_ms);
  }
  if (o.profile) {
    std::vector<std::pair<int64_t, std::string>> rows;
    int64_t total = 0;
    for (const auto& [op, v] : by_op) {
      rows.push_back({v.first, op});
      total += v.first;
    }
    std::sort(rows.rbegin(), rows.rend());
    std::fprintf(stderr, "per-operator time (mean per run):\n");
    for (const auto& [ns, op] : rows) {
      std::fprintf(stderr, "  %-28s %9.3f ms  %5.1f%%  (%d steps/run)\n", op.c_str(), ns / 1e6 / lat.size(),
                   100.0 * ns / std::max<int64_t>(total, 1), by_op[op].second / static_cast<int>(lat.size()));
    }
  }
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
  app.add_flag("--profile", o->profile,
               "print time per operator type (stderr); with --json, also the kernels' implementations");
  return [o] { return RunPerf(*o); };
});

}  // namespace
}  // namespace gpuhive::cli
