// Indexing operators: Gather, GatherElements, GatherND, Scatter, ScatterElements, ScatterND,
// OneHot, NonZero, Compress. Indices are validated in Run (negative ones wrap once); an index out
// of range is kInvalidArgument and nothing is read or written out of bounds.
#include "kernels/cpu/loops/tensor_register.h"
#include "kernels/cpu/loops/tensor_util.h"

namespace gpuhive::cpu {
namespace {

using namespace tensor;  // NOLINT: private helpers of this kernel family

Status CheckIndexType(const PrepareContext& ctx, size_t i) {
  DataType t = ctx.input_dtype(i);
  if (t != DataType::kInt32 && t != DataType::kInt64) {
    return InvalidArgument("{}: indices must be int32 or int64, got {}", ctx.node().Describe(),
                           DataTypeName(t));
  }
  return Status::OK();
}

// Reads indices and wraps negative ones once against `dim`.
StatusOr<std::vector<int64_t>> ReadIndices(const TensorView& t, int64_t dim, const char* op) {
  ASSIGN_OR_RETURN(std::vector<int64_t> idx, ReadInts(t, "indices"));
  for (int64_t& i : idx) {
    const int64_t w = i < 0 ? i + dim : i;
    if (w < 0 || w >= dim) return InvalidArgument("{}: index {} is out of range [-{}, {})", op, i, dim, dim);
    i = w;
  }
  return idx;
}

class GatherKernel final : public Kernel {
 public:
  Status Prepare(PrepareContext& ctx) override {
    const ir::Node& n = ctx.node();
    RETURN_IF_ERROR(CheckIndexType(ctx, 1));
    const Shape& data = ctx.input_shape(0);
    if (data.empty()) return InvalidArgument("{}: data must have rank >= 1", n.Describe());
    ASSIGN_OR_RETURN(int64_t axis, n.GetInt("axis", 0));
    ASSIGN_OR_RETURN(axis_, NormalizeAxis(axis, static_cast<int64_t>(data.size()), n));
    Shape out(data.begin(), data.begin() + axis_);
    const Shape& ind = ctx.input_shape(1);
    out.insert(out.end(), ind.begin(), ind.end());
    out.insert(out.end(), data.begin() + axis_ + 1, data.end());
    ctx.SetOutput(0, ctx.input_dtype(0), std::move(out));
    return Status::OK();
  }
  Status Run(RunContext& ctx) const override {
    const TensorView& data = ctx.input(0);
    const int64_t dim = data.shape[axis_];
    ASSIGN_OR_RETURN(std::vector<int64_t> idx, ReadIndices(ctx.input(1), dim, "Gather"));
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < static_cast<int64_t>(data.shape.size()); ++d) {
      if (d < axis_) outer *= data.shape[d];
      if (d > axis_) inner *= data.shape[d];
    }
    const int64_t k = static_cast<int64_t>(idx.size());
    const size_t block = static_cast<size_t>(inner) * DataTypeSize(data.dtype);
    if (block == 0 || k == 0 || outer == 0) return Status::OK();
    const char* src = static_cast<const char*>(data.data);
    char* dst = static_cast<char*>(ctx.output(0).data);
    ParallelFor(ctx.num_threads(), outer * k, inner, [&](int64_t b, int64_t e) {
      for (int64_t it = b; it < e; ++it) {
        const int64_t o = it / k, j = it % k;
        std::memcpy(dst + it * block, src + (o * dim + idx[j]) * block, block);
      }
    });
    return Status::OK();
  }

