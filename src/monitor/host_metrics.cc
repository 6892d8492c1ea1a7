#include "gpuhive/monitor/host_metrics.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <utility>
#include <string>

namespace gpuhive::monitor {

namespace {

std::optional<uint64_t> MeminfoField(const std::string& text, const char* key) {
  size_t pos = text.find(key);
  if (pos == std::string::npos) return std::nullopt;
  unsigned long long kib = 0;
  if (std::sscanf(text.c_str() + pos + std::strlen(key), " %llu", &kib) != 1) return std::nullopt;
  return static_cast<uint64_t>(kib) * 1024;
}

}  // namespace

HostSample ReadHostSample() {
  HostSample s;
  {
    std::ifstream statm("/proc/self/statm");
    unsigned long long size = 0, resident = 0;
    if (statm >> size >> resident) {
      long page = sysconf(_SC_PAGESIZE);
      if (page > 0) s.process_rss_bytes = resident * static_cast<uint64_t>(page);
    }
  }
  std::ifstream status("/proc/self/status");
  if (status) {
    std::string text((std::istreambuf_iterator<char>(status)), std::istreambuf_iterator<char>());
    s.process_peak_rss_bytes = MeminfoField(text, "VmHWM:");
  }
  rusage ru{};
  if (getrusage(RUSAGE_SELF, &ru) == 0) {
    s.process_cpu_seconds = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec +
                            ru.ru_stime.tv_usec * 1e-6;
  }
  std::ifstream meminfo("/proc/meminfo");
  if (meminfo) {
    std::string text((std::istreambuf_iterator<char>(meminfo)), std::istreambuf_iterator<char>());
    s.host_memory_total_bytes = MeminfoField(text, "MemTotal:");
    s.host_memory_available_bytes = MeminfoField(text, "MemAvailable:");
  }
  return s;
}

// Busy and total jiffies of all CPUs together, from the first line of /proc/stat.
std::optional<std::pair<uint64_t, uint64_t>> ReadCpuJiffies() {
  std::ifstream stat("/proc/stat");
  std::string cpu;
  uint64_t v[8] = {};
  if (!(stat >> cpu) || cpu != "cpu") return std::nullopt;
  for (uint64_t& x : v) {
    if (!(stat >> x)) return std::nullopt;
  }
  // user nice system idle iowait irq softirq steal
  const uint64_t idle = v[3] + v[4];
  uint64_t total = 0;
  for (uint64_t x : v) total += x;
  return std::make_pair(total - idle, total);
}

void InstallHostMetrics(Registry* registry, const GpuhiveMetrics& m) {
  if (m.nv_cpu_utilization != nullptr) {
    // Triton's CPU figures: utilization since the previous scrape, memory used = total - available.
    Gauge* util = m.nv_cpu_utilization->Labels({});
    Gauge* nv_total = m.nv_cpu_memory_total_bytes->Labels({});
    Gauge* nv_used = m.nv_cpu_memory_used_bytes->Labels({});
    auto last = std::make_shared<std::pair<uint64_t, uint64_t>>(ReadCpuJiffies().value_or(std::make_pair(0, 0)));
    auto last_mu = std::make_shared<std::mutex>();
    registry->AddCollectHook([util, nv_total, nv_used, last, last_mu] {
      if (auto now = ReadCpuJiffies()) {
        std::lock_guard lock(*last_mu);
        const uint64_t dt = now->second - last->second;
        if (now->second > last->second) util->Set(static_cast<double>(now->first - last->first) / static_cast<double>(dt));
        *last = *now;
      }
      HostSample s = ReadHostSample();
      if (s.host_memory_total_bytes) nv_total->Set(static_cast<double>(*s.host_memory_total_bytes));
      if (s.host_memory_total_bytes && s.host_memory_available_bytes) {
        nv_used->Set(static_cast<double>(*s.host_memory_total_bytes - *s.host_memory_available_bytes));
      }
    });
  }
  Gauge* rss = m.process_resident_memory_bytes->Labels({});
  Counter* cpu = m.process_cpu_seconds_total->Labels({});
  Gauge* total = m.host_memory_total_bytes->Labels({});
  Gauge* avail = m.host_memory_available_bytes->Labels({});
  registry->AddCollectHook([rss, cpu, total, avail] {
    HostSample s = ReadHostSample();
    if (s.process_rss_bytes) rss->Set(static_cast<double>(*s.process_rss_bytes));
    if (s.process_cpu_seconds) cpu->Set(*s.process_cpu_seconds);
    if (s.host_memory_total_bytes) total->Set(static_cast<double>(*s.host_memory_total_bytes));
    if (s.host_memory_available_bytes)
      avail->Set(static_cast<double>(*s.host_memory_available_bytes));
  });
}

}  // namespace gpuhive::monitor
