#include "gpuhive/server/grpc_server.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstring>
#include <limits>
#include <set>

#include "gpuhive/logging.h"
#include "gpuhive/utf8.h"
#include "grpc_service.grpc.pb.h"
#include "server/binary_tensor.h"
#include "server/request_validation.h"

namespace gpuhive::server {

int GrpcCodeFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return grpc::StatusCode::OK;
    case StatusCode::kInvalidArgument: return grpc::StatusCode::INVALID_ARGUMENT;
    case StatusCode::kNotFound: return grpc::StatusCode::NOT_FOUND;
    case StatusCode::kAlreadyExists: return grpc::StatusCode::ALREADY_EXISTS;
    case StatusCode::kFailedPrecondition: return grpc::StatusCode::FAILED_PRECONDITION;
    case StatusCode::kUnimplemented: return grpc::StatusCode::UNIMPLEMENTED;
    case StatusCode::kResourceExhausted: return grpc::StatusCode::RESOURCE_EXHAUSTED;
    case StatusCode::kUnavailable: return grpc::StatusCode::UNAVAILABLE;
    case StatusCode::kDeadlineExceeded: return grpc::StatusCode::DEADLINE_EXCEEDED;
    case StatusCode::kCancelled: return grpc::StatusCode::CANCELLED;
    default: return grpc::StatusCode::INTERNAL;
  }
}

namespace {

grpc::Status ToGrpc(const Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(GrpcCodeFor(s.code())), s.message());
}

StatusOr<int64_t> IntParam(const inference::InferParameter& p, const std::string& name) {
  switch (p.parameter_choice_case()) {
    case inference::InferParameter::kInt64Param: return p.int64_param();
    case inference::InferParameter::kUint64Param:
      if (p.uint64_param() > static_cast<uint64_t>(INT64_MAX))
        return InvalidArgument("parameter '{}' is out of range", name);
      return static_cast<int64_t>(p.uint64_param());
    default: return InvalidArgument("parameter '{}' must be an integer", name);
  }
}

template <typename Src, typename Dst>
StatusOr<Tensor> FromTyped(const google::protobuf::RepeatedField<Src>& src, const std::string& name,
                           DataType dtype, const Shape& shape, int64_t count) {
  if (src.size() != count)
    return InvalidArgument("input '{}': shape {} needs {} elements, contents has {}", name,
                           ShapeToString(shape), count, src.size());
  ASSIGN_OR_RETURN(Tensor t, Tensor::Allocate(dtype, shape));
  Dst* out = t.as<Dst>();
  for (int64_t i = 0; i < count; ++i) {
    Src v = src.Get(static_cast<int>(i));
    if constexpr (std::is_integral_v<Dst> && !std::is_same_v<Src, bool> && sizeof(Dst) < sizeof(Src)) {
      if (v < static_cast<Src>(std::numeric_limits<Dst>::min()) ||
          v > static_cast<Src>(std::numeric_limits<Dst>::max()))
        return InvalidArgument("input '{}': value {} out of range for {}", name, v,
                               DataTypeKServeName(dtype));
    }
    out[i] = static_cast<Dst>(v);
  }
  return t;
}

StatusOr<Tensor> DecodeTyped(const inference::InferTensorContents& c, const std::string& name,
                             DataType dtype, const Shape& shape, int64_t count) {
  switch (dtype) {
    case DataType::kBool: return FromTyped<bool, uint8_t>(c.bool_contents(), name, dtype, shape, count);
    case DataType::kInt8: return FromTyped<int32_t, int8_t>(c.int_contents(), name, dtype, shape, count);
    case DataType::kInt16: return FromTyped<int32_t, int16_t>(c.int_contents(), name, dtype, shape, count);
    case DataType::kInt32: return FromTyped<int32_t, int32_t>(c.int_contents(), name, dtype, shape, count);
    case DataType::kInt64: return FromTyped<int64_t, int64_t>(c.int64_contents(), name, dtype, shape, count);
    case DataType::kUint8: return FromTyped<uint32_t, uint8_t>(c.uint_contents(), name, dtype, shape, count);
    case DataType::kUint16: return FromTyped<uint32_t, uint16_t>(c.uint_contents(), name, dtype, shape, count);
    case DataType::kUint32: return FromTyped<uint32_t, uint32_t>(c.uint_contents(), name, dtype, shape, count);
    case DataType::kUint64: return FromTyped<uint64_t, uint64_t>(c.uint64_contents(), name, dtype, shape, count);
    case DataType::kFloat32: return FromTyped<float, float>(c.fp32_contents(), name, dtype, shape, count);
    case DataType::kFloat64: return FromTyped<double, double>(c.fp64_contents(), name, dtype, shape, count);
    default:
      return InvalidArgument("input '{}': {} has no typed contents field; send raw_input_contents",
                             name, DataTypeKServeName(dtype));
  }
}

