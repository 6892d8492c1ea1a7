#include "runtime/plan.h"

#include <algorithm>
#include <functional>
#include <numeric>

#include "gpuhive/arena_planner.h"
#include "gpuhive/memory/upstreams.h"
#include "gpuhive/units.h"
#include "runtime/contexts.h"

namespace gpuhive::runtime {
namespace {

constexpr size_t kMaxPlanTimeEvalBytes = 16u << 20;  // inputs larger than this run as normal steps

bool IsShapeOnlyOp(const ir::Node& n) {
  return n.domain.empty() && (n.op_type == "Shape" || n.op_type == "Size");
}

// Shape/Size computed from the shape alone (the input's data is never needed).
StatusOr<Tensor> EvalShapeOnly(const ir::Node& n, const Shape& shape) {
  if (n.op_type == "Size") return Tensor::FromVector<int64_t>(DataType::kInt64, {}, {NumElements(shape)});
  int64_t rank = static_cast<int64_t>(shape.size());
  ASSIGN_OR_RETURN(int64_t start, n.GetInt("start", 0));
  ASSIGN_OR_RETURN(int64_t end, n.GetInt("end", rank));
  if (start < 0) start += rank;
  if (end < 0) end += rank;
  start = std::clamp<int64_t>(start, 0, rank);
  end = std::clamp<int64_t>(end, 0, rank);
  std::vector<int64_t> dims;
  for (int64_t i = start; i < end; ++i) dims.push_back(shape[i]);
  return Tensor::FromVector<int64_t>(DataType::kInt64, {static_cast<int64_t>(dims.size())}, dims);
}

class PlanBuilder {
 public:
  PlanBuilder(const ir::Graph& g, const PlanOptions& o) : graph_(g), opts_(o), plan_(std::make_unique<Plan>()) {}

  StatusOr<std::unique_ptr<Plan>> Build(const std::vector<Shape>& shapes, const std::vector<DataType>& dtypes) {
    for (size_t i = 0; i < graph_.inputs().size(); ++i) {
      const ir::Value* v = graph_.inputs()[i];
      Slot s;
      s.kind = Slot::Kind::kInput;
      s.dtype = dtypes[i];
      s.shape = shapes[i];
      s.index = static_cast<int>(i);
      s.name = v->name;
      slot_of_[v] = AddSlot(std::move(s));
    }
    for (const auto& node : graph_.nodes()) RETURN_IF_ERROR(AddNode(*node));
    for (size_t i = 0; i < graph_.outputs().size(); ++i) {
      ASSIGN_OR_RETURN(int s, SlotFor(graph_.outputs()[i]));
      if (plan_->slots[s].layout != Layout::kPlain) {
        ASSIGN_OR_RETURN(s, ConvertToPlain(s, /*view_ok=*/false));
      }
      plan_->output_slots.push_back(s);
    }
    // Values that are graph outputs and produced by a static step get their own output buffers.
    for (size_t i = 0; i < plan_->output_slots.size(); ++i) {
      Slot& s = plan_->slots[plan_->output_slots[i]];
      if (s.kind == Slot::Kind::kArena && s.index < 0) {
        s.kind = Slot::Kind::kOutput;
        s.index = static_cast<int>(i);
      }
    }
    AssignArena();
    if (opts_.weight_groups != nullptr) {
      for (Step& st : plan_->steps) {
        for (const auto* list : {&st.inputs, &st.implicit_inputs}) {
          for (int s : *list) {
            if (s < 0 || plan_->slots[s].kind != Slot::Kind::kConstant) continue;
            auto it = opts_.weight_groups->find(plan_->slots[s].value);
            if (it != opts_.weight_groups->end()) st.weights_needed = std::max(st.weights_needed, it->second);
          }
        }
      }
    }
    plan_->stats.input_shapes = shapes;
    plan_->stats.num_steps = plan_->steps.size();
    plan_->stats.arena_bytes = plan_->arena_bytes;
    plan_->stats.dynamic =
        std::any_of(plan_->steps.begin(), plan_->steps.end(), [](const Step& s) { return s.dynamic; });
    return std::move(plan_);
  }

 private:
  int AddSlot(Slot s) {
    plan_->slots.push_back(std::move(s));
    return static_cast<int>(plan_->slots.size()) - 1;
  }

