// Inference requests and responses as they move from a frontend through the scheduler to a worker.
// Ownership: a request is owned by exactly one stage at a time, passed as unique_ptr; its
// completion callback is called exactly once, with either outputs or an error.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gpuhive/status.h"
#include "gpuhive/tensor.h"

namespace gpuhive {

struct NamedTensor {
  std::string name;
  Tensor tensor;
};

struct InferenceResponse {
  std::string model_name;
  std::string model_version;
  std::string request_id;
  Status status;                     // OK, or why the request failed
  std::vector<NamedTensor> outputs;  // requested outputs (all when none were named)
  // Timings for metrics and clients, nanoseconds.
  int64_t queue_ns = 0;
  int64_t compute_ns = 0;          // the batch's execution (RunBatch)
  int64_t compute_input_ns = 0;    // gathering the batch's inputs (concatenation)
  int64_t compute_output_ns = 0;   // scattering the batch's outputs to its requests
  int batch_size = 0;  // size of the batch this request ran in
  // Set with kResourceExhausted when a full queue refused the request: seconds after which a retry
  // is likely to be admitted (a frontend's Retry-After). 0 otherwise.
  int retry_after_s = 0;
};

using ResponseCallback = std::function<void(InferenceResponse)>;

struct InferenceRequest {
  std::string model_name;
  std::string model_version;  // empty: the model's default (latest ready) version
  std::string id;             // client-supplied request id, echoed back
  std::vector<NamedTensor> inputs;
  std::vector<std::string> requested_outputs;  // empty: all outputs
  int priority = -1;          // -1: the model's default priority level; 0 is most urgent
  std::string tenant;         // empty: the model's tenant
  int64_t deadline_ns = 0;    // absolute NowNs() deadline; 0: none
  // Queue timeout override (Triton's per-request timeout), microseconds; 0: the model's queue
  // policy default. May only shorten the default, and only where the policy allows overrides.
  int64_t timeout_us = 0;
  int64_t enqueue_ns = 0;     // set by the scheduler when admitted
  ResponseCallback on_complete;

  // Completes the request with an error (helper for every stage that refuses it).
  void Fail(Status status) {
    InferenceResponse r;
    r.model_name = model_name;
    r.model_version = model_version;
    r.request_id = id;
    r.status = std::move(status);
    if (on_complete) {
      auto cb = std::move(on_complete);
      on_complete = nullptr;
      cb(std::move(r));
    }
  }
};

}  // namespace gpuhive
