#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <unordered_map>

#include "gpuhive/logging.h"
#include "gpuhive/memory/adaptors.h"
#include "gpuhive/passes.h"
#include "gpuhive/units.h"
#include "gpuhive/runtime.h"
#include "runtime/eager.h"
#include "runtime/plan.h"

namespace gpuhive {

struct CompiledModel::Impl {
  std::unique_ptr<ir::Model> model;
  CompileOptions options;
  runtime::PlanOptions plan_options;
  std::vector<TensorInfo> inputs, outputs;
  std::vector<const ir::Value*> input_values;
  size_t weight_bytes = 0;  // plain (imported) weight bytes placed at Create
  // Kernels' persistent (packed) copies come through this counter so weight_bytes() reports what
  // is held; it must outlive the plans (declared before them).
  std::unique_ptr<StatisticsResource> persistent;
  std::atomic<size_t> freed_plain_bytes{0};  // plain storage freed once every reader had a copy
  bool free_pending = false;                 // guarded by mu: a plan built while weights arrived
  struct Readers {
    size_t uses = 0;    // graph node inputs that read the constant
    bool keep = false;  // read otherwise (graph output, subgraph): never freed
  };
  std::unordered_map<const Tensor*, Readers> readers;  // top-level constants; immutable after Create
  std::vector<std::shared_ptr<const void>> kept_copies;  // guarded by mu: kernels' copies of freed ones
  // Deferred weights: runs hold it shared while they read constants' storage, the delayed free
  // (after the gate completes) takes it exclusively when no run is in flight.
  std::shared_mutex run_mu;
  // Deferred weights (CompileOptions::defer_weight_copies). The maps are immutable after Create
  // (plan_options points at them); `sources` keeps the host-tier values prepare reads while the
  // copies run (kernels copy what they read in Prepare), released on the first Prepare after.
  std::shared_ptr<WeightGate> gate;
  std::vector<WeightCopy> pending;  // until taken
  std::unordered_map<const Tensor*, size_t> weight_groups;
  std::unordered_map<const Tensor*, const Tensor*> prepare_values;
  std::vector<std::shared_ptr<const Tensor>> sources;  // guarded by mu
  bool sources_released = false;                      // guarded by mu
  std::mutex mu;
  std::map<std::vector<Shape>, std::unique_ptr<runtime::Plan>> plans;  // guarded by mu
};

void WeightGate::Advance(size_t count) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    size_t cur = arrived_.load(std::memory_order_relaxed);
    if (count <= cur) return;
    arrived_.store(std::min(count, num_groups_), std::memory_order_release);
  }
  cv_.notify_all();
}

void WeightGate::Fail(Status error) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (failed_.load(std::memory_order_relaxed)) return;
    error_ = error.ok() ? Internal("weight copy failed") : std::move(error);
    failed_.store(true, std::memory_order_release);
  }
  cv_.notify_all();
}

Status WeightGate::WaitFor(size_t count) const {
  count = std::min(count, num_groups_);
  if (arrived() >= count) return Status::OK();
  const int64_t t0 = NowNs();
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return arrived_.load(std::memory_order_acquire) >= count || failed_.load(std::memory_order_acquire); });
  waited_ns_.fetch_add(NowNs() - t0, std::memory_order_relaxed);
  if (arrived_.load(std::memory_order_acquire) >= count) return Status::OK();
  return error_.WithContext("weights did not arrive");
}

