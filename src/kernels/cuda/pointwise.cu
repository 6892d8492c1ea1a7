// Pointwise CUDA kernels outside the float32 elementwise chain: Erf, Pow, the comparisons
// (Equal, Less, Greater -> bool), Not and Where, with numpy broadcasting through per-operand
// strides, over float32, int64, int32 and bool values.
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/launchers.h"

namespace gpuhive::cuda_kernels {
namespace {

constexpr int kThreads = 256;

template <typename T>
__device__ __forceinline__ T Load(const void* p, int64_t i) {
  return static_cast<const T*>(p)[i];
}

// Operand `o`'s value at offset i as a double (exact for int32, for int64 up to 2^53, float, bool).
__device__ __forceinline__ double Value(int32_t type, const void* p, int64_t i) {
  switch (type) {
    case kPwF32: return Load<float>(p, i);
    case kPwI64: return static_cast<double>(Load<int64_t>(p, i));
    case kPwI32: return Load<int32_t>(p, i);
    default: return Load<uint8_t>(p, i) != 0 ? 1.0 : 0.0;
  }
}

// Comparisons of int64 read as int64 (no rounding through double).
__device__ __forceinline__ int Compare(int32_t type, const void* a, int64_t ia, const void* b, int64_t ib) {
  if (type == kPwI64) {
    const int64_t x = Load<int64_t>(a, ia), y = Load<int64_t>(b, ib);
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  const double x = Value(type, a, ia), y = Value(type, b, ib);
  return x < y ? -1 : (x > y ? 1 : (x == y ? 0 : 2));  // 2: unordered (NaN)
}

__global__ void PointwiseKernel(const PointwiseParams p, void* __restrict__ y) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < p.n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t off[3] = {0, 0, 0};
    int64_t rem = i;
    for (int d = p.rank - 1; d >= 0; --d) {
      const int64_t c = rem % p.out_dims[d];
      rem /= p.out_dims[d];
      for (int o = 0; o < p.num_inputs; ++o) off[o] += c * p.stride[o][d];
    }
    switch (p.code) {
      case kPwErf: static_cast<float*>(y)[i] = erff(Load<float>(p.in[0], off[0])); break;
      case kPwPow: static_cast<float*>(y)[i] = powf(Load<float>(p.in[0], off[0]), Load<float>(p.in[1], off[1])); break;
      case kPwEqual:
        static_cast<uint8_t*>(y)[i] = Compare(p.type, p.in[0], off[0], p.in[1], off[1]) == 0;
        break;
      case kPwLess:
        static_cast<uint8_t*>(y)[i] = Compare(p.type, p.in[0], off[0], p.in[1], off[1]) == -1;
        break;
      case kPwGreater:
        static_cast<uint8_t*>(y)[i] = Compare(p.type, p.in[0], off[0], p.in[1], off[1]) == 1;
        break;
      case kPwNot: static_cast<uint8_t*>(y)[i] = Load<uint8_t>(p.in[0], off[0]) == 0; break;
      case kPwWhere: {
        const bool c = Load<uint8_t>(p.in[0], off[0]) != 0;
        const void* src = c ? p.in[1] : p.in[2];
        const int64_t o = c ? off[1] : off[2];
        switch (p.type) {
          case kPwF32: static_cast<float*>(y)[i] = Load<float>(src, o); break;
          case kPwI64: static_cast<int64_t*>(y)[i] = Load<int64_t>(src, o); break;
          case kPwI32: static_cast<int32_t*>(y)[i] = Load<int32_t>(src, o); break;
          default: static_cast<uint8_t*>(y)[i] = Load<uint8_t>(src, o); break;
        }
        break;
      }
      default: break;
    }
  }
}

}  // namespace

cudaError_t LaunchPointwise(const PointwiseParams& p, void* y, cudaStream_t stream) {
  if (p.n == 0) return cudaSuccess;
  int64_t blocks = (p.n + kThreads - 1) / kThreads;
  if (blocks > 65535LL * 8) blocks = 65535LL * 8;
  PointwiseKernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(p, y);
  return cudaGetLastError();
}

}  // namespace gpuhive::cuda_kernels
