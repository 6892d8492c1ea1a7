#include "gpuhive/server/grpc_server.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <map>

#include "gpuhive/logging.h"
#include "gpuhive/units.h"
#include "gpuhive/utf8.h"
#include "grpc_service.grpc.pb.h"
#include "gpuhive/server/shared_memory.h"
#include "server/grpc_convert.h"
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


void FillDuration(const DurationStat& d, inference::StatisticDuration* out) {
  out->set_count(d.count);
  out->set_ns(d.ns);
}

void FillStatistics(const std::vector<server::ModelStatistics>& stats, inference::ModelStatisticsResponse* resp) {
  for (const auto& s : stats) {
    auto* m = resp->add_model_stats();
    m->set_name(ToValidUtf8(s.name));
    m->set_version(s.version);
    m->set_last_inference(s.last_inference_ms);
    m->set_inference_count(s.inference_count);
    m->set_execution_count(s.execution_count);
    auto* is = m->mutable_inference_stats();
    FillDuration(s.success, is->mutable_success());
    FillDuration(s.fail, is->mutable_fail());
    FillDuration(s.queue, is->mutable_queue());
    FillDuration(s.compute_input, is->mutable_compute_input());
    FillDuration(s.compute_infer, is->mutable_compute_infer());
    FillDuration(s.compute_output, is->mutable_compute_output());
    is->mutable_cache_hit();
    is->mutable_cache_miss();
    for (const auto& b : s.batch_stats) {
      auto* bs = m->add_batch_stats();
      bs->set_batch_size(b.batch_size);
      FillDuration(b.compute_input, bs->mutable_compute_input());
      FillDuration(b.compute_infer, bs->mutable_compute_infer());
      FillDuration(b.compute_output, bs->mutable_compute_output());
    }
  }
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

// Every method takes its request as bytes and parses it here. When gRPC parses, a message that
// does not parse is answered UNIMPLEMENTED with an empty message (the callback handler's default),
// which tells the client nothing; here it is INVALID_ARGUMENT naming the message type.
using G = inference::GRPCInferenceService;
using RawService = G::WithRawCallbackMethod_ServerLive<G::WithRawCallbackMethod_ServerReady<
    G::WithRawCallbackMethod_ModelReady<G::WithRawCallbackMethod_ServerMetadata<G::WithRawCallbackMethod_ModelMetadata<
        G::WithRawCallbackMethod_ModelInfer<G::WithRawCallbackMethod_RepositoryIndex<
            G::WithRawCallbackMethod_RepositoryModelLoad<G::WithRawCallbackMethod_RepositoryModelUnload<
                G::WithRawCallbackMethod_ModelStatistics<G::WithRawCallbackMethod_ModelConfig<
                    G::WithRawCallbackMethod_ModelStreamInfer<G::WithRawCallbackMethod_SystemSharedMemoryStatus<
                        G::WithRawCallbackMethod_SystemSharedMemoryRegister<
                            G::WithRawCallbackMethod_SystemSharedMemoryUnregister<G::Service>>>>>>>>>>>>>>>;

template <typename Message>
Status Parse(const grpc::ByteBuffer* in, Message* message) {
  if (in == nullptr || !in->Valid()) return Status::OK();  // no bytes: the empty message
  grpc::ByteBuffer copy(*in);  // deserializing consumes its buffer; the copy shares the slices
  grpc::Status st = grpc::SerializationTraits<Message>::Deserialize(&copy, message);
  if (!st.ok()) {
    return InvalidArgument("the request is not a valid {} message: {}", message->GetTypeName(), st.error_message());
  }
  return Status::OK();
}

template <typename Message>
Status Serialize(const Message& message, grpc::ByteBuffer* out) {
  bool own_buffer = false;
  grpc::Status st = grpc::SerializationTraits<Message>::Serialize(message, out, &own_buffer);
  if (!st.ok()) return Internal("cannot serialize the {}: {}", message.GetTypeName(), st.error_message());
  return Status::OK();
}

class ServiceImpl final : public RawService {
 public:
  ServiceImpl(InferenceService* s, const GrpcServerOptions& o) : service_(s), options_(o) {}

  grpc::ServerUnaryReactor* ServerLive(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* in,
                                       grpc::ByteBuffer* out) override {
    return Unary<inference::ServerLiveRequest, inference::ServerLiveResponse>(
        ctx, in, out, "ServerLive", [&](const auto&, auto* resp) {
          resp->set_live(service_->IsLive());
          return Status::OK();
        });
  }
  grpc::ServerUnaryReactor* ServerReady(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* in,
                                        grpc::ByteBuffer* out) override {
    return Unary<inference::ServerReadyRequest, inference::ServerReadyResponse>(
        ctx, in, out, "ServerReady", [&](const auto&, auto* resp) {
          resp->set_ready(service_->IsReady());
          return Status::OK();
        });
  }
  grpc::ServerUnaryReactor* ModelReady(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* in,
                                       grpc::ByteBuffer* out) override {
    return Unary<inference::ModelReadyRequest, inference::ModelReadyResponse>(
        ctx, in, out, "ModelReady", [&](const auto& req, auto* resp) {
          auto r = service_->ModelReady(ModelName(ctx, req.name()), req.version());
          if (r.ok()) resp->set_ready(*r);
          return r.status();
        });
  }
  grpc::ServerUnaryReactor* ServerMetadata(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* in,
                                           grpc::ByteBuffer* out) override {
    return Unary<inference::ServerMetadataRequest, inference::ServerMetadataResponse>(
        ctx, in, out, "ServerMetadata", [&](const auto&, auto* resp) {
          auto m = service_->GetServerMetadata();
          resp->set_name(m.name);
          resp->set_version(m.version);
          for (const auto& e : m.extensions) resp->add_extensions(e);
          return Status::OK();
        });
  }
  grpc::ServerUnaryReactor* ModelMetadata(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* in,
                                          grpc::ByteBuffer* out) override {
    return Unary<inference::ModelMetadataRequest, inference::ModelMetadataResponse>(
        ctx, in, out, "ModelMetadata", [&](const auto& req, auto* resp) {
          auto m = service_->GetModelMetadata(ModelName(ctx, req.name()), req.version());
          if (m.ok()) {
            resp->set_name(m->name);
            for (const auto& v : m->versions) resp->add_versions(v);
            resp->set_platform(m->platform);
            FillTensorMetadata(m->inputs, resp->mutable_inputs());
            FillTensorMetadata(m->outputs, resp->mutable_outputs());
          }
          return m.status();
        });
  }
  grpc::ServerUnaryReactor* RepositoryIndex(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* in,
                                            grpc::ByteBuffer* out) override {
    return Unary<inference::RepositoryIndexRequest, inference::RepositoryIndexResponse>(
        ctx, in, out, "RepositoryIndex", [&](const auto& req, auto* resp) {
          auto idx = service_->RepositoryIndex(req.ready());
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
          return idx.status();
        });
  }
  grpc::ServerUnaryReactor* RepositoryModelLoad(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* in,
                                                grpc::ByteBuffer* out) override {
    if (!Authorized(ctx)) return Unauthenticated(ctx, "RepositoryModelLoad");
    return Unary<inference::RepositoryModelLoadRequest, inference::RepositoryModelLoadResponse>(
        ctx, in, out, "RepositoryModelLoad",
        [&](const auto& req, auto*) -> Status {
          std::string config;
          for (const auto& [key, p] : req.parameters()) {
            if (key != "config") {
              return InvalidArgument("load parameter '{}' is not supported (only 'config', the model config as JSON)",
                                     key);
            }
            if (p.parameter_choice_case() != inference::ModelRepositoryParameter::kStringParam ||
                p.string_param().empty()) {
              return InvalidArgument("parameter 'config' must be a non-empty string holding JSON");
            }
            config = p.string_param();
          }
          return service_->LoadModelWithConfig(req.model_name(), config);
        });
  }
  grpc::ServerUnaryReactor* RepositoryModelUnload(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* in,
                                                  grpc::ByteBuffer* out) override {
    if (!Authorized(ctx)) return Unauthenticated(ctx, "RepositoryModelUnload");
    return Unary<inference::RepositoryModelUnloadRequest, inference::RepositoryModelUnloadResponse>(
        ctx, in, out, "RepositoryModelUnload",
        [&](const auto& req, auto*) { return service_->UnloadModel(req.model_name()); });
  }

  grpc::ServerUnaryReactor* ModelStatistics(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* in,
                                            grpc::ByteBuffer* out) override {
    return Unary<inference::ModelStatisticsRequest, inference::ModelStatisticsResponse>(
        ctx, in, out, "ModelStatistics", [&](const auto& req, auto* resp) {
          auto stats = service_->GetModelStatistics(req.name(), req.version());
          if (stats.ok()) FillStatistics(*stats, resp);
          return stats.status();
        });
  }
  grpc::ServerUnaryReactor* ModelConfig(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* in,
                                        grpc::ByteBuffer* out) override {
    return Unary<inference::ModelConfigRequest, inference::ModelConfigResponse>(
        ctx, in, out, "ModelConfig", [&](const auto& req, auto* resp) -> Status {
          if (req.name().empty()) return InvalidArgument("ModelConfig needs a model name");
          auto config = service_->GetModelConfig(req.name(), req.version());
          if (!config.ok()) return config.status();
          if (!resp->mutable_config()->ParseFromString(config->proto)) return Internal("cannot encode the model config");
          return Status::OK();
        });
  }

  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* ModelStreamInfer(
      grpc::CallbackServerContext* ctx) override;

  grpc::ServerUnaryReactor* SystemSharedMemoryStatus(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* in,
                                                     grpc::ByteBuffer* out) override {
    return Unary<inference::SystemSharedMemoryStatusRequest, inference::SystemSharedMemoryStatusResponse>(
        ctx, in, out, "SystemSharedMemoryStatus", [&](const auto& req, auto* resp) -> Status {
          if (options_.shm == nullptr) return Unimplemented("the system shared memory extension is not enabled");
          ASSIGN_OR_RETURN(auto list, options_.shm->List(req.name()));
          for (const auto& r : list) {
            auto& s = (*resp->mutable_regions())[ToValidUtf8(r.name)];
            s.set_name(ToValidUtf8(r.name));
            s.set_key(ToValidUtf8(r.key));
            s.set_offset(r.offset);
            s.set_byte_size(r.byte_size);
          }
          return Status::OK();
        });
  }
  grpc::ServerUnaryReactor* SystemSharedMemoryRegister(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* in,
                                                       grpc::ByteBuffer* out) override {
    if (!Authorized(ctx)) return Unauthenticated(ctx, "SystemSharedMemoryRegister");
    return Unary<inference::SystemSharedMemoryRegisterRequest, inference::SystemSharedMemoryRegisterResponse>(
        ctx, in, out, "SystemSharedMemoryRegister", [&](const auto& req, auto*) -> Status {
          if (options_.shm == nullptr) return Unimplemented("the system shared memory extension is not enabled");
          return options_.shm->Register(SharedMemoryRegionInfo{req.name(), req.key(), req.offset(), req.byte_size()});
        });
  }
  grpc::ServerUnaryReactor* SystemSharedMemoryUnregister(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* in,
                                                         grpc::ByteBuffer* out) override {
    if (!Authorized(ctx)) return Unauthenticated(ctx, "SystemSharedMemoryUnregister");
    return Unary<inference::SystemSharedMemoryUnregisterRequest, inference::SystemSharedMemoryUnregisterResponse>(
        ctx, in, out, "SystemSharedMemoryUnregister", [&](const auto& req, auto*) -> Status {
          if (options_.shm == nullptr) return Unimplemented("the system shared memory extension is not enabled");
          return options_.shm->Unregister(req.name());
        });
  }

  // Parses and submits one inference; `done` gets its outcome (OK with the response filled, or
  // the error) exactly once, possibly before this returns.
  void SubmitInfer(const grpc::ByteBuffer* in, int64_t ctx_deadline,
                   std::function<void(Status, inference::ModelInferResponse)> done) {
    inference::ModelInferRequest req;
    if (Status s = Parse(in, &req); !s.ok()) return done(s, {});
    auto meta = service_->GetModelMetadata(req.model_name(), req.model_version());
    if (!meta.ok()) return done(meta.status(), {});
    ResponseOptions options;
    auto built = BuildRequest(req, *meta, ctx_deadline, &options, options_.shm);
    if (!built.ok()) return done(built.status(), {});
    std::unique_ptr<InferenceRequest> r = std::move(*built);
    r->on_complete = [done = std::move(done), options = std::move(options)](InferenceResponse result) {
      inference::ModelInferResponse resp;
      Status status = result.status;
      if (status.ok()) status = FillInferResponse(result, options, &resp);
      done(status, std::move(resp));
    };
    service_->Infer(std::move(r));
  }
  void CountCall(const char* method, const Status& s) { Count(method, s); }

  grpc::ServerUnaryReactor* ModelInfer(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* in,
                                       grpc::ByteBuffer* out) override {
    inference::ModelInferRequest req;
    if (Status s = Parse(in, &req); !s.ok()) return Done(ctx, "ModelInfer", s);
    req.set_model_name(ModelName(ctx, req.model_name()));
    auto meta = service_->GetModelMetadata(req.model_name(), req.model_version());
    if (!meta.ok()) return Done(ctx, "ModelInfer", meta.status());
    int64_t ctx_deadline = 0;
    auto dl = ctx->deadline();
    if (dl != std::chrono::system_clock::time_point::max()) {
      auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(dl - std::chrono::system_clock::now());
      ctx_deadline = NowNs() + std::max<int64_t>(left.count(), 1);
    }
    ResponseOptions options;
    auto built = BuildRequest(req, *meta, ctx_deadline, &options, options_.shm);  // copies the tensors out
    if (!built.ok()) return Done(ctx, "ModelInfer", built.status());
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    std::unique_ptr<InferenceRequest> r = std::move(*built);
    // `out` lives until the reactor finishes.
    r->on_complete = [this, reactor, out, options = std::move(options)](InferenceResponse result) {
      Status status = result.status;
      if (status.ok()) {
        inference::ModelInferResponse resp;
        status = FillInferResponse(result, options, &resp);
        if (status.ok()) status = Serialize(resp, out);
      }
      Count("ModelInfer", status);
      reactor->Finish(ToGrpc(status));
    };
    service_->Infer(std::move(r));
    return reactor;
  }

 private:
  // The model a request is for: ModelMesh's `mm-model-id` header wins over the message's name.
  std::string ModelName(grpc::CallbackServerContext* ctx, const std::string& name) const {
    std::string model = name;
    const auto& md = ctx->client_metadata();
    auto it = md.find("mm-model-id");
    if (it != md.end()) model.assign(it->second.data(), it->second.size());
    return options_.model_name_for_id ? options_.model_name_for_id(model) : model;
  }
  // Parses the request, lets `handle` fill the response (it returns the call's Status) and
  // answers; the response bytes are sent only with OK.
  template <typename Request, typename Response, typename Handle>
  grpc::ServerUnaryReactor* Unary(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* in, grpc::ByteBuffer* out,
                                  const char* method, Handle&& handle) {
    Request req;
    Status s = Parse(in, &req);
    if (s.ok()) {
      Response resp;
      s = handle(req, &resp);
      if (s.ok()) s = Serialize(resp, out);
    }
    return Done(ctx, method, s);
  }
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

// ModelStreamInfer: every request read from the stream is answered by one response on it, in
// completion order, as Triton's streaming API does for non-decoupled models; a request that fails
// (cannot be parsed, invalid, refused, failed) is answered with its error in error_message and the
// stream goes on. The stream ends OK once the client has closed its side and every response is
// written. State is guarded by mu_; gRPC operations are started outside it.
class StreamReactor final : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  StreamReactor(ServiceImpl* service, grpc::CallbackServerContext* ctx) : service_(service) {
    auto dl = ctx->deadline();
    if (dl != std::chrono::system_clock::time_point::max()) {
      auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(dl - std::chrono::system_clock::now());
      deadline_ns_ = NowNs() + std::max<int64_t>(left.count(), 1);
    }
    StartRead(&in_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      {
        std::lock_guard lock(mu_);
        reads_done_ = true;
      }
      Pump();
      return;
    }
    {
      std::lock_guard lock(mu_);
      ++in_flight_;
    }
    grpc::ByteBuffer request = std::move(in_);
    in_.Clear();
    service_->SubmitInfer(&request, deadline_ns_, [this](Status s, inference::ModelInferResponse resp) {
      service_->CountCall("ModelStreamInfer", s);
      inference::ModelStreamInferResponse out;
      if (s.ok()) {
        *out.mutable_infer_response() = std::move(resp);
      } else {
        out.set_error_message(ToValidUtf8(s.ToString()));
      }
      Push(out);
    });
    StartRead(&in_);
  }

  void OnWriteDone(bool ok) override {
    {
      std::lock_guard lock(mu_);
      writing_ = false;
      if (!ok) failed_ = true;  // the client went away: drop what is left, finish when idle
    }
    Pump();
  }

  void OnDone() override { delete this; }

 private:
  void Push(const inference::ModelStreamInferResponse& response) {
    grpc::ByteBuffer bytes;
    bool own = false;
    const bool serialized =
        grpc::SerializationTraits<inference::ModelStreamInferResponse>::Serialize(response, &bytes, &own).ok();
    {
      std::lock_guard lock(mu_);
      --in_flight_;
      if (serialized && !failed_) queue_.push_back(std::move(bytes));
    }
    Pump();
  }

  // Starts the next write, or finishes once the client is done and nothing is left.
  void Pump() {
    bool write = false, finish = false;
    {
      std::lock_guard lock(mu_);
      if (!writing_ && !failed_ && !queue_.empty()) {
        current_ = std::move(queue_.front());
        queue_.pop_front();
        writing_ = write = true;
      } else if (!writing_ && reads_done_ && in_flight_ == 0 && (queue_.empty() || failed_) && !finished_) {
        finished_ = finish = true;
      }
    }
    if (write) {
      StartWrite(&current_);
    } else if (finish) {
      Finish(grpc::Status::OK);
    }
  }

  ServiceImpl* const service_;
  int64_t deadline_ns_ = 0;
  grpc::ByteBuffer in_;       // only the reading side touches it (one read at a time)
  grpc::ByteBuffer current_;  // the write in progress
  std::mutex mu_;
  std::deque<grpc::ByteBuffer> queue_;  // GUARDED_BY(mu_)
  int64_t in_flight_ = 0;               // GUARDED_BY(mu_): requests read and not yet answered
  bool writing_ = false, reads_done_ = false, failed_ = false, finished_ = false;  // GUARDED_BY(mu_)
};

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* ServiceImpl::ModelStreamInfer(
    grpc::CallbackServerContext* ctx) {
  return new StreamReactor(this, ctx);
}

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
