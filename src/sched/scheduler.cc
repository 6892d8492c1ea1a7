// The scheduler: one lock guards every queue, the tenants' virtual times, the latency profiles and
// the workers' state. Workers pull: a free worker sweeps expired requests, asks every queue's
// batcher whether a batch is ready, picks by (effective priority, tenant virtual time, age), checks
// that its device is the right place for the batch, and runs it with the lock released.
#include "gpuhive/scheduler.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <limits>
#include <mutex>
#include <set>
#include <thread>

#include "gpuhive/logging.h"
#include "gpuhive/units.h"
#include "sched/batching.h"
#include "sched/latency_profile.h"
#include "sched/thread_priority.h"

namespace gpuhive::sched {
namespace {

constexpr char kLog[] = "sched";
constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

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
  bool accepting = true;

  bool batching() const { return config.max_batch_size > 0 && config.dynamic_batching; }
  int max_rows() const { return std::max(1, config.max_batch_size); }
};

struct Worker {
  WorkerContext ctx;
  DeviceSpec::Worker spec;
  bool busy = false;
  int64_t busy_until_ns = 0;
  std::thread thread;
};

struct DeviceState {
  std::vector<int> workers;
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

int64_t ToNs(int64_t us) { return us * 1000; }

}  // namespace

struct Scheduler::Impl {
  SchedulerOptions opts;
  mutable std::mutex mu;
  std::condition_variable work_cv;  // workers wait for work
  std::condition_variable idle_cv;  // RemoveModel waits for a model's running batches
  std::condition_variable reaper_cv;  // the reaper waits for the next deadline
  std::thread reaper;  // answers expired requests at their deadline even when every worker is busy
  bool reaper_stop = false;
  std::map<std::string, std::unique_ptr<Model>> models;
  std::map<std::string, Tenant> tenants;
  std::vector<std::unique_ptr<Worker>> workers;
  std::vector<DeviceState> devices;
  bool stopping = false;
  uint64_t next_seq = 0;
  int64_t next_expiry_ns = kNever;
  int total_queued = 0;
  int rr_next = 0;
  double system_vtime = 0.0;

  // ---- helpers, all called with mu held ----

  Tenant& TenantFor(const std::string& name) { return tenants[name]; }

  int EffectiveLevel(int level, int64_t since_ns, int64_t now) const {
    if (opts.aging_interval_us <= 0) return level;
    int64_t boost = (now - since_ns) / ToNs(opts.aging_interval_us);
    return static_cast<int>(std::max<int64_t>(0, level - boost));
  }

  int64_t Estimate(const Model& m, int device, int64_t rows) const {
    const auto& prof = m.profiles[static_cast<size_t>(device)];
    if (!prof.empty()) return prof.Estimate(static_cast<int>(rows), opts.default_estimate_ns);
    // Unknown on this device: borrow another device's estimate.
    for (const auto& p : m.profiles) {
      if (!p.empty()) return p.Estimate(static_cast<int>(rows), opts.default_estimate_ns);
    }
    return opts.default_estimate_ns;
  }

  // Answers expired requests: hard deadlines and REJECT queue timeouts; DELAY timeouts move to the
  // delayed queue. Recomputes next_expiry_ns.
  void SweepExpired(int64_t now, std::vector<Pending>* expired) {
    int64_t next = kNever;
    auto due = [&](const Pending& p) {
      return (p.req->deadline_ns > 0 && p.req->deadline_ns <= now) ||
             (p.queue_deadline_ns > 0 && p.queue_deadline_ns <= now);
    };
    for (auto& [name, m] : models) {
      for (auto& [tname, q] : m->queues) {
        if (q->count == 0) continue;
        auto sweep = [&](std::deque<Pending>& dq, bool is_delayed) {
          std::deque<Pending> keep;
          for (auto& p : dq) {
            if (!due(p)) {
              keep.push_back(std::move(p));
              continue;
            }
            bool hard = p.req->deadline_ns > 0 && p.req->deadline_ns <= now;
            if (!hard && !is_delayed && p.action == TimeoutAction::kDelay) {
              p.queue_deadline_ns = 0;
              p.delayed_since_ns = now;
              q->delayed.push_back(std::move(p));
              continue;
            }
            RemoveAccounting(*q, p);
            m->stats.expired++;
            expired->push_back(std::move(p));
          }
          dq.swap(keep);
        };
        for (auto& dq : q->levels) sweep(dq, false);
        sweep(q->delayed, true);
        for (const auto& dq : q->levels) {
          for (const auto& p : dq) next = std::min(next, NextDeadline(p));
        }
        for (const auto& p : q->delayed) next = std::min(next, NextDeadline(p));
      }
    }
    next_expiry_ns = next;
  }

  static int64_t NextDeadline(const Pending& p) {
    int64_t d = kNever;
    if (p.req->deadline_ns > 0) d = p.req->deadline_ns;
    if (p.queue_deadline_ns > 0) d = std::min(d, p.queue_deadline_ns);
    return d;
  }

