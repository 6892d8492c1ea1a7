// KServe v2 gRPC frontend (package inference, service GRPCInferenceService; proto/grpc_service.proto)
// on the callback API: ModelInfer completes from the service's completion callback without
// blocking a thread. Inputs as raw_input_contents or typed contents; outputs always as
// raw_output_contents (as Triton answers).
//
// Built into the gRPC module (libgpuhive_grpc.so) and the gpuhive_server_grpc library the tests
// link, never into the gpuhive binary: the binary starts it through cli/grpc_module.h.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "gpuhive/monitor/metric_names.h"
#include "gpuhive/server/service.h"
#include "gpuhive/units.h"

namespace gpuhive::server {

class SharedMemoryRegistry;

struct GrpcServerOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 8001;  // 0: an ephemeral port
  uint64_t max_message_bytes = 64 * MiB;
  std::string auth_token;  // non-empty: RepositoryModelLoad/Unload need "authorization: Bearer <t>"
  const monitor::GpuhiveMetrics* metrics = nullptr;  // gpuhive_grpc_requests_total when set
  // ModelMesh routing: ModelInfer, ModelMetadata and ModelReady take the model from the
  // `mm-model-id` header when a request carries one, and, when this is set, pass the name
  // through it (a ModelMesh id -> the name it is served under). Must be thread safe.
  std::function<std::string(const std::string&)> model_name_for_id;

  // Triton's system shared memory extension; nullptr: its RPCs answer UNIMPLEMENTED. Must outlive
  // the server.
  SharedMemoryRegistry* shm = nullptr;
};

// gRPC status code number for a Status code (INVALID_ARGUMENT=3, NOT_FOUND=5, ...).
int GrpcCodeFor(StatusCode code);

class GrpcServer {
 public:
  // `service` must outlive the server. Errors: kUnavailable when the port cannot be bound.
  static StatusOr<std::unique_ptr<GrpcServer>> Start(InferenceService* service,
                                                     const GrpcServerOptions& options);
  ~GrpcServer();  // shuts down, waiting (up to 10 s) for in-flight calls
  uint16_t port() const;
  void Stop();

 private:
  struct Impl;
  explicit GrpcServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace gpuhive::server
