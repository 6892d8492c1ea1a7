// Data-movement operators: Transpose, DepthToSpace, SpaceToDepth, Concat, Split, Slice, Expand,
// Tile, Pad, Trilu, ReverseSequence. All move raw elements, so every dtype is supported.
#include "kernels/cpu/loops/tensor_register.h"
#include "kernels/cpu/loops/tensor_util.h"

namespace gpuhive::cpu {
namespace {

using namespace tensor;  // NOLINT: private helpers of this kernel family

class TransposeKernel final : public Kernel {
 public:
  Status Prepare(PrepareContext& ctx) override {
    const ir::Node& n = ctx.node();
    in_shape_ = ctx.input_shape(0);
    const size_t r = in_shape_.size();
    std::vector<int64_t> def(r);
    for (size_t i = 0; i < r; ++i) def[i] = static_cast<int64_t>(r - 1 - i);
    ASSIGN_OR_RETURN(perm_, n.GetInts("perm", def));
    if (perm_.size() != r) {
      return InvalidArgument("{}: perm has {} entries for rank {}", n.Describe(), perm_.size(), r);
    }
    std::vector<bool> seen(r, false);
    Shape out(r);
    for (size_t i = 0; i < r; ++i) {
      int64_t p = perm_[i];
      if (p < 0) p += static_cast<int64_t>(r);
      if (p < 0 || p >= static_cast<int64_t>(r) || seen[p]) {
        return InvalidArgument("{}: perm is not a permutation", n.Describe());
      }
      seen[p] = true;
      perm_[i] = p;
      out[i] = in_shape_[p];
    }
    ctx.SetOutput(0, ctx.input_dtype(0), std::move(out));
    return Status::OK();
  }
  Status Run(RunContext& ctx) const override {
    const TensorView& in = ctx.input(0);
    TransposeCopy(in.data, in.shape, perm_, ctx.output(0).data, DataTypeSize(in.dtype),
                  ctx.num_threads());
    return Status::OK();
  }

 private:
  Shape in_shape_;
  std::vector<int64_t> perm_;
};

// DepthToSpace / SpaceToDepth: a reshape to 6-D, a transpose and a reshape back.
class SpaceDepthKernel final : public Kernel {
 public:
  explicit SpaceDepthKernel(bool to_space) : to_space_(to_space) {}
  Status Prepare(PrepareContext& ctx) override {
    const ir::Node& n = ctx.node();
    const Shape& in = ctx.input_shape(0);
    if (in.size() != 4) return InvalidArgument("{}: input must be 4-D NCHW", n.Describe());
    ASSIGN_OR_RETURN(int64_t b, n.GetInt("blocksize"));
    if (b <= 0) return InvalidArgument("{}: blocksize must be positive", n.Describe());
    const int64_t N = in[0], C = in[1], H = in[2], W = in[3];
    if (to_space_) {
      ASSIGN_OR_RETURN(std::string mode, n.GetString("mode", "DCR"));
      if (C % (b * b) != 0) {
        return InvalidArgument("{}: channels {} not divisible by blocksize^2", n.Describe(), C);
      }
      const int64_t c = C / (b * b);
      if (mode == "DCR") {
        view_ = {N, b, b, c, H, W};
        perm_ = {0, 3, 4, 1, 5, 2};
      } else if (mode == "CRD") {
        view_ = {N, c, b, b, H, W};
        perm_ = {0, 1, 4, 2, 5, 3};
      } else {
        return InvalidArgument("{}: unknown mode '{}'", n.Describe(), mode);
      }
      ctx.SetOutput(0, ctx.input_dtype(0), {N, c, H * b, W * b});
    } else {
      if (H % b != 0 || W % b != 0) {
        return InvalidArgument("{}: spatial dims not divisible by blocksize", n.Describe());
      }
      view_ = {N, C, H / b, b, W / b, b};
      perm_ = {0, 3, 5, 1, 2, 4};
      ctx.SetOutput(0, ctx.input_dtype(0), {N, C * b * b, H / b, W / b});
    }
    return Status::OK();
  }
  Status Run(RunContext& ctx) const override {
    TransposeCopy(ctx.input(0).data, view_, perm_, ctx.output(0).data,
                  DataTypeSize(ctx.input(0).dtype), ctx.num_threads());
    return Status::OK();
  }

