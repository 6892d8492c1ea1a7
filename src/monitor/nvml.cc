#include "gpuhive/monitor/nvml.h"

#include <chrono>
#include <cstring>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "gpuhive/logging.h"
#include "monitor/nvml_library.h"

namespace gpuhive::monitor {

using detail::kNvmlSuccess;
using detail::NvmlLibrary;

std::string_view GpuHealthName(GpuHealth h) {
  switch (h) {
    case GpuHealth::kOk: return "ok";
    case GpuHealth::kThrottledThermal: return "throttled-thermal";
    case GpuHealth::kThrottledPower: return "throttled-power";
    case GpuHealth::kHwSlowdown: return "hw-slowdown";
    case GpuHealth::kEccErrors: return "ecc-errors";
    case GpuHealth::kLost: return "lost";
  }
  return "unknown";
}

std::vector<GpuHealth> AllGpuHealthStates() {
  return {GpuHealth::kOk,         GpuHealth::kThrottledThermal, GpuHealth::kThrottledPower,
          GpuHealth::kHwSlowdown, GpuHealth::kEccErrors,        GpuHealth::kLost};
}

const std::vector<std::pair<uint64_t, std::string_view>>& ThrottleReasonLabels() {
  static const std::vector<std::pair<uint64_t, std::string_view>> labels = {
      {throttle::kGpuIdle, "gpu_idle"},
      {throttle::kApplicationsClocks, "applications_clocks"},
      {throttle::kSwPowerCap, "sw_power_cap"},
      {throttle::kHwSlowdown, "hw_slowdown"},
      {throttle::kSyncBoost, "sync_boost"},
      {throttle::kSwThermal, "sw_thermal"},
      {throttle::kHwThermal, "hw_thermal"},
      {throttle::kHwPowerBrake, "hw_power_brake"},
      {throttle::kDisplayClocks, "display_clocks"},
  };
  return labels;
}

GpuHealth DeriveGpuHealth(const GpuSample& s, const HealthThresholds& t) {
  if (s.lost) return GpuHealth::kLost;
  if (s.ecc_uncorrected_errors && *s.ecc_uncorrected_errors >= t.uncorrected_ecc_errors)
    return GpuHealth::kEccErrors;
  uint64_t r = s.throttle_reasons.value_or(0);
  if (r & (throttle::kHwSlowdown | throttle::kHwPowerBrake)) return GpuHealth::kHwSlowdown;
  bool hot = false;
  if (s.temperature_celsius) {
    double limit = s.slowdown_temperature_celsius
                       ? *s.slowdown_temperature_celsius - t.slowdown_margin_celsius
                       : t.temperature_celsius;
    hot = *s.temperature_celsius >= limit;
  }
  if ((r & (throttle::kSwThermal | throttle::kHwThermal)) || hot) return GpuHealth::kThrottledThermal;
  if (r & throttle::kSwPowerCap) return GpuHealth::kThrottledPower;
  return GpuHealth::kOk;
}

struct NvmlMonitor::State {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<GpuSample> latest;  // GUARDED_BY(mu)
  std::map<unsigned, unsigned long long> energy_start_mj;  // GUARDED_BY(mu): first reading per GPU
  bool stop = false;              // GUARDED_BY(mu)
  std::thread poller;
};

StatusOr<std::unique_ptr<NvmlMonitor>> NvmlMonitor::Create(const NvmlOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<NvmlLibrary> lib, detail::OpenSystemNvml(options.library_path));
  return CreateWithLibrary(std::move(lib), options);
}

StatusOr<std::unique_ptr<NvmlMonitor>> NvmlMonitor::CreateWithLibrary(
    std::unique_ptr<NvmlLibrary> lib, const NvmlOptions& options) {
  if (!lib) return InvalidArgument("NvmlMonitor: no library");
  if (options.poll_interval_ms <= 0)
    return InvalidArgument("NVML poll interval must be positive, got {} ms", options.poll_interval_ms);
  int rc = lib->Init();
  if (rc != kNvmlSuccess) return Unavailable("nvmlInit_v2 failed: {}", lib->ErrorString(rc));
  unsigned count = 0;
  rc = lib->DeviceCount(&count);
  if (rc != kNvmlSuccess) {
    std::string msg = lib->ErrorString(rc);
    lib->Shutdown();
    return Unavailable("nvmlDeviceGetCount_v2 failed: {}", msg);
  }
  return std::unique_ptr<NvmlMonitor>(new NvmlMonitor(std::move(lib), options, count));
}

