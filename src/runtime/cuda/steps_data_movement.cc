// Device steps of the CUDA executor for the operators that only move or select bytes: Transpose,
// Slice, Concat, Gather, Resize, Expand, Split, Pad and the aliasing operators (steps.cc picks the
// builder).
#include <algorithm>
#include <cstring>
#include <functional>
#include <map>
#include <numeric>
#include <string>
#include <vector>

#include "gpuhive/cuda_device.h"
#include "runtime/cuda/step_builders.h"

namespace gpuhive::cuda::executor::detail {

StatusOr<BuiltStep> BuildTranspose(StepInputs& in) {
  const ir::Node& n = in.node();
  const PlannedValue* x = in.input(0);
  std::vector<int64_t> rev(x->shape.size());
  std::iota(rev.rbegin(), rev.rend(), 0);
  ASSIGN_OR_RETURN(std::vector<int64_t> perm, n.GetInts("perm", rev));
  ASSIGN_OR_RETURN(const void* xp, in.DeviceInput(0));
  void* y = in.output(0)->device;
  size_t eb = DataTypeSize(x->dtype);
  Shape shape = x->shape;
  return BuiltStep{[xp, y, eb, shape, perm](StreamView s, void*) { return Transpose(xp, y, eb, shape, perm, s); }, 0};
}

StatusOr<BuiltStep> BuildSlice(StepInputs& in) {
  const ir::Node& n = in.node();
  const PlannedValue* x = in.input(0);
  const Shape& is = x->shape;
  int64_t r = static_cast<int64_t>(is.size());
  std::vector<int64_t> starts, ends, axes, steps;
  if (n.opset < 10) {
    ASSIGN_OR_RETURN(starts, n.GetInts("starts"));
    ASSIGN_OR_RETURN(ends, n.GetInts("ends"));
    ASSIGN_OR_RETURN(axes, n.GetInts("axes", std::vector<int64_t>{}));
  } else {
    ASSIGN_OR_RETURN(starts, HostInts(in.input(1), n, "starts"));
    ASSIGN_OR_RETURN(ends, HostInts(in.input(2), n, "ends"));
    if (in.num_inputs() > 3 && in.input(3) != nullptr) {
      ASSIGN_OR_RETURN(axes, HostInts(in.input(3), n, "axes"));
    }
    if (in.num_inputs() > 4 && in.input(4) != nullptr) {
      ASSIGN_OR_RETURN(steps, HostInts(in.input(4), n, "steps"));
    }
  }
  if (axes.empty()) {
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  }
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size()) {
    return InvalidArgument("{}: starts, ends, axes and steps differ in length", n.Describe());
  }
  // Same resolution as the CPU kernel (ONNX clamping rules).
  std::vector<int64_t> first(static_cast<size_t>(r), 0), step(static_cast<size_t>(r), 1);
  for (size_t i = 0; i < starts.size(); ++i) {
    ASSIGN_OR_RETURN(int64_t ax, NormAxis(axes[i], is.size(), n));
    const int64_t dim = is[static_cast<size_t>(ax)];
    if (steps[i] == 0) return InvalidArgument("{}: step must not be 0", n.Describe());
    const int64_t st = std::clamp<int64_t>(steps[i], -dim - 1, dim + 1);
    int64_t s = starts[i];
    if (s < 0) s = s < -dim ? -1 : s + dim;
    s = st > 0 ? std::clamp<int64_t>(s, 0, dim) : std::clamp<int64_t>(s, 0, dim - 1);
    first[static_cast<size_t>(ax)] = s;
    step[static_cast<size_t>(ax)] = st;
  }
  const Shape& os = in.output(0)->shape;
  for (size_t d = 0; d < os.size(); ++d) {
    if (os[d] == 0) first[d] = 0;
  }
  ASSIGN_OR_RETURN(const void* xp, in.DeviceInput(0));
  void* y = in.output(0)->device;
  size_t eb = DataTypeSize(x->dtype);
  Shape ishape = is, oshape = os;
  return BuiltStep{[xp, y, eb, ishape, first, step, oshape](StreamView s, void*) {
                     return StridedSlice(xp, y, eb, ishape, first, step, oshape, s);
                   },
                   0};
}

