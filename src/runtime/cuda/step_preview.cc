// PreviewCudaSteps (include/gpuhive/cuda_executor.h): the executor's own step builders run over a
// host-side plan, with stand-ins for what needs a device. Device pointers are distinct addresses
// that are never dereferenced; cuDNN and cuBLASLt are answered from the descriptors alone
// (ConvOutputSize, CheckMatmulDesc); no step is run. What it proves: every node of the plan
// becomes a device step or is evaluated while planning, so no node is left to the CPU.
#include <cstdint>
#include <deque>
#include <memory>
#include <set>
#include <utility>

#include "gpuhive/cuda_executor.h"
#include "runtime/cuda/plan_analysis.h"
#include "runtime/cuda/steps.h"

namespace gpuhive::cuda {
namespace {

using executor::PlannedValue;

// Addresses for values without device storage yet; far from any real mapping, never touched.
class FakeAddresses {
 public:
  void* Next(size_t bytes) {
    void* p = reinterpret_cast<void*>(next_);
    next_ += (std::max<size_t>(bytes, 1) + 255) / 256 * 256;
    return p;
  }

 private:
  uintptr_t next_ = uintptr_t{1} << 44;
};

bool Is16BitMath(MathMode m) { return m == MathMode::kFloat16 || m == MathMode::kBFloat16; }

class PreviewMatmul final : public MatmulRunner {
 public:
  StatusOr<size_t> WorkspaceBytes(const MatmulDesc& desc) override {
    RETURN_IF_ERROR(CheckMatmulDesc(desc));
    if (Is16BitMath(desc.math)) ++asked_16bit;
    return size_t{0};
  }
  size_t asked_16bit = 0;  // descriptors with 16-bit math seen (a step asks once or twice)
  Status Run(const MatmulDesc&, const void*, const void*, const void*, void*, void*, size_t, StreamView) override {
    return FailedPrecondition("a plan preview runs no step");
  }
  size_t cached_algorithms() const override { return 0; }
};

class PreviewConv final : public ConvRunner {
 public:
  explicit PreviewConv(ConvOutput out) : out_(out) {}
  int64_t out_h() const override { return out_.h; }
  int64_t out_w() const override { return out_.w; }
  size_t workspace_bytes() const override { return 0; }
  bool fused() const override { return false; }
  Status Run(const void*, const void*, const void*, const void*, void*, void*, StreamView) const override {
    return FailedPrecondition("a plan preview runs no step");
  }

 private:
  ConvOutput out_;
};

class PreviewInputs final : public executor::StepInputs {
 public:
  // What the executor would hold for graph constants: one copy per (value, dtype), and its bytes.
  struct Constants {
    std::set<std::pair<const ir::Value*, DataType>> uploaded;
    size_t bytes = 0;
    void Add(const ir::Value* v, DataType dtype, size_t bytes_of_copy) {
      if (uploaded.emplace(v, dtype).second) bytes += bytes_of_copy;
    }
  };

