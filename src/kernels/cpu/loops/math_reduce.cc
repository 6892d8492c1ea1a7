// Reductions (ReduceSum/Mean/Max/Min/Prod/L1/L2/LogSum/LogSumExp/SumSquare), ArgMax/ArgMin,
// CumSum and TopK. Float sums accumulate in double, integer sums in 64-bit and wrap to the type.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "kernels/cpu/loops/math_register.h"
#include "kernels/cpu/loops/math_util.h"

namespace gpuhive::cpu::math {
namespace {

using loops::kIsFloat;

enum class Kind { kSum, kMean, kMax, kMin, kProd, kL1, kL2, kLogSum, kLogSumExp, kSumSquare };

struct ReduceInfo {
  const char* name;
  Kind kind;
};

constexpr ReduceInfo kReductions[] = {
    {"ReduceSum", Kind::kSum},       {"ReduceMean", Kind::kMean},
    {"ReduceMax", Kind::kMax},       {"ReduceMin", Kind::kMin},
    {"ReduceProd", Kind::kProd},     {"ReduceL1", Kind::kL1},
    {"ReduceL2", Kind::kL2},         {"ReduceLogSum", Kind::kLogSum},
    {"ReduceLogSumExp", Kind::kLogSumExp}, {"ReduceSumSquare", Kind::kSumSquare},
};

// Accumulator type: double for floats, 64-bit for integers.
template <typename T>
using AccT = std::conditional_t<kIsFloat<T>, double,
                                std::conditional_t<std::is_signed_v<T>, int64_t, uint64_t>>;

template <typename A>
A InitValue(Kind k) {
  switch (k) {
    case Kind::kMax:
      return std::numeric_limits<A>::has_infinity ? -std::numeric_limits<A>::infinity()
                                                  : std::numeric_limits<A>::lowest();
    case Kind::kMin:
      return std::numeric_limits<A>::has_infinity ? std::numeric_limits<A>::infinity()
                                                  : std::numeric_limits<A>::max();
    case Kind::kProd: return A(1);
    default: return A(0);
  }
}

// Reduction geometry: the input dims collapsed into alternating kept/reduced groups.
struct Geometry {
  Shape out_shape;
  int64_t out_count = 0;
  int64_t reduce_count = 1;
  bool identity = false;  // noop_with_empty_axes with empty axes: output = input
  // General path: output o reads in[base(o) + roff[r]].
  std::vector<int64_t> kept_dims, kept_strides;  // for base(o), row-major over kept groups
  std::vector<int64_t> roff;
  bool contiguous = false;  // roff[r] == r
  // [outer, R, inner] path when the reduced dims form one group followed by kept dims.
  bool row_path = false;
  int64_t outer = 1, inner = 1;

  int64_t Base(int64_t o) const {
    int64_t off = 0;
    for (int64_t d = static_cast<int64_t>(kept_dims.size()) - 1; d >= 0; --d) {
      off += (o % kept_dims[d]) * kept_strides[d];
      o /= kept_dims[d];
    }
    return off;
  }
};

Geometry MakeGeometry(const Shape& shape, const std::vector<bool>& reduced, bool keepdims) {
  Geometry g;
  const size_t rank = shape.size();
  const std::vector<int64_t> strides = loops::ContiguousStrides(shape);
  // Groups of adjacent dims of the same kind (size-1 dims join any group).
  struct Group {
    bool reduced;
    int64_t size, stride;
  };
  std::vector<Group> groups;
  for (size_t i = 0; i < rank; ++i) {
    if (reduced[i]) g.reduce_count *= shape[i];
    if (keepdims) g.out_shape.push_back(reduced[i] ? 1 : shape[i]);
    else if (!reduced[i]) g.out_shape.push_back(shape[i]);
    if (shape[i] == 1) continue;
    if (!groups.empty() && groups.back().reduced == reduced[i]) {
      groups.back().size *= shape[i];
      groups.back().stride = strides[i];
    } else {
      groups.push_back({reduced[i], shape[i], strides[i]});
    }
  }
  g.out_count = NumElements(g.out_shape);
  std::vector<int64_t> rdims, rstrides;
  for (const Group& gr : groups) {
    if (gr.reduced) {
      rdims.push_back(gr.size);
      rstrides.push_back(gr.stride);
    } else {
      g.kept_dims.push_back(gr.size);
      g.kept_strides.push_back(gr.stride);
    }
  }
  if (rdims.size() == 1 && rstrides[0] != 1) {
    // One reduced group with kept dims after it: [outer, R, inner].
    g.row_path = true;
    g.inner = rstrides[0];
    g.outer = g.out_count / std::max<int64_t>(g.inner, 1);
  }
  g.contiguous = rdims.empty() || (rdims.size() == 1 && rstrides[0] == 1);
  if (!g.contiguous && g.reduce_count > 0) {
    g.roff.assign(static_cast<size_t>(g.reduce_count), 0);
    std::vector<int64_t> idx(rdims.size(), 0);
    for (int64_t r = 0; r < g.reduce_count; ++r) {
      int64_t off = 0;
      for (size_t d = 0; d < rdims.size(); ++d) off += idx[d] * rstrides[d];
      g.roff[static_cast<size_t>(r)] = off;
      for (int64_t d = static_cast<int64_t>(rdims.size()) - 1; d >= 0; --d) {
        if (++idx[d] < rdims[d]) break;
        idx[d] = 0;
      }
    }
  }
  return g;
}

class ReduceKernel final : public Kernel {
 public:
  ReduceKernel(const ir::Node& node, ReduceInfo info)
      : desc_(node.Describe()), info_(info), opset_(node.opset) {}

