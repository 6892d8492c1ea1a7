// MatMul / gpuhive.FusedMatMul and Gemm / gpuhive.FusedGemm on the oneDNN matmul primitive.
//
// Constant B (weights) is reordered once into the primitive's preferred packed format. A 3-D+ A
// times a 2-D B is run as one 2-D matmul over the flattened leading dims (the BERT hot path), as
// long as the post-op tensors allow the same flattening.
//
// One packed copy per weight, not per plan: every plan of a model (one per batch size) prepares
// its own kernel, and the packed format oneDNN prefers can differ with M. The first kernel for a
// weight packs it and publishes the copy (PackedWeights below); later kernels build their
// primitive for that same format and share the copy, and only when oneDNN cannot do so (or only
// with its reference implementation) pack their own. A constant B is always copied, even when the
// packed format equals its own layout: the kernel then owns its copy (CopyOfInput) and the
// runtime frees the imported one, so each weight is held once.
#include <algorithm>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "kernels/cpu/onednn/common.h"
#include "kernels/cpu/onednn/kernels.h"

namespace gpuhive::cpu::onednn {
namespace {

class MatMulKernel final : public Kernel {
 public:
  explicit MatMulKernel(bool gemm) : gemm_(gemm) {}

  Status Prepare(PrepareContext& ctx) override {
    ThreadScope threads(ctx.options().num_threads);  // as ConvKernel: one weight format for every plan
    return Guard(ctx.node().Describe(), [&] { return gemm_ ? PrepareGemm(ctx) : PrepareMatMul(ctx); });
  }

  std::string_view implementation() const override { return implementation_; }

  std::shared_ptr<const void> CopyOfInput(size_t i) const override {
    return i == 1 ? packed_ : i == 2 ? c_scaled_ : nullptr;
  }

  Status Run(RunContext& ctx) const override {
    SetThreads(ctx.num_threads());
    return Guard(gemm_ ? "Gemm run" : "MatMul run", [&]() -> Status {
      dnnl::stream& s = ThreadStream();
      memory a(a_md_, Engine(), ctx.input(0).data);
      if (reorder_a_) {  // BF16 compute: A converted into the workspace
        memory tmp(prim_a_md_, Engine(), WsPtr(ctx, ws_a_));
        a_reorder_.execute(s, a, tmp);
        a = tmp;
      }
      memory b(b_md_, Engine(), packed_ ? packed_->buffer.data() : ctx.input(1).data);
      memory dst(dst_md_, Engine(), ctx.output(0).data);
      void* scratch = WsPtr(ctx, ws_scratch_);
      ArgMap args{{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, dst}};
      if (bias_) {
        const void* bias = bias_->constant != nullptr ? bias_->constant : ctx.input(static_cast<size_t>(bias_->input)).data;
        args.insert({DNNL_ARG_BIAS, memory(bias_md_, Engine(), const_cast<void*>(bias))});
      }
      if (scratch_md_.get_size() > 0) args.insert({DNNL_ARG_SCRATCHPAD, memory(scratch_md_, Engine(), scratch)});
      if (fused_) {
        RETURN_IF_ERROR(chain_.CopySumInput(ctx, dst, scratch));
        chain_.AddFusedArgs(ctx, args, dst_md_.dims());
      }
      prim_.execute(s, args);
      if (!fused_) {
        memory post(post_md_, Engine(), ctx.output(0).data);
        chain_.RunStandalone(ctx, post, scratch);
      }
      s.wait();
      return Status::OK();
    });
  }

 private:
  Status CheckFloat(const PrepareContext& ctx, size_t n) const {
    for (size_t i = 0; i < n; ++i) {
      if (!ctx.has_input(i)) return InvalidArgument("{}: missing input {}", ctx.node().Describe(), i);
      if (ctx.input_dtype(i) != DataType::kFloat32) {
        return Unimplemented("{}: only float32 is supported (input {} is {})", ctx.node().Describe(), i,
                             DataTypeName(ctx.input_dtype(i)));
      }
    }
    return Status::OK();
  }

