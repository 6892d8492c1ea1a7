#include "server/binary_tensor.h"

#include "server/request_validation.h"

namespace gpuhive::server {

StatusOr<Tensor> TensorFromBinary(const std::string& name, DataType dtype, const Shape& shape,
                                  const char* data, size_t size) {
  ASSIGN_OR_RETURN(int64_t count, CheckedElementCount(name, shape));
  size_t elem = DataTypeSize(dtype);
  if (elem == 0) return Unimplemented("input '{}': datatype has no fixed element size", name);
  uint64_t want = static_cast<uint64_t>(count) * elem;
  if (want != size)
    return InvalidArgument("input '{}': shape {} of {} needs {} bytes, got {} bytes of binary data",
                           name, ShapeToString(shape), DataTypeKServeName(dtype), want, size);
  return Tensor::FromBytes(dtype, shape, data, size);
}

}  // namespace gpuhive::server
