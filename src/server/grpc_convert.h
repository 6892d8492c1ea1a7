// The gRPC frontend's conversions between KServe v2 protos and gpuhive's requests and responses:
// a ModelInferRequest becomes a validated InferenceRequest (datatypes, shapes, raw or typed
// contents, Triton's priority / timeout / tenant parameters, system shared memory windows,
// classification); an InferenceResponse becomes a ModelInferResponse. No sockets and no gRPC
// runtime: only the generated protobuf messages, so the fuzz target (fuzz/grpc_request_fuzzer.cc)
// runs exactly what the server runs.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gpuhive/inference.h"
#include "gpuhive/server/service.h"
#include "gpuhive/server/shared_memory.h"
#include "grpc_service.pb.h"

namespace gpuhive::server {

// A registered shared memory region's window that an output is written to.
struct ShmWindow {
  std::shared_ptr<SharedMemoryRegion> region;
  uint64_t offset = 0;
  uint64_t byte_size = 0;
};

// What the response needs to know about its request.
struct ClassificationRequest {
  int64_t count = 0;
  std::shared_ptr<const std::vector<std::string>> labels;  // the output's labels, when it has them
};

struct ResponseOptions {
  std::map<std::string, ClassificationRequest> classification;  // output -> what Triton's classification asked
  std::map<std::string, ShmWindow> shm;        // output -> where to write it (shared memory)
  bool batched = false;
};

// A validated InferenceRequest from the proto; `response` receives the per-output options. `shm`
// may be null (shared memory not enabled on this endpoint). Errors: kInvalidArgument for anything
// the request gets wrong (named in the message), kUnimplemented for BYTES tensors.
StatusOr<std::unique_ptr<InferenceRequest>> BuildRequest(const inference::ModelInferRequest& in,
                                                         const ModelMetadata& meta,
                                                         int64_t context_deadline_ns,
                                                         ResponseOptions* response,
                                                         const SharedMemoryRegistry* shm);

// A successful response in its proto form, classification applied and shared memory outputs
// written. Errors: kInvalidArgument when an output does not fit its shared memory window.
Status FillInferResponse(const InferenceResponse& result, const ResponseOptions& options,
                         inference::ModelInferResponse* resp);

}  // namespace gpuhive::server
