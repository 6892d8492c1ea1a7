// CUDA device enumeration (internal to the device layer).
#pragma once

#include <string>
#include <vector>

#include "gpuhive/device_discovery.h"

namespace gpuhive::cuda {
// Every CUDA device the runtime can open; empty with *reason set when none (no driver, no device).
std::vector<DeviceInfo> DiscoverCudaDevices(std::string* reason);
}  // namespace gpuhive::cuda
