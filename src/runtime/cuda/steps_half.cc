// 16-bit operands of the CUDA executor's convolution and matrix-product steps (step_builders.h).
#include "runtime/cuda/step_builders.h"

namespace gpuhive::cuda::executor::detail {

size_t Reserve16(int64_t elements, size_t* ws_bytes) {
  const size_t offset = *ws_bytes;
  *ws_bytes += AlignWorkspace(static_cast<size_t>(std::max<int64_t>(elements, 1)) * 2);
  return offset;
}

StatusOr<HalfOperand> HalfOperand::Of(StepInputs& in, size_t i, DataType dtype, size_t* ws_bytes) {
  const PlannedValue* v = in.input(i);
  if (v == nullptr) return InvalidArgument("{}: input {} is missing", in.node().Describe(), i);
  RETURN_IF_ERROR(NeedFloat(v, in.node(), "16-bit operand"));
  StatusOr<const void*> fixed = in.DeviceConstant16(i, dtype);
  if (fixed.ok()) {
    HalfOperand op;
    op.fixed_ = *fixed;
    op.dtype_ = dtype;
    return op;
  }
  if (fixed.status().code() != StatusCode::kNotFound) return fixed.status();
  ASSIGN_OR_RETURN(const void* src, in.DeviceInput(i));
  return Converted(src, NumElements(v->shape), dtype, ws_bytes);
}

HalfOperand HalfOperand::Converted(const void* src, int64_t elements, DataType dtype, size_t* ws_bytes) {
  HalfOperand op;
  op.src_ = static_cast<const float*>(src);
  op.elements_ = elements;
  op.dtype_ = dtype;
  op.offset_ = Reserve16(elements, ws_bytes);
  return op;
}

StatusOr<const void*> HalfOperand::Get(char* ws, StreamView s) const {
  if (fixed_ != nullptr) return fixed_;
  void* dst = ws + offset_;
  RETURN_IF_ERROR(ConvertFromFloat(src_, dst, dtype_, elements_, s));
  return static_cast<const void*>(dst);
}

}  // namespace gpuhive::cuda::executor::detail
