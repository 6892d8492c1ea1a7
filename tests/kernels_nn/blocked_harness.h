// Runs one node with blocked layouts allowed (the shared harness is plain-only) and converts every
// blocked output back to plain with gpuhive.Reorder, so tests can check layout round trips.
#pragma once

#include <functional>
#include <vector>

#include "support/kernel_harness.h"

namespace gpuhive::testing {

struct BlockedValue {
  Tensor storage;  // raw bytes (padded size for blocked layouts)
  Shape shape;
  Layout layout = Layout::kPlain;
  DataType dtype = DataType::kFloat32;  // element type (storage may be raw bytes)
};

// Runs `spec` on inputs given with their layouts; blocked layouts allowed for outputs.
// `inspect`, when set, sees the kernel after Prepare (e.g. to ask which implementation it chose).
StatusOr<std::vector<BlockedValue>> RunNodeLayouts(const NodeSpec& spec,
                                                   const std::vector<const BlockedValue*>& inputs,
                                                   const std::vector<int>& constant_inputs = {},
                                                   const std::function<void(const Kernel&)>& inspect = {},
                                                   ConvAlgorithm conv_algorithm = ConvAlgorithm::kAuto);
// Plain tensor -> BlockedValue (plain), and gpuhive.Reorder to any layout and back.
BlockedValue AsValue(const Tensor& t);
StatusOr<BlockedValue> ReorderTo(const BlockedValue& v, const char* to);
StatusOr<Tensor> ToPlain(const BlockedValue& v);

}  // namespace gpuhive::testing
