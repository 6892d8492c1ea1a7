// Device steps of the CUDA executor, one builder per operator family. Shapes were fixed by the
// plan (CPU kernels' Prepare); builders read attributes, check what the device path supports and
// capture resolved device pointers in the step. The data-movement builders are in
// steps_data_movement.cc.
#include "runtime/cuda/steps.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <numeric>
#include <optional>
#include <string>

#include "gpuhive/cuda_device.h"
#include "runtime/cuda/step_builders.h"

namespace gpuhive::cuda::executor {
namespace {

using detail::HostFloats;
using detail::HostInts;
using detail::NeedFloat;
using detail::NormAxis;
using detail::Prod;

// --- Elementwise -----------------------------------------------------------------------------

const std::map<std::string, PostOp::Kind>& UnaryOps() {
  static const auto* m = new std::map<std::string, PostOp::Kind>{
      {"Relu", PostOp::Kind::kRelu},         {"Sigmoid", PostOp::Kind::kSigmoid}, {"Tanh", PostOp::Kind::kTanh},
      {"Exp", PostOp::Kind::kExp},           {"Log", PostOp::Kind::kLog},         {"Sqrt", PostOp::Kind::kSqrt},
      {"Abs", PostOp::Kind::kAbs},           {"Neg", PostOp::Kind::kNeg},         {"HardSwish", PostOp::Kind::kHardSwish},
      {"LeakyRelu", PostOp::Kind::kLeakyRelu}, {"Elu", PostOp::Kind::kElu},       {"HardSigmoid", PostOp::Kind::kHardSigmoid},
      {"Clip", PostOp::Kind::kClip}};
  return *m;
}
const std::map<std::string, PostOp::Kind>& BinaryOps() {
  static const auto* m = new std::map<std::string, PostOp::Kind>{
      {"Add", PostOp::Kind::kAdd}, {"Sub", PostOp::Kind::kSub}, {"Mul", PostOp::Kind::kMul},
      {"Div", PostOp::Kind::kDiv}, {"Max", PostOp::Kind::kMax}, {"Min", PostOp::Kind::kMin}};
  return *m;
}

// Runs `ops` on input `first` (broadcast to the output) with operands from inputs [first_extra, ...).
StatusOr<BuiltStep> ChainStep(StepInputs& in, std::vector<PostOp> ops, size_t first, size_t first_extra) {
  const ir::Node& n = in.node();
  RETURN_IF_ERROR(NeedFloat(in.input(first), n, "input"));
  PlannedValue* out = in.output(0);
  RETURN_IF_ERROR(NeedFloat(out, n, "output"));
  ASSIGN_OR_RETURN(const void* x, in.DeviceInput(first));
  BroadcastOperand xo{static_cast<const float*>(x), in.input(first)->shape};
  std::vector<BroadcastOperand> extras;
  for (size_t i = first_extra; i < in.num_inputs(); ++i) {
    RETURN_IF_ERROR(NeedFloat(in.input(i), n, "operand"));
    ASSIGN_OR_RETURN(const void* p, in.DeviceInput(i));
    extras.push_back({static_cast<const float*>(p), in.input(i)->shape});
  }
  float* y = static_cast<float*>(out->device);
  Shape shape = out->shape;
  return BuiltStep{[ops = std::move(ops), xo, extras, y, shape](StreamView s, void*) {
                     return ElementwiseChain(ops, xo, extras, y, shape, s);
                   },
                   0};
}

StatusOr<BuiltStep> BuildUnary(StepInputs& in, PostOp::Kind kind) {
  const ir::Node& n = in.node();
  PostOp op{kind};
  if (kind == PostOp::Kind::kLeakyRelu) {
    ASSIGN_OR_RETURN(op.alpha, n.GetFloat("alpha", 0.01f));
  } else if (kind == PostOp::Kind::kElu) {
    ASSIGN_OR_RETURN(op.alpha, n.GetFloat("alpha", 1.f));
  } else if (kind == PostOp::Kind::kHardSigmoid) {
    ASSIGN_OR_RETURN(op.alpha, n.GetFloat("alpha", 0.2f));
    ASSIGN_OR_RETURN(op.beta, n.GetFloat("beta", 0.5f));
  } else if (kind == PostOp::Kind::kClip) {
    op.alpha = -3.402823466e38f;
    op.beta = 3.402823466e38f;
    if (n.opset < 11) {
      ASSIGN_OR_RETURN(op.alpha, n.GetFloat("min", op.alpha));
      ASSIGN_OR_RETURN(op.beta, n.GetFloat("max", op.beta));
    } else {
      for (size_t i = 1; i <= 2; ++i) {
        if (in.input(i) == nullptr) continue;
        ASSIGN_OR_RETURN(std::vector<float> v, HostFloats(in.input(i), n, i == 1 ? "min" : "max"));
        if (v.size() != 1) return InvalidArgument("{}: min/max must be scalars", n.Describe());
        (i == 1 ? op.alpha : op.beta) = v[0];
      }
    }
  }
  return ChainStep(in, {op}, 0, in.num_inputs());
}

StatusOr<BuiltStep> BuildFusedElementwise(StepInputs& in) {
  const ir::Node& n = in.node();
  ASSIGN_OR_RETURN(std::vector<std::string> texts, n.GetStrings("post_ops"));
  ASSIGN_OR_RETURN(std::vector<PostOp> ops, ParsePostOps(texts));
  return ChainStep(in, std::move(ops), 0, 1);
}

}  // namespace

namespace detail {

// Applies post ops (after the primary result is in the output) in place, their operands being the
// node's inputs from `first_extra` on.
StatusOr<BuiltStep> PostOpsInPlace(StepInputs& in, std::vector<PostOp> ops, size_t first_extra) {
  PlannedValue* out = in.output(0);
  std::vector<BroadcastOperand> extras;
  for (size_t i = first_extra; i < in.num_inputs(); ++i) {
    RETURN_IF_ERROR(NeedFloat(in.input(i), in.node(), "post-op operand"));
    ASSIGN_OR_RETURN(const void* p, in.DeviceInput(i));
    extras.push_back({static_cast<const float*>(p), in.input(i)->shape});
  }
  float* y = static_cast<float*>(out->device);
  Shape shape = out->shape;
  BroadcastOperand self{y, shape};
  return BuiltStep{[ops = std::move(ops), self, extras, y, shape](StreamView s, void*) {
                     return ElementwiseChain(ops, self, extras, y, shape, s);
                   },
                   0};
}

BuiltStep Sequence(BuiltStep a, BuiltStep b) {
  size_t ws = std::max(a.workspace_bytes, b.workspace_bytes);
  return BuiltStep{[a = std::move(a.run), b = std::move(b.run)](StreamView s, void* w) {
                     RETURN_IF_ERROR(a(s, w));
                     return b(s, w);
                   },
                   ws};
}

}  // namespace detail

namespace {

using detail::PostOpsInPlace;
using detail::Sequence;

// --- MatMul / Gemm ---------------------------------------------------------------------------

struct MatmulPlan {
  MatmulDesc desc;
  const void* a = nullptr;
  const void* b = nullptr;
  const void* bias = nullptr;
  // The node inputs behind a, b and bias (a 16-bit plan converts them); bias_input when bias is set.
  size_t a_input = 0, b_input = 1, bias_input = 0;
};

// Input i as a float32 device operand of a product; null in a 16-bit plan, whose step converts
// its inputs itself (Matmul16Step) and must not upload float32 copies of constant weights.
StatusOr<const void*> Float32Operand(StepInputs& in, size_t i) {
  if (detail::Is16Bit(in.math())) return static_cast<const void*>(nullptr);
  return in.DeviceInput(i);
}

// A 16-bit plan's product: A, B and the bias as 16-bit operands, D in the workspace (starting as
// y's float32 contents when beta accumulates onto them), converted into y after the product.
StatusOr<BuiltStep> Matmul16Step(StepInputs& in, const MatmulPlan& p, size_t mm_ws) {
  using detail::HalfOperand;
  const DataType dt = detail::Storage16(p.desc.math);
  size_t ws = 0;
  ASSIGN_OR_RETURN(HalfOperand a, HalfOperand::Of(in, p.a_input, dt, &ws));
  ASSIGN_OR_RETURN(HalfOperand b, HalfOperand::Of(in, p.b_input, dt, &ws));
  std::optional<HalfOperand> bias;
  if (p.desc.has_bias) {
    ASSIGN_OR_RETURN(bias, HalfOperand::Of(in, p.bias_input, dt, &ws));
  }
  const int64_t d_elements = NumElements(in.output(0)->shape);
  const size_t d16 = detail::Reserve16(d_elements, &ws);
  const size_t runner_ws = ws;
  MatmulRunner* runner = &in.matmul();
  float* y = static_cast<float*>(in.output(0)->device);
  const bool accumulate = p.desc.beta != 0.f;
  const MatmulDesc desc = p.desc;
  return BuiltStep{[=](StreamView s, void* w) -> Status {
                     char* base = static_cast<char*>(w);
                     ASSIGN_OR_RETURN(const void* ap, a.Get(base, s));
                     ASSIGN_OR_RETURN(const void* bp, b.Get(base, s));
                     const void* biasp = nullptr;
                     if (bias.has_value()) {
                       ASSIGN_OR_RETURN(biasp, bias->Get(base, s));
                     }
                     if (accumulate) RETURN_IF_ERROR(ConvertFromFloat(y, base + d16, dt, d_elements, s));
                     RETURN_IF_ERROR(runner->Run(desc, ap, bp, biasp, base + d16, base + runner_ws, mm_ws, s));
                     return ConvertToFloat(base + d16, dt, y, d_elements, s);
                   },
                   runner_ws + mm_ws};
}

StatusOr<BuiltStep> MatmulStep(StepInputs& in, const MatmulPlan& p, size_t ws) {
  if (detail::Is16Bit(p.desc.math)) return Matmul16Step(in, p, ws);
  MatmulRunner* runner = &in.matmul();
  void* y = in.output(0)->device;
  return BuiltStep{[runner, p, y, ws](StreamView s, void* w) { return runner->Run(p.desc, p.a, p.b, p.bias, y, w, ws, s); },
                   ws};
}

// Leading post ops cuBLASLt can take: "add" of an [n] vector as bias, then ReLU or tanh-GELU.
size_t TakeEpilogue(StepInputs& in, const std::vector<PostOp>& ops, size_t extra, MatmulPlan* p, bool allow_bias,
                    bool* bias_taken, Status* st) {
  size_t consumed = 0;
  int64_t n = p->desc.n;
  if (allow_bias && !ops.empty() && ops[0].kind == PostOp::Kind::kAdd && extra < in.num_inputs() &&
      in.input(extra) != nullptr && in.input(extra)->dtype == DataType::kFloat32 &&
      NumElements(in.input(extra)->shape) == n && !in.input(extra)->shape.empty() && in.input(extra)->shape.back() == n) {
    StatusOr<const void*> b = Float32Operand(in, extra);
    if (!b.ok()) {
      *st = b.status();
      return 0;
    }
    p->bias = *b;
    p->bias_input = extra;
    p->desc.has_bias = true;
    *bias_taken = true;
    consumed = 1;
  }
  if (consumed < ops.size() && ops[consumed].kind == PostOp::Kind::kRelu) {
    p->desc.epilogue = Epilogue::kRelu;
    ++consumed;
  } else if (consumed < ops.size() && ops[consumed].kind == PostOp::Kind::kGeluTanh) {
    p->desc.epilogue = Epilogue::kGelu;
    ++consumed;
  }
  return consumed;
}

StatusOr<BuiltStep> FinishMatmul(StepInputs& in, MatmulPlan p, std::vector<PostOp> ops, size_t extra,
                                 std::optional<BuiltStep> pre) {
  Status st;
  bool bias_taken = false;
  const MatmulPlan plain = p;
  size_t consumed = TakeEpilogue(in, ops, extra, &p, !p.desc.has_bias && p.desc.beta == 0.f, &bias_taken, &st);
  RETURN_IF_ERROR(st);
  StatusOr<size_t> ws_or = in.matmul().WorkspaceBytes(p.desc);
  if (!ws_or.ok() && ws_or.status().code() == StatusCode::kUnimplemented && consumed > 0) {
    // No cuBLASLt kernel with this epilogue for this shape: plain matmul, post ops as their own step.
    p = plain;
    consumed = 0;
    bias_taken = false;
    ws_or = in.matmul().WorkspaceBytes(p.desc);
  }
  if (!ws_or.ok()) return ws_or.status();
  size_t ws = *ws_or;
  if (bias_taken) ++extra;  // that operand is consumed by the epilogue
  ASSIGN_OR_RETURN(BuiltStep step, MatmulStep(in, p, ws));
  if (pre.has_value()) step = Sequence(std::move(*pre), std::move(step));
  if (consumed == ops.size()) return step;
  std::vector<PostOp> rest(ops.begin() + static_cast<std::ptrdiff_t>(consumed), ops.end());
  ASSIGN_OR_RETURN(BuiltStep post, PostOpsInPlace(in, std::move(rest), extra));
  return Sequence(std::move(step), std::move(post));
}

// MatMul whose batch dims broadcast both ways ([2, 1, m, k] x [1, 3, k, n]): each operand that
// needs it is expanded to the output's batch shape in the step's workspace, then one strided
// batched GEMM; post ops run after it. `as`/`bs` are the operands' shapes with 1-D promoted.
StatusOr<BuiltStep> BuildBroadcastMatMul(StepInputs& in, bool fused, Shape as, Shape bs) {
  const ir::Node& n = in.node();
  const size_t r = std::max(as.size(), bs.size());
  while (as.size() < r) as.insert(as.begin(), 1);
  while (bs.size() < r) bs.insert(bs.begin(), 1);
  Shape a_full = as, b_full = bs;
  for (size_t i = 0; i + 2 < r; ++i) {
    if (as[i] != bs[i] && as[i] != 1 && bs[i] != 1) {
      return InvalidArgument("{}: batch dims do not broadcast: {} x {}", n.Describe(), ShapeToString(as),
                             ShapeToString(bs));
    }
    a_full[i] = b_full[i] = std::max(as[i], bs[i]);
  }
  MatmulDesc desc;
  desc.m = as[r - 2], desc.k = as[r - 1], desc.n = bs[r - 1], desc.math = detail::Float32Math(in.math());
  desc.batch = Prod(a_full, 0, r - 2);
  desc.stride_a = desc.m * desc.k, desc.stride_b = desc.k * desc.n, desc.stride_d = desc.m * desc.n;
  if (NumElements(in.output(0)->shape) != desc.batch * desc.m * desc.n) {
    return Internal("{}: planned output {} does not match the matmul", n.Describe(), ShapeToString(in.output(0)->shape));
  }
  ASSIGN_OR_RETURN(size_t mm_ws, in.matmul().WorkspaceBytes(desc));
  const bool expand_a = as != a_full, expand_b = bs != b_full;
  const size_t a_bytes = expand_a ? detail::AlignWorkspace(static_cast<size_t>(NumElements(a_full)) * sizeof(float)) : 0;
  const size_t b_bytes = expand_b ? detail::AlignWorkspace(static_cast<size_t>(NumElements(b_full)) * sizeof(float)) : 0;
  ASSIGN_OR_RETURN(const void* ap, in.DeviceInput(0));
  ASSIGN_OR_RETURN(const void* bp, in.DeviceInput(1));
  MatmulRunner* runner = &in.matmul();
  void* y = in.output(0)->device;
  BuiltStep step{[=](StreamView s, void* ws) -> Status {
                   char* base = static_cast<char*>(ws);
                   const void* a = ap;
                   const void* b = bp;
                   if (expand_a) {
                     RETURN_IF_ERROR(BroadcastTo(ap, base, sizeof(float), as, a_full, s));
                     a = base;
                   }
                   if (expand_b) {
                     RETURN_IF_ERROR(BroadcastTo(bp, base + a_bytes, sizeof(float), bs, b_full, s));
                     b = base + a_bytes;
                   }
                   return runner->Run(desc, a, b, nullptr, y, base + a_bytes + b_bytes, mm_ws, s);
                 },
                 a_bytes + b_bytes + mm_ws};
  ASSIGN_OR_RETURN(std::vector<PostOp> ops, detail::FusedPostOps(n, fused));
  if (ops.empty()) return step;
  ASSIGN_OR_RETURN(BuiltStep post, PostOpsInPlace(in, std::move(ops), 2));
  return Sequence(std::move(step), std::move(post));
}

StatusOr<BuiltStep> BuildMatMul(StepInputs& in, bool fused) {
  const ir::Node& n = in.node();
  const PlannedValue* a = in.input(0);
  const PlannedValue* b = in.input(1);
  RETURN_IF_ERROR(NeedFloat(a, n, "A"));
  RETURN_IF_ERROR(NeedFloat(b, n, "B"));
  Shape as = a->shape, bs = b->shape;
  if (as.size() == 1) as.insert(as.begin(), 1);
  if (bs.size() == 1) bs.push_back(1);
  if (as.size() < 2 || bs.size() < 2) return InvalidArgument("{}: bad ranks", n.Describe());
  MatmulPlan p;
  p.desc.m = as[as.size() - 2];
  p.desc.k = as.back();
  p.desc.n = bs.back();
  p.desc.math = in.math();
  if (bs[bs.size() - 2] != p.desc.k) return InvalidArgument("{}: inner dimensions differ", n.Describe());
  int64_t batch_a = Prod(as, 0, as.size() - 2), batch_b = Prod(bs, 0, bs.size() - 2);
  if (batch_b == 1) {
    // [.., m, k] x [k, n]: one GEMM over all rows of A.
    p.desc.m *= batch_a;
  } else if (batch_a == 1 || Shape(as.begin(), as.end() - 2) == Shape(bs.begin(), bs.end() - 2)) {
    p.desc.batch = batch_b;
    p.desc.stride_a = batch_a == 1 ? 0 : p.desc.m * p.desc.k;
    p.desc.stride_b = p.desc.k * p.desc.n;
    p.desc.stride_d = p.desc.m * p.desc.n;
  } else {
    return BuildBroadcastMatMul(in, fused, as, bs);
  }
  if (NumElements(in.output(0)->shape) != p.desc.batch * p.desc.m * p.desc.n) {
    return Internal("{}: planned output {} does not match the matmul", n.Describe(), ShapeToString(in.output(0)->shape));
  }
  ASSIGN_OR_RETURN(p.a, Float32Operand(in, 0));
  ASSIGN_OR_RETURN(p.b, Float32Operand(in, 1));
  ASSIGN_OR_RETURN(std::vector<PostOp> ops, detail::FusedPostOps(n, fused));
  return FinishMatmul(in, p, std::move(ops), 2, std::nullopt);
}

StatusOr<BuiltStep> BuildGemm(StepInputs& in, bool fused) {
  const ir::Node& n = in.node();
  const PlannedValue* a = in.input(0);
  const PlannedValue* b = in.input(1);
  RETURN_IF_ERROR(NeedFloat(a, n, "A"));
  RETURN_IF_ERROR(NeedFloat(b, n, "B"));
  if (a->shape.size() != 2 || b->shape.size() != 2) return InvalidArgument("{}: Gemm needs 2-D A and B", n.Describe());
  ASSIGN_OR_RETURN(int64_t ta, n.GetInt("transA", 0));
  ASSIGN_OR_RETURN(int64_t tb, n.GetInt("transB", 0));
  ASSIGN_OR_RETURN(float alpha, n.GetFloat("alpha", 1.f));
  ASSIGN_OR_RETURN(float beta, n.GetFloat("beta", 1.f));
  MatmulPlan p;
  p.desc.trans_a = ta != 0;
  p.desc.trans_b = tb != 0;
  p.desc.m = ta ? a->shape[1] : a->shape[0];
  p.desc.k = ta ? a->shape[0] : a->shape[1];
  p.desc.n = tb ? b->shape[0] : b->shape[1];
  p.desc.alpha = alpha;
  p.desc.math = in.math();
  ASSIGN_OR_RETURN(p.a, Float32Operand(in, 0));
  ASSIGN_OR_RETURN(p.b, Float32Operand(in, 1));
  std::optional<BuiltStep> pre;
  const PlannedValue* c = in.input(2);
  if (c != nullptr && beta != 0.f) {
    RETURN_IF_ERROR(NeedFloat(c, n, "C"));
    if (beta == 1.f && alpha == 1.f && NumElements(c->shape) == p.desc.n && !c->shape.empty() &&
        c->shape.back() == p.desc.n) {
      ASSIGN_OR_RETURN(p.bias, Float32Operand(in, 2));
      p.bias_input = 2;
      p.desc.has_bias = true;
    } else {
      ASSIGN_OR_RETURN(const void* cp, in.DeviceInput(2));
      // D starts as C broadcast to [m, n] and the product accumulates onto beta * D.
      p.desc.beta = beta;
      float* y = static_cast<float*>(in.output(0)->device);
      Shape shape = in.output(0)->shape;
      BroadcastOperand co{static_cast<const float*>(cp), c->shape};
      pre = BuiltStep{[co, y, shape](StreamView s, void*) { return ElementwiseChain({}, co, {}, y, shape, s); }, 0};
    }
  }
  ASSIGN_OR_RETURN(std::vector<PostOp> ops, detail::FusedPostOps(n, fused));
  return FinishMatmul(in, p, std::move(ops), 3, std::move(pre));
}

// --- Normalization, reductions, pooling ------------------------------------------------------

StatusOr<BuiltStep> BuildSoftmax(StepInputs& in, bool log) {
  const ir::Node& n = in.node();
  const PlannedValue* x = in.input(0);
  RETURN_IF_ERROR(NeedFloat(x, n, "input"));
  ASSIGN_OR_RETURN(int64_t axis_attr, n.GetInt("axis", n.opset < 13 ? 1 : -1));
  ASSIGN_OR_RETURN(int64_t axis, NormAxis(axis_attr, x->shape.size(), n));
  size_t ax = static_cast<size_t>(axis);
  int64_t outer = Prod(x->shape, 0, ax), dim, inner;
  if (n.opset < 13) {
    dim = Prod(x->shape, ax, x->shape.size());
    inner = 1;
  } else {
    dim = x->shape.empty() ? 1 : x->shape[ax];
    inner = Prod(x->shape, ax + 1, x->shape.size());
  }
  ASSIGN_OR_RETURN(const void* xp, in.DeviceInput(0));
  float* y = static_cast<float*>(in.output(0)->device);
  return BuiltStep{[xp, y, outer, dim, inner, log](StreamView s, void*) {
                     return Softmax(static_cast<const float*>(xp), y, outer, dim, inner, log, s);
                   },
                   0};
}

StatusOr<BuiltStep> BuildLayerNorm(StepInputs& in) {
  const ir::Node& n = in.node();
  const PlannedValue* x = in.input(0);
  RETURN_IF_ERROR(NeedFloat(x, n, "X"));
  RETURN_IF_ERROR(NeedFloat(in.input(1), n, "Scale"));
  if (in.output_used(1) || in.output_used(2)) {
    return Unimplemented("{}: Mean/InvStdDev outputs are not produced on CUDA", n.Describe());
  }
  ASSIGN_OR_RETURN(int64_t axis_attr, n.GetInt("axis", -1));
  ASSIGN_OR_RETURN(float eps, n.GetFloat("epsilon", 1e-5f));
  ASSIGN_OR_RETURN(int64_t axis, NormAxis(axis_attr, x->shape.size(), n));
  int64_t rows = Prod(x->shape, 0, static_cast<size_t>(axis));
  int64_t cols = Prod(x->shape, static_cast<size_t>(axis), x->shape.size());
  if (NumElements(in.input(1)->shape) != cols ||
      (in.input(2) != nullptr && NumElements(in.input(2)->shape) != cols)) {
    return Unimplemented("{}: broadcast Scale/B shapes are not supported on CUDA", n.Describe());
  }
  ASSIGN_OR_RETURN(const void* xp, in.DeviceInput(0));
  ASSIGN_OR_RETURN(const void* sp, in.DeviceInput(1));
  const void* bp = nullptr;
  if (in.input(2) != nullptr) {
    RETURN_IF_ERROR(NeedFloat(in.input(2), n, "B"));
    ASSIGN_OR_RETURN(bp, in.DeviceInput(2));
  }
  float* y = static_cast<float*>(in.output(0)->device);
  return BuiltStep{[xp, sp, bp, y, rows, cols, eps](StreamView s, void*) {
                     return LayerNorm(static_cast<const float*>(xp), static_cast<const float*>(sp),
                                      static_cast<const float*>(bp), y, rows, cols, eps, s);
                   },
                   0};
}

StatusOr<BuiltStep> ReduceStep(StepInputs& in, ReduceKind kind, std::vector<int64_t> axes) {
  const ir::Node& n = in.node();
  const PlannedValue* x = in.input(0);
  RETURN_IF_ERROR(NeedFloat(x, n, "data"));
  size_t r = x->shape.size();
  for (int64_t& a : axes) {
    ASSIGN_OR_RETURN(a, NormAxis(a, r, n));
  }
  std::sort(axes.begin(), axes.end());
  axes.erase(std::unique(axes.begin(), axes.end()), axes.end());
  if (axes.empty()) {
    for (size_t i = 0; i < r; ++i) axes.push_back(static_cast<int64_t>(i));
  }
  for (size_t i = 1; i < axes.size(); ++i) {
    if (axes[i] != axes[i - 1] + 1) {
      return Unimplemented("{}: reducing non-adjacent axes is not supported on CUDA", n.Describe());
    }
  }
  size_t first = static_cast<size_t>(axes.front()), last = static_cast<size_t>(axes.back()) + 1;
  int64_t outer = Prod(x->shape, 0, first), dim = Prod(x->shape, first, last), inner = Prod(x->shape, last, r);
  if (dim == 0) return Unimplemented("{}: reduction over an empty axis on CUDA", n.Describe());
  ASSIGN_OR_RETURN(const void* xp, in.DeviceInput(0));
  float* y = static_cast<float*>(in.output(0)->device);
  return BuiltStep{[kind, xp, y, outer, dim, inner](StreamView s, void*) {
                     return Reduce(kind, static_cast<const float*>(xp), y, outer, dim, inner, s);
                   },
                   0};
}

StatusOr<BuiltStep> BuildReduce(StepInputs& in, ReduceKind kind) {
  const ir::Node& n = in.node();
  std::vector<int64_t> axes;
  bool axes_as_input = (n.op_type == "ReduceSum" && n.opset >= 13) || n.opset >= 18;
  if (axes_as_input) {
    if (in.num_inputs() > 1 && in.input(1) != nullptr) {
      ASSIGN_OR_RETURN(axes, HostInts(in.input(1), n, "axes"));
    }
    ASSIGN_OR_RETURN(int64_t noop, n.GetInt("noop_with_empty_axes", 0));
    if (axes.empty() && noop != 0) {
      // Identity: the planned output has the input's shape.
      ASSIGN_OR_RETURN(const void* xp, in.DeviceInput(0));
      void* y = in.output(0)->device;
      size_t bytes = in.output(0)->shape.empty() ? 4 : static_cast<size_t>(NumElements(in.output(0)->shape)) * 4;
      return BuiltStep{[xp, y, bytes](StreamView s, void*) { return CopyDeviceToDeviceAsync(y, xp, bytes, s); }, 0};
    }
  } else {
    ASSIGN_OR_RETURN(axes, n.GetInts("axes", std::vector<int64_t>{}));
  }
  return ReduceStep(in, kind, std::move(axes));
}

StatusOr<BuiltStep> BuildGlobalPool(StepInputs& in, ReduceKind kind) {
  const PlannedValue* x = in.input(0);
  RETURN_IF_ERROR(NeedFloat(x, in.node(), "X"));
  std::vector<int64_t> axes;
  for (size_t i = 2; i < x->shape.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  if (axes.empty()) return Unimplemented("{}: global pooling of a rank-2 tensor", in.node().Describe());
  return ReduceStep(in, kind, std::move(axes));
}

StatusOr<BuiltStep> BuildPool(StepInputs& in, PoolKind kind) {
  const ir::Node& n = in.node();
  const PlannedValue* x = in.input(0);
  RETURN_IF_ERROR(NeedFloat(x, n, "X"));
  if (in.output_used(1)) return Unimplemented("{}: MaxPool Indices are not produced on CUDA", n.Describe());
  size_t rank = x->shape.size();
  if (rank != 3 && rank != 4) return Unimplemented("{}: only 1-D and 2-D pooling run on CUDA", n.Describe());
  size_t sp = rank - 2;
  ASSIGN_OR_RETURN(std::string auto_pad, n.GetString("auto_pad", "NOTSET"));
  if (auto_pad != "NOTSET" && auto_pad != "VALID") {
    return Unimplemented("{}: auto_pad {} pooling is not supported on CUDA", n.Describe(), auto_pad);
  }
  ASSIGN_OR_RETURN(std::vector<int64_t> k, n.GetInts("kernel_shape"));
  ASSIGN_OR_RETURN(std::vector<int64_t> strides, n.GetInts("strides", std::vector<int64_t>(sp, 1)));
  ASSIGN_OR_RETURN(std::vector<int64_t> dil, n.GetInts("dilations", std::vector<int64_t>(sp, 1)));
  ASSIGN_OR_RETURN(std::vector<int64_t> pads, n.GetInts("pads", std::vector<int64_t>(2 * sp, 0)));
  ASSIGN_OR_RETURN(int64_t cip, n.GetInt("count_include_pad", 0));
  if (auto_pad == "VALID") std::fill(pads.begin(), pads.end(), 0);
  if (k.size() != sp || strides.size() != sp || dil.size() != sp || pads.size() != 2 * sp) {
    return InvalidArgument("{}: pooling attributes do not match the spatial rank", n.Describe());
  }
  if (cip != 0 && (pads[0] != pads[sp] || (sp == 2 && pads[1] != pads[3]))) {
    return Unimplemented("{}: count_include_pad with asymmetric pads on CUDA", n.Describe());
  }
  const Shape& os = in.output(0)->shape;
  Pool2dParams p;
  p.n = x->shape[0];
  p.c = x->shape[1];
  p.kind = kind;
  p.count_include_pad = cip != 0;
  if (sp == 2) {
    p.in_h = x->shape[2], p.in_w = x->shape[3], p.out_h = os[2], p.out_w = os[3];
    p.kernel_h = k[0], p.kernel_w = k[1], p.stride_h = strides[0], p.stride_w = strides[1];
    p.dilation_h = dil[0], p.dilation_w = dil[1], p.pad_top = pads[0], p.pad_left = pads[1];
  } else {
    p.in_h = 1, p.in_w = x->shape[2], p.out_h = 1, p.out_w = os[2];
    p.kernel_w = k[0], p.stride_w = strides[0], p.dilation_w = dil[0], p.pad_left = pads[0];
  }
  ASSIGN_OR_RETURN(const void* xp, in.DeviceInput(0));
  float* y = static_cast<float*>(in.output(0)->device);
  return BuiltStep{[xp, y, p](StreamView s, void*) { return Pool2d(static_cast<const float*>(xp), y, p, s); }, 0};
}

// --- Pointwise ops outside the float chain: Erf, Pow, comparisons, Not, Where -----------------

const std::map<std::string, PointwiseOp>& PointwiseOps() {
  static const auto* m = new std::map<std::string, PointwiseOp>{
      {"Erf", PointwiseOp::kErf},         {"Pow", PointwiseOp::kPow}, {"Equal", PointwiseOp::kEqual},
      {"Less", PointwiseOp::kLess},       {"Greater", PointwiseOp::kGreater}, {"Not", PointwiseOp::kNot},
      {"Where", PointwiseOp::kWhere}};
  return *m;
}

StatusOr<BuiltStep> BuildPointwise(StepInputs& in, PointwiseOp op) {
  const ir::Node& n = in.node();
  std::vector<TypedOperand> operands;
  for (size_t i = 0; i < in.num_inputs(); ++i) {
    const PlannedValue* v = in.input(i);
    if (v == nullptr) return InvalidArgument("{}: input {} is missing", n.Describe(), i);
    operands.push_back({nullptr, v->dtype, v->shape});
  }
  const Shape shape = in.output(0)->shape;
  // The kernel's own rules, checked while planning.
  RETURN_IF_ERROR(CheckPointwise(op, operands, shape).WithContext(n.Describe()));
  for (size_t i = 0; i < operands.size(); ++i) {
    ASSIGN_OR_RETURN(operands[i].data, in.DeviceInput(i));
  }
  void* y = in.output(0)->device;
  return BuiltStep{[op, operands, y, shape](StreamView s, void*) { return Pointwise(op, operands, y, shape, s); }, 0};
}

}  // namespace

StatusOr<BuiltStep> BuildStep(StepInputs& in) {
  const ir::Node& n = in.node();
  const std::string& op = n.op_type;
  if (n.domain == "gpuhive") {
    if (op == "FusedConv") return detail::BuildConv(in, true);
    if (op == "FusedMatMul") return BuildMatMul(in, true);
    if (op == "FusedGemm") return BuildGemm(in, true);
    if (op == "Elementwise") return BuildFusedElementwise(in);
    return Unimplemented("{}: no CUDA implementation", n.Describe());
  }
  if (!n.domain.empty() && n.domain != "ai.onnx") return Unimplemented("{}: no CUDA implementation", n.Describe());
  if (IsAliasOp(n)) {
    if (op == "Dropout" && in.output_used(1)) return Unimplemented("{}: Dropout mask on CUDA", n.Describe());
    return detail::BuildAlias(in);
  }
  if (op == "Cast") {
    if (in.input(0)->dtype == in.output(0)->dtype) return detail::BuildAlias(in);
    ASSIGN_OR_RETURN(const void* xp, in.DeviceInput(0));
    DataType src = in.input(0)->dtype, dst = in.output(0)->dtype;
    void* y = in.output(0)->device;
    int64_t count = NumElements(in.output(0)->shape);
    return BuiltStep{[xp, src, y, dst, count](StreamView s, void*) { return Cast(xp, src, y, dst, count, s); }, 0};
  }
  if (auto it = UnaryOps().find(op); it != UnaryOps().end()) return BuildUnary(in, it->second);
  if (auto it = BinaryOps().find(op); it != BinaryOps().end()) {
    if (in.num_inputs() != 2) return Unimplemented("{}: variadic {} on CUDA", n.Describe(), op);
    return ChainStep(in, {PostOp{it->second}}, 0, 1);
  }
  if (auto it = PointwiseOps().find(op); it != PointwiseOps().end()) return BuildPointwise(in, it->second);
  if (op == "Conv") return detail::BuildConv(in, false);
  if (op == "ConvTranspose") return detail::BuildConvTranspose(in);
  if (op == "LSTM") return detail::BuildLstm(in);
  if (op == "GRU") return detail::BuildGru(in);
  if (op == "MatMul") return BuildMatMul(in, false);
  if (op == "Gemm") return BuildGemm(in, false);
  if (op == "Softmax") return BuildSoftmax(in, false);
  if (op == "LogSoftmax") return BuildSoftmax(in, true);
  if (op == "LayerNormalization") return BuildLayerNorm(in);
  if (op == "ReduceSum") return BuildReduce(in, ReduceKind::kSum);
  if (op == "ReduceMean") return BuildReduce(in, ReduceKind::kMean);
  if (op == "ReduceMax") return BuildReduce(in, ReduceKind::kMax);
  if (op == "ReduceMin") return BuildReduce(in, ReduceKind::kMin);
  if (op == "GlobalAveragePool") return BuildGlobalPool(in, ReduceKind::kMean);
  if (op == "GlobalMaxPool") return BuildGlobalPool(in, ReduceKind::kMax);
  if (op == "MaxPool") return BuildPool(in, PoolKind::kMax);
  if (op == "AveragePool") return BuildPool(in, PoolKind::kAverage);
  if (op == "Transpose") return detail::BuildTranspose(in);
  if (op == "Slice") return detail::BuildSlice(in);
  if (op == "Concat") return detail::BuildConcat(in);
  if (op == "Gather") return detail::BuildGather(in);
  if (op == "Resize") return detail::BuildResize(in);
  if (op == "Expand") return detail::BuildExpand(in);
  if (op == "Split") return detail::BuildSplit(in);
  if (op == "Pad") return detail::BuildPad(in);
  return Unimplemented("{}: no CUDA implementation", n.Describe());
}

}  // namespace gpuhive::cuda::executor
