// The engine (src/engine): the InferenceService the frontends (HTTP, gRPC, ModelMesh) call. It
// wires the model repository, the residency manager (byte budget, eviction, hot-swap, preloading,
// pressure handling), the scheduler (batching, priorities, fair share, workers), the devices and
// execution together, with every figure recorded in one metrics registry; a request goes frontend
// -> engine -> scheduler -> execution and back without returning into the frontends' code. See
// DESIGN.md "A request's way through".
//
// Two modes share the frontends and the scheduler's workers so that comparisons are honest:
//   kGpuhive  models are registered from the repository and made resident on demand within the
//             budget; dynamic batching, priority levels and tenants as configured.
//   kNaive    the "before" baseline: every model compiled at start with no budget, no batching,
//             one FIFO level, one tenant, no pool (each request allocates and frees its own
//             activations from plain host memory).
//
// Model versions: the scheduler knows each served version as "<name>:<version>"; responses carry
// the plain name and the version.
//
// Thread safety: every method may be called concurrently.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gpuhive/monitor/metric_names.h"
#include "gpuhive/residency/repository.h"
#include "gpuhive/server/service.h"

namespace gpuhive::engine {

// The interface the engine implements for the frontends (HTTP, gRPC, ModelMesh) and its vocabulary.
using server::BatchStat;
using server::DeviceStatus;
using server::DurationStat;
using server::InferenceService;
using server::LatencyPoint;
using server::ModelConfigDocument;
using server::ModelMetadata;
using server::ModelSettings;
using server::ModelStatistics;
using server::ModelStatus;
using server::RepositoryEntry;
using server::ServerMetadata;
using server::TensorInfo;

enum class ServeMode { kGpuhive, kNaive };

// The one tenant every undeclared request tenant is counted under.
inline constexpr const char* kUndeclaredTenant = "other";

// The default byte budget of a GPU (or simulated GPU) when no --memory-budget is given: the memory
// it had free when the engine opened it (its context already created, other processes' use
// excluded), less the library reserve measured right after (what the execution backend's
// libraries took when loaded on it: ExecutionBackend::LoadLibraries), less a headroom for what
// they allocate later outside gpuhive's pool (kernels of shapes first met later, graph memory):
// 2 % of the capacity, at least 256 MiB, at most 10 %. `free_bytes` 0 (unknown) counts as the
// capacity. Reported by /v2/gpuhive/devices.
struct DeviceBudget {
  uint64_t budget_bytes = 0;
  uint64_t free_at_start_bytes = 0;
  uint64_t reserved_bytes = 0;  // capacity - free at start: the context and other processes
  uint64_t library_reserve_bytes = 0;
  uint64_t headroom_bytes = 0;
};
DeviceBudget DefaultDeviceBudget(uint64_t capacity_bytes, uint64_t free_bytes, uint64_t library_reserve_bytes = 0);

struct EngineOptions {
  std::string model_repository;  // required: a Triton-layout directory
  bool strict_model_config = false;  // Triton's flag: every model needs a complete config.pbtxt
  residency::ControlMode control_mode = residency::ControlMode::kNone;
  // Loaded (made resident) at start-up. In explicit mode these are the only models served until
  // LoadModel; "*" loads every model of the repository.
  std::vector<std::string> load_models;
  ServeMode mode = ServeMode::kGpuhive;
  // Device byte budget for weights, activations, workspace and I/O. 0: 90 % of the GPU's memory,
  // or on the CPU half of the host's available memory.
  uint64_t memory_budget_bytes = 0;
  // Host tier budget: imported models kept in host memory for fast swap-in (beyond it the least
  // valuable host copies are dropped and read from disk again). -1: as large as the device budget,
  // so that resident memory stays within device budget + host budget + a fixed overhead
  // (docs/server.md); 0: unlimited.
  int64_t host_memory_budget_bytes = -1;
  // Refuse to start without a usable GPU, and never fall back to the CPU under memory pressure.
  bool strict_gpu = false;
  // Where models run: "" or "auto" (the GPU when this build can use one, else the CPU), "cpu",
  // "sim" (the simulated device: a testing aid that behaves like a GPU, see sim_device.h).
  std::string device;
  // The simulated device's memory and its host<->device copy bandwidth (each direction).
  uint64_t sim_memory_bytes = 4ull << 30;
  double sim_copy_bytes_per_s = 16e9;
  // A testing aid (the soak test): each device memory allocation from the upstream fails with this
  // probability, as an out-of-memory device would. 0: none.
  double inject_alloc_failure_probability = 0;
  // CPU workers (each with its own execution context) and OpenMP threads per worker. 0: derived
  // from the core count. With several priority levels one extra worker is kept free for level 0.
  int cpu_workers = 0;
  int threads_per_worker = 0;
  // A worker kept free for priority level 1, so critical work never waits behind a background
  // batch (gpuhive mode, several levels), on the CPU too: although the general workers already
  // take every core there, scenario 1 on 2 cores ran x0.99 the naive mode's throughput with it and
  // x0.86-0.87 without it (MobileNetV3's p50 2.2 s vs 6.2-8.3 s), docs/benchmarks.md. false: none
  // (one context's activations fewer; `serve --critical-worker off`).
  bool reserve_critical_worker = true;
  int priority_levels = 4;
  int max_queue_size = 1024;
  double tenant_weight_default = 1.0;
  std::map<std::string, double> tenant_weights;
  // Declared tenants. A request's `tenant` parameter is kept only when it names a declared tenant:
  // one listed here, one with a weight, one a model's config names, or one set through the
  // management API; any other is scheduled and counted as kUndeclaredTenant, so clients cannot
  // grow the metrics' label set (or the scheduler's tenant table) without bound.
  std::vector<std::string> tenants;
  int64_t default_keep_alive_us = 5 * 60 * 1'000'000ll;
  bool enable_preloading = true;
  int64_t poll_interval_us = 1'000'000;
  int max_concurrent_loads = 2;
  bool optimize = true;
  int64_t nvml_poll_interval_ms = 1000;
  // How long a batch waits for memory held by other running batches before its requests are
  // answered 503 (a model larger than the budget is refused at once).
  int64_t pressure_wait_ms = 10'000;
  // Batch sizes sized by what they buy (sched::SchedulerOptions::batch_min_gain); 0: batches grow
  // to each model's max_batch_size. Not in the naive mode.
  double batch_min_gain = 0.1;
  // Activation bytes one worker may hold (sched::SchedulerOptions::batch_memory): kBatchMemoryAuto
  // bounds them on the CPU by the largest one-row batch of the served models (batching buys a CPU
  // little per row, not worth holding more than unbatched execution would) and leaves GPUs and
  // simulated devices unbounded; 0: no bound; above 0: that many bytes. Not in the naive mode.
  static constexpr int64_t kBatchMemoryAuto = -1;
  int64_t batch_memory_bytes = kBatchMemoryAuto;
  // Swap-in copies weights in first-use order while the first request already runs.
  bool pipelined_swap = true;
  // Unloading a model lets its admitted requests finish; what is still queued after this long is
  // answered 503.
  int64_t unload_drain_ms = 30'000;
};

// Parses "none" | "poll" | "explicit". Errors: kInvalidArgument.
StatusOr<residency::ControlMode> ParseControlMode(const std::string& text);
// Parses "gpuhive" | "naive". Errors: kInvalidArgument.
StatusOr<ServeMode> ParseServeMode(const std::string& text);

class Engine final : public InferenceService {
 public:
  // Opens the repository, creates the manager (or compiles every model in naive mode), starts the
  // scheduler's workers and registers the models. A bad model never fails Create: it is reported
  // as UNAVAILABLE with its error. Errors: kNotFound (no repository), kInvalidArgument (bad
  // options), kFailedPrecondition (strict GPU mode without a usable GPU).
  static StatusOr<std::unique_ptr<Engine>> Create(const EngineOptions& options);
  ~Engine() override;  // drains the scheduler (queued requests still run) and stops

