// Shape-only and constant-producing operators: Shape, Size, Constant, ConstantOfShape, Range,
// EyeLike, Identity, Dropout (inference), Reshape, Flatten, Squeeze, Unsqueeze.
#include <set>

#include "kernels/cpu/loops/tensor_register.h"
#include "kernels/cpu/loops/tensor_util.h"

namespace gpuhive::cpu {
namespace {

using namespace tensor;  // NOLINT: private helpers of this kernel family

class ShapeKernel final : public Kernel {
 public:
  Status Prepare(PrepareContext& ctx) override {
    const Shape& in = ctx.input_shape(0);
    const int64_t r = static_cast<int64_t>(in.size());
    int64_t start = 0, end = r;
    if (ctx.opset() >= 15) {
      ASSIGN_OR_RETURN(start, ctx.node().GetInt("start", 0));
      ASSIGN_OR_RETURN(end, ctx.node().GetInt("end", r));
    }
    auto clamp = [r](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + r : v, 0, r); };
    start = clamp(start);
    end = clamp(end);
    dims_.assign(in.begin() + start, in.begin() + std::max(start, end));
    ctx.SetOutput(0, DataType::kInt64, {static_cast<int64_t>(dims_.size())});
    return Status::OK();
  }
  Status Run(RunContext& ctx) const override {
    if (!dims_.empty()) std::memcpy(ctx.output(0).data, dims_.data(), dims_.size() * 8);
    return Status::OK();
  }

 private:
  std::vector<int64_t> dims_;
};

class SizeKernel final : public Kernel {
 public:
  Status Prepare(PrepareContext& ctx) override {
    ctx.SetOutput(0, DataType::kInt64, {});
    return Status::OK();
  }
  Status Run(RunContext& ctx) const override {
    *ctx.output(0).as<int64_t>() = ctx.input(0).num_elements();
    return Status::OK();
  }
};

class ConstantKernel final : public Kernel {
 public:
  Status Prepare(PrepareContext& ctx) override {
    const ir::Node& n = ctx.node();
    if (n.has_attr("value")) {
      ASSIGN_OR_RETURN(value_, n.GetTensor("value"));
      if (!value_) return InvalidArgument("{}: empty 'value' attribute", n.Describe());
    } else if (n.has_attr("value_float")) {
      ASSIGN_OR_RETURN(float f, n.GetFloat("value_float"));
      ASSIGN_OR_RETURN(Tensor t, Tensor::FromVector(DataType::kFloat32, {}, std::vector<float>{f}));
      value_ = std::make_shared<const Tensor>(std::move(t));
    } else if (n.has_attr("value_floats")) {
      ASSIGN_OR_RETURN(std::vector<float> f, n.GetFloats("value_floats"));
      const int64_t len = static_cast<int64_t>(f.size());
      ASSIGN_OR_RETURN(Tensor t, Tensor::FromVector(DataType::kFloat32, {len}, f));
      value_ = std::make_shared<const Tensor>(std::move(t));
    } else if (n.has_attr("value_int")) {
      ASSIGN_OR_RETURN(int64_t v, n.GetInt("value_int"));
      ASSIGN_OR_RETURN(Tensor t, Tensor::FromVector(DataType::kInt64, {}, std::vector<int64_t>{v}));
      value_ = std::make_shared<const Tensor>(std::move(t));
    } else if (n.has_attr("value_ints")) {
      ASSIGN_OR_RETURN(std::vector<int64_t> v, n.GetInts("value_ints"));
      const int64_t len = static_cast<int64_t>(v.size());
      ASSIGN_OR_RETURN(Tensor t, Tensor::FromVector(DataType::kInt64, {len}, v));
      value_ = std::make_shared<const Tensor>(std::move(t));
    } else {
      return Unimplemented("{}: only value, value_float(s) and value_int(s) constants are supported",
                           n.Describe());
    }
    ctx.SetOutput(0, value_->dtype(), value_->shape());
    return Status::OK();
  }
  Status Run(RunContext& ctx) const override {
    if (value_->bytes()) std::memcpy(ctx.output(0).data, value_->data(), value_->bytes());
    return Status::OK();
  }