Status WeightGate::status() const {
  if (!failed()) return Status::OK();
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

TensorInfo TensorInfoOf(const ir::Value& v) {
  TensorInfo info;
  info.name = v.name;
  info.dtype = v.dtype;
  if (v.shape) {
    for (const ir::Dim& d : *v.shape) info.shape.push_back(d.is_known() ? d.value : -1);
  }
  return info;
}

namespace {

// Every operator in the graph (and its subgraphs) must have a kernel; lists all that do not.
void CollectUnsupported(const ir::Graph& g, std::vector<std::string>* out, std::set<std::string>* seen) {
  for (const auto& n : g.nodes()) {
    for (const auto& [name, attr] : n->attrs) {
      if (auto sub = attr.get_if<std::shared_ptr<ir::Graph>>()) CollectUnsupported(**sub, out, seen);
    }
    if (runtime::IsControlFlowOp(*n)) continue;
    if (CpuKernelRegistry().Supports(n->domain, n->op_type, n->opset)) continue;
    std::string op = n->domain.empty() ? n->op_type : n->domain + "." + n->op_type;
    if (seen->insert(op).second) out->push_back(fmt::format("{} (node '{}')", op, n->name));
  }
}

// Moves every constant into storage from the model's memory resource, tagged as weights.
Status RehomeWeights(ir::Graph& g, MemoryResource* mr, AllocTag tag, size_t* bytes) {
  for (const auto& v : g.values()) {
    if (!v->constant) continue;
    ASSIGN_OR_RETURN(Tensor t, v->constant->Clone(mr, tag));
    *bytes += t.bytes();
    v->constant = std::make_shared<const Tensor>(std::move(t));
  }
  for (const auto& n : g.nodes()) {
    for (auto& [name, attr] : n->attrs) {
      if (auto sub = attr.get_if<std::shared_ptr<ir::Graph>>()) RETURN_IF_ERROR(RehomeWeights(**sub, mr, tag, bytes));
    }
  }
  return Status::OK();
}

// Deferred weights: every top-level constant gets uninitialized storage from `mr`, numbered in the
// order the (sorted) graph first reads it; the copies are recorded instead of made. Subgraph
// constants are copied now.
Status RehomeWeightsDeferred(ir::Graph& g, MemoryResource* mr, AllocTag tag, CompiledModel::Impl& impl) {
  std::vector<ir::Value*> order;
  std::set<const ir::Value*> seen;
  auto visit = [&](ir::Value* v) {
    if (v != nullptr && v->constant && seen.insert(v).second) order.push_back(v);
  };
  for (const auto& n : g.nodes()) {
    for (ir::Value* v : n->inputs) visit(v);
    for (ir::Value* v : n->implicit_inputs) visit(v);
  }
  for (ir::Value* v : g.outputs()) visit(v);
  for (const auto& v : g.values()) visit(v.get());
  for (ir::Value* v : order) {
    ASSIGN_OR_RETURN(Tensor t, Tensor::Allocate(v->constant->dtype(), v->constant->shape(), mr, tag));
    impl.weight_bytes += t.bytes();
    auto dst = std::make_shared<const Tensor>(std::move(t));
    WeightCopy c;
    c.source = v->constant;
    c.destination = const_cast<void*>(dst->data());
    c.bytes = dst->bytes();
    c.group = impl.pending.size();
    impl.weight_groups[dst.get()] = c.group + 1;
    impl.prepare_values[dst.get()] = c.source.get();
    impl.sources.push_back(c.source);
    impl.pending.push_back(std::move(c));
    v->constant = std::move(dst);
  }
  for (const auto& n : g.nodes()) {
    for (auto& [name, attr] : n->attrs) {
      if (auto sub = attr.get_if<std::shared_ptr<ir::Graph>>()) {
        RETURN_IF_ERROR(RehomeWeights(**sub, mr, tag, &impl.weight_bytes));
      }
    }
  }
  impl.gate = std::make_shared<WeightGate>(impl.pending.size());
  return Status::OK();
}

// Who reads each top-level constant: graph nodes (`uses`, counted per input slot) and whether
// anything else does (`keep`: a graph output, a subgraph's implicit input).
void CountConstantReaders(const ir::Graph& g, CompiledModel::Impl& impl) {
  std::unordered_map<const ir::Value*, const Tensor*> tensor_of;
  for (const auto& v : g.values()) {
    if (!v->constant) continue;
    tensor_of[v.get()] = v->constant.get();
    impl.readers[v->constant.get()].keep = v->is_graph_output;
  }
  for (const auto& n : g.nodes()) {
    for (const ir::Value* v : n->inputs) {
      auto it = v != nullptr ? tensor_of.find(v) : tensor_of.end();
      if (it != tensor_of.end()) impl.readers[it->second].uses++;
    }
    for (const ir::Value* v : n->implicit_inputs) {
      auto it = v != nullptr ? tensor_of.find(v) : tensor_of.end();
      if (it != tensor_of.end()) impl.readers[it->second].keep = true;
    }
  }
}

// Counts the copies `step` holds of constants (Kernel::CopyOfInput) into `owned` and frees the
// plain storage of each constant whose every reader node now holds one: packed weights are then the
// only copy (weights held once), and since this happens step by step while the first plan is
// built, the plain and packed copies of all weights never coexist. The kept handles make the
// copies live as long as the model, so a later plan can rebuild from them even if this one fails.
// A constant also read by a node that is not a prepared step (evaluated while planning, prepared at
// run time, a layout conversion) never reaches its count and keeps its storage. The freed Tensor
// stays where plans' slots point, with dtype and shape and null data. Caller holds impl.mu.
void FreeOwnedConstants(CompiledModel::Impl& impl, const runtime::Plan& plan, const runtime::Step& step,
                        std::unordered_map<const Tensor*, std::vector<std::shared_ptr<const void>>>& owned) {
  if (step.kernel == nullptr || step.owned_node != nullptr) return;
  for (size_t j = 0; j < step.inputs.size(); ++j) {
    if (step.inputs[j] < 0) continue;
    const runtime::Slot& slot = plan.slots[static_cast<size_t>(step.inputs[j])];
    if (slot.kind != runtime::Slot::Kind::kConstant) continue;
    auto it = impl.readers.find(slot.value);
    if (it == impl.readers.end() || it->second.keep || slot.value->data() == nullptr) continue;
    std::shared_ptr<const void> copy = step.kernel->CopyOfInput(j);
    if (copy == nullptr) continue;
    auto& copies = owned[slot.value];
    copies.push_back(std::move(copy));
    if (copies.size() != it->second.uses) continue;
    for (auto& c : copies) impl.kept_copies.push_back(std::move(c));
    copies.clear();
    impl.freed_plain_bytes += slot.value->bytes();
    // The graph owns its constants (Create re-homed each into storage of its own).
    const Tensor* t = slot.value;
    const_cast<Tensor&>(*t) = Tensor::WrapExternal(t->dtype(), t->shape(), nullptr);
  }
}

// Deferred weights: the plain storage is written by the copier until the gate completes and runs
// may be in flight, so constants are freed only once both are over (try-locked: a later call
// retries), and only those whose readers hold copies in every plan built so far. Caller holds mu.
void TryFreeAfterCopies(CompiledModel::Impl& impl) {
  std::unique_lock<std::shared_mutex> no_runs(impl.run_mu, std::defer_lock);
  if (!impl.gate->complete() || !no_runs.try_lock()) {
    impl.free_pending = true;
    return;
  }
  impl.free_pending = false;
  std::unordered_map<const Tensor*, size_t> complete_in;  // plans where every reader holds a copy
  std::unordered_map<const Tensor*, std::vector<std::shared_ptr<const void>>> handles;
  for (const auto& [shapes, plan] : impl.plans) {
    std::unordered_map<const Tensor*, size_t> count;
    for (const runtime::Step& step : plan->steps) {
      if (step.kernel == nullptr || step.owned_node != nullptr) continue;
      for (size_t j = 0; j < step.inputs.size(); ++j) {
        if (step.inputs[j] < 0) continue;
        const runtime::Slot& slot = plan->slots[static_cast<size_t>(step.inputs[j])];
        if (slot.kind != runtime::Slot::Kind::kConstant || slot.value->data() == nullptr) continue;
        if (auto copy = step.kernel->CopyOfInput(j)) {
          count[slot.value]++;
          handles[slot.value].push_back(std::move(copy));
        }
      }
    }
    for (const auto& [t, n] : count) {
      auto it = impl.readers.find(t);
      if (it != impl.readers.end() && !it->second.keep && n == it->second.uses) complete_in[t]++;
    }
  }
  for (const auto& [t, n] : complete_in) {
    if (n != impl.plans.size()) continue;
    for (auto& c : handles[t]) impl.kept_copies.push_back(std::move(c));
    impl.freed_plain_bytes += t->bytes();
    const_cast<Tensor&>(*t) = Tensor::WrapExternal(t->dtype(), t->shape(), nullptr);
  }
}

}  // namespace

CompiledModel::CompiledModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CompiledModel::~CompiledModel() = default;

StatusOr<std::unique_ptr<CompiledModel>> CompiledModel::Create(std::unique_ptr<ir::Model> model,
                                                               const CompileOptions& options) {
  if (!model || !model->graph) return InvalidArgument("no model");
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  if (!impl->options.memory) impl->options.memory = DefaultHostResource();
  ir::Graph& g = *model->graph;

  std::vector<std::string> unsupported;
  std::set<std::string> seen;
  CollectUnsupported(g, &unsupported, &seen);
  if (!unsupported.empty()) {
    std::string list;
    for (const auto& u : unsupported) list += (list.empty() ? "" : ", ") + u;
    return Unimplemented("unsupported operator(s): {}", list);
  }
  // FP16 models run in float32 with casts at their float16 inputs and outputs.
  RETURN_IF_ERROR(ComputeFloat16InFloat32(*model).status().WithContext("float16 model"));
  RETURN_IF_ERROR(g.TopologicalSort());
  if (options.optimize) {
    OptimizeOptions oo;
    runtime::EagerOptions eager;
    eager.kernel.num_threads = options.num_threads;
    oo.evaluator = [eager](const ir::Node& node, const std::vector<const Tensor*>& in) {
      return runtime::RunNodeEager(node, in, eager);
    };
    oo.supports = [](const std::string& domain, const std::string& op) {
      return CpuKernelRegistry().Supports(domain, op, 0);
    };
    RETURN_IF_ERROR(OptimizeModel(*model, oo).WithContext("optimizing the graph"));
    RETURN_IF_ERROR(g.TopologicalSort());
  }
  const AllocTag weights_tag{options.owner_tag, MemoryKind::kWeights};
  if (options.defer_weight_copies) {
    RETURN_IF_ERROR(RehomeWeightsDeferred(g, impl->options.memory, weights_tag, *impl));
    impl->plan_options.weight_groups = &impl->weight_groups;
    impl->plan_options.prepare_values = &impl->prepare_values;
  } else {
    RETURN_IF_ERROR(RehomeWeights(g, impl->options.memory, weights_tag, &impl->weight_bytes));
  }

  CountConstantReaders(g, *impl);

  for (const ir::Value* v : g.inputs()) {
    if (v->dtype == DataType::kString) return Unimplemented("input '{}' is a string tensor", v->name);
    impl->inputs.push_back(TensorInfoOf(*v));
    impl->input_values.push_back(v);
  }
  for (const ir::Value* v : g.outputs()) impl->outputs.push_back(TensorInfoOf(*v));
  impl->plan_options.kernel.num_threads = options.num_threads;
  impl->plan_options.kernel.allow_blocked_layouts = options.allow_blocked_layouts;
  impl->plan_options.kernel.bf16_compute = options.bf16_compute && CpuHasBf16Compute();
  impl->plan_options.kernel.conv_algorithm = options.conv_algorithm;
  impl->persistent = std::make_unique<StatisticsResource>(impl->options.memory);
  impl->plan_options.memory = impl->persistent.get();
  impl->plan_options.owner_tag = options.owner_tag;
  impl->plan_options.output_memory = options.output_memory;
  impl->model = std::move(model);
  return std::unique_ptr<CompiledModel>(new CompiledModel(std::move(impl)));
}

const std::vector<TensorInfo>& CompiledModel::inputs() const { return impl_->inputs; }
const std::vector<TensorInfo>& CompiledModel::outputs() const { return impl_->outputs; }
size_t CompiledModel::weight_bytes() const {
  return impl_->weight_bytes - impl_->freed_plain_bytes.load(std::memory_order_relaxed) +
         impl_->persistent->KindStats(MemoryKind::kWeights).current_bytes;
}
const CompileOptions& CompiledModel::options() const { return impl_->options; }
std::shared_ptr<WeightGate> CompiledModel::weight_gate() const { return impl_->gate; }

std::vector<WeightCopy> CompiledModel::TakePendingWeightCopies() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return std::exchange(impl_->pending, {});
}