  // Builds the primitive for a_md x b_req -> dst (dims `dst_dims`), `post_md` = the md the
  // standalone post-ops run on, and packs constant weights (shared with the model's other plans).
  Status Build(PrepareContext& ctx, const memory::desc& b_user, const Tensor* b_const, const Shape& out_shape) {
    const Dims dst_dims = dst_md_.dims();
    // BF16 compute with constant weights: B packed in bfloat16, A converted in Run (dense
    // row-major), the product accumulated and written in float32.
    const bool bf16 = ctx.options().bf16_compute && b_const != nullptr;
    const memory::data_type b_type = bf16 ? memory::data_type::bf16 : memory::data_type::f32;
    prim_a_md_ = bf16 ? memory::desc(a_md_.dims(), memory::data_type::bf16, PlainTag(a_md_.dims().size())) : a_md_;
    reorder_a_ = bf16;
    // A leading per-column Add is the primitive's bias rather than a binary post-op, on oneDNN's
    // brgemm matmul (AVX-512; BERT-base at batch 8: 602 vs 621 ms). Its gemm-based matmul below
    // AVX-512 would need an M x N accumulation buffer for the bias (3 MiB more workspace for
    // BERT-base at batch 8): there the Add stays a post-op.
    bias_ = bf16 ? std::nullopt : chain_.TakeLeadingBias(dst_dims.back());
    if (bias_) {
      Dims bias_dims(dst_dims.size(), 1);
      bias_dims.back() = dst_dims.back();
      bias_md_ = memory::desc(bias_dims, memory::data_type::f32, PlainTag(bias_dims.size()));
      bool brgemm = false;
      try {
        const memory::desc b_any(b_user.dims(), b_type, Tag::any);
        dnnl::matmul::primitive_desc probe(dnnl::matmul::desc(prim_a_md_, b_any, bias_md_, dst_md_), ScratchAttr(),
                                           Engine());
        brgemm = std::string(probe.impl_info_str()).rfind("brg", 0) == 0;
      } catch (const dnnl::error&) {
      }
      if (!brgemm) {
        chain_.PrependBinary(PostOp{PostOp::Kind::kAdd}, bias_->input, bias_->shape, bias_->constant);
        bias_.reset();
      }
    }
    // Fused post-ops only when the chain's tensors can be viewed in the primitive's dst dims.
    bool can_fuse = chain_.fusable() &&
                    (dst_dims.size() == out_shape.size() ? Shape(dst_dims.begin(), dst_dims.end()) == out_shape
                                                         : chain_.CanFlattenTo2D(out_shape));
    auto make = [&](const memory::desc& b_req, bool with_post_ops) {
      dnnl::primitive_attr attr = ScratchAttr();
      if (with_post_ops && !chain_.empty()) {
        dnnl::post_ops po;
        chain_.AppendFused(po, dst_dims);
        attr.set_post_ops(po);
      }
      const dnnl::matmul::desc d = bias_ ? dnnl::matmul::desc(prim_a_md_, b_req, bias_md_, dst_md_)
                                         : dnnl::matmul::desc(prim_a_md_, b_req, dst_md_);
      return dnnl::matmul::primitive_desc(d, attr, Engine());
    };
    // The primitive for weights in `b_req`, fusing post-ops when possible.
    // A fused configuration oneDNN can only run on its reference implementation (a broadcast
    // binary post-op plus sum on AVX2, measured: BERT's FFN output 1.6 ms -> ref) is dropped for
    // the plain matmul with the post-ops run standalone.
    auto make_pd = [&](const memory::desc& b_req, bool* fused) {
      *fused = can_fuse;
      try {
        auto pd = make(b_req, *fused);
        if (!*fused || chain_.empty() || !IsReferenceImpl(pd)) return pd;
      } catch (const dnnl::error&) {
        if (!*fused || chain_.empty()) throw;
      }
      *fused = false;
      return make(b_req, false);
    };
    const ir::Value* b_value = ctx.node().inputs.size() > 1 ? ctx.node().inputs[1] : nullptr;
    dnnl::matmul::primitive_desc pd;
    bool have_pd = false;
    if (b_const != nullptr && b_value != nullptr) {
      // Another plan's packed copy of this weight, if a primitive for this shape takes its format.
      for (const auto& packed : PackedWeights::Get().Find(b_value, b_user)) {
        if (packed->md.data_type() != b_type) continue;
        try {
          bool fused = false;
          auto candidate = make_pd(packed->md, &fused);
          if (std::string(candidate.impl_info_str()).rfind("ref", 0) == 0) continue;
          pd = candidate;
          fused_ = fused;
          packed_ = packed;
          have_pd = true;
          break;
        } catch (const dnnl::error&) {
        }
      }
    }
    if (!have_pd) {
      memory::desc b_req = b_const != nullptr ? memory::desc(b_user.dims(), b_type, Tag::any) : b_user;
      pd = make_pd(b_req, &fused_);
    }
    prim_ = dnnl::matmul(pd);
    implementation_ = pd.impl_info_str();
    if (bf16) implementation_ += " [bf16]";  // oneDNN's names may not say (gemm:jit)
    scratch_md_ = pd.scratchpad_desc();
    size_t scratch = scratch_md_.get_size();
    if (!fused_ && !chain_.empty()) {
      ASSIGN_OR_RETURN(post_md_, MdFor(out_shape.empty() ? Shape{1} : out_shape, Layout::kPlain));
      scratch = std::max(scratch, chain_.PrepareStandalone(post_md_));
    }
    WorkspacePlan ws;
    ws_scratch_ = ws.Add(scratch);
    if (reorder_a_) {
      ws_a_ = ws.Add(prim_a_md_.get_size());
      a_reorder_ = dnnl::reorder(dnnl::reorder::primitive_desc(Engine(), a_md_, Engine(), prim_a_md_));
    }
    if (b_const != nullptr) {
      b_md_ = pd.weights_desc();
      if (!have_pd) {
        ASSIGN_OR_RETURN(packed_, SharedPack(ctx, b_value, *b_const, b_user, b_md_));
      }
    } else {
      b_md_ = b_user;
    }
    ctx.RequestWorkspace(ws.total());
    ctx.SetOutput(0, DataType::kFloat32, out_shape);
    return Status::OK();
  }

