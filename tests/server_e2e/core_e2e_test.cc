// End to end against a running server: Engine over the committed test repository, the real
// HTTP and gRPC frontends on ephemeral ports, real models executed by the runtime.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "e2e_support.h"
#include "gpuhive/residency/synthetic_models.h"
#include "gpuhive/units.h"
#include "grpc_service.grpc.pb.h"

namespace gpuhive::server::testing {
namespace {

using json = nlohmann::json;

// tiny_mlp computed independently in the test from the weights the repository README documents.
std::vector<float> TinyMlpReference(const std::vector<float>& x) {
  std::vector<float> out;
  for (size_t r = 0; r < x.size() / 16; ++r) {
    float h[8];
    for (int j = 0; j < 8; ++j) {
      float acc = static_cast<float>(j % 3 - 1) / 4.0f;
      for (int i = 0; i < 16; ++i) acc += x[r * 16 + i] * static_cast<float>((8 * i + j) % 7 - 3) / 8.0f;
      h[j] = acc > 0 ? acc : 0;
    }
    for (int j = 0; j < 4; ++j) {
      float acc = static_cast<float>(j) / 4.0f;
      for (int i = 0; i < 8; ++i) acc += h[i] * static_cast<float>((4 * i + j) % 5 - 2) / 4.0f;
      out.push_back(acc);
    }
  }
  return out;
}

std::vector<float> Floats(const json& j) {
  std::vector<float> v;
  for (const auto& x : j) v.push_back(x.get<float>());
  return v;
}

// Every test runs on the CPU, on the simulated device (--device sim), whose memory only the
// device's copy API may touch, and on two of them (sim:2: models placed on both, a budget each):
// the device path end to end without a GPU.
class CoreE2E : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    EngineOptions o;
    o.device = GetParam();
    o.sim_memory_bytes = 1ull << 30;
    o.tenants = {"video_team"};  // a request may name it (undeclared ones count as "other")
    server_ = StartServer(o, "secret");
    ASSERT_NE(server_, nullptr);
  }
  uint16_t port() const { return server_->http->port(); }
  std::unique_ptr<RunningServer> server_;
};

TEST_P(CoreE2E, HealthMetadataAndIndex) {
  HttpClient c(port());
  EXPECT_EQ(c.Request("GET", "/v2/health/live").status, 200);
  EXPECT_EQ(c.Request("GET", "/v2/health/ready").status, 200);
  auto md = json::parse(c.Request("GET", "/v2").body);
  EXPECT_EQ(md["name"], "gpuhive");
  auto m = c.Request("GET", "/v2/models/tiny_mlp");
  ASSERT_EQ(m.status, 200) << m.body;
  auto mj = json::parse(m.body);
  EXPECT_EQ(mj["inputs"][0]["name"], "INPUT0");
  EXPECT_EQ(mj["inputs"][0]["shape"], json({-1, 16}));
  EXPECT_EQ(mj["outputs"][0]["shape"], json({-1, 4}));
  // Derived config: shapes as the ONNX file declares them.
  auto derived = json::parse(c.Request("GET", "/v2/models/identity_fp32").body);
  EXPECT_EQ(derived["inputs"][0]["shape"], json({-1, 8}));
  EXPECT_EQ(c.Request("GET", "/v2/models/tiny_mlp/ready").status, 200);
  EXPECT_EQ(c.Request("GET", "/v2/models/no_such_model").status, 404);
  EXPECT_EQ(c.Request("GET", "/v2/models/two_versions/versions/7").status, 404);
  auto idx = json::parse(c.Request("POST", "/v2/repository/index").body);
  std::set<std::string> names;
  for (const auto& e : idx) names.insert(e["name"].get<std::string>());
  EXPECT_EQ(names, (std::set<std::string>{"add_sub", "broken_model", "identity_fp32", "no_batch", "tiny_mlp", "two_versions"}));
}

