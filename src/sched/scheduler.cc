// The scheduler's public API: creating it and its threads, adding and removing models, admission
// (Enqueue) and statistics. How requests are batched, dispatched and run: scheduler_internal.h.
#include "gpuhive/scheduler.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <mutex>
#include <thread>

#include "gpuhive/units.h"
#include "sched/batching.h"
#include "sched/scheduler_internal.h"

namespace gpuhive::sched {

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
    detail::DeviceState ds;
    for (const auto& ws : spec.workers) {
      if (ws.num_threads < 1) return InvalidArgument("device '{}': a worker needs >= 1 thread", spec.name);
      auto w = std::make_unique<detail::Worker>();
      w->spec = ws;
      w->ctx.worker_index = static_cast<int>(impl->workers.size());
      w->ctx.device_index = static_cast<int>(d);
      w->ctx.device = spec.device;
      w->ctx.num_threads = ws.num_threads;
      w->ctx.stream_priority = std::max(0, ws.stream_priority);
      w->ctx.stream = StreamView{spec.device, nullptr};
      ds.workers.push_back(w->ctx.worker_index);
      (ws.reserved_max_level >= 0 ? ds.reserved_workers : ds.unreserved_workers)++;
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
  auto m = std::make_unique<detail::Model>();
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
  m->row_bytes = m->runner->OneRowActivationBytes();  // after profiling, which may have taught the runner
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
    detail::Model& m = *it->second;
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
  std::vector<detail::Pending> dropped;
  {
    std::unique_lock<std::mutex> lk(impl_->mu);
    auto it = impl_->models.find(name);
    if (it == impl_->models.end()) return NotFound("model '{}' is not scheduled", name);
    detail::Model& m = *it->second;
    m.accepting = false;
    for (auto& [tname, q] : m.queues) {
      for (auto* dq : [&] {
             std::vector<std::deque<detail::Pending>*> v;
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
  for (auto& p : dropped) detail::Answer(p, Unavailable("model '{}' was removed from the scheduler", name));
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
  detail::Model& m = *it->second;
  detail::Pending p;
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
    const int64_t limit = impl_->BatchLimit(m);
    int64_t batches = (queued_rows + limit - 1) / limit;
    int64_t drain_ns = batches * impl_->Estimate(m, 0, limit) / std::max<int64_t>(1, impl_->workers.size());
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
  p.queue_deadline_ns = timeout_us > 0 ? now + detail::ToNs(timeout_us) : 0;
  p.seq = impl_->next_seq++;
  request->enqueue_ns = now;
  const std::string tenant = request->tenant.empty() ? m.config.tenant : request->tenant;
  p.req = std::move(request);
  auto& qp = m.queues[tenant];
  if (!qp) {
    qp = std::make_unique<detail::Queue>();
    qp->model = &m;
    qp->tenant = &impl_->TenantFor(tenant);
    qp->tenant_name = tenant;
    qp->levels.resize(static_cast<size_t>(m.levels));
  }
  detail::Tenant& t = *qp->tenant;
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

StatusOr<int> Scheduler::BatchLimit(const std::string& model) const {
  std::lock_guard<std::mutex> lk(impl_->mu);
  auto it = impl_->models.find(model);
  if (it == impl_->models.end()) return NotFound("model '{}' is not scheduled", model);
  return static_cast<int>(impl_->BatchLimit(*it->second));
}

SchedulerStats Scheduler::Stats() const {
  std::lock_guard<std::mutex> lk(impl_->mu);
  SchedulerStats s;
  for (const auto& [name, m] : impl_->models) s.models[name] = m->stats;
  for (const auto& [name, t] : impl_->tenants) s.tenant_device_ns[name] = t.device_ns;
  for (size_t i = 0; i < impl_->devices.size(); ++i) {
    const detail::DeviceState& d = impl_->devices[i];
    s.device_busy_ns.push_back(d.busy_ns);
    s.device_batches.push_back(d.batches);
    s.device_batch_memory_allowance.push_back(impl_->Allowance(static_cast<int>(i)));
    s.device_batch_memory_held.push_back(d.unreserved_holding);
  }
  return s;
}

}  // namespace gpuhive::sched
