// `gpuhive bench scheduler`: the scheduler's four claims measured side by side in one run, with
// real models (ONNX bytes -> importer -> runtime) on this machine's CPU:
//   1. batching: throughput and p95 latency with dynamic batching vs without, small and medium model;
//   2. priority: p99 latency of a critical model alone, then beside a saturating background load;
//   3. fairness: two tenants at weights 1:1 and 70:30 under saturation (device-time shares, Jain);
//   4. placement: two devices of unequal speed, weighted placement vs round-robin (wait times).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cli/bench_scheduler_models.h"
#include "cli/command.h"
#include "gpuhive/logging.h"
#include "gpuhive/scheduler.h"
#include "gpuhive/units.h"

namespace gpuhive::cli {
namespace {

using nlohmann::json;
using sched::DeviceSpec;
using sched::ModelConfig;
using sched::Scheduler;
using sched::SchedulerOptions;
using sched::SchedulerStats;

struct Options {
  bool json = false;
  double duration_s = 3.0;
  int concurrency = 32;
  std::string only;  // run one phase: batching, priority, fairness or placement
};

double Percentile(std::vector<int64_t> v, double p) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size()))) - 1;
  return static_cast<double>(v[std::min(i, v.size() - 1)]) / 1e6;  // ms
}

double MeanMs(const std::vector<int64_t>& v) {
  if (v.empty()) return 0.0;
  double s = 0;
  for (int64_t x : v) s += static_cast<double>(x);
  return s / static_cast<double>(v.size()) / 1e6;
}

// Completed requests inside the measurement window.
class Recorder {
 public:
  void SetWindow(int64_t start, int64_t end) {
    std::lock_guard<std::mutex> lk(mu_);
    start_ = start;
    end_ = end;
  }
  void Record(int64_t sent_ns, const InferenceResponse& r) {
    int64_t now = NowNs();
    std::lock_guard<std::mutex> lk(mu_);
    if (sent_ns < start_ || now > end_) return;
    if (!r.status.ok()) {
      errors_++;
      if (first_error_.empty()) first_error_ = r.status.ToString();
      return;
    }
    latency_ns_.push_back(now - sent_ns);
    wait_ns_.push_back(r.queue_ns);
    batch_rows_ += r.batch_size;
  }
  std::vector<int64_t> latency() const {
    std::lock_guard<std::mutex> lk(mu_);
    return latency_ns_;
  }
  std::vector<int64_t> wait() const {
    std::lock_guard<std::mutex> lk(mu_);
    return wait_ns_;
  }
  size_t count() const {
    std::lock_guard<std::mutex> lk(mu_);
    return latency_ns_.size();
  }
  double mean_batch() const {
    std::lock_guard<std::mutex> lk(mu_);
    return latency_ns_.empty() ? 0.0 : static_cast<double>(batch_rows_) / static_cast<double>(latency_ns_.size());
  }
  uint64_t errors() const {
    std::lock_guard<std::mutex> lk(mu_);
    return errors_;
  }
  std::string first_error() const {
    std::lock_guard<std::mutex> lk(mu_);
    return first_error_;
  }

 private:
  mutable std::mutex mu_;
  int64_t start_ = 0, end_ = 0;
  std::vector<int64_t> latency_ns_, wait_ns_;
  int64_t batch_rows_ = 0;
  uint64_t errors_ = 0;
  std::string first_error_;
};

std::unique_ptr<InferenceRequest> MakeRequest(const std::string& model, const std::string& input,
                                              const Tensor& sample, int priority, const std::string& tenant) {
  auto req = std::make_unique<InferenceRequest>();
  req->model_name = model;
  req->priority = priority;
  req->tenant = tenant;
  auto t = Tensor::FromBytes(sample.dtype(), sample.shape(), sample.data(), sample.bytes());
  if (t.ok()) req->inputs.push_back({input, std::move(t).value()});
  return req;
}

// K requests always outstanding: each completion sends the next one (a saturating closed loop).
class ClosedLoop {
 public:
  ClosedLoop(Scheduler& s, std::string model, std::string input, const Tensor& sample, int k, int priority,
             std::string tenant, Recorder& rec)
      : s_(s), model_(std::move(model)), input_(std::move(input)), sample_(sample), k_(k), priority_(priority),
        tenant_(std::move(tenant)), rec_(rec) {}
  ~ClosedLoop() { Stop(); }