NvmlMonitor::NvmlMonitor(std::unique_ptr<NvmlLibrary> lib, const NvmlOptions& o, unsigned count)
    : lib_(std::move(lib)), options_(o), device_count_(count), state_(std::make_unique<State>()) {}

NvmlMonitor::~NvmlMonitor() {
  Stop();
  lib_->Shutdown();
}

GpuSample NvmlMonitor::SampleDevice(unsigned index) {
  GpuSample s;
  s.index = index;
  NvmlLibrary::Device d = nullptr;
  int rc = lib_->HandleByIndex(index, &d);
  if (rc == detail::kNvmlErrorGpuIsLost) {
    s.lost = true;
    s.health = GpuHealth::kLost;
    return s;
  }
  if (rc != kNvmlSuccess) return s;  // nothing known; health stays ok only if nothing says else
  bool lost = false;
  auto ok = [&](int code) {
    if (code == detail::kNvmlErrorGpuIsLost) lost = true;
    return code == kNvmlSuccess;
  };
  char name[96] = {};
  if (ok(lib_->Name(d, name, sizeof(name)))) s.name = std::string(name, strnlen(name, sizeof(name)));
  char uuid[96] = {};
  if (ok(lib_->Uuid(d, uuid, sizeof(uuid)))) s.uuid = std::string(uuid, strnlen(uuid, sizeof(uuid)));
  unsigned long long energy_mj = 0;
  if (ok(lib_->TotalEnergy(d, &energy_mj))) {
    std::lock_guard lock(state_->mu);
    auto [it, first] = state_->energy_start_mj.emplace(index, energy_mj);
    s.energy_joules = static_cast<double>(energy_mj - std::min(energy_mj, it->second)) / 1000.0;
  }
  detail::NvmlUtilization u{};
  if (ok(lib_->Utilization(d, &u))) {
    s.utilization_ratio = u.gpu / 100.0;
    s.memory_utilization_ratio = u.memory / 100.0;
  }
  detail::NvmlMemory m{};
  if (ok(lib_->Memory(d, &m))) {
    s.memory_total_bytes = m.total;
    s.memory_used_bytes = m.used;
    s.memory_free_bytes = m.free;
  }
  unsigned v = 0;
  if (ok(lib_->Temperature(d, &v))) s.temperature_celsius = v;
  if (ok(lib_->TemperatureThreshold(d, detail::kNvmlTemperatureThresholdSlowdown, &v)))
    s.slowdown_temperature_celsius = v;
  if (ok(lib_->PowerUsage(d, &v))) s.power_watts = v / 1000.0;
  if (ok(lib_->PowerLimit(d, &v))) s.power_limit_watts = v / 1000.0;
  if (ok(lib_->Clock(d, detail::kNvmlClockSm, &v))) s.sm_clock_hertz = v * 1e6;
  if (ok(lib_->Clock(d, detail::kNvmlClockMem, &v))) s.mem_clock_hertz = v * 1e6;
  unsigned long long r = 0;
  if (ok(lib_->ThrottleReasons(d, &r))) s.throttle_reasons = r;
  if (ok(lib_->EccErrors(d, detail::kNvmlMemoryErrorCorrected, detail::kNvmlVolatileEcc, &r)))
    s.ecc_corrected_errors = r;
  if (ok(lib_->EccErrors(d, detail::kNvmlMemoryErrorUncorrected, detail::kNvmlVolatileEcc, &r)))
    s.ecc_uncorrected_errors = r;
  // NVML reports PCIe throughput in KB/s.
  if (ok(lib_->PcieThroughput(d, detail::kNvmlPcieTxBytes, &v))) s.pcie_tx_bytes_per_second = v * 1024.0;
  if (ok(lib_->PcieThroughput(d, detail::kNvmlPcieRxBytes, &v))) s.pcie_rx_bytes_per_second = v * 1024.0;
  if (lost) {
    GpuSample gone;
    gone.index = index;
    gone.lost = true;
    gone.health = GpuHealth::kLost;
    return gone;
  }
  s.health = DeriveGpuHealth(s, options_.thresholds);
  return s;
}

