// The interface the frontends (HTTP, gRPC) serve. The core implements it (scheduler + residency
// manager + monitors); FakeService implements it for tests. Frontends depend on nothing else.
//
// Error convention (what the frontends map to status codes):
//   kInvalidArgument -> 400, kNotFound -> 404, kResourceExhausted -> 429 (admission: queue full;
//   sent with Retry-After), kUnavailable -> 503 (not ready, or the model cannot be made resident /
//   cannot fit), kDeadlineExceeded -> 504, kUnimplemented -> 501 (HTTP) / UNIMPLEMENTED (gRPC),
//   kFailedPrecondition -> 409 for management calls (400 for infer), everything else -> 500.
// So "queue full" is kResourceExhausted and "cannot fit" is kUnavailable: a memory shortage inside
// the core that ends a request must surface as kUnavailable, never as kResourceExhausted.
//
// Thread safety: every method may be called concurrently from many frontend threads.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gpuhive/inference.h"
#include "gpuhive/status.h"
#include "gpuhive/tensor.h"

namespace gpuhive::server {

struct TensorInfo {
  std::string name;
  DataType dtype = DataType::kUndefined;  // written as the KServe name ("FP32")
  Shape shape;                            // -1 for a variable dim (the batch dim first when batched)
  // Outputs: classification labels (config label_filename), index -> label; null when none. Not
  // part of the metadata's JSON form.
  std::shared_ptr<const std::vector<std::string>> labels;
};

struct ModelMetadata {
  std::string name;
  std::vector<std::string> versions;
  std::string platform;  // "onnxruntime_onnx" for ONNX models, as Triton reports it
  std::vector<TensorInfo> inputs;
  std::vector<TensorInfo> outputs;
  int max_batch_size = 0;  // > 0: dim 0 of every tensor is the batch (not part of the JSON form)
};

struct ServerMetadata {
  std::string name = "gpuhive";
  std::string version;
  std::vector<std::string> extensions;
};

struct RepositoryEntry {
  std::string name;
  std::string version;
  std::string state;   // "READY", "UNAVAILABLE", "LOADING", "UNLOADING"
  std::string reason;  // why not ready
};

// Management API (JSON-able plain structs).
struct DeviceStatus {
  std::string id;  // "cpu", "cuda:0"
  uint64_t budget_bytes = 0;
  // GPUs (and simulated ones): what the default budget was derived from (engine::DeviceBudget);
  // 0 for the CPU.
  uint64_t capacity_bytes = 0, free_at_start_bytes = 0, reserved_bytes = 0, library_reserve_bytes = 0,
           headroom_bytes = 0;
  uint64_t used_bytes = 0;
  std::map<std::string, uint64_t> used_by_kind;   // weights|activations|workspace|io
  std::map<std::string, uint64_t> used_by_model;
  std::vector<std::string> models;  // placed on this device (resident or not), by name
  double fragmentation_ratio = 0;
  std::string health = "ok";  // GpuHealthName() values
};

struct LatencyPoint {
  int batch_size = 1;
  double latency_seconds = 0;
};

struct ModelStatus {
  std::string name;
  std::string version;
  std::string state;  // as RepositoryEntry::state
  std::string tier;   // "disk", "host", "device"
  std::string device;
  std::string executor;  // the backend running its resident copy ("cpu", "cuda"); empty when not resident
  uint64_t bytes = 0;
  // Host -> device weight bytes its swap-ins copied and the seconds they took (since loaded).
  uint64_t h2d_bytes = 0;
  double h2d_seconds = 0;
  int leases = 0;
  int queue_depth = 0;
  int priority = 0;  // Triton's numbering: 1 is the highest level
  std::string tenant;
  uint64_t memory_limit_bytes = 0;  // 0: none
  std::vector<LatencyPoint> latency_profile;
  // The most rows a batch takes now (max_batch_size, or less where larger batches were measured
  // to buy too little, --batch-min-gain, or would hold more than --batch-memory); 0 when not
  // scheduled.
  int batch_limit = 0;
  // Activation bytes (arena and workspace) a one-row batch holds, learned from its first batch;
  // 0 until then. --batch-memory bounds batches by it.
  uint64_t one_row_activation_bytes = 0;
  // What the server noticed when it loaded the version and went on anyway (config fields it does
  // not use, an instance kind it cannot honour).
  std::vector<std::string> warnings;
  // The precision it runs in and, for an int8 config, the accuracy gate's measurement against
  // FP32 (relative L2 and top-1 agreement; -1: not measured) or why it runs fp32.
  std::string precision = "fp32";
  std::string precision_note;
  double precision_rel_l2 = -1, precision_top1 = -1;
};

// A partial update: only the set fields change.
struct ModelSettings {
  std::optional<uint64_t> memory_limit_bytes;
  std::optional<int> priority;  // Triton's numbering: 1 highest; 0: back to the config's default
  std::optional<std::string> tenant;
};

// Triton's statistics extension: cumulative figures per model version since it was loaded.
struct DurationStat {
  uint64_t count = 0;
  uint64_t ns = 0;
};

struct BatchStat {
  uint64_t batch_size = 0;
  DurationStat compute_input, compute_infer, compute_output;  // count: executions of that size
};

struct ModelStatistics {
  std::string name;
  std::string version;
  uint64_t last_inference_ms = 0;  // since the epoch; 0: never
  uint64_t inference_count = 0;    // batch items of successful requests
  uint64_t execution_count = 0;    // batches executed
  // Per request: success/fail (end to end in the server), queue, and the compute phases of the
  // batch the request ran in (input gathering, execution, output scattering).
  DurationStat success, fail, queue, compute_input, compute_infer, compute_output;
  std::vector<BatchStat> batch_stats;  // ascending batch size
};

// A model's configuration in Triton's two forms: the JSON of GET /v2/models/M/config and the
// serialized ModelConfig message of gRPC ModelConfig (proto/model_config.proto).
struct ModelConfigDocument {
  std::string json;
  std::string proto;
};

class InferenceService {
 public:
  virtual ~InferenceService() = default;