 private:
  bool to_space_;
  Shape view_;
  std::vector<int64_t> perm_;
};

class ConcatKernel final : public Kernel {
 public:
  Status Prepare(PrepareContext& ctx) override {
    const ir::Node& n = ctx.node();
    std::optional<int64_t> none;
    ASSIGN_OR_RETURN(int64_t axis, n.GetInt("axis", ctx.opset() < 4 ? std::optional<int64_t>(1) : none));
    if (ctx.num_inputs() == 0) return InvalidArgument("{}: no inputs", n.Describe());
    Shape out = ctx.input_shape(0);
    const int64_t r = static_cast<int64_t>(out.size());
    ASSIGN_OR_RETURN(axis_, NormalizeAxis(axis, r, n));
    for (size_t i = 1; i < ctx.num_inputs(); ++i) {
      const Shape& s = ctx.input_shape(i);
      if (static_cast<int64_t>(s.size()) != r || ctx.input_dtype(i) != ctx.input_dtype(0)) {
        return InvalidArgument("{}: input {} has a different rank or dtype", n.Describe(), i);
      }
      for (int64_t d = 0; d < r; ++d) {
        if (d != axis_ && s[d] != out[d]) {
          return InvalidArgument("{}: input {} shape {} does not match {}", n.Describe(), i,
                                 ShapeToString(s), ShapeToString(out));
        }
      }
      out[axis_] += s[axis_];
    }
    ctx.SetOutput(0, ctx.input_dtype(0), std::move(out));
    return Status::OK();
  }
  Status Run(RunContext& ctx) const override {
    const TensorView& out = ctx.output(0);
    const size_t es = DataTypeSize(out.dtype);
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < static_cast<int64_t>(out.shape.size()); ++d) {
      if (d < axis_) outer *= out.shape[d];
      if (d > axis_) inner *= out.shape[d];
    }
    const size_t out_row = static_cast<size_t>(out.shape[axis_] * inner) * es;
    size_t offset = 0;
    for (size_t i = 0; i < ctx.num_inputs(); ++i) {
      const TensorView& in = ctx.input(i);
      const size_t row = static_cast<size_t>(in.shape[axis_] * inner) * es;
      if (row > 0) {
        const char* src = static_cast<const char*>(in.data);
        char* dst = static_cast<char*>(out.data) + offset;
        ParallelFor(ctx.num_threads(), outer, static_cast<int64_t>(row / es), [&](int64_t b, int64_t e) {
          for (int64_t o = b; o < e; ++o) std::memcpy(dst + o * out_row, src + o * row, row);
        });
      }
      offset += row;
    }
    return Status::OK();
  }

