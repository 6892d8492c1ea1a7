// If, Loop and Scan: run their subgraph attributes eagerly (ONNX semantics, opsets 9..17).
#pragma once

#include "runtime/eager.h"

namespace gpuhive::runtime {

StatusOr<std::vector<Tensor>> RunControlFlow(const ir::Node& node, const std::vector<const Tensor*>& inputs,
                                             const EagerOptions& options, const OuterScope& outer);

}  // namespace gpuhive::runtime
