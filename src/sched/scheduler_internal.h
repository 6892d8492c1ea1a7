// Private to the scheduler (scheduler*.cc): its queues, workers and batches, and Scheduler::Impl.
// One lock (Impl::mu) guards every queue, the tenants' virtual times, the latency profiles and the
// workers' state. Workers pull: a free worker sweeps expired requests, asks every queue's batcher
// whether a batch is ready, picks by (effective priority, tenant virtual time, age), checks that
// its device is the right place for the batch, and runs it with the lock released.
//
// The units: scheduler.cc (the public API: models, admission, statistics), scheduler_batcher.cc
// (the dynamic batcher, the dispatcher's choice and device placement, all under the lock) and
// scheduler_worker.cc (the worker and reaper threads, running a batch, profiling).
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gpuhive/scheduler.h"
#include "sched/latency_profile.h"

namespace gpuhive::sched {
namespace detail {

inline constexpr char kLog[] = "sched";
inline constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

inline int64_t ToNs(int64_t us) { return us * 1000; }

struct Tenant {
  double weight = 1.0;
  double vtime = 0.0;  // weighted device time received (start-time fair queueing)
  int64_t device_ns = 0;
  int queued = 0;
};

struct Model;

struct Pending {
  std::unique_ptr<InferenceRequest> req;
  std::vector<TensorView> inputs;  // views of req->inputs in the runner's input order
  int level = 0;                   // requested priority level
  int64_t enqueue_ns = 0;
  int64_t queue_deadline_ns = 0;   // from the queue policy; 0: none
  TimeoutAction action = TimeoutAction::kReject;
  int64_t delayed_since_ns = 0;    // set when moved to the delayed queue
  int64_t rows = 1;
  std::string signature;
  uint64_t seq = 0;
  bool taken = false;
};

// Requests of one model and one tenant, one FIFO per priority level plus the delayed ones.
struct Queue {
  Model* model = nullptr;
  Tenant* tenant = nullptr;
  std::string tenant_name;
  std::vector<std::deque<Pending>> levels;
  std::deque<Pending> delayed;
  int count = 0;
  int64_t rows = 0;  // sum of the queued requests' batch dims
};

struct Model {
  ModelConfig config;
  std::shared_ptr<ModelRunner> runner;
  std::vector<std::string> input_names, output_names;
  int levels = 1;
  int default_level = 0;
  std::vector<QueuePolicy> policies;  // per level, resolved
  std::vector<int> level_counts;
  std::map<std::string, std::unique_ptr<Queue>> queues;  // by tenant
  std::vector<detail::LatencyProfile> profiles;          // per device
  ModelStats stats;
  int running = 0;
  bool trial_running = false;  // a batch of an unmeasured size runs (one at a time: batch_min_gain)
  int batches_since_trial = 0;  // batch_min_gain: the next size is measured again every so many
  uint64_t row_bytes = 0;  // the runner's OneRowActivationBytes, as last read (0: not known)
  bool accepting = true;

  bool batching() const { return config.max_batch_size > 0 && config.dynamic_batching; }
  int max_rows() const { return std::max(1, config.max_batch_size); }
};

struct Worker {
  WorkerContext ctx;
  DeviceSpec::Worker spec;
  bool busy = false;
  int64_t busy_until_ns = 0;
  uint64_t holding_bytes = 0;  // activation bytes of the batch it runs (batch_memory's estimate)
  std::thread thread;
};

struct DeviceState {
  std::vector<int> workers;
  int unreserved_workers = 0, reserved_workers = 0;
  uint64_t unreserved_holding = 0;  // activation bytes the unreserved workers' batches hold
  int64_t busy_ns = 0;
  uint64_t batches = 0;
};

struct Batch {
  Model* model = nullptr;
  Queue* queue = nullptr;
  std::shared_ptr<ModelRunner> runner;
  std::vector<Pending> items;
  int64_t rows = 0;
  int64_t estimate_ns = 0;
  int level = 0;
  bool trial = false;  // larger than the model's proven batch limit: measures a new size
};

// A ready batch found by the batcher: which requests, in order, without removing them yet.
struct Candidate {
  Queue* queue = nullptr;
  int eff_level = 0;
  int best_requested_level = 0;
  uint64_t head_seq = 0;
  std::vector<Pending*> items;
  int64_t rows = 0;
};

// Fails the request with `status` (its completion callback runs on this thread).
inline void Answer(Pending& p, Status status) {
  InferenceRequest& r = *p.req;
  r.Fail(std::move(status));
}

}  // namespace detail

struct Scheduler::Impl {
  SchedulerOptions opts;
  mutable std::mutex mu;
  std::condition_variable work_cv;  // workers wait for work
  std::condition_variable idle_cv;  // RemoveModel waits for a model's running batches
  std::condition_variable reaper_cv;  // the reaper waits for the next deadline
  std::thread reaper;  // answers expired requests at their deadline even when every worker is busy
  bool reaper_stop = false;
  std::map<std::string, std::unique_ptr<detail::Model>> models;
  std::map<std::string, detail::Tenant> tenants;
  std::vector<std::unique_ptr<detail::Worker>> workers;
  std::vector<detail::DeviceState> devices;
  bool stopping = false;
  uint64_t next_seq = 0;
  int64_t next_expiry_ns = detail::kNever;
  int total_queued = 0;
  int rr_next = 0;
  double system_vtime = 0.0;

