// Elementwise ops with numpy broadcasting: arithmetic, Pow, Mod, Max/Min/Sum/Mean (variadic),
// BitShift, logic, comparisons, Where and Clip. Integer division and modulo by zero give 0 and
// INT_MIN / -1 wraps, so no input can trap the process.
#include <cmath>
#include <limits>
#include <string>

#include "kernels/cpu/loops/math_register.h"
#include "kernels/cpu/loops/math_util.h"

namespace gpuhive::cpu::math {
namespace {

using loops::BroadcastPlan;
using loops::kIsFloat;
using loops::kIsInteger;

enum class Op {
  kAdd, kSub, kMul, kDiv, kMod, kMax, kMin, kSum, kMean, kBitShift,
  kAnd, kOr, kXor, kEqual, kLess, kGreater, kLessOrEqual, kGreaterOrEqual,
};

struct OpInfo {
  const char* name;
  Op op;
  unsigned types;
  bool variadic;
  bool to_bool;
};

constexpr unsigned kN = loops::kSetNumeric;
constexpr OpInfo kOps[] = {
    {"Add", Op::kAdd, kN, false, false},
    {"Sub", Op::kSub, kN, false, false},
    {"Mul", Op::kMul, kN, false, false},
    {"Div", Op::kDiv, kN, false, false},
    {"Mod", Op::kMod, kN, false, false},
    {"Max", Op::kMax, kN, true, false},
    {"Min", Op::kMin, kN, true, false},
    {"Sum", Op::kSum, loops::kSetFloat, true, false},
    {"Mean", Op::kMean, loops::kSetFloat, true, false},
    {"BitShift", Op::kBitShift, loops::kSetUnsigned, false, false},
    {"And", Op::kAnd, loops::kSetBool, false, true},
    {"Or", Op::kOr, loops::kSetBool, false, true},
    {"Xor", Op::kXor, loops::kSetBool, false, true},
    {"Equal", Op::kEqual, loops::kSetAll, false, true},
    {"Less", Op::kLess, kN, false, true},
    {"Greater", Op::kGreater, kN, false, true},
    {"LessOrEqual", Op::kLessOrEqual, kN, false, true},
    {"GreaterOrEqual", Op::kGreaterOrEqual, kN, false, true},
};

template <typename T>
unsigned TypeBit() {
  if constexpr (kIsFloat<T>) return loops::kSetFloat;
  else if constexpr (std::is_same_v<T, bool>) return loops::kSetBool;
  else if constexpr (std::is_signed_v<T>) return loops::kSetSigned;
  else return loops::kSetUnsigned;
}

inline unsigned TypeBitOf(DataType dt) {
  unsigned bit = 0;
  (void)loops::VisitAll(dt, "", [&](auto tag) -> Status {
    bit = TypeBit<typename decltype(tag)::type>();
    return Status::OK();
  });
  return bit;
}

// out[i] = f(a[..], b[..]) over a two-operand broadcast plan, with the inner loop specialised for
// the contiguous/contiguous, contiguous/scalar and scalar/contiguous runs so it vectorizes.
template <typename A, typename B, typename O, typename F>
void Binary(const BroadcastPlan& plan, int threads, const A* a, const B* b, O* out, F f) {
  const bool sa = plan.inner_stride[0] != 0, sb = plan.inner_stride[1] != 0;
  loops::ForEachBroadcastRun(plan, threads, [&](const int64_t* off, int64_t o, int64_t len) {
    const A* pa = a + off[0];
    const B* pb = b + off[1];
    O* po = out + o;
    if (sa && sb) {
      for (int64_t j = 0; j < len; ++j) po[j] = f(pa[j], pb[j]);
    } else if (sa) {
      const B vb = *pb;
      for (int64_t j = 0; j < len; ++j) po[j] = f(pa[j], vb);
    } else if (sb) {
      const A va = *pa;
      for (int64_t j = 0; j < len; ++j) po[j] = f(va, pb[j]);
    } else {
      const O v = f(*pa, *pb);
      for (int64_t j = 0; j < len; ++j) po[j] = v;
    }
  });
}

template <typename C>
C SafeDiv(C x, C y) {
  if constexpr (std::is_integral_v<C>) {
    if (y == 0) return 0;
    if constexpr (std::is_signed_v<C>) {
      if (y == -1) return WrapNeg<C>(x);
    }
  }
  return x / y;
}

template <typename C>
C IntMod(C x, C y, bool fmod) {
  if (y == 0) return 0;
  if constexpr (std::is_signed_v<C>) {
    if (y == -1) return 0;
    C r = static_cast<C>(x % y);
    if (!fmod && r != 0 && ((r < 0) != (y < 0))) r = static_cast<C>(r + y);
    return r;
  } else {
    return static_cast<C>(x % y);
  }
}

template <typename C>
C MaxOf(C x, C y) {
  if constexpr (std::is_floating_point_v<C>) {
    if (std::isnan(x)) return x;
  }
  return x > y ? x : y;  // NaN in y propagates: x > NaN is false
}
template <typename C>
C MinOf(C x, C y) {
  if constexpr (std::is_floating_point_v<C>) {
    if (std::isnan(x)) return x;
  }
  return x < y ? x : y;
}

class BinaryKernel final : public Kernel {
 public:
  BinaryKernel(const ir::Node& node, OpInfo info) : desc_(node.Describe()), info_(info) {}

