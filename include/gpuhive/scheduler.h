// Scheduler: per-model request queues, a dynamic batcher with Triton's knobs, and a dispatcher over
// all models that serves strict priority levels (with aging), weighted fair share between tenants
// by estimated device time, and places each batch on a device by measured speed and current load.
// See DESIGN.md "A request's way through" and "Scheduling".
//
// The scheduler does not know how a model executes: every model comes with a ModelRunner that runs
// one batch on one worker. Workers are grouped into devices (a CUDA device, or on the CPU a group of
// threads with its own core budget); each worker has its own execution context / stream and a fixed
// priority, and a critical batch goes to the most urgent free worker.
//
// Thread safety: every Scheduler method is thread safe. Runners are called from worker threads
// without any scheduler lock held, concurrently for different workers. Completion callbacks are
// called on a worker thread (or on the caller's thread for refusals), never under a lock.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gpuhive/device.h"
#include "gpuhive/inference.h"
#include "gpuhive/status.h"
#include "gpuhive/tensor.h"

namespace gpuhive::sched {

// What a worker hands to a runner: which device and stream, how many threads it may use, and a
// stable index (runners keep per-worker state such as an ExecutionContext by this index).
struct WorkerContext {
  int worker_index = 0;        // 0 .. Scheduler::num_workers()-1, stable for the scheduler's life
  int device_index = 0;        // index into SchedulerOptions::devices
  DeviceId device;             // the device's identity
  int num_threads = 1;         // CPU threads this worker may use (its share of the core budget)
  int stream_priority = 0;     // 0 most urgent; CUDA stream priority follows it
  StreamView stream;           // the worker's own stream; native == nullptr on the CPU
};

// Runs batches of one model. Implementations must be safe to call concurrently from different
// workers (each with its own WorkerContext::worker_index).
class ModelRunner {
 public:
  virtual ~ModelRunner() = default;
  // Runs one batch. `inputs` are in input_names() order; when the model batches
  // (max_batch_size > 0) dim 0 of every input is the batch. Returns outputs in output_names()
  // order, each with the same dim 0 as the inputs when batching. Errors fail every request of the
  // batch with the returned status.
  virtual StatusOr<std::vector<Tensor>> RunBatch(const std::vector<TensorView>& inputs,
                                                 const WorkerContext& worker) = 0;
  // Input names in the order RunBatch expects; requests are matched by name.
  virtual std::vector<std::string> input_names() const = 0;
  virtual std::vector<std::string> output_names() const = 0;
  // The activation bytes (arena and workspace) a batch of one row of this model holds while it
  // runs, once known; 0 while not known. A batch of N rows is taken to hold N times as much.
  // Read without any scheduler lock, at AddModel and after each batch of the model has run
  // (SchedulerOptions::batch_memory bounds batches by it).
  virtual uint64_t OneRowActivationBytes() const { return 0; }
  // The rows a batch of `rows` is executed as: more when the runner pads batches to a few plan
  // sizes (the engine: powers of two), whose padding rows cost compute and activation memory like
  // real ones. The scheduler counts a batch's memory by it and forms batches that need no padding
  // where it can (a batch of 5 runs as 4, the fifth request in the next batch). Called under the
  // scheduler's lock: must not block.
  virtual int64_t ExecutedRows(int64_t rows) const { return rows; }
};

enum class TimeoutAction { kReject, kDelay };

// Triton's ModelQueuePolicy.
struct QueuePolicy {
  // What happens to a request whose queue timeout passed: kReject answers kDeadlineExceeded (it is
  // never executed); kDelay keeps it queued behind every request that has not timed out.
  TimeoutAction timeout_action = TimeoutAction::kReject;
  int64_t default_timeout_us = 0;  // 0: no queue timeout
  // A request's InferenceRequest::timeout_us may shorten (never lengthen) the default.
  bool allow_timeout_override = true;
  // Requests queued at this priority level before Enqueue refuses with kResourceExhausted.
  // 0: the scheduler's SchedulerOptions::max_queue_size (queues are always bounded).
  int max_queue_size = 0;
};

// One model's scheduling configuration; fields mean what Triton's config.pbtxt fields mean.
struct ModelConfig {
  std::string name;
  // Largest batch (sum of the requests' dim 0). 0: the model does not batch; requests run alone
  // and their inputs are passed unchanged.
  int max_batch_size = 0;
  bool dynamic_batching = true;  // false: every request runs alone (batch of its own dim 0)
  std::vector<int> preferred_batch_sizes;
  int64_t max_queue_delay_us = 0;
  // Priority levels 0 (most urgent) .. priority_levels-1. 0: SchedulerOptions::priority_levels.
  int priority_levels = 0;
  int default_priority_level = -1;  // -1: the least urgent level
  QueuePolicy default_queue_policy;
  std::map<int, QueuePolicy> priority_queue_policy;  // per level, overrides the default
  std::string tenant = "default";                    // requests without a tenant belong here
};

// A group of workers sharing one device (on the CPU: one share of the cores).
struct DeviceSpec {
  std::string name = "cpu";
  DeviceId device = CpuDevice();
  // One entry per worker: its thread budget and its stream priority (0 most urgent). A worker
  // whose reserved_max_level >= 0 only runs batches whose effective priority is at most that level
  // (a stream kept free for critical work).
  struct Worker {
    int num_threads = 1;
    int stream_priority = 0;
    int reserved_max_level = -1;
  };
  std::vector<Worker> workers{Worker{}};
};

enum class PlacementPolicy { kWeighted, kRoundRobin };

struct SchedulerOptions {
  std::vector<DeviceSpec> devices{DeviceSpec{}};
  int priority_levels = 4;
  // A request's effective level improves by one per interval waited. 0 disables aging.
  int64_t aging_interval_us = 100'000;
  int max_queue_size = 1024;  // per model and level, when the queue policy says 0
  PlacementPolicy placement = PlacementPolicy::kWeighted;
  // On the CPU, lower the OS scheduling priority (raise nice) of a worker thread by this much per
  // stream-priority level, so a critical worker keeps its core under background load (the CPU's
  // analogue of CUDA stream priorities). 0 leaves thread priorities alone.
  int cpu_nice_per_priority = 5;
  // Weight of the newest measurement in the latency profiles' moving averages.
  double profile_ewma_alpha = 0.2;
  // Device time assumed for a batch before anything was measured.
  int64_t default_estimate_ns = 1'000'000;
  // Batch sizes sized by what they buy. Above 0, a model's batches grow past N rows only when its
  // measured device time per row at 2N is at least this fraction below that at N (doubling from
  // 1 up to max_batch_size; a size not yet measured is allowed until it is, so the profile learns
  // it, one batch at a time; a size that did not pay is measured again every 64 batches). A larger batch holds a larger activation arena, so where batching buys little (a CPU)
  // batches stay small and memory stays low; where it buys much (a GPU) they grow. A request
  // larger than the limit still runs, alone. 0: batches grow to max_batch_size (Triton's rule).
  double batch_min_gain = 0;
  // Activation memory by worker: the bytes one worker may hold (a batch holds
  // ModelRunner::OneRowActivationBytes times its rows). A device's unreserved workers together
  // hold at most this times their number, less what its reserved (critical) workers may hold: the
  // largest one-row bytes of the models whose default level is 0, set aside so critical work never
  // waits for memory (a reserved worker's batch is cut to that share instead, never below one
  // request). A batch that does not fit beside the running ones waits while smaller work runs; a
  // model whose one-row bytes are not known yet runs one row at a time. 0: no bound.
  // kBatchMemoryAuto: the largest one-row bytes of the registered models, so batching never makes
  // the workers hold more than unbatched execution of the same models would (the default on the
  // CPU, where batching buys little per row; docs/server.md). A request larger than the bound
  // still runs, alone.
  static constexpr int64_t kBatchMemoryAuto = -1;
  int64_t batch_memory = 0;
};

// Latency profile of one model on one device: estimated device time by batch size.
struct LatencyPoint {
  int batch_size = 0;
  int64_t ns = 0;
};

struct ModelStats {
  uint64_t admitted = 0;
  uint64_t refused_full = 0;     // Enqueue refused: queue full
  uint64_t refused_invalid = 0;  // Enqueue refused: bad request
  uint64_t expired = 0;          // answered kDeadlineExceeded without executing
  uint64_t completed = 0;        // executed and answered (OK or runner error)
  uint64_t failed = 0;           // runner or batching errors
  uint64_t batches = 0;
  uint64_t batched_rows = 0;     // sum of batch sizes
  int queued = 0;
};

struct SchedulerStats {
  std::map<std::string, ModelStats> models;
  std::map<std::string, int64_t> tenant_device_ns;  // device time served per tenant
  std::vector<int64_t> device_busy_ns;              // per device, summed over its workers
  std::vector<uint64_t> device_batches;
  // Per device (SchedulerOptions::batch_memory): what the unreserved workers' batches may hold
  // together (0: no bound), and what the running ones hold by the scheduler's estimate.
  std::vector<uint64_t> device_batch_memory_allowance;
  std::vector<uint64_t> device_batch_memory_held;
};

class Scheduler {
 public:
  // Starts the workers. Errors: kInvalidArgument for an empty device list, a device without
  // workers, a worker without threads, no unreserved worker, or fewer than one priority level.
  static StatusOr<std::unique_ptr<Scheduler>> Create(const SchedulerOptions& options);
  // Stops accepting requests, drains every queue (queued requests still run) and joins workers.
  ~Scheduler();

  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Options for AddModel.
  struct AddModelOptions {
    // When set (one batch-1 example per input, in input_names() order, dim 0 == 1 when batching),
    // the latency profile is measured on every device before the model accepts requests, at batch
    // sizes 1, 2, 4, ... max_batch_size. Otherwise it is learned from the first batches.
    std::vector<Tensor> profile_inputs;
    int profile_repeats = 2;
  };

