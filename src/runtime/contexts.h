// PrepareContext / RunContext implementations shared by static plans and eager (run-time) steps.
#pragma once

#include <algorithm>
#include <vector>

#include "gpuhive/kernel.h"

namespace gpuhive::runtime {

// What a kernel sees of one input while preparing.
struct InputDesc {
  bool present = false;
  DataType dtype = DataType::kUndefined;
  Shape shape;
  Layout layout = Layout::kPlain;
  const Tensor* value = nullptr;  // known value, if any
};

struct OutputDesc {
  bool declared = false;
  DataType dtype = DataType::kUndefined;
  Shape shape;
  Layout layout = Layout::kPlain;
  size_t bytes = 0;  // storage bytes (padded for blocked layouts)
};

class PrepareContextImpl final : public PrepareContext {
 public:
  PrepareContextImpl(const ir::Node& node, std::vector<InputDesc> inputs, size_t num_outputs,
                     const KernelOptions& options, MemoryResource* persistent, AllocTag tag)
      : node_(node), inputs_(std::move(inputs)), outputs_(num_outputs), options_(options),
        persistent_(persistent), tag_(tag) {}

  const ir::Node& node() const override { return node_; }
  const KernelOptions& options() const override { return options_; }
  size_t num_inputs() const override { return inputs_.size(); }
  bool has_input(size_t i) const override { return i < inputs_.size() && inputs_[i].present; }
  DataType input_dtype(size_t i) const override { return inputs_[i].dtype; }
  const Shape& input_shape(size_t i) const override { return inputs_[i].shape; }
  Layout input_layout(size_t i) const override { return inputs_[i].layout; }
  const Tensor* input_value(size_t i) const override {
    return i < inputs_.size() ? inputs_[i].value : nullptr;
  }
  size_t num_outputs() const override { return outputs_.size(); }
  bool has_output(size_t i) const override {
    return i < outputs_.size() && i < node_.outputs.size() && node_.outputs[i] != nullptr;
  }
  void SetOutput(size_t i, DataType dtype, Shape shape, Layout layout, size_t bytes) override {
    if (i >= outputs_.size()) return;
    OutputDesc& o = outputs_[i];
    o.declared = true;
    o.dtype = dtype;
    o.shape = std::move(shape);
    o.layout = layout;
    size_t plain = static_cast<size_t>(std::max<int64_t>(NumElements(o.shape), 0)) * DataTypeSize(dtype);
    o.bytes = layout == Layout::kPlain || bytes == 0 ? plain : bytes;
  }
  void RequestWorkspace(size_t bytes) override { workspace_ = std::max(workspace_, bytes); }
  void AllowInPlace(size_t input, size_t output) override { in_place_.push_back({input, output}); }
  void AliasOutput(size_t input, size_t output) override { alias_.push_back({input, output}); }
  MemoryResource* persistent_resource() const override { return persistent_; }
  AllocTag persistent_tag() const override { return tag_; }

  std::vector<OutputDesc>& outputs() { return outputs_; }
  const std::vector<InputDesc>& inputs() const { return inputs_; }
  size_t workspace() const { return workspace_; }
  const std::vector<std::pair<size_t, size_t>>& in_place() const { return in_place_; }
  const std::vector<std::pair<size_t, size_t>>& alias() const { return alias_; }

 private:
  const ir::Node& node_;
  std::vector<InputDesc> inputs_;
  std::vector<OutputDesc> outputs_;
  const KernelOptions& options_;
  MemoryResource* persistent_;
  AllocTag tag_;
  size_t workspace_ = 0;
  std::vector<std::pair<size_t, size_t>> in_place_, alias_;
};

class RunContextImpl final : public RunContext {
 public:
  RunContextImpl(std::vector<TensorView> inputs, std::vector<TensorView> outputs, void* ws,
                 size_t ws_bytes, int threads, StreamView stream)
      : in_(std::move(inputs)), out_(std::move(outputs)), ws_(ws), ws_bytes_(ws_bytes),
        threads_(threads), stream_(stream) {}
  size_t num_inputs() const override { return in_.size(); }
  bool has_input(size_t i) const override { return i < in_.size() && in_[i].dtype != DataType::kUndefined; }
  const TensorView& input(size_t i) const override { return in_[i]; }
  size_t num_outputs() const override { return out_.size(); }
  bool has_output(size_t i) const override {
    return i < out_.size() && out_[i].dtype != DataType::kUndefined;
  }
  const TensorView& output(size_t i) const override { return out_[i]; }
  void* workspace() const override { return ws_; }
  size_t workspace_bytes() const override { return ws_bytes_; }
  int num_threads() const override { return threads_; }
  StreamView stream() const override { return stream_; }

 private:
  std::vector<TensorView> in_, out_;
  void* ws_;
  size_t ws_bytes_;
  int threads_;
  StreamView stream_;
};

}  // namespace gpuhive::runtime
