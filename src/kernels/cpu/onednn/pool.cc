// MaxPool, AveragePool, LpPool and their Global variants.
//
// The common cases run on oneDNN pooling (any layout, blocked kept); MaxPool with Indices,
// LpPool, non-float MaxPool, and AveragePool whose ONNX divisor oneDNN cannot express (count_include_pad
// with ceil_mode) run as plain loops.
#include <algorithm>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <memory>

#include "kernels/cpu/onednn/common.h"
#include "gpuhive/window_geometry.h"
#include "kernels/cpu/onednn/kernels.h"

namespace gpuhive::cpu::onednn {
namespace {

enum class PoolKind { kMax, kAvg, kLp };

class PoolKernel final : public Kernel {
 public:
  PoolKernel(const ir::Node& node, PoolKind kind, bool global) : kind_(kind), global_(global) {
    const bool indices = node.outputs.size() > 1 && node.outputs[1] != nullptr;
    const bool fp32 = node.input(0) == nullptr || node.input(0)->dtype == DataType::kFloat32 ||
                      node.input(0)->dtype == DataType::kUndefined;
    auto cip = node.GetInt("count_include_pad", 0);
    auto ceil = node.GetInt("ceil_mode", 0);
    const bool avg_ceil_pad = kind == PoolKind::kAvg && cip.ok() && *cip != 0 && ceil.ok() && *ceil != 0;
    onednn_ = kind != PoolKind::kLp && !indices && fp32 && !avg_ceil_pad;
  }

  bool AcceptsBlockedInput(size_t i) const override { return i == 0 && onednn_; }
  bool AcceptsChannelsLastInput(size_t i) const override { return i == 0 && onednn_; }

  Status Prepare(PrepareContext& ctx) override {
    return Guard(ctx.node().Describe(), [&] { return PrepareImpl(ctx); });
  }

  Status Run(RunContext& ctx) const override {
    SetThreads(ctx.num_threads());
    if (!use_onednn_) return RunLoops(ctx);
    return Guard("Pool run", [&]() -> Status {
      dnnl::stream& s = ThreadStream();
      memory src(src_md_, Engine(), ctx.input(0).data);
      memory dst(dst_md_, Engine(), ctx.output(0).data);
      ArgMap args{{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}};
      if (scratch_md_.get_size() > 0) {
        args.insert({DNNL_ARG_SCRATCHPAD, memory(scratch_md_, Engine(), ctx.workspace())});
      }
      prim_.execute(s, args);
      s.wait();
      return Status::OK();
    });
  }

 private:
  Status PrepareImpl(PrepareContext& ctx) {
    const ir::Node& node = ctx.node();
    if (!ctx.has_input(0)) return InvalidArgument("{}: missing X", node.Describe());
    const Shape& x = ctx.input_shape(0);
    if (x.size() < 3 || x.size() > 5) {
      return InvalidArgument("{}: X must be 3-D..5-D, got {}", node.Describe(), ShapeToString(x));
    }
    dtype_ = ctx.input_dtype(0);
    if (dtype_ != DataType::kFloat32 &&
        !(kind_ == PoolKind::kMax && (dtype_ == DataType::kUint8 || dtype_ == DataType::kInt8))) {
      return Unimplemented("{}: dtype {} is not supported", node.Describe(), DataTypeName(dtype_));
    }
    const size_t sp = x.size() - 2;
    in_.assign(x.begin() + 2, x.end());
    if (global_) {
      kernel_ = in_;
      strides_.assign(sp, 1);
      dil_.assign(sp, 1);
      geo_.out.assign(sp, 1);
      geo_.pad_l.assign(sp, 0);
      geo_.pad_r.assign(sp, 0);
      geo_.pad_r_eff.assign(sp, 0);
    } else {
      ASSIGN_OR_RETURN(kernel_, node.GetInts("kernel_shape"));
      ASSIGN_OR_RETURN(strides_, node.GetInts("strides", std::vector<int64_t>(sp, 1)));
      ASSIGN_OR_RETURN(dil_, node.GetInts("dilations", std::vector<int64_t>(sp, 1)));
      ASSIGN_OR_RETURN(int64_t ceil_mode, node.GetInt("ceil_mode", 0));
      ASSIGN_OR_RETURN(geo_, ComputeWindowGeometry(node, in_, kernel_, strides_, dil_, ceil_mode != 0));
    }
    ASSIGN_OR_RETURN(int64_t cip, node.GetInt("count_include_pad", 0));
    count_include_pad_ = cip != 0;
    ASSIGN_OR_RETURN(int64_t p, node.GetInt("p", 2));
    p_ = static_cast<float>(p);
    ASSIGN_OR_RETURN(storage_order_, node.GetInt("storage_order", 0));
    Shape out = {x[0], x[1]};
    for (int64_t o : geo_.out) {
      if (o < 1) return InvalidArgument("{}: empty output", node.Describe());
      out.push_back(o);
    }
    shape_ = x;
    out_shape_ = out;
    const Layout layout = ctx.input_layout(0);
    use_onednn_ = onednn_;
    if (use_onednn_) {
      Status st = PrepareOnednn(x, out, layout);
      if (!st.ok()) {
        if (layout != Layout::kPlain) return st;
        use_onednn_ = false;
      }
    }
    if (!use_onednn_) {
      if (layout != Layout::kPlain) return Internal("{}: blocked input on the loop path", node.Describe());
      ctx.SetOutput(0, dtype_, out);
      if (ctx.num_outputs() > 1 && ctx.has_output(1)) ctx.SetOutput(1, DataType::kInt64, out);
      return Status::OK();
    }
    ctx.RequestWorkspace(scratch_md_.get_size());
    // A channels-last result with every spatial dimension 1 (global pooling) is plain as well.
    const bool one = std::all_of(out.begin() + 2, out.end(), [](int64_t d) { return d == 1; });
    const Layout out_layout = layout == Layout::kChannelsLast && one ? Layout::kPlain : layout;
    ctx.SetOutput(0, DataType::kFloat32, out, out_layout, out_layout == Layout::kPlain ? 0 : dst_md_.get_size());
    return Status::OK();
  }

