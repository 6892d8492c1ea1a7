// ONNX ModelProto -> ir::Model. See include/gpuhive/onnx_import.h for the contract.
#include "gpuhive/onnx_import.h"

#include <onnx/checker.h>
#include <onnx/shape_inference/implementation.h>

#include <algorithm>
#include <exception>
#include <filesystem>
#include <map>
#include <set>
#include <string_view>
#include <unordered_map>

#include "gpuhive/logging.h"
#include "graph/onnx_tensor.h"

namespace gpuhive {
namespace {
using onnx_detail::DataTypeFromOnnx;
using onnx_detail::TensorFromProto;

constexpr int kMinOpset = 7;
constexpr int kMaxOpset = 17;

std::string NormalizeDomain(const std::string& d) { return d == "ai.onnx" ? std::string() : d; }

// Name resolution for one graph being converted; `parent` is the enclosing graph's scope and
// `owner` the node of the enclosing graph whose attribute this graph is (it collects
// implicit inputs).
struct Scope {
  ir::Graph* graph = nullptr;
  Scope* parent = nullptr;
  ir::Node* owner = nullptr;
};

class Importer {
 public:
  Importer(std::string base_dir, std::map<std::string, int> opsets)
      : base_dir_(std::move(base_dir)), opsets_(std::move(opsets)) {}

  // `release`, when given, is `g` itself: initializer payloads are freed as soon as they are
  // converted, so a large model is not held twice.
  StatusOr<std::shared_ptr<ir::Graph>> ConvertGraph(const onnx::GraphProto& g, Scope* parent,
                                                    ir::Node* owner, onnx::GraphProto* release = nullptr);

 private:
  StatusOr<ir::Value*> Resolve(Scope& scope, const std::string& name);
  Status ConvertAttribute(const onnx::AttributeProto& a, Scope& scope, ir::Node* node,
                          ir::Attribute* out);
  Status ConvertConstantNode(const onnx::NodeProto& n, ir::Value* out);
  void ApplyType(ir::Value* v, const onnx::TypeProto& t);

