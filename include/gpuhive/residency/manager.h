// ModelManager: keeps as many models resident on a device as its byte budget allows and swaps the
// rest in on demand (DESIGN.md "Residency and swapping", "Memory model").
//
// Tiers per model version: disk (the .onnx file, read whole when needed) -> host (a copy in host memory,
// pinned where CUDA exists) -> device (an Executable compiled by the device's execution backend,
// execution.h; its weights, arenas and workspaces are
// allocated through the manager's budgeted memory stack). State machine per version:
//
//   kOnDisk -> kLoadingHost -> kInHost -> kLoadingDevice -> kResident
//   kResident -> kInHost (evicted / idle unload) | kOnDisk (explicit unload)
//   kLoadingHost | kLoadingDevice -> kFailed (the error is kept and reported for that model only);
//   kFailed -> kLoadingHost | kLoadingDevice (retried on the next Acquire) | kOnDisk
//
// Memory stack (bottom to top): upstream -> PoolResource -> TrackingResource (leak report) ->
// StatisticsResource (per model / kind) -> LimitResource (per-model hard limits) -> budget (total,
// changeable at run time) -> FailureCallbackResource, whose callback evicts idle models and
// retries the allocation. Everything a model allocates carries AllocTag{owner id, kind}.
//
// Swap-in (host tier -> device) is pipelined as PipeSwitch does: the model is compiled with its
// weight storage allocated but not filled, the copies go to the CopyEngine (the copy stream) in the
// order the plan first uses the weights, and the model is leased at once; each execution step
// waits (WeightGate) for the weights it reads. A model whose copy is in flight is never evicted. A
// failed copy fails the runs that need the missing weights, and the model is dropped back to the
// host tier when its last lease ends (the next Acquire loads it again).
//
// Host tier budget: with host_budget_bytes set, host copies beyond it are dropped (the eviction
// policy picks which) and those models come from disk again. Models added from
// memory (AddModel) have no disk copy and are never dropped.
//
// Acquire returns a ModelLease (RAII); a leased model is never evicted. Loads run concurrently up
// to ManagerOptions::max_concurrent_loads; a second Acquire of a model being loaded waits for that
// load instead of starting another.
//
// Thread safety: every method is thread safe. No file I/O, import or compilation runs under the
// manager's lock. The manager must outlive every lease it handed out.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "gpuhive/memory/adaptors.h"
#include "gpuhive/memory/pool_resource.h"
#include "gpuhive/residency/copy_engine.h"
#include "gpuhive/residency/eviction.h"
#include "gpuhive/residency/model_config.h"
#include "gpuhive/residency/repository.h"
#include "gpuhive/execution.h"
#include "gpuhive/runtime.h"
#include "gpuhive/status.h"

