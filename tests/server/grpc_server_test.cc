// The gRPC frontend through the generated stub, against FakeService.
#include "gpuhive/server/grpc_server.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <cstring>
#include <mutex>

#include "gpuhive/server/fake_service.h"
#include "grpc_service.grpc.pb.h"

namespace gpuhive::server {
namespace {

class GrpcServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    GrpcServerOptions o;
    o.port = 0;
    o.auth_token = "tok";
    o.metrics = &service_.metrics();
    auto s = GrpcServer::Start(&service_, o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(*s);
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                                       grpc::InsecureChannelCredentials());
    stub_ = inference::GRPCInferenceService::NewStub(channel);
  }

  FakeService service_;
  std::unique_ptr<GrpcServer> server_;
  std::unique_ptr<inference::GRPCInferenceService::Stub> stub_;
};

inference::ModelInferRequest AddSubRequest(const std::vector<int32_t>& a, const std::vector<int32_t>& b,
                                           bool raw) {
  inference::ModelInferRequest req;
  req.set_model_name("add_sub");
  req.set_id("g1");
  const std::vector<int32_t>* data[2] = {&a, &b};
  for (int i = 0; i < 2; ++i) {
    auto* in = req.add_inputs();
    in->set_name(i == 0 ? "INPUT0" : "INPUT1");
    in->set_datatype("INT32");
    in->add_shape(1);
    in->add_shape(static_cast<int64_t>(data[i]->size()));
    if (raw) {
      req.add_raw_input_contents(reinterpret_cast<const char*>(data[i]->data()), data[i]->size() * 4);
    } else {
      for (int32_t v : *data[i]) in->mutable_contents()->add_int_contents(v);
    }
  }
  return req;
}

std::vector<int32_t> Seq(int32_t start) {
  std::vector<int32_t> v(16);
  for (int i = 0; i < 16; ++i) v[i] = start * (i + 1);
  return v;
}

TEST_F(GrpcServerTest, HealthAndMetadata) {
  grpc::ClientContext c1, c2, c3, c4, c5, c6;
  inference::ServerLiveResponse live;
  ASSERT_TRUE(stub_->ServerLive(&c1, {}, &live).ok());
  EXPECT_TRUE(live.live());
  inference::ServerReadyResponse ready;
  ASSERT_TRUE(stub_->ServerReady(&c2, {}, &ready).ok());
  EXPECT_TRUE(ready.ready());
  inference::ServerMetadataResponse smd;
  ASSERT_TRUE(stub_->ServerMetadata(&c3, {}, &smd).ok());
  EXPECT_EQ(smd.name(), "gpuhive");
  inference::ModelMetadataRequest mreq;
  mreq.set_name("add_sub");
  inference::ModelMetadataResponse mmd;
  ASSERT_TRUE(stub_->ModelMetadata(&c4, mreq, &mmd).ok());
  ASSERT_EQ(mmd.inputs_size(), 2);
  EXPECT_EQ(mmd.inputs(0).datatype(), "INT32");
  EXPECT_EQ(mmd.inputs(0).shape(0), -1);
  mreq.set_name("nope");
  EXPECT_EQ(stub_->ModelMetadata(&c5, mreq, &mmd).error_code(), grpc::StatusCode::NOT_FOUND);
  inference::ModelReadyRequest rr;
  rr.set_name("unloaded");
  inference::ModelReadyResponse rresp;
  ASSERT_TRUE(stub_->ModelReady(&c6, rr, &rresp).ok());
  EXPECT_FALSE(rresp.ready());
}