// Builds a validated InferenceRequest from the proto.
StatusOr<std::unique_ptr<InferenceRequest>> BuildRequest(const inference::ModelInferRequest& in,
                                                         const ModelMetadata& meta,
                                                         int64_t context_deadline_ns) {
  auto req = std::make_unique<InferenceRequest>();
  req->model_name = in.model_name();
  req->model_version = in.model_version();
  req->id = in.id();
  req->deadline_ns = context_deadline_ns;
  for (const auto& [key, p] : in.parameters()) {
    if (key == "priority") {
      ASSIGN_OR_RETURN(int64_t v, IntParam(p, key));
      ASSIGN_OR_RETURN(req->priority, PriorityFromTriton(v));
    } else if (key == "tenant") {
      if (p.parameter_choice_case() != inference::InferParameter::kStringParam || p.string_param().empty() ||
          p.string_param().size() > 128) {
        return InvalidArgument("parameter 'tenant' must be a non-empty string of at most 128 bytes");
      }
      req->tenant = p.string_param();
    } else if (key == "timeout") {
      ASSIGN_OR_RETURN(int64_t v, IntParam(p, key));
      ASSIGN_OR_RETURN(int64_t d, DeadlineFromTimeoutUs(v));
      if (d != 0 && (req->deadline_ns == 0 || d < req->deadline_ns)) req->deadline_ns = d;
    }
  }
  const bool raw = in.raw_input_contents_size() > 0;
  if (raw && in.raw_input_contents_size() != in.inputs_size())
    return InvalidArgument("{} raw_input_contents for {} inputs: when raw contents are used, every "
                           "input needs one", in.raw_input_contents_size(), in.inputs_size());
  std::set<std::string> seen;
  for (int i = 0; i < in.inputs_size(); ++i) {
    const auto& t = in.inputs(i);
    if (!seen.insert(t.name()).second) return InvalidArgument("duplicate input '{}'", t.name());
    ASSIGN_OR_RETURN(DataType dtype, ParseKServeDatatype(t.datatype()));
    Shape shape(t.shape().begin(), t.shape().end());
    RETURN_IF_ERROR(ValidateInput(meta, t.name(), dtype, shape));
    ASSIGN_OR_RETURN(int64_t count, CheckedElementCount(t.name(), shape));
    Tensor tensor;
    if (raw && t.has_contents() && t.contents().ByteSizeLong() > 0) {
      // Two tensors for one input: which is meant is a guess, so refuse (as Triton does).
      return InvalidArgument("input '{}' has both raw_input_contents and typed contents; send one of them", t.name());
    }
    if (raw) {
      const std::string& bytes = in.raw_input_contents(i);
      ASSIGN_OR_RETURN(tensor, TensorFromBinary(t.name(), dtype, shape, bytes.data(), bytes.size()));
    } else {
      ASSIGN_OR_RETURN(tensor, DecodeTyped(t.contents(), t.name(), dtype, shape, count));
    }
    req->inputs.push_back({t.name(), std::move(tensor)});
  }
  RETURN_IF_ERROR(CheckAllInputsPresent(meta, req->inputs));
  std::set<std::string> seen_out;
  for (const auto& o : in.outputs()) {
    RETURN_IF_ERROR(ValidateRequestedOutput(meta, o.name()));
    if (!seen_out.insert(o.name()).second) return InvalidArgument("duplicate output '{}'", o.name());
    req->requested_outputs.push_back(o.name());
  }
  return req;
}