namespace gpuhive::residency {

enum class ModelState { kOnDisk, kLoadingHost, kInHost, kLoadingDevice, kResident, kFailed };
std::string_view ModelStateName(ModelState state);
// Whether the state machine above allows `from` -> `to`.
bool IsValidTransition(ModelState from, ModelState to);

// A state change of one model version, as ManagerOptions::on_transition reports it.
struct ModelTransition {
  const std::string& name;
  int64_t version = 0;
  ModelState from = ModelState::kOnDisk;
  ModelState to = ModelState::kOnDisk;
  int64_t swap_ns = 0;          // duration of the last host -> device load (to == kResident)
  uint64_t device_bytes = 0;    // bytes the model held in the budget
};

struct ManagerOptions {
  // Device byte budget: weights + activation arenas + workspace + I/O of every model.
  uint64_t budget_bytes = 1ull << 30;
  // The device models run on: its copy API moves every weight byte and the bandwidth probe, and
  // its memory is the pool's upstream unless device_upstream says otherwise. Null: the host.
  // Not owned.
  ComputeDevice* device = nullptr;
  // Where device memory comes from (null: device->memory(); DefaultHostResource() on the CPU).
  // Not owned.
  MemoryResource* device_upstream = nullptr;
  // Host tier memory. Null: pinned host memory when a CUDA device is present, else
  // DefaultHostResource(). Not owned.
  MemoryResource* host_resource = nullptr;
  int max_concurrent_loads = 2;
  int compile_threads = 1;
  bool optimize = true;  // CompileOptions::optimize for every model
  // Idle time after which a resident model is unloaded to the host tier, when its config sets no
  // keep_alive. kKeepAliveForever: never; 0: as soon as its last lease ends.
  int64_t default_keep_alive_us = 5 * 60 * 1'000'000ll;
  std::shared_ptr<EvictionPolicy> policy;  // null: MakeCostPolicy()
  // Half-life of the decayed use count the cost policy weighs (recency and frequency together).
  int64_t frequency_half_life_us = 30'000'000;
  // Predictive preloading (transition table): after each Acquire, up to `preload_candidates`
  // models whose probability of being next is at least `preload_min_probability` are loaded in
  // the background, into spare budget or by evicting idle models predicted less likely.
  bool enable_preloading = true;
  size_t preload_candidates = 2;
  double preload_min_probability = 0.3;
  // No CPU fallback under memory pressure: a request that cannot get device memory is refused.
  bool strict_device = false;
  ControlMode control_mode = ControlMode::kNone;
  // Poll mode rescans the repository this often. A new or changed model file is taken once two
  // polls in a row saw the same size and mtime (a file still being written is never loaded).
  int64_t poll_interval_us = 1'000'000;
  // Background housekeeping (keep-alive unloads, repository polling). 0: no thread; call
  // Housekeep() yourself.
  int64_t housekeeping_interval_us = 100'000;
  // Bytes copied host -> device at start-up to measure the bandwidth (0: skip, assume 10 GB/s).
  uint64_t bandwidth_probe_bytes = 32ull << 20;
  // A testing aid (the soak): every allocation from the pool fails with this probability, as an
  // out-of-memory device would, so eviction and refusals run often. 0: none.
  double inject_alloc_failure_probability = 0;
  // Steady clock in ns (tests substitute their own).
  std::function<int64_t()> clock;
  // Called on every state change (loads, evictions, failures) with the manager's lock held: it
  // must be quick (e.g. bump metrics) and must not call the manager. Null: none.
  std::function<void(const ModelTransition&)> on_transition;
  // Pipelined swap-in (see above). false: Acquire returns only after the whole weight copy (the
  // same copy engine, waited for), the comparison point.
  bool pipelined_swap = true;
  // The copy stream's chunking and chunk copy (tests delay or fail chunks through it).
  CopyEngineOptions copy_engine;
  // Whether this manager may load `name` on its own initiative: `preload` in its config at Create,
  // and predictive preloading. Null: every model. Several devices (DeviceSet) answer true only for
  // the models placed on this manager's device, so no device preloads another's models. Called
  // with the manager's lock held: it must not call the manager.
  std::function<bool(const std::string& name)> may_preload;
  // Host tier byte budget (0: unlimited). Host copies beyond it are dropped by the eviction
  // policy; leased, loading and memory-only (AddModel) models keep theirs.
  uint64_t host_budget_bytes = 0;
};

// What ListModels reports per model version.
struct ModelStatus {
  std::string name;
  int64_t version = 0;
  ModelState state = ModelState::kOnDisk;
  Status last_error;
  uint64_t device_bytes = 0;  // bytes this model holds in the budget now
  uint64_t host_bytes = 0;
  int leases = 0;
  uint64_t use_count = 0;
  int64_t last_use_ns = 0;
  int64_t last_swap_ns = 0;  // duration of the last host -> device load
  int64_t last_copy_ns = 0;  // its weight copy (pipelined: overlapped with the first request)
  bool copy_in_flight = false;
  // Host -> device weight bytes of all its swap-ins (copy engine) and the time spent copying them,
  // since it was registered; bytes / time is its transfer rate.
  uint64_t h2d_bytes = 0;
  int64_t h2d_ns = 0;
  // OK, or why the model cannot be used under the current budget and memory limit: its size (the
  // file's before the first load) exceeds them, or its load or a one-row request failed for
  // memory while nothing else held any. Such a model is not ready; a larger budget or limit, a
  // successful run or a changed file clears it.
  Status fits;
  // Set by DeviceSet::ListModels: the id of the device the model is placed on ("sim:1", "cpu");
  // empty when it is not placed yet (or the manager stands alone).
  std::string device;
  // The execution backend its resident copy was compiled by ("cpu", "cuda"); empty when not resident.
  std::string executor;
  // The precision it runs in ("fp32", "int8") and, for a config asking for int8, the accuracy
  // gate's measurement against FP32 at load (-1: not measured) or why it runs FP32 instead.
  std::string precision = "fp32";
  std::string precision_note;
  double precision_rel_l2 = -1, precision_top1 = -1;
};

struct ResidencyStats {
  uint64_t acquires = 0;
  uint64_t hits = 0;            // resident when acquired (no load, no wait for another's load)
  uint64_t loads = 0;           // host -> device loads that succeeded (demand and preload)
  uint64_t load_failures = 0;
  uint64_t evictions = 0;       // device -> host, by pressure, budget change or policy
  uint64_t idle_unloads = 0;    // by keep-alive
  uint64_t bytes_swapped_in = 0;
  uint64_t refused = 0;         // Acquire errors other than kNotFound
  uint64_t preloads = 0;        // completed preloads
  uint64_t preload_hits = 0;    // preloaded models whose first use came before their eviction
  uint64_t preload_wasted = 0;  // preloaded models evicted unused
  uint64_t pressure_retries = 0;   // allocation failures answered by evicting and retrying
  uint64_t batch_splits = 0;       // requests run as smaller batches under pressure
  uint64_t cpu_fallbacks = 0;      // requests run outside the device budget
  uint64_t budget_bytes = 0;
  uint64_t used_bytes = 0;
  uint64_t peak_used_bytes = 0;
  double h2d_bytes_per_s = 0;
  // Weight copies of swap-ins (copy engine): bytes, time spent copying, failed copies.
  uint64_t bytes_copied = 0;
  int64_t copy_ns = 0;
  uint64_t copy_failures = 0;
  // Host tier: bytes of host copies held now, its budget (0: unlimited), copies dropped for it.
  uint64_t host_used_bytes = 0;
  uint64_t host_budget_bytes = 0;
  uint64_t host_drops = 0;
  // Outputs handed back to callers and not yet freed (accounted as I/O, outside the budget).
  uint64_t io_bytes = 0;
  // Copy time against bytes / measured bandwidth (1.0: at the measured bandwidth).
  double copy_vs_bandwidth() const {
    return bytes_copied && h2d_bytes_per_s > 0
               ? static_cast<double>(copy_ns) * 1e-9 / (static_cast<double>(bytes_copied) / h2d_bytes_per_s)
               : 0;
  }
  double hit_rate() const { return acquires ? double(hits) / double(acquires) : 0; }
  double preload_hit_rate() const { return preloads ? double(preload_hits) / double(preloads) : 0; }
};

class ModelManager;

// A model held resident for as long as the lease lives. Move-only. model() may be run by any
// number of threads at once (each with its own ExecutionContext), e.g. from a scheduler
// ModelRunner that keeps one context per worker.
class ModelLease {
 public:
  ModelLease() = default;
  ModelLease(ModelLease&& o) noexcept { *this = std::move(o); }
  ModelLease& operator=(ModelLease&& o) noexcept;
  ModelLease(const ModelLease&) = delete;
  ModelLease& operator=(const ModelLease&) = delete;
  ~ModelLease() { Release(); }

