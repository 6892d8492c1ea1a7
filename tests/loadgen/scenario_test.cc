// Scenario files: good ones parse into what they say; bad ones give errors that name the line
// (syntax) or the field (values), never a crash.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "cli/loadgen/runner.h"
#include "cli/loadgen/scenario.h"
#include "cli/loadgen/server_process.h"

namespace gpuhive::loadgen {
namespace {

constexpr const char* kGood = R"({
  "name": "demo", "description": "two streams",
  "protocol": "grpc", "url": "http://10.0.0.1:9000", "grpc_target": "10.0.0.1:9001",
  "duration_s": 12, "warmup_s": 2, "client_timeout_ms": 1500, "max_connections": 64, "seed": 9,
  "compare": ["naive", "gpuhive"],
  "server": {"model_repository": "models/repository", "http_port": 18100, "grpc_port": 18101,
             "memory_budget": "2GiB", "model_control_mode": "explicit", "load_models": ["a"],
             "args": ["--log-format", "json"], "ready_timeout_s": 30},
  "streams": [
    {"name": "cam", "model": "resnet50", "version": "2", "mode": "open", "rate": 15, "priority": 0,
     "tenant": "interactive", "timeout_us": 100000, "start_s": 1, "stop_s": 8, "batch": 2,
     "inputs": [{"name": "x", "datatype": "fp32", "shape": [2, 3, 4], "range": [-1, 1]}]},
    {"model": "bert", "mode": "closed", "concurrency": 3}
  ]
})";

TEST(ScenarioTest, ParsesEveryField) {
  auto sc = ParseScenario(kGood);
  ASSERT_TRUE(sc.ok()) << sc.status().ToString();
  EXPECT_EQ(sc->name, "demo");
  EXPECT_EQ(sc->protocol, Protocol::kGrpc);
  EXPECT_EQ(sc->url, "http://10.0.0.1:9000");
  EXPECT_EQ(sc->grpc_target, "10.0.0.1:9001");
  EXPECT_DOUBLE_EQ(sc->duration_s, 12);
  EXPECT_DOUBLE_EQ(sc->warmup_s, 2);
  EXPECT_DOUBLE_EQ(sc->client_timeout_s, 1.5);
  EXPECT_EQ(sc->max_connections, 64);
  EXPECT_EQ(sc->seed, 9u);
  EXPECT_EQ(sc->compare, (std::vector<std::string>{"naive", "gpuhive"}));
  EXPECT_TRUE(sc->server.managed);
  EXPECT_EQ(sc->server.http_port, 18100);
  EXPECT_EQ(sc->server.memory_budget, "2GiB");
  EXPECT_EQ(sc->server.load_models, std::vector<std::string>{"a"});
  ASSERT_EQ(sc->streams.size(), 2u);
  const StreamSpec& a = sc->streams[0];
  EXPECT_EQ(a.name, "cam");
  EXPECT_EQ(a.version, "2");
  EXPECT_EQ(a.mode, LoadMode::kOpen);
  EXPECT_DOUBLE_EQ(a.rate_rps, 15);
  ASSERT_TRUE(a.priority.has_value());
  EXPECT_EQ(*a.priority, 0);
  EXPECT_EQ(a.tenant, "interactive");
  EXPECT_EQ(a.timeout_us, 100000);
  EXPECT_DOUBLE_EQ(a.start_s, 1);
  EXPECT_DOUBLE_EQ(a.stop_s, 8);
  EXPECT_EQ(a.batch, 2);
  ASSERT_EQ(a.inputs.size(), 1u);
  EXPECT_EQ(a.inputs[0].datatype, "FP32");  // normalized to the KServe spelling
  EXPECT_EQ(a.inputs[0].shape, (Shape{2, 3, 4}));
  EXPECT_DOUBLE_EQ(*a.inputs[0].range_lo, -1);
  const StreamSpec& b = sc->streams[1];
  EXPECT_EQ(b.name, "bert");
  EXPECT_EQ(b.mode, LoadMode::kClosed);
  EXPECT_EQ(b.concurrency, 3);
  EXPECT_FALSE(b.priority.has_value());
  std::vector<std::string> cmd = ServerProcess::CommandLine(sc->server, "naive");
  EXPECT_EQ(cmd, (std::vector<std::string>{"/proc/self/exe", "serve", "--mode", "naive", "--model-repository",
                                           "models/repository", "--http-port", "18100", "--grpc-port", "18101",
                                           "--memory-budget", "2GiB", "--model-control-mode", "explicit",
                                           "--load-model", "a", "--log-format", "json"}));
}

