// CUDA executor: runs an optimized graph (ir.h after OptimizeModel) on one GPU stream with device
// memory from a MemoryResource. One plan per input-shape signature: output shapes come from the CPU
// kernels' Prepare (one source of truth for shape rules), values computable on the host while
// planning (Shape, shape arithmetic on constants) are evaluated there, and every other node becomes
// a device step (cuDNN, cuBLASLt or an own kernel) over a statically planned activation arena.
// With CUDA Graphs on, a plan's steps are captured on its second run and replayed afterwards.
//
// Fallback contract: Create returns kUnimplemented naming the first operator the executor lacks,
// and Run returns kUnimplemented for attribute combinations it lacks (asymmetric conv padding,
// data-dependent shapes, ...). In both cases nothing has run, and the caller runs the model on the
// CPU (CompiledModel) instead. kUnavailable means no device (or a build without CUDA).
//
// What the runtime would call (CompiledModel stays CPU-only; see the cuda helper's report):
//   auto choice = cuda::ChooseBackend({strict});                     // once at start-up
//   if (choice->device.type == DeviceType::kCuda) {
//     auto exec = cuda::CreateCudaExecutorForModel(std::move(model), options);
//     if (exec.ok()) use exec->Run(inputs) ; else if kUnimplemented: CompiledModel on the CPU
//   }
//
// Thread safety: Run is safe to call from several threads. Each lane (RunLane: a worker and a
// priority level) has its own stream at that priority and its own plans (arena, staging, CUDA
// graphs), so runs on different lanes overlap on the device; runs on one lane are serialized.
// Weights are uploaded once and shared by every lane.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gpuhive/cuda_kernels.h"
#include "gpuhive/ir.h"
#include "gpuhive/memory_resource.h"
#include "gpuhive/runtime.h"
#include "gpuhive/status.h"
#include "gpuhive/tensor.h"

namespace gpuhive::cuda {

struct ExecutorOptions {
  int device_index = 0;
  int priority_level = 0;  // the default lane's stream priority (0 = most urgent), see CudaPriorityForLevel
  // Convolution and matrix-product math. kFloat32, kTF32: float32 operands. kFloat16, kBFloat16:
  // those steps run on 16-bit operands with FP32 accumulation (constant operands stored once in
  // 16 bits, activations converted in the step's workspace); every other step and every value
  // between steps stays float32, and ConvTranspose, LSTM and doubly broadcast MatMul use TF32.
  MathMode math = MathMode::kFloat32;
  bool use_cuda_graphs = true;
  // Device memory for weights, arenas and workspaces; a cudaMalloc resource of device_index when null.
  MemoryResource* memory = nullptr;
  uint32_t owner_tag = 0;
  size_t max_workspace_bytes = 256ull << 20;  // per convolution / matmul algorithm
  // Weights through the caller's copy engine (residency's): Create allocates device storage for
  // DeferredWeights(graph, math), TakePendingWeightCopies hands their copies out (first-use order),
  // and a plan that reads one waits on weight_gate() for it. Other constants are uploaded by the
  // executor when a plan first needs them.
  bool defer_weight_copies = false;
};

struct ExecutorStats {
  size_t plans = 0;
  size_t graph_captures = 0;
  size_t graph_replays = 0;
  size_t graph_capture_failures = 0;  // plans that run step by step because capture failed
  size_t weight_bytes = 0;            // constants uploaded to the device
  size_t lanes = 0;                   // streams created (one per worker and priority level that ran)
};

// Where a run goes: the lane of `worker` at `priority_level` (gpuhive level, 0 most urgent; -1:
// ExecutorOptions::priority_level). The default lane is worker -1 at the options' level.
struct RunLane {
  int worker = -1;
  int priority_level = -1;
};

// True when the executor has a device implementation of (domain, op_type). Host-only operators
// (Shape, Size, Constant) count as supported. Needs no device.
bool CudaSupportsOp(const std::string& domain, const std::string& op_type);
// OK, or kUnimplemented naming every operator type of the graph (subgraphs included) that the
// executor lacks. Needs no device.
Status CheckCudaSupport(const ir::Graph& graph);

// The graph constants ExecutorOptions::defer_weight_copies leaves to the caller's copy engine, in
// first-use order: float32 constants of at least kDeferredWeightMinBytes that a node reads, except
// the operands a 16-bit plan (math kFloat16 / kBFloat16) converts itself (convolutions' and matrix
// products': the executor uploads and converts those). Needs no device.
inline constexpr size_t kDeferredWeightMinBytes = 1024;
std::vector<const ir::Value*> DeferredWeights(const ir::Graph& graph, MathMode math);

// Optimizes an imported model for the executor: constant folding through the CPU kernels, BN
// folding, and fusion limited to fused ops both the executor and the CPU kernels (which compute the
// plan's shapes) implement. Needs no device.
Status OptimizeForCuda(ir::Model& model);

// What a plan for these input shapes would look like, computed without a device: which nodes run
// on the device and which are evaluated on the host while planning, and the activation arena.
// Only dtypes and shapes of `inputs` are read (data may be null). Errors as for a first Run, except
// for attribute combinations only checked when device steps are built.
struct PlanPreview {
  size_t device_steps = 0;
  size_t host_evaluated_nodes = 0;
  size_t arena_bytes = 0;
  size_t naive_bytes = 0;                 // sum of all device buffers (no reuse)
  std::map<std::string, int> device_ops;  // op type ("gpuhive.FusedConv", "Softmax") -> steps
  // Set by PreviewCudaSteps only: steps its builders accepted (== device_steps when it succeeds),
  // and the largest step workspace apart from cuDNN's and cuBLASLt's own (explicit padding, LSTM
  // gates, crops).
  size_t steps_built = 0;
  size_t step_workspace_bytes = 0;
  // Also PreviewCudaSteps only: steps that run a convolution or matrix product on 16-bit operands
  // (math kFloat16 / kBFloat16), and the bytes of graph constants the executor would upload (a
  // 16-bit copy for such a step's constant operands, float32 for the rest).
  size_t steps_16bit = 0;
  size_t constant_bytes = 0;
};
StatusOr<PlanPreview> PreviewCudaPlan(const ir::Graph& graph, const std::vector<TensorView>& inputs);

// PreviewCudaPlan, then every device step built by the executor's own builders, with cuDNN and
// cuBLASLt answered from the descriptors alone (no device, nothing run). OK means the whole plan
// runs on the device: no node is left to the CPU. Errors: PreviewCudaPlan's, or the first
// builder refusal (kUnimplemented for an attribute combination the device path lacks, naming the
// node). Defined only in builds with CUDA (GPUHIVE_HAVE_CUDA).
StatusOr<PlanPreview> PreviewCudaSteps(const ir::Graph& graph, const std::vector<TensorView>& inputs,
                                       MathMode math = MathMode::kFloat32);

class CudaExecutor {
 public:
  // The graph must be optimized and topologically sorted; it is shared read-only. Errors:
  // kUnimplemented (CheckCudaSupport), kUnavailable (no device), kResourceExhausted.
  static StatusOr<std::unique_ptr<CudaExecutor>> Create(std::shared_ptr<const ir::Graph> graph,
                                                        const ExecutorOptions& options);
  virtual ~CudaExecutor() = default;

