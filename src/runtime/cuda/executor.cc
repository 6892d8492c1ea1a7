// CUDA executor (include/gpuhive/cuda_executor.h): plans per input-shape signature, a statically
// planned device arena per plan, optional CUDA Graph capture and replay.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>

#include "device/cuda/cuda_status.h"
#include "gpuhive/arena_planner.h"
#include "gpuhive/cuda_device.h"
#include "gpuhive/cuda_executor.h"
#include "gpuhive/kernel.h"
#include "gpuhive/logging.h"
#include "gpuhive/memory/upstreams.h"
#include "gpuhive/passes.h"
#include "runtime/cuda/steps.h"
#include "runtime/eager.h"

namespace gpuhive::cuda {
namespace {

using executor::BuiltStep;
using executor::PlannedValue;
using executor::StepFn;

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

struct Plan {
  std::map<const ir::Value*, PlannedValue> values;
  std::deque<Tensor> host_values;  // plan-time results (stable addresses)
  std::vector<Buffer> uploads;     // device copies of plan-time results
  Buffer arena, workspace, flag;
  size_t workspace_bytes = 0;
  std::vector<StepFn> steps;
  std::vector<std::string> step_names;
  Buffer staging;  // pinned host: inputs, outputs, error flag
  int runs = 0;
  cudaGraphExec_t graph = nullptr;
  bool capture_failed = false;
  ~Plan() {
    if (graph != nullptr) cudaGraphExecDestroy(graph);
  }
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
  size_t num_outputs() const override { return out_.size(); }
  PlannedValue* output(size_t i) const override { return i < out_.size() ? out_[i] : nullptr; }
  bool output_used(size_t i) const override { return i < used_.size() && used_[i]; }
  MathMode math() const override;
  MatmulRunner& matmul() override;
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
    if (stream_ != nullptr) (void)stream_->Synchronize();
    plans_.clear();
    weights_.clear();
  }

  Status Init() {
    GH_CUDA_RETURN_IF_ERROR(cudaSetDevice(options_.device_index));
    if (options_.math != MathMode::kFloat32 && options_.math != MathMode::kTF32) {
      return InvalidArgument("the CUDA executor runs float32 graphs with FP32 or TF32 math");
    }
    if (options_.memory == nullptr) {
      ASSIGN_OR_RETURN(owned_memory_, CreateCudaDeviceResource(options_.device_index));
      options_.memory = owned_memory_.get();
    }
    pinned_ = CreatePinnedHostResource();
    ASSIGN_OR_RETURN(stream_, Stream::Create({options_.device_index, options_.priority_level}));
    MatmulRunner::Options mo;
    mo.max_workspace_bytes = std::min<size_t>(options_.max_workspace_bytes, 64ull << 20);
    ASSIGN_OR_RETURN(matmul_, MatmulRunner::Create(mo));
    return Status::OK();
  }

  StatusOr<std::vector<Tensor>> Run(const std::vector<TensorView>& inputs) override {
    std::lock_guard<std::mutex> lock(mu_);
    GH_CUDA_RETURN_IF_ERROR(cudaSetDevice(options_.device_index));
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
    auto it = plans_.find(key);
    if (it == plans_.end()) {
      ASSIGN_OR_RETURN(std::unique_ptr<Plan> plan, BuildPlan(inputs));
      it = plans_.emplace(key, std::move(plan)).first;
      ++stats_.plans;
    }
    return Execute(*it->second, inputs);
  }

  ExecutorStats stats() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
  }

  // Device copy of a graph constant (uploaded once, shared by every plan).
  StatusOr<const void*> ConstantOnDevice(const ir::Value* v) {
    auto it = weights_.find(v);
    if (it != weights_.end()) return static_cast<const void*>(it->second.data());
    const Tensor& t = *v->constant;
    ASSIGN_OR_RETURN(Buffer b, Buffer::Allocate(options_.memory, std::max<size_t>(t.bytes(), 1),
                                                AllocTag{options_.owner_tag, MemoryKind::kWeights}, stream_->view()));
    RETURN_IF_ERROR(CopyHostToDeviceAsync(b.data(), t.data(), t.bytes(), stream_->view()));
    RETURN_IF_ERROR(stream_->Synchronize());  // the host tensor may be pageable: finish before returning
    stats_.weight_bytes += t.bytes();
    const void* p = b.data();
    weights_.emplace(v, std::move(b));
    return p;
  }

