// Quantized convolutions on oneDNN's int8 primitives: ONNX QLinearConv and ConvInteger, and
// gpuhive.QConv, which FuseQuantizedConv (passes_quant.cc) makes of the QDQ pattern
// DequantizeLinear(x), DequantizeLinear(W) [, DequantizeLinear(B)] -> Conv [-> Relu]
// [-> QuantizeLinear]. The convolution runs on int8 data with int32 accumulation; nothing is
// dequantized to float32 first.
//
// Inputs of QLinearConv and gpuhive.QConv: 0 x (uint8 / int8), 1 x_scale, 2 x_zero_point, 3 W,
// 4 w_scale (one value or one per output channel), 5 w_zero_point, 6 y_scale, 7 y_zero_point, 8 B.
// gpuhive.QConv may omit 6 and 7 (a float32 output: the dequantized convolution), takes B as
// float32 (added in the float domain) or int32 (QLinearConv's: in the accumulator's, scale
// x_scale * w_scale), and attribute "relu" = 1 applies ReLU before the output is quantized. Its
// "post_ops" (gpuhive/post_ops.h; FusePostOps) follow in the float domain, before the output is
// quantized: unary ones, and first one "sum" whose operand (input 9, float32 of the output's
// shape, any layout) is added to a float32 result (a residual Add). Its x may be float32
// (QuantizeLinear folded in by FoldQuantizeIntoQConv): x is then quantized with x_scale and
// x_zero_point by the reorder that makes it channels-last, in one pass, from any layout.
// ConvInteger: 0 x, 1 W, 2 x_zero_point, 3 w_zero_point; its output is the int32 accumulator.
//
// Scales must be constants (they become oneDNN's output scales when the primitive is made); x's
// zero point may be computed at run time (DynamicQuantizeLinear's). oneDNN has no weight zero
// points: W minus its zero point is packed as int8 when it fits (int8 W with zero point 0, uint8 W
// with zero point 128, ...).
//
// Layouts. oneDNN's int8 kernels take nhwc activations only. With blocked layouts allowed the
// result stays channels-last (Layout::kChannelsLast; the primitive writes the output itself), so
// int8 values pass from one int8 convolution to the next without moving and a float32 result
// reaches the next one's quantizing reorder, the elementwise ops and pooling in the same layout;
// other readers get it reordered to plain by the plan. An int8 x arrives channels-last or plain
// (reordered in Run); where every spatial dimension is 1 nhwc is plain and nothing moves.
//
// Weights that do not fit int8 after their zero point (uint8 W with another zero point), and,
// below VNNI (HasInt8DotProduct, where oneDNN's int8 kernels are exact only for weights within
// 7 bits), weights beyond 7 bits, run the "dequantized" path: the same convolution in float32 on exactly converted
// operands (x - zero point, W - zero point times the scales), then quantized as QuantizeLinear does.
// implementation() says which ran ("dequantized:" + oneDNN's float kernel).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "gpuhive/logging.h"
#include "kernels/cpu/onednn/common.h"
#include "gpuhive/window_geometry.h"
#include "kernels/cpu/onednn/kernels.h"
#include "kernels/cpu/onednn/quant_common.h"
#include "gpuhive/post_ops.h"

namespace gpuhive::cpu::onednn {
namespace {

using dt = memory::data_type;

class QConvKernel final : public Kernel {
 public:
  QConvKernel(const QInputs& in, bool gpuhive_form, bool float_x)
      : in_(in), gpuhive_form_(gpuhive_form), float_x_(float_x) {}

  // A float32 x (QuantizeLinear folded in) is reordered, and quantized, from any layout.
  // A float32 x and the "sum" operand are reordered from any layout; an int8 x comes straight from
  // another int8 convolution, channels-last.
  bool AcceptsBlockedInput(size_t i) const override {
    return (float_x_ && static_cast<int>(i) == in_.x) || (gpuhive_form_ && i == kSumInput);
  }
  bool AcceptsChannelsLastInput(size_t i) const override {
    return static_cast<int>(i) == in_.x || (gpuhive_form_ && i == kSumInput);
  }