  ServerMetadata GetServerMetadata() override;
  bool IsLive() override;
  bool IsReady() override;
  StatusOr<bool> ModelReady(const std::string& name, const std::string& version) override;
  StatusOr<ModelMetadata> GetModelMetadata(const std::string& name, const std::string& version) override;
  void Infer(std::unique_ptr<InferenceRequest> request) override;
  StatusOr<std::vector<RepositoryEntry>> RepositoryIndex(bool ready_only) override;
  Status LoadModel(const std::string& name) override;
  Status UnloadModel(const std::string& name) override;
  Status LoadModelWithConfig(const std::string& name, const std::string& config_json) override;
  std::vector<DeviceStatus> Devices() override;
  std::vector<ModelStatus> Models() override;
  StatusOr<ModelStatus> GetModelStatus(const std::string& name) override;
  Status UpdateModelSettings(const std::string& name, const ModelSettings& settings) override;
  std::string MetricsText() override;
  StatusOr<std::vector<ModelStatistics>> GetModelStatistics(const std::string& name,
                                                            const std::string& version) override;
  StatusOr<ModelConfigDocument> GetModelConfig(const std::string& name, const std::string& version) override;

  // Unloads `name` (if served) and drops every trace of it: its device and host copies (also
  // those a failed load left behind), its repository-index entry and its "unloaded" mark, so a
  // runtime that loads and unloads many short-lived models (ModelMesh) does not grow the index.
  // OK when nothing of `name` is known. Returns after the memory is freed (a running batch
  // finishes first).
  Status ForgetModel(const std::string& name);

  // What a loaded model takes on its device: the bytes the residency manager holds for it
  // (weights, packed weights, plans' workspaces) and the planned activation peak of its largest
  // batch (max_batch_size, or 1). Makes the model resident first if needed. gpuhive mode only.
  // Errors: kNotFound, kFailedPrecondition (naive mode), the load's errors.
  struct Footprint {
    uint64_t device_bytes = 0;
    uint64_t activation_bytes = 0;
    uint64_t total() const { return device_bytes + activation_bytes; }
  };
  StatusOr<Footprint> MeasureModel(const std::string& name);
  // The device byte budget (0 in naive mode: none).
  uint64_t budget_bytes() const;
  // Model loads that run at once (loads are serialized: 1).
  int max_concurrent_loads() const { return 1; }

  // Graceful shutdown, first half: readiness turns false and new requests are refused with
  // kUnavailable; waits until every admitted request has been answered or `timeout_ms` passed.
  // Returns the number of requests still unanswered (0 on a clean drain).
  int64_t Drain(int64_t timeout_ms);
  // Graceful shutdown, second half: answers every request still queued with kUnavailable and waits
  // for the batches already running (they finish and are answered normally). Returns how many
  // requests were answered kUnavailable. Idempotent; the destructor calls it too.
  size_t CancelQueued();
  int64_t in_flight() const;

  monitor::Registry* registry();
  const monitor::GpuhiveMetrics& metrics() const;

  struct Impl;

 private:
  explicit Engine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace gpuhive::engine
