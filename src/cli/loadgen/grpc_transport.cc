// gRPC client on the async CompletionQueue API: Send starts a call from the io_context thread; one
// completion thread drains the queue and posts each result back to the io_context.
#include <boost/asio/post.hpp>
#include <grpcpp/grpcpp.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <thread>

#include "cli/loadgen/transport.h"
#include "grpc_service.grpc.pb.h"

namespace gpuhive::loadgen {
namespace {

namespace net = boost::asio;

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

class GrpcTransport final : public Transport {
 public:
  GrpcTransport(net::io_context& ioc, const std::string& target, TransportOptions o)
      : ioc_(ioc), options_(o), stub_(inference::GRPCInferenceService::NewStub(MakeChannel(target))) {
    poller_ = std::thread([this] { Poll(); });
  }
  ~GrpcTransport() override { Close(); }

  Status AddStream(const RequestTemplate& r) override {
    auto req = std::make_unique<inference::ModelInferRequest>();
    req->set_model_name(r.model);
    req->set_model_version(r.version);
    for (const auto& in : r.inputs) {
      auto* t = req->add_inputs();
      t->set_name(in.name);
      t->set_datatype(in.datatype);
      for (int64_t d : in.shape) t->add_shape(d);
      req->add_raw_input_contents(in.bytes);
    }
    auto& params = *req->mutable_parameters();
    if (r.triton_priority) params["priority"].set_int64_param(*r.triton_priority);
    if (!r.tenant.empty()) params["tenant"].set_string_param(r.tenant);
    if (r.timeout_us > 0) params["timeout"].set_int64_param(r.timeout_us);
    requests_.push_back(std::move(req));
    return Status::OK();
  }

  void Send(size_t stream, Done done) override {
    ++in_flight_;
    auto* call = new Call;
    call->done = std::move(done);
    call->deadline = std::chrono::system_clock::now() + options_.timeout;
    call->context.set_deadline(call->deadline);
    // The request is serialized inside PrepareAsync, so one template serves concurrent calls.
    call->reader = stub_->PrepareAsyncModelInfer(&call->context, *requests_[stream], &cq_);
    call->reader->StartCall();
    call->reader->Finish(&call->response, &call->status, call);
  }

  size_t in_flight() const override { return in_flight_; }
  void DropBacklog() override {}

  void Close() override {
    if (closed_.exchange(true)) return;
    cq_.Shutdown();
    if (poller_.joinable()) poller_.join();
  }

 private:
  struct Call {
    grpc::ClientContext context;
    inference::ModelInferResponse response;
    grpc::Status status;
    std::unique_ptr<grpc::ClientAsyncResponseReader<inference::ModelInferResponse>> reader;
    std::chrono::system_clock::time_point deadline;
    Done done;
  };

  // How early a DEADLINE_EXCEEDED may arrive and still be the client's own deadline: a tenth of
  // the timeout, at most 100 ms (seen: one of five 3 s calls ended early under ASan in CI).
  std::chrono::system_clock::duration DeadlineSlack() const {
    return std::min<std::chrono::system_clock::duration>(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(options_.timeout) / 10,
        std::chrono::milliseconds(100));
  }

  void Poll() {
    void* tag = nullptr;
    bool ok = false;
    while (cq_.Next(&tag, &ok)) {
      std::unique_ptr<Call> call(static_cast<Call*>(tag));
      Outcome o;
      if (call->status.ok()) {
        o = {true, "ok"};
      } else if (call->status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED &&
                 std::chrono::system_clock::now() >= call->deadline - DeadlineSlack()) {
        // Our deadline: gRPC propagates it to the server, which may end the call a little before
        // this clock reaches it (a server-side request timeout well before it is the server's).
        o = {false, "client_timeout"};
      } else {
        o = {false, "grpc_" + std::to_string(static_cast<int>(call->status.error_code()))};
      }
      Done done = std::move(call->done);
      call.reset();
      net::post(ioc_, [this, done = std::move(done), o]() mutable {
        --in_flight_;
        done(o);
      });
    }
  }

  net::io_context& ioc_;
  TransportOptions options_;
  std::unique_ptr<inference::GRPCInferenceService::Stub> stub_;
  std::vector<std::unique_ptr<inference::ModelInferRequest>> requests_;
  grpc::CompletionQueue cq_;
  std::thread poller_;
  std::atomic<bool> closed_{false};
  size_t in_flight_ = 0;  // io_context thread only
};

std::unique_ptr<Transport> MakeGrpcTransport(net::io_context& ioc, const std::string& target,
                                             const TransportOptions& options) {
  return std::make_unique<GrpcTransport>(ioc, target, options);
}

StatusOr<std::string> GrpcModelMetadataJson(const std::string& target, const std::string& model,
                                            const std::string& version, std::chrono::milliseconds timeout) {
  auto stub = inference::GRPCInferenceService::NewStub(MakeChannel(target));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  inference::ModelMetadataRequest req;
  req.set_name(model);
  req.set_version(version);
  inference::ModelMetadataResponse resp;
  grpc::Status st = stub->ModelMetadata(&ctx, req, &resp);
  if (!st.ok()) {
    if (st.error_code() == grpc::StatusCode::NOT_FOUND) return NotFound("{}", st.error_message());
    return Unavailable("ModelMetadata({}): {} ({})", model, st.error_message(), static_cast<int>(st.error_code()));
  }
  nlohmann::json j = {{"name", resp.name()}, {"inputs", nlohmann::json::array()}};
  for (const auto& t : resp.inputs()) {
    std::vector<int64_t> shape(t.shape().begin(), t.shape().end());
    j["inputs"].push_back({{"name", t.name()}, {"datatype", t.datatype()}, {"shape", shape}});
  }
  return j.dump();
}

class Client final : public GrpcClient {
 public:
  std::unique_ptr<Transport> MakeTransport(net::io_context& ioc, const std::string& target,
                                           const TransportOptions& options) override {
    return MakeGrpcTransport(ioc, target, options);
  }
  StatusOr<std::string> ModelMetadataJson(const std::string& target, const std::string& model,
                                          const std::string& version, std::chrono::milliseconds timeout) override {
    return GrpcModelMetadataJson(target, model, version, timeout);
  }
};

}  // namespace

GrpcClient* GrpcTransportClient() {
  static Client client;  // stateless: nothing to destroy at exit
  return &client;
}

}  // namespace gpuhive::loadgen
