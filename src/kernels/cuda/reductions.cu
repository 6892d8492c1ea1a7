// Row-wise CUDA kernels: softmax, layer normalization and axis reductions. Each works on a tensor
// viewed as [outer, axis, inner]; when inner == 1 a block reduces one contiguous row, otherwise
// one thread walks the (strided) axis of one (outer, inner) position.
#include <cuda_runtime.h>

#include <cfloat>
#include <cstdint>

#include "kernels/cuda/launchers.h"

namespace gpuhive::cuda_kernels {
namespace {

constexpr int kBlock = 256;

__device__ __forceinline__ float WarpSum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float WarpMax(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ __forceinline__ float WarpMin(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fminf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// kind: 0 sum, 2 max, 3 min. Every thread of the block gets the result.
__device__ float BlockReduce(float v, int kind) {
  __shared__ float partial[kBlock / 32];
  __shared__ float result;
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = kind == 2 ? WarpMax(v) : kind == 3 ? WarpMin(v) : WarpSum(v);
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  if (warp == 0) {
    float init = kind == 2 ? -FLT_MAX : kind == 3 ? FLT_MAX : 0.f;
    float w = lane < static_cast<int>(blockDim.x / 32) ? partial[lane] : init;
    w = kind == 2 ? WarpMax(w) : kind == 3 ? WarpMin(w) : WarpSum(w);
    if (lane == 0) result = w;
  }
  __syncthreads();
  float r = result;
  __syncthreads();  // partial/result may be reused by the next call
  return r;
}

__global__ void SoftmaxRowKernel(const float* __restrict__ x, float* __restrict__ y, int64_t axis, bool log) {
  const float* row = x + blockIdx.x * axis;
  float* out = y + blockIdx.x * axis;
  float m = -FLT_MAX;
  for (int64_t j = threadIdx.x; j < axis; j += blockDim.x) m = fmaxf(m, row[j]);
  m = BlockReduce(m, 2);
  float s = 0.f;
  for (int64_t j = threadIdx.x; j < axis; j += blockDim.x) s += expf(row[j] - m);
  s = BlockReduce(s, 0);
  if (log) {
    float ls = logf(s);
    for (int64_t j = threadIdx.x; j < axis; j += blockDim.x) out[j] = row[j] - m - ls;
  } else {
    float inv = 1.f / s;
    for (int64_t j = threadIdx.x; j < axis; j += blockDim.x) out[j] = expf(row[j] - m) * inv;
  }
}

__global__ void SoftmaxStridedKernel(const float* __restrict__ x, float* __restrict__ y, int64_t outer, int64_t axis,
                                     int64_t inner, bool log) {
  int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (t >= outer * inner) return;
  int64_t o = t / inner, i = t % inner;
  const float* base = x + o * axis * inner + i;
  float* out = y + o * axis * inner + i;
  float m = -FLT_MAX;
  for (int64_t j = 0; j < axis; ++j) m = fmaxf(m, base[j * inner]);
  float s = 0.f;
  for (int64_t j = 0; j < axis; ++j) s += expf(base[j * inner] - m);
  float ls = logf(s), inv = 1.f / s;
  for (int64_t j = 0; j < axis; ++j) {
    float v = base[j * inner] - m;
    out[j * inner] = log ? v - ls : expf(v) * inv;
  }
}

__global__ void LayerNormKernel(const float* __restrict__ x, const float* __restrict__ scale,
                                const float* __restrict__ bias, float* __restrict__ y, int64_t cols, float eps) {
  const float* row = x + blockIdx.x * cols;
  float* out = y + blockIdx.x * cols;
  float s = 0.f;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) s += row[j];
  float mean = BlockReduce(s, 0) / static_cast<float>(cols);
  float v = 0.f;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
    float d = row[j] - mean;
    v += d * d;
  }
  float var = BlockReduce(v, 0) / static_cast<float>(cols);
  float rstd = rsqrtf(var + eps);
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
    float r = (row[j] - mean) * rstd * scale[j];
    out[j] = bias != nullptr ? r + bias[j] : r;
  }
}

__global__ void ReduceRowKernel(int kind, const float* __restrict__ x, float* __restrict__ y, int64_t axis) {
  const float* row = x + blockIdx.x * axis;
  int op = kind == 1 ? 0 : kind;
  float acc = op == 2 ? -FLT_MAX : op == 3 ? FLT_MAX : 0.f;
  for (int64_t j = threadIdx.x; j < axis; j += blockDim.x) {
    float v = row[j];
    acc = op == 2 ? fmaxf(acc, v) : op == 3 ? fminf(acc, v) : acc + v;
  }
  acc = BlockReduce(acc, op);
  if (threadIdx.x == 0) y[blockIdx.x] = kind == 1 ? acc / static_cast<float>(axis) : acc;
}

__global__ void ReduceStridedKernel(int kind, const float* __restrict__ x, float* __restrict__ y, int64_t outer,
                                    int64_t axis, int64_t inner) {
  int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (t >= outer * inner) return;
  int64_t o = t / inner, i = t % inner;
  const float* base = x + o * axis * inner + i;
  int op = kind == 1 ? 0 : kind;
  float acc = op == 2 ? -FLT_MAX : op == 3 ? FLT_MAX : 0.f;
  for (int64_t j = 0; j < axis; ++j) {
    float v = base[j * inner];
    acc = op == 2 ? fmaxf(acc, v) : op == 3 ? fminf(acc, v) : acc + v;
  }
  y[t] = kind == 1 ? acc / static_cast<float>(axis) : acc;
}

unsigned Blocks(int64_t n, int threads) { return static_cast<unsigned>((n + threads - 1) / threads); }

}  // namespace

cudaError_t LaunchSoftmax(const float* x, float* y, int64_t outer, int64_t axis, int64_t inner, bool log,
                          cudaStream_t stream) {
  if (outer * axis * inner == 0) return cudaSuccess;
  if (inner == 1) {
    SoftmaxRowKernel<<<static_cast<unsigned>(outer), kBlock, 0, stream>>>(x, y, axis, log);
  } else {
    SoftmaxStridedKernel<<<Blocks(outer * inner, kBlock), kBlock, 0, stream>>>(x, y, outer, axis, inner, log);
  }
  return cudaGetLastError();
}

cudaError_t LaunchLayerNorm(const float* x, const float* scale, const float* bias, float* y, int64_t rows,
                            int64_t cols, float epsilon, cudaStream_t stream) {
  if (rows * cols == 0) return cudaSuccess;
  LayerNormKernel<<<static_cast<unsigned>(rows), kBlock, 0, stream>>>(x, scale, bias, y, cols, epsilon);
  return cudaGetLastError();
}

cudaError_t LaunchReduce(int kind, const float* x, float* y, int64_t outer, int64_t axis, int64_t inner,
                         cudaStream_t stream) {
  if (outer * inner == 0) return cudaSuccess;
  if (inner == 1) {
    ReduceRowKernel<<<static_cast<unsigned>(outer), kBlock, 0, stream>>>(kind, x, y, axis);
  } else {
    ReduceStridedKernel<<<Blocks(outer * inner, kBlock), kBlock, 0, stream>>>(kind, x, y, outer, axis, inner);
  }
  return cudaGetLastError();
}

}  // namespace gpuhive::cuda_kernels
