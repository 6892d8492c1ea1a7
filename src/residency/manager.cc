#include "gpuhive/residency/manager.h"

#include <algorithm>
#include <filesystem>
#include <unordered_map>
#include <chrono>
#include <cmath>
#include <cstring>
#include <utility>

#include "gpuhive/logging.h"
#include "gpuhive/memory/upstreams.h"
#include "gpuhive/onnx_import.h"
#include "gpuhive/units.h"
#include "residency/kernel_view.h"

namespace gpuhive::residency {

// Set while a preload runs on this thread: allocation failures must not evict for a prediction.
thread_local bool t_no_evict = false;

namespace {

// The last allocation through the budget that failed on this thread (OnAllocationFailure): its
// owner and size. A load or run that failed for memory compares it with the budget to tell "can
// never fit" from "not now" (FailedAllocationCanNeverFit), whoever else held memory.
struct FailedAllocation {
  uint32_t owner = 0;
  uint64_t bytes = 0;
};
thread_local FailedAllocation t_failed;

// Why `needed` bytes can never be resident under `budget` and `limit` (0: none); OK when they may.
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

}  // namespace

struct ModelLease::Entry {
  std::string name;
  int64_t version = 0;
  uint32_t owner = 0;
  ModelConfig config;
  std::string path;           // the .onnx file; empty for models added from memory
  bool from_repository = false;
  int64_t mtime_ns = 0;       // of the file registered (poll mode compares it)
  uint64_t file_bytes = 0;
  ModelState state = ModelState::kOnDisk;
  Status last_error;
  // Host tier: the imported graph (constants in host memory), so a swap-in only clones the graph
  // structure and copies the weights; or, for graphs with subgraphs, the ONNX bytes (re-imported
  // on each swap-in).
  std::unique_ptr<ir::Model> host_model;
  Buffer host_copy;
  size_t host_bytes = 0;
  std::unique_ptr<CompiledModel> compiled;  // device tier
  // CPU fallback copy compiled into host memory outside the budget, made on first need; dropped
  // with the device copy. Guarded by fallback_mu (only lease holders touch it).
  std::mutex fallback_mu;
  std::unique_ptr<CompiledModel> cpu_model;
  uint64_t device_bytes = 0;
  uint64_t estimated_bytes = 0;  // weights estimate before the first load (the file size)
  int leases = 0;
  uint64_t use_count = 0;
  double decayed_uses = 0;  // as of decayed_at_ns
  int64_t decayed_at_ns = 0;
  int64_t last_use_ns = 0;
  int64_t last_swap_ns = 0;
  int64_t last_copy_ns = 0;
  // Pipelined swap-in: the gate of the device copy's weights, whether the copy engine still writes
  // into it (never evicted meanwhile), and its failure (the copy is dropped when idle).
  std::shared_ptr<WeightGate> gate;
  bool copy_in_flight = false;
  Status copy_error;
  bool preloaded_unused = false;
  // A load, or a one-row request, failed for memory that this budget or this memory limit (0:
  // unlimited) can never give it (FailedAllocationCanNeverFit); never_fits_budget 0: no such
  // failure. `never_fits` mirrors never_fits_budget != 0 for Run's lock-free check.
  uint64_t never_fits_budget = 0;
  uint64_t never_fits_limit = 0;
  std::atomic<bool> never_fits{false};
  bool unload_requested = false;
  bool removed = false;
};

// Total device budget, changeable at run time (LimitResource's total is fixed at construction).
struct ModelManager::BudgetResource final : public MemoryResource {
  BudgetResource(MemoryResource* up, uint64_t budget) : upstream(up), budget(budget) {}
  DeviceId device() const override { return upstream->device(); }
  std::string name() const override { return "budget(" + upstream->name() + ")"; }
  uint64_t used() const { return used_bytes.load(std::memory_order_relaxed); }

  MemoryResource* const upstream;
  std::atomic<uint64_t> budget;
  std::atomic<uint64_t> used_bytes{0};
  std::atomic<uint64_t> peak{0};