  void Start() {
    running_ = true;
    for (int i = 0; i < k_; ++i) Send();
  }
  void Stop() {
    running_ = false;
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait(lk, [&] { return outstanding_ == 0; });
  }

 private:
  void Send() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      outstanding_++;
    }
    auto req = MakeRequest(model_, input_, sample_, priority_, tenant_);
    int64_t sent = NowNs();
    req->on_complete = [this, sent](InferenceResponse r) {
      rec_.Record(sent, r);
      // Refusals are answered on the sender's thread: never resend from there (no recursion).
      if (running_ && r.status.ok()) Send();
      std::lock_guard<std::mutex> lk(mu_);
      if (--outstanding_ == 0) cv_.notify_all();
    };
    (void)s_.Enqueue(std::move(req));
  }

  Scheduler& s_;
  std::string model_, input_;
  const Tensor& sample_;
  int k_, priority_;
  std::string tenant_;
  Recorder& rec_;
  std::atomic<bool> running_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  int outstanding_ = 0;
};

// Poisson arrivals at `rate_per_s` from one thread until Stop (an open loop).
class OpenLoop {
 public:
  OpenLoop(Scheduler& s, std::string model, std::string input, const Tensor& sample, double rate_per_s,
           int priority, Recorder& rec, uint32_t seed)
      : s_(s), model_(std::move(model)), input_(std::move(input)), sample_(sample), rate_(rate_per_s),
        priority_(priority), rec_(rec), seed_(seed) {}
  ~OpenLoop() { Stop(); }
  void Start() {
    running_ = true;
    thread_ = std::thread([this] { Loop(); });
  }
  void Stop() {
    running_ = false;
    if (thread_.joinable()) thread_.join();
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait(lk, [&] { return outstanding_ == 0; });
  }

 private:
  void Loop() {
    std::mt19937 rng(seed_);
    std::exponential_distribution<double> gap(rate_);
    auto next = std::chrono::steady_clock::now();
    while (running_) {
      next += std::chrono::nanoseconds(static_cast<int64_t>(gap(rng) * 1e9));
      std::this_thread::sleep_until(next);
      auto req = MakeRequest(model_, input_, sample_, priority_, "");
      int64_t sent = NowNs();
      {
        std::lock_guard<std::mutex> lk(mu_);
        outstanding_++;
      }
      req->on_complete = [this, sent](InferenceResponse r) {
        rec_.Record(sent, r);
        std::lock_guard<std::mutex> lk(mu_);
        if (--outstanding_ == 0) cv_.notify_all();
      };
      (void)s_.Enqueue(std::move(req));
    }
  }

  Scheduler& s_;
  std::string model_, input_;
  const Tensor& sample_;
  double rate_;
  int priority_;
  Recorder& rec_;
  uint32_t seed_;
  std::atomic<bool> running_{false};
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  int outstanding_ = 0;
};

struct Bench {
  Options opts;
  int cores = 2;
  std::vector<BenchModelSpec> specs;
  std::vector<Tensor> samples;  // batch-1 inputs per spec

  int64_t WindowNs() const { return static_cast<int64_t>(opts.duration_s * 1e9); }

  // Runs `body` for warm-up + the window; the recorders only keep the window.
  void Measure(const std::vector<Recorder*>& recs) const {
    int64_t warm = std::min<int64_t>(300'000'000, WindowNs() / 4);
    int64_t start = NowNs() + warm;
    for (Recorder* r : recs) r->SetWindow(start, start + WindowNs());
    std::this_thread::sleep_for(std::chrono::nanoseconds(warm + WindowNs()));
  }

  StatusOr<std::unique_ptr<Scheduler>> MakeScheduler(SchedulerOptions o) const { return Scheduler::Create(o); }

  Status AddModel(Scheduler& s, int spec, ModelConfig cfg, std::shared_ptr<sched::ModelRunner> runner = nullptr) {
    // The latency profile (min of several runs per batch size) is measured here, at load.
    if (!runner) {
      ASSIGN_OR_RETURN(auto r, CompiledModelRunner::Create(specs[static_cast<size_t>(spec)], s.num_workers()));
      runner = r;
    }
    Scheduler::AddModelOptions ao;
    auto copy = Tensor::FromBytes(samples[static_cast<size_t>(spec)].dtype(), samples[static_cast<size_t>(spec)].shape(),
                                  samples[static_cast<size_t>(spec)].data(), samples[static_cast<size_t>(spec)].bytes());
    if (!copy.ok()) return copy.status();
    ao.profile_inputs.push_back(std::move(copy).value());
    ao.profile_repeats = 5;
    return s.AddModel(cfg, std::move(runner), ao);
  }

