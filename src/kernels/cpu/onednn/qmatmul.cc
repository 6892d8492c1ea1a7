// gpuhive.QMatMul: a matrix multiplication by constant int8 weights on oneDNN's int8 matmul, what
// FuseQuantizedMatMul (passes_quant.cc) makes of DequantizeLinear(x) -> MatMul / Gemm with
// DequantizeLinear'd constant weights [-> Relu] [-> QuantizeLinear].
//
// Inputs as gpuhive.QConv's (QLinear* order): 0 x (uint8 / int8, [..., K]), 1 x_scale, 2 x_zero_point,
// 3 W (constant [K, N], or [N, K] with transB = 1), 4 w_scale (one value or N), 5 w_zero_point,
// 6 y_scale, 7 y_zero_point (both optional: float32 output), 8 B (float32 or int32, N values).
// Attributes: transB, relu. The output is [..., N]. Weights beyond int8 after their zero point,
// or beyond 7 bits without VNNI, run the same product in float32 on exactly converted operands
// (implementation() "dequantized:..."), as the quantized convolution does.
#include <memory>
#include <string>
#include <vector>

#include "kernels/cpu/onednn/common.h"
#include "kernels/cpu/onednn/kernels.h"
#include "kernels/cpu/onednn/quant_common.h"

namespace gpuhive::cpu::onednn {
namespace {

using dt = memory::data_type;

class QMatMulKernel final : public Kernel {
 public:
  std::shared_ptr<const void> CopyOfInput(size_t i) const override {
    return static_cast<int>(i) == kQLinearInputs.w && weights_shared_ ? weights_ : nullptr;
  }
  Status Prepare(PrepareContext& ctx) override {
    ThreadScope threads(ctx.options().num_threads);  // as ConvKernel: one weight format for every plan
    return Guard(ctx.node().Describe(), [&] { return PrepareImpl(ctx); });
  }
  Status Run(RunContext& ctx) const override {
    SetThreads(ctx.num_threads());
    return Guard("QMatMul run", [&] { return RunImpl(ctx); });
  }
  std::string_view implementation() const override { return implementation_; }

 private:
  Status PrepareImpl(PrepareContext& ctx);
  Status RunImpl(RunContext& ctx) const;

