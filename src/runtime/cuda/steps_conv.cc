// Convolution steps of the CUDA executor: Conv and gpuhive.FusedConv on cuDNN's forward
// convolution, ConvTranspose on its backward-data convolution. The geometry (auto_pad, pads,
// output_padding, output_shape) is resolved exactly as the CPU kernel resolves it
// (ComputeConvGeometry), so both backends agree on every output size. cuDNN takes only symmetric
// padding: an asymmetrically padded Conv first pads its input explicitly into the step's
// workspace; a ConvTranspose whose crop is not symmetric computes the uncropped output in the
// workspace and crops it into y, then adds the bias and the post ops.
#include <algorithm>
#include <optional>
#include <string>

#include "gpuhive/window_geometry.h"
#include "runtime/cuda/step_builders.h"

namespace gpuhive::cuda::executor::detail {
namespace {

struct ConvParts {
  ConvDesc desc;
  ConvGeometry geo;
  size_t spatial = 0;
};

// Reads the node into a descriptor with ONNX's (possibly asymmetric) pads; 1-D uses h = 1.
StatusOr<ConvParts> ReadConv(StepInputs& in, bool transposed) {
  const ir::Node& n = in.node();
  const PlannedValue* x = in.input(0);
  const PlannedValue* w = in.input(1);
  RETURN_IF_ERROR(NeedFloat(x, n, "X"));
  RETURN_IF_ERROR(NeedFloat(w, n, "W"));
  const size_t rank = x->shape.size();
  if ((rank != 3 && rank != 4) || w->shape.size() != rank) {
    return Unimplemented("{}: only 1-D and 2-D convolutions run on CUDA", n.Describe());
  }
  ConvParts p;
  p.spatial = rank - 2;
  ASSIGN_OR_RETURN(p.geo, ComputeConvGeometry(n, x->shape, w->shape, transposed));
  if (p.geo.out_shape != in.output(0)->shape) {
    return Internal("{}: conv geometry {} differs from the planned output {}", n.Describe(),
                    ShapeToString(p.geo.out_shape), ShapeToString(in.output(0)->shape));
  }
  ConvDesc& d = p.desc;
  d.n = x->shape[0];
  d.c = x->shape[1];
  d.k = p.geo.out_shape[1];
  d.groups = p.geo.group;
  d.math = in.math();
  d.transposed = transposed;
  const Shape& ws = w->shape;
  auto dil = [&](size_t i) { return p.geo.dilations[i] + 1; };  // oneDNN's dilation is ONNX's - 1
  if (p.spatial == 2) {
    d.in_h = x->shape[2], d.in_w = x->shape[3], d.kernel_h = ws[2], d.kernel_w = ws[3];
    d.stride_h = p.geo.strides[0], d.stride_w = p.geo.strides[1], d.dilation_h = dil(0), d.dilation_w = dil(1);
    d.pad_top = p.geo.pad_l[0], d.pad_left = p.geo.pad_l[1], d.pad_bottom = p.geo.pad_r[0], d.pad_right = p.geo.pad_r[1];
  } else {
    d.in_h = 1, d.in_w = x->shape[2], d.kernel_h = 1, d.kernel_w = ws[2];
    d.stride_w = p.geo.strides[0], d.dilation_w = dil(0), d.pad_left = p.geo.pad_l[0], d.pad_right = p.geo.pad_r[0];
  }
  return p;
}

int64_t OutH(const ConvParts& p) { return p.spatial == 2 ? p.geo.out_shape[2] : 1; }
int64_t OutW(const ConvParts& p) { return p.geo.out_shape[p.spatial == 2 ? 3 : 2]; }

// Adds the bias [k] (input 2, when present) to y in place, broadcast over [n, k, spatial...].
StatusOr<BuiltStep> AddBias(StepInputs& in) {
  if (in.input(2) == nullptr) return BuiltStep{[](StreamView, void*) { return Status::OK(); }, 0};
  RETURN_IF_ERROR(NeedFloat(in.input(2), in.node(), "B"));
  ASSIGN_OR_RETURN(const void* b, in.DeviceInput(2));
  float* y = static_cast<float*>(in.output(0)->device);
  const Shape shape = in.output(0)->shape;
  Shape bshape(shape.size() - 1, 1);
  bshape[0] = shape[1];  // [k, 1(, 1)]
  const BroadcastOperand bias{static_cast<const float*>(b), bshape};
  return BuiltStep{[bias, y, shape](StreamView s, void*) {
                     return ElementwiseChain({PostOp{PostOp::Kind::kAdd}}, BroadcastOperand{y, shape}, {bias}, y, shape, s);
                   },
                   0};
}

// BuildConv's convolution on float32 operands (z: the residual, or null); an asymmetrically
// padded input is padded into the workspace first.
StatusOr<BuiltStep> Conv32(StepInputs& in, std::shared_ptr<ConvRunner> runner, const void* z, bool explicit_pad,
                           const std::vector<int64_t>& pad_begin, const Shape& padded_shape, size_t pad_bytes) {
  ASSIGN_OR_RETURN(const void* xp, in.DeviceInput(0));
  ASSIGN_OR_RETURN(const void* wp, in.DeviceInput(1));
  const void* bp = nullptr;
  if (in.input(2) != nullptr) {
    ASSIGN_OR_RETURN(bp, in.DeviceInput(2));
  }
  void* y = in.output(0)->device;
  if (!explicit_pad) {
    return BuiltStep{[runner, xp, wp, bp, z, y](StreamView s, void* ws) { return runner->Run(xp, wp, bp, z, y, ws, s); },
                     runner->workspace_bytes()};
  }
  const Shape in_shape = in.input(0)->shape;
  return BuiltStep{[runner, xp, wp, bp, z, y, in_shape, pad_begin, padded_shape, pad_bytes](StreamView s, void* ws) {
                     char* padded = static_cast<char*>(ws);
                     RETURN_IF_ERROR(PadConstant(xp, padded, sizeof(float), in_shape, pad_begin, padded_shape, 0, s));
                     return runner->Run(padded, wp, bp, z, y, padded + pad_bytes, s);
                   },
                   pad_bytes + runner->workspace_bytes()};
}

// BuildConv's convolution in a 16-bit plan: x, w, the bias and the residual as 16-bit operands
// (constants converted once), the padded input and the 16-bit result in the workspace, the result
// converted into y (float32, where the post ops find it).
StatusOr<BuiltStep> Conv16(StepInputs& in, std::shared_ptr<ConvRunner> runner, const ConvDesc& d, bool explicit_pad,
                           const std::vector<int64_t>& pad_begin, const Shape& padded_shape) {
  const DataType dt = Storage16(d.math);
  size_t ws = 0;
  ASSIGN_OR_RETURN(HalfOperand x, HalfOperand::Of(in, 0, dt, &ws));
  ASSIGN_OR_RETURN(HalfOperand w, HalfOperand::Of(in, 1, dt, &ws));
  std::optional<HalfOperand> bias, residual;
  if (d.has_bias) {
    ASSIGN_OR_RETURN(bias, HalfOperand::Of(in, 2, dt, &ws));
  }
  if (d.has_sum) {
    ASSIGN_OR_RETURN(residual, HalfOperand::Of(in, 3, dt, &ws));
  }
  const size_t padded = explicit_pad ? Reserve16(NumElements(padded_shape), &ws) : 0;
  const int64_t out_elements = NumElements(in.output(0)->shape);
  const size_t y16 = Reserve16(out_elements, &ws);
  const size_t runner_ws = ws;
  float* y = static_cast<float*>(in.output(0)->device);
  const Shape in_shape = in.input(0)->shape;
  return BuiltStep{[=](StreamView s, void* wsp) -> Status {
                     char* base = static_cast<char*>(wsp);
                     ASSIGN_OR_RETURN(const void* xp, x.Get(base, s));
                     ASSIGN_OR_RETURN(const void* wp, w.Get(base, s));
                     const void* bp = nullptr;
                     const void* zp = nullptr;
                     if (bias.has_value()) {
                       ASSIGN_OR_RETURN(bp, bias->Get(base, s));
                     }
                     if (residual.has_value()) {
                       ASSIGN_OR_RETURN(zp, residual->Get(base, s));
                     }
                     if (explicit_pad) {
                       RETURN_IF_ERROR(PadConstant(xp, base + padded, 2, in_shape, pad_begin, padded_shape, 0, s));
                       xp = base + padded;
                     }
                     RETURN_IF_ERROR(runner->Run(xp, wp, bp, zp, base + y16, base + runner_ws, s));
                     return ConvertToFloat(base + y16, dt, y, out_elements, s);
                   },
                   runner_ws + runner->workspace_bytes()};
}

}  // namespace

StatusOr<BuiltStep> BuildConv(StepInputs& in, bool fused) {
  const ir::Node& n = in.node();
  ASSIGN_OR_RETURN(ConvParts parts, ReadConv(in, false));
  ConvDesc& d = parts.desc;
  PlannedValue* out = in.output(0);
  const PlannedValue* x = in.input(0);
  ASSIGN_OR_RETURN(std::vector<PostOp> ops, detail::FusedPostOps(n, fused));
  // Asymmetric padding: pad the input into the workspace, then convolve without padding.
  const bool explicit_pad = d.pad_top != d.pad_bottom || d.pad_left != d.pad_right;
  Shape padded_shape = x->shape;
  std::vector<int64_t> pad_begin(x->shape.size(), 0);
  size_t pad_bytes = 0;
  if (explicit_pad) {
    if (parts.spatial == 2) {
      padded_shape[2] += d.pad_top + d.pad_bottom;
      pad_begin[2] = d.pad_top;
    }
    padded_shape.back() += d.pad_left + d.pad_right;
    pad_begin.back() = d.pad_left;
    d.in_h += d.pad_top + d.pad_bottom;
    d.in_w += d.pad_left + d.pad_right;
    d.pad_top = d.pad_bottom = d.pad_left = d.pad_right = 0;
    pad_bytes = AlignWorkspace(static_cast<size_t>(NumElements(padded_shape)) * sizeof(float));
  }
  const PlannedValue* bias = in.input(2);
  d.has_bias = bias != nullptr;
  // cuDNN takes a leading "sum" (the residual) and then ReLU; the rest runs as a chain.
  size_t consumed = 0, extra = 3;
  const void* z = nullptr;
  if (!ops.empty() && ops[0].kind == PostOp::Kind::kSum && in.num_inputs() > 3 && in.input(3) != nullptr &&
      in.input(3)->shape == out->shape) {
    RETURN_IF_ERROR(NeedFloat(in.input(3), n, "residual"));
    ASSIGN_OR_RETURN(z, in.DeviceInput(3));
    d.has_sum = true;
    consumed = 1;
    extra = 4;
  }
  if (consumed < ops.size() && ops[consumed].kind == PostOp::Kind::kRelu) {
    d.epilogue = Epilogue::kRelu;
    ++consumed;
  }
  ASSIGN_OR_RETURN(std::shared_ptr<ConvRunner> runner, in.conv(d));
  if (runner->out_h() != OutH(parts) || runner->out_w() != OutW(parts)) {
    return Internal("{}: cuDNN output {}x{} differs from the planned {}x{}", n.Describe(), runner->out_h(),
                    runner->out_w(), OutH(parts), OutW(parts));
  }
  if (bias != nullptr) RETURN_IF_ERROR(NeedFloat(bias, n, "B"));
  ASSIGN_OR_RETURN(BuiltStep conv, Is16Bit(d.math) ? Conv16(in, runner, d, explicit_pad, pad_begin, padded_shape)
                                                   : Conv32(in, runner, z, explicit_pad, pad_begin, padded_shape, pad_bytes));
  if (consumed == ops.size()) return conv;
  std::vector<PostOp> rest(ops.begin() + static_cast<std::ptrdiff_t>(consumed), ops.end());
  ASSIGN_OR_RETURN(BuiltStep post, PostOpsInPlace(in, std::move(rest), extra));
  return Sequence(std::move(conv), std::move(post));
}

StatusOr<BuiltStep> BuildConvTranspose(StepInputs& in) {
  const ir::Node& n = in.node();
  ASSIGN_OR_RETURN(ConvParts parts, ReadConv(in, true));
  ConvDesc& d = parts.desc;
  d.math = Float32Math(d.math);  // float32 operands (step_builders.h)
  PlannedValue* out = in.output(0);
  const int64_t oh = OutH(parts), ow = OutW(parts);
  // The uncropped output of each spatial dim is (in - 1) * stride + dilated kernel; ONNX keeps
  // [head, head + out) of it (past its end: zeros, from output_padding).
  const int64_t full_h = (d.in_h - 1) * d.stride_h + (d.kernel_h - 1) * d.dilation_h + 1;
  const int64_t full_w = (d.in_w - 1) * d.stride_w + (d.kernel_w - 1) * d.dilation_w + 1;
  const int64_t op_h = oh - (full_h - 2 * d.pad_top), op_w = ow - (full_w - 2 * d.pad_left);
  // cuDNN expresses it directly when the crop is symmetric and the rest is output padding below the
  // stride (cuDNN checks the shapes through the forward convolution, whose floor division absorbs
  // only that much; ONNX allows up to the dilation, which the crop path below handles).
  const bool direct = op_h >= 0 && op_w >= 0 && op_h < d.stride_h && op_w < d.stride_w;
  ASSIGN_OR_RETURN(const void* xp, in.DeviceInput(0));
  ASSIGN_OR_RETURN(const void* wp, in.DeviceInput(1));
  void* y = out->device;
  if (direct) {
    d.pad_bottom = d.pad_top;
    d.pad_right = d.pad_left;
    d.out_pad_h = op_h;
    d.out_pad_w = op_w;
    const void* bp = nullptr;
    if (in.input(2) != nullptr) {
      RETURN_IF_ERROR(NeedFloat(in.input(2), n, "B"));
      ASSIGN_OR_RETURN(bp, in.DeviceInput(2));
      d.has_bias = true;
    }
    ASSIGN_OR_RETURN(std::shared_ptr<ConvRunner> runner, in.conv(d));
    if (runner->out_h() != oh || runner->out_w() != ow) {
      return Internal("{}: cuDNN output {}x{} differs from the planned {}x{}", n.Describe(), runner->out_h(),
                      runner->out_w(), oh, ow);
    }
    return BuiltStep{[runner, xp, wp, bp, y](StreamView s, void* ws) { return runner->Run(xp, wp, bp, nullptr, y, ws, s); },
                     runner->workspace_bytes()};
  }
  // Uncropped output into the workspace, then crop (zeros past its end), then bias.
  const int64_t crop_top = parts.spatial == 2 ? parts.geo.pad_l[0] : 0;
  const int64_t crop_left = parts.geo.pad_l.back();
  d.pad_top = d.pad_bottom = d.pad_left = d.pad_right = 0;
  d.out_pad_h = d.out_pad_w = 0;
  ASSIGN_OR_RETURN(std::shared_ptr<ConvRunner> runner, in.conv(d));
  if (runner->out_h() != full_h || runner->out_w() != full_w) {
    return Internal("{}: cuDNN output {}x{} differs from the uncropped {}x{}", n.Describe(), runner->out_h(),
                    runner->out_w(), full_h, full_w);
  }
  Shape full_shape = out->shape;
  if (parts.spatial == 2) full_shape[2] = full_h;
  full_shape.back() = full_w;
  std::vector<int64_t> begin(full_shape.size(), 0);
  if (parts.spatial == 2) begin[2] = -crop_top;
  begin.back() = -crop_left;
  const size_t full_bytes = AlignWorkspace(static_cast<size_t>(NumElements(full_shape)) * sizeof(float));
  const Shape out_shape = out->shape;
  BuiltStep conv{[runner, xp, wp, y, full_shape, begin, out_shape, full_bytes](StreamView s, void* ws) {
                   char* full = static_cast<char*>(ws);
                   RETURN_IF_ERROR(runner->Run(xp, wp, nullptr, nullptr, full, full + full_bytes, s));
                   return PadConstant(full, y, sizeof(float), full_shape, begin, out_shape, 0, s);
                 },
                 full_bytes + runner->workspace_bytes()};
  ASSIGN_OR_RETURN(BuiltStep bias, AddBias(in));
  return Sequence(std::move(conv), std::move(bias));
}

}  // namespace gpuhive::cuda::executor::detail