 private:
  int64_t axis_ = 0;
};

class GatherElementsKernel final : public Kernel {
 public:
  Status Prepare(PrepareContext& ctx) override {
    const ir::Node& n = ctx.node();
    RETURN_IF_ERROR(CheckIndexType(ctx, 1));
    const Shape& data = ctx.input_shape(0);
    const Shape& ind = ctx.input_shape(1);
    if (data.size() != ind.size() || data.empty()) {
      return InvalidArgument("{}: data and indices must have the same rank >= 1", n.Describe());
    }
    ASSIGN_OR_RETURN(int64_t axis, n.GetInt("axis", 0));
    ASSIGN_OR_RETURN(axis_, NormalizeAxis(axis, static_cast<int64_t>(data.size()), n));
    for (size_t d = 0; d < data.size(); ++d) {
      if (static_cast<int64_t>(d) != axis_ && ind[d] > data[d]) {
        return InvalidArgument("{}: indices shape {} exceeds data shape {}", n.Describe(),
                               ShapeToString(ind), ShapeToString(data));
      }
    }
    ctx.SetOutput(0, ctx.input_dtype(0), ind);
    return Status::OK();
  }
  Status Run(RunContext& ctx) const override {
    const TensorView& data = ctx.input(0);
    const TensorView& ind = ctx.input(1);
    ASSIGN_OR_RETURN(std::vector<int64_t> idx,
                     ReadIndices(ind, data.shape[axis_], "GatherElements"));
    const Shape ds = Strides(data.shape);
    const size_t r = ind.shape.size();
    const int64_t total = static_cast<int64_t>(idx.size());
    DispatchBySize(DataTypeSize(data.dtype), [&](auto tag) {
      using T = decltype(tag);
      const T* src = data.as<T>();
      T* dst = ctx.output(0).as<T>();
      std::vector<int64_t> c(r, 0);
      for (int64_t i = 0; i < total; ++i) {
        int64_t off = 0;
        for (size_t d = 0; d < r; ++d) {
          off += (static_cast<int64_t>(d) == axis_ ? idx[i] : c[d]) * ds[d];
        }
        dst[i] = src[off];
        for (size_t d = r; d-- > 0;) {
          if (++c[d] < ind.shape[d]) break;
          c[d] = 0;
        }
      }
    });
    return Status::OK();
  }

 private:
  int64_t axis_ = 0;
};

// Shared geometry of GatherND / ScatterND: index tuples of length k address slices of `slice`
// elements; batch_dims leading dims are shared between data and indices.
struct NdGeometry {
  int64_t batch_dims = 0, k = 0, tuples = 0, tuples_per_batch = 1, slice = 1, batch_stride = 0;
  Shape data_strides;

  Status Init(const Shape& data, const Shape& ind, int64_t b, const ir::Node& n) {
    batch_dims = b;
    const int64_t r = static_cast<int64_t>(data.size()), q = static_cast<int64_t>(ind.size());
    if (q < 1 || b < 0 || b >= std::min(r, q)) {
      return InvalidArgument("{}: bad ranks (data {}, indices {}, batch_dims {})", n.Describe(), r, q, b);
    }
    k = ind.back();
    if (k < 1 || k > r - b) return InvalidArgument("{}: indices last dim {} out of range", n.Describe(), k);
    for (int64_t d = 0; d < b; ++d) {
      if (data[d] != ind[d]) return InvalidArgument("{}: batch dims differ", n.Describe());
    }
    tuples = NumElements(Shape(ind.begin(), ind.end() - 1));
    tuples_per_batch = NumElements(Shape(ind.begin() + b, ind.end() - 1));
    slice = NumElements(Shape(data.begin() + b + k, data.end()));
    batch_stride = NumElements(Shape(data.begin() + b, data.end()));
    data_strides = Strides(data);
    return Status::OK();
  }
  // Element offset in data of every tuple's slice; error for an out-of-range index.
  StatusOr<std::vector<int64_t>> Offsets(const TensorView& ind, const Shape& data, const char* op) const {
    ASSIGN_OR_RETURN(std::vector<int64_t> idx, ReadInts(ind, "indices"));
    std::vector<int64_t> off(static_cast<size_t>(tuples));
    for (int64_t t = 0; t < tuples; ++t) {
      int64_t o = (tuples_per_batch ? t / tuples_per_batch : 0) * batch_stride;
      for (int64_t j = 0; j < k; ++j) {
        const int64_t dim = data[batch_dims + j];
        int64_t i = idx[t * k + j];
        if (i < 0) i += dim;
        if (i < 0 || i >= dim) {
          return InvalidArgument("{}: index {} is out of range for dim {}", op, idx[t * k + j], dim);
        }
        o += i * data_strides[batch_dims + j];
      }
      off[t] = o;
    }
    return off;
  }
};

class GatherNDKernel final : public Kernel {
 public:
  Status Prepare(PrepareContext& ctx) override {
    const ir::Node& n = ctx.node();
    if (ctx.input_dtype(1) != DataType::kInt64) {
      return InvalidArgument("{}: indices must be int64", n.Describe());
    }
    int64_t b = 0;
    if (ctx.opset() >= 12) {
      ASSIGN_OR_RETURN(b, n.GetInt("batch_dims", 0));
    }
    const Shape& data = ctx.input_shape(0);
    const Shape& ind = ctx.input_shape(1);
    RETURN_IF_ERROR(geo_.Init(data, ind, b, n));
    Shape out(ind.begin(), ind.end() - 1);
    out.insert(out.end(), data.begin() + b + geo_.k, data.end());
    ctx.SetOutput(0, ctx.input_dtype(0), std::move(out));
    return Status::OK();
  }
  Status Run(RunContext& ctx) const override {
    const TensorView& data = ctx.input(0);
    ASSIGN_OR_RETURN(std::vector<int64_t> off, geo_.Offsets(ctx.input(1), data.shape, "GatherND"));
    const size_t es = DataTypeSize(data.dtype), block = static_cast<size_t>(geo_.slice) * es;
    if (block == 0) return Status::OK();
    const char* src = static_cast<const char*>(data.data);
    char* dst = static_cast<char*>(ctx.output(0).data);
    ParallelFor(ctx.num_threads(), geo_.tuples, geo_.slice, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) std::memcpy(dst + t * block, src + off[t] * es, block);
    });
    return Status::OK();
  }

 private:
  NdGeometry geo_;
};