  StatusOr<int> SlotFor(const ir::Value* v) {
    auto it = slot_of_.find(v);
    if (it != slot_of_.end()) return it->second;
    if (v->constant) {
      Slot s;
      s.kind = Slot::Kind::kConstant;
      s.dtype = v->constant->dtype();
      s.shape = v->constant->shape();
      s.value = v->constant.get();
      s.bytes = v->constant->bytes();
      s.name = v->name;
      int id = AddSlot(std::move(s));
      slot_of_[v] = id;
      return id;
    }
    return InvalidArgument("value '{}' is used before it is produced (or is an unbound outer reference)",
                           v->name);
  }

  bool IsDynamicSlot(int s) const { return s >= 0 && plan_->slots[s].kind == Slot::Kind::kDynamic; }
  // The value a slot has at plan time: for a weight still being copied in, its source.
  const Tensor* KnownValue(int s) const {
    const Slot& sl = plan_->slots[s];
    if (sl.kind == Slot::Kind::kConstant && opts_.prepare_values != nullptr) {
      auto it = opts_.prepare_values->find(sl.value);
      if (it != opts_.prepare_values->end()) return it->second;
    }
    return sl.kind == Slot::Kind::kConstant || sl.kind == Slot::Kind::kKnown ? sl.value : nullptr;
  }

  // A blocked-layout slot converted to plain once, shared by every consumer that needs it. Where
  // its bytes already are in plain order (SameBytesAsPlain: an [N,C,1,1] value) the plain slot is
  // a view of the same arena bytes and no step runs, unless `view_ok` is false (graph outputs get
  // their own buffers, written by a step).
  StatusOr<int> ConvertToPlain(int src, bool view_ok = true) {
    const Slot& from = plan_->slots[src];
    if (view_ok && from.kind == Slot::Kind::kArena && SameBytesAsPlain(from.shape, from.layout)) {
      auto v = plain_view_.find(src);
      if (v != plain_view_.end()) return v->second;
      Slot view;
      view.kind = Slot::Kind::kArena;
      view.dtype = from.dtype;
      view.shape = from.shape;
      view.bytes = from.bytes;
      view.name = from.name + "/as_plain";
      view.view_of = src;
      int id = AddSlot(std::move(view));
      plain_view_[src] = id;
      return id;
    }
    auto it = plain_copy_.find(src);
    if (it != plain_copy_.end()) return it->second;
    auto node = std::make_unique<ir::Node>();
    node->op_type = "Reorder";
    node->domain = "gpuhive";
    node->opset = 1;
    node->name = plan_->slots[src].name + "/to_plain";
    node->attrs["to"] = ir::Attribute(std::string("plain"));
    ASSIGN_OR_RETURN(std::unique_ptr<Kernel> kernel, CpuKernelRegistry().Create(*node));
    const Slot& in = plan_->slots[src];
    std::vector<InputDesc> descs = {InputDesc{true, in.dtype, in.shape, in.layout, nullptr}};
    PrepareContextImpl prep(*node, std::move(descs), 1, opts_.kernel, Memory(), WeightsTag());
    RETURN_IF_ERROR(kernel->Prepare(prep));
    Slot out;
    out.kind = Slot::Kind::kArena;
    out.dtype = in.dtype;
    out.shape = in.shape;
    out.bytes = prep.outputs()[0].bytes;
    out.name = node->name;
    int out_id = AddSlot(std::move(out));
    Step step;
    step.workspace_bytes = prep.workspace();
    step.node = node.get();
    step.owned_node = std::move(node);
    step.kernel = std::move(kernel);
    step.inputs = {src};
    step.outputs = {out_id};
    plan_->steps.push_back(std::move(step));
    plain_copy_[src] = out_id;
    return out_id;
  }

  MemoryResource* Memory() const { return opts_.memory ? opts_.memory : DefaultHostResource(); }
  AllocTag WeightsTag() const { return AllocTag{opts_.owner_tag, MemoryKind::kWeights}; }

