#include <unistd.h>

#include <fstream>
#include <string>

#include "device/cuda/cuda_discovery.h"
#include "gpuhive/device_discovery.h"

namespace gpuhive {
namespace {
DeviceInfo HostInfo() {
  DeviceInfo info;
  info.id = CpuDevice();
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) == 0) {
      auto colon = line.find(':');
      if (colon != std::string::npos) info.name = line.substr(colon + 2);
      break;
    }
  }
  if (info.name.empty()) info.name = "cpu";
  long pages = sysconf(_SC_PHYS_PAGES), avail = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0) info.total_memory_bytes = static_cast<uint64_t>(pages) * page;
  if (avail > 0 && page > 0) info.free_memory_bytes = static_cast<uint64_t>(avail) * page;
  info.multiprocessor_count = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  return info;
}
}  // namespace

bool BuiltWithCuda() {
#ifdef GPUHIVE_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

DiscoveryResult DiscoverDevices() {
  DiscoveryResult r;
  r.cpu = HostInfo();
#ifdef GPUHIVE_HAVE_CUDA
  r.gpus = cuda::DiscoverCudaDevices(&r.gpu_unavailable_reason);
#else
  r.gpu_unavailable_reason = "built without CUDA";
#endif
  return r;
}

}  // namespace gpuhive
