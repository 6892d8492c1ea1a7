// Softmax, LogSoftmax and Hardmax. Opset < 13 flattens the input to 2-D at `axis` (default 1);
// opset >= 13 works along the one axis (default -1). Numerically stable (max subtracted first).
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <limits>
#include <string>

#include "kernels/cpu/loops/math_register.h"
#include "kernels/cpu/loops/math_util.h"
#include "kernels/cpu/loops/softmax_row.h"

namespace gpuhive::cpu::math {
namespace {

enum class Kind { kSoftmax, kLogSoftmax, kHardmax };


class SoftmaxKernel final : public Kernel {
 public:
  SoftmaxKernel(const ir::Node& node, Kind kind)
      : desc_(node.Describe()), kind_(kind), opset_(node.opset) {}

  Status Init(const ir::Node& node) {
    ASSIGN_OR_RETURN(axis_, node.GetInt("axis", opset_ >= 13 ? -1 : 1));
    return Status::OK();
  }

  Status Prepare(PrepareContext& ctx) override {
    RETURN_IF_ERROR(RequireInput(ctx, 0));
    RETURN_IF_ERROR(loops::VisitFloat(ctx.input_dtype(0), desc_, [](auto) { return Status::OK(); }));
    const Shape& shape = ctx.input_shape(0);
    const int64_t rank = static_cast<int64_t>(shape.size());
    if (opset_ >= 13) {
      if (axis_ < -rank || axis_ >= std::max<int64_t>(rank, 1)) {
        return InvalidArgument("{}: axis {} is out of range for rank {}", desc_, axis_, rank);
      }
      const int64_t axis = axis_ < 0 ? axis_ + rank : axis_;
      view_ = rank == 0 ? AxisView{} : MakeAxisView(shape, axis);
    } else {
      if (axis_ < -rank || axis_ > rank) {
        return InvalidArgument("{}: axis {} is out of range for rank {}", desc_, axis_, rank);
      }
      const int64_t axis = axis_ < 0 ? axis_ + rank : axis_;
      view_.outer = loops::DimProduct(shape, 0, static_cast<size_t>(axis));
      view_.dim = loops::DimProduct(shape, static_cast<size_t>(axis), shape.size());
      view_.inner = 1;
    }
    ctx.SetOutput(0, ctx.input_dtype(0), shape);
    ctx.AllowInPlace(0, 0);
    return Status::OK();
  }

  Status Run(RunContext& ctx) const override {
    return loops::VisitFloat(ctx.input(0).dtype, desc_, [&](auto tag) -> Status {
      using T = typename decltype(tag)::type;
      RunTyped<T>(ctx.input(0).as<const T>(), ctx.output(0).as<T>(), ctx.num_threads());
      return Status::OK();
    });
  }

 private:
  template <typename T>
  void RunTyped(const T* x, T* y, int threads) const {
    using C = ComputeT<T>;
    const AxisView v = view_;
    const Kind kind = kind_;
    if (v.dim == 0) return;
    loops::ParallelFor(v.outer, threads, v.dim * v.inner * 8, [&](int64_t b, int64_t e) {
      std::vector<C> m(static_cast<size_t>(v.inner)), s(static_cast<size_t>(v.inner));
      std::vector<int64_t> arg(static_cast<size_t>(v.inner));
      for (int64_t o = b; o < e; ++o) {
        const T* px = x + o * v.dim * v.inner;
        T* py = y + o * v.dim * v.inner;
        if constexpr (std::is_same_v<T, float>) {
          if (kind == Kind::kSoftmax && v.inner == 1 && loops::SoftmaxRowFloat(px, py, v.dim)) continue;
        }
        std::fill(m.begin(), m.end(), -std::numeric_limits<C>::infinity());
        std::fill(arg.begin(), arg.end(), 0);
        for (int64_t r = 0; r < v.dim; ++r) {
          const T* row = px + r * v.inner;
          for (int64_t i = 0; i < v.inner; ++i) {
            const C val = static_cast<C>(row[i]);
            if (val > m[i]) {
              m[i] = val;
              arg[i] = r;
            }
          }
        }
        if (kind == Kind::kHardmax) {
          for (int64_t r = 0; r < v.dim; ++r) {
            T* row = py + r * v.inner;
            for (int64_t i = 0; i < v.inner; ++i) row[i] = static_cast<T>(C(arg[i] == r ? 1 : 0));
          }
          continue;
        }
        std::fill(s.begin(), s.end(), C(0));
        if (kind == Kind::kSoftmax) {
          for (int64_t r = 0; r < v.dim; ++r) {
            const T* row = px + r * v.inner;
            T* out = py + r * v.inner;
            for (int64_t i = 0; i < v.inner; ++i) {
              const C ev = std::exp(static_cast<C>(row[i]) - m[i]);
              s[i] += ev;
              out[i] = static_cast<T>(ev);
            }
          }
          for (int64_t i = 0; i < v.inner; ++i) s[i] = C(1) / s[i];
          for (int64_t r = 0; r < v.dim; ++r) {
            T* out = py + r * v.inner;
            for (int64_t i = 0; i < v.inner; ++i) out[i] = static_cast<T>(static_cast<C>(out[i]) * s[i]);
          }
          if constexpr (loops::kIsHalf<T>) {
            // out held rounded exp values; recompute from x for full float precision. Only when
            // the output does not alias the input.
            if (static_cast<const void*>(px) != static_cast<const void*>(py)) {
              for (int64_t r = 0; r < v.dim; ++r) {
                const T* row = px + r * v.inner;
                T* out = py + r * v.inner;
                for (int64_t i = 0; i < v.inner; ++i) {
                  out[i] = static_cast<T>(std::exp(static_cast<C>(row[i]) - m[i]) * s[i]);
                }
              }
            }
          }
        } else {
          for (int64_t r = 0; r < v.dim; ++r) {
            const T* row = px + r * v.inner;
            for (int64_t i = 0; i < v.inner; ++i) s[i] += std::exp(static_cast<C>(row[i]) - m[i]);
          }
          for (int64_t i = 0; i < v.inner; ++i) s[i] = std::log(s[i]) + m[i];
          for (int64_t r = 0; r < v.dim; ++r) {
            const T* row = px + r * v.inner;
            T* out = py + r * v.inner;
            for (int64_t i = 0; i < v.inner; ++i) out[i] = static_cast<T>(static_cast<C>(row[i]) - s[i]);
          }
        }
      }
    });
  }

  std::string desc_;
  Kind kind_;
  int opset_;
  int64_t axis_ = -1;
  AxisView view_;
};

}  // namespace

void RegisterSoftmaxKernels(KernelRegistry& registry) {
  registry.Register("", "Softmax", MakeFactory<SoftmaxKernel>(Kind::kSoftmax), 1);
  registry.Register("", "LogSoftmax", MakeFactory<SoftmaxKernel>(Kind::kLogSoftmax), 1);
  registry.Register("", "Hardmax", MakeFactory<SoftmaxKernel>(Kind::kHardmax), 1);
}

}  // namespace gpuhive::cpu::math