 private:
  StatusOr<void*> DoAllocate(size_t bytes, AllocTag tag, StreamView stream) override {
    uint64_t cur = used_bytes.load(std::memory_order_relaxed);
    do {
      uint64_t b = budget.load(std::memory_order_relaxed);
      if (cur + bytes > b) {
        return ResourceExhausted("device budget: {} requested with {} of {} in use", FormatBytes(bytes),
                                 FormatBytes(cur), FormatBytes(b));
      }
    } while (!used_bytes.compare_exchange_weak(cur, cur + bytes, std::memory_order_relaxed));
    auto p = upstream->Allocate(bytes, tag, stream);
    if (!p.ok()) {
      used_bytes.fetch_sub(bytes, std::memory_order_relaxed);
      return p.status();
    }
    uint64_t now = cur + bytes, pk = peak.load(std::memory_order_relaxed);
    while (now > pk && !peak.compare_exchange_weak(pk, now, std::memory_order_relaxed)) {
    }
    return p;
  }
  void DoDeallocate(void* ptr, size_t bytes, AllocTag tag, StreamView stream) noexcept override {
    upstream->Deallocate(ptr, bytes, tag, stream);
    used_bytes.fetch_sub(bytes, std::memory_order_relaxed);
  }
};

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

namespace {

bool HasSubgraphs(const ir::Graph& g) {
  for (const auto& n : g.nodes()) {
    for (const auto& [name, attr] : n->attrs) {
      if (attr.type() == ir::Attribute::Type::kGraph) return true;
    }
  }
  return false;
}

size_t ConstantBytes(const ir::Graph& g) {
  size_t n = 0;
  for (const auto& v : g.values()) {
    if (v->constant) n += v->constant->bytes();
  }
  return n;
}

// Copies every constant into `mr` (the pinned host tier), so swap-in copies come from it.
Status RehomeConstants(ir::Graph& g, MemoryResource* mr) {
  for (const auto& v : g.values()) {
    if (!v->constant) continue;
    ASSIGN_OR_RETURN(Tensor t, v->constant->Clone(mr));
    v->constant = std::make_shared<const Tensor>(std::move(t));
  }
  return Status::OK();
}

// A new graph with the same structure that shares the (immutable) constants: what the compiler
// consumes on a swap-in. Only for graphs without subgraphs (HasSubgraphs false).
std::unique_ptr<ir::Model> CloneModel(const ir::Model& src) {
  auto m = std::make_unique<ir::Model>();
  m->opsets = src.opsets;
  m->ir_version = src.ir_version;
  m->producer_name = src.producer_name;
  m->metadata = src.metadata;
  m->graph = std::make_shared<ir::Graph>();
  const ir::Graph& g = *src.graph;
  ir::Graph& out = *m->graph;
  out.name = g.name;
  std::unordered_map<const ir::Value*, ir::Value*> map;
  map.reserve(g.values().size());
  for (const auto& v : g.values()) {
    ir::Value* nv = out.AddValue(v->name, v->dtype);
    nv->shape = v->shape;
    nv->constant = v->constant;
    nv->is_graph_input = v->is_graph_input;
    nv->is_graph_output = v->is_graph_output;
    nv->is_outer_ref = v->is_outer_ref;
    map[v.get()] = nv;
  }
  auto mapped = [&](const std::vector<ir::Value*>& vs) {
    std::vector<ir::Value*> r;
    r.reserve(vs.size());
    for (ir::Value* v : vs) r.push_back(v == nullptr ? nullptr : map.at(v));
    return r;
  };
  for (const auto& n : g.nodes()) {
    ir::Node* nn = out.AddNode(n->op_type, mapped(n->inputs), mapped(n->outputs), n->name, n->domain);
    nn->opset = n->opset;
    nn->attrs = n->attrs;
    nn->implicit_inputs = mapped(n->implicit_inputs);
  }
  out.inputs() = mapped(g.inputs());
  out.outputs() = mapped(g.outputs());
  out.outer_refs() = mapped(g.outer_refs());
  return m;
}

// The graph a swap-in compiles: a clone of the host-tier graph, or a fresh import of the bytes.
StatusOr<std::unique_ptr<ir::Model>> HostTierGraph(const ir::Model* host_model, const Buffer& host_copy,
                                                   size_t host_bytes) {
  if (host_model != nullptr) return CloneModel(*host_model);
  return ImportOnnxBytes(std::string_view(static_cast<const char*>(host_copy.data()), host_bytes));
}

}  // namespace

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
  if (!device_->host_accessible()) {
    // The CPU executor stands in for the device's kernels and reaches its memory through the
    // device's kernel view; everything else (copies, the probe) goes through the copy API.
    const KernelAccess* access = device_->host_kernel_access();
    if (access == nullptr) {
      return FailedPrecondition("{}: this build has no executor for it", device_->id().ToString());
    }
    kernel_view_ = std::make_unique<KernelViewResource>(top_.get(), access);
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
  std::vector<std::unique_ptr<CompiledModel>> compiled;
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

StatusOr<ModelLease> ModelManager::Acquire(const std::string& name, int64_t version) {
  std::shared_ptr<Entry> e;
  {
    std::lock_guard<std::mutex> lock(mu_);
    e = FindLocked(name, version);
    if (!e) {
      if (version == 0) return NotFound("model '{}' is not registered", name);
      return NotFound("model '{}' has no version {}", name, version);
    }
  }
  predictor_.Observe(name);
  auto lease = AcquireEntry(std::move(e), false, 0);
  if (options_.enable_preloading) SchedulePreloads(name);
  return lease;
}

StatusOr<ModelLease> ModelManager::AcquireEntry(std::shared_ptr<Entry> e, bool preload, double preload_probability) {
  bool loaded_here = false;
  bool waited = false;
  int loads = 0;
  int64_t swap_ns = 0;
  std::unique_lock<std::mutex> lock(mu_);
  if (!preload) ++stats_.acquires;
  for (;;) {
    if (e->removed) {
      ++stats_.refused;
      return NotFound("model '{}' was removed", e->name);
    }
    if (e->state == ModelState::kResident && (!e->copy_error.ok() || (e->gate && e->gate->failed()))) {
      // Its weight copy failed: reload once the last lease of the broken copy has ended.
      if (e->leases > 0) {
        if (!preload) ++stats_.refused;
        Status why = e->copy_error.ok() ? e->gate->status() : e->copy_error;
        return Unavailable("model '{}': its swap-in failed ({}); it is reloaded when its current requests end",
                           e->name, why.message());
      }
      if (e->copy_in_flight) {  // the copy engine is about to report the failure
        cv_.wait(lock, [&] { return !e->copy_in_flight; });
        continue;
      }
      std::unique_ptr<CompiledModel> victim;
      EvictLocked(*e, &victim);
      lock.unlock();
      victim.reset();
      lock.lock();
      continue;
    }
    if (e->state == ModelState::kResident) {
      if (preload) return ModelLease();  // nothing to do
      ModelLease lease;
      lease.manager_ = this;
      lease.entry_ = e;
      lease.model_ = e->compiled.get();
      lease.was_resident_ = !loaded_here && !waited;
      lease.swap_ns_ = swap_ns;
      ++e->leases;
      ++e->use_count;
      {
        const int64_t now = Now();
        e->decayed_uses = DecayedUses(*e, now) + 1.0;
        e->decayed_at_ns = now;
      }
      e->last_use_ns = Now();
      // A hit: resident when asked for, without loading or waiting for a load.
      if (!loaded_here && !waited) ++stats_.hits;
      if (e->preloaded_unused) {
        e->preloaded_unused = false;
        ++stats_.preload_hits;
      }
      return lease;
    }
    if (e->state == ModelState::kLoadingHost || e->state == ModelState::kLoadingDevice) {
      if (preload) return ModelLease();
      waited = true;
      cv_.wait(lock);
      continue;
    }
    if (loads >= 3) {
      // Loaded by us and evicted again before we could lease it, repeatedly: give up for now.
      if (!preload) ++stats_.refused;
      return Unavailable("model '{}' was evicted again before it could be leased; the budget is too contended",
                         e->name).WithShortage(MemoryShortage::kContended);
    }
    // kOnDisk / kInHost / kFailed: this thread loads it.
    SetStateLocked(*e, e->state == ModelState::kOnDisk ? ModelState::kLoadingHost
                                                       : (e->host_copy.data() || e->host_model ? ModelState::kLoadingDevice
                                                                              : ModelState::kLoadingHost));
    while (active_loads_ >= options_.max_concurrent_loads) cv_.wait(lock);
    ++active_loads_;
    lock.unlock();
    int64_t t0 = NowNs();
    Status s = LoadToDevice(e, preload, preload_probability);
    swap_ns = NowNs() - t0;
    lock.lock();
    --active_loads_;
    loaded_here = true;
    ++loads;
    cv_.notify_all();
    if (!s.ok()) {
      if (!preload) ++stats_.refused;
      return s;
    }
    if (preload) return ModelLease();
  }
}

Status ModelManager::LoadToDevice(const std::shared_ptr<Entry>& entry, bool preload, double preload_probability) {
  Entry& e = *entry;
  // Runs without the lock. Only this thread touches e.host_copy / e.compiled while e is loading.
  auto fail = [&](Status s, ModelState to) {
    std::lock_guard<std::mutex> lock(mu_);
    e.last_error = s;
    if (to == ModelState::kFailed) {
      ++stats_.load_failures;
      GH_LOG_WARN("residency", "model '{}' v{}: {}", e.name, e.version, s.ToString());
    } else {
      GH_LOG_DEBUG("residency", "model '{}' v{}: {}", e.name, e.version, s.ToString());
    }
    if (preload) e.last_error = Status::OK();
    SetStateLocked(e, to);
    return s;
  };
  ModelState state;
  {
    std::lock_guard<std::mutex> lock(mu_);
    state = e.state;
  }
  if (state == ModelState::kLoadingHost) {
    // Disk tier -> host tier (the imported graph, or the bytes for graphs with subgraphs). Read,
    // not mapped: the file may be truncated or rewritten meanwhile (ReadModelFile).
    auto file = ReadModelFile(e.path);
    if (!file.ok()) return fail(file.status().WithContext("model '" + e.name + "'"), ModelState::kFailed);
    ImportOptions io;
    io.base_dir = std::filesystem::path(e.path).parent_path().string();
    auto imported = ImportOnnxBytes(*file, io);
    if (!imported.ok()) return fail(imported.status().WithContext("model '" + e.name + "'"), ModelState::kFailed);
    Buffer host;
    size_t host_bytes = 0;
    std::unique_ptr<ir::Model> host_model;
    if (HasSubgraphs(*(*imported)->graph)) {
      auto buf = Buffer::Allocate(options_.host_resource, std::max<size_t>(file->size(), 1));
      if (!buf.ok()) return fail(buf.status().WithContext("model '" + e.name + "': host tier"), ModelState::kFailed);
      if (!file->empty()) std::memcpy(buf->data(), file->data(), file->size());
      host = std::move(*buf);
      host_bytes = file->size();
    } else {
      host_model = std::move(*imported);
      if (options_.host_resource != DefaultHostResource()) {
        Status s = RehomeConstants(*host_model->graph, options_.host_resource);
        if (!s.ok()) return fail(s.WithContext("model '" + e.name + "': host tier"), ModelState::kFailed);
      }
      host_bytes = ConstantBytes(*host_model->graph);
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      e.host_copy = std::move(host);
      e.host_model = std::move(host_model);
      e.host_bytes = host_bytes;
      if (e.estimated_bytes == 0) e.estimated_bytes = file->size();
      SetStateLocked(e, ModelState::kInHost);
      SetStateLocked(e, ModelState::kLoadingDevice);
    }
    EnforceHostBudget(&e);
  } else if (e.host_model == nullptr && e.host_copy.data() != nullptr) {
    // Bytes given to AddModel: import once into the host tier (graphs without subgraphs).
    auto imported = ImportOnnxBytes(std::string_view(static_cast<const char*>(e.host_copy.data()), e.host_bytes));
    if (!imported.ok()) return fail(imported.status().WithContext("model '" + e.name + "'"), ModelState::kFailed);
    if (!HasSubgraphs(*(*imported)->graph)) {
      std::unique_ptr<ir::Model> host_model = std::move(*imported);
      if (options_.host_resource != DefaultHostResource()) {
        Status s = RehomeConstants(*host_model->graph, options_.host_resource);
        if (!s.ok()) return fail(s.WithContext("model '" + e.name + "': host tier"), ModelState::kFailed);
      }
      Buffer old;
      std::lock_guard<std::mutex> lock(mu_);
      old = std::move(e.host_copy);
      e.host_bytes = ConstantBytes(*host_model->graph);
      e.host_model = std::move(host_model);
    }
  }

  // The weights need about as many bytes as the file; refuse what can never fit.
  const uint64_t needed = e.device_bytes > 0 ? e.device_bytes : e.estimated_bytes;
  Status fits = SizeFits(e.name, needed, budget_->budget.load(), e.config.memory_limit_bytes);
  if (!fits.ok()) return fail(fits, ModelState::kInHost);
  if (!EvictFor(needed, &e, preload ? preload_probability : 2.0) && preload) {
    return fail(Unavailable("no spare budget for preloading '{}'", e.name), ModelState::kInHost);
  }

  t_no_evict = preload;
  CompileOptions co;
  co.num_threads = options_.compile_threads;
  co.optimize = options_.optimize;
  co.memory = exec_memory_;
  co.output_memory = io_.get();
  co.owner_tag = e.owner;
  co.defer_weight_copies = true;  // the copy engine copies them (below)
  int64_t t0 = NowNs();
  t_failed = {};
  auto model = HostTierGraph(e.host_model.get(), e.host_copy, e.host_bytes);
  StatusOr<std::unique_ptr<CompiledModel>> compiled =
      model.ok() ? CompiledModel::Create(std::move(*model), co) : StatusOr<std::unique_ptr<CompiledModel>>(model.status());
  int64_t swap_ns = NowNs() - t0;
  t_no_evict = false;
  if (!compiled.ok()) {
    bool pressure = compiled.status().code() == StatusCode::kResourceExhausted;
    // A failed load holds nothing: only an allocation larger than the whole budget is proof.
    if (pressure && FailedAllocationCanNeverFit(e, 0)) {
      // Only more budget or a higher limit can make it resident: not ready, nobody should wait.
      {
        std::lock_guard<std::mutex> lock(mu_);
        SetNeverFitsLocked(e, true);
      }
      return fail(ResourceExhausted("model '{}' can never be made resident: {} (the whole budget is {}{})",
                                    e.name, compiled.status().message(), FormatBytes(budget_->budget.load()),
                                    e.config.memory_limit_bytes > 0
                                        ? ", its memory_limit " + FormatBytes(e.config.memory_limit_bytes)
                                        : std::string()).WithShortage(MemoryShortage::kNeverFits),
                  ModelState::kInHost);
    }
    if (pressure) {
      return fail(ResourceExhausted("model '{}' cannot be made resident now: {} (budget {}, {} in use by leased or "
                                    "loading models)",
                                    e.name, compiled.status().message(), FormatBytes(budget_->budget.load()),
                                    FormatBytes(UsedBytes())).WithShortage(MemoryShortage::kContended),
                  ModelState::kInHost);
    }
    return fail(compiled.status().WithContext("model '" + e.name + "'"), ModelState::kFailed);
  }
  std::shared_ptr<WeightGate> gate = (*compiled)->weight_gate();
  std::vector<WeightCopy> copies = (*compiled)->TakePendingWeightCopies();
  if (kernel_view_) {
    // The copy engine writes through the device's copy API: device pointers, not the kernel view.
    for (WeightCopy& c : copies) c.destination = device_->host_kernel_access()->Unmap(c.destination);
  }
  const bool pipelined = options_.pipelined_swap && !copies.empty();
  int64_t copy_ns = 0;
  if (!pipelined && !copies.empty()) {
    // Not pipelined: the whole copy before the model may be leased.
    std::mutex done_mu;
    std::condition_variable done_cv;
    bool done = false;
    CopyJobResult result;
    copy_engine_->Submit(std::move(copies), gate, [&](const CopyJobResult& r) {
      std::lock_guard<std::mutex> g(done_mu);
      result = r;
      done = true;
      done_cv.notify_all();
    });
    {
      std::unique_lock<std::mutex> g(done_mu);
      done_cv.wait(g, [&] { return done; });
    }
    copy_ns = result.copy_ns;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.bytes_copied += result.bytes;
      stats_.copy_ns += result.copy_ns;
      if (!result.status.ok()) ++stats_.copy_failures;
    }
    if (!result.status.ok()) {
      compiled->reset();
      return fail(result.status.WithContext("model '" + e.name + "': swap-in"), ModelState::kFailed);
    }
    swap_ns = NowNs() - t0;
  }
  std::unique_lock<std::mutex> lock(mu_);
  e.compiled = std::move(*compiled);
  e.gate = gate;
  e.copy_in_flight = pipelined;
  e.copy_error = Status::OK();
  e.device_bytes = limits_->owner_used_bytes(e.owner);
  e.last_swap_ns = swap_ns;
  if (!pipelined) e.last_copy_ns = copy_ns;
  e.last_error = Status::OK();
  SetNeverFitsLocked(e, false);
  e.preloaded_unused = preload;
  if (e.last_use_ns == 0 || preload) e.last_use_ns = Now();
  ++stats_.loads;
  if (preload) ++stats_.preloads;
  stats_.bytes_swapped_in += e.device_bytes;
  SetStateLocked(e, ModelState::kResident);
  lock.unlock();
  if (pipelined) {
    // The copy stream fills the weights while the model is already leased and running.
    copy_engine_->Submit(
        std::move(copies), gate, [this, entry](const CopyJobResult& r) { OnCopyDone(entry, r); }, preload);
  }
  return Status::OK();
}

void ModelManager::OnCopyDone(const std::shared_ptr<Entry>& entry, const CopyJobResult& r) {
  Entry& e = *entry;
  // While copy_in_flight is set nothing replaces or evicts e.compiled, so it is read unlocked; the
  // plain weights the copy made redundant are freed now if no run is in flight (one that is frees
  // them as it ends), not at the next request.
  if (r.status.ok() && e.compiled) e.compiled->ReleaseSettledWeights();
  std::unique_ptr<CompiledModel> victim;
  Buffer host;
  std::unique_ptr<ir::Model> host_model;
  {
    std::lock_guard<std::mutex> lock(mu_);
    e.copy_in_flight = false;
    e.last_copy_ns = r.copy_ns;
    stats_.bytes_copied += r.bytes;
    stats_.copy_ns += r.copy_ns;
    if (!r.status.ok()) {
      e.copy_error = r.status;
      e.last_error = r.status.WithContext("swap-in");
      ++stats_.copy_failures;
      ++stats_.load_failures;
      GH_LOG_WARN("residency", "model '{}' v{}: weight copy failed: {}", e.name, e.version, r.status.ToString());
    } else if (h2d_bytes_per_s_ > 0 && r.bytes > 0) {
      GH_LOG_DEBUG("residency", "model '{}' v{}: {} copied in {:.2f} ms ({:.2f}x bytes/bandwidth)", e.name, e.version,
                   FormatBytes(r.bytes), static_cast<double>(r.copy_ns) / 1e6,
                   static_cast<double>(r.copy_ns) * 1e-9 / (static_cast<double>(r.bytes) / h2d_bytes_per_s_));
    }
    // Keep-alive 0 is left to the lease's end: the thread that loaded it has not leased it yet.
    SettleIdleLocked(e, &victim, &host, &host_model, /*lease_ended=*/false);
  }
  cv_.notify_all();
}

void ModelManager::EvictLocked(Entry& e, std::unique_ptr<CompiledModel>* out) {
  *out = std::move(e.compiled);
  e.gate.reset();
  e.copy_error = Status::OK();
  {
    std::lock_guard<std::mutex> g(e.fallback_mu);
    e.cpu_model.reset();
  }
  if (e.preloaded_unused) ++stats_.preload_wasted;
  e.preloaded_unused = false;
  ++stats_.evictions;
  // Without a host copy (dropped for the host budget) the model comes from disk next time.
  const bool in_host = e.host_model != nullptr || e.host_copy.data() != nullptr;
  SetStateLocked(e, in_host ? ModelState::kInHost : ModelState::kOnDisk);
}

bool ModelManager::EvictOne(const Entry* except, double below_probability) {
  std::unique_ptr<CompiledModel> victim;
  {
    std::unique_lock<std::mutex> lock(mu_);
    std::vector<EvictionCandidate> cands;
    std::vector<Entry*> entries;
    const std::string last = predictor_.last();
    // Idle models whose weight copy is still running (a preload): evictable once it ends.
    std::shared_ptr<Entry> copying;
    for (auto& [name, versions] : models_) {
      for (auto& [v, e] : versions) {
        if (e.get() == except || e->state != ModelState::kResident || e->leases > 0) continue;
        if (e->copy_in_flight) {
          copying = e;
          continue;
        }
        EvictionCandidate c;
        c.name = e->name;
        c.priority = std::max(0, e->config.priority - 1);  // Triton numbering: 0 and 1 most important
        c.last_use_ns = e->last_use_ns;
        c.bytes = e->device_bytes;
        c.reload_ns = e->last_swap_ns > 0 ? e->last_swap_ns
                                          : static_cast<int64_t>(double(e->device_bytes) / h2d_bytes_per_s_ * 1e9);
        c.next_use_probability = last.empty() ? 0 : predictor_.Probability(last, e->name);
        c.use_count = e->use_count;
        c.decayed_uses = DecayedUses(*e, Now());
        if (below_probability <= 1.0 && (c.next_use_probability >= below_probability || e->name == last)) continue;
        cands.push_back(std::move(c));
        entries.push_back(e.get());
      }
    }
    if (cands.empty() && copying) {
      cv_.wait(lock, [&] { return !copying->copy_in_flight; });
      lock.unlock();
      return EvictOne(except, below_probability);
    }
    if (cands.empty()) return false;
    auto order = options_.policy->Order(cands, Now());
    if (order.empty() || order[0] >= entries.size()) return false;
    EvictLocked(*entries[order[0]], &victim);
  }
  victim.reset();  // frees its memory outside the lock
  return true;
}

bool ModelManager::EvictFor(uint64_t needed, const Entry* except, double below_probability) {
  for (;;) {
    uint64_t budget = budget_->budget.load();
    if (UsedBytes() + needed <= budget) return true;
    if (!EvictOne(except, below_probability)) return UsedBytes() + needed <= budget;
  }
}

bool ModelManager::FailedAllocationCanNeverFit(const Entry& e, uint64_t held_bytes) const {
  const FailedAllocation f = t_failed;
  if (f.bytes == 0) return false;
  const uint64_t needed = held_bytes + f.bytes;
  if (needed > budget_->budget.load()) return true;
  return f.owner == e.owner && e.config.memory_limit_bytes > 0 && needed > e.config.memory_limit_bytes;
}

bool ModelManager::OnAllocationFailure(size_t bytes, AllocTag tag, int) {
  t_failed = {tag.owner, bytes};
  if (t_no_evict) return false;
  const Entry* except = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [name, versions] : models_) {
      for (auto& [v, e] : versions) {
        if (e->owner == tag.owner) except = e.get();
      }
    }
  }
  bool evicted = EvictOne(except, 2.0);
  if (evicted) {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.pressure_retries;
  }
  return evicted;
}

