// gpuhive.Elementwise (a fused chain of unary/binary post-ops applied to X) and gpuhive.Reorder
// (layout conversion inserted by the runtime between blocked producers and plain consumers).
#include <algorithm>
#include <cstring>
#include <memory>

#include "kernels/cpu/onednn/common.h"
#include "kernels/cpu/onednn/kernels.h"

namespace gpuhive::cpu::onednn {
namespace {

class ReorderKernel final : public Kernel {
 public:
  bool AcceptsBlockedInput(size_t) const override { return true; }
  bool AcceptsChannelsLastInput(size_t) const override { return true; }

  // float32 between any two layouts; uint8/int8 (channels-last, from the int8 convolutions) to plain.
  Status Prepare(PrepareContext& ctx) override {
    const ir::Node& node = ctx.node();
    if (ctx.num_inputs() != 1 || !ctx.has_input(0)) return InvalidArgument("{}: needs one input", node.Describe());
    const DataType dtype = ctx.input_dtype(0);
    memory::data_type type = memory::data_type::f32;
    if (dtype == DataType::kUint8 || dtype == DataType::kInt8) {
      type = dtype == DataType::kUint8 ? memory::data_type::u8 : memory::data_type::s8;
    } else if (dtype != DataType::kFloat32) {
      return Unimplemented("{}: only float32, uint8 and int8 can be reordered", node.Describe());
    }
    ASSIGN_OR_RETURN(std::string to, node.GetString("to", std::string("plain")));
    if (type != memory::data_type::f32 && to != "plain") {
      return Unimplemented("{}: {} values are reordered only to plain", node.Describe(), DataTypeName(dtype));
    }
    Layout out;
    if (to == "plain") {
      out = Layout::kPlain;
    } else if (to == "blocked8") {
      out = Layout::kBlocked8;
    } else if (to == "blocked16") {
      out = Layout::kBlocked16;
    } else {
      return InvalidArgument("{}: unknown layout '{}'", node.Describe(), to);
    }
    const Shape& shape = ctx.input_shape(0);
    return Guard(node.Describe(), [&]() -> Status {
      ASSIGN_OR_RETURN(src_md_, MdFor(shape, ctx.input_layout(0), type));
      ASSIGN_OR_RETURN(dst_md_, MdFor(shape, out, type));
      copy_ = src_md_ == dst_md_;
      if (!copy_) prim_ = dnnl::reorder(dnnl::reorder::primitive_desc(Engine(), src_md_, Engine(), dst_md_));
      ctx.SetOutput(0, dtype, shape, out, out == Layout::kPlain ? 0 : dst_md_.get_size());
      return Status::OK();
    });
  }

  Status Run(RunContext& ctx) const override {
    SetThreads(ctx.num_threads());
    return Guard("Reorder run", [&]() -> Status {
      if (copy_) {
        if (ctx.output(0).data != ctx.input(0).data) {
          std::memcpy(ctx.output(0).data, ctx.input(0).data, dst_md_.get_size());
        }
        return Status::OK();
      }
      memory src(src_md_, Engine(), ctx.input(0).data);
      memory dst(dst_md_, Engine(), ctx.output(0).data);
      prim_.execute(ThreadStream(), src, dst);
      ThreadStream().wait();
      return Status::OK();
    });
  }

 private:
  memory::desc src_md_, dst_md_;
  bool copy_ = false;
  dnnl::reorder prim_;
};

class ElementwiseKernel final : public Kernel {
 public:
  explicit ElementwiseKernel(const ir::Node& node) {
    auto texts = node.GetStrings("post_ops", std::vector<std::string>{});
    if (!texts.ok()) return;
    auto ops = ParsePostOps(*texts);
    if (!ops.ok()) return;
    size_t next = 1;
    for (const PostOp& op : *ops) {
      if (!op.is_binary()) continue;
      if (op.kind == PostOp::Kind::kSum) sum_inputs_.push_back(next);
      ++next;
    }
    channels_last_ok_ = !ops->empty() && std::none_of(ops->begin() + 1, ops->end(), [](const PostOp& op) { return op.is_binary(); });
    first_is_sum_ = !ops->empty() && ops->front().kind == PostOp::Kind::kSum;
  }

  bool AcceptsBlockedInput(size_t i) const override {
    return i == 0 || std::find(sum_inputs_.begin(), sum_inputs_.end(), i) != sum_inputs_.end();
  }
  // Channels-last (the int8 convolutions' float32 results): X, and a first op's operand, when no
  // later op takes a tensor (the chain's per-channel operands are laid out for blocked X only).
  bool AcceptsChannelsLastInput(size_t i) const override {
    return channels_last_ok_ && (i == 0 || (i == 1 && first_is_sum_));
  }