  Status PrepareOnednn(const Shape& x, const Shape& out, Layout layout) {
    return Guard("pooling", [&]() -> Status {
      ASSIGN_OR_RETURN(src_md_, MdFor(x, layout));
      ASSIGN_OR_RETURN(dst_md_, MdFor(out, layout));
      Dims k(kernel_.begin(), kernel_.end()), s(strides_.begin(), strides_.end()), d, pl, pr;
      for (size_t i = 0; i < kernel_.size(); ++i) {
        d.push_back(dil_[i] - 1);
        pl.push_back(geo_.pad_l[i]);
        pr.push_back(std::max(geo_.pad_r[i], geo_.pad_r_eff[i]));
      }
      auto alg = kind_ == PoolKind::kMax ? dnnl::algorithm::pooling_max
                 : count_include_pad_    ? dnnl::algorithm::pooling_avg_include_padding
                                         : dnnl::algorithm::pooling_avg_exclude_padding;
      dnnl::pooling_v2_forward::desc desc(dnnl::prop_kind::forward_inference, alg, src_md_, dst_md_, s, k, d, pl, pr);
      dnnl::pooling_v2_forward::primitive_desc pd(desc, ScratchAttr(), Engine());
      scratch_md_ = pd.scratchpad_desc();
      prim_ = dnnl::pooling_v2_forward(pd);
      return Status::OK();
    });
  }

