#include "gpuhive/post_ops.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <utility>

namespace gpuhive {
namespace {
struct KindName {
  PostOp::Kind kind;
  const char* name;
};
constexpr KindName kNames[] = {
    {PostOp::Kind::kSum, "sum"},         {PostOp::Kind::kAdd, "add"},
    {PostOp::Kind::kMul, "mul"},         {PostOp::Kind::kSub, "sub"},
    {PostOp::Kind::kDiv, "div"},         {PostOp::Kind::kMax, "max"},
    {PostOp::Kind::kMin, "min"},         {PostOp::Kind::kRelu, "relu"},
    {PostOp::Kind::kLeakyRelu, "leaky_relu"}, {PostOp::Kind::kClip, "clip"},
    {PostOp::Kind::kSigmoid, "sigmoid"}, {PostOp::Kind::kTanh, "tanh"},
    {PostOp::Kind::kHardSwish, "hardswish"}, {PostOp::Kind::kHardSigmoid, "hardsigmoid"},
    {PostOp::Kind::kGeluErf, "gelu_erf"}, {PostOp::Kind::kGeluTanh, "gelu_tanh"},
    {PostOp::Kind::kSwish, "swish"},     {PostOp::Kind::kElu, "elu"},
    {PostOp::Kind::kExp, "exp"},         {PostOp::Kind::kLog, "log"},
    {PostOp::Kind::kSqrt, "sqrt"},       {PostOp::Kind::kAbs, "abs"},
    {PostOp::Kind::kNeg, "neg"},         {PostOp::Kind::kSquare, "square"},
    {PostOp::Kind::kLinear, "linear"},
};
}  // namespace

StatusOr<PostOp> ParsePostOp(const std::string& text) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t colon = text.find(':', start);
    parts.push_back(text.substr(start, colon - start));
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  PostOp op{PostOp::Kind::kRelu};
  bool found = false;
  for (const auto& kn : kNames) {
    if (parts[0] == kn.name) {
      op.kind = kn.kind;
      found = true;
    }
  }
  if (!found) return InvalidArgument("unknown post-op '{}'", text);
  for (size_t i = 1; i < parts.size() && i <= 2; ++i) {
    char* end = nullptr;
    float v = std::strtof(parts[i].c_str(), &end);
    if (end == parts[i].c_str()) return InvalidArgument("bad post-op parameter in '{}'", text);
    (i == 1 ? op.alpha : op.beta) = v;
  }
  if (parts.size() > 3) return InvalidArgument("too many post-op parameters in '{}'", text);
  return op;
}

StatusOr<std::vector<PostOp>> ParsePostOps(const std::vector<std::string>& texts) {
  std::vector<PostOp> ops;
  for (const auto& t : texts) {
    ASSIGN_OR_RETURN(PostOp op, ParsePostOp(t));
    ops.push_back(op);
  }
  return ops;
}

std::string FormatPostOp(const PostOp& op) {
  std::string name = "?";
  for (const auto& kn : kNames) {
    if (kn.kind == op.kind) name = kn.name;
  }
  switch (op.kind) {
    case PostOp::Kind::kLeakyRelu:
    case PostOp::Kind::kElu:
      return fmt::format("{}:{}", name, op.alpha);
    case PostOp::Kind::kClip:
    case PostOp::Kind::kHardSigmoid:
    case PostOp::Kind::kLinear:
      return fmt::format("{}:{}:{}", name, op.alpha, op.beta);
    default:
      return name;
  }
}

float ApplyUnaryPostOp(const PostOp& op, float x) {
  switch (op.kind) {
    case PostOp::Kind::kRelu: return x > 0 ? x : 0;
    case PostOp::Kind::kLeakyRelu: return x >= 0 ? x : op.alpha * x;
    case PostOp::Kind::kClip: return std::min(std::max(x, op.alpha), op.beta);
    case PostOp::Kind::kSigmoid: return 1.f / (1.f + std::exp(-x));
    case PostOp::Kind::kTanh: return std::tanh(x);
    case PostOp::Kind::kHardSwish: return x * std::min(std::max(x / 6.f + 0.5f, 0.f), 1.f);
    case PostOp::Kind::kHardSigmoid: return std::min(std::max(op.alpha * x + op.beta, 0.f), 1.f);
    case PostOp::Kind::kGeluErf: return 0.5f * x * (1.f + std::erf(x / std::sqrt(2.f)));
    case PostOp::Kind::kGeluTanh:
      return 0.5f * x * (1.f + std::tanh(0.7978845608f * (x + 0.044715f * x * x * x)));
    case PostOp::Kind::kSwish: return x / (1.f + std::exp(-x));
    case PostOp::Kind::kElu: return x >= 0 ? x : op.alpha * (std::exp(x) - 1.f);
    case PostOp::Kind::kExp: return std::exp(x);
    case PostOp::Kind::kLog: return std::log(x);
    case PostOp::Kind::kSqrt: return std::sqrt(x);
    case PostOp::Kind::kAbs: return std::fabs(x);
    case PostOp::Kind::kNeg: return -x;
    case PostOp::Kind::kSquare: return x * x;
    case PostOp::Kind::kLinear: return op.alpha * x + op.beta;
    default: return x;  // binary kinds are not unary
  }
}

}  // namespace gpuhive
