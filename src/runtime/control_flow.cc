#include "runtime/control_flow.h"

#include <cstring>

namespace gpuhive::runtime {
namespace {

StatusOr<bool> ScalarBool(const Tensor* t, const char* what) {
  if (!t || t->num_elements() != 1) return InvalidArgument("{} must be a single element", what);
  if (t->dtype() == DataType::kBool || t->dtype() == DataType::kUint8) return t->as<uint8_t>()[0] != 0;
  return InvalidArgument("{} must be bool, got {}", what, DataTypeName(t->dtype()));
}

// Slice `index` along `axis` (removing that axis).
StatusOr<Tensor> SliceAxis(const Tensor& t, int64_t axis, int64_t index, MemoryResource* mr, AllocTag tag) {
  const Shape& s = t.shape();
  Shape out_shape;
  for (size_t d = 0; d < s.size(); ++d) {
    if (static_cast<int64_t>(d) != axis) out_shape.push_back(s[d]);
  }
  ASSIGN_OR_RETURN(Tensor out, Tensor::Allocate(t.dtype(), out_shape, mr, tag));
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= s[d];
  for (size_t d = axis + 1; d < s.size(); ++d) inner *= s[d];
  size_t es = DataTypeSize(t.dtype());
  const auto* src = static_cast<const uint8_t*>(t.data());
  auto* dst = static_cast<uint8_t*>(out.data());
  for (int64_t o = 0; o < outer; ++o) {
    std::memcpy(dst + o * inner * es, src + ((o * s[axis] + index) * inner) * es, inner * es);
  }
  return out;
}

// Stacks equally shaped tensors along a new `axis` (in the given order).
StatusOr<Tensor> StackAxis(const std::vector<Tensor>& parts, int64_t axis, MemoryResource* mr, AllocTag tag,
                           const Tensor* empty_like) {
  if (parts.empty()) {
    Shape shape = empty_like ? empty_like->shape() : Shape{};
    shape.insert(shape.begin() + std::min<int64_t>(axis, shape.size()), 0);
    return Tensor::Allocate(empty_like ? empty_like->dtype() : DataType::kFloat32, shape, mr, tag);
  }
  const Shape& e = parts[0].shape();
  for (const Tensor& p : parts) {
    if (p.shape() != e || p.dtype() != parts[0].dtype()) {
      return InvalidArgument("scan outputs change shape across iterations ({} vs {})", ShapeToString(e),
                             ShapeToString(p.shape()));
    }
  }
  if (axis < 0 || axis > static_cast<int64_t>(e.size())) return InvalidArgument("bad stack axis {}", axis);
  Shape out_shape = e;
  out_shape.insert(out_shape.begin() + axis, static_cast<int64_t>(parts.size()));
  ASSIGN_OR_RETURN(Tensor out, Tensor::Allocate(parts[0].dtype(), out_shape, mr, tag));
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= e[d];
  for (size_t d = axis; d < e.size(); ++d) inner *= e[d];
  size_t es = DataTypeSize(parts[0].dtype());
  auto* dst = static_cast<uint8_t*>(out.data());
  int64_t n = static_cast<int64_t>(parts.size());
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t k = 0; k < n; ++k) {
      std::memcpy(dst + ((o * n + k) * inner) * es,
                  static_cast<const uint8_t*>(parts[k].data()) + o * inner * es, inner * es);
    }
  }
  return out;
}

StatusOr<std::vector<Tensor>> RunIf(const ir::Node& node, const std::vector<const Tensor*>& inputs,
                                    const EagerOptions& options, const OuterScope& outer) {
  ASSIGN_OR_RETURN(bool cond, ScalarBool(inputs.empty() ? nullptr : inputs[0], "If condition"));
  ASSIGN_OR_RETURN(auto branch, node.GetGraph(cond ? "then_branch" : "else_branch"));
  return RunGraphEager(*branch, {}, options, outer);
}

