// `gpuhive bench memory`: the memory subsystem's claims measured side by side in one run:
//   1. allocation speed: median and p99 ns per allocate+free pair, sizes log-uniform in
//      [256 B, 64 MiB], 1 and 2 threads: the pool (segments and expandable range) vs the host
//      allocator, plus cudaMalloc / cudaMallocAsync / the pool on a VMM range when a GPU is present;
//   2. fragmentation on replayed allocation traces: the pool vs a naive first-fit buffer (and
//      cudaMallocAsync on a GPU), all under the same byte budget: peak reserved / peak requested
//      and the number of allocations that fail while the trace's live bytes stay under the budget.
// The default trace is SYNTHETIC (GenerateExecutorTrace mimics the executor's pattern); pass
// --trace FILE to replay a recorded one (e.g. bench/traces/*.trace).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cli/command.h"
#include "gpuhive/memory/adaptors.h"
#include "gpuhive/memory/naive_resource.h"
#include "gpuhive/memory/pool_resource.h"
#include "gpuhive/memory/trace.h"
#include "gpuhive/memory/upstreams.h"
#include "gpuhive/units.h"

namespace gpuhive::cli {
namespace {

using nlohmann::json;

struct Options {
  bool json = false;
  std::string trace_path;
  std::string write_trace_path;
  int iterations = 100000;  // allocate+free pairs per thread per resource
  uint64_t seed = 1;
  std::vector<double> budget_factors = {1.05, 1.10};
  bool skip_speed = false;
  bool skip_replay = false;
};

// ---- 1. allocation speed ------------------------------------------------------------------------

struct SpeedResult {
  std::string resource;
  int threads = 0;
  double median_ns = 0, p99_ns = 0, mean_ns = 0;
  uint64_t failures = 0;
};

// Each thread keeps a ring of 16 live allocations; one sample = free the oldest + allocate a new
// one (so the allocator is measured with live neighbours, not on an empty heap).
void SpeedWorker(MemoryResource* mr, uint64_t seed, int iterations, StreamView stream, std::vector<int64_t>* out,
                 uint64_t* failures) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> d(std::log(256.0), std::log(double(64ull << 20)));
  std::vector<size_t> sizes(static_cast<size_t>(iterations) + 16);
  for (size_t& s : sizes) s = static_cast<size_t>(std::exp(d(rng)));
  constexpr int kRing = 16;
  void* ptrs[kRing] = {};
  size_t bytes[kRing] = {};
  for (int i = 0; i < kRing; ++i) {
    auto r = mr->Allocate(sizes[i], {}, stream);
    if (r.ok()) {
      ptrs[i] = *r;
      bytes[i] = sizes[i];
    }
  }
  out->reserve(static_cast<size_t>(iterations));
  for (int i = 0; i < iterations; ++i) {
    int slot = i % kRing;
    size_t n = sizes[static_cast<size_t>(i) + kRing];
    int64_t t0 = NowNs();
    mr->Deallocate(ptrs[slot], bytes[slot], {}, stream);
    auto r = mr->Allocate(n, {}, stream);
    int64_t t1 = NowNs();
    if (r.ok()) {
      ptrs[slot] = *r;
      bytes[slot] = n;
    } else {
      ptrs[slot] = nullptr;
      bytes[slot] = 0;
      ++*failures;
    }
    out->push_back(t1 - t0);
  }
  for (int i = 0; i < kRing; ++i) mr->Deallocate(ptrs[i], bytes[i], {}, stream);
}

double Quantile(std::vector<int64_t>& v, double q) {
  if (v.empty()) return 0;
  size_t k = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return static_cast<double>(v[k]);
}

SpeedResult MeasureSpeed(const std::string& label, MemoryResource* mr, int threads, const Options& o) {
  std::vector<std::vector<int64_t>> samples(static_cast<size_t>(threads));
  std::vector<uint64_t> failures(static_cast<size_t>(threads), 0);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back(SpeedWorker, mr, o.seed * 1000 + static_cast<uint64_t>(t), o.iterations, StreamView{},
                         &samples[static_cast<size_t>(t)], &failures[static_cast<size_t>(t)]);
  }
  for (auto& w : workers) w.join();
  std::vector<int64_t> all;
  SpeedResult r{label, threads};
  for (size_t t = 0; t < samples.size(); ++t) {
    all.insert(all.end(), samples[t].begin(), samples[t].end());
    r.failures += failures[t];
  }
  double sum = 0;
  for (int64_t x : all) sum += static_cast<double>(x);
  r.mean_ns = all.empty() ? 0 : sum / static_cast<double>(all.size());
  r.median_ns = Quantile(all, 0.5);
  r.p99_ns = Quantile(all, 0.99);
  return r;
}