  Status PrepareMatMul(PrepareContext& ctx) {
    const ir::Node& node = ctx.node();
    RETURN_IF_ERROR(CheckFloat(ctx, 2));
    Shape a = ctx.input_shape(0), b = ctx.input_shape(1);
    if (a.empty() || b.empty()) return InvalidArgument("{}: MatMul operands must be at least 1-D", node.Describe());
    const bool a1 = a.size() == 1, b1 = b.size() == 1;
    if (a1) a.insert(a.begin(), 1);
    if (b1) b.push_back(1);
    const size_t r = std::max(a.size(), b.size());
    const size_t b_rank_orig = b.size();
    while (a.size() < r) a.insert(a.begin(), 1);
    while (b.size() < r) b.insert(b.begin(), 1);
    const int64_t m = a[r - 2], k = a[r - 1], n = b[r - 1];
    if (b[r - 2] != k) {
      return InvalidArgument("{}: inner dimensions differ: {} x {}", node.Describe(),
                             ShapeToString(ctx.input_shape(0)), ShapeToString(ctx.input_shape(1)));
    }
    Shape batch;
    for (size_t i = 0; i + 2 < r; ++i) {
      if (a[i] != b[i] && a[i] != 1 && b[i] != 1) {
        return InvalidArgument("{}: batch dims do not broadcast: {} x {}", node.Describe(),
                               ShapeToString(ctx.input_shape(0)), ShapeToString(ctx.input_shape(1)));
      }
      batch.push_back(std::max(a[i], b[i]));
    }
    Shape out_shape = batch;
    if (!a1) out_shape.push_back(m);
    if (!b1) out_shape.push_back(n);
    for (int64_t d : out_shape) {
      if (d == 0) return Unimplemented("{}: empty MatMul output", node.Describe());
    }
    if (k == 0) return Unimplemented("{}: MatMul with K = 0", node.Describe());
    RETURN_IF_ERROR(chain_.Init(ctx, 2, out_shape));

    // Flatten [..., M, K] x [K, N] into one 2-D product when B has no batch dims.
    const bool flatten = r > 2 && b_rank_orig <= 2 && !a1 && !b1 &&
                         (chain_.empty() || chain_.CanFlattenTo2D(out_shape));
    memory::desc b_user;
    if (flatten) {
      int64_t rows = NumElements(batch) * m;
      a_md_ = PlainMd({rows, k});
      b_user = PlainMd({k, n});
      dst_md_ = PlainMd({rows, n});
    } else {
      a_md_ = PlainMd(ToDims(a));
      b_user = PlainMd(ToDims(b));
      Dims dd = ToDims(batch);
      dd.push_back(m);
      dd.push_back(n);
      dst_md_ = PlainMd(dd);
    }
    return Build(ctx, b_user, ctx.input_value(1), out_shape);
  }