  SchedulerOptions CpuSplit() const {
    SchedulerOptions o;
    o.devices[0].name = "cpu";
    // The core budget split among workers: one single-threaded worker per core.
    o.devices[0].workers.assign(static_cast<size_t>(cores), DeviceSpec::Worker{1, 1, -1});
    return o;
  }

  StatusOr<json> Batching() {
    json out = json::array();
    for (int spec = 0; spec < 2; ++spec) {
      json row;
      row["model"] = specs[static_cast<size_t>(spec)].name;
      for (bool batching : {true, false}) {
        ASSIGN_OR_RETURN(auto s, MakeScheduler(CpuSplit()));
        ModelConfig cfg;
        cfg.name = specs[static_cast<size_t>(spec)].name;
        cfg.max_batch_size = 32;
        cfg.dynamic_batching = batching;
        RETURN_IF_ERROR(AddModel(*s, spec, cfg));
        Recorder rec;
        {
          ClosedLoop load(*s, cfg.name, "x", samples[static_cast<size_t>(spec)], opts.concurrency, -1, "", rec);
          load.Start();
          Measure({&rec});
        }
        if (rec.count() == 0) return Internal("batching bench: no request completed ({})", rec.first_error());
        json r;
        r["throughput_rps"] = static_cast<double>(rec.count()) / opts.duration_s;
        r["p95_ms"] = Percentile(rec.latency(), 95);
        r["p50_ms"] = Percentile(rec.latency(), 50);
        r["mean_batch"] = rec.mean_batch();
        row[batching ? "dynamic" : "unbatched"] = r;
      }
      row["throughput_gain"] = row["dynamic"]["throughput_rps"].get<double>() /
                               std::max(1e-9, row["unbatched"]["throughput_rps"].get<double>());
      row["p95_ratio"] = row["dynamic"]["p95_ms"].get<double>() / std::max(1e-9, row["unbatched"]["p95_ms"].get<double>());
      out.push_back(row);
    }
    return out;
  }

  StatusOr<json> Priority() {
    SchedulerOptions o = CpuSplit();
    for (auto& w : o.devices[0].workers) w.stream_priority = 2;  // background streams
    o.devices[0].workers.push_back(DeviceSpec::Worker{1, 0, 0});  // the critical stream
    o.cpu_nice_per_priority = 10;
    ASSIGN_OR_RETURN(auto s, MakeScheduler(o));
    ModelConfig critical;
    critical.name = "critical-mlp";
    critical.max_batch_size = 8;
    critical.default_priority_level = 0;
    ModelConfig background;
    background.name = "background-convnet";
    background.max_batch_size = 32;
    background.default_priority_level = 3;
    RETURN_IF_ERROR(AddModel(*s, 0, critical));
    RETURN_IF_ERROR(AddModel(*s, 1, background));
    const double rate = 200.0;
    json out;
    Recorder alone;
    {
      OpenLoop crit(*s, critical.name, "x", samples[0], rate, -1, alone, 7);
      crit.Start();
      Measure({&alone});
    }
    Recorder loaded, bg;
    {
      ClosedLoop load(*s, background.name, "x", samples[1], opts.concurrency, -1, "", bg);
      load.Start();
      OpenLoop crit(*s, critical.name, "x", samples[0], rate, -1, loaded, 7);
      crit.Start();
      Measure({&loaded, &bg});
    }
    if (alone.count() == 0 || loaded.count() == 0) return Internal("priority bench: no critical request completed");
    out["critical_rate_rps"] = rate;
    out["alone_p50_ms"] = Percentile(alone.latency(), 50);
    out["alone_p99_ms"] = Percentile(alone.latency(), 99);
    out["loaded_p50_ms"] = Percentile(loaded.latency(), 50);
    out["loaded_p99_ms"] = Percentile(loaded.latency(), 99);
    out["p99_ratio"] = out["loaded_p99_ms"].get<double>() / std::max(1e-9, out["alone_p99_ms"].get<double>());
    out["background_throughput_rps"] = static_cast<double>(bg.count()) / opts.duration_s;
    out["critical_errors"] = alone.errors() + loaded.errors();
    return out;
  }