  // The first primitive's implementation, then those of the standalone post-ops, ';'-separated.
  std::string_view implementation() const override { return implementation_; }

  Status Prepare(PrepareContext& ctx) override {
    return Guard(ctx.node().Describe(), [&] { return PrepareImpl(ctx); });
  }

  Status Run(RunContext& ctx) const override {
    if (rowwise_) {
      RunRowwise(ctx);
      return Status::OK();
    }
    SetThreads(ctx.num_threads());
    return Guard("Elementwise run", [&]() -> Status {
      dnnl::stream& s = ThreadStream();
      chain_.StageExtras(ctx);
      memory src(md_, Engine(), ctx.input(0).data);
      memory dst(md_, Engine(), ctx.output(0).data);
      void* scratch = ctx.workspace();
      ArgMap args;
      if (scratch_md_.get_size() > 0) args.insert({DNNL_ARG_SCRATCHPAD, memory(scratch_md_, Engine(), scratch)});
      if (first_.is_binary()) {
        args.insert({DNNL_ARG_SRC_0, src});
        memory src1(src1_md_, Engine(), ctx.input(1).data);
        if (src1_reorder_) {
          // Plain [N,C,1,1] operand in X's blocked format: oneDNN's binary JIT needs equal formats.
          memory tmp(src1_exec_md_, Engine(), static_cast<char*>(ctx.workspace()) + ws_src1_);
          src1_reorder_.execute(s, src1, tmp);
          src1 = tmp;
        }
        args.insert({DNNL_ARG_SRC_1, src1});
      } else {
        args.insert({DNNL_ARG_SRC, src});
      }
      args.insert({DNNL_ARG_DST, dst});
      if (fused_) chain_.AddFusedArgs(ctx, args, md_.dims());
      prim_.execute(s, args);
      if (!fused_) chain_.RunStandalone(ctx, dst, scratch);
      s.wait();
      return Status::OK();
    });
  }