  Status Init(const ir::Node& node) {
    ASSIGN_OR_RETURN(int64_t keep, node.GetInt("keepdims", 1));
    ASSIGN_OR_RETURN(int64_t noop, node.GetInt("noop_with_empty_axes", 0));
    keepdims_ = keep != 0;
    noop_ = noop != 0;
    axes_from_input_ = opset_ >= 18 || (info_.kind == Kind::kSum && opset_ >= 13);
    if (!axes_from_input_) {
      ASSIGN_OR_RETURN(attr_axes_, node.GetInts("axes", std::vector<int64_t>{}));
    }
    return Status::OK();
  }

  Status Prepare(PrepareContext& ctx) override {
    RETURN_IF_ERROR(RequireInput(ctx, 0));
    const DataType dt = ctx.input_dtype(0);
    RETURN_IF_ERROR(loops::VisitNumeric(dt, desc_, [](auto) { return Status::OK(); }));
    const Shape& shape = ctx.input_shape(0);
    std::vector<int64_t> axes = attr_axes_;
    if (axes_from_input_ && ctx.has_input(1)) {
      const Tensor* a = ctx.input_value(1);
      if (a == nullptr) return DataDependentShape(ctx.node(), 1);
      ASSIGN_OR_RETURN(axes, loops::ReadInts(*a));
    }
    const int64_t rank = static_cast<int64_t>(shape.size());
    std::vector<bool> reduced(shape.size(), false);
    if (axes.empty()) {
      if (noop_) {
        geo_ = Geometry();
        geo_.identity = true;
        geo_.out_shape = shape;
        ctx.SetOutput(0, dt, shape);
        return Status::OK();
      }
      std::fill(reduced.begin(), reduced.end(), true);
    }
    for (int64_t a : axes) {
      if (a < -rank || a >= rank) {
        return InvalidArgument("{}: axis {} is out of range for rank {}", desc_, a, rank);
      }
      reduced[static_cast<size_t>(a < 0 ? a + rank : a)] = true;
    }
    geo_ = MakeGeometry(shape, reduced, keepdims_);
    if (geo_.reduce_count == 0 && geo_.out_count > 0 &&
        (info_.kind == Kind::kMax || info_.kind == Kind::kMin) && !kIsFloatType(dt)) {
      return InvalidArgument("{}: reducing an empty set of integers has no value", desc_);
    }
    ctx.SetOutput(0, dt, geo_.out_shape);
    return Status::OK();
  }

  Status Run(RunContext& ctx) const override {
    return loops::VisitNumeric(ctx.input(0).dtype, desc_, [&](auto tag) -> Status {
      using T = typename decltype(tag)::type;
      RunTyped<T>(ctx);
      return Status::OK();
    });
  }

 private:
  static bool kIsFloatType(DataType dt) {
    return dt == DataType::kFloat32 || dt == DataType::kFloat64 || dt == DataType::kFloat16 ||
           dt == DataType::kBFloat16;
  }