  std::shared_ptr<const void> CopyOfInput(size_t i) const override {
    return static_cast<int>(i) == in_.w && weights_shared_ ? weights_ : nullptr;
  }
  Status Prepare(PrepareContext& ctx) override {
    ThreadScope threads(ctx.options().num_threads);  // as ConvKernel: one weight format for every plan
    return Guard(ctx.node().Describe(), [&] { return PrepareImpl(ctx); });
  }
  Status Run(RunContext& ctx) const override {
    SetThreads(ctx.num_threads());
    return Guard("QConv run", [&] { return dequantized_ ? RunDequantized(ctx) : RunImpl(ctx); });
  }
  std::string_view implementation() const override { return implementation_; }

 private:
  Status PrepareImpl(PrepareContext& ctx);
  // W minus its zero point (plain layout `wdims`, output channel outermost): -255..255.
  StatusOr<std::vector<int16_t>> ShiftedWeights(const PrepareContext& ctx, const Dims& wdims, int64_t m) const;
  // The int8 path's weights: the constant itself when it is plain int8, else `w16` (within int8).
  Status PrepareWeights(PrepareContext& ctx, const dnnl::primitive_desc& pd, const Dims& wdims,
                        const std::vector<int16_t>& w16);
  // The dequantized path's weights: (W - zero point) * x_scale * w_scale[c], packed for `pd`.
  Status PrepareFloatWeights(PrepareContext& ctx, const dnnl::primitive_desc& pd, const Dims& wdims,
                             const std::vector<int16_t>& w16);
  // The reorder of a float32 x (layout `from`) to `to` that quantizes it as QuantizeLinear does.
  dnnl::reorder QuantizingReorder(const memory::desc& from, const memory::desc& to) const;
  // Runs src_reorder_ from `from` to `to`, with the channel scales of this run when there are any.
  void ReorderSource(const RunContext& ctx, dnnl::stream& s, memory& from, memory& to) const;
  // Puts the sum operand into `dst` (the primitive's destination) before the primitive runs.
  void PlaceSumOperand(const RunContext& ctx, dnnl::stream& s, memory& dst) const;
  Status RunImpl(RunContext& ctx) const;
  Status RunDequantized(RunContext& ctx) const;

  // gpuhive.QConv's extra input: the operand of a leading "sum" post-op (after its 9 own inputs).
  static constexpr size_t kSumInput = 9;
  // ... and the per-channel scale [N|1, C, 1, ...] of a float32 x (a squeeze-excitation Mul folded
  // in by FoldQuantizeIntoQConv): x * scale is what gets quantized.
  static constexpr size_t kChannelScaleInput = 10;

