// QuantizeLinear, DequantizeLinear (per-tensor and per-axis; int8/uint8 and int32 for dequantize)
// and DynamicQuantizeLinear. Rounding is half to even, results saturate to the target type.
#include <cmath>
#include <limits>
#include <string>

#include "kernels/cpu/loops/math_register.h"
#include "kernels/cpu/loops/math_util.h"

namespace gpuhive::cpu::math {
namespace {

// round(x / scale) + zero, saturated to Q, for a run of float32: the same values as
// SaturateRound(nearbyint(x / scale) + zero), written so that the compiler vectorizes it (it does
// not vectorize nearbyint). The quotient is first clamped to Q's range widened by one, where adding
// and subtracting 1.5 * 2^23 rounds half to even exactly (|v| < 2^22), then the zero point added
// and the result clamped again.
template <typename Q>
void QuantizeRun(const float* x, int64_t n, float scale, float zero, Q* y) {
  constexpr float kMagic = 12582912.f;  // 1.5 * 2^23
  constexpr float lo = static_cast<float>(std::numeric_limits<Q>::lowest()) - 256.f;
  constexpr float hi = static_cast<float>(std::numeric_limits<Q>::max()) + 256.f;
  for (int64_t i = 0; i < n; ++i) {
    float v = x[i] / scale;
    v = v < lo ? lo : (v > hi ? hi : v);  // NaN stays NaN
    v = (v + kMagic) - kMagic;
    v += zero;
    v = v < static_cast<float>(std::numeric_limits<Q>::lowest()) ? static_cast<float>(std::numeric_limits<Q>::lowest()) : v;
    v = v > static_cast<float>(std::numeric_limits<Q>::max()) ? static_cast<float>(std::numeric_limits<Q>::max()) : v;
    y[i] = static_cast<Q>(v == v ? v : 0.f);  // NaN -> 0, as SaturateRound
  }
}

// Scale/zero-point layout: per tensor (one element) or per axis (1-D of size shape[axis]).
Status CheckQuantParams(const PrepareContext& ctx, const std::string& desc, int64_t axis_attr,
                        AxisView* view) {
  const Shape& shape = ctx.input_shape(0);
  const Shape& scale = ctx.input_shape(1);
  const int64_t rank = static_cast<int64_t>(shape.size());
  if (NumElements(scale) == 1 && scale.size() <= 1) {
    *view = AxisView{1, 1, NumElements(shape)};
  } else if (scale.size() == 1) {
    if (axis_attr < -rank || axis_attr >= rank) {
      return InvalidArgument("{}: axis {} is out of range for rank {}", desc, axis_attr, rank);
    }
    const int64_t axis = axis_attr < 0 ? axis_attr + rank : axis_attr;
    if (shape[axis] != scale[0]) {
      return InvalidArgument("{}: per-axis scale has {} elements but axis {} has size {}", desc,
                             scale[0], axis, shape[axis]);
    }
    *view = MakeAxisView(shape, axis);
  } else {
    return InvalidArgument("{}: scale must be a scalar or 1-D, got shape {}", desc, ShapeToString(scale));
  }
  if (ctx.has_input(2) && ctx.input_shape(2) != scale &&
      !(NumElements(ctx.input_shape(2)) == 1 && NumElements(scale) == 1)) {
    return InvalidArgument("{}: zero point shape {} differs from scale shape {}", desc,
                           ShapeToString(ctx.input_shape(2)), ShapeToString(scale));
  }
  return Status::OK();
}

class QuantizeKernel final : public Kernel {
 public:
  QuantizeKernel(const ir::Node& node) : desc_(node.Describe()) {}
  Status Init(const ir::Node& node) {
    ASSIGN_OR_RETURN(axis_, node.GetInt("axis", 1));
    return Status::OK();
  }

