// MatMulInteger (int8/uint8 -> int32 with zero points) and QLinearMatMul (quantized in and out).
// Numpy matmul shape rules: 1-D operands are promoted and the added dim dropped; batch dims
// broadcast. Zero points and scales are per tensor or per row of A / per column of B.
#include <cmath>
#include <limits>
#include <string>

#include "kernels/cpu/loops/math_register.h"
#include "kernels/cpu/loops/math_util.h"

namespace gpuhive::cpu::math {
namespace {

struct MatMulShape {
  int64_t M = 1, K = 1, N = 1;
  Shape out;
  Shape batch;                        // broadcast batch shape
  std::vector<int64_t> a_off, b_off;  // per output batch: element offset of the A and B matrices
};

StatusOr<MatMulShape> MakeMatMulShape(Shape a, Shape b, const std::string& desc) {
  if (a.empty() || b.empty()) return InvalidArgument("{}: operands must have rank >= 1", desc);
  const bool a1 = a.size() == 1, b1 = b.size() == 1;
  if (a1) a.insert(a.begin(), 1);
  if (b1) b.push_back(1);
  MatMulShape s;
  s.M = a[a.size() - 2];
  s.K = a.back();
  s.N = b.back();
  if (b[b.size() - 2] != s.K) {
    return InvalidArgument("{}: inner dimensions differ ({} vs {})", desc, s.K, b[b.size() - 2]);
  }
  Shape ab(a.begin(), a.end() - 2), bb(b.begin(), b.end() - 2);
  ASSIGN_OR_RETURN(s.batch, loops::BroadcastShapes({ab, bb}, desc));
  const int64_t nb = NumElements(s.batch);
  const size_t rank = s.batch.size();
  for (int64_t i = 0; i < nb; ++i) {
    int64_t rem = i, ao = 0, bo = 0, amul = 1, bmul = 1;
    for (int64_t d = static_cast<int64_t>(rank) - 1; d >= 0; --d) {
      const int64_t idx = rem % s.batch[d];
      rem /= s.batch[d];
      const int64_t ad = d - static_cast<int64_t>(rank - ab.size());
      const int64_t bd = d - static_cast<int64_t>(rank - bb.size());
      if (ad >= 0) {
        if (ab[ad] != 1) ao += idx * amul;
        amul *= ab[ad];
      }
      if (bd >= 0) {
        if (bb[bd] != 1) bo += idx * bmul;
        bmul *= bb[bd];
      }
    }
    s.a_off.push_back(ao * s.M * s.K);
    s.b_off.push_back(bo * s.K * s.N);
  }
  s.out = s.batch;
  if (!a1) s.out.push_back(s.M);
  if (!b1) s.out.push_back(s.N);
  return s;
}

bool IsInt8Type(DataType t) { return t == DataType::kInt8 || t == DataType::kUint8; }

// Zero point / scale input: absent, per tensor, or 1-D of `per` elements.
Status CheckPerTensorOrVector(const PrepareContext& ctx, size_t i, int64_t per, const std::string& desc) {
  if (!ctx.has_input(i)) return Status::OK();
  const Shape& s = ctx.input_shape(i);
  const int64_t n = NumElements(s);
  if (n == 1 || (n == per && s.size() <= 2)) return Status::OK();
  return InvalidArgument("{}: input {} must be a scalar or have {} elements, got shape {}", desc, i, per,
                         ShapeToString(s));
}

template <typename T>
int32_t ValueAt(const TensorView* t, int64_t i) {
  if (t == nullptr) return 0;
  return static_cast<int32_t>(t->as<const T>()[t->num_elements() == 1 ? 0 : i]);
}

// acc[b, m, n] = sum_k (A[m,k] - azp[m]) * (B[k,n] - bzp[n]) into an int32 buffer.
template <typename A, typename B>
void IntMatMul(const MatMulShape& s, const A* a, const B* b, const TensorView* azp, const TensorView* bzp,
               int32_t* out, int threads) {
  const int64_t nb = static_cast<int64_t>(s.a_off.size());
  loops::ParallelFor(nb * s.M, threads, s.K * s.N, [&](int64_t begin, int64_t end) {
    std::vector<int32_t> bz(static_cast<size_t>(s.N));
    for (int64_t n = 0; n < s.N; ++n) bz[n] = ValueAt<B>(bzp, n);
    for (int64_t bm = begin; bm < end; ++bm) {
      const int64_t bi = bm / s.M, m = bm % s.M;
      const A* pa = a + s.a_off[bi] + m * s.K;
      const B* pb = b + s.b_off[bi];
      int32_t* po = out + (bi * s.M + m) * s.N;
      const int32_t az = ValueAt<A>(azp, m);
      for (int64_t n = 0; n < s.N; ++n) po[n] = 0;
      for (int64_t k = 0; k < s.K; ++k) {
        const int32_t av = static_cast<int32_t>(pa[k]) - az;
        const B* row = pb + k * s.N;
        for (int64_t n = 0; n < s.N; ++n) po[n] = WrapAdd<int32_t>(po[n], av * (static_cast<int32_t>(row[n]) - bz[n]));
      }
    }
  });
}

template <typename F>
Status VisitInt8(DataType t, const std::string& desc, F&& f) {
  if (t == DataType::kInt8) return f(TypeTag<int8_t>{});
  if (t == DataType::kUint8) return f(TypeTag<uint8_t>{});
  return loops::UnsupportedType(desc, t);
}

class MatMulIntegerKernel final : public Kernel {
 public:
  MatMulIntegerKernel(const ir::Node& node) : desc_(node.Describe()) {}
  Status Init(const ir::Node&) { return Status::OK(); }

