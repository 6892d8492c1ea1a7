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
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "gpuhive/logging.h"
#include "kernels/cpu/onednn/common.h"
#include "kernels/cpu/onednn/geometry.h"
#include "kernels/cpu/onednn/kernels.h"

namespace gpuhive::cpu::onednn {
namespace {

using dt = memory::data_type;

// Input positions; -1: the form has no such input.
struct QInputs {
  int x = 0, x_scale = 1, x_zero = 2, w = 3, w_scale = 4, w_zero = 5, y_scale = 6, y_zero = 7, bias = 8;
};
constexpr QInputs kQLinearInputs{};
constexpr QInputs kIntegerInputs{0, -1, 2, 1, -1, 3, -1, -1, -1};

bool IsInt8(DataType t) { return t == DataType::kUint8 || t == DataType::kInt8; }

dt OnednnType(DataType t) {
  switch (t) {
    case DataType::kUint8: return dt::u8;
    case DataType::kInt8: return dt::s8;
    case DataType::kInt32: return dt::s32;
    default: return dt::f32;
  }
}

Tag ChannelsLastTag(size_t rank) {
  switch (rank) {
    case 3: return Tag::nwc;
    case 4: return Tag::nhwc;
    case 5: return Tag::ndhwc;
    default: return Tag::undef;
  }
}

// A constant's elements as int32 (uint8 / int8 / int32) or float (float32).
std::vector<int32_t> IntsOf(const Tensor& t) {
  std::vector<int32_t> v(static_cast<size_t>(t.num_elements()));
  for (size_t i = 0; i < v.size(); ++i) {
    switch (t.dtype()) {
      case DataType::kUint8: v[i] = t.as<uint8_t>()[i]; break;
      case DataType::kInt8: v[i] = t.as<int8_t>()[i]; break;
      default: v[i] = t.as<int32_t>()[i]; break;
    }
  }
  return v;
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
    return Guard("QConv run", [&] { return RunImpl(ctx); });
  }
  std::string_view implementation() const override { return implementation_; }

 private:
  bool Has(const PrepareContext& ctx, int i) const {
    return i >= 0 && static_cast<size_t>(i) < ctx.num_inputs() && ctx.has_input(static_cast<size_t>(i));
  }
  // Constant input i with 1 (or, when per_channel_ok, m) elements of dtype `want`.
  StatusOr<const Tensor*> SmallConstant(const PrepareContext& ctx, int i, const char* what, int64_t m) const;
  Status PrepareImpl(PrepareContext& ctx);
  // W minus its zero point (plain layout `wdims`): -255..255.
  StatusOr<std::vector<int16_t>> ShiftedWeights(const PrepareContext& ctx, const Dims& wdims,
                                                const std::vector<int32_t>& w_zero, int64_t m) const;
  // The int8 path's weights: the constant itself when plain_int8, else `w16` (within int8).
  Status PrepareWeights(PrepareContext& ctx, const dnnl::primitive_desc& pd, const Dims& wdims, bool plain_int8,
                        const std::vector<int16_t>& w16);
  // The dequantized path's weights: (W - zero point) * x_scale * w_scale[c], packed for `pd`.
  Status PrepareFloatWeights(PrepareContext& ctx, const dnnl::primitive_desc& pd, const Dims& wdims,
                             const std::vector<int16_t>& w16, const std::vector<float>& acc_to_float);
  Status RunImpl(RunContext& ctx) const;
  Status RunDequantized(RunContext& ctx) const;

