// CUDA executor (include/gpuhive/cuda_executor.h): plans per input-shape signature, a statically
// planned device arena per plan, optional CUDA Graph capture and replay.
#include <algorithm>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <utility>

#include "gpuhive/arena_planner.h"
#include "gpuhive/cuda_device.h"
#include "gpuhive/cuda_executor.h"
#include "gpuhive/kernel.h"
#include "gpuhive/logging.h"
#include "gpuhive/memory/upstreams.h"
#include "gpuhive/passes.h"
#include "runtime/cuda/plan_analysis.h"
#include "runtime/cuda/steps.h"
#include "runtime/eager.h"

namespace gpuhive::cuda {
namespace {

using executor::BuiltStep;
using executor::PlannedValue;
using executor::StepFn;

struct Plan {
  std::unique_ptr<executor::Analysis> analysis;  // shapes, host values, arena offsets
  std::vector<Buffer> uploads;     // device copies of plan-time results
  Buffer arena, workspace, flag;
  size_t workspace_bytes = 0;
  std::vector<StepFn> steps;
  std::vector<std::string> step_names;
  std::vector<std::string> step_ops;  // "domain.op_type" (op_type alone for ONNX), for profiles
  Buffer staging;  // pinned host: inputs, outputs, error flag
  const Stream* stream = nullptr;  // its lane's: the plan's buffers and graph are used there only
  int runs = 0;
  std::unique_ptr<GraphExec> graph;
  bool capture_failed = false;
};

// One stream and the plans bound to it (their arenas, staging and CUDA graphs): each worker and
// priority level that runs the model gets its own lane, so their batches overlap on the device and
// a critical worker's run on its most urgent stream. Runs on one lane are serialized.
struct Lane {
  std::unique_ptr<Stream> stream;
  std::mutex mu;
  std::map<std::vector<Shape>, std::unique_ptr<Plan>> plans;
};

class ExecutorImpl;

class StepInputsImpl final : public executor::StepInputs {
 public:
  StepInputsImpl(ExecutorImpl* ex, Plan* plan, const ir::Node& node, std::vector<PlannedValue*> in,
                 std::vector<PlannedValue*> out, std::vector<bool> used)
      : ex_(ex), plan_(plan), node_(node), in_(std::move(in)), out_(std::move(out)), used_(std::move(used)) {}
  const ir::Node& node() const override { return node_; }
  size_t num_inputs() const override { return in_.size(); }
  const PlannedValue* input(size_t i) const override { return i < in_.size() ? in_[i] : nullptr; }
  StatusOr<const void*> DeviceInput(size_t i) override;
  StatusOr<const void*> DeviceConstant16(size_t i, DataType dtype) override;
  size_t num_outputs() const override { return out_.size(); }
  PlannedValue* output(size_t i) const override { return i < out_.size() ? out_[i] : nullptr; }
  bool output_used(size_t i) const override { return i < used_.size() && used_[i]; }
  MathMode math() const override;
  MatmulRunner& matmul() override;
  StatusOr<std::shared_ptr<ConvRunner>> conv(const ConvDesc& desc) override;
  size_t max_workspace_bytes() const override;
  int* error_flag() const override { return static_cast<int*>(plan_->flag.data()); }

 private:
  ExecutorImpl* ex_;
  Plan* plan_;
  const ir::Node& node_;
  std::vector<PlannedValue*> in_, out_;
  std::vector<bool> used_;
};

class ExecutorImpl final : public CudaExecutor {
 public:
  ExecutorImpl(std::shared_ptr<const ir::Graph> graph, ExecutorOptions options)
      : graph_(std::move(graph)), options_(options) {}

  ~ExecutorImpl() override {
    for (auto& [key, lane] : lanes_) {
      if (lane->stream != nullptr) (void)lane->stream->Synchronize();
    }
    lanes_.clear();
    weights_.clear();
    weights16_.clear();
  }

