// Host-only planning for the CUDA executor (plan_analysis.h).
#include "runtime/cuda/plan_analysis.h"

#include <algorithm>
#include <set>

#include "gpuhive/cuda_executor.h"
#include "gpuhive/kernel.h"
#include "gpuhive/passes.h"
#include "gpuhive/memory_resource.h"
#include "runtime/eager.h"

namespace gpuhive::cuda::executor {
namespace {

// PrepareContext over planned values: lets the CPU kernels' Prepare compute output shapes.
class ShapeContext final : public PrepareContext {
 public:
  ShapeContext(const ir::Node& node, std::vector<const PlannedValue*> in, const KernelOptions& options)
      : node_(node), in_(std::move(in)), options_(options), out_(node.outputs.size()) {}
  const ir::Node& node() const override { return node_; }
  const KernelOptions& options() const override { return options_; }
  size_t num_inputs() const override { return in_.size(); }
  bool has_input(size_t i) const override { return i < in_.size() && in_[i] != nullptr; }
  DataType input_dtype(size_t i) const override { return in_[i]->dtype; }
  const Shape& input_shape(size_t i) const override { return in_[i]->shape; }
  Layout input_layout(size_t) const override { return Layout::kPlain; }
  const Tensor* input_value(size_t i) const override { return i < in_.size() && in_[i] ? in_[i]->host : nullptr; }
  size_t num_outputs() const override { return out_.size(); }
  bool has_output(size_t i) const override { return i < out_.size() && node_.outputs[i] != nullptr; }
  void SetOutput(size_t i, DataType dtype, Shape shape, Layout, size_t) override {
    if (i < out_.size()) out_[i] = PlannedValue{dtype, std::move(shape), nullptr, nullptr};
  }
  void RequestWorkspace(size_t) override {}
  void AllowInPlace(size_t, size_t) override {}
  void AliasOutput(size_t, size_t) override {}
  MemoryResource* persistent_resource() const override { return DefaultHostResource(); }
  AllocTag persistent_tag() const override { return AllocTag{0, MemoryKind::kOther}; }
  std::vector<PlannedValue>& outputs() { return out_; }

