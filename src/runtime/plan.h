// An execution plan: the graph's nodes prepared for one input-shape signature, with every
// intermediate placed at a fixed offset in one activation arena (liveness-based), known values
// (shape computations) evaluated ahead of time, and steps whose shapes depend on data marked
// dynamic (prepared when they run).
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <unordered_map>
#include <vector>

#include "gpuhive/ir.h"
#include "gpuhive/kernel.h"
#include "gpuhive/runtime.h"
#include "runtime/eager.h"

namespace gpuhive::runtime {

struct Slot {
  enum class Kind { kConstant, kInput, kKnown, kArena, kOutput, kDynamic };
  Kind kind = Kind::kArena;
  DataType dtype = DataType::kUndefined;
  Shape shape;
  Layout layout = Layout::kPlain;
  size_t bytes = 0;
  const Tensor* value = nullptr;  // kConstant / kKnown
  int index = -1;                 // kInput: graph input index; kOutput: graph output index
  size_t offset = 0;              // kArena: offset in the arena
  int view_of = -1;               // kArena: another arena slot whose bytes this one reads as plain
  std::string name;
};

struct Step {
  const ir::Node* node = nullptr;
  std::unique_ptr<ir::Node> owned_node;  // synthetic nodes (layout conversions)
  std::unique_ptr<Kernel> kernel;        // null for dynamic steps
  std::vector<int> inputs;               // slot ids, -1 for omitted
  std::vector<int> outputs;              // slot ids, -1 for omitted
  std::vector<int> implicit_inputs;      // control flow: slots of node->implicit_inputs
  bool dynamic = false;
  // Weight groups [0, weights_needed) must have arrived before the step runs (deferred weights).
  size_t weights_needed = 0;
  // The step's scratch (what its kernel requested at Prepare), planned in the arena like a value
  // alive during this step only: it reuses the bytes of activations dead by then.
  size_t workspace_bytes = 0;
  size_t workspace_offset = 0;
};

struct Plan {
  std::vector<Slot> slots;
  std::vector<Step> steps;
  std::vector<int> output_slots;      // per graph output
  std::deque<Tensor> known_values;    // plan-time evaluated values
  size_t arena_bytes = 0;  // activations and every step's workspace
  PlanStats stats;
};

struct PlanOptions {
  KernelOptions kernel;
  MemoryResource* memory = nullptr;
  uint32_t owner_tag = 0;
  MemoryResource* output_memory = nullptr;  // outputs handed back (DefaultHostResource() when null)
  // Deferred weights: the group (+1) of each constant still being copied, and the tensor to read
  // its value from while preparing (the host-tier source). Null when the weights are in place.
  const std::unordered_map<const Tensor*, size_t>* weight_groups = nullptr;
  const std::unordered_map<const Tensor*, const Tensor*>* prepare_values = nullptr;
  // Called after each node's prepared step is added to the plan (the compiled model frees the plain
  // storage of constants as soon as all their readers hold copies). Not called for layout
  // conversions or dynamic steps.
  std::function<void(const Plan&, const Step&)> on_step;
};

// Builds the plan for `graph` (topologically sorted) with concrete input shapes/dtypes.
StatusOr<std::unique_ptr<Plan>> BuildPlan(const ir::Graph& graph, const std::vector<Shape>& input_shapes,
                                          const std::vector<DataType>& input_dtypes, const PlanOptions& options);

// Runs a plan. `arena` must hold at least arena_bytes.
// When `profile` is non-null it receives one entry per step. With a `gate`, each step first waits
// for the weight groups it reads (Step::weights_needed).
StatusOr<std::vector<Tensor>> ExecutePlan(const Plan& plan, const std::vector<TensorView>& inputs, void* arena,
                                          int num_threads, const PlanOptions& options,
                                          std::vector<ExecutionContext::StepTime>* profile = nullptr,
                                          const WeightGate* gate = nullptr);

}  // namespace gpuhive::runtime
