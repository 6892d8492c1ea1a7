// BatchNormalization (inference), InstanceNormalization, LayerNormalization, LRN and PRelu.
// These are memory-bound and rarely hot after graph folding, so they are straightforward OpenMP
// loops over plain tensors (statistics in double for accuracy).
#include <omp.h>

#include <cmath>
#include <memory>

#include "kernels/cpu/loops/avx512_math.h"
#include "kernels/cpu/loops/layernorm_row.h"
#include "kernels/cpu/onednn/common.h"
#include "kernels/cpu/onednn/kernels.h"

namespace gpuhive::cpu::onednn {
namespace {

Status RequireFloat(const PrepareContext& ctx, size_t i) {
  if (!ctx.has_input(i)) return InvalidArgument("{}: missing input {}", ctx.node().Describe(), i);
  if (ctx.input_dtype(i) != DataType::kFloat32) {
    return Unimplemented("{}: only float32 is supported (input {} is {})", ctx.node().Describe(), i,
                         DataTypeName(ctx.input_dtype(i)));
  }
  return Status::OK();
}

// Element strides of `in` broadcast (numpy, right-aligned) to `out`; 0 on broadcast dims.
StatusOr<std::vector<int64_t>> BroadcastStrides(const Shape& in, const Shape& out) {
  if (in.size() > out.size()) return InvalidArgument("rank {} > {}", in.size(), out.size());
  std::vector<int64_t> strides(out.size(), 0);
  int64_t stride = 1;
  for (size_t j = 0; j < in.size(); ++j) {
    size_t ii = in.size() - 1 - j, oi = out.size() - 1 - j;
    if (in[ii] != out[oi] && in[ii] != 1) {
      return InvalidArgument("{} does not broadcast to {}", ShapeToString(in), ShapeToString(out));
    }
    strides[oi] = in[ii] == 1 ? 0 : stride;
    stride *= in[ii];
  }
  return strides;
}

// Offset into a broadcast operand for flat output index i.
inline int64_t BroadcastOffset(int64_t i, const Shape& out, const std::vector<int64_t>& strides) {
  int64_t off = 0;
  for (int a = static_cast<int>(out.size()) - 1; a >= 0 && i > 0; --a) {
    off += (i % out[a]) * strides[a];
    i /= out[a];
  }
  return off;
}

class BatchNormKernel final : public Kernel {
 public:
  Status Prepare(PrepareContext& ctx) override {
    const ir::Node& node = ctx.node();
    for (size_t i = 0; i < 5; ++i) RETURN_IF_ERROR(RequireFloat(ctx, i));
    ASSIGN_OR_RETURN(int64_t training, node.GetInt("training_mode", 0));
    if (training != 0) {
      return Unimplemented("{}: training_mode=1 is not supported (inference kernels only)", node.Describe());
    }
    ASSIGN_OR_RETURN(epsilon_, node.GetFloat("epsilon", 1e-5f));
    shape_ = ctx.input_shape(0);
    if (shape_.size() < 2) return InvalidArgument("{}: X must be at least 2-D", node.Describe());
    const int64_t c = shape_[1];
    int64_t inner = 1;
    for (size_t i = 2; i < shape_.size(); ++i) inner *= shape_[i];
    params_ = NumElements(ctx.input_shape(1));
    for (size_t i = 2; i < 5; ++i) {
      if (NumElements(ctx.input_shape(i)) != params_) {
        return InvalidArgument("{}: scale, B, mean and var must have equal sizes", node.Describe());
      }
    }
    // spatial=1 (or opset >= 9): per channel; spatial=0 (opset 7): per element of [C, spatial...].
    if (params_ != c && params_ != c * inner) {
      return InvalidArgument("{}: parameters have {} elements, expected {} (or {})", node.Describe(), params_, c,
                             c * inner);
    }
    ctx.SetOutput(0, DataType::kFloat32, shape_);
    ctx.AllowInPlace(0, 0);
    for (size_t i = 1; i < ctx.num_outputs(); ++i) {
      if (ctx.has_output(i)) return Unimplemented("{}: training outputs are not supported", node.Describe());
    }
    return Status::OK();
  }