enum class Reduction { kNone, kAdd, kMul, kMax, kMin };

StatusOr<Reduction> ParseReduction(const ir::Node& n) {
  ASSIGN_OR_RETURN(std::string r, n.GetString("reduction", "none"));
  if (r == "none") return Reduction::kNone;
  if (r == "add") return Reduction::kAdd;
  if (r == "mul") return Reduction::kMul;
  if (r == "max") return Reduction::kMax;
  if (r == "min") return Reduction::kMin;
  return InvalidArgument("{}: unknown reduction '{}'", n.Describe(), r);
}

template <typename T>
T Combine(T a, T b, Reduction r) {
  switch (r) {
    case Reduction::kAdd: return static_cast<T>(a + b);
    case Reduction::kMul: return static_cast<T>(a * b);
    case Reduction::kMax: return std::max(a, b);
    case Reduction::kMin: return std::min(a, b);
    default: return b;
  }
}

// out[oi] = reduce(out[oi], upd[ui]) for any supported dtype.
void Apply(void* out, int64_t oi, const void* upd, int64_t ui, DataType t, Reduction r) {
  const size_t es = DataTypeSize(t);
  if (r == Reduction::kNone) {
    std::memcpy(static_cast<char*>(out) + oi * es, static_cast<const char*>(upd) + ui * es, es);
    return;
  }
  switch (t) {
#define GH_CASE(DT, T)                                                                        \
  case DT:                                                                                    \
    static_cast<T*>(out)[oi] = Combine<T>(static_cast<T*>(out)[oi], static_cast<const T*>(upd)[ui], r); \
    break;
    GH_CASE(DataType::kFloat32, float)
    GH_CASE(DataType::kFloat64, double)
    GH_CASE(DataType::kInt8, int8_t)
    GH_CASE(DataType::kUint8, uint8_t)
    GH_CASE(DataType::kInt16, int16_t)
    GH_CASE(DataType::kUint16, uint16_t)
    GH_CASE(DataType::kInt32, int32_t)
    GH_CASE(DataType::kUint32, uint32_t)
    GH_CASE(DataType::kInt64, int64_t)
    GH_CASE(DataType::kUint64, uint64_t)
#undef GH_CASE
    case DataType::kBool: {
      uint8_t& o = static_cast<uint8_t*>(out)[oi];
      const uint8_t u = static_cast<const uint8_t*>(upd)[ui];
      o = (r == Reduction::kAdd || r == Reduction::kMax) ? (o || u) : (o && u);
      break;
    }
    default: {  // fp16 / bf16 through float
      const double a = ElementAsDouble(out, t, oi), b = ElementAsDouble(upd, t, ui);
      StoreFromDouble(out, t, oi, Combine<float>(static_cast<float>(a), static_cast<float>(b), r));
    }
  }
}

