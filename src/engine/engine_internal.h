// Internals of the Engine shared by its translation units (engine.cc: requests and
// models; engine_status.cc: management API and metrics; engine_devices.cc, engine_load.cc,
// engine_triton.cc). Not a public header.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "gpuhive/cuda_compute_device.h"
#include "gpuhive/device_discovery.h"
#include "gpuhive/execution.h"
#include "gpuhive/memory/adaptors.h"
#include "gpuhive/monitor/nvml.h"
#include "gpuhive/residency/device_set.h"
#include "gpuhive/sim_device.h"
#include "gpuhive/runtime.h"
#include "gpuhive/scheduler.h"
#include "gpuhive/engine/engine.h"

namespace gpuhive::engine {

// Triton's statistics of one served version (the statistics extension); reset when the version is
// served anew (a load after an unload), as Triton's are.
class VersionStatistics {
 public:
  // One request answered: its end-to-end time and, when it succeeded, its phases.
  void RecordRequest(const InferenceResponse& r, int64_t request_ns);
  // One batch executed successfully: its rows and phases.
  void RecordExecution(uint64_t rows, int64_t input_ns, int64_t infer_ns, int64_t output_ns);
  ModelStatistics Snapshot() const;

 private:
  mutable std::mutex mu_;
  ModelStatistics s_;                          // GUARDED_BY(mu_)
  std::map<uint64_t, BatchStat> batches_;      // GUARDED_BY(mu_)
};

// One served version of a model: its config, its scheduler name and (naive mode) its compiled
// model. Shared with the runner, so it outlives its removal while a batch still runs.
struct ServedVersion {
  std::string name;
  int64_t version = 0;
  std::string key;  // the scheduler's name: "<name>:<version>"
  residency::ModelConfig config;
  ModelMetadata metadata;
  int priority_levels = 1;  // the scheduler's levels for this model
  std::unique_ptr<CompiledModel> naive_model;  // kNaive only
  uint32_t naive_owner = 0;
  // Activation bytes of a one-row batch, learned from the first batch that ran (0: not yet).
  std::atomic<uint64_t> one_row_bytes{0};
  // Hot-path metric children.
  monitor::Counter* success = nullptr;
  monitor::Counter* executions = nullptr;
  monitor::Counter* inferences = nullptr;
  monitor::Histogram* queue_seconds = nullptr;
  monitor::Histogram* compute_seconds = nullptr;
  monitor::Histogram* request_seconds = nullptr;
  monitor::Histogram* batch_size = nullptr;
  // Triton's nv_* children.
  monitor::Counter* nv_success = nullptr;
  monitor::Counter* nv_count = nullptr;
  monitor::Counter* nv_exec = nullptr;
  monitor::Counter* nv_request_us = nullptr;
  monitor::Counter* nv_queue_us = nullptr;
  monitor::Counter* nv_input_us = nullptr;
  monitor::Counter* nv_infer_us = nullptr;
  monitor::Counter* nv_output_us = nullptr;
  VersionStatistics stats;
  std::vector<std::string> warnings;  // see ModelStatus::warnings
};

struct ServedModel {
  std::map<int64_t, std::shared_ptr<ServedVersion>> versions;  // ascending
  // Run-time overrides from the management API (-1 / empty: the config's).
  int priority_override = -1;
  std::string tenant_override;
  uint64_t memory_limit_override = 0;
  bool has_memory_limit_override = false;
};

// Per scheduler worker: the execution contexts its batches run in (one worker runs one batch at a
// time, so one arena per worker and device serves every model placed there).
struct WorkerState {
  std::vector<std::unique_ptr<ExecutionContext>> device_ctx;  // by DeviceSet index
  std::unique_ptr<ExecutionContext> host_ctx;
};

struct Engine::Impl {
  EngineOptions options;
  monitor::Registry registry;
  monitor::GpuhiveMetrics metrics{};
  DiscoveryResult discovery;
  std::string device_id = "cpu";  // the scheduler's worker group: the device, or "sim:0+sim:1"
  int64_t start_ns = 0;

  std::unique_ptr<residency::ModelRepository> repository;
  // The devices models run on besides the host CPU: the GPUs (through the CUDA execution plugin)
  // or, with --device sim[:N], simulated ones (declared first: they outlive the managers).
  std::vector<std::unique_ptr<ComputeDevice>> devices;
  std::vector<DeviceBudget> device_budgets;  // per entry of `devices`, measured when opened
  bool simulated = false;          // `devices` are simulated
  std::string gpu_backend_reason;  // why GPUs that were found run no models (empty: none found, or used)
  // kGpuhive: one ModelManager per device (the simulated ones, then the host CPU for KIND_CPU;
  // otherwise the one device models run on) and where each model is placed.
  std::unique_ptr<residency::DeviceSet> device_set;
  std::unique_ptr<StatisticsResource> naive_memory;  // kNaive: plain host memory, counted
  uint32_t next_naive_owner = 1;
  std::unique_ptr<sched::Scheduler> scheduler;
  std::vector<WorkerState> workers;
  std::unique_ptr<monitor::NvmlMonitor> nvml;

