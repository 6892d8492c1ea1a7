// Elementwise unary math and activations (ONNX opsets 7..17). 16-bit floats compute in float.
#include <cmath>
#include <string>

#include "kernels/cpu/loops/math_register.h"
#include "kernels/cpu/loops/math_util.h"

namespace gpuhive::cpu::math {
namespace {

using loops::kIsFloat;
using loops::kIsInteger;

enum class Op {
  kAbs, kNeg, kReciprocal, kFloor, kCeil, kRound, kSign, kSqrt, kExp, kLog, kErf,
  kSin, kCos, kTan, kAsin, kAcos, kAtan, kSinh, kCosh, kAsinh, kAcosh, kAtanh,
  kRelu, kLeakyRelu, kElu, kSelu, kCelu, kSigmoid, kHardSigmoid, kHardSwish, kTanh,
  kSoftplus, kSoftsign, kThresholdedRelu, kShrink, kIsNaN, kIsInf, kNot,
};

struct OpInfo {
  const char* name;
  Op op;
  unsigned types;  // loops::TypeSet bits
  int64_t cost;    // relative work per element, for the parallel threshold
};

constexpr unsigned kF = loops::kSetFloat;
constexpr unsigned kFS = loops::kSetFloat | loops::kSetSigned;
constexpr unsigned kN = loops::kSetNumeric;

constexpr OpInfo kOps[] = {
    {"Abs", Op::kAbs, kN, 1},          {"Neg", Op::kNeg, kFS, 1},
    {"Reciprocal", Op::kReciprocal, kF, 1}, {"Floor", Op::kFloor, kF, 1},
    {"Ceil", Op::kCeil, kF, 1},        {"Round", Op::kRound, kF, 1},
    {"Sign", Op::kSign, kN, 1},        {"Sqrt", Op::kSqrt, kF, 2},
    {"Exp", Op::kExp, kF, 8},          {"Log", Op::kLog, kF, 8},
    {"Erf", Op::kErf, kF, 8},          {"Sin", Op::kSin, kF, 8},
    {"Cos", Op::kCos, kF, 8},          {"Tan", Op::kTan, kF, 8},
    {"Asin", Op::kAsin, kF, 8},        {"Acos", Op::kAcos, kF, 8},
    {"Atan", Op::kAtan, kF, 8},        {"Sinh", Op::kSinh, kF, 8},
    {"Cosh", Op::kCosh, kF, 8},        {"Asinh", Op::kAsinh, kF, 8},
    {"Acosh", Op::kAcosh, kF, 8},      {"Atanh", Op::kAtanh, kF, 8},
    {"Relu", Op::kRelu, kFS, 1},       {"LeakyRelu", Op::kLeakyRelu, kF, 1},
    {"Elu", Op::kElu, kF, 8},          {"Selu", Op::kSelu, kF, 8},
    {"Celu", Op::kCelu, kF, 8},        {"Sigmoid", Op::kSigmoid, kF, 8},
    {"HardSigmoid", Op::kHardSigmoid, kF, 1}, {"HardSwish", Op::kHardSwish, kF, 1},
    {"Tanh", Op::kTanh, kF, 8},        {"Softplus", Op::kSoftplus, kF, 8},
    {"Softsign", Op::kSoftsign, kF, 1}, {"ThresholdedRelu", Op::kThresholdedRelu, kF, 1},
    {"Shrink", Op::kShrink, kN, 1},    {"IsNaN", Op::kIsNaN, kF, 1},
    {"IsInf", Op::kIsInf, kF, 1},      {"Not", Op::kNot, loops::kSetBool, 1},
};

class UnaryKernel final : public Kernel {
 public:
  UnaryKernel(const ir::Node& node, OpInfo info) : desc_(node.Describe()), info_(info) {}

  Status Init(const ir::Node& node) {
    auto get = [&](const char* name, float def, float& out) -> Status {
      ASSIGN_OR_RETURN(out, node.GetFloat(name, def));
      return Status::OK();
    };
    switch (info_.op) {
      case Op::kLeakyRelu: return get("alpha", 0.01f, alpha_);
      case Op::kElu:
      case Op::kThresholdedRelu: return get("alpha", 1.0f, alpha_);
      case Op::kCelu:
        RETURN_IF_ERROR(get("alpha", 1.0f, alpha_));
        if (alpha_ == 0.f) return InvalidArgument("{}: alpha must be non-zero", desc_);
        return Status::OK();
      case Op::kSelu:
        RETURN_IF_ERROR(get("alpha", 1.67326319217681884765625f, alpha_));
        return get("gamma", 1.05070102214813232421875f, beta_);
      case Op::kHardSigmoid:
        RETURN_IF_ERROR(get("alpha", 0.2f, alpha_));
        return get("beta", 0.5f, beta_);
      case Op::kShrink:
        RETURN_IF_ERROR(get("lambd", 0.5f, alpha_));
        return get("bias", 0.0f, beta_);
      case Op::kIsInf: {
        ASSIGN_OR_RETURN(int64_t neg, node.GetInt("detect_negative", 1));
        ASSIGN_OR_RETURN(int64_t pos, node.GetInt("detect_positive", 1));
        detect_negative_ = neg != 0;
        detect_positive_ = pos != 0;
        return Status::OK();
      }
      default:
        return Status::OK();
    }
  }

