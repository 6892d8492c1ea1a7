// Data-movement CUDA kernels: strided copy (transpose, slice), gather, resize and 2-D pooling.
#include <cuda_runtime.h>

#include <cfloat>
#include <cstdint>
#include <cstring>

#include "kernels/cuda/launchers.h"

namespace gpuhive::cuda_kernels {
namespace {

constexpr int kThreads = 256;

unsigned GridFor(int64_t n) {
  int64_t blocks = (n + kThreads - 1) / kThreads;
  if (blocks > 65535LL * 8) blocks = 65535LL * 8;
  return static_cast<unsigned>(blocks < 1 ? 1 : blocks);
}

#define GH_GRID_LOOP(i, n)                                                                   \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

template <typename T>
__global__ void StridedCopyKernel(const T* __restrict__ x, T* __restrict__ y, const StridedCopyParams p) {
  GH_GRID_LOOP(i, p.n) {
    int64_t rem = i, off = p.base;
    for (int d = p.rank - 1; d >= 0; --d) {
      int64_t idx = rem % p.out_dims[d];
      rem /= p.out_dims[d];
      off += idx * p.in_stride[d];
    }
    y[i] = x[off];
  }
}

template <typename T>
__global__ void PadKernel(const T* __restrict__ x, T* __restrict__ y, const PadLaunch p, T value) {
  GH_GRID_LOOP(i, p.n) {
    int64_t rem = i, off = 0;
    bool inside = true;
    for (int d = p.rank - 1; d >= 0; --d) {
      int64_t idx = rem % p.out_dims[d] - p.begin[d];
      rem /= p.out_dims[d];
      if (idx < 0 || idx >= p.in_dims[d]) inside = false;
      off += idx * p.in_stride[d];
    }
    y[i] = inside ? x[off] : value;
  }
}

template <typename T>
cudaError_t PadT(const void* x, void* y, const PadLaunch& p, uint64_t bits, cudaStream_t s) {
  T value;
  memcpy(&value, &bits, sizeof(T));
  PadKernel<T><<<GridFor(p.n), kThreads, 0, s>>>(static_cast<const T*>(x), static_cast<T*>(y), p, value);
  return cudaGetLastError();
}

template <typename T, typename I>
__global__ void GatherKernel(const T* __restrict__ x, const I* __restrict__ indices, int64_t n, T* __restrict__ y,
                             int64_t outer, int64_t axis, int64_t inner, int* error_flag) {
  int64_t total = outer * n * inner;
  GH_GRID_LOOP(t, total) {
    int64_t i = t % inner;
    int64_t j = (t / inner) % n;
    int64_t o = t / (inner * n);
    int64_t idx = static_cast<int64_t>(indices[j]);
    if (idx < 0) idx += axis;
    if (idx < 0 || idx >= axis) {
      y[t] = T{};
      if (error_flag != nullptr) *error_flag = 1;
    } else {
      y[t] = x[(o * axis + idx) * inner + i];
    }
  }
}

template <typename T>
cudaError_t StridedCopyT(const void* x, void* y, const StridedCopyParams& p, cudaStream_t s) {
  StridedCopyKernel<T><<<GridFor(p.n), kThreads, 0, s>>>(static_cast<const T*>(x), static_cast<T*>(y), p);
  return cudaGetLastError();
}

template <typename T>
cudaError_t GatherT(const void* x, const void* indices, bool i64, int64_t n, void* y, int64_t outer, int64_t axis,
                    int64_t inner, int* flag, cudaStream_t s) {
  unsigned grid = GridFor(outer * n * inner);
  if (i64) {
    GatherKernel<T, int64_t><<<grid, kThreads, 0, s>>>(static_cast<const T*>(x), static_cast<const int64_t*>(indices),
                                                        n, static_cast<T*>(y), outer, axis, inner, flag);
  } else {
    GatherKernel<T, int32_t><<<grid, kThreads, 0, s>>>(static_cast<const T*>(x), static_cast<const int32_t*>(indices),
                                                        n, static_cast<T*>(y), outer, axis, inner, flag);
  }
  return cudaGetLastError();
}

// Source coordinate of output coordinate `o` (ONNX Resize coordinate_transformation_mode).
__device__ __forceinline__ float SourceCoord(int coord, int64_t o, float scale, int64_t in, int64_t out) {
  switch (coord) {
    case 0: return (static_cast<float>(o) + 0.5f) / scale - 0.5f;
    case 1: return out > 1 ? (static_cast<float>(o) + 0.5f) / scale - 0.5f : 0.f;
    case 2: return out > 1 ? static_cast<float>(o) * static_cast<float>(in - 1) / static_cast<float>(out - 1) : 0.f;
    default: return static_cast<float>(o) / scale;
  }
}

__device__ __forceinline__ int64_t NearestIndex(int mode, float v, int64_t in) {
  int64_t r;
  switch (mode) {
    case 0: r = (v == floorf(v) + 0.5f) ? static_cast<int64_t>(floorf(v)) : static_cast<int64_t>(lrintf(v)); break;
    case 1: r = (v == floorf(v) + 0.5f) ? static_cast<int64_t>(ceilf(v)) : static_cast<int64_t>(lrintf(v)); break;
    case 2: r = static_cast<int64_t>(floorf(v)); break;
    default: r = static_cast<int64_t>(ceilf(v)); break;
  }
  return r < 0 ? 0 : (r >= in ? in - 1 : r);
}

__global__ void ResizeKernel(const float* __restrict__ x, float* __restrict__ y, const ResizeLaunch p) {
  int64_t total = p.nc * p.out_h * p.out_w;
  GH_GRID_LOOP(t, total) {
    int64_t ow = t % p.out_w;
    int64_t oh = (t / p.out_w) % p.out_h;
    int64_t c = t / (p.out_w * p.out_h);
    const float* plane = x + c * p.in_h * p.in_w;
    float sh = SourceCoord(p.coord, oh, p.scale_h, p.in_h, p.out_h);
    float sw = SourceCoord(p.coord, ow, p.scale_w, p.in_w, p.out_w);
    if (!p.linear) {
      y[t] = plane[NearestIndex(p.nearest, sh, p.in_h) * p.in_w + NearestIndex(p.nearest, sw, p.in_w)];
      continue;
    }
    sh = fminf(fmaxf(sh, 0.f), static_cast<float>(p.in_h - 1));
    sw = fminf(fmaxf(sw, 0.f), static_cast<float>(p.in_w - 1));
    int64_t h0 = static_cast<int64_t>(floorf(sh)), w0 = static_cast<int64_t>(floorf(sw));
    int64_t h1 = h0 + 1 < p.in_h ? h0 + 1 : h0, w1 = w0 + 1 < p.in_w ? w0 + 1 : w0;
    float fh = sh - static_cast<float>(h0), fw = sw - static_cast<float>(w0);
    float top = plane[h0 * p.in_w + w0] * (1.f - fw) + plane[h0 * p.in_w + w1] * fw;
    float bot = plane[h1 * p.in_w + w0] * (1.f - fw) + plane[h1 * p.in_w + w1] * fw;
    y[t] = top * (1.f - fh) + bot * fh;
  }
}

__global__ void Pool2dKernel(const float* __restrict__ x, float* __restrict__ y, const PoolLaunch p) {
  int64_t total = p.nc * p.out_h * p.out_w;
  GH_GRID_LOOP(t, total) {
    int64_t ow = t % p.out_w;
    int64_t oh = (t / p.out_w) % p.out_h;
    int64_t c = t / (p.out_w * p.out_h);
    const float* plane = x + c * p.in_h * p.in_w;
    float acc = p.max ? -FLT_MAX : 0.f;
    int64_t count = 0, padded_count = 0;
    for (int64_t kh = 0; kh < p.kh; ++kh) {
      int64_t ih = oh * p.sh - p.ph + kh * p.dh;
      for (int64_t kw = 0; kw < p.kw; ++kw) {
        int64_t iw = ow * p.sw - p.pw + kw * p.dw;
        // Positions in the padding (not beyond it) count for count_include_pad.
        if (ih < p.in_h + p.ph && iw < p.in_w + p.pw) ++padded_count;
        if (ih < 0 || ih >= p.in_h || iw < 0 || iw >= p.in_w) continue;
        float v = plane[ih * p.in_w + iw];
        acc = p.max ? fmaxf(acc, v) : acc + v;
        ++count;
      }
    }
    if (p.max) {
      y[t] = acc;
    } else {
      int64_t div = p.count_include_pad ? padded_count : count;
      y[t] = div > 0 ? acc / static_cast<float>(div) : 0.f;
    }
  }
}

}  // namespace

cudaError_t LaunchStridedCopy(const void* x, void* y, size_t elem_bytes, const StridedCopyParams& p,
                              cudaStream_t stream) {
  if (p.n == 0) return cudaSuccess;
  switch (elem_bytes) {
    case 1: return StridedCopyT<uint8_t>(x, y, p, stream);
    case 2: return StridedCopyT<uint16_t>(x, y, p, stream);
    case 4: return StridedCopyT<uint32_t>(x, y, p, stream);
    case 8: return StridedCopyT<uint64_t>(x, y, p, stream);
    default: return cudaErrorInvalidValue;
  }
}

cudaError_t LaunchPad(const void* x, void* y, size_t elem_bytes, const PadLaunch& p, uint64_t value_bits,
                      cudaStream_t stream) {
  if (p.n == 0) return cudaSuccess;
  switch (elem_bytes) {
    case 1: return PadT<uint8_t>(x, y, p, value_bits, stream);
    case 2: return PadT<uint16_t>(x, y, p, value_bits, stream);
    case 4: return PadT<uint32_t>(x, y, p, value_bits, stream);
    case 8: return PadT<uint64_t>(x, y, p, value_bits, stream);
    default: return cudaErrorInvalidValue;
  }
}

cudaError_t LaunchGather(const void* x, const void* indices, bool indices_int64, int64_t n, void* y,
                         size_t elem_bytes, int64_t outer, int64_t axis, int64_t inner, int* error_flag,
                         cudaStream_t stream) {
  if (outer * n * inner == 0) return cudaSuccess;
  switch (elem_bytes) {
    case 1: return GatherT<uint8_t>(x, indices, indices_int64, n, y, outer, axis, inner, error_flag, stream);
    case 2: return GatherT<uint16_t>(x, indices, indices_int64, n, y, outer, axis, inner, error_flag, stream);
    case 4: return GatherT<uint32_t>(x, indices, indices_int64, n, y, outer, axis, inner, error_flag, stream);
    case 8: return GatherT<uint64_t>(x, indices, indices_int64, n, y, outer, axis, inner, error_flag, stream);
    default: return cudaErrorInvalidValue;
  }
}

cudaError_t LaunchResize(const float* x, float* y, const ResizeLaunch& p, cudaStream_t stream) {
  int64_t total = p.nc * p.out_h * p.out_w;
  if (total == 0) return cudaSuccess;
  ResizeKernel<<<GridFor(total), kThreads, 0, stream>>>(x, y, p);
  return cudaGetLastError();
}

cudaError_t LaunchPool2d(const float* x, float* y, const PoolLaunch& p, cudaStream_t stream) {
  int64_t total = p.nc * p.out_h * p.out_w;
  if (total == 0) return cudaSuccess;
  Pool2dKernel<<<GridFor(total), kThreads, 0, stream>>>(x, y, p);
  return cudaGetLastError();
}

}  // namespace gpuhive::cuda_kernels