TEST_P(CoreE2E, InferComputesTheModel) {
  HttpClient c(port());
  json req = TinyMlpJson(3);
  auto r = c.Request("POST", "/v2/models/tiny_mlp/infer", req.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  auto out = json::parse(r.body);
  EXPECT_EQ(out["model_name"], "tiny_mlp");
  EXPECT_EQ(out["model_version"], "1");
  EXPECT_EQ(out["outputs"][0]["shape"], json({3, 4}));
  std::vector<float> got = Floats(out["outputs"][0]["data"]);
  std::vector<float> want = TinyMlpReference(Floats(req["inputs"][0]["data"]));
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-5) << i;

  // Versions are distinct models: v1 adds 1, v2 adds 2; no version means the newest.
  json v = {{"inputs", {{{"name", "INPUT0"}, {"shape", {1, 4}}, {"datatype", "FP32"}, {"data", {0, 1, 2, 3}}}}}};
  auto v1 = json::parse(c.Request("POST", "/v2/models/two_versions/versions/1/infer", v.dump()).body);
  auto v2 = json::parse(c.Request("POST", "/v2/models/two_versions/versions/2/infer", v.dump()).body);
  auto vd = json::parse(c.Request("POST", "/v2/models/two_versions/infer", v.dump()).body);
  EXPECT_EQ(v1["outputs"][0]["data"], json({1.0, 2.0, 3.0, 4.0}));
  EXPECT_EQ(v2["outputs"][0]["data"], json({2.0, 3.0, 4.0, 5.0}));
  EXPECT_EQ(vd["model_version"], "2");

  // A non-batching model takes its shape as is; INT32 Triton "simple".
  json nb = {{"inputs", {{{"name", "INPUT0"}, {"shape", {3, 4}}, {"datatype", "FP32"}, {"data", {1, 1, 1, 1, 2, 2, 2, 2, 0, 1, 0, 1}}}}}};
  auto nbr = json::parse(c.Request("POST", "/v2/models/no_batch/infer", nb.dump()).body);
  EXPECT_EQ(nbr["outputs"][0]["data"], json({4.0, 8.0, 2.0}));
  json as = {{"inputs",
              {{{"name", "INPUT0"}, {"shape", {1, 16}}, {"datatype", "INT32"}, {"data", std::vector<int>(16, 5)}},
               {{"name", "INPUT1"}, {"shape", {1, 16}}, {"datatype", "INT32"}, {"data", std::vector<int>(16, 2)}}}},
             {"outputs", {{{"name", "OUTPUT1"}}}}};
  auto asr = json::parse(c.Request("POST", "/v2/models/add_sub/infer", as.dump()).body);
  ASSERT_EQ(asr["outputs"].size(), 1u);  // only the requested output
  EXPECT_EQ(asr["outputs"][0]["name"], "OUTPUT1");
  EXPECT_EQ(asr["outputs"][0]["data"], json(std::vector<int>(16, 3)));
}

TEST_P(CoreE2E, JsonBinaryAndGrpcAgreeBitForBit) {
  HttpClient c(port());
  json req = TinyMlpJson(5);
  auto jr = c.Request("POST", "/v2/models/tiny_mlp/infer", req.dump());
  ASSERT_EQ(jr.status, 200);
  std::vector<float> json_out = Floats(json::parse(jr.body)["outputs"][0]["data"]);

  // Binary tensor extension: the input as raw bytes after the JSON header, the output asked for
  // as binary.
  std::vector<float> in = Floats(req["inputs"][0]["data"]);
  json header = {{"inputs", {{{"name", "INPUT0"}, {"shape", {5, 16}}, {"datatype", "FP32"},
                              {"parameters", {{"binary_data_size", in.size() * 4}}}}}},
                 {"outputs", {{{"name", "OUTPUT0"}, {"parameters", {{"binary_data", true}}}}}}};
  std::string hs = header.dump();
  std::string body = hs + std::string(reinterpret_cast<const char*>(in.data()), in.size() * 4);
  auto br = c.Request("POST", "/v2/models/tiny_mlp/infer", body,
                      {{"Inference-Header-Content-Length", std::to_string(hs.size())}});
  ASSERT_EQ(br.status, 200) << br.body;
  size_t hl = std::stoul(br.headers.at("inference-header-content-length"));
  ASSERT_EQ(br.body.size(), hl + json_out.size() * 4);
  std::vector<float> bin_out(json_out.size());
  std::memcpy(bin_out.data(), br.body.data() + hl, bin_out.size() * 4);
  EXPECT_EQ(std::memcmp(bin_out.data(), json_out.data(), bin_out.size() * 4), 0);

  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->grpc->port()), grpc::InsecureChannelCredentials());
  auto stub = inference::GRPCInferenceService::NewStub(channel);
  inference::ModelInferRequest g;
  g.set_model_name("tiny_mlp");
  auto* gi = g.add_inputs();
  gi->set_name("INPUT0");
  gi->set_datatype("FP32");
  gi->add_shape(5);
  gi->add_shape(16);
  g.add_raw_input_contents(std::string(reinterpret_cast<const char*>(in.data()), in.size() * 4));
  inference::ModelInferResponse gr;
  grpc::ClientContext ctx;
  grpc::Status st = stub->ModelInfer(&ctx, g, &gr);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(gr.raw_output_contents_size(), 1);
  ASSERT_EQ(gr.raw_output_contents(0).size(), json_out.size() * 4);
  EXPECT_EQ(std::memcmp(gr.raw_output_contents(0).data(), json_out.data(), json_out.size() * 4), 0);
}

