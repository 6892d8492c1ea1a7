// Runtime: a CompiledModel is an optimized graph with its weights placed through a MemoryResource
// and one execution plan per input-shape signature (e.g. per batch size), each with a statically
// planned activation arena. An ExecutionContext runs plans; one context per worker thread.
//
// Thread safety: CompiledModel is immutable after Create except for its plan cache, which is
// internally synchronized, so any number of ExecutionContexts may Run concurrently.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "gpuhive/ir.h"
#include "gpuhive/kernel.h"
#include "gpuhive/memory_resource.h"
#include "gpuhive/status.h"
#include "gpuhive/tensor.h"

namespace gpuhive {

struct TensorInfo {
  std::string name;
  DataType dtype = DataType::kUndefined;
  // -1 for a dynamic dimension.
  std::vector<int64_t> shape;
};

// Arrival of a model's weights while they are copied in after compilation (a pipelined swap-in,
// as PipeSwitch does): weights form groups numbered in the order the graph first uses them; a
// copier calls Advance as groups complete and execution waits per step only for the groups that
// step reads. Waiting is an atomic load when the weights are in; a condition variable otherwise.
// Thread safe.
class WeightGate {
 public:
  explicit WeightGate(size_t num_groups) : num_groups_(num_groups) {}
  WeightGate(const WeightGate&) = delete;
  WeightGate& operator=(const WeightGate&) = delete;

  size_t num_groups() const { return num_groups_; }
  // Groups [0, arrived()) are in device memory.
  size_t arrived() const { return arrived_.load(std::memory_order_acquire); }
  bool complete() const { return arrived() >= num_groups_; }
  bool failed() const { return failed_.load(std::memory_order_acquire); }
  // Marks groups [0, count) arrived. Monotonic: a smaller count than before is ignored.
  void Advance(size_t count);
  // The copy failed: every waiter, now and later, gets `error` (an OK status becomes kInternal).
  void Fail(Status error);
  // Blocks until groups [0, count) have arrived. Returns the failure if the gate failed before.
  Status WaitFor(size_t count) const;
  // OK, or the failure.
  Status status() const;
  // Total time callers spent blocked in WaitFor (the part of the copy execution did not hide).
  int64_t waited_ns() const { return waited_ns_.load(std::memory_order_relaxed); }

 private:
  const size_t num_groups_;
  std::atomic<size_t> arrived_{0};
  std::atomic<bool> failed_{false};
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  Status error_;  // guarded by mu_
  mutable std::atomic<int64_t> waited_ns_{0};
};

// One weight still to be copied into a model's device storage (CompileOptions::defer_weight_copies).
struct WeightCopy {
  std::shared_ptr<const Tensor> source;  // host-tier tensor; kept alive by this entry
  void* destination = nullptr;           // the model's storage for it, `bytes` long
  size_t bytes = 0;
  size_t group = 0;  // its position in first-use order: WeightGate::Advance(group + 1) once copied
};

// How a GPU backend computes convolutions and matrix products (config precision tf32 / fp16 / bf16
// on a GPU; the CUDA executor's MathMode). The CPU executor ignores it: its BF16 is bf16_compute.
enum class DeviceMath { kFloat32, kTF32, kFloat16, kBFloat16 };

struct CompileOptions {
  int num_threads = 1;
  bool optimize = true;               // folding, fusion, layout (off: run the graph as imported)
  bool allow_blocked_layouts = true;
  // KernelOptions::bf16_compute (precision "bf16"); ignored where !CpuHasBf16Compute().
  bool bf16_compute = false;
  ConvAlgorithm conv_algorithm = ConvAlgorithm::kAuto;  // KernelOptions::conv_algorithm
  DeviceMath device_math = DeviceMath::kFloat32;
  // Where weights, arenas and workspaces come from; DefaultHostResource() when null.
  MemoryResource* memory = nullptr;
  uint32_t owner_tag = 0;  // AllocTag::owner for every allocation of this model
  // Where the outputs handed back by Run come from (tagged {owner_tag, kIO}): separate from
  // `memory`, so results the caller keeps do not hold the model's budget after the request.
  // DefaultHostResource() when null.
  MemoryResource* output_memory = nullptr;
  // Weights of the top-level graph get their storage from `memory` at compile time but are not
  // copied: TakePendingWeightCopies() hands the copies out (in first-use order) and Run waits per
  // step, through weight_gate(), for the weights that step reads. Plans built before the copies
  // are done read weight values from the sources. Subgraph weights are copied at compile time.
  bool defer_weight_copies = false;
};

struct PlanStats {
  std::vector<Shape> input_shapes;
  // One run's arena: the planned activations and, where the backend plans them in (the CPU
  // executor), the steps' workspaces, each alive during its step only.
  size_t arena_bytes = 0;
  size_t activation_bytes = 0;        // the activations alone, planned (<= arena_bytes)
  size_t naive_activation_bytes = 0;  // sum of all intermediates
  size_t workspace_bytes = 0;         // a workspace held beside the arena (0 on the CPU executor)
  size_t step_workspace_bytes = 0;    // the largest one step's workspace planned inside the arena
  size_t num_steps = 0;
  bool dynamic = false;  // some shape depends on data: nodes prepared at run time
};

class ExecutionContext;

// A graph input's or output's name, dtype and declared shape (-1 for a dynamic dimension).
TensorInfo TensorInfoOf(const ir::Value& v);

// Input checks every backend makes: `shape` against the declared one (rank, fixed dimensions; no
// negative dimension), and a run's inputs against `infos` (count, dtype, data present) returning
// their shapes, which the caller checks with CheckInputShape (CompiledModel does so when it plans
// them). Errors: kInvalidArgument naming the input.
Status CheckInputShape(const TensorInfo& info, const Shape& shape);
StatusOr<std::vector<Shape>> CheckInputs(const std::vector<TensorInfo>& infos, const std::vector<TensorView>& inputs);

// The one execution interface: a model compiled for one device by that device's ExecutionBackend
// (execution.h). Residency, the scheduler's runners and the engine hold only this; the CPU
// executor (CompiledModel, below; also the simulated device's, whose kernels the host runs) and
// the CUDA executor (a plugin, see execution.h) implement it.
//
// Weights: with CompileOptions::defer_weight_copies a backend may hand its weight copies to the
// caller's copy engine (TakePendingWeightCopies, gated per step by weight_gate()); a backend that
// places its weights itself returns no copies and a null gate.
// Thread safety: as CompiledModel's (any number of ExecutionContexts may Run concurrently).
class Executable {
 public:
  virtual ~Executable() = default;
  // "cpu" or "cuda": which backend compiled it.
  virtual std::string_view backend() const = 0;
  virtual const std::vector<TensorInfo>& inputs() const = 0;
  virtual const std::vector<TensorInfo>& outputs() const = 0;
  // Bytes of weights held in the model's memory (CompileOptions::memory).
  virtual size_t weight_bytes() const = 0;
  virtual std::shared_ptr<WeightGate> weight_gate() const = 0;
  virtual std::vector<WeightCopy> TakePendingWeightCopies() = 0;
  virtual void ReleaseSettledWeights() = 0;
  // Plans for these input shapes ahead of the first Run (or reports the plan already made).
  virtual StatusOr<PlanStats> Prepare(const std::vector<Shape>& input_shapes) = 0;
  // Inputs are host tensors in inputs() order; outputs are host tensors in outputs() order.
  // Errors: kInvalidArgument naming the input for a wrong count, dtype or shape.
  virtual StatusOr<std::vector<Tensor>> Run(ExecutionContext& ctx, const std::vector<TensorView>& inputs) = 0;
};

// The CPU executor (oneDNN and own loop kernels).
class CompiledModel final : public Executable {
 public:
  // Optimizes and compiles the model. Errors: kUnimplemented naming the first unsupported operator
  // and its node, kInvalidArgument for a malformed graph, kResourceExhausted if weights do not fit.
  static StatusOr<std::unique_ptr<CompiledModel>> Create(std::unique_ptr<ir::Model> model,
                                                         const CompileOptions& options);
  ~CompiledModel() override;