  Status Init() {
    RETURN_IF_ERROR(SetCurrentDevice(options_.device_index));
    if (options_.memory == nullptr) {
      ASSIGN_OR_RETURN(owned_memory_, CreateCudaDeviceResource(options_.device_index));
      options_.memory = owned_memory_.get();
    }
    pinned_ = CreatePinnedHostResource();
    RETURN_IF_ERROR(LaneFor(RunLane{}).status());  // the default lane, so a bad priority fails here
    if (options_.defer_weight_copies) RETURN_IF_ERROR(PlaceDeferredWeights());
    MatmulRunner::Options mo;
    mo.max_workspace_bytes = std::min<size_t>(options_.max_workspace_bytes, 64ull << 20);
    ASSIGN_OR_RETURN(matmul_, MatmulRunner::Create(mo));
    return Status::OK();
  }

  StatusOr<std::vector<Tensor>> Run(const std::vector<TensorView>& inputs, const RunLane& run_lane) override {
    RETURN_IF_ERROR(SetCurrentDevice(options_.device_index));
    ASSIGN_OR_RETURN(Lane * lane, LaneFor(run_lane));
    std::lock_guard<std::mutex> lock(lane->mu);
    const auto& gin = graph_->inputs();
    if (inputs.size() != gin.size()) {
      return InvalidArgument("model expects {} input(s), got {}", gin.size(), inputs.size());
    }
    std::vector<Shape> key;
    for (size_t i = 0; i < inputs.size(); ++i) {
      const ir::Value* v = gin[i];
      if (inputs[i].dtype != v->dtype) {
        return InvalidArgument("input '{}' must be {}, got {}", v->name, DataTypeName(v->dtype),
                               DataTypeName(inputs[i].dtype));
      }
      if (v->shape.has_value()) {
        const auto& dims = *v->shape;
        if (dims.size() != inputs[i].shape.size()) {
          return InvalidArgument("input '{}' must have rank {}, got {}", v->name, dims.size(),
                                 ShapeToString(inputs[i].shape));
        }
        for (size_t d = 0; d < dims.size(); ++d) {
          if (dims[d].is_known() && dims[d].value != inputs[i].shape[d]) {
            return InvalidArgument("input '{}' dim {} must be {}, got {}", v->name, d, dims[d].value,
                                   inputs[i].shape[d]);
          }
        }
      }
      key.push_back(inputs[i].shape);
    }
    auto it = lane->plans.find(key);
    if (it == lane->plans.end()) {
      ASSIGN_OR_RETURN(std::unique_ptr<Plan> plan, BuildPlan(inputs, *lane->stream));
      it = lane->plans.emplace(key, std::move(plan)).first;
      Count(&ExecutorStats::plans);
    }
    return Execute(*it->second, inputs);
  }

  StatusOr<std::map<std::string, StepProfile>> ProfileSteps(const std::vector<TensorView>& inputs) override {
    // A plan for these shapes (built by a normal run), then one step-by-step pass with an event
    // pair around every step.
    RETURN_IF_ERROR(Run(inputs, RunLane{}).status());
    ASSIGN_OR_RETURN(Lane * lane, LaneFor(RunLane{}));
    std::lock_guard<std::mutex> lock(lane->mu);
    std::vector<Shape> key;
    for (const TensorView& t : inputs) key.push_back(t.shape);
    auto it = lane->plans.find(key);
    if (it == lane->plans.end()) return Internal("no plan after a run");
    Plan& plan = *it->second;
    StreamView sv = plan.stream->view();
    std::vector<std::unique_ptr<Event>> marks;
    for (size_t i = 0; i <= plan.steps.size(); ++i) {
      ASSIGN_OR_RETURN(std::unique_ptr<Event> e, Event::Create(options_.device_index, true));
      marks.push_back(std::move(e));
    }
    RETURN_IF_ERROR(marks[0]->Record(sv));
    for (size_t i = 0; i < plan.steps.size(); ++i) {
      Status st = plan.steps[i](sv, plan.workspace.data());
      if (!st.ok()) return st.WithContext(plan.step_names[i]);
      RETURN_IF_ERROR(marks[i + 1]->Record(sv));
    }
    RETURN_IF_ERROR(lane->stream->Synchronize());
    std::map<std::string, StepProfile> out;
    for (size_t i = 0; i < plan.steps.size(); ++i) {
      ASSIGN_OR_RETURN(float ms, marks[i + 1]->ElapsedMsSince(*marks[i]));
      StepProfile& p = out[plan.step_ops[i]];
      ++p.steps;
      p.ms += ms;
    }
    return out;
  }