TEST_P(CoreE2E, BrokenModelFailsAloneWithAClearError) {
  HttpClient c(port());
  json b = {{"inputs", {{{"name", "INPUT0"}, {"shape", {1, 4}}, {"datatype", "FP32"}, {"data", {1, 2, 3, 4}}}}}};
  auto r = c.Request("POST", "/v2/models/broken_model/infer", b.dump());
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_NE(r.body.find("broken_model"), std::string::npos) << r.body;
  auto idx = json::parse(c.Request("POST", "/v2/repository/index").body);
  for (const auto& e : idx) {
    if (e["name"] == "broken_model") {
      EXPECT_EQ(e["state"], "UNAVAILABLE");
      EXPECT_FALSE(e.value("reason", "").empty());
    }
  }
  EXPECT_EQ(c.Request("POST", "/v2/models/tiny_mlp/infer", TinyMlpJson(1).dump()).status, 200);
}

TEST_P(CoreE2E, BadInputIsRefusedWhileGoodLoadKeepsSucceeding) {
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, bad{0};
  std::thread load([&] {
    HttpClient c(port());
    std::string body = TinyMlpJson(2).dump();
    while (!stop.load()) {
      auto r = c.Request("POST", "/v2/models/tiny_mlp/infer", body);
      (r.status == 200 ? ok : bad)++;
    }
  });
  HttpClient c(port());
  struct Case {
    std::string body;
    int status;
  };
  std::vector<Case> cases = {
      {"{not json", 400},
      {R"({"inputs":[{"name":"INPUT0","shape":[1,16],"datatype":"INT64","data":[1]}]})", 400},
      {R"({"inputs":[{"name":"INPUT0","shape":[1,15],"datatype":"FP32","data":[1]}]})", 400},
      {R"({"inputs":[{"name":"INPUT0","shape":[1,16],"datatype":"FP32","data":[1,2,3]}]})", 400},
      {R"({"inputs":[{"name":"NOPE","shape":[1,16],"datatype":"FP32","data":[1]}]})", 400},
      {R"({"inputs":[{"name":"INPUT0","shape":[9,16],"datatype":"FP32","data":[]}]})", 400},
  };
  for (const auto& k : cases) {
    auto r = c.Request("POST", "/v2/models/tiny_mlp/infer", k.body);
    EXPECT_EQ(r.status, k.status) << k.body << " -> " << r.body;
    EXPECT_NE(r.body.find("error"), std::string::npos);
  }
  EXPECT_EQ(c.Request("POST", "/v2/models/tiny_mlp/versions/9/infer", TinyMlpJson(1).dump()).status, 404);
  EXPECT_EQ(c.Request("POST", "/v2/models/nothing/infer", TinyMlpJson(1).dump()).status, 404);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  stop = true;
  load.join();
  EXPECT_GT(ok.load(), 0);
  EXPECT_EQ(bad.load(), 0);
}

