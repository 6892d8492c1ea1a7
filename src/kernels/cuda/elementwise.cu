// Elementwise CUDA kernels: fused float32 chains with numpy broadcasting, and float <-> 16-bit
// conversions.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/launchers.h"

namespace gpuhive::cuda_kernels {
namespace {

constexpr int kThreads = 256;

unsigned GridFor(int64_t n) {
  int64_t blocks = (n + kThreads - 1) / kThreads;
  if (blocks > 65535LL * 8) blocks = 65535LL * 8;
  return static_cast<unsigned>(blocks < 1 ? 1 : blocks);
}

__device__ __forceinline__ float ApplyOp(int code, float a, float b, float alpha, float beta) {
  switch (code) {
    case kOpSum:
    case kOpAdd: return a + b;
    case kOpMul: return a * b;
    case kOpSub: return a - b;
    case kOpDiv: return a / b;
    case kOpMax: return fmaxf(a, b);
    case kOpMin: return fminf(a, b);
    case kOpRelu: return a > 0.f ? a : 0.f;
    case kOpLeakyRelu: return a >= 0.f ? a : alpha * a;
    case kOpClip: return fminf(fmaxf(a, alpha), beta);
    case kOpSigmoid: return 1.f / (1.f + expf(-a));
    case kOpTanh: return tanhf(a);
    case kOpHardSwish: return a * fminf(fmaxf(a / 6.f + 0.5f, 0.f), 1.f);
    case kOpHardSigmoid: return fminf(fmaxf(alpha * a + beta, 0.f), 1.f);
    case kOpGeluErf: return 0.5f * a * (1.f + erff(a * 0.70710678118654752f));
    case kOpGeluTanh: return 0.5f * a * (1.f + tanhf(0.7978845608f * (a + 0.044715f * a * a * a)));
    case kOpSwish: return a / (1.f + expf(-a));
    case kOpElu: return a >= 0.f ? a : alpha * (expf(a) - 1.f);
    case kOpExp: return expf(a);
    case kOpLog: return logf(a);
    case kOpSqrt: return sqrtf(a);
    case kOpAbs: return fabsf(a);
    case kOpNeg: return -a;
    case kOpSquare: return a * a;
    case kOpLinear: return alpha * a + beta;
    default: return a;
  }
}

__device__ __forceinline__ bool IsBinary(int code) { return code <= kOpMin; }

__global__ void ChainKernel(const ChainParams p, float* __restrict__ y) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < p.n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t offset[kMaxOperands] = {};
    if (!p.all_contiguous) {
      int64_t rem = i;
      for (int d = p.rank - 1; d >= 0; --d) {
        int64_t idx = rem % p.out_dims[d];
        rem /= p.out_dims[d];
        for (int o = 0; o < p.num_operands; ++o) offset[o] += idx * p.stride[o][d];
      }
    }
    float v = p.operand[0][p.contiguous[0] ? i : offset[0]];
    int next = 1;
    for (int k = 0; k < p.num_ops; ++k) {
      float b = 0.f;
      if (IsBinary(p.code[k])) {
        b = p.operand[next][p.contiguous[next] ? i : offset[next]];
        ++next;
      }
      v = ApplyOp(p.code[k], v, b, p.alpha[k], p.beta[k]);
    }
    y[i] = v;
  }
}

__global__ void FloatToHalfKernel(const float* __restrict__ x, __half* __restrict__ y, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    y[i] = __float2half_rn(x[i]);
  }
}
__global__ void FloatToBf16Kernel(const float* __restrict__ x, __nv_bfloat16* __restrict__ y, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    y[i] = __float2bfloat16_rn(x[i]);
  }
}
__global__ void HalfToFloatKernel(const __half* __restrict__ x, float* __restrict__ y, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    y[i] = __half2float(x[i]);
  }
}
__global__ void Bf16ToFloatKernel(const __nv_bfloat16* __restrict__ x, float* __restrict__ y, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    y[i] = __bfloat162float(x[i]);
  }
}

}  // namespace

cudaError_t LaunchChain(const ChainParams& p, float* y, cudaStream_t stream) {
  if (p.n == 0) return cudaSuccess;
  ChainKernel<<<GridFor(p.n), kThreads, 0, stream>>>(p, y);
  return cudaGetLastError();
}

cudaError_t LaunchFloatToHalf(const float* x, void* y, bool to_bf16, int64_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  if (to_bf16) {
    FloatToBf16Kernel<<<GridFor(n), kThreads, 0, stream>>>(x, static_cast<__nv_bfloat16*>(y), n);
  } else {
    FloatToHalfKernel<<<GridFor(n), kThreads, 0, stream>>>(x, static_cast<__half*>(y), n);
  }
  return cudaGetLastError();
}

cudaError_t LaunchHalfToFloat(const void* x, bool from_bf16, float* y, int64_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  if (from_bf16) {
    Bf16ToFloatKernel<<<GridFor(n), kThreads, 0, stream>>>(static_cast<const __nv_bfloat16*>(x), y, n);
  } else {
    HalfToFloatKernel<<<GridFor(n), kThreads, 0, stream>>>(static_cast<const __half*>(x), y, n);
  }
  return cudaGetLastError();
}

}  // namespace gpuhive::cuda_kernels