  StatusOr<const void*> UploadPlanValue(Plan* plan, PlannedValue* pv) {
    const Tensor& t = *pv->host;
    ASSIGN_OR_RETURN(Buffer b, Buffer::Allocate(options_.memory, std::max<size_t>(t.bytes(), 1),
                                                AllocTag{options_.owner_tag, MemoryKind::kActivations},
                                                stream_->view()));
    RETURN_IF_ERROR(CopyHostToDeviceAsync(b.data(), t.data(), t.bytes(), stream_->view()));
    RETURN_IF_ERROR(stream_->Synchronize());
    pv->device = b.data();
    plan->uploads.push_back(std::move(b));
    return static_cast<const void*>(pv->device);
  }

  const ExecutorOptions& options() const { return options_; }
  MatmulRunner& matmul() { return *matmul_; }

 private:
  StatusOr<std::unique_ptr<Plan>> BuildPlan(const std::vector<TensorView>& inputs) {
    auto plan = std::make_unique<Plan>();
    const ir::Graph& g = *graph_;
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
    std::map<const ir::Value*, size_t> storage_of;
    auto new_storage = [&](const ir::Value* v, const PlannedValue& pv, int step) {
      size_t bytes = std::max<size_t>(static_cast<size_t>(std::max<int64_t>(NumElements(pv.shape), 0)) *
                                          DataTypeSize(pv.dtype), 1);
      storage.push_back({bytes, step, step});
      storage_of[v] = storage.size() - 1;
    };

    for (size_t i = 0; i < g.inputs().size(); ++i) {
      const ir::Value* v = g.inputs()[i];
      PlannedValue pv{inputs[i].dtype, inputs[i].shape, nullptr, nullptr};
      plan->values[v] = pv;
      new_storage(v, pv, 0);
    }
    for (const auto& v : g.values()) {
      if (v->is_constant()) plan->values[v.get()] = PlannedValue{v->constant->dtype(), v->constant->shape(), nullptr,
                                                                 v->constant.get()};
    }

    struct DeviceNode {
      const ir::Node* node;
      int step;
    };
    std::vector<DeviceNode> device_nodes;
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
        auto f = plan->values.find(v);
        if (f == plan->values.end()) {
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
        for (size_t o = 0; o < n.outputs.size() && o < outs.size(); ++o) {
          if (n.outputs[o] == nullptr) continue;
          plan->host_values.push_back(std::move(outs[o]));
          const Tensor& t = plan->host_values.back();
          plan->values[n.outputs[o]] = PlannedValue{t.dtype(), t.shape(), nullptr, &t};
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
      bool alias = executor::IsAliasOp(n) ||
                   (n.domain.empty() && n.op_type == "Cast" && in[0] != nullptr && n.outputs.size() == 1 &&
                    sc.outputs()[0].dtype == in[0]->dtype);
      for (size_t o = 0; o < n.outputs.size(); ++o) {
        const ir::Value* v = n.outputs[o];
        if (v == nullptr) continue;
        plan->values[v] = sc.outputs()[o];
        if (o == 0 && alias && in[0] != nullptr && in[0]->host == nullptr) {
          storage_of[v] = storage_of.at(n.inputs[0]);
        } else {
          new_storage(v, plan->values[v], step);
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
    ArenaPlan arena = PlanArena(lifetimes, MemoryResource::kAlignment);
    const AllocTag act{options_.owner_tag, MemoryKind::kActivations};
    ASSIGN_OR_RETURN(plan->arena, Buffer::Allocate(options_.memory, std::max<size_t>(arena.arena_bytes, 1), act,
                                                   stream_->view()));
    for (auto& [v, sid] : storage_of) {
      plan->values[v].device = static_cast<char*>(plan->arena.data()) + arena.offsets[sid];
    }
    ASSIGN_OR_RETURN(plan->flag, Buffer::Allocate(options_.memory, sizeof(int), act, stream_->view()));

    for (const DeviceNode& dn : device_nodes) {
      const ir::Node& n = *dn.node;
      std::vector<PlannedValue*> in, out;
      std::vector<bool> used;
      for (const ir::Value* v : n.inputs) in.push_back(v ? &plan->values.at(v) : nullptr);
      for (const ir::Value* v : n.outputs) {
        out.push_back(v ? &plan->values.at(v) : nullptr);
        used.push_back(v != nullptr && (!v->consumers.empty() || v->is_graph_output));
      }
      StepInputsImpl si(this, plan.get(), n, std::move(in), std::move(out), std::move(used));
      ASSIGN_OR_RETURN(BuiltStep built, executor::BuildStep(si));
      plan->workspace_bytes = std::max(plan->workspace_bytes, built.workspace_bytes);
      plan->steps.push_back(std::move(built.run));
      plan->step_names.push_back(n.Describe());
    }
    ASSIGN_OR_RETURN(plan->workspace,
                     Buffer::Allocate(options_.memory, plan->workspace_bytes,
                                      AllocTag{options_.owner_tag, MemoryKind::kWorkspace}, stream_->view()));

    size_t staging = sizeof(int) + 256;
    for (const TensorView& t : inputs) staging += t.plain_bytes() + 256;
    for (const ir::Value* v : g.outputs()) {
      const PlannedValue& pv = plan->values.at(v);
      staging += static_cast<size_t>(NumElements(pv.shape)) * DataTypeSize(pv.dtype) + 256;
    }
    ASSIGN_OR_RETURN(plan->staging, Buffer::Allocate(pinned_.get(), staging, AllocTag{options_.owner_tag, MemoryKind::kIO}));
    RETURN_IF_ERROR(stream_->Synchronize());
    return plan;
  }

  Status RunSteps(Plan& plan) {
    for (size_t i = 0; i < plan.steps.size(); ++i) {
      Status st = plan.steps[i](stream_->view(), plan.workspace.data());
      if (!st.ok()) return st.WithContext(plan.step_names[i]);
    }
    return Status::OK();
  }

  // Runs the steps, through a CUDA graph from the second run on when enabled.
  Status Compute(Plan& plan) {
    cudaStream_t s = static_cast<cudaStream_t>(stream_->native());
    if (plan.graph != nullptr) {
      ++stats_.graph_replays;
      return GH_CUDA_STATUS(cudaGraphLaunch(plan.graph, s));
    }
    if (!options_.use_cuda_graphs || plan.capture_failed || plan.runs == 0) return RunSteps(plan);
    // Capture once (the first run did the lazy library initialization outside the capture).
    GH_CUDA_RETURN_IF_ERROR(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    Status st = RunSteps(plan);
    cudaGraph_t graph = nullptr;
    cudaError_t end = cudaStreamEndCapture(s, &graph);
    cudaGraphExec_t exec = nullptr;
    if (st.ok() && end == cudaSuccess && graph != nullptr) {
      end = cudaGraphInstantiate(&exec, graph, 0);
    }
    if (graph != nullptr) cudaGraphDestroy(graph);
    if (!st.ok() || end != cudaSuccess || exec == nullptr) {
      cudaGetLastError();
      plan.capture_failed = true;
      ++stats_.graph_capture_failures;
      GH_LOG_WARN("cuda", "CUDA graph capture failed ({}); running the plan step by step",
                  st.ok() ? cudaGetErrorString(end) : st.ToString());
      return RunSteps(plan);
    }
    plan.graph = exec;
    ++stats_.graph_captures;
    ++stats_.graph_replays;
    return GH_CUDA_STATUS(cudaGraphLaunch(plan.graph, s));
  }

  StatusOr<std::vector<Tensor>> Execute(Plan& plan, const std::vector<TensorView>& inputs) {
    const ir::Graph& g = *graph_;
    StreamView sv = stream_->view();
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
      RETURN_IF_ERROR(CopyHostToDeviceAsync(plan.values.at(g.inputs()[i]).device, p, bytes, sv));
    }
    RETURN_IF_ERROR(MemsetDeviceAsync(plan.flag.data(), 0, sizeof(int), sv));
    RETURN_IF_ERROR(Compute(plan));
    std::vector<char*> out_stage;
    for (const ir::Value* v : g.outputs()) {
      const PlannedValue& pv = plan.values.at(v);
      size_t bytes = static_cast<size_t>(NumElements(pv.shape)) * DataTypeSize(pv.dtype);
      char* p = take(bytes);
      out_stage.push_back(p);
      if (pv.host == nullptr) RETURN_IF_ERROR(CopyDeviceToHostAsync(p, pv.device, bytes, sv));
    }
    int* flag = reinterpret_cast<int*>(take(sizeof(int)));
    RETURN_IF_ERROR(CopyDeviceToHostAsync(flag, plan.flag.data(), sizeof(int), sv));
    RETURN_IF_ERROR(stream_->Synchronize());
    ++plan.runs;
    if (*flag != 0) return InvalidArgument("a Gather index was out of range");
    std::vector<Tensor> outs;
    for (size_t o = 0; o < g.outputs().size(); ++o) {
      const PlannedValue& pv = plan.values.at(g.outputs()[o]);
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
  std::unique_ptr<Stream> stream_;
  std::unique_ptr<MatmulRunner> matmul_;
  mutable std::mutex mu_;
  std::map<const ir::Value*, Buffer> weights_;
  std::map<std::vector<Shape>, std::unique_ptr<Plan>> plans_;
  ExecutorStats stats_;
};

StatusOr<const void*> StepInputsImpl::DeviceInput(size_t i) {
  PlannedValue* pv = i < in_.size() ? in_[i] : nullptr;
  if (pv == nullptr) return InvalidArgument("{}: input {} is missing", node_.Describe(), i);
  if (pv->device != nullptr) return static_cast<const void*>(pv->device);
  if (pv->host == nullptr) return Internal("{}: input {} has neither device nor host storage", node_.Describe(), i);
  const ir::Value* v = node_.inputs[i];
  if (v->is_constant() && v->constant.get() == pv->host) {
    ASSIGN_OR_RETURN(const void* p, ex_->ConstantOnDevice(v));
    pv->device = const_cast<void*>(p);
    return p;
  }
  return ex_->UploadPlanValue(plan_, pv);
}
MathMode StepInputsImpl::math() const { return ex_->options().math; }
MatmulRunner& StepInputsImpl::matmul() { return ex_->matmul(); }
size_t StepInputsImpl::max_workspace_bytes() const { return ex_->options().max_workspace_bytes; }

}  // namespace

StatusOr<std::unique_ptr<CudaExecutor>> CudaExecutor::Create(std::shared_ptr<const ir::Graph> graph,
                                                             const ExecutorOptions& options) {
  if (graph == nullptr) return InvalidArgument("CudaExecutor::Create: null graph");
  RETURN_IF_ERROR(CheckCudaSupport(*graph));
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0) {
    cudaGetLastError();
    return Unavailable("no CUDA device for the CUDA executor: {}",
                       err != cudaSuccess ? cudaGetErrorString(err) : "no device");
  }
  auto ex = std::make_unique<ExecutorImpl>(std::move(graph), options);
  RETURN_IF_ERROR(ex->Init());
  return std::unique_ptr<CudaExecutor>(std::move(ex));
}

StatusOr<std::unique_ptr<CudaExecutor>> CreateCudaExecutorForModel(std::unique_ptr<ir::Model> model,
                                                                   const ExecutorOptions& options) {
  if (model == nullptr || model->graph == nullptr) return InvalidArgument("CreateCudaExecutorForModel: no model");
  ir::Graph& g = *model->graph;
  RETURN_IF_ERROR(g.TopologicalSort());
  OptimizeOptions oo;
  runtime::EagerOptions eager;
  oo.evaluator = [eager](const ir::Node& node, const std::vector<const Tensor*>& in) {
    return runtime::RunNodeEager(node, in, eager);
  };
  // Fused ops must exist on both sides: the CPU kernels compute the plan's shapes.
  oo.supports = [](const std::string& domain, const std::string& op) {
    return CudaSupportsOp(domain, op) && CpuKernelRegistry().Supports(domain, op, 0);
  };
  RETURN_IF_ERROR(OptimizeModel(*model, oo).WithContext("optimizing the graph for CUDA"));
  RETURN_IF_ERROR(g.TopologicalSort());
  return CudaExecutor::Create(std::shared_ptr<const ir::Graph>(model->graph), options);
}

}  // namespace gpuhive::cuda