  explicit operator bool() const { return model_ != nullptr; }
  Executable& model() const { return *model_; }
  const ModelConfig& config() const;
  const std::string& name() const;
  int64_t version() const;
  uint32_t owner_tag() const;
  bool was_resident() const { return was_resident_; }  // a hit: no load was needed or waited for
  int64_t swap_ns() const { return swap_ns_; }         // load time when it was not resident
  // Ends the lease early (the destructor does it otherwise).
  void Release();

  struct Entry;

 private:
  friend class ModelManager;
  ModelManager* manager_ = nullptr;
  std::shared_ptr<Entry> entry_;
  Executable* model_ = nullptr;
  bool was_resident_ = false;
  int64_t swap_ns_ = 0;
};

class ModelManager {
 public:
  // Creates the memory stack, measures host -> device bandwidth and, with a repository in mode
  // kNone or kPoll, registers every model in it (bad ones are reported through ListModels and
  // the log, never failing Create) and loads those with preload set. `repository` may be null
  // (models are then added with AddModel); it must outlive the manager.
  // Errors: kInvalidArgument for bad options (zero budget, no load slots).
  static StatusOr<std::unique_ptr<ModelManager>> Create(ManagerOptions options,
                                                        ModelRepository* repository = nullptr);
  ~ModelManager();
  ModelManager(const ModelManager&) = delete;
  ModelManager& operator=(const ModelManager&) = delete;

  // Registers a model from a serialized ONNX ModelProto held in memory (it starts in the host
  // tier). Errors: kAlreadyExists, kInvalidArgument (bad config).
  Status AddModel(ModelConfig config, std::string onnx_bytes, int64_t version = 1);
  // Explicit loading: registers `name` from the repository (if not yet) and makes its versions
  // resident. Errors: kNotFound, the repository's and the load's errors for this model only.
  Status Load(const std::string& name);
  // Drops the model's device and host copies (a leased copy goes when its last lease ends).
  // Models from a repository return to kOnDisk and stay registered in modes kNone/kPoll;
  // in kExplicit mode they are unregistered. Errors: kNotFound.
  Status Unload(const std::string& name);

