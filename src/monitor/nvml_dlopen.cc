// The real NVML, resolved with dlopen/dlsym. Optional symbols (newer or older driver APIs) that are
// missing answer NVML_ERROR_FUNCTION_NOT_FOUND, which the monitor treats as an absent field.
#include <dlfcn.h>

#include "monitor/nvml_library.h"

namespace gpuhive::monitor::detail {

namespace {

using Dev = void*;
using InitFn = int (*)();
using ErrorStringFn = const char* (*)(int);
using CountFn = int (*)(unsigned*);
using HandleFn = int (*)(unsigned, Dev*);
using NameFn = int (*)(Dev, char*, unsigned);
using UtilFn = int (*)(Dev, NvmlUtilization*);
using MemFn = int (*)(Dev, NvmlMemory*);
// nvmlMemory_v2_t: v1's "used" also counts memory the driver reserves (about 600 MiB more than
// nvidia-smi showed on an H200 with driver 580); v2 reports it apart, as nvidia-smi does.
struct NvmlMemoryV2 {
  unsigned version;
  unsigned long long total;
  unsigned long long reserved;
  unsigned long long free;
  unsigned long long used;
};
constexpr unsigned kNvmlMemoryV2Version = static_cast<unsigned>(sizeof(NvmlMemoryV2)) | (2u << 24);
using Mem2Fn = int (*)(Dev, NvmlMemoryV2*);
using TempFn = int (*)(Dev, int, unsigned*);
using UintFn = int (*)(Dev, unsigned*);
using ClockFn = int (*)(Dev, int, unsigned*);
using ReasonsFn = int (*)(Dev, unsigned long long*);
using EccFn = int (*)(Dev, int, int, unsigned long long*);

class DlopenNvml final : public NvmlLibrary {
 public:
  explicit DlopenNvml(void* handle) : handle_(handle) {}
  ~DlopenNvml() override { dlclose(handle_); }

  template <typename F>
  F Sym(const char* name) {
    return reinterpret_cast<F>(dlsym(handle_, name));
  }
  bool Resolve() {
    init_ = Sym<InitFn>("nvmlInit_v2");
    shutdown_ = Sym<InitFn>("nvmlShutdown");
    error_string_ = Sym<ErrorStringFn>("nvmlErrorString");
    count_ = Sym<CountFn>("nvmlDeviceGetCount_v2");
    handle_by_index_ = Sym<HandleFn>("nvmlDeviceGetHandleByIndex_v2");
    name_ = Sym<NameFn>("nvmlDeviceGetName");
    util_ = Sym<UtilFn>("nvmlDeviceGetUtilizationRates");
    mem_ = Sym<MemFn>("nvmlDeviceGetMemoryInfo");
    mem2_ = Sym<Mem2Fn>("nvmlDeviceGetMemoryInfo_v2");
    temp_ = Sym<TempFn>("nvmlDeviceGetTemperature");
    temp_threshold_ = Sym<TempFn>("nvmlDeviceGetTemperatureThreshold");
    power_ = Sym<UintFn>("nvmlDeviceGetPowerUsage");
    power_limit_ = Sym<UintFn>("nvmlDeviceGetEnforcedPowerLimit");
    clock_ = Sym<ClockFn>("nvmlDeviceGetClockInfo");
    reasons_ = Sym<ReasonsFn>("nvmlDeviceGetCurrentClocksEventReasons");
    if (!reasons_) reasons_ = Sym<ReasonsFn>("nvmlDeviceGetCurrentClocksThrottleReasons");
    ecc_ = Sym<EccFn>("nvmlDeviceGetTotalEccErrors");
    pcie_ = Sym<ClockFn>("nvmlDeviceGetPcieThroughput");
    uuid_ = Sym<NameFn>("nvmlDeviceGetUUID");
    energy_ = Sym<ReasonsFn>("nvmlDeviceGetTotalEnergyConsumption");
    return init_ && shutdown_ && count_ && handle_by_index_;
  }

  int Init() override { return init_(); }
  int Shutdown() override { return shutdown_(); }
  std::string ErrorString(int code) override {
    const char* s = error_string_ ? error_string_(code) : nullptr;
    return s ? s : "NVML error " + std::to_string(code);
  }
  int DeviceCount(unsigned* n) override { return count_(n); }
  int HandleByIndex(unsigned i, Device* d) override { return handle_by_index_(i, d); }
  int Name(Device d, char* n, unsigned len) override { return Call(name_, d, n, len); }
  int Utilization(Device d, NvmlUtilization* u) override { return Call(util_, d, u); }
  int Memory(Device d, NvmlMemory* m) override {
    if (mem2_ != nullptr) {
      NvmlMemoryV2 v2{};
      v2.version = kNvmlMemoryV2Version;
      int rc = mem2_(d, &v2);
      if (rc == 0) {
        *m = NvmlMemory{v2.total, v2.free, v2.used};
        return rc;
      }
    }
    return Call(mem_, d, m);
  }
  int Temperature(Device d, unsigned* c) override { return Call(temp_, d, kNvmlTemperatureGpu, c); }
  int TemperatureThreshold(Device d, int t, unsigned* c) override {
    return Call(temp_threshold_, d, t, c);
  }
  int PowerUsage(Device d, unsigned* mw) override { return Call(power_, d, mw); }
  int PowerLimit(Device d, unsigned* mw) override { return Call(power_limit_, d, mw); }
  int Clock(Device d, int type, unsigned* mhz) override { return Call(clock_, d, type, mhz); }
  int ThrottleReasons(Device d, unsigned long long* r) override { return Call(reasons_, d, r); }
  int EccErrors(Device d, int e, int c, unsigned long long* n) override {
    return Call(ecc_, d, e, c, n);
  }
  int PcieThroughput(Device d, int counter, unsigned* v) override {
    return Call(pcie_, d, counter, v);
  }
  int Uuid(Device d, char* uuid, unsigned length) override { return Call(uuid_, d, uuid, length); }
  int TotalEnergy(Device d, unsigned long long* mj) override { return Call(energy_, d, mj); }

 private:
  template <typename F, typename... A>
  static int Call(F f, A... args) {
    return f ? f(args...) : kNvmlErrorFunctionNotFound;
  }

  void* handle_;
  InitFn init_ = nullptr, shutdown_ = nullptr;
  ErrorStringFn error_string_ = nullptr;
  CountFn count_ = nullptr;
  HandleFn handle_by_index_ = nullptr;
  NameFn name_ = nullptr, uuid_ = nullptr;
  UtilFn util_ = nullptr;
  MemFn mem_ = nullptr;
  Mem2Fn mem2_ = nullptr;
  TempFn temp_ = nullptr, temp_threshold_ = nullptr;
  UintFn power_ = nullptr, power_limit_ = nullptr;
  ClockFn clock_ = nullptr, pcie_ = nullptr;
  ReasonsFn reasons_ = nullptr, energy_ = nullptr;
  EccFn ecc_ = nullptr;
};

}  // namespace

StatusOr<std::unique_ptr<NvmlLibrary>> OpenSystemNvml(const std::string& path) {
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* err = dlerror();
    return Unavailable("NVML not available: dlopen({}) failed: {}", path, err ? err : "unknown");
  }
  auto lib = std::make_unique<DlopenNvml>(handle);
  if (!lib->Resolve()) return Unavailable("NVML library {} lacks required symbols", path);
  return std::unique_ptr<NvmlLibrary>(std::move(lib));
}

}  // namespace gpuhive::monitor::detail
