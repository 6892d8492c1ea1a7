// Elementwise CUDA kernels (the first of the GPU backend's own kernels; see issue 7).
#include <cuda_runtime.h>

#include <cstdint>

namespace gpuhive::cuda_kernels {

__global__ void ReluKernel(const float* __restrict__ in, float* __restrict__ out, int64_t n) {
  int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  for (; i < n; i += static_cast<int64_t>(gridDim.x) * blockDim.x) out[i] = in[i] > 0.f ? in[i] : 0.f;
}

cudaError_t LaunchRelu(const float* in, float* out, int64_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  int threads = 256;
  int64_t blocks = (n + threads - 1) / threads;
  if (blocks > 65535) blocks = 65535;
  ReluKernel<<<static_cast<unsigned>(blocks), threads, 0, stream>>>(in, out, n);
  return cudaGetLastError();
}

}  // namespace gpuhive::cuda_kernels
