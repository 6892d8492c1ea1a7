// Conv, gpuhive.FusedConv and ConvTranspose on oneDNN convolution / deconvolution primitives.
//
// Prepare builds the primitive once per shape. Constant weights are reordered once into the
// primitive's preferred format in a persistent buffer. With blocked layouts allowed the output is
// produced in the format oneDNN prefers (nChw16c on AVX-512), and blocked inputs are consumed as
// they are, so chains of convolutions never go back to plain. Where a format would put oneDNN on
// its reference implementation, another format is used (the input reordered in Run).
//
// BF16 compute (KernelOptions::bf16_compute): a one-group convolution with constant weights packs
// them in bfloat16 and takes its input in bfloat16 (the reorder that converts it runs in Run); the
// output stays float32. Grouped (depthwise) convolutions stay float32: they are memory-bound, and
// the conversion costs more than BF16 saves (measured on MobileNetV3 and EfficientNet-B0).
#include <algorithm>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "gpuhive/logging.h"
#include "kernels/cpu/onednn/common.h"
#include "gpuhive/window_geometry.h"
#include "kernels/cpu/loops/common.h"
#include "kernels/cpu/onednn/kernels.h"

namespace gpuhive::cpu::onednn {
namespace {

Tag ConvTransposeWeightsTag(size_t spatial, bool grouped) {
  // ONNX ConvTranspose weights are [C_in, M/group, k...]: per group "input channel" outermost.
  if (grouped) {
    switch (spatial) {
      case 1: return Tag::acbd;
      case 2: return Tag::acbde;
      case 3: return Tag::acbdef;
      default: return Tag::undef;
    }
  }
  switch (spatial) {
    case 1: return Tag::bac;
    case 2: return Tag::bacd;
    case 3: return Tag::bacde;
    default: return Tag::undef;
  }
}

// Whether a convolution asks oneDNN for Winograd first (KernelOptions::conv_algorithm): FP32 (BF16
// compute keeps direct), one group, 2-D 3x3, stride 1, no dilation, constant weights (packed once)
// and blocked layouts (oneDNN's Winograd kernels take nChw16c only), on AVX-512. Where oneDNN still
// has no Winograd kernel (a post-op it cannot fuse) the direct attempts follow.
bool WantsWinograd(const PrepareContext& ctx, const ConvGeometry& geo, memory::data_type cdt) {
  const ConvAlgorithm algorithm = ctx.options().conv_algorithm;
  if (algorithm == ConvAlgorithm::kDirect || !ctx.options().allow_blocked_layouts || !HasWinogradConv()) return false;
  const Shape& x = ctx.input_shape(0);
  const Shape& w = ctx.input_shape(1);
  if (cdt != memory::data_type::f32 || geo.group != 1 || x.size() != 4 || ctx.input_value(1) == nullptr) {
    return false;
  }
  if (w[2] != 3 || w[3] != 3) return false;
  for (size_t i = 0; i < 2; ++i) {
    if (geo.strides[i] != 1 || geo.dilations[i] != 0) return false;
  }
  if (algorithm == ConvAlgorithm::kWinograd) return true;
  constexpr int64_t kMinOutputPositions = 14 * 14;
  return geo.out_shape[2] * geo.out_shape[3] >= kMinOutputPositions;
}

// auto also asks what the transformed copy costs: it replaces the plain weights for good, at 1.8x
// their bytes (F(2,3)) or 4x (F(4,3)). `auto` takes Winograd where that adds at most 512 KiB to the
// layer: ResNet-50's 56x56 layers (0.11 MiB each, ~0.2 ms saved each at batch 1), not its 28x28 and
// 14x14 ones (1.7 MiB each, 13.8 MiB and 8.4 MiB of F(4,3) scratchpad in all for ~2 ms: the
// `winograd` setting takes them; docs/benchmarks.md).
bool WinogradCopyIsCheap(const PrepareContext& ctx, const dnnl::primitive_desc& pd) {
  if (ctx.options().conv_algorithm == ConvAlgorithm::kWinograd) return true;
  constexpr size_t kMaxExtraBytes = size_t{512} << 10;
  const size_t plain = static_cast<size_t>(NumElements(ctx.input_shape(1))) * sizeof(float);
  const size_t transformed = pd.weights_desc().get_size();
  return transformed <= plain + kMaxExtraBytes;
}

// A ConvTranspose whose kernel equals its stride, without padding, dilation, groups or output
// padding (text_detector's 2x2 stride-2 upsampling): every output pixel comes from one input pixel,
// so one matmul per image computes every output value ([M*kh*kw, C] x [C, H*W]) and a loop places
// them by stride (RunStrideBlocks). oneDNN 2.6 runs these on its GEMM deconvolution (a column
// buffer, then col2im; its JIT one takes blocked layouts and was slower still): 0.83 ms for
// text_detector's 24->24 channels at 80x80 -> 160x160.
bool IsStrideBlockDeconv(const PrepareContext& ctx, const ConvGeometry& geo) {
  const Shape& x = ctx.input_shape(0);
  const Shape& w = ctx.input_shape(1);
  if (x.size() != 4 || geo.group != 1 || ctx.input_value(1) == nullptr) return false;
  for (size_t i = 0; i < 2; ++i) {
    if (w[2 + i] != geo.strides[i] || geo.dilations[i] != 0 || geo.pad_l[i] != 0 || geo.pad_r[i] != 0 ||
        geo.out_shape[2 + i] != x[2 + i] * geo.strides[i]) {
      return false;
    }
  }
  return true;
}

class ConvKernel final : public Kernel {
 public:
  ConvKernel(const ir::Node& node, bool transposed) : transposed_(transposed) {
    // Which extra inputs are "sum" tensors (they may arrive blocked like X).
    auto texts = node.GetStrings("post_ops", std::vector<std::string>{});
    if (texts.ok()) {
      auto ops = ParsePostOps(*texts);
      if (ops.ok()) {
        size_t next = 3;
        for (const PostOp& op : *ops) {
          if (!op.is_binary()) continue;
          if (op.kind == PostOp::Kind::kSum) sum_inputs_.push_back(next);
          ++next;
        }
      }
    }
  }