  Status AddDynamicStep(const ir::Node& node, std::vector<int> inputs) {
    for (int& s : inputs) {
      if (s >= 0 && plan_->slots[s].layout != Layout::kPlain) {
        ASSIGN_OR_RETURN(s, ConvertToPlain(s));
      }
    }
    Step step;
    step.node = &node;
    step.inputs = std::move(inputs);
    step.dynamic = true;
    for (const ir::Value* v : node.implicit_inputs) {
      ASSIGN_OR_RETURN(int s, SlotFor(v));
      if (plan_->slots[s].layout != Layout::kPlain) {
        ASSIGN_OR_RETURN(s, ConvertToPlain(s));
      }
      step.implicit_inputs.push_back(s);
    }
    for (const ir::Value* v : node.outputs) {
      if (!v) {
        step.outputs.push_back(-1);
        continue;
      }
      Slot s;
      s.kind = Slot::Kind::kDynamic;
      s.dtype = v->dtype;
      s.name = v->name;
      int id = AddSlot(std::move(s));
      slot_of_[v] = id;
      step.outputs.push_back(id);
    }
    plan_->steps.push_back(std::move(step));
    return Status::OK();
  }

  Status AddKnownOutputs(const ir::Node& node, std::vector<Tensor> values) {
    for (size_t i = 0; i < node.outputs.size(); ++i) {
      const ir::Value* v = node.outputs[i];
      if (!v) continue;
      if (i >= values.size()) return Internal("{} produced too few outputs", node.Describe());
      plan_->known_values.push_back(std::move(values[i]));
      const Tensor& t = plan_->known_values.back();
      Slot s;
      s.kind = Slot::Kind::kKnown;
      s.dtype = t.dtype();
      s.shape = t.shape();
      s.bytes = t.bytes();
      s.value = &t;
      s.name = v->name;
      slot_of_[v] = AddSlot(std::move(s));
    }
    return Status::OK();
  }

  Status AddNode(const ir::Node& node) {
    std::vector<int> inputs;
    bool any_dynamic = false, all_known = true;
    size_t known_bytes = 0;
    for (const ir::Value* v : node.inputs) {
      if (!v) {
        inputs.push_back(-1);
        continue;
      }
      ASSIGN_OR_RETURN(int s, SlotFor(v));
      inputs.push_back(s);
      any_dynamic |= IsDynamicSlot(s);
      if (const Tensor* t = KnownValue(s)) known_bytes += t->bytes();
      else all_known = false;
    }
    if (IsControlFlowOp(node) || any_dynamic) return AddDynamicStep(node, std::move(inputs));

    if (IsShapeOnlyOp(node) && inputs.size() == 1 && inputs[0] >= 0) {
      ASSIGN_OR_RETURN(Tensor t, EvalShapeOnly(node, plan_->slots[inputs[0]].shape));
      std::vector<Tensor> out;
      out.push_back(std::move(t));
      return AddKnownOutputs(node, std::move(out));
    }
    bool implicit_ok = node.implicit_inputs.empty();
    if (all_known && implicit_ok && !IsNondeterministicOp(node) && known_bytes <= kMaxPlanTimeEvalBytes) {
      std::vector<const Tensor*> in;
      for (int s : inputs) in.push_back(s >= 0 ? KnownValue(s) : nullptr);
      EagerOptions eo;
      eo.kernel = opts_.kernel;
      ASSIGN_OR_RETURN(std::vector<Tensor> out, RunNodeEager(node, in, eo));
      return AddKnownOutputs(node, std::move(out));
    }

    ASSIGN_OR_RETURN(std::unique_ptr<Kernel> kernel, CpuKernelRegistry().Create(node));
    for (size_t i = 0; i < inputs.size(); ++i) {
      int s = inputs[i];
      const Layout layout = s >= 0 ? plan_->slots[s].layout : Layout::kPlain;
      const bool accepted = layout == Layout::kPlain ||
                            (layout == Layout::kChannelsLast ? kernel->AcceptsChannelsLastInput(i)
                                                             : kernel->AcceptsBlockedInput(i));
      if (!accepted) {
        ASSIGN_OR_RETURN(inputs[i], ConvertToPlain(s));
      }
    }
    std::vector<InputDesc> descs(inputs.size());
    for (size_t i = 0; i < inputs.size(); ++i) {
      if (inputs[i] < 0) continue;
      const Slot& s = plan_->slots[inputs[i]];
      descs[i] = InputDesc{true, s.dtype, s.shape, s.layout, KnownValue(inputs[i])};
    }
    PrepareContextImpl prep(node, std::move(descs), node.outputs.size(), opts_.kernel, Memory(), WeightsTag());
    Status st = kernel->Prepare(prep);
    if (IsDataDependentShape(st)) return AddDynamicStep(node, std::move(inputs));
    RETURN_IF_ERROR(st.WithContext(node.Describe()));

    Step step;
    step.node = &node;
    step.inputs = inputs;
    for (size_t i = 0; i < node.outputs.size(); ++i) {
      const ir::Value* v = node.outputs[i];
      if (!v) {
        step.outputs.push_back(-1);
        continue;
      }
      const OutputDesc& o = prep.outputs()[i];
      if (!o.declared) return Internal("{} did not declare output {}", node.Describe(), i);
      Slot s;
      s.kind = Slot::Kind::kArena;
      s.dtype = o.dtype;
      s.shape = o.shape;
      s.layout = o.layout;
      s.bytes = o.bytes;
      s.name = v->name;
      int id = AddSlot(std::move(s));
      slot_of_[v] = id;
      step.outputs.push_back(id);
    }
    int step_index = static_cast<int>(plan_->steps.size());
    for (auto [in, out] : prep.alias()) merges_.push_back({step_index, step.inputs.at(in), step.outputs.at(out), true});
    for (auto [in, out] : prep.in_place()) merges_.push_back({step_index, step.inputs.at(in), step.outputs.at(out), false});
    step.workspace_bytes = prep.workspace();
    step.kernel = std::move(kernel);
    plan_->steps.push_back(std::move(step));
    if (opts_.on_step) opts_.on_step(*plan_, plan_->steps.back());
    return Status::OK();
  }