  Status PrepareGemm(PrepareContext& ctx) {
    const ir::Node& node = ctx.node();
    RETURN_IF_ERROR(CheckFloat(ctx, 2));
    const Shape& a = ctx.input_shape(0);
    const Shape& b = ctx.input_shape(1);
    if (a.size() != 2 || b.size() != 2) {
      return InvalidArgument("{}: Gemm needs 2-D A and B, got {} and {}", node.Describe(), ShapeToString(a),
                             ShapeToString(b));
    }
    ASSIGN_OR_RETURN(float alpha, node.GetFloat("alpha", 1.f));
    ASSIGN_OR_RETURN(float beta, node.GetFloat("beta", 1.f));
    ASSIGN_OR_RETURN(int64_t trans_a, node.GetInt("transA", 0));
    ASSIGN_OR_RETURN(int64_t trans_b, node.GetInt("transB", 0));
    const int64_t m = trans_a ? a[1] : a[0], k = trans_a ? a[0] : a[1];
    const int64_t kb = trans_b ? b[1] : b[0], n = trans_b ? b[0] : b[1];
    if (k != kb) {
      return InvalidArgument("{}: inner dimensions differ: A {} B {} (transA={}, transB={})", node.Describe(),
                             ShapeToString(a), ShapeToString(b), trans_a, trans_b);
    }
    if (m == 0 || n == 0 || k == 0) return Unimplemented("{}: empty Gemm", node.Describe());
    const Shape out_shape = {m, n};
    RETURN_IF_ERROR(chain_.Init(ctx, 3, out_shape));
    const bool has_c = ctx.num_inputs() > 2 && ctx.has_input(2) && beta != 0.f;
    if (has_c) {
      if (ctx.input_dtype(2) != DataType::kFloat32) return Unimplemented("{}: C must be float32", node.Describe());
      const Shape& c = ctx.input_shape(2);
      if (c.size() > 2) return InvalidArgument("{}: C must be at most 2-D", node.Describe());
      Dims cb = BroadcastDims(c, 2);
      if ((cb[0] != 1 && cb[0] != m) || (cb[1] != 1 && cb[1] != n)) {
        return InvalidArgument("{}: C {} does not broadcast to [{},{}]", node.Describe(), ShapeToString(c), m, n);
      }
      const Tensor* cval = ctx.input_value(2);
      PostOp add{PostOp::Kind::kAdd};
      if (cval != nullptr) {
        // beta * C folded once into a copy shared by the model's plans.
        const ir::Value* c_value = node.inputs[2];
        memory::desc c_md = PlainMd(BroadcastDims(c, std::max<size_t>(c.size(), 1)));
        auto found = PackedWeights::Get().Find(c_value, c_md, beta);
        if (!found.empty()) {
          c_scaled_ = found.front();
        } else if (cval->data() == nullptr) {
          return Internal("{}: C was freed and no scaled copy of it is alive", node.Describe());
        } else {
          auto scaled = std::make_shared<Packed>();
          scaled->md = c_md;
          ASSIGN_OR_RETURN(scaled->buffer, Buffer::Allocate(ctx.persistent_resource(), cval->bytes() + 4,
                                                            ctx.persistent_tag()));
          float* dst = static_cast<float*>(scaled->buffer.data());
          for (int64_t i = 0; i < cval->num_elements(); ++i) dst[i] = beta * cval->as<float>()[i];
          c_scaled_ = scaled;
          PackedWeights::Get().Publish(c_value, c_md, c_scaled_, beta);
        }
        chain_.PrependBinary(add, 2, c, c_scaled_->buffer.data());
        if (alpha != 1.f) chain_.PrependUnary(PostOp{PostOp::Kind::kLinear, alpha, 0.f});
      } else if (beta == 1.f) {
        chain_.PrependBinary(add, 2, c);
        if (alpha != 1.f) chain_.PrependUnary(PostOp{PostOp::Kind::kLinear, alpha, 0.f});
      } else {
        chain_.PrependUnary(PostOp{PostOp::Kind::kLinear, beta, 0.f});
        chain_.PrependBinary(add, 2, c);
        chain_.PrependUnary(PostOp{PostOp::Kind::kLinear, alpha / beta, 0.f});
        // PrependUnary inserts at the front: the order is now linear(alpha/beta), add C, linear(beta).
      }
    } else if (alpha != 1.f) {
      chain_.PrependUnary(PostOp{PostOp::Kind::kLinear, alpha, 0.f});
    }
    a_md_ = memory::desc({m, k}, memory::data_type::f32, trans_a ? Dims{1, m} : Dims{k, 1});
    memory::desc b_user({k, n}, memory::data_type::f32, trans_b ? Dims{1, k} : Dims{n, 1});
    dst_md_ = PlainMd({m, n});
    return Build(ctx, b_user, ctx.input_value(1), out_shape);
  }

  bool gemm_;
  PostOpChain chain_;
  std::optional<PostOpChain::Bias> bias_;  // the chain's leading Add, run as the primitive's bias
  memory::desc bias_md_;
  bool fused_ = true;
  std::string implementation_;
  memory::desc a_md_, b_md_, dst_md_, post_md_, scratch_md_;
  memory::desc prim_a_md_;  // A as the primitive reads it (bfloat16 under BF16 compute)
  bool reorder_a_ = false;
  dnnl::reorder a_reorder_;
  size_t ws_scratch_ = 0, ws_a_ = 0;
  dnnl::primitive prim_;
  using Packed = PackedWeights::Packed;
  std::shared_ptr<const Packed> packed_;  // constant B in the primitive's format (shared)
  std::shared_ptr<const Packed> c_scaled_;  // beta * C for constant C (shared)
};

}  // namespace

StatusOr<std::unique_ptr<Kernel>> MakeMatMul(const ir::Node&) {
  return std::unique_ptr<Kernel>(new MatMulKernel(false));
}
StatusOr<std::unique_ptr<Kernel>> MakeGemm(const ir::Node&) {
  return std::unique_ptr<Kernel>(new MatMulKernel(true));
}

}  // namespace gpuhive::cpu::onednn
