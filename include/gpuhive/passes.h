// Graph optimization passes over the IR (ir.h): dead-code and no-op elimination, constant folding,
// BatchNormalization folding, bias and post-op fusion. Fused nodes follow the conventions of
// post_ops.h and live in the "gpuhive" domain (opset 1):
//   gpuhive.FusedConv   inputs [X, W, B-or-missing, extras...], Conv attributes + "post_ops"
//   gpuhive.FusedMatMul inputs [A, B, extras...], MatMul semantics + "post_ops"
//   gpuhive.FusedGemm   inputs [A, B, C-or-missing, extras...], Gemm attributes + "post_ops"
//   gpuhive.Elementwise inputs [X, extras...], "post_ops" = the whole float32 chain applied to X
//   gpuhive.QConv       QLinearConv's inputs (y_scale/y_zero_point optional: float32 output; B float32
//                       or int32), Conv attributes + "relu"
//   gpuhive.QMatMul     the same inputs with W [K, N] (or [N, K] with "transB"), + "relu"
// Passes mutate the graph in place and recurse into subgraphs (If/Loop/Scan bodies). Each returns
// the number of rewrites it made (0: nothing changed) or an error for a malformed graph; a node a
// pass cannot handle is left as it is. Not thread safe on one model.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "gpuhive/ir.h"
#include "gpuhive/status.h"
#include "gpuhive/tensor.h"

namespace gpuhive {

// Executes one node on host tensors (the kernels layer provides it; graph sits below kernels).
// `inputs` has one entry per node input, nullptr for omitted optional inputs. Returns one tensor
// per node output slot (entries for omitted outputs are ignored).
using NodeEvaluator = std::function<StatusOr<std::vector<Tensor>>(
    const ir::Node&, const std::vector<const Tensor*>& inputs)>;

struct OptimizeOptions {
  // Null: only Shape/Size of values with fully static shapes are folded (no operator executes).
  NodeEvaluator evaluator;
  // A folded node whose outputs together exceed this stays in the graph.
  uint64_t max_folded_bytes = 64ull << 20;
  bool fuse = true;
  // Whether the backend implements a fused op ("gpuhive", "FusedConv"); null: assume yes.
  std::function<bool(const std::string& domain, const std::string& op_type)> supports;
};

// Runs the whole pipeline to a fixed point and leaves the graph topologically sorted with unused
// values removed. Safe to call again (e.g. after binding concrete input shapes).
Status OptimizeModel(ir::Model& model, const OptimizeOptions& options);

// Removes nodes none of whose outputs is used (by a node, a subgraph or as a graph output).
StatusOr<int> EliminateDeadNodes(ir::Graph& graph);
// Removes Identity, inference-mode Dropout with an unused mask, Cast to the same dtype and
// Reshape to the same static shape. Graph output names are preserved.
StatusOr<int> EliminateIdentity(ir::Graph& graph);
// Evaluates deterministic default-domain nodes whose inputs are all constant; Shape/Size of
// statically shaped values become constants without the evaluator.
StatusOr<int> FoldConstants(ir::Graph& graph, const OptimizeOptions& options);
// Folds float32 BatchNormalization (constant parameters) into a preceding Conv, Gemm, or 2-D MatMul
// with constant weights. A BN that follows anything else stays.
StatusOr<int> FoldBatchNorm(ir::Graph& graph);
// Conv followed by Add of a constant [C,1,1] / [1,C,1,1] (or scalar) tensor: into the Conv bias.
StatusOr<int> FuseConvAddBias(ir::Graph& graph);
// Conv / MatMul / Gemm followed by activations and binary ops -> gpuhive.Fused{Conv,MatMul,Gemm}.
// Scaled dot-product attention written as head transposes, MatMul, scaling, mask Add, Softmax,
// MatMul and the transpose back becomes gpuhive.Attention(q, k, v [, mask]) {scale} over the
// [batch, seq, heads, head_dim] tensors (when options.supports allows it).
StatusOr<int> FuseAttention(ir::Model& model, const OptimizeOptions& options);
StatusOr<int> FusePostOps(ir::Model& model, const OptimizeOptions& options);
// FP16 models computed in FP32: float16 initializers and tensor attributes become float32, each
// float16 graph input is cast to float32 where it enters and each float16 output is produced in
// float32 and cast back, intermediate values are float32 and the model's own casts to float16 cast
// to float32 instead. Inputs and outputs keep the model's types. Top-level graph only (subgraph
// values keep their types). Returns the number of rewrites.
StatusOr<int> ComputeFloat16InFloat32(ir::Model& model);
// QDQ convolutions (DequantizeLinear'd int8 x and W -> Conv [-> Relu] [-> QuantizeLinear]) ->
// gpuhive.QConv on the int8 operands, and MatMul / Gemm by constant weights likewise to
// gpuhive.QMatMul (see passes_quant.cc), when options.supports allows it. Runs
// before constant folding, which would otherwise turn the int8 weights into float32.
StatusOr<int> FuseQuantizedConv(ir::Model& model, const OptimizeOptions& options);
// A QuantizeLinear whose output only gpuhive.QConv nodes read, with the scale and zero point they
// read it with, is folded into them: they take its float32 input and quantize it in the reorder
// that makes it channels-last (kernels/cpu/onednn/qconv.cc). Runs after FusePostOps, which first
// folds a QuantizeLinear into the QConv producing its input where it can (then the int8 value
// passes between the two convolutions as it is).
StatusOr<int> FoldQuantizeIntoQConv(ir::Model& model, const OptimizeOptions& options);
// gpuhive.QConv `qconv` with a float32 output: a QuantizeLinear that is its output's only reader
// becomes its output quantization (y_scale, y_zero_point). Returns whether it did.
bool FoldQuantizeIntoQConvOutput(ir::Graph& g, ir::Node* qconv);
// The transB of a Gemm that is a plain product with bias (transA 0, alpha 1, and beta 1 when C is
// given), the form the int8 rewrites take (FuseQuantizedConv, quantize.h's QuantizeModel);
// nullopt for any other Gemm.
std::optional<int64_t> PlainGemmTransB(const ir::Node& gemm);
// Chains of float32 elementwise ops -> gpuhive.Elementwise.
StatusOr<int> FuseElementwiseChains(ir::Model& model, const OptimizeOptions& options);

}  // namespace gpuhive