StatusOr<std::vector<Tensor>> RunLoop(const ir::Node& node, const std::vector<const Tensor*>& inputs,
                                      const EagerOptions& options, const OuterScope& outer) {
  ASSIGN_OR_RETURN(auto body, node.GetGraph("body"));
  MemoryResource* mr = options.memory ? options.memory : DefaultHostResource();
  const Tensor* m = inputs.size() > 0 ? inputs[0] : nullptr;
  const Tensor* c = inputs.size() > 1 ? inputs[1] : nullptr;
  int64_t max_trip = INT64_MAX;
  if (m) {
    if (m->dtype() != DataType::kInt64 || m->num_elements() != 1) return InvalidArgument("Loop M must be an int64 scalar");
    max_trip = m->as<int64_t>()[0];
  }
  bool cond = true;
  if (c) {
    ASSIGN_OR_RETURN(cond, ScalarBool(c, "Loop cond"));
  }
  size_t n_carried = inputs.size() > 2 ? inputs.size() - 2 : 0;
  if (body->inputs().size() != n_carried + 2) {
    return InvalidArgument("Loop body takes {} inputs, expected {}", body->inputs().size(), n_carried + 2);
  }
  if (body->outputs().size() < n_carried + 1) return InvalidArgument("Loop body has too few outputs");
  size_t n_scan = body->outputs().size() - 1 - n_carried;

  std::vector<Tensor> carried;
  for (size_t i = 0; i < n_carried; ++i) {
    if (!inputs[2 + i]) return InvalidArgument("Loop-carried input {} is missing", i);
    ASSIGN_OR_RETURN(Tensor t, inputs[2 + i]->Clone(mr, options.tag));
    carried.push_back(std::move(t));
  }
  std::vector<std::vector<Tensor>> scans(n_scan);
  constexpr int64_t kMaxIterations = int64_t{1} << 31;
  for (int64_t it = 0; it < max_trip && cond; ++it) {
    if (it >= kMaxIterations) return InvalidArgument("Loop exceeded {} iterations", kMaxIterations);
    ASSIGN_OR_RETURN(Tensor iter, Tensor::FromVector<int64_t>(DataType::kInt64, {}, {it}));
    uint8_t cb = cond ? 1 : 0;
    ASSIGN_OR_RETURN(Tensor cond_t, Tensor::FromBytes(DataType::kBool, {}, &cb, 1));
    std::vector<const Tensor*> body_in = {&iter, &cond_t};
    for (const Tensor& t : carried) body_in.push_back(&t);
    ASSIGN_OR_RETURN(std::vector<Tensor> out, RunGraphEager(*body, body_in, options, outer));
    ASSIGN_OR_RETURN(cond, ScalarBool(&out[0], "Loop body condition"));
    for (size_t i = 0; i < n_carried; ++i) carried[i] = std::move(out[1 + i]);
    for (size_t i = 0; i < n_scan; ++i) scans[i].push_back(std::move(out[1 + n_carried + i]));
  }
  std::vector<Tensor> results = std::move(carried);
  for (size_t i = 0; i < n_scan; ++i) {
    ASSIGN_OR_RETURN(Tensor s, StackAxis(scans[i], 0, mr, options.tag, nullptr));
    results.push_back(std::move(s));
  }
  return results;
}