 private:
  Status PrepareImpl(PrepareContext& ctx) {
    const ir::Node& node = ctx.node();
    if (ctx.num_inputs() < 1 || !ctx.has_input(0)) return InvalidArgument("{}: needs X", node.Describe());
    if (ctx.input_dtype(0) != DataType::kFloat32) {
      return Unimplemented("{}: only float32 is supported", node.Describe());
    }
    ASSIGN_OR_RETURN(auto texts, node.GetStrings("post_ops"));
    ASSIGN_OR_RETURN(auto ops, ParsePostOps(texts));
    if (ops.empty()) return InvalidArgument("{}: empty post_ops", node.Describe());
    first_ = ops[0];
    const Shape& shape = ctx.input_shape(0);
    ASSIGN_OR_RETURN(md_, MdFor(shape, ctx.input_layout(0)));
    rows_ = 0;
    if (!first_.is_binary() && shape.size() < 2) {
      // oneDNN 2.6's eltwise with binary post-ops writes nothing at all for a 1-D dst (ref
      // implementation): run rank 0 and 1 as [1, n]; the chain's extras follow (flattened view).
      md_ = PlainMd({1, md_.dims()[0]});
    }
    size_t first_extra = 1;
    if (first_.is_binary()) {
      if (ctx.num_inputs() < 2 || !ctx.has_input(1) || ctx.input_dtype(1) != DataType::kFloat32) {
        return InvalidArgument("{}: '{}' needs a float32 input 1", node.Describe(), FormatPostOp(first_));
      }
      const Shape& es = ctx.input_shape(1);
      if (first_.kind == PostOp::Kind::kSum) {
        if (es != shape) return InvalidArgument("{}: 'sum' needs equal shapes", node.Describe());
        ASSIGN_OR_RETURN(src1_md_, MdFor(es, ctx.input_layout(1)));
        if (ctx.input_layout(1) != ctx.input_layout(0)) {  // oneDNN's binary JIT needs equal formats
          src1_exec_md_ = md_;
          src1_reorder_ = dnnl::reorder(dnnl::reorder::primitive_desc(Engine(), src1_md_, Engine(), src1_exec_md_));
        }
      } else {
        if (ctx.input_layout(1) != Layout::kPlain || es.size() > shape.size()) {
          return InvalidArgument("{}: input 1 {} does not broadcast to {}", node.Describe(),
                                 ShapeToString(es), ShapeToString(shape));
        }
        Dims b = BroadcastDims(es, shape.size());
        for (size_t i = 0; i < b.size(); ++i) {
          if (b[i] != 1 && b[i] != shape[i]) {
            return InvalidArgument("{}: input 1 {} does not broadcast to {}", node.Describe(),
                                   ShapeToString(es), ShapeToString(shape));
          }
        }
        if (b.empty()) b = {1};
        src1_md_ = PlainMd(b);
        bool spatial_one = b.size() >= 3;
        for (size_t i = 2; i < b.size(); ++i) spatial_one = spatial_one && b[i] == 1;
        // Per-channel ([N,C,1,1]) and full-size operands of a blocked X go in X's format: oneDNN's
        // binary JIT needs equal formats (a plain full-size operand took ref:any).
        const bool full_size = Shape(b.begin(), b.end()) == shape;
        const Layout x_layout = ctx.input_layout(0);
        if (x_layout == Layout::kChannelsLast && spatial_one && b[1] == shape[1] && !full_size &&
            first_.kind != PostOp::Kind::kSum) {
          // nhwc X and a per-channel operand: [N*H*W rows, C] scaled row by row (below).
          rows_ = shape[0];
          for (size_t i = 2; i < shape.size(); ++i) rows_ *= shape[i];
          channels_ = shape[1];
          rows_per_operand_row_ = b[0] == 1 ? rows_ : rows_ / shape[0];
        }
        if (x_layout != Layout::kPlain && ((spatial_one && b[1] == shape[1]) || full_size)) {
          const Tag tag = x_layout == Layout::kChannelsLast ? ChannelsLastTag(b.size())
                                                            : BlockedTag(b.size(), x_layout == Layout::kBlocked16 ? 16 : 8);
          src1_exec_md_ = memory::desc(b, memory::data_type::f32, tag);
          if (SameBytesAsPlain(Shape(b.begin(), b.end()), x_layout) &&
              src1_exec_md_.get_size() == src1_md_.get_size()) {
            src1_md_ = src1_exec_md_;  // the plain bytes already are X's format (C a multiple of the block)
          } else {
            src1_reorder_ = dnnl::reorder(dnnl::reorder::primitive_desc(Engine(), src1_md_, Engine(), src1_exec_md_));
          }
        }
      }
      first_extra = 2;
    }
    RETURN_IF_ERROR(chain_.Init(ctx, first_extra, shape, 1, /*fuse_sum=*/false));
    // The squeeze-excitation scaling of an nhwc X by [N|1, C, 1, 1], alone: gpuhive's own row loop.
    // oneDNN 2.6's binary JIT broadcasts per channel over nhwc about 5x slower than over blocked
    // layouts (EfficientNet-B0's INT8: 16 such Mul steps took 1.0-1.2 ms of a 5.8 ms run).
    rowwise_ = rows_ > 0 && chain_.empty();
    if (rowwise_) {
      implementation_ = "gpuhive:rowwise";
      ctx.SetOutput(0, DataType::kFloat32, shape, Layout::kChannelsLast, md_.get_size());
      ctx.AllowInPlace(0, 0);
      return Status::OK();
    }
    rows_ = 0;
    const size_t staging = chain_.StageFullSizeExtras(ctx.input_layout(0));

    auto make = [&](bool with_post_ops) -> dnnl::primitive_desc {
      dnnl::primitive_attr attr = ScratchAttr();
      if (with_post_ops && !chain_.empty()) {
        dnnl::post_ops po;
        chain_.AppendFused(po, md_.dims());
        attr.set_post_ops(po);
      }
      if (first_.is_binary()) {
        PostOp::Kind k = first_.kind == PostOp::Kind::kSum ? PostOp::Kind::kAdd : first_.kind;
        dnnl::binary::desc d(BinaryAlg(k), md_, src1_reorder_ ? src1_exec_md_ : src1_md_, md_);
        return dnnl::binary::primitive_desc(d, attr, Engine());
      }
      auto specs = EltwiseSpecs(first_);
      dnnl::eltwise_forward::desc d(dnnl::prop_kind::forward_inference, specs[0].alg, md_, specs[0].alpha,
                                    specs[0].beta);
      return dnnl::eltwise_forward::primitive_desc(d, attr, Engine());
    };
    // hardsigmoid is two eltwise steps (linear, clip): the clip joins the chain.
    if (!first_.is_binary() && EltwiseSpecs(first_).size() > 1) {
      PostOp clip{PostOp::Kind::kClip};
      clip.alpha = 0.f;
      clip.beta = 1.f;
      chain_.PrependUnary(clip);
    }
    // Fused when oneDNN has a JIT kernel for the whole chain; a fused chain it could only run on
    // its reference implementation (binary post-ops whose operand is in another format than a
    // blocked src, some eltwise chains on AVX2) runs as separate JIT primitives instead.
    dnnl::primitive_desc pd;
    fused_ = chain_.fusable();
    try {
      pd = make(fused_);
      if (fused_ && !chain_.empty() && IsReferenceImpl(pd)) {
        dnnl::primitive_desc plain = make(false);
        if (!IsReferenceImpl(plain)) {
          pd = plain;
          fused_ = false;
        }
      }
    } catch (const dnnl::error&) {
      if (chain_.empty() || !fused_) throw;
      fused_ = false;
      pd = make(false);
    }
    scratch_md_ = pd.scratchpad_desc();
    size_t scratch = scratch_md_.get_size();
    implementation_ = pd.impl_info_str();
    if (src1_reorder_) implementation_ += "+src1_reorder";  // the operand is converted every run
    if (!fused_) {
      scratch = std::max(scratch, chain_.PrepareStandalone(md_));
      for (const std::string& impl : chain_.standalone_implementations()) implementation_ += ";" + impl;
    }
    if (first_.is_binary()) {
      prim_ = dnnl::binary(dnnl::binary::primitive_desc(pd.get()));
    } else {
      prim_ = dnnl::eltwise_forward(dnnl::eltwise_forward::primitive_desc(pd.get()));
    }
    ws_src1_ = (scratch + 63) / 64 * 64;
    const size_t src1_bytes = src1_reorder_ ? (src1_exec_md_.get_size() + 63) / 64 * 64 : 0;
    chain_.SetStagingBase(ws_src1_ + src1_bytes);
    ctx.RequestWorkspace(ws_src1_ + src1_bytes + staging);
    Layout layout = ctx.input_layout(0);
    ctx.SetOutput(0, DataType::kFloat32, shape, layout, layout == Layout::kPlain ? 0 : md_.get_size());
    ctx.AllowInPlace(0, 0);
    return Status::OK();
  }