TEST_P(CoreE2E, LoadAndUnloadWhileRequestsAreInFlight) {
  std::atomic<bool> stop{false};
  std::atomic<int> tiny_ok{0}, tiny_bad{0}, add_ok{0}, add_refused{0}, add_other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&] {
      HttpClient c(port());
      std::string body = TinyMlpJson(1).dump();
      while (!stop.load()) (c.Request("POST", "/v2/models/tiny_mlp/infer", body).status == 200 ? tiny_ok : tiny_bad)++;
    });
  }
  threads.emplace_back([&] {
    HttpClient c(port());
    json as = {{"inputs",
                {{{"name", "INPUT0"}, {"shape", {1, 16}}, {"datatype", "INT32"}, {"data", std::vector<int>(16, 1)}},
                 {{"name", "INPUT1"}, {"shape", {1, 16}}, {"datatype", "INT32"}, {"data", std::vector<int>(16, 1)}}}}};
    std::string body = as.dump();
    while (!stop.load()) {
      int s = c.Request("POST", "/v2/models/add_sub/infer", body).status;
      if (s == 200) {
        add_ok++;
      } else if (s == 503 || s == 404) {
        add_refused++;
      } else {
        add_other++;
      }
    }
  });
  HttpClient admin(port());
  std::map<std::string, std::string> auth = {{"Authorization", "Bearer secret"}};
  for (int i = 0; i < 10; ++i) {
    auto u = admin.Request("POST", "/v2/repository/models/add_sub/unload", "", auth);
    EXPECT_EQ(u.status, 200) << u.body;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    auto l = admin.Request("POST", "/v2/repository/models/add_sub/load", "", auth);
    EXPECT_EQ(l.status, 200) << l.body;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  // Without the token the repository calls are refused.
  EXPECT_EQ(admin.Request("POST", "/v2/repository/models/add_sub/unload").status, 401);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  stop = true;
  for (auto& t : threads) t.join();
  EXPECT_GT(tiny_ok.load(), 0);
  EXPECT_EQ(tiny_bad.load(), 0);
  EXPECT_GT(add_ok.load(), 0);
  EXPECT_EQ(add_other.load(), 0);
  // A response reaches the client just before its request leaves the in-flight count.
  for (int i = 0; i < 200 && server_->core->in_flight() != 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(server_->core->in_flight(), 0);
  HttpClient c(port());
  EXPECT_EQ(c.Request("GET", "/v2/models/add_sub/ready").status, 200);
}

TEST_P(CoreE2E, ManagementApiAndMetrics) {
  HttpClient c(port());
  for (int i = 0; i < 4; ++i) ASSERT_EQ(c.Request("POST", "/v2/models/tiny_mlp/infer", TinyMlpJson(2).dump()).status, 200);
  auto devices = json::parse(c.Request("GET", "/v2/gpuhive/devices").body);
  // The simulated devices, then the host CPU (where KIND_CPU models run next to them).
  std::vector<std::string> ids;
  for (const auto& d : devices) ids.push_back(d["id"]);
  const std::map<std::string, std::vector<std::string>> want = {
      {"cpu", {"cpu"}}, {"sim", {"sim:0", "cpu"}}, {"sim:2", {"sim:0", "sim:1", "cpu"}}};
  EXPECT_EQ(ids, want.at(GetParam()));
  auto model = json::parse(c.Request("GET", "/v2/gpuhive/models/tiny_mlp").body);
  EXPECT_EQ(model["tier"], "device");
  const std::string device_id = model["device"];
  const json* placed = nullptr;
  for (const auto& d : devices) {
    if (d["id"] == device_id) placed = &d;
  }
  ASSERT_NE(placed, nullptr) << model.dump();
  EXPECT_GT((*placed)["budget_bytes"].get<uint64_t>(), 0u);
  // A (simulated) GPU says what its default budget came from: free memory at start less the
  // headroom (engine::DefaultDeviceBudget); the CPU has no such fields.
  for (const auto& d : devices) {
    if (d["id"] == "cpu") {
      EXPECT_FALSE(d.contains("headroom_bytes")) << d.dump();
      continue;
    }
    const uint64_t capacity = d["capacity_bytes"], free_at_start = d["free_at_start_bytes"];
    EXPECT_EQ(d["reserved_bytes"].get<uint64_t>(), capacity - free_at_start) << d.dump();
    EXPECT_EQ(d["budget_bytes"].get<uint64_t>(),
              free_at_start - d["headroom_bytes"].get<uint64_t>() - d["library_reserve_bytes"].get<uint64_t>())
        << d.dump();
    EXPECT_EQ(d["library_reserve_bytes"].get<uint64_t>(), 0u) << d.dump();  // the CPU executor loads nothing
    EXPECT_GT(d["headroom_bytes"].get<uint64_t>(), 0u) << d.dump();
  }
  EXPECT_GT((*placed)["used_by_model"]["tiny_mlp"].get<uint64_t>(), 0u);
  EXPECT_NE(std::find((*placed)["models"].begin(), (*placed)["models"].end(), "tiny_mlp"), (*placed)["models"].end());
  EXPECT_EQ(model["tenant"], "interactive");
  EXPECT_FALSE(model["latency_profile"].empty());

  std::map<std::string, std::string> auth = {{"Authorization", "Bearer secret"}};
  EXPECT_EQ(c.Request("PUT", "/v2/gpuhive/models/tiny_mlp/settings", R"({"priority":2,"tenant":"batch"})").status, 401);
  auto set = c.Request("PUT", "/v2/gpuhive/models/tiny_mlp/settings", R"({"priority":2,"tenant":"batch","memory_limit":"64MiB"})", auth);
  EXPECT_EQ(set.status, 200) << set.body;
  model = json::parse(c.Request("GET", "/v2/gpuhive/models/tiny_mlp").body);
  EXPECT_EQ(model["priority"], 2);
  EXPECT_EQ(model["tenant"], "batch");
  EXPECT_EQ(model["memory_limit_bytes"], 64ull << 20);
  EXPECT_EQ(c.Request("PUT", "/v2/gpuhive/models/tiny_mlp/settings", R"({"priority":99})", auth).status, 400);
  ASSERT_EQ(c.Request("POST", "/v2/models/tiny_mlp/infer", TinyMlpJson(1).dump()).status, 200);

  // A per-request tenant (gpuhive's request parameter) naming a declared tenant is charged its
  // device time.
  json tj = TinyMlpJson(1);
  tj["parameters"] = {{"tenant", "video_team"}};
  ASSERT_EQ(c.Request("POST", "/v2/models/tiny_mlp/infer", tj.dump()).status, 200);
  tj["parameters"] = {{"tenant", 7}};
  EXPECT_EQ(c.Request("POST", "/v2/models/tiny_mlp/infer", tj.dump()).status, 400);

  std::string text = c.Request("GET", "/metrics").body;
  EXPECT_NE(text.find("gpuhive_tenant_device_seconds_total{tenant=\"video_team\"}"), std::string::npos);
  EXPECT_NE(text.find("gpuhive_inference_requests_total{model=\"tiny_mlp\",version=\"1\",outcome=\"success\"} 6"),
            std::string::npos) << text;
  EXPECT_NE(text.find("gpuhive_model_loads_total{model=\"tiny_mlp\"} 1"), std::string::npos);
  EXPECT_NE(text.find("gpuhive_inference_count_total{model=\"tiny_mlp\",version=\"1\"} 10"), std::string::npos);
  EXPECT_NE(text.find("gpuhive_device_memory_bytes{device=\"" + device_id + "\",kind=\"weights\"}"), std::string::npos);
  EXPECT_NE(text.find("gpuhive_tenant_device_seconds_total{tenant=\"batch\"}"), std::string::npos);
  EXPECT_NE(text.find("gpuhive_queue_duration_seconds_bucket{model=\"tiny_mlp\""), std::string::npos);
  // An unknown model's request is not a model metric; a refused infer counts by outcome.
  json bad = {{"inputs", {{{"name", "INPUT0"}, {"shape", {1, 4}}, {"datatype", "FP32"}, {"data", {1, 2, 3, 4}}}}}};
  c.Request("POST", "/v2/models/broken_model/infer", bad.dump());
  text = c.Request("GET", "/metrics").body;
  EXPECT_NE(text.find("gpuhive_inference_requests_total{model=\"broken_model\",version=\"1\",outcome=\"Unavailable\"} 1"),
            std::string::npos);
}

TEST_P(CoreE2E, CoreMetricsPassPromtool) {
  if (std::system("which promtool > /dev/null 2>&1") != 0) GTEST_SKIP() << "promtool not installed";
  HttpClient c(port());
  ASSERT_EQ(c.Request("POST", "/v2/models/tiny_mlp/infer", TinyMlpJson(2).dump()).status, 200);
  json b = {{"inputs", {{{"name", "INPUT0"}, {"shape", {1, 4}}, {"datatype", "FP32"}, {"data", {1, 2, 3, 4}}}}}};
  c.Request("POST", "/v2/models/broken_model/infer", b.dump());
  auto m = c.Request("GET", "/metrics");
  ASSERT_EQ(m.status, 200);
  // One file per process and device: ctest runs the cpu and sim instances side by side.
  const std::string path =
      ::testing::TempDir() + "/gpuhive_core_metrics_" + GetParam() + "_" + std::to_string(getpid()) + ".txt";
  auto promtool = [&path](const std::string& text, int* rc) {
    std::ofstream(path) << text;
    FILE* p = popen(("promtool check metrics < " + path + " 2>&1").c_str(), "r");
    std::string out;
    if (p == nullptr) return out;
    char buf[512];
    while (fgets(buf, sizeof(buf), p)) out += buf;
    *rc = pclose(p);
    return out;
  };
  // gpuhive's own families pass the lint.
  std::string own;
  std::istringstream lines(m.body);
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("nv_") || line.starts_with("# HELP nv_") || line.starts_with("# TYPE nv_")) continue;
    own += line + "\n";
  }
  int rc = -1;
  std::string out = promtool(own, &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "") << out;
  // Triton's nv_* families keep Triton's names (no _total, "_us"), which the lint flags by design;
  // the text still parses and nothing else is flagged.
  out = promtool(m.body, &rc);
  std::istringstream problems(out);
  for (std::string line; std::getline(problems, line);) EXPECT_TRUE(line.starts_with("nv_")) << line;
}