StatusOr<BuiltStep> BuildConcat(StepInputs& in) {
  const ir::Node& n = in.node();
  const Shape& os = in.output(0)->shape;
  ASSIGN_OR_RETURN(int64_t axis_attr, n.GetInt("axis"));
  ASSIGN_OR_RETURN(int64_t axis, NormAxis(axis_attr, os.size(), n));
  size_t ax = static_cast<size_t>(axis);
  std::vector<ConcatInput> parts;
  for (size_t i = 0; i < in.num_inputs(); ++i) {
    const PlannedValue* v = in.input(i);
    if (v == nullptr || NumElements(v->shape) == 0) continue;
    ASSIGN_OR_RETURN(const void* p, in.DeviceInput(i));
    parts.push_back({p, v->shape[ax]});
  }
  int64_t outer = Prod(os, 0, ax), inner = Prod(os, ax + 1, os.size());
  void* y = in.output(0)->device;
  size_t eb = DataTypeSize(in.output(0)->dtype);
  return BuiltStep{[parts, y, eb, outer, inner](StreamView s, void*) { return Concat(parts, y, eb, outer, inner, s); }, 0};
}

StatusOr<BuiltStep> BuildGather(StepInputs& in) {
  const ir::Node& n = in.node();
  const PlannedValue* x = in.input(0);
  const PlannedValue* idx = in.input(1);
  if (idx->dtype != DataType::kInt64 && idx->dtype != DataType::kInt32) {
    return InvalidArgument("{}: indices must be int32 or int64", n.Describe());
  }
  ASSIGN_OR_RETURN(int64_t axis_attr, n.GetInt("axis", 0));
  ASSIGN_OR_RETURN(int64_t axis, NormAxis(axis_attr, x->shape.size(), n));
  size_t ax = static_cast<size_t>(axis);
  int64_t outer = Prod(x->shape, 0, ax), dim = x->shape[ax], inner = Prod(x->shape, ax + 1, x->shape.size());
  int64_t count = NumElements(idx->shape);
  ASSIGN_OR_RETURN(const void* xp, in.DeviceInput(0));
  ASSIGN_OR_RETURN(const void* ip, in.DeviceInput(1));
  void* y = in.output(0)->device;
  size_t eb = DataTypeSize(x->dtype);
  bool i64 = idx->dtype == DataType::kInt64;
  int* flag = in.error_flag();
  return BuiltStep{[xp, ip, i64, count, y, eb, outer, dim, inner, flag](StreamView s, void*) {
                     return Gather(xp, ip, i64, count, y, eb, outer, dim, inner, flag, s);
                   },
                   0};
}

