// Internal to the CUDA executor: the host-only half of planning. For concrete input shapes it
// computes every value's dtype and shape (through the CPU kernels' Prepare), evaluates on the host
// what can be known while planning (Shape, shape arithmetic, constants), decides which nodes become
// device steps, and plans one arena for the device values (aliases share their input's bytes).
// Needs no device and no CUDA header, so it is built and tested everywhere.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <vector>

#include "gpuhive/arena_planner.h"
#include "gpuhive/cuda_executor.h"
#include "gpuhive/ir.h"
#include "gpuhive/tensor.h"
#include "runtime/cuda/steps.h"

namespace gpuhive::cuda::executor {

struct DeviceNode {
  const ir::Node* node;
  int step;  // 1-based position among device steps
};

struct Analysis {
  std::map<const ir::Value*, PlannedValue> values;  // device pointers not yet set
  std::deque<Tensor> host_values;                   // plan-time results; PlannedValue::host points here
  std::vector<DeviceNode> device_nodes;
  size_t host_evaluated_nodes = 0;
  std::map<const ir::Value*, size_t> storage_of;  // value -> arena buffer index
  ArenaPlan arena;
};

// Errors: kInvalidArgument (input count), kUnimplemented (a shape that depends on device data, a
// subgraph, a value the executor cannot see), or the CPU kernels' own Prepare errors.
StatusOr<std::unique_ptr<Analysis>> AnalyzePlan(const ir::Graph& graph, const std::vector<TensorView>& inputs);

// The preview of an analysis (cuda_executor.h's PlanPreview, without the step-builder fields).
PlanPreview Summarize(const Analysis& an);

}  // namespace gpuhive::cuda::executor