  Status Run(RunContext& ctx) const override {
    SetThreads(ctx.num_threads());
    const float* x = ctx.input(0).as<float>();
    const float* scale = ctx.input(1).as<float>();
    const float* bias = ctx.input(2).as<float>();
    const float* mean = ctx.input(3).as<float>();
    const float* var = ctx.input(4).as<float>();
    float* y = ctx.output(0).as<float>();
    const int64_t n = shape_[0], c = shape_[1];
    int64_t inner = 1;
    for (size_t i = 2; i < shape_.size(); ++i) inner *= shape_[i];
    const bool per_channel = params_ == c;
#pragma omp parallel for collapse(2)
    for (int64_t b = 0; b < n; ++b)
      for (int64_t ch = 0; ch < c; ++ch) {
        const int64_t base = (b * c + ch) * inner;
        for (int64_t i = 0; i < inner; ++i) {
          const int64_t p = per_channel ? ch : ch * inner + i;
          const float a = scale[p] / std::sqrt(var[p] + epsilon_);
          y[base + i] = (x[base + i] - mean[p]) * a + bias[p];
        }
      }
    return Status::OK();
  }

 private:
  float epsilon_ = 1e-5f;
  Shape shape_;
  int64_t params_ = 0;
};

class InstanceNormKernel final : public Kernel {
 public:
  Status Prepare(PrepareContext& ctx) override {
    const ir::Node& node = ctx.node();
    for (size_t i = 0; i < 3; ++i) RETURN_IF_ERROR(RequireFloat(ctx, i));
    ASSIGN_OR_RETURN(epsilon_, node.GetFloat("epsilon", 1e-5f));
    shape_ = ctx.input_shape(0);
    if (shape_.size() < 3) return InvalidArgument("{}: X must be at least 3-D", node.Describe());
    if (NumElements(ctx.input_shape(1)) != shape_[1] || NumElements(ctx.input_shape(2)) != shape_[1]) {
      return InvalidArgument("{}: scale and B must have C={} elements", node.Describe(), shape_[1]);
    }
    ctx.SetOutput(0, DataType::kFloat32, shape_);
    ctx.AllowInPlace(0, 0);
    return Status::OK();
  }

  Status Run(RunContext& ctx) const override {
    SetThreads(ctx.num_threads());
    const float* x = ctx.input(0).as<float>();
    const float* scale = ctx.input(1).as<float>();
    const float* bias = ctx.input(2).as<float>();
    float* y = ctx.output(0).as<float>();
    const int64_t c = shape_[1], planes = shape_[0] * shape_[1];
    int64_t inner = 1;
    for (size_t i = 2; i < shape_.size(); ++i) inner *= shape_[i];
#pragma omp parallel for
    for (int64_t p = 0; p < planes; ++p) {
      const float* xp = x + p * inner;
      double sum = 0, sq = 0;
      for (int64_t i = 0; i < inner; ++i) sum += xp[i];
      const double mean = sum / static_cast<double>(inner);
      for (int64_t i = 0; i < inner; ++i) sq += (xp[i] - mean) * (xp[i] - mean);
      const double inv = 1.0 / std::sqrt(sq / static_cast<double>(inner) + epsilon_);
      const float a = static_cast<float>(scale[p % c] * inv);
      const float b = static_cast<float>(bias[p % c] - mean * scale[p % c] * inv);
      float* yp = y + p * inner;
      for (int64_t i = 0; i < inner; ++i) yp[i] = xp[i] * a + b;
    }
    return Status::OK();
  }

 private:
  float epsilon_ = 1e-5f;
  Shape shape_;
};

class LayerNormKernel final : public Kernel {
 public:
  Status Prepare(PrepareContext& ctx) override {
    const ir::Node& node = ctx.node();
    RETURN_IF_ERROR(RequireFloat(ctx, 0));
    RETURN_IF_ERROR(RequireFloat(ctx, 1));
    has_bias_ = ctx.num_inputs() > 2 && ctx.has_input(2);
    if (has_bias_) RETURN_IF_ERROR(RequireFloat(ctx, 2));
    ASSIGN_OR_RETURN(epsilon_, node.GetFloat("epsilon", 1e-5f));
    ASSIGN_OR_RETURN(int64_t axis, node.GetInt("axis", -1));
    ASSIGN_OR_RETURN(int64_t stash, node.GetInt("stash_type", 1));
    if (stash != 1) return Unimplemented("{}: stash_type {} (only 1 = float)", node.Describe(), stash);
    shape_ = ctx.input_shape(0);
    const int64_t r = static_cast<int64_t>(shape_.size());
    if (axis < -r || axis >= r) return InvalidArgument("{}: axis {} out of range for rank {}", node.Describe(), axis, r);
    if (axis < 0) axis += r;
    outer_ = 1;
    inner_ = 1;
    for (int64_t i = 0; i < r; ++i) (i < axis ? outer_ : inner_) *= shape_[static_cast<size_t>(i)];
    const Shape inner_shape(shape_.begin() + axis, shape_.end());
    ASSIGN_OR_RETURN(scale_strides_, BroadcastStrides(ctx.input_shape(1), inner_shape));
    scale_full_ = ctx.input_shape(1) == inner_shape || NumElements(ctx.input_shape(1)) == inner_;
    if (has_bias_) {
      ASSIGN_OR_RETURN(bias_strides_, BroadcastStrides(ctx.input_shape(2), inner_shape));
      bias_full_ = NumElements(ctx.input_shape(2)) == inner_;
    }
    inner_shape_ = inner_shape;
    // Full-length scale and bias: the rows run 16 lanes wide where the CPU has AVX-512 (the loops
    // below compile for baseline x86-64, i.e. SSE).
    avx512_ = scale_full_ && (!has_bias_ || bias_full_) && loops::Avx512Usable();
    implementation_ = avx512_ ? "gpuhive:rows_avx512" : "gpuhive:rows";
    ctx.SetOutput(0, DataType::kFloat32, shape_);
    Shape stat = shape_;
    for (int64_t i = axis; i < r; ++i) stat[static_cast<size_t>(i)] = 1;
    for (size_t i = 1; i < 3 && i < ctx.num_outputs(); ++i) {
      if (ctx.has_output(i)) ctx.SetOutput(i, DataType::kFloat32, stat);
    }
    ctx.AllowInPlace(0, 0);
    return Status::OK();
  }