  template <typename T>
  void RunTyped(RunContext& ctx) const {
    using A = AccT<T>;
    const T* x = ctx.input(0).as<const T>();
    T* y = ctx.output(0).as<T>();
    const int threads = ctx.num_threads();
    const Geometry& g = geo_;
    if (g.identity) {
      if (static_cast<const void*>(x) != static_cast<const void*>(y)) {
        std::memcpy(y, x, ctx.input(0).plain_bytes());
      }
      return;
    }
    const Kind kind = info_.kind;
    const int64_t R = g.reduce_count;
    auto finish = [kind, R](A acc) -> T {
      switch (kind) {
        case Kind::kMean:
          if constexpr (kIsFloat<T>) return ConvertTo<T>(acc / static_cast<double>(R));
          else return static_cast<T>(R == 0 ? A(0) : static_cast<A>(acc / static_cast<A>(R)));
        case Kind::kL2: return ConvertTo<T>(std::sqrt(static_cast<double>(acc)));
        case Kind::kLogSum: return ConvertTo<T>(std::log(static_cast<double>(acc)));
        default: return ConvertTo<T>(acc);
      }
    };
    auto step = [kind](A acc, A v) -> A {
      switch (kind) {
        case Kind::kMax:
          if constexpr (std::is_floating_point_v<A>) {
            if (std::isnan(v)) return v;
          }
          return v > acc ? v : acc;
        case Kind::kMin:
          if constexpr (std::is_floating_point_v<A>) {
            if (std::isnan(v)) return v;
          }
          return v < acc ? v : acc;
        case Kind::kProd: return WrapMul<A>(acc, v);
        case Kind::kL1:
          if constexpr (std::is_signed_v<A>) return WrapAdd<A>(acc, v < 0 ? WrapNeg<A>(v) : v);
          else return WrapAdd<A>(acc, v);
        case Kind::kL2:
        case Kind::kSumSquare: return WrapAdd<A>(acc, WrapMul<A>(v, v));
        default: return WrapAdd<A>(acc, v);
      }
    };
    auto load = [](T v) -> A { return static_cast<A>(static_cast<ComputeT<T>>(v)); };

    if (kind == Kind::kLogSumExp) {
      loops::ParallelFor(g.out_count, threads, std::max<int64_t>(R, 1) * 8, [&](int64_t b, int64_t e) {
        for (int64_t o = b; o < e; ++o) {
          const int64_t base = g.Base(o);
          auto at = [&](int64_t r) { return load(x[base + (g.contiguous ? r : g.roff[r])]); };
          double m = -std::numeric_limits<double>::infinity();
          for (int64_t r = 0; r < R; ++r) m = std::max(m, static_cast<double>(at(r)));
          double s = 0;
          if (std::isinf(m)) {
            y[o] = ConvertTo<T>(m);
            continue;
          }
          for (int64_t r = 0; r < R; ++r) s += std::exp(static_cast<double>(at(r)) - m);
          y[o] = ConvertTo<T>(std::log(s) + m);
        }
      });
      return;
    }
    if (g.row_path && R > 1) {
      // [outer, R, inner]: accumulate whole rows so the inner loop is contiguous.
      const int64_t inner = g.inner;
      loops::ParallelFor(g.outer, threads, R * inner, [&](int64_t b, int64_t e) {
        std::vector<A> acc(static_cast<size_t>(inner));
        for (int64_t o = b; o < e; ++o) {
          std::fill(acc.begin(), acc.end(), InitValue<A>(kind));
          const T* px = x + o * R * inner;
          for (int64_t r = 0; r < R; ++r) {
            const T* row = px + r * inner;
            for (int64_t i = 0; i < inner; ++i) acc[i] = step(acc[i], load(row[i]));
          }
          T* py = y + o * inner;
          for (int64_t i = 0; i < inner; ++i) py[i] = finish(acc[i]);
        }
      });
      return;
    }
    loops::ParallelFor(g.out_count, threads, std::max<int64_t>(R, 1), [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; ++o) {
        const T* px = x + g.Base(o);
        A acc = InitValue<A>(kind);
        if (g.contiguous) {
          for (int64_t r = 0; r < R; ++r) acc = step(acc, load(px[r]));
        } else {
          for (int64_t r = 0; r < R; ++r) acc = step(acc, load(px[g.roff[r]]));
        }
        y[o] = finish(acc);
      }
    });
  }