  void RemoveAccounting(Queue& q, const Pending& p) {
    q.count--;
    q.rows -= p.rows;
    q.tenant->queued--;
    q.model->level_counts[static_cast<size_t>(p.level)]--;
    q.model->stats.queued--;
    total_queued--;
  }

  // The dynamic batcher for one queue. Returns a ready candidate, or nothing and lowers *wake to
  // when it may become ready.
  std::optional<Candidate> FormBatch(Queue& q, int64_t now, int64_t* wake) {
    Model& m = *q.model;
    // Levels in the order they are served: by effective level of their head, then age.
    struct LevelRef {
      std::deque<Pending>* dq;
      int eff;
      uint64_t seq;
    };
    std::vector<LevelRef> order;
    for (int l = 0; l < m.levels; ++l) {
      auto& dq = q.levels[static_cast<size_t>(l)];
      if (!dq.empty()) order.push_back({&dq, EffectiveLevel(l, dq.front().enqueue_ns, now), dq.front().seq});
    }
    if (!q.delayed.empty()) {
      order.push_back({&q.delayed, EffectiveLevel(m.levels, q.delayed.front().delayed_since_ns, now),
                       q.delayed.front().seq});
    }
    if (order.empty()) return std::nullopt;
    std::sort(order.begin(), order.end(), [](const LevelRef& a, const LevelRef& b) {
      return a.eff != b.eff ? a.eff < b.eff : a.seq < b.seq;
    });

    Candidate c;
    c.queue = &q;
    c.eff_level = order[0].eff;
    c.head_seq = order[0].seq;
    c.best_requested_level = m.levels;
    const std::string& sig = order[0].dq->front().signature;
    const int64_t max_rows = m.max_rows();
    int64_t oldest = kNever;
    bool capped = false;  // a compatible request did not fit: the batch cannot grow
    for (const LevelRef& ref : order) {
      for (Pending& p : *ref.dq) {
        if (p.signature != sig) continue;
        if (c.rows + p.rows > max_rows || (!m.batching() && !c.items.empty())) {
          capped = true;
          break;
        }
        c.items.push_back(&p);
        c.rows += p.rows;
        oldest = std::min(oldest, p.enqueue_ns);
        c.best_requested_level = std::min(c.best_requested_level, p.level);
      }
      if (capped) break;
    }
    if (!m.batching() || c.rows >= max_rows || capped || stopping) return c;
    const auto& preferred = m.config.preferred_batch_sizes;
    if (!preferred.empty()) {
      int64_t best = 0;
      for (int p : preferred) {
        if (p <= c.rows) best = std::max<int64_t>(best, p);
      }
      if (best > 0) {
        // Largest prefix that forms exactly the preferred size.
        int64_t rows = 0;
        size_t n = 0;
        while (n < c.items.size() && rows + c.items[n]->rows <= best) rows += c.items[n++]->rows;
        if (rows == best) {
          c.items.resize(n);
          c.rows = rows;
          return c;
        }
      }
    }
    int64_t delay_ns = ToNs(m.config.max_queue_delay_us);
    if (delay_ns <= 0 || now - oldest >= delay_ns) return c;
    *wake = std::min(*wake, oldest + delay_ns);
    return std::nullopt;
  }

  bool IdleReservedWorker(int device, int level) const {
    for (int w : devices[static_cast<size_t>(device)].workers) {
      const Worker& wk = *workers[static_cast<size_t>(w)];
      if (!wk.busy && wk.spec.reserved_max_level >= 0 && level <= wk.spec.reserved_max_level) return true;
    }
    return false;
  }

  // Estimated time for device `d` to run everything queued now (as full batches), `c` included.
  int64_t BacklogNs(int d) const {
    int64_t total = 0;
    for (const auto& [name, m] : models) {
      int64_t rows = 0;
      for (const auto& [tname, q] : m->queues) rows += m->batching() ? q->rows : q->count;
      if (rows == 0) continue;
      if (!m->batching()) {
        // Each request runs alone; its own dim 0 is the batch.
        for (const auto& [tname, q] : m->queues) {
          if (q->count > 0) total += q->count * Estimate(*m, d, std::max<int64_t>(1, q->rows / q->count));
        }
        continue;
      }
      int64_t full = rows / m->max_rows(), rest = rows % m->max_rows();
      total += full * Estimate(*m, d, m->max_rows()) + (rest > 0 ? Estimate(*m, d, rest) : 0);
    }
    return total;
  }