 private:
  int64_t axis_ = 0;
};

class SplitKernel final : public Kernel {
 public:
  Status Prepare(PrepareContext& ctx) override {
    const ir::Node& n = ctx.node();
    const Shape& in = ctx.input_shape(0);
    ASSIGN_OR_RETURN(int64_t axis, n.GetInt("axis", 0));
    ASSIGN_OR_RETURN(axis_, NormalizeAxis(axis, static_cast<int64_t>(in.size()), n));
    const int64_t outputs = static_cast<int64_t>(ctx.num_outputs());
    if (ctx.opset() < 13) {
      ASSIGN_OR_RETURN(sizes_, n.GetInts("split", std::vector<int64_t>{}));
    } else if (ctx.num_inputs() > 1 && ctx.has_input(1)) {
      const Tensor* v = ctx.input_value(1);
      if (v == nullptr) return DataDependentShape(n, 1);
      ASSIGN_OR_RETURN(sizes_, ReadInts(*v, "split"));
    } else {
      sizes_.clear();
    }
    const int64_t dim = in[axis_];
    if (sizes_.empty()) {
      if (outputs <= 0 || dim % outputs != 0) {
        return InvalidArgument("{}: dim {} cannot be split evenly into {} outputs", n.Describe(),
                               dim, outputs);
      }
      sizes_.assign(static_cast<size_t>(outputs), dim / outputs);
    }
    if (static_cast<int64_t>(sizes_.size()) != outputs) {
      return InvalidArgument("{}: {} split sizes for {} outputs", n.Describe(), sizes_.size(), outputs);
    }
    int64_t sum = 0;
    for (int64_t s : sizes_) {
      if (s < 0) return InvalidArgument("{}: negative split size", n.Describe());
      sum += s;
    }
    if (sum != dim) {
      return InvalidArgument("{}: split sizes sum to {} but the axis has {}", n.Describe(), sum, dim);
    }
    for (int64_t i = 0; i < outputs; ++i) {
      Shape s = in;
      s[axis_] = sizes_[i];
      if (ctx.has_output(i)) ctx.SetOutput(i, ctx.input_dtype(0), std::move(s));
    }
    return Status::OK();
  }
  Status Run(RunContext& ctx) const override {
    const TensorView& in = ctx.input(0);
    const size_t es = DataTypeSize(in.dtype);
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < static_cast<int64_t>(in.shape.size()); ++d) {
      if (d < axis_) outer *= in.shape[d];
      if (d > axis_) inner *= in.shape[d];
    }
    const size_t in_row = static_cast<size_t>(in.shape[axis_] * inner) * es;
    size_t offset = 0;
    for (size_t i = 0; i < sizes_.size(); ++i) {
      const size_t row = static_cast<size_t>(sizes_[i] * inner) * es;
      if (ctx.has_output(i) && row > 0) {
        const char* src = static_cast<const char*>(in.data) + offset;
        char* dst = static_cast<char*>(ctx.output(i).data);
        ParallelFor(ctx.num_threads(), outer, static_cast<int64_t>(row / es), [&](int64_t b, int64_t e) {
          for (int64_t o = b; o < e; ++o) std::memcpy(dst + o * row, src + o * in_row, row);
        });
      }
      offset += row;
    }
    return Status::OK();
  }

 private:
  int64_t axis_ = 0;
  std::vector<int64_t> sizes_;
};

