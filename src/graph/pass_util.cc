#include "graph/pass_util.h"

#include <algorithm>
#include <cmath>
#include <memory>

namespace gpuhive::pass_detail {

Status ForEachGraph(ir::Graph& graph, const std::function<Status(ir::Graph&)>& fn) {
  RETURN_IF_ERROR(fn(graph));
  // Collect first: fn on a subgraph never touches the enclosing graph's node list.
  std::vector<std::shared_ptr<ir::Graph>> subs;
  for (const auto& n : graph.nodes()) {
    for (const auto& [name, attr] : n->attrs) {
      if (auto g = attr.get_if<std::shared_ptr<ir::Graph>>(); g && *g) subs.push_back(*g);
    }
  }
  for (auto& g : subs) RETURN_IF_ERROR(ForEachGraph(*g, fn));
  return Status::OK();
}

size_t UseCount(const ir::Value* v) { return v->consumers.size() + (v->is_graph_output ? 1 : 0); }

ir::Node* SoleConsumer(const ir::Value* v) {
  if (!v || v->is_graph_output || v->consumers.size() != 1) return nullptr;
  return v->consumers[0];
}

std::optional<Shape> StaticShape(const ir::Value* v) {
  if (!v) return std::nullopt;
  if (v->constant) return v->constant->shape();
  if (!v->shape) return std::nullopt;
  Shape s;
  for (const auto& d : *v->shape) {
    if (!d.is_known()) return std::nullopt;
    s.push_back(d.value);
  }
  return s;
}

std::optional<float> ConstScalar(const ir::Value* v) {
  if (!v || !v->constant || v->constant->num_elements() != 1) return std::nullopt;
  const Tensor& t = *v->constant;
  switch (t.dtype()) {
    case DataType::kFloat32: return t.as<float>()[0];
    case DataType::kFloat64: return static_cast<float>(t.as<double>()[0]);
    case DataType::kInt64: return static_cast<float>(t.as<int64_t>()[0]);
    case DataType::kInt32: return static_cast<float>(t.as<int32_t>()[0]);
    default: return std::nullopt;
  }
}

bool IsConstNear(const ir::Value* v, float target, float rel_tol) {
  auto s = ConstScalar(v);
  return s && std::fabs(*s - target) <= rel_tol * std::max(1.f, std::fabs(target));
}

namespace {
std::optional<std::vector<ir::Dim>> Dims(const ir::Value* v) {
  if (!v) return std::nullopt;
  if (v->constant) {
    std::vector<ir::Dim> d;
    for (int64_t x : v->constant->shape()) d.push_back(ir::Dim{x, ""});
    return d;
  }
  return v->shape;
}
bool DimEq(const ir::Dim& a, const ir::Dim& b) {
  if (a.is_known() || b.is_known()) return a.value == b.value;
  return !a.symbol.empty() && a.symbol == b.symbol;
}
}  // namespace

bool SameShape(const ir::Value* a, const ir::Value* b) {
  auto da = Dims(a), db = Dims(b);
  if (!da || !db || da->size() != db->size()) return false;
  for (size_t i = 0; i < da->size(); ++i) {
    if (!DimEq((*da)[i], (*db)[i])) return false;
  }
  return true;
}

bool BroadcastsInto(const ir::Value* small, const ir::Value* big) {
  auto ds = Dims(small), db = Dims(big);
  if (!ds || !db || ds->size() > db->size()) return false;
  size_t off = db->size() - ds->size();
  for (size_t i = 0; i < ds->size(); ++i) {
    const ir::Dim& s = (*ds)[i];
    if (s.is_known() && s.value == 1) continue;
    if (!DimEq(s, (*db)[off + i])) return false;
  }
  return true;
}

bool IsFloat32(const ir::Value* v) { return v && v->dtype == DataType::kFloat32; }

bool BypassNode(ir::Graph& graph, ir::Node* node, ir::Value* in, ir::Value* out) {
  if (!in || !out || in == out) return false;
  // Subgraphs refer to enclosing values by name: a value a subgraph uses keeps its name.
  for (const ir::Node* c : out->consumers) {
    if (std::find(c->implicit_inputs.begin(), c->implicit_inputs.end(), out) != c->implicit_inputs.end()) {
      return false;
    }
  }
  if (!out->is_graph_output) {
    graph.ReplaceAllUses(out, in);
    graph.RemoveNode(node);
    return true;
  }
  // `out` names a graph output: let in's producer write it, if `in` is private to this node.
  ir::Node* producer = in->producer;
  if (!producer || in->is_graph_output || in->is_graph_input || in->consumers.size() != 1) return false;
  int slot = in->producer_output;
  graph.RemoveNode(node);
  producer->outputs[slot] = out;
  out->producer = producer;
  out->producer_output = slot;
  if (out->dtype == DataType::kUndefined) out->dtype = in->dtype;
  if (!out->shape) out->shape = in->shape;
  in->producer = nullptr;
  in->producer_output = -1;
  return true;
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
void SetAttr(ir::Node* node, const std::string& name, float value) {
  node->attrs.erase(name);
  node->attrs.emplace(name, ir::Attribute(value));
}
void SetAttr(ir::Node* node, const std::string& name, const std::vector<std::string>& value) {
  node->attrs.erase(name);
  node->attrs.emplace(name, ir::Attribute(value));
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

ir::Value* AddConstant(ir::Graph& graph, const std::string& base, Tensor t) {
  ir::Value* v = graph.AddValue(graph.UniqueName(base), t.dtype());
  std::vector<ir::Dim> dims;
  for (int64_t d : t.shape()) dims.push_back(ir::Dim{d, ""});
  v->shape = std::move(dims);
  v->constant = std::make_shared<const Tensor>(std::move(t));
  return v;
}

}  // namespace gpuhive::pass_detail
