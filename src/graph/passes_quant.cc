// Quantized (QDQ) convolutions and matrix multiplications into one int8 node. ONNX's QDQ form writes a quantized convolution as
// float operators between DequantizeLinear and QuantizeLinear:
//
//   xq -> DequantizeLinear(x_scale, x_zero)       -> Conv input 0
//   Wq -> DequantizeLinear(w_scale, axis 0)       -> Conv input 1
//   [Bq -> DequantizeLinear(x_scale * w_scale), or a float32 B -> Conv input 2]
//   Conv [-> Relu] [-> QuantizeLinear(y_scale, y_zero) -> yq]
//
// FuseQuantizedConv replaces the Conv (with its Relu and QuantizeLinear when they are the only
// readers) by gpuhive.QConv(xq, x_scale, x_zero, Wq, w_scale, w_zero, y_scale, y_zero, B), which the
// CPU backend runs on oneDNN's int8 primitives (kernels/cpu/onednn/qconv.cc). Without a
// QuantizeLinear after it the node outputs float32. The DequantizeLinear nodes stay for any other
// reader and are otherwise removed as dead, so the weights stay int8 (never folded into float32).
// MatMul by constant 2-D weights and Gemm (transA 0, alpha 1, beta 1) become gpuhive.QMatMul the
// same way (kernels/cpu/onednn/qmatmul.cc), their weights per-channel along N.
#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "gpuhive/passes.h"
#include "graph/pass_util.h"