StatusOr<std::vector<Tensor>> RunScan(const ir::Node& node, const std::vector<const Tensor*>& inputs,
                                      const EagerOptions& options, const OuterScope& outer) {
  if (node.opset < 9) return Unimplemented("{}: Scan before opset 9 (batched form) is not supported", node.Describe());
  ASSIGN_OR_RETURN(auto body, node.GetGraph("body"));
  ASSIGN_OR_RETURN(int64_t n_scan_in, node.GetInt("num_scan_inputs"));
  MemoryResource* mr = options.memory ? options.memory : DefaultHostResource();
  int64_t n_state = static_cast<int64_t>(inputs.size()) - n_scan_in;
  if (n_state < 0) return InvalidArgument("{}: num_scan_inputs exceeds inputs", node.Describe());
  int64_t n_scan_out = static_cast<int64_t>(body->outputs().size()) - n_state;
  if (n_scan_out < 0) return InvalidArgument("{}: body has too few outputs", node.Describe());
  ASSIGN_OR_RETURN(auto in_axes, node.GetInts("scan_input_axes", std::vector<int64_t>(n_scan_in, 0)));
  ASSIGN_OR_RETURN(auto in_dirs, node.GetInts("scan_input_directions", std::vector<int64_t>(n_scan_in, 0)));
  ASSIGN_OR_RETURN(auto out_axes, node.GetInts("scan_output_axes", std::vector<int64_t>(n_scan_out, 0)));
  ASSIGN_OR_RETURN(auto out_dirs, node.GetInts("scan_output_directions", std::vector<int64_t>(n_scan_out, 0)));
  if (static_cast<int64_t>(in_axes.size()) != n_scan_in || static_cast<int64_t>(in_dirs.size()) != n_scan_in ||
      static_cast<int64_t>(out_axes.size()) != n_scan_out || static_cast<int64_t>(out_dirs.size()) != n_scan_out) {
    return InvalidArgument("{}: scan axes/directions lengths do not match", node.Describe());
  }
  int64_t seq = -1;
  for (int64_t i = 0; i < n_scan_in; ++i) {
    const Tensor* t = inputs[n_state + i];
    if (!t) return InvalidArgument("{}: scan input {} missing", node.Describe(), i);
    int64_t rank = static_cast<int64_t>(t->shape().size());
    if (in_axes[i] < 0) in_axes[i] += rank;
    if (in_axes[i] < 0 || in_axes[i] >= rank) return InvalidArgument("{}: bad scan_input_axes", node.Describe());
    int64_t len = t->shape()[in_axes[i]];
    if (seq >= 0 && len != seq) return InvalidArgument("{}: scan inputs differ in length", node.Describe());
    seq = len;
  }
  if (seq < 0) seq = 0;
  std::vector<Tensor> state;
  for (int64_t i = 0; i < n_state; ++i) {
    if (!inputs[i]) return InvalidArgument("{}: state input {} missing", node.Describe(), i);
    ASSIGN_OR_RETURN(Tensor t, inputs[i]->Clone(mr, options.tag));
    state.push_back(std::move(t));
  }
  std::vector<std::vector<Tensor>> scans(n_scan_out);
  for (int64_t step = 0; step < seq; ++step) {
    std::vector<Tensor> slices;
    for (int64_t i = 0; i < n_scan_in; ++i) {
      int64_t idx = in_dirs[i] ? seq - 1 - step : step;
      ASSIGN_OR_RETURN(Tensor s, SliceAxis(*inputs[n_state + i], in_axes[i], idx, mr, options.tag));
      slices.push_back(std::move(s));
    }
    std::vector<const Tensor*> body_in;
    for (const Tensor& t : state) body_in.push_back(&t);
    for (const Tensor& t : slices) body_in.push_back(&t);
    ASSIGN_OR_RETURN(std::vector<Tensor> out, RunGraphEager(*body, body_in, options, outer));
    for (int64_t i = 0; i < n_state; ++i) state[i] = std::move(out[i]);
    for (int64_t i = 0; i < n_scan_out; ++i) scans[i].push_back(std::move(out[n_state + i]));
  }
  std::vector<Tensor> results = std::move(state);
  for (int64_t i = 0; i < n_scan_out; ++i) {
    if (out_dirs[i]) std::reverse(scans[i].begin(), scans[i].end());
    int64_t rank = scans[i].empty() ? 0 : static_cast<int64_t>(scans[i][0].shape().size());
    int64_t axis = out_axes[i] < 0 ? out_axes[i] + rank + 1 : out_axes[i];
    ASSIGN_OR_RETURN(Tensor s, StackAxis(scans[i], axis, mr, options.tag, nullptr));
    results.push_back(std::move(s));
  }
  return results;
}

}  // namespace

StatusOr<std::vector<Tensor>> RunControlFlow(const ir::Node& node, const std::vector<const Tensor*>& inputs,
                                             const EagerOptions& options, const OuterScope& outer) {
  if (node.op_type == "If") return RunIf(node, inputs, options, outer);
  if (node.op_type == "Loop") return RunLoop(node, inputs, options, outer);
  if (node.op_type == "Scan") return RunScan(node, inputs, options, outer);
  return Internal("{} is not a control flow operator", node.Describe());
}

}  // namespace gpuhive::runtime