  std::string_view backend() const override { return "cpu"; }
  const std::vector<TensorInfo>& inputs() const override;
  const std::vector<TensorInfo>& outputs() const override;
  size_t weight_bytes() const override;
  const CompileOptions& options() const;

  // With CompileOptions::defer_weight_copies: the gate the copier advances (null otherwise), and
  // the copies to make, in first-use order (handed out once; empty on later calls). Whoever takes
  // them must copy each one and Advance the gate, or Fail it, before the model is destroyed.
  std::shared_ptr<WeightGate> weight_gate() const override;
  std::vector<WeightCopy> TakePendingWeightCopies() override;
  // Frees the plain copies of deferred weights whose readers all hold packed ones, if that waited
  // for the copies or for runs in flight. Run does it as it ends; the copier calls it once the gate
  // is complete, so the first run after a swap-in frees them whatever the copy's timing. Never
  // blocks: a run in flight, or a plan being built, frees them as it ends.
  void ReleaseSettledWeights() override;

  // Prepares (or finds) the plan for these input shapes. Called implicitly by Run; call it ahead of
  // time to move planning cost out of the request path.
  StatusOr<PlanStats> Prepare(const std::vector<Shape>& input_shapes) override;

  // Runs the model. Inputs in the order of inputs(); checks dtypes and shapes and returns
  // kInvalidArgument naming the input on mismatch. Outputs are host tensors in outputs() order.
  StatusOr<std::vector<Tensor>> Run(ExecutionContext& ctx, const std::vector<TensorView>& inputs) override;

  struct Impl;

 private:
  explicit CompiledModel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Per-worker execution state: its activation arena (grown to the largest plan it has run) and
// thread count. Not thread safe: one thread uses a context at a time.
class ExecutionContext {
 public:
  struct Options {
    int num_threads = 1;
    MemoryResource* memory = nullptr;  // arena source; DefaultHostResource() when null
    AllocTag arena_tag{0, MemoryKind::kActivations};
    bool profile = false;  // record per-step times of each run (see step_times())
    // The scheduler worker running with this context and its stream priority (0 most urgent; -1:
    // none given). A GPU backend runs each worker and priority on its own stream; the CPU ignores them.
    int worker = -1;
    int stream_priority = -1;
  };
  struct StepTime {
    std::string op;    // "Conv", "gpuhive.FusedConv", ...
    std::string node;  // node name
    std::string implementation;  // the kernel's Kernel::implementation() (empty: one implementation)
    int64_t ns = 0;
  };
  explicit ExecutionContext(Options options);
  ~ExecutionContext();
  ExecutionContext(const ExecutionContext&) = delete;
  ExecutionContext& operator=(const ExecutionContext&) = delete;

  const Options& options() const { return options_; }
  size_t arena_bytes() const { return arena_.size(); }
  // Frees the arena (it is re-allocated on the next run).
  void ReleaseArena() { arena_.Reset(); }
  // Per-step times of the last run when Options::profile is set.
  const std::vector<StepTime>& step_times() const { return step_times_; }

 private:
  friend class CompiledModel;
  Options options_;
  Buffer arena_;
  std::vector<StepTime> step_times_;
};

}  // namespace gpuhive