Status CheckInputShape(const TensorInfo& info, const Shape& shape) {
  if (!info.shape.empty() || shape.empty()) {
    bool declared = !info.shape.empty();
    if (declared && info.shape.size() != shape.size()) {
      return InvalidArgument("input '{}' must have rank {}, got shape {}", info.name, info.shape.size(),
                             ShapeToString(shape));
    }
    for (size_t d = 0; declared && d < shape.size(); ++d) {
      if (info.shape[d] >= 0 && info.shape[d] != shape[d]) {
        return InvalidArgument("input '{}' dimension {} must be {}, got shape {}", info.name, d, info.shape[d],
                               ShapeToString(shape));
      }
    }
  }
  for (int64_t d : shape) {
    if (d < 0) return InvalidArgument("input '{}' has a negative dimension", info.name);
  }
  return Status::OK();
}

StatusOr<std::vector<Shape>> CheckInputs(const std::vector<TensorInfo>& infos, const std::vector<TensorView>& inputs) {
  if (inputs.size() != infos.size()) {
    return InvalidArgument("model takes {} inputs, got {}", infos.size(), inputs.size());
  }
  std::vector<Shape> shapes;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const TensorInfo& info = infos[i];
    if (inputs[i].dtype != info.dtype) {
      return InvalidArgument("input '{}' must be {}, got {}", info.name, DataTypeName(info.dtype),
                             DataTypeName(inputs[i].dtype));
    }
    if (inputs[i].data == nullptr && inputs[i].num_elements() > 0) {
      return InvalidArgument("input '{}' has no data", info.name);
    }
    shapes.push_back(inputs[i].shape);
  }
  return shapes;
}