TEST(ScenarioTest, DefaultNamesNumberStreamsOfOneModel) {
  auto sc = ParseScenario(R"({"streams": [{"model": "m", "rate": 1}, {"model": "m", "rate": 2},
                                          {"model": "k", "mode": "closed", "concurrency": 1}]})");
  ASSERT_TRUE(sc.ok()) << sc.status().ToString();
  EXPECT_EQ(sc->streams[0].name, "m#0");
  EXPECT_EQ(sc->streams[1].name, "m#1");
  EXPECT_EQ(sc->streams[2].name, "k");
  EXPECT_EQ(sc->protocol, Protocol::kHttp);
  EXPECT_FALSE(sc->server.managed);
  EXPECT_DOUBLE_EQ(sc->duration_s, 30);
  EXPECT_DOUBLE_EQ(sc->warmup_s, 5);
  auto short_run = ParseScenario(R"({"duration_s": 5, "streams": [{"model": "m", "rate": 1}]})");
  ASSERT_TRUE(short_run.ok()) << short_run.status().ToString();
  EXPECT_DOUBLE_EQ(short_run->warmup_s, 1);  // default warm-up shrinks for short runs
}

struct BadCase {
  const char* text;
  const char* expected;  // substring of the error message
};

TEST(ScenarioTest, BadFilesNameTheLineOrField) {
  const BadCase cases[] = {
      {"{\n  \"streams\": [\n    {\"model\": \"m\" \"rate\": 1}\n  ]\n}", "line 3"},
      {"", "not valid JSON"},
      {"[1, 2]", "must be a JSON object"},
      {R"({"streams": []})", "streams: must be a non-empty list"},
      {R"({"duration_s": 50})", "streams: required"},
      {R"({"streams": [{"model": "m", "rat": 1}]})", "streams[0].rate"},
      {R"({"streams": [{"model": "m", "rate": 1, "colour": 1}]})", "streams[0].colour: unknown field"},
      {R"({"streams": [{"rate": 1}]})", "streams[0].model"},
      {R"({"streams": [{"model": "m", "rate": -3}]})", "streams[0].rate"},
      {R"({"streams": [{"model": "m", "rate": "fast"}]})", "streams[0].rate: must be a number"},
      {R"({"streams": [{"model": "m", "mode": "closed"}]})", "streams[0].concurrency"},
      {R"({"streams": [{"model": "m", "mode": "closed", "concurrency": 2, "rate": 3}]})", "only open loop"},
      {R"({"streams": [{"model": "m", "mode": "burst", "rate": 3}]})", "streams[0].mode"},
      {R"({"streams": [{"model": "m", "rate": 1, "concurrency": 2}]})", "only closed loop"},
      {R"({"streams": [{"model": "m", "mode": "closed", "concurrency": 0}]})", "streams[0].concurrency"},
      {R"({"streams": [{"model": "m", "mode": "closed", "concurrency": 1.5}]})", "must be an integer"},
      {R"({"streams": [{"model": "m", "rate": 1}, {"model": "k", "rate": 1, "name": "m"}]})", "used twice"},
      {R"({"streams": [{"model": "m", "rate": 1, "start_s": 5, "stop_s": 4}]})", "streams[0].stop_s"},
      {R"({"duration_s": 10, "streams": [{"model": "m", "rate": 1, "start_s": 11}]})", "streams[0].start_s"},
      {R"({"duration_s": 10, "warmup_s": 10, "streams": [{"model": "m", "rate": 1}]})", "warmup_s"},
      {R"({"protocol": "quic", "streams": [{"model": "m", "rate": 1}]})", "protocol"},
      {R"({"url": "https://x:1", "streams": [{"model": "m", "rate": 1}]})", "url"},
      {R"({"url": "http://x:99999", "streams": [{"model": "m", "rate": 1}]})", "url"},
      {R"({"grpc_target": "nohost", "streams": [{"model": "m", "rate": 1}]})", "grpc_target"},
      {R"({"compare": ["naive"], "streams": [{"model": "m", "rate": 1}]})", "compare"},
      {R"({"compare": ["a", "a"], "server": {"model_repository": "r"}, "streams": [{"model": "m", "rate": 1}]})",
       "compare[1]"},
      {R"({"server": {"http_port": 1}, "streams": [{"model": "m", "rate": 1}]})", "server.model_repository"},
      {R"({"server": {"model_repository": "r", "memory_budget": "lots"}, "streams": [{"model": "m", "rate": 1}]})",
       "server.memory_budget"},
      {R"({"server": {"model_repository": "r", "args": ["a", 3]}, "streams": [{"model": "m", "rate": 1}]})",
       "server.args[1]"},
      {R"({"server": {"model_repository": "r", "http_port": 70000}, "streams": [{"model": "m", "rate": 1}]})",
       "server.http_port"},
      {R"({"streams": [{"model": "m", "rate": 1, "inputs": [{"datatype": "FP33"}]}]})",
       "streams[0].inputs[0].datatype"},
      {R"({"streams": [{"model": "m", "rate": 1, "inputs": [{"shape": [1, -2]}]}]})", "streams[0].inputs[0].shape[1]"},
      {R"({"streams": [{"model": "m", "rate": 1, "inputs": [{"range": [2, 1]}]}]})", "streams[0].inputs[0].range"},
      {R"({"streams": [{"model": "m", "rate": 1, "inputs": [{"name": "a"}, {"shape": [1]}]}]})", "needs a 'name'"},
      {R"({"streams": [{"model": "m", "rate": 1, "priority": -1}]})", "streams[0].priority"},
      {R"({"streams": [{"model": "m", "rate": 1, "tenant": ""}]})", "streams[0].tenant"},
      {R"({"streams": [{"model": "m", "rate": 1}], "extra": true})", "extra: unknown field"},
  };
  for (const auto& c : cases) {
    auto sc = ParseScenario(c.text, "test.json");
    ASSERT_FALSE(sc.ok()) << "accepted: " << c.text;
    EXPECT_EQ(sc.status().code(), StatusCode::kInvalidArgument) << c.text;
    EXPECT_NE(sc.status().message().find(c.expected), std::string::npos)
        << "for " << c.text << "\n got: " << sc.status().message();
    EXPECT_NE(sc.status().message().find("test.json"), std::string::npos) << sc.status().message();
  }
}

TEST(ScenarioTest, MissingFileIsNotFound) {
  auto sc = LoadScenarioFile("/nonexistent/scenario.json");
  ASSERT_FALSE(sc.ok());
  EXPECT_EQ(sc.status().code(), StatusCode::kNotFound);
}

TEST(ScenarioTest, ShippedScenariosAreValid) {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(std::string(GPUHIVE_SOURCE_DIR) + "/bench/scenarios")) {
    if (e.path().extension() != ".json") continue;
    auto sc = LoadScenarioFile(e.path().string());
    EXPECT_TRUE(sc.ok()) << sc.status().ToString();
    if (sc.ok()) {
      EXPECT_FALSE(sc->compare.empty()) << e.path();
      EXPECT_LE(sc->duration_s, 60) << e.path() << ": keep default runs short (2 shared cores)";
    }
    ++n;
  }
  EXPECT_GE(n, 3);
}

TEST(RequestTemplateTest, FillsBatchDimAndNamesFromMetadata) {
  auto sc = ParseScenario(R"({"streams": [{"model": "m", "rate": 1, "batch": 4, "priority": 2,
                              "tenant": "t", "timeout_us": 5000,
                              "inputs": [{"name": "ids", "range": [3, 7]}]}]})");
  ASSERT_TRUE(sc.ok()) << sc.status().ToString();
  std::string md = R"({"name":"m","inputs":[{"name":"x","datatype":"FP32","shape":[-1,3]},
                                           {"name":"ids","datatype":"INT64","shape":[-1,5]}]})";
  auto r = BuildRequestTemplate(sc->streams[0], &md, 1);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->inputs.size(), 2u);
  EXPECT_EQ(r->inputs[0].name, "x");
  EXPECT_EQ(r->inputs[0].shape, (Shape{4, 3}));
  EXPECT_EQ(r->inputs[0].bytes.size(), 4u * 3 * 4);
  EXPECT_EQ(r->inputs[1].shape, (Shape{4, 5}));
  ASSERT_EQ(r->inputs[1].bytes.size(), 4u * 5 * 8);
  for (size_t i = 0; i < 20; ++i) {
    int64_t v;
    std::memcpy(&v, r->inputs[1].bytes.data() + i * 8, 8);
    EXPECT_GE(v, 3);
    EXPECT_LE(v, 7);
  }
  for (size_t i = 0; i < 12; ++i) {
    float f;
    std::memcpy(&f, r->inputs[0].bytes.data() + i * 4, 4);
    EXPECT_GE(f, 0.f);
    EXPECT_LE(f, 1.f);
  }
  EXPECT_EQ(r->triton_priority, 2);  // Triton's numbering, sent as is
  EXPECT_EQ(r->tenant, "t");
  EXPECT_EQ(r->timeout_us, 5000);
  std::string header = InferHeaderJson(*r);
  EXPECT_NE(header.find("\"binary_data_size\":48"), std::string::npos) << header;
  EXPECT_NE(header.find("\"priority\":2"), std::string::npos) << header;
  EXPECT_NE(header.find("\"tenant\":\"t\""), std::string::npos) << header;
  EXPECT_NE(header.find("\"timeout\":5000"), std::string::npos) << header;
}