 private:
  const ir::Node& node_;
  std::vector<const PlannedValue*> in_;
  const KernelOptions& options_;
  std::vector<PlannedValue> out_;
};

bool IsHostOnly(const ir::Node& n) {
  return n.domain.empty() && (n.op_type == "Shape" || n.op_type == "Size");
}

StatusOr<Tensor> ShapeValue(const ir::Node& n, const Shape& shape) {
  if (n.op_type == "Size") {
    return Tensor::FromVector<int64_t>(DataType::kInt64, {}, std::vector<int64_t>{NumElements(shape)});
  }
  int64_t r = static_cast<int64_t>(shape.size());
  ASSIGN_OR_RETURN(int64_t start, n.GetInt("start", 0));
  ASSIGN_OR_RETURN(int64_t end, n.GetInt("end", r));
  if (start < 0) start += r;
  if (end < 0) end += r;
  start = std::clamp<int64_t>(start, 0, r);
  end = std::clamp<int64_t>(end, 0, r);
  std::vector<int64_t> dims;
  for (int64_t i = start; i < end; ++i) dims.push_back(shape[static_cast<size_t>(i)]);
  return Tensor::FromVector<int64_t>(DataType::kInt64, {static_cast<int64_t>(dims.size())}, dims);
}

}  // namespace

bool IsAliasOp(const ir::Node& node) {
  static const char* kOps[] = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout"};
  if (!node.domain.empty()) return false;
  for (const char* op : kOps) {
    if (node.op_type == op) return true;
  }
  return false;
}

StatusOr<std::unique_ptr<Analysis>> AnalyzePlan(const ir::Graph& graph, const std::vector<TensorView>& inputs) {
  auto an = std::make_unique<Analysis>();
  const ir::Graph& g = graph;
  if (inputs.size() != g.inputs().size()) {
    return InvalidArgument("model expects {} input(s), got {}", g.inputs().size(), inputs.size());
  }
  KernelOptions kopts;
  kopts.allow_blocked_layouts = false;
  runtime::EagerOptions eager;
  eager.kernel = kopts;

  // Storage: one id per buffer; aliases share their input's id.
  struct Storage {
    size_t bytes = 0;
    int first = 0, last = 0;
  };
  std::vector<Storage> storage;
  std::map<const ir::Value*, size_t>& storage_of = an->storage_of;
  auto new_storage = [&](const ir::Value* v, const PlannedValue& pv, int step) {
    size_t bytes = std::max<size_t>(static_cast<size_t>(std::max<int64_t>(NumElements(pv.shape), 0)) *
                                        DataTypeSize(pv.dtype), 1);
    storage.push_back({bytes, step, step});
    storage_of[v] = storage.size() - 1;
  };

  for (size_t i = 0; i < g.inputs().size(); ++i) {
    const ir::Value* v = g.inputs()[i];
    PlannedValue pv{inputs[i].dtype, inputs[i].shape, nullptr, nullptr};
    an->values[v] = pv;
    new_storage(v, pv, 0);
  }
  for (const auto& v : g.values()) {
    if (v->is_constant()) an->values[v.get()] = PlannedValue{v->constant->dtype(), v->constant->shape(), nullptr,
                                                               v->constant.get()};
  }

  std::vector<DeviceNode>& device_nodes = an->device_nodes;
  int step = 0;
  for (const auto& up : g.nodes()) {
    const ir::Node& n = *up;
    std::vector<const PlannedValue*> in;
    bool all_host = true;
    for (const ir::Value* v : n.inputs) {
      if (v == nullptr) {
        in.push_back(nullptr);
        continue;
      }
      auto f = an->values.find(v);
      if (f == an->values.end()) {
        return Unimplemented("{}: input '{}' is not available to the CUDA executor", n.Describe(), v->name);
      }
      in.push_back(&f->second);
      all_host = all_host && f->second.host != nullptr;
    }
    if (!n.implicit_inputs.empty()) return Unimplemented("{}: subgraphs do not run on CUDA", n.Describe());
    if (IsHostOnly(n) || (all_host && !runtime::IsNondeterministicOp(n))) {
      std::vector<Tensor> outs;
      if (IsHostOnly(n)) {
        ASSIGN_OR_RETURN(Tensor t, ShapeValue(n, in[0]->shape));
        outs.push_back(std::move(t));
      } else {
        std::vector<const Tensor*> host_in;
        for (const PlannedValue* p : in) host_in.push_back(p ? p->host : nullptr);
        ASSIGN_OR_RETURN(outs, runtime::RunNodeEager(n, host_in, eager));
      }
      ++an->host_evaluated_nodes;
      for (size_t o = 0; o < n.outputs.size() && o < outs.size(); ++o) {
        if (n.outputs[o] == nullptr) continue;
        an->host_values.push_back(std::move(outs[o]));
        const Tensor& t = an->host_values.back();
        an->values[n.outputs[o]] = PlannedValue{t.dtype(), t.shape(), nullptr, &t};
      }
      continue;
    }
    // A device step: output shapes from the CPU kernel's Prepare.
    ++step;
    ASSIGN_OR_RETURN(std::unique_ptr<Kernel> cpu, CpuKernelRegistry().Create(n));
    ShapeContext sc(n, in, kopts);
    Status st = cpu->Prepare(sc);
    if (IsDataDependentShape(st)) {
      return Unimplemented("{}: output shape depends on device data; not supported on CUDA", n.Describe());
    }
    RETURN_IF_ERROR(st);
    bool alias = IsAliasOp(n) ||
                 (n.domain.empty() && n.op_type == "Cast" && in[0] != nullptr && n.outputs.size() == 1 &&
                  sc.outputs()[0].dtype == in[0]->dtype);
    for (size_t o = 0; o < n.outputs.size(); ++o) {
      const ir::Value* v = n.outputs[o];
      if (v == nullptr) continue;
      an->values[v] = sc.outputs()[o];
      if (o == 0 && alias && in[0] != nullptr && in[0]->host == nullptr) {
        storage_of[v] = storage_of.at(n.inputs[0]);
      } else {
        new_storage(v, an->values[v], step);
      }
    }
    for (const ir::Value* v : n.inputs) {
      if (v != nullptr && storage_of.count(v)) {
        Storage& s = storage[storage_of[v]];
        s.last = std::max(s.last, step);
      }
    }
    device_nodes.push_back({&n, step});
  }
  const int end = step + 1;
  for (const ir::Value* v : g.outputs()) {
    if (storage_of.count(v)) storage[storage_of[v]].last = end;
  }

  std::vector<BufferLifetime> lifetimes;
  for (const Storage& s : storage) lifetimes.push_back({s.bytes, s.first, s.last});
  an->arena = PlanArena(lifetimes, MemoryResource::kAlignment);
  return an;
}

}  // namespace gpuhive::cuda::executor

