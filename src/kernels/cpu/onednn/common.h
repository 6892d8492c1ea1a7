// Shared plumbing of the oneDNN-backed CPU kernels: the engine and per-thread stream, error
// translation (dnnl::error never leaves a kernel), memory descriptors for gpuhive layouts, fused
// post-op chains with a standalone fallback, persistent weight buffers and workspace carving.
#pragma once

#include <oneapi/dnnl/dnnl.hpp>

#include <cstddef>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "gpuhive/kernel.h"
#include "gpuhive/post_ops.h"
#include "gpuhive/status.h"
#include "gpuhive/tensor.h"

namespace gpuhive::cpu::onednn {

using dnnl::memory;
using Tag = memory::format_tag;
using Dims = memory::dims;
using ArgMap = std::unordered_map<int, memory>;

// The process-wide CPU engine (index 0) and the calling thread's in-order stream.
const dnnl::engine& Engine();
dnnl::stream& ThreadStream();

// Makes the calling thread's OpenMP team size match the run's thread budget (cheap when unchanged).
void SetThreads(int num_threads);

// Sets the calling thread's OpenMP team size for a scope and restores the previous one after it,
// for kernels that run part of their work on fewer threads than the run's budget.
class ThreadScope {
 public:
  explicit ThreadScope(int num_threads);
  ~ThreadScope() { SetThreads(previous_); }
  ThreadScope(const ThreadScope&) = delete;
  ThreadScope& operator=(const ThreadScope&) = delete;

 private:
  int previous_;
};

// Runs `f` (returning Status) and turns oneDNN and standard exceptions into a Status naming `what`.
template <typename F>
Status Guard(const std::string& what, F&& f) {
  try {
    return f();
  } catch (const dnnl::error& e) {
    if (e.status == dnnl_unimplemented) {
      return Unimplemented("{}: oneDNN has no implementation for this configuration ({})", what,
                           e.what());
    }
    return Internal("{}: oneDNN error {}: {}", what, static_cast<int>(e.status), e.what());
  } catch (const std::exception& e) {
    return Internal("{}: {}", what, e.what());
  }
}

Dims ToDims(const Shape& shape);
// Plain row-major tag for a rank (1..6).
Tag PlainTag(size_t rank);
// Channel-blocked tag (nCw8c / nChw16c / nCdhw16c ...) for a rank in 3..5; undef otherwise.
Tag BlockedTag(size_t rank, int block);
// Channels-last tag (nwc / nhwc / ndhwc) for a rank in 3..5; undef otherwise.
Tag ChannelsLastTag(size_t rank);
// The channel block oneDNN's JIT kernels want on this CPU, from oneDNN's effective ISA (which
// honours ONEDNN_MAX_CPU_ISA): 16 on AVX-512, 8 below. Binary, pooling and eltwise primitives on
// the other block size run on oneDNN's reference implementations.
int PreferredBlock();
Layout PreferredBlockedLayout();
// Whether oneDNN's effective ISA has an int8 dot product (AVX512-VNNI, AVX-VNNI or later). Below it
// oneDNN multiplies uint8 by int8 with vpmaddubsw, whose int16 pair sums saturate unless the
// weights fit 7 bits ([-64, 63]).
bool HasInt8DotProduct();
// oneDNN's effective ISA has BF16 dot products (avx512_core_bf16 or AMX).
bool HasBf16DotProduct();
// oneDNN 2.6's Winograd convolutions (jit_wino_4x3, jit_fp32_wino_2x3) need AVX-512.
bool HasWinogradConv();
// The md of an activation with the given logical shape and gpuhive layout (f32 unless `type`).
StatusOr<memory::desc> MdFor(const Shape& shape, Layout layout,
                             memory::data_type type = memory::data_type::f32);
// The gpuhive layout of an md when it is exactly plain / nC..8c / nC..16c; false otherwise.
bool LayoutOf(const memory::desc& md, Layout* layout);
// Row-major md with explicit dims (f32).
inline memory::desc PlainMd(const Dims& dims) {
  return memory::desc(dims, memory::data_type::f32, PlainTag(dims.size()));
}

// Workspace carving: segments 64-byte aligned, offsets into RunContext::workspace().
class WorkspacePlan {
 public:
  size_t Add(size_t bytes) {
    size_t off = total_;
    total_ += (bytes + 63) / 64 * 64;
    return off;
  }
  size_t total() const { return total_; }

