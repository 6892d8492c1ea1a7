// Small helpers shared by the math_* kernel files (not used outside them).
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <type_traits>
#include <utility>

#include "gpuhive/kernel.h"
#include "kernels/cpu/loops/common.h"

namespace gpuhive::cpu::math {

using loops::BFloat16;
using loops::ComputeT;
using loops::ConvertTo;
using loops::Float16;
using loops::TypeTag;

// A factory that constructs K(node, args...) and calls its Init(node) (attribute parsing, which may
// fail with a Status). Kernels copy what they need from the node: it may not outlive them.
template <typename K, typename... Args>
KernelFactory MakeFactory(Args... args) {
  return [=](const ir::Node& node) -> StatusOr<std::unique_ptr<Kernel>> {
    auto k = std::make_unique<K>(node, args...);
    RETURN_IF_ERROR(k->Init(node));
    return std::unique_ptr<Kernel>(std::move(k));
  };
}

// Integer arithmetic that wraps (two's complement) instead of overflowing, so extreme inputs are
// defined behaviour (and quiet under UBSan); floats pass through unchanged.
template <typename C>
using WrapT = std::conditional_t<(sizeof(C) < 4), uint32_t, std::make_unsigned_t<C>>;
template <typename C>
C WrapAdd(C a, C b) {
  if constexpr (std::is_integral_v<C>) return static_cast<C>(static_cast<WrapT<C>>(a) + static_cast<WrapT<C>>(b));
  else return a + b;
}
template <typename C>
C WrapSub(C a, C b) {
  if constexpr (std::is_integral_v<C>) return static_cast<C>(static_cast<WrapT<C>>(a) - static_cast<WrapT<C>>(b));
  else return a - b;
}
template <typename C>
C WrapMul(C a, C b) {
  if constexpr (std::is_integral_v<C>) return static_cast<C>(static_cast<WrapT<C>>(a) * static_cast<WrapT<C>>(b));
  else return a * b;
}
template <typename C>
C WrapNeg(C a) {
  return WrapSub<C>(C(0), a);
}

// v rounded half to even and saturated to the 8-bit type Q (uint8 / int8); NaN becomes 0. What
// QuantizeLinear and the QLinear* operators do to their results.
template <typename Q>
Q SaturateRound(float v) {
  static_assert(sizeof(Q) == 1, "8-bit quantized types only (float cannot hold wider limits exactly)");
  float r = std::nearbyint(v);
  r = std::max(r, static_cast<float>(std::numeric_limits<Q>::lowest()));
  r = std::min(r, static_cast<float>(std::numeric_limits<Q>::max()));
  if (std::isnan(r)) r = 0.f;
  return static_cast<Q>(r);
}

// Requires input i to be present.
inline Status RequireInput(const PrepareContext& ctx, size_t i) {
  if (!ctx.has_input(i)) {
    return InvalidArgument("{}: required input {} is missing", ctx.node().Describe(), i);
  }
  return Status::OK();
}

// The opset-13 style "axis" of softmax-like ops and the older flatten-at-axis semantics both reduce
// to [outer, axis_dim, inner] views of a plain tensor.
struct AxisView {
  int64_t outer = 1, dim = 1, inner = 1;
};

inline AxisView MakeAxisView(const Shape& shape, int64_t axis) {
  AxisView v;
  v.outer = loops::DimProduct(shape, 0, static_cast<size_t>(axis));
  v.dim = axis < static_cast<int64_t>(shape.size()) ? shape[axis] : 1;
  v.inner = loops::DimProduct(shape, static_cast<size_t>(axis) + 1, shape.size());
  return v;
}

}  // namespace gpuhive::cpu::math