void ModelManager::ReleaseLease(Entry& e) {
  std::unique_ptr<CompiledModel> victim;
  Buffer host;
  std::unique_ptr<ir::Model> host_model;
  {
    std::unique_lock<std::mutex> lock(mu_);
    --e.leases;
    e.last_use_ns = Now();
    // The last lease ended before the weights were all in (the request did not need them all, or
    // never ran): settle once the copy is done, so what a release implies has happened on return.
    if (e.leases == 0 && e.copy_in_flight) cv_.wait(lock, [&] { return !e.copy_in_flight || e.leases > 0; });
    SettleIdleLocked(e, &victim, &host, &host_model, /*lease_ended=*/true);
  }
  victim.reset();
  host.Reset();
  if (UsedBytes() > budget_->budget.load()) EvictFor(0, nullptr, 2.0);
}

void ModelManager::SettleIdleLocked(Entry& e, std::unique_ptr<CompiledModel>* victim, Buffer* host,
                                    std::unique_ptr<ir::Model>* host_model, bool lease_ended) {
  if (e.leases > 0 || e.state != ModelState::kResident || e.copy_in_flight) return;
  if (e.unload_requested || e.removed) {
    *victim = std::move(e.compiled);
    e.gate.reset();
    e.copy_error = Status::OK();
    {
      std::lock_guard<std::mutex> g(e.fallback_mu);
      e.cpu_model.reset();
    }
    ++stats_.evictions;
    if (e.from_repository) {
      *host = std::move(e.host_copy);
      *host_model = std::move(e.host_model);
      e.host_bytes = 0;
      SetStateLocked(e, ModelState::kOnDisk);
    } else {
      SetStateLocked(e, ModelState::kInHost);
    }
    e.unload_requested = false;
  } else if (!e.copy_error.ok()) {
    // Its weights never all arrived: drop the device copy; the next Acquire loads it again.
    EvictLocked(e, victim);
  } else if (lease_ended && KeepAliveUs(e) == 0) {
    EvictLocked(e, victim);
    ++stats_.idle_unloads;
  }
}