 private:
  ir::ConstTensor value_;
};

class ConstantOfShapeKernel final : public Kernel {
 public:
  Status Prepare(PrepareContext& ctx) override {
    const ir::Node& n = ctx.node();
    const Tensor* shape_value = ctx.input_value(0);
    if (shape_value == nullptr) return DataDependentShape(n, 0);
    ASSIGN_OR_RETURN(Shape shape, ReadInts(*shape_value, "ConstantOfShape input"));
    for (int64_t d : shape) {
      if (d < 0) return InvalidArgument("{}: negative dimension {}", n.Describe(), d);
    }
    dtype_ = DataType::kFloat32;
    std::memset(value_, 0, sizeof(value_));
    if (n.has_attr("value")) {
      ASSIGN_OR_RETURN(ir::ConstTensor v, n.GetTensor("value"));
      if (!v || v->num_elements() != 1 || !IsSupportedDataType(v->dtype())) {
        return InvalidArgument("{}: 'value' must be a one-element numeric tensor", n.Describe());
      }
      dtype_ = v->dtype();
      std::memcpy(value_, v->data(), v->bytes());
    }
    ctx.SetOutput(0, dtype_, std::move(shape));
    return Status::OK();
  }
  Status Run(RunContext& ctx) const override {
    const TensorView& out = ctx.output(0);
    DispatchBySize(DataTypeSize(dtype_), [&](auto tag) {
      using T = decltype(tag);
      T v;
      std::memcpy(&v, value_, sizeof(T));
      std::fill(out.as<T>(), out.as<T>() + out.num_elements(), v);
    });
    return Status::OK();
  }

