// ModelManager, its construction, registration and public API (manager.h says what it does).
// The manager's other units: manager_load.cc (Acquire and loading across the tiers),
// manager_eviction.cc (eviction, allocation failures, lease ends, the host budget), manager_run.cc
// (Run's memory-pressure path) and manager_housekeeping.cc (preloading, keep-alive, polling).
#include "gpuhive/residency/manager.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "gpuhive/logging.h"
#include "gpuhive/memory/upstreams.h"
#include "gpuhive/units.h"
#include "residency/kernel_view.h"
#include "residency/manager_internal.h"

namespace gpuhive::residency {

namespace detail {

thread_local FailedAllocation t_failed;

Status SizeFits(const std::string& name, uint64_t needed, uint64_t budget, uint64_t limit) {
  if (needed > budget) {
    return ResourceExhausted("model '{}' needs about {} on the device but the whole budget is {}: it can never be made "
                             "resident",
                             name, FormatBytes(needed), FormatBytes(budget)).WithShortage(MemoryShortage::kNeverFits);
  }
  if (limit > 0 && needed > limit) {
    return ResourceExhausted("model '{}' needs about {} but its memory_limit is {}", name, FormatBytes(needed),
                             FormatBytes(limit)).WithShortage(MemoryShortage::kOverLimit);
  }
  return Status::OK();
}

}  // namespace detail

std::string_view ModelStateName(ModelState s) {
  switch (s) {
    case ModelState::kOnDisk: return "on_disk";
    case ModelState::kLoadingHost: return "loading_host";
    case ModelState::kInHost: return "in_host";
    case ModelState::kLoadingDevice: return "loading_device";
    case ModelState::kResident: return "resident";
    case ModelState::kFailed: return "failed";
  }
  return "unknown";
}

bool IsValidTransition(ModelState from, ModelState to) {
  using S = ModelState;
  switch (from) {
    case S::kOnDisk: return to == S::kLoadingHost;
    case S::kLoadingHost: return to == S::kInHost || to == S::kFailed;
    case S::kInHost: return to == S::kLoadingDevice || to == S::kOnDisk;
    case S::kLoadingDevice: return to == S::kResident || to == S::kFailed || to == S::kInHost;
    case S::kResident: return to == S::kInHost || to == S::kOnDisk;
    case S::kFailed: return to == S::kLoadingHost || to == S::kLoadingDevice || to == S::kOnDisk;
  }
  return false;
}

// ---- ModelLease ----

ModelLease& ModelLease::operator=(ModelLease&& o) noexcept {
  if (this != &o) {
    Release();
    manager_ = std::exchange(o.manager_, nullptr);
    entry_ = std::move(o.entry_);
    model_ = std::exchange(o.model_, nullptr);
    was_resident_ = o.was_resident_;
    swap_ns_ = o.swap_ns_;
  }
  return *this;
}

const ModelConfig& ModelLease::config() const { return entry_->config; }
const std::string& ModelLease::name() const { return entry_->name; }
int64_t ModelLease::version() const { return entry_->version; }
uint32_t ModelLease::owner_tag() const { return entry_->owner; }

void ModelLease::Release() {
  if (manager_ != nullptr && entry_ != nullptr) manager_->ReleaseLease(*entry_);
  manager_ = nullptr;
  entry_.reset();
  model_ = nullptr;
}

// ---- ModelManager ----

ModelManager::ModelManager(ManagerOptions options, ModelRepository* repository)
    : options_(std::move(options)),
      device_(options_.device != nullptr ? options_.device : HostComputeDevice()),
      repository_(repository) {}

StatusOr<std::unique_ptr<ModelManager>> ModelManager::Create(ManagerOptions options, ModelRepository* repository) {
  if (options.budget_bytes == 0) return InvalidArgument("residency: budget_bytes must be > 0");
  if (options.max_concurrent_loads < 1) return InvalidArgument("residency: max_concurrent_loads must be >= 1");
  if (options.compile_threads < 1) return InvalidArgument("residency: compile_threads must be >= 1");
  if (options.control_mode != ControlMode::kExplicit && options.control_mode != ControlMode::kNone &&
      repository == nullptr) {
    return InvalidArgument("residency: control mode poll needs a repository");
  }
  if (!options.policy) options.policy = MakeCostPolicy();
  if (!options.clock) options.clock = [] { return NowNs(); };
  if (options.device_upstream == nullptr && options.device == nullptr) options.device_upstream = DefaultHostResource();
  std::unique_ptr<MemoryResource> pinned;
  if (options.host_resource == nullptr && CudaDeviceCount() > 0) {
    // The host tier in pinned memory, so swap-in copies run at full PCIe speed.
    pinned = CreatePinnedHostResource();
    options.host_resource = pinned.get();
  }
  if (options.host_resource == nullptr) options.host_resource = DefaultHostResource();
  std::unique_ptr<ModelManager> m(new ModelManager(std::move(options), repository));
  m->owned_host_ = std::move(pinned);
  RETURN_IF_ERROR(m->Init());
  return m;
}

Status ModelManager::Init() {
  PoolResource::Options po;
  po.upstream = options_.device_upstream != nullptr ? options_.device_upstream : device_->memory();
  po.label = "residency-pool";
  ASSIGN_OR_RETURN(pool_, PoolResource::Create(std::move(po)));
  MemoryResource* pool_top = pool_.get();
  if (options_.inject_alloc_failure_probability > 0) {
    faults_ = std::make_unique<FaultInjectionResource>(pool_.get(), std::min(options_.inject_alloc_failure_probability, 1.0));
    pool_top = faults_.get();
  }
  tracking_ = std::make_unique<TrackingResource>(pool_top);
  statistics_ = std::make_unique<StatisticsResource>(tracking_.get());
  limits_ = std::make_unique<LimitResource>(statistics_.get(), LimitResource::Options{});
  budget_ = std::make_unique<BudgetResource>(limits_.get(), options_.budget_bytes);
  top_ = std::make_unique<FailureCallbackResource>(
      budget_.get(),
      [this](size_t bytes, AllocTag tag, const Status&, int attempt) { return OnAllocationFailure(bytes, tag, attempt); },
      64);
  exec_memory_ = top_.get();
  // Models are compiled by the device's execution backend: the CUDA plugin's on a GPU, the CPU
  // executor on the host and on a device whose kernels the host runs.
  ASSIGN_OR_RETURN(backend_, ExecutionBackendFor(*device_));
  if (!device_->host_accessible() && backend_->runs_host_kernels()) {
    if (device_->host_kernel_access() == nullptr) {
      return FailedPrecondition("{}: the {} executor runs host kernels, and the host cannot reach this device's memory",
                                device_->id().ToString(), backend_->name());
    }
    // The CPU executor stands in for the device's kernels and reaches its memory through the
    // device's kernel view; everything else (copies, the probe) goes through the copy API.
    kernel_view_ = std::make_unique<KernelViewResource>(top_.get(), device_->host_kernel_access());
    exec_memory_ = kernel_view_.get();
  }
  stats_.budget_bytes = options_.budget_bytes;
  io_ = std::make_unique<StatisticsResource>(TransientHostResource());  // outputs: per request
  CopyEngineOptions ce = options_.copy_engine;
  ce.device = device_;
  copy_engine_ = std::make_unique<CopyEngine>(std::move(ce));

  if (options_.bandwidth_probe_bytes > 0) {
    // Host tier -> device memory through the device's copy path and the pool (outside the budget:
    // a transient probe). The best of four copies.
    size_t n = static_cast<size_t>(options_.bandwidth_probe_bytes);
    auto src = Buffer::Allocate(options_.host_resource, n);
    auto dst = Buffer::Allocate(pool_.get(), n);
    auto stream = device_->CreateStream(options_.copy_engine.stream_priority_level);
    if (src.ok() && dst.ok() && stream.ok()) {
      std::memset(src->data(), 1, n);
      double best = 1e30;
      for (int i = 0; i < 4; ++i) {
        int64_t t0 = NowNs();
        if (!device_->CopyToDeviceSync(dst->data(), src->data(), n, **stream).ok()) break;
        best = std::min(best, static_cast<double>(NowNs() - t0));
      }
      if (best < 1e30) h2d_bytes_per_s_ = static_cast<double>(n) / (std::max(best, 1.0) * 1e-9);
    }
    dst = Buffer();
    pool_->Trim();
  }
  stats_.h2d_bytes_per_s = h2d_bytes_per_s_;

  if (repository_ != nullptr && options_.control_mode != ControlMode::kExplicit) {
    ScanResult scan = repository_->Scan();
    std::vector<std::string> preload;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& [name, model] : scan.models) {
        if (model.config.preload && MayPreload(name)) preload.push_back(name);
        Status s = RegisterLocked(std::move(model));
        if (!s.ok()) GH_LOG_WARN("residency", "{}", s.ToString());
      }
      scan_errors_ = scan.errors;
      last_poll_ns_ = Now();
    }
    for (const auto& name : preload) {
      auto lease = Acquire(name);
      if (!lease.ok()) GH_LOG_WARN("residency", "preload of '{}' failed: {}", name, lease.status().ToString());
    }
  }
  preload_thread_ = std::thread([this] { PreloadLoop(); });
  if (options_.housekeeping_interval_us > 0) housekeeping_thread_ = std::thread([this] { HousekeepingLoop(); });
  return Status::OK();
}

