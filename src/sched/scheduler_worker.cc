// The scheduler's threads: workers that pick a batch (scheduler_batcher.cc) and run it with the
// lock released, the reaper that answers expired requests when every worker is busy, and the
// latency profiling of a model as it is added.
#include <algorithm>
#include <chrono>
#include <mutex>
#include <utility>
#include <vector>

#include "gpuhive/logging.h"
#include "gpuhive/units.h"
#include "sched/batching.h"
#include "sched/scheduler_internal.h"
#include "sched/thread_priority.h"

namespace gpuhive::sched {

using detail::Answer;
using detail::Batch;
using detail::kLog;
using detail::kNever;
using detail::Model;
using detail::Pending;
using detail::Tenant;
using detail::Worker;

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

bool Scheduler::Impl::AnswerExpired(std::unique_lock<std::mutex>& lk, int64_t now) {
  std::vector<Pending> expired;
  SweepExpired(now, &expired);
  if (expired.empty()) return false;
  lk.unlock();
  for (auto& p : expired) {
    bool hard = p.req->deadline_ns > 0 && p.req->deadline_ns <= now;
    Answer(p, hard ? DeadlineExceeded("request '{}' for model '{}' passed its deadline after {} us in the queue",
                                      p.req->id, p.req->model_name, (now - p.enqueue_ns) / 1000)
                   : DeadlineExceeded("request '{}' for model '{}' timed out after {} us in the queue", p.req->id,
                                      p.req->model_name, (now - p.enqueue_ns) / 1000));
  }
  expired.clear();
  lk.lock();
  work_cv.notify_all();  // queue space freed
  return true;
}

void Scheduler::Impl::ReaperLoop() {
  std::unique_lock<std::mutex> lk(mu);
  while (!reaper_stop) {
    int64_t now = NowNs();
    if (now >= next_expiry_ns) {
      AnswerExpired(lk, now);
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
    if (now >= next_expiry_ns && AnswerExpired(lk, now)) continue;
    int64_t wake = kNever;
    std::optional<Batch> batch = Select(self, now, &wake);
    if (batch) {
      lk.unlock();
      ExecResult res = Execute(self, *batch);
      const int64_t compute_ns = res.compute_ns;
      int64_t rows = batch->rows;
      int64_t estimate = batch->estimate_ns;
      const uint64_t row_bytes = batch->runner->OneRowActivationBytes();  // the runner's lock only
      batch->items.clear();
      batch->runner.reset();
      lk.lock();
      Model& m = *batch->model;
      if (row_bytes > 0) m.row_bytes = row_bytes;
      if (res.ok && compute_ns > 0) {
        m.profiles[static_cast<size_t>(self.ctx.device_index)].RecordAfterWarmup(static_cast<int>(rows), compute_ns);
        // Charge the tenant what the batch really cost.
        Tenant& t = *batch->queue->tenant;
        t.vtime += static_cast<double>(compute_ns - estimate) / t.weight;
      }
      batch->queue->tenant->device_ns += compute_ns;
      auto& dev = devices[static_cast<size_t>(self.ctx.device_index)];
      dev.unreserved_holding -= self.holding_bytes;
      self.holding_bytes = 0;
      dev.busy_ns += compute_ns;
      dev.batches++;
      m.stats.batches++;
      m.stats.batched_rows += static_cast<uint64_t>(rows);
      m.stats.completed += res.executed;
      m.stats.expired += res.expired;
      if (!res.ok) m.stats.failed += res.executed;
      m.running--;
      if (batch->trial) m.trial_running = false;
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

}  // namespace gpuhive::sched