class SliceKernel final : public Kernel {
 public:
  Status Prepare(PrepareContext& ctx) override {
    const ir::Node& n = ctx.node();
    const Shape& in = ctx.input_shape(0);
    const int64_t r = static_cast<int64_t>(in.size());
    std::vector<int64_t> starts, ends, axes, steps;
    if (ctx.opset() < 10) {
      ASSIGN_OR_RETURN(starts, n.GetInts("starts"));
      ASSIGN_OR_RETURN(ends, n.GetInts("ends"));
      ASSIGN_OR_RETURN(axes, n.GetInts("axes", std::vector<int64_t>{}));
    } else {
      for (size_t i = 1; i < std::min<size_t>(ctx.num_inputs(), 5); ++i) {
        if (ctx.has_input(i) && ctx.input_value(i) == nullptr) return DataDependentShape(n, i);
      }
      if (ctx.num_inputs() < 3 || !ctx.has_input(1) || !ctx.has_input(2)) {
        return InvalidArgument("{}: starts and ends are required", n.Describe());
      }
      ASSIGN_OR_RETURN(starts, ReadInts(*ctx.input_value(1), "starts"));
      ASSIGN_OR_RETURN(ends, ReadInts(*ctx.input_value(2), "ends"));
      if (ctx.num_inputs() > 3 && ctx.has_input(3)) {
        ASSIGN_OR_RETURN(axes, ReadInts(*ctx.input_value(3), "axes"));
      }
      if (ctx.num_inputs() > 4 && ctx.has_input(4)) {
        ASSIGN_OR_RETURN(steps, ReadInts(*ctx.input_value(4), "steps"));
      }
    }
    if (axes.empty()) {
      for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
    }
    if (steps.empty()) steps.assign(starts.size(), 1);
    if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size()) {
      return InvalidArgument("{}: starts, ends, axes and steps differ in length", n.Describe());
    }
    Shape out = in;
    std::vector<int64_t> first(static_cast<size_t>(r), 0), step(static_cast<size_t>(r), 1);
    std::vector<bool> seen(static_cast<size_t>(r), false);
    for (size_t i = 0; i < starts.size(); ++i) {
      ASSIGN_OR_RETURN(int64_t ax, NormalizeAxis(axes[i], r, n));
      if (seen[ax]) return InvalidArgument("{}: repeated axis {}", n.Describe(), axes[i]);
      seen[ax] = true;
      const int64_t dim = in[ax];
      if (steps[i] == 0) return InvalidArgument("{}: step must not be 0", n.Describe());
      // Steps beyond the dim select one element; bounding them keeps the arithmetic exact.
      const int64_t st = std::clamp<int64_t>(steps[i], -dim - 1, dim + 1);
      int64_t s = starts[i], e = ends[i];
      if (s < 0) s = s < -dim ? -1 : s + dim;
      if (e < 0) e = e < -dim ? -1 : e + dim;
      int64_t count;
      if (st > 0) {
        s = std::clamp<int64_t>(s, 0, dim);
        e = std::clamp<int64_t>(e, 0, dim);
        count = e > s ? (e - s - 1) / st + 1 : 0;
      } else {
        s = std::clamp<int64_t>(s, 0, dim - 1);
        e = std::clamp<int64_t>(e, -1, dim - 1);
        count = s > e ? (s - e - 1) / (-st) + 1 : 0;
      }
      out[ax] = count;
      first[ax] = count > 0 ? s : 0;
      step[ax] = st;
    }
    const Shape strides = Strides(in);
    base_ = 0;
    strides_.assign(static_cast<size_t>(r), 0);
    for (int64_t d = 0; d < r; ++d) {
      base_ += first[d] * strides[d];
      strides_[d] = step[d] * strides[d];
    }
    ctx.SetOutput(0, ctx.input_dtype(0), std::move(out));
    return Status::OK();
  }
  Status Run(RunContext& ctx) const override {
    const TensorView& out = ctx.output(0);
    if (out.num_elements() == 0) return Status::OK();
    StridedCopy(ctx.input(0).data, base_, out.shape, strides_, out.data, DataTypeSize(out.dtype),
                ctx.num_threads());
    return Status::OK();
  }

 private:
  int64_t base_ = 0;
  Shape strides_;
};

class ExpandKernel final : public Kernel {
 public:
  Status Prepare(PrepareContext& ctx) override {
    const ir::Node& n = ctx.node();
    const Tensor* v = ctx.input_value(1);
    if (v == nullptr) return DataDependentShape(n, 1);
    ASSIGN_OR_RETURN(std::vector<int64_t> target, ReadInts(*v, "Expand shape"));
    const Shape& in = ctx.input_shape(0);
    const size_t r = std::max(in.size(), target.size());
    Shape out(r), in_strides_src = Strides(in);
    strides_.assign(r, 0);
    for (size_t i = 0; i < r; ++i) {
      const size_t ii = i + in.size(), ti = i + target.size();  // right-aligned positions
      const int64_t a = ii >= r ? in[ii - r] : 1, b = ti >= r ? target[ti - r] : 1;
      if (a != b && a != 1 && b != 1) {
        return InvalidArgument("{}: cannot broadcast {} to {}", n.Describe(), ShapeToString(in),
                               ShapeToString(Shape(target.begin(), target.end())));
      }
      if (b < 0) return InvalidArgument("{}: negative dimension in shape", n.Describe());
      out[i] = a == 1 ? b : a;
      if (ii >= r && a != 1) strides_[i] = in_strides_src[ii - r];
    }
    ctx.SetOutput(0, ctx.input_dtype(0), std::move(out));
    return Status::OK();
  }
  Status Run(RunContext& ctx) const override {
    const TensorView& out = ctx.output(0);
    if (out.num_elements() == 0) return Status::OK();
    StridedCopy(ctx.input(0).data, 0, out.shape, strides_, out.data, DataTypeSize(out.dtype),
                ctx.num_threads());
    return Status::OK();
  }

