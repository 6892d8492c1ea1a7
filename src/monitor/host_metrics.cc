#include "gpuhive/monitor/host_metrics.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
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

void InstallHostMetrics(Registry* registry, const GpuhiveMetrics& m) {
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
