// Tensor storage through MemoryResource (the memory layer owns every allocation).
#include "gpuhive/tensor.h"

namespace gpuhive {

StatusOr<Tensor> Tensor::Allocate(DataType dtype, Shape shape, MemoryResource* mr, AllocTag tag) {
  if (!IsSupportedDataType(dtype)) return Unimplemented("unsupported tensor dtype {}", DataTypeName(dtype));
  for (int64_t d : shape) {
    if (d < 0) return InvalidArgument("negative dimension in shape {}", ShapeToString(shape));
  }
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  size_t bytes = t.bytes();
  if (mr == nullptr) mr = DefaultHostResource();
  // Zero-element tensors still get a distinct non-null pointer so views are never ambiguous.
  ASSIGN_OR_RETURN(t.buffer_, Buffer::Allocate(mr, bytes == 0 ? 1 : bytes, tag));
  return t;
}

StatusOr<Tensor> Tensor::FromBytes(DataType dtype, Shape shape, const void* src, size_t bytes,
                                   MemoryResource* mr, AllocTag tag) {
  ASSIGN_OR_RETURN(Tensor t, Allocate(dtype, std::move(shape), mr, tag));
  if (bytes != t.bytes()) {
    return InvalidArgument("tensor of shape {} {} needs {} bytes, got {}", ShapeToString(t.shape()),
                           DataTypeName(dtype), t.bytes(), bytes);
  }
  if (bytes) std::memcpy(t.data(), src, bytes);
  return t;
}

}  // namespace gpuhive
