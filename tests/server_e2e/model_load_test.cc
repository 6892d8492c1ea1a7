// Issue 18, item 6: what loading a model does beyond registering it, against the core service
// behind the real frontends — model_warmup before READY, load-time warnings (unknown config fields
// once per model, KIND_GPU without a GPU) in the log and the model's status, and a repository
// config that turns invalid in poll mode answered 503 with the reason.
#include <chrono>
#include <fstream>
#include <thread>

#include "e2e_support.h"
#include "gpuhive/device_discovery.h"

namespace gpuhive::server::testing {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

void Append(const std::string& repo, const std::string& model, const std::string& text) {
  std::ofstream(fs::path(repo) / model / "config.pbtxt", std::ios::app) << "\n" << text << "\n";
}

int CountOf(const std::string& haystack, const std::string& needle) {
  int n = 0;
  for (size_t pos = haystack.find(needle); pos != std::string::npos; pos = haystack.find(needle, pos + 1)) ++n;
  return n;
}

TEST(ModelLoad, WarmupRunsBeforeTheModelIsReady) {
  auto server = StartServer(EngineOptions{}, "", [](const std::string& repo) {
    Append(repo, "tiny_mlp", R"(model_warmup [
  { name: "zeros" batch_size: 2 count: 3 inputs { key: "INPUT0" value { data_type: TYPE_FP32 dims: [ 16 ] zero_data: true } } },
  { name: "random" batch_size: 1 inputs { key: "INPUT0" value { data_type: TYPE_FP32 dims: [ 16 ] random_data: true } } }
])");
  });
  ASSERT_NE(server, nullptr);
  HttpClient c(server->http->port());
  // No request yet: the warm-up made the model resident and ran it 4 times (3 batches of 2, 1 of 1).
  auto status = json::parse(c.Request("GET", "/v2/gpuhive/models/tiny_mlp").body);
  EXPECT_EQ(status["tier"], "device") << status.dump();
  auto stats = json::parse(c.Request("GET", "/v2/models/tiny_mlp/stats").body)["model_stats"][0];
  EXPECT_EQ(stats["execution_count"], 4);
  EXPECT_EQ(stats["inference_count"], 7);
  EXPECT_EQ(stats["inference_stats"]["success"]["count"], 0);  // warm-up is not a client's request
  EXPECT_EQ(c.Request("GET", "/v2/models/tiny_mlp/ready").status, 200);
  EXPECT_EQ(c.Request("POST", "/v2/models/tiny_mlp/infer", TinyMlpJson(1).dump()).status, 200);
  // The config endpoint shows the warm-up as Triton's model_warmup.
  auto config = json::parse(c.Request("GET", "/v2/models/tiny_mlp/config").body);
  ASSERT_EQ(config["model_warmup"].size(), 2u) << config.dump();
  EXPECT_EQ(config["model_warmup"][0]["batch_size"], 2);
}

TEST(ModelLoad, AWarmupThatFailsLeavesTheModelUnavailableWithTheReason) {
  auto server = StartServer(EngineOptions{}, "", [](const std::string& repo) {
    Append(repo, "tiny_mlp", R"(model_warmup [ { name: "wrong" batch_size: 1 inputs { key: "INPUT0" value { data_type: TYPE_INT32 dims: [ 16 ] zero_data: true } } } ])");
  });
  ASSERT_NE(server, nullptr);
  HttpClient c(server->http->port());
  auto r = c.Request("POST", "/v2/models/tiny_mlp/infer", TinyMlpJson(1).dump());
  EXPECT_EQ(r.status, 503) << r.body;
  auto idx = json::parse(c.Request("POST", "/v2/repository/index").body);
  bool found = false;
  for (const auto& e : idx) {
    if (e["name"] != "tiny_mlp") continue;
    found = true;
    EXPECT_EQ(e["state"], "UNAVAILABLE");
    EXPECT_NE(e["reason"].get<std::string>().find("model_warmup 'wrong'"), std::string::npos) << e.dump();
  }
  EXPECT_TRUE(found);
  json v = {{"inputs", {{{"name", "INPUT0"}, {"shape", {1, 4}}, {"datatype", "FP32"}, {"data", {0, 1, 2, 3}}}}}};
  EXPECT_EQ(c.Request("POST", "/v2/models/two_versions/infer", v.dump()).status, 200);
}