INSTANTIATE_TEST_SUITE_P(Devices, CoreE2E, ::testing::Values("cpu", "sim", "sim:2"), [](const auto& info) {
  std::string name = info.param;
  std::replace(name.begin(), name.end(), ':', '_');
  return name;
});

TEST(CoreE2EModes, NaiveModeComputesTheSameBits) {
  EngineOptions g;
  auto a = StartServer(g);
  EngineOptions n;
  n.mode = ServeMode::kNaive;
  auto b = StartServer(n);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  HttpClient ca(a->http->port()), cb(b->http->port());
  std::string body = TinyMlpJson(4).dump();
  auto ra = ca.Request("POST", "/v2/models/tiny_mlp/infer", body);
  auto rb = cb.Request("POST", "/v2/models/tiny_mlp/infer", body);
  ASSERT_EQ(ra.status, 200);
  ASSERT_EQ(rb.status, 200) << rb.body;
  EXPECT_EQ(json::parse(ra.body)["outputs"], json::parse(rb.body)["outputs"]);
  // Naive mode compiled everything at start: the broken model is unavailable from the start.
  auto idx = json::parse(cb.Request("POST", "/v2/repository/index").body);
  for (const auto& e : idx) {
    if (e["name"] == "broken_model") {
      EXPECT_EQ(e["state"], "UNAVAILABLE");
    }
    if (e["name"] == "tiny_mlp") {
      EXPECT_EQ(e["state"], "READY");
    }
  }
  auto devices = json::parse(cb.Request("GET", "/v2/gpuhive/devices").body);
  EXPECT_GT(devices[0]["used_by_model"]["tiny_mlp"].get<uint64_t>(), 0u);
}