  QInputs in_;
  bool gpuhive_form_;
  bool float_x_;  // the node's x is float32: it may arrive channel-blocked
  QuantSetup q_;
  std::vector<PostOp> post_ops_;
  bool sum_ = false;                    // post_ops_[0] is "sum": input kSumInput is added to the result
  bool sum_copy_ = false;               // ... in the primitive's dst format already: copied when not in place
  memory::desc sum_md_;
  dnnl::reorder sum_reorder_;           // ... else reordered into the dst first
  std::string implementation_;
  dnnl::primitive prim_;
  memory::desc src_user_md_, src_md_, bias_md_, dst_md_, dst_user_md_, scratch_md_;
  dnnl::reorder src_reorder_, dst_reorder_;
  bool src_in_place_ = false, dst_in_place_ = false;  // nhwc is the input's / output's own layout
  memory::desc quantized_x_md_;                       // dequantized path: x as plain int8 (from float32 / nhwc)
  std::shared_ptr<const PackedWeights::Packed> weights_;
  bool weights_shared_ = false;  // weights_ is the constant's packed copy (not derived from it)
  bool dequantized_ = false;     // the float32 path (see the top of the file)
  size_t ws_src_ = 0, ws_dst_ = 0, ws_scratch_ = 0, ws_quantized_x_ = 0, ws_scales_ = 0;
  int64_t channel_scales_ = 0;  // scale values per run (0: no channel scale); N*C or C
  int scale_mask_ = 0;          // oneDNN's output-scale mask over (N, C)
};

Status QConvKernel::PrepareImpl(PrepareContext& ctx) {
  const ir::Node& node = ctx.node();
  const std::string desc = node.Describe();
  for (int i : {in_.x, in_.w}) {
    if (static_cast<size_t>(i) >= ctx.num_inputs() || !ctx.has_input(i)) return InvalidArgument("{}: needs x and W", desc);
  }
  const Shape& x = ctx.input_shape(in_.x);
  const Shape& w = ctx.input_shape(in_.w);
  if (x.size() < 3 || x.size() > 5 || w.size() != x.size()) {
    return InvalidArgument("{}: x {} and W {} must be 3-D..5-D of equal rank", desc, ShapeToString(x),
                           ShapeToString(w));
  }
  if (ctx.input_value(in_.w) == nullptr) {
    return Unimplemented("{}: W must be a constant (it is packed once for the int8 primitive)", desc);
  }
  ASSIGN_OR_RETURN(ConvGeometry geo, ComputeConvGeometry(node, x, w, false));
  const int64_t m = geo.out_shape[1];
  ASSIGN_OR_RETURN(q_, ReadQuantSetup(ctx, in_, gpuhive_form_, m));
  post_ops_.clear();
  if (gpuhive_form_ && node.has_attr("post_ops")) {
    ASSIGN_OR_RETURN(auto texts, node.GetStrings("post_ops"));
    ASSIGN_OR_RETURN(post_ops_, ParsePostOps(texts));
  }
  const bool quantized_out = IsInt8(q_.out_type);
  const bool float_out = q_.out_type == DataType::kFloat32;
  sum_ = false;
  for (size_t k = 0; k < post_ops_.size(); ++k) {
    if (!post_ops_[k].is_binary()) continue;
    if (post_ops_[k].kind != PostOp::Kind::kSum || k != 0 || !float_out) {
      return Unimplemented("{}: post-op '{}': QConv takes unary post-ops and, first and with a float32 result, one sum",
                           desc, FormatPostOp(post_ops_[k]));
    }
    if (ctx.num_inputs() <= kSumInput || !ctx.has_input(kSumInput) ||
        ctx.input_dtype(kSumInput) != DataType::kFloat32 || ctx.input_shape(kSumInput) != geo.out_shape) {
      return InvalidArgument("{}: the sum operand (input {}) must be float32 of the output's shape {}", desc, kSumInput,
                             ShapeToString(geo.out_shape));
    }
    sum_ = true;
  }
  if (!post_ops_.empty() && quantized_out) q_.out_scales = q_.acc_to_float;  // 1 / y_scale after the chain
  channel_scales_ = 0;
  if (gpuhive_form_ && ctx.num_inputs() > kChannelScaleInput && ctx.has_input(kChannelScaleInput)) {
    const Shape& cs = ctx.input_shape(kChannelScaleInput);
    bool ok = q_.x_float && ctx.input_dtype(kChannelScaleInput) == DataType::kFloat32 && cs.size() == x.size() &&
              cs[1] == x[1] && (cs[0] == 1 || cs[0] == x[0]);
    for (size_t i = 2; ok && i < cs.size(); ++i) ok = cs[i] == 1;
    if (!ok) {
      return InvalidArgument("{}: the channel scale (input {}) must be float32 [N|1, {}, 1, ...] for a float32 x {}, got {}",
                             desc, kChannelScaleInput, x[1], ShapeToString(x), ShapeToString(cs));
    }
    channel_scales_ = cs[0] * cs[1];
    scale_mask_ = cs[0] > 1 ? 3 : 2;
  }

  const size_t rank = x.size();
  auto spatial_one = [](const Shape& s) {
    return std::all_of(s.begin() + 2, s.end(), [](int64_t d) { return d == 1; });
  };
  Dims wdims;
  if (geo.group > 1) wdims = {geo.group, w[0] / geo.group, w[1]};
  else wdims = {w[0], w[1]};
  for (size_t i = 2; i < w.size(); ++i) wdims.push_back(w[i]);
  std::vector<int16_t> w16;
  dequantized_ = false;
  if (!q_.plain_int8_weights() || !HasInt8DotProduct()) {
    ASSIGN_OR_RETURN(w16, ShiftedWeights(ctx, wdims, m));
    dequantized_ = NeedsDequantizedPath(w16);
  }
  // Layouts. On the int8 kernels the result (int8 or float32) stays channels-last, where the next
  // int8 convolution, pooling and the elementwise chains read it; on the exact float path a float32
  // result takes the float convolutions' blocked layout and an int8 one is plain. Results whose
  // spatial dimensions are all 1 stay plain (nhwc is then plain: the primitive writes them itself).
  const bool blocked_ok = ctx.options().allow_blocked_layouts && !spatial_one(geo.out_shape);
  Layout out_layout = Layout::kPlain;
  if (blocked_ok && (float_out || quantized_out)) {
    out_layout = !dequantized_ ? Layout::kChannelsLast : float_out ? PreferredBlockedLayout() : Layout::kPlain;
  }
  ASSIGN_OR_RETURN(dst_user_md_, MdFor(geo.out_shape, out_layout, OnednnType(q_.out_type)));
  const Layout in_layout = ctx.input_layout(in_.x);
  ASSIGN_OR_RETURN(src_user_md_, MdFor(x, in_layout, q_.x_float ? dt::f32 : OnednnType(q_.x_type)));
  bias_md_ = q_.bias.empty() ? memory::desc() : memory::desc({m}, dt::f32, Tag::a);
  dnnl::post_ops po;
  if (q_.relu) po.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
  for (const PostOp& op : post_ops_) {
    if (op.kind == PostOp::Kind::kSum) po.append_sum(1.f);
    else AppendEltwise(po, op);
  }

  dnnl::primitive_attr attr = ScratchAttr();
  src_in_place_ = dst_in_place_ = false;
  if (!dequantized_) {
    if (q_.has_scales()) {
      attr.set_output_scales(q_.per_channel ? 1 << 1 : 0,
                             q_.per_channel ? q_.out_scales : std::vector<float>{q_.out_scales[0]});
    }
    if (!post_ops_.empty() && quantized_out) {
      po.append_eltwise(1.f, dnnl::algorithm::eltwise_linear, 1.f / q_.y_scale, 0.f);
    }
    attr.set_post_ops(po);
    if (q_.runtime_x_zero || q_.x_zero != 0) attr.set_zero_points(DNNL_ARG_SRC, 0, {DNNL_RUNTIME_S32_VAL});
    if (q_.y_zero != 0) attr.set_zero_points(DNNL_ARG_DST, 0, {DNNL_RUNTIME_S32_VAL});
    const Tag cl = ChannelsLastTag(rank);
    const memory::desc src(ToDims(x), OnednnType(q_.x_type), cl);
    const memory::desc dst(ToDims(geo.out_shape), OnednnType(q_.out_type), cl);
    dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src,
                                      memory::desc(wdims, dt::s8, Tag::any), bias_md_, dst, geo.strides,
                                      geo.dilations, geo.pad_l, geo.pad_r);
    dnnl::convolution_forward::primitive_desc pd(d, attr, Engine());
    implementation_ = pd.impl_info_str();
    prim_ = dnnl::convolution_forward(pd);
    src_md_ = pd.src_desc();
    dst_md_ = pd.dst_desc();
    scratch_md_ = pd.scratchpad_desc();
    RETURN_IF_ERROR(PrepareWeights(ctx, pd, wdims, w16));
    src_in_place_ = !q_.x_float && (in_layout == Layout::kChannelsLast || spatial_one(x));
    dst_in_place_ = out_layout == Layout::kChannelsLast || (out_layout == Layout::kPlain && spatial_one(geo.out_shape));
    if (q_.x_float) {
      src_reorder_ = QuantizingReorder(src_user_md_, src_md_);
    } else if (!src_in_place_) {
      src_reorder_ = dnnl::reorder(dnnl::reorder::primitive_desc(Engine(), src_user_md_, Engine(), src_md_));
    }
    if (!dst_in_place_) {
      dst_reorder_ = dnnl::reorder(dnnl::reorder::primitive_desc(Engine(), dst_md_, Engine(), dst_user_md_));
    }
  } else {
    // Float32 on exact operands: src = x - zero point (plain), weights and bias in the float domain;
    // the post-ops run in the float domain and the result is quantized after them.
    attr.set_post_ops(po);
    if (!q_.has_scales()) q_.acc_to_float.assign(static_cast<size_t>(m), 1.f);
    for (size_t c = 0; c < q_.bias.size(); ++c) q_.bias[c] *= q_.acc_to_float[c];
    src_md_ = memory::desc(ToDims(x), dt::f32, PlainTag(rank));
    dst_md_ = float_out ? dst_user_md_ : memory::desc(ToDims(geo.out_shape), dt::f32, PlainTag(rank));
    dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                                      src_md_, memory::desc(wdims, dt::f32, Tag::any), bias_md_, dst_md_,
                                      geo.strides, geo.dilations, geo.pad_l, geo.pad_r);
    dnnl::convolution_forward::primitive_desc pd(d, attr, Engine());
    implementation_ = std::string("dequantized:") + pd.impl_info_str();
    prim_ = dnnl::convolution_forward(pd);
    scratch_md_ = pd.scratchpad_desc();
    RETURN_IF_ERROR(PrepareFloatWeights(ctx, pd, wdims, w16));
    // x as plain int8 first: quantized from float32, or a channels-last int8 x reordered.
    quantized_x_md_ = memory::desc(ToDims(x), OnednnType(q_.x_type), PlainTag(rank));
    if (q_.x_float) {
      src_reorder_ = QuantizingReorder(src_user_md_, quantized_x_md_);
    } else if (in_layout != Layout::kPlain) {
      src_reorder_ = dnnl::reorder(dnnl::reorder::primitive_desc(Engine(), src_user_md_, Engine(), quantized_x_md_));
    } else {
      quantized_x_md_ = memory::desc();
    }
  }
  sum_copy_ = false;
  if (sum_) {  // the operand goes into the primitive's dst before it runs: in place when it can
    ASSIGN_OR_RETURN(sum_md_, MdFor(geo.out_shape, ctx.input_layout(kSumInput)));
    sum_copy_ = sum_md_ == dst_md_;
    if (!sum_copy_) sum_reorder_ = dnnl::reorder(dnnl::reorder::primitive_desc(Engine(), sum_md_, Engine(), dst_md_));
    const bool dst_is_output = dequantized_ ? float_out : dst_in_place_;
    if (sum_copy_ && dst_is_output) ctx.AllowInPlace(kSumInput, 0);
  }
  if (implementation_.find("ref") != std::string::npos) {
    GH_LOG_DEBUG("kernels", "{}: only oneDNN's reference convolution fits ({})", desc, implementation_);
  }
  WorkspacePlan ws;
  ws_scratch_ = ws.Add(scratch_md_.get_size());
  ws_src_ = ws.Add(src_in_place_ ? 0 : src_md_.get_size());
  ws_dst_ = ws.Add(dst_in_place_ || (dequantized_ && float_out) ? 0 : dst_md_.get_size());
  ws_quantized_x_ = ws.Add(dequantized_ ? quantized_x_md_.get_size() : 0);
  ws_scales_ = ws.Add(static_cast<size_t>(channel_scales_) * sizeof(float));
  ctx.RequestWorkspace(ws.total());
  ctx.SetOutput(0, q_.out_type, geo.out_shape, out_layout, dst_user_md_.get_size());
  return Status::OK();
}

