// Internal: launchers of the own CUDA kernels (defined in the .cu files of this folder). Plain
// structs and cudaError_t only, so the .cu files stay free of gpuhive headers; the checked,
// Status-returning API over them is include/gpuhive/cuda_kernels.h (ops.cc).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace gpuhive::cuda_kernels {

inline constexpr int kMaxDims = 8;
inline constexpr int kMaxChainOps = 16;
inline constexpr int kMaxOperands = 6;

// Op codes of the elementwise chain (same order as gpuhive::PostOp::Kind).
enum ChainOpCode : int32_t {
  kOpSum = 0, kOpAdd, kOpMul, kOpSub, kOpDiv, kOpMax, kOpMin,
  kOpRelu, kOpLeakyRelu, kOpClip, kOpSigmoid, kOpTanh, kOpHardSwish,
  kOpHardSigmoid, kOpGeluErf, kOpGeluTanh, kOpSwish, kOpElu, kOpExp, kOpLog,
  kOpSqrt, kOpAbs, kOpNeg, kOpSquare, kOpLinear,
};

struct ChainParams {
  int32_t num_ops = 0;
  int32_t code[kMaxChainOps] = {};
  float alpha[kMaxChainOps] = {};
  float beta[kMaxChainOps] = {};
  int32_t num_operands = 1;  // operand 0 is the chain input
  const float* operand[kMaxOperands] = {};
  int64_t stride[kMaxOperands][kMaxDims] = {};  // element strides per output dim (0 = broadcast)
  bool contiguous[kMaxOperands] = {};           // operand has the output's shape
  bool all_contiguous = false;                  // every operand has it: no index arithmetic
  int32_t rank = 0;
  int64_t out_dims[kMaxDims] = {};
  int64_t n = 0;
};
cudaError_t LaunchChain(const ChainParams& p, float* y, cudaStream_t stream);

// Pointwise ops outside the float chain (pointwise.cu); see gpuhive::cuda::Pointwise.
enum PointwiseCode : int32_t { kPwErf = 0, kPwPow, kPwEqual, kPwLess, kPwGreater, kPwNot, kPwWhere };
enum PointwiseType : int32_t { kPwF32 = 0, kPwI64, kPwI32, kPwBool };
struct PointwiseParams {
  int32_t code = 0;
  int32_t type = kPwF32;  // compared values (Equal/Less/Greater), selected values (Where)
  int32_t num_inputs = 1;
  const void* in[3] = {};
  int64_t stride[3][kMaxDims] = {};  // element strides per output dim (0 = broadcast)
  int32_t rank = 0;
  int64_t out_dims[kMaxDims] = {};
  int64_t n = 0;
};
cudaError_t LaunchPointwise(const PointwiseParams& p, void* y, cudaStream_t stream);

// One LSTM step's pointwise half (rnn.cu); see gpuhive::cuda::LstmCell.
cudaError_t LaunchLstmCell(const float* gates_x, const float* gates_h, const float* bias, const float* peephole,
                           float* c, float* h_out, int64_t batch, int64_t hidden, float clip, cudaStream_t stream);

// One GRU step's pointwise parts (rnn.cu); see gpuhive::cuda::GruReset / GruCell.
cudaError_t LaunchGruReset(const float* gates_x, const float* gates_h, int64_t gh_stride, const float* bias,
                           const float* h_prev, float* rh, int64_t batch, int64_t hidden, float clip,
                           cudaStream_t stream);
cudaError_t LaunchGruCell(const float* gates_x, const float* gates_h, int64_t gh_stride, const float* gates_hh,
                          int64_t hh_stride, const float* bias, const float* h_prev, float* h_out, int64_t batch,
                          int64_t hidden, bool linear_before_reset, float clip, cudaStream_t stream);

cudaError_t LaunchSoftmax(const float* x, float* y, int64_t outer, int64_t axis, int64_t inner, bool log,
                          cudaStream_t stream);
cudaError_t LaunchLayerNorm(const float* x, const float* scale, const float* bias, float* y, int64_t rows,
                            int64_t cols, float epsilon, cudaStream_t stream);
// kind: 0 sum, 1 mean, 2 max, 3 min.
cudaError_t LaunchReduce(int kind, const float* x, float* y, int64_t outer, int64_t axis, int64_t inner,
                         cudaStream_t stream);

// Generic strided gather-copy: y[j] (row-major over out_dims) = x[base + sum_d j_d * in_stride[d]].
struct StridedCopyParams {
  int32_t rank = 0;
  int64_t out_dims[kMaxDims] = {};
  int64_t in_stride[kMaxDims] = {};  // may be negative
  int64_t base = 0;
  int64_t n = 0;
};
cudaError_t LaunchStridedCopy(const void* x, void* y, size_t elem_bytes, const StridedCopyParams& p,
                              cudaStream_t stream);

// Constant padding: y[j] = x[j - begin] inside the input's box, else the value (its bytes in the
// low bytes of value_bits).
struct PadLaunch {
  int32_t rank = 0;
  int64_t out_dims[kMaxDims] = {};
  int64_t in_dims[kMaxDims] = {};
  int64_t in_stride[kMaxDims] = {};
  int64_t begin[kMaxDims] = {};  // may be negative (cropping)
  int64_t n = 0;
};
cudaError_t LaunchPad(const void* x, void* y, size_t elem_bytes, const PadLaunch& p, uint64_t value_bits,
                      cudaStream_t stream);

cudaError_t LaunchGather(const void* x, const void* indices, bool indices_int64, int64_t n, void* y,
                         size_t elem_bytes, int64_t outer, int64_t axis, int64_t inner, int* error_flag,
                         cudaStream_t stream);

struct ResizeLaunch {
  int64_t nc = 0, in_h = 0, in_w = 0, out_h = 0, out_w = 0;
  float scale_h = 1.f, scale_w = 1.f;
  int32_t linear = 0;   // 0 nearest, 1 linear
  int32_t coord = 0;    // 0 half_pixel, 1 pytorch_half_pixel, 2 align_corners, 3 asymmetric
  int32_t nearest = 0;  // 0 round_prefer_floor, 1 round_prefer_ceil, 2 floor, 3 ceil
};
cudaError_t LaunchResize(const float* x, float* y, const ResizeLaunch& p, cudaStream_t stream);

struct PoolLaunch {
  int64_t nc = 0, in_h = 0, in_w = 0, out_h = 0, out_w = 0;
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1;
  int32_t max = 1;
  int32_t count_include_pad = 0;
};
cudaError_t LaunchPool2d(const float* x, float* y, const PoolLaunch& p, cudaStream_t stream);

// to_bf16: 0 float16, 1 bfloat16.
cudaError_t LaunchFloatToHalf(const float* x, void* y, bool to_bf16, int64_t n, cudaStream_t stream);
cudaError_t LaunchHalfToFloat(const void* x, bool from_bf16, float* y, int64_t n, cudaStream_t stream);

// Element type conversion; types are ONNX TensorProto.DataType codes (see CastSupported).
bool CastSupported(int type);
cudaError_t LaunchCast(const void* x, int src, void* y, int dst, int64_t n, cudaStream_t stream);

}  // namespace gpuhive::cuda_kernels
