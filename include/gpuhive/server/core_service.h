// The core InferenceService: the model repository, the residency manager (byte budget, eviction,
// hot-swap, preloading, pressure handling) and the scheduler (batching, priorities, fair share,
// workers) behind the interface the HTTP and gRPC frontends serve, with every figure recorded in
// one metrics registry. See DESIGN.md "A request's way through".
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

namespace gpuhive::server {

enum class ServeMode { kGpuhive, kNaive };

// The one tenant every undeclared request tenant is counted under.
inline constexpr const char* kUndeclaredTenant = "other";

struct CoreOptions {
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
  // Refuse to start without a usable GPU, and never fall back to the CPU under memory pressure.
  bool strict_gpu = false;
  // CPU workers (each with its own execution context) and OpenMP threads per worker. 0: derived
  // from the core count. With several priority levels one extra worker is kept free for level 0.
  int cpu_workers = 0;
  int threads_per_worker = 0;
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
  // Swap-in copies weights in first-use order while the first request already runs.
  bool pipelined_swap = true;
};

// Parses "none" | "poll" | "explicit". Errors: kInvalidArgument.
StatusOr<residency::ControlMode> ParseControlMode(const std::string& text);
// Parses "gpuhive" | "naive". Errors: kInvalidArgument.
StatusOr<ServeMode> ParseServeMode(const std::string& text);

class CoreService final : public InferenceService {
 public:
  // Opens the repository, creates the manager (or compiles every model in naive mode), starts the
  // scheduler's workers and registers the models. A bad model never fails Create: it is reported
  // as UNAVAILABLE with its error. Errors: kNotFound (no repository), kInvalidArgument (bad
  // options), kFailedPrecondition (strict GPU mode without a usable GPU).
  static StatusOr<std::unique_ptr<CoreService>> Create(const CoreOptions& options);
  ~CoreService() override;  // drains the scheduler (queued requests still run) and stops

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

  // Graceful shutdown, first half: readiness turns false and new requests are refused with
  // kUnavailable; waits until every admitted request has been answered or `timeout_ms` passed.
  // Returns the number of requests still unanswered (0 on a clean drain).
  int64_t Drain(int64_t timeout_ms);
  // Graceful shutdown, second half: answers every request still queued with kUnavailable and waits
  // for the batches already running. Idempotent; the destructor calls it too.
  void CancelQueued();
  int64_t in_flight() const;

  monitor::Registry* registry();
  const monitor::GpuhiveMetrics& metrics() const;

  struct Impl;

 private:
  explicit CoreService(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace gpuhive::server