// ---- 2. fragmentation on replayed traces ----------------------------------------------------------

struct ReplayRow {
  std::string design;
  std::string budget;  // "1.05x" or "none"
  uint64_t budget_bytes = 0;
  uint64_t peak_requested = 0;
  uint64_t peak_reserved = 0;
  uint64_t failures = 0;
  uint64_t failures_under_budget = 0;
  double reuse_rate = -1;         // pools only
  double max_external_frag = -1;  // sampled during the replay
  double mean_external_frag = -1;
  double elapsed_ms = 0;
  std::string note;
};

StatusOr<std::unique_ptr<PoolResource>> MakeHostPool(bool expandable, uint64_t limit) {
  PoolResource::Options po;
  po.reserve_limit_bytes = limit;
  if (expandable) {
    // Address space is cheap: reserve 4x the budget (at least 64 GiB) of PROT_NONE pages.
    uint64_t reserve = std::max<uint64_t>(64ull << 30, limit == UINT64_MAX ? 0 : 4 * limit);
    ASSIGN_OR_RETURN(po.range, CreateHostVirtualRange(reserve, 2u << 20));
    po.label = "pool-expandable";
  } else {
    po.label = "pool-segments";
  }
  return PoolResource::Create(std::move(po));
}

StatusOr<ReplayRow> ReplayPool(const Trace& trace, PoolResource* pool, const std::string& design,
                               const std::string& budget_label, uint64_t budget) {
  ReplayRow row;
  row.design = design;
  row.budget = budget_label;
  row.budget_bytes = budget;
  double frag_sum = 0, frag_max = 0;
  uint64_t samples = 0;
  ReplayOptions ro;
  ro.budget_bytes = budget;
  ro.sample_every = 997;
  ro.on_sample = [&] {
    PoolStats s = pool->GetPoolStats();
    if (s.free_bytes == 0) return;
    double f = s.external_fragmentation();
    frag_sum += f;
    frag_max = std::max(frag_max, f);
    ++samples;
  };
  ASSIGN_OR_RETURN(ReplayResult r, ReplayTrace(trace, pool, ro));
  PoolStats s = pool->GetPoolStats();
  row.peak_requested = r.peak_requested_bytes;
  row.peak_reserved = s.peak_reserved_bytes;
  row.failures = r.failures;
  row.failures_under_budget = r.failures_under_budget;
  row.reuse_rate = s.reuse_rate();
  row.max_external_frag = frag_max;
  row.mean_external_frag = samples ? frag_sum / static_cast<double>(samples) : 0;
  row.elapsed_ms = static_cast<double>(r.elapsed_ns) / 1e6;
  if (!r.first_error.empty()) row.note = r.first_error;
  return row;
}