  QInputs in_;
  bool gpuhive_form_;
  std::string implementation_;
  dnnl::primitive prim_;
  memory::desc src_user_md_, src_md_, weights_md_, bias_md_, dst_md_, dst_user_md_, scratch_md_;
  dnnl::reorder src_reorder_, dst_reorder_;
  std::shared_ptr<const PackedWeights::Packed> weights_;
  bool weights_shared_ = false;  // weights_ is the constant's packed copy (not derived from it)
  std::vector<float> bias_;       // in the accumulator's domain
  bool runtime_x_zero_ = false;   // x's zero point is read from input in_.x_zero in Run
  int32_t x_zero_ = 0, y_zero_ = 0;
  bool dequantized_ = false;  // the float32 path (see the top of the file)
  float y_scale_ = 1.f;
  DataType out_type_ = DataType::kFloat32;
  size_t ws_src_ = 0, ws_dst_ = 0, ws_scratch_ = 0;
};

StatusOr<const Tensor*> QConvKernel::SmallConstant(const PrepareContext& ctx, int i, const char* what,
                                                   int64_t m) const {
  const std::string desc = ctx.node().Describe();
  const Tensor* t = ctx.input_value(static_cast<size_t>(i));
  if (t == nullptr || t->data() == nullptr) {
    return Unimplemented("{}: {} must be a constant (it becomes part of the int8 primitive)", desc, what);
  }
  const Shape& s = t->shape();
  const bool scalar = t->num_elements() == 1 && s.size() <= 1;
  const bool per_channel = m > 1 && s.size() == 1 && s[0] == m;
  if (!scalar && !per_channel) {
    return InvalidArgument("{}: {} has shape {}; expected one value{}", desc, what, ShapeToString(s),
                           m > 1 ? fmt::format(" or {} (one per output channel)", m) : std::string());
  }
  return t;
}

Status QConvKernel::PrepareImpl(PrepareContext& ctx) {
  const ir::Node& node = ctx.node();
  const std::string desc = node.Describe();
  if (!Has(ctx, in_.x) || !Has(ctx, in_.w)) return InvalidArgument("{}: needs x and W", desc);
  const DataType x_type = ctx.input_dtype(in_.x);
  const DataType w_type = ctx.input_dtype(in_.w);
  if (!IsInt8(x_type) || !IsInt8(w_type)) {
    return InvalidArgument("{}: x and W must be uint8 or int8 (x is {}, W is {})", desc, DataTypeName(x_type),
                           DataTypeName(w_type));
  }
  const Shape& x = ctx.input_shape(in_.x);
  const Shape& w = ctx.input_shape(in_.w);
  if (x.size() < 3 || x.size() > 5 || w.size() != x.size()) {
    return InvalidArgument("{}: x {} and W {} must be 3-D..5-D of equal rank", desc, ShapeToString(x),
                           ShapeToString(w));
  }
  const Tensor* wval = ctx.input_value(in_.w);
  if (wval == nullptr) return Unimplemented("{}: W must be a constant (it is packed once for the int8 primitive)", desc);
  ASSIGN_OR_RETURN(ConvGeometry geo, ComputeConvGeometry(node, x, w, false));
  const int64_t m = geo.out_shape[1];

  // Scales: x_scale * w_scale[c] takes the accumulator to the float domain, 1 / y_scale on to y's.
  std::vector<float> acc_to_float(static_cast<size_t>(m), 1.f);
  bool per_channel = false;
  if (in_.x_scale >= 0) {
    for (int i : {in_.x_scale, in_.w_scale}) {
      if (!Has(ctx, i)) return InvalidArgument("{}: input {} (a scale) is missing", desc, i);
      if (ctx.input_dtype(i) != DataType::kFloat32) return InvalidArgument("{}: scales must be float32", desc);
    }
    ASSIGN_OR_RETURN(const Tensor* xs, SmallConstant(ctx, in_.x_scale, "x_scale", 1));
    ASSIGN_OR_RETURN(const Tensor* ws, SmallConstant(ctx, in_.w_scale, "w_scale", m));
    per_channel = ws->num_elements() > 1;
    for (int64_t c = 0; c < m; ++c) acc_to_float[c] = xs->as<float>()[0] * ws->as<float>()[per_channel ? c : 0];
  }
  DataType out_type = in_.x_scale >= 0 ? DataType::kFloat32 : DataType::kInt32;
  std::vector<float> out_scales = acc_to_float;
  if (Has(ctx, in_.y_scale)) {
    ASSIGN_OR_RETURN(const Tensor* ys, SmallConstant(ctx, in_.y_scale, "y_scale", 1));
    const float y_scale = ys->as<float>()[0];
    if (!(y_scale > 0.f) || !std::isfinite(y_scale)) return InvalidArgument("{}: y_scale must be positive", desc);
    for (float& s : out_scales) s /= y_scale;
    out_type = DataType::kUint8;
    if (Has(ctx, in_.y_zero)) {
      ASSIGN_OR_RETURN(const Tensor* yz, SmallConstant(ctx, in_.y_zero, "y_zero_point", 1));
      if (!IsInt8(yz->dtype())) return InvalidArgument("{}: y_zero_point must be uint8 or int8", desc);
      out_type = yz->dtype();
      y_zero_ = IntsOf(*yz)[0];
    }
  } else if (!gpuhive_form_ && in_.y_scale >= 0) {
    return InvalidArgument("{}: y_scale is missing", desc);
  }
  if (!gpuhive_form_ && in_.y_scale >= 0 && !Has(ctx, in_.y_zero)) {
    return InvalidArgument("{}: y_zero_point is missing", desc);
  }

  // Zero points. x's: a constant, or read in Run; W's: subtracted while packing.
  if (Has(ctx, in_.x_zero)) {
    if (ctx.input_dtype(in_.x_zero) != x_type) {
      return InvalidArgument("{}: x_zero_point is {} but x is {}", desc, DataTypeName(ctx.input_dtype(in_.x_zero)),
                             DataTypeName(x_type));
    }
    if (NumElements(ctx.input_shape(in_.x_zero)) != 1) return InvalidArgument("{}: x_zero_point must be one value", desc);
    const Tensor* xz = ctx.input_value(in_.x_zero);
    runtime_x_zero_ = xz == nullptr || xz->data() == nullptr;
    if (!runtime_x_zero_) x_zero_ = IntsOf(*xz)[0];
  }
  std::vector<int32_t> w_zero(1, 0);
  if (Has(ctx, in_.w_zero)) {
    ASSIGN_OR_RETURN(const Tensor* wz, SmallConstant(ctx, in_.w_zero, "w_zero_point", m));
    if (wz->dtype() != w_type) return InvalidArgument("{}: w_zero_point and W differ in type", desc);
    w_zero = IntsOf(*wz);
  }

  // Bias, in the accumulator's domain (oneDNN adds it before the output scales).
  if (Has(ctx, in_.bias)) {
    const Tensor* b = ctx.input_value(in_.bias);
    if (b == nullptr || b->data() == nullptr) return Unimplemented("{}: B must be a constant", desc);
    if (b->num_elements() != m) return InvalidArgument("{}: B has {} elements, expected {}", desc, b->num_elements(), m);
    bias_.resize(static_cast<size_t>(m));
    if (b->dtype() == DataType::kInt32) {
      for (int64_t c = 0; c < m; ++c) bias_[c] = static_cast<float>(b->as<int32_t>()[c]);
    } else if (b->dtype() == DataType::kFloat32 && gpuhive_form_) {
      for (int64_t c = 0; c < m; ++c) bias_[c] = b->as<float>()[c] / acc_to_float[c];
    } else {
      return InvalidArgument("{}: B must be int32{}", desc, gpuhive_form_ ? " or float32" : "");
    }
  }
  ASSIGN_OR_RETURN(int64_t relu, node.GetInt("relu", 0));

  const size_t rank = x.size();
  Dims wdims;
  if (geo.group > 1) wdims = {geo.group, w[0] / geo.group, w[1]};
  else wdims = {w[0], w[1]};
  for (size_t i = 2; i < w.size(); ++i) wdims.push_back(w[i]);
  out_type_ = out_type;
  dst_user_md_ = memory::desc(ToDims(geo.out_shape), OnednnType(out_type), PlainTag(rank));
  bias_md_ = bias_.empty() ? memory::desc() : memory::desc({m}, dt::f32, Tag::a);
  dnnl::post_ops relu_po;
  if (relu != 0) relu_po.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);