  Status Init(const ir::Node& node) {
    if (info_.op == Op::kMod) {
      ASSIGN_OR_RETURN(int64_t f, node.GetInt("fmod", 0));
      fmod_ = f != 0;
    }
    if (info_.op == Op::kBitShift) {
      ASSIGN_OR_RETURN(std::string dir, node.GetString("direction"));
      if (dir != "LEFT" && dir != "RIGHT") {
        return InvalidArgument("{}: direction must be LEFT or RIGHT, got '{}'", desc_, dir);
      }
      shift_left_ = dir == "LEFT";
    }
    return Status::OK();
  }

  Status Prepare(PrepareContext& ctx) override {
    const size_t n = ctx.num_inputs();
    if (n == 0 || (!info_.variadic && n != 2)) {
      return InvalidArgument("{}: expected {} inputs, got {}", desc_, info_.variadic ? "1 or more" : "2", n);
    }
    const DataType dt = ctx.input_dtype(0);
    std::vector<Shape> shapes;
    for (size_t i = 0; i < n; ++i) {
      RETURN_IF_ERROR(RequireInput(ctx, i));
      if (ctx.input_dtype(i) != dt) {
        return InvalidArgument("{}: input {} has type {} but input 0 has {}", desc_, i,
                               DataTypeName(ctx.input_dtype(i)), DataTypeName(dt));
      }
      shapes.push_back(ctx.input_shape(i));
    }
    if (!IsSupportedDataType(dt) || (info_.types & TypeBitOf(dt)) == 0) {
      return loops::UnsupportedType(desc_, dt);
    }
    if (info_.op == Op::kMod && !fmod_ && kIsFloatType(dt)) {
      return InvalidArgument("{}: fmod must be 1 for floating point inputs", desc_);
    }
    ASSIGN_OR_RETURN(Shape out_shape, loops::BroadcastShapes(shapes, desc_));
    plans_.clear();
    if (n == 2) {
      ASSIGN_OR_RETURN(BroadcastPlan p, loops::MakeBroadcastPlan(shapes, desc_));
      plans_.push_back(std::move(p));
    } else {
      for (size_t i = 0; i < n; ++i) {
        ASSIGN_OR_RETURN(BroadcastPlan p, loops::MakeBroadcastPlan({out_shape, shapes[i]}, desc_));
        plans_.push_back(std::move(p));
      }
    }
    ctx.SetOutput(0, info_.to_bool ? DataType::kBool : dt, out_shape);
    if (!info_.to_bool) {
      for (size_t i = 0; i < (n == 2 ? 2 : 1); ++i) {
        if (shapes[i] == out_shape) {
          ctx.AllowInPlace(i, 0);
          break;
        }
      }
    }
    return Status::OK();
  }

