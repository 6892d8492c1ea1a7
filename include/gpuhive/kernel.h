// Kernel interface: how the runtime prepares and runs one graph node on one backend.
//
// Life cycle. The runtime creates one Kernel per (node, plan) through the backend's
// KernelRegistry, calls Prepare once with concrete input shapes (one plan per input-shape
// signature, e.g. per batch size), and then calls Run any number of times, possibly from several
// threads at once on different buffers: Run is const and must not mutate the kernel.
//
// Memory. Outputs are allocated by the runtime (static planning places them in an arena) with the
// dtype/shape/layout Prepare declared. Scratch memory is requested in Prepare and handed to Run.
// Long-lived kernel state that is large (e.g. weights reordered into a blocked format) is allocated
// through PrepareContext::persistent_resource() so it is accounted to the model as weights.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gpuhive/device.h"
#include "gpuhive/ir.h"
#include "gpuhive/memory_resource.h"
#include "gpuhive/status.h"
#include "gpuhive/tensor.h"

namespace gpuhive {

// Which algorithm FP32 3x3 stride-1 convolutions use on the CPU (config.pbtxt's gpuhive {
// cpu_convolution }). oneDNN's Winograd kernels (AVX-512 only; elsewhere every value means direct)
// take about half the time of the direct ones on such a layer, but keep the weights transformed:
// 1.8x (F(2,3)) to 4x (F(4,3)) their bytes, plus a per-call scratchpad in the workspace.
//   kAuto      Winograd where the transform pays for itself: the output has at least 14x14
//              positions (the transformed weights are reused that often per image) and the plain
//              weights are at most 4 MiB (so one layer adds at most ~12 MiB); direct elsewhere.
//   kDirect    never Winograd: the least memory.
//   kWinograd  every eligible layer, whatever its weights cost.
enum class ConvAlgorithm { kAuto, kDirect, kWinograd };
// "auto", "direct", "winograd"; nullopt for anything else. (Inline: the config parser uses it
// without linking the kernels.)
inline std::optional<ConvAlgorithm> ParseConvAlgorithm(std::string_view text) {
  if (text == "auto") return ConvAlgorithm::kAuto;
  if (text == "direct") return ConvAlgorithm::kDirect;
  if (text == "winograd") return ConvAlgorithm::kWinograd;
  return std::nullopt;
}

struct KernelOptions {
  int num_threads = 1;
  // Kernels that can keep activations in channel-blocked layouts may produce them.
  bool allow_blocked_layouts = true;
  // BF16 compute (precision "bf16"): float32 Conv (one group) and MatMul/Gemm with constant weights
  // keep their weights in bfloat16 and convert their input to bfloat16 as they run; products
  // accumulate in float32 and outputs stay float32. Only honoured where CpuHasBf16Compute().
  bool bf16_compute = false;
  ConvAlgorithm conv_algorithm = ConvAlgorithm::kAuto;
};

class PrepareContext {
 public:
  virtual ~PrepareContext() = default;

  virtual const ir::Node& node() const = 0;
  int opset() const { return node().opset; }
  virtual const KernelOptions& options() const = 0;

  // Input slots match node().inputs; an omitted optional input has has_input(i) == false.
  virtual size_t num_inputs() const = 0;
  virtual bool has_input(size_t i) const = 0;
  virtual DataType input_dtype(size_t i) const = 0;
  virtual const Shape& input_shape(size_t i) const = 0;
  virtual Layout input_layout(size_t i) const = 0;
  // The value of input i when it is known while planning (an initializer, a folded constant, or a
  // small value computed while planning such as a Shape result); nullptr otherwise.
  virtual const Tensor* input_value(size_t i) const = 0;

  virtual size_t num_outputs() const = 0;
  virtual bool has_output(size_t i) const = 0;
  // Declares output i. `bytes` is needed only for blocked layouts (padded size); 0 = plain size.
  virtual void SetOutput(size_t i, DataType dtype, Shape shape, Layout layout = Layout::kPlain,
                         size_t bytes = 0) = 0;

  // Scratch memory for Run (max over calls). Valid only during Run; not preserved across runs.
  virtual void RequestWorkspace(size_t bytes) = 0;
  // The output may be written into the buffer of `input` when nothing else needs that input
  // afterwards (elementwise ops). Run must then work when the two pointers are equal.
  virtual void AllowInPlace(size_t input, size_t output) = 0;
  // The output is the input's bytes reinterpreted (Reshape, Squeeze, Flatten, Identity): the
  // planner may give it the input's buffer outright. Run must copy when the pointers differ.
  virtual void AliasOutput(size_t input, size_t output) = 0;