  // The int8 kernels need W - zero point within int8, and within 7 bits below VNNI.
  const bool plain_int8 = w_type == DataType::kInt8 &&
                          std::all_of(w_zero.begin(), w_zero.end(), [](int32_t z) { return z == 0; });
  std::vector<int16_t> w16;
  dequantized_ = false;
  if (!plain_int8 || !HasInt8DotProduct()) {
    ASSIGN_OR_RETURN(w16, ShiftedWeights(ctx, wdims, w_zero, m));
    const int lo = HasInt8DotProduct() ? -128 : -64, hi = HasInt8DotProduct() ? 127 : 63;
    dequantized_ = std::any_of(w16.begin(), w16.end(), [&](int16_t v) { return v < lo || v > hi; });
  }
  dnnl::primitive_attr attr = ScratchAttr();
  WorkspacePlan ws;
  if (!dequantized_) {
    if (in_.x_scale >= 0) {
      attr.set_output_scales(per_channel ? 1 << 1 : 0, per_channel ? out_scales : std::vector<float>{out_scales[0]});
    }
    if (runtime_x_zero_ || x_zero_ != 0) attr.set_zero_points(DNNL_ARG_SRC, 0, {DNNL_RUNTIME_S32_VAL});
    if (y_zero_ != 0) attr.set_zero_points(DNNL_ARG_DST, 0, {DNNL_RUNTIME_S32_VAL});
    attr.set_post_ops(relu_po);
    const Tag cl = ChannelsLastTag(rank);
    src_user_md_ = memory::desc(ToDims(x), OnednnType(x_type), PlainTag(rank));
    const memory::desc src(ToDims(x), OnednnType(x_type), cl);
    const memory::desc dst(ToDims(geo.out_shape), OnednnType(out_type), cl);
    dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src,
                                      memory::desc(wdims, dt::s8, Tag::any), bias_md_, dst, geo.strides,
                                      geo.dilations, geo.pad_l, geo.pad_r);
    dnnl::convolution_forward::primitive_desc pd(d, attr, Engine());
    implementation_ = pd.impl_info_str();
    prim_ = dnnl::convolution_forward(pd);
    src_md_ = pd.src_desc();
    dst_md_ = pd.dst_desc();
    scratch_md_ = pd.scratchpad_desc();
    RETURN_IF_ERROR(PrepareWeights(ctx, pd, wdims, plain_int8, w16));
    src_reorder_ = dnnl::reorder(dnnl::reorder::primitive_desc(Engine(), src_user_md_, Engine(), src_md_));
    dst_reorder_ = dnnl::reorder(dnnl::reorder::primitive_desc(Engine(), dst_md_, Engine(), dst_user_md_));
  } else {
    // Float32 on exact operands: src = x - zero point (plain), weights and bias in the float domain.
    for (size_t c = 0; c < bias_.size(); ++c) bias_[c] *= acc_to_float[c];
    if (out_type != DataType::kFloat32 && out_type != DataType::kInt32) y_scale_ = acc_to_float[0] / out_scales[0];
    attr.set_post_ops(relu_po);
    src_md_ = memory::desc(ToDims(x), dt::f32, PlainTag(rank));
    dst_md_ = memory::desc(ToDims(geo.out_shape), dt::f32, PlainTag(rank));
    dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                                      src_md_, memory::desc(wdims, dt::f32, Tag::any), bias_md_, dst_md_,
                                      geo.strides, geo.dilations, geo.pad_l, geo.pad_r);
    dnnl::convolution_forward::primitive_desc pd(d, attr, Engine());
    implementation_ = std::string("dequantized:") + pd.impl_info_str();
    prim_ = dnnl::convolution_forward(pd);
    scratch_md_ = pd.scratchpad_desc();
    RETURN_IF_ERROR(PrepareFloatWeights(ctx, pd, wdims, w16, acc_to_float));
  }
  if (implementation_.find("ref") != std::string::npos) {
    GH_LOG_DEBUG("kernels", "{}: only oneDNN's reference convolution fits ({})", desc, implementation_);
  }
  ws_scratch_ = ws.Add(scratch_md_.get_size());
  ws_src_ = ws.Add(src_md_.get_size());
  ws_dst_ = ws.Add(dst_md_.get_size());
  ctx.RequestWorkspace(ws.total());
  ctx.SetOutput(0, out_type, geo.out_shape);
  return Status::OK();
}