 private:
  Shape strides_;
};

class TileKernel final : public Kernel {
 public:
  Status Prepare(PrepareContext& ctx) override {
    const ir::Node& n = ctx.node();
    const Tensor* v = ctx.input_value(1);
    if (v == nullptr) return DataDependentShape(n, 1);
    ASSIGN_OR_RETURN(std::vector<int64_t> reps, ReadInts(*v, "repeats"));
    Shape out = ctx.input_shape(0);
    if (reps.size() != out.size()) {
      return InvalidArgument("{}: {} repeats for rank {}", n.Describe(), reps.size(), out.size());
    }
    for (size_t i = 0; i < out.size(); ++i) {
      if (reps[i] < 0) return InvalidArgument("{}: negative repeat", n.Describe());
      out[i] *= reps[i];
    }
    ctx.SetOutput(0, ctx.input_dtype(0), std::move(out));
    return Status::OK();
  }
  Status Run(RunContext& ctx) const override {
    const TensorView& in = ctx.input(0);
    const TensorView& out = ctx.output(0);
    if (out.num_elements() == 0) return Status::OK();
    const size_t es = DataTypeSize(in.dtype);
    const size_t r = in.shape.size();
    if (r == 0) {
      std::memcpy(out.data, in.data, es);
      return Status::OK();
    }
    const Shape in_strides = Strides(in.shape);
    const int64_t in_last = in.shape[r - 1], out_last = out.shape[r - 1];
    const int64_t rows = out.num_elements() / out_last;
    const char* src = static_cast<const char*>(in.data);
    char* dst = static_cast<char*>(out.data);
    ParallelFor(ctx.num_threads(), rows, out_last, [&](int64_t b, int64_t e) {
      for (int64_t row = b; row < e; ++row) {
        int64_t rem = row, off = 0;
        for (size_t d = r - 1; d-- > 0;) {
          const int64_t o = rem % out.shape[d];
          rem /= out.shape[d];
          off += (o % in.shape[d]) * in_strides[d];
        }
        const size_t row_bytes = static_cast<size_t>(in_last) * es;
        char* o = dst + static_cast<size_t>(row * out_last) * es;
        for (int64_t k = 0; k < out_last / in_last; ++k) {
          std::memcpy(o + k * row_bytes, src + static_cast<size_t>(off) * es, row_bytes);
        }
      }
    });
    return Status::OK();
  }
};

class PadKernel final : public Kernel {
 public:
  enum class Mode { kConstant, kReflect, kEdge };