void FillTensorMetadata(const std::vector<TensorInfo>& infos,
                        google::protobuf::RepeatedPtrField<inference::ModelMetadataResponse::TensorMetadata>* out) {
  for (const auto& i : infos) {
    auto* t = out->Add();
    t->set_name(i.name);
    t->set_datatype(std::string(DataTypeKServeName(i.dtype)));
    for (int64_t d : i.shape) t->add_shape(d);
  }
}

class ServiceImpl final : public inference::GRPCInferenceService::CallbackService {
 public:
  ServiceImpl(InferenceService* s, const GrpcServerOptions& o) : service_(s), options_(o) {}

  grpc::ServerUnaryReactor* ServerLive(grpc::CallbackServerContext* ctx, const inference::ServerLiveRequest*,
                                       inference::ServerLiveResponse* resp) override {
    resp->set_live(service_->IsLive());
    return Done(ctx, "ServerLive", Status::OK());
  }
  grpc::ServerUnaryReactor* ServerReady(grpc::CallbackServerContext* ctx, const inference::ServerReadyRequest*,
                                        inference::ServerReadyResponse* resp) override {
    resp->set_ready(service_->IsReady());
    return Done(ctx, "ServerReady", Status::OK());
  }
  grpc::ServerUnaryReactor* ModelReady(grpc::CallbackServerContext* ctx, const inference::ModelReadyRequest* req,
                                       inference::ModelReadyResponse* resp) override {
    auto r = service_->ModelReady(req->name(), req->version());
    if (r.ok()) resp->set_ready(*r);
    return Done(ctx, "ModelReady", r.status());
  }
  grpc::ServerUnaryReactor* ServerMetadata(grpc::CallbackServerContext* ctx,
                                           const inference::ServerMetadataRequest*,
                                           inference::ServerMetadataResponse* resp) override {
    auto m = service_->GetServerMetadata();
    resp->set_name(m.name);
    resp->set_version(m.version);
    for (const auto& e : m.extensions) resp->add_extensions(e);
    return Done(ctx, "ServerMetadata", Status::OK());
  }
  grpc::ServerUnaryReactor* ModelMetadata(grpc::CallbackServerContext* ctx,
                                          const inference::ModelMetadataRequest* req,
                                          inference::ModelMetadataResponse* resp) override {
    auto m = service_->GetModelMetadata(req->name(), req->version());
    if (m.ok()) {
      resp->set_name(m->name);
      for (const auto& v : m->versions) resp->add_versions(v);
      resp->set_platform(m->platform);
      FillTensorMetadata(m->inputs, resp->mutable_inputs());
      FillTensorMetadata(m->outputs, resp->mutable_outputs());
    }
    return Done(ctx, "ModelMetadata", m.status());
  }
  grpc::ServerUnaryReactor* RepositoryIndex(grpc::CallbackServerContext* ctx,
                                            const inference::RepositoryIndexRequest* req,
                                            inference::RepositoryIndexResponse* resp) override {
    auto idx = service_->RepositoryIndex(req->ready());
    if (idx.ok()) {
      for (const auto& e : *idx) {
        auto* m = resp->add_models();
        // proto3 strings must be UTF-8 or the client cannot parse the response; a reason may
        // quote file contents.
        m->set_name(ToValidUtf8(e.name));
        m->set_version(e.version);
        m->set_state(e.state);
        m->set_reason(ToValidUtf8(e.reason));
      }
    }
    return Done(ctx, "RepositoryIndex", idx.status());
  }
  grpc::ServerUnaryReactor* RepositoryModelLoad(grpc::CallbackServerContext* ctx,
                                                const inference::RepositoryModelLoadRequest* req,
                                                inference::RepositoryModelLoadResponse*) override {
    if (!Authorized(ctx)) return Unauthenticated(ctx, "RepositoryModelLoad");
    return Done(ctx, "RepositoryModelLoad", service_->LoadModel(req->model_name()));
  }
  grpc::ServerUnaryReactor* RepositoryModelUnload(grpc::CallbackServerContext* ctx,
                                                  const inference::RepositoryModelUnloadRequest* req,
                                                  inference::RepositoryModelUnloadResponse*) override {
    if (!Authorized(ctx)) return Unauthenticated(ctx, "RepositoryModelUnload");
    return Done(ctx, "RepositoryModelUnload", service_->UnloadModel(req->model_name()));
  }

