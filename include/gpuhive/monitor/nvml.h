// GPU monitoring through NVML, loaded at run time with dlopen("libnvidia-ml.so.1"): no link-time
// dependency and no NVML header, so a machine without a driver builds and runs (the monitor then
// reports kUnavailable from Create and the server carries on without GPU metrics).
//
// Every field of a sample is optional: a query that fails leaves it empty, and an empty field is
// not exported (never reported as zero).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gpuhive/monitor/metric_names.h"
#include "gpuhive/status.h"

namespace gpuhive::monitor {

namespace detail {
class NvmlLibrary;  // src/monitor/nvml_library.h: the NVML calls behind an injectable interface
}

enum class GpuHealth { kOk, kThrottledThermal, kThrottledPower, kHwSlowdown, kEccErrors, kLost };
// "ok", "throttled-thermal", "throttled-power", "hw-slowdown", "ecc-errors", "lost".
std::string_view GpuHealthName(GpuHealth h);
std::vector<GpuHealth> AllGpuHealthStates();

// NVML clock throttle (event) reason bits, from the public NVML API.
namespace throttle {
inline constexpr uint64_t kGpuIdle = 0x1;
inline constexpr uint64_t kApplicationsClocks = 0x2;
inline constexpr uint64_t kSwPowerCap = 0x4;
inline constexpr uint64_t kHwSlowdown = 0x8;
inline constexpr uint64_t kSyncBoost = 0x10;
inline constexpr uint64_t kSwThermal = 0x20;
inline constexpr uint64_t kHwThermal = 0x40;
inline constexpr uint64_t kHwPowerBrake = 0x80;
inline constexpr uint64_t kDisplayClocks = 0x100;
}  // namespace throttle

// (bit, label) for gpuhive_gpu_throttle{reason=label}.
const std::vector<std::pair<uint64_t, std::string_view>>& ThrottleReasonLabels();

struct GpuSample {
  unsigned index = 0;
  bool lost = false;  // NVML said the GPU fell off the bus; other fields are then empty
  std::optional<std::string> name;
  std::optional<std::string> uuid;                 // "GPU-..." (Triton's gpu_uuid label)
  std::optional<double> energy_joules;             // consumed since the monitor started
  std::optional<double> utilization_ratio;         // 0..1
  std::optional<double> memory_utilization_ratio;  // 0..1
  std::optional<uint64_t> memory_total_bytes;
  std::optional<uint64_t> memory_used_bytes;
  std::optional<uint64_t> memory_free_bytes;
  std::optional<double> temperature_celsius;
  std::optional<double> slowdown_temperature_celsius;  // the driver's thermal slowdown threshold
  std::optional<double> power_watts;
  std::optional<double> power_limit_watts;
  std::optional<double> sm_clock_hertz;
  std::optional<double> mem_clock_hertz;
  std::optional<uint64_t> throttle_reasons;  // bitmask of throttle::k*
  std::optional<uint64_t> ecc_corrected_errors;    // volatile (since driver load)
  std::optional<uint64_t> ecc_uncorrected_errors;  // volatile
  std::optional<double> pcie_tx_bytes_per_second;
  std::optional<double> pcie_rx_bytes_per_second;
  GpuHealth health = GpuHealth::kOk;
};

struct HealthThresholds {
  // Used when the driver does not report its slowdown threshold: at or above this the GPU counts
  // as thermally throttled even before the driver says so.
  double temperature_celsius = 90.0;
  // Degrees below the driver's slowdown threshold that already count as throttled-thermal.
  double slowdown_margin_celsius = 2.0;
  uint64_t uncorrected_ecc_errors = 1;  // at or above: ecc-errors
};

// Health from throttle reasons, temperature and ECC counts. Precedence (worst first): lost,
// ecc-errors, hw-slowdown (HW slowdown / power brake), throttled-thermal, throttled-power
// (SW power cap), ok. Idle / application-clock / sync-boost reasons are not unhealthy.
GpuHealth DeriveGpuHealth(const GpuSample& s, const HealthThresholds& t);

struct NvmlOptions {
  int64_t poll_interval_ms = 1000;
  HealthThresholds thresholds;
  // When set, every Poll() writes the GPU gauges (families must outlive the monitor).
  const GpuhiveMetrics* metrics = nullptr;
  std::string library_path = "libnvidia-ml.so.1";
};

// Thread safe. Start() runs a poller thread; Latest() returns the last sample.
class NvmlMonitor {
 public:
  // Loads NVML and initialises it. Errors: kUnavailable when the library is missing or
  // nvmlInit fails (no driver, no GPU).
  static StatusOr<std::unique_ptr<NvmlMonitor>> Create(const NvmlOptions& options);
  // The same over an injected library (tests use a fake). Takes ownership.
  static StatusOr<std::unique_ptr<NvmlMonitor>> CreateWithLibrary(
      std::unique_ptr<detail::NvmlLibrary> library, const NvmlOptions& options);
  ~NvmlMonitor();  // stops the poller and shuts NVML down

  unsigned device_count() const { return device_count_; }
  // Samples every GPU now (and updates the gauges when configured).
  std::vector<GpuSample> Poll();
  std::vector<GpuSample> Latest() const;
  void Start();
  void Stop();

 private:
  NvmlMonitor(std::unique_ptr<detail::NvmlLibrary> lib, const NvmlOptions& o, unsigned count);
  GpuSample SampleDevice(unsigned index);
  void Export(const GpuSample& s);

  struct State;
  std::unique_ptr<detail::NvmlLibrary> lib_;
  NvmlOptions options_;
  unsigned device_count_;
  std::unique_ptr<State> state_;
};

}  // namespace gpuhive::monitor
