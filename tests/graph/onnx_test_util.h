// Builders for small ONNX models in tests (onnx::ModelProto through the protobuf API).
#pragma once

#include <onnx/onnx_pb.h>

#include <string>
#include <variant>
#include <vector>

namespace gpuhive::testing {

using DimSpec = std::variant<int64_t, std::string>;  // a size or a symbol; "?" = unknown

inline onnx::ModelProto MakeModel(int opset = 13) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.set_producer_name("gpuhive-test");
  auto* o = m.add_opset_import();
  o->set_domain("");
  o->set_version(opset);
  m.mutable_graph()->set_name("main");
  return m;
}

inline void SetType(onnx::ValueInfoProto* vi, const std::string& name, int elem,
                    const std::vector<DimSpec>& dims) {
  vi->set_name(name);
  auto* tt = vi->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(elem);
  auto* shape = tt->mutable_shape();
  for (const auto& d : dims) {
    auto* dim = shape->add_dim();
    if (std::holds_alternative<int64_t>(d)) {
      dim->set_dim_value(std::get<int64_t>(d));
    } else if (std::get<std::string>(d) != "?") {
      dim->set_dim_param(std::get<std::string>(d));
    }
  }
}

inline void AddInput(onnx::GraphProto* g, const std::string& name, int elem, const std::vector<DimSpec>& dims) {
  SetType(g->add_input(), name, elem, dims);
}
inline void AddOutput(onnx::GraphProto* g, const std::string& name, int elem, const std::vector<DimSpec>& dims) {
  SetType(g->add_output(), name, elem, dims);
}
// Output without type information (ONNX allows it inside subgraphs).
inline void AddOutputName(onnx::GraphProto* g, const std::string& name) { g->add_output()->set_name(name); }

inline onnx::NodeProto* AddNode(onnx::GraphProto* g, const std::string& op, const std::vector<std::string>& in,
                                const std::vector<std::string>& out, const std::string& name = "") {
  auto* n = g->add_node();
  n->set_op_type(op);
  n->set_name(name);
  for (const auto& s : in) n->add_input(s);
  for (const auto& s : out) n->add_output(s);
  return n;
}

inline void AddFloatAttr(onnx::NodeProto* n, const std::string& name, float v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(v);
}
inline void AddIntAttr(onnx::NodeProto* n, const std::string& name, int64_t v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(v);
}
inline void AddIntsAttr(onnx::NodeProto* n, const std::string& name, const std::vector<int64_t>& v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t x : v) a->add_ints(x);
}
inline onnx::GraphProto* AddGraphAttr(onnx::NodeProto* n, const std::string& name) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::GRAPH);
  a->mutable_g()->set_name(name);
  return a->mutable_g();
}

// Float initializer stored as raw_data.
inline onnx::TensorProto* AddFloatInit(onnx::GraphProto* g, const std::string& name, const std::vector<int64_t>& dims,
                                       const std::vector<float>& v) {
  auto* t = g->add_initializer();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : dims) t->add_dims(d);
  t->set_raw_data(v.data(), v.size() * sizeof(float));
  return t;
}

inline std::string Serialize(const onnx::ModelProto& m) {
  std::string s;
  m.SerializeToString(&s);
  return s;
}

}  // namespace gpuhive::testing