  std::string desc_;
  ReduceInfo info_;
  int opset_;
  bool keepdims_ = true, noop_ = false, axes_from_input_ = false;
  std::vector<int64_t> attr_axes_;
  Geometry geo_;
};

// ---------------------------------------------------------------------------------------------

class ArgKernel final : public Kernel {
 public:
  ArgKernel(const ir::Node& node, bool is_max) : desc_(node.Describe()), is_max_(is_max) {}

  Status Init(const ir::Node& node) {
    ASSIGN_OR_RETURN(axis_, node.GetInt("axis", 0));
    ASSIGN_OR_RETURN(int64_t keep, node.GetInt("keepdims", 1));
    ASSIGN_OR_RETURN(int64_t last, node.GetInt("select_last_index", 0));
    keepdims_ = keep != 0;
    last_ = last != 0;
    return Status::OK();
  }

  Status Prepare(PrepareContext& ctx) override {
    RETURN_IF_ERROR(RequireInput(ctx, 0));
    RETURN_IF_ERROR(loops::VisitNumeric(ctx.input_dtype(0), desc_, [](auto) { return Status::OK(); }));
    const Shape& shape = ctx.input_shape(0);
    const int64_t rank = static_cast<int64_t>(shape.size());
    if (rank == 0 || axis_ < -rank || axis_ >= rank) {
      return InvalidArgument("{}: axis {} is out of range for rank {}", desc_, axis_, rank);
    }
    const int64_t axis = axis_ < 0 ? axis_ + rank : axis_;
    if (shape[axis] == 0 && NumElements(shape) == 0 && DimProduct(shape, axis) > 0) {
      return InvalidArgument("{}: cannot take the arg of an empty axis", desc_);
    }
    view_ = MakeAxisView(shape, axis);
    Shape out = shape;
    if (keepdims_) out[axis] = 1;
    else out.erase(out.begin() + axis);
    ctx.SetOutput(0, DataType::kInt64, out);
    return Status::OK();
  }

  Status Run(RunContext& ctx) const override {
    return loops::VisitNumeric(ctx.input(0).dtype, desc_, [&](auto tag) -> Status {
      using T = typename decltype(tag)::type;
      using C = ComputeT<T>;
      const T* x = ctx.input(0).as<const T>();
      int64_t* y = ctx.output(0).as<int64_t>();
      const AxisView v = view_;
      const bool is_max = is_max_, last = last_;
      loops::ParallelFor(v.outer * v.inner, ctx.num_threads(), v.dim, [&](int64_t b, int64_t e) {
        for (int64_t oi = b; oi < e; ++oi) {
          const int64_t o = oi / v.inner, i = oi % v.inner;
          const T* p = x + o * v.dim * v.inner + i;
          C best = static_cast<C>(p[0]);
          int64_t arg = 0;
          for (int64_t r = 1; r < v.dim; ++r) {
            const C val = static_cast<C>(p[r * v.inner]);
            const bool better = is_max ? (last ? val >= best : val > best) : (last ? val <= best : val < best);
            if (better) {
              best = val;
              arg = r;
            }
          }
          y[oi] = arg;
        }
      });
      return Status::OK();
    });
  }

 private:
  static int64_t DimProduct(const Shape& s, int64_t skip) {
    int64_t p = 1;
    for (size_t i = 0; i < s.size(); ++i) {
      if (static_cast<int64_t>(i) != skip) p *= s[i];
    }
    return p;
  }

  std::string desc_;
  bool is_max_;
  int64_t axis_ = 0;
  bool keepdims_ = true, last_ = false;
  AxisView view_;
};

// ---------------------------------------------------------------------------------------------

class CumSumKernel final : public Kernel {
 public:
  CumSumKernel(const ir::Node& node) : desc_(node.Describe()) {}

  Status Init(const ir::Node& node) {
    ASSIGN_OR_RETURN(int64_t ex, node.GetInt("exclusive", 0));
    ASSIGN_OR_RETURN(int64_t rev, node.GetInt("reverse", 0));
    exclusive_ = ex != 0;
    reverse_ = rev != 0;
    return Status::OK();
  }

