// Device discovery: which devices this process can run on. Never fails: no driver or no device
// simply yields the CPU alone, and the reason is reported so start-up can log it once.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gpuhive/device.h"

namespace gpuhive {

struct DeviceInfo {
  DeviceId id;
  std::string name;             // "NVIDIA H100 80GB HBM3", or the CPU model
  uint64_t total_memory_bytes = 0;
  uint64_t free_memory_bytes = 0;
  int compute_capability_major = 0;  // CUDA only
  int compute_capability_minor = 0;
  int multiprocessor_count = 0;
};

struct DiscoveryResult {
  std::vector<DeviceInfo> gpus;  // empty when no usable GPU
  DeviceInfo cpu;
  std::string gpu_unavailable_reason;  // set when gpus is empty: "no CUDA driver", "no device", ...
};

// Probes CUDA (when built with it) and the host. Safe to call more than once.
DiscoveryResult DiscoverDevices();

// True when this binary was built with the CUDA backend.
bool BuiltWithCuda();

}  // namespace gpuhive
