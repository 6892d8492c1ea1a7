// Internal: CUDA runtime return codes as Status (call, file and line in the message). Included only
// by CUDA-enabled sources of the device, kernels and runtime layers.
#pragma once

#include <cuda_runtime_api.h>

#include <fmt/format.h>

#include "gpuhive/status.h"

namespace gpuhive::cuda {

inline StatusCode CudaErrorCode(cudaError_t err) {
  switch (err) {
    case cudaErrorMemoryAllocation:
      return StatusCode::kResourceExhausted;
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
    case cudaErrorInvalidDevice:
    case cudaErrorDevicesUnavailable:
      return StatusCode::kUnavailable;
    default:
      return StatusCode::kInternal;
  }
}

inline Status CudaCallStatus(cudaError_t err, const char* call, const char* file, int line) {
  if (err == cudaSuccess) return Status::OK();
  return Status(CudaErrorCode(err), fmt::format("{} failed: {} ({}) at {}:{}", call, cudaGetErrorString(err),
                                                cudaGetErrorName(err), file, line));
}

}  // namespace gpuhive::cuda

// Evaluates a cudaError_t-returning call and returns its Status from the enclosing function on error.
#define GH_CUDA_RETURN_IF_ERROR(call) \
  RETURN_IF_ERROR(::gpuhive::cuda::CudaCallStatus((call), #call, __FILE__, __LINE__))
#define GH_CUDA_STATUS(call) ::gpuhive::cuda::CudaCallStatus((call), #call, __FILE__, __LINE__)