class ScatterElementsKernel final : public Kernel {
 public:
  Status Prepare(PrepareContext& ctx) override {
    const ir::Node& n = ctx.node();
    RETURN_IF_ERROR(CheckIndexType(ctx, 1));
    const Shape& data = ctx.input_shape(0);
    const Shape& ind = ctx.input_shape(1);
    if (ind != ctx.input_shape(2) || ind.size() != data.size() || data.empty()) {
      return InvalidArgument("{}: indices and updates must have one shape of the data's rank",
                             n.Describe());
    }
    if (ctx.input_dtype(2) != ctx.input_dtype(0)) {
      return InvalidArgument("{}: updates dtype differs from data", n.Describe());
    }
    ASSIGN_OR_RETURN(int64_t axis, n.GetInt("axis", 0));
    ASSIGN_OR_RETURN(axis_, NormalizeAxis(axis, static_cast<int64_t>(data.size()), n));
    for (size_t d = 0; d < data.size(); ++d) {
      if (static_cast<int64_t>(d) != axis_ && ind[d] > data[d]) {
        return InvalidArgument("{}: indices shape exceeds data shape", n.Describe());
      }
    }
    reduction_ = Reduction::kNone;
    if (n.op_type == "ScatterElements" && ctx.opset() >= 16) {
      ASSIGN_OR_RETURN(reduction_, ParseReduction(n));
    }
    ctx.SetOutput(0, ctx.input_dtype(0), data);
    ctx.AllowInPlace(0, 0);
    return Status::OK();
  }
  Status Run(RunContext& ctx) const override {
    const TensorView& data = ctx.input(0);
    const TensorView& ind = ctx.input(1);
    const TensorView& out = ctx.output(0);
    ASSIGN_OR_RETURN(std::vector<int64_t> idx, ReadIndices(ind, data.shape[axis_], "ScatterElements"));
    CopyIfNotAliased(data, out);
    const Shape ds = Strides(data.shape);
    const size_t r = ind.shape.size();
    std::vector<int64_t> c(r, 0);
    for (int64_t i = 0; i < static_cast<int64_t>(idx.size()); ++i) {
      int64_t off = 0;
      for (size_t d = 0; d < r; ++d) off += (static_cast<int64_t>(d) == axis_ ? idx[i] : c[d]) * ds[d];
      Apply(out.data, off, ctx.input(2).data, i, data.dtype, reduction_);
      for (size_t d = r; d-- > 0;) {
        if (++c[d] < ind.shape[d]) break;
        c[d] = 0;
      }
    }
    return Status::OK();
  }

 private:
  int64_t axis_ = 0;
  Reduction reduction_ = Reduction::kNone;
};

class ScatterNDKernel final : public Kernel {
 public:
  Status Prepare(PrepareContext& ctx) override {
    const ir::Node& n = ctx.node();
    if (ctx.input_dtype(1) != DataType::kInt64) return InvalidArgument("{}: indices must be int64", n.Describe());
    const Shape& data = ctx.input_shape(0);
    const Shape& ind = ctx.input_shape(1);
    RETURN_IF_ERROR(geo_.Init(data, ind, 0, n));
    Shape upd(ind.begin(), ind.end() - 1);
    upd.insert(upd.end(), data.begin() + geo_.k, data.end());
    if (ctx.input_shape(2) != upd || ctx.input_dtype(2) != ctx.input_dtype(0)) {
      return InvalidArgument("{}: updates must have shape {} and the data's dtype", n.Describe(),
                             ShapeToString(upd));
    }
    reduction_ = Reduction::kNone;
    if (ctx.opset() >= 16) {
      ASSIGN_OR_RETURN(reduction_, ParseReduction(n));
    }
    ctx.SetOutput(0, ctx.input_dtype(0), data);
    ctx.AllowInPlace(0, 0);
    return Status::OK();
  }
  Status Run(RunContext& ctx) const override {
    const TensorView& data = ctx.input(0);
    const TensorView& out = ctx.output(0);
    ASSIGN_OR_RETURN(std::vector<int64_t> off, geo_.Offsets(ctx.input(1), data.shape, "ScatterND"));
    CopyIfNotAliased(data, out);
    const void* upd = ctx.input(2).data;
    for (int64_t t = 0; t < geo_.tuples; ++t) {
      for (int64_t j = 0; j < geo_.slice; ++j) {
        Apply(out.data, off[t] + j, upd, t * geo_.slice + j, data.dtype, reduction_);
      }
    }
    return Status::OK();
  }

