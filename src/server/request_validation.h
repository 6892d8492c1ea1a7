// Checks shared by the HTTP/JSON and gRPC frontends: a request's inputs and outputs against the
// model's metadata, KServe datatype names, Triton's per-request priority / timeout parameters,
// the bearer token of mutating calls.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gpuhive/inference.h"
#include "gpuhive/server/service.h"

namespace gpuhive::server {

// "FP32" -> kFloat32. Errors: kUnimplemented for BYTES (string tensors), kInvalidArgument for an
// unknown name.
StatusOr<DataType> ParseKServeDatatype(std::string_view name);

// The input's name, datatype and shape (rank and every fixed dim) against the metadata.
Status ValidateInput(const ModelMetadata& meta, const std::string& name, DataType dtype,
                     const Shape& shape);
// Negative dims and element counts that overflow. Returns the element count.
StatusOr<int64_t> CheckedElementCount(const std::string& name, const Shape& shape);
// After every input was added: none missing. (Duplicates are refused while adding.)
Status CheckAllInputsPresent(const ModelMetadata& meta, const std::vector<NamedTensor>& inputs);
Status ValidateRequestedOutput(const ModelMetadata& meta, const std::string& name);

// Triton's "priority" (0: the model's default, 1: highest) to the scheduler's 0-based level (-1:
// default, 0: most urgent). A value beyond the model's levels comes back as a level the core then
// treats as the default (Triton's rule). Errors: kInvalidArgument for a negative value.
StatusOr<int> PriorityFromTriton(int64_t priority);
// Triton's "timeout" in microseconds to an absolute NowNs() deadline (0 stays "none").
StatusOr<int64_t> DeadlineFromTimeoutUs(int64_t timeout_us);

// Whether an Authorization value carries `token` with the Bearer scheme: "Bearer <token>", the
// scheme in any case (RFC 7235: auth-scheme is case-insensitive) and one or more spaces before the
// token, which must match exactly. The comparison takes the same time wherever the token differs.
bool BearerTokenMatches(std::string_view authorization, std::string_view token);

// Half precision conversions (round to nearest even).
uint16_t FloatToHalf(float f);
float HalfToFloat(uint16_t h);
uint16_t FloatToBFloat16(float f);
float BFloat16ToFloat(uint16_t h);

}  // namespace gpuhive::server
