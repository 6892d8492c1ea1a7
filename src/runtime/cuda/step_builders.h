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

// Recurrent (steps_rnn.cc): ONNX LSTM.
StatusOr<BuiltStep> BuildLstm(StepInputs& in);

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