  Status Prepare(PrepareContext& ctx) override {
    RETURN_IF_ERROR(RequireInput(ctx, 0));
    RETURN_IF_ERROR(RequireInput(ctx, 1));
    RETURN_IF_ERROR(loops::VisitNumeric(ctx.input_dtype(0), desc_, [](auto) { return Status::OK(); }));
    if (NumElements(ctx.input_shape(1)) != 1) {
      return InvalidArgument("{}: axis must be a scalar, got shape {}", desc_,
                             ShapeToString(ctx.input_shape(1)));
    }
    if (ctx.input_dtype(1) != DataType::kInt32 && ctx.input_dtype(1) != DataType::kInt64) {
      return InvalidArgument("{}: axis must be int32 or int64", desc_);
    }
    if (ctx.input_shape(0).empty()) return InvalidArgument("{}: input must have rank >= 1", desc_);
    ctx.SetOutput(0, ctx.input_dtype(0), ctx.input_shape(0));
    return Status::OK();
  }

  Status Run(RunContext& ctx) const override {
    ASSIGN_OR_RETURN(std::vector<int64_t> axis_v, loops::ReadInts(ctx.input(1)));
    const Shape& shape = ctx.input(0).shape;
    ASSIGN_OR_RETURN(int64_t axis, loops::NormalizeAxis(axis_v.at(0), static_cast<int64_t>(shape.size())));
    const AxisView v = MakeAxisView(shape, axis);
    return loops::VisitNumeric(ctx.input(0).dtype, desc_, [&](auto tag) -> Status {
      using T = typename decltype(tag)::type;
      using C = ComputeT<T>;
      const T* x = ctx.input(0).as<const T>();
      T* y = ctx.output(0).as<T>();
      const bool ex = exclusive_, rev = reverse_;
      loops::ParallelFor(v.outer, ctx.num_threads(), v.dim * v.inner, [&](int64_t b, int64_t e) {
        std::vector<C> acc(static_cast<size_t>(v.inner));
        for (int64_t o = b; o < e; ++o) {
          std::fill(acc.begin(), acc.end(), C(0));
          for (int64_t s = 0; s < v.dim; ++s) {
            const int64_t r = rev ? v.dim - 1 - s : s;
            const T* px = x + (o * v.dim + r) * v.inner;
            T* py = y + (o * v.dim + r) * v.inner;
            for (int64_t i = 0; i < v.inner; ++i) {
              const C xv = static_cast<C>(px[i]);
              if (ex) {
                py[i] = static_cast<T>(acc[i]);
                acc[i] = WrapAdd<C>(acc[i], xv);
              } else {
                acc[i] = WrapAdd<C>(acc[i], xv);
                py[i] = static_cast<T>(acc[i]);
              }
            }
          }
        }
      });
      return Status::OK();
    });
  }

 private:
  std::string desc_;
  bool exclusive_ = false, reverse_ = false;
};

// ---------------------------------------------------------------------------------------------

class TopKKernel final : public Kernel {
 public:
  TopKKernel(const ir::Node& node) : desc_(node.Describe()), opset_(node.opset) {}

  Status Init(const ir::Node& node) {
    ASSIGN_OR_RETURN(axis_, node.GetInt("axis", -1));
    ASSIGN_OR_RETURN(int64_t largest, node.GetInt("largest", 1));
    ASSIGN_OR_RETURN(int64_t sorted, node.GetInt("sorted", 1));
    largest_ = largest != 0;
    (void)sorted;  // results are always sorted, which satisfies both settings
    if (opset_ < 10) {
      ASSIGN_OR_RETURN(k_, node.GetInt("k"));
    }
    return Status::OK();
  }