  std::shared_ptr<WeightGate> weight_gate() const override { return gate_; }
  std::vector<WeightCopy> TakePendingWeightCopies() override {
    std::lock_guard<std::mutex> lock(weights_mu_);
    return std::exchange(pending_copies_, {});
  }

  // Device storage for the weights the caller's copy engine fills (defer_weight_copies), one gate
  // group each in first-use order.
  Status PlaceDeferredWeights() {
    std::vector<const ir::Value*> order = DeferredWeights(*graph_, options_.math);
    gate_ = std::make_shared<WeightGate>(order.size());
    std::lock_guard<std::mutex> lock(weights_mu_);
    for (size_t g = 0; g < order.size(); ++g) {
      const ir::Value* v = order[g];
      const size_t bytes = v->constant->bytes();
      ASSIGN_OR_RETURN(Buffer b, Buffer::Allocate(options_.memory, bytes, AllocTag{options_.owner_tag, MemoryKind::kWeights}));
      pending_copies_.push_back(WeightCopy{v->constant, b.data(), bytes, g});
      deferred_group_[v] = g;
      weights_.emplace(v, std::move(b));
      Count(&ExecutorStats::weight_bytes, bytes);
    }
    return Status::OK();
  }

  ExecutorStats stats() const override {
    std::lock_guard<std::mutex> lock(stats_mu_);
    return stats_;
  }

  // The lane of a worker and priority level, created with its stream on first use.
  StatusOr<Lane*> LaneFor(const RunLane& run_lane) {
    const int priority = run_lane.priority_level >= 0 ? run_lane.priority_level : options_.priority_level;
    const std::pair<int, int> key{run_lane.worker, priority};
    std::lock_guard<std::mutex> lock(lanes_mu_);
    auto it = lanes_.find(key);
    if (it != lanes_.end()) return it->second.get();
    auto lane = std::make_unique<Lane>();
    ASSIGN_OR_RETURN(lane->stream, Stream::Create({options_.device_index, priority}));
    Lane* p = lane.get();
    lanes_.emplace(key, std::move(lane));
    Count(&ExecutorStats::lanes);
    return p;
  }

  void Count(size_t ExecutorStats::*field, size_t n = 1) {
    std::lock_guard<std::mutex> lock(stats_mu_);
    stats_.*field += n;
  }

  // A device buffer of `kind` holding `t`, copied on `stream` (the caller synchronizes before the
  // host tensor may go or change).
  StatusOr<Buffer> Upload(const Tensor& t, MemoryKind kind, const Stream& stream) {
    ASSIGN_OR_RETURN(Buffer b, Buffer::Allocate(options_.memory, std::max<size_t>(t.bytes(), 1),
                                                AllocTag{options_.owner_tag, kind}, stream.view()));
    RETURN_IF_ERROR(CopyHostToDeviceAsync(b.data(), t.data(), t.bytes(), stream.view()));
    return b;
  }

  // Device copy of a graph constant (uploaded once on the stream of the plan that needs it first,
  // complete before any lane can read it; shared by every plan of every lane).
  StatusOr<const void*> ConstantOnDevice(const ir::Value* v, const Stream& stream) {
    std::unique_lock<std::mutex> lock(weights_mu_);
    auto it = weights_.find(v);
    if (it != weights_.end()) {
      const void* p = it->second.data();
      // A weight the copy engine places: the plan reads it only once it is on the device. The
      // wait happens outside the lock, so other lanes' uploads and lookups go on meanwhile.
      auto group = deferred_group_.find(v);
      if (group == deferred_group_.end()) return p;
      const size_t needed = group->second + 1;
      lock.unlock();
      RETURN_IF_ERROR(gate_->WaitFor(needed));
      return p;
    }
    const Tensor& t = *v->constant;
    ASSIGN_OR_RETURN(Buffer b, Upload(t, MemoryKind::kWeights, stream));
    RETURN_IF_ERROR(stream.Synchronize());  // the host tensor may be pageable: finish before returning
    Count(&ExecutorStats::weight_bytes, t.bytes());
    const void* p = b.data();
    weights_.emplace(v, std::move(b));
    return p;
  }