// --batch-memory: on the CPU (auto) a model runs one row at a time until its first batch measured
// its one-row activation bytes, then its batches are bounded so the workers together hold no more
// than unbatched execution would. With a worker kept free for priority 1 (the default, even where
// the general workers take every core) tiny_mlp, critical by default, has its share set aside from
// the two general workers' allowance and one row remains; without one (--critical-worker off) two
// rows. Unbounded, batches grow to max_batch_size (with --batch-min-gain 0, Triton's rule).
TEST(CoreE2EModes, CpuBatchesHoldNoMoreActivationMemoryThanUnbatchedExecution) {
  for (auto [critical, rows] : {std::pair{true, 1}, std::pair{false, 2}}) {
    for (int64_t memory : {EngineOptions::kBatchMemoryAuto, int64_t{0}}) {
      SCOPED_TRACE(std::string(memory == 0 ? "unbounded" : "auto") + " critical worker " + (critical ? "on" : "off"));
      EngineOptions o;
      o.device = "cpu";
      o.cpu_workers = 2;
      o.reserve_critical_worker = critical;
      o.batch_min_gain = 0;
      o.batch_memory_bytes = memory;
      auto s = StartServer(o);
      ASSERT_NE(s, nullptr);
      HttpClient c(s->http->port());
      auto before = json::parse(c.Request("GET", "/v2/gpuhive/models/tiny_mlp").body);
      EXPECT_EQ(before["one_row_activation_bytes"], 0u);
      EXPECT_EQ(before["batch_limit"], memory == 0 ? 8 : 1) << before.dump();
      ASSERT_EQ(c.Request("POST", "/v2/models/tiny_mlp/infer", TinyMlpJson(3).dump()).status, 200);
      auto after = json::parse(c.Request("GET", "/v2/gpuhive/models/tiny_mlp").body);
      EXPECT_GT(after["one_row_activation_bytes"].get<uint64_t>(), 0u) << after.dump();
      // The allowance the scheduler works with: the general workers' one-row bytes less the
      // critical share (tiny_mlp's own) when a worker is kept for it; 0 when unbounded. Nothing
      // runs now, so nothing is held. The scheduler learns the one-row bytes after the batch's
      // response went out: on a loaded machine the first scrape may come before it, so it is read
      // again for up to 10 s.
      const uint64_t row = after["one_row_activation_bytes"].get<uint64_t>();
      const std::string allowance = "gpuhive_batch_memory_allowance_bytes{device=\"cpu\"} " +
                                    std::to_string(memory == 0 ? 0 : row * static_cast<uint64_t>(rows));
      std::string text = c.Request("GET", "/metrics").body;
      for (int i = 0; i < 200 && text.find(allowance + "\n") == std::string::npos; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        text = c.Request("GET", "/metrics").body;
      }
      EXPECT_NE(text.find(allowance + "\n"), std::string::npos) << allowance << "\n" << text;
      EXPECT_NE(text.find("gpuhive_batch_memory_held_bytes{device=\"cpu\"} 0\n"), std::string::npos);
    }
  }
}

TEST(CoreE2EModes, AModelThatCannotFitIsRefusedWith503) {
  EngineOptions o;
  o.memory_budget_bytes = 4096;  // smaller than tiny_mlp's weights
  auto s = StartServer(o);
  ASSERT_NE(s, nullptr);
  HttpClient c(s->http->port());
  auto r = c.Request("POST", "/v2/models/tiny_mlp/infer", TinyMlpJson(1).dump());
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_NE(r.body.find("tiny_mlp"), std::string::npos) << r.body;
  EXPECT_EQ(c.Request("GET", "/v2/health/live").status, 200);
}