  // Returns a lease on a resident copy of `name` (`version` 0: the newest registered version),
  // loading or swapping it in first if needed, which may evict idle models.
  // Errors: kNotFound (unknown model or version), kResourceExhausted (the model can never fit the
  // budget or its memory limit: the message names the sizes; or everything else is leased),
  // and the import/compile error of this model (its state becomes kFailed; a later Acquire retries).
  StatusOr<ModelLease> Acquire(const std::string& name, int64_t version = 0);

  // Runs a leased model with the memory-pressure path: an allocation failure first evicts idle
  // models and retries (inside the memory stack), then the batch is split in halves (models with
  // max_batch_size > 0), then, unless strict_device, the request runs on the CPU outside the
  // device budget (a host-memory copy of the model compiled on first need and kept while the model
  // is resident; `fallback` is the host context to use, null: a temporary one), and only then is
  // it refused with kResourceExhausted explaining why. Other errors are returned as they are (a
  // failed pipelined weight copy: its error). `ctx` should take its memory from memory() so arenas
  // count against the budget. The outputs are host memory accounted as I/O (io_statistics()),
  // outside the budget: they may outlive the lease, not the manager.
  StatusOr<std::vector<Tensor>> Run(const ModelLease& lease, ExecutionContext& ctx,
                                    const std::vector<TensorView>& inputs, ExecutionContext* fallback = nullptr);

  // How RunBatch waits out memory that other running batches hold.
  struct BatchOptions {
    int64_t version = 0;  // 0: the newest registered version
    // A shortage that only other leases cause (kContended, or an allocation the budget refused
    // without proof that it can never fit) is retried, holding nothing, with backoff (0.5 ms
    // doubling to 50 ms) for up to this long. 0: no retry.
    int64_t pressure_wait_ms = 0;
    // When set and still 0 after a run that succeeded: receives the activation bytes (arena and
    // workspace) of the model's one-row plan for these inputs' other dims (prepared, if it was
    // not, while the lease is held). What the scheduler bounds batches by
    // (sched::ModelRunner::OneRowActivationBytes).
    std::atomic<uint64_t>* one_row_bytes = nullptr;
  };
  // The one acquire -> run -> release path (the engine's workers, ManagedModelRunner and the
  // residency benchmark take it): leases `name`, loading or swapping it in if needed, runs `inputs`
  // in `ctx` through Run's pressure path, releases the lease and hands ctx's arena back to the
  // pool (a pool allocation is ~0.2 us, and an idle worker then holds no budget). Errors:
  // kNotFound (unknown model or version); kUnavailable with the shortage kept when the model
  // cannot be made resident or run now (the message says why, and how long it waited); the run's
  // other errors as they are.
  StatusOr<std::vector<Tensor>> RunBatch(const std::string& name, ExecutionContext& ctx,
                                         const std::vector<TensorView>& inputs, ExecutionContext* fallback,
                                         const BatchOptions& options);

  // Changes the budget at run time; idle models are evicted until the used bytes fit. Leased
  // bytes above a smaller budget are allowed to finish. Errors: kInvalidArgument for 0.
  Status SetBudget(uint64_t budget_bytes);

  // Changes the per-model hard limit of every registered version of `name` at run time (0: no
  // limit). Bytes already allocated stay; the limit applies to later allocations (a reload, a
  // larger batch's arena). Errors: kNotFound.
  Status SetMemoryLimit(const std::string& name, uint64_t limit_bytes);

  // Changes the host tier budget at run time (0: unlimited); host copies beyond it are dropped.
  void SetHostBudget(uint64_t host_budget_bytes);

  // Keep-alive unloads and repository polling (what the housekeeping thread runs). Thread safe.
  void Housekeep();
  // Waits until queued preloads are done (tests and benchmarks).
  void WaitForPreloads();

  // The config of a registered model (`version` 0: the newest). Errors: kNotFound.
  StatusOr<ModelConfig> GetConfig(const std::string& name, int64_t version = 0) const;
  // Why the last load of `name` (its newest version) failed; OK when it did not, or when the
  // model is not registered.
  Status LastLoadError(const std::string& name) const;