  Status Prepare(PrepareContext& ctx) override {
    const ir::Node& n = ctx.node();
    const Shape& in = ctx.input_shape(0);
    const int64_t r = static_cast<int64_t>(in.size());
    const DataType dt = ctx.input_dtype(0);
    ASSIGN_OR_RETURN(std::string mode, n.GetString("mode", "constant"));
    if (mode == "constant") {
      mode_ = Mode::kConstant;
    } else if (mode == "reflect") {
      mode_ = Mode::kReflect;
    } else if (mode == "edge") {
      mode_ = Mode::kEdge;
    } else {
      return Unimplemented("{}: pad mode '{}' is not supported", n.Describe(), mode);
    }
    std::vector<int64_t> pads;
    std::memset(value_, 0, sizeof(value_));
    if (ctx.opset() < 11) {
      ASSIGN_OR_RETURN(pads, n.GetInts(ctx.opset() < 2 ? "paddings" : "pads"));
      ASSIGN_OR_RETURN(float v, n.GetFloat("value", 0.f));
      StoreFromDouble(value_, dt, 0, v);
    } else {
      if (ctx.num_inputs() < 2 || !ctx.has_input(1)) {
        return InvalidArgument("{}: pads input is required", n.Describe());
      }
      const Tensor* pv = ctx.input_value(1);
      if (pv == nullptr) return DataDependentShape(n, 1);
      ASSIGN_OR_RETURN(pads, ReadInts(*pv, "pads"));
      if (ctx.num_inputs() > 2 && ctx.has_input(2)) {
        const Tensor* cv = ctx.input_value(2);
        if (cv == nullptr) {
          constant_from_input_ = true;
        } else if (cv->num_elements() >= 1 && cv->dtype() == dt) {
          std::memcpy(value_, cv->data(), DataTypeSize(dt));
        } else if (cv->num_elements() >= 1) {
          StoreFromDouble(value_, dt, 0, ElementAsDouble(cv->data(), cv->dtype(), 0));
        }
      }
      if (ctx.num_inputs() > 3 && ctx.has_input(3)) {  // opset 18 axes
        const Tensor* av = ctx.input_value(3);
        if (av == nullptr) return DataDependentShape(n, 3);
        ASSIGN_OR_RETURN(std::vector<int64_t> axes, ReadInts(*av, "axes"));
        if (pads.size() != 2 * axes.size()) {
          return InvalidArgument("{}: {} pads for {} axes", n.Describe(), pads.size(), axes.size());
        }
        std::vector<int64_t> full(static_cast<size_t>(2 * r), 0);
        for (size_t i = 0; i < axes.size(); ++i) {
          ASSIGN_OR_RETURN(int64_t ax, NormalizeAxis(axes[i], r, n));
          full[ax] = pads[i];
          full[ax + r] = pads[i + axes.size()];
        }
        pads = std::move(full);
      }
    }
    if (static_cast<int64_t>(pads.size()) != 2 * r) {
      return InvalidArgument("{}: {} pads for rank {}", n.Describe(), pads.size(), r);
    }
    begin_.assign(pads.begin(), pads.begin() + r);
    Shape out(static_cast<size_t>(r));
    for (int64_t d = 0; d < r; ++d) {
      out[d] = in[d] + pads[d] + pads[d + r];
      if (out[d] < 0) return InvalidArgument("{}: pads make dim {} negative", n.Describe(), d);
      if (mode_ != Mode::kConstant && in[d] == 0 && out[d] > 0) {
        return InvalidArgument("{}: cannot {}-pad an empty dimension", n.Describe(), mode);
      }
      if (mode_ == Mode::kReflect && (pads[d] >= in[d] || pads[d + r] >= in[d]) && in[d] > 0 &&
          (pads[d] > 0 || pads[d + r] > 0)) {
        return InvalidArgument("{}: reflect pads must be smaller than the dim", n.Describe());
      }
    }
    ctx.SetOutput(0, dt, std::move(out));
    return Status::OK();
  }

  Status Run(RunContext& ctx) const override {
    const TensorView& in = ctx.input(0);
    const TensorView& out = ctx.output(0);
    if (out.num_elements() == 0) return Status::OK();
    unsigned char value[8];
    std::memcpy(value, value_, sizeof(value));
    if (constant_from_input_ && ctx.has_input(2) && ctx.input(2).num_elements() >= 1) {
      const TensorView& c = ctx.input(2);
      if (c.dtype == in.dtype) {
        std::memcpy(value, c.data, DataTypeSize(in.dtype));
      } else {
        StoreFromDouble(value, in.dtype, 0, ElementAsDouble(c.data, c.dtype, 0));
      }
    }
    DispatchBySize(DataTypeSize(in.dtype), [&](auto tag) {
      using T = decltype(tag);
      T v;
      std::memcpy(&v, value, sizeof(T));
      RunTyped<T>(in, out, v, ctx.num_threads());
    });
    return Status::OK();
  }

 private:
  // Input index for output index o along a dim of size n, or -1 for "constant value".
  int64_t Map(int64_t i, int64_t n) const {
    if (i >= 0 && i < n) return i;
    switch (mode_) {
      case Mode::kConstant: return -1;
      case Mode::kEdge: return i < 0 ? 0 : n - 1;
      case Mode::kReflect:
        if (n == 1) return 0;
        while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;
        return i;
    }
    return -1;
  }

