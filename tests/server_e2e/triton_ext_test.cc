// Triton's protocol extensions against the core service behind the real frontends: statistics
// (HTTP and gRPC ModelStatistics) and model configuration (HTTP and gRPC ModelConfig).
#include <grpcpp/grpcpp.h>

#include <chrono>

#include "e2e_support.h"
#include "grpc_service.grpc.pb.h"

namespace gpuhive::server::testing {
namespace {

using json = nlohmann::json;

class TritonExt : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = StartServer(EngineOptions{});
    ASSERT_NE(server_, nullptr);
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->grpc->port()),
                                       grpc::InsecureChannelCredentials());
    stub_ = inference::GRPCInferenceService::NewStub(channel);
  }
  uint16_t port() const { return server_->http->port(); }
  std::unique_ptr<RunningServer> server_;
  std::unique_ptr<inference::GRPCInferenceService::Stub> stub_;
};

uint64_t NowEpochMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

TEST_F(TritonExt, StatisticsCountRequestsInferencesAndExecutions) {
  HttpClient c(port());
  auto before = c.Request("GET", "/v2/models/tiny_mlp/stats");
  ASSERT_EQ(before.status, 200) << before.body;
  auto b = json::parse(before.body);
  ASSERT_EQ(b["model_stats"].size(), 1u);
  EXPECT_EQ(b["model_stats"][0]["name"], "tiny_mlp");
  EXPECT_EQ(b["model_stats"][0]["version"], "1");
  EXPECT_EQ(b["model_stats"][0]["inference_stats"]["success"]["count"], 0);
  EXPECT_EQ(b["model_stats"][0]["last_inference"], 0);

  const uint64_t start_ms = NowEpochMs();
  for (int i = 0; i < 3; ++i) {
    auto r = c.Request("POST", "/v2/models/tiny_mlp/infer", TinyMlpJson(2).dump());
    ASSERT_EQ(r.status, 200) << r.body;
  }
  auto after = json::parse(c.Request("GET", "/v2/models/tiny_mlp/stats").body)["model_stats"][0];
  const auto& is = after["inference_stats"];
  EXPECT_EQ(is["success"]["count"], 3);
  EXPECT_GT(is["success"]["ns"].get<uint64_t>(), 0u);
  EXPECT_EQ(is["fail"]["count"], 0);
  EXPECT_EQ(is["queue"]["count"], 3);
  EXPECT_EQ(is["compute_infer"]["count"], 3);
  EXPECT_GT(is["compute_infer"]["ns"].get<uint64_t>(), 0u);
  EXPECT_EQ(is["compute_input"]["count"], 3);
  EXPECT_EQ(is["compute_output"]["count"], 3);
  // Each request has 2 rows: 6 inferences, in as many executions as the batcher formed.
  EXPECT_EQ(after["inference_count"], 6);
  const uint64_t executions = after["execution_count"].get<uint64_t>();
  EXPECT_GE(executions, 1u);
  EXPECT_LE(executions, 3u);
  uint64_t batch_executions = 0, batch_rows = 0;
  for (const auto& bs : after["batch_stats"]) {
    batch_executions += bs["compute_infer"]["count"].get<uint64_t>();
    batch_rows += bs["batch_size"].get<uint64_t>() * bs["compute_infer"]["count"].get<uint64_t>();
  }
  EXPECT_EQ(batch_executions, executions);
  EXPECT_EQ(batch_rows, 6u);
  EXPECT_GE(after["last_inference"].get<uint64_t>(), start_ms);
  EXPECT_LE(after["last_inference"].get<uint64_t>(), NowEpochMs());

  // A request that passes validation and fails in the server (its 1 us timeout passes while it
  // is queued) is a failure, not a success.
  json late = TinyMlpJson(1);
  late["parameters"] = {{"timeout", 1}};
  auto lr = c.Request("POST", "/v2/models/tiny_mlp/infer", late.dump());
  EXPECT_EQ(lr.status, 504) << lr.body;
  auto failed = json::parse(c.Request("GET", "/v2/models/tiny_mlp/stats").body)["model_stats"][0];
  EXPECT_EQ(failed["inference_stats"]["fail"]["count"], 1);
  EXPECT_EQ(failed["inference_stats"]["success"]["count"], 3);
  EXPECT_EQ(failed["inference_count"], 6);

  inference::ModelStatisticsRequest req;
  req.set_name("tiny_mlp");
  inference::ModelStatisticsResponse resp;
  grpc::ClientContext ctx;
  grpc::Status st = stub_->ModelStatistics(&ctx, req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(resp.model_stats_size(), 1);
  EXPECT_EQ(resp.model_stats(0).inference_count(), 6u);
  EXPECT_EQ(resp.model_stats(0).execution_count(), executions);
  EXPECT_EQ(resp.model_stats(0).inference_stats().success().count(), 3u);
  EXPECT_EQ(static_cast<uint64_t>(resp.model_stats(0).batch_stats_size()), after["batch_stats"].size());
}

TEST_F(TritonExt, StatisticsSelectModelsAndVersions) {
  HttpClient c(port());
  auto all = json::parse(c.Request("GET", "/v2/models/stats").body);
  std::set<std::string> names;
  for (const auto& s : all["model_stats"]) names.insert(s["name"].get<std::string>() + ":" + s["version"].get<std::string>());
  EXPECT_TRUE(names.count("tiny_mlp:1")) << all.dump();
  EXPECT_TRUE(names.count("two_versions:1") && names.count("two_versions:2")) << all.dump();
  EXPECT_EQ(json::parse(c.Request("GET", "/v2/models/two_versions/stats").body)["model_stats"].size(), 2u);
  auto one = json::parse(c.Request("GET", "/v2/models/two_versions/versions/1/stats").body);
  ASSERT_EQ(one["model_stats"].size(), 1u);
  EXPECT_EQ(one["model_stats"][0]["version"], "1");
  EXPECT_EQ(c.Request("GET", "/v2/models/no_such_model/stats").status, 404);
  EXPECT_EQ(c.Request("GET", "/v2/models/two_versions/versions/9/stats").status, 404);
  EXPECT_EQ(c.Request("POST", "/v2/models/tiny_mlp/stats").status, 405);

  inference::ModelStatisticsRequest req;  // no name: every model
  inference::ModelStatisticsResponse resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(stub_->ModelStatistics(&ctx, req, &resp).ok());
  EXPECT_EQ(static_cast<size_t>(resp.model_stats_size()), all["model_stats"].size());
  inference::ModelStatisticsRequest bad;
  bad.set_name("no_such_model");
  grpc::ClientContext ctx2;
  EXPECT_EQ(stub_->ModelStatistics(&ctx2, bad, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(TritonExt, ModelConfigInTritonsJsonAndProtoForms) {
  HttpClient c(port());
  auto r = c.Request("GET", "/v2/models/tiny_mlp/config");
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = json::parse(r.body);
  EXPECT_EQ(j["name"], "tiny_mlp");
  EXPECT_EQ(j["platform"], "onnxruntime_onnx");
  EXPECT_EQ(j["max_batch_size"], 8);
  EXPECT_EQ(j["input"][0]["name"], "INPUT0");
  EXPECT_EQ(j["input"][0]["data_type"], "TYPE_FP32");
  EXPECT_EQ(j["input"][0]["dims"], json({16}));  // numbers, as Triton writes them
  EXPECT_EQ(j["output"][0]["dims"], json({4}));
  EXPECT_EQ(j["dynamic_batching"]["preferred_batch_size"], json({4, 8}));
  EXPECT_EQ(j["dynamic_batching"]["max_queue_delay_microseconds"], 500);
  EXPECT_EQ(j["version_policy"]["latest"]["num_versions"], 1);
  EXPECT_FALSE(j["instance_group"].empty());
  // Every field is printed, also those the config left out.
  EXPECT_TRUE(j.contains("default_model_filename")) << r.body;

  auto derived = json::parse(c.Request("GET", "/v2/models/identity_fp32/config").body);
  EXPECT_EQ(derived["name"], "identity_fp32");
  EXPECT_FALSE(derived["input"].empty());
  auto v1 = json::parse(c.Request("GET", "/v2/models/two_versions/versions/1/config").body);
  EXPECT_TRUE(v1["version_policy"].contains("all")) << v1.dump();
  EXPECT_EQ(c.Request("GET", "/v2/models/no_such_model/config").status, 404);

  inference::ModelConfigRequest req;
  req.set_name("tiny_mlp");
  inference::ModelConfigResponse resp;
  grpc::ClientContext ctx;
  grpc::Status st = stub_->ModelConfig(&ctx, req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(resp.config().name(), "tiny_mlp");
  EXPECT_EQ(resp.config().max_batch_size(), 8);
  ASSERT_EQ(resp.config().input_size(), 1);
  EXPECT_EQ(resp.config().input(0).dims(0), 16);
  EXPECT_EQ(resp.config().input(0).data_type(), gpuhive::config::TYPE_FP32);
  EXPECT_EQ(resp.config().dynamic_batching().max_queue_delay_microseconds(), 500u);
  inference::ModelConfigRequest missing;
  grpc::ClientContext ctx2;
  EXPECT_EQ(stub_->ModelConfig(&ctx2, missing, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

// Every nv_* family Triton documents for what gpuhive has (per-model counts and latencies, CPU) is
// on /metrics with Triton's type and labels, and counts what Triton counts (GPU families: see
// NvmlTest.TritonGpuMetricsByUuid, which needs NVML).
TEST_F(TritonExt, TritonMetricsScrape) {
  HttpClient c(port());
  ASSERT_EQ(c.Request("POST", "/v2/models/tiny_mlp/infer", TinyMlpJson(3).dump()).status, 200);
  ASSERT_EQ(c.Request("POST", "/v2/models/tiny_mlp/infer", TinyMlpJson(2).dump()).status, 200);
  json late = TinyMlpJson(1);
  late["parameters"] = {{"timeout", 1}};
  ASSERT_EQ(c.Request("POST", "/v2/models/tiny_mlp/infer", late.dump()).status, 504);
  auto r = c.Request("GET", "/metrics");
  ASSERT_EQ(r.status, 200);
  const std::string& text = r.body;
  const std::string mv = "{model=\"tiny_mlp\",version=\"1\"}";
  auto value = [&](const std::string& series) -> double {
    size_t pos = text.find("\n" + series + " ");
    if (pos == std::string::npos) return -1;
    return std::stod(text.substr(pos + series.size() + 2));
  };
  for (const char* counter : {"nv_inference_request_success", "nv_inference_count", "nv_inference_exec_count",
                              "nv_inference_request_duration_us", "nv_inference_queue_duration_us",
                              "nv_inference_compute_input_duration_us", "nv_inference_compute_infer_duration_us",
                              "nv_inference_compute_output_duration_us"}) {
    EXPECT_NE(text.find(std::string("# TYPE ") + counter + " counter\n"), std::string::npos) << counter;
    EXPECT_GE(value(counter + mv), 0) << counter << " has no {model, version} series";
  }
  EXPECT_EQ(value("nv_inference_request_success" + mv), 2);
  EXPECT_EQ(value("nv_inference_count" + mv), 5);  // inferences: batch items, not requests
  EXPECT_GE(value("nv_inference_exec_count" + mv), 1);
  EXPECT_LE(value("nv_inference_exec_count" + mv), 2);
  EXPECT_GT(value("nv_inference_request_duration_us" + mv), 0);
  EXPECT_GT(value("nv_inference_compute_infer_duration_us" + mv), 0);
  EXPECT_NE(text.find("# TYPE nv_inference_request_failure counter\n"), std::string::npos);
  EXPECT_EQ(value("nv_inference_request_failure{model=\"tiny_mlp\",reason=\"REJECTED\",version=\"1\"}"), 1);
  EXPECT_EQ(value("nv_inference_request_failure{model=\"tiny_mlp\",reason=\"BACKEND\",version=\"1\"}"), 0);
  EXPECT_NE(text.find("# TYPE nv_inference_pending_request_count gauge\n"), std::string::npos);
  EXPECT_EQ(value("nv_inference_pending_request_count" + mv), 0);
  for (const char* gauge : {"nv_cpu_utilization", "nv_cpu_memory_total_bytes", "nv_cpu_memory_used_bytes"}) {
    EXPECT_NE(text.find(std::string("# TYPE ") + gauge + " gauge\n"), std::string::npos) << gauge;
    EXPECT_GE(value(gauge), 0) << gauge;
  }
  EXPECT_GT(value("nv_cpu_memory_total_bytes"), 0);
  // gpuhive's own families are still there.
  EXPECT_NE(text.find("gpuhive_inference_count_total" + mv), std::string::npos);
}

}  // namespace
}  // namespace gpuhive::server::testing

namespace gpuhive::server::testing {
namespace {

// A client naming 1,000 different tenants does not grow the label set: undeclared tenants are
// scheduled and counted as "other"; declared ones (flag, weight, model config) keep their name.
TEST(TenantLabels, UndeclaredTenantsShareOneLabel) {
  EngineOptions o;
  o.tenants = {"team-a"};
  o.tenant_weights = {{"team-b", 2.0}};
  auto server = StartServer(o);
  ASSERT_NE(server, nullptr);
  HttpClient c(server->http->port());
  auto tenant_labels = [&] {
    std::set<std::string> labels;
    std::string text = c.Request("GET", "/metrics").body;
    const std::string prefix = "gpuhive_tenant_device_seconds_total{tenant=\"";
    for (size_t pos = text.find(prefix); pos != std::string::npos; pos = text.find(prefix, pos + 1)) {
      size_t start = pos + prefix.size();
      labels.insert(text.substr(start, text.find('"', start) - start));
    }
    return labels;
  };
  for (const char* declared : {"team-a", "team-b"}) {
    json req = TinyMlpJson(1);
    req["parameters"] = {{"tenant", declared}};
    ASSERT_EQ(c.Request("POST", "/v2/models/tiny_mlp/infer", req.dump()).status, 200);
  }
  for (int i = 0; i < 1000; ++i) {
    json req = TinyMlpJson(1);
    req["parameters"] = {{"tenant", "client-" + std::to_string(i)}};
    auto r = c.Request("POST", "/v2/models/tiny_mlp/infer", req.dump());
    ASSERT_EQ(r.status, 200) << r.body;
  }
  std::set<std::string> labels = tenant_labels();
  EXPECT_TRUE(labels.count("team-a")) << ::testing::PrintToString(labels);
  EXPECT_TRUE(labels.count("team-b")) << ::testing::PrintToString(labels);
  EXPECT_TRUE(labels.count("other")) << ::testing::PrintToString(labels);
  EXPECT_FALSE(labels.count("client-7"));
  // team-a, team-b, other, and the configured tenants of the repository's models at most.
  EXPECT_LE(labels.size(), 6u) << ::testing::PrintToString(labels);
  const size_t after_first = labels.size();
  for (int i = 1000; i < 1100; ++i) {
    json req = TinyMlpJson(1);
    req["parameters"] = {{"tenant", "client-" + std::to_string(i)}};
    ASSERT_EQ(c.Request("POST", "/v2/models/tiny_mlp/infer", req.dump()).status, 200);
  }
  EXPECT_EQ(tenant_labels().size(), after_first);
}

}  // namespace
}  // namespace gpuhive::server::testing

namespace gpuhive::server::testing {
namespace {

// Priorities are Triton's everywhere: 1 is the highest level, 0 the model's default level, and a
// request priority beyond the model's levels runs at its default level (Triton's rule), not a 400.
TEST(TritonPriorities, RequestsConfigAndManagementCountFromOne) {
  auto server = StartServer(EngineOptions{}, "tok");  // 4 levels
  ASSERT_NE(server, nullptr);
  HttpClient c(server->http->port());
  for (int p : {0, 1, 4, 5, 1000, 2000000000}) {
    json req = TinyMlpJson(1);
    req["parameters"] = {{"priority", p}};
    auto r = c.Request("POST", "/v2/models/tiny_mlp/infer", req.dump());
    EXPECT_EQ(r.status, 200) << "priority " << p << ": " << r.body;
  }
  json neg = TinyMlpJson(1);
  neg["parameters"] = {{"priority", -1}};
  auto nr = c.Request("POST", "/v2/models/tiny_mlp/infer", neg.dump());
  EXPECT_EQ(nr.status, 400);
  EXPECT_NE(nr.body.find("1 is the highest"), std::string::npos) << nr.body;

  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server->grpc->port()),
                                     grpc::InsecureChannelCredentials());
  auto stub = inference::GRPCInferenceService::NewStub(channel);
  inference::ModelInferRequest g;
  g.set_model_name("tiny_mlp");
  auto* gi = g.add_inputs();
  gi->set_name("INPUT0");
  gi->set_datatype("FP32");
  gi->add_shape(1);
  gi->add_shape(16);
  for (int i = 0; i < 16; ++i) gi->mutable_contents()->add_fp32_contents(0.5f);
  (*g.mutable_parameters())["priority"].set_int64_param(99);
  inference::ModelInferResponse gr;
  grpc::ClientContext ctx;
  EXPECT_TRUE(stub->ModelInfer(&ctx, g, &gr).ok());

  // The config's gpuhive.priority in Triton's numbering: tiny_mlp 1, add_sub 3.
  EXPECT_EQ(json::parse(c.Request("GET", "/v2/gpuhive/models/tiny_mlp").body)["priority"], 1);
  EXPECT_EQ(json::parse(c.Request("GET", "/v2/gpuhive/models/add_sub").body)["priority"], 3);
  std::map<std::string, std::string> auth = {{"Authorization", "Bearer tok"}};
  auto set = c.Request("PUT", "/v2/gpuhive/models/add_sub/settings", R"({"priority":1})", auth);
  ASSERT_EQ(set.status, 200) << set.body;
  EXPECT_EQ(json::parse(set.body)["priority"], 1);
  auto reset = c.Request("PUT", "/v2/gpuhive/models/add_sub/settings", R"({"priority":0})", auth);
  ASSERT_EQ(reset.status, 200) << reset.body;
  EXPECT_EQ(json::parse(reset.body)["priority"], 3);  // back to the config's
  auto bad = c.Request("PUT", "/v2/gpuhive/models/add_sub/settings", R"({"priority":5})", auth);
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("outside 1..4"), std::string::npos) << bad.body;
}

}  // namespace
}  // namespace gpuhive::server::testing
