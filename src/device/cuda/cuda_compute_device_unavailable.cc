// A build without CUDA: there is no CUDA ComputeDevice.
#include "gpuhive/cuda_compute_device.h"

namespace gpuhive {

StatusOr<std::unique_ptr<ComputeDevice>> CreateCudaComputeDevice(const CudaComputeDeviceOptions& options) {
  return Unavailable("cuda:{}: this build has no CUDA support", options.device_index);
}

}  // namespace gpuhive
