#include "gpuhive/residency/synthetic_models.h"

#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <cstring>

namespace gpuhive::residency {
namespace {

void SetFloatType(onnx::ValueInfoProto* vi, const std::string& name, int dim) {
  vi->set_name(name);
  auto* tt = vi->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(onnx::TensorProto::FLOAT);
  tt->mutable_shape()->add_dim()->set_dim_param("N");
  tt->mutable_shape()->add_dim()->set_dim_value(dim);
}

}  // namespace

std::string MakeMatMulChainOnnx(const SyntheticModelSpec& spec) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.set_producer_name("gpuhive-synthetic");
  m.add_opset_import()->set_version(13);
  auto* g = m.mutable_graph();
  g->set_name("matmul_chain");
  SetFloatType(g->add_input(), "x", spec.dim);
  const size_t n = static_cast<size_t>(spec.dim) * static_cast<size_t>(spec.dim);
  std::string raw(n * sizeof(float), '\0');
  uint32_t state = spec.seed * 2654435761u + 1;
  std::string prev = "x";
  for (int l = 0; l < spec.layers; ++l) {
    // A cheap LCG: filling a 1 GB model must take well under a second per 100 MB.
    float* w = reinterpret_cast<float*>(raw.data());
    for (size_t i = 0; i < n; ++i) {
      state = state * 1664525u + 1013904223u;
      w[i] = (static_cast<float>(state >> 8) * (1.0f / 16777216.0f) * 2.0f - 1.0f) * spec.scale;
    }
    auto* t = g->add_initializer();
    t->set_name("w" + std::to_string(l));
    t->set_data_type(onnx::TensorProto::FLOAT);
    t->add_dims(spec.dim);
    t->add_dims(spec.dim);
    t->set_raw_data(raw);
    std::string mm = "mm" + std::to_string(l);
    auto* node = g->add_node();
    node->set_op_type("MatMul");
    node->set_name(mm);
    node->add_input(prev);
    node->add_input(t->name());
    bool last = l + 1 == spec.layers;
    node->add_output(last && !spec.bias ? "y" : mm);
    prev = mm;
    if (spec.bias) {
      std::string bias_raw(static_cast<size_t>(spec.dim) * sizeof(float), '\0');
      float* b = reinterpret_cast<float*>(bias_raw.data());
      for (int i = 0; i < spec.dim; ++i) {
        state = state * 1664525u + 1013904223u;
        b[i] = (static_cast<float>(state >> 8) * (1.0f / 16777216.0f) * 2.0f - 1.0f) * spec.scale;
      }
      auto* bt = g->add_initializer();
      bt->set_name("b" + std::to_string(l));
      bt->set_data_type(onnx::TensorProto::FLOAT);
      bt->add_dims(spec.dim);
      bt->set_raw_data(bias_raw);
      auto* add = g->add_node();
      add->set_op_type("Add");
      add->set_name("add" + std::to_string(l));
      add->add_input(mm);
      add->add_input(bt->name());
      prev = "biased" + std::to_string(l);
      add->add_output(last ? "y" : prev);
    }
    if (!last) {
      auto* relu = g->add_node();
      relu->set_op_type("Relu");
      relu->set_name("relu" + std::to_string(l));
      relu->add_input(prev);
      relu->add_output("r" + std::to_string(l));
      prev = relu->output(0);
    }
  }
  SetFloatType(g->add_output(), "y", spec.dim);
  std::string out;
  m.SerializeToString(&out);
  return out;
}

SyntheticModelSpec SpecForBytes(uint64_t bytes, uint32_t seed, int max_dim) {
  SyntheticModelSpec s;
  s.seed = seed;
  // Up to 4 layers at the largest dim that fits, then more layers at max_dim.
  double per_layer = static_cast<double>(bytes) / 4.0 / 4.0;  // floats per layer with 4 layers
  int dim = static_cast<int>(std::sqrt(per_layer)) / 16 * 16;
  dim = std::clamp(dim, 16, max_dim);
  s.dim = dim;
  uint64_t layer_bytes = static_cast<uint64_t>(dim) * static_cast<uint64_t>(dim) * 4;
  s.layers = static_cast<int>(std::max<uint64_t>(1, (bytes + layer_bytes / 2) / layer_bytes));
  s.scale = 1.0f / std::sqrt(static_cast<float>(dim));
  return s;
}

}  // namespace gpuhive::residency