  template <typename T>
  void RunTyped(const TensorView& in, const TensorView& out, T value, int threads) const {
    const size_t r = out.shape.size();
    const T* src = static_cast<const T*>(in.data);
    T* dst = static_cast<T*>(out.data);
    if (r == 0) {
      dst[0] = src[0];
      return;
    }
    const Shape in_strides = Strides(in.shape);
    const int64_t ol = out.shape[r - 1], il = in.shape[r - 1], pb = begin_[r - 1];
    const int64_t rows = out.num_elements() / ol;
    // Output columns [c0, c1) read input columns [c0 - pb, c1 - pb) directly.
    const int64_t c0 = std::clamp<int64_t>(pb, 0, ol), c1 = std::clamp<int64_t>(pb + il, c0, ol);
    ParallelFor(threads, rows, ol, [&](int64_t b, int64_t e) {
      for (int64_t row = b; row < e; ++row) {
        T* o = dst + row * ol;
        int64_t rem = row, off = 0;
        bool constant_row = false;
        for (size_t d = r - 1; d-- > 0;) {
          const int64_t od = rem % out.shape[d];
          rem /= out.shape[d];
          const int64_t id = Map(od - begin_[d], in.shape[d]);
          if (id < 0) {
            constant_row = true;
            break;
          }
          off += id * in_strides[d];
        }
        if (constant_row) {
          std::fill(o, o + ol, value);
          continue;
        }
        const T* s = src + off;
        for (int64_t c = 0; c < c0; ++c) {
          const int64_t i = Map(c - pb, il);
          o[c] = i < 0 ? value : s[i];
        }
        if (c1 > c0) std::memcpy(o + c0, s + (c0 - pb), static_cast<size_t>(c1 - c0) * sizeof(T));
        for (int64_t c = c1; c < ol; ++c) {
          const int64_t i = Map(c - pb, il);
          o[c] = i < 0 ? value : s[i];
        }
      }
    });
  }

  Mode mode_ = Mode::kConstant;
  std::vector<int64_t> begin_;
  unsigned char value_[8];
  bool constant_from_input_ = false;
};

class TriluKernel final : public Kernel {
 public:
  Status Prepare(PrepareContext& ctx) override {
    const ir::Node& n = ctx.node();
    if (ctx.input_shape(0).size() < 2) return InvalidArgument("{}: rank must be >= 2", n.Describe());
    ASSIGN_OR_RETURN(int64_t upper, n.GetInt("upper", 1));
    upper_ = upper != 0;
    ctx.SetOutput(0, ctx.input_dtype(0), ctx.input_shape(0));
    return Status::OK();
  }
  Status Run(RunContext& ctx) const override {
    int64_t k = 0;
    if (ctx.num_inputs() > 1 && ctx.has_input(1)) {
      ASSIGN_OR_RETURN(std::vector<int64_t> kv, ReadInts(ctx.input(1), "k"));
      if (kv.size() != 1) return InvalidArgument("Trilu: k must be a scalar");
      k = kv[0];
    }
    const TensorView& in = ctx.input(0);
    const TensorView& out = ctx.output(0);
    const size_t r = in.shape.size(), es = DataTypeSize(in.dtype);
    const int64_t rows = in.shape[r - 2], cols = in.shape[r - 1];
    if (out.num_elements() == 0) return Status::OK();
    const int64_t total_rows = in.num_elements() / cols;
    const char* src = static_cast<const char*>(in.data);
    char* dst = static_cast<char*>(out.data);
    ParallelFor(ctx.num_threads(), total_rows, cols, [&](int64_t b, int64_t e) {
      for (int64_t row = b; row < e; ++row) {
        const int64_t i = row % rows;
        // Kept columns: upper keeps j >= i + k, lower keeps j <= i + k.
        int64_t lo = 0, hi = cols;
        if (upper_) {
          lo = std::clamp<int64_t>(i + k, 0, cols);
        } else {
          hi = std::clamp<int64_t>(i + k + 1, 0, cols);
        }
        const size_t base = static_cast<size_t>(row * cols) * es;
        std::memset(dst + base, 0, static_cast<size_t>(cols) * es);
        if (hi > lo) {
          std::memcpy(dst + base + lo * es, src + base + lo * es, static_cast<size_t>(hi - lo) * es);
        }
      }
    });
    return Status::OK();
  }