  // Runs on host inputs (graph input order) and returns host outputs (graph output order). Errors:
  // kInvalidArgument for wrong input count, dtypes or ranks; kUnimplemented as described above;
  // kInvalidArgument when a Gather index was out of range on the device.
  // Runs on `lane`'s stream (created on first use); Run(inputs) uses the default lane.
  virtual StatusOr<std::vector<Tensor>> Run(const std::vector<TensorView>& inputs, const RunLane& lane) = 0;
  StatusOr<std::vector<Tensor>> Run(const std::vector<TensorView>& inputs) { return Run(inputs, RunLane{}); }
  virtual ExecutorStats stats() const = 0;
  // With ExecutorOptions::defer_weight_copies: the gate the copies advance (null otherwise), and
  // the copies, handed out once. Whoever takes them must copy each (the device bytes must be there
  // before Advance) and Advance the gate, or Fail it, before the executor is destroyed.
  virtual std::shared_ptr<WeightGate> weight_gate() const = 0;
  virtual std::vector<WeightCopy> TakePendingWeightCopies() = 0;

  // Device time per operator type ("Conv", "gpuhive.FusedConv", ...) for one step-by-step pass of
  // the plan for these inputs (run first if needed), each step between two events. For finding
  // where time goes; the pass runs without a CUDA graph, so launch gaps are not in the figures.
  struct StepProfile {
    int steps = 0;
    double ms = 0;
  };
  virtual StatusOr<std::map<std::string, StepProfile>> ProfileSteps(const std::vector<TensorView>& inputs) = 0;
};

// Optimizes an imported model the way the CPU runtime does (constant folding through the CPU
// kernels, BN folding, fusion restricted to what the executor supports), then creates the executor.
StatusOr<std::unique_ptr<CudaExecutor>> CreateCudaExecutorForModel(std::unique_ptr<ir::Model> model,
                                                                   const ExecutorOptions& options);

}  // namespace gpuhive::cuda