  // y[r, c] = x[r, c] op s[r / rows_per_operand_row_, c] over rows_ rows of channels_ values.
  template <typename Op>
  void Rowwise(const float* x, const float* op_rows, float* y, int threads, Op op) const {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t r = 0; r < rows_; ++r) {
      const float* sc = op_rows + (r / rows_per_operand_row_) * channels_;
      const float* xr = x + r * channels_;
      float* yr = y + r * channels_;
      for (int64_t c = 0; c < channels_; ++c) yr[c] = op(xr[c], sc[c]);
    }
  }
  void RunRowwise(const RunContext& ctx) const {
    const float* x = ctx.input(0).as<const float>();
    const float* sc = ctx.input(1).as<const float>();
    float* y = ctx.output(0).as<float>();
    const int t = std::max(1, ctx.num_threads());
    switch (first_.kind) {
      case PostOp::Kind::kMul: Rowwise(x, sc, y, t, [](float a, float b) { return a * b; }); break;
      case PostOp::Kind::kSub: Rowwise(x, sc, y, t, [](float a, float b) { return a - b; }); break;
      case PostOp::Kind::kDiv: Rowwise(x, sc, y, t, [](float a, float b) { return a / b; }); break;
      case PostOp::Kind::kMax: Rowwise(x, sc, y, t, [](float a, float b) { return std::max(a, b); }); break;
      case PostOp::Kind::kMin: Rowwise(x, sc, y, t, [](float a, float b) { return std::min(a, b); }); break;
      default: Rowwise(x, sc, y, t, [](float a, float b) { return a + b; }); break;
    }
  }

  std::vector<size_t> sum_inputs_;
  bool channels_last_ok_ = false, first_is_sum_ = false;
  bool rowwise_ = false;
  int64_t rows_ = 0, channels_ = 0, rows_per_operand_row_ = 1;
  PostOp first_{PostOp::Kind::kRelu};
  memory::desc md_, src1_md_, src1_exec_md_, scratch_md_;
  dnnl::reorder src1_reorder_;
  size_t ws_src1_ = 0;
  PostOpChain chain_;
  bool fused_ = true;
  std::string implementation_;
  dnnl::primitive prim_;
};

}  // namespace

StatusOr<std::unique_ptr<Kernel>> MakeReorder(const ir::Node&) {
  return std::unique_ptr<Kernel>(new ReorderKernel());
}
StatusOr<std::unique_ptr<Kernel>> MakeElementwise(const ir::Node& node) {
  return std::unique_ptr<Kernel>(new ElementwiseKernel(node));
}

}  // namespace gpuhive::cpu::onednn