  std::string_view implementation() const override { return implementation_; }

  Status Run(RunContext& ctx) const override {
    SetThreads(ctx.num_threads());
    const float* x = ctx.input(0).as<float>();
    const float* scale = ctx.input(1).as<float>();
    const float* bias = has_bias_ ? ctx.input(2).as<float>() : nullptr;
    float* y = ctx.output(0).as<float>();
    float* mean_out = ctx.num_outputs() > 1 && ctx.has_output(1) ? ctx.output(1).as<float>() : nullptr;
    float* inv_out = ctx.num_outputs() > 2 && ctx.has_output(2) ? ctx.output(2).as<float>() : nullptr;
    const int64_t inner = inner_;
    if (avx512_) {
#pragma omp parallel for
      for (int64_t o = 0; o < outer_; ++o) {
        float mean, inv;
        loops::LayerNormRowAvx512(x + o * inner, y + o * inner, inner, scale, bias, epsilon_, &mean, &inv);
        if (mean_out) mean_out[o] = mean;
        if (inv_out) inv_out[o] = inv;
      }
      return Status::OK();
    }
#pragma omp parallel for
    for (int64_t o = 0; o < outer_; ++o) {
      const float* xr = x + o * inner;
      float* yr = y + o * inner;
      float sum = 0.f;
#pragma omp simd reduction(+ : sum)
      for (int64_t i = 0; i < inner; ++i) sum += xr[i];
      const float mean = sum / static_cast<float>(inner);
      float sq = 0.f;
#pragma omp simd reduction(+ : sq)
      for (int64_t i = 0; i < inner; ++i) sq += (xr[i] - mean) * (xr[i] - mean);
      const float inv = 1.f / std::sqrt(sq / static_cast<float>(inner) + epsilon_);
      if (scale_full_ && (bias == nullptr || bias_full_)) {
        if (bias != nullptr) {
#pragma omp simd
          for (int64_t i = 0; i < inner; ++i) yr[i] = (xr[i] - mean) * inv * scale[i] + bias[i];
        } else {
#pragma omp simd
          for (int64_t i = 0; i < inner; ++i) yr[i] = (xr[i] - mean) * inv * scale[i];
        }
      } else {
        for (int64_t i = 0; i < inner; ++i) {
          float v = (xr[i] - mean) * inv * scale[BroadcastOffset(i, inner_shape_, scale_strides_)];
          if (bias != nullptr) v += bias[BroadcastOffset(i, inner_shape_, bias_strides_)];
          yr[i] = v;
        }
      }
      if (mean_out) mean_out[o] = mean;
      if (inv_out) inv_out[o] = inv;
    }
    return Status::OK();
  }

 private:
  float epsilon_ = 1e-5f;
  Shape shape_, inner_shape_;
  int64_t outer_ = 1, inner_ = 1;
  bool has_bias_ = false, scale_full_ = true, bias_full_ = true;
  bool avx512_ = false;
  std::string implementation_;
  std::vector<int64_t> scale_strides_, bias_strides_;
};

class LrnKernel final : public Kernel {
 public:
  Status Prepare(PrepareContext& ctx) override {
    const ir::Node& node = ctx.node();
    RETURN_IF_ERROR(RequireFloat(ctx, 0));
    ASSIGN_OR_RETURN(alpha_, node.GetFloat("alpha", 1e-4f));
    ASSIGN_OR_RETURN(beta_, node.GetFloat("beta", 0.75f));
    ASSIGN_OR_RETURN(bias_, node.GetFloat("bias", 1.f));
    ASSIGN_OR_RETURN(size_, node.GetInt("size"));
    if (size_ < 1) return InvalidArgument("{}: size must be >= 1", node.Describe());
    shape_ = ctx.input_shape(0);
    if (shape_.size() < 2) return InvalidArgument("{}: X must be at least 2-D", node.Describe());
    ctx.SetOutput(0, DataType::kFloat32, shape_);
    return Status::OK();
  }