  // Registers a model. Errors: kAlreadyExists, kInvalidArgument (bad config), and the runner's
  // error when profiling fails. Thread safe; may run the model when profiling.
  Status AddModel(const ModelConfig& config, std::shared_ptr<ModelRunner> runner,
                  const AddModelOptions& options);
  Status AddModel(const ModelConfig& config, std::shared_ptr<ModelRunner> runner) {
    return AddModel(config, std::move(runner), AddModelOptions{});
  }
  // Stops accepting requests for the model, answers its queued requests with kUnavailable and
  // waits for its running batches. `answered` (may be null) gets how many queued requests were
  // answered so. Errors: kNotFound.
  Status RemoveModel(const std::string& name, size_t* answered = nullptr);
  // Unloading as Triton does: stops accepting requests for the model, lets every request already
  // admitted (queued or running) finish, then removes it. Requests still queued after `timeout_ms`
  // (workers stuck, say) are answered with kUnavailable as RemoveModel does. Errors: kNotFound.
  Status DrainAndRemoveModel(const std::string& name, int64_t timeout_ms);

  // Admits a request or refuses it. Either way the request's callback is called exactly once:
  // refusals call it on this thread before Enqueue returns, with the same status Enqueue returns.
  // Refusals: kNotFound (unknown model), kInvalidArgument (priority out of range, input names or
  // shapes the model does not take, a batch dim over max_batch_size), kResourceExhausted (queue
  // full; retryable, the response carries retry_after_s), kUnavailable (shutting down), and
  // kDeadlineExceeded (the deadline already passed).
  Status Enqueue(std::unique_ptr<InferenceRequest> request);

  void SetTenantWeight(const std::string& tenant, double weight);

  // Estimated device time of a batch of `batch_size` of `model` on `device_index`; kNotFound for an
  // unknown model.
  StatusOr<int64_t> EstimateNs(const std::string& model, int device_index, int batch_size) const;
  StatusOr<std::vector<LatencyPoint>> Profile(const std::string& model, int device_index) const;
  // The most rows a batch of `model` takes now: max_batch_size, or less under batch_min_gain.
  // kNotFound for an unknown model.
  StatusOr<int> BatchLimit(const std::string& model) const;

  SchedulerStats Stats() const;
  int num_workers() const;

  struct Impl;

 private:
  explicit Scheduler(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace gpuhive::sched