  template <typename T>
  void Loops(const T* x, T* y, int64_t* indices) const {
    const size_t sp = in_.size();
    auto pad3 = [&](const std::vector<int64_t>& v, int64_t fill) {
      std::vector<int64_t> r(3 - sp, fill);
      r.insert(r.end(), v.begin(), v.end());
      return r;
    };
    const auto in = pad3(in_, 1), k = pad3(kernel_, 1), s = pad3(strides_, 1), d = pad3(dil_, 1);
    const auto pl = pad3(geo_.pad_l, 0), pr = pad3(geo_.pad_r, 0), out = pad3(geo_.out, 1);
    const int64_t planes = shape_[0] * shape_[1];
    const int64_t in_plane = in[0] * in[1] * in[2], out_plane = out[0] * out[1] * out[2];
#pragma omp parallel for
    for (int64_t plane = 0; plane < planes; ++plane) {
      const T* xp = x + plane * in_plane;
      for (int64_t od = 0; od < out[0]; ++od)
        for (int64_t oh = 0; oh < out[1]; ++oh)
          for (int64_t ow = 0; ow < out[2]; ++ow) {
            double acc = kind_ == PoolKind::kMax ? -std::numeric_limits<double>::infinity() : 0.0;
            int64_t best = 0, valid = 0, padded = 0;
            for (int64_t kd = 0; kd < k[0]; ++kd)
              for (int64_t kh = 0; kh < k[1]; ++kh)
                for (int64_t kw = 0; kw < k[2]; ++kw) {
                  const int64_t id = od * s[0] - pl[0] + kd * d[0];
                  const int64_t ih = oh * s[1] - pl[1] + kh * d[1];
                  const int64_t iw = ow * s[2] - pl[2] + kw * d[2];
                  const bool in_padded = id < in[0] + pr[0] && ih < in[1] + pr[1] && iw < in[2] + pr[2];
                  if (in_padded) ++padded;
                  if (id < 0 || id >= in[0] || ih < 0 || ih >= in[1] || iw < 0 || iw >= in[2]) continue;
                  const double v = static_cast<double>(xp[(id * in[1] + ih) * in[2] + iw]);
                  ++valid;
                  if (kind_ == PoolKind::kMax) {
                    if (v > acc) {
                      acc = v;
                      // ONNX Indices: flat index over [N, C, spatial...], spatial order per storage_order.
                      int64_t sidx = storage_order_ == 0 ? (id * in[1] + ih) * in[2] + iw
                                                         : (iw * in[1] + ih) * in[0] + id;
                      best = plane * in_plane + sidx;
                    }
                  } else if (kind_ == PoolKind::kAvg) {
                    acc += v;
                  } else {
                    acc += std::pow(std::fabs(v), static_cast<double>(p_));
                  }
                }
            double r;
            if (kind_ == PoolKind::kMax) {
              r = acc;
            } else if (kind_ == PoolKind::kAvg) {
              const int64_t div = count_include_pad_ ? padded : valid;
              r = div > 0 ? acc / static_cast<double>(div) : 0.0;
            } else {
              r = std::pow(acc, 1.0 / static_cast<double>(p_));
            }
            const int64_t o = plane * out_plane + (od * out[1] + oh) * out[2] + ow;
            y[o] = static_cast<T>(r);
            if (indices) indices[o] = best;
          }
    }
  }

  Status RunLoops(RunContext& ctx) const {
    int64_t* indices = ctx.num_outputs() > 1 && ctx.has_output(1) ? ctx.output(1).as<int64_t>() : nullptr;
    switch (dtype_) {
      case DataType::kFloat32: Loops(ctx.input(0).as<float>(), ctx.output(0).as<float>(), indices); break;
      case DataType::kUint8: Loops(ctx.input(0).as<uint8_t>(), ctx.output(0).as<uint8_t>(), indices); break;
      case DataType::kInt8: Loops(ctx.input(0).as<int8_t>(), ctx.output(0).as<int8_t>(), indices); break;
      default: return Internal("pool: unexpected dtype");
    }
    return Status::OK();
  }

  PoolKind kind_;
  bool global_;
  bool onednn_ = true;
  bool use_onednn_ = true;
  DataType dtype_ = DataType::kFloat32;
  std::vector<int64_t> in_, kernel_, strides_, dil_;
  WindowGeometry geo_;
  bool count_include_pad_ = false;
  float p_ = 2.f;
  int64_t storage_order_ = 0;
  Shape shape_, out_shape_;
  memory::desc src_md_, dst_md_, scratch_md_;
  dnnl::primitive prim_;
};

}  // namespace

StatusOr<std::unique_ptr<Kernel>> MakeMaxPool(const ir::Node& n) {
  return std::unique_ptr<Kernel>(new PoolKernel(n, PoolKind::kMax, false));
}
StatusOr<std::unique_ptr<Kernel>> MakeAveragePool(const ir::Node& n) {
  return std::unique_ptr<Kernel>(new PoolKernel(n, PoolKind::kAvg, false));
}
StatusOr<std::unique_ptr<Kernel>> MakeLpPool(const ir::Node& n) {
  return std::unique_ptr<Kernel>(new PoolKernel(n, PoolKind::kLp, false));
}
StatusOr<std::unique_ptr<Kernel>> MakeGlobalAveragePool(const ir::Node& n) {
  return std::unique_ptr<Kernel>(new PoolKernel(n, PoolKind::kAvg, true));
}
StatusOr<std::unique_ptr<Kernel>> MakeGlobalMaxPool(const ir::Node& n) {
  return std::unique_ptr<Kernel>(new PoolKernel(n, PoolKind::kMax, true));
}
StatusOr<std::unique_ptr<Kernel>> MakeGlobalLpPool(const ir::Node& n) {
  return std::unique_ptr<Kernel>(new PoolKernel(n, PoolKind::kLp, true));
}

}  // namespace gpuhive::cpu::onednn
