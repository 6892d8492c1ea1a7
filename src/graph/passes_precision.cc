// FP16 models computed in FP32: the CPU kernels are float32 (oneDNN's f16 primitives need AVX512-FP16
// or AMX), so a model whose initializers, inputs and outputs are float16 runs as the float32 graph it
// describes, with casts only where the model meets its caller. See passes.h.
#include <cstring>
#include <set>

#include "gpuhive/passes.h"

namespace gpuhive {
namespace {

float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);  // inf / NaN
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;
  } else {  // subnormal: normalize
    exp = 113;
    while ((mant & 0x400u) == 0) {
      mant <<= 1;
      --exp;
    }
    bits = sign | (exp << 23) | ((mant & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

StatusOr<ir::ConstTensor> ToFloat32(const Tensor& t) {
  ASSIGN_OR_RETURN(Tensor f, Tensor::Allocate(DataType::kFloat32, t.shape()));
  const auto* in = t.as<uint16_t>();
  float* out = f.as<float>();
  for (int64_t i = 0; i < t.num_elements(); ++i) out[i] = HalfToFloat(in[i]);
  return std::make_shared<const Tensor>(std::move(f));
}

ir::Node* AddCast(ir::Model& model, ir::Graph& g, ir::Value* in, ir::Value* out, DataType to) {
  ir::Node* cast = g.AddNode("Cast", {in}, {out}, g.UniqueName(out->name + "/cast"));
  auto it = model.opsets.find("");
  cast->opset = it != model.opsets.end() ? it->second : 13;
  cast->attrs["to"] = ir::Attribute(static_cast<int64_t>(to));
  return cast;
}

// Points every node input that reads `from` at `to` (graph outputs are left alone).
void RewireConsumers(ir::Graph& g, ir::Value* from, ir::Value* to) {
  const std::vector<ir::Node*> consumers = from->consumers;
  std::set<ir::Node*> done;
  for (ir::Node* n : consumers) {
    if (!done.insert(n).second) continue;
    for (size_t s = 0; s < n->inputs.size(); ++s) {
      if (n->inputs[s] == from) g.SetNodeInput(n, s, to);
    }
  }
}

}  // namespace

StatusOr<int> ComputeFloat16InFloat32(ir::Model& model) {
  if (!model.graph) return 0;
  ir::Graph& g = *model.graph;
  int rewrites = 0;
  std::vector<ir::Value*> fp16_outputs;
  for (ir::Value* out : g.outputs()) {
    if (out->dtype == DataType::kFloat16 && !out->is_graph_input) fp16_outputs.push_back(out);
  }
  for (const auto& v : g.values()) {
    if (v->constant && v->constant->dtype() == DataType::kFloat16) {
      ASSIGN_OR_RETURN(v->constant, ToFloat32(*v->constant));
      v->dtype = DataType::kFloat32;
      ++rewrites;
    }
  }
  // Tensor attributes (Constant, ConstantOfShape's fill value) produce float32 values too.
  for (const auto& n : g.nodes()) {
    for (auto& [name, attr] : n->attrs) {
      const ir::ConstTensor* t = attr.get_if<ir::ConstTensor>();
      if (t == nullptr || *t == nullptr || (*t)->dtype() != DataType::kFloat16) continue;
      ASSIGN_OR_RETURN(ir::ConstTensor f, ToFloat32(**t));
      attr = ir::Attribute(f);
      ++rewrites;
    }
  }
  std::set<const ir::Node*> boundary;
  // A float16 input is cast once where it enters; its readers take the float32 copy.
  for (ir::Value* in : std::vector<ir::Value*>(g.inputs())) {
    if (in->dtype != DataType::kFloat16) continue;
    ir::Value* f = g.AddValue(g.UniqueName(in->name + "/fp32"), DataType::kFloat32);
    f->shape = in->shape;
    RewireConsumers(g, in, f);
    boundary.insert(AddCast(model, g, in, f, DataType::kFloat32));
    ++rewrites;
  }
  // A float16 output is produced in float32 and cast back last.
  for (ir::Value* out : fp16_outputs) {
    out->dtype = DataType::kFloat16;
    ir::Value* f = g.AddValue(g.UniqueName(out->name + "/fp32"), DataType::kFloat32);
    f->shape = out->shape;
    if (out->producer != nullptr) {
      ir::Node* p = out->producer;
      p->outputs[static_cast<size_t>(out->producer_output)] = f;
      f->producer = p;
      f->producer_output = out->producer_output;
      out->producer = nullptr;
      out->producer_output = -1;
    } else if (out->constant) {
      f->constant = std::move(out->constant);
      out->constant = nullptr;
    }
    RewireConsumers(g, out, f);
    boundary.insert(AddCast(model, g, f, out, DataType::kFloat16));
    ++rewrites;
  }
  for (const auto& v : g.values()) {
    if (v->dtype == DataType::kFloat16 && !v->is_graph_input && !v->is_graph_output) {
      v->dtype = DataType::kFloat32;
      ++rewrites;
    }
  }
  // The model's own casts to float16 keep values in float32 (computed in float32 throughout).
  for (const auto& n : g.nodes()) {
    if (n->op_type != "Cast" || !n->domain.empty() || boundary.count(n.get()) != 0) continue;
    auto to = n->GetInt("to", 0);
    if (to.ok() && *to == static_cast<int64_t>(DataType::kFloat16)) {
      n->attrs["to"] = ir::Attribute(static_cast<int64_t>(DataType::kFloat32));
      ++rewrites;
    }
  }
  return rewrites;
}

}  // namespace gpuhive