  Status Prepare(PrepareContext& ctx) override {
    RETURN_IF_ERROR(RequireInput(ctx, 0));
    RETURN_IF_ERROR(RequireInput(ctx, 1));
    if (!IsInt8Type(ctx.input_dtype(0))) return loops::UnsupportedType(desc_, ctx.input_dtype(0));
    if (!IsInt8Type(ctx.input_dtype(1))) return loops::UnsupportedType(desc_, ctx.input_dtype(1));
    for (size_t i = 2; i < 4; ++i) {
      if (ctx.has_input(i) && ctx.input_dtype(i) != ctx.input_dtype(i - 2)) {
        return InvalidArgument("{}: zero point {} type differs from its operand", desc_, i);
      }
    }
    ASSIGN_OR_RETURN(shape_, MakeMatMulShape(ctx.input_shape(0), ctx.input_shape(1), desc_));
    RETURN_IF_ERROR(CheckPerTensorOrVector(ctx, 2, shape_.M, desc_));
    RETURN_IF_ERROR(CheckPerTensorOrVector(ctx, 3, shape_.N, desc_));
    ctx.SetOutput(0, DataType::kInt32, shape_.out);
    return Status::OK();
  }

  Status Run(RunContext& ctx) const override {
    const TensorView* azp = ctx.has_input(2) ? &ctx.input(2) : nullptr;
    const TensorView* bzp = ctx.num_inputs() > 3 && ctx.has_input(3) ? &ctx.input(3) : nullptr;
    return VisitInt8(ctx.input(0).dtype, desc_, [&](auto at) -> Status {
      using A = typename decltype(at)::type;
      return VisitInt8(ctx.input(1).dtype, desc_, [&](auto bt) -> Status {
        using B = typename decltype(bt)::type;
        IntMatMul<A, B>(shape_, ctx.input(0).as<const A>(), ctx.input(1).as<const B>(), azp, bzp,
                        ctx.output(0).as<int32_t>(), ctx.num_threads());
        return Status::OK();
      });
    });
  }

 private:
  std::string desc_;
  MatMulShape shape_;
};

// QLinearMatMul(a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp).
class QLinearMatMulKernel final : public Kernel {
 public:
  QLinearMatMulKernel(const ir::Node& node) : desc_(node.Describe()) {}
  Status Init(const ir::Node&) { return Status::OK(); }

