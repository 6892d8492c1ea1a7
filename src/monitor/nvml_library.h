// The NVML calls gpuhive uses, behind a small interface so tests can inject a fake. Return values
// are NVML's nvmlReturn_t codes; types are declared here from the public NVML API documentation.
#pragma once

#include <memory>
#include <string>

#include "gpuhive/status.h"

namespace gpuhive::monitor::detail {

// nvmlReturn_t values we act on.
inline constexpr int kNvmlSuccess = 0;
inline constexpr int kNvmlErrorNotSupported = 3;
inline constexpr int kNvmlErrorFunctionNotFound = 13;
inline constexpr int kNvmlErrorGpuIsLost = 15;
// nvmlClockType_t
inline constexpr int kNvmlClockSm = 1;
inline constexpr int kNvmlClockMem = 2;
// nvmlMemoryErrorType_t / nvmlEccCounterType_t
inline constexpr int kNvmlMemoryErrorCorrected = 0;
inline constexpr int kNvmlMemoryErrorUncorrected = 1;
inline constexpr int kNvmlVolatileEcc = 0;
// nvmlPcieUtilCounter_t
inline constexpr int kNvmlPcieTxBytes = 0;
inline constexpr int kNvmlPcieRxBytes = 1;
// nvmlTemperatureSensors_t / nvmlTemperatureThresholds_t
inline constexpr int kNvmlTemperatureGpu = 0;
inline constexpr int kNvmlTemperatureThresholdSlowdown = 1;

struct NvmlUtilization {  // nvmlUtilization_t
  unsigned int gpu;
  unsigned int memory;
};
struct NvmlMemory {  // nvmlMemory_t (v1)
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
};

class NvmlLibrary {
 public:
  using Device = void*;  // nvmlDevice_t
  virtual ~NvmlLibrary() = default;
  virtual int Init() = 0;
  virtual int Shutdown() = 0;
  virtual std::string ErrorString(int code) = 0;
  virtual int DeviceCount(unsigned* count) = 0;
  virtual int HandleByIndex(unsigned index, Device* device) = 0;
  virtual int Name(Device d, char* name, unsigned length) = 0;
  virtual int Utilization(Device d, NvmlUtilization* u) = 0;
  virtual int Memory(Device d, NvmlMemory* m) = 0;
  virtual int Temperature(Device d, unsigned* celsius) = 0;
  virtual int TemperatureThreshold(Device d, int threshold, unsigned* celsius) = 0;
  virtual int PowerUsage(Device d, unsigned* milliwatts) = 0;
  virtual int PowerLimit(Device d, unsigned* milliwatts) = 0;
  virtual int Clock(Device d, int clock_type, unsigned* mhz) = 0;
  virtual int ThrottleReasons(Device d, unsigned long long* reasons) = 0;
  virtual int EccErrors(Device d, int error_type, int counter_type, unsigned long long* count) = 0;
  virtual int PcieThroughput(Device d, int counter, unsigned* kib_per_second) = 0;
  // Optional (older libraries and fakes): kNvmlErrorFunctionNotFound unless overridden.
  virtual int Uuid(Device d, char* uuid, unsigned length) { return kNvmlErrorFunctionNotFound; }
  virtual int TotalEnergy(Device d, unsigned long long* millijoules) { return kNvmlErrorFunctionNotFound; }
};

// dlopen()s the system NVML. Errors: kUnavailable when the library or a required symbol is missing.
StatusOr<std::unique_ptr<NvmlLibrary>> OpenSystemNvml(const std::string& path);

}  // namespace gpuhive::monitor::detail