StatusOr<PlanStats> CompiledModel::Prepare(const std::vector<Shape>& input_shapes) {
  if (input_shapes.size() != impl_->inputs.size()) {
    return InvalidArgument("model takes {} inputs, got {}", impl_->inputs.size(), input_shapes.size());
  }
  for (size_t i = 0; i < input_shapes.size(); ++i) RETURN_IF_ERROR(CheckInputShape(impl_->inputs[i], input_shapes[i]));
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto it = impl_->plans.find(input_shapes);
  if (it != impl_->plans.end()) {
    if (impl_->free_pending) TryFreeAfterCopies(*impl_);
    return it->second->stats;
  }
  std::vector<DataType> dtypes;
  for (const auto& in : impl_->inputs) dtypes.push_back(in.dtype);
  runtime::PlanOptions po = impl_->plan_options;
  if (impl_->gate) {
    RETURN_IF_ERROR(impl_->gate->status());
    if (impl_->gate->complete() && !impl_->sources_released) {
      // Kernels copy what they read while preparing, so plans do not hold on to the sources.
      impl_->sources.clear();
      impl_->sources_released = true;
    }
    if (impl_->sources_released) po.prepare_values = nullptr;
  }
  std::unordered_map<const Tensor*, std::vector<std::shared_ptr<const void>>> owned;
  // Only while the first plan is built: no run can read a constant then, and a constant some
  // reader of the first plan does not copy is never freed (kernels copy whatever the shapes, so
  // later plans' readers hold copies of the same constants). Deferred weights too once they have
  // all arrived before the first plan (a model swapped in ahead of its first request): else the
  // first plan would hold every plain and every packed copy at once, twice the weights.
  if (impl_->plans.empty() && (!impl_->gate || impl_->sources_released)) {
    Impl* impl = impl_.get();
    po.on_step = [impl, &owned](const runtime::Plan& p, const runtime::Step& step) {
      FreeOwnedConstants(*impl, p, step, owned);
    };
  }
  ASSIGN_OR_RETURN(auto plan, runtime::BuildPlan(*impl_->model->graph, input_shapes, dtypes, po));
  PlanStats stats = plan->stats;
  impl_->plans[input_shapes] = std::move(plan);
  if (impl_->gate) TryFreeAfterCopies(*impl_);
  return stats;
}