 private:
  DataType dtype_ = DataType::kFloat32;
  unsigned char value_[8];
};

class RangeKernel final : public Kernel {
 public:
  Status Prepare(PrepareContext& ctx) override {
    const ir::Node& n = ctx.node();
    const DataType t = ctx.input_dtype(0);
    if (t != DataType::kFloat32 && t != DataType::kFloat64 && t != DataType::kInt16 &&
        t != DataType::kInt32 && t != DataType::kInt64) {
      return InvalidArgument("{}: unsupported dtype {}", n.Describe(), DataTypeName(t));
    }
    for (size_t i = 0; i < 3; ++i) {
      if (ctx.input_dtype(i) != t || NumElements(ctx.input_shape(i)) != 1) {
        return InvalidArgument("{}: start, limit and delta must be scalars of one dtype",
                               n.Describe());
      }
    }
    for (size_t i = 0; i < 3; ++i) {
      if (ctx.input_value(i) == nullptr) return DataDependentShape(n, i);
    }
    int64_t count;
    if (t == DataType::kFloat32 || t == DataType::kFloat64) {
      double s = ElementAsDouble(ctx.input_value(0)->data(), t, 0);
      double l = ElementAsDouble(ctx.input_value(1)->data(), t, 0);
      double d = ElementAsDouble(ctx.input_value(2)->data(), t, 0);
      if (d == 0 || !std::isfinite(s) || !std::isfinite(l) || !std::isfinite(d)) {
        return InvalidArgument("{}: delta must be non-zero and values finite", n.Describe());
      }
      count = static_cast<int64_t>(std::max(std::ceil((l - s) / d), 0.0));
    } else {
      int64_t s = static_cast<int64_t>(ElementAsDouble(ctx.input_value(0)->data(), t, 0));
      int64_t l = static_cast<int64_t>(ElementAsDouble(ctx.input_value(1)->data(), t, 0));
      int64_t d = static_cast<int64_t>(ElementAsDouble(ctx.input_value(2)->data(), t, 0));
      if (d == 0) return InvalidArgument("{}: delta must be non-zero", n.Describe());
      int64_t span = l - s;
      count = span / d + ((span % d != 0 && ((span < 0) == (d < 0))) ? 1 : 0);
      count = std::max<int64_t>(count, 0);
    }
    if (count > (int64_t{1} << 40)) return InvalidArgument("{}: range too long", n.Describe());
    ctx.SetOutput(0, t, {count});
    return Status::OK();
  }
  Status Run(RunContext& ctx) const override {
    const TensorView& out = ctx.output(0);
    const DataType t = out.dtype;
    const int64_t n = out.num_elements();
    if (t == DataType::kFloat32) {
      float s = *ctx.input(0).as<float>(), d = *ctx.input(2).as<float>();
      for (int64_t i = 0; i < n; ++i) out.as<float>()[i] = s + static_cast<float>(i) * d;
    } else if (t == DataType::kFloat64) {
      double s = *ctx.input(0).as<double>(), d = *ctx.input(2).as<double>();
      for (int64_t i = 0; i < n; ++i) out.as<double>()[i] = s + static_cast<double>(i) * d;
    } else {
      int64_t s = static_cast<int64_t>(ElementAsDouble(ctx.input(0).data, t, 0));
      int64_t d = static_cast<int64_t>(ElementAsDouble(ctx.input(2).data, t, 0));
      for (int64_t i = 0; i < n; ++i) StoreFromDouble(out.data, t, i, static_cast<double>(s + i * d));
    }
    return Status::OK();
  }
};

class EyeLikeKernel final : public Kernel {
 public:
  Status Prepare(PrepareContext& ctx) override {
    const ir::Node& n = ctx.node();
    const Shape& in = ctx.input_shape(0);
    if (in.size() != 2) return InvalidArgument("{}: input must be 2-D", n.Describe());
    ASSIGN_OR_RETURN(int64_t dt, n.GetInt("dtype", static_cast<int64_t>(ctx.input_dtype(0))));
    ASSIGN_OR_RETURN(k_, n.GetInt("k", 0));
    DataType dtype = static_cast<DataType>(dt);
    if (!IsSupportedDataType(dtype)) {
      return InvalidArgument("{}: unsupported dtype {}", n.Describe(), dt);
    }
    ctx.SetOutput(0, dtype, in);
    return Status::OK();
  }
  Status Run(RunContext& ctx) const override {
    const TensorView& out = ctx.output(0);
    if (out.plain_bytes()) std::memset(out.data, 0, out.plain_bytes());
    const int64_t rows = out.shape[0], cols = out.shape[1];
    for (int64_t i = 0; i < rows; ++i) {
      int64_t j = i + k_;
      if (j >= 0 && j < cols) StoreFromDouble(out.data, out.dtype, i * cols + j, 1.0);
    }
    return Status::OK();
  }

 private:
  int64_t k_ = 0;
};

// Output 0 is input 0's bytes (Identity, Reshape, Flatten, Squeeze, Unsqueeze, Dropout).
class AliasKernel : public Kernel {
 public:
  Status Run(RunContext& ctx) const override {
    CopyIfNotAliased(ctx.input(0), ctx.output(0));
    return Status::OK();
  }

 protected:
  Status Declare(PrepareContext& ctx, Shape shape) {
    if (NumElements(shape) != NumElements(ctx.input_shape(0))) {
      return InvalidArgument("{}: cannot reshape {} to {}", ctx.node().Describe(),
                             ShapeToString(ctx.input_shape(0)), ShapeToString(shape));
    }
    ctx.SetOutput(0, ctx.input_dtype(0), std::move(shape));
    ctx.AliasOutput(0, 0);
    return Status::OK();
  }
};

class IdentityKernel final : public AliasKernel {
 public:
  Status Prepare(PrepareContext& ctx) override { return Declare(ctx, ctx.input_shape(0)); }
};

class DropoutKernel final : public AliasKernel {
 public:
  Status Prepare(PrepareContext& ctx) override {
    RETURN_IF_ERROR(Declare(ctx, ctx.input_shape(0)));
    if (ctx.num_outputs() > 1 && ctx.has_output(1)) {
      mask_dtype_ = ctx.opset() >= 10 ? DataType::kBool : ctx.input_dtype(0);
      ctx.SetOutput(1, mask_dtype_, ctx.input_shape(0));
    }
    return Status::OK();
  }
  Status Run(RunContext& ctx) const override {
    if (ctx.num_inputs() > 2 && ctx.has_input(2) && ctx.input(2).num_elements() == 1 &&
        *ctx.input(2).as<uint8_t>() != 0) {
      double ratio = 0.5;
      if (ctx.has_input(1) && ctx.input(1).num_elements() == 1) {
        ratio = ElementAsDouble(ctx.input(1).data, ctx.input(1).dtype, 0);
      }
      if (ratio != 0.0) return Unimplemented("Dropout in training mode is not supported");
    }
    CopyIfNotAliased(ctx.input(0), ctx.output(0));
    if (ctx.num_outputs() > 1 && ctx.has_output(1)) {
      const TensorView& mask = ctx.output(1);
      for (int64_t i = 0; i < mask.num_elements(); ++i) StoreFromDouble(mask.data, mask.dtype, i, 1.0);
    }
    return Status::OK();
  }

