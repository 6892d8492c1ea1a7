// Host and process metrics read from /proc on every scrape.
#pragma once

#include <cstdint>
#include <optional>

#include "gpuhive/monitor/metric_names.h"

namespace gpuhive::monitor {

struct HostSample {
  std::optional<uint64_t> process_rss_bytes;
  // The process's peak resident memory (VmHWM). Not getrusage's ru_maxrss, which carries the peak
  // of the image before exec over (a process started by a large parent reports the parent's).
  std::optional<uint64_t> process_peak_rss_bytes;
  std::optional<double> process_cpu_seconds;  // user + system
  std::optional<uint64_t> host_memory_total_bytes;
  std::optional<uint64_t> host_memory_available_bytes;
};

// Reads the current values; a field that cannot be read stays empty. Thread safe.
HostSample ReadHostSample();

// Registers a collect hook on `registry` that refreshes the host gauges of `metrics` on scrape.
// `registry` and the families must outlive every later Expose().
void InstallHostMetrics(Registry* registry, const GpuhiveMetrics& metrics);

}  // namespace gpuhive::monitor