namespace gpuhive {
namespace {

using pass_detail::IsOp;
using pass_detail::SoleConsumer;

bool IsInt8(DataType t) { return t == DataType::kUint8 || t == DataType::kInt8; }

// A constant with one element (any rank) or, when m > 0, a 1-D constant of m elements.
bool SmallConst(const ir::Value* v, int64_t m) {
  if (v == nullptr || !v->is_constant()) return false;
  const Shape& s = v->constant->shape();
  return (v->constant->num_elements() == 1 && s.size() <= 1) || (m > 0 && s.size() == 1 && s[0] == m);
}

// A DequantizeLinear whose data is int8/uint8 and whose scale (and zero point) are constants: one
// value, or (per_axis_m > 0) m values along axis `want_axis` (the output channels).
ir::Node* QuantizedSource(const ir::Value* v, int64_t per_axis_m, bool data_constant, int64_t want_axis = 0) {
  ir::Node* dq = v != nullptr ? v->producer : nullptr;
  if (!IsOp(dq, "DequantizeLinear") || dq->inputs.size() < 2) return nullptr;
  const ir::Value* data = dq->input(0);
  if (data == nullptr || !IsInt8(data->dtype) || (data_constant && !data->is_constant())) return nullptr;
  const ir::Value* scale = dq->input(1);
  if (scale->dtype != DataType::kFloat32 || !SmallConst(scale, per_axis_m)) return nullptr;
  if (dq->input(2) != nullptr && !SmallConst(dq->input(2), per_axis_m)) return nullptr;
  if (scale->constant->num_elements() > 1) {  // per axis: the axis must be the output channels
    auto axis = dq->GetInt("axis", 1);
    const int64_t rank = data->constant ? static_cast<int64_t>(data->constant->shape().size()) : -1;
    if (!axis.ok() || (*axis != want_axis && *axis != want_axis - rank)) return nullptr;
  }
  return dq;
}

// A QuantizeLinear reading `v` (its only reader) with constant one-value scale and zero point.
ir::Node* QuantizedSink(const ir::Value* v) {
  ir::Node* q = SoleConsumer(v);
  if (!IsOp(q, "QuantizeLinear") || q->input(0) != v || q->inputs.size() < 2) return nullptr;
  if (!SmallConst(q->input(1), 0) || q->input(1)->dtype != DataType::kFloat32) return nullptr;
  if (q->input(2) != nullptr && (!SmallConst(q->input(2), 0) || !IsInt8(q->input(2)->dtype))) return nullptr;
  if (q->output(0) == nullptr || !IsInt8(q->output(0)->dtype)) return nullptr;
  return q;
}

// B as float32 in the float domain: a float32 constant, or DequantizeLinear of an int32 constant.
ir::Value* FloatBias(ir::Graph& g, ir::Value* b, int64_t m) {
  if (b == nullptr) return nullptr;
  if (b->is_constant() && b->dtype == DataType::kFloat32 && b->constant->num_elements() == m) return b;
  ir::Node* dq = b->producer;
  if (!IsOp(dq, "DequantizeLinear") || dq->input(0) == nullptr || !dq->input(0)->is_constant()) return nullptr;
  const ir::Value* bq = dq->input(0);
  const ir::Value* scale = dq->input(1);
  if (bq->dtype != DataType::kInt32 || bq->constant->num_elements() != m || !SmallConst(scale, m)) return nullptr;
  if (dq->input(2) != nullptr) {
    if (!SmallConst(dq->input(2), m) || dq->input(2)->dtype != DataType::kInt32) return nullptr;
  }
  auto t = Tensor::Allocate(DataType::kFloat32, {m});
  if (!t.ok()) return nullptr;
  const auto* q = bq->constant->as<int32_t>();
  const auto* s = scale->constant->as<float>();
  const int32_t* z = dq->input(2) != nullptr ? dq->input(2)->constant->as<int32_t>() : nullptr;
  const bool per_scale = scale->constant->num_elements() > 1;
  const bool per_zero = z != nullptr && dq->input(2)->constant->num_elements() > 1;
  for (int64_t c = 0; c < m; ++c) {
    const int32_t zero = z == nullptr ? 0 : z[per_zero ? c : 0];
    t->as<float>()[c] = static_cast<float>(q[c] - zero) * s[per_scale ? c : 0];
  }
  return pass_detail::AddConstant(g, b->name + "/float", std::move(*t));
}

// Replaces `op` (a Conv, MatMul or Gemm) by gpuhive.<fused>(inputs) with the Relu and QuantizeLinear
// after it when they are its only readers (then the output is quantized, else float32).
void ReplaceWithQuantized(ir::Graph& g, ir::Node* op, const char* fused, std::vector<ir::Value*> inputs,
                          const std::map<std::string, ir::Attribute>& extra_attrs) {
  ir::Value* y = op->output(0);
  ir::Node* relu = nullptr;
  ir::Node* q = nullptr;
  if (!y->is_graph_output) {
    ir::Node* next = SoleConsumer(y);
    if (IsOp(next, "Relu") && next->output(0) != nullptr && !next->output(0)->is_graph_output) {
      if (ir::Node* after = QuantizedSink(next->output(0))) {
        relu = next;
        q = after;
      }
    } else {
      q = QuantizedSink(y);
    }
  }
  ir::Value* out = y;
  if (q != nullptr) {
    inputs[6] = q->input(1);
    inputs[7] = q->input(2);
    out = q->output(0);
  }
  const std::string name = op->name;
  auto attrs = op->attrs;
  if (q != nullptr) g.RemoveNode(q);
  if (relu != nullptr) g.RemoveNode(relu);
  g.RemoveNode(op);
  ir::Node* f = g.AddNode(fused, inputs, {out}, name + "_int8", "gpuhive");
  f->opset = 1;
  f->attrs = std::move(attrs);
  for (const auto& [k, v] : extra_attrs) f->attrs[k] = v;
  f->attrs["relu"] = ir::Attribute(static_cast<int64_t>(relu != nullptr ? 1 : 0));
}

Status QuantizedConvs(ir::Graph& g, int* count) {
  std::vector<ir::Node*> convs;
  for (const auto& n : g.nodes()) {
    if (IsOp(n.get(), "Conv")) convs.push_back(n.get());
  }
  for (ir::Node* conv : convs) {
    ir::Value* w = conv->input(1);
    if (w == nullptr || conv->output(0) == nullptr) continue;
    ir::Node* dq_w = w->producer;
    if (dq_w == nullptr || dq_w->input(0) == nullptr || !dq_w->input(0)->is_constant()) continue;
    const Shape& wshape = dq_w->input(0)->constant->shape();
    if (wshape.size() < 3 || wshape.size() > 5) continue;
    const int64_t m = wshape[0];
    ir::Node* dq_x = QuantizedSource(conv->input(0), 0, false);
    if (dq_x == nullptr || QuantizedSource(w, m, true) != dq_w) continue;
    ir::Value* bias = nullptr;
    if (conv->input(2) != nullptr) {
      bias = FloatBias(g, conv->input(2), m);
      if (bias == nullptr) continue;
    }
    std::vector<ir::Value*> inputs{dq_x->input(0), dq_x->input(1), dq_x->input(2), dq_w->input(0),
                                   dq_w->input(1),  dq_w->input(2), nullptr,         nullptr,
                                   bias};
    ReplaceWithQuantized(g, conv, "QConv", std::move(inputs), {});
    ++*count;
  }
  return Status::OK();
}

// MatMul by constant 2-D weights [K, N], and Gemm (transA 0, alpha 1, beta 1 when C is there) with
// transB choosing [K, N] or [N, K]; the weights' per-channel axis is N's.
Status QuantizedMatMuls(ir::Graph& g, int* count) {
  std::vector<ir::Node*> ops;
  for (const auto& n : g.nodes()) {
    if (IsOp(n.get(), "MatMul") || IsOp(n.get(), "Gemm")) ops.push_back(n.get());
  }
  for (ir::Node* op : ops) {
    const bool gemm = op->op_type == "Gemm";
    ir::Value* w = op->input(1);
    if (w == nullptr || op->output(0) == nullptr) continue;
    int64_t trans_b = 0;
    if (gemm) {
      const std::optional<int64_t> tb = PlainGemmTransB(*op);
      if (!tb) continue;
      trans_b = *tb;
    }
    ir::Node* dq_w = w->producer;
    if (dq_w == nullptr || dq_w->input(0) == nullptr || !dq_w->input(0)->is_constant()) continue;
    const Shape& wshape = dq_w->input(0)->constant->shape();
    if (wshape.size() != 2) continue;
    const int64_t n = trans_b ? wshape[0] : wshape[1];
    ir::Node* dq_x = QuantizedSource(op->input(0), 0, false);
    if (dq_x == nullptr || QuantizedSource(w, n, true, trans_b ? 0 : 1) != dq_w) continue;
    ir::Value* bias = nullptr;
    if (gemm && op->input(2) != nullptr) {
      bias = FloatBias(g, op->input(2), n);
      if (bias == nullptr) continue;
    }
    std::vector<ir::Value*> inputs{dq_x->input(0), dq_x->input(1), dq_x->input(2), dq_w->input(0),
                                   dq_w->input(1),  dq_w->input(2), nullptr,         nullptr,
                                   bias};
    std::map<std::string, ir::Attribute> attrs{{"transB", ir::Attribute(trans_b)}};
    op->attrs.clear();  // Gemm's alpha/beta/transA are settled; QMatMul takes transB and relu only
    ReplaceWithQuantized(g, op, "QMatMul", std::move(inputs), attrs);
    ++*count;
  }
  return Status::OK();
}

}  // namespace

std::optional<int64_t> PlainGemmTransB(const ir::Node& gemm) {
  auto ta = gemm.GetInt("transA", 0);
  auto tb = gemm.GetInt("transB", 0);
  auto alpha = gemm.GetFloat("alpha", 1.f);
  auto beta = gemm.GetFloat("beta", 1.f);
  if (!ta.ok() || *ta != 0 || !tb.ok() || !alpha.ok() || *alpha != 1.f || !beta.ok()) return std::nullopt;
  if (gemm.input(2) != nullptr && *beta != 1.f) return std::nullopt;
  return *tb;
}

bool FoldQuantizeIntoQConvOutput(ir::Graph& g, ir::Node* qconv) {
  ir::Value* y = qconv->output(0);
  if (y == nullptr || y->is_graph_output || qconv->inputs.size() < 9 || qconv->input(6) != nullptr) return false;
  auto ops = qconv->GetStrings("post_ops", std::vector<std::string>{});
  if (ops.ok() && std::find(ops->begin(), ops->end(), "sum") != ops->end()) return false;  // float32 only
  ir::Node* q = QuantizedSink(y);
  if (q == nullptr) return false;
  g.SetNodeInput(qconv, 6, q->input(1));
  g.SetNodeInput(qconv, 7, q->input(2));
  ir::Value* out = q->output(0);
  g.RemoveNode(q);
  y->producer = nullptr;
  y->producer_output = -1;
  qconv->outputs[0] = out;
  out->producer = qconv;
  out->producer_output = 0;
  return true;
}

namespace {

bool IsQConv(const ir::Node* n) { return n != nullptr && n->domain == "gpuhive" && n->op_type == "QConv"; }

// Two one-value constants (or two absent inputs) with the same type and value.
bool SameScalar(const ir::Value* a, const ir::Value* b) {
  if (a == b) return true;
  if (a == nullptr || b == nullptr || !a->is_constant() || !b->is_constant()) return false;
  const Tensor& x = *a->constant;
  const Tensor& y = *b->constant;
  return x.dtype() == y.dtype() && x.num_elements() == 1 && y.num_elements() == 1 && x.data() != nullptr &&
         y.data() != nullptr && std::memcmp(x.data(), y.data(), DataTypeSize(x.dtype())) == 0;
}

Status FoldInputQuantize(ir::Graph& g, int* count) {
  std::vector<ir::Node*> qs;
  for (const auto& n : g.nodes()) {
    if (IsOp(n.get(), "QuantizeLinear")) qs.push_back(n.get());
  }
  for (ir::Node* q : qs) {
    ir::Value* x = q->input(0);
    ir::Value* xq = q->output(0);
    if (x == nullptr || !pass_detail::IsFloat32(x) || xq == nullptr || xq->is_graph_output || xq->consumers.empty()) continue;
    if (q->inputs.size() < 2 || !SmallConst(q->input(1), 0) || q->input(1)->dtype != DataType::kFloat32) continue;
    if (q->input(2) != nullptr && (!SmallConst(q->input(2), 0) || !IsInt8(q->input(2)->dtype))) continue;
    if (!IsInt8(xq->dtype)) continue;
    const bool all_qconvs = std::all_of(xq->consumers.begin(), xq->consumers.end(), [&](const ir::Node* c) {
      return IsQConv(c) && c->input(0) == xq && std::count(c->inputs.begin(), c->inputs.end(), xq) == 1 &&
             SameScalar(c->input(1), q->input(1)) && SameScalar(c->input(2), q->input(2));
    });
    if (!all_qconvs) continue;
    const std::vector<ir::Node*> readers = xq->consumers;
    for (ir::Node* c : readers) g.SetNodeInput(c, 0, x);
    g.RemoveNode(q);
    ++*count;
  }
  return Status::OK();
}

// `s` scales `x` per channel: [N|1, C, 1, ...] against x's [N, C, ...] (shapes known).
bool ChannelScaleOf(const ir::Value* x, const ir::Value* s) {
  if (x == nullptr || s == nullptr || !x->shape || !s->shape || x->shape->size() != s->shape->size()) return false;
  const auto& xd = *x->shape;
  const auto& sd = *s->shape;
  if (xd.size() < 3 || !pass_detail::IsFloat32(s) || !sd[1].is_known() || !xd[1].is_known() || sd[1].value != xd[1].value) {
    return false;
  }
  for (size_t i = 2; i < sd.size(); ++i) {
    if (!sd[i].is_known() || sd[i].value != 1 || (xd[i].is_known() && xd[i].value == 1)) return false;
  }
  return !sd[0].is_known() || sd[0].value == 1 || (xd[0].is_known() && sd[0].value == xd[0].value);
}

// A squeeze-excitation scaling read only by int8 convolutions with a float32 x (after
// FoldInputQuantize): Mul(X, S), or gpuhive.Elementwise {mul}(X, S), S per channel. The
// convolutions take X and S (input kChannelScaleInput) and scale X by S while they quantize it.
constexpr size_t kChannelScaleInput = 10;

Status FoldChannelScale(ir::Graph& g, int* count) {
  std::vector<ir::Node*> muls;
  for (const auto& n : g.nodes()) {
    const bool mul = IsOp(n.get(), "Mul");
    auto ops = n->GetStrings("post_ops", std::vector<std::string>{});
    const bool chain = n->domain == "gpuhive" && n->op_type == "Elementwise" && ops.ok() && ops->size() == 1 &&
                       (*ops)[0] == "mul";
    if ((mul || chain) && n->inputs.size() == 2 && n->outputs.size() == 1) muls.push_back(n.get());
  }
  for (ir::Node* n : muls) {
    ir::Value* y = n->output(0);
    if (y == nullptr || y->is_graph_output || y->consumers.empty() || !pass_detail::IsFloat32(y)) continue;
    ir::Value* x = n->input(0);
    ir::Value* scale = n->input(1);
    if (n->domain.empty() && !ChannelScaleOf(x, scale)) std::swap(x, scale);  // Mul is commutative
    if (!pass_detail::IsFloat32(x) || !ChannelScaleOf(x, scale)) continue;
    const bool all_qconvs = std::all_of(y->consumers.begin(), y->consumers.end(), [&](const ir::Node* c) {
      return IsQConv(c) && c->input(0) == y && std::count(c->inputs.begin(), c->inputs.end(), y) == 1 &&
             c->input(kChannelScaleInput) == nullptr;
    });
    if (!all_qconvs) continue;
    const std::vector<ir::Node*> readers = y->consumers;
    for (ir::Node* c : readers) {
      g.SetNodeInput(c, 0, x);
      g.SetNodeInput(c, kChannelScaleInput, scale);
    }
    g.RemoveNode(n);
    ++*count;
  }
  return Status::OK();
}

}  // namespace

StatusOr<int> FoldQuantizeIntoQConv(ir::Model& model, const OptimizeOptions& options) {
  if (!model.graph) return 0;
  if (options.supports && !options.supports("gpuhive", "QConv")) return 0;
  int count = 0;
  RETURN_IF_ERROR(pass_detail::ForEachGraph(*model.graph, [&](ir::Graph& g) {
    RETURN_IF_ERROR(FoldInputQuantize(g, &count));
    return FoldChannelScale(g, &count);
  }));
  return count;
}

StatusOr<int> FuseQuantizedConv(ir::Model& model, const OptimizeOptions& options) {
  if (!model.graph) return 0;
  if (options.supports && !options.supports("gpuhive", "QConv")) return 0;
  int count = 0;
  RETURN_IF_ERROR(pass_detail::ForEachGraph(*model.graph, [&](ir::Graph& g) {
    RETURN_IF_ERROR(QuantizedConvs(g, &count));
    if (options.supports && !options.supports("gpuhive", "QMatMul")) return Status::OK();
    return QuantizedMatMuls(g, &count);
  }));
  return count;
}

}  // namespace gpuhive