StatusOr<std::vector<ReplayRow>> ReplayAll(const Trace& trace, const Options& o) {
  TraceSummary sum = SummarizeTrace(trace);
  std::vector<ReplayRow> rows;
  {  // the pool's natural behaviour, no budget
    for (bool expandable : {false, true}) {
      ASSIGN_OR_RETURN(auto pool, MakeHostPool(expandable, UINT64_MAX));
      ASSIGN_OR_RETURN(ReplayRow row, ReplayPool(trace, pool.get(), pool->name(), "none", UINT64_MAX));
      rows.push_back(row);
    }
  }
  for (double f : o.budget_factors) {
    uint64_t budget = AlignUp(static_cast<uint64_t>(static_cast<double>(sum.peak_live_bytes) * f), 256);
    std::string label = fmt::format("{:.2f}x", f);
    {
      ASSIGN_OR_RETURN(auto ff, FirstFitResource::Create(budget));
      double frag_sum = 0, frag_max = 0;
      uint64_t samples = 0;
      ReplayOptions ro;
      ro.budget_bytes = budget;
      ro.sample_every = 997;
      ro.on_sample = [&] {
        size_t free_bytes = ff->free_bytes();
        if (free_bytes == 0) return;
        double x = 1.0 - double(ff->largest_free_block()) / double(free_bytes);
        frag_sum += x;
        frag_max = std::max(frag_max, x);
        ++samples;
      };
      ASSIGN_OR_RETURN(ReplayResult r, ReplayTrace(trace, ff.get(), ro));
      ReplayRow row;
      row.design = ff->name() + " (naive: one buffer, first fit)";
      row.budget = label;
      row.budget_bytes = budget;
      row.peak_requested = r.peak_requested_bytes;
      row.peak_reserved = ff->capacity();  // the whole buffer is taken up front
      row.failures = r.failures;
      row.failures_under_budget = r.failures_under_budget;
      row.max_external_frag = frag_max;
      row.mean_external_frag = samples ? frag_sum / static_cast<double>(samples) : 0;
      row.elapsed_ms = static_cast<double>(r.elapsed_ns) / 1e6;
      row.note = r.first_error;
      rows.push_back(row);
    }
    for (bool expandable : {false, true}) {
      ASSIGN_OR_RETURN(auto pool, MakeHostPool(expandable, budget));
      ASSIGN_OR_RETURN(ReplayRow row, ReplayPool(trace, pool.get(), pool->name(), label, budget));
      rows.push_back(row);
    }
    if (CudaDeviceCount() > 0) {
      // cudaMallocAsync under the same budget (a limit adaptor on live bytes; the driver pool's
      // own reserved bytes are not visible through this interface).
      auto async = CreateCudaAsyncResource(0);
      if (async.ok()) {
        LimitResource::Options lo;
        lo.total_limit_bytes = budget;
        LimitResource limited(async->get(), lo);
        ASSIGN_OR_RETURN(ReplayResult r, ReplayTrace(trace, &limited, {.budget_bytes = budget}));
        ReplayRow row;
        row.design = (*async)->name();
        row.budget = label;
        row.budget_bytes = budget;
        row.peak_requested = r.peak_requested_bytes;
        row.failures = r.failures;
        row.failures_under_budget = r.failures_under_budget;
        row.elapsed_ms = static_cast<double>(r.elapsed_ns) / 1e6;
        row.note = "peak reserved not reported by cudaMallocAsync";
        rows.push_back(row);
      }
      auto range = CreateCudaVirtualRange(0, std::max<uint64_t>(4 * budget, 16ull << 30));
      if (range.ok()) {
        PoolResource::Options po;
        po.range = std::move(*range);
        po.reserve_limit_bytes = budget;
        po.label = "pool-expandable";
        ASSIGN_OR_RETURN(auto pool, PoolResource::Create(std::move(po)));
        ASSIGN_OR_RETURN(ReplayRow row, ReplayPool(trace, pool.get(), pool->name(), label, budget));
        rows.push_back(row);
      }
    }
  }
  return rows;
}

std::string Mb(uint64_t b) { return fmt::format("{:.1f}", double(b) / double(1 << 20)); }

