// A CUDA GPU as a ComputeDevice (compute_device.h): device memory the host never dereferences,
// prioritized non-blocking streams, cudaMemcpyAsync copies, events, and host callbacks run in
// stream order on the device's callback thread (a cudaLaunchHostFunc callback may not call CUDA
// itself; the work it hands over, e.g. a copy engine's completion, may). The host cannot run
// kernels on it: models run on it through the CUDA execution backend (execution.h).
#pragma once

#include <memory>

#include "gpuhive/compute_device.h"

namespace gpuhive {

struct CudaComputeDeviceOptions {
  int device_index = 0;
  // The upstream of the residency pool on this device.
  enum class Memory { kCudaMalloc, kCudaMallocAsync } memory = Memory::kCudaMalloc;
};

// Errors: kUnavailable without CUDA (a build without it, no driver, no such device).
StatusOr<std::unique_ptr<ComputeDevice>> CreateCudaComputeDevice(const CudaComputeDeviceOptions& options);

}  // namespace gpuhive