  // Device copy of a float32 graph constant in float16 / bfloat16 (16-bit plans: convolution and
  // matrix-product operands), converted on the device from a transient float32 copy; made once and
  // shared by every plan. Only the 16-bit copy stays.
  StatusOr<const void*> Constant16OnDevice(const ir::Value* v, DataType dtype, const Stream& stream) {
    const StreamView s = stream.view();
    std::lock_guard<std::mutex> lock(weights_mu_);
    auto key = std::make_pair(v, dtype);
    auto it = weights16_.find(key);
    if (it != weights16_.end()) return static_cast<const void*>(it->second.data());
    const Tensor& t = *v->constant;
    ASSIGN_OR_RETURN(Buffer staged, Upload(t, MemoryKind::kWorkspace, stream));
    const size_t bytes16 = static_cast<size_t>(t.num_elements()) * 2;
    ASSIGN_OR_RETURN(Buffer b, Buffer::Allocate(options_.memory, std::max<size_t>(bytes16, 1),
                                                AllocTag{options_.owner_tag, MemoryKind::kWeights}, s));
    RETURN_IF_ERROR(ConvertFromFloat(static_cast<const float*>(staged.data()), b.data(), dtype, t.num_elements(), s));
    RETURN_IF_ERROR(stream.Synchronize());  // pageable source; `staged` is freed on return
    Count(&ExecutorStats::weight_bytes, bytes16);
    const void* p = b.data();
    weights16_.emplace(key, std::move(b));
    return p;
  }

  StatusOr<const void*> UploadPlanValue(Plan* plan, PlannedValue* pv) {
    ASSIGN_OR_RETURN(Buffer b, Upload(*pv->host, MemoryKind::kActivations, *plan->stream));
    RETURN_IF_ERROR(plan->stream->Synchronize());
    pv->device = b.data();
    plan->uploads.push_back(std::move(b));
    return static_cast<const void*>(pv->device);
  }

  const ExecutorOptions& options() const { return options_; }
  MatmulRunner& matmul() { return *matmul_; }

 private:
  StatusOr<std::unique_ptr<Plan>> BuildPlan(const std::vector<TensorView>& inputs, const Stream& lane_stream) {
    auto plan = std::make_unique<Plan>();
    plan->stream = &lane_stream;
    const StreamView stream = lane_stream.view();
    const ir::Graph& g = *graph_;
    ASSIGN_OR_RETURN(plan->analysis, executor::AnalyzePlan(g, inputs));
    executor::Analysis& an = *plan->analysis;
    const ArenaPlan& arena = an.arena;
    const AllocTag act{options_.owner_tag, MemoryKind::kActivations};
    ASSIGN_OR_RETURN(plan->arena, Buffer::Allocate(options_.memory, std::max<size_t>(arena.arena_bytes, 1), act,
                                                   stream));
    for (auto& [v, sid] : an.storage_of) {
      an.values[v].device = static_cast<char*>(plan->arena.data()) + arena.offsets[sid];
    }
    ASSIGN_OR_RETURN(plan->flag, Buffer::Allocate(options_.memory, sizeof(int), act, stream));

    for (const executor::DeviceNode& dn : an.device_nodes) {
      const ir::Node& n = *dn.node;
      std::vector<PlannedValue*> in, out;
      std::vector<bool> used;
      for (const ir::Value* v : n.inputs) in.push_back(v ? &an.values.at(v) : nullptr);
      for (const ir::Value* v : n.outputs) {
        out.push_back(v ? &an.values.at(v) : nullptr);
        used.push_back(v != nullptr && (!v->consumers.empty() || v->is_graph_output));
      }
      StepInputsImpl si(this, plan.get(), n, std::move(in), std::move(out), std::move(used));
      ASSIGN_OR_RETURN(BuiltStep built, executor::BuildStep(si));
      plan->workspace_bytes = std::max(plan->workspace_bytes, built.workspace_bytes);
      plan->steps.push_back(std::move(built.run));
      plan->step_names.push_back(n.Describe());
      plan->step_ops.push_back(n.domain.empty() ? n.op_type : n.domain + "." + n.op_type);
    }
    ASSIGN_OR_RETURN(plan->workspace,
                     Buffer::Allocate(options_.memory, plan->workspace_bytes,
                                      AllocTag{options_.owner_tag, MemoryKind::kWorkspace}, stream));

    size_t staging = sizeof(int) + 256;
    for (const TensorView& t : inputs) staging += t.plain_bytes() + 256;
    for (const ir::Value* v : g.outputs()) {
      const PlannedValue& pv = an.values.at(v);
      staging += static_cast<size_t>(NumElements(pv.shape)) * DataTypeSize(pv.dtype) + 256;
    }
    ASSIGN_OR_RETURN(plan->staging, Buffer::Allocate(pinned_.get(), staging, AllocTag{options_.owner_tag, MemoryKind::kIO}));
    RETURN_IF_ERROR(lane_stream.Synchronize());
    return plan;
  }