  virtual ServerMetadata GetServerMetadata() = 0;
  virtual bool IsLive() = 0;
  virtual bool IsReady() = 0;
  // Errors: kNotFound for an unknown model or version. Empty version: the default version.
  virtual StatusOr<bool> ModelReady(const std::string& name, const std::string& version) = 0;
  virtual StatusOr<ModelMetadata> GetModelMetadata(const std::string& name,
                                                   const std::string& version) = 0;
  // Takes ownership; calls request->on_complete exactly once, possibly on another thread and
  // possibly before Infer returns. The request's inputs were validated against the metadata.
  virtual void Infer(std::unique_ptr<InferenceRequest> request) = 0;

  virtual StatusOr<std::vector<RepositoryEntry>> RepositoryIndex(bool ready_only) = 0;
  virtual Status LoadModel(const std::string& name) = 0;
  virtual Status UnloadModel(const std::string& name) = 0;
  // Triton's load with parameters.config: `config_json` (the config's JSON form) replaces the
  // model's config.pbtxt; empty: LoadModel. Errors: as LoadModel; kInvalidArgument for a config
  // that does not parse or validate.
  virtual Status LoadModelWithConfig(const std::string& name, const std::string& config_json) {
    if (config_json.empty()) return LoadModel(name);
    return Unimplemented("this service takes no config override on load");
  }

  virtual std::vector<DeviceStatus> Devices() = 0;
  virtual std::vector<ModelStatus> Models() = 0;
  virtual StatusOr<ModelStatus> GetModelStatus(const std::string& name) = 0;
  virtual Status UpdateModelSettings(const std::string& name, const ModelSettings& settings) = 0;

  // Prometheus text format 0.0.4 for /metrics.
  virtual std::string MetricsText() = 0;

  // Statistics of every version of `name` (or of one version; or of every model when `name` is
  // empty). Errors: kNotFound for an unknown model or version.
  virtual StatusOr<std::vector<ModelStatistics>> GetModelStatistics(const std::string& name,
                                                                    const std::string& version) {
    (void)name;
    (void)version;
    return Unimplemented("statistics are not available from this service");
  }
  // The configuration a version is served with. Errors: kNotFound.
  virtual StatusOr<ModelConfigDocument> GetModelConfig(const std::string& name, const std::string& version) {
    (void)name;
    (void)version;
    return Unimplemented("model configuration is not available from this service");
  }
};

}  // namespace gpuhive::server