StatusOr<std::vector<int16_t>> QConvKernel::ShiftedWeights(const PrepareContext& ctx, const Dims& wdims,
                                                           const std::vector<int32_t>& w_zero, int64_t m) const {
  const Tensor& wval = *ctx.input_value(in_.w);
  std::vector<int32_t> raw;
  if (wval.data() != nullptr) {
    raw = IntsOf(wval);
  } else {  // freed once packed: rebuilt from the packed copy (only int8 W with zero point 0 is freed)
    const ir::Value* value = static_cast<size_t>(in_.w) < ctx.node().inputs.size() ? ctx.node().inputs[in_.w] : nullptr;
    const memory::desc user_md(wdims, dt::s8, PlainTag(wdims.size()));
    Buffer scratch;
    ASSIGN_OR_RETURN(const void* plain, PlainConstant(value, wval, user_md, &scratch));
    const auto* p = static_cast<const int8_t*>(plain);
    raw.assign(p, p + wval.num_elements());
  }
  const size_t per_channel = raw.size() / static_cast<size_t>(m);
  std::vector<int16_t> shifted(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    shifted[i] = static_cast<int16_t>(raw[i] - w_zero[w_zero.size() == 1 ? 0 : i / per_channel]);
  }
  return shifted;
}

Status QConvKernel::PrepareWeights(PrepareContext& ctx, const dnnl::primitive_desc& pd, const Dims& wdims,
                                   bool plain_int8, const std::vector<int16_t>& w16) {
  const Tensor& wval = *ctx.input_value(in_.w);
  const memory::desc user_md(wdims, dt::s8, PlainTag(wdims.size()));
  if (plain_int8) {  // the constant itself, packed once and shared with the model's other plans
    const ir::Value* value = static_cast<size_t>(in_.w) < ctx.node().inputs.size() ? ctx.node().inputs[in_.w] : nullptr;
    ASSIGN_OR_RETURN(weights_, SharedPack(ctx, value, wval, user_md, pd.weights_desc()));
    weights_shared_ = true;
    return Status::OK();
  }
  const std::vector<int8_t> shifted(w16.begin(), w16.end());  // within int8 (checked by the caller)
  auto packed = std::make_shared<PackedWeights::Packed>();
  packed->md = pd.weights_desc();
  ASSIGN_OR_RETURN(packed->buffer, ReorderToPersistent(ctx, user_md, shifted.data(), packed->md));
  weights_ = std::move(packed);
  weights_shared_ = false;
  return Status::OK();
}