  Status Prepare(PrepareContext& ctx) override {
    RETURN_IF_ERROR(RequireInput(ctx, 0));
    RETURN_IF_ERROR(loops::VisitNumeric(ctx.input_dtype(0), desc_, [](auto) { return Status::OK(); }));
    int64_t k = k_;
    if (opset_ >= 10) {
      RETURN_IF_ERROR(RequireInput(ctx, 1));
      const Tensor* kt = ctx.input_value(1);
      if (kt == nullptr) return DataDependentShape(ctx.node(), 1);
      if (kt->num_elements() != 1) {
        return InvalidArgument("{}: K must have one element, got shape {}", desc_, ShapeToString(kt->shape()));
      }
      ASSIGN_OR_RETURN(std::vector<int64_t> kv, loops::ReadInts(*kt));
      k = kv[0];
    }
    const Shape& shape = ctx.input_shape(0);
    const int64_t rank = static_cast<int64_t>(shape.size());
    if (rank == 0 || axis_ < -rank || axis_ >= rank) {
      return InvalidArgument("{}: axis {} is out of range for rank {}", desc_, axis_, rank);
    }
    const int64_t axis = axis_ < 0 ? axis_ + rank : axis_;
    if (k < 0 || k > shape[axis]) {
      return InvalidArgument("{}: K={} must be in [0, {}] (size of axis {})", desc_, k, shape[axis], axis);
    }
    k_run_ = k;
    view_ = MakeAxisView(shape, axis);
    Shape out = shape;
    out[axis] = k;
    ctx.SetOutput(0, ctx.input_dtype(0), out);
    if (ctx.num_outputs() > 1 && ctx.has_output(1)) ctx.SetOutput(1, DataType::kInt64, out);
    return Status::OK();
  }

  Status Run(RunContext& ctx) const override {
    return loops::VisitNumeric(ctx.input(0).dtype, desc_, [&](auto tag) -> Status {
      using T = typename decltype(tag)::type;
      using C = ComputeT<T>;
      const T* x = ctx.input(0).as<const T>();
      T* vals = ctx.output(0).as<T>();
      int64_t* idxs = ctx.num_outputs() > 1 && ctx.has_output(1) ? ctx.output(1).as<int64_t>() : nullptr;
      const AxisView v = view_;
      const int64_t k = k_run_;
      const bool largest = largest_;
      loops::ParallelFor(v.outer * v.inner, ctx.num_threads(), v.dim * 4, [&](int64_t b, int64_t e) {
        std::vector<std::pair<C, int64_t>> buf(static_cast<size_t>(v.dim));
        auto cmp = [largest](const std::pair<C, int64_t>& a, const std::pair<C, int64_t>& c) {
          if (a.first == c.first) return a.second < c.second;
          if constexpr (std::is_floating_point_v<C>) {
            // NaN sorts as the largest value.
            if (std::isnan(a.first) || std::isnan(c.first)) {
              if (std::isnan(a.first) && std::isnan(c.first)) return a.second < c.second;
              return largest ? std::isnan(a.first) : std::isnan(c.first);
            }
          }
          return largest ? a.first > c.first : a.first < c.first;
        };
        for (int64_t oi = b; oi < e; ++oi) {
          const int64_t o = oi / v.inner, i = oi % v.inner;
          const T* p = x + o * v.dim * v.inner + i;
          for (int64_t r = 0; r < v.dim; ++r) buf[r] = {static_cast<C>(p[r * v.inner]), r};
          std::partial_sort(buf.begin(), buf.begin() + k, buf.end(), cmp);
          T* pv = vals + o * k * v.inner + i;
          for (int64_t r = 0; r < k; ++r) pv[r * v.inner] = static_cast<T>(buf[r].first);
          if (idxs != nullptr) {
            int64_t* pi = idxs + o * k * v.inner + i;
            for (int64_t r = 0; r < k; ++r) pi[r * v.inner] = buf[r].second;
          }
        }
      });
      return Status::OK();
    });
  }

 private:
  std::string desc_;
  int opset_;
  int64_t axis_ = -1, k_ = 0, k_run_ = 0;
  bool largest_ = true;
  AxisView view_;
};

}  // namespace

void RegisterReduceKernels(KernelRegistry& registry) {
  for (const ReduceInfo& info : kReductions) {
    registry.Register("", info.name, MakeFactory<ReduceKernel>(info), 1);
  }
  registry.Register("", "ArgMax", MakeFactory<ArgKernel>(true), 1);
  registry.Register("", "ArgMin", MakeFactory<ArgKernel>(false), 1);
  registry.Register("", "CumSum", MakeFactory<CumSumKernel>(), 11);
  registry.Register("", "TopK", MakeFactory<TopKKernel>(), 1);
}

}  // namespace gpuhive::cpu::math