  PreviewInputs(const ir::Node& node, std::vector<PlannedValue*> in, std::vector<PlannedValue*> out,
                std::vector<bool> used, FakeAddresses* addresses, PreviewMatmul* matmul, int* flag, MathMode math,
                Constants* constants)
      : node_(node), in_(std::move(in)), out_(std::move(out)), used_(std::move(used)), addresses_(addresses),
        matmul_(matmul), flag_(flag), math_(math), constants_(constants) {}
  const ir::Node& node() const override { return node_; }
  size_t num_inputs() const override { return in_.size(); }
  const PlannedValue* input(size_t i) const override { return i < in_.size() ? in_[i] : nullptr; }
  StatusOr<const void*> DeviceInput(size_t i) override {
    PlannedValue* pv = i < in_.size() ? in_[i] : nullptr;
    if (pv == nullptr) return InvalidArgument("{}: input {} is missing", node_.Describe(), i);
    if (pv->device == nullptr) {
      if (pv->host == nullptr) return Internal("{}: input {} has neither device nor host storage", node_.Describe(), i);
      pv->device = addresses_->Next(pv->host->bytes());  // what the executor would upload
      if (IsGraphConstant(i)) constants_->Add(node_.inputs[i], pv->dtype, pv->host->bytes());
    }
    return static_cast<const void*>(pv->device);
  }
  StatusOr<const void*> DeviceConstant16(size_t i, DataType dtype) override {
    if (!IsGraphConstant(i) || in_[i]->dtype != DataType::kFloat32) {
      return NotFound("{}: input {} is not a float32 graph constant", node_.Describe(), i);
    }
    const size_t bytes = static_cast<size_t>(in_[i]->host->num_elements()) * 2;
    constants_->Add(node_.inputs[i], dtype, bytes);
    return static_cast<const void*>(addresses_->Next(bytes));
  }
  bool conv_16bit() const { return conv_16bit_; }
  size_t num_outputs() const override { return out_.size(); }
  PlannedValue* output(size_t i) const override { return i < out_.size() ? out_[i] : nullptr; }
  bool output_used(size_t i) const override { return i < used_.size() && used_[i]; }
  MathMode math() const override { return math_; }
  MatmulRunner& matmul() override { return *matmul_; }
  StatusOr<std::shared_ptr<ConvRunner>> conv(const ConvDesc& desc) override {
    ASSIGN_OR_RETURN(ConvOutput out, ConvOutputSize(desc));
    conv_16bit_ = conv_16bit_ || Is16BitMath(desc.math);
    return std::shared_ptr<ConvRunner>(std::make_shared<PreviewConv>(out));
  }
  size_t max_workspace_bytes() const override { return 256ull << 20; }
  int* error_flag() const override { return flag_; }

 private:
  const ir::Node& node_;
  std::vector<PlannedValue*> in_, out_;
  std::vector<bool> used_;
  FakeAddresses* addresses_;
  bool IsGraphConstant(size_t i) const {
    const PlannedValue* pv = i < in_.size() ? in_[i] : nullptr;
    const ir::Value* v = i < node_.inputs.size() ? node_.inputs[i] : nullptr;
    return pv != nullptr && v != nullptr && v->is_constant() && v->constant.get() == pv->host;
  }

  PreviewMatmul* matmul_;
  int* flag_;
  MathMode math_;
  Constants* constants_;
  bool conv_16bit_ = false;
};

}  // namespace

StatusOr<PlanPreview> PreviewCudaSteps(const ir::Graph& graph, const std::vector<TensorView>& inputs, MathMode math) {
  RETURN_IF_ERROR(CheckCudaSupport(graph));
  ASSIGN_OR_RETURN(std::unique_ptr<executor::Analysis> an, executor::AnalyzePlan(graph, inputs));
  PlanPreview preview = executor::Summarize(*an);
  FakeAddresses addresses;
  char* arena = static_cast<char*>(addresses.Next(an->arena.arena_bytes));
  for (auto& [v, sid] : an->storage_of) an->values[v].device = arena + an->arena.offsets[sid];
  auto* flag = static_cast<int*>(addresses.Next(sizeof(int)));
  PreviewMatmul matmul;
  PreviewInputs::Constants constants;
  for (const executor::DeviceNode& dn : an->device_nodes) {
    const ir::Node& n = *dn.node;
    std::vector<PlannedValue*> in, out;
    std::vector<bool> used;
    for (const ir::Value* v : n.inputs) in.push_back(v ? &an->values.at(v) : nullptr);
    for (const ir::Value* v : n.outputs) {
      out.push_back(v ? &an->values.at(v) : nullptr);
      used.push_back(v != nullptr && (!v->consumers.empty() || v->is_graph_output));
    }
    PreviewInputs si(n, std::move(in), std::move(out), std::move(used), &addresses, &matmul, flag, math, &constants);
    const size_t asked_16bit = matmul.asked_16bit;
    StatusOr<executor::BuiltStep> built = executor::BuildStep(si);
    if (!built.ok()) return built.status().WithContext("building the device step of " + n.Describe());
    preview.step_workspace_bytes = std::max(preview.step_workspace_bytes, built->workspace_bytes);
    ++preview.steps_built;
    if (si.conv_16bit() || matmul.asked_16bit != asked_16bit) ++preview.steps_16bit;
  }
  preview.constant_bytes = constants.bytes;
  return preview;
}

}  // namespace gpuhive::cuda
