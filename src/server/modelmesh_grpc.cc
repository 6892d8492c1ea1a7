// ModelMeshServer: the mmesh.ModelRuntime gRPC service (proto/modelmesh.proto) over
// ModelMeshRuntime, on a TCP port and/or a unix socket. The synchronous API: a load blocks one of
// gRPC's server threads for as long as it takes, which is what ModelMesh expects (it bounds the
// loads it sends by maxLoadingConcurrency).
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gpuhive/logging.h"
#include "gpuhive/server/grpc_server.h"
#include "gpuhive/server/modelmesh.h"
#include "gpuhive/utf8.h"
#include "modelmesh.grpc.pb.h"

namespace gpuhive::server {

namespace {

grpc::Status ToGrpc(const Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(GrpcCodeFor(s.code())), ToValidUtf8(s.message()));
}

// A load that did not fit is RESOURCE_EXHAUSTED for ModelMesh (it then places the model on
// another pod), whichever way the core said "cannot be made resident".
Status LoadError(const Status& s) {
  if (s.code() == StatusCode::kUnavailable) return Status(StatusCode::kResourceExhausted, s.message());
  return s;
}

ModelMeshModelRequest FromProto(const std::string& id, const std::string& type, const std::string& path,
                                const std::string& key) {
  return ModelMeshModelRequest{id, type, path, key};
}

class RuntimeService final : public mmesh::ModelRuntime::Service {
 public:
  explicit RuntimeService(ModelMeshRuntime* runtime) : runtime_(runtime) {}

  grpc::Status loadModel(grpc::ServerContext* ctx, const mmesh::LoadModelRequest* req,
                         mmesh::LoadModelResponse* resp) override {
    auto r = runtime_->LoadModel(FromProto(req->modelid(), req->modeltype(), req->modelpath(), req->modelkey()));
    if (!r.ok()) return ToGrpc(LoadError(r.status()));
    if (ctx->IsCancelled()) {
      // ModelMesh gave up on this load (it sends unloadModel next); free it now either way.
      Status s = runtime_->UnloadModel(req->modelid());
      if (!s.ok()) GH_LOG_WARN("modelmesh", "unloading cancelled load '{}': {}", ToValidUtf8(req->modelid()), s.ToString());
      return grpc::Status(grpc::StatusCode::CANCELLED, "the load was cancelled; the model was unloaded");
    }
    resp->set_sizeinbytes(r->size_bytes);
    resp->set_maxconcurrency(r->max_concurrency);
    return grpc::Status::OK;
  }
  grpc::Status unloadModel(grpc::ServerContext*, const mmesh::UnloadModelRequest* req,
                           mmesh::UnloadModelResponse*) override {
    return ToGrpc(runtime_->UnloadModel(req->modelid()));
  }
  grpc::Status predictModelSize(grpc::ServerContext*, const mmesh::PredictModelSizeRequest* req,
                                mmesh::PredictModelSizeResponse* resp) override {
    auto r = runtime_->PredictModelSize(FromProto(req->modelid(), req->modeltype(), req->modelpath(), req->modelkey()));
    if (r.ok()) resp->set_sizeinbytes(*r);
    return ToGrpc(r.status());
  }
  grpc::Status modelSize(grpc::ServerContext*, const mmesh::ModelSizeRequest* req,
                         mmesh::ModelSizeResponse* resp) override {
    auto r = runtime_->ModelSize(req->modelid());
    if (r.ok()) resp->set_sizeinbytes(*r);
    return ToGrpc(r.status());
  }
  grpc::Status runtimeStatus(grpc::ServerContext*, const mmesh::RuntimeStatusRequest*,
                             mmesh::RuntimeStatusResponse* resp) override {
    ModelMeshStatus st = runtime_->RuntimeStatus();
    resp->set_status(st.ready ? mmesh::RuntimeStatusResponse::READY : mmesh::RuntimeStatusResponse::STARTING);
    resp->set_capacityinbytes(st.capacity_bytes);
    resp->set_maxloadingconcurrency(st.max_loading_concurrency);
    resp->set_modelloadingtimeoutms(st.model_loading_timeout_ms);
    resp->set_defaultmodelsizeinbytes(st.default_model_size_bytes);
    resp->set_runtimeversion(st.runtime_version);
    for (const auto& [method, path] : st.method_infos) {
      auto& info = (*resp->mutable_methodinfos())[method];
      for (uint32_t field : path) info.add_idinjectionpath(field);
    }
    resp->set_limitmodelconcurrency(st.limit_model_concurrency);
    resp->set_allowanymethod(st.allow_any_method);
    return grpc::Status::OK;
  }

 private:
  ModelMeshRuntime* runtime_;
};

}  // namespace

struct ModelMeshServer::Impl {
  std::unique_ptr<RuntimeService> service;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  bool stopped = false;
};

ModelMeshServer::ModelMeshServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

StatusOr<std::unique_ptr<ModelMeshServer>> ModelMeshServer::Start(ModelMeshRuntime* runtime,
                                                                  const ModelMeshServerOptions& options) {
  if (runtime == nullptr) return InvalidArgument("ModelMeshServer needs a runtime");
  if (options.port < 0 && options.unix_socket.empty())
    return InvalidArgument("the ModelMesh service needs a port or a unix socket");
  if (options.port > 65535) return InvalidArgument("ModelMesh port {} is out of range", options.port);
  if (options.max_message_bytes == 0 || options.max_message_bytes > INT32_MAX)
    return InvalidArgument("gRPC max message bytes must be in 1..2^31-1");
  auto impl = std::make_unique<Impl>();
  impl->service = std::make_unique<RuntimeService>(runtime);
  grpc::ServerBuilder builder;
  if (options.port >= 0) {
    builder.AddListeningPort(options.address + ":" + std::to_string(options.port), grpc::InsecureServerCredentials(),
                             &impl->port);
  }
  if (!options.unix_socket.empty()) {
    // A socket left by an earlier process would make the bind fail; only a socket is removed.
    struct stat st {};
    if (::lstat(options.unix_socket.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(options.unix_socket.c_str());
    builder.AddListeningPort("unix:" + options.unix_socket, grpc::InsecureServerCredentials());
  }
  builder.SetMaxReceiveMessageSize(static_cast<int>(options.max_message_bytes));
  builder.RegisterService(impl->service.get());
  impl->server = builder.BuildAndStart();
  if (!impl->server || (options.port >= 0 && impl->port == 0)) {
    return Unavailable("cannot listen for ModelMesh on {}:{}{}", options.address, options.port,
                       options.unix_socket.empty() ? "" : " / unix:" + options.unix_socket);
  }
  if (options.port >= 0) GH_LOG_INFO("modelmesh", "ModelMesh runtime listening on {}:{}", options.address, impl->port);
  if (!options.unix_socket.empty()) GH_LOG_INFO("modelmesh", "ModelMesh runtime listening on unix:{}", options.unix_socket);
  return std::unique_ptr<ModelMeshServer>(new ModelMeshServer(std::move(impl)));
}

int ModelMeshServer::port() const { return impl_->port; }

void ModelMeshServer::Stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(10));
  impl_->server->Wait();
}

ModelMeshServer::~ModelMeshServer() { Stop(); }

}  // namespace gpuhive::server
