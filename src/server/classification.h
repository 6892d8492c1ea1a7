// Triton's classification extension: instead of an output tensor, its `count` highest values per
// batch row as BYTES strings "<value>:<index>" (":<label>" when labels are known), highest first.
// Shared by the HTTP and gRPC frontends. Thread safe (no state).
#pragma once

#include <string>
#include <vector>

#include "gpuhive/status.h"
#include "gpuhive/tensor.h"

namespace gpuhive::server {

struct ClassifiedOutput {
  Shape shape;                       // [rows, count] when batched, else [count]
  std::vector<std::string> entries;  // row-major
};

// Ranks each row of `t` (dim 0 is the batch when `batched`; otherwise the whole tensor is one row)
// by value in the tensor's own type; ties keep the lower index first. `count` is capped at the
// row's size. With `labels`, an entry whose index has a label is "<value>:<index>:<label>"
// (Triton's form; indexes beyond the labels stay "<value>:<index>"). Errors: kInvalidArgument for
// count < 1 or a tensor whose type cannot be ranked.
StatusOr<ClassifiedOutput> Classify(const Tensor& t, int64_t count, bool batched,
                                    const std::vector<std::string>* labels = nullptr);

// The BYTES wire form (KServe binary data and gRPC raw contents): per element a 4-byte
// little-endian length, then its bytes.
std::string EncodeBytesElements(const std::vector<std::string>& elements);

}  // namespace gpuhive::server