  // Places arena slots: alias and in-place candidates share buffers when lifetimes allow, then the
  // liveness planner assigns offsets.
  void AssignArena() {
    const size_t n = plan_->slots.size();
    // A view's uses are its source's: it has no buffer of its own.
    auto root = [&](int s) {
      while (s >= 0 && plan_->slots[s].view_of >= 0) s = plan_->slots[s].view_of;
      return s;
    };
    std::vector<int> first(n, -1), last(n, -1);
    for (size_t si = 0; si < plan_->steps.size(); ++si) {
      const Step& st = plan_->steps[si];
      for (int s : st.outputs) {
        if (s >= 0 && first[s] < 0) first[s] = last[s] = static_cast<int>(si);
      }
      auto use = [&](int s) {
        s = root(s);
        if (s >= 0) last[s] = std::max(last[s], static_cast<int>(si));
      };
      for (int s : st.inputs) use(s);
      for (int s : st.implicit_inputs) use(s);
    }
    std::vector<int> parent(n);
    std::iota(parent.begin(), parent.end(), 0);
    std::function<int(int)> find = [&](int x) { return parent[x] == x ? x : parent[x] = find(parent[x]); };
    std::vector<size_t> group_bytes(n);
    std::vector<int> group_first = first, group_last = last;
    for (size_t i = 0; i < n; ++i) group_bytes[i] = plan_->slots[i].bytes;
    auto is_arena = [&](int s) { return s >= 0 && plan_->slots[s].kind == Slot::Kind::kArena; };
    for (const Merge& m : merges_) {
      if (!is_arena(m.in) || !is_arena(m.out)) continue;
      int gi = find(root(m.in)), go = find(root(m.out));
      if (gi == go) continue;
      if (!m.alias) {
        // In place: the input's buffer must be dead after this step, and big enough.
        if (group_last[gi] != m.step || group_bytes[gi] < plan_->slots[m.out].bytes) continue;
        if (plan_->slots[m.in].layout != plan_->slots[m.out].layout) continue;
      }
      parent[go] = gi;
      group_bytes[gi] = std::max(group_bytes[gi], group_bytes[go]);
      group_first[gi] = std::min(group_first[gi], group_first[go]);
      group_last[gi] = std::max(group_last[gi], group_last[go]);
    }
    std::vector<int> group_ids;
    std::map<int, size_t> buffer_of_group;
    std::vector<BufferLifetime> buffers;
    size_t naive = 0;
    for (size_t i = 0; i < n; ++i) {
      if (!is_arena(static_cast<int>(i)) || plan_->slots[i].view_of >= 0) continue;
      naive += AlignUp(plan_->slots[i].bytes, MemoryResource::kAlignment);
      int g = find(static_cast<int>(i));
      if (buffer_of_group.count(g)) continue;
      buffer_of_group[g] = buffers.size();
      int f = group_first[g] < 0 ? 0 : group_first[g];
      int l = std::max(group_last[g], f);
      buffers.push_back(BufferLifetime{std::max<size_t>(group_bytes[g], 1), f, l});
    }
    // The activations alone first (what the stats report as planned activations), then with each
    // step's workspace as one more buffer alive at that step only: a step's scratch takes bytes of
    // values dead by then instead of one workspace beside the arena as large as the largest. The
    // greedy planner could place the mix worse than the activations with that one workspace beside
    // them; then that layout is kept (every step's scratch at the end of the arena).
    const ArenaPlan values = PlanArena(buffers, MemoryResource::kAlignment);
    const size_t activations = AlignUp(values.arena_bytes, MemoryResource::kAlignment);
    size_t largest = 0;
    for (size_t si = 0; si < plan_->steps.size(); ++si) {
      const size_t ws = plan_->steps[si].workspace_bytes;
      if (ws == 0) continue;
      buffers.push_back(BufferLifetime{ws, static_cast<int>(si), static_cast<int>(si)});
      largest = std::max(largest, ws);
    }
    const size_t beside = activations + AlignUp(largest, MemoryResource::kAlignment);
    const ArenaPlan mixed = largest > 0 ? PlanArena(buffers, MemoryResource::kAlignment) : values;
    const bool in_arena = AlignUp(mixed.arena_bytes, MemoryResource::kAlignment) <= beside;
    const ArenaPlan& ap = in_arena ? mixed : values;
    for (size_t i = 0; i < n; ++i) {
      if (!is_arena(static_cast<int>(i))) continue;
      plan_->slots[i].offset = ap.offsets[buffer_of_group[find(root(static_cast<int>(i)))]];
    }
    for (size_t si = 0, b = values.offsets.size(); si < plan_->steps.size(); ++si) {
      Step& st = plan_->steps[si];
      if (st.workspace_bytes > 0) st.workspace_offset = in_arena ? ap.offsets[b++] : activations;
    }
    plan_->arena_bytes = in_arena ? AlignUp(mixed.arena_bytes, MemoryResource::kAlignment) : beside;
    plan_->stats.activation_bytes = activations;
    plan_->stats.naive_activation_bytes = naive;
    plan_->stats.step_workspace_bytes = largest;
  }

