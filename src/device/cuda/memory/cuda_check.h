// Internal: CUDA runtime and driver return codes as Status, carrying the call, file and line.
#pragma once

#include <cuda.h>
#include <cuda_runtime_api.h>

#include "gpuhive/status.h"

namespace gpuhive::memory_detail {

inline Status CudaError(cudaError_t err, const char* call, const char* file, int line) {
  if (err == cudaSuccess) return Status::OK();
  StatusCode code = err == cudaErrorMemoryAllocation ? StatusCode::kResourceExhausted : StatusCode::kInternal;
  if (err == cudaErrorNoDevice || err == cudaErrorInsufficientDriver || err == cudaErrorInvalidDevice) {
    code = StatusCode::kUnavailable;
  }
  return Status(code, fmt::format("{} failed: {} ({}) at {}:{}", call, cudaGetErrorString(err),
                                  static_cast<int>(err), file, line));
}

inline Status CuError(CUresult err, const char* call, const char* file, int line) {
  if (err == CUDA_SUCCESS) return Status::OK();
  StatusCode code = err == CUDA_ERROR_OUT_OF_MEMORY ? StatusCode::kResourceExhausted : StatusCode::kInternal;
  if (err == CUDA_ERROR_NOT_SUPPORTED || err == CUDA_ERROR_NO_DEVICE) code = StatusCode::kUnavailable;
  return Status(code, fmt::format("{} failed: CUresult {} at {}:{}", call, static_cast<int>(err), file, line));
}

}  // namespace gpuhive::memory_detail

#define GPUHIVE_CUDA_STATUS(call) ::gpuhive::memory_detail::CudaError((call), #call, __FILE__, __LINE__)
#define GPUHIVE_CU_STATUS(call) ::gpuhive::memory_detail::CuError((call), #call, __FILE__, __LINE__)
