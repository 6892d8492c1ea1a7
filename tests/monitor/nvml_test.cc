#include "gpuhive/monitor/nvml.h"

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <thread>

#include "monitor/nvml_library.h"

namespace gpuhive::monitor {
namespace {

using detail::kNvmlErrorGpuIsLost;
using detail::kNvmlErrorNotSupported;
using detail::kNvmlSuccess;

// One fake GPU per entry; a field set to nullopt answers NOT_SUPPORTED.
struct FakeGpu {
  std::optional<std::string> name = "Fake H100";
  std::optional<detail::NvmlUtilization> util = detail::NvmlUtilization{75, 40};
  std::optional<detail::NvmlMemory> mem = detail::NvmlMemory{80ull << 30, 60ull << 30, 20ull << 30};
  std::optional<unsigned> temp = 61;
  std::optional<unsigned> slowdown = 90;
  std::optional<unsigned> power_mw = 250500;
  std::optional<unsigned> limit_mw = 700000;
  std::optional<unsigned> sm_mhz = 1980;
  std::optional<unsigned> mem_mhz = 2619;
  std::optional<unsigned long long> reasons = 0;
  std::optional<unsigned long long> ecc_corr = 3;
  std::optional<unsigned long long> ecc_uncorr = 0;
  std::optional<unsigned> tx_kbps = 1000;
  std::optional<unsigned> rx_kbps = 2000;
  std::optional<std::string> uuid = "GPU-5a1c0de0-0000-4000-8000-000000000001";
  std::optional<unsigned long long> energy_mj = 1'000'000;
  bool lost = false;
};

struct FakeState {
  std::vector<FakeGpu> gpus;
  int init_rc = kNvmlSuccess;
  int inits = 0, shutdowns = 0;
};

class FakeNvml : public detail::NvmlLibrary {
 public:
  explicit FakeNvml(FakeState* st) : st_(st) {}
  int Init() override { ++st_->inits; return st_->init_rc; }
  int Shutdown() override { ++st_->shutdowns; return kNvmlSuccess; }
  std::string ErrorString(int code) override { return "fake error " + std::to_string(code); }
  int DeviceCount(unsigned* n) override { *n = static_cast<unsigned>(st_->gpus.size()); return 0; }
  int HandleByIndex(unsigned i, Device* d) override {
    if (i >= st_->gpus.size()) return 2;
    *d = &st_->gpus[i];
    return kNvmlSuccess;
  }
  template <typename T, typename U>
  static int Get(Device d, std::optional<T> FakeGpu::*field, U* out) {
    FakeGpu* g = static_cast<FakeGpu*>(d);
    if (g->lost) return kNvmlErrorGpuIsLost;
    if (!(g->*field)) return kNvmlErrorNotSupported;
    *out = *(g->*field);
    return kNvmlSuccess;
  }
  int Name(Device d, char* n, unsigned len) override {
    std::string s;
    int rc = Get(d, &FakeGpu::name, &s);
    if (rc == kNvmlSuccess) std::snprintf(n, len, "%s", s.c_str());
    return rc;
  }
  int Utilization(Device d, detail::NvmlUtilization* u) override { return Get(d, &FakeGpu::util, u); }
  int Memory(Device d, detail::NvmlMemory* m) override { return Get(d, &FakeGpu::mem, m); }
  int Temperature(Device d, unsigned* c) override { return Get(d, &FakeGpu::temp, c); }
  int TemperatureThreshold(Device d, int t, unsigned* c) override {
    EXPECT_EQ(t, detail::kNvmlTemperatureThresholdSlowdown);
    return Get(d, &FakeGpu::slowdown, c);
  }
  int PowerUsage(Device d, unsigned* mw) override { return Get(d, &FakeGpu::power_mw, mw); }
  int PowerLimit(Device d, unsigned* mw) override { return Get(d, &FakeGpu::limit_mw, mw); }
  int Clock(Device d, int type, unsigned* mhz) override {
    return type == detail::kNvmlClockSm ? Get(d, &FakeGpu::sm_mhz, mhz) : Get(d, &FakeGpu::mem_mhz, mhz);
  }
  int ThrottleReasons(Device d, unsigned long long* r) override { return Get(d, &FakeGpu::reasons, r); }
  int EccErrors(Device d, int e, int c, unsigned long long* n) override {
    EXPECT_EQ(c, detail::kNvmlVolatileEcc);
    return e == detail::kNvmlMemoryErrorCorrected ? Get(d, &FakeGpu::ecc_corr, n)
                                                  : Get(d, &FakeGpu::ecc_uncorr, n);
  }
  int PcieThroughput(Device d, int counter, unsigned* v) override {
    return counter == detail::kNvmlPcieTxBytes ? Get(d, &FakeGpu::tx_kbps, v) : Get(d, &FakeGpu::rx_kbps, v);
  }
  int Uuid(Device d, char* u, unsigned len) override {
    std::string s;
    int rc = Get(d, &FakeGpu::uuid, &s);
    if (rc == kNvmlSuccess) std::snprintf(u, len, "%s", s.c_str());
    return rc;
  }
  int TotalEnergy(Device d, unsigned long long* mj) override { return Get(d, &FakeGpu::energy_mj, mj); }