ModelManager::~ModelManager() {
  if (faults_) GH_LOG_WARN("residency", "injected {} device allocation failure(s)", faults_->injected());
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    preload_queue_.clear();
  }
  cv_.notify_all();
  {
    std::lock_guard<std::mutex> lock(housekeeping_mu_);
  }
  housekeeping_cv_.notify_all();
  if (preload_thread_.joinable()) preload_thread_.join();
  if (housekeeping_thread_.joinable()) housekeeping_thread_.join();
  // Copies in flight finish (queued ones are cancelled) before the models they write into go.
  copy_engine_.reset();
  // Compiled models free into the stack; drop them before the stack goes.
  std::vector<std::unique_ptr<Executable>> compiled;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [name, versions] : models_) {
      for (auto& [v, e] : versions) {
        if (e->compiled) compiled.push_back(std::move(e->compiled));
        if (e->cpu_model) compiled.push_back(std::move(e->cpu_model));
        e->host_copy.Reset();
        e->host_model.reset();
      }
    }
    models_.clear();
  }
  compiled.clear();
}

Status ModelManager::RegisterLocked(RepositoryModel model) {
  for (const auto& f : model.versions) {
    auto& slot = models_[model.name][f.version];
    if (slot) continue;
    auto e = std::make_shared<Entry>();
    e->name = model.name;
    e->version = f.version;
    e->owner = next_owner_++;
    e->config = model.config;
    e->path = f.path;
    e->from_repository = true;
    e->mtime_ns = f.mtime_ns;
    e->file_bytes = f.file_bytes;
    e->estimated_bytes = f.file_bytes;
    e->state = ModelState::kOnDisk;
    if (e->config.memory_limit_bytes > 0) limits_->SetOwnerLimit(e->owner, e->config.memory_limit_bytes);
    slot = std::move(e);
  }
  return Status::OK();
}