  Status RunSteps(Plan& plan) {
    for (size_t i = 0; i < plan.steps.size(); ++i) {
      Status st = plan.steps[i](plan.stream->view(), plan.workspace.data());
      if (!st.ok()) return st.WithContext(plan.step_names[i]);
    }
    return Status::OK();
  }

  // Runs the steps, through a CUDA graph from the second run on when enabled.
  Status Compute(Plan& plan) {
    const StreamView s = plan.stream->view();
    if (plan.graph != nullptr) {
      Count(&ExecutorStats::graph_replays);
      return plan.graph->Launch(s);
    }
    if (!options_.use_cuda_graphs || plan.capture_failed || plan.runs == 0) return RunSteps(plan);
    // Capture once (the first run did the lazy library initialization outside the capture).
    auto captured = GraphExec::Capture(s, [&] { return RunSteps(plan); });
    if (!captured.ok()) {
      plan.capture_failed = true;
      Count(&ExecutorStats::graph_capture_failures);
      GH_LOG_WARN("cuda", "CUDA graph capture failed ({}); running the plan step by step", captured.status().ToString());
      return RunSteps(plan);
    }
    plan.graph = std::move(*captured);
    Count(&ExecutorStats::graph_captures);
    Count(&ExecutorStats::graph_replays);
    return plan.graph->Launch(s);
  }

  StatusOr<std::vector<Tensor>> Execute(Plan& plan, const std::vector<TensorView>& inputs) {
    const ir::Graph& g = *graph_;
    StreamView sv = plan.stream->view();
    char* stage = static_cast<char*>(plan.staging.data());
    size_t off = 0;
    auto take = [&](size_t bytes) {
      char* p = stage + off;
      off += (bytes + 255) / 256 * 256;
      return p;
    };
    for (size_t i = 0; i < inputs.size(); ++i) {
      size_t bytes = inputs[i].plain_bytes();
      char* p = take(bytes);
      if (bytes > 0) std::memcpy(p, inputs[i].data, bytes);
      RETURN_IF_ERROR(CopyHostToDeviceAsync(plan.analysis->values.at(g.inputs()[i]).device, p, bytes, sv));
    }
    RETURN_IF_ERROR(MemsetDeviceAsync(plan.flag.data(), 0, sizeof(int), sv));
    RETURN_IF_ERROR(Compute(plan));
    std::vector<char*> out_stage;
    for (const ir::Value* v : g.outputs()) {
      const PlannedValue& pv = plan.analysis->values.at(v);
      size_t bytes = static_cast<size_t>(NumElements(pv.shape)) * DataTypeSize(pv.dtype);
      char* p = take(bytes);
      out_stage.push_back(p);
      if (pv.host == nullptr) RETURN_IF_ERROR(CopyDeviceToHostAsync(p, pv.device, bytes, sv));
    }
    int* flag = reinterpret_cast<int*>(take(sizeof(int)));
    RETURN_IF_ERROR(CopyDeviceToHostAsync(flag, plan.flag.data(), sizeof(int), sv));
    RETURN_IF_ERROR(plan.stream->Synchronize());
    ++plan.runs;
    if (*flag != 0) return InvalidArgument("a Gather index was out of range");
    std::vector<Tensor> outs;
    for (size_t o = 0; o < g.outputs().size(); ++o) {
      const PlannedValue& pv = plan.analysis->values.at(g.outputs()[o]);
      if (pv.host != nullptr) {
        ASSIGN_OR_RETURN(Tensor t, pv.host->Clone());
        outs.push_back(std::move(t));
        continue;
      }
      size_t bytes = static_cast<size_t>(NumElements(pv.shape)) * DataTypeSize(pv.dtype);
      ASSIGN_OR_RETURN(Tensor t, Tensor::FromBytes(pv.dtype, pv.shape, out_stage[o], bytes));
      outs.push_back(std::move(t));
    }
    return outs;
  }

