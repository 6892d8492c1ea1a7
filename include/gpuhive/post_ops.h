// Post-operations fused into a primary operator (Conv, ConvTranspose, MatMul, Gemm, an elementwise
// op), shared by the fusion passes (graph) and the kernels that execute them.
//
// A fused node carries the string-list attribute "post_ops", applied in order to the primary
// result. Each entry is "name" or "name:alpha" or "name:alpha:beta". Entries that take a tensor
// ("sum", "add", "mul", "sub", "div", "max", "min") consume the node's extra inputs, which follow the
// primary op's own inputs in the same order. "sum" adds a tensor of the output's exact shape;
// "add"/"mul"/... broadcast (numpy rules) their tensor against the output.
#pragma once

#include <string>
#include <vector>

#include "gpuhive/status.h"

namespace gpuhive {

struct PostOp {
  enum class Kind {
    kSum, kAdd, kMul, kSub, kDiv, kMax, kMin,                      // binary: consume an extra input
    kRelu, kLeakyRelu, kClip, kSigmoid, kTanh, kHardSwish,          // unary
    kHardSigmoid, kGeluErf, kGeluTanh, kSwish, kElu, kExp, kLog,
    kSqrt, kAbs, kNeg, kSquare, kLinear,                            // linear: alpha*x + beta
  };
  Kind kind;
  float alpha = 0.f;
  float beta = 0.f;

  bool is_binary() const { return kind <= Kind::kMin; }
};

StatusOr<PostOp> ParsePostOp(const std::string& text);
StatusOr<std::vector<PostOp>> ParsePostOps(const std::vector<std::string>& texts);
std::string FormatPostOp(const PostOp& op);
// Reference semantics of a unary post-op on one value (used by the plain-loop fallback and tests).
float ApplyUnaryPostOp(const PostOp& op, float x);

}  // namespace gpuhive