 private:
  NdGeometry geo_;
  Reduction reduction_ = Reduction::kNone;
};

class OneHotKernel final : public Kernel {
 public:
  Status Prepare(PrepareContext& ctx) override {
    const ir::Node& n = ctx.node();
    const Tensor* dv = ctx.input_value(1);
    if (dv == nullptr) return DataDependentShape(n, 1);
    if (dv->num_elements() != 1) return InvalidArgument("{}: depth must be a scalar", n.Describe());
    const double depth = ElementAsDouble(dv->data(), dv->dtype(), 0);
    if (!(depth >= 1) || depth > 1e12) return InvalidArgument("{}: bad depth {}", n.Describe(), depth);
    depth_ = static_cast<int64_t>(depth);
    if (NumElements(ctx.input_shape(2)) != 2) {
      return InvalidArgument("{}: values must have two elements", n.Describe());
    }
    const Shape& ind = ctx.input_shape(0);
    const int64_t r = static_cast<int64_t>(ind.size());
    ASSIGN_OR_RETURN(int64_t axis, n.GetInt("axis", -1));
    ASSIGN_OR_RETURN(axis_, NormalizeAxis(axis, r + 1, n));
    Shape out = ind;
    out.insert(out.begin() + axis_, depth_);
    ctx.SetOutput(0, ctx.input_dtype(2), std::move(out));
    return Status::OK();
  }
  Status Run(RunContext& ctx) const override {
    const TensorView& ind = ctx.input(0);
    const TensorView& vals = ctx.input(2);
    const TensorView& out = ctx.output(0);
    int64_t inner = 1;
    for (size_t d = static_cast<size_t>(axis_); d < ind.shape.size(); ++d) inner *= ind.shape[d];
    const int64_t total = ind.num_elements();
    DispatchBySize(DataTypeSize(out.dtype), [&](auto tag) {
      using T = decltype(tag);
      const T off = vals.as<T>()[0], on = vals.as<T>()[1];
      T* o = out.as<T>();
      std::fill(o, o + out.num_elements(), off);
      for (int64_t i = 0; i < total; ++i) {
        const double v = ElementAsDouble(ind.data, ind.dtype, i);
        if (!(v >= -static_cast<double>(depth_) && v < static_cast<double>(depth_))) continue;
        int64_t k = static_cast<int64_t>(v);
        if (k < 0) k += depth_;
        const int64_t outer = i / inner, in = i % inner;
        o[(outer * depth_ + k) * inner + in] = on;
      }
    });
    return Status::OK();
  }

 private:
  int64_t depth_ = 1, axis_ = 0;
};

bool IsNonZero(const void* data, DataType t, int64_t i) {
  switch (t) {
    case DataType::kFloat32: return static_cast<const float*>(data)[i] != 0.f;
    case DataType::kFloat64: return static_cast<const double*>(data)[i] != 0.0;
    case DataType::kFloat16:
    case DataType::kBFloat16: return (static_cast<const uint16_t*>(data)[i] & 0x7fff) != 0;
    default:
      return DispatchBySize(DataTypeSize(t), [&](auto tag) {
        using T = decltype(tag);
        return static_cast<const T*>(data)[i] != 0;
      });
  }
}

class NonZeroKernel final : public Kernel {
 public:
  Status Prepare(PrepareContext& ctx) override {
    const Tensor* v = ctx.input_value(0);
    if (v == nullptr) return DataDependentShape(ctx.node(), 0);
    int64_t count = 0;
    for (int64_t i = 0; i < v->num_elements(); ++i) count += IsNonZero(v->data(), v->dtype(), i);
    const int64_t r = std::max<int64_t>(static_cast<int64_t>(v->shape().size()), 1);
    ctx.SetOutput(0, DataType::kInt64, {r, count});
    return Status::OK();
  }
  Status Run(RunContext& ctx) const override {
    const TensorView& in = ctx.input(0);
    const TensorView& out = ctx.output(0);
    const int64_t count = out.shape[1], total = in.num_elements();
    const size_t r = in.shape.size();
    Shape dims = r == 0 ? Shape{1} : in.shape;
    std::vector<int64_t> c(dims.size(), 0);
    int64_t k = 0;
    for (int64_t i = 0; i < total; ++i) {
      if (IsNonZero(in.data, in.dtype, i)) {
        if (k >= count) return InvalidArgument("NonZero: input changed after its shape was planned");
        for (size_t d = 0; d < dims.size(); ++d) out.as<int64_t>()[d * count + k] = c[d];
        ++k;
      }
      for (size_t d = dims.size(); d-- > 0;) {
        if (++c[d] < dims[d]) break;
        c[d] = 0;
      }
    }
    if (k != count) return InvalidArgument("NonZero: input changed after its shape was planned");
    return Status::OK();
  }
};

