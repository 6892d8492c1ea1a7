// The scheduler's dynamic batcher and dispatcher, all run by a worker with the scheduler's lock
// held: expiring requests, forming a batch per queue (max batch size, preferred sizes, queue
// delay), picking among the ready batches by priority, aging and fair share, and placing the
// batch on a device (scheduler_internal.h).
#include <algorithm>
#include <cstdint>
#include <deque>
#include <optional>
#include <utility>
#include <vector>

#include "gpuhive/units.h"
#include "sched/scheduler_internal.h"

namespace gpuhive::sched {

using detail::Batch;
using detail::Candidate;
using detail::kNever;
using detail::Model;
using detail::Pending;
using detail::Queue;
using detail::Tenant;
using detail::ToNs;
using detail::Worker;

int64_t Scheduler::Impl::Estimate(const Model& m, int device, int64_t rows) const {
  const auto& prof = m.profiles[static_cast<size_t>(device)];
  if (!prof.empty()) return prof.Estimate(static_cast<int>(rows), opts.default_estimate_ns);
  // Unknown on this device: borrow another device's estimate.
  for (const auto& p : m.profiles) {
    if (!p.empty()) return p.Estimate(static_cast<int>(rows), opts.default_estimate_ns);
  }
  return opts.default_estimate_ns;
}

uint64_t Scheduler::Impl::WorkerMemory() const {
  if (opts.batch_memory != SchedulerOptions::kBatchMemoryAuto) return static_cast<uint64_t>(std::max<int64_t>(0, opts.batch_memory));
  // Auto: what the largest model holds unbatched, so the workers together hold no more than
  // unbatched execution would. Nothing known yet: every batching model runs one row at a time
  // until it is.
  uint64_t largest = 0;
  for (const auto& [name, m] : models) largest = std::max(largest, m->row_bytes);
  return std::max<uint64_t>(largest, 1);
}

uint64_t Scheduler::Impl::CriticalShare() const {
  uint64_t share = 0;
  for (const auto& [name, m] : models) {
    if (m->default_level == 0) share = std::max(share, m->row_bytes);
  }
  return share;
}

uint64_t Scheduler::Impl::Allowance(int d) const {
  const uint64_t per_worker = WorkerMemory();
  if (per_worker == 0) return 0;
  const detail::DeviceState& dev = devices[static_cast<size_t>(d)];
  const uint64_t all = per_worker * static_cast<uint64_t>(dev.unreserved_workers);
  const uint64_t set_aside = CriticalShare() * static_cast<uint64_t>(dev.reserved_workers);
  return std::max(per_worker, all > set_aside ? all - set_aside : 0);
}

int64_t Scheduler::Impl::MemoryRows(const Model& m) const {
  uint64_t bound = 0;
  for (size_t d = 0; d < devices.size(); ++d) {
    const uint64_t a = Allowance(static_cast<int>(d));
    if (a == 0) return m.max_rows();
    bound = d == 0 ? a : std::min(bound, a);
  }
  if (m.row_bytes == 0) return 1;
  return std::clamp<int64_t>(static_cast<int64_t>(bound / m.row_bytes), 1, m.max_rows());
}

bool Scheduler::Impl::FitsMemory(const Worker& self, Candidate& c) const {
  const uint64_t allowance = Allowance(self.ctx.device_index);
  if (allowance == 0) return true;
  const Model& m = *c.queue->model;
  if (self.spec.reserved_max_level >= 0) {
    // Critical work never waits for memory: the batch is cut to the worker's share instead.
    const uint64_t share = CriticalShare();
    int64_t rows = c.items.front()->rows;
    size_t n = 1;
    while (n < c.items.size() && BatchBytes(m, rows + c.items[n]->rows) <= share) rows += c.items[n++]->rows;
    c.items.resize(n);
    c.rows = rows;
    return true;
  }
  const detail::DeviceState& dev = devices[static_cast<size_t>(self.ctx.device_index)];
  // Alone, a batch always fits (its rows were bounded by the allowance, or it is one request).
  if (dev.unreserved_holding == 0 || dev.unreserved_holding + BatchBytes(m, c.rows) <= allowance) return true;
  // Beside the running batches only a prefix may fit: run the longest one the runner executes
  // without padding rather than leave this worker idle until they finish (on 2 cores one worker
  // waited out each 5-row ResNet-50 batch: scenario 1 at 0.85-0.93x the naive mode's throughput).
  return KeepUnpaddedPrefix(m, c, allowance - dev.unreserved_holding, /*keep_first=*/false);
}

bool Scheduler::Impl::KeepUnpaddedPrefix(const Model& m, Candidate& c, uint64_t max_bytes, bool keep_first) {
  if (c.items.empty()) return false;
  int64_t rows = 0, kept_rows = keep_first ? c.items.front()->rows : 0;
  size_t kept = keep_first ? 1 : 0;
  for (size_t n = 0; n < c.items.size(); ++n) {
    rows += c.items[n]->rows;
    if (BatchBytes(m, rows) > max_bytes) break;
    if (!m.runner || m.runner->ExecutedRows(rows) <= rows) kept = n + 1, kept_rows = rows;
  }
  if (kept == 0) return false;
  if (kept == c.items.size()) return true;
  c.items.resize(kept);
  c.rows = kept_rows;
  c.best_requested_level = m.levels;
  for (const Pending* p : c.items) c.best_requested_level = std::min(c.best_requested_level, p->level);
  return true;
}

int64_t Scheduler::Impl::BatchLimit(const Model& m, int64_t* proven) const {
  const int64_t max_rows = m.batching() ? MemoryRows(m) : m.max_rows();
  if (opts.batch_min_gain <= 0 || !m.batching() || max_rows <= 1) {
    if (proven != nullptr) *proven = max_rows;
    return max_rows;
  }
  // The profile of the first device that measured anything (as Estimate borrows one).
  const detail::LatencyProfile* prof = nullptr;
  for (const auto& p : m.profiles) {
    if (!p.empty()) {
      prof = &p;
      break;
    }
  }
  detail::BatchLimits l = detail::BatchLimitsFor(prof, max_rows, opts.batch_min_gain);
  if (proven != nullptr) *proven = l.proven;
  // A size measured once as not paying is measured again every kBatchRetrial batches: one
  // measurement (taken beside other work) may have been unlucky, and the load may have changed.
  constexpr int kBatchRetrial = 64;
  if (l.trial == 0 && l.next > 0 && m.batches_since_trial >= kBatchRetrial) l.trial = l.next;
  // One trial batch at a time: several workers trying a large unmeasured size at once would each
  // hold its arena, the memory peak the limit is there to avoid.
  return l.trial > 0 && !m.trial_running ? l.trial : l.proven;
}

void Scheduler::Impl::SweepExpired(int64_t now, std::vector<Pending>* expired) {
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

void Scheduler::Impl::RemoveAccounting(Queue& q, const Pending& p) {
  q.count--;
  q.rows -= p.rows;
  q.tenant->queued--;
  q.model->level_counts[static_cast<size_t>(p.level)]--;
  q.model->stats.queued--;
  total_queued--;
}

std::optional<Candidate> Scheduler::Impl::FormBatch(Queue& q, int64_t now, int64_t* wake) {
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
  // A request larger than the limit (batch_min_gain; never beyond max_batch_size, which Enqueue
  // checks) runs alone.
  const int64_t max_rows = BatchLimit(m);
  int64_t oldest = kNever;
  bool capped = false;  // a compatible request did not fit: the batch cannot grow
  for (const LevelRef& ref : order) {
    for (Pending& p : *ref.dq) {
      if (p.signature != sig) continue;
      if (!c.items.empty() && (c.rows + p.rows > max_rows || !m.batching())) {
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
  // A batch the runner would pad (the engine runs a few plan sizes, powers of two) runs as its
  // largest prefix that needs no padding and the rest waits for the next batch: padding rows cost
  // compute and activation memory like real ones (scenario 1: ResNet-50 batches of 5 ran as 8,
  // 60 % more work and a batch-8 arena where five rows were accounted). The first request always
  // stays (a request of 3 rows runs as it must).
  auto drop_padding = [&] { KeepUnpaddedPrefix(m, c, UINT64_MAX, /*keep_first=*/true); };
  if (!m.batching() || c.rows >= max_rows || capped || stopping) {
    drop_padding();
    return c;
  }
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
  if (delay_ns <= 0 || now - oldest >= delay_ns) {
    drop_padding();
    return c;
  }
  *wake = std::min(*wake, oldest + delay_ns);
  return std::nullopt;
}

bool Scheduler::Impl::IdleReservedWorker(int device, int level) const {
  for (int w : devices[static_cast<size_t>(device)].workers) {
    const Worker& wk = *workers[static_cast<size_t>(w)];
    if (!wk.busy && wk.spec.reserved_max_level >= 0 && level <= wk.spec.reserved_max_level) return true;
  }
  return false;
}

int64_t Scheduler::Impl::BacklogNs(int d) const {
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
    const int64_t limit = BatchLimit(*m);
    int64_t full = rows / limit, rest = rows % limit;
    total += full * Estimate(*m, d, limit) + (rest > 0 ? Estimate(*m, d, rest) : 0);
  }
  return total;
}

bool Scheduler::Impl::PlaceHere(const Worker& self, const Candidate& c, int64_t now, int64_t* wake) const {
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

std::optional<Batch> Scheduler::Impl::Select(Worker& self, int64_t now, int64_t* wake) {
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
    // Does not fit beside the batches running now: a smaller candidate may (a finishing batch
    // wakes the workers).
    if (!FitsMemory(self, c)) continue;
    return Take(self, c);
  }
  return std::nullopt;
}

Batch Scheduler::Impl::Take(Worker& self, Candidate& c) {
  Queue& q = *c.queue;
  Model& m = *q.model;
  Batch b;
  b.model = &m;
  b.queue = &q;
  b.runner = m.runner;
  b.rows = c.rows;
  b.level = c.best_requested_level;
  int64_t proven = 0;
  BatchLimit(m, &proven);
  b.trial = b.rows > proven && !m.trial_running;
  if (b.trial) {
    m.trial_running = true;
    m.batches_since_trial = 0;
  } else {
    m.batches_since_trial++;
  }
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
  if (self.spec.reserved_max_level < 0) {
    self.holding_bytes = BatchBytes(m, b.rows);
    devices[static_cast<size_t>(self.ctx.device_index)].unreserved_holding += self.holding_bytes;
  }
  if (opts.placement == PlacementPolicy::kRoundRobin) {
    rr_next = (self.ctx.device_index + 1) % static_cast<int>(devices.size());
  }
  return b;
}

}  // namespace gpuhive::sched