dnnl::reorder QConvKernel::QuantizingReorder(const memory::desc& from, const memory::desc& to) const {
  dnnl::primitive_attr attr;
  if (channel_scales_ > 0) {
    attr.set_output_scales(scale_mask_, {DNNL_RUNTIME_F32_VAL});  // scale / x_scale, per run
  } else {
    attr.set_output_scales(0, {1.f / q_.x_scale});
  }
  if (q_.x_zero != 0) attr.set_zero_points(DNNL_ARG_DST, 0, {q_.x_zero});
  return dnnl::reorder(dnnl::reorder::primitive_desc(Engine(), from, Engine(), to, attr));
}

StatusOr<std::vector<int16_t>> QConvKernel::ShiftedWeights(const PrepareContext& ctx, const Dims& wdims,
                                                           int64_t m) const {
  const Tensor& wval = *ctx.input_value(in_.w);
  std::vector<int32_t> raw;
  if (wval.data() != nullptr) {
    raw = IntsOf(wval);
  } else {  // freed once packed: rebuilt from the packed copy (only int8 W with zero point 0 is freed)
    const ir::Value* value = static_cast<size_t>(in_.w) < ctx.node().inputs.size() ? ctx.node().inputs[in_.w] : nullptr;
    Buffer scratch;
    ASSIGN_OR_RETURN(const void* plain,
                     PlainConstant(value, wval, memory::desc(wdims, dt::s8, PlainTag(wdims.size())), &scratch));
    const auto* p = static_cast<const int8_t*>(plain);
    raw.assign(p, p + wval.num_elements());
  }
  const size_t per_channel = raw.size() / static_cast<size_t>(m);
  return ShiftWeights(raw, q_.w_zero, [&](size_t i) { return i / per_channel; });
}