 private:
  bool upper_ = true;
};

class ReverseSequenceKernel final : public Kernel {
 public:
  Status Prepare(PrepareContext& ctx) override {
    const ir::Node& n = ctx.node();
    const Shape& in = ctx.input_shape(0);
    if (in.size() < 2) return InvalidArgument("{}: rank must be >= 2", n.Describe());
    ASSIGN_OR_RETURN(batch_axis_, n.GetInt("batch_axis", 1));
    ASSIGN_OR_RETURN(time_axis_, n.GetInt("time_axis", 0));
    if (!((batch_axis_ == 0 && time_axis_ == 1) || (batch_axis_ == 1 && time_axis_ == 0))) {
      return InvalidArgument("{}: batch_axis/time_axis must be 0 and 1", n.Describe());
    }
    if (ctx.input_shape(1) != Shape{in[batch_axis_]}) {
      return InvalidArgument("{}: sequence_lens must have shape [batch]", n.Describe());
    }
    ctx.SetOutput(0, ctx.input_dtype(0), in);
    return Status::OK();
  }
  Status Run(RunContext& ctx) const override {
    const TensorView& in = ctx.input(0);
    ASSIGN_OR_RETURN(std::vector<int64_t> lens, ReadInts(ctx.input(1), "sequence_lens"));
    const int64_t B = in.shape[batch_axis_], T = in.shape[time_axis_];
    for (int64_t l : lens) {
      if (l < 0 || l > T) return InvalidArgument("ReverseSequence: sequence length {} out of [0, {}]", l, T);
    }
    const size_t es = DataTypeSize(in.dtype);
    const size_t inner = static_cast<size_t>(in.num_elements() / std::max<int64_t>(B * T, 1)) * es;
    const Shape strides = Strides(in.shape);
    const char* src = static_cast<const char*>(in.data);
    char* dst = static_cast<char*>(ctx.output(0).data);
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t t = 0; t < T; ++t) {
        const int64_t ts = t < lens[b] ? lens[b] - 1 - t : t;
        const size_t o = static_cast<size_t>(b * strides[batch_axis_] + t * strides[time_axis_]) * es;
        const size_t s = static_cast<size_t>(b * strides[batch_axis_] + ts * strides[time_axis_]) * es;
        if (inner) std::memcpy(dst + o, src + s, inner);
      }
    }
    return Status::OK();
  }

 private:
  int64_t batch_axis_ = 1, time_axis_ = 0;
};

}  // namespace

void RegisterTensorMoveKernels(KernelRegistry& registry) {
  registry.Register("", "Transpose", MakeFactory<TransposeKernel>());
  registry.Register("", "DepthToSpace", [](const ir::Node&) -> StatusOr<std::unique_ptr<Kernel>> {
    return std::unique_ptr<Kernel>(std::make_unique<SpaceDepthKernel>(true));
  });
  registry.Register("", "SpaceToDepth", [](const ir::Node&) -> StatusOr<std::unique_ptr<Kernel>> {
    return std::unique_ptr<Kernel>(std::make_unique<SpaceDepthKernel>(false));
  });
  registry.Register("", "Concat", MakeFactory<ConcatKernel>());
  registry.Register("", "Split", MakeFactory<SplitKernel>());
  registry.Register("", "Slice", MakeFactory<SliceKernel>());
  registry.Register("", "Expand", MakeFactory<ExpandKernel>());
  registry.Register("", "Tile", MakeFactory<TileKernel>());
  registry.Register("", "Pad", MakeFactory<PadKernel>());
  registry.Register("", "Trilu", MakeFactory<TriluKernel>());
  registry.Register("", "ReverseSequence", MakeFactory<ReverseSequenceKernel>());
}

}  // namespace gpuhive::cpu
