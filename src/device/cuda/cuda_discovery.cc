#include "device/cuda/cuda_discovery.h"

#include <cuda_runtime_api.h>

#include <fmt/format.h>

namespace gpuhive::cuda {

std::vector<DeviceInfo> DiscoverCudaDevices(std::string* reason) {
  std::vector<DeviceInfo> out;
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    *reason = fmt::format("CUDA unavailable: {} ({})", cudaGetErrorString(err), cudaGetErrorName(err));
    cudaGetLastError();  // clear the sticky error so later probes start clean
    return out;
  }
  if (count == 0) {
    *reason = "no CUDA device";
    return out;
  }
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
    DeviceInfo info;
    info.id = DeviceId{DeviceType::kCuda, i};
    info.name = prop.name;
    info.total_memory_bytes = prop.totalGlobalMem;
    info.compute_capability_major = prop.major;
    info.compute_capability_minor = prop.minor;
    info.multiprocessor_count = prop.multiProcessorCount;
    size_t free_b = 0, total_b = 0;
    if (cudaSetDevice(i) == cudaSuccess && cudaMemGetInfo(&free_b, &total_b) == cudaSuccess) {
      info.free_memory_bytes = free_b;
    }
    out.push_back(info);
  }
  if (out.empty()) *reason = "no usable CUDA device";
  return out;
}

}  // namespace gpuhive::cuda