  Status Prepare(PrepareContext& ctx) override {
    RETURN_IF_ERROR(RequireInput(ctx, 0));
    const DataType dt = ctx.input_dtype(0);
    RETURN_IF_ERROR(loops::VisitTypes<loops::kSetAll>(dt, info_.name, [&](auto tag) -> Status {
      using T = typename decltype(tag)::type;
      unsigned bit = kIsFloat<T> ? loops::kSetFloat
                     : std::is_same_v<T, bool> ? loops::kSetBool
                     : std::is_signed_v<T>     ? loops::kSetSigned
                                               : loops::kSetUnsigned;
      if ((info_.types & bit) == 0) return loops::UnsupportedType(desc_, dt);
      return Status::OK();
    }));
    const bool to_bool = info_.op == Op::kIsNaN || info_.op == Op::kIsInf;
    ctx.SetOutput(0, to_bool ? DataType::kBool : dt, ctx.input_shape(0));
    if (!to_bool) ctx.AllowInPlace(0, 0);
    return Status::OK();
  }

  Status Run(RunContext& ctx) const override {
    const TensorView& x = ctx.input(0);
    const TensorView& y = ctx.output(0);
    const int64_t n = x.num_elements();
    return loops::VisitTypes<loops::kSetAll>(x.dtype, info_.name, [&](auto tag) -> Status {
      using T = typename decltype(tag)::type;
      return RunTyped<T>(static_cast<const T*>(x.data), y.data, n, ctx.num_threads());
    });
  }

 private:
  template <typename T, typename O = T, typename F>
  void Map(const T* in, void* out, int64_t n, int threads, F f) const {
    using C = ComputeT<T>;
    O* o = static_cast<O*>(out);
    loops::ParallelFor(n, threads, info_.cost, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) o[i] = static_cast<O>(f(static_cast<C>(in[i])));
    });
  }