  Status Prepare(PrepareContext& ctx) override {
    RETURN_IF_ERROR(RequireInput(ctx, 0));
    RETURN_IF_ERROR(RequireInput(ctx, 1));
    const DataType xt = ctx.input_dtype(0);
    if (xt != DataType::kFloat32 && xt != DataType::kFloat16 && xt != DataType::kBFloat16 &&
        xt != DataType::kInt32 && xt != DataType::kFloat64) {
      return loops::UnsupportedType(desc_, xt);
    }
    const DataType yt = ctx.has_input(2) ? ctx.input_dtype(2) : DataType::kUint8;
    if (yt != DataType::kUint8 && yt != DataType::kInt8) {
      return Unimplemented("{}: output type {} is not supported (uint8, int8)", desc_, DataTypeName(yt));
    }
    RETURN_IF_ERROR(loops::VisitFloat(ctx.input_dtype(1), desc_, [](auto) { return Status::OK(); }));
    RETURN_IF_ERROR(CheckQuantParams(ctx, desc_, axis_, &view_));
    ctx.SetOutput(0, yt, ctx.input_shape(0));
    return Status::OK();
  }

  Status Run(RunContext& ctx) const override {
    const bool has_zp = ctx.has_input(2);
    const DataType yt = ctx.output(0).dtype;
    return loops::VisitTypes<loops::kSetFloat | loops::kSetSigned>(ctx.input(0).dtype, desc_, [&](auto xtag) -> Status {
      using X = typename decltype(xtag)::type;
      return loops::VisitFloat(ctx.input(1).dtype, desc_, [&](auto stag) -> Status {
        using S = typename decltype(stag)::type;
        auto body = [&](auto qtag) {
          using Q = typename decltype(qtag)::type;
          const X* x = ctx.input(0).as<const X>();
          const S* scale = ctx.input(1).as<const S>();
          const Q* zp = has_zp ? ctx.input(2).as<const Q>() : nullptr;
          Q* y = ctx.output(0).as<Q>();
          const AxisView v = view_;
          if constexpr (std::is_same_v<X, float>) {
            if (v.outer * v.dim == 1) {  // per tensor: split the elements between the threads
              const float sc = static_cast<float>(scale[0]);
              const float z = zp ? static_cast<float>(zp[0]) : 0.f;
              loops::ParallelFor(v.inner, ctx.num_threads(), [&](int64_t b, int64_t e) {
                QuantizeRun(x + b, e - b, sc, z, y + b);
              });
              return;
            }
          }
          loops::ParallelFor(v.outer * v.dim, ctx.num_threads(), v.inner, [&](int64_t b, int64_t e) {
            for (int64_t od = b; od < e; ++od) {
              const int64_t d = od % v.dim;
              const float sc = static_cast<float>(scale[d]);
              const float z = zp ? static_cast<float>(zp[d]) : 0.f;
              const X* px = x + od * v.inner;
              Q* py = y + od * v.inner;
              if constexpr (std::is_same_v<X, float>) {
                QuantizeRun(px, v.inner, sc, z, py);
              } else {
                for (int64_t i = 0; i < v.inner; ++i) {
                  py[i] = SaturateRound<Q>(std::nearbyint(static_cast<float>(static_cast<ComputeT<X>>(px[i])) / sc) + z);
                }
              }
            }
          });
        };
        if (yt == DataType::kInt8) body(TypeTag<int8_t>{});
        else body(TypeTag<uint8_t>{});
        return Status::OK();
      });
    });
  }

 private:
  std::string desc_;
  int64_t axis_ = 1;
  AxisView view_;
};

class DequantizeKernel final : public Kernel {
 public:
  DequantizeKernel(const ir::Node& node) : desc_(node.Describe()) {}
  Status Init(const ir::Node& node) {
    ASSIGN_OR_RETURN(axis_, node.GetInt("axis", 1));
    return Status::OK();
  }

  Status Prepare(PrepareContext& ctx) override {
    RETURN_IF_ERROR(RequireInput(ctx, 0));
    RETURN_IF_ERROR(RequireInput(ctx, 1));
    const DataType xt = ctx.input_dtype(0);
    if (xt != DataType::kUint8 && xt != DataType::kInt8 && xt != DataType::kInt32) {
      return loops::UnsupportedType(desc_, xt);
    }
    if (ctx.has_input(2) && ctx.input_dtype(2) != xt) {
      return InvalidArgument("{}: zero point type {} differs from input type {}", desc_,
                             DataTypeName(ctx.input_dtype(2)), DataTypeName(xt));
    }
    const DataType st = ctx.input_dtype(1);
    RETURN_IF_ERROR(loops::VisitFloat(st, desc_, [](auto) { return Status::OK(); }));
    RETURN_IF_ERROR(CheckQuantParams(ctx, desc_, axis_, &view_));
    ctx.SetOutput(0, st, ctx.input_shape(0));
    return Status::OK();
  }