namespace gpuhive::cuda {

Status OptimizeForCuda(ir::Model& model) {
  if (model.graph == nullptr) return InvalidArgument("OptimizeForCuda: model has no graph");
  ir::Graph& g = *model.graph;
  RETURN_IF_ERROR(g.TopologicalSort());
  OptimizeOptions oo;
  runtime::EagerOptions eager;
  oo.evaluator = [eager](const ir::Node& node, const std::vector<const Tensor*>& in) {
    return runtime::RunNodeEager(node, in, eager);
  };
  oo.supports = [](const std::string& domain, const std::string& op) {
    return CudaSupportsOp(domain, op) && CpuKernelRegistry().Supports(domain, op, 0);
  };
  RETURN_IF_ERROR(OptimizeModel(model, oo).WithContext("optimizing the graph for CUDA"));
  return g.TopologicalSort();
}

PlanPreview executor::Summarize(const Analysis& an) {
  PlanPreview p;
  p.device_steps = an.device_nodes.size();
  p.host_evaluated_nodes = an.host_evaluated_nodes;
  p.arena_bytes = an.arena.arena_bytes;
  p.naive_bytes = an.arena.naive_bytes;
  for (const DeviceNode& dn : an.device_nodes) {
    const ir::Node& n = *dn.node;
    ++p.device_ops[n.domain.empty() ? n.op_type : n.domain + "." + n.op_type];
  }
  return p;
}

std::vector<const ir::Value*> DeferredWeights(const ir::Graph& graph, MathMode math) {
  const bool sixteen = math == MathMode::kFloat16 || math == MathMode::kBFloat16;
  auto converts_operands = [](const ir::Node& n) {
    const bool fused = n.domain == "gpuhive";
    const std::string& op = n.op_type;
    return (n.domain.empty() && (op == "Conv" || op == "MatMul" || op == "Gemm")) ||
           (fused && (op == "FusedConv" || op == "FusedMatMul" || op == "FusedGemm"));
  };
  std::set<const ir::Value*> seen;
  std::vector<const ir::Value*> order;
  for (const auto& node : graph.nodes()) {
    if (sixteen && converts_operands(*node)) continue;
    for (const ir::Value* v : node->inputs) {
      if (v == nullptr || !v->is_constant() || v->dtype != DataType::kFloat32 || v->constant == nullptr ||
          v->constant->bytes() < kDeferredWeightMinBytes) {
        continue;
      }
      if (seen.insert(v).second) order.push_back(v);
    }
  }
  return order;
}

StatusOr<PlanPreview> PreviewCudaPlan(const ir::Graph& graph, const std::vector<TensorView>& inputs) {
  RETURN_IF_ERROR(CheckCudaSupport(graph));
  ASSIGN_OR_RETURN(std::unique_ptr<executor::Analysis> an, executor::AnalyzePlan(graph, inputs));
  return executor::Summarize(*an);
}

}  // namespace gpuhive::cuda