TEST(ModelLoad, UnknownFieldsAndGpuKindAreWarnedOncePerModel) {
  const bool gpu_executes = BuiltWithCuda() && !DiscoverDevices().gpus.empty();
  ::testing::internal::CaptureStderr();
  auto server = StartServer(EngineOptions{}, "", [](const std::string& repo) {
    Append(repo, "two_versions", "optimization { execution_accelerators { gpu_execution_accelerator [ { name: \"tensorrt\" } ] } }");
    Append(repo, "two_versions", "instance_group [ { count: 1 kind: KIND_GPU } ]");
  });
  ASSERT_NE(server, nullptr);
  HttpClient c(server->http->port());
  for (int i = 0; i < 3; ++i) c.Request("POST", "/v2/repository/index");  // rescans the configs
  std::string log = ::testing::internal::GetCapturedStderr();
  // One warning for the model (two versions, several scans), at warning level.
  EXPECT_EQ(CountOf(log, "model 'two_versions': config.pbtxt fields gpuhive does not use"), 1) << log;
  EXPECT_NE(log.find("warning core: model 'two_versions': config.pbtxt fields"), std::string::npos) << log;
  EXPECT_EQ(CountOf(log, "optimization (not in gpuhive's schema"), 0) << "no per-parse lines at info";
  auto status = json::parse(c.Request("GET", "/v2/gpuhive/models/two_versions").body);
  ASSERT_TRUE(status["warnings"].is_array());
  std::string warnings = status["warnings"].dump();
  EXPECT_NE(warnings.find("optimization"), std::string::npos) << warnings;
  if (!gpu_executes) {
    EXPECT_NE(warnings.find("KIND_GPU"), std::string::npos) << warnings;
    EXPECT_EQ(CountOf(log, "asks for KIND_GPU"), 1) << log;
  }
  EXPECT_TRUE(json::parse(c.Request("GET", "/v2/gpuhive/models/tiny_mlp").body)["warnings"].empty());
}

TEST(ModelLoad, PollModeAnswersAnInvalidConfigWith503AndTheReason) {
  EngineOptions o;
  o.control_mode = residency::ControlMode::kPoll;
  o.poll_interval_us = 50'000;
  ::testing::internal::CaptureStderr();
  auto s = StartServer(o);
  ASSERT_NE(s, nullptr);
  HttpClient c(s->http->port());
  ASSERT_EQ(c.Request("POST", "/v2/models/tiny_mlp/infer", TinyMlpJson(1).dump()).status, 200);
  const fs::path cfg = fs::path(s->repo) / "tiny_mlp" / "config.pbtxt";
  std::string good;
  {
    std::ifstream in(cfg);
    good.assign(std::istreambuf_iterator<char>(in), {});
  }
  std::ofstream(cfg) << good << "\nmax_batch_size: -3\n";
  ClientResponse r;
  for (int i = 0; i < 100; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    r = c.Request("POST", "/v2/models/tiny_mlp/infer", TinyMlpJson(1).dump());
    if (r.status != 200) break;
  }
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_NE(r.body.find("max_batch_size"), std::string::npos) << r.body;
  EXPECT_EQ(c.Request("GET", "/v2/models/tiny_mlp").status, 503);
  EXPECT_EQ(c.Request("GET", "/v2/models/tiny_mlp/ready").status, 503);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // several polls: still one warning
  std::ofstream(cfg) << good;
  for (int i = 0; i < 100; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    r = c.Request("POST", "/v2/models/tiny_mlp/infer", TinyMlpJson(1).dump());
    if (r.status == 200) break;
  }
  EXPECT_EQ(r.status, 200) << r.body;
  std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(CountOf(log, "warning core: model 'tiny_mlp' cannot be served from the repository"), 1) << log;
}

}  // namespace
}  // namespace gpuhive::server::testing
