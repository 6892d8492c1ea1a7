// Internal: cuBLAS(Lt) and cuDNN return codes as Status, naming the call, file and line.
#pragma once

#include <cublasLt.h>
#include <cudnn.h>

#include <fmt/format.h>

#include "gpuhive/status.h"

namespace gpuhive::cuda {

inline Status CublasCallStatus(cublasStatus_t st, const char* call, const char* file, int line) {
  if (st == CUBLAS_STATUS_SUCCESS) return Status::OK();
  StatusCode code = StatusCode::kInternal;
  if (st == CUBLAS_STATUS_ALLOC_FAILED) code = StatusCode::kResourceExhausted;
  if (st == CUBLAS_STATUS_NOT_SUPPORTED || st == CUBLAS_STATUS_ARCH_MISMATCH) code = StatusCode::kUnimplemented;
  if (st == CUBLAS_STATUS_NOT_INITIALIZED) code = StatusCode::kUnavailable;
  if (st == CUBLAS_STATUS_INVALID_VALUE) code = StatusCode::kInvalidArgument;
  return Status(code, fmt::format("{} failed: {} ({}) at {}:{}", call, cublasLtGetStatusString(st),
                                  cublasLtGetStatusName(st), file, line));
}

inline Status CudnnCallStatus(cudnnStatus_t st, const char* call, const char* file, int line) {
  if (st == CUDNN_STATUS_SUCCESS) return Status::OK();
  StatusCode code = StatusCode::kInternal;
  // cuDNN 9 groups codes by thousands: 1xxx not initialized, 2xxx bad parameter, 3xxx not supported.
  int category = static_cast<int>(st) / 1000;
  if (category == 1) code = StatusCode::kUnavailable;
  if (category == 2) code = StatusCode::kInvalidArgument;
  if (category == 3) code = StatusCode::kUnimplemented;
  if (st == CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED) code = StatusCode::kResourceExhausted;
  return Status(code, fmt::format("{} failed: {} ({}) at {}:{}", call, cudnnGetErrorString(st), static_cast<int>(st),
                                  file, line));
}

}  // namespace gpuhive::cuda

#define GH_CUBLAS_RETURN_IF_ERROR(call) \
  RETURN_IF_ERROR(::gpuhive::cuda::CublasCallStatus((call), #call, __FILE__, __LINE__))
#define GH_CUDNN_RETURN_IF_ERROR(call) \
  RETURN_IF_ERROR(::gpuhive::cuda::CudnnCallStatus((call), #call, __FILE__, __LINE__))
