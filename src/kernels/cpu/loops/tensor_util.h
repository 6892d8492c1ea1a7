// Private helpers of the shape / indexing / data-movement loop kernels (tensor_*.cc): element-size
// dispatch, reading small integer inputs, axis normalization, a strided copy and a parallel loop.
// Nothing here is used outside src/kernels/cpu/loops/tensor_*.cc.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "gpuhive/kernel.h"
#include "gpuhive/status.h"
#include "gpuhive/tensor.h"
#include "kernels/cpu/loops/common.h"

namespace gpuhive::cpu::tensor {

// Calls f(T{}) with an unsigned integer type of the element size: the data-movement kernels move
// raw elements and never look at their values.
template <typename F>
auto DispatchBySize(size_t elem_size, F&& f) {
  switch (elem_size) {
    case 1: return f(uint8_t{});
    case 2: return f(uint16_t{});
    case 4: return f(uint32_t{});
    default: return f(uint64_t{});
  }
}

// Runs f(begin, end) over [0, n) on up to `threads` OpenMP threads (common.h's ParallelFor).
// `work_per_item` is a rough element count per item; small jobs stay on the calling thread.
template <typename F>
void ParallelFor(int threads, int64_t n, int64_t work_per_item, F&& f) {
  loops::ParallelFor(n, threads, work_per_item, std::forward<F>(f));
}

inline bool IsIntegerType(DataType t) {
  switch (t) {
    case DataType::kInt8: case DataType::kUint8: case DataType::kInt16: case DataType::kUint16:
    case DataType::kInt32: case DataType::kUint32: case DataType::kInt64: case DataType::kUint64:
      return true;
    default: return false;
  }
}

// Reads element i of a numeric tensor as double (any supported dtype, fp16/bf16 included).
double ElementAsDouble(const void* data, DataType dtype, int64_t i);
// Writes v into element i, converting to dtype (integers round to nearest and saturate).
void StoreFromDouble(void* data, DataType dtype, int64_t i, double v);

inline float HalfToFloat(uint16_t h) { return loops::HalfBitsToFloat(h); }
inline uint16_t FloatToHalf(float f) { return loops::FloatToHalfBits(f); }
inline float BFloat16ToFloat(uint16_t b) { return loops::BFloat16BitsToFloat(b); }
inline uint16_t FloatToBFloat16(float f) { return loops::FloatToBFloat16Bits(f); }

// Integer values of an int32/int64 tensor (the "shape", "axes", "starts", "repeats" inputs).
StatusOr<std::vector<int64_t>> ReadInts(const TensorView& t, const char* what);
inline StatusOr<std::vector<int64_t>> ReadInts(const Tensor& t, const char* what) {
  return ReadInts(t.view(), what);
}
// Values of a float tensor (any floating dtype) as floats.
StatusOr<std::vector<float>> ReadFloats(const TensorView& t, const char* what);

// Maps axis in [-rank, rank) to [0, rank); kInvalidArgument otherwise.
StatusOr<int64_t> NormalizeAxis(int64_t axis, int64_t rank, const ir::Node& node);

// Row-major strides in elements.
Shape Strides(const Shape& shape);

// Copies a strided view into a contiguous output: out[i0..ik] = in[base + sum(i_d * stride_d)].
// Strides are in elements and may be zero (broadcast) or negative.
void StridedCopy(const void* in, int64_t base, const Shape& out_shape, const Shape& in_strides,
                 void* out, size_t elem_size, int threads);

// Permutes `in` (plain, shape in_shape) by perm into out. Fast paths: contiguous innermost runs
// are block copied; a moved innermost dim is copied in square tiles.
void TransposeCopy(const void* in, const Shape& in_shape, const std::vector<int64_t>& perm,
                   void* out, size_t elem_size, int threads);

// Copies bytes when the runtime did not alias output onto input.
inline void CopyIfNotAliased(const TensorView& in, const TensorView& out) {
  if (out.data != in.data && out.plain_bytes() > 0) std::memcpy(out.data, in.data, out.plain_bytes());
}

// A Kernel factory for a default-constructible kernel class.
template <typename K>
KernelFactory MakeFactory() {
  return [](const ir::Node&) -> StatusOr<std::unique_ptr<Kernel>> {
    return std::unique_ptr<Kernel>(std::make_unique<K>());
  };
}

}  // namespace gpuhive::cpu::tensor