  grpc::ServerUnaryReactor* ModelInfer(grpc::CallbackServerContext* ctx,
                                       const inference::ModelInferRequest* req,
                                       inference::ModelInferResponse* resp) override {
    auto meta = service_->GetModelMetadata(req->model_name(), req->model_version());
    if (!meta.ok()) return Done(ctx, "ModelInfer", meta.status());
    int64_t ctx_deadline = 0;
    auto dl = ctx->deadline();
    if (dl != std::chrono::system_clock::time_point::max()) {
      auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(dl - std::chrono::system_clock::now());
      ctx_deadline = NowNs() + std::max<int64_t>(left.count(), 1);
    }
    auto built = BuildRequest(*req, *meta, ctx_deadline);
    if (!built.ok()) return Done(ctx, "ModelInfer", built.status());
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    std::unique_ptr<InferenceRequest> r = std::move(*built);
    r->on_complete = [this, reactor, resp](InferenceResponse out) {
      if (out.status.ok()) {
        resp->set_model_name(out.model_name);
        resp->set_model_version(out.model_version);
        resp->set_id(out.request_id);
        for (const auto& o : out.outputs) {
          auto* t = resp->add_outputs();
          t->set_name(o.name);
          t->set_datatype(std::string(DataTypeKServeName(o.tensor.dtype())));
          for (int64_t d : o.tensor.shape()) t->add_shape(d);
          resp->add_raw_output_contents(static_cast<const char*>(o.tensor.data()), o.tensor.bytes());
        }
      }
      Count("ModelInfer", out.status);
      reactor->Finish(ToGrpc(out.status));
    };
    service_->Infer(std::move(r));
    return reactor;
  }

 private:
  bool Authorized(grpc::CallbackServerContext* ctx) const {
    if (options_.auth_token.empty()) return true;
    const auto& md = ctx->client_metadata();
    auto it = md.find("authorization");
    return it != md.end() &&
           BearerTokenMatches(std::string_view(it->second.data(), it->second.size()), options_.auth_token);
  }
  grpc::ServerUnaryReactor* Unauthenticated(grpc::CallbackServerContext* ctx, const char* method) {
    if (options_.metrics) options_.metrics->grpc_requests_total->Labels({method, "UNAUTHENTICATED"})->Inc();
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "missing or wrong bearer token"));
    return reactor;
  }
  void Count(const char* method, const Status& s) {
    if (options_.metrics)
      options_.metrics->grpc_requests_total->Labels({method, std::string(StatusCodeName(s.code()))})->Inc();
  }
  grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* ctx, const char* method, const Status& s) {
    Count(method, s);
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(ToGrpc(s));
    return reactor;
  }

  InferenceService* service_;
  GrpcServerOptions options_;
};

}  // namespace

struct GrpcServer::Impl {
  std::unique_ptr<ServiceImpl> service;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  bool stopped = false;
};

GrpcServer::GrpcServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

StatusOr<std::unique_ptr<GrpcServer>> GrpcServer::Start(InferenceService* service,
                                                        const GrpcServerOptions& options) {
  if (!service) return InvalidArgument("GrpcServer needs a service");
  if (options.max_message_bytes == 0 || options.max_message_bytes > INT32_MAX)
    return InvalidArgument("gRPC max message bytes must be in 1..2^31-1");
  auto impl = std::make_unique<Impl>();
  impl->service = std::make_unique<ServiceImpl>(service, options);
  grpc::ServerBuilder builder;
  std::string addr = options.address + ":" + std::to_string(options.port);
  builder.AddListeningPort(addr, grpc::InsecureServerCredentials(), &impl->port);
  builder.SetMaxReceiveMessageSize(static_cast<int>(options.max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(options.max_message_bytes));
  builder.RegisterService(impl->service.get());
  impl->server = builder.BuildAndStart();
  if (!impl->server || impl->port == 0) return Unavailable("cannot listen for gRPC on {}", addr);
  GH_LOG_INFO("grpc", "listening on {}:{}", options.address, impl->port);
  return std::unique_ptr<GrpcServer>(new GrpcServer(std::move(impl)));
}

uint16_t GrpcServer::port() const { return static_cast<uint16_t>(impl_->port); }

void GrpcServer::Stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(10));
  impl_->server->Wait();
}

GrpcServer::~GrpcServer() { Stop(); }

}  // namespace gpuhive::server