 private:
  size_t total_ = 0;
};
inline void* WsPtr(const RunContext& ctx, size_t offset) {
  return static_cast<char*>(ctx.workspace()) + offset;
}

// A primitive attribute in user-scratchpad mode.
dnnl::primitive_attr ScratchAttr();

// Whether oneDNN picked its reference implementation ("ref:any"): correct for every format, but one
// to three orders of magnitude slower than its JIT or GEMM implementations.
bool IsReferenceImpl(const dnnl::primitive_desc_base& pd);

// Reorders constant host data (plain md `src_md`) into `dst_md` inside a new persistent buffer.
StatusOr<Buffer> ReorderToPersistent(const PrepareContext& ctx, const memory::desc& src_md,
                                     const void* src, const memory::desc& dst_md);

// Packed copies of constant weights, keyed by the graph value they were made from and the source
// layout (e.g. Gemm's transB). One copy per weight, not per plan: every plan of a model (one per
// batch size) prepares its own kernel; the first kernel for a weight packs it and publishes the
// copy, later kernels whose primitive takes that format share it. Entries are weak: a copy lives as
// long as a kernel uses it, and kernels die with their plans, before the graph whose values key
// them, so an expired entry is never mistaken for a live value reusing the address. Thread safe.
class PackedWeights {
 public:
  struct Packed {
    memory::desc md;
    Buffer buffer;
  };
  static PackedWeights& Get();
  // Live copies of `value` made from `src_md` (with `scale`: Gemm's beta for C), newest first.
  std::vector<std::shared_ptr<const Packed>> Find(const ir::Value* value, const memory::desc& src_md,
                                                  float scale = 1.f);
  void Publish(const ir::Value* value, const memory::desc& src_md, const std::shared_ptr<const Packed>& packed,
               float scale = 1.f);
  // Any live unscaled copy of `value` whose logical dims are `dims` (to rebuild the plain value).
  std::shared_ptr<const Packed> FindAny(const ir::Value* value, const Dims& dims);

 private:
  struct Entry {
    memory::desc src_md;
    float scale = 1.f;
    std::weak_ptr<const Packed> packed;
  };
  void Sweep();
  std::mutex mu_;
  std::unordered_map<const ir::Value*, std::vector<Entry>> entries_;
  uint64_t inserts_ = 0;
};

// A constant input's plain value for packing. The runtime frees a constant's plain storage once
// every reader holds its own copy (Kernel::CopyOfInput), so a later plan's kernel may see the
// value with null data: the plain value (in `user_md`) is then rebuilt from a live packed copy into
// `scratch` (a temporary host buffer). kInternal when neither exists.
StatusOr<const void*> PlainConstant(const ir::Value* value, const Tensor& constant, const memory::desc& user_md,
                                    Buffer* scratch);

// Packs constant `constant` (graph value `value`, plain layout `user_md`) into `packed_md`, sharing
// a live copy of another plan when one has that format.
StatusOr<std::shared_ptr<const PackedWeights::Packed>> SharedPack(const PrepareContext& ctx, const ir::Value* value,
                                                                  const Tensor& constant,
                                                                  const memory::desc& user_md,
                                                                  const memory::desc& packed_md);

// Node attribute helpers with ONNX defaults.
std::vector<int64_t> IntsOr(const ir::Node& node, const std::string& name, std::vector<int64_t> def);

// A post-op chain applied to a primary op's destination. Binary entries read node inputs starting
// at `first_extra`; "sum" adds a tensor of dst's exact shape (any layout), the other binaries
// broadcast a plain tensor. Prepare tries the fused form (oneDNN post-ops); when oneDNN rejects it,
// the primary op runs without post-ops and the chain runs as standalone eltwise/binary primitives.
class PostOpChain {
 public:
  // Parses attribute "post_ops" (missing = empty), skipping its first `skip` entries, and validates
  // the extras against dst's shape. With fuse_sum false every "sum" becomes a binary add (needed
  // when dst may alias the primary input).
  Status Init(const PrepareContext& ctx, size_t first_extra, const Shape& dst_shape, size_t skip = 0,
              bool fuse_sum = true);
  bool empty() const { return steps_.empty(); }
  // Whether the chain can be fused: oneDNN 2.6 JIT kernels miscompute chains that repeat an eltwise
  // algorithm with different parameters (e.g. linear(-1), ..., linear(0.5, 0.25)).
  bool fusable() const;
  // Puts a unary op in front of the chain (after Init).
  void PrependUnary(const PostOp& op);
  // Puts a broadcasting binary op in front of the chain: its tensor is node input `input` of shape
  // `shape`, or `constant` (kept alive by the caller) when non-null.
  void PrependBinary(const PostOp& op, int input, const Shape& shape, const void* constant = nullptr);
  // A per-output-column bias at the front of the chain (an Add whose operand holds `n` values along
  // the output's last dim only), taken out of the chain so that the caller passes it to its
  // primitive as DNNL_ARG_BIAS: a broadcast binary post-op costs brgemm matmuls 5-8 % on wide
  // outputs (BERT's 128x768x3072: 1.99 vs 1.84 ms). `input` is the node input that holds it, or
  // `constant` the kernel's own copy. Call after Init and the Prepend* calls.
  struct Bias {
    int input = -1;
    const void* constant = nullptr;
    Shape shape;  // the operand's shape (PrependBinary puts it back)
  };
  std::optional<Bias> TakeLeadingBias(int64_t n);
  bool has_sum() const;
  size_t sum_input() const;  // node input index of the first "sum" entry (when has_sum())
  // Appends the fused chain to `po`. dst_dims may differ from the logical shape (flattened matmul);
  // extras are then reshaped with the same rule (see FlattenDims).
  void AppendFused(dnnl::post_ops& po, const Dims& dst_dims) const;
  // Standalone fallback on a destination md (in place). Returns the scratchpad size needed.
  size_t PrepareStandalone(const memory::desc& dst_md);
  // Fused run: adds binary args to `args`; before execution the caller copies the sum input into
  // dst with CopySumInput.
  void AddFusedArgs(const RunContext& ctx, ArgMap& args, const Dims& dst_dims) const;
  Status CopySumInput(const RunContext& ctx, const memory& dst, void* scratch) const;
  void RunStandalone(const RunContext& ctx, const memory& dst, void* scratch) const;
  // Whether every extra can be viewed with dst flattened to [prod(leading), last].
  bool CanFlattenTo2D(const Shape& dst_shape) const;
  // Binary operands that are as large as the output but plain while the output is `dst_layout`
  // (blocked): oneDNN runs a binary whose formats differ on its reference implementation, so
  // such operands are reordered into `dst_layout` in the workspace first (StageExtras). Returns
  // the staging bytes; SetStagingBase says where in the workspace they start. Call after Init.
  size_t StageFullSizeExtras(Layout dst_layout);
  void SetStagingBase(size_t offset) { staging_base_ = offset; }
  void StageExtras(const RunContext& ctx) const;
  // oneDNN's implementation names of the standalone primitives (after PrepareStandalone).
  const std::vector<std::string>& standalone_implementations() const { return standalone_impls_; }
  const std::vector<PostOp>& ops() const { return ops_; }

