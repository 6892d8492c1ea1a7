// Attention fusion: the scaled dot-product attention that transformer exporters write as
//   Qt = Transpose(q, [0,2,1,3]); Kt = Transpose(k, [0,2,3,1]); Vt = Transpose(v, [0,2,1,3])
//   P  = Softmax((MatMul(Qt, Kt) {/ c | * c}) [+ mask], axis = -1)
//   y  = Transpose(MatMul(P, Vt), [0,2,1,3])
// becomes one gpuhive.Attention(q, k, v [, mask]) {scale} on the [batch, seq, heads, head_dim]
// tensors the projections produce: the four head transposes and the [batch, heads, seq, seq]
// scores never exist as graph values, and the kernel reads q, k, v in place with strides.
#include <set>

#include "gpuhive/passes.h"
#include "graph/pass_util.h"

namespace gpuhive {
using namespace pass_detail;  // NOLINT: internal helpers of this module
namespace {

// Transpose with exactly this perm whose output has a single use.
ir::Value* TransposedFrom(ir::Value* out, const std::vector<int64_t>& perm) {
  if (!out || !out->producer || UseCount(out) != 1) return nullptr;
  ir::Node* t = out->producer;
  if (!IsOp(t, "Transpose") || t->inputs.empty() || !t->inputs[0]) return nullptr;
  auto p = t->GetInts("perm", std::vector<int64_t>{});
  if (!p.ok() || *p != perm) return nullptr;
  const auto& shape = t->inputs[0]->shape;
  if (shape.has_value() && shape->size() != 4) return nullptr;
  return t->inputs[0];
}

// Producer of `v` when it is the only consumer chain link: op `op`, output used once.
ir::Node* SingleUseProducer(ir::Value* v, const char* op) {
  if (!v || !v->producer || UseCount(v) != 1) return nullptr;
  return IsOp(v->producer, op) ? v->producer : nullptr;
}

struct AttentionMatch {
  ir::Value *q = nullptr, *k = nullptr, *v = nullptr, *mask = nullptr;
  float scale = 1.f;
  ir::Value* out = nullptr;
  std::vector<ir::Node*> nodes;  // replaced
};

// Matches the pattern ending at the Softmax -> MatMul node `m2`.
std::optional<AttentionMatch> Match(ir::Node* m2) {
  AttentionMatch a;
  if (!IsOp(m2, "MatMul") || m2->inputs.size() != 2 || !m2->outputs[0]) return std::nullopt;
  ir::Node* last = SoleConsumer(m2->outputs[0]);
  if (!IsOp(last, "Transpose")) return std::nullopt;
  auto perm = last->GetInts("perm", std::vector<int64_t>{});
  if (!perm.ok() || *perm != std::vector<int64_t>{0, 2, 1, 3}) return std::nullopt;
  a.out = last->outputs[0];
  a.v = TransposedFrom(m2->inputs[1], {0, 2, 1, 3});
  ir::Node* softmax = SingleUseProducer(m2->inputs[0], "Softmax");
  if (!a.v || !softmax || softmax->inputs.empty()) return std::nullopt;
  auto axis = softmax->GetInt("axis", softmax->opset >= 13 ? -1 : 1);
  if (!axis.ok() || (*axis != -1 && *axis != 3)) return std::nullopt;
  ir::Value* s = softmax->inputs[0];
  std::vector<ir::Node*> nodes = {last, m2, m2->inputs[1]->producer, softmax};
  if (ir::Node* add = SingleUseProducer(s, "Add"); add && add->inputs.size() == 2) {
    // The scores are the operand computed by the first MatMul (scaled or not); the other is the mask.
    auto is_scores = [](const ir::Value* x) {
      const ir::Node* p = x ? x->producer : nullptr;
      if (IsOp(p, "Div") || IsOp(p, "Mul")) p = p->inputs.empty() || !p->inputs[0] ? nullptr : p->inputs[0]->producer;
      return IsOp(p, "MatMul");
    };
    const int si = is_scores(add->inputs[0]) ? 0 : is_scores(add->inputs[1]) ? 1 : -1;
    if (si < 0) return std::nullopt;
    a.mask = add->inputs[1 - si];
    s = add->inputs[si];
    if (!a.mask || !IsFloat32(a.mask) || (a.mask->shape.has_value() && a.mask->shape->size() > 4)) return std::nullopt;
    nodes.push_back(add);
  }
  for (const char* op : {"Div", "Mul"}) {
    ir::Node* sc = SingleUseProducer(s, op);
    if (!sc || sc->inputs.size() != 2) continue;
    auto c = ConstScalar(sc->inputs[1]);
    if (!c || *c == 0.f) return std::nullopt;
    a.scale = std::string(op) == "Div" ? 1.f / *c : *c;
    s = sc->inputs[0];
    nodes.push_back(sc);
    break;
  }
  ir::Node* m1 = SingleUseProducer(s, "MatMul");
  if (!m1 || m1->inputs.size() != 2) return std::nullopt;
  a.q = TransposedFrom(m1->inputs[0], {0, 2, 1, 3});
  a.k = TransposedFrom(m1->inputs[1], {0, 2, 3, 1});
  if (!a.q || !a.k || !IsFloat32(a.q) || !IsFloat32(a.k) || !IsFloat32(a.v)) return std::nullopt;
  nodes.push_back(m1);
  nodes.push_back(m1->inputs[0]->producer);
  nodes.push_back(m1->inputs[1]->producer);
  a.nodes = std::move(nodes);
  return a;
}

Status AttentionGraph(ir::Graph& g, int* count) {
  std::vector<ir::Node*> candidates;
  for (const auto& n : g.nodes()) {
    if (IsOp(n.get(), "MatMul")) candidates.push_back(n.get());
  }
  std::set<const ir::Node*> removed;  // candidates that an earlier match consumed
  for (ir::Node* m2 : candidates) {
    if (removed.count(m2)) continue;
    auto a = Match(m2);
    if (!a) continue;
    removed.insert(a->nodes.begin(), a->nodes.end());
    std::vector<ir::Value*> inputs = {a->q, a->k, a->v};
    if (a->mask) inputs.push_back(a->mask);
    ir::Value* out = a->out;
    const std::string name = m2->name + "_attention";
    for (ir::Node* n : a->nodes) g.RemoveNode(n);
    ir::Node* f = g.AddNode("Attention", inputs, {out}, name, "gpuhive");
    f->opset = 1;
    SetAttr(f, "scale", a->scale);
    ++*count;
  }
  if (*count) RETURN_IF_ERROR(g.TopologicalSort());
  return Status::OK();
}

}  // namespace

StatusOr<int> FuseAttention(ir::Model& model, const OptimizeOptions& options) {
  if (!model.graph) return InvalidArgument("model has no graph");
  if (options.supports && !options.supports("gpuhive", "Attention")) return 0;
  int count = 0;
  RETURN_IF_ERROR(ForEachGraph(*model.graph, [&](ir::Graph& g) { return AttentionGraph(g, &count); }));
  if (count) model.opsets["gpuhive"] = 1;
  return count;
}

}  // namespace gpuhive