  Status Run(RunContext& ctx) const override {
    return loops::VisitAll(ctx.input(0).dtype, desc_, [&](auto tag) -> Status {
      using T = typename decltype(tag)::type;
      if constexpr (std::is_same_v<T, bool>) {
        return RunBool(ctx);
      } else {
        return RunNumeric<T>(ctx);
      }
    });
  }

 private:
  static bool kIsFloatType(DataType dt) {
    return dt == DataType::kFloat32 || dt == DataType::kFloat64 || dt == DataType::kFloat16 ||
           dt == DataType::kBFloat16;
  }

  // Applies a compute-type function c(x, y) with the plans: 2 inputs directly, more inputs by
  // folding into the output.
  template <typename T, typename O, typename F>
  void Apply(RunContext& ctx, F c) const {
    using C = ComputeT<T>;
    auto f = [c](T x, T y) -> O { return static_cast<O>(c(static_cast<C>(x), static_cast<C>(y))); };
    O* out = ctx.output(0).template as<O>();
    const int threads = ctx.num_threads();
    const size_t n = ctx.num_inputs();
    if (n == 2) {
      Binary(plans_[0], threads, ctx.input(0).template as<const T>(), ctx.input(1).template as<const T>(),
             out, f);
      return;
    }
    if constexpr (std::is_same_v<O, T>) {
      // out = broadcast(in0), then out = f(out, in_k).
      Binary(plans_[0], threads, static_cast<const T*>(out), ctx.input(0).template as<const T>(), out,
             [](T, T y) { return y; });
      for (size_t k = 1; k < n; ++k) {
        Binary(plans_[k], threads, static_cast<const T*>(out), ctx.input(k).template as<const T>(), out, f);
      }
    }
  }

  Status RunBool(RunContext& ctx) const {
    switch (info_.op) {
      case Op::kAnd: Apply<bool, bool>(ctx, [](bool x, bool y) { return x && y; }); break;
      case Op::kOr: Apply<bool, bool>(ctx, [](bool x, bool y) { return x || y; }); break;
      case Op::kXor: Apply<bool, bool>(ctx, [](bool x, bool y) { return x != y; }); break;
      case Op::kEqual: Apply<bool, bool>(ctx, [](bool x, bool y) { return x == y; }); break;
      default: return loops::UnsupportedType(desc_, DataType::kBool);
    }
    return Status::OK();
  }

  template <typename T>
  Status RunNumeric(RunContext& ctx) const {
    using C = ComputeT<T>;
    switch (info_.op) {
      case Op::kAdd:
      case Op::kSum:
        Apply<T, T>(ctx, [](C x, C y) { return WrapAdd<C>(x, y); });
        break;
      case Op::kMean: {
        Apply<T, T>(ctx, [](C x, C y) { return WrapAdd<C>(x, y); });
        const C inv = static_cast<C>(1.0 / static_cast<double>(ctx.num_inputs()));
        T* out = ctx.output(0).template as<T>();
        loops::ParallelFor(ctx.output(0).num_elements(), ctx.num_threads(), [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) out[i] = static_cast<T>(static_cast<C>(out[i]) * inv);
        });
        break;
      }
      case Op::kSub: Apply<T, T>(ctx, [](C x, C y) { return WrapSub<C>(x, y); }); break;
      case Op::kMul: Apply<T, T>(ctx, [](C x, C y) { return WrapMul<C>(x, y); }); break;
      case Op::kDiv: Apply<T, T>(ctx, [](C x, C y) { return SafeDiv<C>(x, y); }); break;
      case Op::kMod:
        if constexpr (std::is_floating_point_v<C>) {
          Apply<T, T>(ctx, [](C x, C y) { return std::fmod(x, y); });
        } else {
          const bool fm = fmod_;
          Apply<T, T>(ctx, [fm](C x, C y) { return IntMod<C>(x, y, fm); });
        }
        break;
      case Op::kMax: Apply<T, T>(ctx, [](C x, C y) { return MaxOf<C>(x, y); }); break;
      case Op::kMin: Apply<T, T>(ctx, [](C x, C y) { return MinOf<C>(x, y); }); break;
      case Op::kBitShift:
        if constexpr (std::is_unsigned_v<C>) {
          constexpr C kBits = sizeof(C) * 8;
          if (shift_left_) {
            Apply<T, T>(ctx, [](C x, C y) { return y >= kBits ? C(0) : static_cast<C>(x << y); });
          } else {
            Apply<T, T>(ctx, [](C x, C y) { return y >= kBits ? C(0) : static_cast<C>(x >> y); });
          }
          break;
        }
        return loops::UnsupportedType(desc_, loops::DataTypeOf<T>());
      case Op::kEqual: Apply<T, bool>(ctx, [](C x, C y) { return x == y; }); break;
      case Op::kLess: Apply<T, bool>(ctx, [](C x, C y) { return x < y; }); break;
      case Op::kGreater: Apply<T, bool>(ctx, [](C x, C y) { return x > y; }); break;
      case Op::kLessOrEqual: Apply<T, bool>(ctx, [](C x, C y) { return x <= y; }); break;
      case Op::kGreaterOrEqual: Apply<T, bool>(ctx, [](C x, C y) { return x >= y; }); break;
      default: return loops::UnsupportedType(desc_, loops::DataTypeOf<T>());
    }
    return Status::OK();
  }

