// The owning tensor: element type and shape (dtype.h) over storage from a MemoryResource.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "gpuhive/dtype.h"
#include "gpuhive/memory_resource.h"
#include "gpuhive/status.h"

namespace gpuhive {

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