Status ModelManager::AddModel(ModelConfig config, std::string onnx_bytes, int64_t version) {
  RETURN_IF_ERROR(ValidateModelConfig(config));
  if (version < 1) return InvalidArgument("model '{}': version {} < 1", config.name, version);
  if (onnx_bytes.empty()) return InvalidArgument("model '{}': empty ONNX bytes", config.name);
  ASSIGN_OR_RETURN(Buffer host, Buffer::Allocate(options_.host_resource, onnx_bytes.size()));
  std::memcpy(host.data(), onnx_bytes.data(), onnx_bytes.size());
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = models_[config.name][version];
  if (slot) return AlreadyExists("model '{}' version {} is already registered", config.name, version);
  auto e = std::make_shared<Entry>();
  e->name = config.name;
  e->version = version;
  e->owner = next_owner_++;
  e->config = std::move(config);
  e->host_bytes = onnx_bytes.size();
  e->host_copy = std::move(host);
  e->estimated_bytes = onnx_bytes.size();
  e->state = ModelState::kInHost;
  if (e->config.memory_limit_bytes > 0) limits_->SetOwnerLimit(e->owner, e->config.memory_limit_bytes);
  slot = std::move(e);
  return Status::OK();
}

std::shared_ptr<ModelLease::Entry> ModelManager::FindLocked(const std::string& name, int64_t version) const {
  auto it = models_.find(name);
  if (it == models_.end() || it->second.empty()) return nullptr;
  if (version == 0) return it->second.rbegin()->second;
  auto jt = it->second.find(version);
  return jt == it->second.end() ? nullptr : jt->second;
}