TEST_F(GrpcServerTest, InferRawAndTypedAgree) {
  auto a = Seq(3), b = Seq(-11);
  inference::ModelInferResponse raw_resp, typed_resp;
  grpc::ClientContext c1, c2;
  ASSERT_TRUE(stub_->ModelInfer(&c1, AddSubRequest(a, b, true), &raw_resp).ok());
  grpc::Status st = stub_->ModelInfer(&c2, AddSubRequest(a, b, false), &typed_resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(raw_resp.outputs_size(), 2);
  ASSERT_EQ(raw_resp.raw_output_contents_size(), 2);
  EXPECT_EQ(raw_resp.id(), "g1");
  for (int k = 0; k < 2; ++k) {
    EXPECT_EQ(raw_resp.raw_output_contents(k), typed_resp.raw_output_contents(k));
    const std::string& bytes = raw_resp.raw_output_contents(k);
    ASSERT_EQ(bytes.size(), 64u);
    for (int i = 0; i < 16; ++i) {
      int32_t v;
      std::memcpy(&v, bytes.data() + 4 * i, 4);
      int32_t want = raw_resp.outputs(k).name() == "OUTPUT0" ? a[i] + b[i] : a[i] - b[i];
      EXPECT_EQ(v, want);
    }
  }
}

TEST_F(GrpcServerTest, BadInputsAndStatusCodes) {
  auto a = Seq(1);
  struct Case {
    const char* what;
    inference::ModelInferRequest req;
    grpc::StatusCode code;
  };
  std::vector<Case> cases;
  {
    auto r = AddSubRequest(a, a, true);
    r.mutable_raw_input_contents(0)->resize(60);
    cases.push_back({"raw length", r, grpc::StatusCode::INVALID_ARGUMENT});
  }
  {
    auto r = AddSubRequest(a, a, false);
    r.mutable_inputs(0)->mutable_contents()->mutable_int_contents()->RemoveLast();
    cases.push_back({"typed count", r, grpc::StatusCode::INVALID_ARGUMENT});
  }
  {
    auto r = AddSubRequest(a, a, false);
    r.mutable_inputs(1)->set_datatype("FP32");
    cases.push_back({"dtype", r, grpc::StatusCode::INVALID_ARGUMENT});
  }
  {
    auto r = AddSubRequest(a, a, false);
    r.mutable_inputs(1)->set_name("INPUT0");
    cases.push_back({"duplicate", r, grpc::StatusCode::INVALID_ARGUMENT});
  }
  {
    auto r = AddSubRequest(a, a, false);
    r.mutable_inputs()->RemoveLast();
    cases.push_back({"missing", r, grpc::StatusCode::INVALID_ARGUMENT});
  }
  {
    auto r = AddSubRequest(a, a, true);
    r.mutable_raw_input_contents()->RemoveLast();
    cases.push_back({"raw count", r, grpc::StatusCode::INVALID_ARGUMENT});
  }
  {
    auto r = AddSubRequest(a, a, false);
    r.mutable_inputs(0)->set_datatype("BYTES");
    cases.push_back({"bytes", r, grpc::StatusCode::UNIMPLEMENTED});
  }
  {
    auto r = AddSubRequest(a, a, false);
    r.set_model_name("ghost");
    cases.push_back({"unknown model", r, grpc::StatusCode::NOT_FOUND});
  }
  {
    auto r = AddSubRequest(a, a, false);
    r.set_model_version("4");
    cases.push_back({"unknown version", r, grpc::StatusCode::NOT_FOUND});
  }
  for (auto& c : cases) {
    grpc::ClientContext ctx;
    inference::ModelInferResponse resp;
    grpc::Status st = stub_->ModelInfer(&ctx, c.req, &resp);
    EXPECT_EQ(st.error_code(), c.code) << c.what << ": " << st.error_message();
    EXPECT_FALSE(st.error_message().empty()) << c.what;
  }
  // Queue full, cannot fit, deadline (Triton's timeout parameter, microseconds).
  inference::ModelInferRequest f;
  for (const char* model : {"busy", "nofit"}) {
    f.Clear();
    f.set_model_name(model);
    for (const char* n : {"INPUT0", "INPUT1"}) {
      auto* in = f.add_inputs();
      in->set_name(n);
      in->set_datatype("FP32");
      in->add_shape(1);
      in->add_shape(16);
      for (int i = 0; i < 16; ++i) in->mutable_contents()->add_fp32_contents(1.0f);
    }
    grpc::ClientContext ctx;
    inference::ModelInferResponse resp;
    auto code = stub_->ModelInfer(&ctx, f, &resp).error_code();
    EXPECT_EQ(code, std::string(model) == "busy" ? grpc::StatusCode::RESOURCE_EXHAUSTED
                                                 : grpc::StatusCode::UNAVAILABLE);
  }
  f.Clear();
  f.set_model_name("delay");
  auto* in = f.add_inputs();
  in->set_name("INPUT0");
  in->set_datatype("FP32");
  in->add_shape(1);
  in->add_shape(1);
  in->mutable_contents()->add_fp32_contents(2000);
  (*f.mutable_parameters())["timeout"].set_int64_param(20000);
  grpc::ClientContext ctx;
  inference::ModelInferResponse resp;
  EXPECT_EQ(stub_->ModelInfer(&ctx, f, &resp).error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
}

// Issue 16: an input carrying both raw_input_contents and typed contents is ambiguous (which
// one is the tensor?): refused, as Triton does, instead of silently taking the raw bytes.
TEST_F(GrpcServerTest, RawAndTypedContentsTogetherAreRefused) {
  auto a = Seq(1);
  auto r = AddSubRequest(a, a, true);
  for (int32_t v : a) r.mutable_inputs(0)->mutable_contents()->add_int_contents(v + 100);
  grpc::ClientContext ctx;
  inference::ModelInferResponse resp;
  grpc::Status st = stub_->ModelInfer(&ctx, r, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  EXPECT_NE(st.error_message().find("INPUT0"), std::string::npos) << st.error_message();
}

// Issue 16: bytes that do not parse as the method's request message were answered UNIMPLEMENTED
// with an empty message (gRPC's default when deserialization fails).
TEST_F(GrpcServerTest, UnparseableMessageIsInvalidArgumentWithAMessage) {
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()), grpc::InsecureChannelCredentials());
  grpc::GenericStub generic(channel);
  // Field 1 (model_name) as a length-delimited field whose length runs past the end; then a
  // field with the reserved wire type 7.
  for (const std::string& garbage : {std::string("\x0a\xff\x01" "abc", 6), std::string("\x0f\x01\x02", 3)}) {
    for (const char* method : {"/inference.GRPCInferenceService/ModelInfer",
                               "/inference.GRPCInferenceService/ModelMetadata",
                               "/inference.GRPCInferenceService/RepositoryModelLoad"}) {
      grpc::Slice slice(garbage);
      grpc::ByteBuffer request(&slice, 1), response;
      grpc::ClientContext ctx;
      ctx.AddMetadata("authorization", "Bearer tok");
      std::mutex mu;
      std::condition_variable cv;
      bool done = false;
      grpc::Status st;
      generic.UnaryCall(&ctx, method, grpc::StubOptions(), &request, &response, [&](grpc::Status s) {
        std::lock_guard<std::mutex> lock(mu);
        st = std::move(s);
        done = true;
        cv.notify_all();
      });
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return done; });
      EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << method << ": " << st.error_message();
      EXPECT_FALSE(st.error_message().empty()) << method;
    }
  }
  // The server still answers well-formed calls.
  grpc::ClientContext ctx;
  inference::ServerLiveResponse live;
  EXPECT_TRUE(stub_->ServerLive(&ctx, {}, &live).ok());
}

