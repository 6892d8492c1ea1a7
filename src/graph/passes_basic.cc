// Dead-code and no-op elimination, BatchNormalization folding, Conv+Add bias fusion, and the
// OptimizeModel pipeline.
#include <cmath>
#include <cstring>

#include "gpuhive/logging.h"
#include "gpuhive/passes.h"
#include "graph/pass_util.h"

namespace gpuhive {
using namespace pass_detail;  // NOLINT: internal helpers of this module
namespace {

bool OutputUsed(const ir::Value* v) { return v && (v->is_graph_output || !v->consumers.empty()); }

// Makes `producer` write `to` in output slot `slot` instead of its current value.
void MoveOutput(ir::Node* producer, int slot, ir::Value* to) {
  ir::Value* from = producer->outputs[slot];
  if (from) {
    from->producer = nullptr;
    from->producer_output = -1;
  }
  producer->outputs[slot] = to;
  to->producer = producer;
  to->producer_output = slot;
}

Status DeadNodes(ir::Graph& g, int* count) {
  bool changed = true;
  while (changed) {
    changed = false;
    std::vector<ir::Node*> nodes;
    for (const auto& n : g.nodes()) nodes.push_back(n.get());
    for (auto it = nodes.rbegin(); it != nodes.rend(); ++it) {
      ir::Node* n = *it;
      bool used = false;
      for (ir::Value* v : n->outputs) used = used || OutputUsed(v);
      if (used) continue;
      g.RemoveNode(n);
      ++*count;
      changed = true;
    }
  }
  g.RemoveUnusedValues();
  return Status::OK();
}

// Target of a Reshape with a constant shape input, when the input shape is static.
std::optional<Shape> ReshapeTarget(const ir::Node& n, const Shape& in) {
  const ir::Value* sv = n.input(1);
  if (!sv || !sv->constant || sv->constant->dtype() != DataType::kInt64) return std::nullopt;
  auto allowzero = n.GetInt("allowzero", 0);
  if (!allowzero.ok()) return std::nullopt;
  const Tensor& t = *sv->constant;
  Shape out(t.as<int64_t>(), t.as<int64_t>() + t.num_elements());
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == 0 && *allowzero == 0) {
      if (i >= in.size()) return std::nullopt;
      out[i] = in[i];
    }
    if (out[i] == -1) {
      if (infer >= 0) return std::nullopt;
      infer = static_cast<int>(i);
    } else if (out[i] < 0) {
      return std::nullopt;
    } else {
      known *= out[i];
    }
  }
  if (infer >= 0) {
    if (known == 0) return std::nullopt;
    out[infer] = NumElements(in) / known;
  }
  if (NumElements(out) != NumElements(in)) return std::nullopt;
  return out;
}

bool IsNoOp(const ir::Node& n) {
  if (!n.domain.empty()) return false;
  const ir::Value* in = n.input(0);
  if (!in) return false;
  if (n.op_type == "Identity") return true;
  if (n.op_type == "Dropout") {
    if (OutputUsed(n.output(1))) return false;
    if (n.GetInt("is_test", 1).ok() && !*n.GetInt("is_test", 1)) return false;  // opset < 7 only
    const ir::Value* training = n.input(2);
    if (!training) return true;
    return training->constant && training->constant->num_elements() == 1 &&
           static_cast<const uint8_t*>(training->constant->data())[0] == 0;
  }
  if (n.op_type == "Cast") {
    auto to = n.GetInt("to", -1);
    return to.ok() && in->dtype != DataType::kUndefined && static_cast<int64_t>(in->dtype) == *to;
  }
  if (n.op_type == "Reshape") {
    auto s = StaticShape(in);
    if (!s) return false;
    if (auto o = StaticShape(n.output(0)); o && *o == *s) return true;
    auto target = ReshapeTarget(n, *s);
    return target && *target == *s;
  }
  return false;
}

Status Identities(ir::Graph& g, int* count) {
  std::vector<ir::Node*> nodes;
  for (const auto& n : g.nodes()) nodes.push_back(n.get());
  for (ir::Node* n : nodes) {
    if (!n->output(0) || !IsNoOp(*n)) continue;
    if (BypassNode(g, n, n->inputs[0], n->outputs[0])) ++*count;
  }
  return Status::OK();
}

