// The gRPC module's entry: libgpuhive_grpc.so's only interface to the binary (cli/grpc_module.h).
#include <memory>
#include <utility>

#include "cli/grpc_module.h"

namespace gpuhive::cli {
namespace {

// GrpcServer and ModelMeshServer behind the virtual handle (their own methods are not virtual, so
// the binary must not call them).
template <typename Server>
class Listener final : public GrpcListener {
 public:
  explicit Listener(std::unique_ptr<Server> server) : server_(std::move(server)) {}
  int port() const override { return server_->port(); }
  void Stop() override { server_->Stop(); }

 private:
  std::unique_ptr<Server> server_;
};

template <typename Server>
StatusOr<std::unique_ptr<GrpcListener>> Wrap(StatusOr<std::unique_ptr<Server>> started) {
  if (!started.ok()) return started.status();
  return std::unique_ptr<GrpcListener>(std::make_unique<Listener<Server>>(std::move(*started)));
}

class Module final : public GrpcModule {
 public:
  StatusOr<std::unique_ptr<GrpcListener>> StartKServe(server::InferenceService* service,
                                                      const server::GrpcServerOptions& options) override {
    return Wrap(server::GrpcServer::Start(service, options));
  }
  StatusOr<std::unique_ptr<GrpcListener>> StartModelMesh(server::ModelMeshRuntime* runtime,
                                                         const server::ModelMeshServerOptions& options) override {
    return Wrap(server::ModelMeshServer::Start(runtime, options));
  }
  loadgen::GrpcClient* loadgen_client() override { return loadgen::GrpcTransportClient(); }
};

}  // namespace
}  // namespace gpuhive::cli

extern "C" const gpuhive::cli::GrpcModuleInfo* gpuhive_grpc_module_v1() {
  // constexpr: the stamp is this build's layout, computed here, never by a call that could bind
  // to the binary's copy of CurrentGrpcModuleAbi().
  static constexpr gpuhive::cli::GrpcModuleAbi kAbi = gpuhive::cli::CurrentGrpcModuleAbi();
  static gpuhive::cli::Module module;  // stateless: nothing to destroy at exit
  static const gpuhive::cli::GrpcModuleInfo info{kAbi, &module};
  return &info;
}