  Status Run(RunContext& ctx) const override {
    const bool has_zp = ctx.has_input(2);
    return loops::VisitTypes<loops::kSetInteger>(ctx.input(0).dtype, desc_, [&](auto qtag) -> Status {
      using Q = typename decltype(qtag)::type;
      return loops::VisitFloat(ctx.input(1).dtype, desc_, [&](auto stag) -> Status {
        using S = typename decltype(stag)::type;
        using C = ComputeT<S>;
        const Q* x = ctx.input(0).as<const Q>();
        const S* scale = ctx.input(1).as<const S>();
        const Q* zp = has_zp ? ctx.input(2).as<const Q>() : nullptr;
        S* y = ctx.output(0).as<S>();
        const AxisView v = view_;
        loops::ParallelFor(v.outer * v.dim, ctx.num_threads(), v.inner, [&](int64_t b, int64_t e) {
          for (int64_t od = b; od < e; ++od) {
            const int64_t d = od % v.dim;
            const C sc = static_cast<C>(scale[d]);
            const int64_t z = zp ? static_cast<int64_t>(zp[d]) : 0;
            const Q* px = x + od * v.inner;
            S* py = y + od * v.inner;
            for (int64_t i = 0; i < v.inner; ++i) {
              py[i] = static_cast<S>(static_cast<C>(static_cast<int64_t>(px[i]) - z) * sc);
            }
          }
        });
        return Status::OK();
      });
    });
  }

 private:
  std::string desc_;
  int64_t axis_ = 1;
  AxisView view_;
};

class DynamicQuantizeKernel final : public Kernel {
 public:
  DynamicQuantizeKernel(const ir::Node& node) : desc_(node.Describe()) {}
  Status Init(const ir::Node&) { return Status::OK(); }

  Status Prepare(PrepareContext& ctx) override {
    RETURN_IF_ERROR(RequireInput(ctx, 0));
    if (ctx.input_dtype(0) != DataType::kFloat32) return loops::UnsupportedType(desc_, ctx.input_dtype(0));
    ctx.SetOutput(0, DataType::kUint8, ctx.input_shape(0));
    if (ctx.num_outputs() > 1 && ctx.has_output(1)) ctx.SetOutput(1, DataType::kFloat32, {});
    if (ctx.num_outputs() > 2 && ctx.has_output(2)) ctx.SetOutput(2, DataType::kUint8, {});
    return Status::OK();
  }

  Status Run(RunContext& ctx) const override {
    const float* x = ctx.input(0).as<const float>();
    const int64_t n = ctx.input(0).num_elements();
    float lo = 0.f, hi = 0.f;
    for (int64_t i = 0; i < n; ++i) {
      lo = std::min(lo, x[i]);
      hi = std::max(hi, x[i]);
    }
    const float scale = (hi - lo) / 255.f;
    uint8_t zp = 0;
    if (scale > 0.f) zp = SaturateRound<uint8_t>(0.f - lo / scale);
    uint8_t* y = ctx.output(0).as<uint8_t>();
    loops::ParallelFor(n, ctx.num_threads(), [&](int64_t b, int64_t e) {
      if (scale > 0.f) {
        for (int64_t i = b; i < e; ++i) y[i] = SaturateRound<uint8_t>(std::nearbyint(x[i] / scale) + zp);
      } else {
        for (int64_t i = b; i < e; ++i) y[i] = 0;
      }
    });
    if (ctx.num_outputs() > 1 && ctx.has_output(1)) ctx.output(1).as<float>()[0] = scale;
    if (ctx.num_outputs() > 2 && ctx.has_output(2)) ctx.output(2).as<uint8_t>()[0] = zp;
    return Status::OK();
  }

 private:
  std::string desc_;
};

}  // namespace

void RegisterQuantKernels(KernelRegistry& registry) {
  registry.Register("", "QuantizeLinear", MakeFactory<QuantizeKernel>(), 10);
  registry.Register("", "DequantizeLinear", MakeFactory<DequantizeKernel>(), 10);
  registry.Register("", "DynamicQuantizeLinear", MakeFactory<DynamicQuantizeKernel>(), 11);
}

}  // namespace gpuhive::cpu::math
