// Cast between the element types the executor moves on the device (float32, float16, bfloat16,
// float64, int64, int32, uint8, int8, bool). Values pass through double: exact for every integer
// of int32's range and for every float type here; float -> integer truncates toward zero.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/launchers.h"

namespace gpuhive::cuda_kernels {
namespace {

constexpr int kThreads = 256;

template <typename T>
__device__ __forceinline__ double AsWide(T v) { return static_cast<double>(v); }
template <>
__device__ __forceinline__ double AsWide<__half>(__half v) { return static_cast<double>(__half2float(v)); }
template <>
__device__ __forceinline__ double AsWide<__nv_bfloat16>(__nv_bfloat16 v) {
  return static_cast<double>(__bfloat162float(v));
}
template <>
__device__ __forceinline__ double AsWide<bool>(bool v) { return v ? 1.0 : 0.0; }

template <typename T>
__device__ __forceinline__ T FromWide(double v) { return static_cast<T>(v); }
template <>
__device__ __forceinline__ __half FromWide<__half>(double v) { return __float2half_rn(static_cast<float>(v)); }
template <>
__device__ __forceinline__ __nv_bfloat16 FromWide<__nv_bfloat16>(double v) {
  return __float2bfloat16_rn(static_cast<float>(v));
}
template <>
__device__ __forceinline__ bool FromWide<bool>(double v) { return v != 0.0; }

template <typename S, typename D>
__global__ void CastKernel(const S* __restrict__ x, D* __restrict__ y, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    y[i] = FromWide<D>(AsWide<S>(x[i]));
  }
}

unsigned GridFor(int64_t n) {
  int64_t blocks = (n + kThreads - 1) / kThreads;
  if (blocks > 65535LL * 8) blocks = 65535LL * 8;
  return static_cast<unsigned>(blocks < 1 ? 1 : blocks);
}

template <typename S, typename D>
cudaError_t Launch(const void* x, void* y, int64_t n, cudaStream_t s) {
  CastKernel<S, D><<<GridFor(n), kThreads, 0, s>>>(static_cast<const S*>(x), static_cast<D*>(y), n);
  return cudaGetLastError();
}

// ONNX TensorProto.DataType codes.
template <typename S>
cudaError_t ToDst(const void* x, int dst, void* y, int64_t n, cudaStream_t s) {
  switch (dst) {
    case 1: return Launch<S, float>(x, y, n, s);
    case 2: return Launch<S, uint8_t>(x, y, n, s);
    case 3: return Launch<S, int8_t>(x, y, n, s);
    case 6: return Launch<S, int32_t>(x, y, n, s);
    case 7: return Launch<S, int64_t>(x, y, n, s);
    case 9: return Launch<S, bool>(x, y, n, s);
    case 10: return Launch<S, __half>(x, y, n, s);
    case 11: return Launch<S, double>(x, y, n, s);
    case 16: return Launch<S, __nv_bfloat16>(x, y, n, s);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace

bool CastSupported(int type) {
  switch (type) {
    case 1: case 2: case 3: case 6: case 7: case 9: case 10: case 11: case 16: return true;
    default: return false;
  }
}

cudaError_t LaunchCast(const void* x, int src, void* y, int dst, int64_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  switch (src) {
    case 1: return ToDst<float>(x, dst, y, n, stream);
    case 2: return ToDst<uint8_t>(x, dst, y, n, stream);
    case 3: return ToDst<int8_t>(x, dst, y, n, stream);
    case 6: return ToDst<int32_t>(x, dst, y, n, stream);
    case 7: return ToDst<int64_t>(x, dst, y, n, stream);
    case 9: return ToDst<bool>(x, dst, y, n, stream);
    case 10: return ToDst<__half>(x, dst, y, n, stream);
    case 11: return ToDst<double>(x, dst, y, n, stream);
    case 16: return ToDst<__nv_bfloat16>(x, dst, y, n, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace gpuhive::cuda_kernels