  bool AcceptsBlockedInput(size_t i) const override {
    return i == 0 || std::find(sum_inputs_.begin(), sum_inputs_.end(), i) != sum_inputs_.end();
  }
  std::shared_ptr<const void> CopyOfInput(size_t i) const override { return i == 1 ? weights_ : nullptr; }

  Status Prepare(PrepareContext& ctx) override {
    // oneDNN picks some weight formats by the thread count it sees (its Winograd blocking): the
    // model's count, whichever thread prepares the plan, so all plans share one packed copy.
    ThreadScope threads(ctx.options().num_threads);
    return Guard(ctx.node().Describe(), [&] { return PrepareImpl(ctx); });
  }

  Status Run(RunContext& ctx) const override {
    SetThreads(ctx.num_threads());
    return Guard("Conv run", [&] { return RunImpl(ctx); });
  }

  std::string_view implementation() const override { return implementation_; }

 private:
  Status PrepareImpl(PrepareContext& ctx);
  Status RunImpl(RunContext& ctx) const;
  Status PrepareStrideBlocks(PrepareContext& ctx, const Dims& wdims, const Shape& out_shape);
  void RunStrideBlocks(RunContext& ctx, const float* x) const;

  bool transposed_;
  std::vector<size_t> sum_inputs_;
  int64_t group_ = 1;
  PostOpChain chain_;
  bool fused_ = true;
  std::string implementation_;
  dnnl::primitive prim_;
  memory::desc src_user_md_, src_md_, weights_user_md_, weights_md_, bias_md_, dst_md_, scratch_md_;
  // The primitive's dst when it differs from the output's (nChw8c reordered to nChw16c in Run).
  memory::desc prim_dst_md_;
  bool reorder_dst_ = false;
  dnnl::reorder dst_reorder_;
  size_t ws_dst_ = 0;
  dnnl::reorder src_reorder_;
  bool reorder_src_ = false;
  bool reorder_weights_at_run_ = false;
  dnnl::reorder weights_reorder_;
  std::shared_ptr<const PackedWeights::Packed> weights_;  // packed constant weights (shared)
  // Winograd run one row at a time (see PrepareImpl) with the primitive's one-row src/dst mds.
  bool by_rows_ = false;
  memory::desc row_src_md_, row_dst_md_;
  bool stride_blocks_ = false;  // gpuhive's own loop (IsStrideBlockDeconv)
  struct {
    int64_t n = 0, c = 0, h = 0, w = 0, m = 0, sh = 0, sw = 0;
  } sb_;
  memory::desc sb_image_md_, sb_products_md_;
  bool has_bias_ = false;
  size_t ws_src_ = 0, ws_weights_ = 0, ws_scratch_ = 0;
  // RunImpl's reusable arguments (see there); fast_ok_ when the configuration allows them.
  bool fast_ok_ = false;
  mutable std::mutex fast_mu_;
  mutable struct {
    bool ready = false;
    memory src, weights, dst, bias, scratch;
    ArgMap args;
  } fast_;
};

Status ConvKernel::PrepareImpl(PrepareContext& ctx) {
  const ir::Node& node = ctx.node();
  if (ctx.num_inputs() < 2 || !ctx.has_input(0) || !ctx.has_input(1)) {
    return InvalidArgument("{}: needs X and W", node.Describe());
  }
  for (size_t i = 0; i < 3 && i < ctx.num_inputs(); ++i) {
    if (ctx.has_input(i) && ctx.input_dtype(i) != DataType::kFloat32) {
      return Unimplemented("{}: only float32 is supported (input {} is {})", node.Describe(), i,
                           DataTypeName(ctx.input_dtype(i)));
    }
  }
  const Shape& x = ctx.input_shape(0);
  const Shape& w = ctx.input_shape(1);
  if (x.size() < 3 || x.size() > 5 || w.size() != x.size()) {
    return InvalidArgument("{}: X {} and W {} must be 3-D..5-D of equal rank", node.Describe(),
                           ShapeToString(x), ShapeToString(w));
  }
  const size_t sp = x.size() - 2;
  ASSIGN_OR_RETURN(ConvGeometry geo, ComputeConvGeometry(node, x, w, transposed_));
  group_ = geo.group;
  const Shape& out_shape = geo.out_shape;
  const Dims& strides = geo.strides;
  const Dims& dil = geo.dilations;
  const Dims& pl = geo.pad_l;
  const Dims& pr = geo.pad_r;
  const int64_t m = out_shape[1];
  has_bias_ = ctx.num_inputs() > 2 && ctx.has_input(2);
  if (has_bias_ && NumElements(ctx.input_shape(2)) != m) {
    return InvalidArgument("{}: bias has {} elements, expected {}", node.Describe(),
                           NumElements(ctx.input_shape(2)), m);
  }
  RETURN_IF_ERROR(chain_.Init(ctx, 3, out_shape));

  const bool blocked_ok = ctx.options().allow_blocked_layouts;
  const size_t rank = x.size();
  // The type the primitive reads src and weights in (see the top of this file).
  const memory::data_type cdt = ctx.options().bf16_compute && !transposed_ && group_ == 1 &&
                                        ctx.input_value(1) != nullptr
                                    ? memory::data_type::bf16
                                    : memory::data_type::f32;
  ASSIGN_OR_RETURN(src_user_md_, MdFor(x, ctx.input_layout(0)));
  // Channel-blocked (nC..16c) src/dst is what oneDNN's AVX-512/AVX2 direct kernels run fastest
  // with; a plain input with many channels is reordered in Run (cheaper than a plain conv).
  memory::desc src_req = src_user_md_;
  if (blocked_ok && !transposed_ && ctx.input_layout(0) == Layout::kPlain && x[1] >= 16) {
    src_req = memory::desc(ToDims(x), cdt, BlockedTag(rank, 16));
  } else if (cdt != memory::data_type::f32) {
    src_req = memory::desc(ToDims(x), cdt, Tag::any);
  }
  // Weights: grouped weights get a leading group dim.
  Dims wdims;
  if (group_ > 1) {
    wdims.push_back(group_);
    if (!transposed_) {
      wdims.push_back(w[0] / group_);
      wdims.push_back(w[1]);
    } else {
      wdims.push_back(w[1]);
      wdims.push_back(w[0] / group_);
    }
  } else if (!transposed_) {
    wdims = {w[0], w[1]};
  } else {
    wdims = {w[1], w[0]};
  }
  for (size_t i = 2; i < w.size(); ++i) wdims.push_back(w[i]);
  Tag wtag = transposed_ ? ConvTransposeWeightsTag(sp, group_ > 1) : PlainTag(wdims.size());
  weights_user_md_ = memory::desc(wdims, memory::data_type::f32, wtag);
  if (transposed_ && IsStrideBlockDeconv(ctx, geo) && chain_.empty()) {
    return PrepareStrideBlocks(ctx, wdims, out_shape);
  }
  const Tensor* wval = ctx.input_value(1);
  memory::desc weights_req = wval != nullptr
                                 ? memory::desc(wdims, cdt, Tag::any)
                                 : weights_user_md_;
  bias_md_ = has_bias_ ? memory::desc({m}, memory::data_type::f32, Tag::a) : memory::desc();

  // dst: the sum input's layout when there is a fused sum (no copy, in-place possible), else
  // nC..16c when blocked layouts are allowed.
  ASSIGN_OR_RETURN(memory::desc dst_plain, MdFor(out_shape, Layout::kPlain));
  memory::desc dst_req = dst_plain;
  if (chain_.has_sum()) {
    ASSIGN_OR_RETURN(dst_req, MdFor(out_shape, ctx.input_layout(chain_.sum_input())));
  } else if (blocked_ok && !transposed_) {
    dst_req = memory::desc(ToDims(out_shape), memory::data_type::f32, BlockedTag(rank, 16));
  }

  // weights: nullptr for weights_req; else a Winograd format (winograd == true).
  auto make_pd = [&](const memory::desc& src, const memory::desc& dst, bool with_post_ops,
                     const memory::desc* weights) -> dnnl::primitive_desc {
    const bool winograd = weights != nullptr;
    dnnl::primitive_attr attr = ScratchAttr();
    if (with_post_ops && !chain_.empty()) {
      dnnl::post_ops po;
      chain_.AppendFused(po, dst.dims());
      attr.set_post_ops(po);
    }
    if (!transposed_) {
      dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference,
                                        winograd ? dnnl::algorithm::convolution_winograd
                                                 : dnnl::algorithm::convolution_direct,
                                        src, winograd ? *weights : weights_req,
                                        bias_md_, dst, strides, dil, pl, pr);
      return dnnl::convolution_forward::primitive_desc(d, attr, Engine());
    }
    dnnl::deconvolution_forward::desc d(dnnl::prop_kind::forward_inference,
                                        dnnl::algorithm::deconvolution_direct, src, weights_req,
                                        bias_md_, dst, strides, dil, pl, pr);
    return dnnl::deconvolution_forward::primitive_desc(d, attr, Engine());
  };
  // oneDNN 2.6 accepts configurations its JIT kernels cannot do by falling back to its reference
  // implementation, one to three orders of magnitude slower: a blocked src of a ConvTranspose
  // (only the GEMM deconvolution takes a plain dst), 8 channels per group in nChw16c, post-ops such
  // as a binary operand broadcast per (N, C) at batch > 1. So the preferred src/dst formats come
  // first, then the formats oneDNN picks itself, then fixed blocked and plain ones, each with and
  // without fused post-ops; the first that is not "ref" wins. A src in another format than the
  // input's is reordered in Run (cheap next to any convolution); dst must be a gpuhive layout.
  const memory::desc src_any(ToDims(x), cdt, Tag::any);
  ASSIGN_OR_RETURN(memory::desc src_plain, MdFor(x, Layout::kPlain));
  std::vector<std::pair<memory::desc, memory::desc>> layouts;  // (src, dst)
  auto add_layout = [&](const memory::desc& src, const memory::desc& dst) {
    for (const auto& l : layouts) {
      if (l.first == src && l.second == dst) return;
    }
    layouts.emplace_back(src, dst);
  };
  add_layout(src_req, dst_req);
  if (blocked_ok && !transposed_) {
    add_layout(src_any, memory::desc(ToDims(out_shape), memory::data_type::f32, Tag::any));
    for (int block : {PreferredBlock(), 24 - PreferredBlock()}) {  // the preferred block, then the other
      add_layout(memory::desc(ToDims(x), cdt, BlockedTag(rank, block)),
                 memory::desc(ToDims(out_shape), memory::data_type::f32, BlockedTag(rank, block)));
    }
  }
  add_layout(src_any, dst_plain);
  add_layout(src_plain, dst_plain);
  struct Attempt {
    const memory::desc* src;
    const memory::desc* dst;
    bool post_ops;
  };
  const bool fuse = chain_.fusable();
  std::vector<Attempt> attempts;
  for (const auto& l : layouts) {
    if (fuse || chain_.empty()) attempts.push_back({&l.first, &l.second, true});
    if (!chain_.empty()) attempts.push_back({&l.first, &l.second, false});
  }
  dnnl::primitive_desc pd, fallback;
  bool found = false, have_fallback = false, fallback_fused = false;
  by_rows_ = false;
  // Winograd (WantsWinograd) keeps its weights in the format oneDNN picks at batch 1, whatever
  // this plan's batch: every plan of the model then shares one transformed copy, and the plain
  // weights can be freed (a Winograd copy cannot be turned back into them). A batch of several
  // rows runs the batch-1 primitive row by row: per row as fast as oneDNN's multi-row Winograd
  // (ResNet-50's 128-channel layer: 8 x 324 us vs 2,544-2,731 us at batch 8), many batches reject
  // the batch-1 format anyway, and the scratchpad stays the batch-1 one (F(4,3) at batch 8: 22 MiB
  // instead of 10 MiB). Rows need every binary post-op to be the fused "sum" (dst-shaped); other
  // chains run the whole batch on the batch-1 format where oneDNN takes it.
  if (WantsWinograd(ctx, geo, cdt) && (fuse || chain_.empty())) {
    const Layout dst_layout = chain_.has_sum() ? ctx.input_layout(chain_.sum_input()) : Layout::kBlocked16;
    auto at_batch = [&](int64_t rows, const memory::desc& weights) -> StatusOr<dnnl::primitive_desc> {
      Shape xs = x, ys = out_shape;
      xs[0] = ys[0] = rows;
      ASSIGN_OR_RETURN(memory::desc src, MdFor(xs, Layout::kBlocked16));
      ASSIGN_OR_RETURN(memory::desc dst, MdFor(ys, dst_layout));
      try {
        dnnl::primitive_desc p = make_pd(src, dst, !chain_.empty(), &weights);
        if (IsReferenceImpl(p)) return Unimplemented("reference Winograd");
        return p;
      } catch (const dnnl::error& e) {
        return Unimplemented("{}", e.what());
      }
    };
    bool rows_ok = true;
    for (const PostOp& op : chain_.ops()) rows_ok = rows_ok && (!op.is_binary() || op.kind == PostOp::Kind::kSum);
    auto one = at_batch(1, weights_req);
    if (one.ok() && one->weights_desc().data.format_kind == dnnl_format_kind_wino && WinogradCopyIsCheap(ctx, *one)) {
      if (x[0] == 1 || rows_ok) {
        pd = *one;
        found = true;
        by_rows_ = x[0] > 1;
      } else if (auto all = at_batch(x[0], one->weights_desc()); all.ok()) {
        pd = *all;
        found = true;
      }
      fused_ = found;
    }
  }
  std::string last_error = "no configuration tried";
  for (const Attempt& a : found ? std::vector<Attempt>{} : attempts) {
    dnnl::primitive_desc candidate;
    try {
      candidate = make_pd(*a.src, *a.dst, a.post_ops, nullptr);
    } catch (const dnnl::error& e) {
      last_error = e.what();
      continue;
    }
    if (!IsReferenceImpl(candidate)) {
      pd = candidate;
      fused_ = a.post_ops;
      found = true;
      break;
    }
    if (!have_fallback) {
      fallback = candidate;
      fallback_fused = a.post_ops;
      have_fallback = true;
    }
  }
  if (!found) {
    if (!have_fallback) {
      return Unimplemented("{}: oneDNN has no implementation for this configuration ({})",
                           node.Describe(), last_error);
    }
    pd = fallback;
    fused_ = fallback_fused;
    GH_LOG_DEBUG("kernels", "{}: only oneDNN's reference implementation fits", node.Describe());
  }
  implementation_ = pd.impl_info_str();
  if (pd.src_desc().data_type() == memory::data_type::bf16) implementation_ += " [bf16]";  // names may not say
  // A dst format that is no gpuhive layout (nChw4c for 4 channels per group, nhwc), or the blocked
  // layout this CPU does not prefer (nChw8c on AVX-512, nChw16c on AVX2), is written to the
  // workspace and reordered in Run: oneDNN's other kernels (binary, pooling, eltwise) run the
  // non-preferred block on their reference implementations, which costs far more than the reorder.
  Layout out_layout = Layout::kPlain;
  prim_dst_md_ = pd.dst_desc();
  dst_md_ = prim_dst_md_;
  const bool expressible = LayoutOf(prim_dst_md_, &out_layout);
  reorder_dst_ = !expressible || (out_layout != Layout::kPlain && out_layout != PreferredBlockedLayout() && blocked_ok);
  if (reorder_dst_) {
    out_layout = blocked_ok ? PreferredBlockedLayout() : Layout::kPlain;
    ASSIGN_OR_RETURN(dst_md_, MdFor(out_shape, out_layout));
  }
  src_md_ = pd.src_desc();
  if (by_rows_) {  // the primitive's mds are one row's, the tensors N rows
    row_src_md_ = pd.src_desc();
    row_dst_md_ = pd.dst_desc();
    ASSIGN_OR_RETURN(src_md_, MdFor(x, Layout::kBlocked16));
    ASSIGN_OR_RETURN(prim_dst_md_, MdFor(out_shape, out_layout));
    if (!reorder_dst_) dst_md_ = prim_dst_md_;
  }
  weights_md_ = pd.weights_desc();
  scratch_md_ = pd.scratchpad_desc();
  if (transposed_) {
    prim_ = dnnl::deconvolution_forward(dnnl::deconvolution_forward::primitive_desc(pd.get()));
  } else {
    prim_ = dnnl::convolution_forward(dnnl::convolution_forward::primitive_desc(pd.get()));
  }

