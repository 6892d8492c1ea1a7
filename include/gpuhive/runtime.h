// Runtime: a CompiledModel is an optimized graph with its weights placed through a MemoryResource
// and one execution plan per input-shape signature (e.g. per batch size), each with a statically
// planned activation arena. An ExecutionContext runs plans; one context per worker thread.
//
// Thread safety: CompiledModel is immutable after Create except for its plan cache, which is
// internally synchronized, so any number of ExecutionContexts may Run concurrently.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gpuhive/ir.h"
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

struct CompileOptions {
  int num_threads = 1;
  bool optimize = true;               // folding, fusion, layout (off: run the graph as imported)
  bool allow_blocked_layouts = true;
  // Where weights, arenas and workspaces come from; DefaultHostResource() when null.
  MemoryResource* memory = nullptr;
  uint32_t owner_tag = 0;  // AllocTag::owner for every allocation of this model
};

struct PlanStats {
  std::vector<Shape> input_shapes;
  size_t arena_bytes = 0;          // planned activation peak
  size_t naive_activation_bytes = 0;  // sum of all intermediates
  size_t workspace_bytes = 0;
  size_t num_steps = 0;
  bool dynamic = false;  // some shape depends on data: nodes prepared at run time
};

class ExecutionContext;

class CompiledModel {
 public:
  // Optimizes and compiles the model. Errors: kUnimplemented naming the first unsupported operator
  // and its node, kInvalidArgument for a malformed graph, kResourceExhausted if weights do not fit.
  static StatusOr<std::unique_ptr<CompiledModel>> Create(std::unique_ptr<ir::Model> model,
                                                         const CompileOptions& options);
  ~CompiledModel();

  const std::vector<TensorInfo>& inputs() const;
  const std::vector<TensorInfo>& outputs() const;
  size_t weight_bytes() const;
  const CompileOptions& options() const;

  // Prepares (or finds) the plan for these input shapes. Called implicitly by Run; call it ahead of
  // time to move planning cost out of the request path.
  StatusOr<PlanStats> Prepare(const std::vector<Shape>& input_shapes);

  // Runs the model. Inputs in the order of inputs(); checks dtypes and shapes and returns
  // kInvalidArgument naming the input on mismatch. Outputs are host tensors in outputs() order.
  StatusOr<std::vector<Tensor>> Run(ExecutionContext& ctx, const std::vector<TensorView>& inputs);

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
  };
  struct StepTime {
    std::string op;    // "Conv", "gpuhive.FusedConv", ...
    std::string node;  // node name
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