  StatusOr<json> Fairness() {
    json out = json::array();
    for (auto weights : {std::pair<double, double>{1, 1}, std::pair<double, double>{70, 30}}) {
      ASSIGN_OR_RETURN(auto s, MakeScheduler(CpuSplit()));
      ModelConfig cfg;
      cfg.name = "mlp";
      cfg.max_batch_size = 8;
      RETURN_IF_ERROR(AddModel(*s, 0, cfg));
      s->SetTenantWeight("a", weights.first);
      s->SetTenantWeight("b", weights.second);
      Recorder ra, rb;
      SchedulerStats before, after;
      {
        ClosedLoop la(*s, cfg.name, "x", samples[0], 3 * opts.concurrency / 2, -1, "a", ra);
        ClosedLoop lb(*s, cfg.name, "x", samples[0], 3 * opts.concurrency / 2, -1, "b", rb);
        la.Start();
        lb.Start();
        int64_t warm = std::min<int64_t>(300'000'000, WindowNs() / 4);
        std::this_thread::sleep_for(std::chrono::nanoseconds(warm));
        before = s->Stats();
        std::this_thread::sleep_for(std::chrono::nanoseconds(WindowNs()));
        after = s->Stats();
      }
      double da = static_cast<double>(after.tenant_device_ns["a"] - before.tenant_device_ns["a"]);
      double db = static_cast<double>(after.tenant_device_ns["b"] - before.tenant_device_ns["b"]);
      double total = std::max(1.0, da + db);
      double sa = da / total, sb = db / total;
      // Jain's index over the shares normalised by the weights (1.0 = exactly as weighted).
      double xa = sa / (weights.first / (weights.first + weights.second));
      double xb = sb / (weights.second / (weights.first + weights.second));
      double jain = (xa + xb) * (xa + xb) / (2.0 * (xa * xa + xb * xb));
      json r;
      r["weights"] = {weights.first, weights.second};
      r["device_time_share_pct"] = {100.0 * sa, 100.0 * sb};
      r["target_share_pct"] = {100.0 * weights.first / (weights.first + weights.second),
                               100.0 * weights.second / (weights.first + weights.second)};
      r["jain_index_weighted"] = jain;
      out.push_back(r);
    }
    return out;
  }