Status QConvKernel::PrepareWeights(PrepareContext& ctx, const dnnl::primitive_desc& pd, const Dims& wdims,
                                   const std::vector<int16_t>& w16) {
  const memory::desc user_md(wdims, dt::s8, PlainTag(wdims.size()));
  if (q_.plain_int8_weights()) {  // the constant itself, packed once and shared with the model's other plans
    const ir::Value* value = static_cast<size_t>(in_.w) < ctx.node().inputs.size() ? ctx.node().inputs[in_.w] : nullptr;
    ASSIGN_OR_RETURN(weights_, SharedPack(ctx, value, *ctx.input_value(in_.w), user_md, pd.weights_desc()));
    weights_shared_ = true;
    return Status::OK();
  }
  const std::vector<int8_t> shifted(w16.begin(), w16.end());  // within int8 (NeedsDequantizedPath)
  auto packed = std::make_shared<PackedWeights::Packed>();
  packed->md = pd.weights_desc();
  ASSIGN_OR_RETURN(packed->buffer, ReorderToPersistent(ctx, user_md, shifted.data(), packed->md));
  weights_ = std::move(packed);
  weights_shared_ = false;
  return Status::OK();
}

Status QConvKernel::PrepareFloatWeights(PrepareContext& ctx, const dnnl::primitive_desc& pd, const Dims& wdims,
                                        const std::vector<int16_t>& w16) {
  const size_t per_channel = w16.size() / q_.acc_to_float.size();
  std::vector<float> wf(w16.size());
  for (size_t i = 0; i < w16.size(); ++i) wf[i] = static_cast<float>(w16[i]) * q_.acc_to_float[i / per_channel];
  auto packed = std::make_shared<PackedWeights::Packed>();
  packed->md = pd.weights_desc();
  ASSIGN_OR_RETURN(packed->buffer, ReorderToPersistent(ctx, PlainMd(wdims), wf.data(), packed->md));
  weights_ = std::move(packed);
  weights_shared_ = false;
  return Status::OK();
}