void ModelManager::SetHostBudget(uint64_t host_budget_bytes) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    options_.host_budget_bytes = host_budget_bytes;
  }
  EnforceHostBudget(nullptr);
}

void ModelManager::EnforceHostBudget(const Entry* except) {
  std::vector<Buffer> hosts;
  std::vector<std::unique_ptr<ir::Model>> host_models;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const uint64_t budget = options_.host_budget_bytes;
    if (budget == 0) return;
    uint64_t used = 0;
    std::vector<EvictionCandidate> cands;
    std::vector<Entry*> entries;
    const std::string last = predictor_.last();
    const int64_t now = Now();
    for (auto& [name, versions] : models_) {
      for (auto& [v, e] : versions) {
        if (e->host_model == nullptr && e->host_copy.data() == nullptr) continue;
        used += e->host_bytes;
        // Droppable: it can come from disk again, and nobody reads the host copy now (loads read
        // it without the lock; the CPU fallback of a leased model compiles from it).
        const bool busy = e->leases > 0 || e->state == ModelState::kLoadingHost ||
                          e->state == ModelState::kLoadingDevice;
        if (e.get() == except || !e->from_repository || busy) continue;
        EvictionCandidate c;
        c.name = e->name;
        c.priority = std::max(0, e->config.priority - 1);  // Triton numbering: 0 and 1 most important
        c.last_use_ns = e->last_use_ns;
        c.bytes = e->host_bytes;
        c.reload_ns = e->last_swap_ns;
        c.next_use_probability = last.empty() ? 0 : predictor_.Probability(last, e->name);
        c.use_count = e->use_count;
        c.decayed_uses = DecayedUses(*e, now);
        cands.push_back(std::move(c));
        entries.push_back(e.get());
      }
    }
    if (used <= budget || cands.empty()) return;
    for (size_t i : options_.policy->Order(cands, now)) {
      if (used <= budget) break;
      if (i >= entries.size()) continue;
      Entry& e = *entries[i];
      used -= std::min<uint64_t>(used, e.host_bytes);
      hosts.push_back(std::move(e.host_copy));
      host_models.push_back(std::move(e.host_model));
      e.host_bytes = 0;
      ++stats_.host_drops;
      if (e.state == ModelState::kInHost) SetStateLocked(e, ModelState::kOnDisk);
      // A resident model keeps its device copy; it goes to disk when evicted (EvictLocked).
    }
  }
  // Freed outside the lock.
}