  Status Run(RunContext& ctx) const override {
    SetThreads(ctx.num_threads());
    const float* x = ctx.input(0).as<float>();
    float* y = ctx.output(0).as<float>();
    const int64_t n = shape_[0], c = shape_[1];
    int64_t inner = 1;
    for (size_t i = 2; i < shape_.size(); ++i) inner *= shape_[i];
    const int64_t lo = (size_ - 1) / 2, hi = size_ - 1 - lo;  // floor / ceil of (size-1)/2
#pragma omp parallel for collapse(2)
    for (int64_t b = 0; b < n; ++b)
      for (int64_t ch = 0; ch < c; ++ch) {
        const int64_t c0 = std::max<int64_t>(0, ch - lo), c1 = std::min<int64_t>(c - 1, ch + hi);
        for (int64_t i = 0; i < inner; ++i) {
          double sq = 0;
          for (int64_t cc = c0; cc <= c1; ++cc) {
            const double v = x[(b * c + cc) * inner + i];
            sq += v * v;
          }
          const int64_t idx = (b * c + ch) * inner + i;
          y[idx] = static_cast<float>(x[idx] / std::pow(bias_ + alpha_ / static_cast<double>(size_) * sq, beta_));
        }
      }
    return Status::OK();
  }

 private:
  float alpha_ = 1e-4f, beta_ = 0.75f, bias_ = 1.f;
  int64_t size_ = 1;
  Shape shape_;
};

class PReluKernel final : public Kernel {
 public:
  Status Prepare(PrepareContext& ctx) override {
    const ir::Node& node = ctx.node();
    RETURN_IF_ERROR(RequireFloat(ctx, 0));
    RETURN_IF_ERROR(RequireFloat(ctx, 1));
    shape_ = ctx.input_shape(0);
    Shape slope = ctx.input_shape(1);
    // Opset < 7: a 1-D slope of C elements applies per channel.
    if (ctx.opset() < 7 && slope.size() == 1 && shape_.size() >= 2 && slope[0] == shape_[1]) {
      slope = Shape(shape_.size() - 1, 1);
      slope[0] = shape_[1];
    }
    auto strides = BroadcastStrides(slope, shape_);
    if (!strides.ok()) {
      return InvalidArgument("{}: slope {} does not broadcast to X {}", node.Describe(),
                             ShapeToString(ctx.input_shape(1)), ShapeToString(shape_));
    }
    strides_ = *strides;
    scalar_ = NumElements(slope) == 1;
    ctx.SetOutput(0, DataType::kFloat32, shape_);
    ctx.AllowInPlace(0, 0);
    return Status::OK();
  }

  Status Run(RunContext& ctx) const override {
    SetThreads(ctx.num_threads());
    const float* x = ctx.input(0).as<float>();
    const float* s = ctx.input(1).as<float>();
    float* y = ctx.output(0).as<float>();
    const int64_t total = NumElements(shape_);
#pragma omp parallel for
    for (int64_t i = 0; i < total; ++i) {
      const float slope = scalar_ ? s[0] : s[BroadcastOffset(i, shape_, strides_)];
      y[i] = x[i] < 0 ? slope * x[i] : x[i];
    }
    return Status::OK();
  }

 private:
  Shape shape_;
  std::vector<int64_t> strides_;
  bool scalar_ = false;
};

}  // namespace

StatusOr<std::unique_ptr<Kernel>> MakeBatchNormalization(const ir::Node&) {
  return std::unique_ptr<Kernel>(new BatchNormKernel());
}
StatusOr<std::unique_ptr<Kernel>> MakeInstanceNormalization(const ir::Node&) {
  return std::unique_ptr<Kernel>(new InstanceNormKernel());
}
StatusOr<std::unique_ptr<Kernel>> MakeLayerNormalization(const ir::Node&) {
  return std::unique_ptr<Kernel>(new LayerNormKernel());
}
StatusOr<std::unique_ptr<Kernel>> MakeLrn(const ir::Node&) { return std::unique_ptr<Kernel>(new LrnKernel()); }
StatusOr<std::unique_ptr<Kernel>> MakePRelu(const ir::Node&) {
  return std::unique_ptr<Kernel>(new PReluKernel());
}

}  // namespace gpuhive::cpu::onednn