namespace {

template <typename T, typename Fam>
void SetOrRemove(Fam* family, const std::vector<std::string>& labels, const std::optional<T>& v) {
  if (v) {
    family->Labels(labels)->Set(static_cast<double>(*v));
  } else {
    family->Remove(labels);
  }
}

}  // namespace

void NvmlMonitor::Export(const GpuSample& s) {
  const GpuhiveMetrics* m = options_.metrics;
  const std::string gpu = std::to_string(s.index);
  const std::vector<std::string> l = {gpu};
  SetOrRemove(m->gpu_utilization_ratio, l, s.utilization_ratio);
  SetOrRemove(m->gpu_memory_used_bytes, l, s.memory_used_bytes);
  SetOrRemove(m->gpu_memory_total_bytes, l, s.memory_total_bytes);
  SetOrRemove(m->gpu_temperature_celsius, l, s.temperature_celsius);
  SetOrRemove(m->gpu_power_watts, l, s.power_watts);
  SetOrRemove(m->gpu_power_limit_watts, l, s.power_limit_watts);
  SetOrRemove(m->gpu_clock_hertz, {gpu, "sm"}, s.sm_clock_hertz);
  SetOrRemove(m->gpu_clock_hertz, {gpu, "mem"}, s.mem_clock_hertz);
  for (const auto& [bit, reason] : ThrottleReasonLabels()) {
    std::optional<int> active;
    if (s.throttle_reasons) active = (*s.throttle_reasons & bit) ? 1 : 0;
    SetOrRemove(m->gpu_throttle, {gpu, std::string(reason)}, active);
  }
  SetOrRemove(m->gpu_ecc_errors_total, {gpu, "corrected"}, s.ecc_corrected_errors);
  SetOrRemove(m->gpu_ecc_errors_total, {gpu, "uncorrected"}, s.ecc_uncorrected_errors);
  SetOrRemove(m->gpu_pcie_bytes_per_second, {gpu, "tx"}, s.pcie_tx_bytes_per_second);
  SetOrRemove(m->gpu_pcie_bytes_per_second, {gpu, "rx"}, s.pcie_rx_bytes_per_second);
  for (GpuHealth h : AllGpuHealthStates()) {
    m->gpu_health->Labels({gpu, std::string(GpuHealthName(h))})->Set(h == s.health ? 1 : 0);
  }
  if (s.name) m->gpu_info->Labels({gpu, *s.name})->Set(1);
  // Triton's names, labelled by UUID (the index when the driver gives none).
  const std::vector<std::string> u = {s.uuid.value_or("GPU-" + gpu)};
  SetOrRemove(m->nv_gpu_utilization, u, s.utilization_ratio);
  SetOrRemove(m->nv_gpu_memory_total_bytes, u, s.memory_total_bytes);
  SetOrRemove(m->nv_gpu_memory_used_bytes, u, s.memory_used_bytes);
  SetOrRemove(m->nv_gpu_power_usage, u, s.power_watts);
  SetOrRemove(m->nv_gpu_power_limit, u, s.power_limit_watts);
  SetOrRemove(m->nv_energy_consumption, u, s.energy_joules);
}

std::vector<GpuSample> NvmlMonitor::Poll() {
  std::vector<GpuSample> samples;
  samples.reserve(device_count_);
  for (unsigned i = 0; i < device_count_; ++i) samples.push_back(SampleDevice(i));
  if (options_.metrics) {
    for (const GpuSample& s : samples) Export(s);
  }
  std::lock_guard lock(state_->mu);
  state_->latest = samples;
  return samples;
}

std::vector<GpuSample> NvmlMonitor::Latest() const {
  std::lock_guard lock(state_->mu);
  return state_->latest;
}

void NvmlMonitor::Start() {
  std::lock_guard lock(state_->mu);
  if (state_->poller.joinable()) return;
  state_->stop = false;
  state_->poller = std::thread([this] {
    std::unique_lock lock(state_->mu);
    while (!state_->stop) {
      lock.unlock();
      Poll();
      lock.lock();
      state_->cv.wait_for(lock, std::chrono::milliseconds(options_.poll_interval_ms),
                          [this] { return state_->stop; });
    }
  });
}

void NvmlMonitor::Stop() {
  std::thread t;
  {
    std::lock_guard lock(state_->mu);
    state_->stop = true;
    t = std::move(state_->poller);
  }
  state_->cv.notify_all();
  if (t.joinable()) t.join();
}

}  // namespace gpuhive::monitor