 private:
  DataType mask_dtype_ = DataType::kBool;
};

class ReshapeKernel final : public AliasKernel {
 public:
  Status Prepare(PrepareContext& ctx) override {
    const ir::Node& n = ctx.node();
    std::vector<int64_t> target;
    if (ctx.opset() < 5) {
      ASSIGN_OR_RETURN(target, n.GetInts("shape"));
    } else {
      if (ctx.num_inputs() < 2 || !ctx.has_input(1)) {
        return InvalidArgument("{}: missing shape input", n.Describe());
      }
      const Tensor* v = ctx.input_value(1);
      if (v == nullptr) return DataDependentShape(n, 1);
      ASSIGN_OR_RETURN(target, ReadInts(*v, "Reshape shape"));
    }
    int64_t allowzero = 0;
    if (ctx.opset() >= 14) {
      ASSIGN_OR_RETURN(allowzero, n.GetInt("allowzero", 0));
    }
    const Shape& in = ctx.input_shape(0);
    Shape out(target.size());
    int64_t infer = -1, known = 1;
    bool has_zero = false;
    for (size_t i = 0; i < target.size(); ++i) {
      int64_t d = target[i];
      if (d == -1) {
        if (infer >= 0) return InvalidArgument("{}: more than one -1 in shape", n.Describe());
        infer = static_cast<int64_t>(i);
        continue;
      }
      if (d < -1) return InvalidArgument("{}: invalid dimension {}", n.Describe(), d);
      if (d == 0 && allowzero == 0) {
        if (i >= in.size()) {
          return InvalidArgument("{}: 0 at position {} but input rank is {}", n.Describe(), i,
                                 in.size());
        }
        d = in[i];
      }
      if (d == 0) has_zero = true;
      out[i] = d;
      known *= d;
    }
    if (infer >= 0) {
      if (has_zero && allowzero != 0) {
        return InvalidArgument("{}: -1 together with 0 under allowzero", n.Describe());
      }
      const int64_t total = NumElements(in);
      if (known == 0 || total % known != 0) {
        return InvalidArgument("{}: cannot reshape {} to {}", n.Describe(), ShapeToString(in),
                               ShapeToString(Shape(target.begin(), target.end())));
      }
      out[infer] = total / known;
    }
    return Declare(ctx, std::move(out));
  }
};

class FlattenKernel final : public AliasKernel {
 public:
  Status Prepare(PrepareContext& ctx) override {
    const Shape& in = ctx.input_shape(0);
    const int64_t r = static_cast<int64_t>(in.size());
    ASSIGN_OR_RETURN(int64_t axis, ctx.node().GetInt("axis", 1));
    if (axis < -r || axis > r) {
      return InvalidArgument("{}: axis {} out of range for rank {}", ctx.node().Describe(), axis, r);
    }
    if (axis < 0) axis += r;
    int64_t a = 1, b = 1;
    for (int64_t i = 0; i < r; ++i) (i < axis ? a : b) *= in[i];
    return Declare(ctx, {a, b});
  }
};

StatusOr<std::vector<int64_t>> AxesFromAttrOrInput(PrepareContext& ctx, bool* present,
                                                   bool* data_dependent) {
  *present = false;
  *data_dependent = false;
  if (ctx.opset() < 13) {
    if (!ctx.node().has_attr("axes")) return std::vector<int64_t>{};
    *present = true;
    return ctx.node().GetInts("axes");
  }
  if (ctx.num_inputs() < 2 || !ctx.has_input(1)) return std::vector<int64_t>{};
  *present = true;
  const Tensor* v = ctx.input_value(1);
  if (v == nullptr) {
    *data_dependent = true;
    return std::vector<int64_t>{};
  }
  return ReadInts(*v, "axes");
}

class SqueezeKernel final : public AliasKernel {
 public:
  Status Prepare(PrepareContext& ctx) override {
    const ir::Node& n = ctx.node();
    bool present, dd;
    ASSIGN_OR_RETURN(std::vector<int64_t> axes, AxesFromAttrOrInput(ctx, &present, &dd));
    if (dd) return DataDependentShape(n, 1);
    const Shape& in = ctx.input_shape(0);
    const int64_t r = static_cast<int64_t>(in.size());
    std::vector<bool> drop(in.size(), false);
    if (!present || axes.empty()) {  // an empty axes input means "all size-1 dims", as in ORT
      for (int64_t i = 0; i < r; ++i) drop[i] = in[i] == 1;
    }
    for (int64_t a : axes) {
      ASSIGN_OR_RETURN(int64_t ax, NormalizeAxis(a, r, n));
      if (in[ax] != 1) {
        return InvalidArgument("{}: cannot squeeze axis {} of size {}", n.Describe(), a, in[ax]);
      }
      drop[ax] = true;
    }
    Shape out;
    for (int64_t i = 0; i < r; ++i) {
      if (!drop[i]) out.push_back(in[i]);
    }
    return Declare(ctx, std::move(out));
  }
};

class UnsqueezeKernel final : public AliasKernel {
 public:
  Status Prepare(PrepareContext& ctx) override {
    const ir::Node& n = ctx.node();
    bool present, dd;
    ASSIGN_OR_RETURN(std::vector<int64_t> axes, AxesFromAttrOrInput(ctx, &present, &dd));
    if (dd) return DataDependentShape(n, 1);
    if (!present) return InvalidArgument("{}: axes are required", n.Describe());
    const Shape& in = ctx.input_shape(0);
    const int64_t r = static_cast<int64_t>(in.size() + axes.size());
    std::vector<bool> inserted(static_cast<size_t>(r), false);
    for (int64_t a : axes) {
      ASSIGN_OR_RETURN(int64_t ax, NormalizeAxis(a, r, n));
      if (inserted[ax]) return InvalidArgument("{}: repeated axis {}", n.Describe(), a);
      inserted[ax] = true;
    }
    Shape out;
    size_t k = 0;
    for (int64_t i = 0; i < r; ++i) out.push_back(inserted[i] ? 1 : in[k++]);
    return Declare(ctx, std::move(out));
  }
};

}  // namespace

void RegisterTensorShapeKernels(KernelRegistry& registry) {
  registry.Register("", "Shape", MakeFactory<ShapeKernel>());
  registry.Register("", "Size", MakeFactory<SizeKernel>());
  registry.Register("", "Constant", MakeFactory<ConstantKernel>());
  registry.Register("", "ConstantOfShape", MakeFactory<ConstantOfShapeKernel>());
  registry.Register("", "Range", MakeFactory<RangeKernel>());
  registry.Register("", "EyeLike", MakeFactory<EyeLikeKernel>());
  registry.Register("", "Identity", MakeFactory<IdentityKernel>());
  registry.Register("", "Dropout", MakeFactory<DropoutKernel>());
  registry.Register("", "Reshape", MakeFactory<ReshapeKernel>());
  registry.Register("", "Flatten", MakeFactory<FlattenKernel>());
  registry.Register("", "Squeeze", MakeFactory<SqueezeKernel>());
  registry.Register("", "Unsqueeze", MakeFactory<UnsqueezeKernel>());
}

}  // namespace gpuhive::cpu
