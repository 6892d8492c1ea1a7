// The pointwise halves of one LSTM or GRU time step (ONNX, default activations). LSTM: the gate
// pre-activations from the two GEMMs (X_t W^T and H_{t-1} R^T) plus the biases and peepholes,
// then the cell and hidden state. One thread per (batch row, hidden unit); the four gates of a
// unit are read from [batch, 4 * hidden] rows in ONNX's i, o, f, c order.
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/launchers.h"

namespace gpuhive::cuda_kernels {
namespace {

__device__ __forceinline__ float Sigmoid(float v) { return 1.f / (1.f + expf(-v)); }
__device__ __forceinline__ float Clip(float v, float clip) { return clip > 0.f ? fminf(fmaxf(v, -clip), clip) : v; }

__global__ void LstmCellKernel(const float* __restrict__ gates_x, const float* __restrict__ gates_h,
                               const float* __restrict__ bias, const float* __restrict__ peephole, float* c,
                               float* __restrict__ h_out, int64_t batch, int64_t hidden, float clip) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= batch * hidden) return;
  const int64_t b = idx / hidden, j = idx % hidden;
  const int64_t row = b * 4 * hidden;
  float g[4];
  for (int q = 0; q < 4; ++q) {
    float v = gates_x[row + q * hidden + j];
    if (gates_h != nullptr) v += gates_h[row + q * hidden + j];
    if (bias != nullptr) v += bias[q * hidden + j] + bias[(4 + q) * hidden + j];
    g[q] = v;
  }
  const float c_prev = c[idx];
  float pi = 0.f, po = 0.f, pf = 0.f;
  if (peephole != nullptr) {
    pi = peephole[j];
    po = peephole[hidden + j];
    pf = peephole[2 * hidden + j];
  }
  const float i = Sigmoid(Clip(g[0] + pi * c_prev, clip));
  const float f = Sigmoid(Clip(g[2] + pf * c_prev, clip));
  const float cand = tanhf(Clip(g[3], clip));
  const float c_new = f * c_prev + i * cand;
  const float o = Sigmoid(Clip(g[1] + po * c_new, clip));
  c[idx] = c_new;
  h_out[idx] = o * tanhf(c_new);
}

// ONNX GRU (activations sigmoid, tanh), gates in ONNX's z, r, h order. gates_x [batch, 3H] is
// X_t W^T; gates_h (row stride gh_stride) holds H_{t-1} R_z^T and H_{t-1} R_r^T in its first 2H
// columns; gates_hh (row stride hh_stride) the candidate's recurrent product: H_{t-1} R_h^T with
// linear_before_reset, (r . H_{t-1}) R_h^T without. Null recurrent inputs (and h_prev) are zero.
__device__ __forceinline__ float GruGate(const float* gates_x, const float* gates_h, int64_t gh_stride,
                                         const float* bias, int64_t b, int64_t j, int64_t hidden, int q,
                                         float clip) {
  float v = gates_x[b * 3 * hidden + q * hidden + j];
  if (gates_h != nullptr) v += gates_h[b * gh_stride + q * hidden + j];
  if (bias != nullptr) v += bias[q * hidden + j] + bias[(3 + q) * hidden + j];
  return Sigmoid(Clip(v, clip));
}

__global__ void GruResetKernel(const float* __restrict__ gates_x, const float* __restrict__ gates_h,
                               int64_t gh_stride, const float* __restrict__ bias, const float* __restrict__ h_prev,
                               float* __restrict__ rh, int64_t batch, int64_t hidden, float clip) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= batch * hidden) return;
  const int64_t b = idx / hidden, j = idx % hidden;
  rh[idx] = GruGate(gates_x, gates_h, gh_stride, bias, b, j, hidden, 1, clip) * h_prev[idx];
}

__global__ void GruCellKernel(const float* __restrict__ gates_x, const float* __restrict__ gates_h,
                              int64_t gh_stride, const float* __restrict__ gates_hh, int64_t hh_stride,
                              const float* __restrict__ bias, const float* __restrict__ h_prev,
                              float* __restrict__ h_out, int64_t batch, int64_t hidden, bool linear_before_reset,
                              float clip) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= batch * hidden) return;
  const int64_t b = idx / hidden, j = idx % hidden;
  const float z = GruGate(gates_x, gates_h, gh_stride, bias, b, j, hidden, 0, clip);
  const float r = GruGate(gates_x, gates_h, gh_stride, bias, b, j, hidden, 1, clip);
  const float hh = gates_hh != nullptr ? gates_hh[b * hh_stride + j] : 0.f;
  const float wb = bias != nullptr ? bias[2 * hidden + j] : 0.f;
  const float rb = bias != nullptr ? bias[5 * hidden + j] : 0.f;
  const float pre = gates_x[b * 3 * hidden + 2 * hidden + j] + wb + (linear_before_reset ? r * (hh + rb) : hh + rb);
  const float cand = tanhf(Clip(pre, clip));
  const float prev = h_prev != nullptr ? h_prev[idx] : 0.f;
  h_out[idx] = (1.f - z) * cand + z * prev;
}

}  // namespace

cudaError_t LaunchGruReset(const float* gates_x, const float* gates_h, int64_t gh_stride, const float* bias,
                           const float* h_prev, float* rh, int64_t batch, int64_t hidden, float clip,
                           cudaStream_t stream) {
  const int64_t n = batch * hidden;
  if (n == 0) return cudaSuccess;
  constexpr int kBlock = 256;
  const auto blocks = static_cast<unsigned>((n + kBlock - 1) / kBlock);
  GruResetKernel<<<blocks, kBlock, 0, stream>>>(gates_x, gates_h, gh_stride, bias, h_prev, rh, batch, hidden, clip);
  return cudaGetLastError();
}

cudaError_t LaunchGruCell(const float* gates_x, const float* gates_h, int64_t gh_stride, const float* gates_hh,
                          int64_t hh_stride, const float* bias, const float* h_prev, float* h_out, int64_t batch,
                          int64_t hidden, bool linear_before_reset, float clip, cudaStream_t stream) {
  const int64_t n = batch * hidden;
  if (n == 0) return cudaSuccess;
  constexpr int kBlock = 256;
  const auto blocks = static_cast<unsigned>((n + kBlock - 1) / kBlock);
  GruCellKernel<<<blocks, kBlock, 0, stream>>>(gates_x, gates_h, gh_stride, gates_hh, hh_stride, bias, h_prev, h_out,
                                               batch, hidden, linear_before_reset, clip);
  return cudaGetLastError();
}

cudaError_t LaunchLstmCell(const float* gates_x, const float* gates_h, const float* bias, const float* peephole,
                           float* c, float* h_out, int64_t batch, int64_t hidden, float clip, cudaStream_t stream) {
  const int64_t n = batch * hidden;
  if (n == 0) return cudaSuccess;
  constexpr int kBlock = 256;
  const auto blocks = static_cast<unsigned>((n + kBlock - 1) / kBlock);
  LstmCellKernel<<<blocks, kBlock, 0, stream>>>(gates_x, gates_h, bias, peephole, c, h_out, batch, hidden, clip);
  return cudaGetLastError();
}

}  // namespace gpuhive::cuda_kernels
