#include "kernels/cpu/onednn/geometry.h"

#include <algorithm>

namespace gpuhive::cpu::onednn {

StatusOr<WindowGeometry> ComputeWindowGeometry(const ir::Node& node, const std::vector<int64_t>& in,
                                               const std::vector<int64_t>& kernel,
                                               const std::vector<int64_t>& strides,
                                               const std::vector<int64_t>& dilations, bool ceil_mode) {
  const size_t n = in.size();
  if (kernel.size() != n || strides.size() != n || dilations.size() != n) {
    return InvalidArgument("{}: kernel_shape/strides/dilations must have {} values", node.Describe(), n);
  }
  for (size_t i = 0; i < n; ++i) {
    if (kernel[i] < 1 || strides[i] < 1 || dilations[i] < 1) {
      return InvalidArgument("{}: kernel_shape, strides and dilations must be >= 1", node.Describe());
    }
  }
  ASSIGN_OR_RETURN(std::string auto_pad, node.GetString("auto_pad", std::string("NOTSET")));
  ASSIGN_OR_RETURN(std::vector<int64_t> pads, node.GetInts("pads", std::vector<int64_t>(2 * n, 0)));
  if (pads.size() != 2 * n) return InvalidArgument("{}: pads must have {} values", node.Describe(), 2 * n);
  WindowGeometry g;
  g.out.resize(n);
  g.pad_l.resize(n);
  g.pad_r.resize(n);
  g.pad_r_eff.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t dk = (kernel[i] - 1) * dilations[i] + 1;
    int64_t pl = 0, pr = 0, out = 0;
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      out = (in[i] + strides[i] - 1) / strides[i];
      int64_t total = std::max<int64_t>(0, (out - 1) * strides[i] + dk - in[i]);
      if (auto_pad == "SAME_UPPER") {
        pl = total / 2;
      } else {
        pl = total - total / 2;
      }
      pr = total - pl;
    } else if (auto_pad == "VALID") {
      if (in[i] < dk) return InvalidArgument("{}: window larger than the input", node.Describe());
      out = ceil_mode ? (in[i] - dk + strides[i] - 1) / strides[i] + 1 : (in[i] - dk) / strides[i] + 1;
    } else if (auto_pad == "NOTSET" || auto_pad.empty()) {
      pl = pads[i];
      pr = pads[i + n];
      if (pl < 0 || pr < 0) return InvalidArgument("{}: negative pads", node.Describe());
      int64_t span = in[i] + pl + pr - dk;
      if (span < 0) return InvalidArgument("{}: window larger than the padded input", node.Describe());
      if (ceil_mode) {
        out = (span + strides[i] - 1) / strides[i] + 1;
        // The last window must start inside the input or the begin padding.
        if ((out - 1) * strides[i] >= in[i] + pl) --out;
      } else {
        out = span / strides[i] + 1;
      }
    } else {
      return InvalidArgument("{}: unknown auto_pad '{}'", node.Describe(), auto_pad);
    }
    g.out[i] = out;
    g.pad_l[i] = pl;
    g.pad_r[i] = pr;
    g.pad_r_eff[i] = (out - 1) * strides[i] + dk - in[i] - pl;
  }
  return g;
}

}  // namespace gpuhive::cpu::onednn