// Float32 1-D constant of length c.
const float* ChannelParam(const ir::Value* v, int64_t c) {
  if (!v || !v->constant || v->constant->dtype() != DataType::kFloat32) return nullptr;
  if (v->constant->num_elements() != c || v->constant->shape().size() != 1) return nullptr;
  return v->constant->as<float>();
}

struct BnParams {
  std::vector<float> scale;  // gamma / sqrt(var + eps)
  std::vector<float> shift;  // beta - mean * scale
};

std::optional<BnParams> ReadBn(const ir::Node& bn, int64_t c) {
  if (bn.inputs.size() < 5) return std::nullopt;
  const float* gamma = ChannelParam(bn.input(1), c);
  const float* beta = ChannelParam(bn.input(2), c);
  const float* mean = ChannelParam(bn.input(3), c);
  const float* var = ChannelParam(bn.input(4), c);
  auto eps = bn.GetFloat("epsilon", 1e-5f);
  auto training = bn.GetInt("training_mode", 0);
  if (!gamma || !beta || !mean || !var || !eps.ok() || !training.ok() || *training != 0) return std::nullopt;
  for (size_t i = 1; i < bn.outputs.size(); ++i) {
    if (OutputUsed(bn.outputs[i])) return std::nullopt;
  }
  BnParams p;
  for (int64_t i = 0; i < c; ++i) {
    float s = gamma[i] / std::sqrt(var[i] + *eps);
    p.scale.push_back(s);
    p.shift.push_back(beta[i] - mean[i] * s);
  }
  return p;
}

const Tensor* FloatConst(const ir::Value* v) {
  return v && v->constant && v->constant->dtype() == DataType::kFloat32 ? v->constant.get() : nullptr;
}

// W[..., c, ...] *= scale[c] for a weight whose dim `axis` (0 or 1) is the channel: Conv's
// [C_out, ...], Gemm's B, ConvTranspose's [C_in, C_out, k...].
StatusOr<Tensor> ScaleWeights(const Tensor& w, const std::vector<float>& scale, int axis) {
  ASSIGN_OR_RETURN(Tensor out, Tensor::FromBytes(w.dtype(), w.shape(), w.data(), w.bytes()));
  float* d = out.as<float>();
  const int64_t c = static_cast<int64_t>(scale.size());
  const int64_t outer = axis == 0 ? 1 : w.shape()[0];
  const int64_t inner = w.num_elements() / std::max<int64_t>(outer * c, 1);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < c; ++i)
      for (int64_t j = 0; j < inner; ++j) d[(o * c + i) * inner + j] *= scale[i];
  return out;
}