  QuantSetup q_;
  std::string implementation_;
  dnnl::primitive prim_;
  memory::desc src_md_, bias_md_, dst_md_, scratch_md_;
  std::shared_ptr<const PackedWeights::Packed> weights_;
  bool weights_shared_ = false;
  bool dequantized_ = false;
  size_t ws_src_ = 0, ws_dst_ = 0, ws_scratch_ = 0;
};

Status QMatMulKernel::PrepareImpl(PrepareContext& ctx) {
  const QInputs& in = kQLinearInputs;
  const ir::Node& node = ctx.node();
  const std::string desc = node.Describe();
  if (ctx.num_inputs() < 4 || !ctx.has_input(in.x) || !ctx.has_input(in.w)) return InvalidArgument("{}: needs x and W", desc);
  const Shape& x = ctx.input_shape(in.x);
  const Shape& w = ctx.input_shape(in.w);
  const Tensor* wval = ctx.input_value(in.w);
  if (wval == nullptr) return Unimplemented("{}: W must be a constant (it is packed once for the int8 primitive)", desc);
  ASSIGN_OR_RETURN(int64_t trans_b, node.GetInt("transB", 0));
  if (x.empty() || w.size() != 2) return InvalidArgument("{}: x {} must be N-D and W {} 2-D", desc, ShapeToString(x), ShapeToString(w));
  const int64_t k = trans_b ? w[1] : w[0], n = trans_b ? w[0] : w[1];
  if (x.back() != k) return InvalidArgument("{}: x {} does not fit W {}", desc, ShapeToString(x), ShapeToString(w));
  const int64_t rows = NumElements(x) / std::max<int64_t>(k, 1);
  Shape out_shape = x;
  out_shape.back() = n;
  ASSIGN_OR_RETURN(q_, ReadQuantSetup(ctx, in, true, n));

  // W minus its zero point, output channel = column.
  std::vector<int32_t> raw;
  if (wval->data() != nullptr) {
    raw = IntsOf(*wval);
  } else {  // freed once packed (int8 W with zero point 0): rebuilt from the packed copy
    Buffer scratch;
    const memory::desc plain_md({k, n}, dt::s8, trans_b ? Tag::ba : Tag::ab);
    ASSIGN_OR_RETURN(const void* plain, PlainConstant(node.inputs[in.w], *wval, plain_md, &scratch));
    raw.assign(static_cast<const int8_t*>(plain), static_cast<const int8_t*>(plain) + wval->num_elements());
  }
  const std::vector<int16_t> w16 =
      ShiftWeights(raw, q_.w_zero, [&](size_t i) { return trans_b ? static_cast<int64_t>(i) / k : static_cast<int64_t>(i) % n; });
  dequantized_ = NeedsDequantizedPath(w16);

  dnnl::primitive_attr attr = ScratchAttr();
  if (q_.relu) {
    dnnl::post_ops po;
    po.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
    attr.set_post_ops(po);
  }
  bias_md_ = q_.bias.empty() ? memory::desc() : memory::desc({1, n}, dt::f32, Tag::ab);
  const memory::desc user_w(memory::dims{k, n}, dequantized_ ? dt::f32 : dt::s8, trans_b ? Tag::ba : Tag::ab);
  if (!dequantized_) {
    if (q_.has_scales()) {
      attr.set_output_scales(q_.per_channel ? 1 << 1 : 0,
                             q_.per_channel ? q_.out_scales : std::vector<float>{q_.out_scales[0]});
    }
    if (q_.runtime_x_zero || q_.x_zero != 0) attr.set_zero_points(DNNL_ARG_SRC, 0, {DNNL_RUNTIME_S32_VAL});
    if (q_.y_zero != 0) attr.set_zero_points(DNNL_ARG_DST, 0, {DNNL_RUNTIME_S32_VAL});
    src_md_ = memory::desc({rows, k}, OnednnType(q_.x_type), Tag::ab);
    dst_md_ = memory::desc({rows, n}, OnednnType(q_.out_type), Tag::ab);
  } else {
    if (!q_.has_scales()) q_.acc_to_float.assign(static_cast<size_t>(n), 1.f);
    for (size_t c = 0; c < q_.bias.size(); ++c) q_.bias[c] *= q_.acc_to_float[c];
    src_md_ = memory::desc({rows, k}, dt::f32, Tag::ab);
    dst_md_ = memory::desc({rows, n}, dt::f32, Tag::ab);
  }
  dnnl::matmul::desc d(src_md_, memory::desc({k, n}, user_w.data_type(), Tag::any), bias_md_, dst_md_);
  dnnl::matmul::primitive_desc pd(d, attr, Engine());
  implementation_ = std::string(dequantized_ ? "dequantized:" : "") + pd.impl_info_str();
  prim_ = dnnl::matmul(pd);
  scratch_md_ = pd.scratchpad_desc();
  if (!dequantized_ && q_.plain_int8_weights()) {  // the constant itself, shared across plans
    ASSIGN_OR_RETURN(weights_, SharedPack(ctx, node.inputs[in.w], *wval, user_w, pd.weights_desc()));
    weights_shared_ = true;
  } else {
    auto packed = std::make_shared<PackedWeights::Packed>();
    packed->md = pd.weights_desc();
    if (dequantized_) {
      std::vector<float> wf(w16.size());
      for (size_t i = 0; i < w16.size(); ++i) {
        const size_t c = trans_b ? i / static_cast<size_t>(k) : i % static_cast<size_t>(n);
        wf[i] = static_cast<float>(w16[i]) * q_.acc_to_float[c];
      }
      ASSIGN_OR_RETURN(packed->buffer, ReorderToPersistent(ctx, user_w, wf.data(), packed->md));
    } else {
      const std::vector<int8_t> w8(w16.begin(), w16.end());
      ASSIGN_OR_RETURN(packed->buffer, ReorderToPersistent(ctx, user_w, w8.data(), packed->md));
    }
    weights_ = std::move(packed);
    weights_shared_ = false;
  }
  WorkspacePlan ws;
  ws_scratch_ = ws.Add(scratch_md_.get_size());
  if (dequantized_) {
    ws_src_ = ws.Add(src_md_.get_size());
    ws_dst_ = ws.Add(dst_md_.get_size());
  }
  ctx.RequestWorkspace(ws.total());
  ctx.SetOutput(0, q_.out_type, out_shape);
  return Status::OK();
}

Status QMatMulKernel::RunImpl(RunContext& ctx) const {
  const QInputs& in = kQLinearInputs;
  dnnl::stream& s = ThreadStream();
  const TensorView& out = ctx.output(0);
  int32_t x_zero = q_.runtime_x_zero ? RunTimeZeroPoint(ctx.input(in.x_zero)) : q_.x_zero;
  int32_t y_zero = q_.y_zero;
  void* src = ctx.input(in.x).data;
  void* dst = out.data;
  if (dequantized_) {
    src = WsPtr(ctx, ws_src_);
    DequantizeInput(ctx.input(in.x), x_zero, static_cast<float*>(src));
    if (q_.out_type != DataType::kFloat32) dst = WsPtr(ctx, ws_dst_);
  }
  ArgMap args{{DNNL_ARG_SRC, memory(src_md_, Engine(), src)},
              {DNNL_ARG_WEIGHTS, memory(weights_->md, Engine(), const_cast<void*>(weights_->buffer.data()))},
              {DNNL_ARG_DST, memory(dst_md_, Engine(), dst)}};
  if (!q_.bias.empty()) args.insert({DNNL_ARG_BIAS, memory(bias_md_, Engine(), const_cast<float*>(q_.bias.data()))});
  if (scratch_md_.get_size() > 0) args.insert({DNNL_ARG_SCRATCHPAD, memory(scratch_md_, Engine(), WsPtr(ctx, ws_scratch_))});
  const memory::desc zp_md({1}, dt::s32, Tag::x);
  if (!dequantized_ && (q_.runtime_x_zero || q_.x_zero != 0)) {
    args.insert({DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_SRC, memory(zp_md, Engine(), &x_zero)});
  }
  if (!dequantized_ && q_.y_zero != 0) args.insert({DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_DST, memory(zp_md, Engine(), &y_zero)});
  prim_.execute(s, args);
  s.wait();
  if (dequantized_ && q_.out_type != DataType::kFloat32) QuantizeOutput(static_cast<float*>(dst), out.num_elements(), q_, out);
  return Status::OK();
}

}  // namespace

StatusOr<std::unique_ptr<Kernel>> MakeQMatMul(const ir::Node&) { return std::unique_ptr<Kernel>(new QMatMulKernel()); }

}  // namespace gpuhive::cpu::onednn