  // ---- the batcher and the dispatcher (scheduler_batcher.cc), all called with mu held ----

  detail::Tenant& TenantFor(const std::string& name) { return tenants[name]; }

  int EffectiveLevel(int level, int64_t since_ns, int64_t now) const {
    if (opts.aging_interval_us <= 0) return level;
    int64_t boost = (now - since_ns) / detail::ToNs(opts.aging_interval_us);
    return static_cast<int>(std::max<int64_t>(0, level - boost));
  }

  static int64_t NextDeadline(const detail::Pending& p) {
    int64_t d = detail::kNever;
    if (p.req->deadline_ns > 0) d = p.req->deadline_ns;
    if (p.queue_deadline_ns > 0) d = std::min(d, p.queue_deadline_ns);
    return d;
  }

  // Estimated device time of a batch of `rows` of `m` on `device`.
  int64_t Estimate(const detail::Model& m, int device, int64_t rows) const;
  // The most rows a batch of `m` takes now (SchedulerOptions::batch_min_gain): the trial size
  // while no trial batch of it runs, else the proven one; `proven` receives the latter.
  int64_t BatchLimit(const detail::Model& m, int64_t* proven = nullptr) const;
  // SchedulerOptions::batch_memory resolved: the activation bytes one worker may hold (0: no
  // bound).
  uint64_t WorkerMemory() const;
  // What one reserved (critical) worker's batch may hold: the largest one-row bytes of the models
  // critical by default. Set aside from the device's allowance, so critical work never waits for
  // memory and adds none.
  uint64_t CriticalShare() const;
  // What the unreserved workers of device `d` may hold together: WorkerMemory times their number,
  // less the reserved workers' shares (at least one worker's); 0: no bound.
  uint64_t Allowance(int d) const;
  // The most rows of `m` that batch_memory allows one batch (max_batch_size when no bound).
  int64_t MemoryRows(const detail::Model& m) const;
  // The activation bytes a batch of `rows` of `m` holds, by its one-row bytes (0: not known).
  static uint64_t BatchBytes(const detail::Model& m, int64_t rows) {
    const int64_t executed = m.runner ? std::max(rows, m.runner->ExecutedRows(rows)) : rows;
    return m.row_bytes * static_cast<uint64_t>(executed);
  }
  // Cuts `c` to its longest prefix of requests that `m`'s runner executes without padding rows and
  // whose batch holds at most `max_bytes`; with `keep_first` the first request stays whatever it
  // needs. Recomputes the candidate's rows and best level. False (c unchanged) when no prefix
  // qualifies.
  static bool KeepUnpaddedPrefix(const detail::Model& m, detail::Candidate& c, uint64_t max_bytes, bool keep_first);
  // Whether worker `self` may start `c` now under batch_memory; a reserved worker's candidate is
  // cut to its share (never below its first request) instead, an unreserved worker's to the
  // longest unpadded prefix that fits beside the running batches (false when none does).
  bool FitsMemory(const detail::Worker& self, detail::Candidate& c) const;
  // Answers expired requests: hard deadlines and REJECT queue timeouts; DELAY timeouts move to the
  // delayed queue. Recomputes next_expiry_ns.
  void SweepExpired(int64_t now, std::vector<detail::Pending>* expired);
  void RemoveAccounting(detail::Queue& q, const detail::Pending& p);
  // The dynamic batcher for one queue. Returns a ready candidate, or nothing and lowers *wake to
  // when it may become ready.
  std::optional<detail::Candidate> FormBatch(detail::Queue& q, int64_t now, int64_t* wake);
  bool IdleReservedWorker(int device, int level) const;
  // Estimated time for device `d` to run everything queued now (as full batches), `c` included.
  int64_t BacklogNs(int d) const;
  // Whether worker `self` should run `c` now. Weighted: unless another device would finish the
  // whole queued backlog (this batch included) before this one finishes this batch, measured by each
  // device's latency profiles and its workers' current load. Round-robin: only on the device whose
  // turn it is.
  bool PlaceHere(const detail::Worker& self, const detail::Candidate& c, int64_t now, int64_t* wake) const;
  // Picks the next batch for worker `w` and removes its requests from the queues.
  std::optional<detail::Batch> Select(detail::Worker& self, int64_t now, int64_t* wake);
  detail::Batch Take(detail::Worker& self, detail::Candidate& c);

  // ---- the threads and running a batch (scheduler_worker.cc) ----

  void WorkerLoop(int index);
  void ReaperLoop();
  // Called with `lk` (on mu) held: sweeps the requests expired at `now` and, when there are any,
  // answers them with the lock released and wakes the workers (queue space was freed). Returns
  // whether it answered any.
  bool AnswerExpired(std::unique_lock<std::mutex>& lk, int64_t now);
  struct ExecResult {
    int64_t compute_ns = 0;
    bool ok = false;
    uint64_t executed = 0;  // requests answered after running
    uint64_t expired = 0;   // requests whose deadline passed after dispatch (never executed)
  };
  ExecResult Execute(detail::Worker& self, detail::Batch& batch);
  Status Profile(detail::Model& m, const std::vector<Tensor>& inputs, int repeats);
};

}  // namespace gpuhive::sched