void QConvKernel::ReorderSource(const RunContext& ctx, dnnl::stream& s, memory& from, memory& to) const {
  if (channel_scales_ == 0) {
    src_reorder_.execute(s, from, to);
    return;
  }
  const float* scale = ctx.input(kChannelScaleInput).as<const float>();
  auto* per_run = static_cast<float*>(WsPtr(ctx, ws_scales_));
  const float inv = 1.f / q_.x_scale;
  for (int64_t i = 0; i < channel_scales_; ++i) per_run[i] = scale[i] * inv;
  memory scales(memory::desc({channel_scales_}, dt::f32, Tag::x), Engine(), per_run);
  src_reorder_.execute(s, {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}, {DNNL_ARG_ATTR_OUTPUT_SCALES, scales}});
}

void QConvKernel::PlaceSumOperand(const RunContext& ctx, dnnl::stream& s, memory& dst) const {
  void* sum = ctx.input(kSumInput).data;
  if (!sum_copy_) {
    memory from(sum_md_, Engine(), sum);
    sum_reorder_.execute(s, from, dst);
  } else if (sum != dst.get_data_handle()) {
    std::memcpy(dst.get_data_handle(), sum, dst_md_.get_size());
  }
}

Status QConvKernel::RunImpl(RunContext& ctx) const {
  dnnl::stream& s = ThreadStream();
  void* x = ctx.input(in_.x).data;
  memory src(src_md_, Engine(), src_in_place_ ? x : WsPtr(ctx, ws_src_));
  if (!src_in_place_) {
    memory user_src(src_user_md_, Engine(), x);
    ReorderSource(ctx, s, user_src, src);
  }
  const TensorView& out = ctx.output(0);
  memory dst(dst_md_, Engine(), dst_in_place_ ? out.data : WsPtr(ctx, ws_dst_));
  ArgMap args{{DNNL_ARG_SRC, src},
              {DNNL_ARG_WEIGHTS, memory(weights_->md, Engine(), const_cast<void*>(weights_->buffer.data()))},
              {DNNL_ARG_DST, dst}};
  if (!q_.bias.empty()) args.insert({DNNL_ARG_BIAS, memory(bias_md_, Engine(), const_cast<float*>(q_.bias.data()))});
  if (scratch_md_.get_size() > 0) args.insert({DNNL_ARG_SCRATCHPAD, memory(scratch_md_, Engine(), WsPtr(ctx, ws_scratch_))});
  int32_t x_zero = q_.runtime_x_zero ? RunTimeZeroPoint(ctx.input(in_.x_zero)) : q_.x_zero;
  int32_t y_zero = q_.y_zero;
  const memory::desc zp_md({1}, dt::s32, Tag::x);
  if (q_.runtime_x_zero || q_.x_zero != 0) {
    args.insert({DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_SRC, memory(zp_md, Engine(), &x_zero)});
  }
  if (q_.y_zero != 0) args.insert({DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_DST, memory(zp_md, Engine(), &y_zero)});
  if (sum_) PlaceSumOperand(ctx, s, dst);
  prim_.execute(s, args);
  if (!dst_in_place_) {
    memory user_dst(dst_user_md_, Engine(), out.data);
    dst_reorder_.execute(s, dst, user_dst);
  }
  s.wait();
  return Status::OK();
}