  template <typename T>
  Status RunTyped(const T* in, void* out, int64_t n, int threads) const {
    using C = ComputeT<T>;
    const C alpha = static_cast<C>(alpha_), beta = static_cast<C>(beta_);
    if constexpr (kIsFloat<T>) {
      switch (info_.op) {
        case Op::kReciprocal: Map(in, out, n, threads, [](C x) { return C(1) / x; }); return Status::OK();
        case Op::kFloor: Map(in, out, n, threads, [](C x) { return std::floor(x); }); return Status::OK();
        case Op::kCeil: Map(in, out, n, threads, [](C x) { return std::ceil(x); }); return Status::OK();
        case Op::kRound: Map(in, out, n, threads, [](C x) { return std::nearbyint(x); }); return Status::OK();
        case Op::kSqrt: Map(in, out, n, threads, [](C x) { return std::sqrt(x); }); return Status::OK();
        case Op::kExp: Map(in, out, n, threads, [](C x) { return std::exp(x); }); return Status::OK();
        case Op::kLog: Map(in, out, n, threads, [](C x) { return std::log(x); }); return Status::OK();
        case Op::kErf: Map(in, out, n, threads, [](C x) { return std::erf(x); }); return Status::OK();
        case Op::kSin: Map(in, out, n, threads, [](C x) { return std::sin(x); }); return Status::OK();
        case Op::kCos: Map(in, out, n, threads, [](C x) { return std::cos(x); }); return Status::OK();
        case Op::kTan: Map(in, out, n, threads, [](C x) { return std::tan(x); }); return Status::OK();
        case Op::kAsin: Map(in, out, n, threads, [](C x) { return std::asin(x); }); return Status::OK();
        case Op::kAcos: Map(in, out, n, threads, [](C x) { return std::acos(x); }); return Status::OK();
        case Op::kAtan: Map(in, out, n, threads, [](C x) { return std::atan(x); }); return Status::OK();
        case Op::kSinh: Map(in, out, n, threads, [](C x) { return std::sinh(x); }); return Status::OK();
        case Op::kCosh: Map(in, out, n, threads, [](C x) { return std::cosh(x); }); return Status::OK();
        case Op::kAsinh: Map(in, out, n, threads, [](C x) { return std::asinh(x); }); return Status::OK();
        case Op::kAcosh: Map(in, out, n, threads, [](C x) { return std::acosh(x); }); return Status::OK();
        case Op::kAtanh: Map(in, out, n, threads, [](C x) { return std::atanh(x); }); return Status::OK();
        case Op::kTanh: Map(in, out, n, threads, [](C x) { return std::tanh(x); }); return Status::OK();
        case Op::kLeakyRelu:
          Map(in, out, n, threads, [=](C x) { return x < C(0) ? alpha * x : x; });
          return Status::OK();
        case Op::kElu:
          Map(in, out, n, threads, [=](C x) { return x < C(0) ? alpha * (std::exp(x) - C(1)) : x; });
          return Status::OK();
        case Op::kSelu:  // beta holds gamma
          Map(in, out, n, threads,
              [=](C x) { return x > C(0) ? beta * x : beta * (alpha * std::exp(x) - alpha); });
          return Status::OK();
        case Op::kCelu:
          Map(in, out, n, threads, [=](C x) {
            return std::max(C(0), x) + std::min(C(0), alpha * (std::exp(x / alpha) - C(1)));
          });
          return Status::OK();
        case Op::kSigmoid:
          Map(in, out, n, threads, [](C x) {
            if (x >= C(0)) return C(1) / (C(1) + std::exp(-x));
            C e = std::exp(x);
            return e / (C(1) + e);
          });
          return Status::OK();
        case Op::kHardSigmoid:
          Map(in, out, n, threads,
              [=](C x) { return std::max(C(0), std::min(C(1), alpha * x + beta)); });
          return Status::OK();
        case Op::kHardSwish:
          Map(in, out, n, threads, [](C x) {
            return x * std::max(C(0), std::min(C(1), x / C(6) + C(0.5)));
          });
          return Status::OK();
        case Op::kSoftplus:
          Map(in, out, n, threads, [](C x) {
            return x > C(0) ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
          });
          return Status::OK();
        case Op::kSoftsign:
          Map(in, out, n, threads, [](C x) { return x / (C(1) + std::fabs(x)); });
          return Status::OK();
        case Op::kThresholdedRelu:
          Map(in, out, n, threads, [=](C x) { return x > alpha ? x : C(0); });
          return Status::OK();
        case Op::kIsNaN:
          Map<T, bool>(in, out, n, threads, [](C x) { return std::isnan(x); });
          return Status::OK();
        case Op::kIsInf: {
          const bool neg = detect_negative_, pos = detect_positive_;
          Map<T, bool>(in, out, n, threads, [=](C x) {
            return std::isinf(x) && ((x > C(0) && pos) || (x < C(0) && neg));
          });
          return Status::OK();
        }
        default:
          break;
      }
    }
    if constexpr (kIsFloat<T> || kIsInteger<T>) {
      switch (info_.op) {
        case Op::kAbs:
          if constexpr (std::is_unsigned_v<T>) {
            Map(in, out, n, threads, [](C x) { return x; });
          } else {
            Map(in, out, n, threads, [](C x) { return x < C(0) ? WrapNeg<C>(x) : x; });
          }
          return Status::OK();
        case Op::kNeg:
          Map(in, out, n, threads, [](C x) { return WrapNeg<C>(x); });
          return Status::OK();
        case Op::kRelu:
          Map(in, out, n, threads, [](C x) { return x > C(0) ? x : C(0); });
          return Status::OK();
        case Op::kSign:
          Map(in, out, n, threads, [](C x) {
            return x > C(0) ? C(1) : x < C(0) ? C(-1) : x == C(0) ? C(0) : x;
          });
          return Status::OK();
        case Op::kShrink: {
          // Computed in double so integer inputs see the float lambd/bias exactly.
          const double lambd = alpha_, bias = beta_;
          Map(in, out, n, threads, [=](C x) {
            double v = static_cast<double>(x);
            double r = v < -lambd ? v + bias : v > lambd ? v - bias : 0.0;
            return static_cast<C>(r);
          });
          return Status::OK();
        }
        default:
          break;
      }
    }
    if constexpr (std::is_same_v<T, bool>) {
      if (info_.op == Op::kNot) {
        Map(in, out, n, threads, [](bool x) { return !x; });
        return Status::OK();
      }
    }
    return loops::UnsupportedType(desc_, loops::DataTypeOf<T>());
  }

  std::string desc_;
  OpInfo info_;
  float alpha_ = 0.f, beta_ = 0.f;
  bool detect_negative_ = true, detect_positive_ = true;
};

}  // namespace

void RegisterUnaryKernels(KernelRegistry& registry) {
  for (const OpInfo& info : kOps) {
    registry.Register("", info.name, MakeFactory<UnaryKernel>(info), 1);
  }
}

}  // namespace gpuhive::cpu::math