  // The budgeted resource: give it to ExecutionContexts so arenas count against the budget.
  // On a device the host runs kernels for (simulated), this is the executor's view of that memory.
  MemoryResource* memory() { return exec_memory_; }
  std::vector<ModelStatus> ListModels() const;
  // Triton's load with a config override: `name`'s versions are registered anew with `config`
  // (nullptr: its config.pbtxt, read again) — whatever was registered is unloaded first — and
  // loaded as Load does. Errors: as Load; kUnavailable while a version is still leased or loading.
  Status LoadWithConfig(const std::string& name, const ModelConfig* config);
  // Models of the repository whose directory is there but cannot be served (an invalid config,
  // no usable version), with why, as of the last scan (start-up or poll; none in explicit mode).
  std::map<std::string, Status> ScanErrors() const;
  ResidencyStats Stats() const;
  double h2d_bytes_per_s() const { return h2d_bytes_per_s_; }
  const EvictionPolicy& policy() const { return *options_.policy; }
  // Bytes allocated through the stack and not freed, and a human-readable report of them.
  uint64_t outstanding_bytes() const { return tracking_->outstanding_bytes(); }
  std::string LeakReport() const { return tracking_->LeakReport(); }
  const StatisticsResource& statistics() const { return *statistics_; }
  // Where outputs handed back to callers come from: host memory, accounted per model as kIO,
  // outside the device budget.
  const StatisticsResource& io_statistics() const { return *io_; }
  // Blocks until every weight copy queued so far has ended (tests and benchmarks).
  void WaitForCopies() { copy_engine_->Drain(); }
  PoolStats pool_stats() const { return pool_->GetPoolStats(); }

  struct BudgetResource;

 private:
  friend class ModelLease;
  using Entry = ModelLease::Entry;

  explicit ModelManager(ManagerOptions options, ModelRepository* repository);
  Status Init();
  int64_t Now() const { return options_.clock(); }

  Status RegisterLocked(RepositoryModel model);
  // ModelStatus::fits of `e`.
  Status FitsLocked(const Entry& e) const;
  // Records (or clears) that `e` failed for memory it can never have (ModelStatus::fits).
  void SetNeverFitsLocked(Entry& e, bool failed);
  // Whether the allocation that last failed on this thread, made for `e`, exceeds the whole
  // budget or e's memory limit together with `held_bytes` that e must hold at the same time:
  // then no eviction can ever make room.
  bool FailedAllocationCanNeverFit(const Entry& e, uint64_t held_bytes) const;
  std::shared_ptr<Entry> FindLocked(const std::string& name, int64_t version) const;
  void SetStateLocked(Entry& e, ModelState to);
  StatusOr<ModelLease> AcquireEntry(std::shared_ptr<Entry> e, bool preload, double preload_probability);
  // Loads `entry` (kLoadingHost or kLoadingDevice, only this thread touches it meanwhile) through
  // the steps below and makes it resident. Runs without the lock.
  Status LoadToDevice(const std::shared_ptr<Entry>& entry, bool preload, double preload_probability);
  // Records a failed load of `e` (its state becomes `to`; a preload keeps no error) and returns `s`.
  Status FailLoad(Entry& e, Status s, ModelState to, bool preload);
  // Disk tier -> host tier: reads and imports e's file (kLoadingHost -> kLoadingDevice).
  Status LoadToHost(Entry& e, bool preload);
  // Bytes given to AddModel: imports them once into the host tier (graphs without subgraphs).
  Status ImportHostBytes(Entry& e, bool preload);
  // The config's precision (ApplyPrecision) on a model just imported from `onnx_bytes`, from disk or
  // from the host tier's bytes; *model null: a model with subgraphs, which runs as imported.
  Status ApplyConfiguredPrecision(Entry& e, std::string_view onnx_bytes, std::unique_ptr<ir::Model>* model,
                                  bool preload);
  // Compiles e's host-tier graph into the budget with the weight copies left to the copy engine.
  // A preload's allocation failures never evict (Entry::no_evict). Errors fail the load.
  StatusOr<std::unique_ptr<Executable>> CompileForDevice(Entry& e, bool preload);
  // Not pipelined: copies the weights on the copy stream and waits until the copy has ended.
  CopyJobResult CopyWeightsAndWait(std::vector<WeightCopy> copies, std::shared_ptr<WeightGate> gate);
  void OnCopyDone(const std::shared_ptr<Entry>& entry, const CopyJobResult& result);
  // After a lease ends or a copy completes: what an idle resident model owes (unload requested,
  // failed copy, keep-alive 0 when `lease_ended`). Moves what must be freed into the out-parameters.
  void SettleIdleLocked(Entry& e, std::unique_ptr<Executable>* victim, Buffer* host,
                        std::unique_ptr<ir::Model>* host_model, bool lease_ended);
  // Drops host copies (not `except`) until the host tier fits its budget; frees outside the lock.
  void EnforceHostBudget(const Entry* except);
  // Evicts idle models (not `except`) until `needed` more bytes fit the budget. With a probability
  // bound only models predicted less likely than it are taken. Returns whether it fits now.
  bool EvictFor(uint64_t needed, const Entry* except, double below_probability);
  // Picks one idle resident victim under the lock and evicts it; false when there is none.
  bool EvictOne(const Entry* except, double below_probability);
  void EvictLocked(Entry& e, std::unique_ptr<Executable>* out);
  bool OnAllocationFailure(size_t bytes, AllocTag tag, int attempt);
  void ReleaseLease(Entry& e);
  void SchedulePreloads(const std::string& from);
  void PreloadLoop();
  void HousekeepingLoop();
  void PollRepository();
  uint64_t UsedBytes() const;
  bool MayPreload(const std::string& name) const { return !options_.may_preload || options_.may_preload(name); }
  uint64_t KeepAliveUs(const Entry& e) const;
  double DecayedUses(const Entry& e, int64_t now_ns) const;