TEST(RequestTemplateTest, ExplainsWhatDoesNotFit) {
  std::string md = R"({"name":"m","inputs":[{"name":"x","datatype":"FP32","shape":[-1,-1]}]})";
  auto parse = [](const char* text) { return std::move(*ParseScenario(text)); };
  Scenario dyn = parse(R"({"streams": [{"model": "m", "rate": 1}]})");
  auto r = BuildRequestTemplate(dyn.streams[0], &md, 1);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("variable"), std::string::npos) << r.status().message();

  Scenario shaped = parse(R"({"streams": [{"model": "m", "rate": 1, "inputs": [{"shape": [2, 7]}]}]})");
  r = BuildRequestTemplate(shaped.streams[0], &md, 1);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->inputs[0].shape, (Shape{2, 7}));

  Scenario rank = parse(R"({"streams": [{"model": "m", "rate": 1, "inputs": [{"shape": [2]}]}]})");
  EXPECT_FALSE(BuildRequestTemplate(rank.streams[0], &md, 1).ok());
  Scenario name = parse(R"({"streams": [{"model": "m", "rate": 1, "inputs": [{"name": "y"}]}]})");
  r = BuildRequestTemplate(name.streams[0], &md, 1);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("not an input"), std::string::npos) << r.status().message();
  Scenario dtype = parse(R"({"streams": [{"model": "m", "rate": 1, "inputs": [{"datatype": "INT8", "shape": [1, 1]}]}]})");
  EXPECT_FALSE(BuildRequestTemplate(dtype.streams[0], &md, 1).ok());
  // Out-of-range integer ranges are clamped, not undefined behaviour.
  std::string int_md = R"({"name":"m","inputs":[{"name":"x","datatype":"INT32","shape":[-1,4]}]})";
  Scenario huge = parse(R"({"streams": [{"model": "m", "rate": 1, "inputs": [{"range": [-1e30, 1e30]}]}]})");
  r = BuildRequestTemplate(huge.streams[0], &int_md, 1);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->inputs[0].bytes.size(), 16u);
  std::string garbage = "{\"inputs\": 3}";
  EXPECT_FALSE(BuildRequestTemplate(shaped.streams[0], &garbage, 1).ok());
  // No metadata and an incomplete input description: sent without inputs (the server's answer
  // is what gets counted), not an error.
  r = BuildRequestTemplate(dyn.streams[0], nullptr, 1);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->inputs.empty());
}

}  // namespace
}  // namespace gpuhive::loadgen