  mutable std::shared_mutex mu;
  std::map<std::string, ServedModel> models;          // GUARDED_BY(mu)
  std::map<std::string, std::string> unavailable;     // name -> reason (bad, failed, unloaded)
  std::set<std::string> unloaded;                     // explicitly unloaded: not re-registered
  std::set<std::string> declared_tenants;             // GUARDED_BY(mu); see EngineOptions::tenants
  // Models whose directory is there but whose config (or versions) cannot be served now: answered
  // 503 with the reason until the repository is fixed. GUARDED_BY(mu).
  std::map<std::string, std::string> config_errors;
  std::map<std::string, std::string> warned;          // GUARDED_BY(control_mu): what was warned per model
  std::set<std::string> overridden;                   // GUARDED_BY(mu): loaded with parameters.config
  std::mutex control_mu;                              // serializes Sync / Load / Unload

  std::atomic<int64_t> in_flight{0};
  std::atomic<bool> draining{false};
  std::mutex drain_mu;
  std::condition_variable drain_cv;

  std::mutex sync_thread_mu;
  std::condition_variable sync_thread_cv;
  bool stopping = false;
  std::thread sync_thread;

  bool naive() const { return options.mode == ServeMode::kNaive; }
  // Where every model allocation on `device` (a DeviceSet index) is counted, by model and by
  // kind, in the current mode.
  const StatisticsResource& memory_stats(size_t device) const;
  // The devices models are placed on and their budgets (`budget` each; `cpu_budget` for the host
  // CPU next to simulated devices). Errors: kInvalidArgument (a budget larger than a device).
  StatusOr<std::vector<residency::DeviceSetOptions::Device>> PlanDevices(uint64_t budget, uint64_t cpu_budget) const;
  // Loads the CUDA execution plugin and opens every GPU found as a device. Errors: why they cannot
  // run models (no plugin, a library it needs missing, no device).
  Status OpenGpus();
  // Scrape-time gauges of each device and of the models placed on it.
  void CollectDevices();
  // The id of the device a model is reported on: where it is placed, else the first device.
  const std::string& DeviceOf(const residency::ModelStatus& st) const;
  // Naive mode: bytes the model's versions hold.
  uint64_t NaiveModelBytes(const ServedModel& m) const;

  // Brings the served set in line with the manager (gpuhive mode) after start-up, a load, an
  // unload or a repository poll. Caller holds control_mu.
  void SyncLocked();
  // Compiles every version of `name` from the repository (naive mode). Caller holds control_mu.
  Status LoadNaiveLocked(const std::string& name);
  // Registers one version with the scheduler and the served set. Caller holds control_mu.
  Status Serve(std::shared_ptr<ServedVersion> v);
  // Removes versions from the scheduler (queued requests answered kUnavailable, running batches
  // finish) and from the served set. Caller holds control_mu, not mu.
  // Stops serving these versions. drain: admitted requests finish first (an unload); otherwise
  // queued requests are answered 503 at once (shutdown). Returns how many were answered so.
  size_t Unserve(const std::string& name, const std::vector<int64_t>& versions, bool drain = true);
  void SyncLoop();
  // Runs the version's model_warmup samples through the scheduler and waits for them (Triton: before
  // the model reports READY). Caller holds control_mu. Errors: the first failing sample's.
  Status WarmUp(const ServedVersion& v);
  // The warnings of a version about to be served; logs each new one at warning level once per
  // model. Caller holds control_mu.
  std::vector<std::string> LoadWarnings(const ServedVersion& v);
  // Refreshes config_errors from the manager's last scan, logging changes. Caller holds control_mu.
  void RefreshConfigErrors();

  StatusOr<std::shared_ptr<ServedVersion>> Resolve(const std::string& name, const std::string& version,
                                                   int* priority_override, std::string* tenant_override) const;
  void OnTransition(const residency::ModelTransition& t);
  void Collect();  // refreshes scrape-time gauges
  void FinishRequest();
};

// The default budget of `device` (DefaultDeviceBudget): its free memory now, less what its execution
// backend's libraries take when loaded there (LoadLibraries, measured as the drop in free memory).
DeviceBudget MeasureDeviceBudget(ComputeDevice& device);

// Runs one served version's batches for the scheduler.
class EngineRunner final : public sched::ModelRunner {
 public:
  EngineRunner(Engine::Impl* core, std::shared_ptr<ServedVersion> v) : core_(core), v_(std::move(v)) {}
  StatusOr<std::vector<Tensor>> RunBatch(const std::vector<TensorView>& inputs,
                                         const sched::WorkerContext& worker) override;
  std::vector<std::string> input_names() const override;
  std::vector<std::string> output_names() const override;
  uint64_t OneRowActivationBytes() const override { return v_->one_row_bytes.load(); }
  int64_t ExecutedRows(int64_t rows) const override;

 private:
  StatusOr<std::vector<Tensor>> RunManaged(const std::vector<TensorView>& inputs, const sched::WorkerContext& worker);
  StatusOr<std::vector<Tensor>> RunNaive(const std::vector<TensorView>& inputs, const sched::WorkerContext& worker);

  Engine::Impl* const core_;
  const std::shared_ptr<ServedVersion> v_;
};

// The repository-index state of a managed version ("READY", "LOADING" or "UNAVAILABLE") and,
// when unavailable, why: its last load failed, or it can never fit the budget (a model no load
// can make resident is not ready, though it stays served so its requests get a clear 503).
std::string ServedState(const residency::ModelStatus& st);
std::string UnavailableReason(const residency::ModelStatus& st);

// Metadata of a version from its config (the batch dim first, as -1, when it batches).
ModelMetadata MetadataFromConfig(const residency::ModelConfig& config, const std::vector<int64_t>& versions);
// The scheduler's config for a served version in the given mode.
sched::ModelConfig SchedulerConfigFor(const ServedVersion& v, const EngineOptions& options);

}  // namespace gpuhive::engine
