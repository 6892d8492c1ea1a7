// Shared helpers of the plain-loop CPU kernels (math_* and tensor_* files): fp16/bf16 storage types,
// dtype dispatch, OpenMP ParallelFor, axis/int-tensor helpers and numpy broadcasting plans.
//
// Everything here is header-only and allocation-light so kernels can call it from Run (which is
// const and may run concurrently: nothing here keeps state).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "gpuhive/ir.h"
#include "gpuhive/kernel.h"
#include "gpuhive/status.h"
#include "gpuhive/tensor.h"

namespace gpuhive::cpu::loops {

// ---------------------------------------------------------------------------------------------
// 16-bit floating point storage types. Arithmetic happens in float: both convert implicitly to
// float and are constructed explicitly from any arithmetic value (round to nearest even).

inline uint32_t FloatBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float BitsToFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline float HalfBitsToFloat(uint16_t h) {
  constexpr uint32_t kShiftedExp = 0x7c00u << 13;
  uint32_t o = static_cast<uint32_t>(h & 0x7fff) << 13;
  uint32_t exp = kShiftedExp & o;
  o += (127u - 15u) << 23;
  if (exp == kShiftedExp) {
    o += (128u - 16u) << 23;  // Inf/NaN
  } else if (exp == 0) {      // zero / subnormal
    o += 1u << 23;
    o = FloatBits(BitsToFloat(o) - BitsToFloat(113u << 23));
  }
  o |= static_cast<uint32_t>(h & 0x8000) << 16;
  return BitsToFloat(o);
}

inline uint16_t FloatToHalfBits(float f) {
  uint32_t u = FloatBits(f);
  const uint32_t sign = u & 0x80000000u;
  u ^= sign;
  uint32_t o;
  if (u >= (127u + 16u) << 23) {  // overflow to Inf, or Inf/NaN
    o = u > (255u << 23) ? 0x7e00u : 0x7c00u;
  } else if (u < (113u << 23)) {  // subnormal or zero: let float addition round
    const uint32_t magic = ((127u - 15u) + (23u - 10u) + 1u) << 23;
    o = FloatBits(BitsToFloat(u) + BitsToFloat(magic)) - magic;
  } else {
    uint32_t mant_odd = (u >> 13) & 1u;
    u += ((15u - 127u) << 23) + 0xfffu;
    u += mant_odd;
    o = u >> 13;
  }
  return static_cast<uint16_t>(o | (sign >> 16));
}

inline float BFloat16BitsToFloat(uint16_t b) { return BitsToFloat(static_cast<uint32_t>(b) << 16); }

inline uint16_t FloatToBFloat16Bits(float f) {
  uint32_t u = FloatBits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

struct Float16 {
  uint16_t bits = 0;
  Float16() = default;
  template <typename U, typename = std::enable_if_t<std::is_arithmetic_v<U>>>
  explicit Float16(U v) : bits(FloatToHalfBits(static_cast<float>(v))) {}
  static Float16 FromBits(uint16_t b) {
    Float16 h;
    h.bits = b;
    return h;
  }
  operator float() const { return HalfBitsToFloat(bits); }  // NOLINT: implicit by design
};

struct BFloat16 {
  uint16_t bits = 0;
  BFloat16() = default;
  template <typename U, typename = std::enable_if_t<std::is_arithmetic_v<U>>>
  explicit BFloat16(U v) : bits(FloatToBFloat16Bits(static_cast<float>(v))) {}
  static BFloat16 FromBits(uint16_t b) {
    BFloat16 h;
    h.bits = b;
    return h;
  }
  operator float() const { return BFloat16BitsToFloat(bits); }  // NOLINT: implicit by design
};
static_assert(sizeof(Float16) == 2 && sizeof(BFloat16) == 2 && sizeof(bool) == 1);

template <typename T>
inline constexpr bool kIsHalf = std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16>;
template <typename T>
inline constexpr bool kIsFloat = std::is_floating_point_v<T> || kIsHalf<T>;
template <typename T>
inline constexpr bool kIsInteger = std::is_integral_v<T> && !std::is_same_v<T, bool>;

// The type arithmetic is done in: float for the 16-bit floats, T otherwise.
template <typename T>
using ComputeT = std::conditional_t<kIsHalf<T>, float, T>;

// Converts any supported element value to T (half types round to nearest even).
template <typename T, typename U>
inline T ConvertTo(U v) {
  if constexpr (kIsHalf<T>) {
    return T(static_cast<float>(v));
  } else if constexpr (std::is_same_v<T, bool>) {
    if constexpr (kIsHalf<U>) return static_cast<float>(v) != 0.f;
    else return v != U(0);
  } else {
    return static_cast<T>(static_cast<ComputeT<U>>(v));
  }
}

// The DataType enumerator for a C++ element type.
template <typename T>
constexpr DataType DataTypeOf() {
  if constexpr (std::is_same_v<T, float>) return DataType::kFloat32;
  else if constexpr (std::is_same_v<T, double>) return DataType::kFloat64;
  else if constexpr (std::is_same_v<T, Float16>) return DataType::kFloat16;
  else if constexpr (std::is_same_v<T, BFloat16>) return DataType::kBFloat16;
  else if constexpr (std::is_same_v<T, int8_t>) return DataType::kInt8;
  else if constexpr (std::is_same_v<T, int16_t>) return DataType::kInt16;
  else if constexpr (std::is_same_v<T, int32_t>) return DataType::kInt32;
  else if constexpr (std::is_same_v<T, int64_t>) return DataType::kInt64;
  else if constexpr (std::is_same_v<T, uint8_t>) return DataType::kUint8;
  else if constexpr (std::is_same_v<T, uint16_t>) return DataType::kUint16;
  else if constexpr (std::is_same_v<T, uint32_t>) return DataType::kUint32;
  else if constexpr (std::is_same_v<T, uint64_t>) return DataType::kUint64;
  else if constexpr (std::is_same_v<T, bool>) return DataType::kBool;
  else return DataType::kUndefined;
}

// ---------------------------------------------------------------------------------------------
// Dtype dispatch. `f` is a generic lambda taking a TypeTag<T>; it is instantiated for every type
// of the set and called with the one matching `dtype`. Types outside the set give kUnimplemented
// naming `what` (the operator) and the dtype.
//
//   return VisitFloat(dtype, "Sqrt", [&](auto tag) -> Status {
//     using T = typename decltype(tag)::type; ... return Status::OK(); });

template <typename T>
struct TypeTag {
  using type = T;
};

// Bit flags of type sets.
enum TypeSet : unsigned {
  kSetFloat = 1u << 0,     // float, double, float16, bfloat16
  kSetSigned = 1u << 1,    // int8..int64
  kSetUnsigned = 1u << 2,  // uint8..uint64
  kSetBool = 1u << 3,
  kSetInteger = kSetSigned | kSetUnsigned,
  kSetNumeric = kSetFloat | kSetInteger,
  kSetAll = kSetNumeric | kSetBool,
};

inline Status UnsupportedType(std::string_view what, DataType dtype) {
  return Unimplemented("{}: element type {} is not supported", what, DataTypeName(dtype));
}

template <unsigned kSet, typename F>
Status VisitTypes(DataType dtype, std::string_view what, F&& f) {
  switch (dtype) {
#define GPUHIVE_VISIT_CASE(SET, ENUM, TYPE)                  \
  case DataType::ENUM:                                       \
    if constexpr ((kSet & (SET)) != 0) return f(TypeTag<TYPE>{}); \
    break;
    GPUHIVE_VISIT_CASE(kSetFloat, kFloat32, float)
    GPUHIVE_VISIT_CASE(kSetFloat, kFloat64, double)
    GPUHIVE_VISIT_CASE(kSetFloat, kFloat16, Float16)
    GPUHIVE_VISIT_CASE(kSetFloat, kBFloat16, BFloat16)
    GPUHIVE_VISIT_CASE(kSetSigned, kInt8, int8_t)
    GPUHIVE_VISIT_CASE(kSetSigned, kInt16, int16_t)
    GPUHIVE_VISIT_CASE(kSetSigned, kInt32, int32_t)
    GPUHIVE_VISIT_CASE(kSetSigned, kInt64, int64_t)
    GPUHIVE_VISIT_CASE(kSetUnsigned, kUint8, uint8_t)
    GPUHIVE_VISIT_CASE(kSetUnsigned, kUint16, uint16_t)
    GPUHIVE_VISIT_CASE(kSetUnsigned, kUint32, uint32_t)
    GPUHIVE_VISIT_CASE(kSetUnsigned, kUint64, uint64_t)
    GPUHIVE_VISIT_CASE(kSetBool, kBool, bool)
#undef GPUHIVE_VISIT_CASE
    default:
      break;
  }
  return UnsupportedType(what, dtype);
}

template <typename F>
Status VisitFloat(DataType dtype, std::string_view what, F&& f) {
  return VisitTypes<kSetFloat>(dtype, what, std::forward<F>(f));
}
template <typename F>
Status VisitNumeric(DataType dtype, std::string_view what, F&& f) {
  return VisitTypes<kSetNumeric>(dtype, what, std::forward<F>(f));
}
template <typename F>
Status VisitAll(DataType dtype, std::string_view what, F&& f) {
  return VisitTypes<kSetAll>(dtype, what, std::forward<F>(f));
}

// For ops that only move bytes (Transpose, Gather, Concat, ...): dispatches on the element size
// with an unsigned integer type of that size (uint8_t, uint16_t, uint32_t, uint64_t).
template <typename F>
Status VisitBySize(DataType dtype, std::string_view what, F&& f) {
  if (!IsSupportedDataType(dtype)) return UnsupportedType(what, dtype);
  switch (DataTypeSize(dtype)) {
    case 1: return f(TypeTag<uint8_t>{});
    case 2: return f(TypeTag<uint16_t>{});
    case 4: return f(TypeTag<uint32_t>{});
    case 8: return f(TypeTag<uint64_t>{});
    default: return UnsupportedType(what, dtype);
  }
}

// ---------------------------------------------------------------------------------------------
// Parallel loops. Work below kParallelThreshold units runs on the calling thread.

inline constexpr int64_t kParallelThreshold = 32768;

// Calls f(begin, end) over disjoint ranges covering [0, n). `cost` is the work per item (in
// element-operations) so that few expensive items (rows of a reduction) still parallelize.
template <typename F>
void ParallelFor(int64_t n, int num_threads, int64_t cost, F&& f) {
  if (n <= 0) return;
  const int64_t work = n * std::max<int64_t>(cost, 1);
  int threads = std::max(1, num_threads);
  if (threads > 1) {
    threads = static_cast<int>(std::min<int64_t>(threads, std::max<int64_t>(1, work / kParallelThreshold)));
    threads = static_cast<int>(std::min<int64_t>(threads, n));
  }
  if (threads <= 1) {
    f(int64_t{0}, n);
    return;
  }
  const int64_t chunk = (n + threads - 1) / threads;
#pragma omp parallel for num_threads(threads) schedule(static, 1)
  for (int t = 0; t < threads; ++t) {
    const int64_t b = t * chunk;
    const int64_t e = std::min(n, b + chunk);
    if (b < e) f(b, e);
  }
}

template <typename F>
void ParallelFor(int64_t n, int num_threads, F&& f) {
  ParallelFor(n, num_threads, 1, std::forward<F>(f));
}

// ---------------------------------------------------------------------------------------------
// Axes and integer tensors.

// Maps axis in [-rank, rank) to [0, rank); kInvalidArgument otherwise.
inline StatusOr<int64_t> NormalizeAxis(int64_t axis, int64_t rank, std::string_view what = "axis") {
  if (axis < -rank || axis >= std::max<int64_t>(rank, 1)) {
    return InvalidArgument("{} {} is out of range for rank {}", what, axis, rank);
  }
  return axis < 0 ? axis + rank : axis;
}

// The values of an int32/int64 (or other integer) tensor as int64.
inline StatusOr<std::vector<int64_t>> ReadInts(const TensorView& t) {
  std::vector<int64_t> out(static_cast<size_t>(t.num_elements()));
  Status st = VisitTypes<kSetInteger>(t.dtype, "integer input", [&](auto tag) -> Status {
    using T = typename decltype(tag)::type;
    const T* p = static_cast<const T*>(t.data);
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<int64_t>(p[i]);
    return Status::OK();
  });
  if (!st.ok()) return st;
  return out;
}
inline StatusOr<std::vector<int64_t>> ReadInts(const Tensor& t) { return ReadInts(t.view()); }

// Row-major strides in elements.
inline std::vector<int64_t> ContiguousStrides(const Shape& shape) {
  std::vector<int64_t> s(shape.size(), 1);
  for (int64_t i = static_cast<int64_t>(shape.size()) - 2; i >= 0; --i) s[i] = s[i + 1] * shape[i + 1];
  return s;
}

// Product of shape[begin, end).
inline int64_t DimProduct(const Shape& shape, size_t begin, size_t end) {
  int64_t p = 1;
  for (size_t i = begin; i < end && i < shape.size(); ++i) p *= shape[i];
  return p;
}

// ---------------------------------------------------------------------------------------------
// Numpy broadcasting.

// The broadcast shape of `shapes`; kInvalidArgument naming `what` when they are incompatible.
inline StatusOr<Shape> BroadcastShapes(const std::vector<Shape>& shapes, std::string_view what) {
  size_t rank = 0;
  for (const Shape& s : shapes) rank = std::max(rank, s.size());
  Shape out(rank, 1);
  for (size_t k = 0; k < shapes.size(); ++k) {
    const Shape& s = shapes[k];
    for (size_t i = 0; i < s.size(); ++i) {
      int64_t& o = out[rank - s.size() + i];
      int64_t d = s[i];
      if (d == o || d == 1) continue;
      if (o == 1) {
        o = d;
        continue;
      }
      std::string all;
      for (const Shape& x : shapes) all += (all.empty() ? "" : " vs ") + ShapeToString(x);
      return InvalidArgument("{}: shapes {} cannot be broadcast together", what, all);
    }
  }
  return out;
}

// A loop plan over a broadcast output: the dims are collapsed where every operand is contiguous
// (or broadcast) across them, leaving an innermost run of `inner` elements in which each operand
// advances by inner_stride[k] (1 or 0) and outer dims walked per run.
struct BroadcastPlan {
  Shape out_shape;
  int64_t inner = 1;
  int64_t outer = 1;
  std::vector<int64_t> outer_dims;                  // collapsed outer dims, row-major
  std::vector<std::vector<int64_t>> outer_strides;  // [operand][outer dim], in elements
  std::vector<int64_t> inner_stride;                // [operand]: 0 or 1

  size_t num_operands() const { return inner_stride.size(); }
  int64_t total() const { return inner * outer; }

  // Element offsets of each operand at the start of outer run `o`.
  void RunOffsets(int64_t o, int64_t* offsets) const {
    const size_t n = num_operands();
    for (size_t k = 0; k < n; ++k) offsets[k] = 0;
    for (int64_t d = static_cast<int64_t>(outer_dims.size()) - 1; d >= 0 && o > 0; --d) {
      const int64_t dim = outer_dims[d];
      const int64_t idx = o % dim;
      o /= dim;
      for (size_t k = 0; k < n; ++k) offsets[k] += idx * outer_strides[k][d];
    }
  }
};

inline StatusOr<BroadcastPlan> MakeBroadcastPlan(const std::vector<Shape>& shapes,
                                                 std::string_view what) {
  BroadcastPlan plan;
  ASSIGN_OR_RETURN(plan.out_shape, BroadcastShapes(shapes, what));
  const size_t rank = plan.out_shape.size();
  const size_t n = shapes.size();
  // Per operand strides aligned to the output rank (0 where broadcast).
  std::vector<std::vector<int64_t>> strides(n, std::vector<int64_t>(rank, 0));
  for (size_t k = 0; k < n; ++k) {
    const Shape& s = shapes[k];
    int64_t st = 1;
    for (int64_t i = static_cast<int64_t>(s.size()) - 1; i >= 0; --i) {
      size_t oi = rank - s.size() + static_cast<size_t>(i);
      strides[k][oi] = (s[i] == 1 && plan.out_shape[oi] != 1) ? 0 : st;
      st *= s[i];
    }
  }
  // Collapse: drop size-1 dims, merge neighbours where all operands are jointly contiguous.
  std::vector<int64_t> dims;
  std::vector<std::vector<int64_t>> cs(n);
  for (size_t i = 0; i < rank; ++i) {
    int64_t d = plan.out_shape[i];
    if (d == 1) continue;
    bool merge = !dims.empty();
    for (size_t k = 0; k < n && merge; ++k) {
      merge = cs[k].back() == strides[k][i] * d;
    }
    if (merge) {
      dims.back() *= d;
      for (size_t k = 0; k < n; ++k) cs[k].back() = strides[k][i];
    } else {
      dims.push_back(d);
      for (size_t k = 0; k < n; ++k) cs[k].push_back(strides[k][i]);
    }
  }
  plan.inner_stride.assign(n, 1);
  if (!dims.empty()) {
    // The innermost collapsed dim is the run if every operand has stride 0 or 1 there.
    bool unit = true;
    for (size_t k = 0; k < n; ++k) unit = unit && (cs[k].back() == 0 || cs[k].back() == 1);
    if (unit) {
      plan.inner = dims.back();
      for (size_t k = 0; k < n; ++k) {
        plan.inner_stride[k] = cs[k].back();
        cs[k].pop_back();
      }
      dims.pop_back();
    }
  }
  plan.outer_dims = dims;
  plan.outer_strides = cs;
  plan.outer = 1;
  for (int64_t d : dims) plan.outer *= d;
  if (NumElements(plan.out_shape) == 0) plan.outer = 0;
  return plan;
}

// Walks the plan in parallel: f(const int64_t* operand_offsets, int64_t out_offset, int64_t len)
// is called for contiguous output pieces; operand k's elements are at offsets[k] + j *
// plan.inner_stride[k] for j in [0, len).
template <typename F>
void ForEachBroadcastRun(const BroadcastPlan& plan, int num_threads, F&& f) {
  const int64_t total = plan.total();
  if (total <= 0) return;
  const size_t n = plan.num_operands();
  ParallelFor(total, num_threads, [&](int64_t begin, int64_t end) {
    int64_t offsets[8];
    int64_t run_off[8];
    int64_t pos = begin;
    while (pos < end) {
      const int64_t o = pos / plan.inner;
      const int64_t j = pos % plan.inner;
      const int64_t len = std::min(plan.inner - j, end - pos);
      plan.RunOffsets(o, offsets);
      for (size_t k = 0; k < n; ++k) run_off[k] = offsets[k] + j * plan.inner_stride[k];
      f(static_cast<const int64_t*>(run_off), pos, len);
      pos += len;
    }
  });
}

}  // namespace gpuhive::cpu::loops