  std::shared_ptr<const ir::Graph> graph_;
  ExecutorOptions options_;
  // Declaration order is destruction order reversed: plans and weights go before the memory.
  std::unique_ptr<MemoryResource> owned_memory_;
  std::unique_ptr<MemoryResource> pinned_;
  std::unique_ptr<MatmulRunner> matmul_;
  std::mutex weights_mu_;  // uploads happen while a lane builds a plan
  std::map<const ir::Value*, Buffer> weights_;
  std::map<std::pair<const ir::Value*, DataType>, Buffer> weights16_;
  std::map<const ir::Value*, size_t> deferred_group_;  // weights the copy engine places -> gate group
  std::vector<WeightCopy> pending_copies_;
  std::shared_ptr<WeightGate> gate_;  // null unless defer_weight_copies
  std::mutex lanes_mu_;
  std::map<std::pair<int, int>, std::unique_ptr<Lane>> lanes_;  // (worker, priority level)
  mutable std::mutex stats_mu_;
  ExecutorStats stats_;
};

StatusOr<const void*> StepInputsImpl::DeviceInput(size_t i) {
  PlannedValue* pv = i < in_.size() ? in_[i] : nullptr;
  if (pv == nullptr) return InvalidArgument("{}: input {} is missing", node_.Describe(), i);
  if (pv->device != nullptr) return static_cast<const void*>(pv->device);
  if (pv->host == nullptr) return Internal("{}: input {} has neither device nor host storage", node_.Describe(), i);
  const ir::Value* v = node_.inputs[i];
  if (v->is_constant() && v->constant.get() == pv->host) {
    ASSIGN_OR_RETURN(const void* p, ex_->ConstantOnDevice(v, *plan_->stream));
    pv->device = const_cast<void*>(p);
    return p;
  }
  return ex_->UploadPlanValue(plan_, pv);
}
StatusOr<const void*> StepInputsImpl::DeviceConstant16(size_t i, DataType dtype) {
  const PlannedValue* pv = i < in_.size() ? in_[i] : nullptr;
  const ir::Value* v = i < node_.inputs.size() ? node_.inputs[i] : nullptr;
  if (pv == nullptr || v == nullptr || !v->is_constant() || v->constant.get() != pv->host ||
      pv->dtype != DataType::kFloat32) {
    return NotFound("{}: input {} is not a float32 graph constant", node_.Describe(), i);
  }
  return ex_->Constant16OnDevice(v, dtype, *plan_->stream);
}
MathMode StepInputsImpl::math() const { return ex_->options().math; }
MatmulRunner& StepInputsImpl::matmul() { return ex_->matmul(); }
StatusOr<std::shared_ptr<ConvRunner>> StepInputsImpl::conv(const ConvDesc& desc) {
  ASSIGN_OR_RETURN(std::unique_ptr<ConvRunner> r, ConvRunner::Create(desc, max_workspace_bytes()));
  return std::shared_ptr<ConvRunner>(std::move(r));
}
size_t StepInputsImpl::max_workspace_bytes() const { return ex_->options().max_workspace_bytes; }

}  // namespace

StatusOr<std::unique_ptr<CudaExecutor>> CudaExecutor::Create(std::shared_ptr<const ir::Graph> graph,
                                                             const ExecutorOptions& options) {
  if (graph == nullptr) return InvalidArgument("CudaExecutor::Create: null graph");
  RETURN_IF_ERROR(CheckCudaSupport(*graph));
  auto count = DeviceCountOrError();
  if (!count.ok()) return Unavailable("no CUDA device for the CUDA executor: {}", count.status().message());
  auto ex = std::make_unique<ExecutorImpl>(std::move(graph), options);
  RETURN_IF_ERROR(ex->Init());
  return std::unique_ptr<CudaExecutor>(std::move(ex));
}

StatusOr<std::unique_ptr<CudaExecutor>> CreateCudaExecutorForModel(std::unique_ptr<ir::Model> model,
                                                                   const ExecutorOptions& options) {
  if (model == nullptr || model->graph == nullptr) return InvalidArgument("CreateCudaExecutorForModel: no model");
  RETURN_IF_ERROR(OptimizeForCuda(*model));
  return CudaExecutor::Create(std::shared_ptr<const ir::Graph>(model->graph), options);
}

}  // namespace gpuhive::cuda