namespace {

// Runs `inputs`, splitting dim 0 in halves (recursively, up to `depth` times) while the device
// memory does not suffice. Outputs of the halves are joined in host memory.
StatusOr<std::vector<Tensor>> RunSplitting(CompiledModel& model, ExecutionContext& ctx,
                                           const std::vector<TensorView>& inputs, bool may_split, int depth,
                                           uint64_t* splits, MemoryResource* io, AllocTag io_tag) {
  auto out = model.Run(ctx, inputs);
  if (out.ok() || out.status().code() != StatusCode::kResourceExhausted) return out;
  if (!may_split || depth <= 0 || inputs.empty() || inputs[0].shape.empty() || inputs[0].shape[0] < 2) return out;
  const int64_t n = inputs[0].shape[0];
  for (const auto& v : inputs) {
    if (v.shape.empty() || v.shape[0] != n || v.layout != Layout::kPlain) return out;
  }
  ++*splits;
  ctx.ReleaseArena();  // the full-size arena may be what does not fit
  const int64_t half = n / 2;
  std::vector<std::vector<Tensor>> parts;
  for (int64_t start : {int64_t{0}, half}) {
    const int64_t rows = start == 0 ? half : n - half;
    std::vector<TensorView> sub;
    for (const auto& v : inputs) {
      TensorView s = v;
      size_t row_bytes = v.plain_bytes() / static_cast<size_t>(n);
      s.shape[0] = rows;
      s.data = static_cast<char*>(v.data) + row_bytes * static_cast<size_t>(start);
      sub.push_back(s);
    }
    auto r = RunSplitting(model, ctx, sub, may_split, depth - 1, splits, io, io_tag);
    if (!r.ok()) return r.status();
    // Move the part to host memory so it does not hold device budget while the next part runs.
    std::vector<Tensor> host;
    for (const Tensor& t : *r) {
      ASSIGN_OR_RETURN(Tensor h, t.Clone());
      host.push_back(std::move(h));
    }
    parts.push_back(std::move(host));
  }
  std::vector<Tensor> joined;
  for (size_t i = 0; i < parts[0].size() && i < parts[1].size(); ++i) {
    const Tensor& a = parts[0][i];
    const Tensor& b = parts[1][i];
    if (a.shape().empty() || b.shape().empty() || a.dtype() != b.dtype()) {
      return Internal("output {} cannot be joined after a batch split", i);
    }
    Shape shape = a.shape();
    shape[0] += b.shape()[0];
    ASSIGN_OR_RETURN(Tensor t, Tensor::Allocate(a.dtype(), shape, io, io_tag));  // handed back: I/O
    std::memcpy(t.data(), a.data(), a.bytes());
    std::memcpy(static_cast<char*>(t.data()) + a.bytes(), b.data(), b.bytes());
    joined.push_back(std::move(t));
  }
  return joined;
}

}  // namespace