  WorkspacePlan ws;
  size_t scratch = scratch_md_.get_size();
  if (!fused_) scratch = std::max(scratch, chain_.PrepareStandalone(prim_dst_md_));
  ws_scratch_ = ws.Add(scratch);
  if (reorder_dst_) {
    ws_dst_ = ws.Add(prim_dst_md_.get_size());
    dst_reorder_ = dnnl::reorder(dnnl::reorder::primitive_desc(Engine(), prim_dst_md_, Engine(), dst_md_));
  }
  reorder_src_ = src_md_ != src_user_md_;
  if (reorder_src_) {
    ws_src_ = ws.Add(src_md_.get_size());
    src_reorder_ = dnnl::reorder(dnnl::reorder::primitive_desc(Engine(), src_user_md_, Engine(), src_md_));
  }
  if (wval != nullptr) {
    // Shared with the model's other plans (batch sizes) when their primitives chose this format.
    const ir::Value* w_value = node.inputs.size() > 1 ? node.inputs[1] : nullptr;
    ASSIGN_OR_RETURN(weights_, SharedPack(ctx, w_value, *wval, weights_user_md_, weights_md_));
    reorder_weights_at_run_ = false;
  } else {
    reorder_weights_at_run_ = weights_md_ != weights_user_md_;
    if (reorder_weights_at_run_) {
      ws_weights_ = ws.Add(weights_md_.get_size());
      weights_reorder_ =
          dnnl::reorder(dnnl::reorder::primitive_desc(Engine(), weights_user_md_, Engine(), weights_md_));
    }
  }
  ctx.RequestWorkspace(ws.total());
  ctx.SetOutput(0, DataType::kFloat32, out_shape, out_layout,
                out_layout == Layout::kPlain ? 0 : dst_md_.get_size());
  // In place only when dst has the sum input's format: CopySumInput skips the copy when the
  // buffers are the same, which would leave a blocked sum read as plain (or the reverse).
  if (fused_ && chain_.has_sum()) {
    ASSIGN_OR_RETURN(memory::desc sum_md, MdFor(out_shape, ctx.input_layout(chain_.sum_input())));
    if (sum_md == dst_md_) ctx.AllowInPlace(chain_.sum_input(), 0);
  }
  bool binary_extras = false;
  for (const PostOp& op : chain_.ops()) binary_extras = binary_extras || op.is_binary();
  fast_ok_ = weights_ != nullptr && !reorder_src_ && !reorder_dst_ && !by_rows_ && fused_ && !binary_extras;
  return Status::OK();
}

Status ConvKernel::PrepareStrideBlocks(PrepareContext& ctx, const Dims& wdims, const Shape& out_shape) {
  const Shape& x = ctx.input_shape(0);
  stride_blocks_ = true;
  fused_ = false;
  sb_ = {x[0], x[1], x[2], x[3], out_shape[1], out_shape[2] / x[2], out_shape[3] / x[3]};
  WorkspacePlan ws;
  ASSIGN_OR_RETURN(src_md_, MdFor(x, Layout::kPlain));
  reorder_src_ = src_md_ != src_user_md_;
  if (reorder_src_) {
    ws_src_ = ws.Add(src_md_.get_size());
    src_reorder_ = dnnl::reorder(dnnl::reorder::primitive_desc(Engine(), src_user_md_, Engine(), src_md_));
  }
  // Weights [M][kh][kw][C] (logical dims M, C, kh, kw): the C weights of one output position are
  // contiguous. Published like oneDNN packs, so other plans share them and the plain copy can go.
  const memory::desc packed(wdims, memory::data_type::f32, Tag::acdb);
  const ir::Value* w_value = ctx.node().inputs.size() > 1 ? ctx.node().inputs[1] : nullptr;
  ASSIGN_OR_RETURN(weights_, SharedPack(ctx, w_value, *ctx.input_value(1), weights_user_md_, packed));
  // The products [M*kh*kw, H*W] of one image on oneDNN's matmul (its JIT sgemm), then placed.
  const int64_t rows = sb_.m * sb_.sh * sb_.sw, plane = sb_.h * sb_.w;
  const memory::desc packed_2d({rows, sb_.c}, memory::data_type::f32, Tag::ab);
  sb_image_md_ = memory::desc({sb_.c, plane}, memory::data_type::f32, Tag::ab);
  sb_products_md_ = memory::desc({rows, plane}, memory::data_type::f32, Tag::ab);
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(packed_2d, sb_image_md_, sb_products_md_), ScratchAttr(),
                                  Engine());
  prim_ = dnnl::matmul(pd);
  implementation_ = std::string("gpuhive:deconv_stride_blocks+") + pd.impl_info_str();
  weights_md_ = packed_2d;  // the packed bytes, read as the matmul's [M*kh*kw, C] operand
  scratch_md_ = pd.scratchpad_desc();
  ws_scratch_ = ws.Add(scratch_md_.get_size());
  ws_dst_ = ws.Add(sb_products_md_.get_size());
  ctx.RequestWorkspace(ws.total());
  ctx.SetOutput(0, DataType::kFloat32, out_shape, Layout::kPlain, 0);
  return Status::OK();
}

