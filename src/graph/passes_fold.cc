// Constant folding: Shape/Size of static shapes directly, everything else through the evaluator.
#include <cstdint>
#include <set>

#include "gpuhive/logging.h"
#include "gpuhive/passes.h"
#include "graph/pass_util.h"

namespace gpuhive {
using namespace pass_detail;  // NOLINT: internal helpers of this module
namespace {

bool IsNondeterministic(const std::string& op) {
  static const std::set<std::string> kOps = {"RandomNormal", "RandomUniform", "RandomNormalLike",
                                             "RandomUniformLike", "Multinomial", "Bernoulli"};
  return kOps.count(op) != 0;
}

bool HasSubgraph(const ir::Node& n) {
  for (const auto& [name, a] : n.attrs) {
    if (a.type() == ir::Attribute::Type::kGraph) return true;
  }
  return !n.implicit_inputs.empty();
}

void MakeConstant(ir::Value* v, Tensor t) {
  v->dtype = t.dtype();
  std::vector<ir::Dim> dims;
  for (int64_t d : t.shape()) dims.push_back(ir::Dim{d, ""});
  v->shape = std::move(dims);
  v->constant = std::make_shared<const Tensor>(std::move(t));
}

// Shape (with opset-15 start/end) or Size of a statically shaped value.
StatusOr<std::optional<Tensor>> FoldShapeOp(const ir::Node& n) {
  auto s = StaticShape(n.input(0));
  if (!s) return std::optional<Tensor>();
  if (n.op_type == "Size") {
    ASSIGN_OR_RETURN(Tensor t, Tensor::FromVector(DataType::kInt64, {}, std::vector<int64_t>{NumElements(*s)}));
    return std::optional<Tensor>(std::move(t));
  }
  const int64_t rank = static_cast<int64_t>(s->size());
  ASSIGN_OR_RETURN(int64_t start, n.GetInt("start", 0));
  ASSIGN_OR_RETURN(int64_t end, n.GetInt("end", rank));
  auto clamp = [rank](int64_t v) { return std::clamp(v < 0 ? v + rank : v, int64_t{0}, rank); };
  start = clamp(start);
  end = clamp(end);
  std::vector<int64_t> dims;
  for (int64_t i = start; i < end; ++i) dims.push_back((*s)[i]);
  ASSIGN_OR_RETURN(Tensor t, Tensor::FromVector(DataType::kInt64, {static_cast<int64_t>(dims.size())}, dims));
  return std::optional<Tensor>(std::move(t));
}

// Output bytes known before evaluation (declared static shapes); lets oversized results such as
// ConstantOfShape([1e9]) be skipped without computing them.
uint64_t DeclaredBytes(const ir::Node& n) {
  uint64_t total = 0;
  for (const ir::Value* v : n.outputs) {
    auto s = StaticShape(v);
    if (!v || !s || DataTypeSize(v->dtype) == 0) continue;
    uint64_t elems = 1;
    for (int64_t d : *s) {
      if (d > 0 && elems > (uint64_t{1} << 62) / static_cast<uint64_t>(d)) return UINT64_MAX;
      elems *= static_cast<uint64_t>(d);
    }
    total += elems * DataTypeSize(v->dtype);
  }
  return total;
}

Status FoldGraph(ir::Graph& g, const OptimizeOptions& options, int* count) {
  std::vector<ir::Node*> nodes;
  for (const auto& n : g.nodes()) nodes.push_back(n.get());
  for (ir::Node* n : nodes) {
    if (!n->domain.empty() || n->outputs.empty()) continue;
    if ((n->op_type == "Shape" || n->op_type == "Size") && n->output(0)) {
      ASSIGN_OR_RETURN(std::optional<Tensor> t, FoldShapeOp(*n));
      if (!t) continue;
      ir::Value* out = n->outputs[0];
      g.RemoveNode(n);
      MakeConstant(out, std::move(*t));
      ++*count;
      continue;
    }
    if (!options.evaluator || IsNondeterministic(n->op_type) || HasSubgraph(*n)) continue;
    std::vector<const Tensor*> inputs;
    bool all_const = false;
    for (ir::Value* v : n->inputs) {
      if (v && !v->constant) {
        all_const = false;
        break;
      }
      if (v) all_const = true;
      inputs.push_back(v ? v->constant.get() : nullptr);
    }
    if (!all_const || DeclaredBytes(*n) > options.max_folded_bytes) continue;
    StatusOr<std::vector<Tensor>> r = options.evaluator(*n, inputs);
    if (!r.ok()) {
      GH_LOG_DEBUG("graph", "not folding {}: {}", n->Describe(), r.status().ToString());
      continue;
    }
    std::vector<Tensor>& outs = *r;
    uint64_t bytes = 0;
    bool ok = outs.size() >= n->outputs.size();
    for (size_t i = 0; ok && i < n->outputs.size(); ++i) {
      if (!n->outputs[i]) continue;
      ok = IsSupportedDataType(outs[i].dtype());
      bytes += outs[i].bytes();
    }
    if (!ok) {
      GH_LOG_DEBUG("graph", "not folding {}: evaluator returned {} outputs", n->Describe(), outs.size());
      continue;
    }
    if (bytes > options.max_folded_bytes) continue;
    std::vector<ir::Value*> out_values = n->outputs;
    g.RemoveNode(n);
    for (size_t i = 0; i < out_values.size(); ++i) {
      if (out_values[i]) MakeConstant(out_values[i], std::move(outs[i]));
    }
    ++*count;
  }
  return Status::OK();
}

}  // namespace

StatusOr<int> FoldConstants(ir::Graph& graph, const OptimizeOptions& options) {
  int count = 0;
  RETURN_IF_ERROR(ForEachGraph(graph, [&](ir::Graph& g) { return FoldGraph(g, options, &count); }));
  return count;
}

}  // namespace gpuhive