  Status Prepare(PrepareContext& ctx) override {
    for (size_t i = 0; i < 8; ++i) RETURN_IF_ERROR(RequireInput(ctx, i));
    if (!IsInt8Type(ctx.input_dtype(0))) return loops::UnsupportedType(desc_, ctx.input_dtype(0));
    if (!IsInt8Type(ctx.input_dtype(3))) return loops::UnsupportedType(desc_, ctx.input_dtype(3));
    if (!IsInt8Type(ctx.input_dtype(7))) return loops::UnsupportedType(desc_, ctx.input_dtype(7));
    for (size_t i : {1, 4, 6}) {
      if (ctx.input_dtype(i) != DataType::kFloat32) {
        return InvalidArgument("{}: scale input {} must be float", desc_, i);
      }
    }
    if (ctx.input_dtype(2) != ctx.input_dtype(0) || ctx.input_dtype(5) != ctx.input_dtype(3)) {
      return InvalidArgument("{}: zero point types must match their operands", desc_);
    }
    ASSIGN_OR_RETURN(shape_, MakeMatMulShape(ctx.input_shape(0), ctx.input_shape(3), desc_));
    RETURN_IF_ERROR(CheckPerTensorOrVector(ctx, 1, shape_.M, desc_));
    RETURN_IF_ERROR(CheckPerTensorOrVector(ctx, 2, shape_.M, desc_));
    RETURN_IF_ERROR(CheckPerTensorOrVector(ctx, 4, shape_.N, desc_));
    RETURN_IF_ERROR(CheckPerTensorOrVector(ctx, 5, shape_.N, desc_));
    if (NumElements(ctx.input_shape(6)) != 1 || NumElements(ctx.input_shape(7)) != 1) {
      return InvalidArgument("{}: y_scale and y_zero_point must be scalars", desc_);
    }
    ctx.SetOutput(0, ctx.input_dtype(7), shape_.out);
    ctx.RequestWorkspace(static_cast<size_t>(NumElements(shape_.out)) * sizeof(int32_t));
    return Status::OK();
  }

  Status Run(RunContext& ctx) const override {
    int32_t* acc = static_cast<int32_t*>(ctx.workspace());
    const int64_t total = NumElements(shape_.out);
    if (total > 0 && (acc == nullptr || ctx.workspace_bytes() < static_cast<size_t>(total) * 4)) {
      return Internal("{}: workspace too small", desc_);
    }
    RETURN_IF_ERROR(VisitInt8(ctx.input(0).dtype, desc_, [&](auto at) -> Status {
      using A = typename decltype(at)::type;
      return VisitInt8(ctx.input(3).dtype, desc_, [&](auto bt) -> Status {
        using B = typename decltype(bt)::type;
        IntMatMul<A, B>(shape_, ctx.input(0).as<const A>(), ctx.input(3).as<const B>(), &ctx.input(2),
                        &ctx.input(5), acc, ctx.num_threads());
        return Status::OK();
      });
    }));
    const TensorView& as = ctx.input(1);
    const TensorView& bs = ctx.input(4);
    const float ys = ctx.input(6).as<const float>()[0];
    return VisitInt8(ctx.output(0).dtype, desc_, [&](auto yt) -> Status {
      using Y = typename decltype(yt)::type;
      const float yz = static_cast<float>(ctx.input(7).as<const Y>()[0]);
      Y* y = ctx.output(0).as<Y>();
      const int64_t M = shape_.M, N = shape_.N;
      loops::ParallelFor(total / std::max<int64_t>(N, 1), ctx.num_threads(), N, [&](int64_t b, int64_t e) {
        for (int64_t row = b; row < e; ++row) {
          const int64_t m = row % std::max<int64_t>(M, 1);
          const float sa = as.as<const float>()[as.num_elements() == 1 ? 0 : m];
          for (int64_t n = 0; n < N; ++n) {
            const float sb = bs.as<const float>()[bs.num_elements() == 1 ? 0 : n];
            float v = std::nearbyint(static_cast<float>(acc[row * N + n]) * (sa * sb / ys)) + yz;
            v = std::min(std::max(v, static_cast<float>(std::numeric_limits<Y>::lowest())),
                         static_cast<float>(std::numeric_limits<Y>::max()));
            y[row * N + n] = static_cast<Y>(v);
          }
        }
      });
      return Status::OK();
    });
  }

 private:
  std::string desc_;
  MatMulShape shape_;
};

}  // namespace

void RegisterMatMulIntegerKernels(KernelRegistry& registry) {
  registry.Register("", "MatMulInteger", MakeFactory<MatMulIntegerKernel>(), 10);
  registry.Register("", "QLinearMatMul", MakeFactory<QLinearMatMulKernel>(), 10);
}

}  // namespace gpuhive::cpu::math