void ModelManager::SetStateLocked(Entry& e, ModelState to) {
  if (!IsValidTransition(e.state, to)) {
    GH_LOG_ERROR("residency", "model '{}' v{}: unexpected transition {} -> {}", e.name, e.version,
                 ModelStateName(e.state), ModelStateName(to));
  }
  ModelState from = e.state;
  e.state = to;
  if (options_.on_transition) {
    options_.on_transition(ModelTransition{e.name, e.version, from, to, e.last_swap_ns, e.device_bytes});
  }
}

uint64_t ModelManager::UsedBytes() const { return budget_->used(); }

double ModelManager::DecayedUses(const Entry& e, int64_t now_ns) const {
  if (e.decayed_uses <= 0) return 0;
  double age = static_cast<double>(std::max<int64_t>(0, now_ns - e.decayed_at_ns));
  double half = static_cast<double>(std::max<int64_t>(1, options_.frequency_half_life_us)) * 1e3;
  return e.decayed_uses * std::exp2(-age / half);
}

uint64_t ModelManager::KeepAliveUs(const Entry& e) const {
  int64_t ka = e.config.keep_alive_us.value_or(options_.default_keep_alive_us);
  return ka < 0 ? UINT64_MAX : static_cast<uint64_t>(ka);
}

Status ModelManager::Load(const std::string& name) {
  if (repository_ != nullptr) {
    bool known;
    {
      std::lock_guard<std::mutex> lock(mu_);
      known = models_.count(name) > 0;
    }
    if (!known) {
      ASSIGN_OR_RETURN(RepositoryModel m, repository_->ScanModel(name));
      std::lock_guard<std::mutex> lock(mu_);
      RETURN_IF_ERROR(RegisterLocked(std::move(m)));
    }
  }
  std::vector<std::shared_ptr<Entry>> entries;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = models_.find(name);
    if (it == models_.end()) return NotFound("model '{}' is not registered", name);
    for (auto& [v, e] : it->second) {
      e->unload_requested = false;
      entries.push_back(e);
    }
  }
  for (auto& e : entries) {
    auto lease = AcquireEntry(e, false, 0);
    if (!lease.ok()) return lease.status();
  }
  return Status::OK();
}

Status ModelManager::LoadWithConfig(const std::string& name, const ModelConfig* config) {
  if (repository_ == nullptr) return FailedPrecondition("no repository to load '{}' from", name);
  ASSIGN_OR_RETURN(RepositoryModel m, repository_->ScanModel(name, config));
  Status unloaded = Unload(name);
  if (!unloaded.ok() && unloaded.code() != StatusCode::kNotFound) return unloaded;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = models_.find(name);
    if (it != models_.end()) {
      for (const auto& [v, e] : it->second) {
        if (e->leases > 0 || e->copy_in_flight || e->state == ModelState::kResident ||
            e->state == ModelState::kLoadingHost || e->state == ModelState::kLoadingDevice) {
          return Unavailable("model '{}' v{} is still in use; retry the load", name, v);
        }
      }
      models_.erase(it);
    }
    RETURN_IF_ERROR(RegisterLocked(std::move(m)));
  }
  return Load(name);
}