  struct Merge {
    int step, in, out;
    bool alias;
  };

  const ir::Graph& graph_;
  const PlanOptions& opts_;
  std::unique_ptr<Plan> plan_;
  std::map<const ir::Value*, int> slot_of_;
  std::map<int, int> plain_copy_;
  std::map<int, int> plain_view_;
  std::vector<Merge> merges_;
};

}  // namespace

StatusOr<std::unique_ptr<Plan>> BuildPlan(const ir::Graph& graph, const std::vector<Shape>& input_shapes,
                                          const std::vector<DataType>& input_dtypes, const PlanOptions& options) {
  PlanBuilder builder(graph, options);
  return builder.Build(input_shapes, input_dtypes);
}

StatusOr<std::vector<Tensor>> ExecutePlan(const Plan& plan, const std::vector<TensorView>& inputs, void* arena,
                                          int num_threads, const PlanOptions& options,
                                          std::vector<ExecutionContext::StepTime>* profile, const WeightGate* gate) {
  if (profile) profile->clear();
  MemoryResource* mr = options.memory ? options.memory : DefaultHostResource();
  // Outputs outlive the run (the caller keeps them): they do not come from the model's memory.
  MemoryResource* out_mr = options.output_memory ? options.output_memory : TransientHostResource();
  AllocTag io_tag{options.owner_tag, MemoryKind::kIO};
  const size_t n = plan.slots.size();
  std::vector<TensorView> views(n);
  std::vector<Tensor> outputs(plan.output_slots.size());
  std::deque<Tensor> dynamic;  // values of dynamic steps, alive for this run
  std::vector<Tensor*> dynamic_of(n, nullptr);
  auto* base = static_cast<uint8_t*>(arena);

  for (size_t i = 0; i < n; ++i) {
    const Slot& s = plan.slots[i];
    switch (s.kind) {
      case Slot::Kind::kConstant:
      case Slot::Kind::kKnown:
        views[i] = TensorView{s.dtype, s.shape, const_cast<void*>(s.value->data()), Layout::kPlain};
        break;
      case Slot::Kind::kInput:
        views[i] = inputs[s.index];
        break;
      case Slot::Kind::kArena:
        views[i] = TensorView{s.dtype, s.shape, base + s.offset, s.layout};
        break;
      case Slot::Kind::kOutput: {
        ASSIGN_OR_RETURN(outputs[s.index], Tensor::Allocate(s.dtype, s.shape, out_mr, io_tag));
        views[i] = outputs[s.index].view();
        break;
      }
      case Slot::Kind::kDynamic:
        break;
    }
  }

  EagerOptions eager;
  eager.kernel.num_threads = num_threads;
  eager.memory = mr;
  eager.tag = AllocTag{options.owner_tag, MemoryKind::kActivations};
  std::deque<Tensor> wrapped;
  auto as_tensor = [&](int s) -> const Tensor* {
    if (s < 0) return nullptr;
    if (dynamic_of[s]) return dynamic_of[s];
    const TensorView& v = views[s];
    wrapped.push_back(Tensor::WrapExternal(v.dtype, v.shape, v.data));
    return &wrapped.back();
  };

  for (const Step& step : plan.steps) {
    if (gate != nullptr && step.weights_needed > 0 && gate->arrived() < step.weights_needed) {
      RETURN_IF_ERROR(gate->WaitFor(step.weights_needed).WithContext(step.node->Describe()));
    }
    int64_t step_start = profile ? NowNs() : 0;
    auto record = [&] {
      if (!profile) return;
      const ir::Node& n = *step.node;
      profile->push_back({n.domain.empty() ? n.op_type : n.domain + "." + n.op_type, n.name,
                          step.kernel ? std::string(step.kernel->implementation()) : std::string(),
                          NowNs() - step_start});
    };
    if (!step.dynamic) {
      std::vector<TensorView> in(step.inputs.size()), out(step.outputs.size());
      for (size_t i = 0; i < step.inputs.size(); ++i) {
        if (step.inputs[i] >= 0) in[i] = views[step.inputs[i]];
      }
      for (size_t i = 0; i < step.outputs.size(); ++i) {
        if (step.outputs[i] >= 0) out[i] = views[step.outputs[i]];
      }
      RunContextImpl ctx(std::move(in), std::move(out), base + step.workspace_offset, step.workspace_bytes, num_threads,
                         StreamView{});
      RETURN_IF_ERROR(step.kernel->Run(ctx).WithContext(step.node->Describe()));
      record();
      continue;
    }
    std::vector<const Tensor*> in;
    for (int s : step.inputs) in.push_back(as_tensor(s));
    OuterScope outer;
    for (size_t i = 0; i < step.implicit_inputs.size(); ++i) {
      outer[step.node->implicit_inputs[i]->name] = as_tensor(step.implicit_inputs[i]);
    }
    ASSIGN_OR_RETURN(std::vector<Tensor> out, RunNodeEager(*step.node, in, eager, outer));
    for (size_t i = 0; i < step.outputs.size() && i < out.size(); ++i) {
      int s = step.outputs[i];
      if (s < 0) continue;
      dynamic.push_back(std::move(out[i]));
      dynamic_of[s] = &dynamic.back();
      views[s] = dynamic.back().view();
    }
    record();
  }

  for (size_t i = 0; i < plan.output_slots.size(); ++i) {
    int s = plan.output_slots[i];
    const Slot& slot = plan.slots[s];
    if (gate != nullptr && slot.kind == Slot::Kind::kConstant && options.weight_groups != nullptr) {
      auto it = options.weight_groups->find(slot.value);  // a weight that is also a graph output
      if (it != options.weight_groups->end()) RETURN_IF_ERROR(gate->WaitFor(it->second));
    }
    if (slot.kind == Slot::Kind::kOutput && slot.index == static_cast<int>(i)) continue;
    const TensorView& v = views[s];
    ASSIGN_OR_RETURN(outputs[i], Tensor::FromBytes(v.dtype, v.shape, v.data, v.plain_bytes(), out_mr, io_tag));
  }
  return outputs;
}

}  // namespace gpuhive::runtime