  // Resource and tag for kernel-owned persistent buffers (reordered weights).
  virtual MemoryResource* persistent_resource() const = 0;
  virtual AllocTag persistent_tag() const = 0;
};

// Returned by Prepare when an output shape depends on the value of a non-constant input that is
// not known while planning (NonZero, a Reshape of a computed shape). The runtime then prepares
// this node at run time, when every input value is known.
Status DataDependentShape(const ir::Node& node, size_t input);
bool IsDataDependentShape(const Status& status);

class RunContext {
 public:
  virtual ~RunContext() = default;
  virtual size_t num_inputs() const = 0;
  virtual bool has_input(size_t i) const = 0;
  virtual const TensorView& input(size_t i) const = 0;
  virtual size_t num_outputs() const = 0;
  virtual bool has_output(size_t i) const = 0;
  virtual const TensorView& output(size_t i) const = 0;
  virtual void* workspace() const = 0;
  virtual size_t workspace_bytes() const = 0;
  virtual int num_threads() const = 0;
  virtual StreamView stream() const = 0;
};

class Kernel {
 public:
  virtual ~Kernel() = default;
  // Validates inputs (dtypes, ranks, shapes) and declares outputs. Errors are kInvalidArgument for
  // inputs that violate the operator's contract, kUnimplemented for unsupported attribute values.
  virtual Status Prepare(PrepareContext& ctx) = 0;
  // Computes outputs. Thread safe across concurrent calls with distinct buffers.
  virtual Status Run(RunContext& ctx) const = 0;
  // Whether input i may arrive in a channel-blocked layout (asked before Prepare). When false the
  // runtime converts a blocked value to plain first. Only oneDNN-backed kernels say yes.
  virtual bool AcceptsBlockedInput(size_t i) const { return false; }
  // Likewise for Layout::kChannelsLast (the int8 convolutions' layout between each other).
  virtual bool AcceptsChannelsLastInput(size_t i) const { return false; }
  // Non-null when Prepare gave the kernel its own (e.g. packed) copy of constant input i, so that
  // Run never reads that input's storage; the handle keeps that copy alive. When every reader of a
  // constant has one, the runtime frees the constant's plain storage (its Tensor keeps dtype and
  // shape; data() becomes null) and holds the handles for the model's life; a later Prepare then
  // sees input_value(i) with null data and must rebuild its copy from the kept ones.
  virtual std::shared_ptr<const void> CopyOfInput(size_t i) const { return nullptr; }
  // Which implementation Prepare chose, for tests and diagnostics that pin a fast path
  // (deterministic, unlike a timing): oneDNN's name of the primary primitive's implementation
  // ("jit:avx512_core", "brgemm", "ref:any"), "gpuhive:..." or a kernel's own name for its loops;
  // empty for a kernel with one implementation, or before Prepare.
  virtual std::string_view implementation() const { return {}; }
};

using KernelFactory = std::function<StatusOr<std::unique_ptr<Kernel>>(const ir::Node& node)>;

// Operator name -> factory for one backend. Registration happens once at start-up (not thread
// safe); lookups afterwards are read-only and thread safe.
class KernelRegistry {
 public:
  // Registers `op_type` in `domain` ("" = default ONNX domain) for opsets >= since_version.
  void Register(const std::string& domain, const std::string& op_type, KernelFactory factory,
                int since_version = 1);
  // The factory for the node's (domain, op_type, opset), or nullptr when unsupported.
  const KernelFactory* Find(const std::string& domain, const std::string& op_type, int opset) const;
  bool Supports(const std::string& domain, const std::string& op_type, int opset) const {
    return Find(domain, op_type, opset) != nullptr;
  }
  // Creates a kernel or returns kUnimplemented naming the operator and node.
  StatusOr<std::unique_ptr<Kernel>> Create(const ir::Node& node) const;
  std::vector<std::string> OpTypes() const;  // "Conv", "gpuhive.FusedConv", ...

 private:
  struct Entry {
    int since_version;
    KernelFactory factory;
  };
  std::map<std::string, std::vector<Entry>> entries_;  // key: domain + '\x1f' + op_type
};

// The CPU backend's registry with every CPU kernel registered (built on first use).
const KernelRegistry& CpuKernelRegistry();
// The widest int8 weights the CPU backend's int8 convolutions compute exactly: 8 where oneDNN has
// an int8 dot product (VNNI), else 7 (uint8 x int8 pair sums saturate int16 above that).
int CpuExactInt8WeightBits();
// Whether the CPU backend computes in BF16 natively (oneDNN's AVX512-BF16 or AMX kernels; false
// under ONEDNN_MAX_CPU_ISA below them), which KernelOptions::bf16_compute needs.
bool CpuHasBf16Compute();
// Whether the CPU backend has oneDNN's Winograd convolution kernels (AVX-512; false under
// ONEDNN_MAX_CPU_ISA below it), which KernelOptions::conv_algorithm needs.
bool CpuHasWinogradConv();

}  // namespace gpuhive
