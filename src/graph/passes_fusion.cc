// Post-op fusion into Conv/MatMul/Gemm and elementwise-chain fusion (conventions: post_ops.h).
#include <algorithm>
#include <set>

#include "gpuhive/passes.h"
#include "gpuhive/post_ops.h"
#include "graph/pass_util.h"

namespace gpuhive {
using namespace pass_detail;  // NOLINT: internal helpers of this module
namespace {

constexpr float kFloatMax = 3.4e38f;
constexpr size_t kMaxPostOps = 32;

// One recognised post-op: what it applies, the tensors it consumes, the nodes it replaces.
struct Match {
  std::vector<std::string> post_ops;
  std::vector<ir::Value*> extras;
  std::vector<ir::Node*> nodes;
  ir::Value* out = nullptr;
};

std::string Op(PostOp::Kind k, float a = 0.f, float b = 0.f) { return FormatPostOp(PostOp{k, a, b}); }

// Single-output default-domain node with a float32 result.
bool Plain(const ir::Node* n) {
  if (!n || !n->domain.empty() || n->outputs.empty() || !IsFloat32(n->outputs[0])) return false;
  for (size_t i = 1; i < n->outputs.size(); ++i) {
    if (n->outputs[i] && UseCount(n->outputs[i])) return false;
  }
  return true;
}

// The other operand of a two-input node that uses `y` once; pos = y's slot.
ir::Value* Other(const ir::Node* n, const ir::Value* y, int* pos) {
  if (n->inputs.size() != 2 || !n->inputs[0] || !n->inputs[1]) return nullptr;
  if (n->inputs[0] == y && n->inputs[1] != y) {
    *pos = 0;
    return n->inputs[1];
  }
  if (n->inputs[1] == y && n->inputs[0] != y) {
    *pos = 1;
    return n->inputs[0];
  }
  return nullptr;
}

bool IsMulBy(const ir::Node* n, const ir::Value* y, float c) {
  int pos = 0;
  ir::Value* o = IsOp(n, "Mul") ? Other(n, y, &pos) : nullptr;
  return o && IsConstNear(o, c);
}

// x * sigmoid(x) where x has exactly these two consumers.
std::optional<Match> MatchSwish(const ir::Value* x) {
  if (x->is_graph_output || x->consumers.size() != 2) return std::nullopt;
  for (int i = 0; i < 2; ++i) {
    ir::Node* s = x->consumers[i];
    ir::Node* m = x->consumers[1 - i];
    if (!IsOp(s, "Sigmoid") || !Plain(s) || !IsOp(m, "Mul") || !Plain(m)) continue;
    int pos = 0;
    if (SoleConsumer(s->outputs[0]) != m || Other(m, x, &pos) != s->outputs[0]) continue;
    return Match{{Op(PostOp::Kind::kSwish)}, {}, {s, m}, m->outputs[0]};
  }
  return std::nullopt;
}

// x * 0.5 * (1 + erf(x / sqrt(2))) in its exported forms (Div by 1.4142 or Mul by 0.7071; the
// 0.5 applied to x, to (1 + erf), or to the product).
std::optional<Match> MatchGelu(const ir::Value* x) {
  if (x->is_graph_output || x->consumers.size() != 2) return std::nullopt;
  for (int i = 0; i < 2; ++i) {
    ir::Node* h = x->consumers[i];
    ir::Node* m = x->consumers[1 - i];
    int pos = 0;
    bool scaled = false;
    if (IsOp(h, "Div") && Plain(h)) {
      ir::Value* o = Other(h, x, &pos);
      scaled = o && pos == 0 && IsConstNear(o, 1.41421356f);
    } else if (Plain(h)) {
      scaled = IsMulBy(h, x, 0.70710678f);
    }
    if (!scaled) continue;
    ir::Node* e = SoleConsumer(h->outputs[0]);
    if (!IsOp(e, "Erf") || !Plain(e)) continue;
    ir::Node* a = SoleConsumer(e->outputs[0]);
    ir::Value* one = (IsOp(a, "Add") && Plain(a)) ? Other(a, e->outputs[0], &pos) : nullptr;
    if (!one || !IsConstNear(one, 1.f)) continue;
    ir::Value* t = a->outputs[0];
    ir::Node* tc = SoleConsumer(t);
    if (!tc || !Plain(m) || !IsOp(m, "Mul")) continue;
    std::vector<ir::Node*> nodes = {h, e, a};
    if (tc == m && Other(m, x, &pos) == t) {  // (x * T) * 0.5
      ir::Node* f = SoleConsumer(m->outputs[0]);
      if (!Plain(f) || !IsMulBy(f, m->outputs[0], 0.5f)) continue;
      nodes.insert(nodes.end(), {m, f});
      return Match{{Op(PostOp::Kind::kGeluErf)}, {}, nodes, f->outputs[0]};
    }
    if (IsMulBy(tc, t, 0.5f) && Plain(tc) && SoleConsumer(tc->outputs[0]) == m &&
        Other(m, x, &pos) == tc->outputs[0]) {  // x * (T * 0.5)
      nodes.insert(nodes.end(), {tc, m});
      return Match{{Op(PostOp::Kind::kGeluErf)}, {}, nodes, m->outputs[0]};
    }
    if (IsMulBy(m, x, 0.5f)) {  // (x * 0.5) * T
      ir::Node* f = SoleConsumer(m->outputs[0]);
      if (f != tc || !IsOp(f, "Mul") || !Plain(f) || Other(f, m->outputs[0], &pos) != t) continue;
      nodes.insert(nodes.end(), {m, f});
      return Match{{Op(PostOp::Kind::kGeluErf)}, {}, nodes, f->outputs[0]};
    }
  }
  return std::nullopt;
}

std::optional<std::string> UnaryPostOp(const ir::Node& n, bool chain) {
  const std::string& op = n.op_type;
  auto f = [&](const char* name, float def) { return n.GetFloat(name, def); };
  if (op == "Relu") return Op(PostOp::Kind::kRelu);
  if (op == "Sigmoid") return Op(PostOp::Kind::kSigmoid);
  if (op == "Tanh") return Op(PostOp::Kind::kTanh);
  if (op == "HardSwish") return Op(PostOp::Kind::kHardSwish);
  if (op == "LeakyRelu") {
    auto a = f("alpha", 0.01f);
    return a.ok() ? std::optional(Op(PostOp::Kind::kLeakyRelu, *a)) : std::nullopt;
  }
  if (op == "Elu") {
    auto a = f("alpha", 1.f);
    return a.ok() ? std::optional(Op(PostOp::Kind::kElu, *a)) : std::nullopt;
  }
  if (op == "HardSigmoid") {
    auto a = f("alpha", 0.2f), b = f("beta", 0.5f);
    return a.ok() && b.ok() ? std::optional(Op(PostOp::Kind::kHardSigmoid, *a, *b)) : std::nullopt;
  }
  if (op == "Clip") {
    float lo = -kFloatMax, hi = kFloatMax;
    if (n.opset < 11) {
      auto a = f("min", -kFloatMax), b = f("max", kFloatMax);
      if (!a.ok() || !b.ok()) return std::nullopt;
      lo = *a;
      hi = *b;
    } else {
      for (int i = 1; i <= 2; ++i) {
        const ir::Value* v = n.input(i);
        if (!v) continue;
        auto c = ConstScalar(v);
        if (!c) return std::nullopt;
        (i == 1 ? lo : hi) = *c;
      }
    }
    return Op(PostOp::Kind::kClip, lo, hi);
  }
  if (!chain) return std::nullopt;
  if (op == "Exp") return Op(PostOp::Kind::kExp);
  if (op == "Log") return Op(PostOp::Kind::kLog);
  if (op == "Sqrt") return Op(PostOp::Kind::kSqrt);
  if (op == "Abs") return Op(PostOp::Kind::kAbs);
  if (op == "Neg") return Op(PostOp::Kind::kNeg);
  if (op == "Pow" && IsConstNear(n.input(1), 2.f, 0.f)) return Op(PostOp::Kind::kSquare);
  return std::nullopt;
}

// A binary op applied as "y op o" (y in slot pos); chains use linear for scalar Add/Mul.
std::optional<Match> MatchBinary(ir::Node* n, const ir::Value* y, bool chain) {
  int pos = 0;
  ir::Value* o = Other(n, y, &pos);
  if (!o || !IsFloat32(o)) return std::nullopt;
  const std::string& op = n->op_type;
  ir::Value* out = n->outputs[0];
  if (chain && o->constant && o->constant->num_elements() == 1 && BroadcastsInto(o, y)) {
    float c = *ConstScalar(o);
    if (op == "Mul") return Match{{Op(PostOp::Kind::kLinear, c, 0.f)}, {}, {n}, out};
    if (op == "Add") return Match{{Op(PostOp::Kind::kLinear, 1.f, c)}, {}, {n}, out};
  }
  if (op == "Add" && !chain && SameShape(o, y)) return Match{{Op(PostOp::Kind::kSum)}, {o}, {n}, out};
  if (!BroadcastsInto(o, y)) return std::nullopt;
  static const std::map<std::string, PostOp::Kind> kKinds = {
      {"Add", PostOp::Kind::kAdd}, {"Mul", PostOp::Kind::kMul}, {"Sub", PostOp::Kind::kSub},
      {"Div", PostOp::Kind::kDiv}, {"Max", PostOp::Kind::kMax}, {"Min", PostOp::Kind::kMin}};
  auto it = kKinds.find(op);
  if (it == kKinds.end()) return std::nullopt;
  if (!chain && (op == "Max" || op == "Min")) return std::nullopt;
  if (pos == 1 && (op == "Sub" || op == "Div")) return std::nullopt;  // not commutative
  return Match{{Op(it->second)}, {o}, {n}, out};
}

// A post-op applied to the running value y (which must be float32 and private to the match).
std::optional<Match> MatchPostOp(ir::Value* y, bool chain) {
  if (!IsFloat32(y) || y->is_graph_output) return std::nullopt;
  if (auto m = MatchSwish(y)) return m;
  if (auto m = MatchGelu(y)) return m;
  ir::Node* n = SoleConsumer(y);
  if (!Plain(n)) return std::nullopt;
  if (n->input(0) == y) {
    if (auto p = UnaryPostOp(*n, chain)) return Match{{*p}, {}, {n}, n->outputs[0]};
  }
  return MatchBinary(n, y, chain);
}

bool Supported(const OptimizeOptions& o, const char* op) { return !o.supports || o.supports("gpuhive", op); }

ir::Node* MakeFused(ir::Graph& g, const std::string& op, const ir::Node& base, std::vector<ir::Value*> inputs,
                    ir::Value* out, const std::vector<std::string>& post_ops, bool copy_attrs) {
  ir::Node* f = g.AddNode(op, std::move(inputs), {out}, base.name + "_fused", "gpuhive");
  f->opset = 1;
  if (copy_attrs) f->attrs = base.attrs;
  SetAttr(f, "post_ops", post_ops);
  return f;
}

// Appends matches to an existing fused node (its output moves to the last match's output).
void Extend(ir::Graph& g, ir::Node* fused, const std::vector<Match>& matches) {
  auto ops = fused->GetStrings("post_ops", std::vector<std::string>{});
  std::vector<std::string> post = ops.ok() ? *ops : std::vector<std::string>{};
  for (const Match& m : matches) {
    post.insert(post.end(), m.post_ops.begin(), m.post_ops.end());
    for (ir::Node* n : m.nodes) g.RemoveNode(n);
    for (ir::Value* e : m.extras) g.SetNodeInput(fused, fused->inputs.size(), e);
  }
  SetAttr(fused, "post_ops", post);
  ir::Value* old = fused->outputs[0];
  old->producer = nullptr;
  old->producer_output = -1;
  fused->outputs[0] = matches.back().out;
  fused->outputs[0]->producer = fused;
  fused->outputs[0]->producer_output = 0;
}

std::vector<Match> Collect(ir::Value* y, bool chain, size_t already) {
  std::vector<Match> out;
  while (already + out.size() < kMaxPostOps) {
    auto m = MatchPostOp(y, chain);
    if (!m) break;
    y = m->out;
    out.push_back(std::move(*m));
  }
  return out;
}

Status PostOpsGraph(ir::Graph& g, const OptimizeOptions& options, int* count) {
  std::vector<ir::Node*> nodes;
  for (const auto& n : g.nodes()) nodes.push_back(n.get());
  std::set<ir::Node*> removed;
  for (ir::Node* n : nodes) {
    if (removed.count(n) || n->outputs.empty() || !n->outputs[0]) continue;
    if (n->domain == "gpuhive" && n->op_type == "QConv") {
      // An int8 convolution with a float32 result takes unary post-ops (in the float domain, before
      // a QuantizeLinear after them becomes its output quantization) and, first, one "sum" (a
      // residual Add; the result then stays float32).
      if (n->inputs.size() != 9 || n->input(6) != nullptr || !IsFloat32(n->outputs[0])) continue;
      auto ops = n->GetStrings("post_ops", std::vector<std::string>{});
      const size_t existing = ops.ok() ? ops->size() : 0;
      std::vector<Match> matches = Collect(n->outputs[0], false, existing);
      size_t keep = 0;
      for (; keep < matches.size(); ++keep) {
        const Match& m = matches[keep];
        const bool sum = keep == 0 && existing == 0 && m.post_ops.size() == 1 && m.post_ops[0] == "sum";
        if (!m.extras.empty() && !sum) break;
      }
      matches.resize(keep);
      if (!matches.empty()) {
        for (const Match& m : matches) removed.insert(m.nodes.begin(), m.nodes.end());
        Extend(g, n, matches);
      }
      const bool quantized = FoldQuantizeIntoQConvOutput(g, n);
      if (!matches.empty() || quantized) ++*count;
      continue;
    }
    static const std::map<std::string, std::string> kFusedName = {
        {"Conv", "FusedConv"}, {"MatMul", "FusedMatMul"}, {"Gemm", "FusedGemm"}};
    const bool fused = n->domain == "gpuhive" &&
                       (n->op_type == "FusedConv" || n->op_type == "FusedMatMul" || n->op_type == "FusedGemm");
    auto name_it = kFusedName.find(n->op_type);
    if (!fused && (!n->domain.empty() || name_it == kFusedName.end())) continue;
    if (!fused && !Supported(options, name_it->second.c_str())) continue;
    size_t existing = 0;
    if (fused) {
      auto ops = n->GetStrings("post_ops", std::vector<std::string>{});
      existing = ops.ok() ? ops->size() : 0;
    }
    std::vector<Match> matches = Collect(n->outputs[0], false, existing);
    if (matches.empty()) continue;
    for (const Match& m : matches) removed.insert(m.nodes.begin(), m.nodes.end());
    ++*count;
    if (fused) {
      Extend(g, n, matches);
      continue;
    }
    std::vector<ir::Value*> inputs = n->inputs;
    const size_t own = n->op_type == "MatMul" ? 2 : 3;  // primary inputs, optional bias padded
    inputs.resize(std::max(own, inputs.size()), nullptr);
    ir::Node* f = MakeFused(g, name_it->second, *n, inputs, n->outputs[0], {}, true);
    removed.insert(n);
    g.RemoveNode(n);
    f->outputs[0]->producer = f;
    Extend(g, f, matches);
  }
  if (*count) RETURN_IF_ERROR(g.TopologicalSort());
  return Status::OK();
}

// The first op of an elementwise chain at node n: X plus the match.
std::optional<std::pair<ir::Value*, Match>> MatchFirst(ir::Node* n) {
  if (!Plain(n) || n->inputs.empty() || !n->inputs[0]) return std::nullopt;
  ir::Value* x = n->inputs[0];
  if (!IsFloat32(x)) return std::nullopt;
  for (auto matcher : {MatchSwish, MatchGelu}) {
    if (auto m = matcher(x); m && m->nodes.front() == n) return std::make_pair(x, *m);
    if (auto m = matcher(x); m && std::find(m->nodes.begin(), m->nodes.end(), n) != m->nodes.end()) {
      return std::nullopt;  // the pattern starts at another consumer of x; it is handled there
    }
  }
  if (auto p = UnaryPostOp(*n, true)) return std::make_pair(x, Match{{*p}, {}, {n}, n->outputs[0]});
  if (n->inputs.size() != 2 || !n->inputs[1]) return std::nullopt;
  ir::Value* a = n->inputs[0];
  ir::Value* b = n->inputs[1];
  const bool commutative = n->op_type == "Add" || n->op_type == "Mul" || n->op_type == "Max" || n->op_type == "Min";
  // X is the operand with the result's shape; the other broadcasts into it.
  if (commutative && (a->constant || !BroadcastsInto(b, a)) && BroadcastsInto(a, b) && !b->constant) std::swap(a, b);
  if (!IsFloat32(a)) return std::nullopt;
  if (auto m = MatchBinary(n, a, true)) return std::make_pair(a, *m);
  return std::nullopt;
}

// [N,C,1,1]-like operand on a 4-D tensor (squeeze-excitation scaling).
bool IsChannelBroadcast(const ir::Value* x, const ir::Value* e) {
  auto xs = x->shape;
  if (!xs || xs->size() != 4 || !e->shape || e->shape->size() != 4) return false;
  const auto& ed = *e->shape;
  if (!ed[2].is_known() || ed[2].value != 1 || !ed[3].is_known() || ed[3].value != 1) return false;
  return !(ed[1].is_known() && ed[1].value == 1);
}

Status ChainsGraph(ir::Graph& g, const OptimizeOptions& options, int* count) {
  if (!Supported(options, "Elementwise")) return Status::OK();
  std::vector<ir::Node*> nodes;
  for (const auto& n : g.nodes()) nodes.push_back(n.get());
  std::set<ir::Node*> removed;
  for (ir::Node* n : nodes) {
    if (removed.count(n)) continue;
    if (n->domain == "gpuhive" && n->op_type == "Elementwise") {
      if (!n->output(0)) continue;
      auto ops = n->GetStrings("post_ops", std::vector<std::string>{});
      std::vector<Match> more = Collect(n->outputs[0], true, ops.ok() ? ops->size() : 0);
      if (more.empty()) continue;
      for (const Match& m : more) removed.insert(m.nodes.begin(), m.nodes.end());
      Extend(g, n, more);
      ++*count;
      continue;
    }
    auto first = MatchFirst(n);
    if (!first) continue;
    ir::Value* x = first->first;
    std::vector<Match> matches = {first->second};
    std::vector<Match> more = Collect(first->second.out, true, 1);
    matches.insert(matches.end(), more.begin(), more.end());
    size_t absorbed = 0;
    for (const Match& m : matches) absorbed += m.nodes.size();
    const Match& m0 = matches[0];
    const bool se_scale = absorbed == 1 && m0.extras.size() == 1 && IsChannelBroadcast(x, m0.extras[0]);
    if (absorbed < 2 && !se_scale) continue;
    for (const Match& m : matches) removed.insert(m.nodes.begin(), m.nodes.end());
    // The fused node starts as an empty chain on X; Extend moves the matches in.
    ir::Value* placeholder = g.AddValue(g.UniqueName(n->name + "_x"), DataType::kFloat32);
    ir::Node* f = MakeFused(g, "Elementwise", *n, {x}, placeholder, {}, false);
    Extend(g, f, matches);
    ++*count;
  }
  if (*count) RETURN_IF_ERROR(g.TopologicalSort());
  return Status::OK();
}

StatusOr<int> RunFusion(ir::Model& model, const OptimizeOptions& options,
                        Status (*fn)(ir::Graph&, const OptimizeOptions&, int*)) {
  if (!model.graph) return InvalidArgument("model has no graph");
  int count = 0;
  RETURN_IF_ERROR(ForEachGraph(*model.graph, [&](ir::Graph& g) {
    int local = 0;
    RETURN_IF_ERROR(fn(g, options, &local));
    count += local;
    return Status::OK();
  }));
  if (count) model.opsets["gpuhive"] = 1;
  return count;
}

}  // namespace

StatusOr<int> FusePostOps(ir::Model& model, const OptimizeOptions& options) {
  return RunFusion(model, options, PostOpsGraph);
}
StatusOr<int> FuseElementwiseChains(ir::Model& model, const OptimizeOptions& options) {
  return RunFusion(model, options, ChainsGraph);
}

}  // namespace gpuhive