StatusOr<bool> FoldOneBn(ir::Graph& g, ir::Node* bn) {
  ir::Value* x = bn->input(0);
  ir::Node* prod = x ? x->producer : nullptr;
  if (!prod || SoleConsumer(x) != bn || !prod->domain.empty() || x->producer_output != 0 || !bn->output(0)) {
    return false;
  }
  const Tensor* w = FloatConst(prod->input(1));
  if (!w || w->shape().size() < 2) return false;
  ir::Value* y = bn->outputs[0];
  if (prod->op_type == "Conv" || prod->op_type == "ConvTranspose") {
    // ConvTranspose's weights are [C_in, C_out / group, k...]: with one group, dim 1 is the
    // output channel.
    const bool transposed = prod->op_type == "ConvTranspose";
    if (transposed) {
      ASSIGN_OR_RETURN(int64_t group, prod->GetInt("group", 1));
      if (group != 1 || w->shape().size() < 3) return false;
    }
    const int axis = transposed ? 1 : 0;
    const int64_t c = w->shape()[axis];
    auto p = ReadBn(*bn, c);
    if (!p) return false;
    const Tensor* b = FloatConst(prod->input(2));
    if (prod->input(2) && (!b || b->num_elements() != c)) return false;
    ASSIGN_OR_RETURN(Tensor nw, ScaleWeights(*w, p->scale, axis));
    std::vector<float> nb(c);
    for (int64_t i = 0; i < c; ++i) nb[i] = (b ? b->as<float>()[i] : 0.f) * p->scale[i] + p->shift[i];
    ASSIGN_OR_RETURN(Tensor bt, Tensor::FromVector(DataType::kFloat32, {c}, nb));
    g.SetNodeInput(prod, 1, AddConstant(g, prod->name + "_W_bnfold", std::move(nw)));
    g.SetNodeInput(prod, 2, AddConstant(g, prod->name + "_B_bnfold", std::move(bt)));
    g.RemoveNode(bn);
    MoveOutput(prod, 0, y);
    return true;
  }
  if (prod->op_type == "Gemm") {
    if (w->shape().size() != 2) return false;
    ASSIGN_OR_RETURN(int64_t trans_b, prod->GetInt("transB", 0));
    ASSIGN_OR_RETURN(float beta, prod->GetFloat("beta", 1.f));
    const int64_t n = trans_b ? w->shape()[0] : w->shape()[1];
    auto p = ReadBn(*bn, n);
    if (!p) return false;
    const Tensor* cten = FloatConst(prod->input(2));
    if (prod->input(2)) {
      if (!cten) return false;
      const auto& cs = cten->shape();
      bool vec = cten->num_elements() == 1 || (cten->num_elements() == n && (cs.size() == 1 || (cs.size() == 2 && cs[0] == 1)));
      if (!vec) return false;
    }
    ASSIGN_OR_RETURN(Tensor nw, ScaleWeights(*w, p->scale, trans_b ? 0 : 1));
    std::vector<float> nc(n);
    for (int64_t i = 0; i < n; ++i) {
      float cv = cten ? cten->as<float>()[cten->num_elements() == 1 ? 0 : i] * beta : 0.f;
      nc[i] = cv * p->scale[i] + p->shift[i];
    }
    ASSIGN_OR_RETURN(Tensor ct, Tensor::FromVector(DataType::kFloat32, {n}, nc));
    g.SetNodeInput(prod, 1, AddConstant(g, prod->name + "_B_bnfold", std::move(nw)));
    g.SetNodeInput(prod, 2, AddConstant(g, prod->name + "_C_bnfold", std::move(ct)));
    SetAttr(prod, "beta", 1.f);
    g.RemoveNode(bn);
    MoveOutput(prod, 0, y);
    return true;
  }
  if (prod->op_type == "MatMul") {
    // BN's channel is dim 1, which is MatMul's N only for 2-D results.
    if (w->shape().size() != 2 || !x->shape || x->shape->size() != 2) return false;
    const int64_t n = w->shape()[1];
    auto p = ReadBn(*bn, n);
    if (!p) return false;
    ASSIGN_OR_RETURN(Tensor nw, ScaleWeights(*w, p->scale, 1));
    ASSIGN_OR_RETURN(Tensor bias, Tensor::FromVector(DataType::kFloat32, {n}, p->shift));
    g.SetNodeInput(prod, 1, AddConstant(g, prod->name + "_B_bnfold", std::move(nw)));
    ir::Value* bv = AddConstant(g, prod->name + "_bias_bnfold", std::move(bias));
    int opset = bn->opset;
    std::string name = bn->name;
    g.RemoveNode(bn);
    ir::Node* add = g.AddNode("Add", {x, bv}, {y}, name + "_bnfold_add");
    add->opset = opset;
    return true;
  }
  return false;
}

Status BatchNorms(ir::Graph& g, int* count) {
  std::vector<ir::Node*> nodes;
  for (const auto& n : g.nodes()) {
    if (IsOp(n.get(), "BatchNormalization")) nodes.push_back(n.get());
  }
  for (ir::Node* bn : nodes) {
    ASSIGN_OR_RETURN(bool folded, FoldOneBn(g, bn));
    if (folded) ++*count;
  }
  if (!nodes.empty()) RETURN_IF_ERROR(g.TopologicalSort());
  return Status::OK();
}