StatusOr<std::vector<Tensor>> ModelManager::Run(const ModelLease& lease, ExecutionContext& ctx,
                                                const std::vector<TensorView>& inputs, ExecutionContext* fallback) {
  if (!lease) return FailedPrecondition("Run: empty lease");
  const auto& cfg = lease.config();
  uint64_t splits = 0;
  t_failed = {};
  auto out = RunSplitting(lease.model(), ctx, inputs, cfg.max_batch_size > 0, 6, &splits, io_.get(),
                          AllocTag{lease.owner_tag(), MemoryKind::kIO});
  if (splits > 0) {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.batch_splits += splits;
  }
  Entry& entry = *lease.entry_;
  if (out.ok() && entry.never_fits.load(std::memory_order_relaxed)) {
    std::lock_guard<std::mutex> lock(mu_);  // it ran after all (a smaller input): it fits
    SetNeverFitsLocked(entry, false);
  }
  if (out.ok() || out.status().code() != StatusCode::kResourceExhausted) return out;
  Status first = out.status();
  ctx.ReleaseArena();
  if (!options_.strict_device) {
    // CPU fallback: a copy of the model compiled into host memory outside the device budget,
    // run with a host context (the caller's, or a temporary one).
    Entry& e = *lease.entry_;
    CompiledModel* cpu = nullptr;
    {
      std::lock_guard<std::mutex> g(e.fallback_mu);
      if (!e.cpu_model) {
        CompileOptions co;
        co.num_threads = options_.compile_threads;
        co.optimize = options_.optimize;
        co.memory = DefaultHostResource();
        co.output_memory = io_.get();
        co.owner_tag = e.owner;
        // The host tier, or the file when the host copy was dropped for the host budget (a leased
        // model's host copy is never dropped meanwhile).
        StatusOr<std::unique_ptr<ir::Model>> model = InvalidArgument("no host copy");
        if (e.host_model != nullptr || e.host_copy.data() != nullptr) {
          model = HostTierGraph(e.host_model.get(), e.host_copy, e.host_bytes);
        } else if (!e.path.empty()) {
          auto file = ReadModelFile(e.path);
          ImportOptions io;
          io.base_dir = std::filesystem::path(e.path).parent_path().string();
          model = file.ok() ? ImportOnnxBytes(*file, io) : StatusOr<std::unique_ptr<ir::Model>>(file.status());
        }
        if (model.ok()) {
          auto compiled = CompiledModel::Create(std::move(*model), co);
          if (compiled.ok()) e.cpu_model = std::move(*compiled);
        }
      }
      cpu = e.cpu_model.get();
    }
    if (cpu != nullptr) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        ++stats_.cpu_fallbacks;
      }
      std::unique_ptr<ExecutionContext> temp;
      if (fallback == nullptr) {
        temp = std::make_unique<ExecutionContext>(ExecutionContext::Options{.num_threads = ctx.options().num_threads});
        fallback = temp.get();
      }
      auto r = cpu->Run(*fallback, inputs);
      if (r.ok() || r.status().code() != StatusCode::kResourceExhausted) return r;
    }
  }
  // A single row (the smallest request) that can never fit: no request of this model can run
  // under this budget and limit, so it is not ready (ModelStatus::fits) and nobody should wait.
  // The proof: the model's own weights (held whenever it runs) plus the allocation that failed
  // exceed the budget. Only that lower bound: what the model holds in all also counts its other
  // batches' activations and the packed weight copies of its other batch plans, which are
  // transient or droppable (counting them marked a model that merely waited for its own sibling
  // batch "never fits").
  const bool one_row =
      cfg.max_batch_size == 0 || inputs.empty() || inputs[0].shape.empty() || inputs[0].shape[0] <= 1;
  if (FailedAllocationCanNeverFit(entry, lease.model().weight_bytes())) {
    if (one_row) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        SetNeverFitsLocked(entry, true);
      }
      return ResourceExhausted("model '{}' can never run: one request needs more than the whole device budget of {}{}: "
                               "{}",
                               lease.name(), FormatBytes(budget_->budget.load()),
                               options_.strict_device ? " (strict device mode: no CPU fallback)" : "", first.message()).WithShortage(MemoryShortage::kNeverFits);
    }
    // A batch whose smallest split failed the same proof: this request can never run (a smaller
    // one might, so the model stays ready); nobody should wait for memory on its behalf.
    return ResourceExhausted("model '{}': this request can never run: its smallest split needs more than the whole "
                             "device budget of {}{}: {}",
                             lease.name(), FormatBytes(budget_->budget.load()),
                             options_.strict_device ? " (strict device mode: no CPU fallback)" : "", first.message()).WithShortage(MemoryShortage::kNeverFits);
  }
  return ResourceExhausted("model '{}': the request does not fit the device budget ({} of {} in use) after evicting "
                           "every idle model{}{}: {}",
                           lease.name(), FormatBytes(UsedBytes()), FormatBytes(budget_->budget.load()),
                           cfg.max_batch_size > 0 ? " and splitting the batch" : "",
                           options_.strict_device ? " (strict device mode: no CPU fallback)" : "", first.message()).WithShortage(MemoryShortage::kContended);
}

