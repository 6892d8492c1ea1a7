// Spatial geometry of sliding-window operators (Conv, ConvTranspose, pooling): ONNX auto_pad /
// pads / output_padding / output_shape / ceil_mode resolved into output sizes and explicit
// begin/end paddings. Shared by the CPU kernels and the CUDA executor's step builders, so both
// backends agree on every output size. Implemented in src/kernels/cpu/onednn/geometry.cc.
#pragma once

#include <cstdint>
#include <vector>

#include "gpuhive/ir.h"
#include "gpuhive/status.h"

namespace gpuhive {

struct WindowGeometry {
  std::vector<int64_t> out;    // output spatial sizes
  std::vector<int64_t> pad_l;  // begin paddings as ONNX defines them
  std::vector<int64_t> pad_r;  // end paddings as ONNX defines them
  // End paddings that make (in + pad_l + pad_r_eff - dk) / s + 1 == out exactly (ceil_mode may
  // need more than pad_r; floor division may need less).
  std::vector<int64_t> pad_r_eff;
};

// Reads "auto_pad" and "pads" from `node`. kernel/strides/dilations are ONNX values (>= 1).
StatusOr<WindowGeometry> ComputeWindowGeometry(const ir::Node& node, const std::vector<int64_t>& in,
                                               const std::vector<int64_t>& kernel,
                                               const std::vector<int64_t>& strides,
                                               const std::vector<int64_t>& dilations, bool ceil_mode);

// Conv / ConvTranspose: group, output shape [N, M, spatial...] and oneDNN's strides, dilations
// (ONNX dilation - 1) and begin/end paddings. Validates attributes against X [N, C, ...] and W.
struct ConvGeometry {
  int64_t group = 1;
  Shape out_shape;
  std::vector<int64_t> strides, dilations, pad_l, pad_r;
};
StatusOr<ConvGeometry> ComputeConvGeometry(const ir::Node& node, const Shape& x, const Shape& w, bool transposed);

}  // namespace gpuhive
