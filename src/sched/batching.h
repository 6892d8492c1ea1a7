// Batch assembly for the dynamic batcher: input signatures (which requests may share a batch),
// concatenation along dim 0 and splitting outputs back per request.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gpuhive/status.h"
#include "gpuhive/tensor.h"

namespace gpuhive::sched::detail {

// A string that is equal for two requests exactly when their inputs have the same dtypes and the
// same dims after dim 0 (when `batching`) or the same full shapes (when not).
std::string InputSignature(const std::vector<TensorView>& inputs, bool batching);

// Concatenates the requests' inputs along dim 0: result[i] holds input i of every request in order.
// Precondition (checked): every request has the same number of inputs with equal signatures.
// Errors: kInvalidArgument on a signature mismatch, kResourceExhausted from allocation.
StatusOr<std::vector<Tensor>> ConcatBatch(const std::vector<const std::vector<TensorView>*>& requests);

// Splits every output along dim 0 into consecutive slices of rows[r] rows for request r.
// Errors: kInvalidArgument when an output's dim 0 is not the sum of rows.
StatusOr<std::vector<std::vector<Tensor>>> SplitBatch(const std::vector<Tensor>& outputs,
                                                      const std::vector<int64_t>& rows);

}  // namespace gpuhive::sched::detail