Status ModelManager::SetBudget(uint64_t budget_bytes) {
  if (budget_bytes == 0) return InvalidArgument("residency: budget must be > 0");
  budget_->budget.store(budget_bytes);
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.budget_bytes = budget_bytes;
  }
  EvictFor(0, nullptr, 2.0);
  pool_->Trim();
  return Status::OK();
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
  std::vector<std::unique_ptr<CompiledModel>> victims;
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

void ModelManager::SchedulePreloads(const std::string& from) {
  auto predicted = predictor_.Predict(from, options_.preload_candidates);
  if (predicted.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return;
  for (auto& [name, p] : predicted) {
    if (p < options_.preload_min_probability) continue;
    auto e = FindLocked(name, 0);
    if (!e || e->state == ModelState::kResident || e->state == ModelState::kLoadingDevice ||
        e->state == ModelState::kLoadingHost || e->state == ModelState::kFailed || !MayPreload(name)) {
      continue;
    }
    bool queued = std::any_of(preload_queue_.begin(), preload_queue_.end(),
                              [&](const auto& q) { return q.first == name; });
    if (!queued && preload_queue_.size() < 16) preload_queue_.emplace_back(name, p);
  }
  cv_.notify_all();
}

void ModelManager::PreloadLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stopping_ || !preload_queue_.empty(); });
    if (stopping_) return;
    auto [name, p] = preload_queue_.front();
    preload_queue_.pop_front();
    auto e = FindLocked(name, 0);
    if (!e) continue;
    ++preloads_running_;
    lock.unlock();
    auto r = AcquireEntry(e, true, p);
    lock.lock();
    --preloads_running_;
    cv_.notify_all();
  }
}