Status QConvKernel::RunDequantized(RunContext& ctx) const {
  dnnl::stream& s = ThreadStream();
  auto* src = static_cast<float*>(WsPtr(ctx, ws_src_));
  TensorView x = ctx.input(in_.x);
  if (quantized_x_md_.get_size() > 0) {  // plain int8 first (quantized as the int8 path's reorder does)
    void* quantized = WsPtr(ctx, ws_quantized_x_);
    memory from(src_user_md_, Engine(), x.data), to(quantized_x_md_, Engine(), quantized);
    ReorderSource(ctx, s, from, to);
    s.wait();
    x = TensorView{q_.x_type, x.shape, quantized};
  }
  DequantizeInput(x, q_.runtime_x_zero ? RunTimeZeroPoint(ctx.input(in_.x_zero)) : q_.x_zero, src);
  const TensorView& out = ctx.output(0);
  float* dst = q_.out_type == DataType::kFloat32 ? out.as<float>() : static_cast<float*>(WsPtr(ctx, ws_dst_));
  memory dst_mem(dst_md_, Engine(), dst);
  if (sum_) PlaceSumOperand(ctx, s, dst_mem);
  ArgMap args{{DNNL_ARG_SRC, memory(src_md_, Engine(), src)},
              {DNNL_ARG_WEIGHTS, memory(weights_->md, Engine(), const_cast<void*>(weights_->buffer.data()))},
              {DNNL_ARG_DST, dst_mem}};
  if (!q_.bias.empty()) args.insert({DNNL_ARG_BIAS, memory(bias_md_, Engine(), const_cast<float*>(q_.bias.data()))});
  if (scratch_md_.get_size() > 0) args.insert({DNNL_ARG_SCRATCHPAD, memory(scratch_md_, Engine(), WsPtr(ctx, ws_scratch_))});
  prim_.execute(s, args);
  s.wait();
  if (q_.out_type != DataType::kFloat32) QuantizeOutput(dst, out.num_elements(), q_, out);
  return Status::OK();
}

}  // namespace

StatusOr<std::unique_ptr<Kernel>> MakeQLinearConv(const ir::Node& node) {
  const bool gpuhive_form = node.domain == "gpuhive";
  const ir::Value* x = node.input(0);
  const bool float_x = gpuhive_form && x != nullptr && x->dtype == DataType::kFloat32;
  return std::unique_ptr<Kernel>(new QConvKernel(kQLinearInputs, gpuhive_form, float_x));
}
StatusOr<std::unique_ptr<Kernel>> MakeConvInteger(const ir::Node&) {
  return std::unique_ptr<Kernel>(new QConvKernel(kIntegerInputs, false, false));
}

}  // namespace gpuhive::cpu::onednn