// Two models that cannot be resident together, requested concurrently: batches wait for each
// other's memory instead of failing, and the models swap.
TEST(CoreE2EModes, ModelsThatDoNotFitTogetherTakeTurns) {
  namespace fs = std::filesystem;
  std::random_device rd;
  fs::path repo = fs::temp_directory_path() / ("gpuhive_turns_" + std::to_string(rd()));
  for (int i = 0; i < 6; ++i) {
    fs::create_directories(repo / ("m" + std::to_string(i)) / "1");
    residency::SyntheticModelSpec spec;
    spec.dim = 256;
    spec.layers = 4;
    spec.seed = static_cast<uint32_t>(i + 1);
    std::ofstream(repo / ("m" + std::to_string(i)) / "1" / "model.onnx", std::ios::binary)
        << residency::MakeMatMulChainOnnx(spec);
  }
  uint64_t sim_all = 0;  // what the three need on one simulated device
  for (const std::string device : {"cpu", "sim", "sim:2"}) {
  SCOPED_TRACE(device);
  // On two devices, six models spread over both (by free budget), each device with a budget for
  // two of them: where three or more land they take turns.
  const int kModels = device == "sim:2" ? 6 : 3;
  auto footprint = [&](uint64_t budget, int threads_per_model, int seconds, std::atomic<int>* ok, std::atomic<int>* bad) {
    EngineOptions o;
    o.device = device;
    o.sim_memory_bytes = 1ull << 30;
    o.model_repository = repo.string();
    o.memory_budget_bytes = budget;
    o.cpu_workers = 2;
    o.threads_per_worker = 1;
    o.enable_preloading = false;
    auto core = Engine::Create(o);
    EXPECT_TRUE(core.ok()) << core.status().ToString();
    HttpServerOptions ho;
    ho.port = 0;
    auto http = HttpServer::Start(core->get(), ho);
    EXPECT_TRUE(http.ok());
    std::vector<std::thread> clients;
    json body = {{"inputs", {{{"name", "x"}, {"shape", {2, 256}}, {"datatype", "FP32"}, {"data", std::vector<float>(512, 0.5f)}}}}};
    std::string b = body.dump();
    int64_t until = NowNs() + seconds * 1'000'000'000ll;
    for (int m = 0; m < kModels; ++m) {
      for (int t = 0; t < threads_per_model; ++t) {
        clients.emplace_back([&, m] {
          HttpClient c((*http)->port());
          do {
            auto r = c.Request("POST", "/v2/models/m" + std::to_string(m) + "/infer", b);
            (r.status == 200 ? *ok : *bad)++;
            if (r.status != 200) ADD_FAILURE() << r.status << " " << r.body;
          } while (NowNs() < until);
        });
      }
    }
    for (auto& c : clients) c.join();
    uint64_t peak = 0;  // summed over the devices, each within its own budget
    for (const auto& d : (*core)->Devices()) {
      EXPECT_LE(d.used_bytes, budget) << d.id;
      peak += d.used_bytes;
    }
    auto text = (*core)->MetricsText();
    http->reset();
    core->reset();
    return std::make_pair(peak, text);
  };
  std::atomic<int> ok{0}, bad{0};
  // Alone, with plenty of budget: what all three need resident at once (sim:2: as on one sim).
  const uint64_t all = device == "sim:2" ? sim_all : footprint(1ull << 30, 1, 0, &ok, &bad).first;
  ASSERT_GT(all, 0u);
  if (device == "sim") sim_all = all;
  ok = 0;
  // Room for two of the three at a time: 75 % of all three. (A model's first run holds its plain
  // and its packed weights until the run ends, about two models' worth once weights are held
  // once, so a smaller budget would be "never fits" for each.)
  auto [used, text] = footprint(all * 3 / 4, 2, 1, &ok, &bad);
  EXPECT_GT(ok.load(), 4);
  EXPECT_EQ(bad.load(), 0);
  if (kModels == 3) {
    EXPECT_LE(used, all * 3 / 4);  // one device (sim:2: each within its budget, checked above)
  }
  EXPECT_EQ(text.find("outcome=\"Unavailable\""), std::string::npos);
  EXPECT_NE(text.find("gpuhive_model_evictions_total{model=\"m"), std::string::npos);
  }
  std::error_code ec;
  fs::remove_all(repo, ec);
}