  std::unique_ptr<MemoryResource> owned_host_;  // pinned host tier when CUDA is present
  ManagerOptions options_;
  ComputeDevice* const device_;  // options_.device or the host
  ExecutionBackend* backend_ = nullptr;  // compiles models for device_ (execution.h)
  ModelRepository* const repository_;
  double h2d_bytes_per_s_ = 10e9;

  std::unique_ptr<PoolResource> pool_;
  std::unique_ptr<FaultInjectionResource> faults_;  // only with inject_alloc_failure_probability
  std::unique_ptr<TrackingResource> tracking_;
  std::unique_ptr<StatisticsResource> statistics_;
  std::unique_ptr<LimitResource> limits_;
  std::unique_ptr<BudgetResource> budget_;
  std::unique_ptr<FailureCallbackResource> top_;
  std::unique_ptr<MemoryResource> kernel_view_;  // set when device memory is not host-accessible
  MemoryResource* exec_memory_ = nullptr;        // what the executor allocates from: top_ or kernel_view_
  std::unique_ptr<StatisticsResource> io_;  // outputs handed back (host memory, kIO)
  std::unique_ptr<CopyEngine> copy_engine_;

  TransitionPredictor predictor_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::map<int64_t, std::shared_ptr<Entry>>> models_;
  uint32_t next_owner_ = 1;
  int active_loads_ = 0;
  ResidencyStats stats_;
  std::deque<std::pair<std::string, double>> preload_queue_;
  int preloads_running_ = 0;
  int64_t last_poll_ns_ = 0;
  // Poll mode: size and mtime of every model file at the last poll, by path.
  std::map<std::string, std::pair<uint64_t, int64_t>> poll_seen_;
  std::map<std::string, Status> scan_errors_;  // GUARDED_BY(mu_): the last scan's
  bool stopping_ = false;
  std::thread preload_thread_;
  std::thread housekeeping_thread_;
  std::mutex housekeeping_mu_;
  std::condition_variable housekeeping_cv_;
};

// Runs one managed model batch by batch the way a scheduler worker does, through
// ModelManager::RunBatch with each worker's own ExecutionContext (its arena in the budget) and no
// wait for memory. A scheduler's ModelRunner can forward RunBatch to it. Thread safe for different
// worker indices; one worker index is used by one thread at a time.
class ManagedModelRunner {
 public:
  // `manager` must outlive the runner.
  ManagedModelRunner(ModelManager* manager, std::string model, int num_workers);
  ~ManagedModelRunner();
  // Errors: kInvalidArgument for a worker index out of range, and Acquire's / Run's errors.
  StatusOr<std::vector<Tensor>> RunBatch(const std::vector<TensorView>& inputs, int worker_index, int num_threads);
  // Input / output names from the model's config (empty when it has none).
  std::vector<std::string> input_names() const;
  std::vector<std::string> output_names() const;

 private:
  ModelManager* const manager_;
  const std::string model_;
  std::vector<std::unique_ptr<ExecutionContext>> contexts_;
  std::vector<std::unique_ptr<ExecutionContext>> fallback_contexts_;
};

}  // namespace gpuhive::residency