StatusOr<bool> FuseOneBias(ir::Graph& g, ir::Node* add) {
  for (int side = 0; side < 2; ++side) {
    ir::Value* x = add->input(side);
    ir::Value* k = add->input(1 - side);
    ir::Node* conv = x ? x->producer : nullptr;
    if (!IsOp(conv, "Conv") || SoleConsumer(x) != add || x == k || x->producer_output != 0 || !add->output(0)) {
      continue;
    }
    const Tensor* kt = FloatConst(k);
    const Tensor* w = FloatConst(conv->input(1));
    if (!kt || !w || w->shape().size() < 3) continue;
    const int64_t c = w->shape()[0];
    const size_t rank = w->shape().size();
    const Shape& ks = kt->shape();
    bool per_channel = false;
    if (kt->num_elements() == 1 && ks.size() <= rank) {
      per_channel = false;
    } else if (kt->num_elements() == c && (ks.size() == rank - 1 || ks.size() == rank)) {
      size_t ch = ks.size() == rank ? 1 : 0;
      if (ks.size() == rank && ks[0] != 1) continue;
      bool ok = ks[ch] == c;
      for (size_t i = ch + 1; i < ks.size(); ++i) ok = ok && ks[i] == 1;
      if (!ok) continue;
      per_channel = true;
    } else {
      continue;
    }
    const Tensor* b = FloatConst(conv->input(2));
    if (conv->input(2) && (!b || b->num_elements() != c)) continue;
    std::vector<float> nb(c);
    for (int64_t i = 0; i < c; ++i) {
      nb[i] = (b ? b->as<float>()[i] : 0.f) + kt->as<float>()[per_channel ? i : 0];
    }
    ASSIGN_OR_RETURN(Tensor bt, Tensor::FromVector(DataType::kFloat32, {c}, nb));
    g.SetNodeInput(conv, 2, AddConstant(g, conv->name + "_B_addfold", std::move(bt)));
    ir::Value* y = add->outputs[0];
    g.RemoveNode(add);
    MoveOutput(conv, 0, y);
    return true;
  }
  return false;
}

Status ConvBias(ir::Graph& g, int* count) {
  std::vector<ir::Node*> nodes;
  for (const auto& n : g.nodes()) {
    if (IsOp(n.get(), "Add") && n->inputs.size() == 2) nodes.push_back(n.get());
  }
  for (ir::Node* add : nodes) {
    ASSIGN_OR_RETURN(bool fused, FuseOneBias(g, add));
    if (fused) ++*count;
  }
  return Status::OK();
}

StatusOr<int> RunOnAll(ir::Graph& graph, Status (*fn)(ir::Graph&, int*)) {
  int count = 0;
  RETURN_IF_ERROR(ForEachGraph(graph, [&](ir::Graph& g) { return fn(g, &count); }));
  return count;
}

}  // namespace

StatusOr<int> EliminateDeadNodes(ir::Graph& graph) { return RunOnAll(graph, DeadNodes); }
StatusOr<int> EliminateIdentity(ir::Graph& graph) { return RunOnAll(graph, Identities); }
StatusOr<int> FoldBatchNorm(ir::Graph& graph) { return RunOnAll(graph, BatchNorms); }
StatusOr<int> FuseConvAddBias(ir::Graph& graph) { return RunOnAll(graph, ConvBias); }

Status OptimizeModel(ir::Model& model, const OptimizeOptions& options) {
  if (!model.graph) return InvalidArgument("model has no graph");
  ir::Graph& g = *model.graph;
  constexpr int kMaxRounds = 16;
  for (int round = 0; round < kMaxRounds; ++round) {
    int changes = 0;
    auto add = [&](StatusOr<int> r, const char* pass) -> Status {
      if (!r.ok()) return r.status().WithContext(pass);
      if (*r) GH_LOG_DEBUG("graph", "{}: {} rewrites", pass, *r);
      changes += *r;
      return Status::OK();
    };
    RETURN_IF_ERROR(add(EliminateIdentity(g), "EliminateIdentity"));
    if (options.fuse) RETURN_IF_ERROR(add(FuseQuantizedConv(model, options), "FuseQuantizedConv"));
    RETURN_IF_ERROR(add(FoldConstants(g, options), "FoldConstants"));
    RETURN_IF_ERROR(add(EliminateDeadNodes(g), "EliminateDeadNodes"));
    RETURN_IF_ERROR(add(FoldBatchNorm(g), "FoldBatchNorm"));
    RETURN_IF_ERROR(add(FuseConvAddBias(g), "FuseConvAddBias"));
    if (options.fuse) {
      RETURN_IF_ERROR(add(FuseAttention(model, options), "FuseAttention"));
      RETURN_IF_ERROR(add(FusePostOps(model, options), "FusePostOps"));
      RETURN_IF_ERROR(add(FoldQuantizeIntoQConv(model, options), "FoldQuantizeIntoQConv"));
      RETURN_IF_ERROR(add(FuseElementwiseChains(model, options), "FuseElementwiseChains"));
    }
    if (changes == 0) break;
  }
  RETURN_IF_ERROR(EliminateDeadNodes(g).status());
  return ForEachGraph(g, [](ir::Graph& sub) { return sub.TopologicalSort(); });
}

}  // namespace gpuhive
