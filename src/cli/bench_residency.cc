// `gpuhive bench residency`: what the residency manager is for, measured (issue "model residency").
//  1. swap latency (host tier -> device) for models of 1 MB .. 1 GB against bytes / measured
//     host-to-device bandwidth;
//  2. a trace of 20 models totalling 3x the budget (Zipf popularity plus pipeline-shaped
//     sequences): hit rate, p99 latency and bytes swapped for LRU vs the cost policy, with and
//     without predictive preloading;
//  3. a soak of >= 1M requests on small models with random unloads and budget changes: crashes,
//     failed requests, leaked bytes (tracking adaptor) and the resident set over time;
//  4. time to first result (Acquire of a model in the host tier -> its first output), pipelined
//     swap-in (weights copied on the copy engine while the request runs) vs not pipelined (the
//     whole copy first), for real models and synthetic ones of ~10 MB .. 1 GB, and the overlap.
// On a CPU-only machine the "device" is host memory behind the manager's budgeted pool.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cli/command.h"
#include "gpuhive/onnx_import.h"
#include "gpuhive/residency/manager.h"
#include "gpuhive/residency/synthetic_models.h"
#include "gpuhive/units.h"

namespace gpuhive::cli {
namespace {

using namespace gpuhive::residency;

struct Options {
  bool json = false;
  std::vector<double> swap_mb = {1, 4, 16, 64, 256, 1024};
  int swap_repeats = 3;
  int trace_requests = 2000;
  uint64_t soak_requests = 1'000'000;
  int soak_threads = 2;
  uint32_t seed = 7;
  std::vector<std::string> sections = {"swap", "trace", "soak", "ttfr"};
  std::vector<double> ttfr_mb = {10, 64, 256, 1024};
  std::string models_dir = "models/generated";
  int ttfr_repeats = 3;
  int ttfr_threads = 1;
};

ModelConfig ChainConfig(const std::string& name, int dim) {
  ModelConfig c;
  c.name = name;
  c.platform = "onnxruntime_onnx";
  c.max_batch_size = 8;
  c.inputs.push_back({"x", DataType::kFloat32, {dim}});
  c.outputs.push_back({"y", DataType::kFloat32, {dim}});
  return c;
}

Tensor Input(int dim, int rows = 1) {
  std::vector<float> v(static_cast<size_t>(dim * rows), 0.5f);
  return *Tensor::FromVector(DataType::kFloat32, {rows, dim}, v);
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(std::ceil(p * static_cast<double>(v.size()))) - 1;
  return v[std::min(i, v.size() - 1)];
}

// ---- 1. swap latency ----

struct SwapRow {
  uint64_t bytes = 0;
  double first_ms = 0;     // first Acquire: ONNX import into the host tier + swap-in
  double swap_ms = 0;      // median later Acquire of the model in the host tier (graph clone + compile + copy)
  double import_ms = 0;    // parsing the ONNX bytes into the graph alone
  double ideal_ms = 0;     // bytes / measured bandwidth
  double ratio = 0;
};

std::string RunSwap(const Options& o, double* bw_out, bool* ok) {
  std::vector<SwapRow> rows;
  double bw = 0;
  for (double mb : o.swap_mb) {
    uint64_t bytes = static_cast<uint64_t>(mb * 1024 * 1024);
    SyntheticModelSpec spec = SpecForBytes(bytes, 1);
    std::string onnx = MakeMatMulChainOnnx(spec);
    ManagerOptions mo;
    mo.budget_bytes = bytes * 3 + (64 << 20);
    mo.optimize = false;
    mo.enable_preloading = false;
    mo.housekeeping_interval_us = 0;
    mo.compile_threads = 2;
    mo.bandwidth_probe_bytes = 64ull << 20;
    mo.pipelined_swap = false;  // the swap time includes the whole copy (section 4 compares both)
    auto m = ModelManager::Create(mo);
    if (!m.ok()) {
      *ok = false;
      return m.status().ToString();
    }
    bw = (*m)->h2d_bytes_per_s();
    if (!(*m)->AddModel(ChainConfig("m", spec.dim), std::move(onnx)).ok()) *ok = false;
    std::vector<double> swaps, imports;
    uint64_t weight_bytes = 0;
    double first_ms = 0;
    for (int r = 0; r <= o.swap_repeats; ++r) {
      auto lease = (*m)->Acquire("m");
      if (!lease.ok()) {
        *ok = false;
        return lease.status().ToString();
      }
      if (r == 0) {
        first_ms = static_cast<double>(lease->swap_ns()) / 1e6;
      } else {
        swaps.push_back(static_cast<double>(lease->swap_ns()) / 1e6);
      }
      weight_bytes = lease->model().weight_bytes();
      lease->Release();
      if (!(*m)->Unload("m").ok()) *ok = false;  // device copy dropped, host copy kept
    }
    {
      // The import step alone (what a weight-only swap API would skip).
      std::string again = MakeMatMulChainOnnx(spec);
      for (int r = 0; r < std::min(o.swap_repeats, 2); ++r) {
        int64_t t0 = NowNs();
        auto g = ImportOnnxBytes(again);
        imports.push_back(static_cast<double>(NowNs() - t0) / 1e6);
        if (!g.ok()) *ok = false;
      }
    }
    SwapRow row;
    row.bytes = weight_bytes;
    row.first_ms = first_ms;
    row.swap_ms = Percentile(swaps, 0.5);
    row.import_ms = Percentile(imports, 0.5);
    row.ideal_ms = static_cast<double>(weight_bytes) / bw * 1e3;
    row.ratio = row.swap_ms / std::max(row.ideal_ms, 1e-9);
    rows.push_back(row);
  }
  *bw_out = bw;
  std::string out;
  if (o.json) {
    out += fmt::format("\"swap\": {{\"h2d_gb_per_s\": {:.2f}, \"rows\": [", bw / 1e9);
    for (size_t i = 0; i < rows.size(); ++i) {
      const auto& r = rows[i];
      out += fmt::format("{}{{\"bytes\": {}, \"first_load_ms\": {:.3f}, \"swap_ms\": {:.3f}, \"import_ms\": {:.3f}, "
                         "\"ideal_ms\": {:.3f}, \"ratio\": {:.2f}}}",
                         i ? ", " : "", r.bytes, r.first_ms, r.swap_ms, r.import_ms, r.ideal_ms, r.ratio);
    }
    out += "]}";
  } else {
    out += fmt::format("1. swap latency, host tier -> device (CPU: budgeted pool), measured H2D bandwidth {:.2f} GB/s\n",
                       bw / 1e9);
    out += fmt::format("   {:>12} {:>11} {:>11} {:>11} {:>13} {:>8}\n", "weights", "first ms", "swap ms", "import ms",
                       "bytes/bw ms", "ratio");
    for (const auto& r : rows) {
      out += fmt::format("   {:>12} {:>11.2f} {:>11.2f} {:>11.2f} {:>13.2f} {:>7.2f}x\n", FormatBytes(r.bytes),
                         r.first_ms, r.swap_ms, r.import_ms, r.ideal_ms, r.ratio);
    }
    out += "   swap (median of later loads) = clone of the host-tier graph (constants shared) + compile +\n"
           "   weight copy into the budgeted pool; ratio = swap / (bytes / bandwidth). first = the first\n"
           "   load, which also imports the ONNX bytes into the host tier (import ms alone).\n";
  }
  return out;
}

// ---- 2. trace ----

struct TraceResult {
  std::string policy;
  bool preload = false;
  double hit_rate = 0;
  double p50_ms = 0, p99_ms = 0;
  uint64_t bytes_swapped = 0;
  uint64_t preloads = 0, preload_hits = 0;
  uint64_t failures = 0;
  double wall_s = 0;
};

std::vector<std::string> MakeTrace(int n, int models, uint32_t seed) {
  std::mt19937 rng(seed);
  // Zipf(1.0) popularity over the 20 models.
  std::vector<double> w(static_cast<size_t>(models));
  for (int i = 0; i < models; ++i) w[static_cast<size_t>(i)] = 1.0 / (i + 1);
  std::discrete_distribution<int> zipf(w.begin(), w.end());
  // Four pipelines of three models each (A then B then C), drawn among the less popular models.
  std::vector<std::vector<int>> pipelines = {{4, 9, 14}, {5, 11, 17}, {7, 12, 19}, {8, 15, 18}};
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<std::string> trace;
  while (static_cast<int>(trace.size()) < n) {
    if (u(rng) < 0.5) {
      for (int m : pipelines[rng() % pipelines.size()]) trace.push_back("m" + std::to_string(m));
    } else {
      trace.push_back("m" + std::to_string(zipf(rng)));
    }
  }
  trace.resize(static_cast<size_t>(n));
  return trace;
}

TraceResult RunTraceOnce(const std::vector<std::string>& trace, bool lru, bool preload, bool* ok) {
  const int kModels = 20;
  std::vector<SyntheticModelSpec> specs;
  uint64_t total = 0;
  for (int i = 0; i < kModels; ++i) {
    SyntheticModelSpec s;
    s.dim = 256;
    s.layers = 2 + (i * 7) % 9;  // 0.5 .. 2.5 MiB of weights
    s.seed = static_cast<uint32_t>(i + 1);
    s.scale = 0.05f;
    total += static_cast<uint64_t>(s.layers) * 256 * 256 * 4;
    specs.push_back(s);
  }
  ManagerOptions mo;
  mo.budget_bytes = total / 3;
  mo.optimize = false;
  mo.enable_preloading = preload;
  mo.preload_min_probability = 0.3;
  mo.housekeeping_interval_us = 0;
  mo.policy = lru ? MakeLruPolicy() : MakeCostPolicy();
  mo.bandwidth_probe_bytes = 16 << 20;
  auto m = ModelManager::Create(mo);
  TraceResult r;
  r.policy = lru ? "lru" : "cost";
  r.preload = preload;
  if (!m.ok()) {
    *ok = false;
    return r;
  }
  for (int i = 0; i < kModels; ++i) {
    ModelConfig c = ChainConfig("m" + std::to_string(i), 256);
    c.priority = i < 4 ? 0 : 1;  // the four most popular models matter most
    if (!(*m)->AddModel(c, MakeMatMulChainOnnx(specs[static_cast<size_t>(i)])).ok()) *ok = false;
  }
  ExecutionContext ctx({.num_threads = 1, .memory = (*m)->memory()});
  Tensor x = Input(256);
  std::vector<double> lat;
  lat.reserve(trace.size());
  int64_t t_start = NowNs();
  for (const auto& name : trace) {
    int64_t t0 = NowNs();
    auto out = (*m)->RunBatch(name, ctx, {x.view()}, nullptr, {});
    if (!out.ok()) {
      ++r.failures;
      continue;
    }
    lat.push_back(static_cast<double>(NowNs() - t0) / 1e6);
  }
  r.wall_s = static_cast<double>(NowNs() - t_start) / 1e9;
  (*m)->WaitForPreloads();
  auto st = (*m)->Stats();
  r.hit_rate = st.hit_rate();
  r.p50_ms = Percentile(lat, 0.5);
  r.p99_ms = Percentile(lat, 0.99);
  r.bytes_swapped = st.bytes_swapped_in;
  r.preloads = st.preloads;
  r.preload_hits = st.preload_hits;
  return r;
}

std::string RunTrace(const Options& o, bool* ok) {
  auto trace = MakeTrace(o.trace_requests, 20, o.seed);
  std::vector<TraceResult> results;
  for (bool lru : {true, false}) {
    for (bool preload : {false, true}) results.push_back(RunTraceOnce(trace, lru, preload, ok));
  }
  std::string out;
  if (o.json) {
    out += fmt::format("\"trace\": {{\"requests\": {}, \"models\": 20, \"budget_fraction\": 0.333, \"results\": [",
                       trace.size());
    for (size_t i = 0; i < results.size(); ++i) {
      const auto& r = results[i];
      out += fmt::format("{}{{\"policy\": \"{}\", \"preload\": {}, \"hit_rate\": {:.4f}, \"p50_ms\": {:.3f}, "
                         "\"p99_ms\": {:.3f}, \"bytes_swapped\": {}, \"preloads\": {}, \"preload_hits\": {}, "
                         "\"failures\": {}}}",
                         i ? ", " : "", r.policy, r.preload ? "true" : "false", r.hit_rate, r.p50_ms, r.p99_ms,
                         r.bytes_swapped, r.preloads, r.preload_hits, r.failures);
    }
    out += "]}";
  } else {
    out += fmt::format("2. trace: {} requests over 20 models (0.5-2.5 MiB each), total 3x the budget, Zipf(1) plus\n"
                       "   A->B->C pipelines\n",
                       trace.size());
    out += fmt::format("   {:<6} {:<8} {:>9} {:>9} {:>9} {:>12} {:>9} {:>13} {:>6}\n", "policy", "preload", "hit rate",
                       "p50 ms", "p99 ms", "swapped", "preloads", "preload hits", "fail");
    for (const auto& r : results) {
      out += fmt::format("   {:<6} {:<8} {:>8.1f}% {:>9.2f} {:>9.2f} {:>12} {:>9} {:>13} {:>6}\n", r.policy,
                         r.preload ? "yes" : "no", 100 * r.hit_rate, r.p50_ms, r.p99_ms, FormatBytes(r.bytes_swapped),
                         r.preloads, r.preload_hits, r.failures);
    }
  }
  for (const auto& r : results) {
    if (r.failures > 0) *ok = false;
  }
  return out;
}

// ---- 3. soak ----

std::string RunSoak(const Options& o, bool* ok) {
  const int kModels = 12;
  const int kDim = 16;
  ManagerOptions mo;
  const uint64_t model_bytes = 2ull * kDim * kDim * 4;
  mo.budget_bytes = 10 * model_bytes + (64 << 10);
  mo.optimize = false;
  mo.enable_preloading = true;
  mo.housekeeping_interval_us = 20'000;
  mo.default_keep_alive_us = 200'000;
  mo.bandwidth_probe_bytes = 1 << 20;
  auto m = ModelManager::Create(mo);
  if (!m.ok()) {
    *ok = false;
    return m.status().ToString();
  }
  for (int i = 0; i < kModels; ++i) {
    SyntheticModelSpec s{.dim = kDim, .layers = 2, .seed = uint32_t(i + 1), .scale = 0.1f};
    if (!(*m)->AddModel(ChainConfig("s" + std::to_string(i), kDim), MakeMatMulChainOnnx(s)).ok()) *ok = false;
  }
  std::atomic<uint64_t> done{0}, failed{0}, unloads{0}, budget_changes{0};
  std::atomic<uint64_t> first_error_set{0};
  std::string first_error;
  std::vector<std::pair<uint64_t, uint64_t>> samples;  // (requests, used bytes)
  std::mutex sample_mu;
  const uint64_t per_thread = o.soak_requests / static_cast<uint64_t>(std::max(1, o.soak_threads));
  int64_t t0 = NowNs();
  auto worker = [&](int t) {
    std::mt19937 rng(static_cast<uint32_t>(o.seed * 31 + t));
    ExecutionContext ctx({.num_threads = 1, .memory = (*m)->memory()});
    Tensor x = Input(kDim);
    for (uint64_t i = 0; i < per_thread; ++i) {
      uint32_t r = rng();
      if (r % 2000 == 0) {
        (void)(*m)->Unload("s" + std::to_string(rng() % kModels));
        ++unloads;
      } else if (r % 2000 == 1) {
        (void)(*m)->SetBudget((4 + rng() % 10) * model_bytes + (64 << 10));
        ++budget_changes;
      }
      auto out = (*m)->RunBatch("s" + std::to_string(rng() % kModels), ctx, {x.view()}, nullptr, {});
      bool good = out.ok();
      Status err = out.ok() ? Status::OK() : out.status();
      if (!good) {
        ++failed;
        if (first_error_set.exchange(1) == 0) first_error = err.ToString();
      }
      uint64_t n = ++done;
      if (n % 100'000 == 0) {
        std::lock_guard<std::mutex> g(sample_mu);
        samples.emplace_back(n, (*m)->Stats().used_bytes);
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < std::max(1, o.soak_threads); ++t) threads.emplace_back(worker, t);
  for (auto& t : threads) t.join();
  double secs = static_cast<double>(NowNs() - t0) / 1e9;
  (*m)->WaitForPreloads();
  auto st = (*m)->Stats();
  PoolStats ps = (*m)->pool_stats();
  for (int i = 0; i < kModels; ++i) (void)(*m)->Unload("s" + std::to_string(i));
  uint64_t leaked = (*m)->outstanding_bytes();
  uint64_t min_used = UINT64_MAX, max_used = 0;
  for (auto& [n, u] : samples) {
    min_used = std::min(min_used, u);
    max_used = std::max(max_used, u);
  }
  if (samples.empty()) min_used = 0;
  if (failed > 0 || leaked > 0) *ok = false;
  std::string out;
  if (o.json) {
    out += fmt::format("\"soak\": {{\"requests\": {}, \"threads\": {}, \"seconds\": {:.2f}, \"failed\": {}, "
                       "\"unloads\": {}, \"budget_changes\": {}, \"evictions\": {}, \"loads\": {}, "
                       "\"hit_rate\": {:.4f}, \"leaked_bytes\": {}, \"resident_min_bytes\": {}, "
                       "\"resident_max_bytes\": {}, \"pool_peak_reserved_bytes\": {}, \"cpu_fallbacks\": {}}}",
                       done.load(), o.soak_threads, secs, failed.load(), unloads.load(), budget_changes.load(),
                       st.evictions, st.loads, st.hit_rate(), leaked, min_used, max_used, ps.peak_reserved_bytes,
                       st.cpu_fallbacks);
  } else {
    out += fmt::format("3. soak: {} requests on {} threads in {:.1f} s ({:.0f} req/s), {} unloads, {} budget changes\n",
                       done.load(), o.soak_threads, secs, static_cast<double>(done.load()) / secs, unloads.load(),
                       budget_changes.load());
    out += fmt::format("   failed requests {}, leaked bytes {} (tracking adaptor), loads {}, evictions {}, hit rate "
                       "{:.1f}%, cpu fallbacks {}\n",
                       failed.load(), leaked, st.loads, st.evictions, 100 * st.hit_rate(), st.cpu_fallbacks);
    out += fmt::format("   resident bytes sampled every 100k requests: min {} max {}; pool peak reserved {}\n",
                       FormatBytes(min_used), FormatBytes(max_used), FormatBytes(ps.peak_reserved_bytes));
    if (!first_error.empty()) out += "   first error: " + first_error + "\n";
  }
  return out;
}

// ---- 4. time to first result ----

struct TtfrRow {
  std::string model;
  uint64_t bytes = 0;      // weight bytes copied per swap-in
  double serial_ms = 0;    // not pipelined: Acquire (compile + whole copy) then the first run
  double pipelined_ms = 0; // pipelined: the run starts while the copy goes on
  double copy_ms = 0;      // the weight copy alone (copy engine)
  double ideal_ms = 0;     // bytes / measured bandwidth
  double overlap = 0;      // (serial - pipelined) / min(copy, serial - copy): share of the hideable time hidden
  std::string error;
};

// An input for every model input: dynamic dims are 1 for the first (batch) and 128 / 32 for
// later ones (integer inputs are token ids: all ones; float inputs 0.5).
StatusOr<std::vector<Tensor>> ZeroishInputs(const Executable& model) {
  std::vector<Tensor> out;
  for (const TensorInfo& info : model.inputs()) {
    Shape shape;
    for (size_t d = 0; d < info.shape.size(); ++d) {
      int64_t v = info.shape[d];
      shape.push_back(v >= 0 ? v : (d == 0 ? 1 : (info.dtype == DataType::kInt64 ? 128 : 32)));
    }
    ASSIGN_OR_RETURN(Tensor t, Tensor::Allocate(info.dtype, shape));
    const int64_t n = t.num_elements();
    if (info.dtype == DataType::kFloat32) {
      for (int64_t i = 0; i < n; ++i) t.as<float>()[i] = 0.5f;
    } else if (info.dtype == DataType::kInt64) {
      for (int64_t i = 0; i < n; ++i) t.as<int64_t>()[i] = 1;
    } else if (info.dtype == DataType::kInt32) {
      for (int64_t i = 0; i < n; ++i) t.as<int32_t>()[i] = 1;
    } else {
      std::memset(t.data(), 0, t.bytes());
    }
    out.push_back(std::move(t));
  }
  return out;
}

// Time to first result of `onnx` swapped in from the host tier, not pipelined and pipelined: two
// managers, measured alternately (so load changes on a shared machine hit both alike); medians.
Status MeasureTtfr(const Options& o, const std::string& onnx, bool optimize, TtfrRow* row, double* bw) {
  std::unique_ptr<ModelManager> managers[2];
  for (int p = 0; p < 2; ++p) {
    ManagerOptions mo;
    mo.budget_bytes = 16ull << 30;
    mo.optimize = optimize;
    mo.enable_preloading = false;
    mo.housekeeping_interval_us = 0;
    mo.compile_threads = o.ttfr_threads;
    mo.bandwidth_probe_bytes = 64ull << 20;
    mo.pipelined_swap = p == 1;
    ASSIGN_OR_RETURN(managers[p], ModelManager::Create(mo));
    *bw = managers[p]->h2d_bytes_per_s();
    ModelConfig c;
    c.name = "m";
    c.platform = "onnxruntime_onnx";
    RETURN_IF_ERROR(managers[p]->AddModel(c, onnx));
  }
  std::vector<double> ttfr[2], copies;
  std::vector<Tensor> inputs;
  std::vector<Tensor> results[2];  // the last outputs of each mode: they must be identical
  for (int r = 0; r <= o.ttfr_repeats; ++r) {
    for (int p = 0; p < 2; ++p) {
      ModelManager& m = *managers[p];
      ExecutionContext ctx({.num_threads = o.ttfr_threads, .memory = m.memory()});
      const int64_t t0 = NowNs();
      ASSIGN_OR_RETURN(ModelLease lease, m.Acquire("m"));
      if (inputs.empty()) {
        ASSIGN_OR_RETURN(inputs, ZeroishInputs(lease.model()));
      }
      std::vector<TensorView> views;
      for (const Tensor& t : inputs) views.push_back(t.view());
      ASSIGN_OR_RETURN(std::vector<Tensor> out, m.Run(lease, ctx, views));
      const int64_t t1 = NowNs();
      lease.Release();
      m.WaitForCopies();
      row->bytes = m.Stats().bytes_copied / static_cast<uint64_t>(r + 1);
      // The first round also imports the ONNX bytes into the host tier: not counted.
      if (r > 0) {
        ttfr[p].push_back(static_cast<double>(t1 - t0) / 1e6);
        if (p == 0) copies.push_back(static_cast<double>(m.ListModels()[0].last_copy_ns) / 1e6);
      }
      results[p] = std::move(out);
      ctx.ReleaseArena();
      RETURN_IF_ERROR(m.Unload("m"));  // device copy dropped, host copy kept
    }
  }
  for (size_t i = 0; i < results[0].size() || i < results[1].size(); ++i) {
    if (i >= results[0].size() || i >= results[1].size() || results[0][i].bytes() != results[1][i].bytes() ||
        std::memcmp(results[0][i].data(), results[1][i].data(), results[0][i].bytes()) != 0) {
      return Internal("output {} differs between the pipelined and the non-pipelined swap-in", i);
    }
  }
  row->serial_ms = Percentile(ttfr[0], 0.5);
  row->pipelined_ms = Percentile(ttfr[1], 0.5);
  row->copy_ms = Percentile(copies, 0.5);
  return Status::OK();
}

std::string RunTtfr(const Options& o, bool* ok) {
  std::vector<std::pair<std::string, std::string>> models;  // name, ONNX bytes
  std::error_code ec;
  if (!o.models_dir.empty() && std::filesystem::is_directory(o.models_dir, ec)) {
    std::vector<std::filesystem::path> files;
    for (const auto& f : std::filesystem::directory_iterator(o.models_dir, ec)) {
      if (f.path().extension() == ".onnx") files.push_back(f.path());
    }
    std::sort(files.begin(), files.end(), [](const auto& a, const auto& b) {
      return std::filesystem::file_size(a) < std::filesystem::file_size(b);
    });
    for (const auto& f : files) {
      std::ifstream in(f, std::ios::binary);
      std::stringstream ss;
      ss << in.rdbuf();
      models.emplace_back(f.stem().string(), ss.str());
    }
  }
  for (double mb : o.ttfr_mb) {
    SyntheticModelSpec spec = SpecForBytes(static_cast<uint64_t>(mb * 1024 * 1024), 3);
    models.emplace_back(fmt::format("synthetic {} MiB ({}x{}x{})", mb, spec.layers, spec.dim, spec.dim),
                        MakeMatMulChainOnnx(spec));
  }
  std::vector<TtfrRow> rows;
  double bw = 0;
  for (auto& [name, onnx] : models) {
    TtfrRow row;
    row.model = name;
    const bool synthetic = name.rfind("synthetic", 0) == 0;
    Status st = MeasureTtfr(o, onnx, !synthetic, &row, &bw);
    onnx.clear();
    onnx.shrink_to_fit();
    if (!st.ok()) {
      row.error = st.ToString();
      *ok = false;
    }
    row.ideal_ms = bw > 0 ? static_cast<double>(row.bytes) / bw * 1e3 : 0;
    const double hideable = std::min(row.copy_ms, row.serial_ms - row.copy_ms);
    row.overlap = hideable > 0 ? (row.serial_ms - row.pipelined_ms) / hideable : 0;
    rows.push_back(std::move(row));
  }
  std::string out;
  if (o.json) {
    out += fmt::format("\"ttfr\": {{\"h2d_gb_per_s\": {:.2f}, \"rows\": [", bw / 1e9);
    for (size_t i = 0; i < rows.size(); ++i) {
      const auto& r = rows[i];
      out += fmt::format("{}{{\"model\": \"{}\", \"bytes\": {}, \"serial_ms\": {:.3f}, \"pipelined_ms\": {:.3f}, "
                         "\"copy_ms\": {:.3f}, \"ideal_ms\": {:.3f}, \"overlap\": {:.3f}, \"error\": \"{}\"}}",
                         i ? ", " : "", r.model, r.bytes, r.serial_ms, r.pipelined_ms, r.copy_ms, r.ideal_ms,
                         r.overlap, r.error);
    }
    out += "]}";
  } else {
    out += fmt::format("4. time to first result after Acquire of a model in the host tier, measured H2D bandwidth "
                       "{:.2f} GB/s (median of {})\n",
                       bw / 1e9, o.ttfr_repeats);
    out += fmt::format("   {:<34} {:>10} {:>12} {:>12} {:>9} {:>9} {:>9} {:>8} {:>8}\n", "model", "weights",
                       "serial ms", "pipelined ms", "hidden ms", "copy ms", "bw ms", "speedup", "overlap");
    for (const auto& r : rows) {
      if (!r.error.empty()) {
        out += fmt::format("   {:<34} error: {}\n", r.model, r.error);
        continue;
      }
      out += fmt::format("   {:<34} {:>10} {:>12.2f} {:>12.2f} {:>9.2f} {:>9.2f} {:>9.2f} {:>7.2f}x {:>7.0f}%\n", r.model,
                         FormatBytes(r.bytes), r.serial_ms, r.pipelined_ms, r.serial_ms - r.pipelined_ms, r.copy_ms,
                         r.ideal_ms, r.serial_ms / std::max(r.pipelined_ms, 1e-9), 100 * r.overlap);
    }
    out += "   serial = Acquire (graph clone + compile + the whole weight copy) + first run; pipelined = the\n"
           "   run starts after compile, each step waiting for its weights on the copy engine (modes measured\n"
           "   alternately). hidden = serial - pipelined; overlap = hidden / min(copy, serial - copy), the share\n"
           "   of the hideable time that was hidden (noise when the copy is a small part of the total).\n"
           "   Real models are compiled with optimization, synthetic MatMul chains without.\n";
  }
  return out;
}

int RunBenchResidency(const Options& o) {
  bool ok = true;
  std::vector<std::string> parts;
  auto has = [&](const char* s) { return std::find(o.sections.begin(), o.sections.end(), s) != o.sections.end(); };
  double bw = 0;
  if (has("swap")) parts.push_back(RunSwap(o, &bw, &ok));
  if (has("trace")) parts.push_back(RunTrace(o, &ok));
  if (has("soak")) parts.push_back(RunSoak(o, &ok));
  if (has("ttfr")) parts.push_back(RunTtfr(o, &ok));
  if (o.json) {
    std::string s = "{";
    for (size_t i = 0; i < parts.size(); ++i) s += (i ? ", " : "") + parts[i];
    s += fmt::format(", \"ok\": {}}}", ok ? "true" : "false");
    std::puts(s.c_str());
  } else {
    for (const auto& p : parts) std::fputs(p.c_str(), stdout);
    std::puts(ok ? "ok" : "FAILED (see above)");
  }
  return ok ? 0 : 1;
}

CommandRegistration kRegistration(
    "bench", "residency",
    "Model residency: swap latency vs bandwidth, LRU vs cost eviction with/without preloading, 1M-request soak",
    [](CLI::App& app) {
      auto opts = std::make_shared<Options>();
      app.add_flag("--json", opts->json, "print JSON");
      app.add_option("--swap-mb", opts->swap_mb, "model sizes (MiB of weights) for the swap section")
          ->capture_default_str();
      app.add_option("--swap-repeats", opts->swap_repeats, "swaps per size (median reported)")->capture_default_str();
      app.add_option("--trace-requests", opts->trace_requests, "requests in the trace section")->capture_default_str();
      app.add_option("--soak-requests", opts->soak_requests, "requests in the soak section")->capture_default_str();
      app.add_option("--soak-threads", opts->soak_threads, "client threads in the soak")->capture_default_str();
      app.add_option("--seed", opts->seed, "seed of the trace and soak")->capture_default_str();
      app.add_option("--sections", opts->sections, "any of swap, trace, soak, ttfr")->capture_default_str();
      app.add_option("--ttfr-mb", opts->ttfr_mb, "synthetic model sizes (MiB) for the time-to-first-result section")
          ->capture_default_str();
      app.add_option("--models-dir", opts->models_dir, "real ONNX models for the time-to-first-result section")
          ->capture_default_str();
      app.add_option("--ttfr-repeats", opts->ttfr_repeats, "swap-ins per model and mode (median reported)")
          ->capture_default_str();
      app.add_option("--ttfr-threads", opts->ttfr_threads, "compute threads of the first run")->capture_default_str();
      return [opts] { return RunBenchResidency(*opts); };
    });

}  // namespace
}  // namespace gpuhive::cli