StatusOr<BuiltStep> BuildResize(StepInputs& in) {
  const ir::Node& n = in.node();
  const PlannedValue* x = in.input(0);
  RETURN_IF_ERROR(NeedFloat(x, n, "X"));
  const Shape& os = in.output(0)->shape;
  if (x->shape.size() != 4 || os[0] != x->shape[0] || os[1] != x->shape[1]) {
    return Unimplemented("{}: CUDA Resize handles 4-D NCHW with N and C unchanged", n.Describe());
  }
  ASSIGN_OR_RETURN(std::string mode, n.GetString("mode", "nearest"));
  ASSIGN_OR_RETURN(std::string coord, n.GetString("coordinate_transformation_mode", n.opset < 11 ? "asymmetric" : "half_pixel"));
  ASSIGN_OR_RETURN(std::string nearest, n.GetString("nearest_mode", "round_prefer_floor"));
  ResizeParams p;
  p.n = x->shape[0], p.c = x->shape[1], p.in_h = x->shape[2], p.in_w = x->shape[3], p.out_h = os[2], p.out_w = os[3];
  p.scale_h = static_cast<float>(p.out_h) / static_cast<float>(p.in_h);
  p.scale_w = static_cast<float>(p.out_w) / static_cast<float>(p.in_w);
  size_t scales_input = n.opset < 11 ? 1 : 2;
  if (in.num_inputs() > scales_input && in.input(scales_input) != nullptr &&
      NumElements(in.input(scales_input)->shape) == 4) {
    ASSIGN_OR_RETURN(std::vector<float> sc, HostFloats(in.input(scales_input), n, "scales"));
    p.scale_h = sc[2];
    p.scale_w = sc[3];
  }
  if (mode == "nearest") {
    p.mode = ResizeMode::kNearest;
  } else if (mode == "linear") {
    p.mode = ResizeMode::kLinear;
  } else {
    return Unimplemented("{}: Resize mode '{}' is not supported on CUDA", n.Describe(), mode);
  }
  static const std::map<std::string, ResizeCoord> kCoord = {{"half_pixel", ResizeCoord::kHalfPixel},
                                                            {"pytorch_half_pixel", ResizeCoord::kPytorchHalfPixel},
                                                            {"align_corners", ResizeCoord::kAlignCorners},
                                                            {"asymmetric", ResizeCoord::kAsymmetric}};
  static const std::map<std::string, ResizeNearest> kNearest = {{"round_prefer_floor", ResizeNearest::kRoundPreferFloor},
                                                                {"round_prefer_ceil", ResizeNearest::kRoundPreferCeil},
                                                                {"floor", ResizeNearest::kFloor},
                                                                {"ceil", ResizeNearest::kCeil}};
  auto c = kCoord.find(coord);
  auto nm = kNearest.find(nearest);
  if (c == kCoord.end() || nm == kNearest.end()) {
    return Unimplemented("{}: Resize coordinate mode '{}' / nearest mode '{}' not supported on CUDA", n.Describe(), coord,
                         nearest);
  }
  p.coord = c->second;
  p.nearest = nm->second;
  ASSIGN_OR_RETURN(const void* xp, in.DeviceInput(0));
  float* y = static_cast<float*>(in.output(0)->device);
  return BuiltStep{[xp, y, p](StreamView s, void*) { return Resize(static_cast<const float*>(xp), y, p, s); }, 0};
}

StatusOr<BuiltStep> BuildExpand(StepInputs& in) {
  const PlannedValue* x = in.input(0);
  ASSIGN_OR_RETURN(const void* xp, in.DeviceInput(0));
  void* y = in.output(0)->device;
  size_t eb = DataTypeSize(x->dtype);
  Shape is = x->shape, os = in.output(0)->shape;
  return BuiltStep{[xp, y, eb, is, os](StreamView s, void*) { return BroadcastTo(xp, y, eb, is, os, s); }, 0};
}

StatusOr<BuiltStep> BuildSplit(StepInputs& in) {
  const ir::Node& n = in.node();
  const PlannedValue* x = in.input(0);
  ASSIGN_OR_RETURN(int64_t axis_attr, n.GetInt("axis", 0));
  ASSIGN_OR_RETURN(int64_t axis, NormAxis(axis_attr, x->shape.size(), n));
  size_t ax = static_cast<size_t>(axis);
  ASSIGN_OR_RETURN(const void* xp, in.DeviceInput(0));
  size_t eb = DataTypeSize(x->dtype);
  Shape is = x->shape;
  std::vector<std::function<Status(StreamView)>> parts;
  int64_t offset = 0;
  for (size_t o = 0; o < in.num_outputs(); ++o) {
    PlannedValue* out = in.output(o);
    if (out == nullptr) return Unimplemented("{}: omitted Split outputs on CUDA", n.Describe());
    std::vector<int64_t> starts(is.size(), 0), steps(is.size(), 1);
    starts[ax] = out->shape[ax] > 0 ? offset : 0;
    offset += out->shape[ax];
    void* y = out->device;
    Shape os = out->shape;
    parts.push_back([xp, y, eb, is, starts, steps, os](StreamView s) { return StridedSlice(xp, y, eb, is, starts, steps, os, s); });
  }
  if (offset != is[ax]) return Internal("{}: planned splits cover {} of {}", n.Describe(), offset, is[ax]);
  return BuiltStep{[parts](StreamView s, void*) {
                     for (const auto& p : parts) RETURN_IF_ERROR(p(s));
                     return Status::OK();
                   },
                   0};
}