Status QConvKernel::PrepareFloatWeights(PrepareContext& ctx, const dnnl::primitive_desc& pd, const Dims& wdims,
                                        const std::vector<int16_t>& w16, const std::vector<float>& acc_to_float) {
  const size_t per_channel = w16.size() / acc_to_float.size();
  std::vector<float> wf(w16.size());
  for (size_t i = 0; i < w16.size(); ++i) wf[i] = static_cast<float>(w16[i]) * acc_to_float[i / per_channel];
  auto packed = std::make_shared<PackedWeights::Packed>();
  packed->md = pd.weights_desc();
  ASSIGN_OR_RETURN(packed->buffer, ReorderToPersistent(ctx, PlainMd(wdims), wf.data(), packed->md));
  weights_ = std::move(packed);
  weights_shared_ = false;
  return Status::OK();
}

int32_t RunTimeZeroPoint(const TensorView& z) {
  return z.dtype == DataType::kUint8 ? *z.as<uint8_t>() : *z.as<int8_t>();
}

Status QConvKernel::RunImpl(RunContext& ctx) const {
  if (dequantized_) return RunDequantized(ctx);
  dnnl::stream& s = ThreadStream();
  memory user_src(src_user_md_, Engine(), ctx.input(in_.x).data);
  memory src(src_md_, Engine(), WsPtr(ctx, ws_src_));
  src_reorder_.execute(s, user_src, src);
  memory dst(dst_md_, Engine(), WsPtr(ctx, ws_dst_));
  ArgMap args{{DNNL_ARG_SRC, src},
              {DNNL_ARG_WEIGHTS, memory(weights_->md, Engine(), const_cast<void*>(weights_->buffer.data()))},
              {DNNL_ARG_DST, dst}};
  if (!bias_.empty()) args.insert({DNNL_ARG_BIAS, memory(bias_md_, Engine(), const_cast<float*>(bias_.data()))});
  if (scratch_md_.get_size() > 0) args.insert({DNNL_ARG_SCRATCHPAD, memory(scratch_md_, Engine(), WsPtr(ctx, ws_scratch_))});
  int32_t x_zero = runtime_x_zero_ ? RunTimeZeroPoint(ctx.input(in_.x_zero)) : x_zero_;
  int32_t y_zero = y_zero_;
  const memory::desc zp_md({1}, dt::s32, Tag::x);
  if (runtime_x_zero_ || x_zero_ != 0) args.insert({DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_SRC, memory(zp_md, Engine(), &x_zero)});
  if (y_zero_ != 0) args.insert({DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_DST, memory(zp_md, Engine(), &y_zero)});
  prim_.execute(s, args);
  memory out(dst_user_md_, Engine(), ctx.output(0).data);
  dst_reorder_.execute(s, dst, out);
  s.wait();
  return Status::OK();
}