 private:
  FakeState* st_;
};

TEST(NvmlTest, MissingLibraryIsUnavailableNotACrash) {
  NvmlOptions o;
  o.library_path = "libnvidia-ml-does-not-exist.so.1";
  auto m = NvmlMonitor::Create(o);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kUnavailable);
}

TEST(NvmlTest, SystemNvmlEitherWorksOrReportsUnavailable) {
  auto m = NvmlMonitor::Create(NvmlOptions{});
  if (m.ok()) {
    auto samples = (*m)->Poll();
    EXPECT_EQ(samples.size(), (*m)->device_count());
  } else {
    EXPECT_EQ(m.status().code(), StatusCode::kUnavailable) << m.status().ToString();
  }
}

TEST(NvmlTest, InitFailureIsUnavailable) {
  FakeState st;
  st.init_rc = 9;  // NVML_ERROR_DRIVER_NOT_LOADED
  auto m = NvmlMonitor::CreateWithLibrary(std::make_unique<FakeNvml>(&st), NvmlOptions{});
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(m.status().message().find("fake error 9"), std::string::npos);
}

TEST(NvmlTest, FieldMappingAndUnits) {
  FakeState st;
  st.gpus.resize(1);
  Registry reg;
  auto metrics = RegisterGpuhiveMetrics(&reg);
  ASSERT_TRUE(metrics.ok());
  NvmlOptions o;
  o.metrics = &*metrics;
  {
    auto m = NvmlMonitor::CreateWithLibrary(std::make_unique<FakeNvml>(&st), o);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    auto samples = (*m)->Poll();
    ASSERT_EQ(samples.size(), 1u);
    const GpuSample& s = samples[0];
    EXPECT_EQ(s.name, "Fake H100");
    EXPECT_DOUBLE_EQ(*s.utilization_ratio, 0.75);
    EXPECT_EQ(*s.memory_used_bytes, 20ull << 30);
    EXPECT_DOUBLE_EQ(*s.temperature_celsius, 61);
    EXPECT_DOUBLE_EQ(*s.power_watts, 250.5);
    EXPECT_DOUBLE_EQ(*s.power_limit_watts, 700);
    EXPECT_DOUBLE_EQ(*s.sm_clock_hertz, 1980e6);
    EXPECT_DOUBLE_EQ(*s.mem_clock_hertz, 2619e6);
    EXPECT_DOUBLE_EQ(*s.pcie_tx_bytes_per_second, 1024000);
    EXPECT_EQ(s.health, GpuHealth::kOk);
    std::string text = reg.Expose();
    EXPECT_NE(text.find("gpuhive_gpu_power_watts{gpu=\"0\"} 250.5\n"), std::string::npos) << text;
    EXPECT_NE(text.find("gpuhive_gpu_clock_hertz{gpu=\"0\",clock=\"sm\"} 1980000000\n"), std::string::npos) << text;
    EXPECT_NE(text.find("gpuhive_gpu_ecc_errors_total{gpu=\"0\",type=\"corrected\"} 3\n"), std::string::npos);
    EXPECT_NE(text.find("gpuhive_gpu_throttle{gpu=\"0\",reason=\"hw_slowdown\"} 0\n"), std::string::npos);
    EXPECT_NE(text.find("gpuhive_gpu_health{gpu=\"0\",state=\"ok\"} 1\n"), std::string::npos);
    EXPECT_NE(text.find("gpuhive_gpu_memory_used_bytes{gpu=\"0\"} 21474836480\n"), std::string::npos);
    EXPECT_NE(text.find("gpuhive_gpu_pcie_bytes_per_second{gpu=\"0\",direction=\"rx\"} 2048000\n"),
              std::string::npos);
  }
  EXPECT_EQ(st.inits, 1);
  EXPECT_EQ(st.shutdowns, 1);
}

// Triton's GPU families: names, types and the gpu_uuid label as Triton exports them; energy counts
// from the monitor's start, in joules.
TEST(NvmlTest, TritonGpuMetricsByUuid) {
  FakeState st;
  st.gpus.resize(1);
  Registry reg;
  auto metrics = RegisterGpuhiveMetrics(&reg);
  ASSERT_TRUE(metrics.ok());
  NvmlOptions o;
  o.metrics = &*metrics;
  auto m = NvmlMonitor::CreateWithLibrary(std::make_unique<FakeNvml>(&st), o);
  ASSERT_TRUE(m.ok());
  (*m)->Poll();
  st.gpus[0].energy_mj = 1'250'000;  // 250 J later
  (*m)->Poll();
  const std::string text = reg.Expose();
  const std::string l = "{gpu_uuid=\"GPU-5a1c0de0-0000-4000-8000-000000000001\"}";
  for (const char* gauge : {"nv_gpu_utilization", "nv_gpu_memory_total_bytes", "nv_gpu_memory_used_bytes",
                            "nv_gpu_power_usage", "nv_gpu_power_limit"}) {
    EXPECT_NE(text.find(std::string("# TYPE ") + gauge + " gauge\n"), std::string::npos) << gauge;
    EXPECT_NE(text.find(std::string(gauge) + l + " "), std::string::npos) << gauge << "\n" << text;
  }
  EXPECT_NE(text.find("# TYPE nv_energy_consumption counter\n"), std::string::npos);
  EXPECT_NE(text.find("nv_energy_consumption" + l + " 250\n"), std::string::npos) << text;
  EXPECT_NE(text.find("nv_gpu_utilization" + l + " 0.75\n"), std::string::npos) << text;
  EXPECT_NE(text.find("nv_gpu_power_usage" + l + " 250.5\n"), std::string::npos) << text;
  EXPECT_NE(text.find("nv_gpu_memory_used_bytes" + l + " 21474836480\n"), std::string::npos) << text;
}

TEST(NvmlTest, AbsentFieldsAreNotReportedAsZero) {
  FakeState st;
  st.gpus.resize(1);
  st.gpus[0].power_mw.reset();
  st.gpus[0].temp.reset();
  st.gpus[0].reasons.reset();
  st.gpus[0].ecc_corr.reset();
  Registry reg;
  auto metrics = RegisterGpuhiveMetrics(&reg);
  ASSERT_TRUE(metrics.ok());
  NvmlOptions o;
  o.metrics = &*metrics;
  auto m = NvmlMonitor::CreateWithLibrary(std::make_unique<FakeNvml>(&st), o);
  ASSERT_TRUE(m.ok());
  auto s = (*m)->Poll()[0];
  EXPECT_FALSE(s.power_watts.has_value());
  EXPECT_FALSE(s.temperature_celsius.has_value());
  EXPECT_FALSE(s.throttle_reasons.has_value());
  EXPECT_TRUE(s.power_limit_watts.has_value());
  std::string text = reg.Expose();
  EXPECT_EQ(text.find("gpuhive_gpu_power_watts{"), std::string::npos) << text;
  EXPECT_EQ(text.find("gpuhive_gpu_temperature_celsius{"), std::string::npos);
  EXPECT_EQ(text.find("gpuhive_gpu_throttle{"), std::string::npos);
  EXPECT_EQ(text.find("type=\"corrected\""), std::string::npos);
  EXPECT_NE(text.find("gpuhive_gpu_power_limit_watts{gpu=\"0\"} 700\n"), std::string::npos);
  // A field that comes back is exported again.
  st.gpus[0].power_mw = 1000;
  (*m)->Poll();
  EXPECT_NE(reg.Expose().find("gpuhive_gpu_power_watts{gpu=\"0\"} 1\n"), std::string::npos);
}

TEST(NvmlTest, HealthDerivation) {
  HealthThresholds t;
  GpuSample s;
  EXPECT_EQ(DeriveGpuHealth(s, t), GpuHealth::kOk);
  s.throttle_reasons = throttle::kGpuIdle | throttle::kApplicationsClocks;
  EXPECT_EQ(DeriveGpuHealth(s, t), GpuHealth::kOk);
  s.throttle_reasons = throttle::kSwPowerCap;
  EXPECT_EQ(DeriveGpuHealth(s, t), GpuHealth::kThrottledPower);
  s.throttle_reasons = throttle::kSwPowerCap | throttle::kSwThermal;
  EXPECT_EQ(DeriveGpuHealth(s, t), GpuHealth::kThrottledThermal);
  s.throttle_reasons = throttle::kHwPowerBrake | throttle::kSwThermal;
  EXPECT_EQ(DeriveGpuHealth(s, t), GpuHealth::kHwSlowdown);
  s.ecc_uncorrected_errors = 1;
  EXPECT_EQ(DeriveGpuHealth(s, t), GpuHealth::kEccErrors);
  s.lost = true;
  EXPECT_EQ(DeriveGpuHealth(s, t), GpuHealth::kLost);

  GpuSample hot;
  hot.temperature_celsius = 89;
  EXPECT_EQ(DeriveGpuHealth(hot, t), GpuHealth::kOk);  // default 90 C without a driver threshold
  hot.slowdown_temperature_celsius = 90;                // driver threshold minus 2 C margin
  EXPECT_EQ(DeriveGpuHealth(hot, t), GpuHealth::kThrottledThermal);
  hot.temperature_celsius = 87;
  EXPECT_EQ(DeriveGpuHealth(hot, t), GpuHealth::kOk);
}

TEST(NvmlTest, LostGpuAndHealthGauge) {
  FakeState st;
  st.gpus.resize(2);
  st.gpus[1].reasons = throttle::kHwThermal;
  Registry reg;
  auto metrics = RegisterGpuhiveMetrics(&reg);
  ASSERT_TRUE(metrics.ok());
  NvmlOptions o;
  o.metrics = &*metrics;
  auto m = NvmlMonitor::CreateWithLibrary(std::make_unique<FakeNvml>(&st), o);
  ASSERT_TRUE(m.ok());
  auto s = (*m)->Poll();
  EXPECT_EQ(s[1].health, GpuHealth::kThrottledThermal);
  st.gpus[0].lost = true;
  s = (*m)->Poll();
  EXPECT_EQ(s[0].health, GpuHealth::kLost);
  EXPECT_FALSE(s[0].temperature_celsius.has_value());
  std::string text = reg.Expose();
  EXPECT_NE(text.find("gpuhive_gpu_health{gpu=\"0\",state=\"lost\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("gpuhive_gpu_health{gpu=\"0\",state=\"ok\"} 0\n"), std::string::npos);
  EXPECT_EQ(text.find("gpuhive_gpu_temperature_celsius{gpu=\"0\"}"), std::string::npos);
  EXPECT_NE(text.find("gpuhive_gpu_health{gpu=\"1\",state=\"throttled-thermal\"} 1\n"), std::string::npos);
}

TEST(NvmlTest, PollerThreadUpdatesLatest) {
  FakeState st;
  st.gpus.resize(1);
  NvmlOptions o;
  o.poll_interval_ms = 5;
  auto m = NvmlMonitor::CreateWithLibrary(std::make_unique<FakeNvml>(&st), o);
  ASSERT_TRUE(m.ok());
  (*m)->Start();
  for (int i = 0; i < 400 && (*m)->Latest().empty(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_EQ((*m)->Latest().size(), 1u);
  (*m)->Stop();
  o.poll_interval_ms = 0;
  EXPECT_FALSE(NvmlMonitor::CreateWithLibrary(std::make_unique<FakeNvml>(&st), o).ok());
}

}  // namespace
}  // namespace gpuhive::monitor
