#include "runtime/eager.h"

#include <deque>
#include <memory>

#include "runtime/contexts.h"
#include "runtime/control_flow.h"

namespace gpuhive::runtime {

bool IsControlFlowOp(const ir::Node& node) {
  return node.domain.empty() && (node.op_type == "If" || node.op_type == "Loop" || node.op_type == "Scan");
}

bool IsNondeterministicOp(const ir::Node& node) {
  static const char* kOps[] = {"RandomNormal", "RandomUniform", "RandomNormalLike",
                               "RandomUniformLike", "Multinomial", "Bernoulli"};
  for (const char* op : kOps) {
    if (node.op_type == op) return true;
  }
  return false;
}

StatusOr<std::vector<Tensor>> RunNodeEager(const ir::Node& node, const std::vector<const Tensor*>& inputs,
                                           const EagerOptions& options, const OuterScope& outer) {
  if (IsControlFlowOp(node)) return RunControlFlow(node, inputs, options, outer);
  MemoryResource* mr = options.memory ? options.memory : DefaultHostResource();
  KernelOptions kopts = options.kernel;
  kopts.allow_blocked_layouts = false;

  std::vector<InputDesc> descs(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i]) continue;
    descs[i] = InputDesc{true, inputs[i]->dtype(), inputs[i]->shape(), Layout::kPlain, inputs[i]};
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Kernel> kernel, CpuKernelRegistry().Create(node));
  PrepareContextImpl prep(node, std::move(descs), node.outputs.size(), kopts, mr,
                          AllocTag{options.tag.owner, MemoryKind::kWeights});
  RETURN_IF_ERROR(kernel->Prepare(prep).WithContext(node.Describe()));

  std::vector<Tensor> outputs;
  std::vector<TensorView> out_views;
  for (size_t i = 0; i < node.outputs.size(); ++i) {
    const OutputDesc& o = prep.outputs()[i];
    if (!o.declared) {
      if (node.outputs[i] == nullptr) {
        outputs.emplace_back();
        out_views.emplace_back();
        continue;
      }
      return Internal("{} did not declare output {}", node.Describe(), i);
    }
    ASSIGN_OR_RETURN(Tensor t, Tensor::Allocate(o.dtype, o.shape, mr, options.tag));
    out_views.push_back(t.view());
    outputs.push_back(std::move(t));
  }
  std::vector<TensorView> in_views(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i]) in_views[i] = inputs[i]->view();
  }
  Buffer ws;
  if (prep.workspace() > 0) {
    ASSIGN_OR_RETURN(ws, Buffer::Allocate(mr, prep.workspace(), AllocTag{options.tag.owner, MemoryKind::kWorkspace}));
  }
  RunContextImpl run(std::move(in_views), std::move(out_views), ws.data(), prep.workspace(),
                     options.kernel.num_threads, StreamView{});
  RETURN_IF_ERROR(kernel->Run(run).WithContext(node.Describe()));
  return outputs;
}

StatusOr<std::vector<Tensor>> RunGraphEager(const ir::Graph& graph, const std::vector<const Tensor*>& inputs,
                                            const EagerOptions& options, const OuterScope& outer) {
  if (inputs.size() != graph.inputs().size()) {
    return InvalidArgument("graph '{}' takes {} inputs, got {}", graph.name, graph.inputs().size(), inputs.size());
  }
  std::map<const ir::Value*, const Tensor*> env;
  std::deque<Tensor> owned;  // deque: stable addresses
  for (size_t i = 0; i < inputs.size(); ++i) env[graph.inputs()[i]] = inputs[i];
  for (const ir::Value* v : graph.outer_refs()) {
    auto it = outer.find(v->name);
    if (it == outer.end()) return InvalidArgument("graph '{}' references unknown value '{}'", graph.name, v->name);
    env[v] = it->second;
  }
  auto lookup = [&](const ir::Value* v) -> StatusOr<const Tensor*> {
    if (v == nullptr) return static_cast<const Tensor*>(nullptr);
    if (v->constant) return v->constant.get();
    auto it = env.find(v);
    if (it != env.end()) return it->second;
    if (v->is_outer_ref) {
      auto o = outer.find(v->name);
      if (o != outer.end()) return o->second;
    }
    return Internal("value '{}' used before it was computed", v->name);
  };
  for (const auto& node : graph.nodes()) {
    std::vector<const Tensor*> in;
    for (const ir::Value* v : node->inputs) {
      ASSIGN_OR_RETURN(const Tensor* t, lookup(v));
      in.push_back(t);
    }
    OuterScope child_outer;
    if (IsControlFlowOp(*node)) {
      child_outer = outer;  // deeper scopes see everything further out too
      for (const ir::Value* v : node->implicit_inputs) {
        ASSIGN_OR_RETURN(const Tensor* t, lookup(v));
        if (t) child_outer[v->name] = t;
      }
    }
    ASSIGN_OR_RETURN(std::vector<Tensor> out, RunNodeEager(*node, in, options, child_outer));
    for (size_t i = 0; i < node->outputs.size() && i < out.size(); ++i) {
      if (!node->outputs[i]) continue;
      owned.push_back(std::move(out[i]));
      env[node->outputs[i]] = &owned.back();
    }
  }
  std::vector<Tensor> results;
  MemoryResource* mr = options.memory ? options.memory : DefaultHostResource();
  for (const ir::Value* v : graph.outputs()) {
    ASSIGN_OR_RETURN(const Tensor* t, lookup(v));
    if (!t) return Internal("graph output '{}' was not computed", v->name);
    ASSIGN_OR_RETURN(Tensor copy, t->Clone(mr, options.tag));
    results.push_back(std::move(copy));
  }
  return results;
}

}  // namespace gpuhive::runtime