void ModelManager::WaitForPreloads() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return stopping_ || (preload_queue_.empty() && preloads_running_ == 0); });
}

void ModelManager::Housekeep() {
  const int64_t now = Now();
  std::vector<std::unique_ptr<CompiledModel>> victims;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [name, versions] : models_) {
      for (auto& [v, e] : versions) {
        if (e->state != ModelState::kResident || e->leases > 0 || e->copy_in_flight) continue;
        uint64_t ka = KeepAliveUs(*e);
        if (ka == UINT64_MAX) continue;
        if (static_cast<uint64_t>(std::max<int64_t>(0, now - e->last_use_ns)) >= ka * 1000) {
          victims.emplace_back();
          EvictLocked(*e, &victims.back());
          ++stats_.idle_unloads;
        }
      }
    }
  }
  victims.clear();
  if (options_.control_mode == ControlMode::kPoll && repository_ != nullptr) {
    bool due;
    {
      std::lock_guard<std::mutex> lock(mu_);
      due = now - last_poll_ns_ >= options_.poll_interval_us * 1000;
      if (due) last_poll_ns_ = now;
    }
    if (due) PollRepository();
  }
}

void ModelManager::PollRepository() {
  ScanResult scan = repository_->Scan();
  std::vector<std::unique_ptr<CompiledModel>> victims;
  std::vector<Buffer> hosts;
  std::vector<std::unique_ptr<ir::Model>> host_models;
  std::lock_guard<std::mutex> lock(mu_);
  scan_errors_ = scan.errors;
  // A new or changed file is taken only once two polls in a row saw the same size and mtime: one
  // still being copied or written is left alone (a resident copy keeps serving) until it settled.
  std::map<std::string, std::pair<uint64_t, int64_t>> seen;
  for (const auto& [name, model] : scan.models) {
    for (const auto& f : model.versions) seen[f.path] = {f.file_bytes, f.mtime_ns};
  }
  auto settled = [&](const ModelVersionFile& f) {
    auto it = poll_seen_.find(f.path);
    return it != poll_seen_.end() && it->second == std::make_pair(f.file_bytes, f.mtime_ns);
  };
  // Removed models and versions (and changed files, which are reloaded from disk on next use).
  for (auto it = models_.begin(); it != models_.end();) {
    auto sit = scan.models.find(it->first);
    for (auto jt = it->second.begin(); jt != it->second.end();) {
      Entry& e = *jt->second;
      const ModelVersionFile* file = nullptr;
      if (sit != scan.models.end()) {
        for (const auto& f : sit->second.versions) {
          if (f.version == e.version) file = &f;
        }
      }
      // A model whose directory is there but cannot be scanned now (its file or config is being
      // written) keeps what it has until the scan succeeds or the directory goes.
      bool gone = e.from_repository && file == nullptr && scan.errors.count(it->first) == 0;
      bool changed = e.from_repository && file != nullptr &&
                     (file->mtime_ns != e.mtime_ns || file->file_bytes != e.file_bytes) && settled(*file);
      bool busy = e.leases > 0 || e.copy_in_flight || e.state == ModelState::kLoadingHost ||
                  e.state == ModelState::kLoadingDevice;
      if ((gone || changed) && !busy) {
        if (e.state == ModelState::kResident) {
          victims.push_back(std::move(e.compiled));
          e.gate.reset();
          e.copy_error = Status::OK();
          e.cpu_model.reset();
          SetStateLocked(e, ModelState::kInHost);
        }
        if (e.state == ModelState::kInHost || e.state == ModelState::kFailed) {
          hosts.push_back(std::move(e.host_copy));
          host_models.push_back(std::move(e.host_model));
          e.host_bytes = 0;
          SetStateLocked(e, ModelState::kOnDisk);
        }
        if (changed) {
          e.mtime_ns = file->mtime_ns;
          e.file_bytes = file->file_bytes;
          e.estimated_bytes = file->file_bytes;
          e.device_bytes = 0;
          SetNeverFitsLocked(e, false);
          e.config = sit->second.config;
        }
      }
      if (gone && !busy) {
        e.removed = true;
        jt = it->second.erase(jt);
      } else {
        ++jt;
      }
    }
    it = it->second.empty() ? models_.erase(it) : std::next(it);
  }
  for (auto& [name, model] : scan.models) {
    std::erase_if(model.versions, [&](const ModelVersionFile& f) { return !settled(f); });
    if (model.versions.empty()) continue;
    Status s = RegisterLocked(std::move(model));
    if (!s.ok()) GH_LOG_WARN("residency", "{}", s.ToString());
  }
  poll_seen_ = std::move(seen);
  // victims / hosts are freed after the lock is released (declared before the guard).
}

void ModelManager::HousekeepingLoop() {
  std::unique_lock<std::mutex> lock(housekeeping_mu_);
  for (;;) {
    housekeeping_cv_.wait_for(lock, std::chrono::microseconds(options_.housekeeping_interval_us));
    {
      std::lock_guard<std::mutex> g(mu_);
      if (stopping_) return;
    }
    lock.unlock();
    Housekeep();
    lock.lock();
  }
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
  RETURN_IF_ERROR(SizeFits(e.name, needed, budget, limit));
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
      s.copy_in_flight = e->copy_in_flight;
      s.fits = FitsLocked(*e);
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
  ASSIGN_OR_RETURN(ModelLease lease, manager_->Acquire(model_));
  return manager_->Run(lease, *ctx, inputs, host.get());
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