// RFC 7235: the auth scheme is case-insensitive.
TEST_F(GrpcServerTest, BearerSchemeIsCaseInsensitive) {
  inference::RepositoryModelLoadRequest load;
  load.set_model_name("unloaded");
  inference::RepositoryModelLoadResponse resp;
  for (const char* value : {"bearer tok", "BEARER tok", "Bearer tok"}) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", value);
    grpc::Status st = stub_->RepositoryModelLoad(&ctx, load, &resp);
    EXPECT_TRUE(st.ok()) << value << ": " << st.error_message();
  }
  for (const char* value : {"bearer TOK", "bearertok", "Basic tok"}) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", value);
    EXPECT_EQ(stub_->RepositoryModelLoad(&ctx, load, &resp).error_code(), grpc::StatusCode::UNAUTHENTICATED) << value;
  }
}

TEST_F(GrpcServerTest, RepositoryCallsNeedToken) {
  inference::RepositoryModelLoadRequest load;
  load.set_model_name("unloaded");
  inference::RepositoryModelLoadResponse lresp;
  {
    grpc::ClientContext ctx;
    EXPECT_EQ(stub_->RepositoryModelLoad(&ctx, load, &lresp).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer tok");
    EXPECT_TRUE(stub_->RepositoryModelLoad(&ctx, load, &lresp).ok());
  }
  inference::RepositoryIndexRequest ir;
  ir.set_ready(true);
  inference::RepositoryIndexResponse idx;
  grpc::ClientContext ctx;
  ASSERT_TRUE(stub_->RepositoryIndex(&ctx, ir, &idx).ok());
  bool found = false;
  for (const auto& m : idx.models()) found |= m.name() == "unloaded" && m.state() == "READY";
  EXPECT_TRUE(found);
  inference::RepositoryModelUnloadRequest un;
  un.set_model_name("unloaded");
  inference::RepositoryModelUnloadResponse uresp;
  grpc::ClientContext c2;
  c2.AddMetadata("authorization", "Bearer tok");
  EXPECT_TRUE(stub_->RepositoryModelUnload(&c2, un, &uresp).ok());
  EXPECT_FALSE(*service_.ModelReady("unloaded", ""));
}

// ModelMesh routing: the mm-model-id header names the model, and model_name_for_id maps ids.
TEST(GrpcServerModelMesh, ModelIdHeaderAndIdMappingRouteRequests) {
  FakeService service;
  GrpcServerOptions o;
  o.port = 0;
  o.model_name_for_id = [](const std::string& id) { return id == "mesh/add-sub" ? std::string("add_sub") : id; };
  auto s = GrpcServer::Start(&service, o);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto stub = inference::GRPCInferenceService::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string((*s)->port()), grpc::InsecureChannelCredentials()));

  // The id injected as the model name (ModelMesh's idInjectionPath).
  auto req = AddSubRequest(Seq(1), Seq(2), true);
  req.set_model_name("mesh/add-sub");
  {
    grpc::ClientContext ctx;
    inference::ModelInferResponse resp;
    grpc::Status st = stub->ModelInfer(&ctx, req, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message();
    EXPECT_EQ(resp.model_name(), "add_sub");
  }
  // The header wins over the name.
  req.set_model_name("no_such_model");
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("mm-model-id", "mesh/add-sub");
    inference::ModelInferResponse resp;
    grpc::Status st = stub->ModelInfer(&ctx, req, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message();
    ASSERT_EQ(resp.raw_output_contents_size(), 2);
    int32_t first = 0;
    std::memcpy(&first, resp.raw_output_contents(0).data(), 4);
    EXPECT_EQ(first, 3);  // 1 + 2
  }
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("mm-model-id", "mesh/add-sub");
    inference::ModelMetadataRequest mreq;
    inference::ModelMetadataResponse mresp;
    ASSERT_TRUE(stub->ModelMetadata(&ctx, mreq, &mresp).ok());
    EXPECT_EQ(mresp.name(), "add_sub");
  }
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("mm-model-id", "mesh/unknown");
    inference::ModelReadyRequest rreq;
    rreq.set_name("add_sub");
    inference::ModelReadyResponse rresp;
    EXPECT_EQ(stub->ModelReady(&ctx, rreq, &rresp).error_code(), grpc::StatusCode::NOT_FOUND);
  }
}

}  // namespace
}  // namespace gpuhive::server
