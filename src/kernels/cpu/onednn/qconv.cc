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
// x_scale * w_scale), and attribute "relu" = 1 applies ReLU before the output is quantized.
// ConvInteger: 0 x, 1 W, 2 x_zero_point, 3 w_zero_point; its output is the int32 accumulator.
//
// Scales must be constants (they become oneDNN's output scales when the primitive is made); x's
// zero point may be computed at run time (DynamicQuantizeLinear's). oneDNN has no weight zero
// points: W minus its zero point is packed as int8 when it fits (int8 W with zero point 0, uint8 W
// with zero point 128, ...). oneDNN's int8 kernels take nhwc activations: x is reordered from plain
// in Run and the result back to plain (cheap on one-byte elements next to the convolution).
//
// Weights that do not fit int8 after their zero point (uint8 W with another zero point), and,
// below VNNI (HasInt8DotProduct, where oneDNN's int8 kernels are exact only for weights within
// 7 bits), weights beyond 7 bits, run the "dequantized" path: the same convolution in float32 on exactly converted
// operands (x - zero point, W - zero point times the scales), then quantized as QuantizeLinear does.
// implementation() says which ran ("dequantized:" + oneDNN's float kernel).
#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gpuhive/logging.h"
#include "kernels/cpu/onednn/common.h"
#include "gpuhive/window_geometry.h"
#include "kernels/cpu/onednn/kernels.h"
#include "kernels/cpu/onednn/quant_common.h"

namespace gpuhive::cpu::onednn {
namespace {

using dt = memory::data_type;

Tag ChannelsLastTag(size_t rank) {
  switch (rank) {
    case 3: return Tag::nwc;
    case 4: return Tag::nhwc;
    case 5: return Tag::ndhwc;
    default: return Tag::undef;
  }
}

class QConvKernel final : public Kernel {
 public:
  QConvKernel(const QInputs& in, bool gpuhive_form) : in_(in), gpuhive_form_(gpuhive_form) {}

  std::shared_ptr<const void> CopyOfInput(size_t i) const override {
    return static_cast<int>(i) == in_.w && weights_shared_ ? weights_ : nullptr;
  }
  Status Prepare(PrepareContext& ctx) override {
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
  Status RunImpl(RunContext& ctx) const;
  Status RunDequantized(RunContext& ctx) const;

  QInputs in_;
  bool gpuhive_form_;
  QuantSetup q_;
  std::string implementation_;
  dnnl::primitive prim_;
  memory::desc src_user_md_, src_md_, bias_md_, dst_md_, dst_user_md_, scratch_md_;
  dnnl::reorder src_reorder_, dst_reorder_;
  std::shared_ptr<const PackedWeights::Packed> weights_;
  bool weights_shared_ = false;  // weights_ is the constant's packed copy (not derived from it)
  bool dequantized_ = false;     // the float32 path (see the top of the file)
  size_t ws_src_ = 0, ws_dst_ = 0, ws_scratch_ = 0;
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

  const size_t rank = x.size();
  Dims wdims;
  if (geo.group > 1) wdims = {geo.group, w[0] / geo.group, w[1]};
  else wdims = {w[0], w[1]};
  for (size_t i = 2; i < w.size(); ++i) wdims.push_back(w[i]);
  dst_user_md_ = memory::desc(ToDims(geo.out_shape), OnednnType(q_.out_type), PlainTag(rank));
  bias_md_ = q_.bias.empty() ? memory::desc() : memory::desc({m}, dt::f32, Tag::a);
  dnnl::post_ops relu_po;
  if (q_.relu) relu_po.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);

