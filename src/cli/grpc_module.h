// gRPC as a run-time module. Everything in gpuhive that speaks gRPC (the KServe v2 gRPC frontend,
// the ModelMesh runtime server, the load generator's gRPC transport) is built into
// libgpuhive_grpc.so, next to the gpuhive binary, which loads it with dlopen the first time a gRPC
// feature is used. Offline commands (perf, run, optimize, inspect, ...) then never map gRPC,
// OpenSSL, abseil, re2 or c-ares, relocate them or run their static initializers.
//
// The binary and the module meet only here: one extern "C" entry returning a plain struct, whose
// ABI stamp is compared before anything else is touched, and the virtual functions below. The
// binary never calls a non-virtual function the module defines (it does not link them), and it
// defines none of the module's functions itself: it exports its symbols, and a definition in both
// would bind the module's calls to the binary's copy.
//
// The module does not carry copies of gpuhive's own code (Status, logging, the codec, the engine,
// the metrics, the protobuf messages of model_config.proto): it leaves those symbols undefined and
// the dynamic loader resolves them to the binary's, so there is one of every singleton (log
// settings, metric registry, protobuf's descriptor pool). The tests link the same code statically
// (the gpuhive_server_grpc library) and may call gpuhive_grpc_module_v1() directly.
#pragma once

#include <cstdint>
#include <memory>

#include "cli/loadgen/transport.h"
#include "gpuhive/server/grpc_server.h"
#include "gpuhive/server/modelmesh.h"
#include "gpuhive/status.h"

namespace gpuhive::cli {

// A gRPC server the module started. Destroying it stops it.
class GrpcListener {
 public:
  virtual ~GrpcListener() = default;
  // The bound TCP port; 0 without one (a ModelMesh server on a unix socket only).
  virtual int port() const = 0;
  // Stops accepting calls and waits (up to 10 s) for the ones in flight. Idempotent.
  virtual void Stop() = 0;
};

class GrpcModule {
 public:
  // The KServe v2 gRPC frontend over `service` (GrpcServer::Start's contract).
  virtual StatusOr<std::unique_ptr<GrpcListener>> StartKServe(server::InferenceService* service,
                                                              const server::GrpcServerOptions& options) = 0;
  // The ModelMesh model-runtime service over `runtime` (ModelMeshServer::Start's contract).
  virtual StatusOr<std::unique_ptr<GrpcListener>> StartModelMesh(server::ModelMeshRuntime* runtime,
                                                                 const server::ModelMeshServerOptions& options) = 0;
  // The load generator's gRPC transport and metadata lookup.
  virtual loadgen::GrpcClient* loadgen_client() = 0;

 protected:
  ~GrpcModule() = default;  // lives as long as the process (the module is never unloaded)
};

// What the binary and the module must agree on: the interface's version and the layout of the
// structs that cross it. Compared field by field at load.
struct GrpcModuleAbi {
  uint32_t version = 0;
  uint32_t server_options = 0;     // sizeof(server::GrpcServerOptions)
  uint32_t modelmesh_options = 0;  // sizeof(server::ModelMeshServerOptions)
  uint32_t transport_options = 0;  // sizeof(loadgen::TransportOptions)
  uint32_t request_template = 0;   // sizeof(loadgen::RequestTemplate)
  uint32_t status = 0;             // sizeof(Status)
  bool operator==(const GrpcModuleAbi&) const = default;
};

// The layout this build has. Bump `version` when a virtual function above (or of
// loadgen::GrpcClient, loadgen::Transport, server::InferenceService) changes.
inline constexpr GrpcModuleAbi CurrentGrpcModuleAbi() {
  return GrpcModuleAbi{1,
                       static_cast<uint32_t>(sizeof(server::GrpcServerOptions)),
                       static_cast<uint32_t>(sizeof(server::ModelMeshServerOptions)),
                       static_cast<uint32_t>(sizeof(loadgen::TransportOptions)),
                       static_cast<uint32_t>(sizeof(loadgen::RequestTemplate)),
                       static_cast<uint32_t>(sizeof(Status))};
}

struct GrpcModuleInfo {
  GrpcModuleAbi abi;
  GrpcModule* module = nullptr;  // lives as long as the process
};

inline constexpr const char* kGrpcModuleSymbol = "gpuhive_grpc_module_v1";
inline constexpr const char* kGrpcModuleFile = "libgpuhive_grpc.so";
inline constexpr const char* kGrpcModuleEnv = "GPUHIVE_GRPC_MODULE";

// The binary's side (grpc_module_loader.cc): loads the module once (later calls return the same
// one) from the first of RuntimeModuleCandidates(kGrpcModuleEnv, kGrpcModuleFile) that exists and
// checks its ABI. Errors: kUnavailable (not found: every place looked at; cannot be loaded: the
// path and the loader's reason, e.g. a library it needs is missing), kFailedPrecondition (not a
// gRPC module, or one from another build). Thread safe.
StatusOr<GrpcModule*> LoadGrpcModule();

}  // namespace gpuhive::cli

// The module's entry (grpc/module.cc). The binary finds it with dlsym, never by linking it.
extern "C" const gpuhive::cli::GrpcModuleInfo* gpuhive_grpc_module_v1();