StatusOr<std::vector<Tensor>> CompiledModel::Run(ExecutionContext& ctx, const std::vector<TensorView>& inputs) {
  ASSIGN_OR_RETURN(std::vector<Shape> shapes, CheckInputs(impl_->inputs, inputs));
  RETURN_IF_ERROR(Prepare(shapes).status());
  const runtime::Plan* plan;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    plan = impl_->plans.at(shapes).get();  // plans are never removed while the model lives
  }
  size_t need = plan->arena_bytes;
  if (ctx.arena_.size() < need) {
    ctx.arena_.Reset();
    MemoryResource* mr = ctx.options_.memory ? ctx.options_.memory : impl_->options.memory;
    AllocTag tag = ctx.options_.arena_tag;
    if (tag.owner == 0) tag.owner = impl_->options.owner_tag;
    ASSIGN_OR_RETURN(ctx.arena_, Buffer::Allocate(mr, need, tag));
  }
  std::shared_lock<std::shared_mutex> reading_constants(impl_->run_mu, std::defer_lock);
  if (impl_->gate) reading_constants.lock();
  auto outputs = runtime::ExecutePlan(*plan, inputs, ctx.arena_.data(), ctx.options_.num_threads,
                                      impl_->plan_options, ctx.options_.profile ? &ctx.step_times_ : nullptr,
                                      impl_->gate.get());
  if (impl_->gate) {
    // The copies may have finished during this run, which kept Prepare's try from freeing the
    // plain weights: the last run to end frees them (a run still in flight retries as it ends).
    reading_constants.unlock();
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->free_pending) TryFreeAfterCopies(*impl_);
  }
  return outputs;
}

void CompiledModel::ReleaseSettledWeights() {
  if (!impl_->gate) return;
  // Try-locked: a Prepare holding mu may be waiting (through an allocation failure that evicts)
  // for the very copy whose end calls this; it retries the free itself as it ends.
  std::unique_lock<std::mutex> lock(impl_->mu, std::try_to_lock);
  if (lock.owns_lock() && impl_->free_pending) TryFreeAfterCopies(*impl_);
}

ExecutionContext::ExecutionContext(Options options) : options_(options) {}
ExecutionContext::~ExecutionContext() = default;

}  // namespace gpuhive
