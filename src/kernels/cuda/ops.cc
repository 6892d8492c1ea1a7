// Checked host entry points of the own CUDA kernels (include/gpuhive/cuda_kernels.h): validate
// shapes, build launch parameters, and turn launch errors into Status.
#include <cuda_runtime_api.h>

#include <algorithm>

#include "device/cuda/cuda_status.h"
#include "gpuhive/cuda_kernels.h"
#include "kernels/cuda/launchers.h"

namespace gpuhive::cuda {
namespace {

namespace ck = ::gpuhive::cuda_kernels;

// The chain kernel's op codes are PostOp::Kind's values.
static_assert(static_cast<int>(PostOp::Kind::kSum) == ck::kOpSum);
static_assert(static_cast<int>(PostOp::Kind::kMin) == ck::kOpMin);
static_assert(static_cast<int>(PostOp::Kind::kRelu) == ck::kOpRelu);
static_assert(static_cast<int>(PostOp::Kind::kGeluErf) == ck::kOpGeluErf);
static_assert(static_cast<int>(PostOp::Kind::kLinear) == ck::kOpLinear);
static_assert(kMaxDims == ck::kMaxDims && kMaxChainOps == ck::kMaxChainOps && kMaxChainOperands == ck::kMaxOperands);

cudaStream_t AsStream(StreamView s) { return static_cast<cudaStream_t>(s.native); }

Status CheckDims(const Shape& shape, const char* what) {
  if (shape.size() > static_cast<size_t>(kMaxDims)) {
    return Unimplemented("{}: rank {} exceeds the CUDA kernels' limit of {}", what, shape.size(), kMaxDims);
  }
  for (int64_t d : shape) {
    if (d < 0) return InvalidArgument("{}: negative dimension in {}", what, ShapeToString(shape));
  }
  return Status::OK();
}

std::vector<int64_t> RowMajorStrides(const Shape& shape) {
  std::vector<int64_t> s(shape.size(), 1);
  for (int64_t d = static_cast<int64_t>(shape.size()) - 2; d >= 0; --d) s[d] = s[d + 1] * shape[d + 1];
  return s;
}

// Element strides of operand `index` (shape `in`) per dim of `out` under numpy broadcasting (0
// where it broadcasts), into stride[0..out.size()).
Status BroadcastStrides(const Shape& in, const Shape& out, int64_t* stride, const char* what, size_t index) {
  if (in.size() > out.size()) {
    return InvalidArgument("{}: operand {} {} has a higher rank than the output {}", what, index, ShapeToString(in),
                           ShapeToString(out));
  }
  const std::vector<int64_t> strides = RowMajorStrides(in);
  const size_t lead = out.size() - in.size();
  for (size_t d = 0; d < out.size(); ++d) {
    stride[d] = 0;
    if (d < lead) continue;  // missing leading dims broadcast
    const int64_t id = in[d - lead];
    if (id == out[d]) {
      stride[d] = strides[d - lead];
    } else if (id != 1) {
      return InvalidArgument("{}: operand {} {} does not broadcast to {}", what, index, ShapeToString(in),
                             ShapeToString(out));
    }
  }
  return Status::OK();
}

Status Launched(cudaError_t err, const char* kernel) {
  if (err == cudaSuccess) return Status::OK();
  return Status(CudaErrorCode(err), fmt::format("launching CUDA kernel {} failed: {} ({})", kernel,
                                                cudaGetErrorString(err), cudaGetErrorName(err)));
}

Status CheckElemBytes(size_t elem_bytes, const char* what) {
  if (elem_bytes != 1 && elem_bytes != 2 && elem_bytes != 4 && elem_bytes != 8) {
    return Unimplemented("{}: element size {} bytes is not supported on CUDA", what, elem_bytes);
  }
  return Status::OK();
}

}  // namespace

Status ElementwiseChain(const std::vector<PostOp>& ops, const BroadcastOperand& x,
                        const std::vector<BroadcastOperand>& extras, float* y, const Shape& out_shape,
                        StreamView stream) {
  if (ops.size() > static_cast<size_t>(kMaxChainOps)) {
    return Unimplemented("elementwise chain of {} ops exceeds the CUDA limit of {}", ops.size(), kMaxChainOps);
  }
  size_t binary = static_cast<size_t>(std::count_if(ops.begin(), ops.end(), [](const PostOp& o) { return o.is_binary(); }));
  if (binary != extras.size()) {
    return InvalidArgument("elementwise chain has {} binary ops but {} operands", binary, extras.size());
  }
  if (extras.size() + 1 > static_cast<size_t>(kMaxChainOperands)) {
    return Unimplemented("elementwise chain with {} operands exceeds the CUDA limit of {}", extras.size() + 1,
                         kMaxChainOperands);
  }
  RETURN_IF_ERROR(CheckDims(out_shape, "elementwise chain output"));
  ck::ChainParams p;
  p.num_ops = static_cast<int32_t>(ops.size());
  for (size_t i = 0; i < ops.size(); ++i) {
    p.code[i] = static_cast<int32_t>(ops[i].kind);
    p.alpha[i] = ops[i].alpha;
    p.beta[i] = ops[i].beta;
  }
  p.rank = static_cast<int32_t>(out_shape.size());
  for (size_t d = 0; d < out_shape.size(); ++d) p.out_dims[d] = out_shape[d];
  p.n = NumElements(out_shape);
  p.num_operands = static_cast<int32_t>(extras.size() + 1);
  for (int o = 0; o < p.num_operands; ++o) {
    const BroadcastOperand& op = o == 0 ? x : extras[static_cast<size_t>(o - 1)];
    RETURN_IF_ERROR(CheckDims(op.shape, "elementwise operand"));
    if (op.data == nullptr && p.n > 0) return InvalidArgument("operand {} of an elementwise chain is null", o);
    p.operand[o] = op.data;
    p.contiguous[o] = op.shape == out_shape;
    RETURN_IF_ERROR(BroadcastStrides(op.shape, out_shape, p.stride[o], "elementwise chain", static_cast<size_t>(o)));
  }
  p.all_contiguous = std::all_of(p.contiguous, p.contiguous + p.num_operands, [](bool c) { return c; });
  return Launched(ck::LaunchChain(p, y, AsStream(stream)), "ElementwiseChain");
}

Status Softmax(const float* x, float* y, int64_t outer, int64_t axis, int64_t inner, bool log, StreamView stream) {
  if (outer < 0 || axis < 0 || inner < 0) return InvalidArgument("softmax: negative extent");
  return Launched(ck::LaunchSoftmax(x, y, outer, axis, inner, log, AsStream(stream)), "Softmax");
}

namespace {

StatusOr<int32_t> PointwiseType(DataType t, const char* what) {
  switch (t) {
    case DataType::kFloat32: return int32_t{ck::kPwF32};
    case DataType::kInt64: return int32_t{ck::kPwI64};
    case DataType::kInt32: return int32_t{ck::kPwI32};
    case DataType::kBool: return int32_t{ck::kPwBool};
    default: return Unimplemented("{}: {} values are not supported on CUDA", what, DataTypeName(t));
  }
}

}  // namespace

namespace {

const char* PointwiseName(PointwiseOp op) {
  static const char* kNames[] = {"Erf", "Pow", "Equal", "Less", "Greater", "Not", "Where"};
  return kNames[static_cast<int>(op)];
}

// The launch parameters of Pointwise, checked (operand pointers aside).
StatusOr<ck::PointwiseParams> PointwiseParamsFor(PointwiseOp op, const std::vector<TypedOperand>& inputs,
                                                 const Shape& out_shape) {
  const char* name = PointwiseName(op);
  const size_t want = op == PointwiseOp::kWhere ? 3 : (op == PointwiseOp::kErf || op == PointwiseOp::kNot) ? 1 : 2;
  if (inputs.size() != want) return InvalidArgument("{}: {} operand(s), expected {}", name, inputs.size(), want);
  RETURN_IF_ERROR(CheckDims(out_shape, name));
  ck::PointwiseParams p;
  p.code = static_cast<int32_t>(op);
  p.num_inputs = static_cast<int32_t>(want);
  // A type ONNX allows but the kernel lacks (Erf of int64, Pow with an int64 exponent) is
  // kUnimplemented, so the model runs on the CPU; a type ONNX does not allow is kInvalidArgument.
  auto need = [&](size_t i, DataType t, StatusCode code = StatusCode::kInvalidArgument) -> Status {
    if (inputs[i].dtype != t) {
      return Status(code, fmt::format("{}: operand {} is {}, expected {}", name, i, DataTypeName(inputs[i].dtype),
                                      DataTypeName(t)));
    }
    return Status::OK();
  };
  switch (op) {
    case PointwiseOp::kErf:
      RETURN_IF_ERROR(need(0, DataType::kFloat32, StatusCode::kUnimplemented));
      break;
    case PointwiseOp::kPow:
      RETURN_IF_ERROR(need(0, DataType::kFloat32, StatusCode::kUnimplemented));
      RETURN_IF_ERROR(need(1, DataType::kFloat32, StatusCode::kUnimplemented));
      break;
    case PointwiseOp::kNot:
      RETURN_IF_ERROR(need(0, DataType::kBool));
      break;
    case PointwiseOp::kWhere: {
      RETURN_IF_ERROR(need(0, DataType::kBool));
      RETURN_IF_ERROR(need(2, inputs[1].dtype));
      ASSIGN_OR_RETURN(p.type, PointwiseType(inputs[1].dtype, name));
      break;
    }
    case PointwiseOp::kEqual:
    case PointwiseOp::kLess:
    case PointwiseOp::kGreater: {
      RETURN_IF_ERROR(need(1, inputs[0].dtype));
      ASSIGN_OR_RETURN(p.type, PointwiseType(inputs[0].dtype, name));
      break;
    }
  }
  p.rank = static_cast<int32_t>(out_shape.size());
  for (size_t d = 0; d < out_shape.size(); ++d) p.out_dims[d] = out_shape[d];
  p.n = NumElements(out_shape);
  for (size_t o = 0; o < want; ++o) {
    const TypedOperand& op_in = inputs[o];
    RETURN_IF_ERROR(CheckDims(op_in.shape, name));
    p.in[o] = op_in.data;
    RETURN_IF_ERROR(BroadcastStrides(op_in.shape, out_shape, p.stride[o], name, o));
  }
  return p;
}

}  // namespace

Status CheckPointwise(PointwiseOp op, const std::vector<TypedOperand>& inputs, const Shape& out_shape) {
  return PointwiseParamsFor(op, inputs, out_shape).status();
}

Status Pointwise(PointwiseOp op, const std::vector<TypedOperand>& inputs, void* y, const Shape& out_shape,
                 StreamView stream) {
  ASSIGN_OR_RETURN(ck::PointwiseParams p, PointwiseParamsFor(op, inputs, out_shape));
  for (int o = 0; o < p.num_inputs; ++o) {
    if (p.in[o] == nullptr && p.n > 0) return InvalidArgument("{}: operand {} is null", PointwiseName(op), o);
  }
  return Launched(ck::LaunchPointwise(p, y, AsStream(stream)), PointwiseName(op));
}

Status LstmCell(const float* gates_x, const float* gates_h, const float* bias, const float* peephole, float* c,
                float* h_out, int64_t batch, int64_t hidden, float clip, StreamView stream) {
  if (batch < 0 || hidden <= 0) return InvalidArgument("LSTM cell: bad extent [{}, {}]", batch, hidden);
  if (gates_x == nullptr || c == nullptr || h_out == nullptr) {
    return InvalidArgument("LSTM cell: gates_x, c and h_out are required");
  }
  if (clip < 0.f) return InvalidArgument("LSTM cell: clip {} must not be negative", clip);
  return Launched(ck::LaunchLstmCell(gates_x, gates_h, bias, peephole, c, h_out, batch, hidden, clip, AsStream(stream)),
                  "LstmCell");
}

Status GruReset(const float* gates_x, const float* gates_h, int64_t gh_stride, const float* bias, const float* h_prev,
                float* rh, int64_t batch, int64_t hidden, float clip, StreamView stream) {
  if (batch < 0 || hidden <= 0) return InvalidArgument("GRU reset: bad extent [{}, {}]", batch, hidden);
  if (gates_x == nullptr || gates_h == nullptr || h_prev == nullptr || rh == nullptr) {
    return InvalidArgument("GRU reset: gates_x, gates_h, h_prev and rh are required");
  }
  if (gh_stride < 2 * hidden) return InvalidArgument("GRU reset: gates_h stride {} below 2 x {}", gh_stride, hidden);
  if (clip < 0.f) return InvalidArgument("GRU reset: clip {} must not be negative", clip);
  return Launched(ck::LaunchGruReset(gates_x, gates_h, gh_stride, bias, h_prev, rh, batch, hidden, clip,
                                     AsStream(stream)),
                  "GruReset");
}

Status GruCell(const float* gates_x, const float* gates_h, int64_t gh_stride, const float* gates_hh, int64_t hh_stride,
               const float* bias, const float* h_prev, float* h_out, int64_t batch, int64_t hidden,
               bool linear_before_reset, float clip, StreamView stream) {
  if (batch < 0 || hidden <= 0) return InvalidArgument("GRU cell: bad extent [{}, {}]", batch, hidden);
  if (gates_x == nullptr || h_out == nullptr) return InvalidArgument("GRU cell: gates_x and h_out are required");
  if (gates_h != nullptr && gh_stride < 2 * hidden) {
    return InvalidArgument("GRU cell: gates_h stride {} below 2 x {}", gh_stride, hidden);
  }
  if (gates_hh != nullptr && hh_stride < hidden) {
    return InvalidArgument("GRU cell: gates_hh stride {} below {}", hh_stride, hidden);
  }
  if (clip < 0.f) return InvalidArgument("GRU cell: clip {} must not be negative", clip);
  return Launched(ck::LaunchGruCell(gates_x, gates_h, gh_stride, gates_hh, hh_stride, bias, h_prev, h_out, batch,
                                    hidden, linear_before_reset, clip, AsStream(stream)),
                  "GruCell");
}

Status LayerNorm(const float* x, const float* scale, const float* bias, float* y, int64_t rows, int64_t cols,
                 float epsilon, StreamView stream) {
  if (rows < 0 || cols <= 0) return InvalidArgument("layer norm: bad extent [{}, {}]", rows, cols);
  if (scale == nullptr) return InvalidArgument("layer norm: scale is required");
  return Launched(ck::LaunchLayerNorm(x, scale, bias, y, rows, cols, epsilon, AsStream(stream)), "LayerNorm");
}

Status Reduce(ReduceKind kind, const float* x, float* y, int64_t outer, int64_t axis, int64_t inner,
              StreamView stream) {
  if (outer < 0 || inner < 0) return InvalidArgument("reduce: negative extent");
  if (axis <= 0) return InvalidArgument("reduce: empty reduction axis");
  return Launched(ck::LaunchReduce(static_cast<int>(kind), x, y, outer, axis, inner, AsStream(stream)), "Reduce");
}

Status Transpose(const void* x, void* y, size_t elem_bytes, const Shape& in_shape, const std::vector<int64_t>& perm,
                 StreamView stream) {
  RETURN_IF_ERROR(CheckDims(in_shape, "transpose"));
  RETURN_IF_ERROR(CheckElemBytes(elem_bytes, "transpose"));
  if (perm.size() != in_shape.size()) {
    return InvalidArgument("transpose: perm has {} entries for rank {}", perm.size(), in_shape.size());
  }
  std::vector<bool> seen(perm.size(), false);
  std::vector<int64_t> strides = RowMajorStrides(in_shape);
  ck::StridedCopyParams p;
  p.rank = static_cast<int32_t>(in_shape.size());
  for (size_t d = 0; d < perm.size(); ++d) {
    int64_t src = perm[d];
    if (src < 0 || src >= static_cast<int64_t>(perm.size()) || seen[static_cast<size_t>(src)]) {
      return InvalidArgument("transpose: perm is not a permutation of 0..{}", perm.size() - 1);
    }
    seen[static_cast<size_t>(src)] = true;
    p.out_dims[d] = in_shape[static_cast<size_t>(src)];
    p.in_stride[d] = strides[static_cast<size_t>(src)];
  }
  p.n = NumElements(in_shape);
  return Launched(ck::LaunchStridedCopy(x, y, elem_bytes, p, AsStream(stream)), "Transpose");
}

Status StridedSlice(const void* x, void* y, size_t elem_bytes, const Shape& in_shape, const std::vector<int64_t>& starts,
                    const std::vector<int64_t>& steps, const Shape& out_shape, StreamView stream) {
  RETURN_IF_ERROR(CheckDims(in_shape, "slice"));
  RETURN_IF_ERROR(CheckElemBytes(elem_bytes, "slice"));
  size_t r = in_shape.size();
  if (starts.size() != r || steps.size() != r || out_shape.size() != r) {
    return InvalidArgument("slice: starts/steps/output rank must equal the input rank {}", r);
  }
  std::vector<int64_t> strides = RowMajorStrides(in_shape);
  ck::StridedCopyParams p;
  p.rank = static_cast<int32_t>(r);
  for (size_t d = 0; d < r; ++d) {
    if (out_shape[d] > 0) {
      int64_t last = starts[d] + (out_shape[d] - 1) * steps[d];
      if (starts[d] < 0 || starts[d] >= in_shape[d] || last < 0 || last >= in_shape[d]) {
        return InvalidArgument("slice: dim {} reads outside [0, {})", d, in_shape[d]);
      }
    }
    p.out_dims[d] = out_shape[d];
    p.in_stride[d] = strides[d] * steps[d];
    p.base += starts[d] * strides[d];
  }
  p.n = NumElements(out_shape);
  return Launched(ck::LaunchStridedCopy(x, y, elem_bytes, p, AsStream(stream)), "StridedSlice");
}

Status BroadcastTo(const void* x, void* y, size_t elem_bytes, const Shape& in_shape, const Shape& out_shape,
                   StreamView stream) {
  RETURN_IF_ERROR(CheckDims(out_shape, "broadcast"));
  RETURN_IF_ERROR(CheckElemBytes(elem_bytes, "broadcast"));
  if (in_shape.size() > out_shape.size()) {
    return InvalidArgument("broadcast: {} has a higher rank than {}", ShapeToString(in_shape), ShapeToString(out_shape));
  }
  std::vector<int64_t> strides = RowMajorStrides(in_shape);
  size_t lead = out_shape.size() - in_shape.size();
  ck::StridedCopyParams p;
  p.rank = static_cast<int32_t>(out_shape.size());
  for (size_t d = 0; d < out_shape.size(); ++d) {
    p.out_dims[d] = out_shape[d];
    if (d < lead) continue;
    int64_t id = in_shape[d - lead];
    if (id == out_shape[d]) {
      p.in_stride[d] = strides[d - lead];
    } else if (id != 1) {
      return InvalidArgument("broadcast: {} does not broadcast to {}", ShapeToString(in_shape), ShapeToString(out_shape));
    }
  }
  p.n = NumElements(out_shape);
  return Launched(ck::LaunchStridedCopy(x, y, elem_bytes, p, AsStream(stream)), "BroadcastTo");
}

Status PadConstant(const void* x, void* y, size_t elem_bytes, const Shape& in_shape, const std::vector<int64_t>& begin,
                   const Shape& out_shape, uint64_t value_bits, StreamView stream) {
  RETURN_IF_ERROR(CheckDims(out_shape, "pad"));
  RETURN_IF_ERROR(CheckElemBytes(elem_bytes, "pad"));
  if (in_shape.size() != out_shape.size() || begin.size() != out_shape.size()) {
    return InvalidArgument("pad: input, begin and output ranks differ");
  }
  std::vector<int64_t> strides = RowMajorStrides(in_shape);
  ck::PadLaunch p;
  p.rank = static_cast<int32_t>(out_shape.size());
  for (size_t d = 0; d < out_shape.size(); ++d) {
    p.out_dims[d] = out_shape[d];
    p.in_dims[d] = in_shape[d];
    p.in_stride[d] = strides[d];
    p.begin[d] = begin[d];
  }
  p.n = NumElements(out_shape);
  return Launched(ck::LaunchPad(x, y, elem_bytes, p, value_bits, AsStream(stream)), "PadConstant");
}

Status Concat(const std::vector<ConcatInput>& inputs, void* y, size_t elem_bytes, int64_t outer, int64_t inner,
              StreamView stream) {
  int64_t total_axis = 0;
  for (const ConcatInput& in : inputs) total_axis += in.axis;
  size_t dst_pitch = static_cast<size_t>(total_axis * inner) * elem_bytes;
  size_t offset = 0;
  for (const ConcatInput& in : inputs) {
    size_t row = static_cast<size_t>(in.axis * inner) * elem_bytes;
    if (row > 0 && outer > 0) {
      RETURN_IF_ERROR(GH_CUDA_STATUS(cudaMemcpy2DAsync(static_cast<char*>(y) + offset, dst_pitch, in.data, row, row,
                                                       static_cast<size_t>(outer), cudaMemcpyDeviceToDevice,
                                                       AsStream(stream))));
    }
    offset += row;
  }
  return Status::OK();
}

Status Gather(const void* x, const void* indices, bool indices_int64, int64_t n, void* y, size_t elem_bytes,
              int64_t outer, int64_t axis, int64_t inner, int* error_flag, StreamView stream) {
  RETURN_IF_ERROR(CheckElemBytes(elem_bytes, "gather"));
  if (n < 0 || outer < 0 || axis < 0 || inner < 0) return InvalidArgument("gather: negative extent");
  return Launched(ck::LaunchGather(x, indices, indices_int64, n, y, elem_bytes, outer, axis, inner, error_flag,
                                   AsStream(stream)),
                  "Gather");
}

Status Resize(const float* x, float* y, const ResizeParams& params, StreamView stream) {
  if (params.in_h <= 0 || params.in_w <= 0 || params.out_h < 0 || params.out_w < 0 || params.scale_h <= 0.f ||
      params.scale_w <= 0.f) {
    return InvalidArgument("resize: bad sizes or scales");
  }
  ck::ResizeLaunch p;
  p.nc = params.n * params.c;
  p.in_h = params.in_h;
  p.in_w = params.in_w;
  p.out_h = params.out_h;
  p.out_w = params.out_w;
  p.scale_h = params.scale_h;
  p.scale_w = params.scale_w;
  p.linear = params.mode == ResizeMode::kLinear ? 1 : 0;
  p.coord = static_cast<int32_t>(params.coord);
  p.nearest = static_cast<int32_t>(params.nearest);
  return Launched(ck::LaunchResize(x, y, p, AsStream(stream)), "Resize");
}

Status Pool2d(const float* x, float* y, const Pool2dParams& params, StreamView stream) {
  if (params.kernel_h <= 0 || params.kernel_w <= 0 || params.stride_h <= 0 || params.stride_w <= 0 ||
      params.dilation_h <= 0 || params.dilation_w <= 0) {
    return InvalidArgument("pool: kernel, strides and dilations must be positive");
  }
  ck::PoolLaunch p;
  p.nc = params.n * params.c;
  p.in_h = params.in_h;
  p.in_w = params.in_w;
  p.out_h = params.out_h;
  p.out_w = params.out_w;
  p.kh = params.kernel_h;
  p.kw = params.kernel_w;
  p.sh = params.stride_h;
  p.sw = params.stride_w;
  p.ph = params.pad_top;
  p.pw = params.pad_left;
  p.dh = params.dilation_h;
  p.dw = params.dilation_w;
  p.max = params.kind == PoolKind::kMax ? 1 : 0;
  p.count_include_pad = params.count_include_pad ? 1 : 0;
  return Launched(ck::LaunchPool2d(x, y, p, AsStream(stream)), "Pool2d");
}

Status ConvertFromFloat(const float* x, void* y, DataType dst_type, int64_t n, StreamView stream) {
  if (dst_type != DataType::kFloat16 && dst_type != DataType::kBFloat16) {
    return InvalidArgument("ConvertFromFloat: target must be float16 or bfloat16, got {}", DataTypeName(dst_type));
  }
  return Launched(ck::LaunchFloatToHalf(x, y, dst_type == DataType::kBFloat16, n, AsStream(stream)), "FloatToHalf");
}

Status ConvertToFloat(const void* x, DataType src_type, float* y, int64_t n, StreamView stream) {
  if (src_type != DataType::kFloat16 && src_type != DataType::kBFloat16) {
    return InvalidArgument("ConvertToFloat: source must be float16 or bfloat16, got {}", DataTypeName(src_type));
  }
  return Launched(ck::LaunchHalfToFloat(x, src_type == DataType::kBFloat16, y, n, AsStream(stream)), "HalfToFloat");
}

Status Cast(const void* x, DataType src, void* y, DataType dst, int64_t n, StreamView stream) {
  if (!ck::CastSupported(static_cast<int>(src)) || !ck::CastSupported(static_cast<int>(dst))) {
    return Unimplemented("Cast from {} to {} is not supported on CUDA", DataTypeName(src), DataTypeName(dst));
  }
  if (n < 0) return InvalidArgument("Cast: negative element count");
  return Launched(ck::LaunchCast(x, static_cast<int>(src), y, static_cast<int>(dst), n, AsStream(stream)), "Cast");
}

}  // namespace gpuhive::cuda
