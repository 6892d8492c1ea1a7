// Private to the CUDA executor's step builders: steps.cc (elementwise, convolution, MatMul/Gemm,
// normalization, reductions, pooling, and BuildStep, which picks the builder) and
// steps_data_movement.cc (the operators that only move or select bytes).
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/cuda/steps.h"

namespace gpuhive::cuda::executor::detail {

inline int64_t Prod(const Shape& s, size_t begin, size_t end) {
  int64_t p = 1;
  for (size_t i = begin; i < end && i < s.size(); ++i) p *= s[i];
  return p;
}

// Sub-buffers a step carves out of its workspace start on 256-byte boundaries.
inline size_t AlignWorkspace(size_t bytes) { return (bytes + 255) / 256 * 256; }

inline StatusOr<int64_t> NormAxis(int64_t axis, size_t rank, const ir::Node& n) {
  int64_t r = static_cast<int64_t>(rank);
  if (axis < -r || axis >= std::max<int64_t>(r, 1)) return InvalidArgument("{}: axis {} out of range", n.Describe(), axis);
  return axis < 0 ? axis + r : axis;
}

inline Status NeedFloat(const PlannedValue* v, const ir::Node& n, const char* what) {
  if (v == nullptr) return InvalidArgument("{}: missing {}", n.Describe(), what);
  if (v->dtype != DataType::kFloat32) {
    return Unimplemented("{}: {} of type {} is not supported on CUDA (float32 only)", n.Describe(), what,
                         DataTypeName(v->dtype));
  }
  return Status::OK();
}

// Reads a host-known integer tensor (int64 or int32).
inline StatusOr<std::vector<int64_t>> HostInts(const PlannedValue* v, const ir::Node& n, const char* what) {
  if (v == nullptr || v->host == nullptr) {
    return Unimplemented("{}: {} is computed on the device; the CUDA path needs it while planning", n.Describe(), what);
  }
  std::vector<int64_t> out;
  const Tensor& t = *v->host;
  if (t.dtype() == DataType::kInt64) {
    out.assign(t.as<int64_t>(), t.as<int64_t>() + t.num_elements());
  } else if (t.dtype() == DataType::kInt32) {
    for (int64_t i = 0; i < t.num_elements(); ++i) out.push_back(t.as<int32_t>()[i]);
  } else {
    return InvalidArgument("{}: {} must be int32 or int64", n.Describe(), what);
  }
  return out;
}

inline StatusOr<std::vector<float>> HostFloats(const PlannedValue* v, const ir::Node& n, const char* what) {
  if (v == nullptr || v->host == nullptr) {
    return Unimplemented("{}: {} is computed on the device; the CUDA path needs it while planning", n.Describe(), what);
  }
  if (v->host->dtype() != DataType::kFloat32) return InvalidArgument("{}: {} must be float", n.Describe(), what);
  const float* p = v->host->as<float>();
  return std::vector<float>(p, p + v->host->num_elements());
}

// 16-bit plans (ExecutorOptions::math kFloat16 / kBFloat16): convolutions and matrix products run
// on 16-bit operands with FP32 accumulation; every other step, and every value between steps,
// stays float32. Builders whose operands stay float32 (ConvTranspose, LSTM, MatMul with batch
// dims broadcast both ways) run such a plan with TF32 math.
inline bool Is16Bit(MathMode m) { return m == MathMode::kFloat16 || m == MathMode::kBFloat16; }
inline DataType Storage16(MathMode m) { return m == MathMode::kBFloat16 ? DataType::kBFloat16 : DataType::kFloat16; }
inline MathMode Float32Math(MathMode m) { return Is16Bit(m) ? MathMode::kTF32 : m; }

// A float32 input of a 16-bit runner (steps_half.cc): a graph constant converted once, when the
// plan is built (StepInputs::DeviceConstant16), or a value converted into the step's workspace on
// every run.
class HalfOperand {
 public:
  // Input i of the node; reserves the bytes a run-time conversion needs at *ws_bytes (advanced).
  static StatusOr<HalfOperand> Of(StepInputs& in, size_t i, DataType dtype, size_t* ws_bytes);
  // Any float32 device value of `elements` elements, converted on every run.
  static HalfOperand Converted(const void* src, int64_t elements, DataType dtype, size_t* ws_bytes);
  // The 16-bit operand: enqueues the conversion when there is one. `ws`: the step's workspace.
  StatusOr<const void*> Get(char* ws, StreamView s) const;
  bool converted_per_run() const { return fixed_ == nullptr; }

 private:
  const void* fixed_ = nullptr;
  const float* src_ = nullptr;
  int64_t elements_ = 0;
  size_t offset_ = 0;
  DataType dtype_ = DataType::kFloat16;
};

// Reserves a 16-bit buffer of `elements` at *ws_bytes (advanced) and returns its offset.
size_t Reserve16(int64_t elements, size_t* ws_bytes);

// The post ops a gpuhive.Fused* node carries in "post_ops" (none when !fused: the plain ONNX op).
inline StatusOr<std::vector<PostOp>> FusedPostOps(const ir::Node& n, bool fused) {
  if (!fused) return std::vector<PostOp>{};
  ASSIGN_OR_RETURN(std::vector<std::string> texts, n.GetStrings("post_ops", std::vector<std::string>{}));
  return ParsePostOps(texts);
}

// Shared by the builders (steps.cc). PostOpsInPlace applies post ops to output 0 in place, their
// operands being the node's inputs from `first_extra` on; Sequence runs a, then b, in one step.
StatusOr<BuiltStep> PostOpsInPlace(StepInputs& in, std::vector<PostOp> ops, size_t first_extra);
BuiltStep Sequence(BuiltStep a, BuiltStep b);

// Convolutions (steps_conv.cc): Conv and gpuhive.FusedConv (`fused`), ConvTranspose.
StatusOr<BuiltStep> BuildConv(StepInputs& in, bool fused);
StatusOr<BuiltStep> BuildConvTranspose(StepInputs& in);

// Recurrent (steps_rnn.cc): ONNX LSTM and GRU.
StatusOr<BuiltStep> BuildLstm(StepInputs& in);
StatusOr<BuiltStep> BuildGru(StepInputs& in);

// Data movement (steps_data_movement.cc).
StatusOr<BuiltStep> BuildTranspose(StepInputs& in);
StatusOr<BuiltStep> BuildSlice(StepInputs& in);
StatusOr<BuiltStep> BuildConcat(StepInputs& in);
StatusOr<BuiltStep> BuildGather(StepInputs& in);
StatusOr<BuiltStep> BuildResize(StepInputs& in);
StatusOr<BuiltStep> BuildExpand(StepInputs& in);
StatusOr<BuiltStep> BuildSplit(StepInputs& in);
StatusOr<BuiltStep> BuildPad(StepInputs& in);
// Output 0 aliases input 0's storage; a copy only where the plan could not alias them.
StatusOr<BuiltStep> BuildAlias(StepInputs& in);

}  // namespace gpuhive::cuda::executor::detail