  std::string base_dir_;
  std::map<std::string, int> opsets_;
  std::unordered_map<std::string, const onnx::TypeProto*> types_;  // current graph's declared types
};

void Importer::ApplyType(ir::Value* v, const onnx::TypeProto& t) {
  if (!t.has_tensor_type()) return;
  const auto& tt = t.tensor_type();
  if (tt.elem_type() != 0 && v->dtype == DataType::kUndefined) v->dtype = DataTypeFromOnnx(tt.elem_type());
  if (!tt.has_shape() || v->shape) return;
  std::vector<ir::Dim> dims;
  for (const auto& d : tt.shape().dim()) {
    ir::Dim dim;
    if (d.has_dim_value() && d.dim_value() >= 0) {
      dim.value = d.dim_value();
    } else if (d.has_dim_param()) {
      dim.symbol = d.dim_param();
    }
    dims.push_back(std::move(dim));
  }
  v->shape = std::move(dims);
}

StatusOr<ir::Value*> Importer::Resolve(Scope& scope, const std::string& name) {
  if (ir::Value* v = scope.graph->FindValue(name)) return v;
  if (!scope.parent) return nullptr;
  ASSIGN_OR_RETURN(ir::Value* outer, Resolve(*scope.parent, name));
  if (!outer) return nullptr;
  // Visible here as an outer reference; the owning node in the enclosing graph carries the
  // enclosing value as an implicit input so the runtime (and dead-code elimination) see the use.
  ir::Value* ref = scope.graph->AddValue(name, outer->dtype);
  ref->shape = outer->shape;
  ref->is_outer_ref = true;
  scope.graph->outer_refs().push_back(ref);
  ir::Node* owner = scope.owner;
  if (std::find(owner->implicit_inputs.begin(), owner->implicit_inputs.end(), outer) ==
      owner->implicit_inputs.end()) {
    owner->implicit_inputs.push_back(outer);
    outer->consumers.push_back(owner);
  }
  return ref;
}

Status Importer::ConvertConstantNode(const onnx::NodeProto& n, ir::Value* out) {
  if (n.attribute_size() != 1) {
    return InvalidArgument("Constant node '{}' must have exactly one value attribute, has {}",
                           n.name(), n.attribute_size());
  }
  const auto& a = n.attribute(0);
  StatusOr<Tensor> t = InvalidArgument("Constant node '{}': unknown attribute '{}'", n.name(), a.name());
  if (a.name() == "value") {
    t = TensorFromProto(a.t(), base_dir_);
  } else if (a.name() == "value_float") {
    t = Tensor::FromVector(DataType::kFloat32, {}, std::vector<float>{a.f()});
  } else if (a.name() == "value_floats") {
    std::vector<float> v(a.floats().begin(), a.floats().end());
    t = Tensor::FromVector(DataType::kFloat32, {static_cast<int64_t>(v.size())}, v);
  } else if (a.name() == "value_int") {
    t = Tensor::FromVector(DataType::kInt64, {}, std::vector<int64_t>{a.i()});
  } else if (a.name() == "value_ints") {
    std::vector<int64_t> v(a.ints().begin(), a.ints().end());
    t = Tensor::FromVector(DataType::kInt64, {static_cast<int64_t>(v.size())}, v);
  } else if (a.name() == "value_string" || a.name() == "value_strings") {
    return Unimplemented("Constant node '{}' ({}) holds strings, which gpuhive does not support",
                         n.name(), n.output(0));
  } else if (a.name() == "sparse_value") {
    return Unimplemented("Constant node '{}' ({}) holds a sparse tensor, which gpuhive does not support",
                         n.name(), n.output(0));
  }
  if (!t.ok()) return t.status().WithContext(fmt::format("Constant '{}'", n.output(0)));
  auto c = std::make_shared<const Tensor>(std::move(t).value());
  out->dtype = c->dtype();
  std::vector<ir::Dim> dims;
  for (int64_t d : c->shape()) dims.push_back(ir::Dim{d, ""});
  out->shape = std::move(dims);
  out->constant = std::move(c);
  return Status::OK();
}

Status Importer::ConvertAttribute(const onnx::AttributeProto& a, Scope& scope, ir::Node* node,
                                  ir::Attribute* out) {
  auto type = a.type();
  if (type == onnx::AttributeProto::UNDEFINED) {  // IR < 2: infer from the field that is set
    if (a.has_f()) type = onnx::AttributeProto::FLOAT;
    else if (a.has_i()) type = onnx::AttributeProto::INT;
    else if (a.has_s()) type = onnx::AttributeProto::STRING;
    else if (a.has_t()) type = onnx::AttributeProto::TENSOR;
    else if (a.has_g()) type = onnx::AttributeProto::GRAPH;
    else if (a.floats_size()) type = onnx::AttributeProto::FLOATS;
    else if (a.ints_size()) type = onnx::AttributeProto::INTS;
    else if (a.strings_size()) type = onnx::AttributeProto::STRINGS;
  }
  switch (type) {
    case onnx::AttributeProto::FLOAT: *out = ir::Attribute(a.f()); return Status::OK();
    case onnx::AttributeProto::INT: *out = ir::Attribute(static_cast<int64_t>(a.i())); return Status::OK();
    case onnx::AttributeProto::STRING: *out = ir::Attribute(a.s()); return Status::OK();
    case onnx::AttributeProto::FLOATS:
      *out = ir::Attribute(std::vector<float>(a.floats().begin(), a.floats().end()));
      return Status::OK();
    case onnx::AttributeProto::INTS:
      *out = ir::Attribute(std::vector<int64_t>(a.ints().begin(), a.ints().end()));
      return Status::OK();
    case onnx::AttributeProto::STRINGS:
      *out = ir::Attribute(std::vector<std::string>(a.strings().begin(), a.strings().end()));
      return Status::OK();
    case onnx::AttributeProto::TENSOR: {
      ASSIGN_OR_RETURN(Tensor t, TensorFromProto(a.t(), base_dir_));
      *out = ir::Attribute(ir::ConstTensor(std::make_shared<const Tensor>(std::move(t))));
      return Status::OK();
    }
    case onnx::AttributeProto::GRAPH: {
      Scope* scope_ptr = &scope;
      ASSIGN_OR_RETURN(std::shared_ptr<ir::Graph> g, ConvertGraph(a.g(), scope_ptr, node));
      *out = ir::Attribute(std::move(g));
      return Status::OK();
    }
    case onnx::AttributeProto::SPARSE_TENSOR:
    case onnx::AttributeProto::SPARSE_TENSORS:
      return Unimplemented("attribute '{}' is a sparse tensor, which gpuhive does not support", a.name());
    default:
      return Unimplemented("attribute '{}' has type {}, which gpuhive does not support", a.name(),
                           onnx::AttributeProto::AttributeType_Name(type));
  }
}

StatusOr<std::shared_ptr<ir::Graph>> Importer::ConvertGraph(const onnx::GraphProto& g, Scope* parent,
                                                            ir::Node* owner, onnx::GraphProto* release) {
  if (g.sparse_initializer_size() > 0) {
    return Unimplemented("graph '{}' has {} sparse initializers ('{}'), which gpuhive does not support",
                         g.name(), g.sparse_initializer_size(), g.sparse_initializer(0).values().name());
  }
  auto graph = std::make_shared<ir::Graph>();
  graph->name = g.name();
  Scope scope{graph.get(), parent, owner};

  // Declared types of this graph (after ONNX shape inference). Subgraphs are converted while the
  // enclosing graph's map is saved and restored around them.
  auto saved_types = std::move(types_);
  types_.clear();
  for (const auto& vi : g.value_info()) types_[vi.name()] = &vi.type();
  for (const auto& vi : g.input()) types_[vi.name()] = &vi.type();
  for (const auto& vi : g.output()) types_[vi.name()] = &vi.type();
  auto define = [&](const std::string& name) -> StatusOr<ir::Value*> {
    if (name.empty()) return InvalidArgument("graph '{}' defines a value with an empty name", g.name());
    if (graph->FindValue(name)) {
      return InvalidArgument("graph '{}': value '{}' is defined more than once", g.name(), name);
    }
    ir::Value* v = graph->AddValue(name);
    auto it = types_.find(name);
    if (it != types_.end()) ApplyType(v, *it->second);
    return v;
  };

  std::set<std::string> initializer_names;
  for (int i = 0; i < g.initializer_size(); ++i) {
    const onnx::TensorProto& init = g.initializer(i);
    ASSIGN_OR_RETURN(ir::Value * v, define(init.name()));
    ASSIGN_OR_RETURN(Tensor t, TensorFromProto(init, base_dir_));
    if (release) std::string().swap(*release->mutable_initializer(i)->mutable_raw_data());
    v->dtype = t.dtype();
    std::vector<ir::Dim> dims;
    for (int64_t d : t.shape()) dims.push_back(ir::Dim{d, ""});
    v->shape = std::move(dims);
    v->constant = std::make_shared<const Tensor>(std::move(t));
    initializer_names.insert(init.name());
  }
  for (const auto& in : g.input()) {
    // ONNX IR < 4 lists initializers among the inputs; they stay constants here.
    if (initializer_names.count(in.name())) continue;
    ASSIGN_OR_RETURN(ir::Value * v, define(in.name()));
    v->is_graph_input = true;
    graph->inputs().push_back(v);
  }
  // Every node output is defined before any node is wired, so subgraphs may refer to values of
  // this graph produced by nodes listed later (the graph is sorted afterwards).
  std::vector<std::vector<ir::Value*>> outs(g.node_size());
  for (int i = 0; i < g.node_size(); ++i) {
    for (const auto& o : g.node(i).output()) {
      if (o.empty()) {
        outs[i].push_back(nullptr);
        continue;
      }
      ASSIGN_OR_RETURN(ir::Value * v, define(o));
      outs[i].push_back(v);
    }
  }
  for (int i = 0; i < g.node_size(); ++i) {
    const onnx::NodeProto& np = g.node(i);
    const std::string domain = NormalizeDomain(np.domain());
    std::string name = np.name().empty() ? fmt::format("{}_{}", np.op_type(), i) : np.name();
    if (np.op_type().empty()) return InvalidArgument("graph '{}': node {} has no op_type", g.name(), i);
    auto op_it = opsets_.find(domain);
    if (op_it == opsets_.end()) {
      return InvalidArgument("node '{}' ({}) uses domain '{}', which the model does not import", name,
                             np.op_type(), domain);
    }
    if (domain.empty() && np.op_type() == "Constant") {
      if (outs[i].size() != 1 || !outs[i][0]) {
        return InvalidArgument("Constant node '{}' must have exactly one output", name);
      }
      RETURN_IF_ERROR(ConvertConstantNode(np, outs[i][0]));
      continue;
    }
    std::vector<ir::Value*> inputs;
    for (const auto& in : np.input()) {
      if (in.empty()) {
        inputs.push_back(nullptr);
        continue;
      }
      ASSIGN_OR_RETURN(ir::Value * v, Resolve(scope, in));
      if (!v) return InvalidArgument("node '{}' ({}): input '{}' is not defined", name, np.op_type(), in);
      inputs.push_back(v);
    }
    ir::Node* node = graph->AddNode(np.op_type(), std::move(inputs), outs[i], name, domain);
    node->opset = op_it->second;
    for (const auto& a : np.attribute()) {
      if (!a.ref_attr_name().empty()) continue;  // only meaningful inside function bodies
      if (a.type() == onnx::AttributeProto::TYPE_PROTO || a.type() == onnx::AttributeProto::TYPE_PROTOS) {
        GH_LOG_DEBUG("onnx", "node '{}': ignoring type attribute '{}'", name, a.name());
        continue;
      }
      ir::Attribute attr;
      Status s = ConvertAttribute(a, scope, node, &attr);
      if (!s.ok()) return s.WithContext(fmt::format("node '{}' ({})", name, np.op_type()));
      node->attrs.erase(a.name());
      node->attrs.emplace(a.name(), std::move(attr));
    }
  }
  for (const auto& out : g.output()) {
    ASSIGN_OR_RETURN(ir::Value * v, Resolve(scope, out.name()));
    if (!v) return InvalidArgument("graph '{}': output '{}' is not produced", g.name(), out.name());
    auto it = types_.find(out.name());
    if (it != types_.end()) ApplyType(v, *it->second);
    v->is_graph_output = true;
    graph->outputs().push_back(v);
  }
  types_ = std::move(saved_types);
  RETURN_IF_ERROR(graph->TopologicalSort());
  return graph;
}

// ONNX's shape inference divides by some attributes without checking them (a Conv with strides
// [0, 2] is a SIGFPE inside libonnx, found by fuzz/onnx_import_fuzzer.cc), so these must be
// positive before it runs; every ONNX operator that has them requires it. Subgraphs too: shape
// inference walks If/Loop/Scan bodies.
Status CheckAttributesShapeInferenceDividesBy(const onnx::GraphProto& g) {
  static constexpr std::string_view kPositive[] = {"strides", "dilations", "kernel_shape", "blocksize",
                                                   "group"};
  for (const auto& n : g.node()) {
    const bool onnx_domain = n.domain().empty() || n.domain() == "ai.onnx";
    for (const auto& a : n.attribute()) {
      if (onnx_domain && std::find(std::begin(kPositive), std::end(kPositive), a.name()) != std::end(kPositive)) {
        bool positive = a.type() != onnx::AttributeProto::INT || a.i() > 0;
        for (int64_t v : a.ints()) positive = positive && v > 0;
        if (!positive) {
          return InvalidArgument("node '{}' ({}): attribute '{}' must be positive", n.name(), n.op_type(),
                                 a.name());
        }
      }
      if (a.has_g()) RETURN_IF_ERROR(CheckAttributesShapeInferenceDividesBy(a.g()));
      for (const auto& sub : a.graphs()) RETURN_IF_ERROR(CheckAttributesShapeInferenceDividesBy(sub));
    }
  }
  return Status::OK();
}

// ONNX's shape inference adds value_info entries; its failures only cost us type information.
void RunOnnxShapeInference(onnx::ModelProto& m, const std::string& base_dir) {
  try {
    onnx::checker::CheckerContext ctx;
    ctx.set_ir_version(static_cast<int>(m.ir_version()));
    std::unordered_map<std::string, int> imports;
    for (const auto& o : m.opset_import()) imports[o.domain()] = static_cast<int>(o.version());
    ctx.set_opset_imports(imports);
    ctx.set_model_dir(base_dir);
    // Every node must match its schema (input counts, attribute types) before shape inference
    // reads it. Nodes only: the graph-level checks also demand things (typed outputs, ...) that
    // shape inference does not need.
    onnx::checker::LexicalScopeContext lex;
    const auto& g = m.graph();
    for (const auto& v : g.input()) lex.add(v.name());
    for (const auto& t : g.initializer()) lex.add(t.name());
    for (const auto& n : g.node()) {
      for (const auto& o : n.output()) lex.add(o);
    }
    for (const auto& n : g.node()) onnx::checker::check_node(n, ctx, lex);
    // Data propagation lets Reshape targets computed from Shape/Gather/Concat chains resolve, so
    // transformer graphs get ranks and shapes for (nearly) every value.
    onnx::ShapeInferenceOptions options(/*check_type=*/false, /*error_mode=*/0, /*data_prop=*/true);
    onnx::shape_inference::InferShapes(m, onnx::OpSchemaRegistry::Instance(), options);
  } catch (const std::exception& e) {
    GH_LOG_DEBUG("onnx", "ONNX checker/shape inference failed (types stay undeclared): {}", e.what());
  } catch (...) {
    GH_LOG_DEBUG("onnx", "ONNX checker/shape inference failed with an unknown exception");
  }
}

StatusOr<std::unique_ptr<ir::Model>> ImportModelProto(onnx::ModelProto& m, const std::string& base_dir) {
  if (!m.has_graph()) return InvalidArgument("ONNX model has no graph");
  if (m.functions_size() > 0) {
    GH_LOG_DEBUG("onnx", "model has {} local functions; their nodes are kept as custom ops",
                 m.functions_size());
  }
  auto model = std::make_unique<ir::Model>();
  model->ir_version = m.ir_version();
  model->producer_name = m.producer_name();
  for (const auto& kv : m.metadata_props()) model->metadata[kv.key()] = kv.value();
  for (const auto& o : m.opset_import()) {
    model->opsets[NormalizeDomain(o.domain())] = static_cast<int>(o.version());
  }
  // A model may use only other domains (e.g. ai.onnx.preview.training); nodes of a domain the
  // model does not import are refused when they are converted.
  auto def = model->opsets.find("");
  if (def != model->opsets.end() && (def->second < kMinOpset || def->second > kMaxOpset)) {
    return Unimplemented("ONNX opset {} is not supported (supported: {}..{})", def->second, kMinOpset,
                         kMaxOpset);
  }
  RETURN_IF_ERROR(CheckAttributesShapeInferenceDividesBy(m.graph()));
  RunOnnxShapeInference(m, base_dir);
  Importer importer(base_dir, model->opsets);
  ASSIGN_OR_RETURN(model->graph, importer.ConvertGraph(m.graph(), nullptr, nullptr, m.mutable_graph()));
  return model;
}

}  // namespace

StatusOr<std::unique_ptr<ir::Model>> ImportOnnxBytes(std::string_view bytes, const ImportOptions& options) {
  if (bytes.size() > options.max_model_bytes) {
    return InvalidArgument("ONNX model is {} bytes, more than the limit of {}", bytes.size(),
                           options.max_model_bytes);
  }
  onnx::ModelProto m;
  RETURN_IF_ERROR(onnx_detail::ParseProto(bytes, &m, "ONNX model"));
  return ImportModelProto(m, options.base_dir);
}

StatusOr<std::unique_ptr<ir::Model>> ImportOnnxFile(const std::string& path, const ImportOptions& options) {
  onnx::ModelProto m;
  RETURN_IF_ERROR(onnx_detail::ParseProtoFile(path, options.max_model_bytes, &m, "ONNX model '" + path + "'"));
  std::string base = options.base_dir;
  if (base.empty()) {
    base = std::filesystem::path(path).parent_path().string();
    if (base.empty()) base = ".";
  }
  auto model = ImportModelProto(m, base);
  if (!model.ok()) return model.status().WithContext(path);
  return model;
}

}  // namespace gpuhive