Status ModelManager::Unload(const std::string& name) {
  std::vector<std::unique_ptr<Executable>> victims;
  std::vector<Buffer> hosts;
  std::vector<std::unique_ptr<ir::Model>> host_models;
  {
    std::unique_lock<std::mutex> lock(mu_);
    // Idle versions whose weight copy still runs are unloaded once it has ended.
    cv_.wait(lock, [&] {
      auto f = models_.find(name);
      if (f == models_.end()) return true;
      for (auto& [v, e] : f->second) {
        if (e->copy_in_flight && e->leases == 0) return false;
      }
      return true;
    });
    auto it = models_.find(name);
    if (it == models_.end()) return NotFound("model '{}' is not registered", name);
    bool unregister = options_.control_mode == ControlMode::kExplicit && repository_ != nullptr;
    for (auto& [v, e] : it->second) {
      if (e->state == ModelState::kResident && (e->leases > 0 || e->copy_in_flight)) {
        e->unload_requested = true;
        if (unregister) e->removed = true;
        continue;
      }
      if (e->state == ModelState::kResident) {
        victims.push_back(std::move(e->compiled));
        e->gate.reset();
        e->copy_error = Status::OK();
        {
          std::lock_guard<std::mutex> g(e->fallback_mu);
          e->cpu_model.reset();
        }
        ++stats_.evictions;
        SetStateLocked(*e, e->host_model || e->host_copy.data() ? ModelState::kInHost : ModelState::kOnDisk);
      }
      if (e->from_repository && e->state == ModelState::kInHost) {
        hosts.push_back(std::move(e->host_copy));
        host_models.push_back(std::move(e->host_model));
        e->host_bytes = 0;
        SetStateLocked(*e, ModelState::kOnDisk);
      }
      if (e->from_repository && e->state == ModelState::kFailed) SetStateLocked(*e, ModelState::kOnDisk);
      if (unregister && e->state != ModelState::kLoadingHost && e->state != ModelState::kLoadingDevice) {
        e->removed = true;
      }
    }
    if (unregister) {
      for (auto jt = it->second.begin(); jt != it->second.end();) {
        jt = jt->second->removed && jt->second->leases == 0 && jt->second->state == ModelState::kOnDisk
                 ? it->second.erase(jt)
                 : std::next(jt);
      }
      if (it->second.empty()) models_.erase(it);
    }
  }
  victims.clear();
  hosts.clear();
  return Status::OK();
}

void ModelManager::SetNeverFitsLocked(Entry& e, bool failed) {
  e.never_fits_budget = failed ? budget_->budget.load() : 0;
  e.never_fits_limit = failed ? e.config.memory_limit_bytes : 0;
  e.never_fits.store(failed, std::memory_order_relaxed);
}

Status ModelManager::FitsLocked(const Entry& e) const {
  const uint64_t budget = budget_->budget.load();
  const uint64_t limit = e.config.memory_limit_bytes;
  const uint64_t needed = e.device_bytes > 0 ? e.device_bytes : e.estimated_bytes;
  RETURN_IF_ERROR(detail::SizeFits(e.name, needed, budget, limit));
  auto unlimited = [](uint64_t l) { return l == 0 ? UINT64_MAX : l; };
  if (e.never_fits_budget > 0 && budget <= e.never_fits_budget &&
      unlimited(limit) <= unlimited(e.never_fits_limit)) {
    return ResourceExhausted("model '{}' does not fit the whole budget of {}: its last load or request needed more",
                             e.name, FormatBytes(e.never_fits_budget)).WithShortage(MemoryShortage::kNeverFits);
  }
  return Status::OK();
}

std::map<std::string, Status> ModelManager::ScanErrors() const {
  std::lock_guard<std::mutex> lock(mu_);
  return scan_errors_;
}

