// ModelManager's loading across the tiers: Acquire, the disk -> host -> device load and the copy
// engine's completion of a pipelined swap-in (manager.h describes the state machine).
#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <unordered_map>
#include <utility>

#include "gpuhive/execution.h"
#include "gpuhive/logging.h"
#include "gpuhive/memory/upstreams.h"
#include "gpuhive/onnx_import.h"
#include "gpuhive/residency/manager.h"
#include "gpuhive/units.h"
#include "residency/manager_internal.h"

namespace gpuhive::residency {

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

}  // namespace

namespace detail {

StatusOr<std::unique_ptr<ir::Model>> HostTierGraph(const ir::Model* host_model, const Buffer& host_copy,
                                                   size_t host_bytes) {
  if (host_model != nullptr) return CloneModel(*host_model);
  return ImportOnnxBytes(std::string_view(static_cast<const char*>(host_copy.data()), host_bytes));
}

}  // namespace detail

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
      std::unique_ptr<Executable> victim;
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

Status ModelManager::FailLoad(Entry& e, Status s, ModelState to, bool preload) {
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
}

Status ModelManager::LoadToHost(Entry& e, bool preload) {
  // Disk tier -> host tier (the imported graph, or the bytes for graphs with subgraphs). Read,
  // not mapped: the file may be truncated or rewritten meanwhile (ReadModelFile).
  auto file = ReadModelFile(e.path);
  if (!file.ok()) return FailLoad(e, file.status().WithContext("model '" + e.name + "'"), ModelState::kFailed, preload);
  ImportOptions io;
  io.base_dir = std::filesystem::path(e.path).parent_path().string();
  auto imported = ImportOnnxBytes(*file, io);
  if (!imported.ok()) {
    return FailLoad(e, imported.status().WithContext("model '" + e.name + "'"), ModelState::kFailed, preload);
  }
  Buffer host;
  size_t host_bytes = 0;
  std::unique_ptr<ir::Model> host_model;
  if (HasSubgraphs(*(*imported)->graph)) {
    std::unique_ptr<ir::Model> none;
    RETURN_IF_ERROR(ApplyConfiguredPrecision(e, *file, &none, preload));
    auto buf = Buffer::Allocate(options_.host_resource, std::max<size_t>(file->size(), 1));
    if (!buf.ok()) {
      return FailLoad(e, buf.status().WithContext("model '" + e.name + "': host tier"), ModelState::kFailed, preload);
    }
    if (!file->empty()) std::memcpy(buf->data(), file->data(), file->size());
    host = std::move(*buf);
    host_bytes = file->size();
  } else {
    host_model = std::move(*imported);
    RETURN_IF_ERROR(ApplyConfiguredPrecision(e, *file, &host_model, preload));
    if (options_.host_resource != DefaultHostResource()) {
      Status s = RehomeConstants(*host_model->graph, options_.host_resource);
      if (!s.ok()) return FailLoad(e, s.WithContext("model '" + e.name + "': host tier"), ModelState::kFailed, preload);
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
  return Status::OK();
}

Status ModelManager::ImportHostBytes(Entry& e, bool preload) {
  const std::string_view bytes(static_cast<const char*>(e.host_copy.data()), e.host_bytes);
  auto imported = ImportOnnxBytes(bytes);
  if (!imported.ok()) {
    return FailLoad(e, imported.status().WithContext("model '" + e.name + "'"), ModelState::kFailed, preload);
  }
  if (HasSubgraphs(*(*imported)->graph)) {  // re-imported from the bytes on each swap-in
    std::unique_ptr<ir::Model> none;
    return ApplyConfiguredPrecision(e, bytes, &none, preload);
  }
  std::unique_ptr<ir::Model> host_model = std::move(*imported);
  RETURN_IF_ERROR(ApplyConfiguredPrecision(e, bytes, &host_model, preload));
  if (options_.host_resource != DefaultHostResource()) {
    Status s = RehomeConstants(*host_model->graph, options_.host_resource);
    if (!s.ok()) return FailLoad(e, s.WithContext("model '" + e.name + "': host tier"), ModelState::kFailed, preload);
  }
  Buffer old;
  std::lock_guard<std::mutex> lock(mu_);
  old = std::move(e.host_copy);
  e.host_bytes = ConstantBytes(*host_model->graph);
  e.host_model = std::move(host_model);
  return Status::OK();
}

Status ModelManager::ApplyConfiguredPrecision(Entry& e, std::string_view onnx_bytes, std::unique_ptr<ir::Model>* model,
                                              bool preload) {
  if (e.config.precision == "fp32") return Status::OK();
  if (*model == nullptr) {
    std::lock_guard<std::mutex> lock(mu_);
    e.precision.note = "runs fp32: precision " + e.config.precision + " is not applied to models with subgraphs";
    return Status::OK();
  }
  detail::PrecisionState precision;
  {
    std::lock_guard<std::mutex> lock(mu_);
    precision = e.precision;
  }
  // A device backend other than the CPU executor (the CUDA plugin) gates tf32 / fp16 / bf16 itself.
  const detail::DeviceCompiler on_device = [this](std::unique_ptr<ir::Model> m, DeviceMath math) {
    CompileOptions co;
    co.num_threads = options_.compile_threads;
    co.optimize = options_.optimize;
    co.device_math = math;
    return backend_->Compile(std::move(m), co, *device_);
  };
  const bool device_gate = backend_ != CpuExecutionBackend();
  auto applied = detail::ApplyPrecision(e.config, e.path, onnx_bytes, std::move(*model), options_.compile_threads,
                                        options_.optimize, &precision, device_gate ? &on_device : nullptr);
  if (!applied.ok()) return FailLoad(e, applied.status(), ModelState::kFailed, preload);
  *model = std::move(*applied);
  std::lock_guard<std::mutex> lock(mu_);
  e.precision = precision;
  return Status::OK();
}

StatusOr<std::unique_ptr<Executable>> ModelManager::CompileForDevice(Entry& e, bool preload) {
  CompileOptions co;
  co.num_threads = options_.compile_threads;
  co.optimize = options_.optimize;
  co.memory = exec_memory_;
  co.output_memory = io_.get();
  co.owner_tag = e.owner;
  co.defer_weight_copies = true;  // the copy engine copies them (LoadToDevice)
  {
    std::lock_guard<std::mutex> lock(mu_);
    co.bf16_compute = e.precision.precision == "bf16";  // the accuracy gate passed (manager_precision.cc)
    co.device_math = detail::DeviceMathOf(e.precision.precision);  // a GPU backend's (the CPU ignores it)
    co.conv_algorithm = ParseConvAlgorithm(e.config.cpu_convolution).value_or(ConvAlgorithm::kAuto);
  }
  if (preload) {
    // Allocation failures must not evict for a prediction: OnAllocationFailure knows this compile's
    // allocations by their owner tag (co.owner_tag).
    std::lock_guard<std::mutex> lock(mu_);
    e.no_evict = true;
  }
  detail::t_failed = {};
  auto model = detail::HostTierGraph(e.host_model.get(), e.host_copy, e.host_bytes);
  StatusOr<std::unique_ptr<Executable>> compiled =
      model.ok() ? backend_->Compile(std::move(*model), co, *device_) : StatusOr<std::unique_ptr<Executable>>(model.status());
  if (preload) {
    std::lock_guard<std::mutex> lock(mu_);
    e.no_evict = false;
  }
  if (compiled.ok()) return compiled;
  const bool pressure = compiled.status().code() == StatusCode::kResourceExhausted;
  // A failed load holds nothing: only an allocation larger than the whole budget is proof.
  if (pressure && FailedAllocationCanNeverFit(e, 0)) {
    // Only more budget or a higher limit can make it resident: not ready, nobody should wait.
    {
      std::lock_guard<std::mutex> lock(mu_);
      SetNeverFitsLocked(e, true);
    }
    return FailLoad(e,
                    ResourceExhausted("model '{}' can never be made resident: {} (the whole budget is {}{})", e.name,
                                      compiled.status().message(), FormatBytes(budget_->budget.load()),
                                      e.config.memory_limit_bytes > 0
                                          ? ", its memory_limit " + FormatBytes(e.config.memory_limit_bytes)
                                          : std::string()).WithShortage(MemoryShortage::kNeverFits),
                    ModelState::kInHost, preload);
  }
  if (pressure) {
    return FailLoad(e,
                    ResourceExhausted("model '{}' cannot be made resident now: {} (budget {}, {} in use by leased or "
                                      "loading models)",
                                      e.name, compiled.status().message(), FormatBytes(budget_->budget.load()),
                                      FormatBytes(UsedBytes())).WithShortage(MemoryShortage::kContended),
                    ModelState::kInHost, preload);
  }
  return FailLoad(e, compiled.status().WithContext("model '" + e.name + "'"), ModelState::kFailed, preload);
}

CopyJobResult ModelManager::CopyWeightsAndWait(std::vector<WeightCopy> copies, std::shared_ptr<WeightGate> gate) {
  std::mutex done_mu;
  std::condition_variable done_cv;
  bool done = false;
  CopyJobResult result;
  copy_engine_->Submit(std::move(copies), std::move(gate), [&](const CopyJobResult& r) {
    std::lock_guard<std::mutex> g(done_mu);
    result = r;
    done = true;
    done_cv.notify_all();
  });
  {
    std::unique_lock<std::mutex> g(done_mu);
    done_cv.wait(g, [&] { return done; });
  }
  std::lock_guard<std::mutex> lock(mu_);
  stats_.bytes_copied += result.bytes;
  stats_.copy_ns += result.copy_ns;
  if (!result.status.ok()) ++stats_.copy_failures;
  return result;
}

Status ModelManager::LoadToDevice(const std::shared_ptr<Entry>& entry, bool preload, double preload_probability) {
  Entry& e = *entry;
  // Runs without the lock. Only this thread touches e.host_copy / e.compiled while e is loading.
  ModelState state;
  {
    std::lock_guard<std::mutex> lock(mu_);
    state = e.state;
  }
  if (state == ModelState::kLoadingHost) {
    RETURN_IF_ERROR(LoadToHost(e, preload));
  } else if (e.host_model == nullptr && e.host_copy.data() != nullptr) {
    // Bytes given to AddModel: import once into the host tier (graphs without subgraphs).
    RETURN_IF_ERROR(ImportHostBytes(e, preload));
  }

  // The weights need about as many bytes as the file; refuse what can never fit.
  const uint64_t needed = e.device_bytes > 0 ? e.device_bytes : e.estimated_bytes;
  Status fits = detail::SizeFits(e.name, needed, budget_->budget.load(), e.config.memory_limit_bytes);
  if (!fits.ok()) return FailLoad(e, fits, ModelState::kInHost, preload);
  if (!EvictFor(needed, &e, preload ? preload_probability : 2.0) && preload) {
    return FailLoad(e, Unavailable("no spare budget for preloading '{}'", e.name), ModelState::kInHost, preload);
  }

  const int64_t t0 = NowNs();
  ASSIGN_OR_RETURN(std::unique_ptr<Executable> compiled, CompileForDevice(e, preload));
  int64_t swap_ns = NowNs() - t0;
  std::shared_ptr<WeightGate> gate = compiled->weight_gate();
  std::vector<WeightCopy> copies = compiled->TakePendingWeightCopies();
  if (kernel_view_) {
    // The copy engine writes through the device's copy API: device pointers, not the kernel view.
    for (WeightCopy& c : copies) c.destination = device_->host_kernel_access()->Unmap(c.destination);
  }
  const bool pipelined = options_.pipelined_swap && !copies.empty();
  int64_t copy_ns = 0;
  uint64_t copied = 0;
  if (!pipelined && !copies.empty()) {
    // Not pipelined: the whole copy before the model may be leased.
    CopyJobResult result = CopyWeightsAndWait(std::move(copies), gate);
    copy_ns = result.copy_ns;
    copied = result.bytes;
    if (!result.status.ok()) {
      compiled.reset();
      return FailLoad(e, result.status.WithContext("model '" + e.name + "': swap-in"), ModelState::kFailed, preload);
    }
    swap_ns = NowNs() - t0;
  }
  std::unique_lock<std::mutex> lock(mu_);
  e.compiled = std::move(compiled);
  e.gate = gate;
  e.copy_in_flight = pipelined;
  e.copy_error = Status::OK();
  e.device_bytes = limits_->owner_used_bytes(e.owner);
  e.last_swap_ns = swap_ns;
  if (!pipelined) {
    e.last_copy_ns = copy_ns;
    e.h2d_bytes += copied;
    e.h2d_ns += copy_ns;
  }
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
  std::unique_ptr<Executable> victim;
  Buffer host;
  std::unique_ptr<ir::Model> host_model;
  {
    std::lock_guard<std::mutex> lock(mu_);
    e.copy_in_flight = false;
    e.last_copy_ns = r.copy_ns;
    e.h2d_bytes += r.bytes;
    e.h2d_ns += r.copy_ns;
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

}  // namespace gpuhive::residency