  // Whether worker `self` should run `c` now. Weighted: unless another device would finish the
  // whole queued backlog (this batch included) before this one finishes this batch, measured by each
  // device's latency profiles and its workers' current load. Round-robin: only on the device whose
  // turn it is.
  bool PlaceHere(const Worker& self, const Candidate& c, int64_t now, int64_t* wake) const {
    if (devices.size() <= 1) return true;
    int here = self.ctx.device_index;
    auto eligible = [&](const Worker& wk) {
      return wk.spec.reserved_max_level < 0 || c.best_requested_level <= wk.spec.reserved_max_level;
    };
    if (opts.placement == PlacementPolicy::kRoundRobin) {
      // The device whose turn it is, skipping devices with no worker allowed to run this batch.
      for (size_t i = 0; i < devices.size(); ++i) {
        size_t d = (static_cast<size_t>(rr_next) + i) % devices.size();
        for (int w : devices[d].workers) {
          if (eligible(*workers[static_cast<size_t>(w)])) return static_cast<int>(d) == here;
        }
      }
      return true;
    }
    const Model& m = *c.queue->model;
    int64_t mine = now + Estimate(m, here, c.rows);
    for (size_t d = 0; d < devices.size(); ++d) {
      if (static_cast<int>(d) == here) continue;
      int64_t avail = kNever;
      int n = 0;
      for (int w : devices[d].workers) {
        const Worker& wk = *workers[static_cast<size_t>(w)];
        if (!eligible(wk)) continue;
        avail = std::min(avail, wk.busy ? std::max(now, wk.busy_until_ns) : now);
        n++;
      }
      if (n == 0) continue;
      int64_t theirs = avail + BacklogNs(static_cast<int>(d)) / n;
      if (theirs < mine) {
        // Re-evaluate when that device should be free (its completion also wakes us).
        *wake = std::min(*wake, std::max(avail, now + 100'000));
        return false;
      }
    }
    return true;
  }

  // Picks the next batch for worker `w` and removes its requests from the queues.
  std::optional<Batch> Select(Worker& self, int64_t now, int64_t* wake) {
    std::vector<Candidate> cands;
    for (auto& [name, m] : models) {
      for (auto& [tname, q] : m->queues) {
        if (q->count == 0) continue;
        auto c = FormBatch(*q, now, wake);
        if (!c) continue;
        if (self.spec.reserved_max_level >= 0 && c->best_requested_level > self.spec.reserved_max_level) continue;
        cands.push_back(std::move(*c));
      }
    }
    if (cands.empty()) return std::nullopt;
    std::sort(cands.begin(), cands.end(), [](const Candidate& a, const Candidate& b) {
      if (a.eff_level != b.eff_level) return a.eff_level < b.eff_level;
      if (a.queue->tenant->vtime != b.queue->tenant->vtime) return a.queue->tenant->vtime < b.queue->tenant->vtime;
      return a.head_seq < b.head_seq;
    });
    for (Candidate& c : cands) {
      // Critical work belongs on a reserved (high-priority) worker when one of them is free.
      if (self.spec.reserved_max_level < 0 && IdleReservedWorker(self.ctx.device_index, c.best_requested_level)) {
        continue;
      }
      if (!PlaceHere(self, c, now, wake)) return std::nullopt;
      return Take(self, c);
    }
    return std::nullopt;
  }

  Batch Take(Worker& self, Candidate& c) {
    Queue& q = *c.queue;
    Model& m = *q.model;
    Batch b;
    b.model = &m;
    b.queue = &q;
    b.runner = m.runner;
    b.rows = c.rows;
    b.level = c.best_requested_level;
    for (Pending* p : c.items) p->taken = true;
    auto extract = [&](std::deque<Pending>& dq) {
      // Usual case: the batch is a prefix of the FIFO; pop it without rebuilding the deque.
      while (!dq.empty() && dq.front().taken) {
        RemoveAccounting(q, dq.front());
        b.items.push_back(std::move(dq.front()));
        dq.pop_front();
      }
      if (std::none_of(dq.begin(), dq.end(), [](const Pending& p) { return p.taken; })) return;
      std::deque<Pending> keep;
      for (auto& p : dq) {
        if (p.taken) {
          RemoveAccounting(q, p);
          b.items.push_back(std::move(p));
        } else {
          keep.push_back(std::move(p));
        }
      }
      dq.swap(keep);
    };
    for (auto& dq : q.levels) extract(dq);
    extract(q.delayed);
    // Serve in arrival order within the batch (outputs are split back by position).
    std::sort(b.items.begin(), b.items.end(), [](const Pending& x, const Pending& y) { return x.seq < y.seq; });
    b.estimate_ns = Estimate(m, self.ctx.device_index, b.rows);
    // Start-time fair queueing: the tenant starts no earlier than the system's virtual time.
    Tenant& t = *q.tenant;
    t.vtime = std::max(t.vtime, system_vtime);
    system_vtime = t.vtime;
    t.vtime += static_cast<double>(b.estimate_ns) / t.weight;
    m.running++;
    self.busy = true;
    self.busy_until_ns = NowNs() + b.estimate_ns;
    if (opts.placement == PlacementPolicy::kRoundRobin) {
      rr_next = (self.ctx.device_index + 1) % static_cast<int>(devices.size());
    }
    return b;
  }

  void WorkerLoop(int index);
  void ReaperLoop();
  void AnswerExpired(std::vector<Pending>& expired, int64_t now);
  struct ExecResult {
    int64_t compute_ns = 0;
    bool ok = false;
    uint64_t executed = 0;  // requests answered after running
    uint64_t expired = 0;   // requests whose deadline passed after dispatch (never executed)
  };
  ExecResult Execute(Worker& self, Batch& batch);
  Status Profile(Model& m, const std::vector<Tensor>& inputs, int repeats);
};

namespace {

void Answer(Pending& p, Status status) {
  InferenceRequest& r = *p.req;
  r.Fail(std::move(status));
}

}  // namespace

Scheduler::Impl::ExecResult Scheduler::Impl::Execute(Worker& self, Batch& batch) {
  ExecResult res;
  Model& m = *batch.model;
  // A deadline may have passed between dispatch and now: such a request is never executed.
  int64_t now = NowNs();
  std::vector<Pending> run;
  for (auto& p : batch.items) {
    if (p.req->deadline_ns > 0 && p.req->deadline_ns <= now) {
      Answer(p, DeadlineExceeded("request '{}' for model '{}' passed its deadline while queued", p.req->id,
                                 m.config.name));
      res.expired++;
    } else {
      run.push_back(std::move(p));
    }
  }
  if (run.empty()) return res;
  int64_t rows = 0;
  std::vector<int64_t> per_rows;
  for (auto& p : run) {
    rows += p.rows;
    per_rows.push_back(p.rows);
  }
  std::vector<Tensor> concat;
  std::vector<TensorView> inputs;
  Status status;
  const int64_t input_start = NowNs();
  if (run.size() == 1) {
    inputs = run[0].inputs;
  } else {
    std::vector<const std::vector<TensorView>*> views;
    for (auto& p : run) views.push_back(&p.inputs);
    auto c = detail::ConcatBatch(views);
    if (c.ok()) {
      concat = std::move(c).value();
      for (auto& t : concat) inputs.push_back(t.view());
    } else {
      status = c.status();
    }
  }
  std::vector<std::vector<Tensor>> outputs(run.size());
  int64_t start = NowNs();
  int64_t output_start = start;
  if (status.ok()) {
    auto out = batch.runner->RunBatch(inputs, self.ctx);
    res.compute_ns = NowNs() - start;
    output_start = NowNs();
    if (!out.ok()) {
      status = out.status();
    } else if (run.size() == 1) {
      outputs[0] = std::move(out).value();
    } else {
      auto split = detail::SplitBatch(*out, per_rows);
      if (split.ok()) {
        outputs = std::move(split).value();
      } else {
        status = split.status();
      }
    }
  }
  res.ok = status.ok();
  res.executed = run.size();
  const int64_t output_ns = NowNs() - output_start;
  for (size_t i = 0; i < run.size(); ++i) {
    InferenceRequest& r = *run[i].req;
    InferenceResponse resp;
    resp.model_name = r.model_name;
    resp.model_version = r.model_version;
    resp.request_id = r.id;
    resp.queue_ns = input_start - run[i].enqueue_ns;
    resp.compute_input_ns = start - input_start;
    resp.compute_ns = res.compute_ns;
    resp.compute_output_ns = output_ns;
    resp.batch_size = static_cast<int>(rows);
    if (!status.ok()) {
      resp.status = status.WithContext(fmt::format("model '{}'", m.config.name));
    } else {
      for (size_t o = 0; o < outputs[i].size() && o < m.output_names.size(); ++o) {
        const std::string& name = m.output_names[o];
        if (!r.requested_outputs.empty() &&
            std::find(r.requested_outputs.begin(), r.requested_outputs.end(), name) == r.requested_outputs.end()) {
          continue;
        }
        resp.outputs.push_back({name, std::move(outputs[i][o])});
      }
    }
    if (r.on_complete) {
      auto cb = std::move(r.on_complete);
      r.on_complete = nullptr;
      cb(std::move(resp));
    }
  }
  return res;
}

void Scheduler::Impl::AnswerExpired(std::vector<Pending>& expired, int64_t now) {
  for (auto& p : expired) {
    bool hard = p.req->deadline_ns > 0 && p.req->deadline_ns <= now;
    Answer(p, hard ? DeadlineExceeded("request '{}' for model '{}' passed its deadline after {} us in the queue",
                                      p.req->id, p.req->model_name, (now - p.enqueue_ns) / 1000)
                   : DeadlineExceeded("request '{}' for model '{}' timed out after {} us in the queue", p.req->id,
                                      p.req->model_name, (now - p.enqueue_ns) / 1000));
  }
  expired.clear();
}

void Scheduler::Impl::ReaperLoop() {
  std::unique_lock<std::mutex> lk(mu);
  while (!reaper_stop) {
    int64_t now = NowNs();
    if (now >= next_expiry_ns) {
      std::vector<Pending> expired;
      SweepExpired(now, &expired);
      if (!expired.empty()) {
        lk.unlock();
        AnswerExpired(expired, now);
        lk.lock();
        work_cv.notify_all();
      }
      continue;
    }
    if (next_expiry_ns == kNever) {
      reaper_cv.wait(lk);
    } else {
      reaper_cv.wait_until(lk, std::chrono::steady_clock::time_point(std::chrono::nanoseconds(next_expiry_ns)));
    }
  }
}

void Scheduler::Impl::WorkerLoop(int index) {
  Worker& self = *workers[static_cast<size_t>(index)];
  if (self.ctx.device.is_cpu() && opts.cpu_nice_per_priority > 0 && self.ctx.stream_priority > 0) {
    if (!detail::LowerCurrentThreadPriority(opts.cpu_nice_per_priority * self.ctx.stream_priority)) {
      GH_LOG_DEBUG(kLog, "worker {}: could not lower its thread priority", index);
    }
  }
  std::unique_lock<std::mutex> lk(mu);
  while (true) {
    int64_t now = NowNs();
    if (now >= next_expiry_ns) {
      std::vector<Pending> expired;
      SweepExpired(now, &expired);
      if (!expired.empty()) {
        lk.unlock();
        AnswerExpired(expired, now);
        lk.lock();
        work_cv.notify_all();  // queue space freed
        continue;
      }
    }
    int64_t wake = kNever;
    std::optional<Batch> batch = Select(self, now, &wake);
    if (batch) {
      lk.unlock();
      ExecResult res = Execute(self, *batch);
      const int64_t compute_ns = res.compute_ns;
      int64_t rows = batch->rows;
      int64_t estimate = batch->estimate_ns;
      batch->items.clear();
      batch->runner.reset();
      lk.lock();
      Model& m = *batch->model;
      if (res.ok && compute_ns > 0) {
        m.profiles[static_cast<size_t>(self.ctx.device_index)].Record(static_cast<int>(rows), compute_ns);
        // Charge the tenant what the batch really cost.
        Tenant& t = *batch->queue->tenant;
        t.vtime += static_cast<double>(compute_ns - estimate) / t.weight;
      }
      batch->queue->tenant->device_ns += compute_ns;
      auto& dev = devices[static_cast<size_t>(self.ctx.device_index)];
      dev.busy_ns += compute_ns;
      dev.batches++;
      m.stats.batches++;
      m.stats.batched_rows += static_cast<uint64_t>(rows);
      m.stats.completed += res.executed;
      m.stats.expired += res.expired;
      if (!res.ok) m.stats.failed += res.executed;
      m.running--;
      self.busy = false;
      idle_cv.notify_all();
      work_cv.notify_all();
      continue;
    }
    if (stopping && total_queued == 0) break;
    wake = std::min(wake, next_expiry_ns);
    if (wake == kNever) {
      work_cv.wait(lk);
    } else {
      auto deadline = std::chrono::steady_clock::time_point(std::chrono::nanoseconds(wake));
      work_cv.wait_until(lk, deadline);
    }
  }
}

Status Scheduler::Impl::Profile(Model& m, const std::vector<Tensor>& inputs, int repeats) {
  std::vector<TensorView> one;
  for (const auto& t : inputs) one.push_back(t.view());
  std::vector<int> sizes;
  if (m.config.max_batch_size > 0) {
    for (int b = 1; b < m.config.max_batch_size; b *= 2) sizes.push_back(b);
    sizes.push_back(m.config.max_batch_size);
  } else {
    sizes.push_back(1);
  }
  for (size_t d = 0; d < devices.size(); ++d) {
    // The device's first worker context: the model is not registered yet, so no worker runs it.
    const Worker& w = *workers[static_cast<size_t>(devices[d].workers[0])];
    for (int b : sizes) {
      std::vector<Tensor> batched;
      std::vector<TensorView> views = one;
      if (b > 1) {
        std::vector<const std::vector<TensorView>*> reqs(static_cast<size_t>(b), &one);
        ASSIGN_OR_RETURN(batched, detail::ConcatBatch(reqs));
        views.clear();
        for (auto& t : batched) views.push_back(t.view());
      }
      int64_t best = kNever;
      for (int r = 0; r < std::max(1, repeats) + 1; ++r) {  // first run warms up
        int64_t start = NowNs();
        auto out = m.runner->RunBatch(views, w.ctx);
        if (!out.ok()) return out.status().WithContext(fmt::format("profiling model '{}' at batch {}", m.config.name, b));
        if (r > 0) best = std::min(best, NowNs() - start);
      }
      m.profiles[d].Record(b, best);
      GH_LOG_DEBUG(kLog, "model '{}' on device {}: batch {} takes {:.3f} ms", m.config.name, d, b,
                   static_cast<double>(best) / 1e6);
    }
  }
  return Status::OK();
}

Scheduler::Scheduler(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

StatusOr<std::unique_ptr<Scheduler>> Scheduler::Create(const SchedulerOptions& options) {
  if (options.devices.empty()) return InvalidArgument("scheduler needs at least one device");
  if (options.priority_levels < 1) return InvalidArgument("priority_levels must be >= 1, got {}", options.priority_levels);
  if (options.max_queue_size < 1) return InvalidArgument("max_queue_size must be >= 1, got {}", options.max_queue_size);
  bool general = false;
  for (const auto& d : options.devices) {
    for (const auto& w : d.workers) general |= w.reserved_max_level < 0;
  }
  if (!general) return InvalidArgument("every worker is reserved: no worker would run background work");
  auto impl = std::make_unique<Impl>();
  impl->opts = options;
  for (size_t d = 0; d < options.devices.size(); ++d) {
    const DeviceSpec& spec = options.devices[d];
    if (spec.workers.empty()) return InvalidArgument("device '{}' has no workers", spec.name);
    DeviceState ds;
    for (const auto& ws : spec.workers) {
      if (ws.num_threads < 1) return InvalidArgument("device '{}': a worker needs >= 1 thread", spec.name);
      auto w = std::make_unique<Worker>();
      w->spec = ws;
      w->ctx.worker_index = static_cast<int>(impl->workers.size());
      w->ctx.device_index = static_cast<int>(d);
      w->ctx.device = spec.device;
      w->ctx.num_threads = ws.num_threads;
      w->ctx.stream_priority = std::max(0, ws.stream_priority);
      w->ctx.stream = StreamView{spec.device, nullptr};
      ds.workers.push_back(w->ctx.worker_index);
      impl->workers.push_back(std::move(w));
    }
    impl->devices.push_back(std::move(ds));
  }
  Impl* raw = impl.get();
  for (size_t i = 0; i < raw->workers.size(); ++i) {
    raw->workers[i]->thread = std::thread([raw, i] { raw->WorkerLoop(static_cast<int>(i)); });
  }
  raw->reaper = std::thread([raw] { raw->ReaperLoop(); });
  return std::unique_ptr<Scheduler>(new Scheduler(std::move(impl)));
}

Scheduler::~Scheduler() {
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    impl_->stopping = true;
  }
  impl_->work_cv.notify_all();
  for (auto& w : impl_->workers) {
    if (w->thread.joinable()) w->thread.join();
  }
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    impl_->reaper_stop = true;
  }
  impl_->reaper_cv.notify_all();
  if (impl_->reaper.joinable()) impl_->reaper.join();
}

int Scheduler::num_workers() const { return static_cast<int>(impl_->workers.size()); }

Status Scheduler::AddModel(const ModelConfig& config, std::shared_ptr<ModelRunner> runner,
                           const AddModelOptions& options) {
  if (config.name.empty()) return InvalidArgument("model config needs a name");
  if (!runner) return InvalidArgument("model '{}': no runner", config.name);
  if (config.max_batch_size < 0) return InvalidArgument("model '{}': max_batch_size {} < 0", config.name, config.max_batch_size);
  if (config.max_queue_delay_us < 0) return InvalidArgument("model '{}': max_queue_delay_microseconds < 0", config.name);
  for (int p : config.preferred_batch_sizes) {
    if (p < 1 || (config.max_batch_size > 0 && p > config.max_batch_size)) {
      return InvalidArgument("model '{}': preferred batch size {} outside 1..max_batch_size {}", config.name, p,
                             config.max_batch_size);
    }
  }
  auto m = std::make_unique<Model>();
  m->config = config;
  if (m->config.tenant.empty()) m->config.tenant = "default";
  m->runner = std::move(runner);
  m->input_names = m->runner->input_names();
  m->output_names = m->runner->output_names();
  m->levels = config.priority_levels > 0 ? config.priority_levels : impl_->opts.priority_levels;
  m->default_level = config.default_priority_level < 0 ? m->levels - 1 : config.default_priority_level;
  if (m->default_level >= m->levels) {
    return InvalidArgument("model '{}': default_priority_level {} outside 0..{}", config.name, m->default_level,
                           m->levels - 1);
  }
  for (const auto& [level, policy] : config.priority_queue_policy) {
    if (level < 0 || level >= m->levels) {
      return InvalidArgument("model '{}': queue policy for priority level {} outside 0..{}", config.name, level,
                             m->levels - 1);
    }
  }
  for (int l = 0; l < m->levels; ++l) {
    auto it = config.priority_queue_policy.find(l);
    QueuePolicy p = it != config.priority_queue_policy.end() ? it->second : config.default_queue_policy;
    if (p.max_queue_size <= 0) p.max_queue_size = impl_->opts.max_queue_size;
    if (p.default_timeout_us < 0) return InvalidArgument("model '{}': negative default timeout", config.name);
    m->policies.push_back(p);
  }
  m->level_counts.assign(static_cast<size_t>(m->levels), 0);
  for (size_t d = 0; d < impl_->devices.size(); ++d) {
    m->profiles.emplace_back(m->config.max_batch_size, impl_->opts.profile_ewma_alpha);
  }
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    if (impl_->models.count(config.name)) return AlreadyExists("model '{}' is already scheduled", config.name);
  }
  if (!options.profile_inputs.empty()) {
    RETURN_IF_ERROR(impl_->Profile(*m, options.profile_inputs, options.profile_repeats));
  }
  std::lock_guard<std::mutex> lk(impl_->mu);
  if (impl_->models.count(config.name)) return AlreadyExists("model '{}' is already scheduled", config.name);
  impl_->models[config.name] = std::move(m);
  return Status::OK();
}

Status Scheduler::DrainAndRemoveModel(const std::string& name, int64_t timeout_ms) {
  {
    std::unique_lock<std::mutex> lk(impl_->mu);
    auto it = impl_->models.find(name);
    if (it == impl_->models.end()) return NotFound("model '{}' is not scheduled", name);
    Model& m = *it->second;
    m.accepting = false;  // admitted requests stay queued and run
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(std::max<int64_t>(timeout_ms, 0));
    impl_->work_cv.notify_all();
    // Finished batches notify idle_cv; requests that expire in the queue do not, hence the polling.
    while (m.stats.queued > 0 || m.running > 0) {
      if (std::chrono::steady_clock::now() >= until) break;
      impl_->idle_cv.wait_for(lk, std::chrono::milliseconds(20));
    }
  }
  return RemoveModel(name);  // whatever is left (after the timeout) is answered; running batches end
}

Status Scheduler::RemoveModel(const std::string& name, size_t* answered) {
  std::vector<Pending> dropped;
  {
    std::unique_lock<std::mutex> lk(impl_->mu);
    auto it = impl_->models.find(name);
    if (it == impl_->models.end()) return NotFound("model '{}' is not scheduled", name);
    Model& m = *it->second;
    m.accepting = false;
    for (auto& [tname, q] : m.queues) {
      for (auto* dq : [&] {
             std::vector<std::deque<Pending>*> v;
             for (auto& l : q->levels) v.push_back(&l);
             v.push_back(&q->delayed);
             return v;
           }()) {
        for (auto& p : *dq) {
          impl_->RemoveAccounting(*q, p);
          dropped.push_back(std::move(p));
        }
        dq->clear();
      }
    }
    impl_->idle_cv.wait(lk, [&] { return m.running == 0; });
    impl_->models.erase(it);
  }
  for (auto& p : dropped) Answer(p, Unavailable("model '{}' was removed from the scheduler", name));
  if (answered != nullptr) *answered = dropped.size();
  impl_->work_cv.notify_all();
  return Status::OK();
}

Status Scheduler::Enqueue(std::unique_ptr<InferenceRequest> request) {
  if (!request) return InvalidArgument("null request");
  auto refuse = [&](Status s, int retry_after_s = 0) {
    InferenceResponse r;
    r.model_name = request->model_name;
    r.model_version = request->model_version;
    r.request_id = request->id;
    r.status = s;
    r.retry_after_s = retry_after_s;
    if (request->on_complete) {
      auto cb = std::move(request->on_complete);
      request->on_complete = nullptr;
      cb(std::move(r));
    }
    return s;
  };
  int64_t now = NowNs();
  if (request->deadline_ns > 0 && request->deadline_ns <= now) {
    return refuse(DeadlineExceeded("request '{}' arrived after its deadline", request->id));
  }
  std::unique_lock<std::mutex> lk(impl_->mu);
  if (impl_->stopping) {
    lk.unlock();
    return refuse(Unavailable("scheduler is shutting down"));
  }
  auto it = impl_->models.find(request->model_name);
  if (it == impl_->models.end() || !it->second->accepting) {
    lk.unlock();
    return refuse(NotFound("model '{}' is not loaded", request->model_name));
  }
  Model& m = *it->second;
  Pending p;
  auto invalid = [&](Status s) {
    m.stats.refused_invalid++;
    lk.unlock();
    return refuse(std::move(s));
  };
  int level = request->priority < 0 ? m.default_level : request->priority;
  if (level >= m.levels) {
    return invalid(InvalidArgument("priority {} outside 0..{} for model '{}'", request->priority, m.levels - 1,
                                   m.config.name));
  }
  // Inputs in the runner's order, by name.
  if (m.input_names.empty()) {
    for (auto& nt : request->inputs) p.inputs.push_back(nt.tensor.view());
  } else {
    if (request->inputs.size() != m.input_names.size()) {
      return invalid(InvalidArgument("model '{}' takes {} inputs, request has {}", m.config.name, m.input_names.size(),
                                     request->inputs.size()));
    }
    for (const std::string& name : m.input_names) {
      auto nt = std::find_if(request->inputs.begin(), request->inputs.end(),
                             [&](const NamedTensor& t) { return t.name == name; });
      if (nt == request->inputs.end()) return invalid(InvalidArgument("model '{}': missing input '{}'", m.config.name, name));
      p.inputs.push_back(nt->tensor.view());
    }
  }
  for (const std::string& out : request->requested_outputs) {
    if (std::find(m.output_names.begin(), m.output_names.end(), out) == m.output_names.end()) {
      return invalid(InvalidArgument("model '{}' has no output '{}'", m.config.name, out));
    }
  }
  p.rows = 1;
  if (m.config.max_batch_size > 0) {
    int64_t rows = -1;
    for (size_t i = 0; i < p.inputs.size(); ++i) {
      const Shape& s = p.inputs[i].shape;
      if (s.empty()) return invalid(InvalidArgument("model '{}': input {} needs a batch dimension", m.config.name, i));
      if (rows >= 0 && s[0] != rows) {
        return invalid(InvalidArgument("model '{}': inputs disagree on the batch dimension ({} vs {})", m.config.name,
                                       rows, s[0]));
      }
      rows = s[0];
    }
    if (rows < 1) return invalid(InvalidArgument("model '{}': batch dimension must be >= 1", m.config.name));
    if (rows > m.config.max_batch_size) {
      return invalid(InvalidArgument("model '{}': request batch {} exceeds max_batch_size {}", m.config.name, rows,
                                     m.config.max_batch_size));
    }
    p.rows = rows;
  }
  const QueuePolicy& policy = m.policies[static_cast<size_t>(level)];
  if (m.level_counts[static_cast<size_t>(level)] >= policy.max_queue_size) {
    m.stats.refused_full++;
    // Time to drain what is queued ahead at this model, spread over the workers.
    int64_t queued_rows = 0;
    for (int c : m.level_counts) queued_rows += c;
    int64_t batches = (queued_rows + m.max_rows() - 1) / m.max_rows();
    int64_t drain_ns = batches * impl_->Estimate(m, 0, m.max_rows()) / std::max<int64_t>(1, impl_->workers.size());
    int retry = static_cast<int>(std::max<int64_t>(1, (drain_ns + 999'999'999) / 1'000'000'000));
    int max_size = policy.max_queue_size;
    lk.unlock();
    return refuse(ResourceExhausted("model '{}': queue full ({} requests at priority {}); retry after {} s",
                                    request->model_name, max_size, level, retry),
                  retry);
  }
  p.signature = detail::InputSignature(p.inputs, m.config.max_batch_size > 0);
  p.level = level;
  p.enqueue_ns = now;
  p.action = policy.timeout_action;
  int64_t timeout_us = policy.default_timeout_us;
  if (policy.allow_timeout_override && request->timeout_us > 0) {
    timeout_us = timeout_us > 0 ? std::min(timeout_us, request->timeout_us) : request->timeout_us;
  }
  p.queue_deadline_ns = timeout_us > 0 ? now + ToNs(timeout_us) : 0;
  p.seq = impl_->next_seq++;
  request->enqueue_ns = now;
  const std::string tenant = request->tenant.empty() ? m.config.tenant : request->tenant;
  p.req = std::move(request);
  auto& qp = m.queues[tenant];
  if (!qp) {
    qp = std::make_unique<Queue>();
    qp->model = &m;
    qp->tenant = &impl_->TenantFor(tenant);
    qp->tenant_name = tenant;
    qp->levels.resize(static_cast<size_t>(m.levels));
  }
  Tenant& t = *qp->tenant;
  if (t.queued == 0) t.vtime = std::max(t.vtime, impl_->system_vtime);
  t.queued++;
  qp->count++;
  qp->rows += p.rows;
  m.level_counts[static_cast<size_t>(level)]++;
  m.stats.queued++;
  m.stats.admitted++;
  impl_->total_queued++;
  const int64_t deadline = Impl::NextDeadline(p);
  const bool sooner = deadline < impl_->next_expiry_ns;
  impl_->next_expiry_ns = std::min(impl_->next_expiry_ns, deadline);
  qp->levels[static_cast<size_t>(level)].push_back(std::move(p));
  lk.unlock();
  impl_->work_cv.notify_all();
  if (sooner) impl_->reaper_cv.notify_one();
  return Status::OK();
}

void Scheduler::SetTenantWeight(const std::string& tenant, double weight) {
  std::lock_guard<std::mutex> lk(impl_->mu);
  impl_->TenantFor(tenant).weight = weight > 0 ? weight : 1.0;
}

StatusOr<int64_t> Scheduler::EstimateNs(const std::string& model, int device_index, int batch_size) const {
  std::lock_guard<std::mutex> lk(impl_->mu);
  auto it = impl_->models.find(model);
  if (it == impl_->models.end()) return NotFound("model '{}' is not scheduled", model);
  if (device_index < 0 || device_index >= static_cast<int>(impl_->devices.size())) {
    return InvalidArgument("no device {}", device_index);
  }
  return impl_->Estimate(*it->second, device_index, batch_size);
}

StatusOr<std::vector<LatencyPoint>> Scheduler::Profile(const std::string& model, int device_index) const {
  std::lock_guard<std::mutex> lk(impl_->mu);
  auto it = impl_->models.find(model);
  if (it == impl_->models.end()) return NotFound("model '{}' is not scheduled", model);
  if (device_index < 0 || device_index >= static_cast<int>(impl_->devices.size())) {
    return InvalidArgument("no device {}", device_index);
  }
  return it->second->profiles[static_cast<size_t>(device_index)].Points();
}

SchedulerStats Scheduler::Stats() const {
  std::lock_guard<std::mutex> lk(impl_->mu);
  SchedulerStats s;
  for (const auto& [name, m] : impl_->models) s.models[name] = m->stats;
  for (const auto& [name, t] : impl_->tenants) s.tenant_device_ns[name] = t.device_ns;
  for (const auto& d : impl_->devices) {
    s.device_busy_ns.push_back(d.busy_ns);
    s.device_batches.push_back(d.batches);
  }
  return s;
}

}  // namespace gpuhive::sched
