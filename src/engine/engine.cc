// Engine: start-up, model registration (both modes), requests and graceful drain.
// The management API and metrics live in engine_status.cc.
#include <algorithm>
#include <charconv>
#include <cstring>
#include <thread>

#include "gpuhive/logging.h"
#include "gpuhive/monitor/host_metrics.h"
#include "gpuhive/onnx_import.h"
#include "gpuhive/units.h"
#include "gpuhive/memory/upstreams.h"
#include "engine/engine_internal.h"

namespace gpuhive::engine {

using residency::ControlMode;
using residency::ModelConfig;

StatusOr<ControlMode> ParseControlMode(const std::string& text) {
  if (text == "none") return ControlMode::kNone;
  if (text == "poll") return ControlMode::kPoll;
  if (text == "explicit") return ControlMode::kExplicit;
  return InvalidArgument("model control mode '{}': expected none, poll or explicit", text);
}

StatusOr<ServeMode> ParseServeMode(const std::string& text) {
  if (text == "gpuhive") return ServeMode::kGpuhive;
  if (text == "naive") return ServeMode::kNaive;
  return InvalidArgument("mode '{}': expected gpuhive or naive", text);
}

ModelMetadata MetadataFromConfig(const ModelConfig& config, const std::vector<int64_t>& versions) {
  ModelMetadata md;
  md.name = config.name;
  md.platform = "onnxruntime_onnx";
  md.max_batch_size = config.max_batch_size;
  for (int64_t v : versions) md.versions.push_back(std::to_string(v));
  auto convert = [&](const std::vector<residency::TensorConfig>& in, std::vector<TensorInfo>* out) {
    for (const auto& t : in) {
      TensorInfo info{t.name, t.dtype, {}, t.labels};
      if (config.max_batch_size > 0) info.shape.push_back(-1);
      info.shape.insert(info.shape.end(), t.dims.begin(), t.dims.end());
      out->push_back(std::move(info));
    }
  };
  convert(config.inputs, &md.inputs);
  convert(config.outputs, &md.outputs);
  return md;
}

namespace {

sched::QueuePolicy ToQueuePolicy(const residency::QueuePolicyConfig& q) {
  sched::QueuePolicy p;
  p.timeout_action = q.timeout_action_delay ? sched::TimeoutAction::kDelay : sched::TimeoutAction::kReject;
  p.default_timeout_us = q.default_timeout_us;
  p.allow_timeout_override = q.allow_timeout_override || q.default_timeout_us == 0;
  p.max_queue_size = q.max_queue_size;
  return p;
}

std::string Key(const std::string& name, int64_t version) { return name + ":" + std::to_string(version); }

}  // namespace

sched::ModelConfig SchedulerConfigFor(const ServedVersion& v, const EngineOptions& options) {
  const ModelConfig& c = v.config;
  sched::ModelConfig s;
  s.name = v.key;
  s.max_batch_size = c.max_batch_size;
  if (options.mode == ServeMode::kNaive) {
    // The baseline: every request alone, one FIFO level, one tenant.
    s.dynamic_batching = false;
    s.priority_levels = 1;
    s.default_priority_level = 0;
    s.tenant = "default";
    return s;
  }
  s.dynamic_batching = c.dynamic_batching;
  s.preferred_batch_sizes = c.preferred_batch_sizes;
  s.max_queue_delay_us = c.max_queue_delay_us;
  // Priorities are Triton's everywhere: 1 is the highest level, 0 means the default. The
  // scheduler's levels are 0-based (Triton level - 1). A config's own dynamic_batching levels and
  // default_priority_level take precedence; otherwise gpuhive.priority (0 or out of range: the
  // default level, which is the highest, 1) sets the model's default level.
  s.priority_levels = c.priority_levels > 0 ? c.priority_levels : options.priority_levels;
  if (c.priority_levels > 0 && c.default_priority_level > 0) {
    s.default_priority_level = std::min(c.default_priority_level, c.priority_levels) - 1;
  } else {
    s.default_priority_level = c.priority >= 1 && c.priority <= s.priority_levels ? c.priority - 1 : 0;
  }
  s.default_queue_policy = ToQueuePolicy(c.default_queue_policy);
  for (const auto& [level, q] : c.priority_queue_policy) {
    if (level >= 1 && level <= s.priority_levels) s.priority_queue_policy[level - 1] = ToQueuePolicy(q);
  }
  s.tenant = c.tenant.empty() ? "default" : c.tenant;
  return s;
}

// ---- runner -------------------------------------------------------------------------------------

std::vector<std::string> EngineRunner::input_names() const {
  std::vector<std::string> names;
  for (const auto& t : v_->config.inputs) names.push_back(t.name);
  return names;
}

std::vector<std::string> EngineRunner::output_names() const {
  std::vector<std::string> names;
  for (const auto& t : v_->config.outputs) names.push_back(t.name);
  return names;
}

namespace {

// The batch size a batch of `rows` runs at: the next power of two, never above max_batch_size.
// Every distinct batch size is a plan of its own (kernels prepared, weights laid out for it), so a
// handful of sizes keeps models small and avoids preparing a new plan in the middle of serving;
// the padding rows are zeros and their outputs are dropped (at most half the rows are padding).
int64_t BucketFor(int64_t rows, const residency::ModelConfig& c) {
  int64_t best = 1;
  while (best < rows) best *= 2;
  return std::min<int64_t>(best, std::max<int64_t>(rows, c.max_batch_size));
}

StatusOr<Tensor> PadRows(const TensorView& in, int64_t rows) {
  Shape shape = in.shape;
  shape[0] = rows;
  ASSIGN_OR_RETURN(Tensor t, Tensor::Allocate(in.dtype, shape));
  std::memcpy(t.data(), in.data, in.plain_bytes());
  std::memset(static_cast<char*>(t.data()) + in.plain_bytes(), 0, t.bytes() - in.plain_bytes());
  return t;
}

StatusOr<Tensor> FirstRows(const Tensor& t, int64_t rows) {
  Shape shape = t.shape();
  shape[0] = rows;
  size_t row_bytes = shape[0] == 0 ? 0 : t.bytes() / static_cast<size_t>(t.shape()[0]);
  return Tensor::FromBytes(t.dtype(), shape, t.data(), row_bytes * static_cast<size_t>(rows));
}

}  // namespace

int64_t EngineRunner::ExecutedRows(int64_t rows) const {
  return v_->config.max_batch_size > 0 && !core_->naive() ? BucketFor(rows, v_->config) : rows;
}

StatusOr<std::vector<Tensor>> EngineRunner::RunBatch(const std::vector<TensorView>& inputs,
                                                   const sched::WorkerContext& worker) {
  int64_t rows = 1;
  const bool batched = v_->config.max_batch_size > 0 && !inputs.empty() && !inputs[0].shape.empty();
  if (batched) rows = inputs[0].shape[0];
  StatusOr<std::vector<Tensor>> out = Internal("not run");
  const int64_t run_start = NowNs();
  int64_t pad_ns = 0, slice_ns = 0;  // padding rows in, dropping them out (compute input/output)
  int64_t bucket = batched && !core_->naive() ? BucketFor(rows, v_->config) : rows;
  if (bucket != rows) {
    std::vector<Tensor> padded;
    std::vector<TensorView> views;
    for (const TensorView& in : inputs) {
      if (in.shape.empty() || in.shape[0] != rows) return InvalidArgument("inputs disagree on the batch size");
      ASSIGN_OR_RETURN(Tensor t, PadRows(in, bucket));
      padded.push_back(std::move(t));
    }
    for (const Tensor& t : padded) views.push_back(t.view());
    pad_ns = NowNs() - run_start;
    out = RunManaged(views, worker);
    if (out.ok()) {
      const int64_t slice_start = NowNs();
      for (Tensor& t : *out) {
        if (t.shape().empty() || t.shape()[0] != bucket) continue;
        ASSIGN_OR_RETURN(t, FirstRows(t, rows));
      }
      slice_ns = NowNs() - slice_start;
    }
  } else {
    out = core_->naive() ? RunNaive(inputs, worker) : RunManaged(inputs, worker);
  }
  if (out.ok()) {
    v_->stats.RecordExecution(static_cast<uint64_t>(rows), pad_ns, NowNs() - run_start - pad_ns - slice_ns, slice_ns);
    v_->executions->Inc();
    v_->inferences->Inc(static_cast<double>(rows));
    v_->nv_exec->Inc();
    v_->nv_count->Inc(static_cast<double>(rows));
    v_->batch_size->Observe(static_cast<double>(rows));
  }
  return out;
}

StatusOr<std::vector<Tensor>> EngineRunner::RunNaive(const std::vector<TensorView>& inputs,
                                                   const sched::WorkerContext& worker) {
  // No pool and no kept arena: every request allocates its activations and frees them after.
  ExecutionContext ctx(ExecutionContext::Options{.num_threads = std::max(1, worker.num_threads),
                                                 .memory = core_->naive_memory.get(),
                                                 .arena_tag = AllocTag{v_->naive_owner, MemoryKind::kActivations}});
  return v_->naive_model->Run(ctx, inputs);
}

// ---- served set -----------------------------------------------------------------------------------

Status Engine::Impl::Serve(std::shared_ptr<ServedVersion> v) {
  v->key = Key(v->name, v->version);
  sched::ModelConfig sc = SchedulerConfigFor(*v, options);
  v->priority_levels = sc.priority_levels;
  const std::string vs = std::to_string(v->version);
  v->success = metrics.inference_requests_total->Labels({v->name, vs, "success"});
  v->executions = metrics.inference_executions_total->Labels({v->name, vs});
  v->inferences = metrics.inference_count_total->Labels({v->name, vs});
  v->queue_seconds = metrics.queue_duration_seconds->Labels({v->name});
  v->compute_seconds = metrics.compute_duration_seconds->Labels({v->name});
  v->request_seconds = metrics.request_duration_seconds->Labels({v->name});
  v->batch_size = metrics.batch_size->Labels({v->name});
  v->nv_success = metrics.nv_inference_request_success->Labels({v->name, vs});
  for (const char* reason : {"REJECTED", "CANCELED", "BACKEND", "OTHER"}) {
    metrics.nv_inference_request_failure->Labels({v->name, reason, vs});  // Triton shows each at 0
  }
  v->nv_count = metrics.nv_inference_count->Labels({v->name, vs});
  v->nv_exec = metrics.nv_inference_exec_count->Labels({v->name, vs});
  v->nv_request_us = metrics.nv_inference_request_duration_us->Labels({v->name, vs});
  v->nv_queue_us = metrics.nv_inference_queue_duration_us->Labels({v->name, vs});
  v->nv_input_us = metrics.nv_inference_compute_input_duration_us->Labels({v->name, vs});
  v->nv_infer_us = metrics.nv_inference_compute_infer_duration_us->Labels({v->name, vs});
  v->nv_output_us = metrics.nv_inference_compute_output_duration_us->Labels({v->name, vs});
  v->warnings = LoadWarnings(*v);
  // A config whose instance_group names devices this server does not have is refused now, with
  // the reason, rather than on its first request.
  if (!naive()) RETURN_IF_ERROR(device_set->CheckPlacement(v->name, v->config));
  RETURN_IF_ERROR(scheduler->AddModel(sc, std::make_shared<EngineRunner>(this, v)));
  if (!v->config.warmups.empty()) {
    {
      std::unique_lock lock(mu);
      if (!models.count(v->name)) unavailable[v->name] = "warming up (model_warmup)";
    }
    Status warm = WarmUp(*v);
    if (!warm.ok()) {
      (void)scheduler->RemoveModel(v->key);
      std::unique_lock lock(mu);
      if (!models.count(v->name)) unavailable[v->name] = warm.ToString();
      return warm;
    }
  }
  std::unique_lock lock(mu);
  declared_tenants.insert(sc.tenant);
  ServedModel& m = models[v->name];
  m.versions[v->version] = v;
  std::vector<int64_t> versions;
  for (const auto& [ver, sv] : m.versions) versions.push_back(ver);
  for (auto& [ver, sv] : m.versions) sv->metadata.versions = MetadataFromConfig(sv->config, versions).versions;
  unavailable.erase(v->name);
  return Status::OK();
}

size_t Engine::Impl::Unserve(const std::string& name, const std::vector<int64_t>& versions, bool drain) {
  size_t answered = 0;
  for (int64_t ver : versions) {
    // An unload lets admitted requests finish (Triton's behaviour); only what is still queued
    // after the drain deadline is answered 503. At shutdown the exit deadline has passed already.
    size_t n = 0;
    Status s = drain ? scheduler->DrainAndRemoveModel(Key(name, ver), options.unload_drain_ms)
                     : scheduler->RemoveModel(Key(name, ver), &n);
    answered += n;
    if (!s.ok() && s.code() != StatusCode::kNotFound) GH_LOG_WARN("core", "removing {}: {}", Key(name, ver), s.ToString());
  }
  std::unique_lock lock(mu);
  auto it = models.find(name);
  if (it == models.end()) return answered;
  for (int64_t ver : versions) it->second.versions.erase(ver);
  if (it->second.versions.empty()) models.erase(it);
  return answered;
}

void Engine::Impl::SyncLocked() {
  if (naive()) return;
  RefreshConfigErrors();
  std::map<std::string, std::map<int64_t, residency::ModelStatus>> listed;
  for (auto& st : device_set->ListModels()) listed[st.name][st.version] = st;

  // Register what the manager has and we do not serve yet.
  for (const auto& [name, versions] : listed) {
    if (unloaded.count(name)) continue;
    for (const auto& [ver, st] : versions) {
      {
        std::shared_lock lock(mu);
        auto it = models.find(name);
        if (it != models.end() && it->second.versions.count(ver)) continue;
      }
      auto config = device_set->GetConfig(name, ver);
      if (!config.ok()) {
        std::unique_lock lock(mu);
        unavailable[name] = config.status().ToString();
        continue;
      }
      auto v = std::make_shared<ServedVersion>();
      v->name = name;
      v->version = ver;
      v->config = *config;
      v->metadata = MetadataFromConfig(v->config, {ver});
      Status s = Serve(v);
      if (!s.ok()) {
        GH_LOG_WARN("core", "model '{}' v{} cannot be served: {}", name, ver, s.ToString());
        std::unique_lock lock(mu);
        unavailable[name] = s.ToString();
      }
    }
  }
  // Drop what the manager no longer has (poll mode removals, explicit unloads).
  std::vector<std::pair<std::string, std::vector<int64_t>>> gone;
  {
    std::shared_lock lock(mu);
    for (const auto& [name, m] : models) {
      std::vector<int64_t> vs;
      for (const auto& [ver, v] : m.versions) {
        auto it = listed.find(name);
        if (unloaded.count(name) || it == listed.end() || !it->second.count(ver)) vs.push_back(ver);
      }
      if (!vs.empty()) gone.emplace_back(name, std::move(vs));
    }
  }
  for (const auto& [name, vs] : gone) Unserve(name, vs);
}

Status Engine::Impl::LoadNaiveLocked(const std::string& name) {
  ASSIGN_OR_RETURN(residency::RepositoryModel rm, repository->ScanModel(name));
  std::vector<std::shared_ptr<ServedVersion>> loaded;
  for (const auto& file : rm.versions) {
    auto v = std::make_shared<ServedVersion>();
    v->name = name;
    v->version = file.version;
    v->config = rm.config;
    v->naive_owner = next_naive_owner++;
    auto imported = ImportOnnxFile(file.path);
    if (!imported.ok()) return imported.status().WithContext("model '" + name + "'");
    CompileOptions co;
    co.num_threads = std::max(1, options.threads_per_worker);
    co.optimize = options.optimize;
    co.memory = naive_memory.get();
    co.owner_tag = v->naive_owner;
    auto compiled = CompiledModel::Create(std::move(*imported), co);
    if (!compiled.ok()) return compiled.status().WithContext("model '" + name + "'");
    v->naive_model = std::move(*compiled);
    v->metadata = MetadataFromConfig(v->config, {file.version});
    loaded.push_back(std::move(v));
  }
  for (auto& v : loaded) RETURN_IF_ERROR(Serve(v));
  return Status::OK();
}

void Engine::Impl::SyncLoop() {
  std::unique_lock lock(sync_thread_mu);
  while (!stopping) {
    sync_thread_cv.wait_for(lock, std::chrono::microseconds(std::max<int64_t>(options.poll_interval_us, 10'000)));
    if (stopping) break;
    lock.unlock();
    {
      std::lock_guard<std::mutex> c(control_mu);
      SyncLocked();
    }
    lock.lock();
  }
}

// ---- creation ------------------------------------------------------------------------------------

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Engine::~Engine() {
  {
    std::lock_guard<std::mutex> lock(impl_->sync_thread_mu);
    impl_->stopping = true;
  }
  impl_->sync_thread_cv.notify_all();
  if (impl_->sync_thread.joinable()) impl_->sync_thread.join();
  CancelQueued();
  impl_->scheduler.reset();  // joins the workers
  if (impl_->nvml) impl_->nvml->Stop();
  {
    std::unique_lock lock(impl_->mu);
    impl_->models.clear();
  }
  impl_->workers.clear();  // their arenas came from the managers' memory
  impl_->device_set.reset();
}

StatusOr<std::unique_ptr<Engine>> Engine::Create(const EngineOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->start_ns = NowNs();
  if (options.priority_levels < 1) return InvalidArgument("priority levels must be >= 1, got {}", options.priority_levels);
  if (options.cpu_workers < 0 || options.threads_per_worker < 0) {
    return InvalidArgument("cpu workers and threads per worker must be >= 0");
  }
  ASSIGN_OR_RETURN(impl->metrics, monitor::RegisterGpuhiveMetrics(&impl->registry));
  monitor::InstallHostMetrics(&impl->registry, impl->metrics);

  impl->discovery = DiscoverDevices();
  bool chose_cpu = false;
  bool chose_gpu = false;
  if (!options.device.empty() && options.device != "auto") {
    ASSIGN_OR_RETURN(DeviceSpec spec, ParseDeviceSpec(options.device));
    if (spec.kind == DeviceSpec::Kind::kSim) {
      if (options.mode == ServeMode::kNaive) return InvalidArgument("--device sim needs the gpuhive mode, not naive");
      for (int i = 0; i < spec.count; ++i) {
        SimDeviceOptions so;
        so.index = i;
        so.memory_bytes = options.sim_memory_bytes;
        so.copy_bytes_per_s = options.sim_copy_bytes_per_s;
        ASSIGN_OR_RETURN(auto sim, SimDevice::Create(so));
        impl->devices.push_back(std::move(sim));
      }
      impl->simulated = true;
      impl->device_id = impl->devices[0]->id().ToString();
      if (spec.count > 1) impl->device_id += "+" + impl->devices.back()->id().ToString();
      GH_LOG_WARN("core", "models run on {} simulated device(s) ({} each, copies at {}/s): a testing aid, not a GPU",
                  spec.count, FormatBytes(options.sim_memory_bytes),
                  FormatBytes(static_cast<uint64_t>(options.sim_copy_bytes_per_s)));
    } else if (spec.kind == DeviceSpec::Kind::kCpu) {
      if (options.strict_gpu) return InvalidArgument("--strict-gpu contradicts --device cpu");
      chose_cpu = true;
    } else {
      chose_gpu = true;
    }
  }
  // The GPUs, through the CUDA execution plugin, unless the CPU or simulated devices were asked
  // for (naive mode runs every model as loaded, on the CPU).
  if (!chose_cpu && !impl->simulated && !impl->discovery.gpus.empty()) {
    if (options.mode == ServeMode::kNaive) {
      impl->gpu_backend_reason = "the naive mode runs models on the CPU";
    } else if (Status st = impl->OpenGpus(); !st.ok()) {
      impl->gpu_backend_reason = std::string(st.message());
      GH_LOG_WARN("core", "{} GPU(s) found ({}) but they cannot run models: {}", impl->discovery.gpus.size(),
                  impl->discovery.gpus[0].name, impl->gpu_backend_reason);
    }
  }
  // Otherwise the CPU, said once here (and exported as gpuhive_cpu_fallback) when it was not
  // asked for.
  const bool on_cpu = impl->devices.empty();
  if (on_cpu && !chose_cpu) {
    const std::string reason =
        impl->discovery.gpus.empty() ? impl->discovery.gpu_unavailable_reason : impl->gpu_backend_reason;
    if (options.strict_gpu) {
      return FailedPrecondition("--strict-gpu: no usable GPU ({}); refusing to start on the CPU", reason);
    }
    if (chose_gpu) return FailedPrecondition("--device {}: no usable GPU ({})", options.device, reason);
    GH_LOG_INFO("core", "no usable GPU ({}): models run on the CPU", reason);
  }
  impl->metrics.cpu_fallback->Labels({})->Set(on_cpu && !chose_cpu ? 1 : 0);
  monitor::NvmlOptions nvml_options;
  nvml_options.metrics = &impl->metrics;
  nvml_options.poll_interval_ms = options.nvml_poll_interval_ms;
  auto nvml = monitor::NvmlMonitor::Create(nvml_options);
  if (nvml.ok()) {
    impl->nvml = std::move(*nvml);
    impl->nvml->Start();
  } else {
    GH_LOG_INFO("core", "GPU metrics unavailable: {}", nvml.status().message());
  }

  ASSIGN_OR_RETURN(impl->repository, residency::ModelRepository::Open(
                                       options.model_repository,
                                       residency::RepositoryOptions{.strict_model_config = options.strict_model_config}));

  // Workers: on the CPU a share of the cores each; one more kept free for level 0 when there are
  // several levels, so critical work never waits behind a background batch.
  int cores = std::max(1u, std::thread::hardware_concurrency());
  int workers = options.cpu_workers > 0 ? options.cpu_workers : std::clamp(cores / 2, 2, 8);
  int threads = options.threads_per_worker > 0 ? options.threads_per_worker : std::max(1, cores / workers);
  impl->options.threads_per_worker = threads;
  sched::SchedulerOptions so;
  so.priority_levels = options.mode == ServeMode::kNaive ? 1 : options.priority_levels;
  so.max_queue_size = options.max_queue_size;
  so.batch_min_gain = options.mode == ServeMode::kNaive ? 0 : options.batch_min_gain;
  if (options.mode == ServeMode::kGpuhive) {
    so.batch_memory = options.batch_memory_bytes != EngineOptions::kBatchMemoryAuto ? options.batch_memory_bytes
                      : on_cpu                                                       ? sched::SchedulerOptions::kBatchMemoryAuto
                                                                                     : 0;
  }
  sched::DeviceSpec dev;
  dev.name = impl->device_id;
  dev.workers.clear();
  for (int i = 0; i < workers; ++i) dev.workers.push_back({threads, 1, -1});
  const bool critical_reserved =
      options.mode == ServeMode::kGpuhive && options.reserve_critical_worker && so.priority_levels > 1;
  if (critical_reserved) dev.workers.push_back({threads, 0, 0});
  so.devices = {dev};
  ASSIGN_OR_RETURN(impl->scheduler, sched::Scheduler::Create(so));
  impl->workers.resize(static_cast<size_t>(impl->scheduler->num_workers()));
  for (const auto& [tenant, weight] : options.tenant_weights) {
    impl->scheduler->SetTenantWeight(tenant, weight);
    impl->declared_tenants.insert(tenant);
  }
  for (const auto& tenant : options.tenants) {
    if (tenant.empty() || tenant.size() > 128) return InvalidArgument("tenant names are 1..128 bytes, got '{}'", tenant);
    impl->declared_tenants.insert(tenant);
  }
  impl->declared_tenants.insert("default");
  impl->declared_tenants.insert(kUndeclaredTenant);

  // The budget of one device (--memory-budget applies to each): by default a (simulated) GPU's
  // free memory less its backend's measured library reserve and a headroom (MeasureDeviceBudget,
  // per device), or half the host's free memory on the CPU.
  const uint64_t cpu_budget = options.memory_budget_bytes > 0
                                  ? options.memory_budget_bytes
                                  : std::max<uint64_t>(impl->discovery.cpu.free_memory_bytes / 2, 1ull << 30);
  uint64_t budget = cpu_budget;  // what the start-up line reports: the first device's
  for (const auto& d : impl->devices) {
    impl->device_budgets.push_back(MeasureDeviceBudget(*d));
  }
  if (options.memory_budget_bytes == 0 && !impl->devices.empty()) budget = impl->device_budgets[0].budget_bytes;
  Impl* core = impl.get();
  if (options.mode == ServeMode::kNaive) {
    // What a naive server does: malloc per request (per-request arenas reuse malloc's pages).
    impl->naive_memory = std::make_unique<StatisticsResource>(TransientHostResource());
    auto scan = impl->repository->Scan();
    for (const auto& [name, err] : scan.errors) impl->unavailable[name] = err.ToString();
    bool all = options.control_mode != ControlMode::kExplicit ||
               std::find(options.load_models.begin(), options.load_models.end(), "*") != options.load_models.end();
    std::lock_guard<std::mutex> c(impl->control_mu);
    for (const auto& [name, model] : scan.models) {
      bool wanted = all || std::find(options.load_models.begin(), options.load_models.end(), name) != options.load_models.end();
      if (!wanted) continue;
      Status s = impl->LoadNaiveLocked(name);
      if (!s.ok()) {
        GH_LOG_WARN("core", "model '{}' unavailable: {}", name, s.ToString());
        impl->unavailable[name] = s.ToString();
      }
    }
  } else {
    residency::DeviceSetOptions ds;
    ds.strict_gpu = options.strict_gpu;  // a model the GPU cannot compile is refused, not run on the CPU
    ASSIGN_OR_RETURN(ds.devices, impl->PlanDevices(budget, cpu_budget));
    residency::ManagerOptions& mo = ds.manager;
    mo.max_concurrent_loads = options.max_concurrent_loads;
    mo.compile_threads = threads;
    mo.optimize = options.optimize;
    mo.default_keep_alive_us = options.default_keep_alive_us;
    mo.enable_preloading = options.enable_preloading;
    // The CPU fallback runs a model outside the device budget in host memory. When models execute
    // on the CPU anyway, that would only break the budget: refuse instead.
    mo.strict_device = options.strict_gpu || impl->devices.empty() || impl->simulated;
    if (options.inject_alloc_failure_probability > 0) {
      mo.inject_alloc_failure_probability = options.inject_alloc_failure_probability;
      GH_LOG_WARN("core", "injecting device allocation failures with probability {} (a testing aid)",
                  options.inject_alloc_failure_probability);
    }
    mo.control_mode = options.control_mode;
    mo.poll_interval_us = options.poll_interval_us;
    mo.pipelined_swap = options.pipelined_swap;
    mo.on_transition = [core](const residency::ModelTransition& t) { core->OnTransition(t); };
    ASSIGN_OR_RETURN(impl->device_set, residency::DeviceSet::Create(std::move(ds), impl->repository.get()));
    auto scan = impl->repository->Scan();
    for (const auto& [name, err] : scan.errors) impl->unavailable[name] = err.ToString();
    std::lock_guard<std::mutex> c(impl->control_mu);
    for (const std::string& name : options.load_models) {
      std::vector<std::string> names;
      if (name == "*") {
        for (const auto& [n, m] : scan.models) names.push_back(n);
      } else {
        names.push_back(name);
      }
      for (const auto& n : names) {
        Status s = impl->device_set->Load(n);
        if (!s.ok()) {
          GH_LOG_WARN("core", "--load-model {}: {}", n, s.ToString());
          impl->unavailable[n] = s.ToString();
        }
      }
    }
    impl->SyncLocked();
    if (options.control_mode == ControlMode::kPoll) impl->sync_thread = std::thread([core] { core->SyncLoop(); });
  }
  impl->registry.AddCollectHook([core] { core->Collect(); });
  std::shared_lock lock(impl->mu);
  GH_LOG_INFO("core", "serving {} model(s) from {} in {} mode, budget {}, {} worker(s) x {} thread(s){}",
              impl->models.size(), options.model_repository, options.mode == ServeMode::kNaive ? "naive" : "gpuhive",
              options.mode == ServeMode::kNaive ? std::string("none") : FormatBytes(budget),
              impl->scheduler->num_workers(), threads, critical_reserved ? " (one kept for priority 1)" : "");
  lock.unlock();
  return std::unique_ptr<Engine>(new Engine(std::move(impl)));
}

// ---- requests ------------------------------------------------------------------------------------

StatusOr<std::shared_ptr<ServedVersion>> Engine::Impl::Resolve(const std::string& name, const std::string& version,
                                                                    int* priority_override,
                                                                    std::string* tenant_override) const {
  std::shared_lock lock(mu);
  if (auto e = config_errors.find(name); e != config_errors.end()) {
    return Unavailable("model '{}' is not available: {}", name, e->second);
  }
  auto it = models.find(name);
  if (it == models.end() || it->second.versions.empty()) {
    auto u = unavailable.find(name);
    if (u != unavailable.end()) return Unavailable("model '{}' is not available: {}", name, u->second);
    if (unloaded.count(name)) return Unavailable("model '{}' is unloaded", name);
    return NotFound("unknown model '{}'", name);
  }
  const ServedModel& m = it->second;
  if (priority_override) *priority_override = m.priority_override;
  if (tenant_override) *tenant_override = m.tenant_override;
  if (version.empty()) return m.versions.rbegin()->second;
  int64_t v = 0;
  auto [p, ec] = std::from_chars(version.data(), version.data() + version.size(), v);
  if (ec != std::errc() || p != version.data() + version.size()) {
    return NotFound("model '{}' has no version '{}'", name, version);
  }
  auto vit = m.versions.find(v);
  if (vit == m.versions.end()) return NotFound("model '{}' has no version '{}'", name, version);
  return vit->second;
}

void Engine::Impl::FinishRequest() {
  if (in_flight.fetch_sub(1) == 1) {
    std::lock_guard<std::mutex> lock(drain_mu);
    drain_cv.notify_all();
  }
}

void Engine::Infer(std::unique_ptr<InferenceRequest> request) {
  Impl& c = *impl_;
  c.in_flight.fetch_add(1);  // before the check, so a concurrent Drain never misses this request
  if (c.draining.load()) {
    request->Fail(Unavailable("the server is shutting down"));
    c.FinishRequest();
    return;
  }
  int priority_override = -1;
  std::string tenant_override;
  auto v = c.Resolve(request->model_name, request->model_version, &priority_override, &tenant_override);
  if (!v.ok()) {
    request->Fail(v.status());
    c.FinishRequest();
    return;
  }
  std::shared_ptr<ServedVersion> sv = std::move(*v);
  // Triton: a priority of 0 or beyond the model's levels means the model's default level.
  if (request->priority >= sv->priority_levels) request->priority = -1;
  if (request->priority < 0 && priority_override >= 0) request->priority = std::min(priority_override, sv->priority_levels - 1);
  if (c.naive()) {
    request->priority = -1;  // one FIFO level
    request->tenant.clear();
  } else if (request->tenant.empty() && !tenant_override.empty()) {
    request->tenant = tenant_override;
  } else if (!request->tenant.empty()) {
    std::shared_lock lock(c.mu);
    if (!c.declared_tenants.count(request->tenant)) request->tenant = kUndeclaredTenant;
  }
  request->model_name = sv->key;
  request->model_version = std::to_string(sv->version);
  int64_t start = NowNs();
  auto user_cb = std::move(request->on_complete);
  Impl* core = impl_.get();
  request->on_complete = [core, sv, start, user_cb = std::move(user_cb)](InferenceResponse r) {
    r.model_name = sv->name;
    r.model_version = std::to_string(sv->version);
    const int64_t request_ns = NowNs() - start;
    if (r.status.ok()) {
      sv->success->Inc();
      sv->queue_seconds->Observe(static_cast<double>(r.queue_ns) * 1e-9);
      sv->compute_seconds->Observe(static_cast<double>(r.compute_ns) * 1e-9);
      sv->nv_success->Inc();
      sv->nv_request_us->Inc(static_cast<double>(request_ns) * 1e-3);
      sv->nv_queue_us->Inc(static_cast<double>(r.queue_ns) * 1e-3);
      sv->nv_input_us->Inc(static_cast<double>(r.compute_input_ns) * 1e-3);
      sv->nv_infer_us->Inc(static_cast<double>(r.compute_ns) * 1e-3);
      sv->nv_output_us->Inc(static_cast<double>(r.compute_output_ns) * 1e-3);
    } else {
      core->metrics.inference_requests_total
          ->Labels({sv->name, r.model_version, std::string(StatusCodeName(r.status.code()))})
          ->Inc();
      core->metrics.nv_inference_request_failure
          ->Labels({sv->name, monitor::TritonFailureReason(r.status.code()), r.model_version})
          ->Inc();
    }
    sv->request_seconds->Observe(static_cast<double>(request_ns) * 1e-9);
    sv->stats.RecordRequest(r, request_ns);
    if (user_cb) user_cb(std::move(r));
    core->FinishRequest();
  };
  (void)c.scheduler->Enqueue(std::move(request));  // refusals are answered through the callback
}

int64_t Engine::Drain(int64_t timeout_ms) {
  Impl& c = *impl_;
  c.draining.store(true);
  std::unique_lock lock(c.drain_mu);
  c.drain_cv.wait_for(lock, std::chrono::milliseconds(std::max<int64_t>(0, timeout_ms)),
                      [&] { return c.in_flight.load() <= 0; });
  return std::max<int64_t>(0, c.in_flight.load());
}

int64_t Engine::in_flight() const { return impl_->in_flight.load(); }

size_t Engine::CancelQueued() {
  Impl& c = *impl_;
  c.draining.store(true);
  std::lock_guard<std::mutex> control(c.control_mu);
  std::vector<std::pair<std::string, std::vector<int64_t>>> all;
  {
    std::shared_lock lock(c.mu);
    for (const auto& [name, m] : c.models) {
      std::vector<int64_t> vs;
      for (const auto& [ver, v] : m.versions) vs.push_back(ver);
      all.emplace_back(name, std::move(vs));
    }
  }
  size_t answered = 0;
  for (const auto& [name, vs] : all) answered += c.Unserve(name, vs, /*drain=*/false);
  return answered;
}

bool Engine::IsLive() { return true; }
bool Engine::IsReady() { return !impl_->draining.load(); }

ServerMetadata Engine::GetServerMetadata() {
  ServerMetadata md;
  md.name = "gpuhive";
  md.version = "0.1.0";
  md.extensions = {"binary_tensor_data", "classification", "model_configuration", "model_repository",
                   "statistics",         "system_shared_memory", "gpuhive_management"};
  return md;
}

StatusOr<bool> Engine::ModelReady(const std::string& name, const std::string& version) {
  auto v = impl_->Resolve(name, version, nullptr, nullptr);
  if (v.ok()) {
    if (impl_->draining.load()) return false;
    if (impl_->naive()) return true;
    // What the repository index says: a version that failed to load or can never fit the budget
    // is served (its requests get a clear 503) but not ready.
    for (const auto& st : impl_->device_set->ListModels()) {
      if (st.name == (*v)->name && st.version == (*v)->version) return ServedState(st) != "UNAVAILABLE";
    }
    return true;
  }
  if (v.status().code() == StatusCode::kUnavailable) return false;
  return v.status();
}

StatusOr<ModelMetadata> Engine::GetModelMetadata(const std::string& name, const std::string& version) {
  // While shutting down every request is answered 503, also those the frontends refuse after
  // asking for metadata (the models may already be gone).
  if (impl_->draining.load()) return Unavailable("the server is shutting down");
  auto v = impl_->Resolve(name, version, nullptr, nullptr);
  if (!v.ok()) {
    if (v.status().code() == StatusCode::kUnavailable) {
      // A model the repository has but cannot serve (invalid config, failed load or warm-up) is
      // there and broken: 503 with the reason. An unloaded one is not served: 404.
      std::shared_lock lock(impl_->mu);
      if (impl_->config_errors.count(name) || impl_->unavailable.count(name)) return v.status();
      return NotFound("{}", v.status().message());
    }
    return v.status();
  }
  std::shared_lock lock(impl_->mu);
  return (*v)->metadata;
}

monitor::Registry* Engine::registry() { return &impl_->registry; }
const monitor::GpuhiveMetrics& Engine::metrics() const { return impl_->metrics; }

}  // namespace gpuhive::engine
