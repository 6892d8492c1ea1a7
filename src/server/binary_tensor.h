// The binary tensor extension: raw little-endian tensor bytes in the request/response body.
#pragma once

#include <cstddef>
#include <string>

#include "gpuhive/tensor.h"

namespace gpuhive::server {

// Copies `size` raw bytes into a tensor of dtype/shape. Errors: kInvalidArgument when size is not
// exactly elements * element size (the message gives both numbers).
StatusOr<Tensor> TensorFromBinary(const std::string& name, DataType dtype, const Shape& shape,
                                  const char* data, size_t size);

}  // namespace gpuhive::server
