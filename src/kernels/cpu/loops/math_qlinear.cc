// ONNX Runtime's quantized contrib operators (domain com.microsoft) that quantizers write in the
// operator ("QOperator") form around the standard QLinearConv / QLinearMatMul:
//   QLinearAdd / QLinearMul (A, A_scale, A_zero_point, B, B_scale, B_zero_point, C_scale, C_zero_point):
//     C = quantize(dequantize(A) op dequantize(B)), with numpy broadcasting;
//   QLinearGlobalAveragePool (X, x_scale, x_zero_point, y_scale, y_zero_point) {channels_last}:
//     the mean over the spatial dims of dequantize(X), quantized.
// uint8 or int8 (all operands of one type); scales and zero points are one-element tensors (read
// in Run, so they may be computed); zero points may be omitted (0). Rounding is half to even and
// results saturate, as QuantizeLinear's.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "kernels/cpu/loops/common.h"
#include "kernels/cpu/loops/math_register.h"
#include "kernels/cpu/loops/math_util.h"

namespace gpuhive::cpu::math {
namespace {

bool IsInt8(DataType t) { return t == DataType::kUint8 || t == DataType::kInt8; }

// A (scale, zero point) pair of inputs: the scale float32 with one element, the zero point (if
// present) one element of the data's type.
Status CheckParams(const PrepareContext& ctx, const std::string& desc, size_t scale, size_t zero, DataType type) {
  if (!ctx.has_input(scale) || ctx.input_dtype(scale) != DataType::kFloat32 || NumElements(ctx.input_shape(scale)) != 1) {
    return InvalidArgument("{}: input {} (a scale) must be one float32 value", desc, scale);
  }
  if (zero < ctx.num_inputs() && ctx.has_input(zero) &&
      (ctx.input_dtype(zero) != type || NumElements(ctx.input_shape(zero)) != 1)) {
    return InvalidArgument("{}: input {} (a zero point) must be one {} value", desc, zero, DataTypeName(type));
  }
  return Status::OK();
}

float ScaleAt(const RunContext& ctx, size_t i) { return ctx.input(i).as<const float>()[0]; }
float ZeroAt(const RunContext& ctx, size_t i) {
  if (i >= ctx.num_inputs() || !ctx.has_input(i)) return 0.f;
  const TensorView& z = ctx.input(i);
  return z.dtype == DataType::kUint8 ? static_cast<float>(z.as<const uint8_t>()[0])
                                     : static_cast<float>(z.as<const int8_t>()[0]);
}

class QLinearBinaryKernel final : public Kernel {
 public:
  QLinearBinaryKernel(const ir::Node& node, bool multiply) : desc_(node.Describe()), multiply_(multiply) {}
  Status Init(const ir::Node&) { return Status::OK(); }

  Status Prepare(PrepareContext& ctx) override {
    for (size_t i : {0, 3, 6}) RETURN_IF_ERROR(RequireInput(ctx, i));
    const DataType t = ctx.input_dtype(0);
    if (!IsInt8(t) || ctx.input_dtype(3) != t) {
      return InvalidArgument("{}: A and B must both be uint8 or both int8 (A is {}, B is {})", desc_, DataTypeName(t),
                             DataTypeName(ctx.input_dtype(3)));
    }
    for (size_t s : {1, 4, 6}) RETURN_IF_ERROR(CheckParams(ctx, desc_, s, s + 1, t));
    ASSIGN_OR_RETURN(plan_, loops::MakeBroadcastPlan({ctx.input_shape(0), ctx.input_shape(3)}, desc_));
    ctx.SetOutput(0, t, plan_.out_shape);
    return Status::OK();
  }

  Status Run(RunContext& ctx) const override {
    if (ctx.input(0).dtype == DataType::kUint8) return RunTyped<uint8_t>(ctx);
    return RunTyped<int8_t>(ctx);
  }