std::vector<ModelStatus> ModelManager::ListModels() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ModelStatus> out;
  for (const auto& [name, versions] : models_) {
    for (const auto& [v, e] : versions) {
      ModelStatus s;
      s.name = e->name;
      s.version = e->version;
      s.state = e->state;
      s.last_error = e->last_error;
      s.device_bytes = limits_->owner_used_bytes(e->owner);
      s.host_bytes = e->host_bytes;
      s.leases = e->leases;
      s.use_count = e->use_count;
      s.last_use_ns = e->last_use_ns;
      s.last_swap_ns = e->last_swap_ns;
      s.last_copy_ns = e->last_copy_ns;
      s.h2d_bytes = e->h2d_bytes;
      s.h2d_ns = e->h2d_ns;
      s.copy_in_flight = e->copy_in_flight;
      s.fits = FitsLocked(*e);
      if (e->compiled) s.executor = std::string(e->compiled->backend());
      s.precision = e->precision.precision;
      s.precision_note = e->precision.note;
      s.precision_rel_l2 = e->precision.rel_l2;
      s.precision_top1 = e->precision.top1;
      out.push_back(std::move(s));
    }
  }
  return out;
}

ResidencyStats ModelManager::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  ResidencyStats s = stats_;
  s.used_bytes = budget_->used();
  s.peak_used_bytes = budget_->peak.load();
  s.budget_bytes = budget_->budget.load();
  s.h2d_bytes_per_s = h2d_bytes_per_s_;
  s.host_budget_bytes = options_.host_budget_bytes;
  s.host_used_bytes = 0;
  for (const auto& [name, versions] : models_) {
    for (const auto& [v, e] : versions) s.host_used_bytes += e->host_bytes;
  }
  s.io_bytes = io_->Stats()->current_bytes;
  return s;
}

StatusOr<ModelConfig> ModelManager::GetConfig(const std::string& name, int64_t version) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto e = FindLocked(name, version);
  if (!e) return NotFound("model '{}' is not registered", name);
  return e->config;
}

Status ModelManager::LastLoadError(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto e = FindLocked(name, 0);
  return e ? e->last_error : Status::OK();
}

Status ModelManager::SetMemoryLimit(const std::string& name, uint64_t limit_bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = models_.find(name);
  if (it == models_.end() || it->second.empty()) return NotFound("model '{}' is not registered", name);
  for (auto& [version, e] : it->second) {
    e->config.memory_limit_bytes = limit_bytes;
    limits_->SetOwnerLimit(e->owner, limit_bytes > 0 ? limit_bytes : kNoLimit);
  }
  return Status::OK();
}

ManagedModelRunner::ManagedModelRunner(ModelManager* manager, std::string model, int num_workers)
    : manager_(manager), model_(std::move(model)) {
  contexts_.resize(static_cast<size_t>(std::max(0, num_workers)));
  fallback_contexts_.resize(contexts_.size());
}

ManagedModelRunner::~ManagedModelRunner() = default;

StatusOr<std::vector<Tensor>> ManagedModelRunner::RunBatch(const std::vector<TensorView>& inputs, int worker_index,
                                                           int num_threads) {
  if (worker_index < 0 || static_cast<size_t>(worker_index) >= contexts_.size()) {
    return InvalidArgument("worker index {} outside 0..{}", worker_index, contexts_.size());
  }
  auto& ctx = contexts_[static_cast<size_t>(worker_index)];
  auto& host = fallback_contexts_[static_cast<size_t>(worker_index)];
  if (!ctx || ctx->options().num_threads != num_threads) {
    ctx = std::make_unique<ExecutionContext>(
        ExecutionContext::Options{.num_threads = std::max(1, num_threads), .memory = manager_->memory()});
    host = std::make_unique<ExecutionContext>(ExecutionContext::Options{.num_threads = std::max(1, num_threads)});
  }
  return manager_->RunBatch(model_, *ctx, inputs, host.get(), {});
}

std::vector<std::string> ManagedModelRunner::input_names() const {
  std::vector<std::string> names;
  auto c = manager_->GetConfig(model_);
  if (c.ok()) {
    for (const auto& t : c->inputs) names.push_back(t.name);
  }
  return names;
}

std::vector<std::string> ManagedModelRunner::output_names() const {
  std::vector<std::string> names;
  auto c = manager_->GetConfig(model_);
  if (c.ok()) {
    for (const auto& t : c->outputs) names.push_back(t.name);
  }
  return names;
}

}  // namespace gpuhive::residency