  std::string desc_;
  OpInfo info_;
  bool fmod_ = false;
  bool shift_left_ = true;
  std::vector<BroadcastPlan> plans_;
};

// ---------------------------------------------------------------------------------------------
// Pow: base T (floats, int32, int64 and the other integers), exponent T1 of any numeric type.

template <typename C, typename E>
C IntPow(C base, E exp) {
  if constexpr (std::is_floating_point_v<E>) {
    return static_cast<C>(std::pow(static_cast<double>(base), static_cast<double>(exp)));
  } else {
    if constexpr (std::is_signed_v<E>) {
      if (exp < 0) {
        if (base == 1) return 1;
        if constexpr (std::is_signed_v<C>) {
          if (base == -1) return (exp % 2 == 0) ? C(1) : C(-1);
        }
        return 0;
      }
    }
    using U = std::make_unsigned_t<C>;
    U result = 1, b = static_cast<U>(base);
    auto e = static_cast<std::make_unsigned_t<E>>(exp);
    while (e) {
      if (e & 1) result = static_cast<U>(result * b);
      b = static_cast<U>(b * b);
      e >>= 1;
    }
    return static_cast<C>(result);
  }
}

class PowKernel final : public Kernel {
 public:
  PowKernel(const ir::Node& node) : desc_(node.Describe()) {}
  Status Init(const ir::Node&) { return Status::OK(); }

  Status Prepare(PrepareContext& ctx) override {
    RETURN_IF_ERROR(RequireInput(ctx, 0));
    RETURN_IF_ERROR(RequireInput(ctx, 1));
    const DataType bt = ctx.input_dtype(0), et = ctx.input_dtype(1);
    if (TypeBitOf(bt) == 0 || TypeBitOf(bt) == loops::kSetBool) return loops::UnsupportedType(desc_, bt);
    if (TypeBitOf(et) == 0 || TypeBitOf(et) == loops::kSetBool) return loops::UnsupportedType(desc_, et);
    ASSIGN_OR_RETURN(plan_, loops::MakeBroadcastPlan({ctx.input_shape(0), ctx.input_shape(1)}, desc_));
    ctx.SetOutput(0, bt, plan_.out_shape);
    if (ctx.input_shape(0) == plan_.out_shape) ctx.AllowInPlace(0, 0);
    return Status::OK();
  }

  Status Run(RunContext& ctx) const override {
    const TensorView& a = ctx.input(0);
    const TensorView& b = ctx.input(1);
    return loops::VisitNumeric(a.dtype, desc_, [&](auto btag) -> Status {
      using T = typename decltype(btag)::type;
      return loops::VisitNumeric(b.dtype, desc_, [&](auto etag) -> Status {
        using E = typename decltype(etag)::type;
        RunTyped<T, E>(ctx, a.as<const T>(), b.as<const E>());
        return Status::OK();
      });
    });
  }

