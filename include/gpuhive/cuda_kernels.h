// CUDA operator implementations callable from host code without CUDA headers. Pointers are device
// pointers unless a comment says otherwise; `stream` is a StreamView of a CUDA stream (its
// `native` is a cudaStream_t). Every function only enqueues work and returns at once; launch
// errors come back as a Status naming the call, errors inside a kernel surface at the next
// synchronization. Shapes are row-major ("plain" layout). Nothing here allocates device memory:
// workspaces are sized by the caller's plan and come from its MemoryResource.
//
// In builds without CUDA these symbols do not exist; include only under GPUHIVE_HAVE_CUDA.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "gpuhive/device.h"
#include "gpuhive/post_ops.h"
#include "gpuhive/status.h"
#include "gpuhive/tensor.h"

namespace gpuhive::cuda {

inline constexpr int kMaxDims = 8;
inline constexpr int kMaxChainOps = 16;
inline constexpr int kMaxChainOperands = 6;  // the chain input plus up to 5 binary operands

// --- Own kernels (float32 unless stated) --------------------------------------------------------

// One operand of an elementwise chain; `shape` must broadcast (numpy rules) to the output shape.
struct BroadcastOperand {
  const float* data = nullptr;
  Shape shape;
};

// y = ops applied in order to x; binary ops consume `extras` in order (post_ops.h semantics:
// "sub" is value - operand). y may equal x.data when x has the output's shape. Errors:
// kInvalidArgument (operands do not broadcast, too many ops/operands/dims, operand count does not
// match the binary ops).
Status ElementwiseChain(const std::vector<PostOp>& ops, const BroadcastOperand& x,
                        const std::vector<BroadcastOperand>& extras, float* y, const Shape& out_shape,
                        StreamView stream);

// Pointwise ops outside the float32 chain, operands broadcast (numpy rules) to out_shape:
//   kErf      float32 -> float32            kPow     float32, float32 -> float32
//   kEqual, kLess, kGreater   a, b of one type (float32, int64, int32, bool) -> bool
//   kNot      bool -> bool                  kWhere   bool, x, y (one type of the four) -> that type
// Errors: kInvalidArgument (operand count, dtypes ONNX does not allow, shapes that do not
// broadcast), kUnimplemented (dtypes ONNX allows that these kernels lack, rank above kMaxDims).
enum class PointwiseOp { kErf, kPow, kEqual, kLess, kGreater, kNot, kWhere };
struct TypedOperand {
  const void* data = nullptr;
  DataType dtype = DataType::kUndefined;
  Shape shape;
};
Status Pointwise(PointwiseOp op, const std::vector<TypedOperand>& inputs, void* y, const Shape& out_shape,
                 StreamView stream);
// Pointwise's checks without a launch (operand data may be null): host only, for planning.
Status CheckPointwise(PointwiseOp op, const std::vector<TypedOperand>& inputs, const Shape& out_shape);

// Softmax over the middle axis of x viewed as [outer, axis, inner]; log_softmax when `log`.
Status Softmax(const float* x, float* y, int64_t outer, int64_t axis, int64_t inner, bool log, StreamView stream);

// Layer normalization of each row of x [rows, cols]; scale and bias (bias may be null) have
// `cols` elements. Statistics in float32.
Status LayerNorm(const float* x, const float* scale, const float* bias, float* y, int64_t rows, int64_t cols,
                 float epsilon, StreamView stream);

// The pointwise half of one ONNX LSTM time step (activations sigmoid, tanh, tanh): for each batch
// row b and hidden unit j, the gate pre-activations are gates_x[b, q*H + j] (X_t W^T) +
// gates_h[b, q*H + j] (H_{t-1} R^T; null when H_{t-1} is zero) + bias[q*H + j] + bias[(4+q)*H + j]
// (Wb then Rb; bias may be null), q in ONNX's order i, o, f, c; peephole [3H] (P_i, P_o, P_f) may
// be null; clip > 0 clips each pre-activation to [-clip, clip]. c [batch, H] is read as C_{t-1}
// and overwritten with C_t; h_out [batch, H] gets H_t (it must not alias gates or c).
Status LstmCell(const float* gates_x, const float* gates_h, const float* bias, const float* peephole, float* c,
                float* h_out, int64_t batch, int64_t hidden, float clip, StreamView stream);

// The pointwise parts of one ONNX GRU time step (activations sigmoid, tanh), gates in ONNX's z, r,
// h order, for each batch row b and hidden unit j. gates_x [batch, 3H] is X_t W^T; gates_h (row
// stride gh_stride >= 2H; null when H_{t-1} is zero) has H_{t-1} R_z^T and H_{t-1} R_r^T in its
// first 2H columns; bias [6H] (Wb then Rb) may be null; clip > 0 clips each pre-activation.
// GruReset (linear_before_reset = 0 only) writes rh = r . H_{t-1} [batch, H], which the caller
// multiplies by R_h^T. GruCell then takes gates_hh (row stride hh_stride): H_{t-1} R_h^T with
// linear_before_reset, (r . H_{t-1}) R_h^T without (null when H_{t-1} is zero), and writes
// H_t = (1 - z) . tanh(candidate) + z . H_{t-1} into h_out (h_prev null: zeros; h_out must not
// alias the other arguments).
Status GruReset(const float* gates_x, const float* gates_h, int64_t gh_stride, const float* bias, const float* h_prev,
                float* rh, int64_t batch, int64_t hidden, float clip, StreamView stream);
Status GruCell(const float* gates_x, const float* gates_h, int64_t gh_stride, const float* gates_hh, int64_t hh_stride,
               const float* bias, const float* h_prev, float* h_out, int64_t batch, int64_t hidden,
               bool linear_before_reset, float clip, StreamView stream);

enum class ReduceKind { kSum, kMean, kMax, kMin };
// y[o, i] = reduce over a of x[o, a, i].
Status Reduce(ReduceKind kind, const float* x, float* y, int64_t outer, int64_t axis, int64_t inner,
              StreamView stream);

// Any element type (elem_bytes 1, 2, 4 or 8). y = x transposed by `perm` (ONNX Transpose).
Status Transpose(const void* x, void* y, size_t elem_bytes, const Shape& in_shape, const std::vector<int64_t>& perm,
                 StreamView stream);

// Any element type. y[j...] = x[starts + j * steps ...] for each dim; out_shape gives j's range.
// Steps may be negative (starts then index from the end as ONNX Slice resolves them).
Status StridedSlice(const void* x, void* y, size_t elem_bytes, const Shape& in_shape, const std::vector<int64_t>& starts,
                    const std::vector<int64_t>& steps, const Shape& out_shape, StreamView stream);

// Any element type. y = x broadcast (numpy rules) to out_shape (ONNX Expand).
Status BroadcastTo(const void* x, void* y, size_t elem_bytes, const Shape& in_shape, const Shape& out_shape,
                   StreamView stream);

// Any element type. Constant padding (ONNX Pad, mode "constant"): y[j] = x[j - begin] inside the
// input, else the value whose bytes are the low elem_bytes bytes of value_bits. A negative begin
// crops.
Status PadConstant(const void* x, void* y, size_t elem_bytes, const Shape& in_shape, const std::vector<int64_t>& begin,
                   const Shape& out_shape, uint64_t value_bits, StreamView stream);

// Any element type. Inputs viewed as [outer, axis_i * inner] are placed side by side in y.
struct ConcatInput {
  const void* data = nullptr;
  int64_t axis = 0;  // the input's size along the concat axis
};
Status Concat(const std::vector<ConcatInput>& inputs, void* y, size_t elem_bytes, int64_t outer, int64_t inner,
              StreamView stream);

// Any element type. x viewed as [outer, axis, inner], indices (int64 or int32, negative counts from
// the end) of count n: y[o, j, i] = x[o, idx[j], i]. An index outside [-axis, axis) writes zeros and
// sets *error_flag (a device int) to 1 when error_flag is not null.
Status Gather(const void* x, const void* indices, bool indices_int64, int64_t n, void* y, size_t elem_bytes,
              int64_t outer, int64_t axis, int64_t inner, int* error_flag, StreamView stream);

enum class ResizeMode { kNearest, kLinear };
enum class ResizeCoord { kHalfPixel, kPytorchHalfPixel, kAlignCorners, kAsymmetric };
enum class ResizeNearest { kRoundPreferFloor, kRoundPreferCeil, kFloor, kCeil };
struct ResizeParams {
  int64_t n = 0, c = 0, in_h = 0, in_w = 0, out_h = 0, out_w = 0;
  float scale_h = 1.f, scale_w = 1.f;  // ONNX scales (out / in when given as sizes)
  ResizeMode mode = ResizeMode::kNearest;
  ResizeCoord coord = ResizeCoord::kHalfPixel;
  ResizeNearest nearest = ResizeNearest::kRoundPreferFloor;
};
// NCHW resize over the last two dims (ONNX Resize, opset 11+ semantics).
Status Resize(const float* x, float* y, const ResizeParams& params, StreamView stream);

enum class PoolKind { kMax, kAverage };
struct Pool2dParams {
  int64_t n = 0, c = 0, in_h = 0, in_w = 0, out_h = 0, out_w = 0;
  int64_t kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1, pad_top = 0, pad_left = 0;
  int64_t dilation_h = 1, dilation_w = 1;
  PoolKind kind = PoolKind::kMax;
  bool count_include_pad = false;
};
Status Pool2d(const float* x, float* y, const Pool2dParams& params, StreamView stream);

// Converts between float32 and float16 / bfloat16 (dst_type / src_type kFloat16 or kBFloat16).
Status ConvertFromFloat(const float* x, void* y, DataType dst_type, int64_t n, StreamView stream);
Status ConvertToFloat(const void* x, DataType src_type, float* y, int64_t n, StreamView stream);

// Element type conversion for ONNX Cast: float32/16, bfloat16, float64, int64, int32, uint8, int8
// and bool (nonzero -> true; float -> integer truncates). kUnimplemented for other types.
Status Cast(const void* x, DataType src, void* y, DataType dst, int64_t n, StreamView stream);

// --- cuBLASLt matmul ------------------------------------------------------------------------------

// How float math runs. kFloat32: exact FP32. kTF32: FP32 storage, TF32 tensor cores. kFloat16 /
// kBFloat16: 16-bit storage of A, B, bias and D with FP32 accumulation.
enum class MathMode { kFloat32, kTF32, kFloat16, kBFloat16 };

enum class Epilogue { kNone, kRelu, kGelu };

// D[b] = act(alpha * op(A[b]) * op(B[b]) + beta * D[b] + bias), row-major: op(A) is [m, k], op(B) is
// [k, n], D is [m, n]; bias (optional) has n elements. A batch stride of 0 broadcasts that operand.
struct MatmulDesc {
  int64_t m = 0, n = 0, k = 0, batch = 1;
  bool trans_a = false, trans_b = false;
  int64_t stride_a = 0, stride_b = 0, stride_d = 0;  // elements between batches
  float alpha = 1.f, beta = 0.f;
  bool has_bias = false;
  Epilogue epilogue = Epilogue::kNone;
  MathMode math = MathMode::kFloat32;
};

// What MatmulRunner checks before it asks cuBLASLt (host only; the plan preview uses it).
// kInvalidArgument for non-positive sizes, negative strides or overlapping output batches.
Status CheckMatmulDesc(const MatmulDesc& desc);

// Owns a cuBLASLt handle and the per-shape algorithm cache. Thread safe (the cache is locked;
// the handle is safe to share between streams). Algorithms are chosen by cuBLASLt's heuristic the
// first time a MatmulDesc is seen, for at most `max_workspace_bytes` of workspace.
class MatmulRunner {
 public:
  struct Options {
    size_t max_workspace_bytes = 32ull << 20;
  };
  static StatusOr<std::unique_ptr<MatmulRunner>> Create(const Options& options);
  virtual ~MatmulRunner() = default;
  // The workspace the chosen algorithm needs (chooses and caches it). Errors: kInvalidArgument for
  // a malformed desc, kUnimplemented when cuBLASLt has no algorithm for it.
  virtual StatusOr<size_t> WorkspaceBytes(const MatmulDesc& desc) = 0;
  virtual Status Run(const MatmulDesc& desc, const void* a, const void* b, const void* bias, void* d,
                     void* workspace, size_t workspace_bytes, StreamView stream) = 0;
  // Number of distinct shapes whose algorithm has been chosen (for tests: chosen once per shape).
  virtual size_t cached_algorithms() const = 0;
};

// Loads on `device_index` what every model needs whatever it is: cuDNN's handle, a convolution and
// a cuBLASLt product in each MathMode (their kernel images load on first use) and a few of
// gpuhive's own kernels; synchronizes and frees its buffers. The CUDA backend's LoadLibraries.
// Errors: the first failing call's (kUnavailable without a device).
Status WarmUpLibraries(int device_index);

// --- cuDNN convolution ----------------------------------------------------------------------------

// 2-D convolution, NCHW input, KCRS weights (1-D convolutions use in_h = kernel_h = 1).
// y = act(conv(x, w) + bias + (sum ? z : 0)) where act is `epilogue` (kNone or kRelu fused by
// cuDNN; kGelu is refused with kInvalidArgument, apply it afterwards with ElementwiseChain).
// `transposed`: ONNX ConvTranspose (cuDNN's backward-data convolution): x has c channels, the
// weights are [c, k / groups, kernel_h, kernel_w], y has k channels, and out_pad_h/out_pad_w are
// ONNX's output_padding (each below its stride or dilation).
struct ConvDesc {
  int64_t n = 0, c = 0, in_h = 0, in_w = 0;
  int64_t k = 0, kernel_h = 1, kernel_w = 1, groups = 1;
  int64_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  int64_t stride_h = 1, stride_w = 1, dilation_h = 1, dilation_w = 1;
  bool transposed = false;
  int64_t out_pad_h = 0, out_pad_w = 0;
  MathMode math = MathMode::kFloat32;
  bool has_bias = false;
  bool has_sum = false;  // add z (the output's shape) before the activation
  Epilogue epilogue = Epilogue::kNone;
};

// What ConvRunner::Create checks before it asks cuDNN, and the output's height and width. Host
// only (no device): the plan preview uses it. Errors: kInvalidArgument (bad sizes, channels that
// are not multiples of groups, an empty output, GELU), kUnimplemented (asymmetric padding, which
// the step builder turns into an explicit pad or crop; extents beyond cuDNN's 32-bit range).
struct ConvOutput {
  int64_t h = 0, w = 0;
};
StatusOr<ConvOutput> ConvOutputSize(const ConvDesc& desc);

// One convolution shape: descriptors and the algorithm, chosen once at Create. Run is const and
// may be called concurrently on different buffers and streams (it takes the cuDNN handle lock).
class ConvRunner {
 public:
  // Errors: kInvalidArgument (asymmetric padding that cuDNN cannot express, bad dims),
  // kUnimplemented (no algorithm), kUnavailable (no device).
  static StatusOr<std::unique_ptr<ConvRunner>> Create(const ConvDesc& desc, size_t max_workspace_bytes = 256ull << 20);
  virtual ~ConvRunner() = default;
  virtual int64_t out_h() const = 0;
  virtual int64_t out_w() const = 0;
  virtual size_t workspace_bytes() const = 0;
  // Whether bias/sum/activation run inside cuDNN (true) or as a separate kernel after it.
  virtual bool fused() const = 0;
  virtual Status Run(const void* x, const void* w, const void* bias, const void* z, void* y, void* workspace,
                     StreamView stream) const = 0;
};

}  // namespace gpuhive::cuda
