// Tensors: element types (numbered as ONNX TensorProto.DataType), shapes, a non-owning view and an
// owning tensor whose storage comes from a MemoryResource.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "gpuhive/memory_resource.h"
#include "gpuhive/status.h"

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
// oneDNN's channel-blocked formats (nChw16c: C padded to a multiple of 16); only kernels that say
// they accept them ever see them, and their byte size comes from the producing kernel.
enum class Layout : uint8_t { kPlain = 0, kBlocked8 = 1, kBlocked16 = 2 };

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

// An owning tensor: storage is a Buffer from a MemoryResource (host by default). Move-only.
class Tensor {
 public:
  Tensor() = default;
  // Allocates storage for a plain tensor of dtype/shape. Errors: kInvalidArgument for a negative
  // dim or unsupported dtype, kResourceExhausted from the resource.
  static StatusOr<Tensor> Allocate(DataType dtype, Shape shape, MemoryResource* mr = nullptr,
                                   AllocTag tag = {});
  // Copies `bytes` bytes from `src` into a new host tensor.
  static StatusOr<Tensor> FromBytes(DataType dtype, Shape shape, const void* src, size_t bytes,
                                    MemoryResource* mr = nullptr, AllocTag tag = {});
  // A non-owning tensor over external memory (the caller keeps it alive). Lets values that live in
  // an arena or a caller's buffer be handed to APIs that take `const Tensor*`.
  static Tensor WrapExternal(DataType dtype, Shape shape, void* data) {
    Tensor t;
    t.dtype_ = dtype;
    t.shape_ = std::move(shape);
    t.buffer_ = Buffer(nullptr, data, 0, AllocTag{}, StreamView{});
    return t;
  }
  // Deep copy into new storage from `mr` (host by default).
  StatusOr<Tensor> Clone(MemoryResource* mr = nullptr, AllocTag tag = {}) const {
    return FromBytes(dtype_, shape_, data(), bytes(), mr, tag);
  }
  template <typename T>
  static StatusOr<Tensor> FromVector(DataType dtype, Shape shape, const std::vector<T>& v) {
    return FromBytes(dtype, std::move(shape), v.data(), v.size() * sizeof(T));
  }

  DataType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int64_t num_elements() const { return NumElements(shape_); }
  size_t bytes() const { return static_cast<size_t>(num_elements()) * DataTypeSize(dtype_); }
  void* data() { return buffer_.data(); }
  const void* data() const { return buffer_.data(); }
  template <typename T>
  T* as() { return static_cast<T*>(buffer_.data()); }
  template <typename T>
  const T* as() const { return static_cast<const T*>(buffer_.data()); }
  TensorView view() const { return TensorView{dtype_, shape_, buffer_.data(), Layout::kPlain}; }

 private:
  DataType dtype_ = DataType::kUndefined;
  Shape shape_;
  Buffer buffer_;
};

}  // namespace gpuhive