int RunBenchMemory(const Options& o) {
  if (o.iterations <= 0) {
    std::fprintf(stderr, "error: --iterations must be positive\n");
    return 2;
  }
  for (double f : o.budget_factors) {
    if (!(f >= 1.0) || f > 100) {
      std::fprintf(stderr, "error: --budget-factor %.3f must be in [1, 100]\n", f);
      return 2;
    }
  }
  json out;
  out["machine"] = {{"cpus", std::thread::hardware_concurrency()}, {"cuda_devices", CudaDeviceCount()}};

  // 1. speed
  std::vector<SpeedResult> speed;
  if (!o.skip_speed) {
    struct Named {
      std::string label;
      MemoryResource* mr;
    };
    std::vector<std::unique_ptr<MemoryResource>> owned;
    std::vector<Named> resources = {{"host (aligned_alloc)", DefaultHostResource()}};
    for (bool expandable : {false, true}) {
      auto pool = MakeHostPool(expandable, UINT64_MAX);
      if (!pool.ok()) {
        std::fprintf(stderr, "error: %s\n", pool.status().ToString().c_str());
        return 1;
      }
      resources.push_back({(*pool)->name(), pool->get()});
      owned.push_back(std::move(*pool));
    }
    if (CudaDeviceCount() > 0) {
      for (auto make : {&CreateCudaDeviceResource, &CreateCudaAsyncResource}) {
        auto mr = make(0);
        if (mr.ok()) {
          resources.push_back({(*mr)->name(), mr->get()});
          owned.push_back(std::move(*mr));
        }
      }
      auto range = CreateCudaVirtualRange(0, 64ull << 30);
      if (range.ok()) {
        PoolResource::Options po;
        po.range = std::move(*range);
        po.label = "pool-expandable";
        auto pool = PoolResource::Create(std::move(po));
        if (pool.ok()) {
          resources.push_back({(*pool)->name(), pool->get()});
          owned.push_back(std::move(*pool));
        }
      }
    }
    for (const Named& r : resources) {
      for (int threads : {1, 2}) speed.push_back(MeasureSpeed(r.label, r.mr, threads, o));
    }
    json js = json::array();
    for (const SpeedResult& s : speed) {
      js.push_back({{"resource", s.resource}, {"threads", s.threads}, {"median_ns", s.median_ns},
                    {"p99_ns", s.p99_ns}, {"mean_ns", s.mean_ns}, {"failures", s.failures}});
    }
    out["speed"] = {{"sizes", "log-uniform 256 B .. 64 MiB"},
                    {"sample", "free of the oldest of 16 live blocks + one allocation"},
                    {"pairs_per_thread", o.iterations},
                    {"target_median_ns", 1000},
                    {"results", js}};
  }

  // 2. replay
  Trace trace;
  std::string trace_label;
  if (!o.skip_replay) {
    if (!o.trace_path.empty()) {
      auto t = ReadTraceFile(o.trace_path);
      if (!t.ok()) {
        std::fprintf(stderr, "error: %s\n", t.status().ToString().c_str());
        return 1;
      }
      trace = std::move(*t);
      trace_label = "recorded trace " + o.trace_path;
    } else {
      ExecutorWorkloadOptions wo;
      wo.seed = o.seed;
      trace = GenerateExecutorTrace(wo);
      trace_label = "SYNTHETIC executor workload (GenerateExecutorTrace; not recorded from the runtime)";
    }
    if (!o.write_trace_path.empty()) {
      Status s = WriteTraceFile(trace, o.write_trace_path);
      if (!s.ok()) {
        std::fprintf(stderr, "error: %s\n", s.ToString().c_str());
        return 1;
      }
    }
    TraceSummary sum = SummarizeTrace(trace);
    if (sum.num_allocations == 0) {
      std::fprintf(stderr, "error: the trace has no allocations\n");
      return 1;
    }
    auto rows = ReplayAll(trace, o);
    if (!rows.ok()) {
      std::fprintf(stderr, "error: %s\n", rows.status().ToString().c_str());
      return 1;
    }
    json jr = json::array();
    for (const ReplayRow& r : *rows) {
      json row = {{"design", r.design},
                  {"budget", r.budget},
                  {"budget_bytes", r.budget == "none" ? json(nullptr) : json(r.budget_bytes)},
                  {"peak_requested_bytes", r.peak_requested},
                  {"peak_reserved_bytes", r.peak_reserved ? json(r.peak_reserved) : json(nullptr)},
                  {"peak_reserved_over_requested",
                   r.peak_reserved && r.peak_requested ? json(double(r.peak_reserved) / double(r.peak_requested))
                                                       : json(nullptr)},
                  {"failures", r.failures},
                  {"failures_under_budget", r.failures_under_budget},
                  {"replay_ms", r.elapsed_ms}};
      if (r.reuse_rate >= 0) row["reuse_rate"] = r.reuse_rate;
      if (r.max_external_frag >= 0) {
        row["external_fragmentation_max"] = r.max_external_frag;
        row["external_fragmentation_mean"] = r.mean_external_frag;
      }
      if (!r.note.empty()) row["note"] = r.note;
      jr.push_back(row);
    }
    out["replay"] = {{"trace", trace_label},
                     {"description", trace.description},
                     {"events", trace.events.size()},
                     {"allocations", sum.num_allocations},
                     {"owners", sum.num_owners},
                     {"peak_live_bytes", sum.peak_live_bytes},
                     {"min_bytes", sum.min_bytes},
                     {"max_bytes", sum.max_bytes},
                     {"target_peak_reserved_over_requested", 1.05},
                     {"results", jr}};
  }

  if (o.json) {
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  std::printf("gpuhive bench memory  (%u CPUs, %d CUDA devices)\n", std::thread::hardware_concurrency(),
              CudaDeviceCount());
  if (!o.skip_speed) {
    std::printf("\n1. Allocation speed: ns per free+allocate pair, sizes log-uniform 256 B..64 MiB, "
                "16 live blocks per thread, %d pairs per thread (target: median <= 1000 ns)\n",
                o.iterations);
    std::printf("  %-34s %7s %10s %10s %10s %8s\n", "resource", "threads", "median", "p99", "mean", "fails");
    for (const SpeedResult& s : speed) {
      std::printf("  %-34s %7d %10.0f %10.0f %10.0f %8llu\n", s.resource.c_str(), s.threads, s.median_ns, s.p99_ns,
                  s.mean_ns, static_cast<unsigned long long>(s.failures));
    }
  }
  if (!o.skip_replay) {
    const json& r = out["replay"];
    std::printf("\n2. Fragmentation on a replayed trace: %s\n", trace_label.c_str());
    std::printf("   %zu events, %llu allocations, %u owners, peak live %s MiB, sizes %llu B..%s MiB\n",
                trace.events.size(), static_cast<unsigned long long>(r["allocations"].get<uint64_t>()),
                r["owners"].get<unsigned>(), Mb(r["peak_live_bytes"].get<uint64_t>()).c_str(),
                static_cast<unsigned long long>(r["min_bytes"].get<uint64_t>()),
                Mb(r["max_bytes"].get<uint64_t>()).c_str());
    std::printf("   budget = factor x peak live bytes; target: peak reserved/requested <= 1.05, 0 failures under budget\n");
    std::printf("  %-48s %7s %11s %11s %9s %6s %7s %6s %9s\n", "design", "budget", "peak req", "peak res",
                "res/req", "fails", "reuse", "frag", "replay");
    std::printf("  %-48s %7s %11s %11s %9s %6s %7s %6s %9s\n", "", "", "MiB", "MiB", "", "<bud", "rate", "max",
                "ms");
    for (const json& row : r["results"]) {
      std::string ratio = row["peak_reserved_over_requested"].is_null()
                              ? "n/a"
                              : fmt::format("{:.3f}", row["peak_reserved_over_requested"].get<double>());
      std::string res = row["peak_reserved_bytes"].is_null() ? "n/a" : Mb(row["peak_reserved_bytes"].get<uint64_t>());
      std::string reuse = row.contains("reuse_rate") ? fmt::format("{:.3f}", row["reuse_rate"].get<double>()) : "-";
      std::string frag = row.contains("external_fragmentation_max")
                             ? fmt::format("{:.2f}", row["external_fragmentation_max"].get<double>())
                             : "-";
      std::printf("  %-48s %7s %11s %11s %9s %6llu %7s %6s %9.1f\n", row["design"].get<std::string>().c_str(),
                  row["budget"].get<std::string>().c_str(), Mb(row["peak_requested_bytes"].get<uint64_t>()).c_str(),
                  res.c_str(), ratio.c_str(),
                  static_cast<unsigned long long>(row["failures_under_budget"].get<uint64_t>()), reuse.c_str(),
                  frag.c_str(), row["replay_ms"].get<double>());
    }
  }
  return 0;
}

CommandRegistration kRegistration(
    "bench", "memory", "Allocator speed and fragmentation: pool vs host / naive first-fit (and CUDA on a GPU)",
    [](CLI::App& app) {
      auto opts = std::make_shared<Options>();
      app.add_flag("--json", opts->json, "print JSON");
      app.add_option("--trace", opts->trace_path, "replay this trace file instead of the synthetic workload")
          ->check(CLI::ExistingFile);
      app.add_option("--write-trace", opts->write_trace_path, "write the replayed trace to this file");
      app.add_option("--iterations", opts->iterations, "allocate+free pairs per thread and resource")
          ->capture_default_str();
      app.add_option("--seed", opts->seed, "seed of the synthetic workload and sizes")->capture_default_str();
      app.add_option("--budget-factor", opts->budget_factors, "budgets as multiples of the trace's peak live bytes")
          ->capture_default_str();
      app.add_flag("--skip-speed", opts->skip_speed, "only replay traces");
      app.add_flag("--skip-replay", opts->skip_replay, "only measure allocation speed");
      return [opts] { return RunBenchMemory(*opts); };
    });

}  // namespace
}  // namespace gpuhive::cli