class CompressKernel final : public Kernel {
 public:
  Status Prepare(PrepareContext& ctx) override {
    const ir::Node& n = ctx.node();
    const Tensor* cond = ctx.input_value(1);
    if (cond == nullptr) return DataDependentShape(n, 1);
    if (cond->dtype() != DataType::kBool || cond->shape().size() != 1) {
      return InvalidArgument("{}: condition must be a 1-D bool tensor", n.Describe());
    }
    const Shape& in = ctx.input_shape(0);
    has_axis_ = n.has_attr("axis");
    int64_t dim = NumElements(in);
    if (has_axis_) {
      ASSIGN_OR_RETURN(int64_t axis, n.GetInt("axis"));
      ASSIGN_OR_RETURN(axis_, NormalizeAxis(axis, static_cast<int64_t>(in.size()), n));
      dim = in[axis_];
    }
    if (cond->num_elements() > dim) {
      return InvalidArgument("{}: condition has {} entries for {} slices", n.Describe(),
                             cond->num_elements(), dim);
    }
    int64_t count = 0;
    for (int64_t i = 0; i < cond->num_elements(); ++i) count += cond->as<uint8_t>()[i] != 0;
    Shape out = has_axis_ ? in : Shape{count};
    if (has_axis_) out[axis_] = count;
    ctx.SetOutput(0, ctx.input_dtype(0), std::move(out));
    return Status::OK();
  }
  Status Run(RunContext& ctx) const override {
    const TensorView& in = ctx.input(0);
    const TensorView& cond = ctx.input(1);
    const TensorView& out = ctx.output(0);
    const size_t es = DataTypeSize(in.dtype);
    int64_t outer = 1, dim = in.num_elements(), inner = 1;
    if (has_axis_) {
      dim = in.shape[axis_];
      for (int64_t d = 0; d < static_cast<int64_t>(in.shape.size()); ++d) {
        if (d < axis_) outer *= in.shape[d];
        if (d > axis_) inner *= in.shape[d];
      }
    }
    const int64_t count = has_axis_ ? out.shape[axis_] : out.shape[0];
    const int64_t nc = std::min(cond.num_elements(), dim);
    std::vector<int64_t> picked;
    for (int64_t i = 0; i < nc; ++i) {
      if (cond.as<uint8_t>()[i]) picked.push_back(i);
    }
    if (static_cast<int64_t>(picked.size()) != count) {
      return InvalidArgument("Compress: condition changed after its shape was planned");
    }
    const size_t block = static_cast<size_t>(inner) * es;
    const char* src = static_cast<const char*>(in.data);
    char* dst = static_cast<char*>(out.data);
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t j = 0; j < count; ++j) {
        std::memcpy(dst + (o * count + j) * block, src + (o * dim + picked[j]) * block, block);
      }
    }
    return Status::OK();
  }

 private:
  bool has_axis_ = false;
  int64_t axis_ = 0;
};

}  // namespace

void RegisterTensorIndexKernels(KernelRegistry& registry) {
  registry.Register("", "Gather", MakeFactory<GatherKernel>());
  registry.Register("", "GatherElements", MakeFactory<GatherElementsKernel>());
  registry.Register("", "GatherND", MakeFactory<GatherNDKernel>());
  registry.Register("", "Scatter", MakeFactory<ScatterElementsKernel>());
  registry.Register("", "ScatterElements", MakeFactory<ScatterElementsKernel>());
  registry.Register("", "ScatterND", MakeFactory<ScatterNDKernel>());
  registry.Register("", "OneHot", MakeFactory<OneHotKernel>());
  registry.Register("", "NonZero", MakeFactory<NonZeroKernel>());
  registry.Register("", "Compress", MakeFactory<CompressKernel>());
}

}  // namespace gpuhive::cpu
