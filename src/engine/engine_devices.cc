// Engine: the devices models are placed on (`--device sim:N`: one budget, pool and copy
// engine each, see residency/device_set.h): running a batch on the model's device, the devices'
// management API entries and their metrics.
#include "gpuhive/units.h"
#include "engine/engine_internal.h"

namespace gpuhive::engine {

using residency::ModelState;

namespace {

// Bytes in use per memory kind, by kind name.
std::map<std::string, uint64_t> BytesByKind(const StatisticsResource& stats) {
  std::map<std::string, uint64_t> out;
  for (int k = 0; k < kNumMemoryKinds; ++k) {
    MemoryKind kind = static_cast<MemoryKind>(k);
    out[std::string(MemoryKindName(kind))] = stats.KindStats(kind).current_bytes;
  }
  return out;
}

}  // namespace

StatusOr<std::vector<Tensor>> EngineRunner::RunManaged(const std::vector<TensorView>& inputs,
                                                     const sched::WorkerContext& worker) {
  if (worker.worker_index < 0 || static_cast<size_t>(worker.worker_index) >= core_->workers.size()) {
    return Internal("worker index {} out of range", worker.worker_index);
  }
  // The model runs on the device it is placed on (placed now if this is its first load).
  auto device = core_->device_set->Place(v_->name);
  if (!device.ok()) {
    return Unavailable("model '{}' version {} cannot be made resident: {}", v_->name, v_->version,
                       device.status().message())
        .WithShortage(device.status().shortage());
  }
  WorkerState& w = core_->workers[static_cast<size_t>(worker.worker_index)];
  int threads = std::max(1, worker.num_threads);
  w.device_ctx.resize(core_->device_set->size());
  if (!w.host_ctx || w.host_ctx->options().num_threads != threads) {
    w.host_ctx = std::make_unique<ExecutionContext>(ExecutionContext::Options{.num_threads = threads});
  }
  auto run_on = [&](size_t d) {
    residency::ModelManager& m = core_->device_set->manager(d);
    std::unique_ptr<ExecutionContext>& ctx = w.device_ctx[d];
    if (!ctx || ctx->options().num_threads != threads || ctx->options().stream_priority != worker.stream_priority) {
      ctx = std::make_unique<ExecutionContext>(ExecutionContext::Options{.num_threads = threads,
                                                                         .memory = m.memory(),
                                                                         .worker = worker.worker_index,
                                                                         .stream_priority = worker.stream_priority});
    }
    // When the shortage is only because other batches hold their models, wait for them (holding
    // nothing ourselves, so two waiting batches can never block each other) instead of failing.
    return m.RunBatch(v_->name, *ctx, inputs, w.host_ctx.get(),
                      {.version = v_->version,
                       .pressure_wait_ms = core_->options.pressure_wait_ms,
                       .one_row_bytes = &v_->one_row_bytes});
  };
  auto out = run_on(*device);
  // A model the device's executor cannot compile runs whole on the CPU (DeviceSet::MoveToCpuAfter).
  if (!out.ok()) {
    if (auto cpu = core_->device_set->MoveToCpuAfter(v_->name, *device, out.status())) return run_on(*cpu);
  }
  return out;
}

StatusOr<std::vector<residency::DeviceSetOptions::Device>> Engine::Impl::PlanDevices(uint64_t budget,
                                                                                          uint64_t cpu_budget) const {
  std::vector<residency::DeviceSetOptions::Device> out;
  for (size_t i = 0; i < devices.size(); ++i) {
    ComputeDevice* d = devices[i].get();
    uint64_t device_budget = budget;
    if (options.memory_budget_bytes == 0 && i < device_budgets.size()) {
      device_budget = device_budgets[i].budget_bytes;
    } else if (budget > d->memory_capacity_bytes()) {
      return InvalidArgument("memory budget {} exceeds {}'s {}", FormatBytes(budget), d->id().ToString(),
                             FormatBytes(d->memory_capacity_bytes()));
    }
    out.push_back({.device = d, .gpu_ordinal = static_cast<int>(i), .budget_bytes = device_budget});
  }
  // The host CPU: the one device without GPUs (or simulated ones); next to them, where KIND_CPU
  // models run.
  out.push_back({.device = nullptr, .gpu_ordinal = -1, .budget_bytes = devices.empty() ? budget : cpu_budget});
  // Host tier: by default as large as each device's budget; a given one is shared out evenly.
  const int64_t host = options.host_memory_budget_bytes;
  for (auto& d : out) d.host_budget_bytes = host < 0 ? d.budget_bytes : static_cast<uint64_t>(host) / out.size();
  return out;
}

Status Engine::Impl::OpenGpus() {
  if (!BuiltWithCuda()) return Unavailable("this build has no CUDA support");
  // cuDNN and cuBLASLt come with the plugin, so a machine without them still serves on the CPU.
  ASSIGN_OR_RETURN(LoadedPlugin plugin, LoadCudaPlugin());
  std::vector<std::unique_ptr<ComputeDevice>> opened;
  for (const DeviceInfo& gpu : discovery.gpus) {
    ASSIGN_OR_RETURN(auto d, CreateCudaComputeDevice({.device_index = gpu.id.index}));
    opened.push_back(std::move(d));
  }
  if (opened.empty()) return Unavailable("no GPU was found");
  devices = std::move(opened);
  device_id = devices.front()->id().ToString();
  if (devices.size() > 1) device_id += "+" + devices.back()->id().ToString();
  GH_LOG_INFO("core", "models run on {} GPU(s) ({}) through {} ({})", devices.size(), devices.front()->name(),
              plugin.description, plugin.path);
  return Status::OK();
}

const StatisticsResource& Engine::Impl::memory_stats(size_t device) const {
  return naive() ? *naive_memory : device_set->manager(device).statistics();
}

const std::string& Engine::Impl::DeviceOf(const residency::ModelStatus& st) const {
  return st.device.empty() ? device_set->id(0) : st.device;
}

void Engine::Impl::CollectDevices() {
  if (naive()) {
    for (const auto& [kind, bytes] : BytesByKind(*naive_memory)) {
      metrics.device_memory_bytes->Labels({device_id, kind})->Set(static_cast<double>(bytes));
    }
    std::shared_lock lock(mu);
    for (const auto& [name, m] : models) {
      metrics.model_memory_bytes->Labels({name, device_id})->Set(static_cast<double>(NaiveModelBytes(m)));
      metrics.model_resident->Labels({name, device_id})->Set(1);
    }
    return;
  }
  struct PerModel {
    uint64_t bytes = 0;
    bool resident = false;
    uint64_t h2d_bytes = 0;
    int64_t h2d_ns = 0;
  };
  std::map<std::pair<std::string, std::string>, PerModel> per_model;  // (model, device)
  for (const auto& st : device_set->ListModels()) {
    if (st.precision_rel_l2 >= 0) {
      metrics.model_precision_error->Labels({st.name, "int8"})->Set(st.precision_rel_l2);
    }
    PerModel& pm = per_model[{st.name, DeviceOf(st)}];
    pm.h2d_bytes += st.h2d_bytes;
    pm.h2d_ns += st.h2d_ns;
    if (st.state == ModelState::kResident) {
      pm.bytes += st.device_bytes;
      pm.resident = true;
    }
  }
  for (const auto& [key, pm] : per_model) {
    metrics.model_memory_bytes->Labels({key.first, key.second})->Set(static_cast<double>(pm.bytes));
    metrics.model_resident->Labels({key.first, key.second})->Set(pm.resident ? 1 : 0);
    metrics.model_h2d_bytes_total->Labels({key.first, key.second})->Set(static_cast<double>(pm.h2d_bytes));
    metrics.model_h2d_seconds_total->Labels({key.first, key.second})->Set(static_cast<double>(pm.h2d_ns) * 1e-9);
  }
  for (size_t i = 0; i < device_set->size(); ++i) {
    const std::string& dev = device_set->id(i);
    residency::ModelManager& m = device_set->manager(i);
    for (const auto& [kind, bytes] : BytesByKind(m.statistics())) {
      metrics.device_memory_bytes->Labels({dev, kind})->Set(static_cast<double>(bytes));
    }
    residency::ResidencyStats rs = m.Stats();
    metrics.device_memory_budget_bytes->Labels({dev})->Set(static_cast<double>(rs.budget_bytes));
    PoolStats ps = m.pool_stats();
    metrics.pool_reserved_bytes->Labels({dev})->Set(static_cast<double>(ps.reserved_bytes));
    metrics.pool_in_use_bytes->Labels({dev})->Set(static_cast<double>(ps.allocated_bytes));
    metrics.pool_fragmentation_ratio->Labels({dev})->Set(ps.external_fragmentation());
    metrics.residency_acquires_total->Labels({dev})->Set(static_cast<double>(rs.acquires));
    metrics.residency_hits_total->Labels({dev})->Set(static_cast<double>(rs.hits));
    metrics.residency_bytes_swapped_in_total->Labels({dev})->Set(static_cast<double>(rs.bytes_swapped_in));
    metrics.preloads_total->Labels({dev, "done"})->Set(static_cast<double>(rs.preloads));
    metrics.preloads_total->Labels({dev, "hit"})->Set(static_cast<double>(rs.preload_hits));
    metrics.preloads_total->Labels({dev, "wasted"})->Set(static_cast<double>(rs.preload_wasted));
    auto pressure = metrics.memory_pressure_events_total;
    pressure->Labels({dev, "evict_retry"})->Set(static_cast<double>(rs.pressure_retries));
    pressure->Labels({dev, "batch_split"})->Set(static_cast<double>(rs.batch_splits));
    pressure->Labels({dev, "cpu_fallback"})->Set(static_cast<double>(rs.cpu_fallbacks));
    pressure->Labels({dev, "refused"})->Set(static_cast<double>(rs.refused));
    metrics.h2d_bandwidth_bytes_per_second->Labels({dev})->Set(rs.h2d_bytes_per_s);
  }
}

DeviceBudget DefaultDeviceBudget(uint64_t capacity_bytes, uint64_t free_bytes, uint64_t library_reserve_bytes) {
  DeviceBudget b;
  const uint64_t free_at_start = free_bytes == 0 ? capacity_bytes : std::min(free_bytes, capacity_bytes);
  const uint64_t headroom = std::min(std::max<uint64_t>(capacity_bytes / 50, 256ull << 20), capacity_bytes / 10);
  b.free_at_start_bytes = free_at_start;
  b.reserved_bytes = capacity_bytes - free_at_start;
  b.library_reserve_bytes = library_reserve_bytes;
  b.headroom_bytes = headroom;
  const uint64_t kept = headroom + library_reserve_bytes;
  b.budget_bytes = free_at_start > kept ? free_at_start - kept : 0;
  return b;
}

DeviceBudget MeasureDeviceBudget(ComputeDevice& device) {
  const uint64_t free_before = device.memory_free_bytes();
  uint64_t reserve = 0;
  auto backend = ExecutionBackendFor(device);
  if (backend.ok()) {
    const int64_t t0 = NowNs();
    Status loaded = (*backend)->LoadLibraries(device);
    const uint64_t free_after = device.memory_free_bytes();
    // 0 from either reading means unknown (the device could not be asked): no reserve measured.
    if (free_before > 0 && free_after > 0 && free_after < free_before) reserve = free_before - free_after;
    if (!loaded.ok()) {
      GH_LOG_WARN("core", "{}: the {} backend could not load its libraries ({}); their memory is measured when "
                  "models first run", device.id().ToString(), (*backend)->name(), loaded.message());
    } else if (reserve > 0) {
      GH_LOG_INFO("core", "{}: the {} backend's libraries took {} of device memory at start ({:.0f} ms); kept out of "
                  "the default budget", device.id().ToString(), (*backend)->name(), FormatBytes(reserve),
                  (NowNs() - t0) / 1e6);
    }
  }
  return DefaultDeviceBudget(device.memory_capacity_bytes(), free_before, reserve);
}

std::vector<DeviceStatus> Engine::Devices() {
  Impl& c = *impl_;
  std::vector<DeviceStatus> out;
  if (c.naive()) {
    DeviceStatus d;
    d.id = c.device_id;
    d.used_bytes = c.naive_memory->Stats().value_or(MemoryStats{}).current_bytes;
    std::shared_lock lock(c.mu);
    for (const auto& [name, m] : c.models) d.used_by_model[name] = c.NaiveModelBytes(m);
    out.push_back(std::move(d));
  } else {
    const auto listed = c.device_set->ListModels();
    for (size_t i = 0; i < c.device_set->size(); ++i) {
      DeviceStatus d;
      d.id = c.device_set->id(i);
      residency::ResidencyStats rs = c.device_set->manager(i).Stats();
      d.budget_bytes = rs.budget_bytes;
      d.used_bytes = rs.used_bytes;
      if (i < c.device_budgets.size()) {  // the device set keeps PlanDevices' order: the GPUs, then the CPU
        d.capacity_bytes = c.devices[i]->memory_capacity_bytes();
        d.free_at_start_bytes = c.device_budgets[i].free_at_start_bytes;
        d.reserved_bytes = c.device_budgets[i].reserved_bytes;
        d.headroom_bytes = c.device_budgets[i].headroom_bytes;
        d.library_reserve_bytes = c.device_budgets[i].library_reserve_bytes;
      }
      for (const auto& st : listed) {
        if (st.device == d.id && (d.models.empty() || d.models.back() != st.name)) d.models.push_back(st.name);
        if (c.DeviceOf(st) == d.id && st.state == ModelState::kResident) d.used_by_model[st.name] += st.device_bytes;
      }
      d.fragmentation_ratio = c.device_set->manager(i).pool_stats().external_fragmentation();
      out.push_back(std::move(d));
    }
  }
  std::string health = "ok";
  if (c.nvml) {
    for (const auto& s : c.nvml->Latest()) {
      std::string h(monitor::GpuHealthName(monitor::DeriveGpuHealth(s, monitor::HealthThresholds{})));
      if (h != "ok") health = h;
    }
  }
  for (size_t i = 0; i < out.size(); ++i) {
    for (const auto& [kind, bytes] : BytesByKind(c.memory_stats(i))) {
      if (bytes > 0) out[i].used_by_kind[kind] = bytes;
    }
    out[i].health = health;
  }
  return out;
}

}  // namespace gpuhive::engine
