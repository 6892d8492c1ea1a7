// KServe v2 JSON codec with the binary tensor extension.
// Requests are parsed with simdjson (DOM, a parser reused per thread); responses are written by hand.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gpuhive/inference.h"
#include "gpuhive/server/service.h"
#include "gpuhive/server/shared_memory.h"

namespace gpuhive::server {

struct OutputRequest {
  std::string name;
  std::optional<bool> binary;  // parameters.binary_data; unset: the request-level default
  int64_t class_count = 0;     // parameters.classification (Triton's class_count); 0: the tensor
  bool batched = false;        // the model batches: classification ranks each row of dim 0
  std::shared_ptr<const std::vector<std::string>> labels;  // the output's labels, when it has them
  // Triton's shared_memory_region / _offset / _byte_size: the output is written there.
  std::shared_ptr<SharedMemoryRegion> shm;
  uint64_t shm_offset = 0;
  uint64_t shm_byte_size = 0;
};

struct ParsedInferRequest {
  std::unique_ptr<InferenceRequest> request;  // no on_complete yet
  std::vector<OutputRequest> outputs;         // empty: every output
  bool binary_output_default = false;         // request parameters.binary_data_output
};

// Parses and validates an infer request body against the model's metadata.
// header_length: the Inference-Header-Content-Length header when present (the JSON is the first
// header_length bytes, binary input data follows in input order); nullopt: the whole body is JSON.
// Errors: kInvalidArgument with a message that names the offending field, kUnimplemented for
// BYTES tensors and unsupported parameters.
// `shm`: the registered shared memory regions inputs and outputs may name (nullptr: none may).
StatusOr<ParsedInferRequest> ParseInferRequest(std::string_view body,
                                               std::optional<size_t> header_length,
                                               const ModelMetadata& meta,
                                               const SharedMemoryRegistry* shm = nullptr);

struct EncodedInferResponse {
  Status status;  // not OK: an output could not be delivered (its shared memory window is too small)
  std::string body;
  std::optional<size_t> header_length;  // set when binary output data follows the JSON
};
// Encodes a successful response. Outputs requested with binary=true (or the default) are appended
// raw after the JSON header.
EncodedInferResponse EncodeInferResponse(const InferenceResponse& response,
                                         const std::vector<OutputRequest>& outputs,
                                         bool binary_default);

std::string JsonEscape(std::string_view s);
std::string ErrorJson(std::string_view message);  // {"error":"..."}
std::string EncodeServerMetadata(const ServerMetadata& m);
std::string EncodeModelMetadata(const ModelMetadata& m);
std::string EncodeRepositoryIndex(const std::vector<RepositoryEntry>& entries);
// {"ready": <bool>} body of POST /v2/repository/index. Errors: kInvalidArgument. Empty body: false.
StatusOr<bool> ParseRepositoryIndexRequest(std::string_view body);

}  // namespace gpuhive::server