TEST(CoreE2EModes, ExplicitModeServesOnlyLoadedModels) {
  EngineOptions o;
  o.control_mode = residency::ControlMode::kExplicit;
  o.load_models = {"tiny_mlp"};
  auto s = StartServer(o);
  ASSERT_NE(s, nullptr);
  HttpClient c(s->http->port());
  EXPECT_EQ(c.Request("POST", "/v2/models/tiny_mlp/infer", TinyMlpJson(1).dump()).status, 200);
  EXPECT_EQ(c.Request("GET", "/v2/models/two_versions").status, 404);
  EXPECT_EQ(c.Request("POST", "/v2/repository/models/two_versions/load").status, 200);
  json v = {{"inputs", {{{"name", "INPUT0"}, {"shape", {1, 4}}, {"datatype", "FP32"}, {"data", {0, 0, 0, 0}}}}}};
  EXPECT_EQ(c.Request("POST", "/v2/models/two_versions/versions/1/infer", v.dump()).status, 200);
  EXPECT_EQ(c.Request("POST", "/v2/repository/models/no_such/load").status, 404);
}

TEST(CoreE2EModes, PollModePicksUpNewAndRemovedModels) {
  EngineOptions o;
  o.control_mode = residency::ControlMode::kPoll;
  o.poll_interval_us = 50'000;
  auto s = StartServer(o);
  ASSERT_NE(s, nullptr);
  namespace fs = std::filesystem;
  fs::copy(fs::path(s->repo) / "tiny_mlp", fs::path(s->repo) / "tiny_copy", fs::copy_options::recursive);
  {
    std::string cfg_path = (fs::path(s->repo) / "tiny_copy" / "config.pbtxt").string();
    std::ifstream in(cfg_path);
    std::string cfg((std::istreambuf_iterator<char>(in)), {});
    cfg.replace(cfg.find("\"tiny_mlp\""), 10, "\"tiny_copy\"");
    std::ofstream(cfg_path) << cfg;
  }
  HttpClient c(s->http->port());
  int status = 0;
  for (int i = 0; i < 100 && status != 200; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    status = c.Request("POST", "/v2/models/tiny_copy/infer", TinyMlpJson(1).dump()).status;
  }
  EXPECT_EQ(status, 200);
  fs::remove_all(fs::path(s->repo) / "tiny_copy");
  for (int i = 0; i < 100 && status != 404; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    status = c.Request("GET", "/v2/models/tiny_copy").status;
  }
  EXPECT_EQ(status, 404);
}

// The default device budget: free memory at start less a headroom of 2 % of the capacity, at
// least 256 MiB and at most 10 %.
TEST(DefaultDeviceBudget, FreeMemoryLessAHeadroom) {
  constexpr uint64_t MiB = 1ull << 20, GiB = 1ull << 30;
  // An H200 as the first GPU run saw it (143,771 MiB, 527 MiB used by the context): 2 % headroom.
  engine::DeviceBudget h200 = engine::DefaultDeviceBudget(143771 * MiB, (143771 - 527) * MiB);
  EXPECT_EQ(h200.reserved_bytes, 527 * MiB);
  EXPECT_EQ(h200.headroom_bytes, 143771 * MiB / 50);
  EXPECT_EQ(h200.budget_bytes, (143771 - 527) * MiB - 143771 * MiB / 50);
  // A 12 GiB card another process already uses 3 GiB of: 256 MiB headroom below that free memory.
  engine::DeviceBudget shared = engine::DefaultDeviceBudget(12 * GiB, 9 * GiB);
  EXPECT_EQ(shared.headroom_bytes, 256 * MiB);
  EXPECT_EQ(shared.budget_bytes, 9 * GiB - 256 * MiB);
  // A small simulated device: the 10 % cap (the old default of 90 %); unknown free memory counts
  // as the capacity.
  engine::DeviceBudget small = engine::DefaultDeviceBudget(1 * GiB, 0);
  EXPECT_EQ(small.free_at_start_bytes, 1 * GiB);
  EXPECT_EQ(small.reserved_bytes, 0u);
  EXPECT_EQ(small.headroom_bytes, 1 * GiB / 10);
  EXPECT_EQ(small.budget_bytes, 1 * GiB - 1 * GiB / 10);
  // Nothing free: a zero budget, not an underflow.
  EXPECT_EQ(engine::DefaultDeviceBudget(8 * GiB, 100 * MiB).budget_bytes, 0u);
  // The measured library reserve comes off too (cuDNN's and cuBLASLt's kernels once loaded), and
  // is reported; a reserve larger than what is free leaves nothing.
  engine::DeviceBudget with_libraries = engine::DefaultDeviceBudget(12 * GiB, 9 * GiB, 700 * MiB);
  EXPECT_EQ(with_libraries.library_reserve_bytes, 700 * MiB);
  EXPECT_EQ(with_libraries.budget_bytes, 9 * GiB - 256 * MiB - 700 * MiB);
  EXPECT_EQ(engine::DefaultDeviceBudget(12 * GiB, 9 * GiB, 9 * GiB).budget_bytes, 0u);
}

}  // namespace
}  // namespace gpuhive::server::testing