void ConvKernel::RunStrideBlocks(RunContext& ctx, const float* x) const {
  const auto [n, c, h, w, m, sh, sw] = sb_;
  const float* bias = has_bias_ ? static_cast<const float*>(ctx.input(2).data) : nullptr;
  float* y = static_cast<float*>(ctx.output(0).data);
  auto* products = static_cast<float*>(WsPtr(ctx, ws_dst_));
  dnnl::stream& s = ThreadStream();
  memory weights(weights_md_, Engine(), const_cast<void*>(weights_->buffer.data()));
  memory out(sb_products_md_, Engine(), products);
  memory scratch(scratch_md_, Engine(), WsPtr(ctx, ws_scratch_));
  const int64_t plane = h * w;
  for (int64_t img = 0; img < n; ++img) {
    // [M*kh*kw, C] x [C, H*W]: every output position's value before it is placed.
    memory image(sb_image_md_, Engine(), const_cast<float*>(x + img * c * plane));
    prim_.execute(s, {{DNNL_ARG_SRC, weights}, {DNNL_ARG_WEIGHTS, image}, {DNNL_ARG_DST, out},
                      {DNNL_ARG_SCRATCHPAD, scratch}});
    s.wait();
    // Place them: product row (oc, i, j), column (r, k) -> output (oc, r * sh + i, k * sw + j).
    float* yimg = y + img * m * plane * sh * sw;
    loops::ParallelFor(m * h, ctx.num_threads(), w * sh * sw, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) {
        const int64_t oc = t / h, r = t % h;
        const float b = bias != nullptr ? bias[oc] : 0.f;
        for (int64_t i = 0; i < sh; ++i) {
          float* yrow = yimg + (oc * h * sh + r * sh + i) * w * sw;
          for (int64_t j = 0; j < sw; ++j) {
            const float* p = products + ((oc * sh + i) * sw + j) * plane + r * w;
            for (int64_t k = 0; k < w; ++k) yrow[k * sw + j] = p[k] + b;
          }
        }
      }
    });
  }
}