 private:
  template <typename Q>
  Status RunTyped(RunContext& ctx) const {
    const float sa = ScaleAt(ctx, 1), za = ZeroAt(ctx, 2), sb = ScaleAt(ctx, 4), zb = ZeroAt(ctx, 5);
    const float sc = ScaleAt(ctx, 6), zc = ZeroAt(ctx, 7);
    if (!(sc > 0.f)) return InvalidArgument("{}: C_scale must be positive", desc_);
    const float inv = 1.f / sc;
    const Q* a = ctx.input(0).as<const Q>();
    const Q* b = ctx.input(3).as<const Q>();
    Q* c = ctx.output(0).as<Q>();
    const bool mul = multiply_;
    loops::ForEachBroadcastRun(plan_, ctx.num_threads(), [&](const int64_t* off, int64_t out, int64_t len) {
      const Q* pa = a + off[0];
      const Q* pb = b + off[1];
      const int64_t ia = plan_.inner_stride[0], ib = plan_.inner_stride[1];
      for (int64_t j = 0; j < len; ++j) {
        const float x = (static_cast<float>(pa[j * ia]) - za) * sa;
        const float y = (static_cast<float>(pb[j * ib]) - zb) * sb;
        c[out + j] = SaturateRound<Q>(std::nearbyint((mul ? x * y : x + y) * inv) + zc);
      }
    });
    return Status::OK();
  }

  std::string desc_;
  bool multiply_;
  loops::BroadcastPlan plan_;
};

class QLinearGlobalAveragePoolKernel final : public Kernel {
 public:
  explicit QLinearGlobalAveragePoolKernel(const ir::Node& node) : desc_(node.Describe()) {}
  Status Init(const ir::Node& node) {
    ASSIGN_OR_RETURN(channels_last_, node.GetInt("channels_last", 0));
    return Status::OK();
  }

  Status Prepare(PrepareContext& ctx) override {
    RETURN_IF_ERROR(RequireInput(ctx, 0));
    const DataType t = ctx.input_dtype(0);
    if (!IsInt8(t)) return loops::UnsupportedType(desc_, t);
    for (size_t s : {1, 3}) RETURN_IF_ERROR(CheckParams(ctx, desc_, s, s + 1, t));
    const Shape& x = ctx.input_shape(0);
    if (x.size() < 3) return InvalidArgument("{}: X must be at least 3-D, got {}", desc_, ShapeToString(x));
    Shape y = x;
    const size_t c_axis = channels_last_ ? x.size() - 1 : 1;
    channels_ = x[c_axis];
    batch_ = x[0];
    spatial_ = 1;
    for (size_t i = 1; i < x.size(); ++i) {
      if (i == c_axis) continue;
      spatial_ *= x[i];
      y[i] = 1;
    }
    ctx.SetOutput(0, t, y);
    return Status::OK();
  }

  Status Run(RunContext& ctx) const override {
    if (ctx.input(0).dtype == DataType::kUint8) return RunTyped<uint8_t>(ctx);
    return RunTyped<int8_t>(ctx);
  }

 private:
  template <typename Q>
  Status RunTyped(RunContext& ctx) const {
    const float sx = ScaleAt(ctx, 1), zx = ZeroAt(ctx, 2), sy = ScaleAt(ctx, 3), zy = ZeroAt(ctx, 4);
    if (!(sy > 0.f)) return InvalidArgument("{}: y_scale must be positive", desc_);
    const Q* x = ctx.input(0).as<const Q>();
    Q* y = ctx.output(0).as<Q>();
    const int64_t c = channels_, hw = spatial_;
    const float factor = sx / (sy * static_cast<float>(std::max<int64_t>(hw, 1)));
    const bool last = channels_last_ != 0;
    loops::ParallelFor(batch_ * c, ctx.num_threads(), hw, [&](int64_t begin, int64_t end) {
      for (int64_t nc = begin; nc < end; ++nc) {
        const int64_t n = nc / c, ch = nc % c;
        int64_t sum = 0;
        if (last) {
          for (int64_t i = 0; i < hw; ++i) sum += x[(n * hw + i) * c + ch];
        } else {
          const Q* p = x + nc * hw;
          for (int64_t i = 0; i < hw; ++i) sum += p[i];
        }
        const float centred = static_cast<float>(sum) - zx * static_cast<float>(hw);
        y[nc] = SaturateRound<Q>(std::nearbyint(centred * factor) + zy);
      }
    });
    return Status::OK();
  }

  std::string desc_;
  int64_t channels_last_ = 0;
  int64_t channels_ = 0, batch_ = 0, spatial_ = 1;
};

}  // namespace

void RegisterQLinearContribKernels(KernelRegistry& registry) {
  registry.Register("com.microsoft", "QLinearAdd", MakeFactory<QLinearBinaryKernel>(false), 1);
  registry.Register("com.microsoft", "QLinearMul", MakeFactory<QLinearBinaryKernel>(true), 1);
  registry.Register("com.microsoft", "QLinearGlobalAveragePool", MakeFactory<QLinearGlobalAveragePoolKernel>(), 1);
}

}  // namespace gpuhive::cpu::math