StatusOr<BuiltStep> BuildPad(StepInputs& in) {
  const ir::Node& n = in.node();
  const PlannedValue* x = in.input(0);
  ASSIGN_OR_RETURN(std::string mode, n.GetString("mode", "constant"));
  if (mode != "constant") return Unimplemented("{}: Pad mode '{}' on CUDA", n.Describe(), mode);
  size_t r = x->shape.size();
  std::vector<int64_t> pads;
  uint64_t bits = 0;
  size_t eb = DataTypeSize(x->dtype);
  if (n.opset < 11) {
    ASSIGN_OR_RETURN(pads, n.GetInts("pads"));
    ASSIGN_OR_RETURN(float v, n.GetFloat("value", 0.f));
    if (x->dtype != DataType::kFloat32 && v != 0.f) return Unimplemented("{}: non-zero pad value for {}", n.Describe(), DataTypeName(x->dtype));
    std::memcpy(&bits, &v, sizeof(v));
  } else {
    ASSIGN_OR_RETURN(pads, HostInts(in.input(1), n, "pads"));
    if (in.num_inputs() > 2 && in.input(2) != nullptr) {
      const PlannedValue* cv = in.input(2);
      if (cv->host == nullptr) return Unimplemented("{}: pad value computed on the device", n.Describe());
      if (cv->host->dtype() != x->dtype || cv->host->num_elements() != 1) {
        return InvalidArgument("{}: constant_value must be one {}", n.Describe(), DataTypeName(x->dtype));
      }
      std::memcpy(&bits, cv->host->data(), eb);
    }
    if (in.num_inputs() > 3 && in.input(3) != nullptr) {
      ASSIGN_OR_RETURN(std::vector<int64_t> axes, HostInts(in.input(3), n, "axes"));
      if (pads.size() != 2 * axes.size()) return InvalidArgument("{}: pads and axes differ in length", n.Describe());
      std::vector<int64_t> full(2 * r, 0);
      for (size_t i = 0; i < axes.size(); ++i) {
        ASSIGN_OR_RETURN(int64_t a, NormAxis(axes[i], r, n));
        full[static_cast<size_t>(a)] = pads[i];
        full[static_cast<size_t>(a) + r] = pads[i + axes.size()];
      }
      pads = std::move(full);
    }
  }
  if (pads.size() != 2 * r) return InvalidArgument("{}: pads must have {} entries", n.Describe(), 2 * r);
  std::vector<int64_t> begin(pads.begin(), pads.begin() + static_cast<std::ptrdiff_t>(r));
  ASSIGN_OR_RETURN(const void* xp, in.DeviceInput(0));
  void* y = in.output(0)->device;
  Shape is = x->shape, os = in.output(0)->shape;
  return BuiltStep{[xp, y, eb, is, begin, os, bits](StreamView s, void*) {
                     return PadConstant(xp, y, eb, is, begin, os, bits, s);
                   },
                   0};
}

StatusOr<BuiltStep> BuildAlias(StepInputs& in) {
  // The plan gives the output the input's storage; copy only if it could not.
  ASSIGN_OR_RETURN(const void* xp, in.DeviceInput(0));
  PlannedValue* out = in.output(0);
  void* y = out->device;
  size_t bytes = static_cast<size_t>(NumElements(out->shape)) * DataTypeSize(out->dtype);
  return BuiltStep{[xp, y, bytes](StreamView s, void*) { return CopyDeviceToDeviceAsync(y, xp, bytes, s); }, 0};
}

}  // namespace gpuhive::cuda::executor::detail
