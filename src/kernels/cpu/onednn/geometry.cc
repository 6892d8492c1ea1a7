// ONNX window geometry (include/gpuhive/window_geometry.h).
#include "gpuhive/window_geometry.h"

#include <algorithm>
#include <string>

namespace gpuhive {

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

StatusOr<ConvGeometry> ComputeConvGeometry(const ir::Node& node, const Shape& x, const Shape& w, bool transposed) {
  ConvGeometry geo;
  Shape* out_shape = &geo.out_shape;
  std::vector<int64_t>* pl = &geo.pad_l;
  std::vector<int64_t>* pr = &geo.pad_r;
  const size_t sp = x.size() - 2;
  ASSIGN_OR_RETURN(geo.group, node.GetInt("group", 1));
  if (geo.group < 1) return InvalidArgument("{}: group must be >= 1", node.Describe());
  std::vector<int64_t> in(x.begin() + 2, x.end());
  std::vector<int64_t> kernel(w.begin() + 2, w.end());
  ASSIGN_OR_RETURN(auto ks, node.GetInts("kernel_shape", kernel));
  if (ks != kernel) {
    return InvalidArgument("{}: kernel_shape {} does not match the weights {}", node.Describe(),
                           ShapeToString(ks), ShapeToString(w));
  }
  ASSIGN_OR_RETURN(auto s, node.GetInts("strides", std::vector<int64_t>(sp, 1)));
  ASSIGN_OR_RETURN(auto d, node.GetInts("dilations", std::vector<int64_t>(sp, 1)));
  if (s.size() != sp || d.size() != sp) {
    return InvalidArgument("{}: strides/dilations must have {} values", node.Describe(), sp);
  }
  const int64_t c = x[1];
  int64_t m;
  if (!transposed) {
    m = w[0];
    if (w[1] * geo.group != c || m % geo.group != 0) {
      return InvalidArgument("{}: weights {} do not fit input {} with group {}", node.Describe(),
                             ShapeToString(w), ShapeToString(x), geo.group);
    }
    ASSIGN_OR_RETURN(WindowGeometry g, ComputeWindowGeometry(node, in, kernel, s, d, false));
    *out_shape = {x[0], m};
    for (size_t i = 0; i < sp; ++i) {
      out_shape->push_back(g.out[i]);
      pl->push_back(g.pad_l[i]);
      pr->push_back(g.pad_r[i]);
    }
  } else {
    if (w[0] != c || c % geo.group != 0) {
      return InvalidArgument("{}: weights {} do not fit input {} with group {}", node.Describe(),
                             ShapeToString(w), ShapeToString(x), geo.group);
    }
    m = w[1] * geo.group;
    ASSIGN_OR_RETURN(auto out_pad, node.GetInts("output_padding", std::vector<int64_t>(sp, 0)));
    ASSIGN_OR_RETURN(auto out_spec, node.GetInts("output_shape", std::vector<int64_t>{}));
    ASSIGN_OR_RETURN(std::string auto_pad, node.GetString("auto_pad", std::string("NOTSET")));
    ASSIGN_OR_RETURN(auto pads, node.GetInts("pads", std::vector<int64_t>(2 * sp, 0)));
    if (out_pad.size() != sp || pads.size() != 2 * sp) {
      return InvalidArgument("{}: output_padding/pads have the wrong length", node.Describe());
    }
    if (!out_spec.empty() && out_spec.size() == sp + 2) out_spec.erase(out_spec.begin(), out_spec.begin() + 2);
    if (!out_spec.empty() && out_spec.size() != sp) {
      return InvalidArgument("{}: output_shape must have {} values", node.Describe(), sp);
    }
    *out_shape = {x[0], m};
    for (size_t i = 0; i < sp; ++i) {
      const int64_t dk = (kernel[i] - 1) * d[i] + 1;
      const int64_t full = s[i] * (in[i] - 1) + out_pad[i] + dk;
      int64_t out, head, tail;
      if (!out_spec.empty() || auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
        out = !out_spec.empty() ? out_spec[i] : in[i] * s[i];
        int64_t total = std::max<int64_t>(0, full - out);
        // ONNX: SAME_UPPER puts the odd padding at the end, everything else at the beginning.
        if (auto_pad == "SAME_UPPER") {
          head = total / 2;
        } else {
          head = total - total / 2;
        }
        tail = total - head;
      } else if (auto_pad == "VALID") {
        head = tail = 0;
        out = full;
      } else {
        head = pads[i];
        tail = pads[i + sp];
        out = full - head - tail;
      }
      if (out < 1) return InvalidArgument("{}: output size {} < 1", node.Describe(), out);
      out_shape->push_back(out);
      pl->push_back(head);
      // oneDNN computes out = (in-1)*s + dk - pl - pr: output_padding lowers the end padding.
      pr->push_back((in[i] - 1) * s[i] + dk - head - out);
    }
  }
  for (size_t i = 0; i < sp; ++i) {
    geo.strides.push_back(s[i]);
    geo.dilations.push_back(d[i] - 1);
  }
  return geo;
}

}  // namespace gpuhive
