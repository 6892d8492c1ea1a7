// Eager execution: prepare-and-run one node (or a whole subgraph) when every input value is known.
// Used for steps whose shapes depend on data, for control flow bodies, for plan-time evaluation of
// shape computations, and as the constant-folding evaluator.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "gpuhive/ir.h"
#include "gpuhive/kernel.h"
#include "gpuhive/tensor.h"

namespace gpuhive::runtime {

struct EagerOptions {
  KernelOptions kernel;             // allow_blocked_layouts is forced off: eager outputs are plain
  MemoryResource* memory = nullptr;  // outputs, workspaces; DefaultHostResource() when null
  AllocTag tag{0, MemoryKind::kActivations};
};

// Values visible by name from enclosing scopes (for subgraph outer references).
using OuterScope = std::map<std::string, const Tensor*>;

bool IsControlFlowOp(const ir::Node& node);
// Operators whose results differ from run to run: never evaluated ahead of time.
bool IsNondeterministicOp(const ir::Node& node);

// Runs one node. inputs[i] == nullptr for an omitted optional input. For control flow nodes,
// `outer` must hold the values of node.implicit_inputs (and anything further out) by name.
StatusOr<std::vector<Tensor>> RunNodeEager(const ir::Node& node, const std::vector<const Tensor*>& inputs,
                                           const EagerOptions& options, const OuterScope& outer = {});

// Runs a whole graph eagerly: inputs bind graph.inputs() in order, outer refs resolve in `outer`.
StatusOr<std::vector<Tensor>> RunGraphEager(const ir::Graph& graph, const std::vector<const Tensor*>& inputs,
                                            const EagerOptions& options, const OuterScope& outer = {});

}  // namespace gpuhive::runtime