Status ConvKernel::RunImpl(RunContext& ctx) const {
  dnnl::stream& s = ThreadStream();
  // The common case (packed constant weights, no reorders, no post-op operands) keeps its oneDNN
  // memory objects and argument map and only rebinds the data pointers: creating them on every run
  // cost ~12 allocations per convolution, 2-4.5 % of MobileNetV3-Large's batch-1 time (perf: malloc
  // and free on the critical path). A run that finds them in use by another builds its own.
  if (fast_ok_) {
    std::unique_lock<std::mutex> lock(fast_mu_, std::try_to_lock);
    if (lock.owns_lock()) {
      if (!fast_.ready) {
        fast_.src = memory(src_user_md_, Engine(), ctx.input(0).data);
        fast_.weights = memory(weights_md_, Engine(), const_cast<void*>(weights_->buffer.data()));
        fast_.dst = memory(dst_md_, Engine(), ctx.output(0).data);
        fast_.args = ArgMap{{DNNL_ARG_SRC, fast_.src}, {DNNL_ARG_WEIGHTS, fast_.weights}, {DNNL_ARG_DST, fast_.dst}};
        if (has_bias_) {
          fast_.bias = memory(bias_md_, Engine(), ctx.input(2).data);
          fast_.args.insert({DNNL_ARG_BIAS, fast_.bias});
        }
        if (scratch_md_.get_size() > 0) {
          fast_.scratch = memory(scratch_md_, Engine(), WsPtr(ctx, ws_scratch_));
          fast_.args.insert({DNNL_ARG_SCRATCHPAD, fast_.scratch});
        }
        fast_.ready = true;
      }
      fast_.src.set_data_handle(ctx.input(0).data);
      fast_.weights.set_data_handle(const_cast<void*>(weights_->buffer.data()));
      fast_.dst.set_data_handle(ctx.output(0).data);
      if (has_bias_) fast_.bias.set_data_handle(ctx.input(2).data);
      if (scratch_md_.get_size() > 0) fast_.scratch.set_data_handle(WsPtr(ctx, ws_scratch_));
      prim_.execute(s, fast_.args);
      s.wait();
      return Status::OK();
    }
  }
  memory src(src_user_md_, Engine(), ctx.input(0).data);
  if (reorder_src_) {
    memory tmp(src_md_, Engine(), WsPtr(ctx, ws_src_));
    src_reorder_.execute(s, src, tmp);
    src = tmp;
  }
  if (stride_blocks_) {
    s.wait();
    RunStrideBlocks(ctx, static_cast<const float*>(src.get_data_handle()));
    return Status::OK();
  }
  memory weights;
  if (weights_ != nullptr) {
    weights = memory(weights_md_, Engine(), const_cast<void*>(weights_->buffer.data()));
  } else {
    weights = memory(weights_user_md_, Engine(), ctx.input(1).data);
    if (reorder_weights_at_run_) {
      memory tmp(weights_md_, Engine(), WsPtr(ctx, ws_weights_));
      weights_reorder_.execute(s, weights, tmp);
      weights = tmp;
    }
  }
  memory out(dst_md_, Engine(), ctx.output(0).data);
  memory dst = reorder_dst_ ? memory(prim_dst_md_, Engine(), WsPtr(ctx, ws_dst_)) : out;
  void* scratch = WsPtr(ctx, ws_scratch_);
  ArgMap args{{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, dst}};
  if (has_bias_) args.insert({DNNL_ARG_BIAS, memory(bias_md_, Engine(), ctx.input(2).data)});
  if (scratch_md_.get_size() > 0) args.insert({DNNL_ARG_SCRATCHPAD, memory(scratch_md_, Engine(), scratch)});
  if (fused_) {
    RETURN_IF_ERROR(chain_.CopySumInput(ctx, dst, scratch));
    chain_.AddFusedArgs(ctx, args, prim_dst_md_.dims());
  }
  if (by_rows_) {
    // Rows are outermost in every layout here: row r starts r row-sizes into src and dst.
    const size_t src_row = row_src_md_.get_size(), dst_row = row_dst_md_.get_size();
    auto* src_base = static_cast<uint8_t*>(src.get_data_handle());
    auto* dst_base = static_cast<uint8_t*>(dst.get_data_handle());
    const size_t n = static_cast<size_t>(src_md_.dims()[0]);
    for (size_t r = 0; r < n; ++r) {
      args[DNNL_ARG_SRC] = memory(row_src_md_, Engine(), src_base + r * src_row);
      args[DNNL_ARG_DST] = memory(row_dst_md_, Engine(), dst_base + r * dst_row);
      prim_.execute(s, args);
    }
  } else {
    prim_.execute(s, args);
  }
  if (!fused_) chain_.RunStandalone(ctx, dst, scratch);
  if (reorder_dst_) dst_reorder_.execute(s, dst, out);
  s.wait();
  return Status::OK();
}

}  // namespace

StatusOr<std::unique_ptr<Kernel>> MakeConv(const ir::Node& node) {
  return std::unique_ptr<Kernel>(new ConvKernel(node, false));
}
StatusOr<std::unique_ptr<Kernel>> MakeConvTranspose(const ir::Node& node) {
  return std::unique_ptr<Kernel>(new ConvKernel(node, true));
}

}  // namespace gpuhive::cpu::onednn
