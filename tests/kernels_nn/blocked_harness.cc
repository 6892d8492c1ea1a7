#include "kernels_nn/blocked_harness.h"

#include <cstring>

namespace gpuhive::testing {
namespace {

struct Slot {
  DataType dtype = DataType::kUndefined;
  Shape shape;
  Layout layout = Layout::kPlain;
  size_t bytes = 0;
  bool set = false;
};

class Prep final : public PrepareContext {
 public:
  Prep(const ir::Node& node, const std::vector<const BlockedValue*>& in, std::vector<bool> visible,
       ConvAlgorithm conv_algorithm)
      : node_(node), in_(in), visible_(std::move(visible)), out_(node.outputs.size()) {
    opts_.allow_blocked_layouts = true;
    opts_.conv_algorithm = conv_algorithm;
  }
  const ir::Node& node() const override { return node_; }
  const KernelOptions& options() const override { return opts_; }
  size_t num_inputs() const override { return in_.size(); }
  bool has_input(size_t i) const override { return i < in_.size() && in_[i] != nullptr; }
  DataType input_dtype(size_t i) const override { return in_[i]->dtype; }
  const Shape& input_shape(size_t i) const override { return in_[i]->shape; }
  Layout input_layout(size_t i) const override { return in_[i]->layout; }
  const Tensor* input_value(size_t i) const override {
    return has_input(i) && visible_[i] && in_[i]->layout == Layout::kPlain ? &in_[i]->storage : nullptr;
  }
  size_t num_outputs() const override { return out_.size(); }
  bool has_output(size_t i) const override { return i < out_.size(); }
  void SetOutput(size_t i, DataType dtype, Shape shape, Layout layout, size_t bytes) override {
    if (i < out_.size()) out_[i] = Slot{dtype, std::move(shape), layout, bytes, true};
  }
  void RequestWorkspace(size_t bytes) override { ws_ = std::max(ws_, bytes); }
  void AllowInPlace(size_t, size_t) override {}
  void AliasOutput(size_t, size_t) override {}
  MemoryResource* persistent_resource() const override { return DefaultHostResource(); }
  AllocTag persistent_tag() const override { return AllocTag{0, MemoryKind::kWeights}; }
  const std::vector<Slot>& outputs() const { return out_; }
  size_t ws() const { return ws_; }

 private:
  const ir::Node& node_;
  const std::vector<const BlockedValue*>& in_;
  std::vector<bool> visible_;
  KernelOptions opts_;
  std::vector<Slot> out_;
  size_t ws_ = 0;
};

class Run final : public RunContext {
 public:
  Run(std::vector<TensorView> in, std::vector<bool> present, std::vector<TensorView> out, void* ws,
      size_t ws_bytes)
      : in_(std::move(in)), present_(std::move(present)), out_(std::move(out)), ws_(ws), ws_bytes_(ws_bytes) {}
  size_t num_inputs() const override { return in_.size(); }
  bool has_input(size_t i) const override { return i < in_.size() && present_[i]; }
  const TensorView& input(size_t i) const override { return in_[i]; }
  size_t num_outputs() const override { return out_.size(); }
  bool has_output(size_t i) const override { return i < out_.size(); }
  const TensorView& output(size_t i) const override { return out_[i]; }
  void* workspace() const override { return ws_; }
  size_t workspace_bytes() const override { return ws_bytes_; }
  int num_threads() const override { return 2; }
  StreamView stream() const override { return {}; }