  std::vector<int16_t> w16;
  dequantized_ = false;
  if (!q_.plain_int8_weights() || !HasInt8DotProduct()) {
    ASSIGN_OR_RETURN(w16, ShiftedWeights(ctx, wdims, m));
    dequantized_ = NeedsDequantizedPath(w16);
  }
  dnnl::primitive_attr attr = ScratchAttr();
  attr.set_post_ops(relu_po);
  if (!dequantized_) {
    if (q_.has_scales()) {
      attr.set_output_scales(q_.per_channel ? 1 << 1 : 0,
                             q_.per_channel ? q_.out_scales : std::vector<float>{q_.out_scales[0]});
    }
    if (q_.runtime_x_zero || q_.x_zero != 0) attr.set_zero_points(DNNL_ARG_SRC, 0, {DNNL_RUNTIME_S32_VAL});
    if (q_.y_zero != 0) attr.set_zero_points(DNNL_ARG_DST, 0, {DNNL_RUNTIME_S32_VAL});
    const Tag cl = ChannelsLastTag(rank);
    src_user_md_ = memory::desc(ToDims(x), OnednnType(q_.x_type), PlainTag(rank));
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
    src_reorder_ = dnnl::reorder(dnnl::reorder::primitive_desc(Engine(), src_user_md_, Engine(), src_md_));
    dst_reorder_ = dnnl::reorder(dnnl::reorder::primitive_desc(Engine(), dst_md_, Engine(), dst_user_md_));
  } else {
    // Float32 on exact operands: src = x - zero point (plain), weights and bias in the float domain.
    if (!q_.has_scales()) q_.acc_to_float.assign(static_cast<size_t>(m), 1.f);
    for (size_t c = 0; c < q_.bias.size(); ++c) q_.bias[c] *= q_.acc_to_float[c];
    src_md_ = memory::desc(ToDims(x), dt::f32, PlainTag(rank));
    dst_md_ = memory::desc(ToDims(geo.out_shape), dt::f32, PlainTag(rank));
    dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                                      src_md_, memory::desc(wdims, dt::f32, Tag::any), bias_md_, dst_md_,
                                      geo.strides, geo.dilations, geo.pad_l, geo.pad_r);
    dnnl::convolution_forward::primitive_desc pd(d, attr, Engine());
    implementation_ = std::string("dequantized:") + pd.impl_info_str();
    prim_ = dnnl::convolution_forward(pd);
    scratch_md_ = pd.scratchpad_desc();
    RETURN_IF_ERROR(PrepareFloatWeights(ctx, pd, wdims, w16));
  }
  if (implementation_.find("ref") != std::string::npos) {
    GH_LOG_DEBUG("kernels", "{}: only oneDNN's reference convolution fits ({})", desc, implementation_);
  }
  WorkspacePlan ws;
  ws_scratch_ = ws.Add(scratch_md_.get_size());
  ws_src_ = ws.Add(src_md_.get_size());
  ws_dst_ = ws.Add(dst_md_.get_size());
  ctx.RequestWorkspace(ws.total());
  ctx.SetOutput(0, q_.out_type, geo.out_shape);
  return Status::OK();
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

Status QConvKernel::RunImpl(RunContext& ctx) const {
  dnnl::stream& s = ThreadStream();
  memory user_src(src_user_md_, Engine(), ctx.input(in_.x).data);
  memory src(src_md_, Engine(), WsPtr(ctx, ws_src_));
  src_reorder_.execute(s, user_src, src);
  memory dst(dst_md_, Engine(), WsPtr(ctx, ws_dst_));
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
  prim_.execute(s, args);
  memory out(dst_user_md_, Engine(), ctx.output(0).data);
  dst_reorder_.execute(s, dst, out);
  s.wait();
  return Status::OK();
}

Status QConvKernel::RunDequantized(RunContext& ctx) const {
  dnnl::stream& s = ThreadStream();
  auto* src = static_cast<float*>(WsPtr(ctx, ws_src_));
  DequantizeInput(ctx.input(in_.x), q_.runtime_x_zero ? RunTimeZeroPoint(ctx.input(in_.x_zero)) : q_.x_zero, src);
  const TensorView& out = ctx.output(0);
  float* dst = q_.out_type == DataType::kFloat32 ? out.as<float>() : static_cast<float*>(WsPtr(ctx, ws_dst_));
  ArgMap args{{DNNL_ARG_SRC, memory(src_md_, Engine(), src)},
              {DNNL_ARG_WEIGHTS, memory(weights_->md, Engine(), const_cast<void*>(weights_->buffer.data()))},
              {DNNL_ARG_DST, memory(dst_md_, Engine(), dst)}};
  if (!q_.bias.empty()) args.insert({DNNL_ARG_BIAS, memory(bias_md_, Engine(), const_cast<float*>(q_.bias.data()))});
  if (scratch_md_.get_size() > 0) args.insert({DNNL_ARG_SCRATCHPAD, memory(scratch_md_, Engine(), WsPtr(ctx, ws_scratch_))});
  prim_.execute(s, args);
  s.wait();
  QuantizeOutput(dst, out.num_elements(), q_, out);
  return Status::OK();
}

}  // namespace

StatusOr<std::unique_ptr<Kernel>> MakeQLinearConv(const ir::Node& node) {
  return std::unique_ptr<Kernel>(new QConvKernel(kQLinearInputs, node.domain == "gpuhive"));
}
StatusOr<std::unique_ptr<Kernel>> MakeConvInteger(const ir::Node&) {
  return std::unique_ptr<Kernel>(new QConvKernel(kIntegerInputs, false));
}

}  // namespace gpuhive::cpu::onednn