 private:
  struct Step {
    PostOp op;
    int input = -1;  // node input index for binary entries
    Shape extra_shape;
    Layout extra_layout = Layout::kPlain;
    bool fused_sum = false;  // the one "sum" done with append_sum
    const void* constant = nullptr;  // data owned by the kernel instead of a node input
    // A full-size plain operand of a blocked dst, reordered into the dst's layout at this
    // workspace offset before the chain runs (SIZE_MAX: read in place).
    size_t staged_at = SIZE_MAX;
    memory::desc staged_src, staged_dst;  // plain operand -> dst layout, built with `stage`
    dnnl::reorder stage;
  };
  const void* ExtraData(const RunContext& ctx, const Step& s) const {
    if (s.staged_at != SIZE_MAX) return static_cast<const char*>(ctx.workspace()) + staging_base_ + s.staged_at;
    return s.constant != nullptr ? s.constant : ctx.input(s.input).data;
  }
  memory::desc ExtraMd(const Step& s, const Dims& dst_dims) const;

  std::vector<PostOp> ops_;
  std::vector<Step> steps_;
  Shape dst_shape_;
  memory::desc dst_md_;  // standalone mode
  std::vector<dnnl::primitive> standalone_;
  std::vector<memory::desc> standalone_src1_;
  std::vector<memory::desc> standalone_scratch_;
  std::vector<std::string> standalone_impls_;
  size_t staging_base_ = 0;
};

// Appends the oneDNN eltwise entries equivalent to a unary post-op.
void AppendEltwise(dnnl::post_ops& po, const PostOp& op);
// (alg, alpha, beta) steps of a unary post-op (hardsigmoid needs two).
struct EltwiseSpec {
  dnnl::algorithm alg;
  float alpha, beta;
};
std::vector<EltwiseSpec> EltwiseSpecs(const PostOp& op);
dnnl::algorithm BinaryAlg(PostOp::Kind kind);

// Numpy broadcast of `shape` against `target` rank (left-padded with 1).
Dims BroadcastDims(const Shape& shape, size_t rank);

}  // namespace gpuhive::cpu::onednn