 private:
  std::vector<TensorView> in_;
  std::vector<bool> present_;
  std::vector<TensorView> out_;
  void* ws_;
  size_t ws_bytes_;
};

}  // namespace

StatusOr<std::vector<BlockedValue>> RunNodeLayouts(const NodeSpec& spec,
                                                   const std::vector<const BlockedValue*>& inputs,
                                                   const std::vector<int>& constant_inputs,
                                                   const std::function<void(const Kernel&)>& inspect,
                                                   ConvAlgorithm conv_algorithm) {
  ir::Graph graph;
  std::vector<ir::Value*> in_values;
  for (size_t i = 0; i < inputs.size(); ++i) {
    in_values.push_back(inputs[i] ? graph.AddValue("in" + std::to_string(i), inputs[i]->dtype)
                                  : nullptr);
  }
  std::vector<ir::Value*> out_values;
  for (int i = 0; i < spec.num_outputs; ++i) out_values.push_back(graph.AddValue("out" + std::to_string(i)));
  ir::Node* node = graph.AddNode(spec.op_type, in_values, out_values, "node", spec.domain);
  node->opset = spec.opset;
  node->attrs = spec.attrs;
  ASSIGN_OR_RETURN(std::unique_ptr<Kernel> kernel, CpuKernelRegistry().Create(*node));
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i] && inputs[i]->layout != Layout::kPlain && !kernel->AcceptsBlockedInput(i)) {
      return FailedPrecondition("kernel refuses blocked input {}", i);
    }
  }
  std::vector<bool> visible(inputs.size(), false);
  for (int c : constant_inputs) visible[c] = true;
  Prep prep(*node, inputs, visible, conv_algorithm);
  RETURN_IF_ERROR(kernel->Prepare(prep));
  if (inspect) inspect(*kernel);
  std::vector<BlockedValue> outs;
  std::vector<TensorView> out_views;
  for (const Slot& s : prep.outputs()) {
    if (!s.set) return Internal("output not declared");
    size_t bytes = s.bytes ? s.bytes : static_cast<size_t>(NumElements(s.shape)) * DataTypeSize(s.dtype);
    ASSIGN_OR_RETURN(Tensor t, Tensor::Allocate(DataType::kUint8, {static_cast<int64_t>(bytes)}));
    std::memset(t.data(), 0xA5, bytes);
    out_views.push_back(TensorView{s.dtype, s.shape, t.data(), s.layout});
    outs.push_back(BlockedValue{std::move(t), s.shape, s.layout, s.dtype});
  }
  std::vector<TensorView> in_views;
  std::vector<bool> present;
  for (const BlockedValue* v : inputs) {
    in_views.push_back(v ? TensorView{v->dtype, v->shape, const_cast<void*>(v->storage.data()), v->layout}
                         : TensorView{});
    present.push_back(v != nullptr);
  }
  std::vector<uint8_t> ws(prep.ws() + 64);
  void* ws_ptr = reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(ws.data()) + 63) & ~uintptr_t{63});
  Run run(in_views, present, out_views, ws_ptr, prep.ws());
  RETURN_IF_ERROR(kernel->Run(run));
  return outs;
}

BlockedValue AsValue(const Tensor& t) {
  BlockedValue v;
  v.storage = MakeTensor(t.dtype(), t.shape(), t.data());
  v.shape = t.shape();
  v.dtype = t.dtype();
  return v;
}

StatusOr<BlockedValue> ReorderTo(const BlockedValue& v, const char* to) {
  NodeSpec spec{"Reorder", "gpuhive", 1, {{"to", AttrString(to)}}};
  ASSIGN_OR_RETURN(auto outs, RunNodeLayouts(spec, {&v}));
  return std::move(outs[0]);
}

StatusOr<Tensor> ToPlain(const BlockedValue& v) {
  BlockedValue p;
  if (v.layout != Layout::kPlain) {
    ASSIGN_OR_RETURN(p, ReorderTo(v, "plain"));
  } else {
    p.storage = MakeTensor(v.storage.dtype(), v.storage.shape(), v.storage.data());
    p.shape = v.shape;
  }
  if (p.layout != Layout::kPlain) return Internal("Reorder to plain produced a blocked layout");
  return Tensor::FromBytes(v.dtype, p.shape, p.storage.data(),
                           static_cast<size_t>(NumElements(p.shape)) * DataTypeSize(v.dtype));
}

}  // namespace gpuhive::testing