  StatusOr<json> Placement() {
    json out;
    // Two devices of unequal speed: unequal core budgets where there are cores enough, else two
    // single-thread workers with the second emulated 3x slower.
    bool emulate = cores < 4;
    int fast_threads = emulate ? 1 : std::max(1, cores * 3 / 4);
    int slow_threads = emulate ? 1 : std::max(1, cores - fast_threads);
    out["devices"] = emulate ? "fast: 1 thread; slow: 1 thread, 3x slower (emulated: too few cores)"
                             : fmt::format("fast: {} threads; slow: {} threads", fast_threads, slow_threads);
    double rate = 0.0;
    for (auto policy : {sched::PlacementPolicy::kWeighted, sched::PlacementPolicy::kRoundRobin}) {
      SchedulerOptions o;
      o.placement = policy;
      o.devices = {DeviceSpec{}, DeviceSpec{}};
      o.devices[0].name = "fast";
      o.devices[0].workers = {DeviceSpec::Worker{fast_threads, 1, -1}};
      o.devices[1].name = "slow";
      o.devices[1].workers = {DeviceSpec::Worker{slow_threads, 1, -1}};
      ASSIGN_OR_RETURN(auto s, MakeScheduler(o));
      ASSIGN_OR_RETURN(auto inner, CompiledModelRunner::Create(specs[1], s->num_workers()));
      std::shared_ptr<sched::ModelRunner> runner = inner;
      if (emulate) runner = std::make_shared<SlowDeviceRunner>(inner, std::vector<int>{1}, 3.0);
      ModelConfig cfg;
      cfg.name = "convnet";
      cfg.max_batch_size = 0;  // one request per run: placement alone decides the wait
      RETURN_IF_ERROR(AddModel(*s, 1, cfg, runner));
      // A short saturating warm-up: the profiles adapt to this run's machine, and (first policy
      // only) its throughput is the combined capacity the offered load is derived from.
      Recorder warm_rec;
      {
        ClosedLoop warm(*s, cfg.name, "x", samples[1], 8, -1, "", warm_rec);
        warm.Start();
        int64_t start = NowNs();
        warm_rec.SetWindow(start + 200'000'000, start + 1'000'000'000);
        std::this_thread::sleep_for(std::chrono::milliseconds(1000));
      }
      ASSIGN_OR_RETURN(int64_t est_fast, s->EstimateNs(cfg.name, 0, 1));
      ASSIGN_OR_RETURN(int64_t est_slow, s->EstimateNs(cfg.name, 1, 1));
      if (rate == 0.0) {
        // The same offered load for both policies: 45% of the measured combined capacity, which
        // round-robin can still carry (the slow device gets half of it) but only just.
        double capacity = static_cast<double>(warm_rec.count()) / 0.8;
        rate = 0.45 * capacity;
        out["measured_capacity_rps"] = capacity;
        out["offered_rps"] = rate;
      }
      Recorder rec;
      SchedulerStats before = s->Stats();
      {
        OpenLoop load(*s, cfg.name, "x", samples[1], rate, -1, rec, 11);
        load.Start();
        Measure({&rec});
      }
      SchedulerStats after = s->Stats();
      json r;
      r["offered_rps"] = rate;
      r["est_fast_ms"] = static_cast<double>(est_fast) / 1e6;
      r["est_slow_ms"] = static_cast<double>(est_slow) / 1e6;
      r["mean_wait_ms"] = MeanMs(rec.wait());
      r["p99_wait_ms"] = Percentile(rec.wait(), 99);
      r["p99_latency_ms"] = Percentile(rec.latency(), 99);
      r["completed"] = rec.count();
      r["errors"] = rec.errors();
      if (rec.errors() > 0) r["first_error"] = rec.first_error();
      double bf = static_cast<double>(after.device_batches[0] - before.device_batches[0]);
      double bs = static_cast<double>(after.device_batches[1] - before.device_batches[1]);
      r["fast_device_share_pct"] = 100.0 * bf / std::max(1.0, bf + bs);
      out[policy == sched::PlacementPolicy::kWeighted ? "weighted" : "round_robin"] = r;
    }
    return out;
  }
};

void PrintText(const json& j) {
  std::printf("gpuhive bench scheduler  (cpu, %d cores, %.1f s per phase, concurrency %d)\n",
              j["config"]["cores"].get<int>(), j["config"]["duration_s"].get<double>(),
              j["config"]["concurrency"].get<int>());
  if (j.contains("batching")) {
  std::printf("\n1. dynamic batching (max_batch_size 32, saturating closed loop)\n");
  std::printf("  %-9s %12s %10s %10s | %12s %10s | %6s\n", "model", "batched rps", "p95 ms", "mean batch",
              "single rps", "p95 ms", "gain");
  for (const auto& r : j["batching"]) {
    std::printf("  %-9s %12.1f %10.2f %10.1f | %12.1f %10.2f | %5.2fx\n", r["model"].get<std::string>().c_str(),
                r["dynamic"]["throughput_rps"].get<double>(), r["dynamic"]["p95_ms"].get<double>(),
                r["dynamic"]["mean_batch"].get<double>(), r["unbatched"]["throughput_rps"].get<double>(),
                r["unbatched"]["p95_ms"].get<double>(), r["throughput_gain"].get<double>());
  }
  }
  if (j.contains("priority")) {
  const auto& p = j["priority"];
  std::printf("\n2. priority (critical mlp at %.0f rps, background convnet saturating)\n",
              p["critical_rate_rps"].get<double>());
  std::printf("  critical p50 / p99 alone:  %.3f / %.3f ms\n", p["alone_p50_ms"].get<double>(),
              p["alone_p99_ms"].get<double>());
  std::printf("  critical p50 / p99 loaded: %.3f / %.3f ms  (p99 %.2fx alone; background %.0f rps)\n",
              p["loaded_p50_ms"].get<double>(), p["loaded_p99_ms"].get<double>(), p["p99_ratio"].get<double>(),
              p["background_throughput_rps"].get<double>());
  }
  if (j.contains("fairness")) {
  std::printf("\n3. fairness (two tenants saturating one model; device-time shares)\n");
  for (const auto& r : j["fairness"]) {
    std::printf("  weights %3.0f:%-3.0f  shares %5.1f%% / %5.1f%%  Jain (weighted) %.4f\n", r["weights"][0].get<double>(),
                r["weights"][1].get<double>(), r["device_time_share_pct"][0].get<double>(),
                r["device_time_share_pct"][1].get<double>(), r["jain_index_weighted"].get<double>());
  }
  }
  if (j.contains("placement")) {
  const auto& pl = j["placement"];
  std::printf("\n4. placement (%s)\n", pl["devices"].get<std::string>().c_str());
  for (const char* k : {"weighted", "round_robin"}) {
    const auto& r = pl[k];
    std::printf("  %-11s offered %6.1f rps  wait mean %8.3f ms  p99 %8.3f ms  fast device %5.1f%%\n", k,
                r["offered_rps"].get<double>(), r["mean_wait_ms"].get<double>(), r["p99_wait_ms"].get<double>(),
                r["fast_device_share_pct"].get<double>());
  }
  }
}

int RunBenchScheduler(const Options& opts) {
  Bench b;
  b.opts = opts;
  b.cores = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  b.specs = {SmallMlpModel(), MediumConvModel()};
  for (const auto& spec : b.specs) {
    std::vector<float> v(static_cast<size_t>(NumElements(spec.input_shape)));
    std::mt19937 rng(3);
    std::uniform_real_distribution<float> dist(-1, 1);
    for (auto& x : v) x = dist(rng);
    auto t = Tensor::FromVector(DataType::kFloat32, spec.input_shape, v);
    if (!t.ok()) {
      std::fprintf(stderr, "bench scheduler: %s\n", t.status().ToString().c_str());
      return 1;
    }
    b.samples.push_back(std::move(t).value());
  }
  // Warm the process up (first-run costs, page faults, CPU frequency) before anything is measured.
  for (size_t i = 0; i < b.specs.size(); ++i) {
    auto runner = CompiledModelRunner::Create(b.specs[i], 1);
    if (!runner.ok()) {
      std::fprintf(stderr, "bench scheduler: %s\n", runner.status().ToString().c_str());
      return 1;
    }
    sched::WorkerContext ctx;
    std::vector<TensorView> in{b.samples[i].view()};
    int64_t until = NowNs() + 500'000'000;
    while (NowNs() < until) {
      auto out = (*runner)->RunBatch(in, ctx);
      if (!out.ok()) {
        std::fprintf(stderr, "bench scheduler: model %s: %s\n", b.specs[i].name.c_str(),
                     out.status().ToString().c_str());
        return 1;
      }
    }
  }
  json j;
  j["config"] = {{"cores", b.cores}, {"duration_s", opts.duration_s}, {"concurrency", opts.concurrency},
                 {"models", {"mlp 256-1024-1024-16", "convnet 3x32x32 conv16-conv32-fc1024-fc10"}}};
  auto fail = [](const char* what, const Status& s) {
    std::fprintf(stderr, "bench scheduler: %s: %s\n", what, s.ToString().c_str());
    return 1;
  };
  auto phase = [&](const char* name, auto fn) {
    if (!opts.only.empty() && opts.only != name) return 0;
    auto r = (b.*fn)();
    if (!r.ok()) return fail(name, r.status());
    j[name] = *r;
    return 0;
  };
  if (phase("batching", &Bench::Batching) || phase("priority", &Bench::Priority) ||
      phase("fairness", &Bench::Fairness) || phase("placement", &Bench::Placement)) {
    return 1;
  }
  if (opts.json) {
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    PrintText(j);
  }
  return 0;
}

CommandRegistration kBenchScheduler(
    "bench", "scheduler",
    "Scheduler: dynamic batching, priority, tenant fairness and placement, side by side with real models",
    [](CLI::App& app) {
      auto opts = std::make_shared<Options>();
      app.add_flag("--json", opts->json, "print JSON");
      app.add_option("--duration", opts->duration_s, "seconds measured per phase (10 phases)")
          ->check(CLI::Range(0.2, 60.0))
          ->capture_default_str();
      app.add_option("--concurrency", opts->concurrency, "outstanding requests per saturating client group")
          ->check(CLI::Range(1, 512))
          ->capture_default_str();
      app.add_option("--only", opts->only, "run one phase: batching, priority, fairness or placement")
          ->check(CLI::IsMember({"batching", "priority", "fairness", "placement"}));
      return [opts] { return RunBenchScheduler(*opts); };
    });

}  // namespace
}  // namespace gpuhive::cli