 private:
  template <typename T, typename E>
  void RunTyped(RunContext& ctx, const T* a, const E* b) const {
    using C = ComputeT<T>;
    using CE = ComputeT<E>;
    T* out = ctx.output(0).template as<T>();
    const int threads = ctx.num_threads();
    if constexpr (kIsFloat<T>) {
      if (ctx.input(1).num_elements() == 1) {
        // Common exponents without pow().
        const double e = static_cast<double>(static_cast<CE>(b[0]));
        auto unary = [&](auto f) {
          Binary(plan_, threads, a, b, out, [f](T x, E) { return static_cast<T>(f(static_cast<C>(x))); });
        };
        if (e == 2.0) return unary([](C x) { return x * x; });
        if (e == 1.0) return unary([](C x) { return x; });
        if (e == 3.0) return unary([](C x) { return x * x * x; });
        if (e == 0.5) return unary([](C x) { return std::sqrt(x); });
      }
      Binary(plan_, threads, a, b, out, [](T x, E y) {
        return static_cast<T>(std::pow(static_cast<C>(x), static_cast<C>(static_cast<CE>(y))));
      });
    } else {
      Binary(plan_, threads, a, b, out, [](T x, E y) { return IntPow<C, CE>(x, static_cast<CE>(y)); });
    }
  }

  std::string desc_;
  BroadcastPlan plan_;
};

// ---------------------------------------------------------------------------------------------
// Where(condition, X, Y): three-way broadcast; only moves elements, so dispatch by size.

class WhereKernel final : public Kernel {
 public:
  WhereKernel(const ir::Node& node) : desc_(node.Describe()) {}
  Status Init(const ir::Node&) { return Status::OK(); }

  Status Prepare(PrepareContext& ctx) override {
    for (size_t i = 0; i < 3; ++i) RETURN_IF_ERROR(RequireInput(ctx, i));
    if (ctx.input_dtype(0) != DataType::kBool) {
      return InvalidArgument("{}: condition must be bool, got {}", desc_, DataTypeName(ctx.input_dtype(0)));
    }
    if (ctx.input_dtype(1) != ctx.input_dtype(2)) {
      return InvalidArgument("{}: X ({}) and Y ({}) must have the same type", desc_,
                             DataTypeName(ctx.input_dtype(1)), DataTypeName(ctx.input_dtype(2)));
    }
    if (!IsSupportedDataType(ctx.input_dtype(1))) return loops::UnsupportedType(desc_, ctx.input_dtype(1));
    ASSIGN_OR_RETURN(plan_, loops::MakeBroadcastPlan(
                                {ctx.input_shape(0), ctx.input_shape(1), ctx.input_shape(2)}, desc_));
    ctx.SetOutput(0, ctx.input_dtype(1), plan_.out_shape);
    for (size_t i = 1; i < 3; ++i) {
      if (ctx.input_shape(i) == plan_.out_shape) {
        ctx.AllowInPlace(i, 0);
        break;
      }
    }
    return Status::OK();
  }

  Status Run(RunContext& ctx) const override {
    return loops::VisitBySize(ctx.input(1).dtype, desc_, [&](auto tag) -> Status {
      using T = typename decltype(tag)::type;
      const bool* c = ctx.input(0).as<const bool>();
      const T* x = ctx.input(1).as<const T>();
      const T* y = ctx.input(2).as<const T>();
      T* out = ctx.output(0).as<T>();
      const int64_t sc = plan_.inner_stride[0], sx = plan_.inner_stride[1], sy = plan_.inner_stride[2];
      loops::ForEachBroadcastRun(plan_, ctx.num_threads(), [&](const int64_t* off, int64_t o, int64_t len) {
        const bool* pc = c + off[0];
        const T* px = x + off[1];
        const T* py = y + off[2];
        T* po = out + o;
        if (sc && sx && sy) {
          for (int64_t j = 0; j < len; ++j) po[j] = pc[j] ? px[j] : py[j];
        } else {
          for (int64_t j = 0; j < len; ++j) po[j] = pc[j * sc] ? px[j * sx] : py[j * sy];
        }
      });
      return Status::OK();
    });
  }