template <typename Q>
void Requantize(const float* v, int64_t n, float scale, int32_t zero, Q* out) {
  constexpr double lo = std::numeric_limits<Q>::lowest(), hi = std::numeric_limits<Q>::max();
  for (int64_t i = 0; i < n; ++i) {
    out[i] = static_cast<Q>(std::clamp(static_cast<double>(std::nearbyint(v[i] / scale)) + zero, lo, hi));
  }
}

Status QConvKernel::RunDequantized(RunContext& ctx) const {
  dnnl::stream& s = ThreadStream();
  const TensorView& xv = ctx.input(in_.x);
  const int32_t x_zero = runtime_x_zero_ ? RunTimeZeroPoint(ctx.input(in_.x_zero)) : x_zero_;
  auto* src = static_cast<float*>(WsPtr(ctx, ws_src_));
  const int64_t n = xv.num_elements();
  if (xv.dtype == DataType::kUint8) {
    for (int64_t i = 0; i < n; ++i) src[i] = static_cast<float>(xv.as<uint8_t>()[i] - x_zero);
  } else {
    for (int64_t i = 0; i < n; ++i) src[i] = static_cast<float>(xv.as<int8_t>()[i] - x_zero);
  }
  const TensorView& out = ctx.output(0);
  float* dst = out_type_ == DataType::kFloat32 ? out.as<float>() : static_cast<float*>(WsPtr(ctx, ws_dst_));
  ArgMap args{{DNNL_ARG_SRC, memory(src_md_, Engine(), src)},
              {DNNL_ARG_WEIGHTS, memory(weights_->md, Engine(), const_cast<void*>(weights_->buffer.data()))},
              {DNNL_ARG_DST, memory(dst_md_, Engine(), dst)}};
  if (!bias_.empty()) args.insert({DNNL_ARG_BIAS, memory(bias_md_, Engine(), const_cast<float*>(bias_.data()))});
  if (scratch_md_.get_size() > 0) args.insert({DNNL_ARG_SCRATCHPAD, memory(scratch_md_, Engine(), WsPtr(ctx, ws_scratch_))});
  prim_.execute(s, args);
  s.wait();
  const int64_t m = out.num_elements();
  switch (out_type_) {
    case DataType::kUint8: Requantize(dst, m, y_scale_, y_zero_, out.as<uint8_t>()); break;
    case DataType::kInt8: Requantize(dst, m, y_scale_, y_zero_, out.as<int8_t>()); break;
    case DataType::kInt32: Requantize(dst, m, 1.f, 0, out.as<int32_t>()); break;
    default: break;
  }
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
