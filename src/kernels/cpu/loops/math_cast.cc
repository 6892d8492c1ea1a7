// Cast and CastLike between every pair of numeric types, bool, float16 and bfloat16. Float to
// integer conversion truncates toward zero (like static_cast); to bool is "non-zero" (NaN is true).
#include <string>

#include "kernels/cpu/loops/math_register.h"
#include "kernels/cpu/loops/math_util.h"

namespace gpuhive::cpu::math {
namespace {

template <typename To, typename From>
void CastLoop(const From* in, To* out, int64_t n, int threads) {
  loops::ParallelFor(n, threads, [&](int64_t b, int64_t e) {
    if constexpr (std::is_same_v<To, From>) {
      if (static_cast<const void*>(in) != static_cast<const void*>(out)) {
        std::memcpy(out + b, in + b, static_cast<size_t>(e - b) * sizeof(To));
      }
    } else {
      for (int64_t i = b; i < e; ++i) out[i] = ConvertTo<To>(in[i]);
    }
  });
}

class CastKernel final : public Kernel {
 public:
  CastKernel(const ir::Node& node, bool like) : desc_(node.Describe()), like_(like) {}

  Status Init(const ir::Node& node) {
    if (!like_) {
      ASSIGN_OR_RETURN(int64_t to, node.GetInt("to"));
      to_ = static_cast<DataType>(to);
    }
    return Status::OK();
  }

  Status Prepare(PrepareContext& ctx) override {
    RETURN_IF_ERROR(RequireInput(ctx, 0));
    DataType to = to_;
    if (like_) {
      RETURN_IF_ERROR(RequireInput(ctx, 1));
      to = ctx.input_dtype(1);
    }
    const DataType from = ctx.input_dtype(0);
    if (from == DataType::kString || to == DataType::kString) {
      return Unimplemented("{}: casts from or to string are not supported", desc_);
    }
    if (!IsSupportedDataType(from)) return loops::UnsupportedType(desc_, from);
    if (!IsSupportedDataType(to)) {
      return Unimplemented("{}: cast to element type {} ({}) is not supported", desc_,
                           DataTypeName(to), static_cast<int>(to));
    }
    ctx.SetOutput(0, to, ctx.input_shape(0));
    if (DataTypeSize(to) == DataTypeSize(from)) ctx.AllowInPlace(0, 0);
    return Status::OK();
  }

  Status Run(RunContext& ctx) const override {
    const TensorView& x = ctx.input(0);
    const TensorView& y = ctx.output(0);
    const int64_t n = x.num_elements();
    return loops::VisitAll(x.dtype, desc_, [&](auto ftag) -> Status {
      using From = typename decltype(ftag)::type;
      return loops::VisitAll(y.dtype, desc_, [&](auto ttag) -> Status {
        using To = typename decltype(ttag)::type;
        CastLoop<To, From>(x.as<const From>(), y.as<To>(), n, ctx.num_threads());
        return Status::OK();
      });
    });
  }

 private:
  std::string desc_;
  bool like_;
  DataType to_ = DataType::kUndefined;
};

}  // namespace

void RegisterCastKernels(KernelRegistry& registry) {
  registry.Register("", "Cast", MakeFactory<CastKernel>(false), 1);
  registry.Register("", "CastLike", MakeFactory<CastKernel>(true), 15);
}

}  // namespace gpuhive::cpu::math
