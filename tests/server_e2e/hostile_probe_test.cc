// Issue 16's probes of `gpuhive serve` that need the real core service: requests a fair but
// hostile client sends, answered with a clear 4xx and without growing or corrupting state.
#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "e2e_support.h"
#include "gpuhive/residency/synthetic_models.h"
#include "grpc_service.grpc.pb.h"

namespace gpuhive::server::testing {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

// The repository index as a strict parser reads it (nlohmann refuses invalid UTF-8).
json Index(HttpClient& c) {
  auto r = c.Request("POST", "/v2/repository/index");
  EXPECT_EQ(r.status, 200) << r.body;
  return json::parse(r.body);
}

std::set<std::string> Names(const json& index) {
  std::set<std::string> names;
  for (const auto& e : index) names.insert(e["name"].get<std::string>());
  return names;
}

// Loads of names that are not models (path tricks, NUL bytes, nothing there) are refused and leave
// nothing behind: before the fix each refused name stayed in the index (20,000 calls: 10 MB).
void ExpectFailedLoadsLeaveNoTrace(ServeMode mode, residency::ControlMode control) {
  EngineOptions o;
  o.mode = mode;
  o.control_mode = control;
  auto s = StartServer(o);
  ASSERT_NE(s, nullptr);
  HttpClient c(s->http->port());
  const json before = Index(c);
  const size_t models_before = json::parse(c.Request("GET", "/v2/gpuhive/models").body).size();
  const std::vector<std::string> bad = {
      "..%2Fx", "a%2Fb", "tiny_mlp%00x", "identity_fp32%00x", "%00", "..", "%2E%2E", ".hidden", "x%0Ay", "ghost",
      "%FF%FE",
  };
  for (int round = 0; round < 50; ++round) {
    for (const auto& name : bad) {
      std::string n = name + (round % 2 ? std::to_string(round) : "");
      auto r = c.Request("POST", "/v2/repository/models/" + n + "/load");
      EXPECT_TRUE(r.status == 400 || r.status == 404) << n << " -> " << r.status << " " << r.body;
    }
  }
  const json after = Index(c);
  EXPECT_EQ(after.size(), before.size());
  EXPECT_TRUE(Names(after) == Names(before));
  EXPECT_EQ(json::parse(c.Request("GET", "/v2/gpuhive/models").body).size(), models_before);
  // A real model still loads.
  EXPECT_EQ(c.Request("POST", "/v2/repository/models/tiny_mlp/load").status, 200);
  EXPECT_EQ(c.Request("POST", "/v2/models/tiny_mlp/infer", TinyMlpJson(1).dump()).status, 200);
}

TEST(HostileProbe, FailedLoadsDoNotGrowTheIndex) {
  ExpectFailedLoadsLeaveNoTrace(ServeMode::kGpuhive, residency::ControlMode::kExplicit);
}

TEST(HostileProbe, FailedLoadsDoNotGrowTheIndexInNoneMode) {
  ExpectFailedLoadsLeaveNoTrace(ServeMode::kGpuhive, residency::ControlMode::kNone);
}

TEST(HostileProbe, FailedLoadsDoNotGrowTheIndexInNaiveMode) {
  ExpectFailedLoadsLeaveNoTrace(ServeMode::kNaive, residency::ControlMode::kExplicit);
}

// Issue 16: a model that can never fit the budget was listed READY (index, ready endpoint,
// management API) while every request to it was answered 503.
TEST(HostileProbe, AModelThatCanNeverFitIsNotReady) {
  // Known before any load: the file alone is larger than the whole budget.
  std::random_device rd;
  fs::path repo = fs::temp_directory_path() / ("gpuhive_nofit_" + std::to_string(rd()));
  fs::create_directories(repo / "big" / "1");
  std::ofstream(repo / "big" / "1" / "model.onnx", std::ios::binary)
      << residency::MakeMatMulChainOnnx({.dim = 256, .layers = 4, .seed = 1, .scale = 0.05f});  // 1 MiB
  fs::copy(SourceRepository() + "/tiny_mlp", repo / "tiny_mlp", fs::copy_options::recursive);
  {
    EngineOptions o;
    o.model_repository = repo.string();
    o.memory_budget_bytes = 256 << 10;
    o.cpu_workers = 1;
    o.threads_per_worker = 1;
    auto core = Engine::Create(o);
    ASSERT_TRUE(core.ok()) << core.status().ToString();
    HttpServerOptions ho;
    ho.port = 0;
    auto http = HttpServer::Start(core->get(), ho);
    ASSERT_TRUE(http.ok());
    HttpClient c((*http)->port());
    EXPECT_EQ(c.Request("GET", "/v2/models/big/ready").status, 503);
    EXPECT_EQ(c.Request("GET", "/v2/models/tiny_mlp/ready").status, 200);
    for (const auto& e : Index(c)) {
      if (e["name"] == "big") {
        EXPECT_EQ(e["state"], "UNAVAILABLE");
        EXPECT_NE(e.value("reason", "").find("budget"), std::string::npos) << e.dump();
      }
      if (e["name"] == "tiny_mlp") {
        EXPECT_EQ(e["state"], "READY");
      }
    }
    auto ready_only = json::parse(c.Request("POST", "/v2/repository/index", R"({"ready":true})").body);
    EXPECT_EQ(Names(ready_only), std::set<std::string>{"tiny_mlp"});
    EXPECT_EQ(json::parse(c.Request("GET", "/v2/gpuhive/models/big").body)["state"], "UNAVAILABLE");
    // Metadata stays available (clients read it to build requests); inference is refused.
    EXPECT_EQ(c.Request("GET", "/v2/models/big").status, 200);
  }
  std::error_code ec;
  fs::remove_all(repo, ec);
}

TEST(HostileProbe, AModelFoundNotToFitByItsFirstLoadIsNotReady) {
  // Only a load shows it: tiny_mlp's file is smaller than the budget, its compiled form is not.
  EngineOptions o;
  o.memory_budget_bytes = 4096;
  auto s = StartServer(o);
  ASSERT_NE(s, nullptr);
  HttpClient c(s->http->port());
  EXPECT_EQ(c.Request("POST", "/v2/models/tiny_mlp/infer", TinyMlpJson(1).dump()).status, 503);
  EXPECT_EQ(c.Request("GET", "/v2/models/tiny_mlp/ready").status, 503);
  for (const auto& e : Index(c)) {
    if (e["name"] == "tiny_mlp") {
      EXPECT_EQ(e["state"], "UNAVAILABLE") << e.dump();
    }
  }
  EXPECT_EQ(json::parse(c.Request("GET", "/v2/gpuhive/models/tiny_mlp").body)["state"], "UNAVAILABLE");
}

// Issue 16: a model directory whose name is not UTF-8 made the repository index invalid JSON
// (and an invalid gRPC string), and 404 bodies echoed the raw bytes of the requested name.
TEST(HostileProbe, NamesThatAreNotUtf8NeverReachJsonRaw) {
  EngineOptions o;
  o.control_mode = residency::ControlMode::kPoll;
  o.poll_interval_us = 20'000;
  auto s = StartServer(o);
  ASSERT_NE(s, nullptr);
  fs::copy(fs::path(s->repo) / "identity_fp32", fs::path(s->repo) / "bad\xff\xfe", fs::copy_options::recursive);
  HttpClient c(s->http->port());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // several polls
  auto idx = c.Request("POST", "/v2/repository/index");
  ASSERT_EQ(idx.status, 200);
  ASSERT_TRUE(json::accept(idx.body)) << idx.body;
  EXPECT_EQ(Names(json::parse(idx.body)).count("identity_fp32"), 1u);
  for (const char* target : {"/v2/models/bad%FF%FE", "/v2/models/bad%FF%FE/ready", "/v2/models/%C3%28/infer",
                             "/v2/gpuhive/models/bad%FF%FE", "/v2/%FF"}) {
    auto r = c.Request(std::string(target).ends_with("infer") ? "POST" : "GET", target, "{}");
    EXPECT_TRUE(r.status == 404 || r.status == 400) << target << " -> " << r.status;
    EXPECT_TRUE(json::accept(r.body)) << target << ": " << r.body;
  }
  EXPECT_TRUE(json::accept(c.Request("GET", "/v2/gpuhive/models").body));
  std::string metrics = c.Request("GET", "/metrics").body;
  EXPECT_EQ(metrics.find("bad\xff"), std::string::npos);

  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(s->grpc->port()), grpc::InsecureChannelCredentials());
  auto stub = inference::GRPCInferenceService::NewStub(channel);
  grpc::ClientContext ctx;
  inference::RepositoryIndexResponse gidx;
  grpc::Status st = stub->RepositoryIndex(&ctx, {}, &gidx);
  EXPECT_TRUE(st.ok()) << st.error_message();
}

}  // namespace
}  // namespace gpuhive::server::testing
