// Engine: the management API (devices, models, settings), the repository index, and the
// metrics that are recorded on events (model transitions) or read on scrape.
#include <algorithm>

#include "gpuhive/logging.h"
#include "gpuhive/units.h"
#include "engine/engine_internal.h"

namespace gpuhive::engine {

using residency::ModelState;

namespace {

std::string TierOf(ModelState s) {
  switch (s) {
    case ModelState::kResident: return "device";
    case ModelState::kInHost:
    case ModelState::kLoadingDevice: return "host";
    default: return "disk";
  }
}

}  // namespace

std::string ServedState(const residency::ModelStatus& st) {
  if (!st.fits.ok()) return "UNAVAILABLE";
  switch (st.state) {
    case ModelState::kFailed: return "UNAVAILABLE";
    case ModelState::kLoadingHost:
    case ModelState::kLoadingDevice: return "LOADING";
    default: return "READY";  // served; made resident on demand
  }
}

std::string UnavailableReason(const residency::ModelStatus& st) {
  if (!st.fits.ok()) return st.fits.ToString();
  if (st.state == ModelState::kFailed) return st.last_error.ToString();
  return "";
}

uint64_t Engine::Impl::NaiveModelBytes(const ServedModel& m) const {
  uint64_t bytes = 0;
  for (const auto& [ver, v] : m.versions) bytes += naive_memory->OwnerStats(v->naive_owner).current_bytes;
  return bytes;
}

void Engine::Impl::OnTransition(const residency::ModelTransition& t) {
  bool was_resident = t.from == ModelState::kResident;
  bool is_resident = t.to == ModelState::kResident;
  if (is_resident && !was_resident) {
    metrics.model_loads_total->Labels({t.name})->Inc();
    metrics.model_swaps_total->Labels({t.name, "in"})->Inc();
    metrics.swap_duration_seconds->Labels({t.name, "in"})->Observe(static_cast<double>(t.swap_ns) * 1e-9);
  } else if (was_resident && !is_resident) {
    metrics.model_evictions_total->Labels({t.name})->Inc();
    metrics.model_swaps_total->Labels({t.name, "out"})->Inc();
  }
}

void Engine::Impl::Collect() {
  const std::string& dev = device_id;
  // Queue depths and scheduler device time.
  sched::SchedulerStats ss = scheduler->Stats();
  std::map<std::string, int> depth;
  {
    std::shared_lock lock(mu);
    for (const auto& [name, m] : models) {
      int d = 0;
      for (const auto& [ver, v] : m.versions) {
        auto it = ss.models.find(v->key);
        const int queued = it != ss.models.end() ? it->second.queued : 0;
        d += queued;
        metrics.nv_inference_pending_request_count->Labels({name, std::to_string(ver)})->Set(queued);
      }
      depth[name] = d;
    }
  }
  for (const auto& [name, d] : depth) metrics.queue_depth->Labels({name})->Set(d);
  for (const auto& [tenant, ns] : ss.tenant_device_ns) {
    metrics.tenant_device_seconds_total->Labels({tenant})->Set(static_cast<double>(ns) * 1e-9);
  }
  int64_t busy = 0;
  for (int64_t ns : ss.device_busy_ns) busy += ns;
  metrics.device_busy_seconds_total->Labels({dev})->Set(static_cast<double>(busy) * 1e-9);
  uint64_t allowance = 0, held = 0;
  for (size_t i = 0; i < ss.device_batch_memory_allowance.size(); ++i) {
    allowance += ss.device_batch_memory_allowance[i];
    held += ss.device_batch_memory_held[i];
  }
  metrics.batch_memory_allowance_bytes->Labels({dev})->Set(static_cast<double>(allowance));
  metrics.batch_memory_held_bytes->Labels({dev})->Set(static_cast<double>(held));

  CollectDevices();
}

std::string Engine::MetricsText() { return impl_->registry.Expose(); }

StatusOr<std::vector<RepositoryEntry>> Engine::RepositoryIndex(bool ready_only) {
  Impl& c = *impl_;
  residency::ScanResult scan = c.repository->Scan();
  std::map<std::string, RepositoryEntry> entries;
  for (const auto& [name, model] : scan.models) {
    std::string version = model.versions.empty() ? "" : std::to_string(model.versions.back().version);
    entries[name] = RepositoryEntry{name, version, "UNAVAILABLE", "not loaded"};
  }
  for (const auto& [name, err] : scan.errors) entries[name] = RepositoryEntry{name, "", "UNAVAILABLE", err.ToString()};
  std::map<std::string, std::map<int64_t, residency::ModelStatus>> listed;
  if (!c.naive()) {
    for (auto& st : c.device_set->ListModels()) listed[st.name][st.version] = st;
  }
  {
    std::shared_lock lock(c.mu);
    for (const auto& [name, reason] : c.unavailable) {
      auto& e = entries[name];
      e.name = name;
      e.state = "UNAVAILABLE";
      e.reason = reason;
    }
    for (const auto& [name, reason] : c.config_errors) {
      auto& e = entries[name];
      e.name = name;
      e.state = "UNAVAILABLE";
      e.reason = reason;
    }
    for (const auto& name : c.unloaded) {
      auto& e = entries[name];
      e.name = name;
      e.state = "UNAVAILABLE";
      e.reason = "unloaded";
    }
    for (const auto& [name, m] : c.models) {
      if (m.versions.empty()) continue;
      const auto& v = m.versions.rbegin()->second;
      RepositoryEntry e{name, std::to_string(v->version), "READY", ""};
      auto it = listed.find(name);
      if (it != listed.end()) {
        auto vit = it->second.find(v->version);
        if (vit != it->second.end()) {
          e.state = ServedState(vit->second);
          e.reason = UnavailableReason(vit->second);
        }
      }
      if (c.config_errors.count(name)) {
        e.state = "UNAVAILABLE";
        e.reason = c.config_errors.at(name);
      }
      entries[name] = e;
    }
  }
  std::vector<RepositoryEntry> out;
  for (auto& [name, e] : entries) {
    if (ready_only && e.state != "READY") continue;
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<ModelStatus> Engine::Models() {
  Impl& c = *impl_;
  std::map<std::string, std::map<int64_t, residency::ModelStatus>> listed;
  if (!c.naive()) {
    for (auto& st : c.device_set->ListModels()) listed[st.name][st.version] = st;
  }
  sched::SchedulerStats ss = c.scheduler->Stats();
  std::vector<ModelStatus> out;
  std::vector<std::shared_ptr<ServedVersion>> versions;
  std::map<std::string, const ServedModel*> served;
  std::shared_lock lock(c.mu);
  for (const auto& [name, m] : c.models) {
    for (const auto& [ver, v] : m.versions) {
      ModelStatus s;
      s.name = name;
      s.version = std::to_string(ver);
      s.device = c.naive() ? c.device_id : c.device_set->id(0);
      sched::ModelConfig sc = SchedulerConfigFor(*v, c.options);
      s.priority = (m.priority_override >= 0 ? m.priority_override : sc.default_priority_level) + 1;  // Triton's
      s.tenant = !m.tenant_override.empty() ? m.tenant_override : sc.tenant;
      s.memory_limit_bytes = m.has_memory_limit_override ? m.memory_limit_override : v->config.memory_limit_bytes;
      s.warnings = v->warnings;
      if (c.naive()) {
        s.state = "READY";
        s.tier = "device";
        s.executor = "cpu";
        s.bytes = c.naive_memory->OwnerStats(v->naive_owner).current_bytes;
      } else {
        auto it = listed.find(name);
        if (it != listed.end() && it->second.count(ver)) {
          const auto& st = it->second.at(ver);
          s.state = ServedState(st);
          s.device = c.DeviceOf(st);
          s.executor = st.executor;
          s.h2d_bytes = st.h2d_bytes;
          s.h2d_seconds = static_cast<double>(st.h2d_ns) * 1e-9;
          s.tier = TierOf(st.state);
          s.bytes = st.state == ModelState::kResident ? st.device_bytes : 0;
          s.leases = st.leases;
          s.precision = st.precision;
          s.precision_note = st.precision_note;
          s.precision_rel_l2 = st.precision_rel_l2;
          s.precision_top1 = st.precision_top1;
        } else {
          s.state = "UNAVAILABLE";
          s.tier = "disk";
        }
      }
      auto qs = ss.models.find(v->key);
      if (qs != ss.models.end()) s.queue_depth = qs->second.queued;
      auto profile = c.scheduler->Profile(v->key, 0);
      if (profile.ok()) {
        for (const auto& p : *profile) s.latency_profile.push_back({p.batch_size, static_cast<double>(p.ns) * 1e-9});
      }
      if (auto limit = c.scheduler->BatchLimit(v->key); limit.ok()) s.batch_limit = *limit;
      s.one_row_activation_bytes = v->one_row_bytes.load();
      out.push_back(std::move(s));
    }
  }
  for (const auto& [name, reason] : c.unavailable) {
    if (c.models.count(name)) continue;
    ModelStatus s;
    s.name = name;
    s.state = "UNAVAILABLE";
    s.tier = "disk";
    s.device = c.naive() ? c.device_id : c.device_set->id(0);
    out.push_back(std::move(s));
  }
  return out;
}

StatusOr<ModelStatus> Engine::GetModelStatus(const std::string& name) {
  std::vector<ModelStatus> all = Models();
  const ModelStatus* best = nullptr;  // Models() lists a model's versions ascending: keep the last
  for (const auto& s : all) {
    if (s.name == name) best = &s;
  }
  if (best == nullptr) return NotFound("unknown model '{}'", name);
  return *best;
}

Status Engine::UpdateModelSettings(const std::string& name, const ModelSettings& settings) {
  Impl& c = *impl_;
  int levels = 1;
  {
    std::shared_lock lock(c.mu);
    auto it = c.models.find(name);
    if (it == c.models.end() || it->second.versions.empty()) return NotFound("unknown model '{}'", name);
    levels = it->second.versions.rbegin()->second->priority_levels;
  }
  if (settings.priority && (*settings.priority < 0 || *settings.priority > levels)) {
    return InvalidArgument("priority {} outside 1..{} for model '{}' (1 is the highest; 0: its configured default)",
                           *settings.priority, levels, name);
  }
  if (settings.tenant && settings.tenant->empty()) return InvalidArgument("tenant must not be empty");
  if (c.naive() && (settings.priority || settings.tenant || settings.memory_limit_bytes)) {
    return FailedPrecondition("naive mode has one FIFO level, one tenant and no memory limits");
  }
  if (settings.memory_limit_bytes) RETURN_IF_ERROR(c.device_set->SetMemoryLimit(name, *settings.memory_limit_bytes));
  std::unique_lock lock(c.mu);
  auto it = c.models.find(name);
  if (it == c.models.end()) return NotFound("unknown model '{}'", name);
  ServedModel& m = it->second;
  if (settings.priority) m.priority_override = *settings.priority - 1;  // 0 -> -1: the config's default
  if (settings.tenant) {
    m.tenant_override = *settings.tenant;
    c.declared_tenants.insert(*settings.tenant);  // an operator's choice declares it
  }
  if (settings.memory_limit_bytes) {
    m.memory_limit_override = *settings.memory_limit_bytes;
    m.has_memory_limit_override = true;
  }
  GH_LOG_INFO("core", "model '{}' settings changed", name);
  return Status::OK();
}

// ---- ModelMesh support ------------------------------------------------------------------------------

Status Engine::ForgetModel(const std::string& name) {
  Impl& c = *impl_;
  Status s = UnloadModel(name);
  if (!s.ok() && s.code() != StatusCode::kNotFound) return s;
  std::lock_guard<std::mutex> control(c.control_mu);
  if (!c.naive()) {
    // A failed load is not served, so UnloadModel left its registration (and host copy) alone.
    Status m = c.device_set->Unload(name);
    if (!m.ok() && m.code() != StatusCode::kNotFound) return m;
  }
  std::unique_lock lock(c.mu);
  c.unloaded.erase(name);
  c.unavailable.erase(name);
  return Status::OK();
}

StatusOr<Engine::Footprint> Engine::MeasureModel(const std::string& name) {
  Impl& c = *impl_;
  if (c.naive()) return FailedPrecondition("model sizes are measured in gpuhive mode only");
  Footprint f;
  {
    ASSIGN_OR_RETURN(residency::ModelLease lease, c.device_set->Acquire(name));
    const int max_batch = lease.config().max_batch_size;
    std::vector<Shape> shapes;
    for (const auto& in : lease.model().inputs()) {
      Shape shape(in.shape.begin(), in.shape.end());
      for (size_t i = 0; i < shape.size(); ++i) {
        if (shape[i] < 0) shape[i] = (i == 0 && max_batch > 0) ? max_batch : 1;
      }
      shapes.push_back(std::move(shape));
    }
    // A plan that cannot be prepared ahead (data-dependent shapes) is sized when it first runs.
    auto plan = lease.model().Prepare(shapes);
    if (plan.ok()) {
      f.activation_bytes = plan->arena_bytes;
    } else {
      GH_LOG_INFO("core", "model '{}': no activation plan ahead of the first request ({})", name,
                  plan.status().ToString());
    }
  }
  bool found = false;
  for (const auto& st : c.device_set->ListModels()) {
    if (st.name != name) continue;
    found = true;
    f.device_bytes += st.device_bytes;
  }
  if (!found) return NotFound("unknown model '{}'", name);
  return f;
}

uint64_t Engine::budget_bytes() const {
  return impl_->naive() ? 0 : impl_->device_set->budget_bytes();
}

}  // namespace gpuhive::engine
