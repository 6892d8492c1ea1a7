// Element types (numbered as ONNX TensorProto.DataType), shapes, layouts and a non-owning tensor
// view: the vocabulary every layer shares. Part of common: no memory, no device (the owning Tensor
// is in tensor.h, with the memory layer).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace gpuhive {

enum class DataType : int32_t {
  kUndefined = 0,
  kFloat32 = 1,
  kUint8 = 2,
  kInt8 = 3,
  kUint16 = 4,
  kInt16 = 5,
  kInt32 = 6,
  kInt64 = 7,
  kString = 8,  // recognised so it can be refused with a clear error; never allocated
  kBool = 9,
  kFloat16 = 10,
  kFloat64 = 11,
  kUint32 = 12,
  kUint64 = 13,
  kComplex64 = 14,
  kComplex128 = 15,
  kBFloat16 = 16,
};

// Bytes per element; 0 for kUndefined and kString.
size_t DataTypeSize(DataType t);
// ONNX spelling: "float", "int64", "float16", ...
std::string_view DataTypeName(DataType t);
// KServe v2 / Triton spelling: "FP32", "INT64", "BOOL", "BYTES", ...
std::string_view DataTypeKServeName(DataType t);
// Parses a KServe name ("FP32") or ONNX name ("float"); kUndefined when unknown.
DataType ParseDataType(std::string_view name);
// True for the types our kernels compute with (everything but string and complex).
bool IsSupportedDataType(DataType t);

using Shape = std::vector<int64_t>;

// Product of dims; 1 for a scalar (empty shape).
int64_t NumElements(const Shape& shape);
std::string ShapeToString(const Shape& shape);  // "[1,3,224,224]"

// Memory layout of an activation. Plain is row-major in the logical shape. Blocked layouts are
// oneDNN's channel-blocked formats (nChw16c: C padded to a multiple of 16) of float32 values;
// channels-last is nwc / nhwc / ndhwc (the int8 convolutions' layout: their int8 and float32
// results). Only kernels that say they accept a layout ever see it (Kernel::AcceptsBlockedInput /
// AcceptsChannelsLastInput), and a blocked value's byte size comes from the producing kernel.
enum class Layout : uint8_t { kPlain = 0, kBlocked8 = 1, kBlocked16 = 2, kChannelsLast = 3 };

// True when a value of `shape` in `layout` has its elements at the same byte offsets as in plain
// (row-major) order, so the bytes can be read as plain without a reorder: spatial dims all 1 (an
// [N, C, 1, 1] squeeze-excitation or pooled value) and, for the channel-blocked layouts, one image
// or C a multiple of the block (no padding between images). Plain itself is trivially true.
bool SameBytesAsPlain(const Shape& shape, Layout layout);

// Non-owning view of a tensor's storage. Cheap to copy.
struct TensorView {
  DataType dtype = DataType::kUndefined;
  Shape shape;
  void* data = nullptr;
  Layout layout = Layout::kPlain;

  int64_t num_elements() const { return NumElements(shape); }
  size_t plain_bytes() const { return static_cast<size_t>(num_elements()) * DataTypeSize(dtype); }
  template <typename T>
  T* as() const { return static_cast<T*>(data); }
};

}  // namespace gpuhive