 private:
  std::string desc_;
  BroadcastPlan plan_;
};

// ---------------------------------------------------------------------------------------------
// Clip: bounds from attributes (opset < 11) or optional scalar inputs (opset >= 11).

class ClipKernel final : public Kernel {
 public:
  ClipKernel(const ir::Node& node) : desc_(node.Describe()), opset_(node.opset) {}

  Status Init(const ir::Node& node) {
    if (opset_ < 11) {
      ASSIGN_OR_RETURN(attr_min_, node.GetFloat("min", -std::numeric_limits<float>::infinity()));
      ASSIGN_OR_RETURN(attr_max_, node.GetFloat("max", std::numeric_limits<float>::infinity()));
    }
    return Status::OK();
  }

  Status Prepare(PrepareContext& ctx) override {
    RETURN_IF_ERROR(RequireInput(ctx, 0));
    const DataType dt = ctx.input_dtype(0);
    const unsigned bit = TypeBitOf(dt);
    if (bit == 0 || bit == loops::kSetBool) return loops::UnsupportedType(desc_, dt);
    if (opset_ >= 11) {
      for (size_t i = 1; i < 3; ++i) {
        if (!ctx.has_input(i)) continue;
        if (ctx.input_dtype(i) != dt) {
          return InvalidArgument("{}: bound input {} has type {}, expected {}", desc_, i,
                                 DataTypeName(ctx.input_dtype(i)), DataTypeName(dt));
        }
        if (NumElements(ctx.input_shape(i)) != 1) {
          return InvalidArgument("{}: bound input {} must be a scalar, got shape {}", desc_, i,
                                 ShapeToString(ctx.input_shape(i)));
        }
      }
    } else if (bit != loops::kSetFloat) {
      return loops::UnsupportedType(desc_, dt);
    }
    ctx.SetOutput(0, dt, ctx.input_shape(0));
    ctx.AllowInPlace(0, 0);
    return Status::OK();
  }

  Status Run(RunContext& ctx) const override {
    return loops::VisitNumeric(ctx.input(0).dtype, desc_, [&](auto tag) -> Status {
      using T = typename decltype(tag)::type;
      using C = ComputeT<T>;
      C lo, hi;
      if constexpr (std::is_floating_point_v<C>) {
        lo = -std::numeric_limits<C>::infinity();
        hi = std::numeric_limits<C>::infinity();
      } else {
        lo = std::numeric_limits<C>::lowest();
        hi = std::numeric_limits<C>::max();
      }
      if (opset_ < 11) {
        if constexpr (std::is_floating_point_v<C>) {
          lo = static_cast<C>(attr_min_);
          hi = static_cast<C>(attr_max_);
        }
      } else {
        if (ctx.has_input(1) && ctx.input(1).num_elements() == 1) lo = static_cast<C>(ctx.input(1).as<const T>()[0]);
        if (ctx.has_input(2) && ctx.input(2).num_elements() == 1) hi = static_cast<C>(ctx.input(2).as<const T>()[0]);
      }
      const T* x = ctx.input(0).as<const T>();
      T* y = ctx.output(0).as<T>();
      loops::ParallelFor(ctx.input(0).num_elements(), ctx.num_threads(), [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) {
          C v = static_cast<C>(x[i]);
          v = v < lo ? lo : v;
          v = v > hi ? hi : v;
          y[i] = static_cast<T>(v);
        }
      });
      return Status::OK();
    });
  }

 private:
  std::string desc_;
  int opset_;
  float attr_min_ = 0.f, attr_max_ = 0.f;
};

}  // namespace

void RegisterBinaryKernels(KernelRegistry& registry) {
  for (const OpInfo& info : kOps) {
    registry.Register("", info.name, MakeFactory<BinaryKernel>(info), 1);
  }
  registry.Register("", "Pow", MakeFactory<PowKernel>(), 1);
  registry.Register("", "Where", MakeFactory<WhereKernel>(), 1);
  registry.Register("", "Clip", MakeFactory<ClipKernel>(), 1);
}

}  // namespace gpuhive::cpu::math
